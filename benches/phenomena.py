"""The phenomena of docs/design.md §1 in the model, with their spread over repeats: the
figures behind the README's "How close is the model to real CPython?" table.

Run: .venv/bin/python benches/phenomena.py [repeats]
"""

import dataclasses
import statistics
import sys

import gilmodel as gm


def spread(f, n):
    v = [f() for _ in range(n)]
    return "min %9.3f  median %9.3f  max %9.3f" % (min(v), statistics.median(v), max(v))


def os_placed_factor(gil, cores, total_bytes):
    """The convoy factor with the drain left to the OS within ``cores`` (``scenarios.convoy``
    pins it to the last core by default)."""
    def run(k):
        sc = gm.scenarios.convoy(gil, cores, k, total_bytes=total_bytes)
        io = sc.threads[0]
        return gm.run(sc.replace(threads=(dataclasses.replace(io, peer=gm.drain(None)),) + tuple(sc.threads[1:])))
    return gm.scenarios.convoy_times(run(0), run(1))["factor"]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    cores = gm._core.allowed_cores()
    two, one = cores[:2], cores[:1]
    print("gilmodel %s, %d repeats, cores %s; ticks from the profiles: %s" % (gm.__version__, n, two, "; ".join(
        gm.profiles.for_version(v).describe() for v in ("2.7", "3.11"))))
    rows = []
    for v in ("2.7", "2.6-osx", "3.11"):
        for label, cs in (("2 cores", two), ("1 core", one)):
            rows.append(("%s cpu_pair threaded/sequential, %s" % (v, label),
                         lambda v=v, cs=cs: gm.scenarios.cpu_pair_ratio(gm.cpython(v), cs, 1_000_000)["ratio"]))
    rows.append(("3.11 switches/s, two CPU threads, 2 cores",
                 lambda: gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), two, 0.5)).summary()["switches_per_s"]))
    rows.append(("3.11 switches/s, two CPU threads, 1 core",
                 lambda: gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), one, 0.5)).summary()["switches_per_s"]))
    rows.append(("2.7 futile wake-ups, cpu_pair threaded, 2 cores",
                 lambda: gm.scenarios.cpu_pair_ratio(gm.cpython("2.7"), two, 1_000_000)["threaded"]["futile_wakeups"]))
    for v in ("2.7", "3.11"):
        for label, cs in (("2 cores", two), ("1 core", one)):
            rows.append(("%s convoy factor 1 MiB, %s, drain on the CPU thread's core" % (v, label),
                         lambda v=v, cs=cs: gm.scenarios.convoy_factor(gm.cpython(v), cs, 1, total_bytes=1 << 20,
                                                                      peer_core=cs[-1])["factor"]))
            rows.append(("%s convoy factor 1 MiB, %s, drain placed by the OS" % (v, label),
                         lambda v=v, cs=cs: os_placed_factor(gm.cpython(v), cs, 1 << 20)))
    for label, f in rows:
        print("  %-66s %s" % (label, spread(f, n)), flush=True)


if __name__ == "__main__":
    main()
