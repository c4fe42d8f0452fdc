"""A first timeline picture: who holds the GIL, who waits, who is in a blocking call.

(The full timeline with markers, aggregation and a CPU panel comes with the analysis module.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from .run import Run

__all__ = ["intervals", "timeline"]

_COLORS = {"hold": "#2ca02c", "wait": "#d62728", "io": "#1f77b4"}


def intervals(run: "Run", begin: str, end: str) -> Dict[int, np.ndarray]:
    """Per thread, the ``(start_ns, end_ns)`` pairs between each ``begin`` event and the next
    ``end`` event of the same thread (vectorised; both alternate per thread)."""
    ev = run.events
    th = ev.column("thread").to_numpy()
    t = ev.column("t_ns").to_numpy()
    kinds = ev.column("event").combine_chunks()
    names = kinds.dictionary.to_pylist()
    idx = kinds.indices.to_numpy()
    out = {}
    for k in range(run.threads.num_rows):
        mine = th == k
        b = t[mine & (idx == names.index(begin))]
        e = t[mine & (idx == names.index(end))]
        n = min(len(b), len(e))
        out[k] = np.stack([b[:n], e[:n]], axis=1) if n else np.empty((0, 2), dtype=np.int64)
    return out


def timeline(runs: Sequence[Tuple[str, "Run"]], path: str, start_ms: float = 0.0, end_ms: Optional[float] = None) -> str:
    """Draw one panel per ``(title, run)``: a lane per thread, green while it holds the GIL,
    red while it waits for it, blue while in a blocking call; spans shorter than a pixel are
    drawn one pixel wide. Writes PNG or SVG by suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 1.2 + 1.1 * sum(r.threads.num_rows for _, r in runs) / len(runs) * len(runs)), squeeze=False)
    for ax, (title, run) in zip(axes[:, 0], runs):
        hi = end_ms if end_ms is not None else run.meta["elapsed_ns"] / 1e6
        # Spans shorter than ~1 pixel would vanish: draw each at least that wide.
        min_w = (hi - start_ms) / 900.0
        lanes = run.threads.column("name").to_pylist()
        for kind, (b, e) in (("wait", ("request", "acquire")), ("hold", ("acquire", "release")), ("io", ("io_begin", "io_end"))):
            for k, iv in intervals(run, b, e).items():
                s, f = iv[:, 0] / 1e6, iv[:, 1] / 1e6
                keep = (f >= start_ms) & (s <= hi)
                b0 = np.maximum(s[keep], start_ms)
                spans = list(zip(b0, np.maximum(np.minimum(f[keep], hi) - b0, min_w)))
                h = 0.6 if kind != "wait" else 0.25
                ax.broken_barh(spans, (k - h / 2, h), facecolors=_COLORS[kind], linewidth=0)
        ax.set_yticks(range(len(lanes)), lanes)
        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.set_xlim(start_ms, hi)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("time (ms)")
    handles = [Patch(color=_COLORS["hold"], label="holds the GIL"), Patch(color=_COLORS["wait"], label="waits for the GIL"),
               Patch(color=_COLORS["io"], label="blocking call (GIL released)")]
    fig.legend(handles=handles, loc="upper right", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
