"""The Ray backend: the same runs as Ray tasks, on a local Ray or a cluster.

Each task asks Ray for ``cores_per_run`` CPUs. Ray only counts CPUs; it does not pin them. So a
per-node allocator (a named actor, ``gilmodel-cores-<node id>``, placed on its node, using no
CPU) hands each task a disjoint set of that node's cores; the task pins its thread to them
(``sched_setaffinity``; the run's threads inherit it), runs, restores the worker's mask and
gives the cores back. Runs on one node therefore never share a core. The task returns its row
(with ``node``, the Ray node id that ran it) and events to the driver, which writes them
(atomically) into ``out``: the cluster needs no shared file system.

A node's cores are those it declares when it starts, as node resources
``gilmodel_core_<i>`` (:data:`CORE_RESOURCE`; ``ray start --num-cpus=1 --resources
'{"gilmodel_core_1": 1}'``), else every core of its processes' affinity mask. Several nodes on
one machine (one host name) must each declare theirs, disjoint: the sweep refuses to start
otherwise, so two nodes never hand out the same core.

Each run takes its costs from the calibration profile of the node that runs it
(:mod:`gilmodel.profiles`, measured once per host and cached; nodes of one machine share the
cache, the same host's profile); the row records it (``model_tick_ns``, ``profile_source``,
``profile_version``, ``profile_speed_scale``).

Failures. A run that raises is an error row, like on the local backend. A task whose worker or
node dies (a node lost mid-sweep) is retried by Ray on a live node, up to :data:`RETRIES` times;
then it becomes an error row (``Ray task failed: …``) and the sweep goes on; a later sweep of
the same grid (``resume``) runs it again. If the head node dies, the cluster is lost: the
driver, waiting, finds the head's GCS refusing connections and after :data:`HEAD_LOST_S` raises
:class:`HeadLost` (out of :func:`gilmodel.sweep`), naming the output folder; left alone, Ray
would end a driver that lost its GCS after 60 s from inside, with no exception. Rows already
written stay, every one complete, and the same sweep against a live cluster (or on the local
backend: ids do not depend on where runs go) resumes.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any, Dict, List, Optional, Sequence

import pyarrow as pa

from .grid import RunSpec
from .runner import failed_row, run_one
from .store import Store

__all__ = ["run_ray", "CORE_RESOURCE", "RETRIES", "HEAD_LOST_S", "HeadLost", "CoreAllocator", "node_cores"]

_NS = "gilmodel"
#: A node resource ``gilmodel_core_<i>`` (any amount) declares core *i* the node's own.
CORE_RESOURCE = "gilmodel_core_"
#: How many times Ray runs a task again whose worker or node died (or whose node's allocator
#: did) before the run is recorded as failed.
RETRIES = 2
#: Seconds the head's GCS may refuse connections before the driver gives the sweep up (Ray
#: itself ends a driver that lost its GCS only after 60 s, from inside, with no exception).
HEAD_LOST_S = 5.0
#: Allocator handles of this driver, per Ray job and cluster: later sweeps of the same session reuse them
#: (an actor takes a worker process start-up, a second or so, to create).
_HELD: Dict[Any, Dict[str, Any]] = {}


def node_cores(resources: Dict[str, float]) -> Optional[List[int]]:
    """The cores a node declares in its resources (:data:`CORE_RESOURCE`), or None."""
    got = sorted(int(k[len(CORE_RESOURCE):]) for k in resources
                 if k.startswith(CORE_RESOURCE) and k[len(CORE_RESOURCE):].isdigit())
    return got or None


class CoreAllocator:
    """Disjoint core sets of one node, handed out and taken back: the node's declared cores,
    else its affinity mask."""

    def __init__(self, declared: Optional[Sequence[int]] = None) -> None:
        mask = sorted(os.sched_getaffinity(0))
        if declared:
            outside = sorted(set(declared) - set(mask))
            if outside:
                raise ValueError("this node declares core(s) %s (%s*) but its processes may use only %s" % (
                    ",".join(map(str, outside)), CORE_RESOURCE, ",".join(map(str, mask))))
            mask = sorted(declared)
        self.all = mask
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


def _allocator(ray, node_id: str, declared: Optional[List[int]]):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cls = ray.remote(CoreAllocator)
    return cls.options(name="gilmodel-cores-%s" % node_id, namespace=_NS, get_if_exists=True, num_cpus=0,
                       scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(declared)


def _check_machines(nodes: Sequence[Dict[str, Any]]) -> None:
    """Refuse nodes of one machine (one host name) that would hand out the same cores: each must
    declare its own, disjoint from the others'."""
    by_host: Dict[str, List[Dict[str, Any]]] = {}
    for n in nodes:
        by_host.setdefault(n.get("NodeManagerHostname") or n.get("NodeManagerAddress"), []).append(n)
    for host, ns in by_host.items():
        if len(ns) < 2:
            continue
        seen: Dict[int, str] = {}
        for n in ns:
            cores = node_cores(n.get("Resources", {}))
            if cores is None:
                raise ValueError("sweep: Ray nodes %s all run on host %s and node %s does not say which cores are its "
                                 "own: start each with --resources '{\"%s<i>\": 1, ...}' naming disjoint cores "
                                 "(and --num-cpus as many)" % (", ".join(x["NodeID"][:8] for x in ns), host,
                                                                n["NodeID"][:8], CORE_RESOURCE))
            for c in cores:
                if c in seen:
                    raise ValueError("sweep: Ray nodes %s and %s on host %s both declare core %d (%s%d)" % (
                        seen[c][:8], n["NodeID"][:8], host, c, CORE_RESOURCE, c))
                seen[c] = n["NodeID"]


class HeadLost(ConnectionError):
    """The head node of the sweep's Ray cluster stopped answering."""


class _HeadWatch:
    """Whether the head's GCS still accepts connections; raises :class:`HeadLost` once it has
    refused them for :data:`HEAD_LOST_S` (checked at most once a second, while waiting)."""

    def __init__(self, address: str, out: str) -> None:
        host, _, port = address.rpartition(":")
        self.addr, self.address, self.out = (host.strip("[]"), int(port)), address, out
        self.down_since: Optional[float] = None

    def check(self) -> None:
        try:
            socket.create_connection(self.addr, timeout=1.0).close()
            self.down_since = None
            return
        except OSError as e:
            why = e
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        elif now - self.down_since >= HEAD_LOST_S:
            raise HeadLost("sweep: the Ray head (GCS at %s) has refused connections for %.0f s (%s): the cluster is "
                           "lost. Every row written so far is in %s, complete; run the same sweep against a live "
                           "cluster to resume" % (self.address, now - self.down_since, why, self.out)) from None


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
        row, ev = run_one(spec, cores, "ray", node)
    finally:
        os.sched_setaffinity(0, old)
    try:
        ray.get(alloc.release.remote(cores))
    except ray.exceptions.RayActorError:  # the allocator (its node) is gone: nobody needs the cores back
        pass
    return row, (ev if want_events else None)


def run_ray(todo: Sequence[RunSpec], store: Store, params: pa.Schema, cores_per_run: int, max_parallel: Optional[int],
            events: bool, progress: Any, address: Optional[str] = None,
            rows: Optional[Dict[str, Dict[str, Any]]] = None) -> int:
    """Run ``todo`` as Ray tasks; unless Ray is already initialised, connects to ``address``
    (else to ``$RAY_ADDRESS`` where it is set, else starts a local Ray of its own, never
    attaching to one something else started) and shuts down what it started. Returns how
    many runs failed; ``rows`` receives each run's row as written, by id."""
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
    # Ray runs a task again when its worker or node dies; an allocator that died with its node
    # surfaces in the task as RayActorError: that too is the node's loss, not the run's.
    remote = ray.remote(_task).options(num_cpus=cores_per_run, max_retries=RETRIES,
                                       retry_exceptions=[ray.exceptions.RayActorError])
    try:
        # One allocator per live node that can take a run. The driver holds the handles (an
        # actor nobody references dies) and hands them to the tasks.
        ctx = ray.get_runtime_context()
        held = _HELD.setdefault((ctx.get_job_id(), ctx.get_node_id()), {})  # a new cluster gets new node ids
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        _check_machines(nodes)
        alive = {n["NodeID"] for n in nodes}
        for nid in [nid for nid in held if nid not in alive]:  # lost since the last sweep
            del held[nid]
        for n in nodes:
            if n.get("Resources", {}).get("CPU", 0) >= cores_per_run and n["NodeID"] not in held:
                held[n["NodeID"]] = _allocator(ray, n["NodeID"], node_cores(n.get("Resources", {})))
        allocators = dict(held)
        if not allocators:
            raise ValueError("sweep: no live Ray node has %d CPUs for cores_per_run" % cores_per_run)
        head = _HeadWatch(ctx.gcs_address, store.out)
        while queue or pending:
            while queue and len(pending) < limit:
                s = queue.pop()
                pending[remote.remote(s, cores_per_run, events, allocators)] = s
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            if not done:
                head.check()
                continue
            ref = done[0]
            s = pending.pop(ref)
            try:
                row, ev = ray.get(ref)
            except Exception as e:  # the task itself failed (worker or node died, Ray error), retries spent
                text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)) or type(e).__name__
                row, ev = failed_row(s, [], "ray", "Ray task failed (tried %d times): %s" % (RETRIES + 1, text)), None
            if ev is not None:
                store.write_events(s.id, ev)
            store.write_row(row, params)
            if rows is not None:
                rows[s.id] = row
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
