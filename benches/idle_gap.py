"""Round trips after an idle gap: a real interpreter's echo against the model's, with no CPU
thread, for pings 10 ms, 1 ms and 0.2 ms apart, on one core.

    .venv/bin/python benches/idle_gap.py [PYTHON ...]

The real side is the ``io_latency`` probe under each interpreter (an echo thread, a pinger in
a second interpreter process); the model side is ``scenarios.io_latency`` with that
interpreter's profile (echo work and client work per request, ``gilmodel.profiles``) and no CPU
thread. Both make the same system calls; what the model does not have is the interpreter's
own code and data, which a core idle between pings must fetch again. Prints p50 round trips
(medians of 3 runs of 100 pings) and real − model.
"""

import statistics
import sys

import gilmodel as gm
from gilmodel import profiles
from gilmodel.interpreters import detect
from gilmodel.probes.runner import run_probe

GAPS_US = (10_000, 1_000, 200)


def main():
    pythons = sys.argv[1:] or [sys.executable]
    core = gm._core.allowed_cores()[:1]
    print("| interpreter | gap | real p50 µs | model p50 µs | real − model µs |")
    print("|---|---|---|---|---|")
    for py in pythons:
        it = detect(py)
        cal = profiles.calibrate(it.path, quiet=True)
        for gap in GAPS_US:
            real, model = [], []
            for _ in range(3):
                r = run_probe(it, "io_latency", {"cpu_threads": 0, "pings": 100, "gap_us": gap}, core)
                real.append(r["p50_ms"] * 1e3)
                sc = gm.scenarios.io_latency(cal.policy(), core, cpu_threads=0, pings=100, gap_us=gap,
                                             work_ticks=cal.echo_work_ticks, client_ticks=cal.client_work_ticks,
                                             tick_ns=cal.model_tick_ns)
                model.append(gm.run(sc).summary()["io_latency_p50_ms"] * 1e3)
            a, b = statistics.median(real), statistics.median(model)
            print("| %s | %d µs | %.1f | %.1f | %+.1f |" % (it.version, gap, a, b, a - b))


if __name__ == "__main__":
    main()
