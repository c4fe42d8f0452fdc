import os

import pytest

import gilmodel as gm

CORES = gm._core.allowed_cores()

needs_2_cores = pytest.mark.skipif(len(CORES) < 2, reason="needs 2 cores in the affinity mask; this machine gives %d" % len(CORES))

#: Every policy configuration the core has, for the invariant tests.
POLICIES = {
    "tick-sem": gm.TickGIL(100, "sem"),
    "tick-mutex_cond": gm.TickGIL(100, "mutex_cond"),
    "interval": gm.IntervalGIL(interval_us=500),
    "interval-no-force": gm.IntervalGIL(interval_us=500, force_switching=False),
    "interval-no-dedupe": gm.IntervalGIL(interval_us=500, dedupe_drop_request=False),
    "interval-check8": gm.IntervalGIL(interval_us=500, check_every=8),
    "priority": gm.PriorityGIL(interval_us=500),
    "bfs": gm.BfsGIL(slice_us=500),
    "fifo": gm.FifoGIL(),
    "fifo-min-hold": gm.FifoGIL(check_every=10, min_hold_us=200),
}


def task_count() -> int:
    return len(os.listdir("/proc/self/task"))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
