"""Parallel efficiency of a sweep: N runs of fixed length L on C cores with k cores per run
should take ceil(N / (C // k)) run-lengths.

    .venv/bin/python benches/sweep.py [local|ray|ray2] [N] [L_seconds] [k]

Each run is the ``handoffs`` experiment (two CPU threads on one core) for exactly ``L`` seconds.
Prints the wall time of ``gilmodel.sweep`` (workers' start-up included; for Ray, ``ray.init``
excluded and a second, warm sweep also timed), the efficiency ideal / wall, the overhead per
run-length wave and per run (slot time lost, per run), and from the rows: time per run beyond L
inside the worker, and the gap between one run's end and the next start on the same cores.

``ray2``: a real Ray cluster of two nodes on this machine (``tests/ray_cluster.py``: two ``ray
start`` processes bound to 127.0.0.1), each owning half the allowed cores; the cluster's start
and ``ray.init`` are not counted; the rows say which node ran each run.
"""

import math
import os
import sys
import tempfile
import time

import numpy as np

import gilmodel as gm


def gaps(t):
    rows = sorted(t.to_pylist(), key=lambda r: r["start"])
    by = {}
    for r in rows:
        by.setdefault(tuple(r["worker_cores"]), []).append(r)
    g = [(b["start"] - a["end"]).total_seconds() for rs in by.values() for a, b in zip(rs, rs[1:])]
    return np.array(g) if g else np.zeros(1)


def one(backend, n, length, k, out, label, slots=None):
    base = {"experiment": "handoffs", "gil": {"version": "3.11"}, "scenario": {"duration_s": length}, "cores": k}
    c = len(gm._core.allowed_cores())
    slots = slots or c // k
    import datetime as dt

    t0, w0 = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
    t = gm.sweep(base, grid={"gil.interval_us": list(range(1000, 1000 + n))}, cores_per_run=k, out=out, backend=backend,
                 resume=False, progress=False)
    wall = time.perf_counter() - t0
    w1 = dt.datetime.now(dt.timezone.utc)
    first, last = min(t.column("start").to_pylist()), max(t.column("end").to_pylist())
    startup, tail, busy = (first - w0).total_seconds(), (w1 - last).total_seconds(), (last - first).total_seconds()
    assert t.num_rows == n and set(t.column("status").to_pylist()) == {"ok"}, t.column("error").to_pylist()
    waves = math.ceil(n / slots)
    ideal = waves * length
    inrun = np.array(t.column("wall_s").to_pylist()) - length
    g = gaps(t)
    print("%-11s N=%d L=%.2fs C=%d k=%d: wall %.3f s, ideal %.3f s (%d waves) -> efficiency %.1f %%, overhead %.1f ms per wave, "
          "%.1f ms per run; in-worker beyond L: median %.1f ms; gap between runs on a slot: median %.1f ms, max %.1f ms"
          % (label, n, length, c, k, wall, ideal, waves, 100 * ideal / wall, 1000 * (wall - ideal) / waves,
             1000 * (wall * slots - n * length) / n, 1000 * np.median(inrun), 1000 * np.median(g), 1000 * g.max()))
    if "node" in t.column_names and t.column("node").null_count < t.num_rows:
        nodes = t.column("node").to_pylist()
        print("%-11s   runs per node: %s" % ("", ", ".join("%s… %d" % (nd[:8], nodes.count(nd)) for nd in sorted(set(nodes)))))
    print("%-11s   start-up (call -> first run) %.3f s, tail (last run -> return) %.3f s; first start -> last end %.3f s: "
          "steady-state efficiency %.1f %%, %.1f ms per wave" % ("", startup, tail, busy, 100 * ideal / busy, 1000 * (busy - ideal) / waves))


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "local"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    length = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    k = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    with tempfile.TemporaryDirectory() as d:
        if backend == "ray":
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=len(gm._core.allowed_cores()), include_dashboard=False, log_to_driver=False)
            print("ray.init: %.2f s (not counted)" % (time.perf_counter() - t0))
            one("ray", n, length, k, os.path.join(d, "a"), "ray (cold)")
            one("ray", n, length, k, os.path.join(d, "b"), "ray (warm)")
            ray.shutdown()
        elif backend == "ray2":
            import ray

            sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
            from ray_cluster import LocalCluster

            cores = gm._core.allowed_cores()
            half = len(cores) // 2
            if half < k:
                sys.exit("ray2: two nodes of k=%d cores need %d allowed cores; this process has %d" % (k, 2 * k, len(cores)))
            t0 = time.perf_counter()
            with LocalCluster([cores[:half], cores[half:2 * half]]) as c, c.driver():
                try:
                    c.connect()
                    print("two-node cluster (cores %s | %s): start and ray.init %.2f s (not counted)"
                          % (cores[:half], cores[half:2 * half], time.perf_counter() - t0))
                    one("ray", n, length, k, os.path.join(d, "a"), "ray2 (first)", slots=2 * (half // k))
                    one("ray", n, length, k, os.path.join(d, "b"), "ray2 (second)", slots=2 * (half // k))
                finally:
                    ray.shutdown()
        else:
            one("local", n, length, k, os.path.join(d, "a"), "local")


if __name__ == "__main__":
    main()
