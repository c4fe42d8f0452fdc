"""Running a scenario, and the :class:`Run` that holds what it produced."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import _core, _procs
from .scenario import Scenario

__all__ = ["run", "Run", "EVENT_NAMES", "load_run", "RunHalted", "WatchdogError", "EventBudgetError"]

#: The event kinds, in the order of the ``event`` column's dictionary.
EVENT_NAMES = tuple(_core.EVENT_NAMES)
_EVENT_DICT = pa.array(EVENT_NAMES, type=pa.string())
_META_KEY = b"gilmodel.meta"
_THREADS_KEY = b"gilmodel.threads"
_IO_KEY = b"gilmodel.io"


def _table(cols: Dict[str, Any]) -> pa.Table:
    # pa.array on a numpy array of a primitive type wraps its buffer: no copy.
    return pa.table({k: pa.array(v) for k, v in cols.items()})


def _events_table(ev: Dict[str, np.ndarray]) -> pa.Table:
    kinds = pa.DictionaryArray.from_arrays(pa.array(ev["event"]), _EVENT_DICT)
    return pa.table({
        "t_ns": pa.array(ev["t_ns"]),
        "thread": pa.array(ev["thread"]),
        "cpu": pa.array(ev["cpu"]),
        "event": kinds,
        "arg": pa.array(ev["arg"]),
    })


class Run:
    """What one run produced.

    Attributes:
        events: the event log (``t_ns`` int64 since the threads were released, ``thread``
            uint16, ``cpu`` int16, ``event`` dictionary<int8, string>, ``arg`` int64), in time
            order.
        threads: one row per scenario thread: its counters (ticks, GIL hold/wait ns,
            acquisitions, futile wake-ups, drop requests, context switches, primitive calls…).
        io: round trips timed by driver peers (``thread``, ``sent_ns``, ``rtt_ns``).
        meta: policy and knobs, scenario, host, how the run ended; ``profile``: the
            calibration profile the ticks took their cost from (``source``: ``"measured"``,
            ``"cache"``, ``"reference"`` or ``"explicit tick_ns"``; the interpreter, its
            figures, the host it was measured on); ``contention``: what other processes took
            on the run's cores meanwhile (``foreign_cores``: their average busy cores;
            ``steal_cores``: the hypervisor's steal), so a saved run says whether the machine
            was quiet.
    """

    def __init__(self, events: pa.Table, threads: pa.Table, io: pa.Table, meta: Dict[str, Any]):
        self.events = events
        self.threads = threads
        self.io = io
        self.meta = meta

    @classmethod
    def _from_core(cls, raw: Dict[str, Any]) -> "Run":
        return cls(_events_table(raw["events"]), _table(raw["threads"]), _table(raw["io"]), json.loads(raw["meta"]))

    def summary(self) -> Dict[str, Any]:
        """Headline metrics (see :func:`gilmodel.analysis.summary`)."""
        from .analysis import summary

        return summary(self)

    def plot(self, path: Optional[Union[str, os.PathLike]] = None, start: Optional[float] = None,
             end: Optional[float] = None, title: Optional[str] = None):
        """The GIL timeline: a lane per thread (holding, waiting, blocking calls, markers for
        futile wake-ups, drop requests, forced drops…) and the CPU each thread was on; ``start``
        and ``end`` in seconds. Writes PNG/SVG/PDF by suffix and returns the path, or returns
        the matplotlib Figure when ``path`` is None. See :func:`gilmodel.plot.plot_run`."""
        from .plot import plot_run

        return plot_run(self, None if path is None else os.fspath(path), start, end, title)

    def to_trace(self, path: Union[str, os.PathLike], start_ns: Optional[int] = None, end_ns: Optional[int] = None):
        """Write the log as Chrome Trace Event JSON for ui.perfetto.dev or chrome://tracing.
        See :func:`gilmodel.trace.to_trace`."""
        from .trace import to_trace

        return to_trace(self, os.fspath(path), start_ns, end_ns)

    def to_pandas(self):
        """The event log as a pandas DataFrame (``event`` as a categorical)."""
        return self.events.to_pandas()

    def to_parquet(self, path: Union[str, os.PathLike]) -> None:
        """Write the event log to one Parquet file; ``threads``, ``io`` and ``meta`` travel in
        its schema metadata, so :func:`load_run` gets the whole run back."""
        md = dict(self.events.schema.metadata or {})
        md[_META_KEY] = json.dumps(self.meta).encode()
        md[_THREADS_KEY] = json.dumps(self.threads.to_pydict()).encode()
        md[_IO_KEY] = json.dumps(self.io.to_pydict()).encode()
        tmp = "%s.tmp-%d" % (os.fspath(path), os.getpid())
        pq.write_table(self.events.replace_schema_metadata(md), tmp)
        os.replace(tmp, path)

    def __repr__(self) -> str:
        g = self.meta.get("gil", {})
        return "<Run %s %s: %d threads, %d events, %.3f s, stopped by %s>" % (
            self.meta.get("scenario") or "scenario", g.get("policy"), self.threads.num_rows,
            self.events.num_rows, self.meta.get("elapsed_ns", 0) / 1e9, self.meta.get("stopped_by"))


class RunHalted(RuntimeError):
    """A run the core stopped because it went wrong; every thread has been joined. ``run`` is
    the partial :class:`Run` (its ``meta["stopped_by"]`` says why)."""

    def __init__(self, message: str, run: Run):
        super().__init__(message)
        self.run = run


class WatchdogError(RunHalted):
    """No thread made progress for ``Scenario.watchdog_s``: the message names the GIL holder,
    what each thread was waiting on and its last events; ``run`` is the partial run
    (``meta["stopped_by"] == "watchdog"``)."""


class EventBudgetError(RunHalted):
    """A thread filled its share of ``Scenario.max_events`` with ``on_overflow="error"``: the
    message names the budget, the count reached and how to raise it; ``run`` is the partial run
    (``meta["events_truncated"]`` is set; ``meta["stopped_by"]`` is ``"event_budget"``, or what
    ended the run when it ended in the up to 10 ms before the controller saw the full buffer)."""


_HALTED = {"watchdog": WatchdogError, "event_budget": EventBudgetError}


def load_run(path: Union[str, os.PathLike]) -> Run:
    """Read a run written by :meth:`Run.to_parquet`."""
    if not os.path.isfile(path):
        raise FileNotFoundError("%s: no such file (write one with `gilmodel run ... --out FILE` or Run.to_parquet)" % (os.fspath(path),))
    t = pq.read_table(path)
    md = t.schema.metadata or {}
    if _META_KEY not in md:
        raise ValueError("%s: not a gilmodel run (no gilmodel metadata in the Parquet schema)" % (path,))
    threads = pa.table(json.loads(md[_THREADS_KEY]))
    io = pa.table(json.loads(md[_IO_KEY])) if _IO_KEY in md else pa.table({})
    rest = {k: v for k, v in md.items() if not k.startswith(b"gilmodel.")}
    return Run(t.replace_schema_metadata(rest or None), threads, io, json.loads(md[_META_KEY]))


def run(scenario: Scenario) -> Run:
    """Run a scenario on real threads and return its :class:`Run`.

    Python's own GIL is released while the experiment runs. Ctrl-C (or any exception a signal
    handler raises) stops the run, joins every thread, and is raised here.

    Raises:
        TypeError: ``scenario`` is not a :class:`Scenario`.
        ValueError: the scenario cannot run (the message names the field); nothing started.
        WatchdogError: no thread made progress for ``scenario.watchdog_s``; the run was stopped
            (``err.run`` is what it produced).
        EventBudgetError: ``on_overflow="error"`` and a thread filled its share of
            ``max_events``; the run was stopped (``err.run``).
        RuntimeError: setting up failed or a thread failed.
    """
    if not isinstance(scenario, Scenario):
        raise TypeError("run(scenario): expected a gilmodel.Scenario, got %r" % (scenario,))
    if scenario.tick_ns is None:
        scenario.validate()  # refuse bad input before a profile may be measured for it
        scenario = scenario.resolved()
    spec = scenario.to_json()
    before = _procs.cpu_sample()
    raw = _core.run(spec)
    after = _procs.cpu_sample()
    r = Run._from_core(raw)
    m = r.meta
    m["profile"] = scenario.profile.meta() if scenario.profile is not None else {"source": "explicit tick_ns", "tick_ns": scenario.tick_ns}
    m["contention"] = _procs.contention(before, after, m.get("cores") or None)
    err = raw.get("error")
    if err is not None:
        raise _HALTED.get(err["kind"], RunHalted)(err["message"], r)
    return r
