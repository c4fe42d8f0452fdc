"""Event-level validation (``gilmodel validate --events``): the real interpreter observed
(:func:`gilmodel.observe`) while it runs a probe, the model run on the same workload with its
event log, and the *distributions* of what their GILs did compared, not only aggregates.

Per probe, per role of thread (:data:`ROLES`):

* ``handoffs`` (two CPU-bound threads): ``hold_ms`` and ``wait_ms`` of the two threads,
  ``handoff_us`` (release → the next holder's acquisition);
* ``io_latency`` (a thread echoing pings beside a CPU-bound thread): ``io_wait_ms``, the echo
  thread's waits for the GIL (each after its ``recv`` returned: the I/O response a user feels),
  and ``cpu_hold_ms``, the CPU thread's holds;
* ``three_threads`` (three CPU-bound threads): ``hold_ms``, ``wait_ms`` and ``waiter_rank``: at
  each acquisition with two or more threads waiting, the rank of the one that got the GIL in
  the order they asked (0: the longest waiting). Which waiter a release wakes is glibc's and
  the scheduler's doing on both sides; this says whether it comes out the same.

For each: n, p10/p50/p90/p99 per side, the two-sample Kolmogorov–Smirnov statistic (the largest
gap between the two empirical distribution functions, 0–1) and the Wasserstein-1 distance (the
area between them) divided by the real median, so it reads as "typical error, in medians".
Results go to ``events.parquet`` and ``events.md``, each side's run to Parquet (plot them one
above the other with ``gilmodel plot REAL --beside MODEL``), and one picture of both
distribution functions per interpreter and core set.

The real side needs what observing needs (root, uprobes, an interpreter with symbols); the
model side runs as ``validate``'s does (the interpreter's calibration profile, the probe's
sizes). Under 2.7 observing slows the program 12–17× (README, "Observing the real GIL"):
its real distributions are the perturbed ones, which the report says.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from .. import analysis
from ..experiments import get
from ..interpreters import Interpreter
from ..probes import path as probe_path
from ..probes.runner import probe_args
from ..profiles import Profile
from ..run import Run
from .model_side import _echo, _prep, _three_threads_run, run as model_run

__all__ = ["EVENT_PROBES", "ROLES", "KS_WITHIN", "ks", "wasserstein", "waiter_ranks", "distributions", "compare_runs",
           "compare_samples", "observe_probe",
           "model_run_of", "validate_events"]

#: Probes observed, and the metrics of each.
EVENT_PROBES: Dict[str, Tuple[str, ...]] = {
    "handoffs": ("hold_ms", "wait_ms", "handoff_us"),
    "io_latency": ("io_wait_ms", "cpu_hold_ms"),
    "three_threads": ("hold_ms", "wait_ms", "waiter_rank"),
}
#: KS statistic under which a distribution counts as matched (the issue's floor).
KS_WITHIN = 0.15
#: Which threads each metric reads, per side: "workers" are every thread but the real side's
#: main thread (which only starts, sleeps and joins, and before that imports: thousands of
#: microsecond holds around file reads that the model has no counterpart for).
ROLES = {"hold_ms": "workers", "wait_ms": "workers", "handoff_us": "workers", "io_wait_ms": "io", "cpu_hold_ms": "cpu",
         "waiter_rank": "workers"}


def waiter_ranks(thread: np.ndarray, request_ns: np.ndarray, acquire_ns: np.ndarray) -> np.ndarray:
    """For each wait that ended while at least one other thread's wait was open, how many of
    the open waits had begun before it (0: the longest waiting won). A thread waits once at a
    time, so the waits open at an instant are each thread's latest one begun before it: one
    ``searchsorted`` per thread over all waits, O(threads · n log n) (a pairwise count took
    minutes on 2.7's 600 000 waits)."""
    th = np.asarray(thread)
    req, acq = np.asarray(request_ns, np.int64), np.asarray(acquire_ns, np.int64)
    open_n = np.zeros(req.size, np.int64)
    earlier = np.zeros(req.size, np.int64)
    for t in np.unique(th):
        mine = np.flatnonzero(th == t)
        o = np.argsort(req[mine], kind="stable")
        r_t, a_t = req[mine][o], acq[mine][o]
        k = np.searchsorted(r_t, acq, side="left") - 1  # its latest wait begun before each grant
        ok = k >= 0
        kk = np.where(ok, k, 0)
        is_open = ok & (a_t[kk] >= acq)
        open_n += is_open
        earlier += is_open & (r_t[kk] < req)
    return earlier[open_n >= 2]


def ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: max |F_a − F_b| (nan when a side is empty)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    if not a.size or not b.size:
        return float("nan")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.abs(fa - fb).max())


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two samples: ∫ |F_a − F_b| dx (nan when a side is empty)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    if not a.size or not b.size:
        return float("nan")
    x = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, x[:-1], side="right") / a.size
    fb = np.searchsorted(b, x[:-1], side="right") / b.size
    return float((np.abs(fa - fb) * np.diff(x)).sum())


def _threads(run: Run, role: str, real: bool) -> np.ndarray:
    names = run.threads.column("name").to_pylist()
    idx = np.arange(len(names))
    if real:
        # Observed: thread 0 is main; threads are numbered by start. io_latency starts its
        # spinner(s) first, then the echo thread.
        if role == "workers":
            return idx[1:]
        if role == "io":
            return idx[-1:]
        return idx[1:-1]  # cpu
    if role == "workers":
        return idx
    if role == "io":
        return idx[[n == "io" for n in names]]
    return idx[[n.startswith("cpu") for n in names]]


def distributions(run: Run, probe: str, real: bool) -> Dict[str, np.ndarray]:
    """The samples of each metric of ``probe`` in ``run`` (ms or µs as named)."""
    out: Dict[str, np.ndarray] = {}
    h = analysis.holds(run.events)
    w = analysis.waits(run.events)
    ho = analysis.handoffs(run.events)
    hth, hdur = h.column("thread").to_numpy(), h.column("dur_ns").to_numpy()
    wth, wdur = w.column("thread").to_numpy(), w.column("wait_ns").to_numpy()
    for m in EVENT_PROBES[probe]:
        ths = _threads(run, ROLES[m], real)
        if m in ("hold_ms", "cpu_hold_ms"):
            out[m] = hdur[np.isin(hth, ths)] / 1e6
        elif m in ("wait_ms", "io_wait_ms"):
            out[m] = wdur[np.isin(wth, ths)] / 1e6
        elif m == "waiter_rank":
            keep = np.isin(wth, ths)
            out[m] = waiter_ranks(wth[keep], w.column("request_ns").to_numpy()[keep],
                                  w.column("acquire_ns").to_numpy()[keep]).astype(float)
        elif m == "handoff_us":
            keep = np.isin(ho.column("from_thread").to_numpy(), ths) & np.isin(ho.column("to_thread").to_numpy(), ths)
            out[m] = ho.column("latency_ns").to_numpy()[keep] / 1e3
    return out


def compare_runs(real: Run, model: Run, probe: str) -> List[Dict[str, Any]]:
    """One row per metric: both sides' n and quantiles, KS, W1 / real median, within."""
    return compare_samples(distributions(real, probe, True), distributions(model, probe, False), probe)


def compare_samples(dr: Dict[str, np.ndarray], dm: Dict[str, np.ndarray], probe: str) -> List[Dict[str, Any]]:
    """:func:`compare_runs` on samples already drawn (pooled over repeats, say)."""
    rows = []
    for m in EVENT_PROBES[probe]:
        a, b = dr[m], dm[m]
        row: Dict[str, Any] = {"probe": probe, "metric": m, "n_real": int(a.size), "n_model": int(b.size)}
        for side, x in (("real", a), ("model", b)):
            for q in (10, 50, 90, 99):
                row["p%d_%s" % (q, side)] = float(np.percentile(x, q)) if x.size else float("nan")
        row["ks"] = ks(a, b)
        med = float(np.median(a)) if a.size else float("nan")
        row["w1_over_median"] = wasserstein(a, b) / med if med and med == med else float("nan")
        row["within"] = bool(row["ks"] <= KS_WITHIN)
        rows.append(row)
    return rows


def observe_probe(interp: Interpreter, probe: str, args: Dict[str, Any], cores: Sequence[int]) -> Run:
    """The real side: ``probe`` run by ``interp`` on ``cores``, observed."""
    from ..observe import observe

    cmd = [interp.path, "-E", "-s", "-B", probe_path(probe)]
    for k, v in args.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    return observe(cmd, cpus=list(cores))


def model_run_of(probe: str, minor: str, cores: Sequence[int], args: Dict[str, Any], cal: Profile) -> Run:
    """The model side: ``probe``'s workload as ``validate`` runs it (CPython ``minor``'s GIL,
    e.g. ``"3.11"``, with the costs of ``cal``), with its event log."""
    gil = cal.policy(minor)
    cs = tuple(cores)
    if probe == "handoffs":
        return get("handoffs").run(gil, cs, log=True, prepare=_prep(cal), duration_s=args["duration"],
                                   tick_ns=cal.model_tick_ns).runs["run"]
    if probe == "io_latency":
        return model_run(_echo(gil, cs, cal, args["cpu_threads"], args["pings"], args["gap_us"], 8), cal)
    if probe == "three_threads":
        return _three_threads_run(gil, cs, cal, args["duration"])
    raise ValueError("event validation has no model side for probe %r (known: %s)" % (probe, ", ".join(EVENT_PROBES)))


def _figure(rows: List[Tuple[str, np.ndarray, np.ndarray]], title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.0), squeeze=False)
    for ax, (name, a, b) in zip(axes[0], rows):
        for x, lab, c in ((a, "real (observed)", "black"), (b, "model", "tab:red")):
            if x.size:
                xs = np.sort(x)
                ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", label="%s, n=%d" % (lab, xs.size), color=c)
        ax.set_xscale("symlog", linthresh=max(1e-3, float(np.percentile(np.concatenate([a, b]), 5)) if a.size + b.size else 1e-3))
        ax.set_title("%s  KS %.2f" % (name, ks(a, b)), fontsize=9)
        ax.set_ylabel("fraction ≤ x", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def validate_events(interps: Sequence[Interpreter], core_sets: Sequence[Sequence[int]], profiles_: Dict[str, Profile],
                    scale: float, out: str, progress=None, repeats: int = 1) -> pd.DataFrame:
    """Observe each probe of :data:`EVENT_PROBES` under each interpreter on each core set,
    ``repeats`` times, run the model on the same workload as often (interleaved), and compare
    the samples pooled over the repeats. Writes ``events.parquet``, ``events.md``,
    ``events_<interpreter>_<cores>.png`` and both runs of each case's first repeat under
    ``out/events/``. ``profiles_`` maps each interpreter's ``label`` to its calibration
    profile; ``progress(interp, cores, probe)`` is called after each case."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError("validate_events: repeats must be an integer >= 1, got %r" % (repeats,))
    os.makedirs(os.path.join(out, "events"), exist_ok=True)
    rows: List[Dict[str, Any]] = []
    for interp in interps:
        cal = profiles_[interp.label]
        for cores in core_sets:
            tag = "%s_%s" % (interp.version, "-".join(map(str, cores)))
            pics = []
            for probe in EVENT_PROBES:
                args = probe_args(probe, scale, {})
                pooled: Dict[bool, Dict[str, List[np.ndarray]]] = {True: {}, False: {}}
                lost = [0, 0]
                for rep in range(repeats):
                    real = observe_probe(interp, probe, args, cores)
                    model = model_run_of(probe, interp.minor, cores, args, cal)
                    if rep == 0:
                        real.to_parquet(os.path.join(out, "events", "%s_%s_real.parquet" % (probe, tag)))
                        model.to_parquet(os.path.join(out, "events", "%s_%s_model.parquet" % (probe, tag)))
                    for side, r in ((True, real), (False, model)):
                        for m, x in distributions(r, probe, side).items():
                            pooled[side].setdefault(m, []).append(x)
                    lost[0] += real.meta["observed"]["notes"]["lost_returns"]
                    lost[1] += real.meta["observed"]["lost_records"]
                dr = {m: np.concatenate(v) for m, v in pooled[True].items()}
                dm = {m: np.concatenate(v) for m, v in pooled[False].items()}
                for r in compare_samples(dr, dm, probe):
                    r.update(interpreter=interp.version, cores=",".join(map(str, cores)), repeats=repeats,
                             lost_returns=lost[0], lost_records=lost[1])
                    rows.append(r)
                pics += [("%s %s" % (probe, m), dr[m], dm[m]) for m in EVENT_PROBES[probe]]
                if progress:
                    progress(interp, cores, probe)
            _figure(pics, "CPython %s on cores %s: observed real GIL vs model (%d repeat%s pooled)"
                    % (interp.version, ",".join(map(str, cores)), repeats, "" if repeats == 1 else "s"),
                    os.path.join(out, "events_%s.png" % tag))
    df = pd.DataFrame(rows)
    df.to_parquet(os.path.join(out, "events.parquet"))
    with open(os.path.join(out, "events.md"), "w") as f:
        f.write(report(df))
    return df


def report(df: pd.DataFrame) -> str:
    """The comparison as Markdown: one row per (interpreter, cores, probe, metric)."""
    lines = ["# Event-level validation: observed real GIL vs model", "",
             "Samples pooled over %s repeat(s) per side. KS: the largest gap between the two distribution functions "
             "(0 = same, 1 = disjoint); matched when ≤ %.2f. W1/median: the area between them, in real medians."
             % (",".join(sorted({str(x) for x in df.get("repeats", pd.Series([1]))})), KS_WITHIN), "",
             "| interpreter | cores | probe | metric | n real / model | p50 real / model | p90 real / model | p99 real / model | KS | W1/median | |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.to_dict("records"):
        lines.append("| %s | %s | %s | %s | %d / %d | %.3g / %.3g | %.3g / %.3g | %.3g / %.3g | %.2f | %.2f | %s |" % (
            r["interpreter"], r["cores"], r["probe"], r["metric"], r["n_real"], r["n_model"], r["p50_real"], r["p50_model"],
            r["p90_real"], r["p90_model"], r["p99_real"], r["p99_model"], r["ks"], r["w1_over_median"],
            "ok" if r["within"] else "**differs**"))
    if (df.interpreter.astype(str).str.startswith("2.")).any():
        lines += ["", "Under 2.7 observing makes the program 12–17× slower (probe hits at every 100-bytecode check): "
                      "its observed distributions are those of the perturbed program."]
    return "\n".join(lines) + "\n"
