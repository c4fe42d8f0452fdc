"""Finding the real interpreters to compare with the model, and their versions."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional

__all__ = ["Interpreter", "detect", "discover", "find_python", "norm_minor"]

_ASK = "import sys, platform; sys.stdout.write('%d.%d.%d %s' % (sys.version_info[:3] + (platform.python_implementation(),)))"


@dataclass(frozen=True)
class Interpreter:
    """A real interpreter: its path, full version (``"3.11.7"``) and ``minor`` (``"3.11"``),
    the key :func:`gilmodel.cpython` takes."""

    path: str
    version: str
    implementation: str = "CPython"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def label(self) -> str:
        return "%s (%s)" % (self.version, self.path)


def detect(path: str, timeout: float = 20.0) -> Interpreter:
    """Ask ``path`` for its version. Raises ValueError when it is not a runnable Python."""
    p = os.path.abspath(os.path.expanduser(path))
    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
        raise ValueError("--python %s: not an executable file" % path)
    try:
        out = subprocess.run([p, "-E", "-s", "-c", _ASK], capture_output=True, timeout=timeout, text=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError("--python %s: could not run it (%s)" % (path, e))
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        raise ValueError("--python %s: not a Python interpreter (exit %d: %s)" % (path, out.returncode, out.stderr.strip()[-200:]))
    return Interpreter(p, parts[0], parts[1])


def _pyenv_versions(pattern: str = "*") -> List[str]:
    """Install folders under ``$PYENV_ROOT/versions`` (default ``~/.pyenv``)."""
    home = os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv"))
    return sorted(glob.glob(os.path.join(home, "versions", pattern)))


def _candidates_all() -> Iterable[str]:
    for d in _pyenv_versions():
        for name in ("bin/python", "bin/python3", "bin/python2"):
            c = os.path.join(d, name)
            if os.path.isfile(c):
                yield c
                break
    names = ["python2.7", "python2", "python"] + ["python3.%d" % m for m in range(0, 14)] + ["python3"]
    for n in names:
        w = shutil.which(n)
        if w and "/.pyenv/shims/" not in w:  # pyenv shims only re-run a version listed above
            yield w


def _key(v: str):
    return tuple(int(x) for x in v.split(".")[:3])


def discover(extra: Optional[List[str]] = None, all_: bool = False) -> List[Interpreter]:
    """``sys.executable``, every path in ``extra``, and with ``all_`` each CPython under
    ``~/.pyenv/versions`` or on ``PATH``. Explicit ones are kept (duplicates of the same file
    dropped); of the ones ``all_`` finds, one per minor version not already present, so
    ``--all`` measures each version once. Non-CPython interpreters are left out of ``all_``.
    Sorted by version."""
    out: List[Interpreter] = []
    seen_files = set()

    def add(i: Interpreter) -> None:
        out.append(i)
        seen_files.add(os.path.realpath(i.path))

    add(detect(sys.executable))
    for p in extra or []:
        i = detect(p)
        if os.path.realpath(i.path) not in seen_files:
            add(i)
    if all_:
        minors = {i.minor for i in out}
        for c in _candidates_all():
            if os.path.realpath(c) in seen_files:
                continue
            try:
                i = detect(c)
            except ValueError:
                continue
            if i.implementation != "CPython" or i.minor in minors:
                continue
            minors.add(i.minor)
            add(i)
    return sorted(out, key=lambda i: _key(i.version))


def norm_minor(version: str) -> str:
    """``"3.11.7"`` → ``"3.11"``; ``"2.6-osx"`` → ``"2.7"`` (the OS X build of 2.x runs with 2.7's costs)."""
    v = version.strip()
    if v == "2.6-osx":
        return "2.7"  # the OS X build of 2.x: its costs are 2.7's
    return ".".join(v.split(".")[:2])


def _candidates(minor: str) -> Iterator[str]:
    if ".".join(map(str, sys.version_info[:2])) == minor:
        yield sys.executable
    for d in reversed(_pyenv_versions(minor + ".*")):
        for name in ("bin/python", "bin/python" + minor):
            c = os.path.join(d, name)
            if os.path.isfile(c):
                yield c
                break
    for n in ["python" + minor] + (["python2"] if minor.startswith("2.") else ["python3"]):
        w = shutil.which(n)
        if w and "/.pyenv/shims/" not in w:
            yield w


def find_python(version: str) -> Optional[Interpreter]:
    """A CPython of ``version``'s minor (``"2.7"``, ``"3.11"``) on this machine: the running
    interpreter, one under ``$PYENV_ROOT/versions`` (default ``~/.pyenv``), or ``pythonX.Y`` /
    ``python2`` / ``python3`` on ``PATH``; None when there is none."""
    minor = norm_minor(version)
    seen = set()
    for c in _candidates(minor):
        r = os.path.realpath(c)
        if r in seen:
            continue
        seen.add(r)
        try:
            it = detect(c)
        except ValueError:
            continue
        if it.implementation == "CPython" and it.minor == minor:
            return it
    return None
