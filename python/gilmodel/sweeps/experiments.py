"""What one run of a sweep executes: a named experiment on the cores a worker was given.

Built-in experiments are those of the registry, :data:`gilmodel.experiments.EXPERIMENTS`;
``scenario.*`` parameters are their builders' keyword arguments, and a row's metrics are the
registry's (the last phase's summary plus the experiment's own):

- ``convoy`` (plus ``stream_s``), ``handoffs``, ``io_latency``: one run; its summary.
- ``convoy_factor``: the convoy alone (``cpu_threads=0``) and loaded; the loaded run's summary
  plus ``alone_s``, ``with_cpu_s`` and ``convoy_factor``.
- ``cpu_pair``: sequential and threaded; the threaded run's summary plus ``sequential_s``,
  ``threaded_s`` and ``cpu_pair_ratio``.
- ``syscalls``: ``cpu_pair``'s runs; the ``*_ratio`` of context switches and primitive calls.

A custom experiment is ``"module:function"``: ``function(config, cores)`` gets the effective
configuration and the run's cores and returns a dict of metrics or a :class:`~gilmodel.Run`.

A sweep of a :class:`~gilmodel.Scenario` (``experiment="scenario"``, built by
:func:`gilmodel.sweeps.grid.scenario_base`) runs the scenario with the grid point's policy knobs,
``tick_ns`` and fields (:data:`SCENARIO_FIELDS`); its metrics are the summary's. A builder
(``"builder:module:function"``) is called with the ``scenario.*`` parameters (and ``cores``,
the run's cores, when it takes them) and returns a Scenario (run; its summary), a Run (its
summary) or a dict of metrics. Both travel to the workers by name (a Scenario inside the
configuration, pickled; a builder as its import path).

The run's logical core *i* (thread placement, ``scenario.peer_core``) is the worker's allotted
core *i*; ``cores`` (how many the scenario uses) must not exceed the allotment.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import pyarrow as pa

from .. import experiments as _registry
from ..experiments import flat_summary
from ..policies import POLICIES
from ..run import Run, run
from ..scenario import Scenario

__all__ = ["EXPERIMENTS", "SCENARIO_FIELDS", "experiment_kwargs", "execute", "make_gil", "logical_cores", "scenario_of"]

#: Fields of a swept Scenario a grid may set by name (``duration_s`` = ``scenario.duration_s``).
SCENARIO_FIELDS = ("duration_s", "stop_thread", "max_events", "pin_threads", "name")

#: Names of the built-in experiments (:data:`gilmodel.experiments.EXPERIMENTS`).
EXPERIMENTS = tuple(_registry.EXPERIMENTS)


def experiment_kwargs(name: str) -> Optional[Set[str]]:
    """The ``scenario.*`` names an experiment takes (None: a custom one, anything goes)."""
    if not isinstance(name, str):
        raise TypeError("sweep: experiment must be a name (%s) or 'module:function', got %r" % (", ".join(EXPERIMENTS), name))
    if name in _registry.EXPERIMENTS:
        return set(_registry.EXPERIMENTS[name].params()) - {"tick_ns"}
    if name == "scenario":
        return set(SCENARIO_FIELDS)
    if name.startswith("builder:"):
        sig = inspect.signature(_import(name[len("builder:"):])).parameters.values()
        if any(p.kind == p.VAR_KEYWORD for p in sig):
            return None
        return {p.name for p in sig if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"cores"}
    if ":" in name:
        return None
    raise ValueError("sweep: unknown experiment %r; built in: %s; or 'module:function'" % (name, ", ".join(EXPERIMENTS)))


def _import(path: str):
    """The function ``"module:qualname"`` names."""
    mod, _, fn = path.partition(":")
    if not mod or not fn:
        raise ValueError("sweep: %r: expected 'module:function'" % (path,))
    f: Any = importlib.import_module(mod)
    for part in fn.split("."):
        f = getattr(f, part)
    return f


def logical_cores(sc: Scenario) -> List[int]:
    """The cores ``sc`` uses, in its own order: ``sc.cores``, else those its threads and peers
    name (first seen first). A sweep runs the *i*-th on the run's *i*-th allotted core."""
    if sc.cores:
        return list(sc.cores)
    seen: List[int] = []
    for t in sc.threads:
        for c in (t.core, getattr(t.peer, "core", None)):
            if c is not None and c not in seen:
                seen.append(c)
    return seen


def _place(sc: Scenario, cores: Sequence[int]) -> Scenario:
    """``sc`` with its logical cores (:func:`logical_cores`) mapped onto ``cores``."""
    logical = logical_cores(sc)
    if len(logical) > len(cores):
        raise ValueError("the scenario uses %d cores (%s) but the run has %d (cores=%d)" % (
            len(logical), logical, len(cores), len(cores)))
    where = dict(zip(logical, cores))
    stray = sorted({c for t in sc.threads for c in (t.core, getattr(t.peer, "core", None)) if c is not None} - set(where))
    if stray:
        raise ValueError("the scenario's threads name core(s) %s that are not in its cores %s" % (stray, logical))

    def move(x):
        if x is None or getattr(x, "core", None) is None:
            return x
        return dataclasses.replace(x, core=where[x.core])

    threads = tuple(dataclasses.replace(t, core=None if t.core is None else where[t.core], peer=move(t.peer))
                    for t in sc.threads)
    # A scenario that names no core may use every core of the run.
    return sc.replace(threads=threads, cores=tuple(cores[:len(logical)] if logical else cores))


def _options(config: Dict[str, Any]):
    """The sweep's per-run options applied to a scenario (None: the scenario's own)."""
    opts = {k: config[k] for k in ("watchdog_s", "on_overflow") if config.get(k) is not None}
    return (lambda sc: sc.replace(**opts)) if opts else None


def _run_scenario(sc: Scenario, config: Dict[str, Any]) -> Run:
    prep = _options(config)
    return run(prep(sc) if prep else sc)


def scenario_of(config: Dict[str, Any]) -> Scenario:
    """The Scenario a configuration of a swept scenario runs (on its logical cores): its
    template with the configuration's policy, ``tick_ns``, ``log`` and fields. Raises what the
    Scenario's own checks raise (a value of the wrong type, out of range)."""
    return config["template"].replace(gil=make_gil(config["gil"]), tick_ns=config["tick_ns"], log=bool(config["log"]),
                                      **config["scenario"])


def make_gil(g: Dict[str, Any]):
    """The policy object of a resolved ``gil`` dict."""
    cls = POLICIES[g["policy"]]
    return cls(**{f.name: g[f.name] for f in dataclasses.fields(cls)})


def _events(runs: Dict[str, Run]) -> Optional[pa.Table]:
    parts = []
    for phase, r in runs.items():
        ev = r.events
        parts.append(ev.add_column(0, "phase", pa.array([phase] * ev.num_rows, type=pa.string())))
    return pa.concat_tables(parts) if parts else None


def execute(config: Dict[str, Any], allotted: Sequence[int]) -> Tuple[Dict[str, Any], Dict[str, Any], Optional[pa.Table]]:
    """Run one configuration on ``allotted`` cores; returns ``(metrics, per_thread, events)``
    (``events`` with a ``phase`` column naming the run it came from, or None)."""
    name = config["experiment"]
    n = config["cores"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(allotted):
        raise ValueError("cores=%r: a run may use 1 to %d cores (cores_per_run)" % (n, len(allotted)))
    cores: List[int] = list(allotted[:n])
    if name == "scenario":
        r = _run_scenario(_place(scenario_of(config), cores), config)
        m, pt = flat_summary(r)
        m.pop("policy", None)
        return m, pt, _events({"run": r}) if config["log"] else None
    if name.startswith("builder:"):
        f = _import(name[len("builder:"):])
        kw = dict(config["scenario"])
        takes_cores = "cores" in inspect.signature(f).parameters
        if takes_cores:
            kw["cores"] = list(cores)
        out = f(**kw)
        if isinstance(out, Scenario):
            out = _run_scenario(out if takes_cores else _place(out, cores), config)
        if isinstance(out, Run):
            m, pt = flat_summary(out)
            m.pop("policy", None)
            return m, pt, _events({"run": out}) if config["log"] else None
        if not isinstance(out, dict):
            raise TypeError("builder %s returned %r; expected a Scenario, a Run or a dict of metrics" % (
                name[len("builder:"):], type(out).__name__))
        return dict(out), {}, None
    if name not in _registry.EXPERIMENTS:
        f = _import(name)
        out = f(config, cores)
        if isinstance(out, Run):
            m, pt = flat_summary(out)
            m.pop("policy", None)
            return m, pt, _events({"run": out}) if config["log"] else None
        if not isinstance(out, dict):
            raise TypeError("experiment %s returned %r; expected a dict of metrics or a Run" % (name, type(out).__name__))
        return dict(out), {}, None
    kw = dict(config["scenario"])
    if kw.get("peer_core") is not None:
        pc = kw["peer_core"]
        if not isinstance(pc, int) or not 0 <= pc < len(allotted):
            raise ValueError("scenario.peer_core=%r: a logical core 0..%d of the run's allotment" % (pc, len(allotted) - 1))
        kw["peer_core"] = allotted[pc]
    res = _registry.EXPERIMENTS[name].run(make_gil(config["gil"]), cores, log=bool(config["log"]),
                                          prepare=_options(config), tick_ns=config["tick_ns"], **kw)
    m = {k: v for k, v in res.metrics.items() if k != "policy"}
    return m, res.per_thread, _events(res.runs) if config["log"] else None


def per_thread_json(pt: Dict[str, Any]) -> str:
    return json.dumps(pt, sort_keys=True)
