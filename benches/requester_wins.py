"""Who takes the GIL at a forced switch when several CPU-bound threads wait (3.x): the thread
that asked for it, or one that has waited longer?

Real side: K threads of a countdown on the allowed cores (2 here), each timing its own running
stretches (a gap of over 0.3 ms in its loop: it lost the GIL), with no probe of any kind. From
the merged stretches over 1 ms, the sequence of holders, and the share of switches whose next
holder is the thread that held just before the current one (A B A). Under the interval GIL that
thread is the requester: it came back from its FORCE_SWITCHING wait first, so its timed wait is
the first to run out with no switch in it (86-96 % of drop requests, observed and modelled,
docs/validation/many-threads.md).

Model side: the same K threads under ``cpython(version)`` with this machine's profile, pinned
one per core (the default) and unpinned; the same A B A share from the event log, and the
share of drop requests the requester won.

Rounds alternate the three sides, 1 s each.

    .venv/bin/python benches/requester_wins.py [ROUNDS] [K] [PYTHON]
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

import gilmodel as gm
from gilmodel import analysis, profiles
from gilmodel.interpreters import detect

REAL = r'''
import sys, threading, time
clock = getattr(time, "perf_counter", time.time)
k, dur = int(sys.argv[1]), float(sys.argv[2])
segs, go = [], threading.Event()
def spin(i):
    go.wait()
    out, start = [], clock()
    last, end = start, start + dur
    while True:
        for _ in range(50):
            pass
        now = clock()
        if now - last > 0.0003:
            out.append((start, last, i))
            start = now
        last = now
        if now > end:
            break
    out.append((start, last, i))
    segs.extend(out)
ts = [threading.Thread(target=spin, args=(i,)) for i in range(k)]
for t in ts:
    t.start()
time.sleep(0.01)
go.set()
for t in ts:
    t.join()
segs.sort()
print(" ".join(str(s[2]) for s in segs if s[1] - s[0] > 0.001))
'''


def aba(seq):
    seq = np.asarray(seq)
    return float(np.mean(seq[2:] == seq[:-2])) if seq.size > 2 else float("nan")


def real_side(py, k, script):
    out = subprocess.run([py, script, str(k), "1.0"], capture_output=True, text=True, check=True).stdout
    return aba([int(x) for x in out.split()]), None


def model_side(cal, k, pin):
    th = [gm.Thread("cpu%d" % i, [gm.loop(gm.cpu(10_000))]) for i in range(k)]
    run = gm.run(gm.Scenario(cal.policy(), th, cores=gm._core.allowed_cores(), duration_s=1.0,
                             tick_ns=cal.model_tick_ns, pin_threads=pin))
    h = analysis.holds(run.events).to_pandas()
    seq = h[h.dur_ns > 1_000_000].sort_values("start_ns").thread.to_numpy()
    ev = run.events.to_pandas()
    ev = ev[ev.event.isin(["drop_request", "acquire"])].sort_values("t_ns", kind="stable")
    won = n = 0
    asker = None
    for th_, e in zip(ev.thread.to_numpy(), ev.event.astype(str).to_numpy()):
        if e == "drop_request":
            asker = th_
        else:
            if asker is not None:
                n += 1
                won += th_ == asker
            asker = None
    return aba(seq), won / n if n else float("nan")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    py = sys.argv[3] if len(sys.argv) > 3 else os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python")
    interp = detect(py)
    cal = profiles.speed_checked(profiles.calibrate(interp.path), quiet=True)
    print("%s %s, k=%d CPU threads on cores %s, profile tick %.1f ns; %d rounds of 1 s"
          % (interp.implementation, interp.version, k, gm._core.allowed_cores(), cal.model_tick_ns, rounds))
    res = {"real": [], "model pinned": [], "model unpinned": []}
    won = {"model pinned": [], "model unpinned": []}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(REAL)
    try:
        for r in range(rounds):
            res["real"].append(real_side(interp.path, k, f.name)[0])
            for side, pin in (("model pinned", True), ("model unpinned", False)):
                a, w = model_side(cal, k, pin)
                res[side].append(a)
                won[side].append(w)
            print("round %d: A B A real %.2f, model pinned %.2f (requester won %.2f), unpinned %.2f (%.2f)"
                  % (r + 1, res["real"][-1], res["model pinned"][-1], won["model pinned"][-1],
                     res["model unpinned"][-1], won["model unpinned"][-1]), flush=True)
    finally:
        os.unlink(f.name)
    for side, v in res.items():
        extra = "; requester won %.2f" % np.median(won[side]) if side in won else ""
        print("%-15s A B A median %.2f (%.2f-%.2f)%s" % (side, np.median(v), min(v), max(v), extra))


if __name__ == "__main__":
    main()
