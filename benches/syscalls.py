"""P2, the system-call storm, cross-checked: the model's counted primitive calls beside the futex
system calls the kernel saw, and a real CPython 2.7 beside the model.

Each case runs in a child process under ``strace -f -c`` (counts every system call of every
thread; each one stops the thread for the tracer, so the run is slowed and its timing
disturbed) and under ``perf stat -e syscalls:sys_enter_futex,context-switches`` (kernel
tracepoint counters: nothing stops, where perf is installed and allowed). A third child, "startup
only", imports gilmodel and builds the scenarios without running them: the futex calls every
child pays before the experiment (the Python runtime and its imports).

The model's "futex-level" count (``scenarios.syscalls``: sem_wait + cond waits + sem_post +
cond signals + mutex lock/unlock) is of calls that *can* reach the kernel; glibc makes a futex
call only for the ones that find a waiter or a taken lock, so sequentially almost none do and
threaded most wakes do. Compare the strace / perf futex column with the model's blocking waits
and voluntary context switches, not with its call totals.

Run: .venv/bin/python benches/syscalls.py [ticks]     (about 30 s on the 2-core VM)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

PY27 = os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python")

# A real CPython 2.7 cpu_pair: Beazley's countdown, twice in a row or in two threads at once.
COUNTDOWN = r"""
import sys, threading, time
def count(n):
    while n > 0:
        n -= 1
n, mode = int(sys.argv[1]), sys.argv[2]
t0 = time.time()
if mode == "sequential":
    count(n); count(n)
elif mode == "threaded":
    ts = [threading.Thread(target=count, args=(n,)) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
sys.stderr.write("elapsed %.4f\n" % (time.time() - t0))
"""


def child(version: str, cores: str, ticks: int, mode: str, out: str) -> None:
    """Run one side of scenarios.syscalls (or nothing, mode "startup") and write its counts."""
    import gilmodel as gm
    from gilmodel.run import run
    from gilmodel.scenarios import _syscall_side, cpu_pair

    seq, thr = cpu_pair(gm.cpython(version), [int(c) for c in cores.split(",")], ticks)
    side = None if mode == "startup" else _syscall_side(run(seq if mode == "sequential" else thr))
    with open(out, "w") as f:
        json.dump(side, f)


def _strace_counts(path: str):
    """(futex calls, all calls) from an ``strace -c`` summary."""
    futex = total = 0
    for line in open(path):
        p = line.split()
        if len(p) >= 5 and p[-1] == "futex":
            futex = int(p[3])
        if len(p) >= 5 and p[-1] == "total":
            total = int(p[3])
    return futex, total


def _perf_counts(path: str):
    got = {}
    for line in open(path):
        p = line.strip().split(",")
        if len(p) > 2 and p[0].strip().isdigit():
            got[p[2]] = int(p[0])
    return got.get("syscalls:sys_enter_futex"), got.get("context-switches")


def _perf_ok() -> bool:
    if not shutil.which("perf"):
        return False
    with tempfile.NamedTemporaryFile("r", suffix=".perf") as f:
        p = subprocess.run(["perf", "stat", "-x,", "-o", f.name, "-e", "syscalls:sys_enter_futex", "--", "true"],
                           capture_output=True, text=True)
        return p.returncode == 0 and _perf_counts(f.name)[0] is not None


def measure(argv, tmp: str, perf: bool, model_out: str = None):
    """Run ``argv`` under strace and under perf; returns a row of counts."""
    row = {}
    so = os.path.join(tmp, "strace.txt")
    t = time.perf_counter()
    subprocess.run(["strace", "-f", "-c", "-o", so] + argv, check=True, capture_output=True)
    row["strace_wall_s"] = time.perf_counter() - t
    row["strace_futex"], row["strace_syscalls"] = _strace_counts(so)
    if model_out:
        row["model_under_strace"] = json.load(open(model_out))
    if perf:
        po = os.path.join(tmp, "perf.txt")
        t = time.perf_counter()
        p = subprocess.run(["perf", "stat", "-x,", "-o", po, "-e", "syscalls:sys_enter_futex,context-switches", "--"] + argv,
                           check=True, capture_output=True, text=True)
        row["perf_wall_s"] = time.perf_counter() - t
        row["perf_futex"], row["perf_ctx"] = _perf_counts(po)
        if model_out:
            row["model"] = json.load(open(model_out))
            row["run_s"] = None if row["model"] is None else row["model"]["elapsed_s"]
        else:
            el = [ln.split()[1] for ln in p.stderr.splitlines() if ln.startswith("elapsed ")]
            row["run_s"] = float(el[0]) if el else None
    return row


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    import gilmodel as gm

    if not shutil.which("strace"):
        print("strace is not installed: nothing to cross-check")
        return
    host = json.loads(gm._core.host_info())
    allowed = gm._core.allowed_cores()
    layouts = [("2 cores", allowed[:2])] if len(allowed) > 1 else []
    layouts.append(("1 core", allowed[:1]))
    perf = _perf_ok()
    strace_v = subprocess.run(["strace", "-V"], capture_output=True, text=True).stdout.split("\n")[0]
    print("Command: %s benches/syscalls.py %d" % (os.path.basename(sys.executable), ticks))
    print("Machine: %s, %d cores online (%d allowed), %s, glibc %s; Python %s; %s; perf %s" % (
        host["cpu_model"], host["cores_online"], host["cores_allowed"], host["kernel"], host["glibc"],
        sys.version.split()[0], strace_v, "yes" if perf else "not usable"))
    print()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mo = os.path.join(tmp, "model.json")
        env_py = [sys.executable, os.path.abspath(__file__), "--child"]
        for version in ("2.7", "2.6-osx"):
            for label, cs in layouts:
                c = ",".join(map(str, cs))
                for mode in ("startup", "sequential", "threaded"):
                    r = measure(env_py + [version, c, str(ticks), mode, mo], tmp, perf, None if mode == "startup" else mo)
                    r.update(case="model %s %s" % (version, label), mode=mode)
                    rows.append(r)
                    print("  %-26s %-10s strace futex %8d" % (r["case"], mode, r["strace_futex"]), file=sys.stderr, flush=True)
        if os.path.exists(PY27):
            # About as long as the model's tasks on the development machine (2.7.18 counts down
            # 2 M in about 45 ms; the model's 2 M ticks take 100 ms): a task of 2 x ticks.
            n = 2 * ticks
            script = os.path.join(tmp, "countdown.py")
            with open(script, "w") as f:
                f.write(COUNTDOWN)
            for label, cs in layouts:
                for mode in ("startup", "sequential", "threaded"):
                    argv = ["taskset", "-c", ",".join(map(str, cs)), PY27, script, str(n), mode]
                    r = measure(argv, tmp, perf)
                    r.update(case="real 2.7.18 %s" % label, mode=mode)
                    rows.append(r)
                    print("  %-26s %-10s strace futex %8d" % (r["case"], mode, r["strace_futex"]), file=sys.stderr, flush=True)
        else:
            print("(no %s: the real-interpreter rows are left out)" % PY27)
    _table(rows, perf)
    with open(os.path.join(tempfile.gettempdir(), "gilmodel-syscalls-bench.json"), "w") as f:
        json.dump(rows, f, indent=1)


def _table(rows, perf: bool) -> None:
    hdr = ("case", "mode", "strace futex", "strace all", "model vol ctx*", "model blocking*", "model futex-level*")
    if perf:
        hdr += ("run s", "perf futex", "perf ctx", "model vol ctx", "model blocking", "model futex-level")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        ms = r.get("model_under_strace")
        cells = [r["case"], r["mode"], "%d" % r["strace_futex"], "%d" % r["strace_syscalls"],
                 "-" if ms is None else "%d" % ms["voluntary_ctx_switches"],
                 "-" if ms is None else "%d" % ms["futex_level"]["blocking_waits"],
                 "-" if ms is None else "%d" % ms["futex_level"]["total"]]
        if perf:
            mp = r.get("model")
            cells += ["-" if r["run_s"] is None else "%.3f" % r["run_s"], "%d" % r["perf_futex"], "%d" % r["perf_ctx"],
                      "-" if mp is None else "%d" % mp["voluntary_ctx_switches"],
                      "-" if mp is None else "%d" % mp["futex_level"]["blocking_waits"],
                      "-" if mp is None else "%d" % mp["futex_level"]["total"]]
        print("| " + " | ".join(cells) + " |")
    print()
    print("* from the model run traced by strace (the others from the run counted by perf; 'run s' is that run's")
    print("  experiment time: the model's elapsed_s, the countdown's own clock).")
    print("strace and perf count the whole child process: 'startup' is what importing and setting up costs before")
    print("the experiment. 'model futex-level' counts calls that can reach the kernel (scenarios.FUTEX_LEVEL);")
    print("glibc's fast paths keep uncontended ones in user space, and one blocking sem_wait may make several futex calls.")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        main()
