"""Live processes and CPU time, read from /proc (Linux): what the probe runner kills and waits
for, what the tests and benchmarks check is gone after a Ctrl-C, and the contention (other
processes' CPU time) during a run or a test."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence


class Proc(NamedTuple):
    pid: int
    pgrp: int
    session: int
    cmdline: str


def live() -> List[Proc]:
    """Every process that is not a zombie (or dead): a zombie runs nothing, and some container
    inits never reap orphans."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it exited meanwhile
            continue
        fields = st[st.rindex(")") + 2:].split()  # state, ppid, pgrp, session, ...
        if fields[0] not in ("Z", "X"):
            out.append(Proc(int(d), int(fields[2]), int(fields[3]), cmd))
    return out


# ---------------------------------------------------------------------------------------------
# Contention: CPU time that other processes took while something of ours ran.

_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuSample(NamedTuple):
    """One reading of ``/proc/stat`` and of this process's CPU time (clock ticks)."""

    t: float
    busy: Dict[int, int]  # per CPU: user + nice + system + irq + softirq + steal
    steal: Dict[int, int]  # per CPU: time the hypervisor gave to someone else
    own: int  # this process (all threads, reaped children) and, with tree=True, its live descendants


def _stat_fields(pid: str) -> List[str]:
    with open("/proc/%s/stat" % pid) as f:
        st = f.read()
    return st[st.rindex(")") + 2:].split()  # fields from 3 (state) on


def _own_ticks(tree: bool) -> int:
    f = _stat_fields("self")
    total = sum(int(x) for x in f[11:15])  # utime, stime, cutime, cstime
    if tree:
        me = os.getpid()
        parent: Dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    parent[int(d)] = int(_stat_fields(d)[1])
                except (OSError, IndexError, ValueError):
                    continue
        mine = {me}
        changed = True
        while changed:
            changed = False
            for pid, pp in parent.items():
                if pp in mine and pid not in mine:
                    mine.add(pid)
                    changed = True
        for pid in mine - {me}:
            try:
                total += sum(int(x) for x in _stat_fields(str(pid))[11:15])
            except (OSError, IndexError, ValueError):
                continue
    return total


def cpu_sample(tree: bool = False) -> CpuSample:
    """Read the per-CPU busy time and this process's own CPU time (with ``tree``, also its
    live descendants': probe interpreters, peers, workers)."""
    busy, steal = {}, {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3:4].isdigit():
                    name, *v = line.split()
                    x = [int(a) for a in v[:8]] + [0] * (8 - len(v[:8]))
                    busy[int(name[3:])] = x[0] + x[1] + x[2] + x[5] + x[6] + x[7]
                    steal[int(name[3:])] = x[7]
    except OSError:
        pass
    return CpuSample(time.monotonic(), busy, steal, _own_ticks(tree))


def contention(a: CpuSample, b: CpuSample, cores: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """What others took between samples ``a`` and ``b``, on ``cores`` (default all): CPU
    time of other processes (busy time less this process's own), and the hypervisor's steal,
    as average busy cores (1.0 = one core fully taken). A reading with 10 ms clock ticks."""
    wall = max(b.t - a.t, 1e-9)
    cs = list(b.busy) if cores is None else [c for c in cores if c in b.busy]
    busy = sum(b.busy[c] - a.busy.get(c, 0) for c in cs) / _TCK
    steal = sum(b.steal[c] - a.steal.get(c, 0) for c in cs) / _TCK
    own = (b.own - a.own) / _TCK
    return {"wall_s": round(wall, 4), "cores": cs, "foreign_cores": round(max(0.0, busy - own) / wall, 3),
            "steal_cores": round(steal / wall, 3)}
