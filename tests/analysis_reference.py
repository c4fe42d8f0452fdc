"""The numpy implementation of gilmodel.analysis's tables as it was before the core's single
pass (gilmodel 9ddb53a, python/gilmodel/analysis.py): the tables the pass replaced, kept as the
reference the property test holds it to (tests/test_analysis_pass.py): same rows, same counts,
on any log. The finding of the rows is kept, and the gathers of the tables' columns from them;
the Arrow tables are made of the columns by gilmodel.analysis's own builders, and what the pass
did not replace (items) is imported."""

from typing import Tuple

import numpy as np
import pyarrow as pa

from gilmodel.analysis import _calls_table, _handoffs_table, _holds_table, _io_table, _waits_table
from gilmodel.eventlog import CODE, Log, decode, pairs

_Events = object


def neighbour(lg: Log, p: np.ndarray, step: int) -> np.ndarray:
    """The event code just before (step=-1) or after (step=+1) each position ``p`` of
    ``lg.order`` in the same thread; -1 where there is none."""
    q = p + step
    inside = (q >= 0) & (q < lg.order.size)
    out = np.full(p.size, -1, dtype=np.int16)
    qi = q[inside]
    out[inside] = np.where(lg.th_o[qi] == lg.th_o[p[inside]], lg.ev_o[qi], -1)
    return out


def by_time(n: int, rows: np.ndarray) -> np.ndarray:
    """The permutation that puts ``rows`` (distinct row indices of a log of ``n`` rows, e.g.
    per-thread runs) in increasing order, i.e. in time order: a mark-and-compress over the n
    rows, linear time."""
    idx = np.full(n, -1, dtype=np.int64)
    idx[rows] = np.arange(rows.size)
    return idx[idx >= 0]



def holds(events: _Events) -> pa.Table:
    """One row per GIL holding period: ``thread``, ``cpu`` (at the acquisition), ``start_ns``,
    ``end_ns``, ``dur_ns``, ``ticks`` (run while holding), ``ended_by`` (``poll``: a periodic
    release or a policy check; ``forced_drop``: a drop request; ``blocking``: a blocking call;
    ``exit``: the thread finished), ordered by start."""
    lg = decode(events)
    pa_, pr = pairs(lg, "acquire", "release")
    prev_ev = neighbour(lg, pr, -1)
    next_ev = neighbour(lg, pr, +1)
    acq, rel = lg.order[pa_], lg.order[pr]
    ended = np.zeros(rel.size, dtype=np.int8)  # poll
    ended[next_ev == CODE["io_begin"]] = 2
    ended[next_ev == CODE["exit"]] = 3
    ended[prev_ev == CODE["forced_drop"]] = 1
    s = by_time(lg.t.size, acq)
    acq, rel, ended = acq[s], rel[s], ended[s]
    return _holds_table({"thread": _thread(lg, acq), "cpu": lg.cpu[acq], "start_ns": lg.t[acq], "end_ns": lg.t[rel],
                         "dur_ns": lg.t[rel] - lg.t[acq], "ticks": lg.arg[rel], "ended": ended})


def _thread(lg: Log, rows: np.ndarray) -> np.ndarray:
    return lg.thread[rows].astype(np.uint16)


def _free_gaps(lg: Log) -> Tuple[np.ndarray, np.ndarray]:
    """Rows of each (release, acquire) consecutive in global order."""
    m = np.nonzero((lg.ev == CODE["acquire"]) | (lg.ev == CODE["release"]))[0]
    e = lg.ev[m]
    ok = (e[:-1] == CODE["release"]) & (e[1:] == CODE["acquire"])
    return m[:-1][ok], m[1:][ok]


def handoffs(events: _Events) -> pa.Table:
    """One row per change of holder: the GIL released by ``from_thread`` at ``release_ns`` and
    next acquired by another thread, ``to_thread``, at ``acquire_ns``; ``latency_ns`` between
    them; ``futile`` whether some waiter woke in between and found it taken (a
    ``futile_wakeup`` event in the interval)."""
    lg = decode(events)
    r, a = _free_gaps(lg)
    moved = lg.thread[r] != lg.thread[a]
    r, a = r[moved], a[moved]
    return _handoffs_table(lg, {"from_thread": _thread(lg, r), "to_thread": _thread(lg, a), "release_ns": lg.t[r],
                                "acquire_ns": lg.t[a], "latency_ns": lg.t[a] - lg.t[r]})


def waits(events: _Events) -> pa.Table:
    """One row per wait for the GIL: ``thread``, ``request_ns``, ``acquire_ns``, ``wait_ns``,
    ``timeouts`` (timed waits that ran out meanwhile), ``drop_requests`` (set by this waiter
    meanwhile), ``futile_wakeups`` (this waiter's, meanwhile)."""
    lg = decode(events)
    preq, pacq = pairs(lg, "request", "acquire")
    req, acq = lg.order[preq], lg.order[pacq]

    # Per thread, counts of an event kind between request and acquire: cumulative counts in
    # the thread-ordered sequence, differenced. Only the rare kinds are counted, so work on
    # their positions alone.
    def between(code: int, weighted: bool = False) -> np.ndarray:
        at = np.nonzero(lg.ev_o == code)[0]
        w = lg.arg[lg.order[at]] if weighted else np.ones(at.size, dtype=np.int64)
        c = np.concatenate([[0], np.cumsum(w)])
        return c[np.searchsorted(at, pacq)] - c[np.searchsorted(at, preq, side="right")]

    s = by_time(lg.t.size, req)
    req, acq, preq, pacq = req[s], acq[s], preq[s], pacq[s]
    return _waits_table({"thread": _thread(lg, req), "request_ns": lg.t[req], "acquire_ns": lg.t[acq],
                         "wait_ns": lg.t[acq] - lg.t[req], "timeouts": between(CODE["timeout"]).astype(np.uint32),
                         "drop_requests": between(CODE["drop_request"]).astype(np.uint32),
                         "futile_wakeups": np.maximum(between(CODE["futile_wakeup"], weighted=True), 0).astype(np.uint32)})


def _io_pairs(lg: Log) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of each blocking call's io_begin, io_end and the acquire after it, in per-thread
    order (calls whose thread never took the GIL again are left out)."""
    beg, end = (lg.order[p] for p in pairs(lg, "io_begin", "io_end"))
    end2, acq = (lg.order[p] for p in pairs(lg, "io_end", "acquire"))
    # io_end → request → acquire: pair each end with the next acquire of its thread (pairs
    # come in per-thread order; sort them by row to look them up).
    s2 = np.argsort(end2)
    end2, acq = end2[s2], acq[s2]
    keep = np.isin(end, end2)
    beg, end = beg[keep], end[keep]
    acq = acq[np.searchsorted(end2, end)] if end.size else end
    return beg, end, acq


def io_response(events: _Events) -> pa.Table:
    """One row per blocking call: ``thread``, ``op`` (send, recv, sleep, join, native: C work
    with the GIL released, lock: a wait for a taken lock, get/put: a queue's wait for an item
    or for room), ``bytes`` (0 for native work and waits),
    ``begin_ns``, ``end_ns`` (the system call returned), ``acquire_ns`` (the GIL was held
    again), ``call_ns`` and ``response_ns`` = acquire − end: the delay the GIL adds after the
    call (the convoy delay)."""
    lg = decode(events)
    beg, end, acq = _io_pairs(lg)
    s = by_time(lg.t.size, beg)
    beg, end, acq = beg[s], end[s], acq[s]
    return _io_table({"thread": _thread(lg, beg), "op": lg.arg[beg], "bytes": lg.arg[end], "begin_ns": lg.t[beg],
                      "end_ns": lg.t[end], "acquire_ns": lg.t[acq], "call_ns": lg.t[end] - lg.t[beg],
                      "response_ns": lg.t[acq] - lg.t[end]})


def calls(events: _Events) -> pa.Table:
    """One row per held call (a ``held`` op: C work that keeps the GIL with no check point):
    ``thread``, ``begin_ns``, ``end_ns`` (call_begin → call_end, inside one of the thread's
    holds), ``call_ns`` and ``ticks`` (done; fewer than asked when the run stopped during it)."""
    lg = decode(events)
    beg, end = (lg.order[p] for p in pairs(lg, "call_begin", "call_end"))
    s = by_time(lg.t.size, beg)
    beg, end = beg[s], end[s]
    return _calls_table({"thread": _thread(lg, beg), "begin_ns": lg.t[beg], "end_ns": lg.t[end],
                         "call_ns": lg.t[end] - lg.t[beg], "ticks": lg.arg[end]})


def idle_with_waiters_ns(lg: Log) -> int:
    r, a = _free_gaps(lg)
    r_t, a_t = lg.t[r], lg.t[a]
    if r_t.size == 0:
        return 0
    req_t = lg.t[lg.ev == CODE["request"]]
    acq_t = lg.t[lg.ev == CODE["acquire"]]
    waiting_at_release = np.searchsorted(req_t, r_t, side="right") - np.searchsorted(acq_t, r_t, side="right")
    first_req_after = req_t[np.minimum(np.searchsorted(req_t, r_t, side="right"), req_t.size - 1)]
    start = np.where(waiting_at_release > 0, r_t, np.minimum(first_req_after, a_t))
    return int(np.clip(a_t - start, 0, None).sum())
