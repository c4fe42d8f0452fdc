"""GIL timelines: who holds the GIL, who waits for it, who is in a blocking call, what each
thread's GIL machinery did, and which CPU each thread ran on.

:func:`plot_run` draws one run; :func:`timeline` stacks several (``gilmodel demo`` uses it).
Both draw with the same code:

* a lane per thread: bars while it holds the GIL, waits for it, is in a blocking call (one
  colour per operation) or, after a release, waits until another thread took the GIL (the
  switch wait of CPython ≥ 3.2's ``FORCE_SWITCHING``); markers for futile wake-ups, timed
  waits that ran out, drop requests, forced drops, switch waits and signals;
* below it, the CPU each thread was on.

The window decides how: while no lane has more spans than the plot has pixel columns, each
span is drawn (at least one pixel wide, so none vanishes); beyond that each lane becomes a
stacked strip of the fraction of each pixel column's time spent in each state, and markers
become one per bin, sized by their count (:func:`plan` says which, and why). Everything is
computed with numpy over whole columns; no Python loop runs over events.

The numbers drawn are computed apart from the drawing, in :mod:`gilmodel.lanes`, and its
public helpers are importable from here too, so that they can be checked or reused:
:func:`spans` (the state intervals), :func:`occupancy` (their per-bin fractions) and
:func:`plan`. Times passed in are seconds since the threads were released, like
``start``/``end`` of :func:`plot_run`; times returned are nanoseconds, like the event log.
:func:`draw_lanes` draws the lane panel alone on a matplotlib axes of the caller's (the
gallery's figures use it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .eventlog import CODE, IO_OPS, STATES
from .lanes import BARS, COLUMNS, MARKS, Plan, Window, bar_kind, fractions, occupancy, plan, spans, window

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .run import Run

__all__ = [
    "plot_run", "timeline", "beside", "shifted", "workload_start_ns", "draw_lanes", "spans", "occupancy", "plan", "Plan",
    "STATES", "IO_OPS", "MARKS", "LABELS", "COLUMNS",
]

#: Legend text of every kind the timeline can draw: bars (``hold``, ``wait``, ``switch``,
#: ``io:<op>``), ``alive`` (the thread's life line) and the markers (:data:`MARKS`).
LABELS = {
    "hold": "holds the GIL",
    "wait": "waits for the GIL",
    "switch": "switch wait (released, waits for a taker)",
    "io:send": "blocking send",
    "io:recv": "blocking recv",
    "io:sleep": "blocking sleep",
    "io:join": "blocking join",
    "io:native": "C work, GIL released",
    "io:lock": "waits for a lock",
    "io:get": "queue get waits for an item",
    "io:put": "queue put waits for room",
    "io:write": "blocking file write",
    "call": "held call (C work, GIL held, no check point)",
    "alive": "alive, outside the GIL",
    "futile_wakeup": "futile wake-up (GIL taken again)",
    "timeout": "timed wait ran out",
    "drop_request": "drop request (waiter asks holder)",
    "forced_drop": "forced drop (holder yields)",
    "switch_wait": "switch wait begins",
    "signal": "signal",
    "handler": "signal handler",
}

_COLORS = {
    "hold": "#2ca02c", "wait": "#d62728", "switch": "#9467bd",
    "io:send": "#1f77b4", "io:recv": "#17becf", "io:sleep": "#aec7e8", "io:join": "#8c564b",
    "io:native": "#dbdb8d", "io:lock": "#f7b6d2", "io:get": "#c5b0d5", "io:put": "#c49c94", "io:write": "#ff9896",
    "call": "#d95f02",
    "alive": "#b0b0b0",
}
# Bar half-heights in lane units (lanes are 1 apart; the y axis points down).
_HALF = {"hold": 0.19, "call": 0.19, "wait": 0.08, "switch": 0.08, "io": 0.14}
_STACK_HALF = 0.19
# Markers: (matplotlib marker, colour, y offset in the lane (negative: above the bars)).
_MARK_STYLE = {
    # Above the bars, what a waiter saw or did; below them, what a holder did.
    "timeout": ("v", "#ff7f0e", -0.38),
    "futile_wakeup": ("x", "#000000", -0.38),
    "drop_request": ("v", "#e377c2", -0.27),
    "signal": ("*", "#bcbd22", -0.27),
    "forced_drop": ("^", "#7f0000", 0.27),
    "handler": ("P", "#17becf", 0.27),
    "switch_wait": (">", "#9467bd", 0.38),
}
_THREAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_DPI = 110
_WIDTH_IN = 11.0


def _names(run: "Run") -> List[str]:
    if "name" in run.threads.column_names:
        return [str(x) for x in run.threads.column("name").to_pylist()]
    return ["thread %d" % i for i in range(run.threads.num_rows)]


def _rects(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """(n, 4, 2) rectangle vertices for a PolyCollection."""
    return np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)


def _mark_size(count: np.ndarray) -> np.ndarray:
    """Marker area (pt²) for events standing for ``count`` occurrences: 16 for one, growing
    with the logarithm."""
    return 16.0 + 14.0 * np.log10(np.maximum(count, 1))


def _draw_lanes(ax, w: Window, p: Plan, counts: Dict[str, int]) -> None:
    from matplotlib.collections import LineCollection, PolyCollection

    lg, sp, mrows = w.log, w.spans, w.marks
    lo, hi = p.start_ns, p.end_ns
    ms = 1e-6
    px = (hi - lo) / p.columns  # ns per pixel column
    kind = bar_kind(sp)
    # Life lines: from each thread's first to its last event, clipped to the window.
    if lg.t.size:
        a, b = w.life()
        ok = a <= b
        if ok.any():
            y = np.arange(w.threads)[ok]
            seg = np.stack([np.stack([a[ok] * ms, y], 1), np.stack([np.maximum(b[ok], a[ok] + px) * ms, y], 1)], 1)
            ax.add_collection(LineCollection(seg, colors=_COLORS["alive"], linewidths=0.8, zorder=1, label="_alive"))
            counts["alive"] = int(ok.sum())
    if p.aggregate:
        edges = np.linspace(lo, hi, p.columns + 1)
        occ = w.occupancy(edges)
        x = edges * ms
        for th in range(w.threads):
            base = np.full(p.columns, th + _STACK_HALF)  # the bottom of the lane (y points down)
            for name in BARS:
                f = occ[name][th]
                if not f.any():
                    continue
                top = base - f * 2 * _STACK_HALF
                ax.fill_between(x, np.append(base, base[-1]), np.append(top, top[-1]), step="post",
                                facecolor=_COLORS[name], linewidth=0, zorder=2, label="_share:" + name)
                base = top
        for ki, name in enumerate(BARS):
            n = int((kind == ki).sum())
            if n:
                counts[name] = n
    else:
        for ki, name in enumerate(BARS):
            m = kind == ki
            if not m.any():
                continue
            counts[name] = int(m.sum())
            h = _HALF["io" if name.startswith("io:") else name]
            s, e = sp.start[m], sp.end[m]
            e = np.maximum(e, s + px)  # at least one pixel wide
            y = sp.thread[m].astype(np.float64)
            ax.add_collection(PolyCollection(_rects(s * ms, e * ms, y - h, y + h), facecolors=_COLORS[name],
                                             linewidths=0, zorder=3 if name in ("hold", "call") else 2, label="_span:" + name))
    # Markers.
    if mrows.size:
        mbins = max(p.columns // 4, 1)
        for name in MARKS:
            r = mrows[lg.ev[mrows] == CODE[name]]
            if not r.size:
                continue
            marker, color, dy = _MARK_STYLE[name]
            n = np.maximum(lg.arg[r], 1) if name == "futile_wakeup" else np.ones(r.size, np.int64)
            counts[name] = int(n.sum())
            if p.aggregate_marks:
                b = np.minimum((lg.t[r] - lo) * mbins // (hi - lo), mbins - 1)
                c = np.bincount(lg.thread[r].astype(np.int64) * mbins + b, weights=n, minlength=w.threads * mbins)
                nz = np.nonzero(c)[0]
                th, bi = nz // mbins, nz % mbins
                xs = (lo + (bi + 0.5) * (hi - lo) / mbins) * ms
                ax.scatter(xs, th + dy, s=_mark_size(c[nz]), marker=marker, c=color, linewidths=0.9, zorder=4, alpha=0.85,
                           label="_marks:" + name)
            else:
                ax.scatter(lg.t[r] * ms, lg.thread[r] + dy, s=_mark_size(n), marker=marker, c=color, linewidths=0.9, zorder=4,
                           label="_mark:" + name)


def _draw_cpus(ax, w: Window, p: Plan, names: List[str]) -> None:
    lg = w.log
    lo, hi = p.start_ns, p.end_ns
    ms = 1e-6
    n = max(w.threads, 1)
    step = min(0.6 / n, 0.25) if p.aggregate_cpu else min(0.3 / n, 0.1)
    seen = []
    order = lg.order  # each thread's rows, in time order
    bounds = np.searchsorted(lg.th_o, np.arange(w.threads + 1))
    for th in range(w.threads):
        rows = order[bounds[th]:bounds[th + 1]]
        if not rows.size or lg.t[rows[-1]] < lo:
            continue
        t, c = lg.t[rows], lg.cpu[rows]
        # The CPU at the window's start is the last one seen before it.
        i0 = max(int(np.searchsorted(t, lo, side="right")) - 1, 0)
        i1 = int(np.searchsorted(t, hi, side="left"))
        if i1 <= i0 or t[i0] >= hi:
            continue
        t, c = t[i0:i1], c[i0:i1]
        color = _THREAD_COLORS[th % len(_THREAD_COLORS)]
        y_off = (th - (n - 1) / 2) * step
        seen.append(np.unique(c))
        change = np.concatenate([[True], c[1:] != c[:-1]])
        stop = min(int(lg.t[rows[-1]]), hi)
        if not p.aggregate_cpu:
            x = np.concatenate([np.maximum(t[change], lo), [stop]]) * ms
            y = np.concatenate([c[change], [c[-1]]]) + y_off
            ax.step(x, y, where="post", color=color, linewidth=1.4, label=names[th])
            moved = change.copy()
            moved[0] = False
            if 0 < moved.sum() <= 200:
                ax.scatter(t[moved] * ms, c[moved] + y_off, s=10, color=color, zorder=3)
        else:
            # Too many migrations to draw each: per column and CPU, a strip as thick as the
            # share of the column's time the thread spent on that CPU (from each event to its
            # next, it is taken to be on the CPU of the event).
            edges = np.linspace(lo, hi, p.columns + 1)
            s_, e_ = t, np.append(t[1:], stop)
            s_, e_ = np.clip(s_, lo, hi), np.clip(e_, lo, hi)
            half = 0.45 * step
            for cpu in np.unique(c):
                m = c == cpu
                f = fractions(s_[m], e_[m], edges)
                f = np.where(f > 0, f, np.nan)
                y = cpu + y_off
                ax.fill_between(edges * ms, np.append(y - half * f, np.nan), np.append(y + half * f, np.nan), step="post",
                                color=color, linewidth=0, label=names[th] if cpu == c[0] else None)
    cpus = np.unique(np.concatenate(seen)).astype(np.int64) if seen else np.zeros(0, np.int64)
    if cpus.size:
        ax.set_yticks(cpus, ["cpu %d" % c for c in cpus])
        ax.set_ylim(cpus.min() - 0.5, cpus.max() + 0.5)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False, handlelength=1.2)
    else:
        ax.set_yticks([])
    ax.invert_yaxis()
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.5)
    ax.set_ylabel("CPU", fontsize=8)
    ax.tick_params(labelsize=7)


def _default_title(run: "Run") -> str:
    m = run.meta
    g = dict(m.get("gil") or {})
    pol = g.pop("policy", "?")
    knobs = ", ".join("%s=%s" % kv for kv in sorted(g.items()))
    return "%s: %s GIL%s; %d threads, %.3f s, %d events" % (
        m.get("scenario") or "scenario", pol, " (%s)" % knobs if knobs else "", run.threads.num_rows, (m.get("elapsed_ns") or 0) / 1e9, run.events.num_rows)


def _fmt_ns(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return "%.3g %s" % (ns / scale, unit)
    return "%.3g ns" % ns


def _lane_panel(ax, w: Window, p: Plan, names: List[str], title: str, counts: Dict[str, int], with_cpu: bool) -> None:
    """The lanes of ``w`` drawn on ``ax`` as ``p`` says, with their labels and the note on how
    they were drawn; its time axis is the CPU panel's below it when ``with_cpu``."""
    lg, mrows = w.log, w.marks
    lo, hi = p.start_ns, p.end_ns
    _draw_lanes(ax, w, p, counts)
    ax.set_yticks(range(len(names)), names)
    for th, lab in enumerate(ax.get_yticklabels()):
        lab.set_color(_THREAD_COLORS[th % len(_THREAD_COLORS)])
    ax.set_ylim(len(names) - 0.5, -0.5)  # lane 0 on top
    ax.set_xlim(lo * 1e-6, hi * 1e-6)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.tick_params(labelsize=8, labelbottom=not with_cpu)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.5)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=9, loc="left")
    px = (hi - lo) / p.columns
    if not lg.t.size:
        note = "no events logged"
    elif p.aggregate:
        note = "aggregated: %d bins of %s, bars = share of each bin's time" % (p.columns, _fmt_ns(px))
    else:
        note = "every span (≥ 1 px = %s)" % _fmt_ns(px)
    if p.aggregate_marks and mrows.size:
        note += "; markers: one per %s bin" % _fmt_ns((hi - lo) / max(p.columns // 4, 1))
    if p.aggregate_cpu and with_cpu:
        note += "; CPU panel: strips as thick as the share of time on each CPU"
    fut = mrows[lg.ev[mrows] == CODE["futile_wakeup"]]
    if (p.aggregate_marks and mrows.size) or (lg.arg[fut] > 1).any():
        note += "; marker size ∝ log(count)"
    if not with_cpu:
        note = "time (ms); " + note
    ax.set_xlabel(note, fontsize=7, loc="right", color="#555555", labelpad=1)
    # Faint separators, so that markers below one lane and above the next are told apart.
    for k in range(1, len(names)):
        ax.axhline(k - 0.5, color="#d8d8d8", linewidth=0.6, zorder=0)


def _draw_run(ax, ax_cpu, run: "Run", start: Optional[float], end: Optional[float], title: str,
              counts: Dict[str, int]) -> Plan:
    w = window(run, start, end)
    p = w.plan(COLUMNS)
    names = _names(run)
    _lane_panel(ax, w, p, names, title, counts, with_cpu=True)
    _draw_cpus(ax_cpu, w, p, names)
    ax_cpu.set_xlim(p.start_ns * 1e-6, p.end_ns * 1e-6)
    ax_cpu.ticklabel_format(axis="x", useOffset=False, style="plain")
    return p


def _handles(counts: Dict[str, int], with_counts: bool) -> List[Any]:
    """Legend handles of every kind in ``counts``, in drawing order."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: List[Any] = []
    for name in BARS + ("alive",) + MARKS:
        if name not in counts:
            continue
        label = LABELS[name] + (" (%d)" % counts[name] if with_counts and name != "alive" else "")
        if name == "alive":
            handles.append(Line2D([], [], color=_COLORS["alive"], linewidth=1.2, label=label))
        elif name in MARKS:
            marker, color, _ = _MARK_STYLE[name]
            handles.append(Line2D([], [], linestyle="none", marker=marker, color=color, markersize=6, label=label))
        else:
            handles.append(Patch(facecolor=_COLORS[name], label=label))
    return handles


def _legend(fig, counts: Dict[str, int], with_counts: bool) -> None:
    handles = _handles(counts, with_counts)
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncol=min(4, len(handles)), fontsize=7.5, frameon=False,
                   handlelength=1.4, columnspacing=1.5)


def _time_axis(run: "Run") -> str:
    """What time 0 is on ``run``'s axis."""
    m = run.meta
    if m.get("aligned_to_workload"):
        return "time since the workload's first thread started"
    if m.get("source") == "observed":
        return "time since the interpreter's execve" if not m["observed"].get("attached") else "time since attaching"
    return "time since the threads were released"


def _figure(runs: Sequence[Tuple[str, "Run", Optional[float], Optional[float]]],
            header: Optional[Tuple[float, Callable[[Any], None]]] = None) -> "Figure":
    from matplotlib.figure import Figure

    heights = [] if header is None else [header[0]]
    top = len(heights)
    for _, run, _, _ in runs:
        heights.append(0.6 + 0.6 * max(run.threads.num_rows, 1))
        ev = run.events
        ncpu = len(np.unique(ev.column("cpu").to_numpy())) if ev.num_rows else 1
        heights.append(0.45 + min(0.22 * ncpu, 1.6))
    fig = Figure(figsize=(_WIDTH_IN, sum(heights) + 0.9), dpi=_DPI, layout="constrained")
    gs = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    counts: Dict[str, int] = {}
    plans = []
    if header is not None:
        header[1](fig.add_subplot(gs[0], label="gil-header"))
    for i, (title, run, start, end) in enumerate(runs):
        ax = fig.add_subplot(gs[top + 2 * i], label="gil-lanes-%d" % i)
        ax_cpu = fig.add_subplot(gs[top + 2 * i + 1], sharex=ax, label="gil-cpu-%d" % i)
        mine: Dict[str, int] = {}
        plans.append(_draw_run(ax, ax_cpu, run, start, end, title, mine))
        for k, v in mine.items():
            counts[k] = counts.get(k, 0) + v
        if i == len(runs) - 1:
            ax_cpu.set_xlabel(_time_axis(run) + " (ms)", fontsize=8)
    _legend(fig, counts, with_counts=len(runs) == 1)
    fig.gilmodel_plans = plans  # type: ignore[attr-defined]
    fig.gilmodel_kinds = sorted(counts)  # type: ignore[attr-defined]
    return fig


_FORMATS = ("png", "svg", "pdf")


def _save(fig, path: Union[str, os.PathLike]) -> str:
    import matplotlib

    p = os.fspath(path)
    fmt = os.path.splitext(p)[1].lower().lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError("path %r: the suffix picks the format; expected one of %s" % (p, ", ".join("." + f for f in _FORMATS)))
    # Text stays text in SVG (searchable, and smaller than glyph paths).
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(p, dpi=_DPI, format=fmt)
    return p


def plot_run(run: "Run", path: Union[str, os.PathLike, None] = None, start: Optional[float] = None,
             end: Optional[float] = None, title: Optional[str] = None) -> Union["Figure", str]:
    """Draw the GIL timeline of ``run`` over [``start``, ``end``) seconds since the threads
    were released (None: from 0, to the end of the run).

    The top panel has a lane per thread (labelled with its name): bars while it holds the GIL,
    waits for it, is in a blocking call (a colour per operation) or waits for its release to
    be taken up (switch wait); markers for futile wake-ups, timeouts, drop requests, forced
    drops, switch waits and signals; a light line while it lives. The panel below shows the
    CPU each thread was on. A legend names every kind drawn, with its count in the window.
    Time is in ms. Windows with more spans per lane than pixel columns are drawn aggregated
    (see :func:`plan`); the returned figure's ``gilmodel_plans`` attribute holds the
    :class:`Plan` used, and ``gilmodel_kinds`` the kinds drawn.

    Returns the matplotlib ``Figure`` when ``path`` is None (no pyplot state is touched);
    otherwise writes PNG, SVG or PDF as the suffix says and returns the path.

    Raises:
        ValueError: ``end`` not after ``start``; an unknown suffix; an event log that does
            not match ``run.threads``.
    """
    fig = _figure([(title if title is not None else _default_title(run), run, start, end)])
    if path is None:
        return fig
    return _save(fig, path)


def timeline(runs: Sequence[Tuple[str, "Run"]], path: Union[str, os.PathLike], start_ms: float = 0.0,
             end_ms: Optional[float] = None, header: Optional[Tuple[float, Callable[[Any], None]]] = None) -> str:
    """Draw several runs stacked, each as :func:`plot_run` draws it (its lanes and its CPU
    panel), under one legend, over the same window [``start_ms``, ``end_ms``) in
    milliseconds (``end_ms`` None: each run to its end). ``runs`` holds ``(title, run)``
    pairs. ``header``: ``(height in inches, draw(ax))``, a panel drawn above the runs (the
    demo's real-beside-model bars). Writes PNG, SVG or PDF as the suffix of ``path`` says;
    returns the path."""
    if not runs:
        raise ValueError("timeline: no runs to draw")
    start = float(start_ms) / 1e3
    end = None if end_ms is None else float(end_ms) / 1e3
    fig = _figure([(title, run, start, end) for title, run in runs], header)
    return _save(fig, path)


def workload_start_ns(run: "Run") -> int:
    """When ``run``'s workload began: the ``start`` of its second thread (the first one the
    program started), else 0. An observed run's clock starts at the interpreter's ``execve``,
    tens of ms of imports before that; a model run's at its start gate."""
    from .eventlog import CODE, decode

    lg = decode(run.events)
    t = lg.t[(lg.ev == CODE["start"]) & (lg.thread == 1)]
    return int(t[0]) if t.size else 0


def shifted(run: "Run", by_ns: int) -> "Run":
    """``run`` with every time moved ``by_ns`` earlier (its events, threads' start and exit,
    ``elapsed_ns``): a view for drawing runs on one axis, not a run to analyse."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .run import Run

    ev = run.events.set_column(0, "t_ns", pc.subtract(run.events.column("t_ns"), pa.scalar(by_ns, pa.int64())))
    th = run.threads
    for c in ("start_ns", "exit_ns"):
        if c in th.column_names:
            th = th.set_column(th.column_names.index(c), c, pc.subtract(th.column(c), pa.scalar(by_ns, pa.int64())))
    meta = dict(run.meta, elapsed_ns=int(run.meta.get("elapsed_ns", 0)) - by_ns, aligned_to_workload=True)
    return Run(ev, th, run.io, meta)


def beside(runs: Sequence[Tuple[str, "Run"]], path: Union[str, os.PathLike], start_ms: float = 0.0,
           end_ms: Optional[float] = None, align: bool = True) -> str:
    """Runs one above the other on one time axis, as :func:`timeline` draws them; with
    ``align`` each is first shifted so that its workload begins at 0 (:func:`workload_start_ns`:
    an observed real run beside a model run of the same workload). Returns the path."""
    if align:
        runs = [(title, shifted(r, workload_start_ns(r))) for title, r in runs]
    if end_ms is None:
        end_ms = min(r.meta.get("elapsed_ns", 0) for _, r in runs) / 1e6
    return timeline(runs, path, start_ms, end_ms)


def draw_lanes(ax: Any, run: "Run", start: Optional[float] = None, end: Optional[float] = None,
               title: Optional[str] = None, columns: int = COLUMNS) -> Plan:
    """Draw the lane panel of ``run``'s timeline (as :func:`plot_run` draws it, without the
    CPU panel) over [``start``, ``end``) seconds on ``ax``, a matplotlib axes of the caller's
    figure, with a legend of the kinds drawn below it. ``columns``: the pixel columns the
    axes is wide (see :func:`plan`). Returns the :class:`Plan` used.

    Raises:
        ValueError: ``end`` not after ``start``; ``columns`` below 1; an event log that does
            not match ``run.threads``.
    """
    from matplotlib.transforms import offset_copy

    if int(columns) < 1:
        raise ValueError("draw_lanes: columns must be at least 1, got %r" % (columns,))
    w = window(run, start, end)
    p = w.plan(int(columns))
    counts: Dict[str, int] = {}
    _lane_panel(ax, w, p, _names(run), title if title is not None else _default_title(run), counts, with_cpu=False)
    handles = _handles(counts, with_counts=False)
    if handles:
        # Below the time axis: its tick labels and label take about 24 points.
        below = offset_copy(ax.transAxes, fig=ax.figure, y=-24, units="points")
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below,
                  ncol=min(4, len(handles)), fontsize=6, frameon=False, handlelength=1.2, columnspacing=1.0)
    return p
