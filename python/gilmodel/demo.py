"""``gilmodel demo``: the convoy effect under CPython 2.7's and 3.11's GILs, and under the
proposed fixes, side by side."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

from . import _core
from .policies import CPYTHON_VERSIONS, POLICIES, Policy, cpython
from .plot import timeline
from .run import run
from .scenarios import convoy

__all__ = ["demo"]


#: What the demo compares: two CPython versions (by version) and the fixes (by policy name).
DEMO_GILS = ("2.7", "3.11", "priority", "bfs", "fifo", "nogil")


def _gil(name: str) -> Policy:
    if name in CPYTHON_VERSIONS:
        return cpython(name)
    if name in POLICIES:
        return POLICIES[name]()
    raise ValueError("demo.gils: unknown GIL %r; expected a CPython version (%s) or a policy name (%s)"
                     % (name, ", ".join(CPYTHON_VERSIONS), ", ".join(POLICIES)))


def demo(out_dir: str = "gilmodel-demo", cores: Optional[Sequence[int]] = None, total_bytes: int = 1 << 20,
         gils: Sequence[str] = DEMO_GILS, pictured: int = 3, window_ms: float = 40.0,
         quiet: bool = False) -> List[Dict[str, Any]]:
    """Stream ``total_bytes`` in 1 KiB sends, alone and next to one CPU-bound thread (3 runs
    each), under each GIL of ``gils`` (CPython versions such as ``"3.11"`` or policy names such
    as ``"priority"``); print a table of medians, write ``convoy.png`` (timelines of the first
    ``window_ms`` of the median loaded run of the first ``pictured`` GILs) and ``summary.json``
    into ``out_dir``. Returns the table rows."""
    gil_list = [(g, _gil(g)) for g in gils]  # refuse unknown names before any run
    if not gil_list:
        raise ValueError("demo.gils: give at least one GIL")
    cores = list(cores) if cores is not None else _core.allowed_cores()[:2]
    os.makedirs(out_dir, exist_ok=True)
    rows, pics = [], []
    say = (lambda *a: None) if quiet else print
    say("gilmodel %s demo: convoy effect, %d KiB in 1 KiB sends, cores %s" % (_core.__version__, total_bytes >> 10, cores))
    for v, gil in gil_list:
        # The drain shares the sender's core, alone and loaded, so the baseline does not depend
        # on where the OS starts it, and the CPU thread competes for the GIL, not for a core.
        kw = dict(total_bytes=total_bytes, peer_core=cores[0])
        # Each run is one sample of a race between real threads: take medians of 3.
        alone = sorted((run(convoy(gil, cores, cpu_threads=0, **kw)).summary() for _ in range(3)),
                       key=lambda s: s["elapsed_s"])[1]
        loaded_runs = sorted((run(convoy(gil, cores, cpu_threads=1, **kw)) for _ in range(3)),
                             key=lambda r: r.meta["elapsed_ns"])
        loaded_run = loaded_runs[1]
        loaded = loaded_run.summary()
        rows.append({
            "gil": v, "policy": loaded["policy"], "cores": cores,
            "alone_s": alone["elapsed_s"], "with_cpu_s": loaded["elapsed_s"],
            "with_cpu_range_s": [loaded_runs[0].meta["elapsed_ns"] / 1e9, loaded_runs[-1].meta["elapsed_ns"] / 1e9],
            "convoy_factor": loaded["elapsed_s"] / alone["elapsed_s"],
            "switches_per_s": loaded["switches_per_s"], "futile_wakeups": loaded["futile_wakeups"],
            "drop_requests": loaded["drop_requests"],
        })
        if len(pics) < pictured:
            what = ("CPython %s GIL (%s)" % (v, loaded["policy"])) if v in CPYTHON_VERSIONS else ("%s GIL" % v)
            pics.append(("%s: I/O thread streaming next to a CPU thread" % what, loaded_run))
    hdr = "%-8s %-9s %10s %12s %15s %8s %11s %8s" % ("gil", "policy", "alone (s)", "+1 CPU (s)", "+1 CPU range",
                                                    "factor", "switches/s", "futile")
    say(hdr)
    say("-" * len(hdr))
    for r in rows:
        say("%-8s %-9s %10.4f %12.4f %7.3f-%-7.3f %7.1fx %11.0f %8d" % (
            r["gil"], r["policy"], r["alone_s"], r["with_cpu_s"], r["with_cpu_range_s"][0], r["with_cpu_range_s"][1],
            r["convoy_factor"], r["switches_per_s"], r["futile_wakeups"]))
    say("(medians of 3 runs each; 'futile' = wake-ups of a waiter that found the GIL taken again)")
    png = timeline(pics, os.path.join(out_dir, "convoy.png"), 0.0, window_ms)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"host": json.loads(_core.host_info()), "rows": rows}, f, indent=2)
    say("wrote %s and %s" % (png, os.path.join(out_dir, "summary.json")))
    return rows
