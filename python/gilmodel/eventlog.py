"""The event log decoded: the one place that reads a run's ``events`` table into numpy, and
the per-thread views of it that every reader shares.

:mod:`gilmodel.analysis`, :mod:`gilmodel.lanes` (the timeline's numbers, drawn by
:mod:`gilmodel.plot`) and :mod:`gilmodel.trace` all start here:

* :func:`decode` → :class:`Log`: the columns as numpy arrays, the ``event`` column as codes
  in ``EVENT_NAMES`` order (:data:`CODE`) whatever the table's dictionary, and the rows in
  per-thread sequence order;
* :func:`pairs`, :func:`neighbour`, :func:`by_time`: events paired within each thread's own
  sequence (request → acquire, acquire → release, io_begin → io_end, …), their neighbours,
  and back to time order;
* :func:`state_spans` → :class:`Spans`: the intervals each thread spends in one state
  (:data:`STATES`: holds the GIL, waits for it, is in a blocking call, waits for its release
  to be taken up, is in a held call: C work that keeps the GIL).

Pairing relies on the log's invariants (docs/design.md §4): per thread, ``request`` →
``acquire`` → ``release`` repeat in that order; globally at most one thread holds the GIL.
Everything is vectorised numpy over whole columns; no Python loop runs over events. This
module depends only on the Rust core's names, numpy and pyarrow.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Tuple, Union

import numpy as np
import pyarrow as pa

from ._core import EVENT_NAMES, OP_NAMES

__all__ = ["CODE", "IO_OPS", "STATES", "Log", "decode", "thread_order", "pairs", "neighbour", "by_time",
           "Spans", "state_spans"]

#: Event code of each event kind: its index in ``EVENT_NAMES`` (the ``ev`` of :class:`Log`).
CODE: Dict[str, int] = {name: i for i, name in enumerate(EVENT_NAMES)}
#: Blocking operations by the ``arg`` of ``io_begin`` (the core's own list, rust/log.rs
#: ``IO_OP_NAMES``).
IO_OPS: Tuple[str, ...] = tuple(OP_NAMES)
#: The states of :func:`state_spans` (``Spans.state`` indexes this): ``hold`` (acquire →
#: release), ``wait`` (request → acquire), ``io`` (io_begin → io_end), ``switch``
#: (switch_wait → switch_done), ``call`` (call_begin → call_end: a ``held`` op, C work that
#: keeps the GIL with no check point). A thread holds the GIL in both ``hold`` and ``call``:
#: a call cuts its hold in two spans, and ``call_end`` goes back to ``hold`` (the hold as a
#: whole, acquire → release, is :func:`gilmodel.analysis.holds`'s).
STATES = ("hold", "wait", "io", "switch", "call")


class Log:
    """An events table decoded (see :func:`decode`).

    Attributes:
        t, thread, cpu, arg: the ``t_ns``, ``thread``, ``cpu`` and ``arg`` columns as numpy
            arrays of the table's types (int64, uint16, int16, int64 in a run); cast
            ``thread`` and ``cpu`` before arithmetic that can leave their range.
        ev: the ``event`` column as int8 codes (:data:`CODE`).
        order: the row indices in per-thread sequence order (:func:`thread_order`).
        ev_o, th_o: ``ev[order]`` and ``thread[order]``, computed when first read.
    """

    def __init__(self, t: np.ndarray, thread: np.ndarray, cpu: np.ndarray, ev: np.ndarray, arg: np.ndarray):
        self.t, self.thread, self.cpu, self.ev, self.arg = t, thread, cpu, ev, arg
        self.order = thread_order(thread)
        self._ev_o = self._th_o = None

    @property
    def ev_o(self) -> np.ndarray:
        if self._ev_o is None:
            self._ev_o = self.ev[self.order]
        return self._ev_o

    @property
    def th_o(self) -> np.ndarray:
        if self._th_o is None:
            self._th_o = self.thread[self.order]
        return self._th_o


def decode(events: Union[pa.Table, Log], what: str = "events") -> Log:
    """Decode an events table (any table with a run's schema: ``t_ns``, ``thread``, ``cpu``,
    ``event``, ``arg``, in time order; ``event`` dictionary-encoded, or plain strings as in a
    table rebuilt by hand). A :class:`Log` is returned as it is, so that functions taking a
    table can be handed the log decoded once.

    Raises:
        ValueError: an event kind the core does not have (``what`` names the table in the
            message).
    """
    if isinstance(events, Log):
        return events
    col = events.column("event")
    if pa.types.is_dictionary(col.type):
        arr = col.unify_dictionaries().combine_chunks() if col.num_chunks > 1 else col.combine_chunks()
    else:  # plain strings (e.g. a table rebuilt by hand)
        arr = col.combine_chunks().dictionary_encode()
    names = arr.dictionary.to_pylist()
    unknown = [n for n in names if n not in CODE]
    if unknown:
        raise ValueError("%s.event: unknown event kinds %r; known: %s" % (what, unknown, ", ".join(EVENT_NAMES)))
    lut = np.array([CODE[n] for n in names] or [0], dtype=np.int8)
    ev = lut[arr.indices.to_numpy(zero_copy_only=False)]
    return Log(events.column("t_ns").to_numpy(), events.column("thread").to_numpy(), events.column("cpu").to_numpy(),
               ev, events.column("arg").to_numpy())


def thread_order(thread: np.ndarray) -> np.ndarray:
    """Rows in per-thread sequence order: a stable sort by thread (a 16-bit key, so numpy
    sorts it by radix, in linear time)."""
    return np.argsort(thread, kind="stable")


def pairs(lg: Log, first: str, second: str) -> Tuple[np.ndarray, np.ndarray]:
    """Per thread, each ``first`` event followed (in that thread's own sequence, skipping
    other kinds) by a ``second`` event: returns the positions of both in ``lg.order`` (the
    rows are ``lg.order[p]``). Pairs cut off by the end of the log are left out."""
    a, b = CODE[first], CODE[second]
    p = np.flatnonzero((lg.ev_o == a) | (lg.ev_o == b))
    if p.size < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    e, th = lg.ev_o[p], lg.th_o[p]
    ok = (e[:-1] == a) & (e[1:] == b) & (th[:-1] == th[1:])
    return p[:-1][ok], p[1:][ok]


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


_NONE = -1       # a state event that leaves the thread in no state of STATES
_NOT_STATE = -2  # an event that does not change the state
_TO_STATE = np.full(len(EVENT_NAMES), _NOT_STATE, dtype=np.int8)
for _name, _state in (("start", _NONE), ("exit", _NONE), ("release", _NONE), ("io_end", _NONE),
                      ("switch_done", _NONE), ("request", 1), ("acquire", 0), ("io_begin", 2),
                      ("switch_wait", 3), ("call_begin", 4), ("call_end", 0)):
    _TO_STATE[CODE[_name]] = _state


class Spans(NamedTuple):
    """Intervals of threads in one state each (see :func:`state_spans`), ordered by thread,
    then time."""

    thread: np.ndarray  # int64
    state: np.ndarray   # int8, index into STATES
    op: np.ndarray      # int8, index into IO_OPS for io, -1 otherwise
    start: np.ndarray   # int64 ns
    end: np.ndarray     # int64 ns
    open: np.ndarray    # bool: still in that state when the log ends

    def clip(self, lo: int, hi: int) -> "Spans":
        """The spans that overlap [``lo``, ``hi``) (or, of zero length, lie in it), cut to it."""
        inside = ((self.start < hi) & (self.end > lo)) | ((self.start == self.end) & (self.start >= lo) & (self.start < hi))
        return Spans(self.thread[inside], self.state[inside], self.op[inside], np.maximum(self.start[inside], lo),
                     np.minimum(self.end[inside], hi), self.open[inside])


def state_spans(lg: Log, end_ns: int, truncated: bool) -> Spans:
    """Every state interval: each state-changing event starts one that lasts until the next
    state-changing event of the same thread (spans in no state are dropped). A state still
    open when the thread's log ends lasts until ``end_ns`` (the end of the run), or until
    its last event when the log was ``truncated`` (it says nothing about what came after)."""
    st = _TO_STATE[lg.ev] if lg.ev.size else np.zeros(0, np.int8)
    rows = lg.order[st[lg.order] != _NOT_STATE]
    th, s, state = lg.thread[rows].astype(np.int64), lg.t[rows].astype(np.int64, copy=False), st[rows]
    e = np.empty_like(s)
    opn = np.ones(s.size, dtype=bool)
    if s.size:
        same = th[:-1] == th[1:]
        e[:-1] = np.where(same, s[1:], 0)
        opn[:-1] = ~same
        e[opn] = s[opn] if truncated else max(end_ns, 0)
        e = np.maximum(e, s)
    keep = state >= 0
    op = np.where(state == 2, np.clip(lg.arg[rows], 0, len(IO_OPS) - 1), -1)
    return Spans(th[keep], state[keep].astype(np.int8), op[keep].astype(np.int8), s[keep], e[keep], opn[keep])
