"""P2: scenarios.syscalls — the context-switch storm of the tick GIL, and its counts.

Tolerances measured on the 2-core development VM (8 runs each at 300k ticks, under load from
other work on the machine): 2.7 on 2 cores, voluntary context switches threaded / sequential
129-586 in 7 runs and 3 in one (the second core was busy elsewhere, so the threads barely met);
total context switches 5-61x (1.1x in that run; involuntary ones are mostly other processes'
preemptions). On 1 core: voluntary 9-12 threaded against 0-1 sequential; total 1.6-3.6x. Each storm assertion therefore takes the best of up to 3 runs.
"""

import pytest

import gilmodel as gm
from conftest import CORES, needs_2_cores

TICKS = 300_000
SIDE_KEYS = {"elapsed_s", "threads", "voluntary_ctx_switches", "involuntary_ctx_switches", "ctx_switches",
             "utime_s", "stime_s", "calls", "primitive_calls", "futex_level"}
RATIO_KEYS = {"ctx_switches", "voluntary_ctx_switches", "involuntary_ctx_switches", "primitive_calls",
              "elapsed_s", "futex_level", "blocking_waits"}


def best_of(n, version, cores, ok, ticks=TICKS):
    for _ in range(n):
        r = gm.scenarios.syscalls(gm.cpython(version), cores, ticks)
        if ok(r):
            return r
    return r


# Whether the two threads meet on their two cores is the machine's: in a CI run under heavy
# steal the best of 3 had 6 voluntary switches for the 20 asked.
@needs_2_cores
@pytest.mark.timing
@pytest.mark.parametrize("version", ["2.7", "2.6-osx"])
def test_storm_on_two_cores(version):
    r = best_of(3, version, CORES[:2], lambda r: r["ratios"]["voluntary_ctx_switches"] >= 20 and r["ratios"]["ctx_switches"] > 1)
    assert r["ratios"]["voluntary_ctx_switches"] >= 20, r["ratios"]
    # Involuntary switches come from whatever else runs on the machine (one sequential run
    # here took 498), so the total is only asserted to grow.
    assert r["threaded"]["ctx_switches"] > r["sequential"]["ctx_switches"], r["ratios"]
    # The calls barely change: the same checks, now blocking.
    assert 0.95 <= r["ratios"]["primitive_calls"] <= 1.5, r["ratios"]
    assert r["sequential"]["futex_level"]["blocking_waits"] == 0
    assert r["threaded"]["futex_level"]["blocking_waits"] > 0


# How often the kernel switches two threads sharing one core is the scheduler's. At TICKS
# (a threaded run of ~20 ms) it gave 4-8 voluntary switches against 1 sequential, and a CI run on
# a quiet but slowed host failed both versions (4 for the 5 asked, best of 3). At ONE_CORE_TICKS
# (~0.13 s) it gave 23-36 against 1, and 65-101 switches in all against 2-7 (8 runs per version,
# 2-core VM): the bound below is far from both.
ONE_CORE_TICKS = 2_000_000


@pytest.mark.timing
@pytest.mark.parametrize("version", ["2.7", "2.6-osx"])
def test_more_switches_threaded_on_one_core(version):
    r = best_of(3, version, CORES[:1], lambda r: r["threaded"]["voluntary_ctx_switches"] >= 4 + r["sequential"]["voluntary_ctx_switches"]
                and r["threaded"]["ctx_switches"] > r["sequential"]["ctx_switches"], ticks=ONE_CORE_TICKS)
    assert r["threaded"]["voluntary_ctx_switches"] >= 4 + r["sequential"]["voluntary_ctx_switches"], r["ratios"]
    assert r["threaded"]["ctx_switches"] > r["sequential"]["ctx_switches"], r["ratios"]


@pytest.mark.parametrize("version", ["2.7", "2.6-osx", "3.11"])
def test_fields_and_consistent_counts(version):
    r = gm.scenarios.syscalls(gm.cpython(version), CORES[:2], 50_000)
    assert set(r) == {"gil", "cores", "ticks", "sequential", "threaded", "ratios", "counts_are"}
    assert r["gil"]["policy"] == ("interval" if version == "3.11" else "tick") and r["ticks"] == 50_000
    assert set(r["ratios"]) == RATIO_KEYS and "not system calls" in r["counts_are"]
    for mode, names in (("sequential", ["t0"]), ("threaded", ["t0", "t1"])):
        s = r[mode]
        assert set(s) == SIDE_KEYS and list(s["threads"]) == names
        assert set(s["calls"]) == set(gm._core.CALL_NAMES)
        for k in ("voluntary_ctx_switches", "involuntary_ctx_switches"):
            assert s[k] == sum(t[k] for t in s["threads"].values()) >= 0
        assert s["ctx_switches"] == s["voluntary_ctx_switches"] + s["involuntary_ctx_switches"]
        for c in gm._core.CALL_NAMES:
            assert s["calls"][c] == sum(t["calls"][c] for t in s["threads"].values())
        assert s["primitive_calls"] == sum(v for c, v in s["calls"].items() if c not in ("cond_timeouts", "sem_eintr"))
        f = s["futex_level"]
        assert f["total"] == f["blocking_waits"] + f["wakes"] + f["mutex"] == sum(s["calls"][c] for c in gm.scenarios.FUTEX_LEVEL)
        assert "sem_trywait" not in gm.scenarios.FUTEX_LEVEL
        assert s["elapsed_s"] > 0
        for t in s["threads"].values():
            c = t["calls"]
            if version == "2.6-osx" or version == "3.11":
                # mutex_cond and interval GILs: every lock is unlocked by the same thread.
                assert c["mutex_lock"] == c["mutex_unlock"] > 0
                assert c["sem_wait"] == c["sem_trywait"] == 0
            else:
                # sem: every acquisition starts with one sem_trywait (a failed one is followed
                # by one sem_wait: no EINTR, signals are blocked), every acquisition is
                # released, and the engine posts its own "done" semaphore once per thread.
                assert c["mutex_lock"] == c["mutex_unlock"] == c["cond_wait"] == c["sem_eintr"] == 0
                assert c["sem_post"] == c["sem_trywait"] + 1
                assert c["sem_wait"] <= c["sem_trywait"]
        if version != "3.11":
            checks = 2 * 50_000 // 101
            assert s["calls"]["sem_post"] + s["calls"]["cond_signal"] >= checks


def test_cli_run_syscalls():
    from test_scenarios_cli import run_cli
    import json

    p = run_cli("run", "syscalls", "--version", "2.7", "--cores", ",".join(map(str, CORES[:2])), "--ticks", "20000")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["gil"]["lock"] == "sem" and "voluntary_ctx_switches" in r["ratios"]
