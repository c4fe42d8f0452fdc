"""Running the probes under a real interpreter, pinned to a set of cores, and the workload
sizes both sides share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from typing import Any, Dict, List, Sequence

from .. import _procs
from . import path as probe_path
from ..interpreters import Interpreter

__all__ = ["ProbeError", "run_probe", "probe_args", "applies", "SWEEP_MS", "SWEEP_KS", "POOL_KS"]

#: Switch intervals of ``switch_sweep`` (ms).
SWEEP_MS = (0.1, 0.5, 2.0, 5.0, 20.0, 50.0)
#: Numbers of CPU-bound threads of ``threads_sweep``.
SWEEP_KS = (0, 1, 2, 4, 8)
#: Numbers of workers of ``thread_pool``.
POOL_KS = (1, 2, 4)


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
    if probe == "three_threads":
        return {"duration": max(0.1, 0.5 * s)}
    if probe == "threads_sweep":
        # The convoy's stream must outlast the socket buffer's room (a stream that fits is
        # sent before a CPU thread takes the GIL back: a factor of ~1 whatever the GIL).
        return {"ks": ",".join(map(str, SWEEP_KS)), "duration": max(0.05, 0.3 * s), "pings": max(5, int(20 * s)),
                "gap_us": 10_000, "bytes": max(64 << 10, int((1 << 19) * s)) // 1024 * 1024}
    if probe == "native_work":
        # 0.1 s a thread alone at scale 0.5 (about 180 chunks under 3.11): 20 chunks were too
        # short a round against the threads' start (native_work.py's docstring).
        return {"threads": 2, "seconds": 0.2 * s, "chunk_kib": 1024}
    if probe == "long_call":
        return {"n": max(20_000, int(200_000 * s)), "pings": max(5, int(30 * s)), "gap_us": 40_000}
    if probe == "pipeline":
        # At least 60 items: under the priority GIL (every thread starts high) the first put
        # waits out one interval while the producer queues ~14 more (5 ms of 0.36 ms items under
        # 3.11); with 20 items that start-up was the p50 (docs/validation/waiting-threads.md).
        return {"items": max(60, int(400 * s)), "n": 20_000}
    if probe == "thread_pool":
        return {"ks": ",".join(map(str, POOL_KS)), "tasks": max(20, int(400 * s)), "n": 20_000}
    raise ValueError("unknown probe %r" % probe)


def _child_setup(cores: Sequence[int]):
    cs = set(cores)

    def setup() -> None:
        # Its own process group, which its peer processes join: the whole probe can be killed
        # at once, and a terminal's Ctrl-C reaches validate alone, which then does so.
        os.setpgid(0, 0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.sched_setaffinity(0, cs)

    return setup


def _kill_group(p: subprocess.Popen, wait_s: float = 1.0) -> None:
    """SIGKILL the probe's process group (the interpreter and its peers), reap the probe, and
    wait (at most ``wait_s``) until no live process of the group is left. The peers, orphaned,
    are reaped by init (a zombie is not counted: some container inits never reap them)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)  # the probe is unreaped here, so its pgid is still its own
    except (ProcessLookupError, PermissionError):
        pass
    p.wait()
    end = time.monotonic() + wait_s
    while any(q.pgrp == p.pid for q in _procs.live()) and time.monotonic() < end:
        time.sleep(0.005)


def run_probe(interp: Interpreter, probe: str, args: Dict[str, Any], cores: Sequence[int], timeout: float = 600.0) -> Dict[str, Any]:
    """Run ``probe`` under ``interp`` with its affinity set to ``cores`` (inherited by the
    probe's peer processes) and return the JSON line it printed.

    The probe runs in its own process group; on a timeout, a KeyboardInterrupt or any other
    exception the group is killed (probe and peers) before this returns or raises, so an
    interrupted ``validate`` leaves no process behind."""
    cmd: List[str] = [interp.path, "-E", "-s", "-B", probe_path(probe)]
    for k, v in args.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    # A Ctrl-C between fork and the Popen object's return would leave a probe no one kills:
    # hold SIGINT until ``p`` exists (the child unblocks it before it execs); a Ctrl-C held
    # meanwhile is raised by the unblocking, inside the try.
    main = threading.current_thread() is threading.main_thread()
    p = None
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if main else None
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=_child_setup(cores))
        finally:
            if main:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        # The probe is in its own group and did not get the Ctrl-C: no grace period for it
        # (CPython's communicate() waits 0.25 s for a child it assumes was interrupted too).
        p._sigint_wait_secs = 0
        out, err = p.communicate(timeout=timeout)
    except BaseException as e:
        if p is not None:
            _kill_group(p)
            p.stdout.close()
            p.stderr.close()
        if isinstance(e, subprocess.TimeoutExpired):
            raise ProbeError("%s under %s timed out after %.0f s" % (probe, interp.label, timeout)) from None
        raise
    lines = out.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise ProbeError("%s under %s failed (exit %d): %s" % (probe, interp.label, p.returncode, err.strip()[-500:]))
    return json.loads(lines[-1])
