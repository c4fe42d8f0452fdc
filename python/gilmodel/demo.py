"""``gilmodel demo``: the convoy effect under CPython 2.7's and 3.11's GILs, side by side."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

from . import _core
from .policies import cpython
from .plot import timeline
from .run import run
from .scenarios import convoy

__all__ = ["demo"]


def demo(out_dir: str = "gilmodel-demo", cores: Optional[Sequence[int]] = None, total_bytes: int = 1 << 20,
         versions: Sequence[str] = ("2.7", "3.11"), window_ms: float = 40.0, quiet: bool = False) -> List[Dict[str, Any]]:
    """Stream ``total_bytes`` in 1 KiB sends, alone and next to one CPU-bound thread, under each
    version's GIL; print a table, write ``convoy.png`` (timelines of the first ``window_ms``
    of each loaded run) and ``summary.json`` into ``out_dir``. Returns the table rows."""
    cores = list(cores) if cores is not None else _core.allowed_cores()[:2]
    os.makedirs(out_dir, exist_ok=True)
    rows, pics = [], []
    say = (lambda *a: None) if quiet else print
    say("gilmodel %s demo: convoy effect, %d KiB in 1 KiB sends, cores %s" % (_core.__version__, total_bytes >> 10, cores))
    for v in versions:
        gil = cpython(v)
        alone = run(convoy(gil, cores, cpu_threads=0, total_bytes=total_bytes)).summary()
        loaded_run = run(convoy(gil, cores, cpu_threads=1, total_bytes=total_bytes))
        loaded = loaded_run.summary()
        rows.append({
            "version": v, "policy": loaded["policy"], "cores": cores,
            "alone_s": alone["elapsed_s"], "with_cpu_s": loaded["elapsed_s"],
            "convoy_factor": loaded["elapsed_s"] / alone["elapsed_s"],
            "switches_per_s": loaded["switches_per_s"], "futile_wakeups": loaded["futile_wakeups"],
            "drop_requests": loaded["drop_requests"],
        })
        pics.append(("CPython %s GIL (%s): I/O thread streaming next to a CPU thread" % (v, loaded["policy"]), loaded_run))
    hdr = "%-8s %-9s %10s %12s %8s %12s %14s" % ("version", "policy", "alone (s)", "+1 CPU (s)", "factor", "switches/s", "futile wakeups")
    say(hdr)
    say("-" * len(hdr))
    for r in rows:
        say("%-8s %-9s %10.4f %12.4f %7.1fx %12.0f %14d" % (r["version"], r["policy"], r["alone_s"], r["with_cpu_s"],
                                                           r["convoy_factor"], r["switches_per_s"], r["futile_wakeups"]))
    png = timeline(pics, os.path.join(out_dir, "convoy.png"), 0.0, window_ms)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"host": json.loads(_core.host_info()), "rows": rows}, f, indent=2)
    say("wrote %s and %s" % (png, os.path.join(out_dir, "summary.json")))
    return rows
