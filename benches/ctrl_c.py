"""Ctrl-C while the main thread joins CPU-bound workers (P3), the real interpreter beside the
model: how long after the signal does the Python-level handler run?

Real side: the main thread starts WORKERS countdown threads and joins them; ``setitimer``
sends it SIGALRM 20 ms in; the handler notes the time. With ``pin`` the main thread and the
workers are pinned as :func:`gilmodel.scenarios.ctrl_c` pins them (main and the second worker on
core 0, the first on core 1).

Model side: ``scenarios.ctrl_c`` with the same workers under ``cpython(version)`` and this
machine's profile, the countdown sized to the real one's length.

    .venv/bin/python benches/ctrl_c.py [ROUNDS] [WORKERS] [PYTHON]
"""

import os
import subprocess
import sys
import tempfile

import gilmodel as gm
from gilmodel import scenarios
from gilmodel.interpreters import detect

REAL = r'''
import os, signal, sys, threading, time
clock = getattr(time, "perf_counter", time.time)
workers, n, pin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "pin"
if hasattr(sys, "setswitchinterval"):
    sys.setswitchinterval(0.005)
handled, done = [], []
signal.signal(signal.SIGALRM, lambda s, f: handled.append(clock()))
def work(core):
    if pin:
        os.sched_setaffinity(0, {core})
    x = 0
    for i in range(n):
        x += i
    done.append(clock())
if pin:
    os.sched_setaffinity(0, {0})
ws = [threading.Thread(target=work, args=((1 + i) % 2,)) for i in range(workers)]
for w in ws:
    w.start()
t0 = clock()
signal.setitimer(signal.ITIMER_REAL, 0.02)
for w in ws:
    w.join()
print("%f %f" % ((handled[0] - t0 - 0.02) * 1e3, (min(done) - t0 - 0.02) * 1e3))
'''


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    python = sys.argv[3] if len(sys.argv) > 3 else sys.executable
    interp = detect(python)
    n = 3_000_000
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(REAL)
    rows = {"real pinned": [], "real": [], "model": []}
    try:
        for _ in range(rounds):
            for side, pin in (("real pinned", "pin"), ("real", "no")):
                out = subprocess.run([python, f.name, str(workers), str(n), pin], capture_output=True, text=True, check=True)
                rows[side].append(tuple(float(x) for x in out.stdout.split()))
            r = scenarios.ctrl_c(gm.cpython(interp.version), cores=[0, 1], workers=workers, work_ticks=n, signal_at_us=20_000)
            rows["model"].append((r["handler_latency_ms"], r["first_worker_done_ms"] - r["signal_sent_ms"]))
    finally:
        os.unlink(f.name)
    print("CPython %s, %d worker(s), %d rounds: handler latency ms (the first worker's remaining ms)" % (interp.version, workers, rounds))
    for side, got in rows.items():
        lat = sorted(a for a, _ in got)
        print("  %-12s %s   (%s)" % (side, " ".join("%.1f" % a for a in lat), " ".join("%.0f" % b for _, b in got)))


if __name__ == "__main__":
    main()
