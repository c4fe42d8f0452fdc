"""``gilmodel demo``: the convoy effect in the real interpreters this machine has, beside the
model configured as each of them, and under the proposed fixes.

Part 1 (real beside model) runs the ``convoy`` probe (``python/gilmodel/probes/convoy.py``)
under each real CPython of the demo's versions, pinned to the demo's cores, and the same
workload in the model configured as that version with its measured profile: the same code
path as ``gilmodel validate``'s convoy probe. Part 2 runs the canned :func:`~gilmodel.scenarios.convoy`
under every GIL of the list, as a user's own script would (``cpython(v)``, no ``tick_ns``).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _core, profiles
from .interpreters import Interpreter
from .plot import timeline
from .policies import CPYTHON_VERSIONS, Policy, resolve_gil
from .run import run
from .scenarios import convoy

__all__ = ["demo", "DEMO_GILS", "default_gils"]


def default_gils() -> Tuple[str, ...]:
    """What the demo compares: CPython 2.7 and the running 3.x (by version), and the fixes."""
    host = "%d.%d" % sys.version_info[:2]
    return ("2.7", host if host != "2.7" else "3.11", "priority", "bfs", "fifo", "nogil")


#: The demo's GILs on this interpreter.
DEMO_GILS = default_gils()


def _real_beside_model(versions: Sequence[str], cores: List[int], total_bytes: int, repeats: int) -> List[Dict[str, Any]]:
    """For each version: the real convoy probe and the model's, interleaved, medians."""
    from .fidelity.model_side import model_probe
    from .probes.runner import ProbeError, run_probe

    rows = []
    args = {"bytes": total_bytes, "chunk": 1024, "cpu_threads": 1}
    for v in versions:
        prof = profiles.for_version(v)
        interp = None if prof.source == "reference" else Interpreter(prof.python, prof.version)
        real: List[Dict[str, Any]] = []
        model: List[Dict[str, Any]] = []
        why = None
        for _ in range(repeats):
            if interp is not None and why is None:
                try:
                    real.append(run_probe(interp, "convoy", args, cores, timeout=120.0))
                except ProbeError as e:
                    why = "the real probe failed: %s" % e
            model.append(model_probe("convoy", v, cores, args, prof))
        row: Dict[str, Any] = {"version": v, "profile": prof.source, "tick_ns": prof.tick_ns,
                               "model_tick_ns": prof.model_tick_ns, "cores": cores, "bytes": total_bytes}
        for side, rs in (("real", real), ("model", model)):
            if rs:
                row[side] = {k: statistics.median(r[k] for r in rs) for k in ("alone_s", "with_cpu_s", "factor")}
                row[side]["factor_range"] = [min(r["factor"] for r in rs), max(r["factor"] for r in rs)]
        if real:
            row["python"] = interp.path
            row["real_version"] = interp.version
            row["model_over_real"] = row["model"]["factor"] / row["real"]["factor"]
        else:
            row["why_no_real"] = why or "no CPython %s on this machine (model with the reference profile of %s)" % (v, prof.version)
        rows.append(row)
    return rows


def _print_real(rows: List[Dict[str, Any]], say) -> None:
    hdr = "%-7s %-9s %10s %10s %9s   %10s %10s %9s   %11s" % (
        "CPython", "side", "alone (s)", "+1 CPU (s)", "factor", "", "", "", "model/real")
    say(hdr)
    say("-" * len(hdr))
    for r in rows:
        for side in ("real", "model"):
            d = r.get(side)
            if d is None:
                say("%-7s %-9s %s" % (r["version"], side, r["why_no_real"]))
                continue
            label = ("real %s" % r["real_version"]) if side == "real" else "model"
            tail = ("%10.2fx" % r["model_over_real"]) if side == "model" and "model_over_real" in r else ""
            say("%-7s %-12s %7.4f %10.4f %8.1fx   (%.1f-%.1fx) %s" % (
                r["version"], label, d["alone_s"], d["with_cpu_s"], d["factor"], d["factor_range"][0], d["factor_range"][1],
                tail))


def _bars(rows: List[Dict[str, Any]]):
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
        ax.set_xticks(xs, ["CPython %s" % r.get("real_version", r["version"]) for r in rows], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("convoy factor\n(+1 CPU / alone)", fontsize=8)
        ax.set_title("Real CPython beside the model, same workload, same cores (medians)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.tick_params(labelsize=7)

    return draw


def demo(out_dir: str = "gilmodel-demo", cores: Optional[Sequence[int]] = None, total_bytes: int = 1 << 20,
         gils: Sequence[str] = DEMO_GILS, pictured: int = 3, window_ms: float = 40.0,
         quiet: bool = False, repeats: int = 3, real: bool = True) -> Dict[str, List[Dict[str, Any]]]:
    """Stream ``total_bytes`` in 1 KiB sends, alone and next to one CPU-bound thread.

    1. For each CPython version in ``gils`` (``"2.7"``, ``"3.11"``...): the real interpreter
       (found on this machine: :func:`gilmodel.profiles.find_python`) runs the ``convoy``
       probe and the model configured as that version (its measured profile) runs the same
       workload, ``repeats`` times each, interleaved; a version with no interpreter here is
       shown as the model alone, with the reason. (``real=False`` skips this part.)
    2. The model under every GIL of ``gils`` (CPython versions or policy names such as
       ``"priority"``), ``repeats`` runs alone and loaded, as the canned
       :func:`~gilmodel.scenarios.convoy` runs it with its default (profiled) costs.

    Prints both tables, writes ``convoy.png`` (the real-beside-model bars over the timelines
    of the first ``window_ms`` of the median loaded model run of the first ``pictured`` GILs)
    and ``summary.json`` into ``out_dir``. Returns ``{"real_vs_model": rows, "model": rows}``.
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
    versions = [g for g, _ in gil_list if g in CPYTHON_VERSIONS and g != "2.6-osx"]
    rvm: List[Dict[str, Any]] = []
    if real and versions:
        say("")
        say("1. Real interpreters beside the model (medians of %d, interleaved; the model takes each version's measured costs)"
            % repeats)
        rvm = _real_beside_model(versions, cores, total_bytes, repeats)
        _print_real(rvm, say)
    say("")
    say("2. The model under each GIL (medians of %d runs; 'futile' = wake-ups that found the GIL taken again)" % repeats)
    rows, pics = [], []
    for v, gil in gil_list:
        # The drain shares the sender's core, alone and loaded, so the baseline does not depend
        # on where the OS starts it, and the CPU thread competes for the GIL, not for a core.
        kw = dict(total_bytes=total_bytes, peer_core=cores[0])
        mid = repeats // 2
        alone = sorted((run(convoy(gil, cores, cpu_threads=0, **kw)).summary() for _ in range(repeats)),
                       key=lambda s: s["elapsed_s"])[mid]
        loaded_runs = sorted((run(convoy(gil, cores, cpu_threads=1, **kw)) for _ in range(repeats)),
                             key=lambda r: r.meta["elapsed_ns"])
        loaded_run = loaded_runs[mid]
        loaded = loaded_run.summary()
        prof = loaded_run.meta["profile"]
        rows.append({
            "gil": v, "policy": loaded["policy"], "cores": cores,
            "profile": "%s %s" % (prof.get("version", "?"), prof.get("source")), "tick_ns": loaded_run.meta["tick_ns"],
            "alone_s": alone["elapsed_s"], "with_cpu_s": loaded["elapsed_s"],
            "with_cpu_range_s": [loaded_runs[0].meta["elapsed_ns"] / 1e9, loaded_runs[-1].meta["elapsed_ns"] / 1e9],
            "convoy_factor": loaded["elapsed_s"] / alone["elapsed_s"],
            "switches_per_s": loaded["switches_per_s"], "futile_wakeups": loaded["futile_wakeups"],
            "drop_requests": loaded["drop_requests"],
        })
        if len(pics) < pictured:
            what = ("CPython %s GIL (%s)" % (v, loaded["policy"])) if v in CPYTHON_VERSIONS else ("%s GIL" % v)
            pics.append(("model, %s: I/O thread streaming next to a CPU thread" % what, loaded_run))
    hdr = "%-8s %-9s %-16s %10s %12s %15s %8s %11s %8s" % ("gil", "policy", "costs of", "alone (s)", "+1 CPU (s)",
                                                         "+1 CPU range", "factor", "switches/s", "futile")
    say(hdr)
    say("-" * len(hdr))
    for r in rows:
        say("%-8s %-9s %-16s %10.4f %12.4f %7.3f-%-7.3f %7.1fx %11.0f %8d" % (
            r["gil"], r["policy"], r["profile"], r["alone_s"], r["with_cpu_s"], r["with_cpu_range_s"][0],
            r["with_cpu_range_s"][1], r["convoy_factor"], r["switches_per_s"], r["futile_wakeups"]))
    header = (1.9, _bars(rvm)) if rvm else None
    png = timeline(pics, os.path.join(out_dir, "convoy.png"), 0.0, window_ms, header=header)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"host": json.loads(_core.host_info()), "real_vs_model": rvm, "model": rows}, f, indent=2)
    say("")
    say("wrote %s and %s" % (png, os.path.join(out_dir, "summary.json")))
    return {"real_vs_model": rvm, "model": rows}
