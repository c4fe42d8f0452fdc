"""The reproduction gallery: each phenomenon of docs/design.md §1, run, tabulated and drawn.

``gilmodel reproduce NAME`` (or :func:`reproduce`) runs one experiment and writes into the
output folder ``NAME.png`` (its figure), ``NAME.md`` (its table, with the machine and the
command) and ``NAME.json`` (the same rows, for scripts). ``scale`` multiplies every workload
size (1.0: the sizes of the committed gallery; tests use a small fraction).

Experiments, named for what they show (the old names ``p1`` … ``p8``, after the phenomena
P1–P8 of docs/design.md §1, are aliases): ``battle`` (P1, two CPU threads), ``syscall-storm``
(P2), ``ctrl-c`` (P3), ``interval-handoffs`` (P4), ``dedupe-ablation`` (P5, the drop-request
check), ``who-wins`` (P6), ``convoy`` (P7), ``better-gils`` (P8/P9: the proposed fixes and
baselines beside CPython's GILs) and ``thread-pool`` (threads waiting on each other through a
``queue.Queue``, real beside model), ``pipeline`` (a producer and a consumer through a
``queue.Queue``: how long an item waits, real beside model and under every policy). Their workloads and metrics come from the registry
(:mod:`gilmodel.experiments`) where it has them. Every scenario runs with the measured profile
of its interpreter (no explicit ``tick_ns``); ``battle``, ``interval-handoffs`` and ``convoy``
also run the real interpreters' probes on the same cores, beside the model (``real_*``
columns; None where this machine has no such interpreter).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core, analysis, plot, profiles
from .experiments import get
from .policies import IntervalGIL, cpython
from .run import Run, run
from .scenario import Scenario, Thread, cpu, loop
from .scenarios import syscalls

__all__ = ["EXPERIMENTS", "ALIASES", "canonical", "reproduce"]

Rows = List[Dict[str, Any]]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cores(cores: Optional[Sequence[int]]) -> Tuple[List[int], List[int]]:
    allowed = list(cores) if cores is not None else _core.allowed_cores()
    return allowed[:2], allowed[:1]


def _layouts(cores):
    two, one = _cores(cores)
    out = [("1 core", one)]
    if len(two) > 1:
        out.append(("2 cores", two))
    return out


def _real(version: str, probe: str, args: Dict[str, Any], cores: Sequence[int]) -> Tuple[Optional[Dict[str, Any]], str]:
    """Run ``probe`` under this machine's CPython ``version`` (as ``gilmodel validate`` does);
    ``(result, interpreter version)``, or ``(None, why)`` where there is no such interpreter."""
    from .interpreters import Interpreter
    from .probes.runner import ProbeError, run_probe

    prof = profiles.for_version(version)
    if prof.source == "reference":
        return None, "no CPython %s here" % version
    try:
        return run_probe(Interpreter(prof.python, prof.version), probe, args, cores, timeout=300.0), prof.version
    except ProbeError as e:
        return None, str(e)[:200]


def _beside(probe: str, scale: float, cores, without_real: Callable[[Dict[str, Any]], Dict[str, Any]]):
    """For 2.7 and 3.11 on each core layout, the real interpreter's ``probe`` and its model side
    fed as ``validate`` feeds it: the real side's fields of :data:`gilmodel.fidelity.FROM_REAL`,
    or ``without_real(args)`` where there is no real interpreter. Yields ``(version, layout
    label, its cores, fed fields, real result or None, who, model result)``."""
    from .fidelity import FROM_REAL
    from .fidelity.model_side import model_probe
    from .probes.runner import probe_args

    args = probe_args(probe, scale, {})
    for v in ("2.7", "3.11"):
        prof = profiles.for_version(v)
        for label, cs in _layouts(cores):
            real, who = _real(v, probe, args, cs)
            fed = {k: real.get(k) for k in FROM_REAL[probe]} if real else without_real(args)
            yield v, label, cs, fed, real, who, model_probe(probe, v, cs, dict(args, **fed), prof)


def _bars_real_model(ax, rows: Rows, model_key: str, real_key: str, colors, no_value: str = "no value") -> None:
    """Model bars with the real interpreter's value beside each (hatched), where there is one;
    a side that ran and gave no value (a run in which no ping was answered) says ``no_value``."""
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, [np.nan if r[model_key] is None else r[model_key] for r in rows], 0.38, color=colors, label="model")
    real = [r.get(real_key) for r in rows]
    ax.bar(xs + 0.2, [np.nan if v is None else v for v in real], 0.38, color="white", edgecolor=colors, hatch="///",
           label="real interpreter (probe)")
    for x, r, v in zip(xs, rows, real):
        real_text = None if v is not None else no_value if r.get("real") else "no real\ninterpreter"
        if r[model_key] is None and real_text == no_value:
            ax.text(x, 0, no_value + "\n(either side)", ha="center", va="bottom", fontsize=6)
            continue
        if real_text:
            ax.text(x + 0.2, 0, real_text, ha="center", va="bottom", fontsize=6)
        if r[model_key] is None:
            ax.text(x - 0.2, 0, no_value, ha="center", va="bottom", fontsize=6)
    ax.set_xticks(xs, ["%s\n%s" % (r["version"], r["cores"]) for r in rows])
    ax.legend(fontsize=7, frameon=False)


def battle(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P1: two CPU-bound threads, run one after the other and then at once, under the 2.7 and
    3.11 GILs, on 1 and 2 cores; beside each, the real interpreter's ``cpu_pair`` probe on the
    same cores (the model's ticks are the probe's countdown iterations in its profile's ticks)."""
    from .probes.runner import probe_args

    rows, runs = [], {}
    for v in ("2.7", "3.11"):
        prof = profiles.for_version(v)
        args = probe_args("cpu_pair", scale, {"ns_per_iter": prof.ns_per_iter})
        ticks = prof.iter_ticks(args["n"])
        for label, cs in _layouts(cores):
            res = get("cpu_pair").run(cpython(v), cs, ticks=ticks)
            real, who = _real(v, "cpu_pair", args, cs)
            r, s = res.runs["threaded"], res.metrics
            runs[(v, label)] = r
            ratio = s["cpu_pair_ratio"]
            rows.append({"version": v, "cores": label, "sequential_s": s["sequential_s"], "threaded_s": s["threaded_s"],
                         "threaded/sequential": ratio, "real_threaded/sequential": None if real is None else real["ratio"],
                         "real": who, "switches_per_s": s["switches_per_s"],
                         "futile_wakeups_per_s": s["futile_wakeups_per_s"], "tick_ns": r.meta["tick_ns"]})
            say("  battle %s %s: ratio %.2f (real %s)" % (v, label, ratio, "-" if real is None else "%.2f" % real["ratio"]))
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    _bars_real_model(ax, rows, "threaded/sequential", "real_threaded/sequential",
                     ["#d62728" if r["version"] == "2.7" else "#2ca02c" for r in rows])
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_ylabel("threaded time / sequential time")
    ax.set_title("Two CPU-bound threads: slower together?", fontsize=10, loc="left")
    key = ("2.7", "2 cores") if ("2.7", "2 cores") in runs else ("2.7", "1 core")
    _lanes(ax2, runs[key], 0.0, 0.2, "2.7, %s: the GIL bounces every check (first 0.2 ms)" % key[1])
    return _save(fig, out, "battle"), rows


def syscall_storm(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P2: the same two CPU tasks sequential and threaded: context switches and glibc
    primitive calls (all of them, and the waits that blocked), tick GIL on both lock
    implementations, 1 and 2 cores (:func:`gilmodel.scenarios.syscalls`). The calls barely
    change; what explodes is how many of them block, each a futex system call and a context
    switch."""
    ticks = max(10_000, int(2_000_000 * scale))
    rows = []
    for v in ("2.7", "2.6-osx"):
        for label, cs in _layouts(cores):
            res = syscalls(cpython(v), cs, ticks)
            for mode in ("sequential", "threaded"):
                m = res[mode]
                # Blocking waits: sem_wait is only called after sem_trywait failed; cond waits block.
                rows.append({"lock": res["gil"]["lock"], "cores": label, "mode": mode,
                             "voluntary_ctx": m["voluntary_ctx_switches"], "involuntary_ctx": m["involuntary_ctx_switches"],
                             "primitive_calls": m["primitive_calls"], "blocking_waits": m["futex_level"]["blocking_waits"],
                             "elapsed_s": m["elapsed_s"]})
                say("  syscall-storm %s %s %s: %d ctx switches" % (v, label, mode, rows[-1]["voluntary_ctx"] + rows[-1]["involuntary_ctx"]))
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, key, title in ((axes[0], ("voluntary_ctx", "involuntary_ctx"), "context switches (getrusage)"),
                           (axes[1], ("blocking_waits",), "blocking waits (sem_wait after a failed trywait, cond_wait)")):
        labels = ["%s\n%s\n%s" % (r["lock"], r["cores"], r["mode"][:3]) for r in rows]
        vals = [max(1, sum(r[k] for k in key)) for r in rows]
        ax.bar(labels, vals, color=["#1f77b4" if r["mode"] == "sequential" else "#d62728" for r in rows])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    return _save(fig, out, "syscall-storm"), rows


def interval_handoffs(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P4: two CPU threads under the interval GIL (3.11's, with its measured costs) at
    intervals from 0.5 to 20 ms: hand-offs per second against 1/interval, and the hand-off
    latency; beside them, real 3.11's ``switch_sweep`` probe at the same intervals and cores."""
    two, _ = _cores(cores)
    dur = max(0.05, 0.5 * scale)
    ivs = (500, 1000, 2000, 5000, 10000, 20000)
    real, who = _real("3.11", "switch_sweep", {"intervals_ms": ",".join("%g" % (iv / 1000) for iv in ivs), "duration": dur,
                                               "pings": 3}, two)
    real_rate = {round(r["interval_ms"] * 1000): r["switches_per_s"] for r in (real or {}).get("rows", [])}
    rows = []
    for iv in ivs:
        s = get("handoffs").run(dataclasses.replace(cpython("3.11"), interval_us=iv), two, duration_s=dur).metrics
        rows.append({"interval_ms": iv / 1000, "switches_per_s": s["switches_per_s"], "real_switches_per_s": real_rate.get(iv),
                     "real": who, "one_per_interval": 1e6 / iv,
                     "handoff_latency_p50_us": s.get("handoff_latency_p50_us", float("nan")),
                     "wait_p50_ms": s.get("wait_p50_ms", float("nan"))})
        say("  interval-handoffs interval %g ms: %.0f switches/s (real %s)" % (iv / 1000, s["switches_per_s"],
                                                             "-" if iv not in real_rate else "%.0f" % real_rate[iv]))
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    x = [r["interval_ms"] for r in rows]
    ax.loglog(x, [r["switches_per_s"] for r in rows], "o-", label="model (3.11's costs)")
    if real_rate:
        ax.loglog(x, [r["real_switches_per_s"] for r in rows], "s--", mfc="none", label="real CPython %s" % who)
    ax.loglog(x, [r["one_per_interval"] for r in rows], "k--", lw=0.8, label="1 / interval")
    ax.set_xlabel("switch interval (ms)")
    ax.set_ylabel("hand-offs per second")
    ax.legend(fontsize=8)
    ax.set_title("Two CPU threads, %s: one hand-off per interval" % ("2 cores" if len(two) > 1 else "1 core"), fontsize=10, loc="left")
    ax2.semilogx(x, [r["handoff_latency_p50_us"] for r in rows], "o-", color="#9467bd")
    ax2.set_xlabel("switch interval (ms)")
    ax2.set_ylabel("hand-off latency, median (µs)")
    ax2.set_title("Release → acquire by the waiter (condvar wake-up)", fontsize=10, loc="left")
    return _save(fig, out, "interval-handoffs"), rows


def dedupe_ablation(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P5: three CPU threads under the interval GIL, with and without the switch_number check
    before a waiter sets the drop request."""
    two, _ = _cores(cores)
    dur = max(0.1, 1.0 * scale)
    rows = []
    for dedupe in (True, False):
        for rep in range(3):
            gil = IntervalGIL(interval_us=2000, dedupe_drop_request=dedupe)
            sc = Scenario(gil, [Thread("c%d" % i, [loop(cpu(10_000))]) for i in range(3)], cores=two, duration_s=dur)
            r = run(sc)
            s = r.summary()
            total = sum(s["ticks"].values())
            hold_ms = analysis.holds(r.events).column("dur_ns").to_numpy() / 1e6
            rows.append({"dedupe_drop_request": dedupe, "repeat": rep, "switches_per_s": s["switches_per_s"],
                         "drop_requests_per_s": s["drop_requests_per_s"], "ticks_per_switch": total / max(1, s["switches"]),
                         "median_hold_ms": float(np.median(hold_ms)) if hold_ms.size else float("nan")})
        say("  dedupe-ablation dedupe=%s: %.0f switches/s" % (dedupe, statistics.median(r["switches_per_s"] for r in rows if r["dedupe_drop_request"] == dedupe)))
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, k, t in ((axes[0], "switches_per_s", "hand-offs per second"), (axes[1], "ticks_per_switch", "work (ticks) per hand-off")):
        for i, d in enumerate((True, False)):
            v = [r[k] for r in rows if r["dedupe_drop_request"] == d]
            ax.bar(i, statistics.median(v), color="#2ca02c" if d else "#d62728")
            ax.plot([i] * len(v), v, "k.", ms=4)
        ax.set_xticks([0, 1], ["switch_number check on\n(CPython)", "check off\n(ablation)"])
        ax.set_title(t + " (3 CPU threads, 2 ms)", fontsize=10, loc="left")
    return _save(fig, out, "dedupe-ablation"), rows


def who_wins(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P6: who wins the GIL? Three CPU threads; the share of hand-offs each wins and its share
    of GIL time, by placement, under the 2.7 and 3.11 GILs."""
    two, one = _cores(cores)
    dur = max(0.1, 1.0 * scale)
    layouts = [("all on one core", [one[0]] * 3)]
    if len(two) > 1:
        layouts += [("a alone, b+c share a core", [two[0], two[1], two[1]]), ("a+b share, c alone", [two[0], two[0], two[1]])]
    rows = []
    for v in ("2.7", "3.11"):
        for label, cs in layouts:
            sc = Scenario(cpython(v), [Thread(n, [loop(cpu(10_000))], core=c) for n, c in zip("abc", cs)],
                          cores=sorted(set(cs)), duration_s=dur)
            r = run(sc)
            ho = analysis.handoffs(r.events).column("to_thread").to_numpy()
            s = r.summary()
            won = np.bincount(ho, minlength=3) / max(1, ho.size)
            for k, n in enumerate("abc"):
                rows.append({"version": v, "placement": label, "thread": n, "core": cs[k], "handoffs_won": float(won[k]),
                             "gil_share": s["share"][n], "handoffs": int(ho.size)})
            say("  who-wins %s %s: won %s" % (v, label, " ".join("%.2f" % w for w in won)))
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, v in zip(axes, ("2.7", "3.11")):
        mine = [r for r in rows if r["version"] == v]
        places = list(dict.fromkeys(r["placement"] for r in mine))
        bottom = np.zeros(len(places))
        for n, c in zip("abc", ("#1f77b4", "#ff7f0e", "#2ca02c")):
            vals = np.array([next(r["gil_share"] for r in mine if r["placement"] == p and r["thread"] == n) for p in places])
            ax.bar(places, vals, bottom=bottom, color=c, label="thread %s" % n)
            bottom += vals
        ax.set_title("CPython %s GIL: share of GIL time" % v, fontsize=10, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    axes[0].legend(fontsize=8)
    return _save(fig, out, "who-wins"), rows


def convoy(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P7: the convoy effect: an I/O thread streaming 1 KiB sends, alone and next to one CPU
    thread, under the 2.7 and 3.11 GILs, on 1 and 2 cores (medians of 3); beside each, the
    real interpreter's ``convoy`` probe on the same cores (median of 3)."""
    total = max(16 << 10, int((1 << 20) * scale)) // 1024 * 1024
    rows, shown = [], None
    for v in ("2.7", "3.11"):
        for label, cs in _layouts(cores):
            # Three convoy_factor runs (the registry's): the median time alone, the middle
            # loaded run, and the loaded range.
            res = sorted((get("convoy_factor").run(cpython(v), cs, cpu_threads=1, total_bytes=total, peer_core=cs[-1])
                          for _ in range(3)), key=lambda x: x.metrics["with_cpu_s"])
            alone = statistics.median(x.metrics["alone_s"] for x in res)
            reals = [_real(v, "convoy", {"bytes": total, "chunk": 1024, "cpu_threads": 1}, cs) for _ in range(3)]
            real = [r["factor"] for r, _ in reals if r is not None]
            s = res[1].metrics
            mid = s["with_cpu_s"]
            rows.append({"version": v, "cores": label, "alone_s": alone, "with_cpu_s": mid,
                         "convoy_factor": mid / alone, "real_convoy_factor": statistics.median(real) if real else None,
                         "real": reals[0][1], "io_response_p50_ms": s.get("io_response_p50_ms", float("nan")),
                         "with_cpu_min_s": res[0].metrics["with_cpu_s"], "with_cpu_max_s": res[-1].metrics["with_cpu_s"]})
            loaded = [x.runs["loaded"] for x in res]
            if v == "3.11" and label == "2 cores":
                shown = loaded[1]
            say("  convoy %s %s: factor %.1f (real %s)" % (v, label, rows[-1]["convoy_factor"],
                                                    "-" if not real else "%.1f" % rows[-1]["real_convoy_factor"]))
    shown = shown or loaded[1]
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    _bars_real_model(ax, rows, "convoy_factor", "real_convoy_factor",
                     ["#d62728" if r["version"] == "2.7" else "#2ca02c" for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("time with a CPU thread / alone")
    ax.set_title("Streaming 1 KiB sends next to a CPU thread", fontsize=10, loc="left")
    _lanes(ax2, shown, 0.0, 30.0, "3.11: one send per 5 ms interval (first 30 ms)")
    return _save(fig, out, "convoy"), rows


def ctrl_c(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P3: Ctrl-C with threads: a signal reaches the main thread while it joins CPU-bound
    workers, under the 2.7 and 3.11 GILs, on 1 and 2 cores."""
    from .scenarios import ctrl_c as run_ctrl_c

    work = max(50_000, int(2_000_000 * scale))
    rows, shown = [], None
    for v in ("2.7", "3.11"):
        for label, cs in _layouts(cores):
            r = run_ctrl_c(cpython(v), cs, workers=2, work_ticks=work, signal_at_us=20_000)
            rows.append({"version": v, "cores": label, "handler_latency_ms": r["handler_latency_ms"],
                         "handler_waited_for_join": r["handler_waited_for_join"],
                         "holds_per_s_before": r["holds_per_s_before"], "holds_per_s_after": r["holds_per_s_after"],
                         "ticks_per_s_before": r["ticks_per_s_before"], "ticks_per_s_after": r["ticks_per_s_after"]})
            if v == "2.7" and shown is None:
                shown = r["run"]
            say("  ctrl-c %s %s: handler after %.1f ms" % (v, label, rows[-1]["handler_latency_ms"] or float("nan")))
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    labels = ["%s\n%s" % (r["version"], r["cores"]) for r in rows]
    ax.bar(labels, [r["handler_latency_ms"] or 0 for r in rows],
           color=["#d62728" if r["version"] == "2.7" else "#2ca02c" for r in rows])
    if any(r["handler_latency_ms"] for r in rows):  # log scale needs a positive bar (tiny test runs may have none)
        ax.set_yscale("log")
    ax.set_ylabel("signal → handler (ms)")
    ax.set_title("Ctrl-C while the main thread joins", fontsize=10, loc="left")
    _lanes(ax2, shown, 19.0, 21.0, "2.7 at the signal (20 ms): the tick storm begins")
    return _save(fig, out, "ctrl-c"), rows


def better_gils(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """P8/P9: the proposed fixes beside CPython's GILs: I/O round-trip latency next to one
    CPU thread, the convoy factor, and the CPU threads' throughput, on 2 cores."""
    from .policies import BfsGIL, FifoGIL, NoGIL, PriorityGIL

    two = _layouts(cores)[-1][1]  # the 2-core layout where there is one
    pings = max(10, int(100 * scale))
    total = max(16 << 10, int((1 << 20) * scale)) // 1024 * 1024
    pols = [("2.7", cpython("2.7")), ("3.11", cpython("3.11")), ("priority", PriorityGIL()), ("bfs", BfsGIL()),
            ("fifo", FifoGIL()), ("nogil", NoGIL())]
    rows, shown = [], None
    for name, gil in pols:
        # As benches/policies.py: pings farther apart than the 5 ms interval (closer ones queue
        # behind it), the drain on the sender's core (so it competes for the GIL, not the CPU).
        lat = get("io_latency").run(gil, two, pings=pings, gap_us=7000)
        s = lat.metrics
        c = get("convoy_factor").run(gil, two, total_bytes=total, peer_core=two[0]).metrics
        h = get("handoffs").run(gil, two, log=False, duration_s=0.2 * max(scale, 0.25))
        ticks = sum(h.per_thread["ticks"].values())
        rows.append({"policy": name, "io_latency_p50_ms": s["io_latency_p50_ms"], "io_latency_p99_ms": s["io_latency_p99_ms"],
                     "convoy_factor": c["convoy_factor"], "cpu_ticks_per_s": ticks / h.metrics["elapsed_s"]})
        if name == "priority":
            shown = lat.runs["run"]
        say("  better-gils %s: I/O p50 %.3f ms, convoy %.1f" % (name, s["io_latency_p50_ms"], c["convoy_factor"]))
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    ax.bar([r["policy"] for r in rows], [r["io_latency_p50_ms"] for r in rows], color="#1f77b4")
    ax.set_yscale("log")
    ax.set_ylabel("I/O round trip p50 (ms)")
    ax.set_title("An I/O thread next to a CPU thread", fontsize=10, loc="left")
    _lanes(ax2, shown, 0.0, 30.0, "priority: the I/O thread preempts at once")
    return _save(fig, out, "better-gils"), rows


def thread_pool(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """Threads that wait on each other: a ``queue.Queue`` pool of 1, 2 and 4 workers running
    Python tasks (a countdown each), under the 2.7 and 3.11 GILs, on 1 and 2 cores: tasks per
    second, the model (:func:`gilmodel.scenarios.thread_pool`, through ``validate``'s model side)
    beside the real interpreter's ``thread_pool`` probe on the same cores. The model's queue
    ops cost what the real probe measured (``queue_us``); without a real interpreter, 2 µs."""
    rows = []
    for v, label, _, _, real, who, model in _beside("thread_pool", scale, cores, lambda a: {"queue_us": 2.0}):
        for i, m in enumerate(model["rows"]):
            rows.append({"version": v, "cores": label, "workers": m["k"], "tasks_per_s": m["tasks_per_s"],
                         "real_tasks_per_s": real["rows"][i]["tasks_per_s"] if real else None,
                         "top_part": m["top_part"], "real_top_part": real["rows"][i]["top_part"] if real else None,
                         "real": who})
        say("  thread-pool %s %s: %s tasks/s (real %s)" % (v, label, ", ".join("%.0f" % m["tasks_per_s"] for m in model["rows"]),
                                                       "-" if real is None else ", ".join("%.0f" % r["tasks_per_s"] for r in real["rows"])))
    two = _layouts(cores)[-1]
    shown = get("thread_pool").run(cpython("3.11"), two[1], workers=2, tasks=max(20, int(100 * scale))).runs["run"]
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    for (v, label), color in zip([(v, l) for v in ("2.7", "3.11") for l, _ in _layouts(cores)],
                                 ["#d62728", "#ff9896", "#2ca02c", "#98df8a"]):
        mine = [r for r in rows if r["version"] == v and r["cores"] == label]
        ks = [r["workers"] for r in mine]
        ax.plot(ks, [r["tasks_per_s"] for r in mine], "-o", color=color, label="%s %s model" % (v, label))
        if all(r["real_tasks_per_s"] is not None for r in mine):
            ax.plot(ks, [r["real_tasks_per_s"] for r in mine], "--s", color=color, mfc="white", label="real")
    ax.set_xticks([1, 2, 4])
    ax.set_xlabel("workers")
    ax.set_ylabel("tasks per second")
    ax.set_title("A pool of Python tasks: more workers, no faster", fontsize=10, loc="left")
    ax.legend(fontsize=6, frameon=False, ncol=2)
    _lanes(ax2, shown, 0.0, 10.0, "3.11, 2 workers, %s: tasks taken in turn (first 10 ms)" % two[0])
    return _save(fig, out, "thread-pool"), rows


def pipeline(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """Threads that wait on each other: a producer and a consumer through a ``queue.Queue``
    (the consumer's work half the producer's, so it waits in ``get`` for most items), under
    the 2.7 and 3.11 GILs on 1 and 2 cores: each item's time in the queue, put to get, the
    model (``validate``'s ``pipeline`` model side) beside the real interpreter's ``pipeline``
    probe on the same cores; then the model under every policy on 2 cores, with 3.11's costs.
    The model's queue ops cost what the real probe measured (``queue_us``); without a real
    interpreter, 2 µs."""
    from .fidelity.model_side import model_probe
    from .policies import POLICIES
    from .probes.runner import probe_args

    rows, fed311 = [], {"queue_us": 2.0}
    for v, label, _, fed, real, who, m in _beside("pipeline", scale, cores, lambda a: {"queue_us": 2.0}):
        rows.append({"gil": v, "version": v, "cores": label, "items_per_s": m["items_per_s"],
                     "real_items_per_s": real["items_per_s"] if real else None, "wait_p50_ms": m["p50_ms"],
                     "real_wait_p50_ms": real["p50_ms"] if real else None, "wait_p99_ms": m["p99_ms"],
                     "real_wait_p99_ms": real["p99_ms"] if real else None, "real": who})
        if v == "3.11":
            fed311 = fed
        say("  pipeline %s %s: wait p50 %.2f ms (real %s), %.0f items/s" % (
            v, label, m["p50_ms"], "-" if real is None else "%.2f" % real["p50_ms"], m["items_per_s"]))
    two = _layouts(cores)[-1]
    args = dict(probe_args("pipeline", scale, {}), **fed311)
    prof = profiles.for_version("3.11")
    pols = []
    for name in ("priority", "bfs", "fifo", "nogil"):
        m = model_probe("pipeline", "3.11", two[1], args, prof, gil=POLICIES[name]())
        pols.append({"gil": name, "version": "3.11 costs", "cores": two[0], "items_per_s": m["items_per_s"],
                     "real_items_per_s": None, "wait_p50_ms": m["p50_ms"], "real_wait_p50_ms": None,
                     "wait_p99_ms": m["p99_ms"], "real_wait_p99_ms": None, "real": None})
        say("  pipeline %s %s: wait p50 %.3f ms, %.0f items/s" % (name, two[0], m["p50_ms"], m["items_per_s"]))
    rows += pols
    shown = get("pipeline").run(cpython("3.11"), two[1], items=40, produce_ticks=20_000, consume_ticks=10_000).runs["run"]
    plt = _plt()
    fig, (ax, ax1, ax2) = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1, 0.8, 1.4]})
    cpy = [r for r in rows if r["real"] is not None or r["gil"] in ("2.7", "3.11")]
    _bars_real_model(ax, cpy, "wait_p50_ms", "real_wait_p50_ms",
                     ["#d62728" if r["version"] == "2.7" else "#2ca02c" for r in cpy])
    ax.set_yscale("log")
    ax.set_ylabel("item's time in the queue, p50 (ms)")
    ax.set_title("A woken consumer waits for the GIL", fontsize=10, loc="left")
    same = [r for r in cpy if r["version"] == "3.11" and r["cores"] == two[0]] + pols
    xs = np.arange(len(same))
    ax1.bar(xs - 0.2, [r["wait_p50_ms"] for r in same], 0.38, color="#1f77b4", label="p50")
    ax1.bar(xs + 0.2, [r["wait_p99_ms"] for r in same], 0.38, color="#aec7e8", label="p99")
    ax1.set_xticks(xs, [r["gil"] for r in same], fontsize=7)
    ax1.set_yscale("log")
    ax1.set_title("Under each GIL (model, %s)" % two[0], fontsize=10, loc="left")
    ax1.legend(fontsize=7, frameon=False)
    _lanes(ax2, shown, 0.0, 30.0, "3.11, %s: the producer runs, the woken consumer waits an interval" % two[0])
    return _save(fig, out, "pipeline"), rows


def hashing(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """C work that releases the GIL: two threads hashing 1 MiB buffers (``hashlib.sha1``), one
    after the other and then at once, under the 2.7 and 3.11 GILs on 1 and 2 cores; the
    speedup (2 × alone / threaded: 2 = they use both cores), the model (``validate``'s
    ``native_work`` model side: each chunk ``native`` work as long as the real probe's own
    chunk) beside the real interpreter's ``native_work`` probe on the same cores; with
    :func:`battle`'s pure-Python pair for contrast (it does not scale). Without a real
    interpreter the chunk is taken as 2 ms. Where the real probe finds that its hash keeps
    the GIL (``gil_released`` false: a CPython built without OpenSSL hashes with its own
    ``_sha``, as this machine's pyenv 2.7.18 does), the model's chunks are held calls too."""
    rows = []
    for v, label, cs, fed, real, who, m in _beside("native_work", scale, cores, lambda a: {"chunk_ms": 2.0, "released": True,
                                                                                       "chunks": max(4, int(a["seconds"] / 0.002))}):
        py = get("cpu_pair").run(cpython(v), cs, log=False, ticks=int(2_000_000 * scale) + 1000).metrics
        rows.append({"version": v, "cores": label, "chunk_ms": fed["chunk_ms"], "gil_released": m["released"],
                     "speedup": m["speedup"], "real_speedup": real["speedup"] if real else None,
                     "python_speedup": 1.0 / py["cpu_pair_ratio"], "real": who})
        say("  hashing %s %s: speedup %.2f (real %s), pure Python %.2f" % (
            v, label, m["speedup"], "-" if real is None else "%.2f" % real["speedup"], rows[-1]["python_speedup"]))
    two = _layouts(cores)[-1]
    prof = profiles.for_version("3.11")
    shown = get("hashing").run(cpython("3.11"), two[1], chunks=6, chunk_ticks=max(1, int(2e6 / prof.model_tick_ns)),
                               python_ticks=max(1, int(round(prof.call_ns / prof.model_tick_ns))),
                               released=rows[-1]["gil_released"]).runs["threaded"]
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    colors = ["#d62728" if r["version"] == "2.7" else "#2ca02c" for r in rows]
    _bars_real_model(ax, rows, "speedup", "real_speedup", colors)
    ax.plot(np.arange(len(rows)), [r["python_speedup"] for r in rows], "kx", label="pure-Python pair (model)")
    ax.axhline(1.0, color="0.6", lw=0.8)
    for x, r in enumerate(rows):
        if not r["gil_released"]:
            ax.text(x, 0.05, "its hash\nholds\nthe GIL", ha="center", va="bottom", fontsize=6, color="white")
    ax.set_ylabel("speedup of 2 threads (2 = both cores)")
    ax.set_title("Hashing threads scale; Python threads do not", fontsize=10, loc="left")
    ax.legend(fontsize=6, frameon=False)
    _lanes(ax2, shown, 0.0, 12.0, "3.11, 2 hashing threads, %s: %s (first 12 ms)" % (
        two[0], "C work in parallel" if rows[-1]["gil_released"] else "its hash holds the GIL: one at a time"))
    return _save(fig, out, "hashing"), rows


def long_call(out: str, scale: float, cores, say) -> Tuple[str, Rows]:
    """C work that holds the GIL: an I/O thread answering pings next to back-to-back
    ``sorted()`` calls of a big int list, under the 2.7 and 3.11 GILs on 1 and 2 cores: the
    round trip's p50 and p99 against the call's length (no check point comes during a call,
    so no switch interval helps), the share of pings answered within 1 ms (2.x's late pings,
    docs/validation/c-work.md) and the share answered at all before the run's end (none where
    2.x on two cores starves the I/O thread throughout), the model (``validate``'s ``long_call`` model side: each
    call a ``held`` op as long as the real probe's own call) beside the real interpreter's
    ``long_call`` probe on the same cores, with the probe's gap between pings (at least 3
    calls' length). Without a real interpreter the call is taken as 20 ms."""
    rows = []
    without_real = lambda a: {"call_ms": 20.0, "gap_us": max(a["gap_us"], 60_000)}  # noqa: E731 (3 calls of 20 ms)
    for v, label, _, fed, real, who, m in _beside("long_call", scale, cores, without_real):
        rows.append({"version": v, "cores": label, "call_ms": fed["call_ms"], "gap_ms": fed["gap_us"] / 1e3,
                     "p50_ms": m["p50_ms"], "p99_ms": m["p99_ms"],
                     "real_p50_ms": real["p50_ms"] if real else None, "real_p99_ms": real["p99_ms"] if real else None,
                     "fast_share": m.get("fast_share"), "real_fast_share": real.get("fast_share") if real else None,
                     "answered_share": m.get("answered_share"),
                     "real_answered_share": real.get("answered_share") if real else None, "real": who})
        say("  long-call %s %s: call %.1f ms, ping p50 %s ms (real %s)" % (
            v, label, fed["call_ms"], _ms(m["p50_ms"]), "-" if real is None else _ms(real["p50_ms"])))
    two = _layouts(cores)[-1]
    prof = profiles.for_version("3.11")
    call_ms = rows[-1]["call_ms"]
    shown = get("long_call").run(cpython("3.11"), two[1], pings=6, gap_us=int(call_ms * 1e3 * 1.5) + 1000,
                                 call_ticks=max(1, int(call_ms * 1e6 / prof.model_tick_ns))).runs["run"]
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    colors = ["#d62728" if r["version"] == "2.7" else "#2ca02c" for r in rows]
    _bars_real_model(ax, rows, "p50_ms", "real_p50_ms", colors, no_value="no ping\nanswered")
    ax.plot(np.arange(len(rows)), [r["call_ms"] for r in rows], "k_", ms=18, mew=2, label="one call's length")
    ax.set_ylabel("ping round trip p50 (ms)")
    ax.set_title("A long GIL-holding call: pings wait for it", fontsize=10, loc="left")
    ax.legend(fontsize=6, frameon=False)
    _lanes(ax2, shown, 0.0, 4 * call_ms, "3.11, %s: pings wait out each held call (first %.0f ms)" % (two[0], 4 * call_ms))
    return _save(fig, out, "long-call"), rows


def _ms(x: Optional[float]) -> str:
    """``x`` to one decimal, or "-" (a run that ended before any ping was answered)."""
    return "-" if x is None else "%.1f" % x


def _lanes(ax, r: Run, start_ms: float, end_ms: float, title: str) -> None:
    """A compact GIL timeline on ``ax``: the lanes of :func:`gilmodel.plot.draw_lanes` (~700
    pixel columns wide)."""
    plot.draw_lanes(ax, r, start_ms / 1e3, end_ms / 1e3, title, columns=700)


def _save(fig, out: str, name: str) -> str:
    fig.tight_layout()
    path = os.path.join(out, name + ".png")
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


#: name → (title, function). Each name says what its figure shows; :data:`ALIASES` keeps the
#: phenomenon numbers of docs/design.md §1 (``p7`` = ``convoy``).
EXPERIMENTS: Dict[str, Tuple[str, Callable]] = {
    "battle": ("GIL battle: two CPU threads, old GIL vs new, 1 vs 2 cores (P1)", battle),
    "syscall-storm": ("Context-switch and system-call storm (P2)", syscall_storm),
    "ctrl-c": ("Ctrl-C with threads: the uninterruptible join and the tick storm (P3)", ctrl_c),
    "interval-handoffs": ("Interval GIL: hand-offs follow the switch interval (P4)", interval_handoffs),
    "dedupe-ablation": ("Drop-request de-duplication (switch_number) ablation (P5)", dedupe_ablation),
    "who-wins": ("Who wins the GIL is up to the OS (P6)", who_wins),
    "convoy": ("Convoy effect (P7)", convoy),
    "better-gils": ("Better GILs: priority, BFS, FIFO and no GIL beside CPython's (P8, P9)", better_gils),
    "thread-pool": ("Threads that wait on each other: a queue.Queue pool of workers", thread_pool),
    "pipeline": ("Threads that wait on each other: a producer and a consumer through a queue.Queue", pipeline),
    "hashing": ("C work that releases the GIL: hashing threads scale, Python threads do not", hashing),
    "long-call": ("C work that holds the GIL: a long call blocks an I/O thread for its whole length", long_call),
}
#: The old names, one per phenomenon of docs/design.md §1 (``p8`` shows P8 and P9).
ALIASES: Dict[str, str] = {"p%d" % (i + 1): name for i, name in enumerate(list(EXPERIMENTS)[:8])}


def canonical(name: str) -> str:
    """The gallery name of ``name`` (itself, or the experiment an alias such as ``p7`` names)."""
    n = ALIASES.get(name, name)
    if n not in EXPERIMENTS:
        raise ValueError("reproduce: unknown experiment %r; known: %s (or %s)" % (
            name, ", ".join(EXPERIMENTS), ", ".join("%s=%s" % kv for kv in ALIASES.items())))
    return n


def _markdown(name: str, title: str, rows: Rows, host: Dict[str, Any], command: str) -> str:
    cols = list(rows[0].keys())
    fmt = lambda v: ("%.4g" % v) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["# %s — %s" % (name, title), "",
             "Command: `%s`  " % command,
             "Machine: %s, %d cores online (%d allowed), %s, glibc %s; gilmodel %s" % (
                 host["cpu_model"], host["cores_online"], host["cores_allowed"], host["kernel"], host["glibc"], _core.__version__),
             "", "![%s](%s.png)" % (name, name), "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def reproduce(name: str, out_dir: str = "gallery", scale: float = 1.0, cores: Optional[Sequence[int]] = None,
              quiet: bool = False) -> Dict[str, Any]:
    """Run experiment ``name`` (see :data:`EXPERIMENTS`; an alias of :data:`ALIASES` names the
    same one) and write ``NAME.png``, ``NAME.md`` and
    ``NAME.json`` into ``out_dir``. Returns ``{"name", "title", "rows", "figure", "table"}``."""
    name = canonical(name)
    if not (isinstance(scale, (int, float)) and 0 < scale <= 100):
        raise ValueError("reproduce: scale %r must be more than 0 and at most 100" % (scale,))
    os.makedirs(out_dir, exist_ok=True)
    title, fn = EXPERIMENTS[name]
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say("%s: %s" % (name, title))
    figure, rows = fn(out_dir, scale, cores, say)
    host = json.loads(_core.host_info())
    command = "gilmodel reproduce %s --scale %g" % (name, scale) + ("" if cores is None else " --cores %s" % ",".join(map(str, cores)))
    table = os.path.join(out_dir, name + ".md")
    with open(table, "w") as f:
        f.write(_markdown(name, title, rows, host, command))
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump({"name": name, "title": title, "command": command, "host": host, "rows": rows}, f, indent=1)
    return {"name": name, "title": title, "rows": rows, "figure": figure, "table": table}
