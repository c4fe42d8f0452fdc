"""What one run of a sweep executes: a named experiment on the cores a worker was given.

Built-in experiments wrap the canned scenarios of :mod:`gilmodel.scenarios`; ``scenario.*``
parameters are their keyword arguments:

- ``convoy``, ``handoffs``, ``io_latency``: one run; its summary.
- ``convoy_factor``: the convoy alone (``cpu_threads=0``) and loaded; the loaded run's summary
  plus ``alone_s``, ``with_cpu_s`` and ``convoy_factor``.
- ``cpu_pair``: sequential and threaded; the threaded run's summary plus ``sequential_s``,
  ``threaded_s`` and ``cpu_pair_ratio``.

A custom experiment is ``"module:function"``: ``function(config, cores)`` gets the effective
configuration and the run's cores and returns a dict of metrics or a :class:`~gilmodel.Run`.

The run's logical core *i* (thread placement, ``scenario.peer_core``) is the worker's allotted
core *i*; ``cores`` (how many the scenario uses) must not exceed the allotment.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import pyarrow as pa

from .. import scenarios
from ..analysis import summary
from ..run import Run, run

__all__ = ["EXPERIMENTS", "experiment_kwargs", "execute", "make_gil"]

_BUILDERS: Dict[str, Callable[..., Any]] = {
    "convoy": scenarios.convoy,
    "convoy_factor": scenarios.convoy,
    "handoffs": scenarios.handoffs,
    "io_latency": scenarios.io_latency,
    "cpu_pair": scenarios.cpu_pair,
}
#: Names of the built-in experiments.
EXPERIMENTS = tuple(_BUILDERS)


def experiment_kwargs(name: str) -> Optional[Set[str]]:
    """The ``scenario.*`` names an experiment takes (None: a custom one, anything goes)."""
    if not isinstance(name, str):
        raise TypeError("sweep: experiment must be a name (%s) or 'module:function', got %r" % (", ".join(EXPERIMENTS), name))
    if name in _BUILDERS:
        return set(inspect.signature(_BUILDERS[name]).parameters) - {"gil", "cores", "tick_ns"}
    if ":" in name:
        return None
    raise ValueError("sweep: unknown experiment %r; built in: %s; or 'module:function'" % (name, ", ".join(EXPERIMENTS)))


def make_gil(g: Dict[str, Any]):
    """The policy object of a resolved ``gil`` dict."""
    import dataclasses

    from .grid import POLICY_CLASSES

    cls = POLICY_CLASSES[g["policy"]]

    return cls(**{f.name: g[f.name] for f in dataclasses.fields(cls)})


def _flatten(s: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Scalar metrics, and per-thread ones (dicts keyed by thread name)."""
    scalars = {k: v for k, v in s.items() if not isinstance(v, dict) and k != "policy"}
    per_thread = {k: v for k, v in s.items() if isinstance(v, dict)}
    return scalars, per_thread


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
    if name not in _BUILDERS:
        mod, _, fn = name.partition(":")
        f = importlib.import_module(mod)
        for part in fn.split("."):
            f = getattr(f, part)
        out = f(config, cores)
        if isinstance(out, Run):
            m, pt = _flatten(summary(out))
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
    gil = make_gil(config["gil"])
    build = _BUILDERS[name]
    tick_ns = config["tick_ns"]

    def go(sc) -> Run:
        return run(sc.replace(log=bool(config["log"])))

    if name == "convoy_factor":
        # The stream's clock comes from the event log (scenarios.stream_seconds): always logged.
        alone = run(build(gil, cores, **{**kw, "cpu_threads": 0}, tick_ns=tick_ns))
        loaded = run(build(gil, cores, **kw, tick_ns=tick_ns))
        m, pt = _flatten(summary(loaded))
        a, b = scenarios.stream_seconds(alone), scenarios.stream_seconds(loaded)
        m.update(alone_s=a, with_cpu_s=b, convoy_factor=b / a)
        runs = {"alone": alone, "loaded": loaded}
    elif name == "cpu_pair":
        seq, thr = build(gil, cores, **kw, tick_ns=tick_ns)
        rs, rt = go(seq), go(thr)
        m, pt = _flatten(summary(rt))
        a, b = rs.meta["elapsed_ns"] / 1e9, rt.meta["elapsed_ns"] / 1e9
        m.update(sequential_s=a, threaded_s=b, cpu_pair_ratio=b / a)
        runs = {"sequential": rs, "threaded": rt}
    else:
        r = go(build(gil, cores, **kw, tick_ns=tick_ns))
        m, pt = _flatten(summary(r))
        runs = {"run": r}
    last = list(runs.values())[-1]
    prof = last.meta.get("profile", {})
    m.update(model_tick_ns=float(last.meta["tick_ns"]), profile_source=str(prof.get("source")),
             profile_version=prof.get("version"))
    return m, pt, _events(runs) if config["log"] else None


def per_thread_json(pt: Dict[str, Any]) -> str:
    return json.dumps(pt, sort_keys=True)
