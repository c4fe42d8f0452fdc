"""Fidelity (``gilmodel.fidelity``; :func:`gilmodel.validate` is its entry point): the model
against the real interpreters on the same machine (docs/design.md §6).

:func:`validate` finds the interpreters, takes each one's calibration profile
(:func:`gilmodel.calibrate`: the same cached profile every scenario without an explicit
``tick_ns`` runs with, so validate checks the path a user takes), runs every probe under each interpreter on each core set and
the same workload in the model configured as that version, repeats both sides interleaved,
compares them metric by metric (:mod:`.tolerance`) and writes Parquet and a Markdown report
(:mod:`.report`). ``gilmodel validate`` is its command line.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .. import _core, _procs, profiles
from ..interpreters import Interpreter, detect, discover
from ..policies import gil_family
from ..probes import PROBES
from ..probes.runner import ProbeError, applies, probe_args, run_probe
from ..profiles import CalibrationError, Profile
from . import model_side
from .model_side import model_probe
from .tolerance import TOLERANCES, Tolerance, Verdict, compare, tolerance_for

__all__ = ["validate", "Validation", "metrics", "pings", "slow_probe_interpreters", "SLOW_PROBES", "discover", "detect", "Interpreter", "Profile",
           "TOLERANCES", "Tolerance", "compare", "tolerance_for", "PROBES"]

#: Result fields compared, per probe (switch_sweep's are expanded per interval).
METRICS = {
    "calibrate": ("tick_ns",),
    "cpu_pair": ("sequential_s", "threaded_s", "ratio"),
    "handoffs": ("switches_per_s",),
    "io_latency": ("p50_ms", "p90_ms", "p99_ms", "max_ms"),
    "convoy": ("alone_s", "with_cpu_s", "factor"),
    "bandwidth": ("packets_per_s_alone", "packets_per_s"),
    "three_threads": ("switches_per_s", "share_1", "share_2", "share_3", "won_1", "won_2", "won_3"),
    "native_work": ("threaded_s", "speedup"),
    "long_call": ("p50_ms", "p99_ms", "fast_share", "answered_share"),
    "pipeline": ("items_per_s", "p50_ms", "p99_ms"),
}
#: Fields the model side of a probe takes from the real side of the same repeat: how many
#: chunks the hashing probe sized its round to (``--seconds``); the length of a C call, which is the machine's and the interpreter's C code's, not the GIL's; whether the
#: hash releases the GIL (a CPython without OpenSSL's hashlib hashes with its own module, which
#: holds it); the gap between pings, which the long call's probe stretches to 3 calls' length;
#: the cost of a queue's put and get (their bytecode), which the model does not run; where
#: the kernel ran each convoy stream's peers: the drain's reads, which say whether it ran on
#: the sender's core (``model_side.drain_core``), and the CPU threads on the sender's core
#: (``model_side.stream``).
FROM_REAL = {"native_work": ("chunks", "chunk_ms", "released"), "long_call": ("call_ms", "gap_us"), "thread_pool": ("queue_us",),
             "pipeline": ("queue_us",), "convoy": ("alone_reads", "with_cpu_reads", "on_sender_core"),
             "threads_sweep": ("drain_reads", "on_sender_core")}
#: What ``quick=True`` (``gilmodel validate --quick``) leaves out: the sweeps over switch
#: intervals and over the number of CPU threads, and the three-thread split (three_threads and
#: threads_sweep alone took 175 s for 2.7 and 3.11 together, 5 repeats, 2-core VM).
SLOW_PROBES = ("switch_sweep", "three_threads", "threads_sweep")
#: Per-k fields of threads_sweep's rows (``requests_per_s@k4``: with 4 CPU threads).
SWEEP_K_METRICS = ("requests_per_s", "p50_ms", "p99_ms", "convoy_factor")
#: Per-k fields of thread_pool's rows (``tasks_per_s@k2``: with 2 workers).
POOL_K_METRICS = ("tasks_per_s", "top_part")


def slow_probe_interpreters(interps: Sequence[Interpreter], named: Sequence[str]) -> List[Interpreter]:
    """Which of ``--all``'s interpreters run :data:`SLOW_PROBES`: ``sys.executable`` and those
    ``named`` (``--python``), and for each GIL design (the 2.x tick, the 3.x interval) that none
    of those has, the newest one found. Every other one runs the quick set: the slow probes
    measure mostly the GIL's design, which versions of one design share, and took 177 of 3.11's 264 s
    in an ``--all`` run (2-core VM, 2026-12-03); run under every version they had put ``--all``
    at 51 minutes (2026-12-02)."""
    keep = {os.path.realpath(os.path.expanduser(p)) for p in [sys.executable, *named]}
    full = [i for i in interps if os.path.realpath(i.path) in keep]
    families = {gil_family(i.minor) for i in full}
    for fam in ("tick", "interval"):
        mine = [i for i in interps if gil_family(i.minor) == fam]
        if fam not in families and mine:
            full.append(mine[-1])  # discover() sorts by version: the last is the newest
    return [i for i in interps if i in full]


def pings(probe: str, result: Dict[str, Any]) -> Dict[str, List[float]]:
    """The round trips (ms) of one probe result that pooled tolerances (``Tolerance.pooled``)
    pool, by metric suffix (``""``, or ``"@k4"`` for threads_sweep's rows)."""
    if probe == "threads_sweep":
        return {"@k%d" % row["k"]: list(row.get("rtt_ms") or ()) for row in result["rows"]}
    if probe in ("io_latency", "long_call"):
        return {"": list(result.get("rtt_ms") or ())}
    if probe == "pipeline":
        return {"": list(result.get("wait_ms") or ())}
    return {}


def metrics(probe: str, result: Dict[str, Any]) -> Dict[str, float]:
    """The compared numbers of one probe result (real or model: both have the same fields)."""
    if probe == "switch_sweep":
        out = {}
        for row in result["rows"]:
            out["switches_per_s@%gms" % row["interval_ms"]] = row["switches_per_s"]
            out["io_p50_ms@%gms" % row["interval_ms"]] = row["io_p50_ms"]
        return out
    if probe == "threads_sweep":
        return {"%s@k%d" % (m, row["k"]): (float("nan") if row.get(m) is None else float(row[m]))
                for row in result["rows"] for m in SWEEP_K_METRICS if not (m == "convoy_factor" and row["k"] == 0)}
    if probe == "thread_pool":
        return {"%s@k%d" % (m, row["k"]): float(row[m]) for row in result["rows"] for m in POOL_K_METRICS}
    return {k: (float("nan") if result.get(k) is None else float(result[k])) for k in METRICS[probe]}


#: The most a repeat's model side scales the profile by (:func:`at_repeat_speed`), either way.
REPEAT_SPEED_LIMIT = 2.5


def at_repeat_speed(cal: Profile, real_calibrate: Dict[str, Any]) -> Profile:
    """``cal`` scaled (:meth:`Profile.scaled`) to the interpreter's speed in this repeat: its
    countdown's ``ns_per_iter`` in the real ``calibrate`` probe that opens the repeat, against
    the profile's. The model sides of the repeat then run at the speed the real probes beside
    them ran at. Without it a host whose speed moves compares both sides at different moments:
    on the 2-core VM the interpreter's countdown moved 24-69 ns an iteration within 90 s while
    the model's spin moved 1.09-1.32 ns (``benches/spin_vs_interpreter.py``), so the spin cannot
    follow the host on its own (docs/validation/README.md). ``cal`` as it is when the probe
    gave no figure; the scale is kept within :data:`REPEAT_SPEED_LIMIT`."""
    ns = real_calibrate.get("ns_per_iter")
    if not ns or not cal.ns_per_iter:
        return cal
    r = min(REPEAT_SPEED_LIMIT, max(1.0 / REPEAT_SPEED_LIMIT, float(ns) / cal.ns_per_iter))
    return cal.scaled(r)


#: The real tick's max / min over a validation's repeats above which the report says the
#: machine's speed changed during the run (real repeats on the quiet 2-core VM: within 1.1).
UNSTEADY_TICK = 1.3
#: Other processes' (or the hypervisor's) average busy cores over the run above which the
#: report says the machine was busy.
BUSY_CORES = 0.25


def steadiness(samples: pd.DataFrame, busy: Dict[str, Any]) -> Dict[str, Any]:
    """How steady the machine was during a validation: what others took over the whole run
    (``foreign_cores``, ``steal_cores``: :func:`gilmodel._procs.contention`), each
    interpreter's real tick max / min over the repeats (``tick_spread``), and ``warnings``
    in words where either says the figures may be the machine's rather than the model's."""
    out: Dict[str, Any] = {"foreign_cores": busy["foreign_cores"], "steal_cores": busy["steal_cores"],
                           "wall_s": busy["wall_s"], "tick_spread": {}, "warnings": []}
    if busy["foreign_cores"] > BUSY_CORES or busy["steal_cores"] > BUSY_CORES:
        out["warnings"].append("the machine was busy: other processes %.2f cores and the hypervisor's steal %.2f cores "
                               "on average over the %.0f s run (quiet: under %.2f)" % (
                                   busy["foreign_cores"], busy["steal_cores"], busy["wall_s"], BUSY_CORES))
    if len(samples):
        t = samples[(samples.probe == "calibrate") & (samples.side == "real") & (samples.metric == "tick_ns")]
        for version, g in t.groupby("version"):
            lo, hi = float(g.value.min()), float(g.value.max())
            out["tick_spread"][version] = hi / lo if lo > 0 else float("nan")
            if lo > 0 and hi / lo > UNSTEADY_TICK:
                out["warnings"].append("CPython %s's tick took %.1f to %.1f ns over the repeats (x%.1f): the machine's "
                                       "speed changed during the run; each repeat's model side ran at the speed its "
                                       "real calibrate probe measured, but the speed also moves within a repeat: "
                                       "rerun on a steady machine" % (version, lo, hi, hi / lo))
    return out


@dataclass
class Validation:
    """What :func:`validate` measured. ``samples``: one row per (interpreter, cores, probe,
    metric, side, repeat); ``verdicts``: one row per (interpreter, cores, probe, metric) with
    both sides' medians, quartiles, range, ratio and pass/fail; ``runs``: every probe result
    as JSON with its ``wall_s``; ``errors``: probes that failed; ``files``: what was written."""

    samples: pd.DataFrame
    verdicts: pd.DataFrame
    runs: pd.DataFrame
    interpreters: List[Interpreter]
    calibrations: Dict[str, Dict[str, Any]]
    errors: List[str] = field(default_factory=list)
    files: Dict[str, str] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(len(self.verdicts)) and bool(self.verdicts["ok"].all())


def _default_cores() -> List[List[int]]:
    allowed = _core.allowed_cores()
    return [allowed[:1]] + ([allowed[:2]] if len(allowed) > 1 else [])


def _label(cs: Sequence[int]) -> str:
    return ",".join(str(c) for c in cs)


def validate(pythons: Sequence[str] = (), all_: bool = False, cores: Optional[Sequence[Sequence[int]]] = None,
             repeats: int = 5, probes: Optional[Sequence[str]] = None, scale: float = 0.5, out: Optional[str] = "validation",
             progress: bool = True, command: str = "", say: Optional[Callable[[str], None]] = None,
             recalibrate: bool = False, quick: bool = False) -> Validation:
    """Compare the model with real interpreters on this machine.

    Args:
        pythons: interpreter paths besides ``sys.executable``.
        all_: also each CPython under ``~/.pyenv/versions`` or on ``PATH`` (one per version);
            unless ``probes`` names them, :data:`SLOW_PROBES` run only under
            :func:`slow_probe_interpreters` (``meta["slow_probes_on"]`` says which).
        cores: core sets to run on (default ``[[c0], [c0, c1]]``: 1 and 2 cores). The real
            interpreter (and its peer processes) get the set as their affinity; the model's
            threads are placed on it.
        repeats: repeats of each side, interleaved (real, model, real, model, ...).
        probes: which probes (default all; ``calibrate`` always runs).
        scale: workload size factor (0.5, the default, is the committed reference run; tests use ~0.03).
        out: folder for ``samples.parquet``, ``verdicts.parquet``, ``runs.parquet`` and
            ``report.md`` (None: write nothing).
        progress: show a progress bar (tqdm, on stderr).
        recalibrate: measure each interpreter's profile anew (and update the cache) instead
            of using the cached one.
        quick: leave out :data:`SLOW_PROBES` unless ``probes`` names them.
    """
    from .report import side_by_side, write_all

    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError("validate: repeats %r must be a positive integer" % (repeats,))
    if not (isinstance(scale, (int, float)) and 0 < scale <= 100):
        raise ValueError("validate: scale %r must be more than 0 and at most 100" % (scale,))
    wanted = [p for p in PROBES if not (quick and p in SLOW_PROBES)] if probes is None else list(probes)
    for p in wanted:
        if p not in PROBES:
            raise ValueError("validate: unknown probe %r; known: %s" % (p, ", ".join(PROBES)))
    wanted = [p for p in PROBES if p in wanted and p != "calibrate"]
    core_sets = [list(c) for c in (cores or _default_cores())]
    allowed = set(_core.allowed_cores())
    for cs in core_sets:
        if not cs or not set(cs) <= allowed:
            raise ValueError("validate: cores %s not all in this process's affinity mask %s" % (cs, sorted(allowed)))
    interps = discover(list(pythons), all_)
    say = say or (lambda s: print(s, file=sys.stderr, flush=True))
    slow_on = interps if (not all_ or probes is not None) else slow_probe_interpreters(interps, pythons)
    plan = {it.path: wanted if it in slow_on else [p for p in wanted if p not in SLOW_PROBES] for it in interps}

    steps = sum(3 + len(core_sets) * repeats * (1 + len(plan[it.path])) for it in interps)
    from tqdm import tqdm

    bar = tqdm(total=steps, disable=not progress, unit="run", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    samples: List[Dict[str, Any]] = []
    pooled: Dict[tuple, List[float]] = {}  # (interpreter, cores, probe, suffix, side) -> every repeat's pings
    runs: List[Dict[str, Any]] = []
    errors: List[str] = []
    calibs: Dict[str, Dict[str, Any]] = {}
    t_start = time.time()
    before = _procs.cpu_sample(tree=True)
    import json

    for it in interps:
        key = it.path
        bar.set_description("%s calibrate" % it.version)
        try:
            cal = profiles.speed_checked(profiles.calibrate(it.path, repeats=3, refresh=recalibrate, quiet=True), quiet=True)
        except CalibrationError as e:
            errors.append(str(e))
            bar.update(3 + len(core_sets) * repeats * (1 + len(plan[key])))
            continue
        bar.update(3)
        med = {k: getattr(cal, k) for k in profiles.FIGURES}
        pol = cal.policy(it.minor)
        calibs[key] = dict(med, version=it.version, source=cal.ticks_per_iter_source, profile=cal.source,
                           speed_scale=cal.speed_scale,
                           measured_at=cal.measured_at, cores=_core.allowed_cores()[:1],
                           work_ticks_send=cal.send_work_ticks, work_ticks_echo=cal.echo_work_ticks,
                           work_ticks_client=cal.client_work_ticks, sock_work_ns=cal.sock_work_ns, group=cal.group,
                           model_tick_ns=cal.model_tick_ns, model_policy=repr(pol), return_cost=cal.return_cost)
        for cs in core_sets:
            for rep in range(repeats):
                at_speed = cal
                for probe in ["calibrate"] + plan[key]:
                    bar.set_description("%s cores %s #%d %s" % (it.version, _label(cs), rep + 1, probe))
                    if not applies(probe, it):
                        bar.update()
                        continue
                    args = probe_args(probe, scale, med)
                    real_res: Dict[str, Any] = {}
                    for side in ("real", "model"):
                        t0 = time.monotonic()
                        try:
                            if side == "real":
                                res = real_res = run_probe(it, probe, args, cs)
                                if probe == "calibrate":
                                    at_speed = at_repeat_speed(cal, res)
                            else:
                                fed = {k: real_res.get(k) for k in FROM_REAL.get(probe, ())}
                                res = model_probe(probe, it.minor, cs, dict(args, **fed), at_speed)
                        except (ProbeError, RuntimeError, ValueError) as e:
                            errors.append("%s %s cores %s %s: %s" % (side, it.version, _label(cs), probe, e))
                            continue
                        base = {"interpreter": it.path, "version": it.version, "cores": _label(cs), "n_cores": len(cs),
                                "probe": probe, "side": side, "repeat": rep}
                        runs.append(dict(base, args=json.dumps(args), result=json.dumps(res),
                                         wall_s=round(time.monotonic() - t0, 3),
                                         speed_scale=at_speed.speed_scale if side == "model" else None))
                        for m, v in metrics(probe, res).items():
                            samples.append(dict(base, metric=m, value=v))
                        for suffix, xs in pings(probe, res).items():
                            pooled.setdefault((it.path, _label(cs), probe, suffix, side), []).extend(xs)
                    bar.update()
    bar.close()
    sdf = pd.DataFrame(samples, columns=["interpreter", "version", "cores", "n_cores", "probe", "side", "repeat", "metric", "value"])
    vrows = []
    if len(sdf):
        for (interp, version, cs, probe, metric), g in sdf.groupby(["interpreter", "version", "cores", "probe", "metric"], sort=False):
            tol = tolerance_for(probe, metric)
            if tol.pooled is not None:
                k = metric.partition("@")[2]
                sides = [pooled.get((interp, cs, probe, "@" + k if k else "", side), []) for side in ("real", "model")]
                real, model = [[float(np.percentile(x, tol.pooled))] if x else [] for x in sides]
            else:
                real, model = g.loc[g.side == "real", "value"].tolist(), g.loc[g.side == "model", "value"].tolist()
            v: Verdict = compare(real, model, tol)
            vrows.append(dict(interpreter=interp, version=version, cores=cs, probe=probe, metric=metric,
                              tolerance=tol.rel, quartiles=tol.quartiles, pooled=tol.pooled is not None, **v.__dict__))
    vdf = pd.DataFrame(vrows)
    busy = _procs.contention(before, _procs.cpu_sample(tree=True))
    meta = {"machine": steadiness(sdf, busy), "command": command, "repeats": repeats, "scale": scale, "core_sets": core_sets, "probes": ["calibrate"] + wanted,
            "slow_probes": list(SLOW_PROBES), "slow_probes_on": [i.version for i in slow_on if any(p in SLOW_PROBES for p in plan[i.path])],
            "seconds": round(time.time() - t_start, 1), "host": json.loads(_core.host_info()), "gilmodel": _core.__version__,
            "python": sys.version.split()[0], "pin_threads": model_side.PIN_THREADS}
    res = Validation(sdf, vdf, pd.DataFrame(runs), interps, calibs, errors, {}, meta)
    say(side_by_side(res))
    if out is not None:
        res.files = write_all(res, out)
    return res
