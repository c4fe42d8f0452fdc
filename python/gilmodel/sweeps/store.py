"""The on-disk dataset of a sweep.

``OUT/runs/<run_id>.parquet``: one file per run, one row (parameters, metrics, host, start/end,
status, error). ``OUT/events/run_id=<run_id>/part-0.parquet``: the run's event log when asked
(Hive partitioning: readers see a ``run_id`` column). Every file is written to a temporary name
in the same folder and renamed over its final name (``os.replace``, atomic on POSIX), so a crash
leaves either the old file, the new one, or a stray ``.tmp-*`` that readers ignore. The events
of a run are renamed into place before its row: a row means the run is complete. One file per
id makes a duplicate row impossible; a retried run replaces its own file.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..experiments import EXPERIMENTS

__all__ = ["Store", "load", "KNOWN_METRICS", "row_schema"]

_Q = ("p50", "p90", "p99", "max")
#: Metrics the built-in experiments produce, with their types; absent ones are null, so every
#: file of a sweep has the same schema (readers can take the folder as one table).
KNOWN_METRICS: Dict[str, pa.DataType] = {
    "elapsed_s": pa.float64(), "stopped_by": pa.string(), "switches": pa.int64(), "switches_per_s": pa.float64(),
    "acquisitions": pa.int64(), "futile_wakeups": pa.int64(), "futile_wakeups_per_s": pa.float64(),
    "drop_requests": pa.int64(), "drop_requests_per_s": pa.float64(), "forced_drops": pa.int64(),
    "timeouts": pa.int64(), "gil_utilisation": pa.float64(), "fairness": pa.float64(),
    "voluntary_ctx_switches": pa.int64(), "involuntary_ctx_switches": pa.int64(), "events": pa.int64(),
    "io_pings": pa.int64(), **{"io_latency_%s_ms" % q: pa.float64() for q in _Q},
    "handoffs": pa.int64(), **{"handoff_latency_%s_us" % q: pa.float64() for q in _Q},
    "futile_handoff_fraction": pa.float64(), "idle_gil_waiting_s": pa.float64(),
    **{"wait_%s_ms" % q: pa.float64() for q in _Q}, **{"io_response_%s_ms" % q: pa.float64() for q in _Q},
    # the costs the run's model ran with: its node's calibration profile (gilmodel.profiles)
    "model_tick_ns": pa.float64(), "profile_source": pa.string(), "profile_version": pa.string(),
    # each experiment's own (gilmodel.experiments)
    **{m: pa.float64() for e in EXPERIMENTS.values() for m in e.own_metrics},
}
_HEAD = [("run_id", pa.string()), ("repeat", pa.int64())]
_RUN = [("status", pa.string()), ("error", pa.string()), ("host", pa.string()), ("node", pa.string()), ("backend", pa.string()),
        ("worker_cores", pa.list_(pa.int32())), ("start", pa.timestamp("us", tz="UTC")),
        ("end", pa.timestamp("us", tz="UTC")), ("wall_s", pa.float64())]
_TAIL = [("per_thread", pa.string())]


def param_schema(params: Sequence[Dict[str, Any]], columns: Sequence[str]) -> pa.Schema:
    """Types of the parameter columns, inferred from every run of the sweep at once."""
    fields = []
    for c in columns:
        t = pa.array([p.get(c) for p in params]).type
        fields.append(pa.field(c, pa.string() if pa.types.is_null(t) else t))
    return pa.schema(fields)


def row_schema(params: pa.Schema, extra: Iterable[str] = ()) -> pa.Schema:
    """The schema of a runs file: id, repeat, parameters, run facts, metrics, per-thread JSON."""
    fields = [pa.field(n, t) for n, t in _HEAD] + list(params) + [pa.field(n, t) for n, t in _RUN]
    fields += [pa.field(n, t) for n, t in KNOWN_METRICS.items()]
    return pa.schema(fields + [pa.field(n, t) for n, t in _TAIL])


def _write(table: pa.Table, path: str) -> None:
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Store:
    """The dataset folder ``out``: where runs and events are written and read back."""

    def __init__(self, out: Union[str, os.PathLike]):
        self.out = os.fspath(out)
        self.runs_dir = os.path.join(self.out, "runs")
        self.events_dir = os.path.join(self.out, "events")

    def prepare(self) -> None:
        """Create the folders and remove temporary files a crash left behind."""
        os.makedirs(self.runs_dir, exist_ok=True)
        os.makedirs(self.events_dir, exist_ok=True)
        for p in glob.glob(os.path.join(self.runs_dir, "*.tmp-*")) + glob.glob(os.path.join(self.events_dir, "*", "*.tmp-*")):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def run_path(self, rid: str) -> str:
        return os.path.join(self.runs_dir, rid + ".parquet")

    def status(self) -> Dict[str, str]:
        """``{run_id: status}`` of every run file in the folder."""
        out = {}
        for p in glob.glob(os.path.join(self.runs_dir, "*.parquet")):
            try:
                t = pq.read_table(p, columns=["run_id", "status"])
            except Exception:  # unreadable: treat as not done (it will be rewritten)
                continue
            for rid, st in zip(t.column("run_id").to_pylist(), t.column("status").to_pylist()):
                out[rid] = st
        return out

    def write_events(self, rid: str, events: pa.Table) -> None:
        d = os.path.join(self.events_dir, "run_id=%s" % rid)
        os.makedirs(d, exist_ok=True)
        _write(events, os.path.join(d, "part-0.parquet"))

    def write_row(self, row: Dict[str, Any], params: pa.Schema) -> None:
        """Write one run's row (keys: the schema's columns; unknown keys become extra metric
        columns with inferred types)."""
        schema = row_schema(params)
        known = set(schema.names)
        extra = [k for k in row if k not in known]
        cols = [pa.array([row.get(f.name)], type=f.type) for f in schema]
        names = list(schema.names)
        if extra:  # a custom experiment's metrics, before per_thread
            cols = cols[:-1] + [pa.array([row[k]]) for k in extra] + cols[-1:]
            names = names[:-1] + extra + names[-1:]
        _write(pa.Table.from_arrays(cols, names=names), self.run_path(row["run_id"]))


def load(out: Union[str, os.PathLike], status: Optional[str] = None) -> pa.Table:
    """The runs of a sweep folder as one pyarrow Table (one row per run id).

    Args:
        out: the folder given to :func:`gilmodel.sweep`.
        status: keep only rows with this status (``"ok"`` or ``"error"``).

    Files of different schemas (sweeps with other parameters written to one folder) are
    unified, missing columns null. Temporary files are ignored. Rows are de-duplicated by
    ``run_id`` (keeping the latest ``end``), defensively: the store never writes two.
    """
    d = os.path.join(os.fspath(out), "runs")
    if not os.path.isdir(d):
        raise FileNotFoundError("%s: no sweep here (expected a runs/ folder written by gilmodel.sweep)" % (os.fspath(out),))
    files = sorted(glob.glob(os.path.join(d, "*.parquet")))
    if not files:
        return pa.table({})
    # ParquetFile.read: 0.11 s for 40 one-row files against 0.2–0.6 s with read_table (its
    # dataset layer), most of a sweep's tail.
    t = pa.concat_tables([pq.ParquetFile(f).read() for f in files], promote_options="permissive")
    if status is not None:
        t = t.filter(pc.equal(t.column("status"), status))
    ids = t.column("run_id").to_pylist()
    if len(set(ids)) != len(ids):
        import numpy as np

        end = t.column("end").cast(pa.int64()).fill_null(-1).to_numpy()
        order = sorted(range(len(ids)), key=lambda i: (ids[i], end[i]))
        keep: List[int] = []
        for i in order:
            if keep and ids[keep[-1]] == ids[i]:
                keep[-1] = i
            else:
                keep.append(i)
        t = t.take(np.asarray(sorted(keep)))
    return t.sort_by([("start", "ascending"), ("run_id", "ascending")]) if "start" in t.column_names else t
