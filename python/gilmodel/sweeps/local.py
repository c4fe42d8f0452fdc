"""The local backend: one worker process per disjoint core slot, each pinned to its slot.

The allowed cores (this process's affinity mask) are cut into ``len(allowed) // cores_per_run``
slots of consecutive cores (at most ``max_parallel``). Each slot has one long-lived worker
process, pinned with ``sched_setaffinity`` before it runs anything; the parent hands it one run
at a time, so runs on different slots never share a core and a worker costs its start-up once,
not per run. The worker writes its run's files itself (atomically), then reports; a worker that
dies mid-run is replaced and its run recorded as failed.

Workers are forked when no thread has started since gilmodel was imported (no other Python
thread, and no more OS threads than then), spawned otherwise. A fork of a multi-threaded
process may inherit a lock another thread held. The threads that exist at gilmodel's import are
taken as those numpy and pyarrow start (OpenBLAS's pool, jemalloc's background thread): native,
they take their locks across a fork (``pthread_atfork``). A Python thread of the caller's, a
tqdm monitor or another extension's thread could hold a lock the worker then needs (stderr's,
logging's), so any of them means spawn. (A library with threads of its own imported before
gilmodel would count as numpy's; the readers here use no Arrow thread pool for that reason.) A
forked worker closes the pipe ends it inherited and reseeds numpy's global random state, as a
spawned one has them fresh. A spawned worker
imports gilmodel, numpy and pyarrow anew: 0.85-1.15 s on the 2-core VM (``-X importtime``, 2026-12-02), most of a 40-run
sweep's start-up, where a fork takes milliseconds. A worker calibrates its spin loop on its
own cores before its first run (``_core.recalibrate``), not inheriting the parent's. A
worker told to stop leaves with ``os._exit`` once its files are written: an interpreter's
orderly exit took 0.2 s, spent in the parent's join at the sweep's tail.

Each worker sends its row back with its report, so the sweep returns its rows without reading
its files again (40 files took 0.2 s at the tail).

Workers ignore SIGINT and die with the parent (``PR_SET_PDEATHSIG``): Ctrl-C in the parent
stops every worker and returns after joining them; a SIGKILL of the parent kills them too, so
no worker outlives the sweep and writes behind a resumed one's back.
"""

from __future__ import annotations

import collections
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import warnings
from multiprocessing.connection import wait
from typing import Any, Deque, Dict, List, Optional, Sequence

import pyarrow as pa

from .grid import RunSpec
from .runner import failed_row, run_one
from .store import Store

__all__ = ["run_local", "slots"]

_PR_SET_PDEATHSIG = 1


def slots(allowed: Sequence[int], cores_per_run: int, max_parallel: Optional[int] = None) -> List[List[int]]:
    """Disjoint core sets of ``cores_per_run`` consecutive allowed cores."""
    allowed = sorted(allowed)
    n = len(allowed) // cores_per_run
    if max_parallel is not None:
        n = min(n, max_parallel)
    if n < 1:
        raise ValueError("sweep: cores_per_run=%d but this process may use only %d core(s) (%s)" % (
            cores_per_run, len(allowed), ",".join(map(str, allowed))))
    return [allowed[i * cores_per_run:(i + 1) * cores_per_run] for i in range(n)]


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: unknown, never fork
        return 1 << 30


#: OS threads of this process once gilmodel (numpy, pyarrow) was imported.
THREADS_AT_IMPORT = _os_threads()
# The parent's ends of the workers' pipes: a forked worker closes the copies it inherited.
_PARENT_ENDS: List[Any] = []


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not Linux: best effort
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _worker(conn, cores: List[int], out: str, params: pa.Schema, parent_pid: int, events: bool) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for c in _PARENT_ENDS:  # inherited by a fork; empty in a spawned worker
        c.close()
    import numpy as np

    np.random.seed()
    os.sched_setaffinity(0, cores)
    from .. import _core

    _core.recalibrate()  # on its own cores (a fork inherits the parent's), before its first run
    store = Store(out)
    while True:
        try:
            spec = conn.recv()
        except EOFError:
            os._exit(0)
        if spec is None:
            conn.close()
            os._exit(0)  # its files are written (atomically, each run's before it reported)
        try:
            row, ev = run_one(spec, cores, "local")
            if events and ev is not None:
                store.write_events(spec.id, ev)
            store.write_row(row, params)
            conn.send(("done", spec.id, row))
        except Exception as e:  # writing failed: the parent records it
            conn.send(("failed", spec.id, "%s: %s" % (type(e).__name__, e)))


class _Slot:
    def __init__(self, cores: List[int]):
        self.cores = cores
        self.proc: Any = None
        self.conn: Any = None
        self.spec: Optional[RunSpec] = None


def _context() -> Any:
    """Fork where it is safe (see the module's docs), else spawn."""
    if threading.active_count() == 1 and "fork" in mp.get_all_start_methods():
        # A thread just joined can still be leaving the kernel's list: give it 50 ms.
        for _ in range(10):
            if _os_threads() <= THREADS_AT_IMPORT:
                return mp.get_context("fork")
            time.sleep(0.005)
    return mp.get_context("spawn")


def _start(ctx, slot: _Slot, out: str, params: pa.Schema, events: bool) -> None:
    parent, child = ctx.Pipe()
    _PARENT_ENDS.append(parent)
    p = ctx.Process(target=_worker, args=(child, slot.cores, out, params, os.getpid(), events),
                    name="gilmodel-sweep-%s" % "-".join(map(str, slot.cores)), daemon=True)
    main = sys.modules.get("__main__")
    forked = ctx.get_start_method() == "fork"
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if not forked and main is not None and k in main.__dict__}
    try:  # workers need nothing from __main__: don't make them re-import the user's script
        for k in saved:
            setattr(main, k, None) if k == "__spec__" else delattr(main, k)
        with warnings.catch_warnings():
            # 3.12+ warns at any fork of a process with several OS threads; _context checked
            # that they are those of gilmodel's import (the module's docs).
            warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead to deadlocks", category=DeprecationWarning)
            p.start()
    finally:
        for k, v in saved.items():
            setattr(main, k, v)
    child.close()
    slot.proc, slot.conn, slot.spec = p, parent, None


def _forget(conn: Any) -> None:
    """Close a worker's pipe end here."""
    if conn in _PARENT_ENDS:
        _PARENT_ENDS.remove(conn)
    conn.close()


def _stop_all(sl: List[_Slot], graceful: bool) -> None:
    """Ask idle workers to exit (all at once, then join them); kill the rest."""
    live = [s for s in sl if s.proc is not None]
    for s in live:
        if graceful and s.spec is None:
            try:
                s.conn.send(None)
            except (BrokenPipeError, OSError):
                s.proc.kill()
        else:
            s.proc.kill()
    for s in live:
        s.proc.join(5)
        if s.proc.is_alive():
            s.proc.kill()
            s.proc.join()
        _forget(s.conn)
        s.proc = None


def run_local(todo: Sequence[RunSpec], store: Store, params: pa.Schema, cores_per_run: int,
              max_parallel: Optional[int], events: bool, progress: Any, rows: Dict[str, Dict[str, Any]]) -> int:
    """Run ``todo`` on local core slots; returns how many runs failed. ``progress`` has
    ``update(n)`` and ``failed(n)``; ``rows`` receives each run's row as written, by id."""
    from .. import _core

    sl = [_Slot(c) for c in slots(_core.allowed_cores(), cores_per_run, max_parallel)]
    sl = sl[:max(1, min(len(sl), len(todo)))]
    queue: Deque[RunSpec] = collections.deque(todo)
    ctx = _context()
    failures = 0
    graceful = False
    try:
        if not queue:
            graceful = True
            return 0
        for s in sl:
            _start(ctx, s, store.out, params, events)
        while True:
            for s in sl:
                if s.spec is None and queue and s.proc is not None:
                    s.spec = queue.popleft()
                    s.conn.send(s.spec)
            busy = [s for s in sl if s.spec is not None and s.proc is not None]
            if not busy:
                break
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy])
            for s in busy:
                msg = None
                if s.conn in ready:
                    try:
                        msg = s.conn.recv()
                    except (EOFError, OSError):
                        msg = None
                if msg is not None:
                    kind, rid, what = msg
                    if kind == "failed":
                        rows[rid] = failed_row(s.spec, s.cores, "local", what)
                        store.write_row(rows[rid], params)
                    else:
                        rows[rid] = what
                    if kind == "failed" or what["status"] != "ok":
                        failures += 1
                        progress.failed(failures)
                    s.spec = None
                    progress.update(1)
                    if not queue:  # nothing left for it: let it exit while the others finish
                        _stop_all([s], True)
                elif s.conn in ready or s.proc.sentinel in ready:
                    s.proc.join()
                    code = s.proc.exitcode
                    why = "worker process died (%s) during the run" % (
                        "signal %s" % signal.Signals(-code).name if code is not None and code < 0 else "exit code %s" % code)
                    rows[s.spec.id] = failed_row(s.spec, s.cores, "local", why)
                    store.write_row(rows[s.spec.id], params)
                    failures += 1
                    progress.failed(failures)
                    progress.update(1)
                    _forget(s.conn)
                    s.proc, s.spec = None, None
                    if queue:
                        _start(ctx, s, store.out, params, events)
        graceful = True
        return failures
    finally:
        _stop_all(sl, graceful)
