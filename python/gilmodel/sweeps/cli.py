"""The ``gilmodel sweep`` and ``gilmodel plot-sweep`` subcommands."""

from __future__ import annotations

import json

__all__ = ["add_commands"]


def _cmd_sweep(a) -> int:
    from . import sweep
    from .spec import read_spec

    kw = read_spec(a.spec)
    for k in ("out", "backend", "max_parallel", "address"):
        if getattr(a, k) is not None:
            kw[k] = getattr(a, k)
    if a.no_resume:
        kw["resume"] = False
    if a.no_progress:
        kw["progress"] = False
    t = sweep(**kw)
    st = t.column("status").to_pylist() if t.num_rows else []
    print(json.dumps({"out": str(kw.get("out", "results/")), "runs": t.num_rows, "ok": st.count("ok"),
                      "error": st.count("error")}))
    return 0 if st.count("error") == 0 else 1


def _cmd_plot_sweep(a) -> int:
    from .plot import plot_sweep

    out = a.out or "%s/%s_vs_%s.png" % (a.dir.rstrip("/"), a.y, a.x)
    plot_sweep(a.dir, a.x, a.y, a.hue, out, a.logx, a.logy)
    print("wrote %s" % out)
    return 0


def add_commands(sub) -> None:
    """Add ``sweep`` and ``plot-sweep`` to the ``gilmodel`` command's subparsers."""
    s = sub.add_parser("sweep", help="run a sweep described by a TOML file into a Parquet dataset",
                       description="Run a sweep (see gilmodel.sweeps.spec for the TOML form). Exit status 1 when a run failed.")
    s.add_argument("spec", help="the sweep's TOML file")
    s.add_argument("--out", help="dataset folder (overrides the spec's out)")
    s.add_argument("--backend", choices=["local", "ray"], help="overrides the spec's backend")
    s.add_argument("--max-parallel", type=int, help="at most this many runs at once")
    s.add_argument("--address", help="Ray cluster address (backend ray)")
    s.add_argument("--no-resume", action="store_true", help="run every id again, replacing finished rows")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(fn=_cmd_sweep)
    p = sub.add_parser("plot-sweep", help="plot a metric of a sweep against a parameter: medians and spread across repeats")
    p.add_argument("dir", help="the sweep's dataset folder")
    p.add_argument("--x", required=True, help="parameter column for the x axis (e.g. interval_us)")
    p.add_argument("--y", required=True, help="metric column (e.g. convoy_factor)")
    p.add_argument("--hue", help="one line per value of this column (e.g. policy)")
    p.add_argument("--out", help="output file, PNG/SVG/PDF by suffix (default: DIR/Y_vs_X.png)")
    p.add_argument("--logx", action="store_true")
    p.add_argument("--logy", action="store_true")
    p.set_defaults(fn=_cmd_plot_sweep)
