"""The on-disk dataset of a sweep.

``OUT/runs/<run_id>.parquet``: one file per run, one row (parameters, metrics, host, start/end,
status, error). ``OUT/events/run_id=<run_id>/part-0.parquet``: the run's event log when asked
(Hive partitioning: readers see a ``run_id`` column). Every file is written to a temporary name
in the same folder and renamed over its final name (``os.replace``, atomic on POSIX), so a crash
of a process leaves either the old file, the new one, or a stray ``.tmp-*`` that readers ignore.
The events of a run are renamed into place before its row: a row means the run is complete. One
file per id makes a duplicate row impossible; a retried run replaces its own file.

Row files are not ``fsync``-ed: a sync cost 2–3 ms a run, between two runs on the same cores
(benches/sweep.py). A crash of the whole machine can leave a renamed file empty or cut; readers
skip a file they cannot read (:func:`load` warns), and ``resume`` runs it again.
"""

from __future__ import annotations

import glob
import os
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..experiments import EXPERIMENTS

__all__ = ["Store", "load", "combine", "row_table", "KNOWN_METRICS", "row_schema"]

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
    "profile_speed_scale": pa.float64(),
    # each experiment's own (gilmodel.experiments)
    **{m: pa.float64() for e in EXPERIMENTS.values() for m in e.own_metrics},
}
_HEAD = [("run_id", pa.string()), ("repeat", pa.int64())]
_RUN = [("status", pa.string()), ("error", pa.string()), ("host", pa.string()), ("node", pa.string()), ("backend", pa.string()),
        # "element": the child's name in a Parquet file read back, so rows kept in memory and
        # rows read from files are of one type
        ("worker_cores", pa.list_(pa.field("element", pa.int32()))), ("start", pa.timestamp("us", tz="UTC")),
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


#: How a one-row file is written: no compression, dictionaries or statistics, which a row has
#: no use for (3.9 ms against 5.1 ms a row by default, on the 2-core VM).
_ROW_OPTIONS = {"compression": "none", "use_dictionary": False, "write_statistics": False}


def _write(table: pa.Table, path: str, sync: bool = True, **options: Any) -> None:
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        pq.write_table(table, tmp, **options)
        if sync:
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
            t = _read(p, columns=["run_id", "status"])
            if t is None:  # unreadable (warned): not done, it will be rewritten
                continue
            for rid, st in zip(t.column("run_id").to_pylist(), t.column("status").to_pylist()):
                out[rid] = st
        return out

    def write_events(self, rid: str, events: pa.Table) -> None:
        d = os.path.join(self.events_dir, "run_id=%s" % rid)
        os.makedirs(d, exist_ok=True)
        _write(events, os.path.join(d, "part-0.parquet"))

    def write_row(self, row: Dict[str, Any], params: pa.Schema) -> None:
        """Write one run's row (:func:`row_table`), not synced (see the module's docs)."""
        _write(row_table(row, params), self.run_path(row["run_id"]), sync=False, **_ROW_OPTIONS)

    def read_rows(self, ids: Iterable[str]) -> List[pa.Table]:
        """The row files of ``ids`` that exist and can be read."""
        return [t for t in (_read(self.run_path(rid)) for rid in ids) if t is not None]

    def rows_of(self, ids: Iterable[str], rows: Dict[str, Dict[str, Any]], params: pa.Schema) -> pa.Table:
        """What :func:`load` gives for ``ids``, taking the rows at hand (``rows``: by id, as
        written) from memory and the others from their files."""
        ids = sorted(set(ids))
        mine = [rows[i] for i in ids if i in rows]
        batch = _plain_rows(mine, params) if mine else None
        if batch is not None or not mine:
            return combine([batch] + self.read_rows(i for i in ids if i not in rows))  # None: skipped
        return combine([row_table(rows[i], params) if i in rows else _read(self.run_path(i)) for i in ids])


def row_table(row: Dict[str, Any], params: pa.Schema) -> pa.Table:
    """One run's row as a table (keys: the schema's columns; unknown keys become extra metric
    columns with inferred types, before ``per_thread``)."""
    schema = row_schema(params)
    known = set(schema.names)
    extra = [k for k in row if k not in known]
    if not extra:
        return _plain_rows([row], params)
    plain = _plain_rows([{k: v for k, v in row.items() if k in known}], params)
    cols = plain.columns[:-1] + [pa.array([row[k]]) for k in extra] + plain.columns[-1:]
    names = plain.column_names[:-1] + extra + plain.column_names[-1:]
    return pa.Table.from_arrays(cols, names=names)


def _plain_rows(rows: Sequence[Dict[str, Any]], params: pa.Schema) -> Optional[pa.Table]:
    """Rows with no extra metric as one table in one conversion (40 rows in about 2 ms,
    against about 1 ms a row one by one); None if a row has an extra metric."""
    schema = row_schema(params)
    if not all(set(schema.names).issuperset(r) for r in rows):
        return None
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)


def _read(path: str, columns: Optional[List[str]] = None) -> Optional[pa.Table]:
    # ParquetFile.read: 0.11 s for 40 one-row files against 0.2–0.6 s with read_table (its
    # dataset layer); and no Arrow thread pool started (gilmodel.sweeps.local forks workers
    # only while no thread has started since gilmodel's import).
    try:
        return pq.ParquetFile(path).read(columns=columns, use_threads=False)
    except FileNotFoundError:
        return None
    except Exception as e:  # cut or empty (a machine crash before the data reached the disk)
        warnings.warn("%s: unreadable (%s: %s), left out; resume runs it again" % (path, type(e).__name__, e), stacklevel=3)
        return None


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
    return combine([t for t in map(_read, files) if t is not None], status)


def combine(tables: Sequence[pa.Table], status: Optional[str] = None) -> pa.Table:
    """Row tables as :func:`load` gives them: unified (missing columns null; extra metrics
    before ``per_thread``, in their first table's order), filtered by ``status``, one row per
    ``run_id`` (the latest ``end``), ordered by start."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return pa.table({})
    t = pa.concat_tables(tables, promote_options="permissive")
    if "per_thread" in t.column_names and t.column_names[-1] != "per_thread":
        t = t.select([c for c in t.column_names if c != "per_thread"] + ["per_thread"])
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
