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

The run's logical core *i* (thread placement, ``scenario.peer_core``) is the worker's allotted
core *i*; ``cores`` (how many the scenario uses) must not exceed the allotment.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import pyarrow as pa

from .. import experiments as _registry
from ..experiments import flat_summary
from ..policies import POLICIES
from ..run import Run

__all__ = ["EXPERIMENTS", "experiment_kwargs", "execute", "make_gil"]

#: Names of the built-in experiments (:data:`gilmodel.experiments.EXPERIMENTS`).
EXPERIMENTS = tuple(_registry.EXPERIMENTS)


def experiment_kwargs(name: str) -> Optional[Set[str]]:
    """The ``scenario.*`` names an experiment takes (None: a custom one, anything goes)."""
    if not isinstance(name, str):
        raise TypeError("sweep: experiment must be a name (%s) or 'module:function', got %r" % (", ".join(EXPERIMENTS), name))
    if name in _registry.EXPERIMENTS:
        return set(_registry.EXPERIMENTS[name].params()) - {"tick_ns"}
    if ":" in name:
        return None
    raise ValueError("sweep: unknown experiment %r; built in: %s; or 'module:function'" % (name, ", ".join(EXPERIMENTS)))


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
    if name not in _registry.EXPERIMENTS:
        mod, _, fn = name.partition(":")
        f = importlib.import_module(mod)
        for part in fn.split("."):
            f = getattr(f, part)
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
                                          tick_ns=config["tick_ns"], **kw)
    m = {k: v for k, v in res.metrics.items() if k != "policy"}
    return m, res.per_thread, _events(res.runs) if config["log"] else None


def per_thread_json(pt: Dict[str, Any]) -> str:
    return json.dumps(pt, sort_keys=True)
