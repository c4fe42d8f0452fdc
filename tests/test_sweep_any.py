"""Sweeps of any scenario: a hand-built Scenario, a builder function, per-run watchdog_s and
on_overflow, and the errors a user meets before anything runs."""

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import gilmodel as gm
import sweep_helpers
from conftest import CORES, needs_2_cores
from gilmodel.sweeps import expand


def _hand_built():
    # The README's kind of scenario: two CPU threads on (logical) cores 0 and 1.
    return gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.loop(gm.cpu(1000))], core=CORES[0]),
                                            gm.Thread("b", [gm.loop(gm.cpu(1000))], core=CORES[-1])],
                       cores=sorted(set(CORES[:2])), duration_s=0.03)


def test_a_scenario_sweeps_over_its_policy_and_fields_with_stable_ids():
    sc = _hand_built()
    grid = {"gil.interval_us": [500, 2000], "duration_s": [0.02, 0.03]}
    a, b = expand(gm.sweeps.grid.scenario_base(sc), grid), expand(gm.sweeps.grid.scenario_base(sc), grid)
    assert [s.id for s in a] == [s.id for s in b] and len({s.id for s in a}) == 4
    assert {(s.params["interval_us"], s.params["duration_s"]) for s in a} == {(i, d) for i in (500, 2000) for d in (0.02, 0.03)}
    assert all(s.params["experiment"] == "scenario" and s.params["version"] == "3.11" for s in a)


@needs_2_cores
def test_a_swept_scenario_runs_on_the_cores_its_row_names(tmp_path):
    t = gm.sweep(_hand_built(), grid={"gil.interval_us": [500, 2000]}, out=str(tmp_path), events=True, progress=False)
    assert t.num_rows == 2 and set(t.column("status").to_pylist()) == {"ok"}
    assert sorted(t.column("interval_us").to_pylist()) == [500, 2000]
    assert all(s > 0 for s in t.column("switches_per_s").to_pylist())
    for rid, cores in zip(t.column("run_id").to_pylist(), t.column("worker_cores").to_pylist()):
        ev = pq.read_table(str(tmp_path / "events" / ("run_id=%s" % rid)))
        assert ev.num_rows and set(ev.column("cpu").to_pylist()) <= set(cores)


def test_builders_get_their_parameters_and_the_runs_cores(tmp_path):
    t = gm.sweep(sweep_helpers.io_builder, grid={"cpu_threads": [0, 1], "cores": [1]}, out=str(tmp_path / "a"),
                 progress=False)
    assert sorted(t.column("cpu_threads").to_pylist()) == [0, 1] and set(t.column("status").to_pylist()) == {"ok"}
    assert t.column("policy").to_pylist() == [None, None]  # the builder's GIL is its own
    assert all(p > 0 for p in t.column("io_latency_p50_ms").to_pylist())
    t = gm.sweep(sweep_helpers.metric_builder, grid={"n": [1, 3], "cores": [1]}, cases=[{}, {"fail": True}, {"wrong": True}],
                 out=str(tmp_path / "b"), progress=False)
    rows = t.to_pylist()
    ok = sorted(r["twice"] for r in rows if r["status"] == "ok")
    assert ok == [2.0, 6.0]
    errors = [r["error"] for r in rows if r["status"] == "error"]
    assert len(errors) == 4 and sum("asked to fail" in e for e in errors) == 2 and sum("expected a Scenario" in e for e in errors) == 2


@needs_2_cores
def test_a_builder_that_names_its_own_cores_is_placed_on_the_runs(tmp_path):
    t = gm.sweep({"experiment": "builder:sweep_helpers:placed_builder", "cores": 2}, out=str(tmp_path), progress=False)
    assert t.column("status").to_pylist() == ["ok"], t.column("error").to_pylist()


def test_per_run_on_overflow_and_watchdog(tmp_path):
    # A thread that sleeps 1 us in a loop logs thousands of events in 50 ms: over a budget of 1000.
    sc = gm.Scenario(gm.cpython("3.11"), [gm.Thread("s", [gm.loop(gm.cpu(10), gm.sleep(1))], core=CORES[0])],
                     duration_s=0.05, max_events=1000)
    t = gm.sweep(sc, grid={"on_overflow": ["truncate", "error"]}, cases=[{"watchdog_s": 2.0}], out=str(tmp_path),
                 progress=False)
    by = {r["on_overflow"]: r for r in t.to_pylist()}
    assert by["truncate"]["status"] == "ok" and by["truncate"]["watchdog_s"] == 2.0
    assert by["error"]["status"] == "error" and "EventBudgetError" in by["error"]["error"]


@pytest.mark.parametrize("base, grid, err, match", [
    ("scenario", {"nope": [1]}, ValueError, "unknown parameter 'nope'.*duration_s"),
    ("scenario", {"duration_s": ["x"]}, TypeError, "duration_s: expected a number"),
    ("scenario", {"gil.interval_us": [0]}, ValueError, "interval_us"),
    ("scenario", {"on_overflow": ["sometimes"]}, ValueError, "on_overflow"),
    ("builder", {"nope": [1]}, ValueError, "unknown parameter 'nope'.*cpu_threads"),
    ("builder", {"gil.interval_us": [1]}, ValueError, "builder's GIL is its own"),
])
def test_bad_sweeps_of_scenarios_and_builders_are_refused_before_anything_runs(tmp_path, base, grid, err, match):
    b = _hand_built() if base == "scenario" else sweep_helpers.io_builder
    with pytest.raises(err, match=match):
        gm.sweep(b, grid=grid, out=str(tmp_path / "x"), progress=False)
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").rglob("*.parquet"))


def test_cli_sweep_of_a_builder(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('out = "%s"\ncores_per_run = 1\n[base]\nexperiment = "builder:sweep_helpers:metric_builder"\ncores = 1\n'
                    '[grid]\nn = [1, 2]\n' % (tmp_path / "out"))
    import os

    env = dict(os.environ, PYTHONPATH=os.path.dirname(sweep_helpers.__file__))
    p = subprocess.run([sys.executable, "-m", "gilmodel.cli", "sweep", str(spec)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    t = gm.sweeps.load(str(tmp_path / "out"))
    assert sorted(t.column("twice").to_pylist()) == [2.0, 4.0]
