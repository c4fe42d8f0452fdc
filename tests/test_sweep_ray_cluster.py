"""The Ray backend on a real cluster of two nodes on this machine (tests/ray_cluster.py: two
`ray start` processes bound to 127.0.0.1, node A owning the first allowed core and node B the
second, declared as node resources): every row names the node that ran it, both nodes run work,
every event ran on the cores its row reports, and each row records the calibration profile it
ran with. Then node B is lost mid-sweep (SIGKILL, the whole node), and then the head: the sweep
finishes (or, for the head, says why it cannot), every finished row is there exactly once, and
running the sweep again completes the rest. The cluster is always torn down and no process of
it is left (checked by the mark in its environment)."""

import datetime as dt
import os
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest

import gilmodel as gm
from conftest import CORES
from gilmodel.sweeps import expand
from gilmodel.sweeps.ray_backend import CORE_RESOURCE, CoreAllocator, _check_machines

ray = pytest.importorskip("ray", reason="needs Ray (the test extra: pip install '.[test]'); it is not importable")
pytestmark = pytest.mark.skipif(len(CORES) < 2, reason="a two-node cluster with a core each needs 2 cores in the affinity "
                                                       "mask; this machine gives %d" % len(CORES))

from ray_cluster import LocalCluster  # noqa: E402
from sweep_helpers import count_runs  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster([[CORES[0]], [CORES[1]]], env={"PYTHONPATH": TESTS})
    c.start()
    try:
        with c.driver():  # learn the node ids, then let every sweep connect by address itself
            c.connect()
            ray.shutdown()
        yield c
    finally:
        ray.shutdown()
        stray = c.stop()
        assert stray == [] and c.leftovers() == [], "processes of the cluster outlived their node: %s" % stray


def _sweep(c, base, grid, out, **kw):
    with c.driver():
        return gm.sweep(base, grid=grid, cores_per_run=1, backend="ray", address=c.address, out=out, progress=False, **kw)


def _rows_once(out, ids):
    """Every file readable, one row named by its id, no duplicates; returns the rows by id."""
    files = sorted(f for f in os.listdir(os.path.join(out, "runs")) if f.endswith(".parquet"))
    rows = {}
    for f in files:
        t = pq.read_table(os.path.join(out, "runs", f))
        assert t.num_rows == 1
        r = t.to_pylist()[0]
        assert f == r["run_id"] + ".parquet" and r["run_id"] not in rows
        rows[r["run_id"]] = r
    assert set(rows) <= set(ids)
    assert sorted(gm.load(out).column("run_id").to_pylist()) == sorted(rows)
    return rows


def test_nodes_of_one_machine_must_declare_disjoint_cores():
    def node(nid, cores, host="h"):
        res = {"CPU": 1.0, **{"%s%d" % (CORE_RESOURCE, c): 1.0 for c in cores}}
        return {"NodeID": nid, "NodeManagerHostname": host, "Resources": res, "Alive": True}

    _check_machines([node("a" * 8, [0]), node("b" * 8, [1])])
    _check_machines([node("a" * 8, []), node("b" * 8, [], host="other")])  # one node a machine: its mask
    with pytest.raises(ValueError, match="does not say which cores"):
        _check_machines([node("a" * 8, [0]), node("b" * 8, [])])
    with pytest.raises(ValueError, match="both declare core 1"):
        _check_machines([node("a" * 8, [0, 1]), node("b" * 8, [1])])
    assert CoreAllocator([CORES[1]]).state() == {"all": [CORES[1]], "free": [CORES[1]]}
    with pytest.raises(ValueError, match="may use only"):
        CoreAllocator([max(os.sched_getaffinity(0)) + 1])


def test_two_nodes_each_run_on_their_own_core_with_their_profile(cluster, tmp_path):
    a, b = cluster.nodes
    own = {a.node_id: a.cores, b.node_id: b.cores}
    # runs long enough (8 x 0.25 s) that node B's first worker (a second or two on a busy VM) starts before node A is done
    base = {"experiment": "handoffs", "gil": {"version": "3.11"}, "scenario": {"duration_s": 0.25}, "cores": 1}
    grid = {"gil.interval_us": [200, 500, 1000, 2000, 3000, 4000, 5000, 6000]}
    t = _sweep(cluster, base, grid, tmp_path, events=True)
    rows = t.to_pylist()
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert {r["node"] for r in rows} == set(own), "both nodes run work: %s" % [r["node"] for r in rows]
    for r in rows:
        assert r["backend"] == "ray" and r["worker_cores"] == own[r["node"]]
        ev = pq.read_table(tmp_path / "events" / ("run_id=%s" % r["run_id"]) / "part-0.parquet")
        assert ev.num_rows > 0 and set(ev.column("cpu").to_pylist()) <= set(r["worker_cores"])
        # the costs it ran with: its node's profile of CPython 3.11 (nodes of one host share the cache)
        assert r["model_tick_ns"] > 0 and r["profile_source"] in ("measured", "cache", "reference")
        assert r["profile_version"].startswith("3.11") and r["profile_speed_scale"] > 0
    assert len({r["model_tick_ns"] for r in rows}) == 1
    for i, x in enumerate(rows):
        for y in rows[i + 1:]:
            if x["start"] < y["end"] and y["start"] < x["end"]:
                assert not set(x["worker_cores"]) & set(y["worker_cores"]), (x, y)


def test_a_node_lost_mid_sweep_its_run_goes_elsewhere_and_resume_completes(cluster, tmp_path):
    a, b = cluster.nodes
    marks, out = tmp_path / "marks", str(tmp_path / "out")
    marks.mkdir()
    base = {"experiment": "sweep_helpers:marked_sleep", "scenario": {"dir": str(marks), "s": 0.3}, "cores": 1}
    grid = {"scenario.v": list(range(12))}
    ids = [s.id for s in expand(base, grid)]
    killed = {}

    def kill_b_while_it_runs():
        end = time.monotonic() + 40
        while time.monotonic() < end and "v" not in killed:
            on_b = [f for f in os.listdir(marks) if f.endswith("@" + b.node_id)]
            if on_b:
                killed["v"] = int(on_b[0].split("@")[0])
                killed["left"] = cluster.kill(1)
                killed["at"] = dt.datetime.now(dt.timezone.utc)
            time.sleep(0.005)

    th = threading.Thread(target=kill_b_while_it_runs, daemon=True)
    th.start()
    t = _sweep(cluster, base, grid, out)
    th.join()
    assert "v" in killed, "node B never started a run"
    assert killed["left"] == [], "processes of node B survived its SIGKILL"
    assert t.num_rows == 12
    rows = _rows_once(out, ids)
    assert len(rows) == 12
    for r in rows.values():
        if r["status"] == "ok":
            assert r["node"] in (a.node_id, b.node_id) and r["worker_cores"] == (a.cores if r["node"] == a.node_id else b.cores)
            if r["node"] == b.node_id:
                assert r["end"] <= killed["at"], "a run finished on node B after it was killed"
        else:
            assert "Ray task failed" in r["error"], r["error"]
    hit = next(r for r in rows.values() if r["v"] == killed["v"])
    # the run node B held: retried on node A (its start mark there too), or recorded as failed
    assert (hit["status"] == "ok" and hit["node"] == a.node_id and (marks / ("%d@%s" % (killed["v"], a.node_id))).exists()) \
        or hit["status"] == "error", hit
    before = {rid: r["start"] for rid, r in rows.items() if r["status"] == "ok"}
    again = _sweep(cluster, base, grid, out)  # resume, on the head alone
    assert again.num_rows == 12 and set(again.column("status").to_pylist()) == {"ok"}
    after = _rows_once(out, ids)
    assert all(after[rid]["start"] == s for rid, s in before.items()), "resume ran a finished run again"


DRIVER = """
import sys
import gilmodel as gm
from gilmodel.sweeps import ray_backend
from ray_cluster import loopback_driver
ray_backend.HEAD_LOST_S = 1.0
try:
    with loopback_driver(%r):
        gm.sweep(%r, grid=%r, cores_per_run=1, backend="ray", address=%r, out=%r, progress=False)
except ray_backend.HeadLost as e:
    print("HeadLost:", e)
    sys.exit(3)
print("finished")
"""


def test_the_head_lost_mid_sweep_the_driver_says_so_and_resume_completes(cluster, tmp_path):
    marks, out = tmp_path / "marks", str(tmp_path / "out")
    marks.mkdir()
    base = {"experiment": "sweep_helpers:marked_sleep", "scenario": {"dir": str(marks), "s": 0.3}, "cores": 1}
    grid = {"scenario.v": list(range(12))}
    ids = [s.id for s in expand(base, grid)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS] + [p for p in sys.path if p]))
    p = subprocess.Popen([sys.executable, "-c", DRIVER % (cluster.token, base, grid, cluster.address, out)], env=env, cwd=str(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 40
        while count_runs(out) < 2 and p.poll() is None and time.monotonic() < end:
            time.sleep(0.005)
        assert count_runs(out) >= 2, p.communicate(timeout=30)
        assert cluster.kill(0) == [], "processes of the head survived its SIGKILL"
        o, e = p.communicate(timeout=45)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 3 and b"refused connections" in o and b"resume" in o, (p.returncode, o, e[-3000:])
    rows = _rows_once(out, ids)
    ok = {rid: r["start"] for rid, r in rows.items() if r["status"] == "ok"}
    assert len(rows) < 12 and len(ok) >= 2
    assert all("Ray task failed" in r["error"] for r in rows.values() if r["status"] != "ok")
    # the rows stay; the same sweep (here on the local backend: ids do not depend on where runs go) does the rest
    t = gm.sweep(base, grid=grid, cores_per_run=1, out=out, progress=False)
    assert t.num_rows == 12 and set(t.column("status").to_pylist()) == {"ok"}
    after = _rows_once(out, ids)
    assert all(after[rid]["start"] == start for rid, start in ok.items()), "resume ran a finished run again"
