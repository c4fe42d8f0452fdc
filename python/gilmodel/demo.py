"""``gilmodel demo``: the convoy effect in the real interpreters this machine has, beside the
model configured as each of them, and under the proposed fixes.

For each CPython version it runs the ``convoy`` probe (``python/gilmodel/probes/convoy.py``)
under the real interpreter, with the demo's cores as its affinity, and the same workload in
the model configured as that version with its measured profile: the code path of
``gilmodel validate``'s convoy probe (:func:`gilmodel.fidelity.model_side.stream`). The
proposed GILs run the same workload in the model alone.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _core, profiles
from .experiments import get
from .interpreters import Interpreter
from .plot import timeline
from .policies import CPYTHON_VERSIONS, Policy, resolve_gil
from .probes.runner import ProbeError, run_probe

__all__ = ["demo", "DEMO_GILS", "default_gils"]


def default_gils() -> Tuple[str, ...]:
    """What the demo compares: CPython 2.7 and the running 3.x (by version), and the fixes."""
    host = "%d.%d" % sys.version_info[:2]
    return ("2.7", host if host != "2.7" else "3.11", "priority", "bfs", "fifo", "nogil")


#: The demo's GILs on this interpreter.
DEMO_GILS = default_gils()


def _measure(name: str, gil: Policy, cores: List[int], total_bytes: int, repeats: int, real_side: bool) -> Dict[str, Any]:
    """One GIL: the real interpreter's convoy probe (CPython versions this machine has) and the
    model's same workload, ``repeats`` each, interleaved; medians and ranges."""
    version = name if name in CPYTHON_VERSIONS else None
    prof = profiles.for_policy(gil)
    interp = Interpreter(prof.python, prof.version) if real_side and version and prof.source != "reference" else None
    args = {"bytes": total_bytes, "chunk": 1024, "cpu_threads": 1}
    real: List[Dict[str, Any]] = []
    model: List[Tuple[float, float, Any]] = []
    why = None
    for _ in range(repeats):
        if interp is not None and why is None:
            try:
                real.append(run_probe(interp, "convoy", args, cores, timeout=120.0))
            except ProbeError as e:
                why = "the real probe failed: %s" % e
        # The registry's convoy_factor, with the profile of the GIL's interpreter (as every
        # scenario without a tick_ns): the same stream clock as the probe's.
        m = get("convoy_factor").run(gil, cores, total_bytes=total_bytes, chunk_bytes=1024, cpu_threads=1)
        model.append((m.metrics["alone_s"], m.metrics["with_cpu_s"], m.runs["loaded"]))
    row: Dict[str, Any] = {"gil": name, "policy": gil.to_spec()["policy"], "cores": cores, "bytes": total_bytes,
                           "profile": {"version": prof.version, "source": prof.source, "tick_ns": prof.tick_ns,
                                       "model_tick_ns": prof.model_tick_ns}}
    model.sort(key=lambda m: m[1] / m[0])
    mid = model[len(model) // 2]
    s = mid[2].summary()
    row["model"] = {"alone_s": statistics.median(m[0] for m in model), "with_cpu_s": statistics.median(m[1] for m in model),
                    "factor": mid[1] / mid[0], "factor_range": [model[0][1] / model[0][0], model[-1][1] / model[-1][0]],
                    "switches_per_s": s["switches_per_s"], "futile_wakeups": s["futile_wakeups"]}
    row["_run"] = mid[2]
    if real:
        fs = sorted(r["factor"] for r in real)
        row["real"] = {"alone_s": statistics.median(r["alone_s"] for r in real),
                       "with_cpu_s": statistics.median(r["with_cpu_s"] for r in real),
                       "factor": statistics.median(fs), "factor_range": [fs[0], fs[-1]]}
        row["python"], row["real_version"] = interp.path, interp.version
        row["model_over_real"] = row["model"]["factor"] / row["real"]["factor"]
    elif version and not real_side:
        row["why_no_real"] = "the real interpreters were not asked for (real=False)"
    elif version:
        row["why_no_real"] = why or "no CPython %s on this machine: the model alone, with the reference profile of %s" % (
            version, prof.version)
    else:
        row["why_no_real"] = "a proposed GIL: no real interpreter has it (costs of CPython %s)" % prof.version
    return row


def _print(rows: List[Dict[str, Any]], say) -> None:
    hdr = "%-8s %-13s %10s %11s %9s %15s %11s %8s %11s" % (
        "gil", "side", "alone (s)", "+1 CPU (s)", "factor", "factor range", "switches/s", "futile", "model/real")
    say(hdr)
    say("-" * len(hdr))
    for r in rows:
        if "real" in r:
            d = r["real"]
            say("%-8s %-13s %10.4f %11.4f %8.1fx %7.1f-%-7.1f %11s %8s" % (
                r["gil"], "real " + r["real_version"], d["alone_s"], d["with_cpu_s"], d["factor"], d["factor_range"][0],
                d["factor_range"][1], "", ""))
        d = r["model"]
        say("%-8s %-13s %10.4f %11.4f %8.1fx %7.1f-%-7.1f %11.0f %8d %11s" % (
            r["gil"], "model", d["alone_s"], d["with_cpu_s"], d["factor"], d["factor_range"][0], d["factor_range"][1],
            d["switches_per_s"], d["futile_wakeups"], ("%.2fx" % r["model_over_real"]) if "real" in r else ""))
        if "real" not in r and r["gil"] in CPYTHON_VERSIONS:
            say("%-8s %-13s %s" % (r["gil"], "real", r["why_no_real"]))


def _bars(all_rows: List[Dict[str, Any]]):
    rows = [r for r in all_rows if r["gil"] in CPYTHON_VERSIONS]

    def draw(ax) -> None:
        import numpy as np

        xs = np.arange(len(rows))
        real = [r["real"]["factor"] if "real" in r else np.nan for r in rows]
        model = [r["model"]["factor"] for r in rows]
        ax.bar(xs - 0.2, real, 0.38, color="#4c72b0", label="real interpreter (probe)")
        ax.bar(xs + 0.2, model, 0.38, color="#dd8452", label="model, configured as that version")
        for x, rv, mv in zip(xs, real, model):
            if rv == rv:
                ax.text(x - 0.2, rv, "%.0fx" % rv, ha="center", va="bottom", fontsize=7)
            else:
                ax.text(x - 0.2, mv, "no real\ninterpreter", ha="center", va="bottom", fontsize=6.5)
            ax.text(x + 0.2, mv, "%.0fx" % mv, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(xs, ["CPython %s" % r.get("real_version", r["gil"]) for r in rows], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("convoy factor\n(+1 CPU / alone)", fontsize=8)
        ax.set_title("Real CPython beside the model, same workload, same cores (medians)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.tick_params(labelsize=7)

    return draw


def demo(out_dir: str = "gilmodel-demo", cores: Optional[Sequence[int]] = None, total_bytes: int = 1 << 20,
         gils: Sequence[str] = DEMO_GILS, pictured: int = 3, window_ms: float = 40.0,
         quiet: bool = False, repeats: int = 3, real: bool = True) -> List[Dict[str, Any]]:
    """Stream ``total_bytes`` in 1 KiB sends, alone and next to one CPU-bound thread, under
    each GIL of ``gils`` (CPython versions such as ``"3.11"`` or policy names such as
    ``"priority"``).

    For a CPython version this machine has (:func:`gilmodel.profiles.find_python`), the real
    interpreter runs the ``convoy`` probe on ``cores`` and the model configured as that
    version, with its measured profile, runs the same workload (the sender sleeps 5 ms, then
    times its stream from its next GIL acquisition, as the probe's does); ``repeats`` times
    each, interleaved. A version with no interpreter here, and every proposed GIL, is shown as
    the model alone, with the reason (the fixes run with the running interpreter's costs).
    ``real=False`` skips the real interpreters.

    Prints one table, writes ``convoy.png`` (the real-beside-model bars over the timelines of
    the first ``window_ms`` of the median loaded model run of the first ``pictured`` GILs) and
    ``summary.json`` into ``out_dir``. Returns the rows.
    """
    gil_list: List[Tuple[str, Policy]] = [(g, resolve_gil(g)) for g in gils]  # refuse unknown names first
    if not gil_list:
        raise ValueError("demo.gils: give at least one GIL")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError("demo.repeats: %r must be a positive integer" % (repeats,))
    cores = list(cores) if cores is not None else _core.allowed_cores()[:2]
    os.makedirs(out_dir, exist_ok=True)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    say("gilmodel %s demo: the convoy effect, %d KiB in 1 KiB sends, alone and next to one CPU thread, cores %s"
        % (_core.__version__, total_bytes >> 10, ",".join(map(str, cores))))
    say("real: the interpreter itself (python/gilmodel/probes/convoy.py); model: the replica of its GIL with its measured "
        "costs; medians of %d, interleaved" % repeats)
    say("")
    rows = []
    for name, gil in gil_list:
        rows.append(_measure(name, gil, cores, total_bytes, repeats, real))
    _print(rows, say)
    say("'factor' = +1 CPU / alone; 'futile' = wake-ups of a waiter that found the GIL taken again")
    pics = []
    for r in rows[:pictured]:
        what = ("CPython %s GIL (%s)" % (r["gil"], r["policy"])) if r["gil"] in CPYTHON_VERSIONS else ("%s GIL" % r["gil"])
        pics.append(("model, %s: I/O thread streaming next to a CPU thread" % what, r["_run"]))
    header = (1.9, _bars(rows)) if any("real" in r for r in rows) else None
    png = timeline(pics, os.path.join(out_dir, "convoy.png"), 0.0, window_ms, header=header)
    for r in rows:
        del r["_run"]
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"host": json.loads(_core.host_info()), "rows": rows}, f, indent=2)
    say("wrote %s and %s" % (png, os.path.join(out_dir, "summary.json")))
    return rows
