"""Export a run's event log as a Chrome Trace Event Format file, for ui.perfetto.dev and
chrome://tracing.

Layout of the trace (one process, ``pid`` 1, named after the scenario):

* track ``GIL`` (``tid`` 0): who holds the GIL, one complete event (``ph: "X"``) per holding
  period named after the holder: the whole run's hand-offs at a glance;
* one track per scenario thread (``tid`` = thread index + 1, named ``name (core N)``), with
  complete events that never overlap on a track: ``hold`` (acquire → release), ``wait``
  (request → acquire), ``send``/``recv``/``sleep``/``join``/``native``/``lock``/``get``/``put``
  (the blocking call itself; ``native``: C work with the GIL released; ``lock``, ``get``,
  ``put``: a wait for a lock, a queue's item, a queue's room) and ``switch wait`` (FORCE_SWITCHING: the
  dropper waiting until another thread takes the GIL), and one kind that nests: ``held call``
  (call_begin → call_end, C work that keeps the GIL with no check point), inside its ``hold``;
* thread-scoped instant events (``ph: "i"``, ``s: "t"``) for ``timeout``, ``drop_request``,
  ``forced_drop``, ``futile_wakeup``, ``signal``, ``handler``, and a queue's ``put`` and
  ``got``;
* a counter track ``GIL waiters`` (``ph: "C"``): threads between request and acquire.

Timestamps are microseconds since the run's start (the format's unit), with nanosecond
decimals. Pairs cut off by the end of the log (a thread stopped while waiting) are left out, as
in :mod:`gilmodel.analysis`. A path ending in ``.gz`` is written gzip-compressed (Perfetto opens
it). The file is written to a temporary name and renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from typing import TYPE_CHECKING, Iterator, List, Optional

import numpy as np

from . import analysis
from .eventlog import CODE, decode, pairs

if TYPE_CHECKING:
    from .run import Run

__all__ = ["to_trace", "INSTANT_EVENTS"]

#: Event kinds exported as instant events on their thread's track.
INSTANT_EVENTS = ("timeout", "drop_request", "forced_drop", "futile_wakeup", "signal", "handler", "put", "got")

_PID = 1
_GIL_TID = 0


def _us(t_ns: int) -> str:
    """Nanoseconds as a microsecond timestamp with nanosecond decimals."""
    return "%d.%03d" % divmod(int(t_ns), 1000)


def _clip(start: np.ndarray, end: np.ndarray, lo: int, hi: int):
    """Keep the intervals that overlap [lo, hi], cut to it."""
    keep = (end >= lo) & (start <= hi)
    return np.flatnonzero(keep), np.maximum(start[keep], lo), np.minimum(end[keep], hi)


def _slices(tid: np.ndarray, start: np.ndarray, end: np.ndarray, names: List[str], lo: int, hi: int,
            args: Optional[List[List]] = None, arg_names: tuple = ()) -> Iterator[str]:
    rows, s, e = _clip(start, end, lo, hi)
    tids = tid[rows].tolist()
    argv = [np.asarray(a)[rows].tolist() for a in (args or [])]
    for i, (t, a, b) in enumerate(zip(tids, s.tolist(), e.tolist())):
        extra = ""
        if argv:
            extra = ',"args":' + json.dumps({k: v[i] for k, v in zip(arg_names, argv)})
        yield '{"name":%s,"ph":"X","pid":%d,"tid":%d,"ts":%s,"dur":%s%s}' % (
            names[i] if len(names) > 1 else names[0], _PID, t, _us(a), _us(b - a), extra)


def _events(run: "Run", lo: int, hi: int) -> Iterator[str]:
    meta = run.meta
    lg = decode(run.events)  # once, for the tables below
    thread_names = run.threads.column("name").to_pylist()
    thread_cores = run.threads.column("core").to_pylist()
    qname = [json.dumps(n) for n in thread_names]
    title = "gilmodel: %s (%s)" % (meta.get("scenario") or "run", meta["gil"]["policy"])

    # Metadata: process and track names, tracks in thread order with the GIL track first.
    yield '{"name":"process_name","ph":"M","pid":%d,"tid":0,"args":{"name":%s}}' % (_PID, json.dumps(title))
    yield '{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":"GIL"}}' % (_PID, _GIL_TID)
    yield '{"name":"thread_sort_index","ph":"M","pid":%d,"tid":%d,"args":{"sort_index":0}}' % (_PID, _GIL_TID)
    for i, (n, c) in enumerate(zip(thread_names, thread_cores)):
        label = n if c is None or c < 0 else "%s (core %d)" % (n, c)
        yield '{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":%s}}' % (_PID, i + 1, json.dumps(label))
        yield '{"name":"thread_sort_index","ph":"M","pid":%d,"tid":%d,"args":{"sort_index":%d}}' % (_PID, i + 1, i + 1)

    h = analysis.holds(lg)
    th = h.column("thread").to_numpy().astype(np.int64)
    hs, he = h.column("start_ns").to_numpy(), h.column("end_ns").to_numpy()
    ended = h.column("ended_by").to_pylist()
    rows, _, _ = _clip(hs, he, lo, hi)
    # The GIL track: each holding period named after its holder.
    yield from _slices(np.zeros_like(th), hs, he, [qname[t] for t in th[rows].tolist()] or ['""'], lo, hi)
    yield from _slices(th + 1, hs, he, ['"hold"'], lo, hi,
                       [h.column("cpu").to_numpy(), h.column("ticks").to_numpy(), np.array(ended, dtype=object)],
                       ("cpu", "ticks", "ended_by"))

    w = analysis.waits(lg)
    yield from _slices(w.column("thread").to_numpy().astype(np.int64) + 1, w.column("request_ns").to_numpy(),
                       w.column("acquire_ns").to_numpy(), ['"wait"'], lo, hi,
                       [w.column(c).to_numpy() for c in ("timeouts", "drop_requests", "futile_wakeups")],
                       ("timeouts", "drop_requests", "futile_wakeups"))

    io = analysis.io_response(lg)
    ops = io.column("op").to_pylist()
    ib, ie = io.column("begin_ns").to_numpy(), io.column("end_ns").to_numpy()
    rows, _, _ = _clip(ib, ie, lo, hi)
    yield from _slices(io.column("thread").to_numpy().astype(np.int64) + 1, ib, ie,
                       [json.dumps(ops[r]) for r in rows.tolist()] or ['""'], lo, hi,
                       [io.column("bytes").to_numpy(), io.column("response_ns").to_numpy()], ("bytes", "response_ns"))

    c = analysis.calls(lg)
    yield from _slices(c.column("thread").to_numpy().astype(np.int64) + 1, c.column("begin_ns").to_numpy(),
                       c.column("end_ns").to_numpy(), ['"held call"'], lo, hi, [c.column("ticks").to_numpy()], ("ticks",))

    p1, p2 = pairs(lg, "switch_wait", "switch_done")
    a, b = lg.order[p1], lg.order[p2]
    yield from _slices(lg.thread[a].astype(np.int64) + 1, lg.t[a], lg.t[b], ['"switch wait"'], lo, hi)

    for kind in INSTANT_EVENTS:
        code = CODE[kind]
        at = np.flatnonzero((lg.ev == code) & (lg.t >= lo) & (lg.t <= hi))
        for t, thr, arg in zip(lg.t[at].tolist(), lg.thread[at].tolist(), lg.arg[at].tolist()):
            yield '{"name":"%s","ph":"i","s":"t","pid":%d,"tid":%d,"ts":%s,"args":{"arg":%d}}' % (
                kind, _PID, thr + 1, _us(t), arg)

    # Waiters: +1 at each request, -1 at each acquire, as a step counter; one sample at the
    # window's start carries the level from before it.
    m = np.flatnonzero((lg.ev == CODE["request"]) | (lg.ev == CODE["acquire"]))
    level = np.cumsum(np.where(lg.ev[m] == CODE["request"], 1, -1))
    t = lg.t[m]
    inside = (t >= lo) & (t <= hi)
    before = np.flatnonzero(t < lo)
    if before.size:
        yield '{"name":"GIL waiters","ph":"C","pid":%d,"tid":0,"ts":%s,"args":{"waiting":%d}}' % (
            _PID, _us(lo), level[before[-1]])
    for tt, v in zip(t[inside].tolist(), level[inside].tolist()):
        yield '{"name":"GIL waiters","ph":"C","pid":%d,"tid":0,"ts":%s,"args":{"waiting":%d}}' % (_PID, _us(tt), v)


def to_trace(run: "Run", path: str, start_ns: Optional[int] = None, end_ns: Optional[int] = None) -> str:
    """Write ``run``'s log to ``path`` as Trace Event Format JSON (gzip if it ends in ``.gz``)
    and return the path. ``start_ns`` / ``end_ns`` (since the run's start) keep only that
    window, cutting slices at its edges: useful for long runs, whose full trace would be large
    (about 100 bytes per event)."""
    end_all = int(run.meta.get("end_ns") or (run.events.column("t_ns")[-1].as_py() if run.events.num_rows else 0))
    lo = 0 if start_ns is None else int(start_ns)
    hi = max(end_all, lo) if end_ns is None else int(end_ns)
    if lo < 0 or hi < lo:
        raise ValueError("to_trace: window start_ns=%r, end_ns=%r; need 0 <= start_ns <= end_ns" % (start_ns, end_ns))
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError("to_trace: folder %r does not exist" % d)
    fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as raw:
            f = gzip.GzipFile(fileobj=raw, mode="wb") if path.endswith(".gz") else raw
            other = {"generator": "gilmodel %s" % run.meta.get("version", ""), "policy": run.meta["gil"],
                     "window_ns": [lo, hi]}
            f.write(b'{"displayTimeUnit":"ns","otherData":%s,"traceEvents":[\n' % json.dumps(other).encode())
            first = True
            buf: List[str] = []
            for e in _events(run, lo, hi):
                buf.append(e)
                if len(buf) >= 4096:
                    f.write((("" if first else ",\n") + ",\n".join(buf)).encode())
                    first, buf = False, []
            if buf:
                f.write((("" if first else ",\n") + ",\n".join(buf)).encode())
            f.write(b"\n]}\n")
            if f is not raw:
                f.close()
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a trace is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
