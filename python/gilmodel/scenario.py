"""Building scenarios: threads running small programs of ops under a GIL policy.

A :class:`Scenario` is a policy, a list of :class:`Thread` s, a core map and a stop rule. A
thread's program is a list of ops: :func:`cpu` (interpreter work), :func:`native` (C work
with the GIL released), :func:`held` (C work that keeps the GIL, with no check point),
:func:`sleep`, :func:`send`, :func:`recv` (real system calls with the GIL released),
:func:`join`, :func:`acquire` and :func:`release` (a ``threading.Lock`` of the scenario's
``locks``), :func:`put` and :func:`get` (a ``queue.Queue`` of its ``queues``), and :func:`loop`.
Constructors check their own arguments; :meth:`Scenario.validate` checks the
whole (cores, joins, stop rule) in the core, before any thread starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _core, profiles
from ._check import check_bool, check_choice, check_float, check_int, check_seq, check_str, show
from .policies import POLICIES, Policy

__all__ = [
    "Op", "Cpu", "Native", "Held", "Sleep", "Send", "Recv", "Write", "Join", "Acquire", "Release", "Put", "Get", "Loop",
    "NATIVE_CALLS",
    "cpu", "native", "held", "sleep", "send", "recv", "write", "join", "acquire", "release", "put", "get", "loop",
    "Queue",
    "Drain", "Driver", "drain", "driver",
    "Thread", "Scenario", "Signal", "signal", "SIGNALS",
    "DEFAULT_MAX_EVENTS", "DEFAULT_LOG_BYTES", "EVENT_BYTES",
    "WATCHDOG_MIN_S", "WATCHDOG_FACTOR", "OVERFLOW_POLICIES",
]

#: Bytes one event takes in a thread's buffer (t_ns 8, arg 8, cpu 2, event 1; the merged log
#: adds the 2-byte thread column).
EVENT_BYTES = _core.EVENT_BYTES
#: Memory the default event budget may take: 256 MiB (touched only as used).
DEFAULT_LOG_BYTES = _core.DEFAULT_LOG_BYTES
#: Default event budget of a run: ``DEFAULT_LOG_BYTES // EVENT_BYTES`` (14 128 181 events).
DEFAULT_MAX_EVENTS = _core.DEFAULT_MAX_EVENTS
#: The default watchdog is ``max(WATCHDOG_MIN_S, WATCHDOG_FACTOR * longest expected wait)``.
WATCHDOG_MIN_S = _core.WATCHDOG_MIN_S
WATCHDOG_FACTOR = _core.WATCHDOG_FACTOR
#: What a run does when a thread's share of ``max_events`` is full.
OVERFLOW_POLICIES = ("truncate", "error")
#: The core's ranges, name -> (lo, hi) (see ``_core.LIMITS``): every bound checked below.
_LIMITS = _core.LIMITS
_WATCHDOG_MIN_S, _WATCHDOG_MAX_S = _LIMITS["watchdog_s"]
#: Loops may nest this deep (the core's limit).
_MAX_LOOP_DEPTH = _LIMITS["loop_depth"][1]
#: Core numbers accepted here (Python's own bound: the core checks each core against this
#: process's affinity mask).
_CORE_RANGE = (0, 4095)


@dataclass(frozen=True)
class Cpu:
    """``ticks`` ticks of interpreter work, with a GIL check point per tick."""

    ticks: int

    def __post_init__(self) -> None:
        check_int("cpu.ticks", self.ticks, *_LIMITS["cpu_ticks"])

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "cpu", "ticks": self.ticks}


@dataclass(frozen=True)
class Native:
    """``ticks`` ticks of C work with the GIL released, on the thread's core (``hashlib`` over
    a big buffer, ``zlib``, a numpy kernel): released like a blocking call, spun outside the
    GIL, retaken. Logged ``io_begin``/``io_end`` with the op ``native``, or with ``call``'s
    (one of :data:`NATIVE_CALLS`): a replayed system call that returned at once, so ran on its
    CPU (:func:`gilmodel.scenario_from`), and counts in the I/O figures as that call. Its ticks
    are not the thread's ``ticks`` (those count work under the GIL)."""

    ticks: int
    call: Optional[str] = None

    def __post_init__(self) -> None:
        check_int("native.ticks", self.ticks, *_LIMITS["cpu_ticks"])
        if self.call is not None:
            check_choice("native.call", self.call, NATIVE_CALLS)

    def to_spec(self) -> Dict[str, Any]:
        spec: Dict[str, Any] = {"op": "native", "ticks": self.ticks}
        if self.call is not None:
            spec["call"] = self.call
        return spec


#: The system calls a :class:`Native` op may stand for (rust/scenario.rs ``CallKind``).
NATIVE_CALLS = ("send", "recv", "sleep", "lock", "write")


@dataclass(frozen=True)
class Held:
    """``ticks`` ticks of C work that keeps the GIL and reaches no check point (``sorted()`` of
    a big list, a long regex, an extension that does not release the GIL): other threads' drop
    requests wait for its end; the holder checks once after it, as the next bytecode would.
    Logged ``call_begin``/``call_end`` inside the thread's hold; its ticks count in the
    thread's ``ticks``."""

    ticks: int

    def __post_init__(self) -> None:
        check_int("held.ticks", self.ticks, *_LIMITS["cpu_ticks"])

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "held", "ticks": self.ticks}


@dataclass(frozen=True)
class Sleep:
    """``nanosleep`` of ``us`` microseconds with the GIL released (``time.sleep``)."""

    us: int

    def __post_init__(self) -> None:
        check_int("sleep.us", self.us, *_LIMITS["sleep_us"])

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "sleep", "us": self.us}


@dataclass(frozen=True)
class Send:
    """Send ``bytes`` to the thread's peer with the GIL released (``sock.sendall``)."""

    bytes: int

    def __post_init__(self) -> None:
        check_int("send.bytes", self.bytes, *_LIMITS["io_bytes"])

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "send", "bytes": self.bytes}


@dataclass(frozen=True)
class Write:
    """Write ``bytes`` to the thread's own scratch file with the GIL released, as
    ``FileIO.write``, ``os.write`` or a full ``BufferedWriter``'s flush do (a buffered
    ``f.write`` smaller than its buffer only copies, holding the GIL: that is :func:`cpu`
    work); with ``fsync``, ``fdatasync`` after it, as ``os.fdatasync`` would. One ``pwrite``
    after another into a file made for the run in the temporary directory and unlinked at
    once; they wrap to its start after 64 MiB (the largest write), so it takes up to that much
    of the temporary directory per writing thread (of memory, where that is a tmpfs). Logged ``io_begin``/``io_end`` with the op
    ``write`` (``io_end``'s arg: the bytes). A slow disk's ``fsync`` can take seconds: give
    the scenario a ``watchdog_s`` above it."""

    bytes: int
    fsync: bool = False

    def __post_init__(self) -> None:
        check_int("write.bytes", self.bytes, *_LIMITS["io_bytes"])
        if not isinstance(self.fsync, bool):
            raise TypeError("write.fsync: expected True or False, got %s" % show(self.fsync))

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "write", "bytes": self.bytes, "fsync": self.fsync}


@dataclass(frozen=True)
class Recv:
    """One ``recv`` of up to ``bytes`` with the GIL released; the peer closing the stream ends
    the thread's program."""

    bytes: int = 64

    def __post_init__(self) -> None:
        check_int("recv.bytes", self.bytes, *_LIMITS["io_bytes"])

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "recv", "bytes": self.bytes}


@dataclass(frozen=True)
class Join:
    """Wait, with the GIL released, until the named thread has finished."""

    thread: str

    def __post_init__(self) -> None:
        check_str("join.thread", self.thread)

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "join", "thread": self.thread}


@dataclass(frozen=True)
class Acquire:
    """``lock.acquire()`` of one of the scenario's ``locks``, as the policy's interpreter does
    it: 3.2+ tries first with the GIL held and releases the GIL only to wait (interruptibly);
    2.x always releases it around the wait (a free lock too). A wait is logged
    ``io_begin``/``io_end`` with the op ``lock``."""

    lock: str

    def __post_init__(self) -> None:
        check_str("acquire.lock", self.lock)

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "acquire", "lock": self.lock}


@dataclass(frozen=True)
class Release:
    """``lock.release()``, with the GIL held (the thread must have acquired it in its program)."""

    lock: str

    def __post_init__(self) -> None:
        check_str("release.lock", self.lock)

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "release", "lock": self.lock}


@dataclass(frozen=True)
class Put:
    """``q.put(item)`` on one of the scenario's ``queues``, as ``queue.Queue`` does it (its mutex,
    then, while a bounded queue is full, a wait on ``not_full``, logged as the I/O op ``put``).
    Logs a ``put`` event (arg: the queue's index)."""

    queue: str

    def __post_init__(self) -> None:
        check_str("put.queue", self.queue)

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "put", "queue": self.queue}


@dataclass(frozen=True)
class Get:
    """``q.get()``: while the queue is empty, a wait on ``not_empty`` (the I/O op ``get``).
    Logs a ``got`` event (arg: the queue's index); per queue the n-th ``got`` takes the n-th
    ``put``'s item."""

    queue: str

    def __post_init__(self) -> None:
        check_str("get.queue", self.queue)

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "get", "queue": self.queue}


@dataclass(frozen=True)
class Queue:
    """A ``queue.Queue(maxsize)`` of a scenario (``maxsize`` 0: unbounded)."""

    name: str
    maxsize: int = 0

    def __post_init__(self) -> None:
        check_str("Queue.name", self.name)
        check_int("Queue.maxsize", self.maxsize, *_LIMITS["queue_maxsize"])

    def to_spec(self) -> Dict[str, Any]:
        return {"name": self.name, "maxsize": self.maxsize}


@dataclass(frozen=True)
class Loop:
    """Repeat ``body`` ``times`` times, or until the run stops when ``times`` is None."""

    body: Tuple["Op", ...]
    times: Optional[int] = None

    def __post_init__(self) -> None:
        if self.times is not None:
            check_int("loop.times", self.times, *_LIMITS["loop_times"])
        object.__setattr__(self, "body", check_seq("loop.body", self.body))
        if not self.body:
            raise ValueError("loop.body: a loop needs at least one op")
        for i, op in enumerate(self.body):
            if not isinstance(op, _OPS):
                raise TypeError("loop.body[%d]: expected an op (%s), got %r" % (i, _OP_WORDS, op))
        if _nesting(self) > _MAX_LOOP_DEPTH:
            raise ValueError("loop.body: loops nest deeper than %d" % _MAX_LOOP_DEPTH)

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "loop", "times": self.times, "body": [o.to_spec() for o in self.body]}


@dataclass(frozen=True)
class _Hang:
    """TEST-ONLY, not part of the scenario language: do nothing, holding whatever the thread
    holds (the GIL), until the run is stopped. A real hang, to test the watchdog with."""

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "_hang"}


Op = Union[Cpu, Native, Held, Sleep, Send, Recv, Write, Join, Acquire, Release, Put, Get, Loop]
_OPS = (Cpu, Native, Held, Sleep, Send, Recv, Write, Join, Acquire, Release, Put, Get, Loop, _Hang)
_OP_WORDS = "cpu, native, held, sleep, send, recv, write, join, acquire, release, put, get, loop"


def _nesting(op: Op) -> int:
    """How many loops nest in ``op``, itself included (its body was checked: at most the limit)."""
    return 1 + max((_nesting(o) for o in op.body if isinstance(o, Loop)), default=0) if isinstance(op, Loop) else 0


def cpu(ticks: int) -> Cpu:
    """Interpreter work: ``ticks`` calibrated spins of the scenario's ``tick_ns``."""
    return Cpu(ticks)


def native(ticks: int, call: Optional[str] = None) -> Native:
    """C work with the GIL released: ``ticks`` calibrated spins on the thread's core, outside
    the GIL (a hash of a big buffer, compression, a numpy kernel); with ``call``, a system
    call that returned at once, logged as that call (:class:`Native`)."""
    return Native(ticks, call)


def held(ticks: int) -> Held:
    """C work that keeps the GIL: ``ticks`` calibrated spins with no check point (a long
    ``sorted()``, a regex, an extension that forgets to release the GIL)."""
    return Held(ticks)


def sleep(us: int) -> Sleep:
    """Sleep ``us`` microseconds with the GIL released."""
    return Sleep(us)


def send(nbytes: int) -> Send:
    """Send ``nbytes`` to the thread's peer with the GIL released."""
    return Send(nbytes)


def write(nbytes: int, fsync: bool = False) -> Write:
    """Write ``nbytes`` to the thread's scratch file with the GIL released, then
    ``fdatasync`` with ``fsync`` (:class:`Write`)."""
    return Write(nbytes, fsync)


def recv(nbytes: int = 64) -> Recv:
    """Receive up to ``nbytes`` from the thread's driver with the GIL released."""
    return Recv(nbytes)


def join(thread: str) -> Join:
    """Wait for the named thread to finish, with the GIL released."""
    return Join(thread)


def acquire(lock: str) -> Acquire:
    """``lock.acquire()`` of the scenario's lock ``lock`` (see :class:`Acquire`)."""
    return Acquire(lock)


def release(lock: str) -> Release:
    """``lock.release()`` of the scenario's lock ``lock``."""
    return Release(lock)


def put(queue: str) -> Put:
    """``q.put(item)`` on the scenario's queue ``queue`` (see :class:`Put`)."""
    return Put(queue)


def get(queue: str) -> Get:
    """``q.get()`` on the scenario's queue ``queue`` (see :class:`Get`)."""
    return Get(queue)


def loop(*body: Op, times: Optional[int] = None) -> Loop:
    """Repeat ``body`` ``times`` times (None: until the run stops)."""
    return Loop(tuple(body), times)


@dataclass(frozen=True)
class Drain:
    """A peer that reads and discards what the thread sends (a draining process), pinned to
    ``core`` or, when None, free to run on any of the scenario's cores."""

    core: Optional[int] = None

    def __post_init__(self) -> None:
        if self.core is not None:
            check_int("drain.core", self.core, *_CORE_RANGE)

    def to_spec(self) -> Dict[str, Any]:
        return {"kind": "drain", "core": self.core}


@dataclass(frozen=True)
class Driver:
    """A peer that sends ``nbytes`` every ``gap_us`` (``pings`` times, scheduled from the
    start), reads ``reply_bytes`` back after each and times the round trip, then closes. It is
    pinned to ``core`` or, when None, free to run on any of the scenario's cores. Before each
    ping it spins ``work_ticks`` of the scenario's ticks, inside the round trip: a client's own
    work per request (a Python client's around its ``sendall`` and ``recv``: ``validate``
    gives its model clients :attr:`gilmodel.profiles.Profile.client_work_ticks`)."""

    pings: int
    gap_us: int
    nbytes: int = 8
    reply_bytes: int = 8
    core: Optional[int] = None
    work_ticks: int = 0

    def __post_init__(self) -> None:
        check_int("driver.pings", self.pings, *_LIMITS["driver_pings"])
        check_int("driver.gap_us", self.gap_us, *_LIMITS["driver_gap_us"])
        check_int("driver.nbytes", self.nbytes, *_LIMITS["io_bytes"])
        check_int("driver.reply_bytes", self.reply_bytes, *_LIMITS["reply_bytes"])
        check_int("driver.work_ticks", self.work_ticks, *_LIMITS["driver_work_ticks"])
        if self.core is not None:
            check_int("driver.core", self.core, *_CORE_RANGE)

    def to_spec(self) -> Dict[str, Any]:
        return {"kind": "driver", "pings": self.pings, "gap_us": self.gap_us, "bytes": self.nbytes, "reply_bytes": self.reply_bytes,
                "core": self.core, "work_ticks": self.work_ticks}


Peer = Union[Drain, Driver]


def drain(core: Optional[int] = None) -> Drain:
    """A peer that reads and discards everything (pinned to ``core`` if given)."""
    return Drain(core)


def driver(pings: int, gap_us: int, nbytes: int = 8, reply_bytes: int = 8, core: Optional[int] = None,
           work_ticks: int = 0) -> Driver:
    """A peer that pings the thread at fixed gaps and times each reply (pinned to ``core`` if
    given), spinning ``work_ticks`` before each ping (:class:`Driver`)."""
    return Driver(pings, gap_us, nbytes, reply_bytes, core, work_ticks)


#: Signals a scenario may send, by name.
SIGNALS = {"SIGINT": 2, "SIGTERM": 15, "SIGHUP": 1, "SIGUSR1": 10, "SIGUSR2": 12, "SIGALRM": 14}


@dataclass(frozen=True)
class Signal:
    """A real signal sent (``pthread_kill``) to the scenario's main thread — its first thread —
    ``at_us`` after the start. A C-level handler only marks it pending, as CPython's does; the
    main thread runs ``handler`` (CPU work, the "Python-level handler") at its next check point
    with the GIL held. Under the tick GIL a ``join`` is not interruptible, so the handler waits
    for it, while the other threads check (and switch) at every tick; from 3.2 on the main
    thread leaves the ``join``, takes the GIL and runs the handler, then waits again.

    The host process's own handling of the signal is untouched: a signal that does not come
    from the run (a real Ctrl-C) is passed on to the handler installed before the run, and
    the previous disposition is restored when the run ends.
    """

    at_us: int
    signum: int = 2
    handler: Tuple[Cpu, ...] = ()

    def __init__(self, at_us: int, signum: Union[int, str] = "SIGINT", handler: Sequence[Cpu] = (Cpu(100),)):
        check_int("Signal.at_us", at_us, *_LIMITS["signal_at_us"])
        if isinstance(signum, str):
            if signum not in SIGNALS:
                raise ValueError("Signal.signum: %r; allowed: %s" % (signum, ", ".join(SIGNALS)))
            signum = SIGNALS[signum]
        check_int("Signal.signum", signum, 1, 64)
        if signum not in SIGNALS.values():
            raise ValueError("Signal.signum: %d; allowed: %s" % (signum, ", ".join("%s (%d)" % kv for kv in SIGNALS.items())))
        if isinstance(handler, Cpu):
            handler = (handler,)
        handler = check_seq("Signal.handler", handler)
        for i, op in enumerate(handler):
            if not isinstance(op, Cpu):
                raise TypeError("Signal.handler[%d]: a handler is CPU work only (cpu(ticks)), got %r" % (i, op))
        object.__setattr__(self, "at_us", at_us)
        object.__setattr__(self, "signum", signum)
        object.__setattr__(self, "handler", handler)

    def to_spec(self) -> Dict[str, Any]:
        return {"at_us": self.at_us, "signum": self.signum, "handler": [o.to_spec() for o in self.handler]}


def signal(at_us: int, signum: Union[int, str] = "SIGINT", handler: Sequence[Cpu] = (Cpu(100),)) -> Signal:
    """A signal to the main thread ``at_us`` after the start (see :class:`Signal`)."""
    return Signal(at_us, signum, handler)


@dataclass(frozen=True)
class Thread:
    """A scenario thread: a unique name, a program, an optional core, an optional peer, and
    ``start_us``: how long after the release of the threads it starts (logs ``start`` and asks
    for the GIL), as a thread a program starts later does; 0 (default): with the others."""

    name: str
    program: Tuple[Op, ...]
    core: Optional[int] = None
    peer: Optional[Peer] = None
    start_us: int = 0

    def __init__(self, name: str, program: Sequence[Op], core: Optional[int] = None, peer: Optional[Peer] = None,
                 start_us: int = 0):
        check_str("Thread.name", name)
        lo, hi = _LIMITS["thread_name_chars"]
        if not lo <= len(name) <= hi:
            raise ValueError("Thread.name: %r; a name of %d to %d characters is required" % (name, lo, hi))
        if isinstance(program, _OPS):
            program = (program,)
        program = check_seq("Thread(%r).program" % name, program)
        if not program:
            raise ValueError("Thread(%r).program: a thread needs at least one op" % name)
        for i, op in enumerate(program):
            if not isinstance(op, _OPS):
                raise TypeError("Thread(%r).program[%d]: expected an op, got %r" % (name, i, op))
        if core is not None:
            check_int("Thread(%r).core" % name, core, *_CORE_RANGE)
        if peer is not None and not isinstance(peer, (Drain, Driver)):
            raise TypeError("Thread(%r).peer: expected drain() or driver(...), got %r" % (name, peer))
        check_int("Thread(%r).start_us" % name, start_us, *_LIMITS["start_us"])
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "program", program)
        object.__setattr__(self, "core", core)
        object.__setattr__(self, "peer", peer)
        object.__setattr__(self, "start_us", start_us)

    def to_spec(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "program": [o.to_spec() for o in self.program],
            "core": self.core,
            "peer": None if self.peer is None else self.peer.to_spec(),
            "start_us": self.start_us,
        }


def _check_return_cost(points: Sequence[Sequence[float]]) -> Tuple[Tuple[float, float], ...]:
    """``Scenario.return_cost`` checked: at most 16 points ``(away_us, extra_ns)``, ``away_us``
    rising from above 0, ``extra_ns`` from 0 to 1 s."""
    pts = check_seq("Scenario.return_cost", points)
    if len(pts) > 16:
        raise ValueError("Scenario.return_cost: %d points; at most 16" % len(pts))
    out = []
    for i, pt in enumerate(pts):
        pt = check_seq("Scenario.return_cost[%d]" % i, pt)
        if len(pt) != 2:
            raise ValueError("Scenario.return_cost[%d]: expected (away_us, extra_ns), got %s" % (i, show(pt)))
        a = check_float("Scenario.return_cost[%d].away_us" % i, pt[0], 0.001, 1e9, lo_open=False)
        c = check_float("Scenario.return_cost[%d].extra_ns" % i, pt[1], 0.0, 1e9)
        if out and a <= out[-1][0]:
            raise ValueError("Scenario.return_cost[%d]: away_us %g must be above the point before's (%g)"
                             % (i, a, out[-1][0]))
        out.append((a, c))
    return tuple(out)


@dataclass(frozen=True)
class Scenario:
    """A complete experiment.

    Args:
        gil: the policy (:class:`TickGIL`, :class:`IntervalGIL`, ``cpython("3.11")``, or one of
            the proposed fixes: :class:`PriorityGIL`, :class:`BfsGIL`, :class:`FifoGIL`,
            :class:`NoGIL`).
        threads: the threads, in order (their index is the ``thread`` column of the log).
        cores: cores the threads may use (default: all this process may use); threads without
            an explicit core are placed round-robin over them.
        stop_thread: end the run when this thread finishes (the others stop at their next
            check point).
        duration_s: end the run after this many seconds at the latest.
        tick_ns: nanoseconds of work per tick. None (default): the measured cost of a tick of
            the interpreter the policy stands for, on this machine (:mod:`gilmodel.profiles`;
            ``cpython("2.7")`` takes 2.7's): the scenario is resolved when it runs (or by
            :meth:`resolved`), and ``run.meta["profile"]`` says which profile it took.
            An explicit value always wins (and no profile is used).
        log: record events (the per-thread counters are kept either way).
        max_events: the run's event budget (default :data:`DEFAULT_MAX_EVENTS`, 256 MiB at
            :data:`EVENT_BYTES` bytes an event), split evenly between the threads.
        on_overflow: what happens when a thread fills its share of ``max_events``:
            ``"truncate"`` (default) keeps each thread's first events, counts the rest and goes
            on (``meta["events_truncated"]``, ``meta["events_dropped"]``); ``"error"`` stops the
            run within 10 ms (unless it ends first) and :func:`gilmodel.run` raises
            :class:`gilmodel.EventBudgetError` with the partial run as ``.run``.
        watchdog_s: seconds without progress (no tick of work done, no op begun, no GIL
            acquired, by any thread) after which the run is stopped and
            :class:`gilmodel.WatchdogError` is raised, naming the GIL holder and what each
            thread waited on, with the partial run as ``.run``. None (default): ``max(5 s, 4 ×
            the longest expected wait)``, the longest wait being the scenario's longest
            ``sleep`` or thread ``start_us``, a driver's ``gap_us`` or the policy's interval (``interval_us``,
            ``slice_us``, ``min_hold_us``). It cannot be switched off; 86400 (a day) is the
            most. ``meta["watchdog_s"]`` has the value used.
        name: a label kept in ``meta``.
        signals: :func:`signal` s sent to the main thread (``threads[0]``) during the run.
        pin_threads: True (default): each thread is pinned to its one core, so every run
            places threads alike. False: every thread may run on any of ``cores`` and the OS
            scheduler places and moves it, as it does a real interpreter's unpinned threads
            (no thread may then name a core; ``run.threads``' ``core`` is -1 and its
            ``affinity`` column lists the cores, read back from the kernel).
        locks: names of the ``threading.Lock`` s the threads' :func:`acquire` / :func:`release`
            use.
        queues: the ``queue.Queue`` s the threads' :func:`put` / :func:`get` use: names
            (unbounded) or :class:`Queue` (name, maxsize). The core refuses, before any thread
            starts, a release without its acquire, a lock acquired twice, two threads taking
            two locks in opposite orders, a get that can never be satisfied, and a bounded
            queue filled beyond what is read; a deadlock at run time is stopped by the watchdog,
            naming the lock or queue each thread waits on. ``run.meta["locks"]`` and
            ``["queues"]`` count what each did.
        return_cost: what a thread back from a blocking op (``recv``, ``send``, ``sleep``,
            ``join``, a lock or queue wait, ``native``, ``write``) spins under the GIL before its
            next op, for the time since it released the GIL: points ``(away_us, extra_ns)``,
            linear between them from ``(0, 0)``, flat past the last. It stands for what a real
            interpreter pays coming back after time away and the model's threads do not (cold
            code and data: 50-76 µs after 10 ms on the 2-core VM,
            docs/validation/many-threads.md). None (default): the profile's
            (:attr:`gilmodel.profiles.Profile.return_cost`) when :meth:`resolved` takes
            ``tick_ns`` from one, else none; ``()``: none.
        profile: the calibration profile ``tick_ns`` came from (set by :meth:`resolved`;
            ``run.meta["profile"]`` records it); not compared, not sent to the core.

    Without ``stop_thread`` or ``duration_s`` the run ends when every thread has finished.
    """

    gil: Policy
    threads: Tuple[Thread, ...]
    cores: Optional[Tuple[int, ...]] = None
    stop_thread: Optional[str] = None
    duration_s: Optional[float] = None
    tick_ns: Optional[float] = None
    log: bool = True
    max_events: int = DEFAULT_MAX_EVENTS
    name: str = ""
    signals: Tuple[Signal, ...] = ()
    on_overflow: str = "truncate"
    watchdog_s: Optional[float] = None
    pin_threads: bool = True
    locks: Tuple[str, ...] = ()
    queues: Tuple[Queue, ...] = ()
    return_cost: Optional[Tuple[Tuple[float, float], ...]] = None
    #: The calibration profile :meth:`resolved` took its ``tick_ns`` from (None: explicit).
    profile: Optional[Any] = field(default=None, compare=False, repr=False)

    def __init__(
        self,
        gil: Policy,
        threads: Sequence[Thread],
        cores: Optional[Sequence[int]] = None,
        stop_thread: Optional[str] = None,
        duration_s: Optional[float] = None,
        tick_ns: Optional[float] = None,
        log: bool = True,
        max_events: int = DEFAULT_MAX_EVENTS,
        name: str = "",
        signals: Sequence[Signal] = (),
        on_overflow: str = "truncate",
        watchdog_s: Optional[float] = None,
        pin_threads: bool = True,
        locks: Sequence[str] = (),
        queues: Sequence[Union[str, Queue]] = (),
        return_cost: Optional[Sequence[Sequence[float]]] = None,
        profile: Optional[Any] = None,
    ):
        if not isinstance(gil, tuple(POLICIES.values())):
            raise TypeError("Scenario.gil: expected a policy (%s) or cpython(version), got %r"
                            % (", ".join(c.__name__ + "(...)" for c in POLICIES.values()), gil))
        threads = check_seq("Scenario.threads", threads) if not isinstance(threads, Thread) else (threads,)
        if not threads:
            raise ValueError("Scenario.threads: a scenario needs at least one thread")
        for i, t in enumerate(threads):
            if not isinstance(t, Thread):
                raise TypeError("Scenario.threads[%d]: expected a Thread, got %r" % (i, t))
        if cores is not None:
            if isinstance(cores, int):
                cores = (cores,)
            cores = check_seq("Scenario.cores", cores)
            if not cores:
                raise ValueError("Scenario.cores: an empty list; give None for all allowed cores")
            for c in cores:
                check_int("Scenario.cores", c, *_CORE_RANGE)
        if stop_thread is not None:
            check_str("Scenario.stop_thread", stop_thread)
        if duration_s is not None:
            duration_s = check_float("Scenario.duration_s", duration_s, *_LIMITS["stop_duration_s"], lo_open=True)
        if tick_ns is not None:
            tick_ns = check_float("Scenario.tick_ns", tick_ns, *_LIMITS["tick_ns"])
        check_bool("Scenario.log", log)
        check_bool("Scenario.pin_threads", pin_threads)
        if not pin_threads:
            for t in threads:
                if t.core is not None:
                    raise ValueError("Thread(%r).core: core %d given, but Scenario.pin_threads is False: unpinned threads "
                                     "run on any of the scenario's cores" % (t.name, t.core))
        check_int("Scenario.max_events", max_events, _LIMITS["max_events"][0])  # the most: the core's, per machine
        check_choice("Scenario.on_overflow", on_overflow, OVERFLOW_POLICIES)
        if watchdog_s is not None:
            if isinstance(watchdog_s, bool) or not isinstance(watchdog_s, (int, float)):
                raise TypeError("Scenario.watchdog_s: expected a number of seconds or None, got %s" % show(watchdog_s))
            if not _WATCHDOG_MIN_S <= watchdog_s <= _WATCHDOG_MAX_S:  # NaN and inf fail here too
                raise ValueError("Scenario.watchdog_s: %s is out of range; must be between %g and %g s, or None for the "
                                 "default (max(%g s, %g x the longest expected wait)); the watchdog cannot be switched off"
                                 % (show(watchdog_s), _WATCHDOG_MIN_S, _WATCHDOG_MAX_S, WATCHDOG_MIN_S, WATCHDOG_FACTOR))
            watchdog_s = float(watchdog_s)
        check_str("Scenario.name", name)
        signals = (signals,) if isinstance(signals, Signal) else check_seq("Scenario.signals", signals)
        for i, sg in enumerate(signals):
            if not isinstance(sg, Signal):
                raise TypeError("Scenario.signals[%d]: expected signal(...), got %r" % (i, sg))
        locks = (locks,) if isinstance(locks, str) else check_seq("Scenario.locks", locks)
        for i, lk in enumerate(locks):
            check_str("Scenario.locks[%d]" % i, lk)
        queues = (queues,) if isinstance(queues, (str, Queue)) else check_seq("Scenario.queues", queues)
        queues = tuple(Queue(q) if isinstance(q, str) else q for q in queues)
        for i, q in enumerate(queues):
            if not isinstance(q, Queue):
                raise TypeError("Scenario.queues[%d]: expected a name or Queue(name, maxsize), got %s" % (i, show(q)))
        if return_cost is not None:
            return_cost = _check_return_cost(return_cost)
        for k, v in dict(gil=gil, threads=threads, cores=cores, stop_thread=stop_thread, duration_s=duration_s,
                         tick_ns=tick_ns, log=log, max_events=max_events, name=name, signals=signals,
                         on_overflow=on_overflow, watchdog_s=watchdog_s, pin_threads=pin_threads,
                         locks=tuple(locks), queues=queues, return_cost=return_cost, profile=profile).items():
            object.__setattr__(self, k, v)

    def resolved(self, quiet: bool = False) -> "Scenario":
        """This scenario with its ``tick_ns`` filled in: itself when ``tick_ns`` was given,
        else a copy with the profile of :func:`gilmodel.profiles.for_policy` (measured once
        per machine and interpreter, then cached): its model tick as ``tick_ns``, the policy's
        check period adjusted where ticks are grouped (:meth:`Profile.adjust`), and the
        profile kept in :attr:`profile`, with its :attr:`return_cost` unless one was given."""
        if self.tick_ns is not None:
            return self
        prof = profiles.for_policy(self.gil, quiet=quiet)
        rc = self.return_cost if self.return_cost is not None else tuple(map(tuple, prof.return_cost or ()))
        return self.replace(gil=prof.adjust(self.gil), tick_ns=prof.model_tick_ns, profile=prof, return_cost=rc)

    def to_spec(self, resolve: bool = True) -> Dict[str, Any]:
        """The scenario as the core reads it (resolved first: :meth:`resolved`; with
        ``resolve=False`` an unresolved ``tick_ns`` is left at a placeholder of 50 ns, enough
        for the core to check everything else without measuring anything)."""
        if self.tick_ns is None and resolve:
            return self.resolved().to_spec()
        return {
            "name": self.name,
            "gil": self.gil.to_spec(),
            "threads": [t.to_spec() for t in self.threads],
            "cores": list(self.cores or ()),
            "stop": {"thread": self.stop_thread, "duration_s": self.duration_s},
            "tick_ns": 50.0 if self.tick_ns is None else self.tick_ns,
            "log": self.log,
            "max_events": self.max_events,
            "on_overflow": self.on_overflow,
            "watchdog_s": self.watchdog_s,
            "signals": [sg.to_spec() for sg in self.signals],
            "pin_threads": self.pin_threads,
            "locks": list(self.locks),
            "queues": [q.to_spec() for q in self.queues],
            # In the core's units: ns away, ticks of this scenario's tick.
            "return_cost": [[int(round(a * 1000)), int(round(c / (50.0 if self.tick_ns is None else self.tick_ns)))]
                            for a, c in self.return_cost or ()],
        }

    def to_json(self, resolve: bool = True) -> str:
        return json.dumps(self.to_spec(resolve))

    def validate(self) -> List[int]:
        """Check the whole scenario (cores against this process's affinity mask, join targets
        and cycles, stop rule, event budget) without running it or measuring a profile;
        returns each thread's core. Raises ValueError naming the field."""
        return list(_core.validate(self.to_json(resolve=False)))

    def replace(self, **changes: Any) -> "Scenario":
        """A copy with some fields changed."""
        kw = dict(gil=self.gil, threads=self.threads, cores=self.cores, stop_thread=self.stop_thread,
                  duration_s=self.duration_s, tick_ns=self.tick_ns, log=self.log, max_events=self.max_events, name=self.name,
                  signals=self.signals, on_overflow=self.on_overflow, watchdog_s=self.watchdog_s,
                  pin_threads=self.pin_threads, locks=self.locks, queues=self.queues, return_cost=self.return_cost,
                  profile=self.profile)
        if self.profile is not None and "profile" not in changes:
            # A resolved scenario: a new tick_ns is explicit; a new policy is resolved anew.
            if "tick_ns" in changes:
                kw["profile"] = None
            elif "gil" in changes:
                kw["tick_ns"] = kw["profile"] = None
        kw.update(changes)
        return Scenario(**kw)
