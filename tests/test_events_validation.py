"""Event-level validation (python/gilmodel/fidelity/events.py): the two-sample statistics,
and an observed real run beside a model run of the same workload, compared and drawn."""

import os
import sys

import numpy as np
import pandas as pd
import pytest

import gilmodel as gm
from gilmodel.fidelity.events import EVENT_PROBES, ks, validate_events, wasserstein
from gilmodel.interpreters import detect
from gilmodel.observe import can_observe


def test_ks_is_0_for_the_same_sample_1_for_disjoint_ones_and_the_cdf_gap_between():
    a = np.arange(100.0)
    assert ks(a, a) == 0.0
    assert ks(a, a + 1000) == 1.0
    # Half of b lies above everything in a: the distribution functions differ by 0.5 there.
    assert ks(a, np.concatenate([a[::2], a[::2] + 1000])) == pytest.approx(0.5, abs=0.02)
    assert np.isnan(ks(a, np.array([])))


def test_wasserstein_of_a_shift_is_the_shift():
    rng = np.random.default_rng(1)
    a = rng.exponential(5.0, 2000)
    assert wasserstein(a, a) == 0.0
    assert wasserstein(a, a + 3.0) == pytest.approx(3.0, rel=1e-9)
    assert wasserstein(a, 2 * a) == pytest.approx(a.mean(), rel=1e-9)


WHY = can_observe()


@pytest.mark.skipif(WHY is not None, reason="observing needs uprobes and root: %s" % WHY)
def test_observed_probes_beside_the_model_give_distributions_statistics_files_and_pictures(tmp_path):
    interp = detect(sys.executable)
    cores = gm._core.allowed_cores()[:2]
    cal = gm.calibrate(interp.path, repeats=1, quiet=True)
    df = validate_events([interp], [cores], {interp.label: cal}, 0.1, str(tmp_path), repeats=2)
    expected = [(p, m) for p, ms in EVENT_PROBES.items() for m in ms]
    assert list(zip(df.probe, df.metric)) == expected
    assert (df.n_real > 0).all() and (df.n_model > 0).all(), df[["metric", "n_real", "n_model"]]
    assert ((df.ks >= 0) & (df.ks <= 1)).all() and (df.repeats == 2).all()
    assert (df.p50_real <= df.p90_real).all() and (df.p50_model <= df.p90_model).all()
    back = pd.read_parquet(tmp_path / "events.parquet")
    assert len(back) == len(df)
    md = (tmp_path / "events.md").read_text()
    assert "| %s |" % interp.version in md and "pooled over 2 repeat" in md
    tag = "%s_%s" % (interp.version, "-".join(map(str, cores)))
    assert (tmp_path / ("events_%s.png" % tag)).stat().st_size > 10_000
    # Each case's two runs are kept, and draw one above the other on one axis.
    real = gm.load_run(tmp_path / "events" / ("handoffs_%s_real.parquet" % tag))
    model = gm.load_run(tmp_path / "events" / ("handoffs_%s_model.parquet" % tag))
    assert real.meta["source"] == "observed" and "source" not in model.meta
    out = gm.plot.beside([("real", real), ("model", model)], tmp_path / "beside.png", end_ms=30)
    assert os.path.getsize(out) > 10_000
    # Aligned: the real run's workload (its first started thread) is at 0 in the view.
    assert gm.plot.workload_start_ns(gm.plot.shifted(real, gm.plot.workload_start_ns(real))) == 0


def test_waiter_rank_counts_the_open_waits_that_began_earlier():
    from gilmodel.fidelity.events import waiter_ranks

    # A asks at 0, B at 2, C at 5; granted A, B, C in turn: each time the longest waiting.
    assert waiter_ranks([0, 1, 2], [0, 2, 5], [10, 20, 30]).tolist() == [0, 0]
    # C granted first (2 rivals, both earlier), then A (1 rival, B, later), then B alone.
    assert waiter_ranks([0, 1, 2], [0, 2, 5], [20, 30, 10]).tolist() == [0, 2]
    # A wait granted with no other wait open is not ranked; a thread's earlier, finished wait
    # is not open.
    assert waiter_ranks([0, 1], [0, 20], [10, 30]).size == 0
    assert waiter_ranks([0, 0, 1], [0, 11, 12], [10, 40, 30]).tolist() == [1]
