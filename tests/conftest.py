import os
import shutil
import signal
import tempfile

# A shell that starts the suite in the background without job control (`cmd &` in a script)
# hands it SIGINT ignored, and then neither this process nor any interpreter it starts turns
# Ctrl-C into KeyboardInterrupt: the Ctrl-C tests need the default that a terminal gives.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Calibration profiles of this test session: measured afresh into a private cache (never the
# user's), shared with the commands the tests start (they inherit the environment).
_CACHE = tempfile.mkdtemp(prefix="gilmodel-test-cache-")
os.environ["GILMODEL_CACHE_DIR"] = _CACHE

import pytest  # noqa: E402

import gilmodel as gm  # noqa: E402
import contention  # noqa: E402

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


def task_count_settled(within_s: float = 0.2) -> int:
    """The thread count once two readings 5 ms apart agree (a thread of an earlier run may
    still be leaving /proc/self/task)."""
    import time

    end = time.monotonic() + within_s
    n = task_count()
    while time.monotonic() < end:
        time.sleep(0.005)
        m = task_count()
        if m == n:
            break
        n = m
    return n


def task_count_back_to(n: int, within_s: float = 0.2) -> int:
    """The thread count once it is back to ``n``, or after ``within_s``: a joined thread's task
    can stay listed in /proc/self/task for a moment after pthread_join returns."""
    import time

    end = time.monotonic() + within_s
    while task_count() != n and time.monotonic() < end:
        time.sleep(0.005)
    return task_count()


def fd_set() -> dict:
    """This process's open file descriptors: fd → what it points at."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[int(fd)] = os.readlink("/proc/self/fd/" + fd)
        except OSError:  # closed meanwhile (the listing's own fd, a background thread's)
            pass
    return out


def fds_left_behind(before: dict, within_s: float = 0.5) -> list:
    """The descriptors open now whose numbers were not open in ``before`` (a :func:`fd_set`),
    once none is left or after ``within_s``: "fd -> target" each. Only descriptors added count:
    a library's background thread (Ray's, from an earlier test) may close one of its own
    meanwhile or hold one open for a moment, which is why comparing counts flaked (37
    against 38 in a CI run, then 38 against 37 in the next test)."""
    import time

    end = time.monotonic() + within_s
    while True:
        now = fd_set()
        new = ["%d -> %s" % (fd, t) for fd, t in sorted(now.items()) if fd not in before]
        if not new or time.monotonic() >= end:
            return new
        time.sleep(0.01)


def pytest_configure(config):
    config.addinivalue_line("markers", "timing: timing-sensitive; measures contention, retries a failure made while the machine was busy "
                                       "and names the contention in its message (tests/contention.py)")


def pytest_collection_modifyitems(items):
    """Timing tests run measured (tests/contention.py); the Ray tests run last: Ray leaves
    background threads in the test process after ``ray.shutdown()``, whose sockets the leak
    checks of later tests (test_watchdog, after test_sweep_ray_cluster alphabetically) counted
    as left behind (a CI failure)."""
    items.sort(key=lambda it: "ray" in it.nodeid.split("::")[0].rsplit("/", 1)[-1])
    for item in items:
        if item.get_closest_marker("timing") is not None:
            orig = item.runtest
            item.runtest = lambda item=item, orig=orig: contention.run_measured(item, orig)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
