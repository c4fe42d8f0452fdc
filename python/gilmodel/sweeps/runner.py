"""Executing one run of a sweep and turning the outcome into its row (any backend)."""

from __future__ import annotations

import datetime as _dt
import socket
import time
import traceback
from typing import Any, Dict, Optional, Sequence, Tuple

import pyarrow as pa

from .experiments import execute, per_thread_json
from .grid import RunSpec

__all__ = ["run_one", "failed_row"]


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _base_row(spec: RunSpec, cores: Sequence[int], backend: str, node: Optional[str]) -> Dict[str, Any]:
    return {"run_id": spec.id, "repeat": spec.repeat, **spec.params, "host": socket.gethostname(), "node": node,
            "backend": backend, "worker_cores": list(cores)}


def run_one(spec: RunSpec, cores: Sequence[int], backend: str,
            node: Optional[str] = None) -> Tuple[Dict[str, Any], Optional[pa.Table]]:
    """Run ``spec`` on ``cores`` (this process must already be pinned to them); returns its row
    and its events (None unless logged). An exception becomes a row with ``status="error"``.
    ``node``: the Ray node id of the worker (None: the local backend)."""
    row = _base_row(spec, cores, backend, node)
    start, t0 = _now(), time.perf_counter()
    events = None
    try:
        metrics, per_thread, events = execute(spec.config, cores)
        row.update(metrics)
        row.update(status="ok", error=None, per_thread=per_thread_json(per_thread))
    except Exception as e:  # recorded, never raised: the sweep goes on
        row.update(status="error", error="%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=4)))
        events = None
    row.update(start=start, end=_now(), wall_s=time.perf_counter() - t0)
    return row, events


def failed_row(spec: RunSpec, cores: Sequence[int], backend: str, error: str, node: Optional[str] = None) -> Dict[str, Any]:
    """The row of a run whose worker died (the parent writes it)."""
    row = _base_row(spec, cores, backend, node)
    now = _now()
    row.update(status="error", error=error, start=now, end=now, wall_s=None)
    return row
