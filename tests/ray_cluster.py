"""A real Ray cluster of several nodes on this machine, bound to loopback, for the cluster tests
and ``benches/sweep.py ray2``.

``LocalCluster([[0], [1]])`` starts a head node that owns core 0 and a worker node that owns
core 1. Each node is its own ``ray start --block`` process in a session of its own: its process
group is the whole node (GCS and dashboard on the head, raylet, agents, workers), so a node dies
at once with ``killpg(SIGKILL)``. A node tells the sweep's allocator its cores with the node
resources ``gilmodel_core_<i>`` (:data:`gilmodel.sweeps.ray_backend.CORE_RESOURCE`), and has
``--num-cpus`` equal to their count. Every port is a free one picked now or 0 (Ray's pick), and
the cluster's ``--temp-dir`` is private, so it never meets another Ray on the machine; ``ray
stop`` is never used (it stops every Ray of the user). Every process of node *i* carries
``GILMODEL_TEST_MARK=<mark>-<i>`` in its environment, Ray's workers too (they run in sessions of
their own, outside the node's process group): :meth:`LocalCluster.kill` (a node lost: its group,
then its workers, SIGKILL) finds them by that mark, and :meth:`LocalCluster.stop` kills every
node so and says what is left (nothing). The GCS health check is shortened (a node lost is declared dead
within about 2 s instead of Ray's 15-30 s).

Loopback: Ray 2.60 rewrites ``127.0.0.1`` to the machine's address in ``ray start
--node-ip-address`` and in ``ray.init(address=...)`` (``resolve_ip_for_localhost``), and then
binds there. The nodes are started through a launcher that keeps the address as given, and the
driver connects inside :meth:`LocalCluster.driver` (Ray's own switch for single-machine use:
``ray_constants.ENABLE_RAY_CLUSTER`` off makes the node address 127.0.0.1). The cluster has a
token of its own (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``), which the driver takes on within
``driver()``: a driver in another mode than the cluster's is refused when the cluster calls it
back (its actors die "cancelled before they started").
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import List, Optional, Sequence

from sweep_helpers import marked, wait_no_marked

#: ``ray start`` with the node address kept as given (127.0.0.1 stays 127.0.0.1).
_LAUNCH = ("import sys, ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host; "
           "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")


_AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")


def free_ports(n: int) -> List[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def loopback_driver(token: str):
    """Within: this process's ``ray.init`` connects to 127.0.0.1 as given, and its Ray speaks
    with the cluster's ``token`` (an earlier local ``ray.init`` may have switched this process
    to another token, or none). Stay inside until ``ray.shutdown``: leaving restores the
    process's own settings."""
    import ray._private.ray_constants as rc
    from ray._raylet import AuthenticationTokenLoader, Config

    old_cluster = rc.ENABLE_RAY_CLUSTER
    old_env = {k: os.environ.get(k) for k in _AUTH}
    rc.ENABLE_RAY_CLUSTER = False
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    try:
        yield
    finally:
        rc.ENABLE_RAY_CLUSTER = old_cluster
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


class Node:
    def __init__(self, index: int, cores: Sequence[int], proc: subprocess.Popen, log: str):
        self.index, self.cores, self.proc, self.log = index, list(cores), proc, log
        self.node_id: Optional[str] = None

    @property
    def pgid(self) -> int:
        return self.proc.pid  # the session (and group) leader


class LocalCluster:
    """Nodes ``cores[0]`` (the head), ``cores[1]``, … of one Ray cluster on this machine."""

    def __init__(self, cores: Sequence[Sequence[int]], env: Optional[dict] = None, object_store_mb: int = 100):
        self.cores = [list(c) for c in cores]
        self.mark = "ray-cluster-" + uuid.uuid4().hex
        self.tmp = tempfile.mkdtemp(prefix="gmray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.token = uuid.uuid4().hex + uuid.uuid4().hex
        self.env = dict(os.environ, **(env or {}), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, RAY_USAGE_STATS_ENABLED="0",
                        RAY_health_check_initial_delay_ms="0", RAY_health_check_period_ms="500",
                        RAY_health_check_timeout_ms="500", RAY_health_check_failure_threshold="3")
        self.env.pop("RAY_ADDRESS", None)
        self.object_store = object_store_mb << 20
        self.nodes: List[Node] = []
        self.port = free_ports(1)[0]
        self.address = "127.0.0.1:%d" % self.port

    def node_mark(self, i: int) -> str:
        return "%s-%d" % (self.mark, i)

    def _start_node(self, i: int) -> Node:
        cores = self.cores[i]
        agent_http, agent_grpc, metrics, client, dash, env_agent = free_ports(6)
        args = [sys.executable, "-c", _LAUNCH, "start", "--block", "--node-ip-address=127.0.0.1",
                "--num-cpus=%d" % len(cores), "--resources=" + json.dumps({"gilmodel_core_%d" % c: 1 for c in cores}),
                "--object-store-memory=%d" % self.object_store, "--temp-dir=" + self.tmp,
                "--node-manager-port=0", "--object-manager-port=0", "--min-worker-port=0", "--max-worker-port=0",
                "--dashboard-agent-listen-port=%d" % agent_http, "--dashboard-agent-grpc-port=%d" % agent_grpc,
                "--metrics-export-port=%d" % metrics, "--runtime-env-agent-port=%d" % env_agent,
                "--include-log-monitor=false", "--disable-usage-stats", "--log-style=record", "--log-color=false"]
        if i == 0:
            args += ["--head", "--port=%d" % self.port, "--ray-client-server-port=%d" % client,
                     "--include-dashboard=false", "--dashboard-port=%d" % dash]
        else:
            args += ["--address=" + self.address]
        log = os.path.join(self.tmp, "node-%d.log" % i)
        with open(log, "wb") as f:
            p = subprocess.Popen(args, env=dict(self.env, GILMODEL_TEST_MARK=self.node_mark(i)), stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        return Node(i, cores, p, log)

    def start(self, timeout_s: float = 60.0) -> "LocalCluster":
        """Start every node and wait until ``ray start`` of each says it is up (the others start
        beside the head: ``ray start --address`` waits for the head's GCS)."""
        try:
            for i in range(len(self.cores)):
                self.nodes.append(self._start_node(i))
            for n in self.nodes:
                self._wait_started(n, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_started(self, n: Node, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with open(n.log, "rb") as f:
                text = f.read()
            if b"Ray runtime started" in text:
                return
            if n.proc.poll() is not None:
                raise RuntimeError("ray node %d exited (%s):\n%s" % (n.index, n.proc.returncode, text.decode(errors="replace")[-3000:]))
            time.sleep(0.1)
        raise TimeoutError("ray node %d did not start within %.0f s" % (n.index, timeout_s))

    def driver(self):
        """:func:`loopback_driver` with this cluster's token: connect within."""
        return loopback_driver(self.token)

    def connect(self, timeout_s: float = 60.0) -> None:
        """``ray.init`` this process to the cluster (call it within :meth:`driver`) and wait
        until every node is alive; fills each node's ``node_id``."""
        import ray

        ray.init(address=self.address, log_to_driver=False)
        self.wait_nodes(timeout_s)

    def wait_nodes(self, timeout_s: float = 60.0) -> None:
        import ray

        end = time.monotonic() + timeout_s
        while True:
            alive = [n for n in ray.nodes() if n.get("Alive")]
            for node in self.nodes:
                for n in alive:
                    if "gilmodel_core_%d" % node.cores[0] in n.get("Resources", {}):
                        node.node_id = n["NodeID"]
            if all(n.node_id for n in self.nodes if n.proc.poll() is None):
                return
            if time.monotonic() > end:
                raise TimeoutError("not every node of the cluster is alive: %r" % alive)
            time.sleep(0.1)

    def kill(self, i: int) -> List[int]:
        """Node ``i`` lost at once: SIGKILL its process group (raylet, agents; GCS on the head),
        then every other process of the node (its Ray workers) by pid. Returns the pids left
        (none)."""
        n = self.nodes[i]
        try:
            os.killpg(n.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(3):
            for pid in marked(self.node_mark(i)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not wait_no_marked(self.node_mark(i), timeout=1.0):
                break
        n.proc.wait()
        return marked(self.node_mark(i))

    def leftovers(self) -> List[int]:
        return [p for n in self.nodes for p in marked(self.node_mark(n.index))]

    def stop(self) -> List[int]:
        """Kill every node (:meth:`kill`) and remove the temp dir. Returns the pids of the
        cluster still alive after that (none)."""
        for n in self.nodes:
            self.kill(n.index)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.leftovers()

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
