"""The leak scenario and memory readings, shared by tests/test_leaks.py and benches/leaks.py."""

import ctypes
import ctypes.util
import gc

import gilmodel as gm

CORES = gm._core.allowed_cores()

#: Every policy family's lock (semaphore, mutex+condvar, ticket queue), each run with a CPU
#: thread, a sender to a drain peer, a ping-pong with a driver peer, a joining main thread that
#: gets a real signal (SIGUSR1) and runs its handler. The tick GIL checking every 10 ticks
#: makes the largest logs (tens of thousands of events).
POLICIES = [gm.TickGIL(check_interval=10), gm.IntervalGIL(interval_us=500), gm.TickGIL(100, "mutex_cond"), gm.FifoGIL()]


def scenario(i):
    return gm.Scenario(POLICIES[i % len(POLICIES)], [
        gm.Thread("main", [gm.cpu(100_000), gm.join("io"), gm.join("ping")]),
        gm.Thread("cpu", [gm.loop(gm.cpu(5000))]),
        gm.Thread("io", [gm.loop(gm.send(1024), gm.cpu(20), times=10)], peer=gm.drain()),
        gm.Thread("ping", [gm.loop(gm.recv(8), gm.cpu(10), gm.send(8))], peer=gm.driver(3, 300)),
    ], cores=CORES, stop_thread="main", signals=[gm.signal(300, "SIGUSR1", handler=[gm.cpu(100)])])


def one(i):
    """Run scenario ``i`` and use it as a user would (export and analysis); its event count."""
    run = gm.run(scenario(i))
    run.summary()
    assert not run.meta["aborted"] and run.io.num_rows == 3 and run.meta["signals"][0]["sent_ns"] is not None
    return run.events.num_rows


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_libc = ctypes.CDLL(ctypes.util.find_library("c"))
HAS_MALLINFO2 = hasattr(_libc, "mallinfo2")  # glibc >= 2.33
if HAS_MALLINFO2:
    _libc.mallinfo2.restype = _MallInfo2


def malloc_in_use():
    """Bytes glibc's malloc has handed out and not got back (all arenas, mmapped chunks too)."""
    m = _libc.mallinfo2()
    return m.uordblks + m.hblkhd


def rss():
    """VmRSS in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rss_trimmed():
    """VmRSS in bytes after malloc_trim(0) gives the allocator's free pages back: what is left
    is memory in use, not memory malloc keeps for later."""
    gc.collect()
    if hasattr(_libc, "malloc_trim"):
        _libc.malloc_trim(0)
    return rss()
