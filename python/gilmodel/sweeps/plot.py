"""Plotting a sweep: the median of a metric against a parameter, one line per hue value, with
the spread across repeats (min–max band, interquartile bar)."""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from .store import load

__all__ = ["plot_sweep"]


def plot_sweep(out: Union[str, os.PathLike], x: str, y: str, hue: Optional[str] = None,
               path: Optional[Union[str, os.PathLike]] = None, logx: bool = False, logy: bool = False,
               title: Optional[str] = None):
    """Medians of ``y`` against ``x`` for each value of ``hue`` over the ``ok`` runs of the
    sweep in ``out``; the band is the min–max across repeats, the bar the interquartile range.
    Writes PNG/SVG/PDF by suffix and returns the path, or returns the Figure when ``path`` is
    None. Raises ValueError naming a missing column."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = load(out, status="ok")
    if t.num_rows == 0:
        raise ValueError("%s: no finished (ok) runs to plot" % (os.fspath(out),))
    for c in (x, y) + ((hue,) if hue else ()):
        if c not in t.column_names:
            raise ValueError("column %r not in the sweep; columns: %s" % (c, ", ".join(t.column_names)))
    df = t.select([c for c in dict.fromkeys([x, y] + ([hue] if hue else []))]).to_pandas()
    df = df[df[y].notna() & df[x].notna()]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = df.groupby(hue, dropna=False, sort=True) if hue else [(None, df)]
    for key, g in groups:
        st = g.groupby(x, sort=True)[y].agg(
            med="median", lo="min", hi="max", q1=lambda s: np.percentile(s, 25), q3=lambda s: np.percentile(s, 75), n="count")
        xs = st.index.to_numpy()
        label = None if hue is None else "%s=%s" % (hue, key)
        line, = ax.plot(xs, st["med"], marker="o", label=label)
        ax.fill_between(xs, st["lo"], st["hi"], color=line.get_color(), alpha=0.15, linewidth=0)
        ax.errorbar(xs, st["med"], yerr=[st["med"] - st["q1"], st["q3"] - st["med"]], fmt="none",
                    ecolor=line.get_color(), capsize=3)
    ax.set_xlabel(x)
    ax.set_ylabel(y + " (median; IQR bars, min-max band)")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if hue:
        ax.legend()
    ax.set_title(title or "%s vs %s (%d runs)" % (y, x, len(df)))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(os.fspath(path), dpi=110)
    plt.close(fig)
    return os.fspath(path)
