"""What would another GIL do to my program: replay an observed real run under any GIL.

:func:`scenario_from` turns an observed run (:func:`gilmodel.observe`) into a
:class:`~gilmodel.Scenario` whose threads do what the real threads did, op for op;
:func:`whatif` observes a program (or takes a saved observation), replays it under the
interpreter's own GIL (the check: the replay must reproduce the observation) and under the
other policies and switch intervals, and returns the comparison as Arrow tables with a picture.

What a real thread's log becomes (docs/whatif.md says it with the evidence):

- **Interpreter work** (the GIL held): the hold's length in model ticks of the interpreter's
  calibrated profile (:mod:`gilmodel.profiles`), as ``cpu(ticks)``. Holds split only by the
  GIL's own switching (a drop request under 3.x; 2.x's periodic release and re-request within
  ``switch_gap_us``) are one piece of work, so another GIL may cut it elsewhere.
- **A long C call that keeps the GIL**: under 3.x, a hold that goes on more than
  ``held_late_us`` after a drop request asked it to end is ``held`` from that request to its
  end; under 2.x, a hold longer than ``held_2x_us`` (2.x releases every few microseconds
  otherwise).
- **Under 2.x, a hold not cut by the periodic release** (one observed hold between two
  releases that were not the GIL's own switching, e.g. an echo's between its calls) is
  ``held`` too: it ran fewer than the check interval's bytecodes, the rest C code.
- **A blocking call made with the GIL released** (observed system calls: reads, receives,
  polls, accepts → ``recv``; writes, sends, connects → ``send``; sleeps; futex waits → ``lock``:
  a lock, ``Condition``, queue or ``join``): replayed as its observed duration, ``sleep(us)``
  when the call itself lasted at least ``short_io_us``, else a ``native`` spin of that length
  logged as the call it was (a call that returned at once ran on its CPU). Under 3.x the C
  code of a voluntary release before its first call and after its last (7-8 µs a call under
  3.11 observed) is part of that duration: the replayed release lasts from the observed
  release to the next request, so a waiter has the same window to take the GIL in.
- **GIL-released time with no blocking call** (C code without the GIL, e.g. ``hashlib``):
  ``native(ticks)`` of its length.
- **Who woke whom**: a lock wait whose futex another replayed thread woke during it (the last
  such ``lock_wake``) is ``get`` of a queue ``wake:<waker>-><waiter>``, and the waker's program
  has a ``put`` of it where it woke it: the wait ends when the waker gets there, under every
  GIL (a consumer and its producer, ``start()`` and the new thread, ``join`` and its end).
- **A join**: an unpaired lock wait that began before another thread's last release of the GIL and
  ended within ``join_window_us`` of it (the nearest such thread, one that finished before the
  waiter) is ``join(that thread)``: it ends when that thread ends, under every GIL.
- **A thread's start**: its first request, after the program's first, as ``start_us``.

What is approximated: a system call other than a paired lock wait keeps its observed
duration under every GIL, so a ``recv`` whose data comes from a client that answers sooner
under a better GIL does not end sooner in the replay; a thread starts at its observed time,
not when its creator reaches the ``start()``. The replay's threads are not pinned and run on
the observed run's CPUs.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from . import profiles
from .eventlog import CODE, IO_OPS, decode
from .policies import BfsGIL, FifoGIL, IntervalGIL, NoGIL, Policy, PriorityGIL, TickGIL, cpython
from .run import Run, RunHalted, load_run, run as run_scenario
from .scenario import (
    _LIMITS, NATIVE_CALLS, Cpu, Get, Held, Join, Native, Op, Put, Scenario, Sleep, Thread, cpu, get, held, join, native,
    put, sleep,
)

__all__ = ["scenario_from", "Replay", "whatif", "WhatIf", "WhatIfError", "default_gils", "REPRODUCE_TOLERANCE"]

#: The replay under the program's own GIL must give elapsed time and each busy thread's hold
#: and wait totals within this fraction of the observation (``WhatIf.reproduces``).
REPRODUCE_TOLERANCE = 0.20
# The io ops that are waits for another thread: a lock (observed futex waits) and a join (a
# model run's own); rust/log.rs IoOp.
_WAITS = (IO_OPS.index("join"), IO_OPS.index("lock"))
# A model run's C work with the GIL released: native whatever its length.
_NATIVE = IO_OPS.index("native")
# An observed lock wait (a futex wait: rust/observe/probes.rs), and a marker of this module's
# for a put to make when the thread next holds the GIL.
_LOCK = IO_OPS.index("lock")
_PUT = -1

# A thread counts in the per-thread check when it held or waited at least this share of the
# run (a thread that did almost nothing has totals too small to compare).
_BUSY_SHARE = 0.02


def _call_of(op: int) -> str:
    """The call a replay's native spin stands for (scenario.NATIVE_CALLS): the observed op, or
    ``lock`` for a model run's waits for another thread (join, get, put)."""
    return IO_OPS[op] if IO_OPS[op] in NATIVE_CALLS else "lock"


class WhatIfError(ValueError):
    """The run cannot be replayed (partial, empty, too many threads, not an observed run of a
    known interpreter); the message says why and what to do."""


@dataclass(frozen=True)
class Replay:
    """An observed run as a scenario.

    Attributes:
        scenario: the replay under the interpreter's own GIL (explicit ``tick_ns``; the GIL
            adjusted to the profile's model tick, :meth:`Profile.adjust`).
        own: the interpreter's own GIL (``cpython(version)``).
        version: the interpreter's version (``"3.11.7"``).
        profile: the calibration profile whose model tick the ops are counted in.
        origin_ns: the observed time (ns) that is the replay's 0: the first request for the GIL.
        threads: one row per replayed thread: its name, ``start_us``, the observed time in
            holds (``hold_ns``), in held calls (``held_ns``), in 2.x holds not cut by the
            periodic release, replayed as held (``piece_ns``), in blocking calls, C work and the
            GIL's own switches (``blocking_ns``, ``native_ns``, ``switch_ns``), the ops it became by
            kind (``cpu_ops`` … ``put_ops``) and ``paired_waits``: its lock waits replayed as
            gets of the thread that woke them.
        notes: what the observation or the replay left out, or approximated beyond the above.
    """

    scenario: Scenario
    own: Policy
    version: str
    profile: Any
    origin_ns: int
    threads: pa.Table
    notes: Tuple[str, ...] = ()


def _interpreter_of(run: Run, gil: Optional[Policy]) -> Tuple[str, Policy]:
    g = run.meta.get("gil", {})
    if gil is not None:
        v = getattr(gil, "python", None) or profiles.default_version(gil)
        return v, gil
    v = g.get("interpreter")
    if g.get("policy") == "real" and v:
        return v, cpython(v)
    raise WhatIfError("scenario_from: this run is not an observation of a real CPython (meta['gil'] = %r); give gil= "
                      "(e.g. gm.cpython('3.11')) to replay a model run" % (g,))


def _check_complete(run: Run, partial: bool) -> List[str]:
    notes = []
    m = run.meta
    obs = m.get("observed", {})
    found = obs.get("notes") or {}  # what the observer's decoder counted
    lost = int(m.get("events_dropped", 0) or 0)
    why = []
    if lost:
        why.append("%d records were lost (the ring buffers overflowed: observe with a larger ring_pages)" % lost)
    if m.get("events_truncated"):
        why.append("the event budget cut it (observe with a larger max_events)")
    lost_returns = int(found.get("lost_returns", 0) or 0)
    if lost_returns:
        notes.append("%d takes of the GIL whose return the kernel did not report were left out by the observer" % lost_returns)
    if why:
        if not partial:
            raise WhatIfError("the observation is partial: %s. A replay built from it would be wrong without saying so; "
                              "observe again, or pass partial=True to replay what there is" % "; ".join(why))
        notes.append("partial observation, replayed as it is: " + "; ".join(why))
    if m.get("stopped_by") not in (None, "target_exited", "all_done", "thread"):
        notes.append("the observation ended by %s, not with the program: only what was observed is replayed" % m.get("stopped_by"))
    target = obs.get("target") or {}
    if target and target != {"exit_code": 0}:
        how = ", ".join("%s %s" % (k.replace("_", " "), v) for k, v in target.items())
        notes.append("the program did not exit cleanly (%s): the replay is of what it did until then" % how)
    started = int(found.get("processes_started", 0) or 0)
    others = int(found.get("other_process_records", 0) or 0)
    if started or others:
        notes.append("the program started %d other processes (fork, vfork, clone; %d of their records seen), not followed: "
                     "their work is not in the replay, only the time this process spent waiting for them" % (started, others))
    return notes


def scenario_from(run: Union[Run, str, os.PathLike], *, gil: Optional[Policy] = None, partial: bool = False,
                  short_io_us: float = 50.0, switch_gap_us: Optional[float] = None, held_late_us: float = 500.0,
                  held_2x_us: float = 1000.0, join_window_us: float = 2000.0, quiet: bool = False) -> Replay:
    """An observed run (or a saved one's path) as a :class:`Replay`: each real thread a program
    of the model's ops (see the module's doc for the rules and what they approximate).

    Args:
        gil: the GIL the program ran under; default: the observed interpreter's own
            (``meta["gil"]["interpreter"]``). Needed to replay a model run.
        partial: replay an observation that lost records or was cut by its event budget
            (refused by default; the replay's ``notes`` then say so).
        short_io_us: blocking calls shorter than this are replayed as a ``native`` spin
            rather than a ``sleep`` (a sleep's timer slack alone is ~50 µs).
        switch_gap_us: a release followed by the thread's next request within this, with no
            blocking call between, is the GIL's own switching (2.x's periodic release), not
            work outside the GIL; default 20 µs, 100 µs under 2.x (where the observer's probes
            make each periodic release take 10-20 µs: docs/whatif.md).
        held_late_us, held_2x_us: when a hold is a C call that keeps the GIL (see the
            module's doc).
        join_window_us: a lock wait that ends this near another thread's last release (and
            began before it) is a ``join`` of that thread.
        quiet: no notice when the interpreter's profile is measured.

    Raises:
        WhatIfError: a partial observation (without ``partial``), one with no GIL activity,
        more threads than a scenario may have, a model run without ``gil``.
    """
    if not isinstance(run, Run):
        run = load_run(run)
    version, own = _interpreter_of(run, gil)
    notes = _check_complete(run, partial)
    lg = decode(run.events)
    t, th, ev = lg.t, lg.thread, lg.ev
    req = np.flatnonzero(ev == CODE["request"])
    if not (ev == CODE["acquire"]).any():
        raise WhatIfError("the observed program never took the GIL (%d events): nothing to replay; did it exit at once?"
                          % t.size)
    names = list(run.threads.column("name").to_pylist())
    n_threads = len(names)
    lo, hi = _LIMITS["threads"]
    active = sorted(set(th[req].tolist()))
    if len(active) > hi:
        raise WhatIfError("the program ran %d threads that took the GIL; a scenario has at most %d, so it cannot be replayed"
                          % (len(active), hi))
    prof = profiles.for_version(".".join(version.split(".")[:2]), quiet=quiet)
    tick = prof.model_tick_ns
    origin = int(t[req[0]])
    # A drop request anywhere: the holder at that time was asked to drop.
    drops = np.sort(t[ev == CODE["drop_request"]])
    lock_flavour = isinstance(own, TickGIL)
    if switch_gap_us is None:
        switch_gap_us = 100.0 if lock_flavour else 20.0
    switch_gap_ns = switch_gap_us * 1e3
    to_ticks = lambda ns: max(1, int(round(ns / tick)))  # noqa: E731
    longest_us = _LIMITS["sleep_us"][1]

    def waited(ns: int, call: str) -> List[Op]:
        """A blocking call of ``ns`` replayed as its duration: sleeps (an hour at most each),
        or a native spin that stands for ``call`` when it is shorter than ``short_io_us``."""
        if ns < short_io_us * 1e3:
            return [native(to_ticks(ns), call)]
        us = max(1, int(round(ns / 1e3)))
        return [sleep(min(longest_us, us - k)) for k in range(0, us, longest_us)]

    # Replay names (unique, within the core's length) and each thread's rows, last release and
    # last event.
    most = _LIMITS["thread_name_chars"][1]
    names_of: Dict[int, str] = {}
    for i in active:
        name = (names[i] if i < n_threads else "thread-%d" % i)[:most]
        while name in names_of.values():
            name = name[:most - 8] + "-%d" % i
        names_of[i] = name
    rows_of = {i: np.flatnonzero(th == i) for i in active}
    last_release: Dict[int, int] = {}
    for i, r in rows_of.items():
        rel = r[ev[r] == CODE["release"]]
        if rel.size:
            last_release[i] = int(t[rel[-1]])
    last_event = {i: int(t[r[-1]]) for i, r in rows_of.items()}
    join_ns = join_window_us * 1e3

    # Who woke whom: a lock wait (its io_begin is followed by a lock_wait naming the futex) is
    # paired with the last lock_wake of that futex by another replayed thread between the wait's
    # begin and end. The last: a wake earlier in the wait woke another waiter of that futex, or
    # this one would have returned then. Each pair is a queue `wake:<waker>-><waiter>`: the
    # waker puts where it woke, the waiter gets where it waited.
    pair_of_wait: Dict[Tuple[int, int], Tuple[int, str]] = {}   # (waiter, wait's begin) -> pair
    pairs_of_wake: Dict[Tuple[int, int], List[Tuple[int, str]]] = {}  # (waker, wake's time) -> pairs
    last_wake: Dict[Tuple[int, int], int] = {}  # (waker, waiter) -> its last paired wake's time
    wk = np.flatnonzero((ev == CODE["lock_wake"]) & np.isin(th, active))
    by_addr: Dict[int, np.ndarray] = {}
    ends_of: Dict[int, np.ndarray] = {}  # each thread's io_end rows
    for a in np.unique(lg.arg[wk]):
        rws = wk[lg.arg[wk] == a]
        by_addr[int(a)] = rws[np.argsort(t[rws], kind="stable")]
    for k in np.flatnonzero(ev == CODE["lock_wait"]):
        i, tb, a = int(th[k]), int(t[k]), int(lg.arg[k])
        cand = by_addr.get(a)
        if cand is None or i not in rows_of:
            continue
        if i not in ends_of:
            r = rows_of[i]
            ends_of[i] = r[ev[r] == CODE["io_end"]]
        ends = ends_of[i]
        at = np.searchsorted(t[ends], tb, side="left")
        if at >= ends.size:
            continue
        te = int(t[ends[at]])
        lo_, hi_ = np.searchsorted(t[cand], tb, side="left"), np.searchsorted(t[cand], te, side="right")
        inside = cand[lo_:hi_]
        inside = inside[th[inside] != i]
        if not inside.size:
            continue
        w, tw = int(th[inside[-1]]), int(t[inside[-1]])
        pair = (len(pair_of_wait), "wake:%s->%s" % (names_of[w], names_of[i]))
        pair_of_wait[(i, tb)] = pair
        pairs_of_wake.setdefault((w, tw), []).append(pair)
        last_wake[(w, i)] = max(last_wake.get((w, i), -1), tw)

    def joined(i: int, begin: int, end: int) -> Optional[int]:
        """The thread an unpaired wait of thread ``i`` over [begin, end] was a join of: the one
        whose last release is nearest its end, within the window, and before ``i``'s last
        event (so two threads never join each other), and that ``i`` did not wake after the
        wait (it was not finished: it still waited for ``i``)."""
        best, gap = None, join_ns
        for j, r in last_release.items():
            if j != i and begin <= r <= end + join_ns and abs(end - r) <= gap and last_event[j] < last_event[i] \
                    and last_wake.get((i, j), -1) <= end:
                best, gap = j, abs(end - r)
        return best

    rows: Dict[str, List[Any]] = {k: [] for k in ("thread", "name", "start_us", "hold_ns", "held_ns", "piece_ns",
                                                   "blocking_ns", "native_ns", "switch_ns")}
    progs: Dict[int, List[Op]] = {}
    put_at: Dict[int, Tuple[int, int]] = {}       # pair -> (waker, op index) of its put
    get_at: Dict[int, Tuple[int, int, int]] = {}  # pair -> (waiter, op index, wait's ns) of its get
    for i in active:
        r = rows_of[i]
        tt, ee, aa = t[r], ev[r], lg.arg[r]
        prog: List[Op] = []
        counts = dict(hold_ns=0, held_ns=0, piece_ns=0, blocking_ns=0, native_ns=0, switch_ns=0)
        work = [0, 0]  # ns of work not yet emitted, and the observed holds (pieces) it spans

        def flush() -> None:
            # Under 2.x one piece of work, not cut by the GIL's periodic release, ran fewer than
            # its check interval of bytecodes: the rest of its length is C code (the socket
            # module's, the observer's probes), with no check point. As cpu(ticks) the model's
            # tick GIL would cut it every check interval of its own ticks, and each of those
            # releases costs the model time the real hold did not spend (docs/whatif.md).
            if work[0] > 0:
                whole = lock_flavour and work[1] == 1
                prog.append((held if whole else cpu)(to_ticks(work[0])))
                counts["piece_ns"] += work[0] if whole else 0
            work[0] = work[1] = 0

        def add_native(ns: int, call: Optional[str] = None) -> None:
            flush()
            prog.append(native(to_ticks(ns), call))
            counts["native_ns"] += ns

        def add_put(pair: Tuple[int, str]) -> None:
            put_at[pair[0]] = (i, len(prog))
            prog.append(put(pair[1]))

        # acq_t: the hold's start; seg_t: where the work not yet emitted begins (a wake inside
        # the hold splits it there).
        acq_t = seg_t = rel_t = dropped_at = None
        forced = False
        # What the thread did since its last release, in order: (begin, ns, op, pair or None),
        # op an IoOp code or _PUT (a put to make when it next holds the GIL).
        ios: List[Tuple[int, int, int, Optional[Tuple[int, str]]]] = []
        io_begin = io_op = None
        first_req = None

        def replay_ios(released: Optional[int], asked: int) -> None:
            """``ios`` as ops. With ``released`` (see the caller) the C code from it to the first
            call and from the last call to ``asked`` is part of those calls' GIL-released stretch."""
            calls = [k for k, x in enumerate(ios) if x[2] != _PUT]
            pre = post = 0
            if calls and released is not None:
                first, last = ios[calls[0]], ios[calls[-1]]
                pre, post = max(0, first[0] - released), max(0, asked - last[0] - last[1])
            for k, (b, d, op, pair) in enumerate(ios):
                flush()
                if op == _PUT:
                    add_put(pair)
                    continue
                counts["blocking_ns"] += d
                got = pair_of_wait.get((i, b)) if op == _LOCK else None
                j = joined(i, b, b + d) if op in _WAITS and got is None else None
                around = (pre if k == calls[0] else 0) + (post if k == calls[-1] else 0)
                if got is not None:
                    get_at[got[0]] = (i, len(prog), d)
                    prog.append(get(got[1]))
                elif j is not None:
                    prog.append(join(names_of[j]))
                elif d >= short_io_us * 1e3 and op != _NATIVE:
                    # Judged by the call alone: a short call with C code around it stays a
                    # spin, one that ran on its CPU.
                    prog.extend(waited(d + around, _call_of(op)))
                    counts["native_ns"] += around
                else:
                    counts["blocking_ns"] -= d
                    add_native(d + around, None if op == _NATIVE else _call_of(op))

        for k in range(tt.size):
            e, now = int(ee[k]), int(tt[k])
            if e == CODE["request"]:
                if first_req is None:
                    first_req = now
                if ios:
                    # The C code around the calls of a voluntary release (the socket module's,
                    # the lock's, the observer's probes: 7-8 µs a call under 3.11 observed)
                    # runs without the GIL and widens the window in which a waiter takes the
                    # GIL, so it is replayed with the calls it surrounds. After a forced drop
                    # that time is the FORCE_SWITCHING wait, which the replay's own GIL makes;
                    # under 2.x it is mostly the observer's probes, which the replay leaves out
                    # as it leaves out the periodic releases'.
                    replay_ios(None if forced or lock_flavour else rel_t, now)
                elif rel_t is not None:
                    gap = now - rel_t
                    if not forced and gap >= switch_gap_ns:
                        add_native(gap)
                    else:
                        counts["switch_ns"] += gap
                ios = []
            elif e == CODE["acquire"]:
                acq_t = seg_t = now
                dropped_at = None
            elif e == CODE["forced_drop"] and acq_t is not None and dropped_at is None:
                dropped_at = now  # a model run's own record of a forced drop
            elif e == CODE["release"] and acq_t is not None:
                hold = now - acq_t
                counts["hold_ns"] += hold
                j = np.searchsorted(drops, acq_t)
                first_drop = int(drops[j]) if j < drops.size and drops[j] <= now else dropped_at
                forced = first_drop is not None
                if forced and now - first_drop > held_late_us * 1e3:
                    work[0] += max(0, first_drop - seg_t)
                    work[1] += 1
                    flush()
                    prog.append(held(to_ticks(now - max(first_drop, seg_t))))
                    counts["held_ns"] += now - max(first_drop, seg_t)
                elif lock_flavour and hold > held_2x_us * 1e3:
                    flush()
                    prog.append(held(to_ticks(now - seg_t)))
                    counts["held_ns"] += now - seg_t
                else:
                    work[0] += now - seg_t
                    work[1] += 1
                acq_t = seg_t = None
                rel_t = now
            elif e == CODE["lock_wake"] and (i, now) in pairs_of_wake:
                for pair in pairs_of_wake.pop((i, now)):
                    if acq_t is not None:
                        # Woken inside a hold: the work before the wake, then the put.
                        work[0] += now - seg_t
                        work[1] += 1
                        seg_t = now
                        flush()
                        add_put(pair)
                    else:
                        ios.append((now, 0, _PUT, pair))  # put when it next holds the GIL
            elif e == CODE["io_begin"]:
                io_begin, io_op = now, int(aa[k])
            elif e == CODE["io_end"] and io_begin is not None:
                ios.append((io_begin, now - io_begin, io_op, None))
                io_begin = None
        flush()
        for b, d, op, pair in ios:  # puts still pending when the thread's log ended
            if op == _PUT:
                add_put(pair)
        if not prog:
            continue
        progs[i] = prog
        start_us = 0 if first_req is None else max(0, int(round((first_req - origin) / 1e3)))
        for k, v in dict(thread=i, name=names_of[i], start_us=start_us, **counts).items():
            rows[k].append(v)
    # A pair whose get or put did not make it into a program (the thread's log ended first)
    # is undone exactly: its get becomes the wait's duration (it would wait for ever), its put
    # goes (it would fill a queue nobody reads).
    dropped: Dict[int, set] = {}
    undo: Dict[int, Dict[int, List[Op]]] = {}
    for p_, (i, at, d) in get_at.items():
        if p_ not in put_at:
            undo.setdefault(i, {})[at] = waited(d, "lock")
    for p_, (i, at) in put_at.items():
        if p_ not in get_at:
            dropped.setdefault(i, set()).add(at)
    for i in set(undo) | set(dropped):
        ats, subs = dropped.get(i, set()), undo.get(i, {})
        merged: List[Op] = []
        for op in (x for k, op in enumerate(progs[i]) if k not in ats for x in subs.get(k, [op])):
            if isinstance(op, Cpu) and merged and isinstance(merged[-1], Cpu):
                merged[-1] = cpu(merged[-1].ticks + op.ticks)  # the work a dropped put split
            else:
                merged.append(op)
        progs[i] = merged or [cpu(1)]
    kinds = (("cpu_ops", Cpu), ("held_ops", Held), ("sleep_ops", Sleep), ("native_ops", Native), ("join_ops", Join),
             ("get_ops", Get), ("put_ops", Put))
    for name, kind in kinds:
        rows[name] = [sum(isinstance(op, kind) for op in progs[i]) for i in rows["thread"]]
    rows["paired_waits"] = [sum(1 for p_, (w, _, _) in get_at.items() if w == i and p_ in put_at) for i in rows["thread"]]
    queues = sorted({op.queue for prog in progs.values() for op in prog if isinstance(op, Get)})
    threads = [Thread(names_of[i], progs[i], start_us=rows["start_us"][k]) for k, i in enumerate(rows["thread"])]
    sw = int(np.sum(rows["switch_ns"]))
    if lock_flavour and sw:
        notes.append("2.x: the observer's probes fire at every periodic release, so the observed threads spent %.3f s "
                     "between a release and their next request; the replay leaves that time out (its own GIL switches "
                     "take what they take): it stands for the program unobserved, and its check compares hold totals "
                     "only" % (sw / 1e9))
    if len(threads) == 1:
        notes.append("one thread took the GIL: nothing contends for it, so every GIL replays alike")
    cores = sorted(set(int(c) for c in lg.cpu[lg.cpu >= 0].tolist()))
    allowed = sorted(os.sched_getaffinity(0))
    cores = [c for c in cores if c in allowed] or allowed
    try:
        sc = Scenario(prof.adjust(own), threads, cores=cores, pin_threads=False, tick_ns=tick, profile=prof, queues=queues,
                      name="replay of %s" % run.meta.get("scenario", "a run"))
    except ValueError as e:  # an op or a start beyond the core's limits (an hour's sleep)
        raise WhatIfError("the observation cannot be replayed: %s" % e) from None
    return Replay(sc, own, version, prof, origin, pa.table(rows), tuple(notes))


def default_gils(own: Policy) -> List[Tuple[str, Policy]]:
    """The GILs :func:`whatif` compares by default: the program's own, it with a shorter and a
    longer switch interval (2.x: check interval), and the proposed fixes with their defaults."""
    if isinstance(own, TickGIL):
        ci = own.check_interval
        out = [("own (check interval %d)" % ci, own),
               ("check interval %d" % max(1, ci // 10), dataclasses.replace(own, check_interval=max(1, ci // 10))),
               ("check interval %d" % (ci * 10), dataclasses.replace(own, check_interval=ci * 10)),
               ("interval (3.2+, 5 ms)", IntervalGIL())]
    else:
        us = getattr(own, "interval_us", 5000)
        out = [("own (%g ms)" % (us / 1e3), own)]
        for v in (1000, 200):
            if v != us:
                out.append(("interval %g ms" % (v / 1e3), dataclasses.replace(own, interval_us=v)))
    out += [("priority", PriorityGIL()), ("bfs", BfsGIL()), ("fifo", FifoGIL()), ("no GIL", NoGIL())]
    return out


def _figures(r: Run) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]:
    """Elapsed (the first request for the GIL to the last release), hand-offs/s, GIL
    utilisation, the GIL's delay after every blocking call (not ``native`` C work: a replay's
    spin that stands for a call is logged as that call); per thread: start, finish, hold and
    wait totals, that delay's quantiles and sum."""
    from . import analysis

    lg = decode(r.events)
    req = np.flatnonzero(lg.ev == CODE["request"])
    rel = np.flatnonzero(lg.ev == CODE["release"])
    t0 = int(lg.t[req[0]]) if req.size else 0
    t1 = int(lg.t[rel[-1]]) if rel.size else t0
    el = max(t1 - t0, 1)
    h, w, io = analysis.holds(r.events), analysis.waits(r.events), analysis.io_response(r.events)
    hd, hth = np.asarray(h.column("dur_ns")), np.asarray(h.column("thread"))
    wd, wth = np.asarray(w.column("wait_ns")), np.asarray(w.column("thread"))
    # Blocking calls only, the short ones too (the GIL's delay after a send that returned at
    # once is the convoy's): C work without the GIL is no call the program made.
    ops = io.column("op").combine_chunks()
    called = np.asarray(ops.indices) != ops.dictionary.to_pylist().index("native")
    resp, ith = np.asarray(io.column("response_ns"))[called], np.asarray(io.column("thread"))[called]

    def q(a: np.ndarray, p: float) -> float:
        return float(np.percentile(a, p)) / 1e6 if a.size else float("nan")

    nogil = r.meta.get("gil", {}).get("policy") == "nogil"
    run_fig = {"elapsed_s": el / 1e9, "handoffs_per_s": analysis.handoffs(r.events).num_rows / (el / 1e9),
               # Under no GIL holds overlap: no utilisation to speak of.
               "gil_utilisation": float("nan") if nogil else min(1.0, float(hd.sum()) / el),
               "io_p50_ms": q(resp, 50), "io_p99_ms": q(resp, 99), "io_calls": int(resp.size),
               "io_delay_s": float(resp.sum()) / 1e9}
    per: Dict[str, Dict[str, float]] = {}
    for i, n in enumerate(r.threads.column("name").to_pylist()):
        mine = lg.thread == i
        mq, mr = mine & (lg.ev == CODE["request"]), mine & (lg.ev == CODE["release"])
        if not mq.any():
            continue
        per[n] = {"start_s": (float(lg.t[mq][0]) - t0) / 1e9,
                  "finish_s": (float(lg.t[mr][-1]) - t0) / 1e9 if mr.any() else float("nan"),
                  "hold_s": float(hd[hth == i].sum()) / 1e9, "wait_s": float(wd[wth == i].sum()) / 1e9,
                  "io_p50_ms": q(resp[ith == i], 50), "io_p99_ms": q(resp[ith == i], 99),
                  "io_calls": float((ith == i).sum()), "io_delay_s": float(resp[ith == i].sum()) / 1e9}
    return run_fig, per


@dataclass
class WhatIf:
    """The answer of :func:`whatif`.

    Attributes:
        table: one row per GIL (the observation first, ``source`` = ``"real"``): ``gil``,
            ``source``, ``elapsed_s``, ``speedup`` (the own-GIL replay's elapsed over this
            row's), ``handoffs_per_s``, ``gil_utilisation``, ``io_p50_ms``, ``io_p99_ms``
            (the GIL's delay after a blocking call: acquire − the call's end, over every
            blocking call, those that returned at once too; not C work without the GIL),
            ``io_calls``, ``io_delay_s`` (those delays' sum: what the GIL cost the program's
            calls); medians over ``repeats``; ``failed``: its replays the watchdog stopped.
        threads: one row per GIL and thread: ``start_s``, ``finish_s``, ``hold_s``,
            ``wait_s``, ``io_p50_ms``, ``io_p99_ms``, ``io_calls``, ``io_delay_s`` (the delays'
            sum) (medians).
        reproduces: the own-GIL replay against the observation: ``ratios``: ``elapsed`` and,
            per busy thread, ``hold:<name>`` / ``wait:<name>`` as replay / real; ``ok`` when all
            are within :data:`REPRODUCE_TOLERANCE` (under 2.x the hold totals only:
            ``holds_only``). With more than one ``observations``: ``spread``, the same
            figures of each other observation over the first, per figure the one farthest
            from 1 (0.5 as far as 2); ``within_spread``, true when each judged figure of the
            replay is within the tolerance or no farther from 1 than the spread's (``None``
            with one observation).
        replay: the :class:`Replay` (the scenario, what was captured, the notes).
        observed: the observed run (the one replayed); runs: one replayed run per GIL (the
            last repeat that finished).
        failures: replays the watchdog or the event budget stopped (a GIL under which the
            replay hung), one line each; their rows count them in ``failed`` and have NaN
            figures when no repeat finished.
        also_observed: the other observations (``observations`` > 1), not replayed.
    """

    table: pa.Table
    threads: pa.Table
    reproduces: Dict[str, Any]
    replay: Replay
    observed: Run
    runs: Dict[str, Run] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)
    also_observed: List[Run] = field(default_factory=list)

    def best(self) -> str:
        """The GIL (other than the program's own) that answers blocking calls soonest (lowest
        ``io_p99_ms``) when the program makes any, else that finishes soonest."""
        rows = [r for r in self.table.to_pylist()[2:] if r["gil"] in self.runs]
        if not rows:
            return self.table.column("gil")[1].as_py()
        if any(r["io_calls"] for r in rows) and all(np.isfinite(r["io_p99_ms"]) for r in rows):
            return min(rows, key=lambda r: r["io_p99_ms"])["gil"]
        return min(rows, key=lambda r: r["elapsed_s"])["gil"]

    def plot(self, path: Union[str, os.PathLike], end_ms: Optional[float] = None) -> str:
        """The real timeline, the replay under the program's own GIL and under :meth:`best`,
        on one time axis (each aligned at the program's first thread start)."""
        from .plot import beside

        own = self.table.column("gil")[1].as_py()
        b = self.best()
        runs = [("real: %s" % self.observed.meta.get("scenario", ""), self.observed)]
        if own in self.runs:
            runs.append(("replay, %s" % own, self.runs[own]))
        if b != own and b in self.runs:
            runs.append(("replay, %s (best)" % b, self.runs[b]))
        if end_ms is None:
            end_ms = min(50.0, min(r.meta.get("elapsed_ns", 0) for _, r in runs) / 1e6)
        return beside(runs, path, 0.0, end_ms)

    def _per_thread(self, most: int = 12) -> List[str]:
        """Each thread's progress per GIL, as text: when it finished and how long it waited
        for the GIL; the ``most`` busiest threads of the observation (hold plus wait)."""
        gils = self.table.column("gil").to_pylist()
        by = {(r["gil"], r["thread"]): r for r in self.threads.to_pylist()}
        real = sorted((r for r in self.threads.to_pylist() if r["gil"] == "real"),
                      key=lambda r: -(r["hold_s"] + r["wait_s"]))
        widths = [max(9, len(g)) for g in gils]
        out: List[str] = []
        for key, title in (("finish_s", "each thread's finish, s after the program's first request for the GIL"),
                           ("wait_s", "each thread's wait for the GIL, s")):
            out += ["", title + ":", "%-24s %s" % ("thread", " ".join("%*s" % (w, g) for w, g in zip(widths, gils)))]
            for r in real[:most]:
                cells = [("%*.3f" % (w, by[g, r["thread"]][key])) if (g, r["thread"]) in by else "%*s" % (w, "-")
                         for w, g in zip(widths, gils)]
                out.append("%-24s %s" % (r["thread"][:24], " ".join(cells)))
        if len(real) > most:
            out.append("(%d more threads in WhatIf.threads and whatif_threads.parquet)" % (len(real) - most))
        return out

    def format(self) -> str:
        """The table as text, each thread's finish and wait per GIL, the reproduction check
        and the notes."""
        cols = [("gil", "%-24s"), ("elapsed_s", "%9.3f"), ("speedup", "%7.2f"), ("handoffs_per_s", "%10.0f"),
                ("gil_utilisation", "%6.2f"), ("io_p50_ms", "%9.3f"), ("io_p99_ms", "%9.3f"), ("io_delay_s", "%10.3f")]
        head = "%-24s %9s %7s %10s %6s %9s %9s %10s" % ("GIL", "elapsed_s", "speedup", "handoffs/s", "util", "io_p50_ms",
                                                          "io_p99_ms", "io_delay_s")
        lines = [head]
        for r in self.table.to_pylist():
            lines.append(" ".join(f % r[c] for c, f in cols))
        lines += self._per_thread()
        rp = self.reproduces
        lines.append("")
        tol = "±%d %%%s" % (REPRODUCE_TOLERANCE * 100, " in hold totals (2.x)" if rp.get("holds_only") else "")
        lines.append("replay under the own GIL / real: " + ", ".join("%s %.2f" % (k, v) for k, v in rp["ratios"].items())
                     + ("  (within %s)" % tol if rp["ok"]
                        else "  (NOT within %s: the table's alternatives inherit the error)" % tol))
        n = rp.get("observations", 1)
        if n > 1:
            lines.append("the program's own spread, the other %d observation%s / the first, the farthest: %s" % (
                n - 1, "s" if n > 2 else "", ", ".join("%s %.2f" % kv for kv in rp["spread"].items())))
            if not rp["ok"]:
                lines.append("  the replay is %s the real runs' spread where it misses %s" % (
                    "within" if rp["within_spread"] else "NOT within", tol))
        elif not rp["ok"]:
            lines.append("  (observe it more than once, observations=3 or --observations 3, to see how much its own "
                         "runs differ: a total of a few switch intervals varies 2x between real runs)")
        for n in self.replay.notes:
            lines.append("note: " + n)
        for f in self.failures:
            lines.append("failed: " + f)
        return "\n".join(lines)


def _median_rows(rows: List[Dict[str, float]]) -> Dict[str, float]:
    return {k: float(np.nanmedian([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else float("nan")
            for k in rows[0]}


def whatif(command: Optional[Sequence[str]] = None, *,
           run: Union[Run, str, os.PathLike, Sequence[Union[Run, str, os.PathLike]], None] = None,
           gils: Optional[Sequence[Tuple[str, Policy]]] = None, repeats: int = 3, observations: int = 1,
           cpus: Optional[Sequence[int]] = None, partial: bool = False, progress: bool = True, quiet: bool = False,
           stdout: Optional[str] = None, **rules: float) -> WhatIf:
    """Observe ``command`` (``["python3", "app.py", ...]``; needs root and uprobes, see
    :func:`gilmodel.observe`), or take an observed ``run`` (or its Parquet path), and replay it
    under its own GIL and under ``gils`` (default :func:`default_gils`).

    Args:
        run: an observed run, its Parquet path, or a list of them (observations of the same
            program: the first is replayed, the others are its spread, as ``observations``).
        gils: ``(label, policy)`` pairs to compare (the own GIL is always first).
        repeats: replays per GIL; the table has medians.
        observations: observe ``command`` this many times; the first observation is replayed,
            the others measure how much the program's own runs differ
            (``WhatIf.reproduces["spread"]``, ``["within_spread"]``).
        cpus: the CPUs the command runs on (and so the replays).
        stdout: a file for the command's standard output (default: this process's).
        partial: replay an observation that lost records (see :func:`scenario_from`).
        progress: a progress bar on stderr.
        rules: :func:`scenario_from`'s thresholds (``short_io_us`` …).

    Returns:
        A :class:`WhatIf`.
    """
    from .observe import observe

    if (command is None) == (run is None):
        raise WhatIfError("whatif: give a command to observe or an observed run (one of them, not both)")
    for name, v in (("repeats", repeats), ("observations", observations)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise WhatIfError("whatif: %s must be an integer >= 1, got %r" % (name, v))
    if cpus is not None and command is None:
        raise WhatIfError("whatif: cpus is for a launched command (a saved observation replays on the CPUs it ran on)")
    if command is not None:
        seen = []
        for k in range(observations):
            if progress and observations > 1:
                print("whatif: observation %d of %d" % (k + 1, observations), file=sys.stderr, flush=True)
            seen.append(observe(list(command), cpus=cpus, stdout=stdout))
    else:
        if observations != 1:
            raise WhatIfError("whatif: observations is for a launched command; to give a saved program's spread, pass "
                              "run= a list of its observations")
        many = isinstance(run, (list, tuple))
        if many and not run:
            raise WhatIfError("whatif: run= is an empty list: give at least one observation")
        seen = [r if isinstance(r, Run) else load_run(r) for r in (run if many else [run])]
    observed = seen[0]
    rp = scenario_from(observed, partial=partial, quiet=quiet, **rules)
    for k, o in enumerate(seen[1:], 2):
        ov, _ = _interpreter_of(o, None)
        if ov != rp.version:
            raise WhatIfError("whatif: observation %d ran CPython %s, the first %s: the spread is of one program on one "
                              "interpreter" % (k, ov, rp.version))
        _check_complete(o, partial)
    own_label = default_gils(rp.own)[0][0]
    todo: List[Tuple[str, Policy]] = [(own_label, rp.scenario.gil)]
    for label, g in (default_gils(rp.own)[1:] if gils is None else gils):
        if label == own_label or label == "real":
            raise WhatIfError("whatif: the label %r is taken (the observation and the own GIL's replay)" % label)
        todo.append((label, rp.profile.adjust(g)))
    from tqdm import tqdm

    bar = tqdm(total=len(todo) * repeats, disable=not progress, unit="replay", file=sys.stderr, dynamic_ncols=True)
    real_fig, real_per = _figures(observed)
    others = [_figures(o) for o in seen[1:]]
    table = [dict(gil="real", source="real", failed=0, **real_fig)]
    failures: List[str] = []
    per_rows = [dict(gil="real", thread=n, **v) for n, v in real_per.items()]
    runs: Dict[str, Run] = {}
    try:
        for label, g in todo:
            bar.set_description(label)
            sc = rp.scenario.replace(gil=g, tick_ns=rp.scenario.tick_ns, profile=rp.profile)
            figs, pers = [], []
            for _ in range(repeats):
                bar.update(1)
                try:
                    r = run_scenario(sc)
                except RunHalted as e:
                    # A replay that hung (the watchdog) or overflowed: said, not hidden.
                    failures.append("%s: %s" % (label, str(e).splitlines()[0]))
                    continue
                f, p = _figures(r)
                figs.append(f)
                pers.append(p)
                runs[label] = r
            failed = repeats - len(figs)
            if not figs:
                figs, pers = [{k: float("nan") for k in real_fig}], [{}]
            table.append(dict(gil=label, source="model", failed=failed, **_median_rows(figs)))
            for n in pers[0]:
                per_rows.append(dict(gil=label, thread=n, **_median_rows([p[n] for p in pers if n in p])))
    finally:
        bar.close()
    own_el = table[1]["elapsed_s"]
    for row in table:
        row["speedup"] = own_el / row["elapsed_s"] if row["elapsed_s"] > 0 else float("nan")
    order = ["gil", "source", "elapsed_s", "speedup", "handoffs_per_s", "gil_utilisation", "io_p50_ms", "io_p99_ms",
             "io_calls", "io_delay_s", "failed"]
    tab = pa.table({k: [r[k] for r in table] for k in order})
    thr = pa.table({k: [r[k] for r in per_rows] for k in ("gil", "thread", "start_s", "finish_s", "hold_s", "wait_s",
                                                           "io_p50_ms", "io_p99_ms", "io_calls", "io_delay_s")})
    mine = (table[1], {r["thread"]: r for r in per_rows if r["gil"] == own_label})
    check = _reproduction((real_fig, real_per), mine, others, holds_only=isinstance(rp.own, TickGIL))
    return WhatIf(tab, thr, check, rp, observed, runs, failures, seen[1:])


def _ratios(base: Tuple[Dict[str, float], Dict[str, Dict[str, float]]],
            other: Tuple[Dict[str, float], Dict[str, Dict[str, float]]]) -> Dict[str, float]:
    """``other``'s elapsed time and per-thread hold and wait totals over ``base``'s, for the
    threads busy in ``base`` (at least ``_BUSY_SHARE`` of all its threads' hold and wait)."""
    (fig, per), (ofig, oper) = base, other
    ratios = {"elapsed": ofig["elapsed_s"] / fig["elapsed_s"]}
    total = sum(r["hold_s"] + r["wait_s"] for r in per.values()) or 1.0
    for n, r in per.items():
        if n not in oper:
            continue
        for k in ("hold", "wait"):
            if r[k + "_s"] >= _BUSY_SHARE * total:
                ratios["%s:%s" % (k, n)] = oper[n][k + "_s"] / r[k + "_s"]
    return ratios


def _off(x: float) -> float:
    """How far a ratio is from 1, the same either way (0.5 is as far as 2)."""
    return max(x, 1.0 / x) if x > 0 else float("inf")


def _reproduction(real: Tuple[Dict[str, float], Dict[str, Dict[str, float]]],
                  mine: Tuple[Dict[str, float], Dict[str, Dict[str, float]]],
                  others: Sequence[Tuple[Dict[str, float], Dict[str, Dict[str, float]]]] = (),
                  holds_only: bool = False) -> Dict[str, Any]:
    """The own-GIL replay ``mine`` over the observation ``real``; ``others``: more
    observations of the program, each over ``real`` too (``spread``: per figure the one
    farthest from 1); ``holds_only`` (2.x): only hold totals are judged (the observer slows
    2.x's switches, see :func:`scenario_from`'s notes)."""
    ratios = _ratios(real, mine)
    judged = {k: v for k, v in ratios.items() if not holds_only or k.startswith("hold:")}
    ok = all(abs(v - 1.0) <= REPRODUCE_TOLERANCE for v in judged.values())
    spread: Dict[str, float] = {}
    for o in others:
        for k, v in _ratios(real, o).items():
            if k in judged and (k not in spread or _off(v) > _off(spread[k])):
                spread[k] = v
    # A figure the replay misses by more than the tolerance is still "within the spread" when
    # another real run of the program missed it by as much (a total of a few switch intervals
    # is a draw of the kernel's wake-ups: docs/whatif.md).
    within = None
    if others:
        within = all(abs(v - 1.0) <= REPRODUCE_TOLERANCE or (k in spread and _off(v) <= _off(spread[k]))
                     for k, v in judged.items())
    return {"ratios": ratios, "ok": ok, "tolerance": REPRODUCE_TOLERANCE, "holds_only": holds_only,
            "observations": 1 + len(others), "spread": spread, "within_spread": within}
