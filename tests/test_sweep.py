"""Sweeps: grid expansion and ids, the local backend's rows, core isolation, failures, resume,
the TOML command and the plot."""

import json
import os
import subprocess
import sys
import threading

import pyarrow.parquet as pq
import pytest

import gilmodel as gm
from conftest import CORES, needs_2_cores
from gilmodel.sweeps import expand
from gilmodel.sweeps.local import slots

CONVOY = {"experiment": "convoy_factor", "gil": {"version": "3.11"}, "scenario": {"total_bytes": 1 << 14}, "cores": 1}
HANDOFFS = {"experiment": "handoffs", "gil": {"version": "3.11", "interval_us": 500}, "scenario": {"duration_s": 0.12}, "cores": 1}


def test_grid_is_a_cartesian_product_with_stable_distinct_ids():
    grid = {"gil.interval_us": [1000, 5000], "scenario.cpu_threads": [1, 2, 3]}
    a = expand(CONVOY, grid, repeats=2)
    b = expand(CONVOY, grid, repeats=2)
    assert len(a) == 2 * 3 * 2
    assert [s.id for s in a] == [s.id for s in b], "ids are not deterministic"
    assert len({s.id for s in a}) == len(a)
    assert {(s.params["interval_us"], s.params["cpu_threads"], s.repeat) for s in a} == {
        (i, c, r) for i in (1000, 5000) for c in (1, 2, 3) for r in (0, 1)}
    # an id depends on the configuration, not on what else is in the sweep
    one = expand(CONVOY, {"gil.interval_us": [5000]}, cases=[{"scenario.cpu_threads": 2}])[0]
    assert one.id in {s.id for s in a if s.repeat == 0 and s.params["interval_us"] == 5000 and s.params["cpu_threads"] == 2}


def test_cases_override_the_grid_and_equivalent_configs_share_an_id():
    specs = expand(CONVOY, {"gil.interval_us": [1000, 5000]}, cases=[{"gil.version": "3.11"}, {"gil.version": "2.7"}])
    # 2.7's tick GIL has no interval: both grid points are the same experiment
    assert sorted((s.params["policy"], s.params["interval_us"]) for s in specs) == [
        ("interval", 1000), ("interval", 5000), ("tick", None)]
    tick = [s for s in specs if s.params["policy"] == "tick"][0]
    assert tick.params["check_interval"] == 100 and tick.params["lock"] == "sem"
    assert expand({**CONVOY, "gil": {"policy": "tick", "check_interval": 100}})[0].config["gil"]["policy"] == "tick"


@pytest.mark.parametrize("bad, match", [
    ({"grid": {"gil.intervl_us": [1]}}, "unknown GIL knob"),
    ({"grid": {"scenario.cpu_thread": [1]}}, "has no parameter"),
    ({"grid": {"nope.x": [1]}}, "unknown parameter"),
    ({"grid": {"gil.interval_us": []}}, "non-empty list"),
    ({"cases": [{"gil.version": "9.9"}]}, "unknown version"),
    ({"cases": [{"gil.version": "2.7", "gil.policy": "interval"}]}, "tick GIL"),
])
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        gm.sweep(CONVOY, out=tmp_path, progress=False, **bad)
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


def test_slots_are_disjoint():
    assert slots([0, 1, 2, 3, 4], 2) == [[0, 1], [2, 3]]
    assert slots([3, 1, 2, 0], 1, max_parallel=2) == [[0], [1]]
    with pytest.raises(ValueError, match="cores_per_run=3"):
        slots([0, 1], 3)


def test_a_small_local_sweep_gives_one_row_per_run(tmp_path):
    t = gm.sweep(CONVOY, grid={"gil.interval_us": [1000, 5000]}, repeats=2, cores_per_run=1, out=tmp_path, progress=False)
    assert t.num_rows == 4
    assert t.column("status").to_pylist() == ["ok"] * 4
    rows = t.to_pylist()
    assert sorted((r["interval_us"], r["repeat"]) for r in rows) == [(1000, 0), (1000, 1), (5000, 0), (5000, 1)]
    for r in rows:
        assert r["policy"] == "interval" and r["version"] == "3.11" and r["total_bytes"] == 1 << 14
        assert r["convoy_factor"] == pytest.approx(r["with_cpu_s"] / r["alone_s"])
        # The stream's clock starts after the sender's 5 ms head start (as the real probe's).
        assert 0.0049 < r["elapsed_s"] - r["with_cpu_s"] < r["elapsed_s"]
        assert r["backend"] == "local" and r["host"] and r["start"] <= r["end"] and r["error"] is None
        assert len(r["worker_cores"]) == 1 and r["worker_cores"][0] in CORES
        assert set(json.loads(r["per_thread"])["ticks"]) == {"io", "cpu0"}
    files = sorted(os.listdir(tmp_path / "runs"))
    assert files == sorted(r["run_id"] + ".parquet" for r in rows)
    assert gm.load(tmp_path).equals(t)  # the rows returned from memory are the files' rows


@needs_2_cores
def test_runs_side_by_side_never_share_a_core(tmp_path):
    t = gm.sweep(HANDOFFS, grid={"gil.interval_us": [200, 500, 1000]}, repeats=2, cores_per_run=1, out=tmp_path,
                 events=True, progress=False)
    rows = t.to_pylist()
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        ev = pq.read_table(tmp_path / "events" / ("run_id=%s" % r["run_id"]) / "part-0.parquet")
        cpus = set(ev.column("cpu").to_pylist())
        assert ev.num_rows >= 10 and set(ev.column("thread").to_pylist()) == {0, 1}
        assert cpus <= set(r["worker_cores"]), "run %s ran on %s outside its cores %s" % (r["run_id"], cpus, r["worker_cores"])
    overlapping = 0
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                overlapping += 1
                assert not set(a["worker_cores"]) & set(b["worker_cores"]), (a, b)
    assert overlapping >= 2, "runs never ran side by side"
    assert {r["worker_cores"][0] for r in rows} == set(CORES[:2])


def test_a_failing_case_is_recorded_and_the_rest_finish(tmp_path):
    t = gm.sweep(CONVOY, cases=[{}, {"gil.interval_us": 0}, {"scenario.total_bytes": 1 << 13}], cores_per_run=1,
                 out=tmp_path, progress=False)
    by = {r["interval_us"]: r for r in t.to_pylist() if r["total_bytes"] == 1 << 14}
    assert by[0]["status"] == "error" and "interval_us" in by[0]["error"] and by[0]["convoy_factor"] is None
    assert by[5000]["status"] == "ok" and by[5000]["convoy_factor"] > 0
    assert [r["status"] for r in t.to_pylist() if r["total_bytes"] == 1 << 13] == ["ok"]
    # resume retries the failed run (it fails again: still one row for it)
    again = gm.sweep(CONVOY, cases=[{}, {"gil.interval_us": 0}, {"scenario.total_bytes": 1 << 13}], cores_per_run=1,
                     out=tmp_path, progress=False)
    assert again.num_rows == 3 and sorted(again.column("status").to_pylist()) == ["error", "ok", "ok"]
    err = [r for r in again.to_pylist() if r["status"] == "error"][0]
    assert err["start"] > by[0]["start"], "the failed run was not retried"


def test_a_worker_that_dies_is_recorded_and_replaced(tmp_path):
    base = {"experiment": "sweep_helpers:custom", "cores": 1}
    t = gm.sweep(base, grid={"scenario.v": [1, 2, 3, 4]}, cases=[{}, {"scenario.crash": True}, {"scenario.raise": True}],
                 cores_per_run=1, max_parallel=1, out=tmp_path, progress=False)
    rows = t.to_pylist()
    assert len(rows) == 12
    ok = [r for r in rows if r["status"] == "ok"]
    assert sorted(r["value"] for r in ok) == [2.0, 4.0, 6.0, 8.0] and all(r["n_cores"] == 1 for r in ok)
    died = [r for r in rows if r.get("crash")]
    assert len(died) == 4 and all(r["status"] == "error" and "SIGKILL" in r["error"] for r in died)
    raised = [r for r in rows if r.get("raise")]
    assert len(raised) == 4 and all("asked to fail" in r["error"] for r in raised)
    # Rows with extra metrics and rows the parent wrote for dead workers, as load gives them.
    assert gm.load(tmp_path).equals(t)


def test_resume_skips_finished_runs(tmp_path):
    kw = dict(grid={"gil.interval_us": [1000, 5000]}, cores_per_run=1, out=tmp_path, progress=False)
    first = gm.sweep(CONVOY, **kw)
    stamps = {f: os.stat(tmp_path / "runs" / f).st_mtime_ns for f in os.listdir(tmp_path / "runs")}
    second = gm.sweep(CONVOY, **kw)
    assert {f: os.stat(tmp_path / "runs" / f).st_mtime_ns for f in os.listdir(tmp_path / "runs")} == stamps
    assert second.to_pylist() == first.to_pylist() and second.equals(gm.load(tmp_path))
    third = gm.sweep(CONVOY, resume=False, **kw)
    assert third.num_rows == 2 and third.column("start").to_pylist() != first.column("start").to_pylist()


def test_cli_sweep_and_plot_sweep(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('out = "%s"\nrepeats = 2\ncores_per_run = 1\n[base]\nexperiment = "convoy_factor"\ncores = 1\n'
                    '[base.scenario]\ntotal_bytes = 16384\n[grid]\n"gil.version" = ["2.7", "3.11"]\n' % (tmp_path / "out"))
    cmd = [sys.executable, "-m", "gilmodel.cli"]
    p = subprocess.run(cmd + ["sweep", str(spec), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"out": str(tmp_path / "out"), "runs": 4, "ok": 4, "error": 0}
    png = tmp_path / "p.png"
    p = subprocess.run(cmd + ["plot-sweep", str(tmp_path / "out"), "--x", "repeat", "--y", "convoy_factor", "--hue", "policy",
                              "--out", str(png)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = subprocess.run(cmd + ["plot-sweep", str(tmp_path / "out"), "--x", "nope", "--y", "convoy_factor"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "nope" in p.stderr


def test_an_unreadable_row_file_is_left_out_by_load_and_run_again_by_resume(tmp_path):
    # Row files are not synced: a machine crash can leave one cut. Readers skip it, resume reruns it.
    kw = dict(grid={"gil.interval_us": [1000, 5000]}, cores_per_run=1, out=tmp_path, progress=False)
    first = gm.sweep(CONVOY, **kw)
    cut = first.column("run_id").to_pylist()[0]
    path = tmp_path / "runs" / (cut + ".parquet")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="unreadable.*resume runs it again"):
        left = gm.load(tmp_path)
    assert left.column("run_id").to_pylist() == first.column("run_id").to_pylist()[1:]
    with pytest.warns(UserWarning, match="unreadable"):
        again = gm.sweep(CONVOY, **kw)
    assert sorted(again.column("run_id").to_pylist()) == sorted(first.column("run_id").to_pylist())
    assert again.column("status").to_pylist() == ["ok", "ok"] and again.equals(gm.load(tmp_path))


def test_workers_are_forked_only_while_no_other_python_thread_runs(tmp_path):
    # The rule, in a fresh interpreter (this one may hold other tests' threads).
    code = ("import threading; from gilmodel.sweeps import local; a = local._context().get_start_method(); "
            "e = threading.Event(); th = threading.Thread(target=e.wait); th.start(); "
            "b = local._context().get_start_method(); e.set(); th.join(); "
            "print(a, b, local._context().get_start_method())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["fork", "spawn", "fork"]
    # A sweep started beside a thread of the caller's runs in spawned workers.
    stop = threading.Event()
    th = threading.Thread(target=stop.wait)
    th.start()
    try:
        t = gm.sweep(CONVOY, grid={"gil.interval_us": [1000, 5000]}, cores_per_run=1, out=tmp_path, progress=False)
        assert t.column("status").to_pylist() == ["ok", "ok"]
    finally:
        stop.set()
        th.join()


def test_recalibrate_measures_again_and_is_used_from_then_on():
    before = gm._core.calibration()
    after = gm._core.recalibrate()
    assert gm._core.calibration() == after
    # the same machine: the spin's cost per iteration within a factor of 2 (the host's speed drifts)
    assert 0.5 < after[1] / before[1] < 2.0 and after[0] >= 0
