"""The one registry of experiments: a workload (a builder of :mod:`gilmodel.scenarios`), the
phases it runs, and what it measures, by name.

``gilmodel run``, sweeps (:mod:`gilmodel.sweeps`), the demo, the gallery and ``validate``'s
model side all run their workloads through :data:`EXPERIMENTS`, so a metric is computed in one
place and means the same thing everywhere (``convoy_factor`` is always the stream's time next
to the CPU threads over its time alone, both by :func:`gilmodel.scenarios.stream_seconds`).

>>> import gilmodel as gm
>>> res = gm.experiments.get("convoy_factor").run(gm.cpython("3.11"), [0, 1], total_bytes=1 << 18)
>>> res.metrics["convoy_factor"]  # doctest: +SKIP

An experiment's parameters are its builder's keyword arguments (:meth:`Experiment.params`);
``tick_ns`` None takes the measured profile of the policy's interpreter, as every scenario does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from . import scenarios
from .policies import Policy
from .run import Run, run as _run

__all__ = ["Experiment", "Result", "EXPERIMENTS", "get", "flat_summary"]

Cores = Optional[Sequence[int]]


@dataclass(frozen=True)
class Result:
    """What one run of an experiment measured.

    Attributes:
        experiment: its name.
        metrics: flat scalars: the last phase's summary (:func:`gilmodel.summary`, without its
            per-thread dicts), the experiment's own metrics, and the costs the model ran with
            (``model_tick_ns``, ``profile_source``, ``profile_version``, ``profile_speed_scale``:
            1, or the factor :func:`gilmodel.profiles.speed_checked` scaled the cached profile by).
        per_thread: the last phase's per-thread metrics (``{"share": {"cpu0": …}, …}``).
        runs: each phase's :class:`~gilmodel.Run`, by phase name.
        detail: nested results an experiment reports beside its metrics (``syscalls``: the
            whole report of :func:`gilmodel.scenarios.syscalls`), else empty.
    """

    experiment: str
    metrics: Dict[str, Any]
    per_thread: Dict[str, Dict[str, Any]]
    runs: Dict[str, Run]
    detail: Dict[str, Any] = field(default_factory=dict)


def flat_summary(r: Run) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """A run's summary split into scalar metrics and per-thread ones (dicts keyed by thread)."""
    s = r.summary()
    return ({k: v for k, v in s.items() if not isinstance(v, dict)},
            {k: v for k, v in s.items() if isinstance(v, dict)})


Measure = Callable[[Dict[str, Run]], Tuple[Dict[str, Any], Dict[str, Any]]]


@dataclass(frozen=True)
class Experiment:
    """A named workload and its measurement.

    Attributes:
        name: the registry key (``gilmodel run NAME``, a sweep's ``experiment``).
        title: one line saying what it shows.
        builder: the :mod:`gilmodel.scenarios` function that builds it; its keyword arguments
            (besides ``gil`` and ``cores``) are the experiment's parameters.
        phases: the names of the scenarios one run executes, in order. With one name the
            builder returns one scenario; with several, either the builder returns them as a
            tuple in this order, or ``variants`` gives each phase's parameter overrides.
        variants: phase name → parameters that phase overrides (``convoy_factor``: the alone
            phase has ``cpu_threads=0``), or None.
        measure: the phases' runs → ``(metrics, detail)``, the experiment's own numbers.
        probe: the real interpreter's probe of the same workload
            (``python/gilmodel/probes/``), or None.
        needs_log: whether the measurement reads the event log (its runs are always logged).
        own_metrics: the names of the float metrics ``measure`` adds to the summary's (the
            sweep store's columns).
    """

    name: str
    title: str
    builder: Callable[..., Any]
    phases: Tuple[str, ...] = ("run",)
    variants: Optional[Mapping[str, Mapping[str, Any]]] = None
    measure: Optional[Measure] = None
    probe: Optional[str] = None
    needs_log: bool = False
    own_metrics: Tuple[str, ...] = ()

    def params(self) -> Dict[str, Any]:
        """Parameter name → its default (``inspect.Parameter.empty`` where it has none)."""
        sig = inspect.signature(self.builder).parameters
        return {k: p.default for k, p in sig.items() if k not in ("gil", "cores")}

    def check_params(self, params: Mapping[str, Any], who: str = "") -> None:
        """Raise ValueError naming what ``params`` has that the experiment does not take."""
        known = self.params()
        bad = [k for k in params if k not in known]
        if bad:
            raise ValueError("%sexperiment %r has no parameter(s) %s; it takes %s" % (
                who, self.name, ", ".join(map(repr, bad)), ", ".join(sorted(known))))

    def scenarios(self, gil: Policy, cores: Cores = None, **params: Any) -> Dict[str, Any]:
        """The scenarios one run executes, by phase name (nothing runs)."""
        self.check_params(params)
        if self.variants is not None:
            return {ph: self.builder(gil, cores, **{**params, **self.variants.get(ph, {})}) for ph in self.phases}
        built = self.builder(gil, cores, **params)
        if len(self.phases) == 1:
            return {self.phases[0]: built}
        return dict(zip(self.phases, built))

    def run(self, gil: Policy, cores: Cores = None, log: bool = True, profile: Any = None,
            prepare: Optional[Callable[[Any], Any]] = None, **params: Any) -> Result:
        """Run every phase and measure. ``log=False`` runs without an event log where the
        measurement does not need one; ``profile``, when given, is recorded as the runs'
        profile (its costs must then be in ``params``: ``tick_ns``, ``work_ticks``);
        ``prepare`` maps each scenario just before it runs (``validate`` unpins threads)."""
        runs: Dict[str, Run] = {}
        for ph, sc in self.scenarios(gil, cores, **params).items():
            sc = sc.replace(log=bool(log or self.needs_log))
            if profile is not None:
                sc = sc.replace(profile=profile)
            runs[ph] = _run(sc if prepare is None else prepare(sc))
        last = runs[self.phases[-1]]
        metrics, per_thread = flat_summary(last)
        detail: Dict[str, Any] = {}
        if self.measure is not None:
            own, detail = self.measure(runs)
            metrics.update(own)
        prof = last.meta.get("profile") or {}
        metrics.update(model_tick_ns=float(last.meta["tick_ns"]), profile_source=prof.get("source"),
                       profile_version=prof.get("version"), profile_speed_scale=prof.get("speed_scale"))
        return Result(self.name, metrics, per_thread, runs, detail)


def _convoy(runs: Dict[str, Run]):
    return {"stream_s": scenarios.stream_seconds(runs["run"]), "drain_reads": float(scenarios.drain_reads(runs["run"]))}, {}


def _convoy_factor(runs: Dict[str, Run]):
    t = scenarios.convoy_times(runs["alone"], runs["loaded"])
    return {"alone_s": t["alone_s"], "with_cpu_s": t["with_cpu_s"], "convoy_factor": t["factor"],
            "alone_reads": float(scenarios.drain_reads(runs["alone"])), "with_cpu_reads": float(scenarios.drain_reads(runs["loaded"]))}, {}


def _cpu_pair(runs: Dict[str, Run]):
    t = scenarios.pair_times(runs["sequential"], runs["threaded"])
    return {"sequential_s": t["sequential_s"], "threaded_s": t["threaded_s"], "cpu_pair_ratio": t["ratio"]}, {}


def _syscalls(runs: Dict[str, Run]):
    rep = scenarios.syscalls_report(runs["sequential"], runs["threaded"])
    return {k + "_ratio": v for k, v in rep["ratios"].items()}, rep


def _hashing(runs: Dict[str, Run]):
    t = scenarios.hashing_times(runs["alone"], runs["threaded"])
    return {"alone_s": t["alone_s"], "threaded_s": t["threaded_s"], "hashing_speedup": t["speedup"]}, {}


def _pipeline(runs: Dict[str, Run]):
    t = scenarios.pipeline_times(runs["run"])
    return {"items_per_s": t["items_per_s"]}, {}


def _pool(runs: Dict[str, Run]):
    t = scenarios.pool_times(runs["run"])
    return {"tasks_per_s": t["tasks_per_s"]}, {"worker_tasks": t["worker_tasks"]}


_SYSCALL_RATIOS = tuple("%s_ratio" % k for k in ("ctx_switches", "voluntary_ctx_switches", "involuntary_ctx_switches",
                                                 "primitive_calls", "elapsed_s", "futex_level", "blocking_waits"))
_ALL = (
    Experiment("convoy", "an I/O thread streams sends to a drain next to CPU threads (P7); stream_s is its time, "
               "drain_reads the drain's recv calls",
               scenarios.convoy, measure=_convoy, needs_log=True, own_metrics=("stream_s", "drain_reads")),
    Experiment("convoy_factor", "the convoy alone and next to the CPU threads: convoy_factor = with_cpu_s / alone_s (P7)",
               scenarios.convoy, phases=("alone", "loaded"), variants={"alone": {"cpu_threads": 0}},
               measure=_convoy_factor, probe="convoy", needs_log=True,
               own_metrics=("alone_s", "with_cpu_s", "convoy_factor", "alone_reads", "with_cpu_reads")),
    Experiment("handoffs", "two CPU-bound threads for a while: switches_per_s is the hand-off rate (P4)",
               scenarios.handoffs, probe="handoffs"),
    Experiment("io_latency", "a thread answering pings next to CPU threads: io_latency_* round trips (P8)",
               scenarios.io_latency, probe="io_latency"),
    Experiment("cpu_pair", "two equal CPU tasks one after the other, then at once: cpu_pair_ratio (P1)",
               scenarios.cpu_pair, phases=("sequential", "threaded"), measure=_cpu_pair, probe="cpu_pair",
               own_metrics=("sequential_s", "threaded_s", "cpu_pair_ratio")),
    Experiment("hashing", "threads alternating a little Python with big GIL-released C chunks (hashlib, zlib; "
               "released=False: chunks that hold it): one thread, then all: hashing_speedup = n * alone_s / "
               "threaded_s, the cores they use",
               scenarios.hashing, phases=("alone", "threaded"), variants={"alone": {"threads": 1}}, measure=_hashing,
               own_metrics=("alone_s", "threaded_s", "hashing_speedup")),
    Experiment("long_call", "a thread answering pings next to one making long GIL-holding calls (sorted(), a regex): "
               "io_latency_* follow the call's length, not the switch interval",
               scenarios.long_call),
    Experiment("pipeline", "producers and consumers through a queue.Queue: items_per_s, and item_latency_* (time in "
               "the queue: a woken consumer must win the GIL from the producer)",
               scenarios.pipeline, measure=_pipeline, needs_log=True, own_metrics=("items_per_s",)),
    Experiment("thread_pool", "a main thread submitting tasks to k workers over queues and collecting the results: "
               "tasks_per_s, and each worker's part", scenarios.thread_pool, measure=_pool, needs_log=True,
               own_metrics=("tasks_per_s",)),
    Experiment("syscalls", "cpu_pair's two runs and what each costs the OS: context switches, primitive calls (P2)",
               scenarios.cpu_pair, phases=("sequential", "threaded"), measure=_syscalls, own_metrics=_SYSCALL_RATIOS),
)
#: Every experiment by name.
EXPERIMENTS: Dict[str, Experiment] = {e.name: e for e in _ALL}


def get(name: str) -> Experiment:
    """The experiment called ``name``; ValueError listing the known ones otherwise."""
    if not isinstance(name, str):
        raise TypeError("experiment: expected a name (%s), got %r" % (", ".join(EXPERIMENTS), name))
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError("unknown experiment %r; known: %s" % (name, ", ".join(EXPERIMENTS))) from None
