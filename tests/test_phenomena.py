"""The direction of the phenomena of docs/design.md §1 on 2 cores, asserted as ratios measured
in the same run. Tolerances come from 5 repeats on the 2-core development VM (see each test)."""

import statistics

import pytest

import gilmodel as gm
from conftest import CORES, needs_2_cores

# Real threads: a busy machine changes what they do (tests/contention.py).
pytestmark = pytest.mark.timing

TWO = CORES[:2]


@needs_2_cores
@pytest.mark.parametrize("version", ["2.7", "2.6-osx"])
def test_tick_gil_cpu_pair_is_slower_threaded_and_wakes_futilely(version):
    # Measured: threaded/sequential 1.19–1.30 on 2 cores, with 4.5k–6.2k futile wake-ups.
    res = [gm.scenarios.cpu_pair_ratio(gm.cpython(version), TWO, 1_000_000) for _ in range(3)]
    assert statistics.median(r["ratio"] for r in res) > 1.08, res
    # The median of the three, as for the ratio: one run in a CI run of 2026-12-01 had none (2.6-osx,
    # on a quiet machine), the others thousands.
    assert statistics.median(r["threaded"]["futile_wakeups"] for r in res) > 100, [r["threaded"]["futile_wakeups"] for r in res]


@needs_2_cores
@pytest.mark.timing
def test_interval_gil_cpu_pair_ratio_near_one_and_switch_rate_near_one_per_interval():
    # Measured (8 pairs): ratio 0.98–1.02, one outlier pair at 0.89 when the two cores ran at
    # different speeds; the median of 3 pairs is asserted. 196–200 switches/s at 5 ms. A CI run
    # had 0.98, 0.87 and 0.88 with no steal and no other process: the host ran the cores at
    # different speeds, which no contention reading sees. So the lower bound is 0.8: a GIL
    # cannot make two CPU threads faster than one after the other; the point is that the
    # interval GIL does not make them slower (2.7's tick GIL: 1.19-1.30).
    # Each task ~0.1 s of 3.11's measured ticks, so thread start-up and the last interval are small.
    ticks = int(0.1e9 / gm.profiles.for_policy(gm.cpython("3.11")).model_tick_ns)
    res = [gm.scenarios.cpu_pair_ratio(gm.cpython("3.11"), TWO, ticks)["ratio"] for _ in range(3)]
    assert 0.8 < statistics.median(res) < 1.1, res
    s = gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), TWO, 0.5)).summary()
    assert 150 < s["switches_per_s"] < 250, s
    s2 = gm.run(gm.scenarios.handoffs(gm.IntervalGIL(interval_us=1000), TWO, 0.3)).summary()
    assert s2["switches_per_s"] > 3 * s["switches_per_s"], (s, s2)


@needs_2_cores
def test_interval_convoy_is_many_times_slower_next_to_a_cpu_thread():
    # Measured: 472–2119x with 256 KiB. A single run is a race that the I/O thread sometimes
    # wins for the whole stream (a factor of 9 in one of the quiet runs of benches/flakes.py):
    # the median of 3 is asserted at 10x.
    rs = sorted((gm.scenarios.convoy_factor(gm.cpython("3.11"), TWO, 1, total_bytes=128 << 10) for _ in range(3)),
                key=lambda r: r["factor"])
    assert rs[1]["factor"] > 10, [r["factor"] for r in rs]
    # The mechanism: the stream waits out interval after interval, each ended by its drop
    # request (measured: drop requests = 0.92–0.94 of the 5 ms intervals the loaded run
    # lasted; a fixed floor of 10 failed in CI on a short median run with 7).
    loaded = rs[1]["loaded"]
    assert loaded["drop_requests"] >= 0.5 * loaded["elapsed_s"] / 0.005, loaded


@needs_2_cores
def test_dedupe_ablation_raises_switches_with_three_threads():
    # P5: without the switch_number check a second waiter re-arms the drop request after a
    # switch it missed, so the new holder is forced out early: more switches per second.
    def rate(dedupe):
        gil = gm.IntervalGIL(interval_us=2000, dedupe_drop_request=dedupe)
        sc = gm.Scenario(gil, [gm.Thread("c%d" % i, [gm.loop(gm.cpu(10_000))]) for i in range(3)], cores=TWO, duration_s=0.5)
        return gm.run(sc).summary()["switches_per_s"]

    # Measured with 3.11's calibrated ticks (6 trials of medians of 3, quiet 2-core VM):
    # off / on 1.15-1.34; with the old 50 ns tick it was above 1.2. Asked: 1.1.
    on = statistics.median(rate(True) for _ in range(3))
    off = statistics.median(rate(False) for _ in range(3))
    assert off > 1.1 * on, (on, off)


@needs_2_cores
def test_force_switching_makes_every_forced_drop_a_switch():
    # Without FORCE_SWITCHING (CPython 3.2 added it) the forced holder drops and retakes the
    # GIL before the woken waiter runs. Measured: switches per forced drop 1.01 with it,
    # 0.35-0.57 without (and 120-180 futile wake-ups per 0.3 s).
    def ratio(force):
        s = gm.run(gm.scenarios.handoffs(gm.IntervalGIL(interval_us=1000, force_switching=force), TWO, 0.3)).summary()
        return s["switches"] / max(1, s["forced_drops"]), s["futile_wakeups"]

    on = [ratio(True) for _ in range(3)]
    off = [ratio(False) for _ in range(3)]
    assert statistics.median(r for r, _ in on) > 0.95, on
    assert statistics.median(r for r, _ in off) < 0.8, off
    assert statistics.median(f for _, f in off) > 10, off


@needs_2_cores
def test_with_several_cpu_threads_the_requester_is_the_last_holder_and_sometimes_wins():
    # docs/validation/many-threads.md: four CPU threads on 2 cores under 3.x's GIL. The drop
    # request comes from the thread that held before the current holder (it left its
    # FORCE_SWITCHING wait first, so its timed wait is the first to run out with no switch in
    # it): 86-96 % of drop requests, observed in real 3.11 and in the model. Whether it then
    # gets the GIL is a microsecond race against the older waiters, which it wins about half
    # the time: 48 % in real 3.11 observed, A B A 46-55 % unprobed (benches/requester_wins.py);
    # in the model 52-71 % in 8 runs of this scenario (2026-12-02, 2-core VM), 10-14 % while
    # its log and call counters still sat inside the race's window.
    # Asked: most requests from the last holder, and the requester winning over 30 %, not all.
    th = [gm.Thread("c%d" % i, [gm.loop(gm.cpu(10_000))]) for i in range(4)]
    ev = gm.run(gm.Scenario(gm.cpython("3.11"), th, cores=TWO, duration_s=1.0)).events.to_pandas()
    ev = ev[ev.event.isin(["drop_request", "acquire"])].sort_values("t_ns", kind="stable")
    holders, asker = [], None
    from_last = won = lost = 0
    for th_, e in zip(ev.thread.to_numpy(), ev.event.astype(str).to_numpy()):
        if e == "drop_request":
            asker = th_
            continue
        if asker is not None and len(holders) >= 2:
            from_last += asker == holders[-2]
            won += th_ == asker
            lost += th_ != asker
        holders.append(th_)
        asker = None
    n = won + lost
    assert n > 100, "only %d forced switches in 1 s" % n
    assert from_last > 0.6 * n, (from_last, n)
    assert won > 0.3 * n and lost > 0, (won, lost)


def test_one_core_tick_gil_barely_slower():
    # Measured on 1 core: 0.98–1.01. The median of 3 pairs of 0.1 s runs: one pair of 25 ms runs
    # measured 1.21 in a quiet CI run (the spin's fit may be re-measured between the two runs of
    # a pair, and the host's speed moves within a second).
    rs = [gm.scenarios.cpu_pair_ratio(gm.cpython("2.7"), CORES[:1], 4_000_000) for _ in range(3)]
    r = sorted(rs, key=lambda x: x["ratio"])[1]
    assert 0.85 < r["ratio"] < 1.2, rs
