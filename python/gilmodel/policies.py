"""GIL policies and their knobs, and the presets of each CPython version.

Each policy is a frozen dataclass whose fields are the knobs of the Rust replica of the same
name; the replica's module documents which CPython functions it mirrors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Literal, Optional, Union

from ._check import check_bool, check_choice, check_int, check_str
from ._core import LIMITS

__all__ = ["TickGIL", "IntervalGIL", "PriorityGIL", "BfsGIL", "FifoGIL", "NoGIL", "Policy", "POLICIES",
           "cpython", "CPYTHON_VERSIONS", "gil_family", "resolve_gil"]


def _check_python(name: str, v: Optional[str]) -> None:
    if v is not None:
        check_str(name, v)
        if not v.strip():
            raise ValueError("%s: an empty string; give a version such as '2.7', a path, or None" % name)


def _spec(policy: str, p: Any) -> Dict[str, Any]:
    # ``python`` says whose costs the ticks take (resolved in Python); the core never sees it.
    d = asdict(p)
    del d["python"]
    return {"policy": policy, **d}


@dataclass(frozen=True)
class TickGIL:
    """CPython 2.x's GIL (also 3.0 and 3.1): released and at once retaken every
    ``check_interval`` ticks, with no hand-off.

    Args:
        check_interval: ticks between checks (``sys.setcheckinterval``; 2.7's default 100).
        lock: ``"sem"`` (a POSIX semaphore, as Linux builds) or ``"mutex_cond"`` (a flag
            under a mutex with a condition variable, as OS X builds).
        python: whose measured costs the model's ticks take when a scenario gives no
            ``tick_ns`` (see :mod:`gilmodel.profiles`): a CPython version (``"2.7"``) or an
            interpreter's path; None: CPython 2.7 (set by :func:`cpython` to the version).
    """

    check_interval: int = 100
    lock: Literal["sem", "mutex_cond"] = "sem"
    python: Optional[str] = None

    def __post_init__(self) -> None:
        _check_python("TickGIL.python", self.python)
        check_int("TickGIL.check_interval", self.check_interval, *LIMITS["check_period_ticks"])
        check_choice("TickGIL.lock", self.lock, ("sem", "mutex_cond"))

    def to_spec(self) -> Dict[str, Any]:
        """The replica's configuration as the core reads it."""
        return _spec("tick", self)


@dataclass(frozen=True)
class IntervalGIL:
    """CPython 3.2+'s GIL: a waiter asks the holder to drop after ``interval_us`` without a
    switch; the holder drops at its next check point.

    Args:
        interval_us: the switch interval in µs (``sys.setswitchinterval``; default 5000).
        force_switching: FORCE_SWITCHING (on in every CPython build): a thread forced to drop
            waits until another thread has taken the GIL.
        dedupe_drop_request: the ``switch_number`` check that keeps a waiter from asking
            again after a switch it missed (docs/design.md §1, P5); off for the ablation.
        check_every: ticks between check points (1: every loop back-edge and call).
        python: whose measured costs the model's ticks take when a scenario gives no
            ``tick_ns`` (see :mod:`gilmodel.profiles`): a CPython version (``"2.7"``) or an
            interpreter's path; None: the running interpreter (set by :func:`cpython` to the version).
    """

    interval_us: int = 5000
    force_switching: bool = True
    dedupe_drop_request: bool = True
    check_every: int = 1
    python: Optional[str] = None

    def __post_init__(self) -> None:
        _check_python("IntervalGIL.python", self.python)
        check_int("IntervalGIL.interval_us", self.interval_us, *LIMITS["interval_us"])
        check_bool("IntervalGIL.force_switching", self.force_switching)
        check_bool("IntervalGIL.dedupe_drop_request", self.dedupe_drop_request)
        check_int("IntervalGIL.check_every", self.check_every, *LIMITS["check_period_ticks"])

    def to_spec(self) -> Dict[str, Any]:
        """The replica's configuration as the core reads it."""
        return _spec("interval", self)


@dataclass(frozen=True)
class PriorityGIL:
    """Beazley's proposed fix (PyCon 2010, CPython issue 7946): the interval GIL with two
    priority levels. A thread forced out by a drop request is demoted (``demote`` event); one
    that gives the GIL up around a blocking call is promoted (``promote``); a high-priority
    waiter facing a low-priority holder asks it to drop at once (``preempt``), and a released
    GIL goes to high-priority waiters first. Threads start high.

    Args:
        interval_us: how long a waiter of equal priority waits before asking for a drop.
        check_every: ticks between check points.
        python: whose measured costs the model's ticks take when a scenario gives no
            ``tick_ns`` (see :mod:`gilmodel.profiles`): a CPython version (``"2.7"``) or an
            interpreter's path; None: the running interpreter.
    """

    interval_us: int = 5000
    check_every: int = 1
    python: Optional[str] = None

    def __post_init__(self) -> None:
        _check_python("PriorityGIL.python", self.python)
        check_int("PriorityGIL.interval_us", self.interval_us, *LIMITS["interval_us"])
        check_int("PriorityGIL.check_every", self.check_every, *LIMITS["check_period_ticks"])

    def to_spec(self) -> Dict[str, Any]:
        """The replica's configuration as the core reads it."""
        return _spec("priority", self)


@dataclass(frozen=True)
class BfsGIL:
    """Nir Aides' BFS-scheduler GIL (CPython issue 7946), mirroring ``Python/bfs.c`` as ported
    to 3.11.0a6 (JuliaPoo/cpython d09535b76a; line ranges in ``rust/gil/bfs.rs``): slices of an
    interpreter clock capped at a slice per hold, virtual deadlines of ``slice_us ×
    deadline_factor`` renewed when a thread that used its slice up next asks to run, the GIL
    named to the first expired deadline in arrival order, else the earliest; a waiter whose
    deadline is no later than the holder's unexpired one preempts it at once (``preempt``),
    others flag the holder to check its own slice (``drop_request``), on arrival and at each
    timed wait of ``slice_us × 0.55`` × the number of waiters; a thread back from a quick
    blocking call may snatch the GIL back from the thread it named, and the yielder waits
    until the next thread runs when its slice is used up or that thread is more urgent.

    Args:
        slice_us: the time slice (µs of interpreter time; default 10 ms).
        deadline_factor: virtual deadline = now + slice × this (default 8).
        check_every: ticks between check points.
        python: whose measured costs the model's ticks take when a scenario gives no
            ``tick_ns`` (see :mod:`gilmodel.profiles`): a CPython version (``"2.7"``) or an
            interpreter's path; None: the running interpreter.
    """

    slice_us: int = 10_000
    deadline_factor: int = 8
    check_every: int = 1
    python: Optional[str] = None

    def __post_init__(self) -> None:
        _check_python("BfsGIL.python", self.python)
        check_int("BfsGIL.slice_us", self.slice_us, *LIMITS["interval_us"])
        check_int("BfsGIL.deadline_factor", self.deadline_factor, *LIMITS["deadline_factor"])
        check_int("BfsGIL.check_every", self.check_every, *LIMITS["check_period_ticks"])

    def to_spec(self) -> Dict[str, Any]:
        """The replica's configuration as the core reads it."""
        return _spec("bfs", self)


@dataclass(frozen=True)
class FifoGIL:
    """A fair ticket hand-off (a baseline, not a CPython design): waiters queue in arrival
    order and the GIL is handed straight to the head of the queue; the holder gives way at
    each check point where someone waits (once it has held ``min_hold_us``).

    Args:
        check_every: ticks between check points (default 100, 2.7's check interval).
        min_hold_us: the least a holder keeps the GIL before giving way (default 0).
        python: whose measured costs the model's ticks take when a scenario gives no
            ``tick_ns`` (see :mod:`gilmodel.profiles`): a CPython version (``"2.7"``) or an
            interpreter's path; None: the running interpreter.
    """

    check_every: int = 100
    min_hold_us: int = 0
    python: Optional[str] = None

    def __post_init__(self) -> None:
        _check_python("FifoGIL.python", self.python)
        check_int("FifoGIL.check_every", self.check_every, *LIMITS["check_period_ticks"])
        check_int("FifoGIL.min_hold_us", self.min_hold_us, *LIMITS["min_hold_us"])

    def to_spec(self) -> Dict[str, Any]:
        """The replica's configuration as the core reads it."""
        return _spec("fifo", self)


@dataclass(frozen=True)
class NoGIL:
    """No lock at all: the upper bound of throughput and lower bound of latency. Threads still
    log request/acquire/release around blocking calls, but their holding periods overlap, so
    hand-off metrics do not apply.

    Args:
        check_every: ticks between check points (where the stop flag is read).
        python: whose measured costs the model's ticks take when a scenario gives no
            ``tick_ns`` (see :mod:`gilmodel.profiles`): a CPython version (``"2.7"``) or an
            interpreter's path; None: the running interpreter.
    """

    check_every: int = 100
    python: Optional[str] = None

    def __post_init__(self) -> None:
        _check_python("NoGIL.python", self.python)
        check_int("NoGIL.check_every", self.check_every, *LIMITS["check_period_ticks"])

    def to_spec(self) -> Dict[str, Any]:
        """The replica's configuration as the core reads it."""
        return _spec("nogil", self)


Policy = Union[TickGIL, IntervalGIL, PriorityGIL, BfsGIL, FifoGIL, NoGIL]
#: Every policy class, by the name the core and ``meta["gil"]["policy"]`` use.
POLICIES = {"tick": TickGIL, "interval": IntervalGIL, "priority": PriorityGIL, "bfs": BfsGIL, "fifo": FifoGIL,
            "nogil": NoGIL}

_TICK_VERSIONS = ("2.7", "3.0", "3.1")
_INTERVAL_VERSIONS = tuple("3.%d" % m for m in range(2, 14))
#: Versions :func:`cpython` knows, plus ``"2.6-osx"`` (tick GIL on the mutex+condvar lock).
CPYTHON_VERSIONS = _TICK_VERSIONS + ("2.6-osx",) + _INTERVAL_VERSIONS


def gil_family(version: str) -> str:
    """The GIL design of a CPython version (``"3.11"``, ``"2.7.18"``, ``"2.6-osx"``), as
    :func:`cpython` builds it: ``"tick"`` for 2.x, 3.0 and 3.1, else ``"interval"`` (also for
    versions newer than :func:`cpython` knows)."""
    v = version.strip()
    return "tick" if v.startswith("2.") or ".".join(v.split(".")[:2]) in _TICK_VERSIONS else "interval"


def cpython(version: str, python: Optional[str] = None) -> Policy:
    """The GIL a CPython version uses, with that version's defaults.

    ``"2.7"``, ``"3.0"``, ``"3.1"``: :class:`TickGIL` on a semaphore (Linux builds);
    ``"2.6-osx"``: :class:`TickGIL` on mutex + condvar (OS X builds); ``"3.2"`` … ``"3.13"``:
    :class:`IntervalGIL` with a 5 ms interval, FORCE_SWITCHING and the drop-request check.
    A patch level (``"3.11.7"``) is accepted and ignored.

    The policy's ``python`` is the version, so a scenario without an explicit ``tick_ns``
    runs with that version's measured costs on this machine (:mod:`gilmodel.profiles`:
    measured once and cached; the shipped reference profile where the machine has no such
    interpreter; ``"2.6-osx"`` takes 2.7's). ``python``: the path of the interpreter whose
    costs to take instead (one that is not under pyenv or on ``PATH``).
    """
    _check_python("cpython.python", python)
    if not isinstance(version, str):
        raise TypeError("cpython(version): expected a string such as '3.11', got %r" % (version,))
    v = version.strip()
    if v != "2.6-osx":
        v = ".".join(v.split(".")[:2])
    if v in _TICK_VERSIONS:
        return TickGIL(check_interval=100, lock="sem", python=python or v)
    if v == "2.6-osx":
        return TickGIL(check_interval=100, lock="mutex_cond", python=python or "2.7")
    if v in _INTERVAL_VERSIONS:
        return IntervalGIL(interval_us=5000, force_switching=True, dedupe_drop_request=True, check_every=1,
                           python=python or v)
    raise ValueError("cpython(version): unknown version %r; known: %s" % (version, ", ".join(CPYTHON_VERSIONS)))


def resolve_gil(name: str) -> Policy:
    """The one way a GIL is named on a command line or in a list: a CPython version (``"2.7"``,
    ``"3.11"``, ``"2.6-osx"``: :func:`cpython`) or a policy name (``"priority"``: that policy
    with its defaults)."""
    if not isinstance(name, str):
        raise TypeError("gil: expected a CPython version or a policy name, got %r" % (name,))
    n = name.strip()
    if n in POLICIES:
        return POLICIES[n]()
    try:
        return cpython(n)
    except ValueError:
        raise ValueError("unknown GIL %r; expected a CPython version (%s) or a policy name (%s)"
                         % (name, ", ".join(CPYTHON_VERSIONS), ", ".join(POLICIES))) from None
