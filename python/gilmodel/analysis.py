"""Analysis of an event log: holding periods, hand-offs, waits, I/O response, held calls,
queue items, and a summary.

Every table's columns come from one pass of the core over the log (rust/analysis.rs, cached on
the decoded log: :attr:`gilmodel.eventlog.Log.tables`), and become Arrow columns without a copy;
no per-row Python loop. Every function takes
the ``events`` table of a run (any table with its schema: ``t_ns``, ``thread``, ``cpu``,
``event``, ``arg``, in time order), or that table already decoded by
:func:`gilmodel.eventlog.decode` (to decode it once for several of them). Results are Arrow
tables, or a dict for :func:`summary`.

Pairing (as :func:`gilmodel.eventlog.pairs` does it) relies on the log's invariants: per thread,
``request`` → ``acquire`` → ``release`` repeat in that order; globally at most one thread
holds the GIL. Pairs cut off by the end of the log (a truncated run, a thread stopped while
waiting) are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Union

import numpy as np
import pyarrow as pa

from .eventlog import CODE, IO_OPS, Log, decode

if TYPE_CHECKING:
    from .run import Run

__all__ = ["holds", "handoffs", "waits", "io_response", "calls", "items", "summary", "HOLD_ENDS", "IO_OPS"]

#: How a holding period ended (the ``ended_by`` column of :func:`holds`).
HOLD_ENDS = ("poll", "forced_drop", "blocking", "exit")
_Events = Union[pa.Table, Log]  # a table, or the Log decoded from it


def holds(events: _Events) -> pa.Table:
    """One row per GIL holding period: ``thread``, ``cpu`` (at the acquisition), ``start_ns``,
    ``end_ns``, ``dur_ns``, ``ticks`` (run while holding), ``ended_by`` (``poll``: a periodic
    release or a policy check; ``forced_drop``: a drop request; ``blocking``: a blocking call;
    ``exit``: the thread finished), ordered by start."""
    return _holds_table(decode(events).tables["holds"])


# The tables from their columns (the core's pass writes them: rust/analysis.rs; the numpy
# reference the tests hold the pass to gathers them from the rows it finds,
# tests/analysis_reference.py). Columns are numpy arrays of the pass's types.
Columns = Dict[str, np.ndarray]


def _holds_table(c: Columns) -> pa.Table:
    cols = {k: pa.array(c[k]) for k in ("thread", "cpu", "start_ns", "end_ns", "dur_ns", "ticks")}
    cols["ended_by"] = pa.DictionaryArray.from_arrays(pa.array(c["ended"]), pa.array(HOLD_ENDS))
    return pa.table(cols)


def _count_between(times: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many of the sorted ``times`` fall in (lo, hi]."""
    return np.searchsorted(times, hi, side="right") - np.searchsorted(times, lo, side="right")


def handoffs(events: _Events) -> pa.Table:
    """One row per change of holder: the GIL released by ``from_thread`` at ``release_ns`` and
    next acquired by another thread, ``to_thread``, at ``acquire_ns``; ``latency_ns`` between
    them; ``futile`` whether some waiter woke in between and found it taken (a
    ``futile_wakeup`` event in the interval)."""
    lg = decode(events)
    return _handoffs_table(lg, lg.tables["handoffs"])


def _futile(lg: Log, c: Columns) -> np.ndarray:
    """Whether a ``futile_wakeup`` event fell in each hand-off's (release, acquire]."""
    fut = np.sort(lg.t[lg.ev == CODE["futile_wakeup"]])
    return _count_between(fut, c["release_ns"], c["acquire_ns"]) > 0


def _handoffs_table(lg: Log, c: Columns) -> pa.Table:
    cols = {k: pa.array(c[k]) for k in ("from_thread", "to_thread", "release_ns", "acquire_ns", "latency_ns")}
    cols["futile"] = pa.array(_futile(lg, c))
    return pa.table(cols)


def waits(events: _Events) -> pa.Table:
    """One row per wait for the GIL: ``thread``, ``request_ns``, ``acquire_ns``, ``wait_ns``,
    ``timeouts`` (timed waits that ran out meanwhile), ``drop_requests`` (set by this waiter
    meanwhile), ``futile_wakeups`` (this waiter's, meanwhile); the three counts are uint32."""
    return _waits_table(decode(events).tables["waits"])


def _waits_table(c: Columns) -> pa.Table:
    return pa.table({k: pa.array(c[k]) for k in ("thread", "request_ns", "acquire_ns", "wait_ns", "timeouts",
                                                  "drop_requests", "futile_wakeups")})


def io_response(events: _Events) -> pa.Table:
    """One row per blocking call: ``thread``, ``op`` (send, recv, sleep, join, native: C work
    with the GIL released, lock: a lock acquired with the GIL released (3.2+: a wait for a
    taken lock; 2.x: every acquire; observed: any futex wait, rust/log.rs ``IoOp::Lock``), get/put: a queue's wait for an item or for room, write: to the thread's scratch file), ``bytes`` (0 for native work and waits),
    ``begin_ns``, ``end_ns`` (the system call returned), ``acquire_ns`` (the GIL was held
    again), ``call_ns`` and ``response_ns`` = acquire − end: the delay the GIL adds after the
    call (the convoy delay)."""
    return _io_table(decode(events).tables["io"])


def _io_table(c: Columns) -> pa.Table:
    ops = np.clip(c["op"], 0, len(IO_OPS) - 1).astype(np.int8)
    cols = {"thread": pa.array(c["thread"]),
            "op": pa.DictionaryArray.from_arrays(pa.array(ops), pa.array(IO_OPS))}
    cols.update({k: pa.array(c[k]) for k in ("bytes", "begin_ns", "end_ns", "acquire_ns", "call_ns", "response_ns")})
    return pa.table(cols)


def calls(events: _Events) -> pa.Table:
    """One row per held call (a ``held`` op: C work that keeps the GIL with no check point):
    ``thread``, ``begin_ns``, ``end_ns`` (call_begin → call_end, inside one of the thread's
    holds), ``call_ns`` and ``ticks`` (done; fewer than asked when the run stopped during it)."""
    return _calls_table(decode(events).tables["calls"])


def _calls_table(c: Columns) -> pa.Table:
    return pa.table({k: pa.array(c[k]) for k in ("thread", "begin_ns", "end_ns", "call_ns", "ticks")})


def items(events: _Events) -> pa.Table:
    """One row per queue item taken out (a ``get`` op): ``queue`` (its index in the scenario's
    ``queues``), ``producer`` and ``consumer`` (threads), ``put_ns``, ``got_ns`` and
    ``latency_ns`` (put → got: time in the queue), ordered by ``got_ns``. Per queue the n-th
    ``got`` takes the n-th ``put``'s item (``put``/``got`` are logged inside the queue's mutex);
    items still in the queue at the end are left out. A run whose log was truncated
    (``meta["events_truncated"]``) can pair the wrong items."""
    lg = decode(events)
    put = np.flatnonzero(lg.ev == CODE["put"])
    got = np.flatnonzero(lg.ev == CODE["got"])
    pi, gi = [], []
    for q in np.union1d(lg.arg[put], lg.arg[got]):
        p, g = put[lg.arg[put] == q], got[lg.arg[got] == q]
        k = min(p.size, g.size)
        pi.append(p[:k])
        gi.append(g[:k])
    p = np.concatenate(pi) if pi else np.zeros(0, dtype=np.int64)
    g = np.concatenate(gi) if gi else np.zeros(0, dtype=np.int64)
    s = np.argsort(g, kind="stable")
    p, g = p[s], g[s]
    return pa.table({
        "queue": pa.array(lg.arg[g].astype(np.uint32)),
        "producer": pa.array(lg.thread[p].astype(np.uint16, copy=False)),
        "consumer": pa.array(lg.thread[g].astype(np.uint16, copy=False)),
        "put_ns": pa.array(lg.t[p]),
        "got_ns": pa.array(lg.t[g]),
        "latency_ns": pa.array(lg.t[g] - lg.t[p]),
    })


def _quantiles(x: np.ndarray, prefix: str, scale: float = 1e6, unit: str = "ms") -> Dict[str, float]:
    if x.size == 0:
        return {}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"%s_p50_%s" % (prefix, unit): float(p50) / scale, "%s_p90_%s" % (prefix, unit): float(p90) / scale,
            "%s_p99_%s" % (prefix, unit): float(p99) / scale, "%s_max_%s" % (prefix, unit): float(x.max()) / scale}


def _idle_with_waiters_ns(lg: Log) -> int:
    """Time the GIL was free while at least one thread waited for it (from the core's pass:
    waiters at a release count every request and acquisition at or before its time)."""
    return int(lg.summary_tables["idle_with_waiters_ns"])


#: A ping sent this long after its schedule was held back by the previous round trip.
_LATE_NS = 200_000


def _late_pings(run: "Run") -> Any:
    """Pings that a driver sent late (see :func:`summary`); None without the scenario spec."""
    threads = (run.meta.get("scenario_spec") or {}).get("threads")
    if not threads:
        return None
    th = run.io.column("thread").to_numpy()
    sent = run.io.column("sent_ns").to_numpy()
    late = 0
    for k in np.unique(th):
        peer = threads[int(k)].get("peer") if int(k) < len(threads) else None
        if not peer or peer.get("kind") != "driver":
            return None
        s = sent[th == k]
        due = np.arange(1, s.size + 1, dtype=np.int64) * int(peer["gap_us"]) * 1000
        late += int((s - due > _LATE_NS).sum())
    return late


def summary(run: "Run") -> Dict[str, Any]:
    """Headline metrics of a run.

    From the counters (present with logging on or off): ``policy``, ``elapsed_s`` (until the
    stop rule was met), ``stopped_by``, ``switches`` and ``switches_per_s`` (acquisitions that
    changed the holder), ``acquisitions``, ``futile_wakeups`` and ``futile_wakeups_per_s``,
    ``drop_requests`` and ``drop_requests_per_s``, ``forced_drops``, ``timeouts``,
    ``gil_utilisation`` (time held / elapsed; a thread that holds the GIL when the stop rule is
    met holds it until its next check point, which can take it slightly past 1 for short runs), per thread name: ``ticks``, ``ticks_per_s``,
    ``share`` (its part of the time the GIL was held), ``ctx_switches`` (voluntary,
    involuntary); ``fairness`` (Jain's index of the holding times of the threads that asked
    for the GIL: 1 = equal), ``voluntary_ctx_switches``, ``involuntary_ctx_switches``,
    ``events``; from a driver's timed pings: ``io_pings``, ``io_latency_{p50,p90,p99,max}_ms`` and
    ``io_pings_late`` (pings sent more than 0.2 ms after their schedule because the previous
    reply was not back yet: such a ping may find the GIL free, so when it is not 0 the quantiles
    mix two populations; space the pings further apart).

    From the event log, when it was recorded: ``handoffs``, ``handoff_latency_{p50,p90,p99,max}_us``,
    ``futile_handoff_fraction``, ``idle_gil_waiting_s`` (the GIL free while someone waited),
    ``wait_{p50,p90,p99,max}_ms``, and for blocking calls ``io_response_{p50,p90,p99,max}_ms``
    (I/O completion → GIL held again); with queues, ``items`` (taken out) and
    ``item_latency_{p50,p90,p99,max}_ms`` (put → got, :func:`items`).
    """
    m = run.meta
    th = run.threads.to_pydict()
    elapsed = max(m["elapsed_ns"], 1) / 1e9
    names = th["name"]
    ticks = np.asarray(th["ticks"], dtype=np.float64)
    hold = np.asarray(th["hold_ns"], dtype=np.float64)
    lived = np.maximum(np.asarray(th["exit_ns"]) - np.asarray(th["start_ns"]), 1) / 1e9
    asked = np.asarray(th["acquisitions"]) > 0
    total_hold = hold.sum()
    x = hold[asked]
    fair = float(x.sum() ** 2 / (x.size * (x ** 2).sum())) if x.size and (x ** 2).sum() > 0 else 1.0
    out: Dict[str, Any] = {
        "policy": m["gil"]["policy"],
        "elapsed_s": elapsed,
        "stopped_by": m["stopped_by"],
        "switches": int(m["switches"]),
        "switches_per_s": m["switches"] / elapsed,
        "acquisitions": int(sum(th["acquisitions"])),
        "futile_wakeups": int(sum(th["futile_wakeups"])),
        "futile_wakeups_per_s": sum(th["futile_wakeups"]) / elapsed,
        "drop_requests": int(sum(th["drop_requests"])),
        "drop_requests_per_s": sum(th["drop_requests"]) / elapsed,
        "forced_drops": int(sum(th["forced_drops"])),
        "timeouts": int(sum(th["timeouts"])),
        "gil_utilisation": total_hold / 1e9 / elapsed,
        "ticks": dict(zip(names, (int(t) for t in ticks))),
        "ticks_per_s": dict(zip(names, (float(t) for t in ticks / lived))),
        "share": dict(zip(names, (float(h / total_hold) if total_hold else 0.0 for h in hold))),
        "ctx_switches": {n: (int(v), int(i)) for n, v, i in zip(names, th["voluntary_ctx_switches"], th["involuntary_ctx_switches"])},
        "fairness": fair,
        "voluntary_ctx_switches": int(sum(th["voluntary_ctx_switches"])),
        "involuntary_ctx_switches": int(sum(th["involuntary_ctx_switches"])),
        "events": run.events.num_rows,
    }
    if run.io.num_rows:
        rtt = run.io.column("rtt_ns").to_numpy()
        out["io_pings"] = int(rtt.size)
        out.update(_quantiles(rtt, "io_latency"))
        late = _late_pings(run)
        if late is not None:
            out["io_pings_late"] = late
    if run.events.num_rows:
        lg = decode(run.events)
        # The distributions alone, without building the tables.
        tb = lg.summary_tables
        ho = tb["handoffs"]
        lat = ho["latency_ns"]
        out["handoffs"] = int(lat.size)
        out.update(_quantiles(lat, "handoff_latency", 1e3, "us"))
        out["futile_handoff_fraction"] = float(_futile(lg, ho).mean()) if lat.size else 0.0
        out["idle_gil_waiting_s"] = _idle_with_waiters_ns(lg) / 1e9
        out.update(_quantiles(tb["waits"]["wait_ns"], "wait"))
        out.update(_quantiles(tb["io"]["response_ns"], "io_response"))
        if m.get("queues"):
            it = items(lg).column("latency_ns").to_numpy()
            out["items"] = int(it.size)
            out.update(_quantiles(it, "item_latency"))
    return out
