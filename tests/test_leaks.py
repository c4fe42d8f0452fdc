"""Back-to-back runs leak nothing: threads, file descriptors and memory are flat after a
warm-up. (benches/leaks.py runs the same for 1000 runs and prints the figures.)"""

import gc

import pyarrow as pa

from conftest import fd_set, fds_left_behind, task_count
from leak_helpers import HAS_MALLINFO2, malloc_in_use, one, rss_trimmed

WARMUP, RUNS = 10, 60


def test_back_to_back_runs_leak_no_thread_fd_or_memory():
    for i in range(WARMUP):
        one(i)
    gc.collect()  # objects of earlier tests closed now, not in the middle of the count
    tasks, fds = task_count(), fd_set()
    arrow = pa.total_allocated_bytes()
    heap = malloc_in_use() if HAS_MALLINFO2 else None
    rss = rss_trimmed()
    events = 0
    for i in range(WARMUP, WARMUP + RUNS):
        events += one(i)
        assert task_count() == tasks, "run %d: threads %d -> %d" % (i, tasks, task_count())
        assert not fds_left_behind(fds), "run %d: fds left behind: %s" % (i, fds_left_behind(fds, 0))
    gc.collect()
    # Does not grow (in the whole suite, objects of earlier tests may be freed meanwhile).
    assert pa.total_allocated_bytes() <= arrow
    MiB = 1 << 20
    grown_rss = rss_trimmed() - rss
    print("%d runs, %d events a run: RSS %+.1f MiB, malloc in use %s" % (
        RUNS, events // RUNS, grown_rss / MiB, "%+.0f KiB" % ((malloc_in_use() - heap) / 1024) if heap is not None else "n/a"))
    if heap is not None:
        # Measured +74 to +121 KiB over the 60 runs (5 runs of this test), and +334 to +387 KiB
        # over 1000 runs in benches/leaks.py, slowing down (about 0.4 KiB a run, Python-level state
        # around the analysis; the core alone, ~60 B a run). Leaking a run's merged log is
        # ~0.35 MB a run here (18 k events), a thread's event buffer far more: > 20 MiB.
        assert malloc_in_use() - heap < 2 * MiB
    # Measured after malloc_trim: +0.9 to +2.6 MiB over the 60 runs (5 runs of this test), and
    # +2.4 to +7.0 MiB over 1000 runs in benches/leaks.py, slowing (+0.3 to +1.4 MiB over the
    # last 900): glibc keeps the arenas of the per-run threads for the next run's, and their
    # fragmentation moves with the sizes of the logs. 16 MiB is the catch-all for what malloc
    # does not see (Python's own arenas, thread stacks, mmaps): about 270 KB a run.
    assert grown_rss < 16 * MiB
