"""The GIL timeline in numbers, apart from its drawing (:mod:`gilmodel.plot` draws them).

A run's timeline over a window [start, end) is a lane per thread: the intervals it spends in
each state (:data:`gilmodel.eventlog.STATES`: holds the GIL, waits for it, is in a blocking
call, waits for its release to be taken up, is in a held call), marker events (:data:`MARKS`) and its life line.
:func:`window` gives a :class:`Window`: the decoded log (:mod:`gilmodel.eventlog`), the state
spans clipped to the window, the markers in it; it says how to draw them on a number of pixel
columns (:meth:`Window.plan`, a :class:`Plan`: each span, or per-column shares beyond one span
per column) and what those shares are (:meth:`Window.occupancy`).

:func:`spans`, :func:`occupancy` and :func:`plan` (also importable from :mod:`gilmodel.plot`)
take a run and a window in seconds since the threads were released, like ``start``/``end``
of :func:`gilmodel.plot.plot_run`; times returned are nanoseconds, like the event log.
Everything is computed with numpy over whole columns; no Python loop runs over events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, NamedTuple, Optional, Tuple

import numpy as np
import pyarrow as pa

from . import _core
from ._core import EVENT_NAMES
from .eventlog import CODE, IO_OPS, STATES, Log, Spans, decode, state_spans

if TYPE_CHECKING:
    from .run import Run

__all__ = ["MARKS", "COLUMNS", "BARS", "Plan", "Window", "window", "bar_kind", "fractions", "spans", "occupancy",
           "plan"]

#: Event kinds drawn as markers in a thread's lane.
MARKS = ("futile_wakeup", "timeout", "drop_request", "forced_drop", "switch_wait", "signal", "handler")
#: Pixel columns of a lane (11 in wide at 110 dpi, less the margins and the CPU panel's
#: legend): the unit of :func:`plan`'s decision and the number of aggregation bins.
COLUMNS = 1000
#: Bar kinds (a state, the operation for ``io``), bottom to top of an aggregated lane's stack:
#: the keys of :func:`occupancy`'s fractions. ``call`` (a held call: the GIL held, no check
#: point) sits on ``hold``, the other way of holding the GIL; ``io:native`` is C work with the
#: GIL released.
BARS = ("hold", "call") + tuple("io:" + op for op in IO_OPS) + ("switch", "wait")


class Plan(NamedTuple):
    """How :func:`gilmodel.plot.plot_run` draws a window.

    Attributes:
        start_ns, end_ns: the window.
        columns: pixel columns of a lane (and aggregation bins).
        lane_spans: the most spans any one lane has in the window.
        lane_marks: the most markers of one kind any one lane has in the window.
        aggregate: bars as per-column fractions (``lane_spans > columns``), else each span.
        aggregate_marks: markers as one per bin sized by count (more than ``columns // 4``
            of one kind in a lane, about 4 pixels each, or ``aggregate``), else each event.
        lane_migrations: the most CPU changes any one thread has in the window.
        aggregate_cpu: the CPU panel shows, per column and CPU, a strip as thick as the share
            of the column's time a thread spent there (``lane_migrations > columns``), else a
            step line through every change.
    """

    start_ns: int
    end_ns: int
    columns: int
    lane_spans: int
    lane_marks: int
    aggregate: bool
    aggregate_marks: bool
    lane_migrations: int
    aggregate_cpu: bool


class Window:
    """One run's timeline over [``start_ns``, ``end_ns``), in numbers (see :func:`window`).

    Attributes:
        log: the run's decoded event log.
        threads: lanes (rows of ``run.threads``).
        run_end_ns: the end of the run: its last event or ``elapsed_ns``, whichever is later.
        truncated: the log was cut off by the event budget.
        start_ns, end_ns: the window.
        spans: every thread's state spans, clipped to the window.
    """

    def __init__(self, log: Log, threads: int, run_end_ns: int, truncated: bool, start_ns: int, end_ns: int):
        self.log, self.threads, self.run_end_ns, self.truncated = log, threads, run_end_ns, truncated
        self.start_ns, self.end_ns = start_ns, end_ns
        self.spans = state_spans(log, run_end_ns, truncated).clip(start_ns, end_ns)
        self._marks: Optional[np.ndarray] = None

    @property
    def marks(self) -> np.ndarray:
        """Rows of the log's marker events (:data:`MARKS`) inside the window."""
        if self._marks is None:
            lg = self.log
            codes = np.array([CODE[m] for m in MARKS])
            self._marks = np.nonzero(np.isin(lg.ev, codes) & (lg.t >= self.start_ns) & (lg.t < self.end_ns))[0]
        return self._marks

    def migrations(self) -> np.ndarray:
        """Per thread, how many of its events in the window found it on another CPU than its
        event before."""
        lg = self.log
        n = max(self.threads, int(lg.thread.max()) + 1) if lg.thread.size else self.threads
        return _core.migrations(np.ascontiguousarray(lg.t, dtype=np.int64), np.ascontiguousarray(lg.thread, dtype=np.uint16),
                                np.ascontiguousarray(lg.cpu, dtype=np.int16), int(self.start_ns), int(self.end_ns), n)

    def plan(self, columns: int = COLUMNS) -> Plan:
        """How to draw the window on ``columns`` pixel columns (see :class:`Plan`)."""
        lg, sp, mrows = self.log, self.spans, self.marks
        per_lane = np.bincount(sp.thread, minlength=max(self.threads, 1)) if sp.thread.size else np.zeros(1, np.int64)
        if mrows.size:
            key = lg.thread[mrows].astype(np.int64) * len(EVENT_NAMES) + lg.ev[mrows]
            marks = int(np.bincount(key).max())
        else:
            marks = 0
        agg = int(per_lane.max()) > columns
        moves = int(self.migrations().max(initial=0))
        return Plan(self.start_ns, self.end_ns, columns, int(per_lane.max()), marks, agg, agg or marks > columns // 4,
                    moves, moves > columns)

    def occupancy(self, edges: np.ndarray) -> Dict[str, np.ndarray]:
        """For each bar kind (:data:`BARS`) a ``(threads, bins)`` array: the fraction of each
        bin between ``edges`` each thread spent in it."""
        # Per (thread, kind) the intervals are sorted and disjoint: a thread is in one state at
        # a time.
        sp = self.spans
        key = sp.thread * len(BARS) + bar_kind(sp).astype(np.int64)
        o = np.argsort(key, kind="stable")  # groups of one (thread, kind), each in time order
        key, s_all, e_all = key[o], sp.start[o], sp.end[o]
        out = {name: np.zeros((self.threads, edges.size - 1)) for name in BARS}
        groups, first = np.unique(key, return_index=True)
        for g, a, b in zip(groups, first, np.append(first[1:], key.size)):
            out[BARS[g % len(BARS)]][g // len(BARS)] = fractions(s_all[a:b], e_all[a:b], edges)
        return out

    def life(self) -> Tuple[np.ndarray, np.ndarray]:
        """Per thread, its life line cut to the window: ``(from_ns, to_ns)``, from its first
        event to its last (to the end of the run while it has not exited, unless the log was
        truncated); ``from_ns > to_ns`` where it misses the window."""
        lg = self.log
        first = np.full(self.threads, np.iinfo(np.int64).max)
        last = np.full(self.threads, np.iinfo(np.int64).min)
        np.minimum.at(first, lg.thread, lg.t)
        np.maximum.at(last, lg.thread, lg.t)
        if not self.truncated:
            ended = np.isin(np.arange(self.threads), lg.thread[lg.ev == CODE["exit"]])
            last = np.where(ended, last, self.run_end_ns)
        return np.maximum(first, self.start_ns), np.minimum(last, self.end_ns)


def window(run: "Run", start: Optional[float] = None, end: Optional[float] = None) -> Window:
    """The timeline of ``run`` over [``start``, ``end``) seconds since the threads were
    released (None: from 0, to the end of the run; a run that ends at 0 gets 1 ms).

    Raises:
        ValueError: ``end`` not after ``start``; an event log that does not match
            ``run.threads`` (an unknown event kind, a thread index past its rows).
    """
    lg = decode(run.events, "run.events")
    n = run.threads.num_rows
    if lg.thread.size and lg.thread.max() >= n:
        raise ValueError("run.events.thread: index %d, but run.threads has %d rows" % (lg.thread.max(), n))
    elapsed = int(run.meta.get("elapsed_ns", 0) or 0)
    run_end = max(int(lg.t.max()), elapsed) if lg.t.size else elapsed
    lo = 0 if start is None else int(round(float(start) * 1e9))
    hi = run_end if end is None else int(round(float(end) * 1e9))
    if end is None and hi <= lo:
        hi = lo + 1_000_000
    if not hi > lo:
        raise ValueError("window: end (%r s) must be after start (%r s)" % (end, start))
    return Window(lg, n, run_end, bool(run.meta.get("events_truncated")), lo, hi)


def bar_kind(sp: Spans) -> np.ndarray:
    """Index into :data:`BARS` of each span."""
    k = np.empty(sp.state.size, dtype=np.int8)
    k[sp.state == STATES.index("hold")] = BARS.index("hold")
    k[sp.state == STATES.index("wait")] = BARS.index("wait")
    k[sp.state == STATES.index("switch")] = BARS.index("switch")
    k[sp.state == STATES.index("call")] = BARS.index("call")
    io = sp.state == STATES.index("io")
    k[io] = BARS.index("io:send") + sp.op[io]
    return k


def fractions(s: np.ndarray, e: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The fraction of each bin between ``edges`` covered by the sorted, disjoint intervals
    [``s``, ``e``): the time covered up to x is a cumulative sum read with a binary search."""
    s, e = s.astype(np.float64), e.astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(e - s)])
    i = np.searchsorted(s, edges, side="right") - 1
    j = np.maximum(i, 0)
    c = np.where(i >= 0, cum[j] + np.minimum(edges, e[j]) - s[j], 0.0) if s.size else np.zeros(edges.size)
    return np.diff(c) / np.diff(edges)


def spans(run: "Run", start: Optional[float] = None, end: Optional[float] = None) -> pa.Table:
    """The bars of the timeline: one row per interval a thread spent in one state, clipped to
    the window [``start``, ``end``) (seconds; None: the whole run), ordered by thread, then
    time.

    Columns: ``thread`` (uint16), ``state`` (``hold``: acquire → release; ``wait``: request →
    acquire; ``io``: io_begin → io_end; ``switch``: switch_wait → switch_done; ``call``:
    call_begin → call_end, a held call, the GIL still held, cutting its hold in two), ``op``
    (the blocking operation of an ``io`` span: send, recv, sleep, join, native, lock, get,
    put, write; null otherwise),
    ``start_ns``, ``end_ns`` and ``open`` (the log ended in that state: the span is drawn to
    the end of the run). Between spans a thread is alive but in none of these states.
    """
    sp = window(run, start, end).spans
    ops = pa.DictionaryArray.from_arrays(pa.array(sp.op, mask=sp.op < 0), pa.array(IO_OPS))
    return pa.table({
        "thread": pa.array(sp.thread.astype(np.uint16)),
        "state": pa.DictionaryArray.from_arrays(pa.array(sp.state), pa.array(STATES)),
        "op": ops,
        "start_ns": pa.array(sp.start),
        "end_ns": pa.array(sp.end),
        "open": pa.array(sp.open),
    })


def occupancy(run: "Run", start: Optional[float] = None, end: Optional[float] = None, bins: int = COLUMNS) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """The aggregated view: the window (seconds; None: the whole run) cut into ``bins`` equal
    bins. Returns ``(edges_ns, fractions)``: ``bins + 1`` float edges, and for each bar kind
    (:data:`BARS`: ``hold``, ``call``, ``wait``, ``switch``, and ``io:`` with each blocking
    operation: ``io:send`` … ``io:native``, ``io:lock``, ``io:get``, ``io:put``, ``io:write``) a
    ``(threads, bins)`` array of the fraction of each bin's time each thread spent in it (per
    thread and bin the fractions sum to at most 1)."""
    if int(bins) < 1:
        raise ValueError("occupancy: bins must be at least 1, got %r" % (bins,))
    w = window(run, start, end)
    edges = np.linspace(w.start_ns, w.end_ns, int(bins) + 1)
    return edges, w.occupancy(edges)


def plan(run: "Run", start: Optional[float] = None, end: Optional[float] = None, columns: int = COLUMNS) -> Plan:
    """Decide how the window [``start``, ``end``) (seconds; None: the whole run) of ``run``
    is drawn on ``columns`` pixel columns: each span, or per-column fractions when some lane
    has more spans than there are columns (see :class:`Plan`)."""
    if int(columns) < 1:
        raise ValueError("plan: columns must be at least 1, got %r" % (columns,))
    return window(run, start, end).plan(int(columns))
