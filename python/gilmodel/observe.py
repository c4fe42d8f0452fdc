"""Observe a real CPython's GIL, event by event, in the model's own schema.

:func:`observe` launches a command (``observe(["python3", "script.py"])``) or attaches to a
running process (``observe(pid=1234)``) and returns a :class:`~gilmodel.Run` whose ``events``
come from kernel uprobes on the interpreter's own GIL functions (rust/observe/): ``request``
(the take begins), ``acquire`` (it returns, the GIL held), ``release`` (the drop begins),
thread ``start``/``exit``, under 3.x each timed wait's ``timeout`` and ``futile_wakeup``,
with ``drop_request`` inferred as CPython decides it, and (x86_64) each blocking system call
made with the GIL released as ``io_begin``/``io_end``. Times are ns on ``CLOCK_MONOTONIC`` from
the command's ``execve`` (or from attaching); ``thread`` indexes ``threads``, whose ``tid``
column holds the OS thread id; ``cpu`` is where the probe fired. ``summary()``,
:mod:`gilmodel.analysis`, ``plot``, ``to_trace`` and Parquet take it unchanged.

Needs Linux with uprobe events (tracefs), root, and an interpreter with a symbol table (pyenv builds; distribution builds need their ``-dbg`` package). The interpreter is
found by running it (a launched command's ``argv[0]``) or from ``/proc/PID`` (an attached
process).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import pyarrow as pa

from . import _core
from .run import Run, RunHalted

__all__ = ["observe", "Interpreter", "find_interpreter", "ObserveInterrupted", "ObserveError", "can_observe"]


class ObserveError(RuntimeError):
    """The observation could not be made (no permission, no uprobes, a stripped or unknown
    interpreter, a process that does not exist); the message says what to do."""


class ObserveInterrupted(RunHalted):
    """Ctrl-C (or another exception from a signal handler) ended an observation: ``run`` is
    what was observed until then (``meta["stopped_by"] == "interrupted"``); a launched command
    was sent SIGINT, then SIGKILL if it had not exited within the grace time."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython found for observing.

    Attributes:
        executable: the interpreter's executable (real path).
        version: e.g. ``"3.11.7"``.
        binary: the ELF file holding the GIL's functions (libpython when the interpreter is
            linked against it, else the executable).
        libc: the C library it runs with (its ``pthread_cond_timedwait`` gives 3.x timeouts).
    """

    executable: str
    version: str
    binary: str
    libc: Optional[str]


# Runs under any CPython 2.4+ or 3.x: the version, the implementation, whether the GIL is
# disabled (free-threaded builds), the executable and what is mapped.
_SNIPPET = (
    "import sys, platform\n"
    "try:\n"
    "    import sysconfig; ft = sysconfig.get_config_var('Py_GIL_DISABLED')\n"
    "except Exception:\n"
    "    ft = None\n"
    "sys.stdout.write('%d.%d.%d\\n%s\\n%s\\n' % (sys.version_info[0], sys.version_info[1], sys.version_info[2], "
    "platform.python_implementation(), ft))\n"
    "import os\n"
    "sys.stdout.write(os.path.realpath('/proc/self/exe') + '\\n')\n"
    "sys.stdout.write(open('/proc/self/maps').read())\n"
)


def _mapped(maps: str) -> List[str]:
    out = []
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            out.append(parts[5].strip())
    return out


def _pick(paths: Sequence[str], exe: str):
    lib = next((p for p in paths if re.search(r"/libpython[\d.]+[a-z]*\.so", p)), None)
    libc = next((p for p in paths if re.search(r"/libc(-[\d.]+)?\.so", p)), None)
    return lib or exe, libc


def find_interpreter(executable: Optional[str] = None, pid: Optional[int] = None) -> Interpreter:
    """The CPython an observation targets: ``executable`` (a name on PATH or a path), run
    once with ``-c`` to ask it; or the one process ``pid`` runs, from ``/proc``.

    Raises:
        ObserveError: not found, not CPython, a free-threaded build, or no such process.
    """
    if pid is not None:
        try:
            exe = os.path.realpath("/proc/%d/exe" % pid)
            with open("/proc/%d/maps" % pid) as f:
                maps = f.read()
        except (FileNotFoundError, ProcessLookupError):
            raise ObserveError("process %d does not exist" % pid) from None
        except PermissionError:
            raise ObserveError("cannot read /proc/%d/maps: observing another user's process needs root" % pid) from None
        binary, libc = _pick(_mapped(maps), exe)
        ask = _ask(exe, quiet=True)
        if ask is None:
            m = re.search(r"libpython(\d+)\.(\d+)", binary)
            if not m:
                raise ObserveError("process %d (%s) does not look like CPython: no libpython mapped, and %s does not answer -c"
                                   % (pid, exe, exe))
            version = "%s.%s.0" % m.groups()
        else:
            version = ask[0]
        return Interpreter(exe, version, binary, libc)
    if not executable:
        raise ObserveError("observe: an empty command")
    path = executable if os.sep in executable else shutil.which(executable)
    if not path or not os.path.exists(path):
        raise ObserveError("%s: no such program (not a path, nor on PATH)" % executable)
    ask = _ask(path)
    version, exe, paths = ask
    binary, libc = _pick(paths, exe)
    return Interpreter(exe, version, binary, libc)


def _ask(path: str, quiet: bool = False):
    try:
        p = subprocess.run([path, "-c", _SNIPPET], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        if quiet:
            return None
        raise ObserveError("%s is not a Python interpreter the observer can ask (%s); the command to observe must "
                           "start with CPython, e.g. `python3 script.py`" % (path, e)) from None
    lines = p.stdout.splitlines()
    if p.returncode != 0 or len(lines) < 4:
        if quiet:
            return None
        raise ObserveError("%s is not a Python interpreter (it could not run -c: %s); the command to observe must start "
                           "with CPython, e.g. `python3 script.py`" % (path, (p.stderr.strip().splitlines() or ["no output"])[-1]))
    version, impl, ft, exe = lines[:4]
    if impl != "CPython":
        raise ObserveError("%s is %s %s, not CPython: only CPython's GIL can be observed" % (path, impl, version))
    if ft not in ("None", "0", ""):
        raise ObserveError("%s is a free-threaded build (Py_GIL_DISABLED): it has no GIL to observe" % path)
    return version, exe, _mapped("\n".join(lines[4:]))


_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def _has_tracefs() -> bool:
    return any(os.path.exists(os.path.join(d, "uprobe_events")) for d in _TRACEFS)


def _mount_tracefs() -> Optional[str]:
    """Mount tracefs at /sys/kernel/tracing, as perf does when it needs it and finds none (a
    fresh container or VM often has the directory but nothing mounted); None, or the error."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", _TRACEFS[0].encode(), b"tracefs", 0, None) != 0:
        return os.strerror(ctypes.get_errno())
    print("gilmodel: mounted tracefs at %s (it was not mounted)" % _TRACEFS[0], file=sys.stderr)
    return None


def can_observe() -> Optional[str]:
    """None when this process can place uprobes; else why not (for a test's skip reason or
    a clear error). As root, mounts tracefs when the kernel has it but it is not mounted."""
    if os.geteuid() != 0:
        return "observing needs root (it defines uprobes in tracefs and opens their perf events)"
    if not _has_tracefs():
        err = _mount_tracefs() if os.path.isdir(_TRACEFS[0]) else "no %s" % _TRACEFS[0]
        if not _has_tracefs():
            return ("no tracefs with uprobe_events (mounting it at %s failed: %s; the kernel needs CONFIG_UPROBE_EVENTS)"
                    % (_TRACEFS[0], err or "mounted, but it has no uprobe_events"))
    return None


def observe(command: Optional[Sequence[str]] = None, *, pid: Optional[int] = None, duration_s: Optional[float] = None,
            cpus: Optional[Sequence[int]] = None, stdout: Optional[str] = None, ring_pages: int = 512,
            poll_ms: int = 10, max_events: int = 10_000_000, grace_s: float = 2.0) -> Run:
    """Observe a real CPython's GIL: launch ``command`` (its ``argv[0]`` a CPython, e.g.
    ``["python3", "app.py"]``) or attach to process ``pid``, and return what its GIL did.

    Args:
        command: the program to launch and observe until it exits.
        pid: a running process to observe until it exits or ``duration_s`` (it is never
            stopped; threads it starts are followed, processes it forks are not).
        cpus: the CPUs a launched command may run on (its affinity, inherited by its threads
            and the processes it starts); default: the caller's.
        stdout: a file a launched command's standard output is written to (default: this
            process's).
        duration_s: stop observing after this long (a launched command is then sent SIGINT,
            and SIGKILL after ``grace_s``; an attached process runs on).
        ring_pages: each CPU's ring buffer, in 4 KiB pages (a power of two); records that do
            not fit are counted in ``meta["observed"]["lost_records"]``, never hidden.
        poll_ms: how often the rings are read.
        max_events: stop when this many records were read (``stopped_by = "event_budget"``;
            about 48 bytes each while observing).
        grace_s: how long a launched command has to exit after SIGINT before SIGKILL.

    Returns:
        A :class:`Run`; ``meta["observed"]`` says what was observed and how (probes, files,
        lost records, the target's exit status), ``meta["gil"]`` is ``{"policy": "real",
        "interpreter": version, "flavour": "Interval" | "Lock"}``.

    Raises:
        ObserveError: see its doc; ObserveInterrupted: Ctrl-C, with the partial run.
    """
    if (command is None) == (pid is None):
        raise ObserveError("observe: give a command or a pid (one of them)")
    if ring_pages < 1 or ring_pages & (ring_pages - 1):
        raise ObserveError("ring_pages must be a power of two, got %r" % ring_pages)
    if duration_s is not None and not duration_s > 0:
        raise ObserveError("duration_s must be > 0, got %r" % duration_s)
    if stdout is not None and command is None:
        raise ObserveError("stdout: only a launched command's output can be redirected")
    if cpus is not None and command is None:
        raise ObserveError("cpus: only a launched command's affinity can be set (an attached process keeps its own)")
    why = can_observe()
    if why:
        raise ObserveError(why)
    if command is not None:
        command = [str(c) for c in command]
        interp = find_interpreter(command[0])
    else:
        interp = find_interpreter(pid=int(pid))
    spec: Dict[str, Any] = {"command": command, "pid": pid, "cpus": None if cpus is None else [int(c) for c in cpus],
                            "stdout": None if stdout is None else os.fspath(stdout), "binary": interp.binary, "libc": interp.libc,
                            "version": interp.version, "duration_s": duration_s, "ring_pages": ring_pages,
                            "poll_ms": poll_ms, "max_events": max_events, "grace_s": grace_s}
    try:
        raw = _core.observe(json.dumps(spec))
    except RuntimeError as e:
        raise ObserveError(str(e)) from None
    run = Run._from_core(raw)
    obs = run.meta["observed"]
    tids = obs.pop("tids")
    run.threads = run.threads.append_column("tid", pa.array(tids, type=pa.int64()))
    obs["executable"] = interp.executable
    run.meta["scenario"] = "observed: " + (" ".join(command) if command else "pid %d" % pid)
    run.meta["events_truncated"] = bool(obs.get("truncated"))
    run.meta["events_dropped"] = int(obs.get("lost_records", 0))
    run.meta["version"] = _core.__version__
    err = raw.get("error")
    if err and err.get("kind") == "interrupted":
        exc = ObserveInterrupted("observation interrupted after %.2f s: partial run of %d events"
                                 % (run.meta["elapsed_ns"] / 1e9, run.events.num_rows), run)
        raise exc from err.get("exception")
    return run
