"""A sweep killed (SIGKILL at random points, SIGINT) keeps every finished run exactly once, leaves
no corrupt file and no process behind, and resumes to completion."""

import os
import random
import signal
import time
import uuid

import pyarrow.parquet as pq
import pytest

import gilmodel as gm
from conftest import needs_2_cores
from gilmodel.sweeps import expand
from sweep_helpers import count_runs, marked, start_python, wait_no_marked

BASE = {"experiment": "handoffs", "gil": {"version": "3.11", "interval_us": 500}, "scenario": {"duration_s": 0.05}, "cores": 1}
GRID = {"gil.interval_us": [200, 500, 1000, 2000, 5000, 10000]}
REPEATS = 4
CODE = """
import gilmodel as gm
gm.sweep(%r, grid=%r, repeats=%d, cores_per_run=1, out=%r, progress=False)
print("finished")
"""


def check_dataset(out, expected):
    """Every file readable, one row whose id is its name, ids from the sweep, no duplicates."""
    files = [f for f in os.listdir(os.path.join(out, "runs")) if f.endswith(".parquet")]
    ids = []
    for f in files:
        t = pq.read_table(os.path.join(out, "runs", f))  # raises on a corrupt file
        assert t.num_rows == 1
        ids.append(t.column("run_id")[0].as_py())
        assert f == ids[-1] + ".parquet"
        assert t.column("status")[0].as_py() == "ok", t.column("error")[0].as_py()
    assert set(ids) <= expected
    t = gm.load(out)
    assert sorted(t.column("run_id").to_pylist()) == sorted(ids), "load() lost or duplicated rows"
    return set(ids)


@needs_2_cores
def test_sigkill_at_random_points_then_resume_finds_every_run_once(tmp_path):
    out = str(tmp_path / "out")
    expected = {s.id for s in expand(BASE, GRID, repeats=REPEATS)}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills, partial = 0, []
    for attempt in range(3):
        before = count_runs(out)
        # kill once this many files exist, plus a jitter: somewhere in the first half of what is left
        target = rng.randint(before + 1, before + max(1, (len(expected) - before) // 2))
        mark = uuid.uuid4().hex
        p = start_python(CODE % (BASE, GRID, REPEATS, out), mark, str(tmp_path))
        deadline = time.monotonic() + 60
        while count_runs(out) < target and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.04))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
        p.wait(10)
        partial.append(count_runs(out))
        assert wait_no_marked(mark) == [], "workers outlived their killed sweep (seed %d)" % seed
        done = check_dataset(out, expected)
        assert len(done) >= before, "finished runs lost (seed %d)" % seed
    assert kills >= 2, "the sweep finished before it could be killed (seed %d)" % seed
    assert 0 < partial[0] and min(partial) < len(expected), "no kill left a partial dataset: %s (seed %d)" % (partial, seed)
    t = gm.sweep(BASE, grid=GRID, repeats=REPEATS, cores_per_run=1, out=out, progress=False)
    assert sorted(t.column("run_id").to_pylist()) == sorted(expected)
    assert check_dataset(out, expected) == expected


@needs_2_cores
def test_sigint_stops_the_sweep_leaves_no_process_and_keeps_results(tmp_path):
    out = str(tmp_path / "out")
    spec = tmp_path / "spec.toml"
    spec.write_text('out = %r\nrepeats = 3\ncores_per_run = 1\nprogress = false\n[base]\nexperiment = "handoffs"\ncores = 1\n'
                    '[base.scenario]\nduration_s = 0.3\n[grid]\n"gil.interval_us" = [200, 500, 1000, 2000]\n'.replace("%r", '"%s"') % out)
    mark = uuid.uuid4().hex
    p = start_python("import sys; from gilmodel.cli import main; sys.exit(main(['sweep', %r]))" % str(spec), mark, str(tmp_path))
    deadline = time.monotonic() + 60
    while count_runs(out) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = [pid for pid in marked(mark) if pid != p.pid]
    assert workers, "no worker processes seen"
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    rc = p.wait(10)
    took = time.monotonic() - t0
    assert rc == 130, p.stderr.read().decode()
    assert took < 3, "SIGINT took %.2f s to stop the sweep" % took
    # workers are joined before the parent exits; multiprocessing's resource tracker exits when
    # the parent's end of its pipe closes, so allow it a moment
    assert wait_no_marked(mark, 1.0) == [], "processes left behind after Ctrl-C"
    expected = {s.id for s in expand({"experiment": "handoffs", "cores": 1, "scenario": {"duration_s": 0.3}},
                                     {"gil.interval_us": [200, 500, 1000, 2000]}, repeats=3)}
    done = check_dataset(out, expected)
    assert 2 <= len(done) < len(expected)
    t = gm.sweep({"experiment": "handoffs", "cores": 1, "scenario": {"duration_s": 0.3}},
                 grid={"gil.interval_us": [200, 500, 1000, 2000]}, repeats=3, cores_per_run=1, out=out, progress=False)
    assert sorted(t.column("run_id").to_pylist()) == sorted(expected)
