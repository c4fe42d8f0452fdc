"""The interpreter's cost of coming back from a blocking op (``Scenario.return_cost``): what a
scenario carries, how it reaches the core, and what it does to a run."""

import pytest

import gilmodel as gm
from conftest import CORES


def _echo(**kw):
    # An idle echo on one core: 20 pings 3 ms apart, 10 ticks of work an answer.
    return gm.scenarios.io_latency(gm.cpython("3.11"), CORES[:1], cpu_threads=0, pings=20, gap_us=3000,
                                   work_ticks=10, tick_ns=50, **kw)


def test_each_idle_round_trip_is_longer_by_about_the_cost():
    # 300 µs after 1 ms away or more: every ping's echo comes back from a 3 ms recv, so each
    # round trip grows by the whole cost (an idle round trip here is 20-90 µs; the spin holds
    # its calibrated length within a few %).
    base = gm.run(_echo()).summary()["io_latency_p50_ms"]
    r = gm.run(_echo().replace(return_cost=((1000, 300_000),)))
    assert r.meta["return_cost"] == [[1_000_000, 6000]]  # in the core's units: ns away, 50 ns ticks
    grown = r.summary()["io_latency_p50_ms"] - base
    assert 0.6 * 0.3 < grown < 1.6 * 0.3, (base, grown)


def test_a_scenario_takes_the_profiles_cost_only_when_resolved_from_it():
    sc = gm.scenarios.io_latency(gm.cpython("3.11"), CORES[:1], cpu_threads=0, pings=5, gap_us=1000)
    rs = sc.resolved(quiet=True)
    assert rs.return_cost == tuple(map(tuple, rs.profile.return_cost or ()))
    # An explicit tick_ns: no profile, no cost, unless given.
    assert _echo().resolved().return_cost is None and _echo().to_spec()["return_cost"] == []
    given = sc.replace(return_cost=((500, 1000.0),)).resolved(quiet=True)
    assert given.return_cost == ((500.0, 1000.0),)


@pytest.mark.parametrize("points, match", [
    ([(0, 5)], "away_us"),
    ([(2, 1), (1, 1)], "above the point before"),
    ([(1,)], r"expected \(away_us, extra_ns\)"),
    ([(1, -1)], "extra_ns"),
    ([(i + 1, 0) for i in range(17)], "at most 16"),
    (5, "return_cost"),
])
def test_bad_points_are_refused_naming_the_field(points, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _echo().replace(return_cost=points)
