"""The core's state spans and migration counts (rust/spans.rs) are the numpy implementation's
(tests/spans_reference.py) exactly, column by column and dtype by dtype, on real runs of every policy and on generated logs
(any kinds in any order, ties, truncated or not). Repeatable: ``derandomize=True``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gilmodel import _core
from gilmodel.eventlog import decode, state_spans
import spans_reference as ref
from conftest import POLICIES
from test_analysis_pass import logs, mixed_run


def same(events, end_ns, truncated):
    lg = decode(events)
    got, want = state_spans(lg, end_ns, truncated), ref.state_spans(lg, end_ns, truncated)
    for name, g, w in zip(got._fields, got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w), (name, g[:10], w[:10])
    threads = int(lg.thread.max()) + 1 if lg.thread.size else 1
    for lo, hi in ((0, 2**62), (end_ns, end_ns + 50), (0, max(end_ns, 0))):
        m = _core.migrations(lg.t, lg.thread.astype(np.uint16), lg.cpu.astype(np.int16), lo, hi, threads)
        assert np.array_equal(m, ref.migrations(lg, lo, hi, threads)), (lo, hi)
    return got


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_real_runs_of_every_policy(name):
    run = mixed_run(POLICIES[name])
    sp = same(run.events, run.meta["end_ns"], False)
    assert sp.thread.size > 100 and set(np.unique(sp.state)) >= {0, 1, 2}


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(logs(), st.integers(-5, 400), st.booleans())
def test_generated_logs(events, end_ns, truncated):
    same(events, end_ns, truncated)


def test_bad_input_is_refused():
    z = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="different lengths"):
        _core.state_spans(z, np.zeros(3, np.uint16), np.zeros(2, np.int8), z, np.zeros(4, np.int8), 2, 5, 0, False)
    with pytest.raises(ValueError, match="outside the table"):
        _core.state_spans(z, np.zeros(2, np.uint16), np.array([0, 7], np.int8), z, np.zeros(4, np.int8), 2, 5, 0, False)
    with pytest.raises(ValueError, match="outside 0..threads"):
        _core.migrations(z, np.array([0, 3], np.uint16), np.zeros(2, np.int16), 0, 10, 2)
