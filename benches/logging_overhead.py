"""Does logging change what it observes? Summary metrics with logging on vs off, interleaved
repeats, medians compared (target: < 2 % apart).

Run: .venv/bin/python benches/logging_overhead.py [repeats]
"""

import statistics
import sys

import gilmodel as gm


def cases():
    cores = gm._core.allowed_cores()[:2]
    seq, thr = gm.scenarios.cpu_pair(gm.cpython("2.7"), cores, 2_000_000)
    yield "2.7 cpu_pair threaded: elapsed_s", thr, "elapsed_s"
    _, thr3 = gm.scenarios.cpu_pair(gm.cpython("3.11"), cores, 2_000_000)
    yield "3.11 cpu_pair threaded: elapsed_s", thr3, "elapsed_s"
    yield "3.11 handoffs: switches_per_s", gm.scenarios.handoffs(gm.cpython("3.11"), cores, 0.5), "switches_per_s"
    yield "2.7 handoffs: switches_per_s", gm.scenarios.handoffs(gm.cpython("2.7"), cores, 0.5), "switches_per_s"
    yield "3.11 convoy 256 KiB: elapsed_s", gm.scenarios.convoy(gm.cpython("3.11"), cores, 1, total_bytes=256 << 10), "elapsed_s"


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print("logging on vs off, median of %d interleaved repeats each, cores %s" % (reps, gm._core.allowed_cores()[:2]))
    for label, sc, key in cases():
        on, off = [], []
        for _ in range(reps):
            on.append(gm.run(sc).summary()[key])
            off.append(gm.run(sc.replace(log=False)).summary()[key])
        m_on, m_off = statistics.median(on), statistics.median(off)
        q = statistics.quantiles(off, n=4)
        print("  %-36s on %12.4f  off %12.4f  diff %+6.2f %%   (off: IQR %.1f %% of median)"
              % (label, m_on, m_off, 100 * (m_on - m_off) / m_off, 100 * (q[2] - q[0]) / m_off))


if __name__ == "__main__":
    main()
