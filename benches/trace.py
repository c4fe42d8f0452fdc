"""Native Perfetto traces of a big run: time to write, bytes an event (raw and gzip), and the
peak memory the writing adds; with the JSON trace of a smaller run for comparison.
Targets (issue "Big runs"): 10 M events in under 10 s and 30 bytes an event, extra peak memory
under twice the event log's.

Run: .venv/bin/python benches/trace.py [events]
"""

import os
import resource
import sys
import tempfile
import time

import gilmodel as gm

TARGET = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    # A tick GIL checking every 10 short ticks on two threads, next to a streaming I/O thread.
    sc = gm.Scenario(gm.TickGIL(check_interval=10), [
        gm.Thread("a", [gm.cpu(TARGET * 2)]),
        gm.Thread("b", [gm.cpu(TARGET * 2)]),
        gm.Thread("io", [gm.loop(gm.cpu(5), gm.send(1024))], peer=gm.drain()),
    ], tick_ns=5, stop_thread="a", max_events=3 * TARGET)
    run = gm.run(sc)
    n = run.events.num_rows
    log_mb = run.events.nbytes / 2**20
    before = peak_mb()
    d = tempfile.mkdtemp()
    print("run: %d events, event log %.0f MB, peak RSS %.0f MB" % (n, log_mb, before))
    for name in ("big.perfetto-trace", "big.perfetto-trace.gz"):
        path = os.path.join(d, name)
        t = time.perf_counter()
        run.to_trace(path)
        dt = time.perf_counter() - t
        size = os.path.getsize(path)
        print("  %-24s %6.2f s (%.2f s per 10 M events), %6.1f bytes an event, peak RSS now %.0f MB (+%.0f MB)"
              % (name, dt, dt * 1e7 / n, size / n, peak_mb(), peak_mb() - before))
        os.unlink(path)
    small = gm.run(gm.scenarios.handoffs(gm.cpython("2.7"), cores=gm._core.allowed_cores()[:2], duration_s=0.2))
    for name in ("small.json", "small.perfetto-trace"):
        path = os.path.join(d, name)
        t = time.perf_counter()
        small.to_trace(path)
        dt = time.perf_counter() - t
        print("  %-24s %6.3f s for %d events (%.2f us an event), %.1f bytes an event"
              % (name, dt, small.events.num_rows, dt * 1e6 / small.events.num_rows, os.path.getsize(path) / small.events.num_rows))
        os.unlink(path)


if __name__ == "__main__":
    main()
