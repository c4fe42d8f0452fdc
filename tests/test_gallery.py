"""The reproduction gallery at a small size: every experiment runs and writes its files, and
their rows say what the phenomenon says (only where it holds with a wide margin)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gilmodel import PriorityGIL, analysis, cpython, gallery, run, scenarios
from conftest import CORES


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("gallery")
    return {n: gallery.reproduce(n, str(d), scale=0.05, quiet=True) for n in gallery.EXPERIMENTS}, d


@pytest.mark.parametrize("name", list(gallery.EXPERIMENTS))
def test_each_experiment_writes_figure_table_json(out, name):
    res, d = out
    r = res[name]
    png = (d / (name + ".png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 15_000
    md = (d / (name + ".md")).read_text()
    assert "Command: `gilmodel reproduce %s" % name in md and "Machine:" in md
    assert md.count("\n|") == len(r["rows"]) + 2  # header, rule, one line per row
    assert json.loads((d / (name + ".json")).read_text())["rows"] == json.loads(json.dumps(r["rows"]))


@pytest.mark.timing
def test_interval_handoffs_switch_rate_follows_the_interval(tmp_path):
    # Its own run, so that a retry in a quiet moment (tests/contention.py) measures afresh: at
    # 0.5 ms the rate is the machine's (2 000/s ideal, 359/s in a CI run beside a compiler).
    rows = gallery.reproduce("interval-handoffs", str(tmp_path), scale=0.05, quiet=True)["rows"]
    by = {r["interval_ms"]: r["switches_per_s"] for r in rows}
    assert by[0.5] > 5 * by[20.0], by


def test_who_wins_shares_sum_to_one(out):
    rows = out[0]["who-wins"]["rows"]
    for v in ("2.7", "3.11"):
        for p in {r["placement"] for r in rows}:
            assert sum(r["gil_share"] for r in rows if r["version"] == v and r["placement"] == p) == pytest.approx(1.0, abs=1e-6)


def test_pipeline_a_woken_consumer_waits_an_interval_under_3_11_and_not_under_priority():
    # The pipeline figure's story, on 2 cores: 3.11's consumer, woken by a put, waits for the
    # producer's forced drop (up to its 5 ms interval); the priority GIL hands over at once.
    # Timed from the get's return to the GIL held (the GIL's part): an item's time in the
    # queue also holds the OS's wake of the blocked consumer, which on the 2-core VM moved from
    # 0.04 ms to 1-8 ms in bursts (docs/validation/waiting-threads.md) and twice failed CI
    # when this test compared items' p50s. The GIL's part holds a wake too (the consumer's, on
    # the GIL's condition variable, after the holder's drop): 80 runs of each, alone and beside
    # a busy core, gave p50s of 0.003-0.087 ms under priority and 5.07-7.5 ms under 3.11, and CI
    # once 0.085 against a factor of 100. A factor of 10 leaves 6x over the worst of them.
    if len(CORES) < 2:
        pytest.skip("needs 2 cores (this machine has %d usable)" % len(CORES))

    def gil_wait_after_wake_ms(gil):
        r = run(scenarios.pipeline(gil, cores=CORES[:2], items=100, produce_ticks=8000, consume_ticks=4000,
                                   tick_ns=50.0))
        io = analysis.io_response(r.events).to_pandas()
        return float(np.median(io[(io.op == "get") & (io.thread == 1)].response_ns)) / 1e6

    prio, own = gil_wait_after_wake_ms(PriorityGIL()), gil_wait_after_wake_ms(cpython("3.11"))
    assert prio * 10 < own and own > 2.0, (prio, own)


def test_unknown_experiment_and_bad_scale():
    with pytest.raises(ValueError, match="unknown experiment"):
        gallery.reproduce("p99")
    with pytest.raises(ValueError, match="scale"):
        gallery.reproduce("p1", scale=0)


def test_cli_reproduce_by_an_old_name(tmp_path):
    # p5, the old name of the drop-request ablation, runs it under its own name.
    assert gallery.canonical("p5") == "dedupe-ablation" and gallery.ALIASES["p1"] == "battle"
    p = subprocess.run([sys.executable, "-m", "gilmodel.cli", "reproduce", "p5", "--out", str(tmp_path), "--scale", "0.05"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "dedupe-ablation.png").exists() and "dedupe-ablation:" in p.stdout
