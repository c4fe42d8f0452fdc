"""Analysis speed on a 10 M-event log: each gilmodel.analysis function, the summary, and the
timeline. Targets (issue "Big runs"): summary < 0.5 s and the four tables < 1 s per 10 M
events; plot() < 5 s.

Run: .venv/bin/python benches/analysis.py
"""

import time

import gilmodel as gm
from gilmodel import analysis

TARGET = 10_000_000


def timed(f, *a):
    t = time.perf_counter()
    r = f(*a)
    return time.perf_counter() - t, r


def main() -> None:
    # A tick GIL checking every 10 short ticks on two threads, next to a streaming I/O thread,
    # logs ~10 M events of every common kind.
    sc = gm.Scenario(gm.TickGIL(check_interval=10), [
        gm.Thread("a", [gm.cpu(30_000_000)]),
        gm.Thread("b", [gm.cpu(30_000_000)]),
        gm.Thread("io", [gm.loop(gm.cpu(5), gm.send(1024))], peer=gm.drain()),
    ], tick_ns=5, stop_thread="a", max_events=3 * TARGET)
    run = gm.run(sc)
    n = run.events.num_rows
    print("analysis of %d events (%s)" % (n, ", ".join("%s %d" % kv for kv in sorted(
        zip(*[run.events.column("event").combine_chunks().dictionary.to_pylist(),
              [int((run.events.column("event").combine_chunks().indices.to_numpy() == i).sum())
               for i in range(len(gm.EVENT_NAMES))]]), key=lambda kv: -kv[1])[:5])))
    total = 0.0
    for name in ("holds", "handoffs", "waits", "io_response"):
        dt, t = timed(getattr(analysis, name), run.events)
        total += dt
        print("  %-12s %6.3f s  (%d rows)" % (name, dt, t.num_rows))
    warm, _ = timed(analysis.summary, run)
    print("  %-12s %6.3f s  (after the tables: their decoding and pass are shared)" % ("summary", warm))
    from gilmodel import eventlog

    eventlog._DECODED.clear()
    dt, _ = timed(analysis.summary, run)
    print("  %-12s %6.3f s  (alone: decoding, the core's pass, the quantiles)" % ("summary", dt))
    import os
    import tempfile

    png = os.path.join(tempfile.mkdtemp(), "big.png")
    pt, _ = timed(run.plot, png)
    print("  %-12s %6.3f s" % ("plot", pt))
    print("per 10 M events: the four tables %.2f s (target < 1 s), summary %.2f s (< 0.5 s), plot %.2f s (< 5 s)"
          % (total * TARGET / n, dt * TARGET / n, pt * TARGET / n))


if __name__ == "__main__":
    main()
