"""Headline metrics of a run, computed from its ``threads`` and ``io`` tables and ``meta``
(so they are the same with logging on or off)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict

import numpy as np

if TYPE_CHECKING:
    from .run import Run

__all__ = ["summary"]


def _col(run: "Run", name: str) -> np.ndarray:
    return run.threads.column(name).to_numpy()


def summary(run: "Run") -> Dict[str, Any]:
    """Metrics of a run.

    Keys: ``elapsed_s`` (until the stop rule was met), ``switches`` and ``switches_per_s``
    (GIL acquisitions that changed the holder), ``acquisitions``, ``futile_wakeups`` and
    ``futile_wakeups_per_s``, ``drop_requests``, ``forced_drops``, ``timeouts``,
    ``gil_utilisation`` (held time / elapsed), ``ticks`` and ``ticks_per_s`` per thread name,
    ``voluntary_ctx_switches``, ``involuntary_ctx_switches``, ``events``; and when a driver
    timed round trips: ``io_pings``, ``io_latency_p50_ms``, ``io_latency_p90_ms``,
    ``io_latency_p99_ms``, ``io_latency_max_ms``.
    """
    m = run.meta
    elapsed = max(m["elapsed_ns"], 1) / 1e9
    names = run.threads.column("name").to_pylist()
    ticks = _col(run, "ticks")
    exit_s = np.maximum(_col(run, "exit_ns") - _col(run, "start_ns"), 1) / 1e9
    out: Dict[str, Any] = {
        "policy": m["gil"]["policy"],
        "elapsed_s": elapsed,
        "stopped_by": m["stopped_by"],
        "switches": int(m["switches"]),
        "switches_per_s": m["switches"] / elapsed,
        "acquisitions": int(_col(run, "acquisitions").sum()),
        "futile_wakeups": int(_col(run, "futile_wakeups").sum()),
        "futile_wakeups_per_s": float(_col(run, "futile_wakeups").sum()) / elapsed,
        "drop_requests": int(_col(run, "drop_requests").sum()),
        "forced_drops": int(_col(run, "forced_drops").sum()),
        "timeouts": int(_col(run, "timeouts").sum()),
        "gil_utilisation": float(_col(run, "hold_ns").sum()) / 1e9 / elapsed,
        "ticks": dict(zip(names, (int(t) for t in ticks))),
        "ticks_per_s": dict(zip(names, (float(t) for t in ticks / exit_s))),
        "voluntary_ctx_switches": int(_col(run, "voluntary_ctx_switches").sum()),
        "involuntary_ctx_switches": int(_col(run, "involuntary_ctx_switches").sum()),
        "events": run.events.num_rows,
    }
    if run.io.num_rows:
        rtt_ms = run.io.column("rtt_ns").to_numpy() / 1e6
        p50, p90, p99 = np.percentile(rtt_ms, [50, 90, 99])
        out.update(io_pings=int(rtt_ms.size), io_latency_p50_ms=float(p50), io_latency_p90_ms=float(p90),
                   io_latency_p99_ms=float(p99), io_latency_max_ms=float(rtt_ms.max()))
    return out
