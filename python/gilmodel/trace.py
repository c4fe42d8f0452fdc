"""Export runs' event logs as traces for ui.perfetto.dev: the native Perfetto protobuf
(written by the core, ``rust/perfetto.rs``: for runs of any size) or Chrome Trace Event Format
JSON (for small ones; chrome://tracing reads it too). Both show the same (the JSON one built
from the analysis tables, :func:`_content`; the native one in one streaming pass of the
core), and tests/test_trace.py checks that they hold the same slices, instants and counters.

Layout, per run (one process, named after the scenario and policy, or ``observed: ...``):

* track ``GIL``: who holds the GIL, one slice per holding period named after the holder: the
  whole run's hand-offs at a glance (left empty under no GIL, where holds overlap);
* one track per scenario thread (named ``name (core N)``), with slices that never overlap on a
  track: ``hold`` (acquire → release), ``wait`` (request → acquire),
  ``send``/``recv``/``sleep``/``join``/``native``/``lock``/``get``/``put``/``write`` (the blocking call
  itself; ``native``: C work with the GIL released; ``lock``, ``get``, ``put``: a wait for a
  lock, a queue's item, a queue's room) and ``switch wait`` (FORCE_SWITCHING: the dropper
  waiting until another thread takes the GIL), and one kind that nests: ``held call``
  (call_begin → call_end, C work that keeps the GIL with no check point), inside its ``hold``;
* instants on the thread's track for ``timeout``, ``drop_request``, ``forced_drop``,
  ``futile_wakeup``, ``signal``, ``handler``, and a queue's ``put`` and ``got``;
* counters ``GIL waiters`` (threads between request and acquire) and ``holder's CPU`` (the CPU
  of the latest acquisition).

JSON slices carry args (a hold's cpu, ticks and how it ended; a wait's timeouts, drop requests
and futile wake-ups; a call's bytes and response); the native format leaves them out, to stay
small. JSON timestamps are microseconds with nanosecond decimals; native ones nanoseconds.
Pairs cut off by the end of the log (a thread stopped while waiting) are left out, as in
:mod:`gilmodel.analysis`. A path ending in ``.gz`` is written gzip-compressed (Perfetto opens
both). The file is written to a temporary name and renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from typing import TYPE_CHECKING, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, analysis
from .eventlog import CODE, decode, pairs

if TYPE_CHECKING:
    from .run import Run

__all__ = ["to_trace", "format_of", "FORMATS", "INSTANT_EVENTS"]

#: Event kinds exported as instant events on their thread's track.
INSTANT_EVENTS = ("timeout", "drop_request", "forced_drop", "futile_wakeup", "signal", "handler", "put", "got")

_PID = 1
_GIL_TID = 0


def _us(t_ns: int) -> str:
    """Nanoseconds as a microsecond timestamp with nanosecond decimals."""
    return "%d.%03d" % divmod(int(t_ns), 1000)


class _Group(NamedTuple):
    """Slices of one kind: ``track`` (0: the GIL track, k + 1: thread k), ``start``/``end``
    (ns), ``name`` (one for all, or per slice as ``(codes, labels)``), ``depth`` (nesting on
    its track: 1 for a held call inside its hold), and the JSON trace's ``args`` (name →
    array; gathered only for JSON)."""

    track: np.ndarray
    start: np.ndarray
    end: np.ndarray
    name: Union[str, Tuple[np.ndarray, List[str]]]
    depth: int = 0
    args: Tuple[Tuple[str, np.ndarray], ...] = ()


class _Content(NamedTuple):
    """What a trace of one run holds, in its window (both formats are written from it)."""

    title: str
    tracks: List[str]               # thread k's track name
    groups: List[_Group]
    instants: List[Tuple[str, np.ndarray, np.ndarray, np.ndarray]]  # kind, thread, t, arg
    counters: List[Tuple[str, np.ndarray, np.ndarray]]             # name, t, value


def _clipped(g: _Group, lo: int, hi: int) -> _Group:
    keep = (g.end >= lo) & (g.start <= hi)
    rows = np.flatnonzero(keep)
    name = g.name if isinstance(g.name, str) else (g.name[0][rows], g.name[1])
    return _Group(g.track[rows], np.maximum(g.start[rows], lo), np.minimum(g.end[rows], hi), name, g.depth,
                  tuple((k, np.asarray(v)[rows]) for k, v in g.args))


def _content(run: "Run", lo: int, hi: int, args: bool = True) -> _Content:
    """Gather everything the JSON trace shows of ``run`` within [``lo``, ``hi``] (ns), from the
    analysis tables; the slices' ``args`` only with ``args``. The native trace shows the same,
    computed by the core in one pass (rust/perfetto.rs); tests/test_trace.py holds the two
    together."""
    lg = decode(run.events)  # once, for the tables below
    tracks, names, title = _labels(run)
    groups = []
    h = analysis.holds(lg)
    th = h.column("thread").to_numpy().astype(np.int64)
    hs, he = h.column("start_ns").to_numpy(), h.column("end_ns").to_numpy()
    # The GIL track: each holding period named after its holder (not under no GIL).
    if _gil_track(run):
        groups.append(_Group(np.zeros_like(th), hs, he, (th, names)))

    def cols(t, *names_):
        return tuple((n, t.column(n).to_numpy(zero_copy_only=False)) for n in names_) if args else ()

    ended = h.column("ended_by").combine_chunks()
    groups.append(_Group(th + 1, hs, he, "hold", 0, cols(h, "cpu", "ticks") + (
        (("ended_by", np.array(ended.dictionary.to_pylist(), dtype=object)[ended.indices.to_numpy()]),) if args else ())))
    w = analysis.waits(lg)
    groups.append(_Group(w.column("thread").to_numpy().astype(np.int64) + 1, w.column("request_ns").to_numpy(),
                         w.column("acquire_ns").to_numpy(), "wait", 0, cols(w, "timeouts", "drop_requests", "futile_wakeups")))
    io = analysis.io_response(lg)
    op = io.column("op").combine_chunks()
    groups.append(_Group(io.column("thread").to_numpy().astype(np.int64) + 1, io.column("begin_ns").to_numpy(),
                         io.column("end_ns").to_numpy(), (op.indices.to_numpy().astype(np.int64), op.dictionary.to_pylist()), 0,
                         cols(io, "bytes", "response_ns")))
    c = analysis.calls(lg)
    groups.append(_Group(c.column("thread").to_numpy().astype(np.int64) + 1, c.column("begin_ns").to_numpy(),
                         c.column("end_ns").to_numpy(), "held call", 1, cols(c, "ticks")))
    p1, p2 = pairs(lg, "switch_wait", "switch_done")
    a, b = lg.order[p1], lg.order[p2]
    groups.append(_Group(lg.thread[a].astype(np.int64) + 1, lg.t[a], lg.t[b], "switch wait"))
    groups = [_clipped(g, lo, hi) for g in groups]

    instants = []
    for kind in INSTANT_EVENTS:
        at = np.flatnonzero((lg.ev == CODE[kind]) & (lg.t >= lo) & (lg.t <= hi))
        instants.append((kind, lg.thread[at].astype(np.int64), lg.t[at], lg.arg[at]))

    counters = []
    # Waiters: +1 at each request, -1 at each acquire, as a step counter; one sample at the
    # window's start carries the level from before it.
    m = np.flatnonzero((lg.ev == CODE["request"]) | (lg.ev == CODE["acquire"]))
    counters.append(("GIL waiters",) + _window_steps(lg.t[m], np.cumsum(np.where(lg.ev[m] == CODE["request"], 1, -1)), lo, hi))
    # The holder's CPU: at each acquisition, the CPU it was taken on (who holds it, and when it
    # is free, the GIL track shows).
    m = np.flatnonzero(lg.ev == CODE["acquire"])
    counters.append(("holder's CPU",) + _window_steps(lg.t[m], lg.cpu[m].astype(np.int64), lo, hi))
    return _Content(title, tracks, groups, instants, counters)


def _window_steps(t: np.ndarray, v: np.ndarray, lo: int, hi: int) -> Tuple[np.ndarray, np.ndarray]:
    """The samples of a step counter inside [lo, hi], led by one at ``lo`` that carries the
    value from before the window."""
    inside = (t >= lo) & (t <= hi)
    before = np.flatnonzero(t < lo)
    tt, vv = t[inside], v[inside]
    if before.size:
        tt, vv = np.concatenate([[lo], tt]), np.concatenate([[v[before[-1]]], vv])
    return tt.astype(np.int64), vv.astype(np.int64)


def _json_events(c: _Content, pid: int) -> Iterator[str]:
    """The Trace Event Format records of one run's content (process ``pid``)."""
    yield '{"name":"process_name","ph":"M","pid":%d,"tid":0,"args":{"name":%s}}' % (pid, json.dumps(c.title))
    yield '{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":"GIL"}}' % (pid, _GIL_TID)
    yield '{"name":"thread_sort_index","ph":"M","pid":%d,"tid":%d,"args":{"sort_index":0}}' % (pid, _GIL_TID)
    for i, label in enumerate(c.tracks):
        yield '{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":%s}}' % (pid, i + 1, json.dumps(label))
        yield '{"name":"thread_sort_index","ph":"M","pid":%d,"tid":%d,"args":{"sort_index":%d}}' % (pid, i + 1, i + 1)
    for g in c.groups:
        if isinstance(g.name, str):
            each = [json.dumps(g.name)] * g.start.size
        else:
            labels = [json.dumps(x) for x in g.name[1]]
            each = [labels[k] for k in g.name[0].tolist()]
        argv = [(k, v.tolist()) for k, v in g.args]
        for i, (t, a, b) in enumerate(zip(g.track.tolist(), g.start.tolist(), g.end.tolist())):
            extra = ',"args":' + json.dumps({k: v[i] for k, v in argv}) if argv else ""
            yield '{"name":%s,"ph":"X","pid":%d,"tid":%d,"ts":%s,"dur":%s%s}' % (each[i], pid, t, _us(a), _us(b - a), extra)
    for kind, thr, t, arg in c.instants:
        for tt, k, a in zip(t.tolist(), thr.tolist(), arg.tolist()):
            yield '{"name":"%s","ph":"i","s":"t","pid":%d,"tid":%d,"ts":%s,"args":{"arg":%d}}' % (kind, pid, k + 1, _us(tt), a)
    for name, t, v in c.counters:
        key = "waiting" if name == "GIL waiters" else "cpu"
        for tt, vv in zip(t.tolist(), v.tolist()):
            yield '{"name":%s,"ph":"C","pid":%d,"tid":0,"ts":%s,"args":{"%s":%d}}' % (json.dumps(name), pid, _us(tt), key, vv)


def _write_native(runs: List["Run"], shifts: List[int], tmp: str, gzip_it: bool, lo: int, hi: int) -> int:
    """Encode the runs (one process each, times moved by ``shifts``) with the core's streaming
    encoder (rust/perfetto.rs): one pass over each event log, no table built."""
    rows = []
    for r, shift in zip(runs, shifts):
        lg = decode(r.events)
        labels, names, title = _labels(r)
        rows.append((title, labels, names, np.ascontiguousarray(lg.t, dtype=np.int64),
                     np.ascontiguousarray(lg.thread, dtype=np.uint16), np.ascontiguousarray(lg.cpu, dtype=np.int16),
                     np.ascontiguousarray(lg.ev, dtype=np.int8), np.ascontiguousarray(lg.arg, dtype=np.int64), int(shift),
                     _gil_track(r)))
    return _core.perfetto_trace(tmp, gzip_it, rows, lo, hi)


def _gil_track(run: "Run") -> bool:
    """Whether the trace draws the GIL track's slices: not under no GIL, where holds overlap
    (and slices of one track cannot)."""
    return run.meta["gil"].get("policy") != "nogil"


def _labels(run: "Run") -> Tuple[List[str], List[str], str]:
    """A run's thread track labels (``name (core N)``), thread names, and process title."""
    meta = run.meta
    names = run.threads.column("name").to_pylist()
    cores = run.threads.column("core").to_pylist()
    labels = [n if c is None or c < 0 else "%s (core %d)" % (n, c) for n, c in zip(names, cores)]
    title = "gilmodel: %s (%s)" % (meta.get("scenario") or "run", meta["gil"]["policy"])
    if meta.get("source") == "observed":
        title = "observed: %s" % (meta.get("scenario") or "run")
    return labels, names, title


#: The trace formats: ``json`` (Trace Event Format) and ``perfetto`` (native protobuf).
FORMATS = ("json", "perfetto")


def format_of(path: str) -> str:
    """The format a path's suffix asks for: ``.perfetto-trace``, ``.pftrace`` or ``.pb``
    (optionally ``.gz``) is native; anything else JSON."""
    p = path[:-3] if path.endswith(".gz") else path
    return "perfetto" if p.endswith((".perfetto-trace", ".pftrace", ".pb")) else "json"


def to_trace(run: Union["Run", Sequence["Run"]], path: str, start_ns: Optional[int] = None, end_ns: Optional[int] = None,
             format: Optional[str] = None) -> str:
    """Write ``run``'s log to ``path`` and return the path: Trace Event Format JSON, or the
    native Perfetto protobuf (``format="perfetto"``, or a path ending in ``.perfetto-trace``,
    ``.pftrace`` or ``.pb``: :func:`format_of`); gzip-compressed if the path ends in ``.gz``.

    ``run`` may be several runs (a model run and an observed real one, or two policies): each
    becomes a process of its own in one trace, their workloads' starts aligned
    (:func:`gilmodel.plot.workload_start_ns`). ``start_ns`` / ``end_ns`` (since each run's
    start) keep only that window, cutting slices at its edges. JSON takes about 190 bytes an
    event and is for small runs; the native format is written by the core, at about 50 bytes
    an event raw and 3 gzip-compressed (``benches/trace.py``)."""
    from .plot import workload_start_ns

    runs = [run] if not isinstance(run, (list, tuple)) else list(run)
    if not runs:
        raise ValueError("to_trace: no run to write")
    path = os.fspath(path)
    fmt = format_of(path) if format is None else format
    if fmt not in FORMATS:
        raise ValueError("to_trace: format %r; known: %s" % (fmt, ", ".join(FORMATS)))
    ends = [int(r.meta.get("end_ns") or (r.events.column("t_ns")[-1].as_py() if r.events.num_rows else 0)) for r in runs]
    lo = 0 if start_ns is None else int(start_ns)
    hi = max(max(ends), lo) if end_ns is None else int(end_ns)
    if lo < 0 or hi < lo:
        raise ValueError("to_trace: window start_ns=%r, end_ns=%r; need 0 <= start_ns <= end_ns" % (start_ns, end_ns))
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError("to_trace: folder %r does not exist" % d)
    starts = [workload_start_ns(r) for r in runs] if len(runs) > 1 else [0]
    shifts = [max(starts) - s for s in starts]
    fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".tmp", dir=d)
    try:
        if fmt == "perfetto":
            os.close(fd)
            _write_native(runs, shifts, tmp, path.endswith(".gz"), lo, hi)
        else:
            with os.fdopen(fd, "wb") as raw:
                _write_json(raw, runs, [_content(r, lo, hi) for r in runs], shifts, lo, hi, path.endswith(".gz"))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a trace is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _write_json(raw, runs, contents: List[_Content], shifts: List[int], lo: int, hi: int, gzip_it: bool) -> None:
    f = gzip.GzipFile(fileobj=raw, mode="wb") if gzip_it else raw
    other = {"generator": "gilmodel %s" % runs[0].meta.get("version", ""), "policy": runs[0].meta["gil"],
             "policies": [r.meta["gil"] for r in runs], "window_ns": [lo, hi]}
    f.write(b'{"displayTimeUnit":"ns","otherData":%s,"traceEvents":[\n' % json.dumps(other).encode())
    first = True
    buf: List[str] = []
    for r, (c, shift) in enumerate(zip(contents, shifts)):
        shifted = c._replace(groups=[g._replace(start=g.start + shift, end=g.end + shift) for g in c.groups],
                             instants=[(k, th, t + shift, a) for k, th, t, a in c.instants],
                             counters=[(n, t + shift, v) for n, t, v in c.counters])
        for e in _json_events(shifted, _PID + r):
            buf.append(e)
            if len(buf) >= 4096:
                f.write((("" if first else ",\n") + ",\n".join(buf)).encode())
                first, buf = False, []
    if buf:
        f.write((("" if first else ",\n") + ",\n".join(buf)).encode())
    f.write(b"\n]}\n")
    if f is not raw:
        f.close()
