"""The Ray backend: the same runs as Ray tasks, on a local Ray or a cluster.

Each task asks Ray for ``cores_per_run`` CPUs. Ray only counts CPUs; it does not pin them. So a
per-node allocator (a named actor, ``gilmodel-cores-<node id>``, placed on its node, using no
CPU) hands each task a disjoint set of that node's cores; the task pins its thread to them
(``sched_setaffinity``; the run's threads inherit it), runs, restores the worker's mask and
gives the cores back. Runs on one node therefore never share a core. The task returns its row
and events to the driver, which writes them (atomically) into ``out``: the cluster needs no
shared file system.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence

import pyarrow as pa

from .grid import RunSpec
from .runner import failed_row, run_one
from .store import Store

__all__ = ["run_ray"]

_NS = "gilmodel"
#: Allocator handles of this driver, per Ray job and cluster: later sweeps of the same session reuse them
#: (an actor takes a worker process start-up, a second or so, to create).
_HELD: Dict[Any, Dict[str, Any]] = {}


class CoreAllocator:
    """Disjoint core sets of one node, handed out and taken back."""

    def __init__(self) -> None:
        self.all = sorted(os.sched_getaffinity(0))
        self.free = list(self.all)

    def acquire(self, k: int) -> Optional[List[int]]:
        if k > len(self.all):
            raise ValueError("cores_per_run=%d but this node has %d usable core(s)" % (k, len(self.all)))
        if len(self.free) < k:
            return None
        got, self.free = self.free[:k], self.free[k:]
        return got

    def release(self, cores: Sequence[int]) -> None:
        self.free = sorted(set(self.free) | set(cores))

    def state(self) -> Dict[str, List[int]]:
        return {"all": self.all, "free": self.free}


def _allocator(ray, node_id: str):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cls = ray.remote(CoreAllocator)
    return cls.options(name="gilmodel-cores-%s" % node_id, namespace=_NS, get_if_exists=True, num_cpus=0,
                       scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()


def _task(spec: RunSpec, k: int, want_events: bool, allocators: Dict[str, Any]):
    import ray

    node = ray.get_runtime_context().get_node_id()
    alloc = allocators.get(node)
    if alloc is None:
        try:
            alloc = ray.get_actor("gilmodel-cores-%s" % node, namespace=_NS)
        except ValueError:
            raise RuntimeError("node %s has no core allocator (it joined after the sweep started); "
                               "resume the sweep to retry this run" % node) from None
    while True:
        cores = ray.get(alloc.acquire.remote(k))
        if cores is not None:
            break
        time.sleep(0.02)  # Ray gave us CPUs the allocator has not got back yet: wait for them
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cores)
        row, ev = run_one(spec, cores, "ray")
    finally:
        os.sched_setaffinity(0, old)
        ray.get(alloc.release.remote(cores))
    return row, (ev if want_events else None)


def run_ray(todo: Sequence[RunSpec], store: Store, params: pa.Schema, cores_per_run: int, max_parallel: Optional[int],
            events: bool, progress: Any, address: Optional[str] = None) -> int:
    """Run ``todo`` as Ray tasks; unless Ray is already initialised, connects to ``address``
    (else to ``$RAY_ADDRESS`` where it is set, else starts a local Ray of its own, never
    attaching to one something else started) and shuts down what it started. Returns how
    many runs failed."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("backend='ray' needs Ray: pip install 'gilmodel[ray]'") from e
    started = False
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local", log_to_driver=False)
        started = True
    failures = 0
    pending: Dict[Any, RunSpec] = {}
    queue = list(todo)[::-1]
    limit = max_parallel or len(queue) or 1
    remote = ray.remote(_task).options(num_cpus=cores_per_run, max_retries=0)
    try:
        # One allocator per live node that can take a run. The driver holds the handles (an
        # actor nobody references dies) and hands them to the tasks.
        ctx = ray.get_runtime_context()
        held = _HELD.setdefault((ctx.get_job_id(), ctx.get_node_id()), {})  # a new cluster gets new node ids
        for n in ray.nodes():
            if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= cores_per_run and n["NodeID"] not in held:
                held[n["NodeID"]] = _allocator(ray, n["NodeID"])
        allocators = dict(held)
        if not allocators:
            raise ValueError("sweep: no live Ray node has %d CPUs for cores_per_run" % cores_per_run)
        while queue or pending:
            while queue and len(pending) < limit:
                s = queue.pop()
                pending[remote.remote(s, cores_per_run, events, allocators)] = s
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            s = pending.pop(ref)
            try:
                row, ev = ray.get(ref)
            except Exception as e:  # the task itself failed (worker died, Ray error)
                text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)) or type(e).__name__
                row, ev = failed_row(s, [], "ray", "Ray task failed: %s" % text), None
            if ev is not None:
                store.write_events(s.id, ev)
            store.write_row(row, params)
            if row["status"] != "ok":
                failures += 1
                progress.failed(failures)
            progress.update(1)
        return failures
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            _HELD.clear()
            ray.shutdown()
