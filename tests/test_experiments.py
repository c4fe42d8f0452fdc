"""The registry of experiments: one place builds each workload and computes its metrics, and
`gilmodel run`, sweeps and the gallery report the same numbers from it."""

import json

import pytest

import gilmodel as gm
from gilmodel import experiments, scenarios
from conftest import CORES
from test_scenarios_cli import run_cli


def test_every_experiment_builds_its_phases_and_names_its_parameters():
    for name, e in experiments.EXPERIMENTS.items():
        assert e.name == name and e.title
        params = e.params()
        assert "gil" not in params and "cores" not in params and "tick_ns" in params
        built = e.scenarios(gm.cpython("3.11"), CORES[:1])
        assert list(built) == list(e.phases)
        assert all(isinstance(sc, gm.Scenario) for sc in built.values())


def test_convoy_factor_is_the_ratio_of_the_stream_clocks_of_its_own_runs():
    res = experiments.get("convoy_factor").run(gm.cpython("3.11"), CORES[:1], total_bytes=16 << 10)
    m = res.metrics
    assert set(res.runs) == {"alone", "loaded"}
    # The alone phase has no CPU thread; the loaded one has the default one.
    assert res.runs["alone"].threads.num_rows == 1 and res.runs["loaded"].threads.num_rows == 2
    assert m["convoy_factor"] == pytest.approx(m["with_cpu_s"] / m["alone_s"])
    t = scenarios.convoy_times(res.runs["alone"], res.runs["loaded"])
    assert (t["alone_s"], t["with_cpu_s"]) == (m["alone_s"], m["with_cpu_s"])
    assert m["profile_source"] in ("cache", "measured", "reference") and m["model_tick_ns"] > 0
    assert m["profile_speed_scale"] > 0  # 1 unless the speed check scaled a cached profile
    assert res.per_thread["share"].keys() == {"io", "cpu0"}


def test_cpu_pair_and_syscalls_measure_the_same_two_runs():
    res = experiments.get("cpu_pair").run(gm.cpython("2.7"), CORES[:1], log=False, ticks=20_000)
    m = res.metrics
    assert m["cpu_pair_ratio"] == pytest.approx(m["threaded_s"] / m["sequential_s"])
    assert res.runs["threaded"].events.num_rows == 0  # log=False: the measurement needs no log
    s = experiments.get("syscalls").run(gm.cpython("2.7"), CORES[:1], log=False, ticks=20_000)
    assert s.detail["ticks"] == 20_000 and s.detail["gil"]["lock"] == "sem"
    assert s.metrics["ctx_switches_ratio"] == s.detail["ratios"]["ctx_switches"]


def test_unknown_names_are_refused_with_what_is_known():
    with pytest.raises(ValueError, match="unknown experiment 'nope'.*convoy_factor"):
        experiments.get("nope")
    with pytest.raises(ValueError, match="no parameter.*'bytes'.*total_bytes"):
        experiments.get("convoy").scenarios(gm.cpython("3.11"), CORES[:1], bytes=1)


def test_cli_run_takes_any_parameter_and_prints_the_registry_metrics():
    p = run_cli("run", "convoy_factor", "--cores", str(CORES[0]), "-p", "total_bytes=16384", "-p", "head_start_us=0")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["convoy_factor"] == pytest.approx(out["with_cpu_s"] / out["alone_s"]) and out["policy"] == "interval"
    p = run_cli("run", "handoffs", "--bytes", "100")
    assert p.returncode == 2 and "--bytes" in p.stderr and "duration_s" in p.stderr
    p = run_cli("run", "handoffs", "-p", "nonsense")
    assert p.returncode == 2 and "NAME=VALUE" in p.stderr


def test_a_sweep_names_a_gil_as_everywhere_else(tmp_path):
    t = gm.sweep({"experiment": "handoffs", "scenario": {"duration_s": 0.02}, "cores": 1}, grid={"gil": ["2.7", "bfs"]},
                 out=str(tmp_path), progress=False)
    assert sorted(zip(t.column("policy").to_pylist(), t.column("version").to_pylist()), key=str) == \
        sorted([("tick", "2.7"), ("bfs", None)], key=str)
    with pytest.raises(ValueError, match="turbo"):
        gm.sweep({"experiment": "handoffs", "gil": "turbo"}, out=str(tmp_path / "x"), progress=False)
