"""The Ray backend on a real local Ray of the test's own (ray.init(address="local"): never a Ray
instance something else on the machine started): rows, pinning to disjoint cores per node, a
failing case recorded. Ray is in the test extra: this test does not skip without it."""

import pyarrow.parquet as pq
import pytest

import gilmodel as gm
from conftest import needs_2_cores

import ray  # noqa: E402  (in the test extra: missing Ray fails here, it does not skip)


@pytest.fixture(scope="module")
def local_ray():
    # address="local" starts a new instance even where another Ray runs (a bare ray.init()
    # attaches to the machine's latest cluster and then refuses num_cpus).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@needs_2_cores
def test_ray_sweep_runs_pinned_on_disjoint_cores(tmp_path, local_ray):
    base = {"experiment": "handoffs", "gil": {"version": "3.11"}, "scenario": {"duration_s": 0.15}, "cores": 1}
    t = gm.sweep(base, grid={"gil.interval_us": [200, 500, 1000, 2000]}, cases=[{}, {"scenario.duration_s": -1.0}],
                 cores_per_run=1, backend="ray", out=tmp_path, events=True, progress=False)
    rows = t.to_pylist()
    assert len(rows) == 8
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] != "ok"]
    assert len(ok) == 4 and all(r["backend"] == "ray" for r in ok)
    assert len(bad) == 4 and all("duration_s" in r["error"] for r in bad)
    for r in ok:
        assert r["switches"] > 0 and len(r["worker_cores"]) == 1
        ev = pq.read_table(tmp_path / "events" / ("run_id=%s" % r["run_id"]) / "part-0.parquet")
        assert set(ev.column("cpu").to_pylist()) <= set(r["worker_cores"])
    for i, a in enumerate(ok):
        for b in ok[i + 1:]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                assert not set(a["worker_cores"]) & set(b["worker_cores"]), (a, b)
    # resume: nothing finished runs again
    again = gm.sweep(base, grid={"gil.interval_us": [200, 500, 1000, 2000]}, cores_per_run=1, backend="ray", out=tmp_path,
                     progress=False)
    assert sorted(again.column("start").to_pylist()) == sorted(r["start"] for r in ok)
