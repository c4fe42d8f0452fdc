"""Canned scenarios, summaries, the demo and the command line."""

import json
import subprocess
import sys

import gilmodel as gm
from conftest import CORES


def test_io_latency_summary_has_quantiles():
    s = gm.run(gm.scenarios.io_latency(gm.cpython("3.11"), CORES, cpu_threads=0, pings=50, gap_us=1000)).summary()
    assert s["io_pings"] == 50
    assert 0 < s["io_latency_p50_ms"] <= s["io_latency_p90_ms"] <= s["io_latency_p99_ms"] <= s["io_latency_max_ms"]
    assert s["stopped_by"] == "thread"


def test_cpu_pair_pair_of_scenarios():
    seq, thr = gm.scenarios.cpu_pair(gm.cpython("2.7"), CORES[:1], 1000)
    assert len(seq.threads) == 1 and len(thr.threads) == 2
    assert gm.run(seq).summary()["ticks"] == {"t0": 2000}


def test_summary_keys():
    r = gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), CORES, 0.05))
    s = r.summary()
    for k in ("elapsed_s", "switches_per_s", "futile_wakeups", "gil_utilisation", "ticks_per_s"):
        assert k in s
    assert 0.04 < s["elapsed_s"] < 0.2
    # Holds run until each thread sees the stop, which can be past elapsed (a holder descheduled
    # at the stop finishes its slice first): bound by the time the last thread exited.
    r_exit = max(r.threads.column("exit_ns").to_pylist()) / 1e9
    assert 0 < s["gil_utilisation"] <= max(r_exit, s["elapsed_s"]) / s["elapsed_s"] + 1e-4


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gilmodel.cli", *args], capture_output=True, text=True, timeout=120)


def test_demo_writes_a_table_and_a_picture(tmp_path):
    host = "%d.%d" % sys.version_info[:2]
    p = run_cli("demo", "--out", str(tmp_path), "--bytes", str(64 << 10), "--gils", "2.7,%s,priority" % host, "--repeats", "1")
    assert p.returncode == 0, p.stderr
    assert "factor" in p.stdout and "2.7" in p.stdout and host in p.stdout and "priority" in p.stdout
    png = tmp_path / "convoy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert [(r["gil"], r["policy"]) for r in rows] == [("2.7", "tick"), (host, "interval"), ("priority", "priority")]
    # Real beside model: a real side for each CPython version this machine has (the running
    # one always), else the reason; the proposed GIL is the model alone.
    by = {r["gil"]: r for r in rows}
    assert "real" in by[host] and by[host]["real_version"].startswith(host)
    assert by[host]["profile"]["source"] in ("measured", "cache")
    for v in ("2.7", host):
        r = by[v]
        assert r["model"]["factor"] > 0
        if gm.profiles.find_python(v) is not None:
            assert r["real"]["factor"] > 0 and r["model_over_real"] > 0, r
            assert "real %s" % r["real_version"] in p.stdout
        else:
            assert r["profile"]["source"] == "reference" and "no CPython %s" % v in r["why_no_real"]
    assert "real" not in by["priority"] and "proposed" in by["priority"]["why_no_real"]


def test_demo_refuses_an_unknown_gil(tmp_path):
    p = run_cli("demo", "--out", str(tmp_path), "--gils", "3.11,turbo")
    assert p.returncode != 0 and "turbo" in p.stderr and "priority" in p.stderr
    assert not (tmp_path / "convoy.png").exists()


def test_cli_run_writes_parquet(tmp_path):
    out = tmp_path / "r.parquet"
    p = run_cli("run", "convoy", "--version", "2.7", "--bytes", "65536", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["policy"] == "tick"
    assert gm.load_run(out).events.num_rows > 0


def test_cli_bad_input_is_a_clear_error():
    p = run_cli("run", "convoy", "--cores", "999")
    assert p.returncode == 2 and "affinity mask" in p.stderr
    p = run_cli("run", "convoy", "--cores", "x")
    assert p.returncode != 0 and "--cores" in p.stderr


def test_cli_plot_a_saved_run(tmp_path):
    out = tmp_path / "r.parquet"
    assert run_cli("run", "convoy", "--bytes", "32768", "--out", str(out)).returncode == 0
    p = run_cli("plot", str(out), "--end", "0.02")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    p = run_cli("plot", str(tmp_path / "missing.parquet"))
    assert p.returncode == 2 and "no such file" in p.stderr


def test_run_plot_returns_a_figure_without_path():
    r = gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), CORES, 0.02))
    fig = r.plot()
    assert fig.axes and "cpu0" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
