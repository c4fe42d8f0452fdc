"""Running the probes under a real interpreter, pinned to a set of cores, and the workload
sizes both sides share."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, List, Sequence

from .. import probes
from .interpreters import Interpreter

__all__ = ["ProbeError", "run_probe", "probe_args", "applies", "SWEEP_MS"]

#: Switch intervals of ``switch_sweep`` (ms).
SWEEP_MS = (0.1, 0.5, 2.0, 5.0, 20.0, 50.0)


class ProbeError(RuntimeError):
    """A probe failed under a real interpreter."""


def applies(probe: str, interp: Interpreter) -> bool:
    """``switch_sweep`` needs ``sys.setswitchinterval`` (CPython 3.2+)."""
    if probe == "switch_sweep":
        major, minor = (int(x) for x in interp.version.split(".")[:2])
        return (major, minor) >= (3, 2)
    return True


def probe_args(probe: str, scale: float, calib: Dict[str, Any]) -> Dict[str, Any]:
    """The workload sizes of ``probe`` at ``scale`` (the reference run uses 0.5),
    as the probe's command-line options. ``cpu_pair`` is sized from the calibration so each
    task takes about 0.2 s on every interpreter."""
    s = float(scale)
    if probe == "calibrate":
        return {"n": max(20_000, int(1_000_000 * min(s, 1.0))), "rounds": 5}
    if probe == "cpu_pair":
        per = calib.get("ns_per_iter", 25.0) * 1e-9
        return {"n": max(10_000, int(0.2 * s / per))}
    if probe == "handoffs":
        return {"duration": max(0.05, 0.5 * s)}
    if probe == "io_latency":
        return {"cpu_threads": 1, "pings": max(5, int(40 * s)), "gap_us": 10_000}
    if probe == "convoy":
        return {"bytes": max(16 << 10, int((1 << 20) * s)) // 1024 * 1024, "chunk": 1024, "cpu_threads": 1}
    if probe == "bandwidth":
        return {"cpu_threads": 1, "duration": max(0.05, 0.25 * s), "nbytes": 1024}
    if probe == "switch_sweep":
        return {"intervals_ms": ",".join("%g" % x for x in SWEEP_MS), "duration": max(0.03, 0.2 * s), "pings": max(3, int(8 * s))}
    raise ValueError("unknown probe %r" % probe)


def _pin(cores: Sequence[int]):
    cs = set(cores)
    return lambda: os.sched_setaffinity(0, cs)


def run_probe(interp: Interpreter, probe: str, args: Dict[str, Any], cores: Sequence[int], timeout: float = 600.0) -> Dict[str, Any]:
    """Run ``probe`` under ``interp`` with its affinity set to ``cores`` (inherited by the
    probe's peer processes) and return the JSON line it printed."""
    cmd: List[str] = [interp.path, "-E", "-s", "-B", probes.path(probe)]
    for k, v in args.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=_pin(cores))
    except subprocess.TimeoutExpired:
        raise ProbeError("%s under %s timed out after %.0f s" % (probe, interp.label, timeout))
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise ProbeError("%s under %s failed (exit %d): %s" % (probe, interp.label, out.returncode, out.stderr.strip()[-500:]))
    return json.loads(lines[-1])
