"""Round trips after an idle gap: a real interpreter's echo against the model's, with no CPU
thread (or ``--cpu-threads K``), for pings 10 ms, 1 ms and 0.2 ms apart, on one core.

    .venv/bin/python benches/idle_gap.py [--cpu-threads K] [PYTHON ...]

The real side is the ``io_latency`` probe under each interpreter (an echo thread, a pinger in
a second interpreter process); the model side is ``scenarios.io_latency`` with that
interpreter's profile (echo work and client work per request, ``gilmodel.profiles``), run
without and with the profile's ``return_cost`` (what the interpreter pays beyond the model
coming back after time away, which the calibration measures). Prints p50 round trips (medians
of 3 runs of 100 pings) and real − model.
"""

import argparse
import statistics
import sys

import gilmodel as gm
from gilmodel import profiles
from gilmodel.interpreters import detect
from gilmodel.probes.runner import run_probe

GAPS_US = (10_000, 1_000, 200)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-threads", type=int, default=0)
    ap.add_argument("pythons", nargs="*")
    a = ap.parse_args()
    core = gm._core.allowed_cores()[:1]
    k = a.cpu_threads
    print("| interpreter | k | gap | real p50 µs | model p50 µs | real − model µs | model with return_cost | real − that |")
    print("|---|---|---|---|---|---|---|---|")
    for py in a.pythons or [sys.executable]:
        it = detect(py)
        cal = profiles.calibrate(it.path, quiet=True)
        rc = tuple(map(tuple, cal.return_cost or ()))
        for gap in GAPS_US:
            real, model, with_rc = [], [], []
            for _ in range(3):
                r = run_probe(it, "io_latency", {"cpu_threads": k, "pings": 100, "gap_us": gap}, core)
                real.append(r["p50_ms"] * 1e3)
                sc = gm.scenarios.io_latency(cal.policy(), core, cpu_threads=k, pings=100, gap_us=gap,
                                             work_ticks=cal.echo_work_ticks, client_ticks=cal.client_work_ticks,
                                             tick_ns=cal.model_tick_ns)
                model.append(gm.run(sc).summary()["io_latency_p50_ms"] * 1e3)
                with_rc.append(gm.run(sc.replace(return_cost=rc)).summary()["io_latency_p50_ms"] * 1e3)
            a_, b, c = statistics.median(real), statistics.median(model), statistics.median(with_rc)
            print("| %s | %d | %d µs | %.1f | %.1f | %+.1f | %.1f | %+.1f |" % (it.version, k, gap, a_, b, a_ - b, c, a_ - c))


if __name__ == "__main__":
    main()
