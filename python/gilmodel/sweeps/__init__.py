"""Sweeps: many runs over a grid of parameters, on disjoint core sets, into a Parquet dataset.

>>> import gilmodel as gm
>>> gm.sweep({"experiment": "convoy_factor", "gil": {"version": "3.11"}, "scenario": {"total_bytes": 1 << 18}},
...          grid={"gil.interval_us": [1000, 5000]}, repeats=3, out="results/convoy")  # doctest: +SKIP
>>> gm.load("results/convoy").to_pandas()  # doctest: +SKIP

Modules: :mod:`.grid` (expansion, ids), :mod:`.experiments` (what a run executes),
:mod:`.runner` (one run → one row), :mod:`.store` (the dataset), :mod:`.local` and
:mod:`.ray_backend` (where runs execute), :mod:`.plot` (medians and spread), :mod:`.spec`
(the TOML form).
"""

from __future__ import annotations

import inspect

import os
import sys
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Union

import pyarrow as pa

from .grid import DEFAULT_BASE, PARAM_COLUMNS_FIXED, RunSpec, callable_name, expand
from .local import run_local  # here, so that its THREADS_AT_IMPORT is counted at gilmodel's import
from .ray_backend import HeadLost  # imports Ray only when a Ray sweep runs
from .store import Store, load, param_schema

__all__ = ["sweep", "load", "expand", "RunSpec", "DEFAULT_BASE", "HeadLost"]


def _bar_class() -> Any:
    from tqdm import tqdm

    class Bar(tqdm):
        # No monitor thread: the local backend forks its workers only while no other Python
        # thread runs (gilmodel.sweeps.local), and the bar is updated at every run anyway.
        monitor_interval = 0

    return Bar


class _Progress:
    """A tqdm bar (runs, ETA, failures so far), or nothing."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str):
        self.bar = None
        if enabled:
            self.bar = _bar_class()(total=total, initial=initial, unit="run", desc=desc, file=sys.stderr, dynamic_ncols=True)
            self.bar.set_postfix(failed=0)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def failed(self, n: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix(failed=n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _base_of(base: Any) -> Any:
    """A sweep's base configuration from what the caller gave: a dict as it is; a Scenario
    (:func:`~gilmodel.sweeps.grid.scenario_base`); a function ``f(config, cores)`` (a custom
    experiment); any other function (a builder of a Scenario or metrics)."""
    from ..scenario import Scenario
    from .grid import scenario_base

    if isinstance(base, Scenario):
        return scenario_base(base)
    if callable(base) and not isinstance(base, Mapping):
        params = list(inspect.signature(base).parameters)
        if params[:2] == ["config", "cores"]:
            return {"experiment": callable_name(base)}
        return {"experiment": "builder:" + callable_name(base), "gil": None}
    return base


def sweep(base: Union[Mapping[str, Any], Callable[..., Any], None] = None,
          grid: Optional[Mapping[str, Sequence[Any]]] = None,
          cases: Optional[Iterable[Mapping[str, Any]]] = None,
          repeats: int = 1,
          cores_per_run: Optional[int] = None,
          out: Union[str, os.PathLike] = "results/",
          backend: str = "local",
          max_parallel: Optional[int] = None,
          resume: bool = True,
          events: bool = False,
          address: Optional[str] = None,
          progress: bool = True) -> pa.Table:
    """Run every configuration of a grid (and/or a list of cases), ``repeats`` times each.

    Args:
        base: the starting configuration: ``{"experiment": "convoy" | "convoy_factor" |
            "handoffs" | "io_latency" | "cpu_pair" | "syscalls" (:mod:`gilmodel.experiments`) |
            "module:function", "gil": {"version": "3.11", "policy": ..., <knobs>} or a name
            such as ``"3.11"`` or ``"priority"``, "scenario": {<builder keyword arguments>},
            "cores": 2, "tick_ns": None, "log": True}`` (missing keys from
            :data:`DEFAULT_BASE`); or a module-level function ``f(config, cores)`` returning
            a dict of metrics or a Run (the experiment).
        grid: dotted parameter paths to value lists (``{"gil.interval_us": [1000, 5000],
            "scenario.cpu_threads": [1, 2]}``); every combination runs.
        cases: explicit overrides (dicts of dotted paths), each combined with every grid
            point (applied after it).
        repeats: runs per configuration.
        cores_per_run: cores reserved for each run (default: the largest ``cores`` of the
            runs). A run uses the first ``cores`` of them; its logical core *i* is the
            allotted core *i*.
        out: the dataset folder (``runs/``, ``events/``).
        backend: ``"local"`` (worker processes on disjoint core slots of this machine) or
            ``"ray"`` (Ray tasks; ``address`` or a local Ray unless already initialised).
        max_parallel: at most this many runs at once (default: as many as fit).
        resume: skip runs whose id already has an ``ok`` row in ``out`` (failed ones run
            again); False runs everything again, replacing the rows.
        events: also write each run's event log to ``out/events/run_id=<id>/``.
        address: the Ray cluster to join (``"auto"``, ``"ray://host:10001"``).
        progress: show a progress bar (runs done, ETA, failures) on stderr.

    Returns:
        The rows of this sweep's runs (all of them, including those done earlier), as a
        pyarrow Table with this sweep's parameter columns; :func:`load` gives the whole
        folder's rows, with every sweep's parameter columns (null where a run has none).

    Raises:
        ValueError / TypeError: bad parameters (before anything runs).
        KeyboardInterrupt: Ctrl-C; workers are stopped, finished runs kept.
        HeadLost: (Ray) the cluster's head stopped answering; rows written stay, and the same
            sweep resumes on any backend.
    """
    if base is None:
        base = {}
    base = _base_of(base)
    if backend not in ("local", "ray"):
        raise ValueError("sweep: backend must be 'local' or 'ray', got %r" % (backend,))
    if max_parallel is not None and (not isinstance(max_parallel, int) or max_parallel < 1):
        raise ValueError("sweep: max_parallel must be an integer >= 1 or None, got %r" % (max_parallel,))
    specs = expand(base, grid, cases, repeats)
    need = max(s.config["cores"] if isinstance(s.config["cores"], int) else 1 for s in specs)
    if cores_per_run is None:
        cores_per_run = need
    if not isinstance(cores_per_run, int) or isinstance(cores_per_run, bool) or cores_per_run < 1:
        raise ValueError("sweep: cores_per_run must be an integer >= 1, got %r" % (cores_per_run,))
    if need > cores_per_run:
        raise ValueError("sweep: a run asks for cores=%d but cores_per_run=%d" % (need, cores_per_run))
    store = Store(out)
    store.prepare()
    scenario_cols = []
    for s in specs:
        for k in s.params:
            if k not in PARAM_COLUMNS_FIXED and k not in scenario_cols:
                scenario_cols.append(k)
    pschema = param_schema([s.params for s in specs], list(PARAM_COLUMNS_FIXED) + scenario_cols)
    done = {rid for rid, st in store.status().items() if st == "ok"} if resume else set()
    todo = [s for s in specs if s.id not in done]
    bar = _Progress(len(specs), len(specs) - len(todo), progress, "sweep %s" % os.fspath(out))
    rows: Dict[str, Dict[str, Any]] = {}  # this sweep's rows as written, by id
    try:
        if backend == "local":
            run_local(todo, store, pschema, cores_per_run, max_parallel, events, bar, rows)
        else:
            from .ray_backend import run_ray

            run_ray(todo, store, pschema, cores_per_run, max_parallel, events, bar, address, rows)
    finally:
        bar.close()
    # What load(out) gives for these ids, without reading again the files just written.
    return store.rows_of((s.id for s in specs), rows, pschema)
