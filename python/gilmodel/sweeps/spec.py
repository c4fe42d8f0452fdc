"""A sweep as a TOML file (``gilmodel sweep SPEC.toml``)::

    out = "results/convoy"       # relative to the current directory
    repeats = 3
    cores_per_run = 2
    backend = "local"            # or "ray" (with address = "auto")
    events = false

    [base]
    experiment = "convoy_factor"
    cores = 2
    [base.gil]
    version = "3.11"
    [base.scenario]
    total_bytes = 262144

    [grid]
    "gil.interval_us" = [1000, 2000, 5000]

    [[cases]]                    # optional
    "gil.version" = "2.7"

Every key but ``base``, ``grid`` and ``cases`` is a keyword argument of :func:`gilmodel.sweep`.
A scenario builder is named as ``experiment = "builder:module:function"`` (its parameters are
``[base.scenario]`` keys and bare grid keys); per-run options ``watchdog_s`` and
``on_overflow`` go in ``[base]``, the grid or a case.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Union

__all__ = ["read_spec"]

_KEYS = {"base", "grid", "cases", "repeats", "cores_per_run", "out", "backend", "max_parallel", "resume", "events",
         "address", "progress"}


def read_spec(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The keyword arguments of :func:`gilmodel.sweep` a TOML spec gives. Raises ValueError
    naming an unknown key or a TOML error."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ImportError("reading a TOML spec needs Python >= 3.11 or the tomli package") from None
    with open(path, "rb") as f:
        try:
            spec = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError("%s: %s" % (os.fspath(path), e)) from None
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise ValueError("%s: unknown key(s) %s; known: %s" % (os.fspath(path), ", ".join(unknown), ", ".join(sorted(_KEYS))))
    return spec
