"""The user's default path against the real interpreters: canned scenarios with ``cpython(v)``
and no explicit ``tick_ns`` (so each takes the version's measured profile), beside the real
CPython's probe of the same workload on the same cores, interleaved.

    .venv/bin/python benches/defaults.py [--repeats 5] [--versions 2.7,3.11] [--scale 0.5] [--out FILE.json]

Metrics (issue "Faithful by default"): the cpu_pair ratio (threaded / sequential), hand-offs
per second of two CPU threads, the echo round trip p50 next to one CPU thread (pings 10 ms
apart) and the convoy factor (1 KiB sends, one CPU thread). Each row: the real and model
medians, model / real, and whether that is within ±25 %. Also how long a calibration and a
cache hit take. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import gilmodel as gm
from gilmodel import _core, profiles
from gilmodel.interpreters import Interpreter
from gilmodel.probes.runner import probe_args, run_probe

METRICS = ("cpu_pair_ratio", "handoffs_per_s", "echo_p50_ms", "convoy_factor")


def real_side(it: Interpreter, cs, scale: float, prof) -> dict:
    out = {}
    r = run_probe(it, "cpu_pair", probe_args("cpu_pair", scale, {"ns_per_iter": prof.ns_per_iter}), cs)
    out["cpu_pair_ratio"] = r["ratio"]
    out["handoffs_per_s"] = run_probe(it, "handoffs", probe_args("handoffs", scale, {}), cs)["switches_per_s"]
    out["echo_p50_ms"] = run_probe(it, "io_latency", probe_args("io_latency", scale, {}), cs)["p50_ms"]
    out["convoy_factor"] = run_probe(it, "convoy", probe_args("convoy", scale, {}), cs)["factor"]
    return out


def model_side(v: str, cs, scale: float, prof) -> dict:
    """What a user writes: canned scenarios, cpython(v), no tick_ns."""
    gil = gm.cpython(v)
    out = {}
    n = probe_args("cpu_pair", scale, {"ns_per_iter": prof.ns_per_iter})["n"]
    ticks = max(1, int(round(n * prof.ticks_per_iter / prof.group)))  # the probe's countdown, in model ticks
    out["cpu_pair_ratio"] = gm.scenarios.cpu_pair_ratio(gil, cs, ticks)["ratio"]
    s = gm.run(gm.scenarios.handoffs(gil, cs, probe_args("handoffs", scale, {})["duration"]).replace(log=False)).summary()
    out["handoffs_per_s"] = max(s["switches"] - 1, 0) / s["elapsed_s"]  # the first take is no hand-off (as the probe counts)
    a = probe_args("io_latency", scale, {})
    out["echo_p50_ms"] = gm.run(gm.scenarios.io_latency(gil, cs, 1, pings=a["pings"], gap_us=a["gap_us"])).summary()["io_latency_p50_ms"]
    c = probe_args("convoy", scale, {})
    out["convoy_factor"] = gm.scenarios.convoy_factor(gil, cs, 1, total_bytes=c["bytes"], chunk_bytes=c["chunk"])["factor"]
    return out


def calibration_times(it: Interpreter) -> dict:
    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get("GILMODEL_CACHE_DIR")
        os.environ["GILMODEL_CACHE_DIR"] = d
        try:
            t = time.perf_counter()
            profiles.calibrate(it.path, quiet=True)
            measure = time.perf_counter() - t
            hits = []
            for _ in range(20):
                t = time.perf_counter()
                profiles.calibrate(it.path, quiet=True)
                hits.append(time.perf_counter() - t)
        finally:
            if old is None:
                del os.environ["GILMODEL_CACHE_DIR"]
            else:
                os.environ["GILMODEL_CACHE_DIR"] = old
    return {"measure_s": measure, "hit_ms_median": statistics.median(hits) * 1e3, "hit_ms_max": max(hits) * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--versions", default="2.7,3.11")
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--out")
    a = ap.parse_args()
    allowed = _core.allowed_cores()
    layouts = [("1 core", allowed[:1])] + ([("2 cores", allowed[:2])] if len(allowed) > 1 else [])
    host = json.loads(_core.host_info())
    print("gilmodel %s, %s, %d cores; %d repeats interleaved, scale %g" % (
        gm.__version__, host.get("cpu_model"), len(allowed), a.repeats, a.scale), flush=True)
    rows, calib = [], {}
    for v in a.versions.split(","):
        prof = profiles.for_version(v)
        if prof.source == "reference":
            print("CPython %s: not on this machine, skipped" % v)
            continue
        it = Interpreter(prof.python, prof.version)
        calib[v] = dict(calibration_times(it), tick_ns=prof.tick_ns, model_tick_ns=prof.model_tick_ns)
        print("CPython %s: %s; a calibration took %.2f s, a cache hit %.2f ms (median of 20, max %.2f)" % (
            v, prof.describe(), calib[v]["measure_s"], calib[v]["hit_ms_median"], calib[v]["hit_ms_max"]), flush=True)
        for label, cs in layouts:
            real, model = {m: [] for m in METRICS}, {m: [] for m in METRICS}
            for rep in range(a.repeats):
                for side, fn, acc in (("real", real_side, real), ("model", model_side, model)):
                    res = fn(it if side == "real" else v, cs, a.scale, prof)
                    for m in METRICS:
                        acc[m].append(res[m])
            for m in METRICS:
                r, md = statistics.median(real[m]), statistics.median(model[m])
                ratio = md / r if r else float("nan")
                rows.append({"version": prof.version, "cores": label, "metric": m, "real": r, "model": md, "model/real": ratio,
                             "within_25pct": 0.75 <= ratio <= 1.25, "real_all": real[m], "model_all": model[m]})
                print("  %-8s %-7s %-15s real %10.4g  model %10.4g  model/real %5.2f %s" % (
                    prof.version, label, m, r, md, ratio, "ok" if rows[-1]["within_25pct"] else "--"), flush=True)
    ok = sum(r["within_25pct"] for r in rows)
    print("%d of %d within ±25 %%" % (ok, len(rows)))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"host": host, "command": " ".join(sys.argv), "repeats": a.repeats, "scale": a.scale,
                       "calibration": calib, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
