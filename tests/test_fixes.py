"""The proposed fixes against the interval GIL they try to improve: each cuts the delay an I/O
thread suffers to get the GIL back after a blocking call (the convoy mechanism), FIFO serves
in arrival order, priority moves threads between levels for the documented reasons, and no
GIL runs CPU threads in parallel. Ratios are taken within one test, on the same machine."""

import numpy as np
import pytest

import gilmodel as gm
from gilmodel import analysis, scenarios
from conftest import CORES, needs_2_cores

# Real threads: a busy machine changes what they do (tests/contention.py).
pytestmark = pytest.mark.timing

FIXES = {
    "priority": gm.PriorityGIL(),
    "bfs": gm.BfsGIL(),
    "fifo": gm.FifoGIL(),
}


def io_p50_ms(gil):
    # ccbench's latency test: an I/O thread answers pings while a CPU thread spins. The pings
    # are 7 ms apart, more than the 5 ms interval plus a hand-off, so each one finds the CPU
    # thread holding the GIL: with 3 ms, a reply that took 5 ms made the next ping late, it
    # found the GIL free half the time, and the p50 fell anywhere in 1.3-4.7 ms.
    r = gm.run(scenarios.io_latency(gil, cores=CORES[:2], cpu_threads=1, pings=30, gap_us=7000))
    return r.summary()["io_latency_p50_ms"]


@needs_2_cores
@pytest.mark.parametrize("name", sorted(FIXES))
def test_fix_cuts_the_io_response_of_the_interval_gil(name):
    # Under the interval GIL an I/O thread back from recv waits out the 5 ms interval; every
    # fix gives the GIL back within a hand-off. Measured on the 2-core VM: interval p50 ≈ 5.1 ms,
    # priority/BFS/FIFO ≤ 0.2 ms (25× or more); the assertion asks for 5×. On a host that slowed
    # the VM (no steal showing) single runs of the fixes gave 0.18-0.85 ms against an interval
    # of 3.7 ms, so the fix takes the best of 3 runs (a fix that did not cut gives ~5 ms in all).
    base = io_p50_ms(gm.IntervalGIL())
    fixed = io_p50_ms(FIXES[name])
    for _ in range(2):
        if fixed * 5 < base:
            break
        fixed = min(fixed, io_p50_ms(FIXES[name]))
    assert base > 2.0, "the interval GIL should show the convoy delay (p50 %.3f ms)" % base
    assert fixed * 5 < base, "%s: p50 %.3f ms vs interval %.3f ms" % (name, fixed, base)


def acquisitions(run, k):
    ev = run.events
    kinds = ev.column("event").to_numpy(zero_copy_only=False)
    th = ev.column("thread").to_numpy()
    return ev.column("t_ns").to_numpy()[(kinds == "acquire") & (th == k)], th[(kinds == "acquire")]


def test_fifo_serves_in_arrival_order():
    # Three CPU threads on whatever cores there are: with strict FIFO hand-off the holders
    # cycle, and each wait's request is served before every later request.
    sc = gm.Scenario(gm.FifoGIL(check_every=200), [gm.Thread("t%d" % i, [gm.cpu(400_000)]) for i in range(3)],
                     cores=CORES)
    run = gm.run(sc)
    w = analysis.waits(run.events).to_pandas()
    w = w[w.wait_ns > 0].sort_values("request_ns")
    assert len(w) > 100
    # Arrival order = service order: acquisitions sorted by request time are sorted in time.
    # (A thread queues when it gets the mutex, a little after it logs its request, so two
    # requests logged within a preemption of each other may swap: measured 0 swaps on a quiet
    # 2-core VM, 1 at start-up under load. None may swap across 1 ms.)
    req, acq = w.request_ns.to_numpy(), w.acquire_ns.to_numpy()
    swapped = np.flatnonzero(np.diff(acq) < 0)
    assert len(swapped) <= len(w) // 100
    assert (req[swapped + 1] - req[swapped] < 1_000_000).all()
    holders = analysis.holds(run.events).column("thread").to_numpy()
    assert (holders[1:] != holders[:-1]).mean() > 0.95  # hand-offs, not retakes


def test_priority_demotes_cpu_threads_and_promotes_io_threads():
    run = gm.run(scenarios.io_latency(gm.PriorityGIL(interval_us=1000), cores=CORES, pings=30, gap_us=2000))
    kinds = run.events.column("event").to_numpy(zero_copy_only=False)
    th = run.events.column("thread").to_numpy()
    io, cpu = 0, 1
    # The CPU thread is forced out (after starting high) and demoted; the I/O thread gives the
    # GIL up around its calls and is never demoted.
    assert ((kinds == "demote") & (th == cpu)).sum() >= 1
    assert ((kinds == "demote") & (th == io)).sum() == 0
    # Once demoted, the CPU thread is preempted at once by the I/O thread's requests.
    assert ((kinds == "preempt") & (th == io)).sum() >= 10


def holding_overlap(run):
    """Time both threads held "the GIL", as a fraction of the shorter one's holding time."""
    h = analysis.holds(run.events).to_pandas()
    a, b = h[h.thread == 0], h[h.thread == 1]
    both = sum(max(0, min(e0, e1) - max(s0, s1)) for s0, e0 in zip(a.start_ns, a.end_ns)
               for s1, e1 in zip(b.start_ns, b.end_ns))
    return both / min(a.dur_ns.sum(), b.dur_ns.sum())


@needs_2_cores
def test_nogil_runs_cpu_threads_in_parallel():
    # Without a GIL two CPU threads hold "it" at the same time for all of the shorter run;
    # under the interval GIL never. (Speed-ups are in benches/policies.py, not asserted here.)
    # 3 M ticks (about 80 ms a thread): a CI run of 300 000 (8 ms) saw 0.74, one thread held off
    # its core for 2-3 ms by the host (0.13 cores stolen); 40 quiet runs of that size gave
    # 0.995 at least.
    runs = {name: gm.run(scenarios.cpu_pair(gil, cores=CORES[:2], ticks=3_000_000)[1])
            for name, gil in (("nogil", gm.NoGIL()), ("interval", gm.IntervalGIL()))}
    assert holding_overlap(runs["interval"]) == 0
    assert holding_overlap(runs["nogil"]) > 0.8


def test_nogil_keeps_per_thread_alternation():
    run = gm.run(gm.Scenario(gm.NoGIL(), [
        gm.Thread("io", [gm.loop(gm.send(256), gm.cpu(50), times=200)], peer=gm.drain()),
        gm.Thread("spin", [gm.cpu(200_000)]),
    ], cores=CORES))
    h = analysis.holds(run.events)
    assert h.num_rows == sum(run.threads.column("acquisitions").to_pylist())
    assert h.filter(h.column("thread").to_numpy() == 0).num_rows == 201  # one per send, plus the first
