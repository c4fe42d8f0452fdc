"""The event log decoded: the one place that reads a run's ``events`` table into numpy, and
the per-thread views of it that every reader shares.

:mod:`gilmodel.analysis`, :mod:`gilmodel.lanes` (the timeline's numbers, drawn by
:mod:`gilmodel.plot`) and :mod:`gilmodel.trace` all start here:

* :func:`decode` → :class:`Log`: the columns as numpy arrays, the ``event`` column as codes
  in ``EVENT_NAMES`` order (:data:`CODE`) whatever the table's dictionary, and the rows in
  per-thread sequence order;
* :func:`analysis_tables` (:attr:`Log.tables`): the columns of every table of
  :mod:`gilmodel.analysis` (holds, waits, hand-offs, blocking and held calls) from one pass of
  the core over the log, and the idle time with waiters;
* :func:`pairs`: events paired within each thread's own sequence (request → acquire,
  io_begin → io_end, …), as the core's pass pairs them;
* :func:`state_spans` → :class:`Spans`: the intervals each thread spends in one state
  (:data:`STATES`: holds the GIL, waits for it, is in a blocking call, waits for its release
  to be taken up, is in a held call: C work that keeps the GIL).

Pairing relies on the log's invariants (docs/design.md §4): per thread, ``request`` →
``acquire`` → ``release`` repeat in that order; globally at most one thread holds the GIL.
Everything is the core's pass or vectorised numpy over whole columns; no Python loop runs
over events. This module depends only on the Rust core, numpy and pyarrow.
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Tuple, Union

import weakref

import numpy as np
import pyarrow as pa

from . import _core
from ._core import EVENT_NAMES, OP_NAMES

__all__ = ["CODE", "IO_OPS", "STATES", "Log", "decode", "analysis_tables", "thread_order", "pairs", "Spans", "state_spans"]

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
        order: the row indices in per-thread sequence order (:func:`thread_order`),
            computed when first read.
        ev_o, th_o: ``ev[order]`` and ``thread[order]``, computed when first read.
        tables: the analysis tables' columns from one pass of the core
            (:func:`analysis_tables`), computed when first read.
        summary_tables: the columns :func:`gilmodel.analysis.summary` reads: ``tables`` if
            computed already, else the core's lighter pass (``full=False``).
    """

    def __init__(self, t: np.ndarray, thread: np.ndarray, cpu: np.ndarray, ev: np.ndarray, arg: np.ndarray):
        self.t, self.thread, self.cpu, self.ev, self.arg = t, thread, cpu, ev, arg
        self._order = self._ev_o = self._th_o = self._tables = self._light = None

    @property
    def order(self) -> np.ndarray:
        if self._order is None:
            self._order = thread_order(self.thread)
        return self._order

    @property
    def tables(self) -> Dict[str, Any]:
        if self._tables is None:
            self._tables = analysis_tables(self)
            self._light = None  # the full tables hold all it had
        return self._tables

    @property
    def summary_tables(self) -> Dict[str, Any]:
        if self._tables is not None:
            return self._tables
        if self._light is None:
            self._light = analysis_tables(self, full=False)
        return self._light

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
    table can be handed the log decoded once; a table decoded lately (the last
    :data:`_KEEP_DECODED`, while they live: tables are immutable) gives the same :class:`Log`
    again, with its analysis pass.

    Raises:
        ValueError: an event kind the core does not have (``what`` names the table in the
            message).
    """
    if isinstance(events, Log):
        return events
    # The last tables decoded, by identity while they live: every analysis function called on
    # one run's events shares one decoding and one pass of the core.
    got = _DECODED.get(id(events))
    if got is not None and got[0]() is events:
        return got[1]
    lg = _decode(events, what)
    key = id(events)
    _DECODED[key] = (weakref.ref(events, lambda _, key=key: _DECODED.pop(key, None)), lg)
    while len(_DECODED) > _KEEP_DECODED:
        _DECODED.pop(next(iter(_DECODED)))
    return lg


#: How many decoded tables :func:`decode` keeps (each as long as its table lives).
_KEEP_DECODED = 4
_DECODED: Dict[int, Tuple[Any, "Log"]] = {}


def _decode(events: pa.Table, what: str) -> Log:
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


def analysis_tables(lg: "Log", full: bool = True) -> Dict[str, Any]:
    """The columns of every table of :mod:`gilmodel.analysis`, from one pass of the core over
    the log (rust/analysis.rs, which pairs as :func:`pairs` does): ``holds``, ``waits``,
    ``handoffs``, ``io`` and ``calls``, each a dict of numpy columns named as the table's (with
    ``ended`` for ``holds``' ``ended_by`` codes and ``op`` for ``io``'s, as logged), each in
    the order of its first row; and ``idle_with_waiters_ns``. With ``full`` false, what
    :func:`gilmodel.analysis.summary` reads alone: ``waits`` with ``wait_ns`` only,
    ``handoffs``, ``io`` and the idle time."""
    col = np.ascontiguousarray
    return _core.analysis_pass(col(lg.t, dtype=np.int64), col(lg.thread, dtype=np.uint16), col(lg.cpu, dtype=np.int16),
                               col(lg.ev, dtype=np.int8), col(lg.arg, dtype=np.int64), full)


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


_NONE = _core.SPAN_NONE            # a state event that leaves the thread in no state of STATES
_NOT_STATE = _core.SPAN_NOT_STATE  # an event that does not change the state
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
        if not self.start.size or (lo <= self.start.min() and self.start.max() < hi and self.end.max() <= hi):
            return self  # the window holds every span whole (a whole run's timeline): no copy
        inside = ((self.start < hi) & (self.end > lo)) | ((self.start == self.end) & (self.start >= lo) & (self.start < hi))
        return Spans(self.thread[inside], self.state[inside], self.op[inside], np.maximum(self.start[inside], lo),
                     np.minimum(self.end[inside], hi), self.open[inside])


def state_spans(lg: Log, end_ns: int, truncated: bool) -> Spans:
    """Every state interval: each state-changing event starts one that lasts until the next
    state-changing event of the same thread (spans in no state are dropped). A state still
    open when the thread's log ends lasts until ``end_ns`` (the end of the run), or until
    its last event when the log was ``truncated`` (it says nothing about what came after).
    Two passes of the core (rust/spans.rs), with this module's table of which event starts
    which state."""
    th, state, op, s, e, opn = _core.state_spans(
        np.ascontiguousarray(lg.t, dtype=np.int64), np.ascontiguousarray(lg.thread, dtype=np.uint16),
        np.ascontiguousarray(lg.ev, dtype=np.int8), np.ascontiguousarray(lg.arg, dtype=np.int64), _TO_STATE,
        STATES.index("io"), len(IO_OPS), int(end_ns), bool(truncated))
    return Spans(th, state, op, s, e, opn)
