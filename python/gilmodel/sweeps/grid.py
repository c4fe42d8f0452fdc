"""Expanding a sweep: a base configuration, a grid and cases into runs with deterministic ids.

A configuration is a nested dict that dotted paths address::

    {"experiment": "convoy_factor",          # what runs (see gilmodel.sweeps.experiments)
     "gil": {"version": "3.11", "interval_us": 2000},   # a cpython() preset and/or policy + knobs
     "scenario": {"cpu_threads": 1, "total_bytes": 1 << 20},   # the builder's keyword arguments
     "cores": 2, "tick_ns": None, "log": True}   # tick_ns None: the profile's (measured)

``gil`` resolves to an *effective* policy: ``version`` (optional) gives a preset, ``policy``
(``"tick"`` or ``"interval"``) the kind, other keys are knobs. Knobs the resolved policy does not
have are dropped, so that configurations meaning the same experiment get the same id (a grid
of ``gil.version`` × ``gil.interval_us`` runs 2.7 once per repeat, not once per interval).
``tick_ns`` None (the default) takes the measured profile of the policy's interpreter on the
machine (the node) that runs it; each row records it (``model_tick_ns``, ``profile_source``,
``profile_version``, ``profile_speed_scale``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ..policies import CPYTHON_VERSIONS, POLICIES, cpython
from .experiments import SCENARIO_FIELDS, experiment_kwargs, scenario_of

__all__ = ["RunSpec", "DEFAULT_BASE", "expand", "resolve", "run_id", "PARAM_COLUMNS_FIXED"]

#: What a sweep starts from when ``base`` leaves a key out.
DEFAULT_BASE: Dict[str, Any] = {
    "experiment": "convoy",
    "gil": {"version": "3.11"},
    "scenario": {},
    "cores": 2,
    "tick_ns": None,
    "log": True,
    "watchdog_s": None,
    "on_overflow": None,
    "template": None,
}
#: ``watchdog_s`` / ``on_overflow``: None keeps each scenario's own; a value applies to every
#: scenario the run executes. ``template``: the :class:`~gilmodel.Scenario` a sweep of a
#: scenario varies (``experiment="scenario"``; see :func:`scenario_base`).
_TOP = ("experiment", "gil", "scenario", "cores", "tick_ns", "log", "watchdog_s", "on_overflow", "template")
#: Policy name -> class (:data:`gilmodel.POLICIES`).
POLICY_CLASSES: Dict[str, Any] = dict(POLICIES)
_POLICIES = POLICY_CLASSES
_KNOBS = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in _POLICIES.items()}
_ALL_KNOBS = sorted({k for ks in _KNOBS.values() for k in ks})
#: Parameter columns every runs table has, in order (scenario keyword arguments follow).
PARAM_COLUMNS_FIXED = ("experiment", "policy", "version") + tuple(_ALL_KNOBS) + ("cores", "tick_ns", "log", "watchdog_s",
                                                                                 "on_overflow")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        id: 16 hex digits, a hash of the effective configuration and the repeat number.
        repeat: 0-based repeat number.
        config: the effective configuration (nested; ``gil`` resolved).
        params: the flat parameter columns of the run's row (``policy``, ``interval_us``,
            ``cpu_threads``, …; None where a knob does not apply).
    """

    id: str
    repeat: int
    config: Dict[str, Any]
    params: Dict[str, Any]


def _set(cfg: Dict[str, Any], path: str, value: Any) -> None:
    if not isinstance(path, str) or not path:
        raise ValueError("sweep: a parameter path must be a non-empty string like 'gil.interval_us', got %r" % (path,))
    parts = path.split(".")
    if parts[0] not in _TOP or parts[0] == "template":
        # A bare name of one of the experiment's parameters means scenario.<name>.
        takes = experiment_kwargs(cfg.get("experiment"))
        if len(parts) == 1 and takes is not None and path in takes:
            parts = ["scenario", path]
        else:
            raise ValueError("sweep: unknown parameter %r; paths start with one of %s, or name a parameter of "
                             "experiment %r (%s)" % (path, ", ".join(t for t in _TOP if t != "template"),
                                                      cfg.get("experiment"), ", ".join(sorted(takes or ())) or "none known"))
    if path == "gil":  # a whole GIL: a name ('3.11', 'priority') or a dict
        cfg["gil"] = _gil_dict(value)
        return
    if parts[0] == "gil" and cfg.get("gil") is None:
        raise ValueError("sweep: %r: a builder's GIL is its own: make it one of the builder's parameters" % (path,))
    if parts[0] in ("gil", "scenario"):
        if len(parts) != 2:
            raise ValueError("sweep: %r: expected %s.<name>" % (path, parts[0]))
    elif len(parts) != 1:
        raise ValueError("sweep: %r: %s takes no sub-path" % (path, parts[0]))
    d = cfg
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _merge(base: Mapping[str, Any]) -> Dict[str, Any]:
    if not isinstance(base, Mapping):
        raise TypeError("sweep(base): expected a dict like {'experiment': 'convoy', 'gil': {...}, 'scenario': {...}}, got %r" % (base,))
    cfg = copy.deepcopy(DEFAULT_BASE)
    for k, v in sorted(base.items(), key=lambda kv: kv[0] != "experiment"):  # the experiment first
        if k == "gil":
            cfg[k] = None if v is None else _gil_dict(v)
        elif k == "scenario":
            if not isinstance(v, Mapping):
                raise TypeError("sweep(base): %r must be a dict, got %r" % (k, v))
            cfg[k] = dict(v)  # the base's gil/scenario replace the defaults whole
        elif k in _TOP:
            cfg[k] = v
        elif "." not in k and k in (experiment_kwargs(cfg.get("experiment")) or ()):
            cfg["scenario"][k] = v
        elif "." in k:
            _set(cfg, k, v)
        else:
            raise ValueError("sweep(base): unknown key %r; known: %s" % (k, ", ".join(_TOP)))
    if str(cfg["experiment"]).startswith("builder:") and "gil" not in base:
        cfg["gil"] = None  # a builder chooses its own GIL
    return cfg


def _gil_dict(gil: Any) -> Dict[str, Any]:
    # A GIL named as gilmodel.resolve_gil names it (a CPython version or a policy), or a dict.
    if isinstance(gil, str):
        n = gil.strip()
        return {"version": n} if n in CPYTHON_VERSIONS or n[:1].isdigit() else {"policy": n}
    if not isinstance(gil, Mapping):
        raise TypeError("sweep: gil must be a dict such as {'version': '3.11'} or a name such as '3.11' or 'priority', got %r" % (gil,))
    return dict(gil)


def resolve_gil(gil: Any) -> Dict[str, Any]:
    """The effective policy of a ``gil`` dict: ``{"policy", "version", <that policy's knobs>}``.
    A string names a GIL as :func:`gilmodel.resolve_gil` does: a CPython version or a policy."""
    g = _gil_dict(gil)
    version = g.pop("version", None)
    policy = g.pop("policy", None)
    unknown = [k for k in g if k not in _ALL_KNOBS]
    if unknown:
        raise ValueError("sweep: unknown GIL knob(s) %s; known: version, policy, %s" % (", ".join(map(repr, unknown)), ", ".join(_ALL_KNOBS)))
    if version is not None:
        preset = cpython(str(version))
        kind = preset.to_spec()["policy"]
        if policy is not None and policy != kind:
            raise ValueError("sweep: gil.version %r is a %s GIL but gil.policy says %r" % (version, kind, policy))
        knobs = dataclasses.asdict(preset)
        version = str(version)
    else:
        kind = "interval" if policy is None else policy
        if kind not in _POLICIES:
            raise ValueError("sweep: gil.policy %r; known: %s" % (kind, ", ".join(_POLICIES)))
        knobs = {f.name: f.default for f in dataclasses.fields(_POLICIES[kind])}
    for k, v in g.items():
        if k in knobs:
            knobs[k] = v
    return {"policy": kind, "version": version, **knobs}


def scenario_base(sc: Any) -> Dict[str, Any]:
    """The base configuration of a sweep of ``sc`` (a :class:`~gilmodel.Scenario`): its policy
    as ``gil`` (a CPython preset keeps its version), its scalar fields (:data:`SCENARIO_FIELDS`)
    as ``scenario``, how many cores it uses as ``cores``, and the rest (threads, signals) kept
    whole in ``template``. Its cores are logical: the *i*-th of ``sc.cores`` (or of the cores
    its threads and peers name, in order) runs on the run's *i*-th allotted core."""
    from .experiments import logical_cores

    g = sc.gil
    kind = next(name for name, cls in POLICIES.items() if type(g) is cls)
    knobs = {f.name: getattr(g, f.name) for f in dataclasses.fields(g) if f.name != "python"}
    version = g.python if isinstance(g.python, str) and g.python[:1].isdigit() else None
    try:
        if version is not None and cpython(version).to_spec()["policy"] != kind:
            version = None
    except ValueError:
        version = None
    return {"experiment": "scenario", "gil": {"policy": kind, **({"version": version} if version else {}), **knobs},
            "scenario": {k: getattr(sc, k) for k in SCENARIO_FIELDS}, "cores": max(1, len(logical_cores(sc))),
            "tick_ns": sc.tick_ns, "log": sc.log, "watchdog_s": sc.watchdog_s, "on_overflow": sc.on_overflow,
            "template": sc}


def resolve(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The effective configuration (checked names, ``gil`` resolved)."""
    out = {k: copy.deepcopy(cfg[k]) for k in _TOP}
    builder = isinstance(out["experiment"], str) and out["experiment"].startswith("builder:")
    if builder:
        if cfg["gil"] is not None:
            raise ValueError("sweep: a builder's GIL is its own: make it one of the builder's parameters "
                             "(grid 'gil.*' does not apply)")
    else:
        out["gil"] = resolve_gil(cfg["gil"])
    if out["experiment"] == "scenario" and out["template"] is None:
        raise ValueError("sweep: experiment 'scenario' is a sweep of a Scenario: pass the Scenario as base")
    if out["on_overflow"] is not None and out["on_overflow"] not in ("truncate", "stop", "error"):
        raise ValueError("sweep: on_overflow must be 'truncate', 'stop' or 'error', got %r" % (out["on_overflow"],))
    if out["watchdog_s"] is not None and (isinstance(out["watchdog_s"], bool) or not isinstance(out["watchdog_s"], (int, float))):
        raise TypeError("sweep: watchdog_s must be seconds (a number) or None, got %r" % (out["watchdog_s"],))
    allowed = experiment_kwargs(out["experiment"])
    if allowed is not None:
        bad = [k for k in out["scenario"] if k not in allowed]
        if bad:
            raise ValueError("sweep: experiment %r has no parameter(s) %s; it takes scenario.%s" % (
                out["experiment"], ", ".join(map(repr, bad)), ", scenario.".join(sorted(allowed))))
    if out["experiment"] == "scenario":
        try:  # the scenario's own checks, before anything runs
            scenario_of(out)
        except (TypeError, ValueError) as e:
            raise type(e)("sweep: %s" % e) from None
    return out


def run_id(config: Mapping[str, Any], repeat: int) -> str:
    """Deterministic id of a run: sha256 of its canonical configuration and repeat number."""
    blob = json.dumps({"config": config, "repeat": repeat}, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _params(config: Mapping[str, Any]) -> Dict[str, Any]:
    g = config["gil"] or {}
    p: Dict[str, Any] = {"experiment": config["experiment"], "policy": g.get("policy"), "version": g.get("version")}
    for k in _ALL_KNOBS:
        p[k] = g.get(k)
    p.update(cores=config["cores"], tick_ns=config["tick_ns"], log=config["log"], watchdog_s=config["watchdog_s"],
             on_overflow=config["on_overflow"])
    for k, v in config["scenario"].items():
        if k in p:
            raise ValueError("sweep: scenario.%s clashes with a column of the same name" % k)
        p[k] = v
    return p


def expand(base: Mapping[str, Any], grid: Optional[Mapping[str, Sequence[Any]]] = None,
           cases: Optional[Iterable[Mapping[str, Any]]] = None, repeats: int = 1) -> List[RunSpec]:
    """Every run of a sweep, in a stable order.

    Each case (``[{}]`` when ``cases`` is None) is combined with each point of the cartesian
    product of ``grid``: base, then the grid point, then the case's overrides. Runs whose
    effective configuration and repeat coincide are kept once.
    """
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError("sweep: repeats must be an integer >= 1, got %r" % (repeats,))
    grid = dict(grid or {})
    for k, vs in grid.items():
        if isinstance(vs, (str, bytes)) or not isinstance(vs, Sequence) or len(vs) == 0:
            raise ValueError("sweep: grid[%r] must be a non-empty list of values, got %r" % (k, vs))
    case_list = [dict(c) for c in cases] if cases is not None else [{}]
    if not case_list:
        raise ValueError("sweep: cases is an empty list")
    root = _merge(base)
    keys = list(grid)
    specs: List[RunSpec] = []
    seen = set()
    for case in case_list:
        for point in itertools.product(*(grid[k] for k in keys)):
            cfg = copy.deepcopy(root)
            for k, v in zip(keys, point):
                _set(cfg, k, v)
            for k, v in case.items():
                _set(cfg, k, v)
            eff = resolve(cfg)
            params = _params(eff)
            for r in range(repeats):
                rid = run_id(eff, r)
                if rid in seen:
                    continue
                seen.add(rid)
                specs.append(RunSpec(rid, r, eff, params))
    return specs


def callable_name(fn: Any) -> str:
    """``"module:qualname"`` of an importable function (how a custom experiment travels)."""
    mod, qn = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not mod or not qn or "<" in qn or mod == "__main__":
        raise ValueError("sweep: experiment %r must be a module-level function of an importable module "
                         "(workers import it by name)" % (fn,))
    return "%s:%s" % (mod, qn)
