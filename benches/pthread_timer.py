"""The microsecond windows that decide who gets the GIL at a forced switch (3.x), timed in the
real interpreter and in the model with the same instrument: an LD_PRELOAD timer around
``pthread_cond_timedwait``, ``pthread_cond_signal`` and ``pthread_mutex_lock``/``unlock``
(benches/pthread_timer.c, built here with ``cc``).

Workload: K CPU-bound threads for 2 s on the allowed cores (the real side: the countdown of
benches/requester_wins.py; the model: the same threads under ``cpython(version)`` with this
machine's profile, pinned). For each forced switch (a signal of the GIL's condition variable
within 50 µs of another thread's timed-out wait, the requester's):

- the requester's time holding the GIL's mutex, from its timed wait's return to its next wait;
- from that return to the holder's ``pthread_mutex_lock`` in ``drop_gil``, split by whether the
  holder ran on the requester's CPU;
- whether the requester is the next thread to return woken from the condition variable.

The timer costs both sides the same few tens of ns a call, but it moves the race: the real
interpreter's requester wins fewer switches with it than without (compare
benches/requester_wins.py).

    .venv/bin/python benches/pthread_timer.py [ROUNDS] [K] [PYTHON] [nolog]

``nolog``: the model runs without its event log (``Scenario(log=False)``).
"""

import collections
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from requester_wins import REAL  # noqa: E402

TW_ENTER, TW_TIMEOUT, TW_WOKEN, SIGNAL, LOCK_ENTER = 1, 2, 3, 4, 5

MODEL = r'''
import sys, gilmodel as gm
from gilmodel import profiles
cal = profiles.speed_checked(profiles.calibrate(sys.argv[1]), quiet=True)
th = [gm.Thread("cpu%d" % i, [gm.loop(gm.cpu(10_000))]) for i in range(int(sys.argv[2]))]
gm.run(gm.Scenario(cal.policy(), th, cores=gm._core.allowed_cores(), duration_s=2.0, tick_ns=cal.model_tick_ns,
                   log=sys.argv[3] != "nolog"))
'''


def windows(path):
    """The figures above from one timer file."""
    a = np.loadtxt(path, dtype=object)
    t = a[:, 0].astype(np.int64)
    tid, kind, cpu, obj = a[:, 1].astype(int), a[:, 2].astype(int), a[:, 3].astype(int), a[:, 4]
    order = np.argsort(t, kind="stable")
    t, tid, kind, cpu, obj = t[order], tid[order], kind[order], cpu[order], obj[order]
    cond = collections.Counter(obj[kind == TW_TIMEOUT]).most_common(1)[0][0]
    sig = np.flatnonzero((kind == SIGNAL) & (obj == cond))
    # the GIL's mutex: the one its signallers last locked
    locks = collections.Counter()
    for i in sig[:200]:
        j = i - 1
        while j >= 0 and not (kind[j] == LOCK_ENTER and tid[j] == tid[i]):
            j -= 1
        locks[obj[j]] += 1
    mutex = locks.most_common(1)[0][0]
    held, same, other, won = [], [], [], []
    last = {}
    for i in range(t.size):
        if obj[i] == cond and kind[i] == TW_TIMEOUT:
            last[tid[i]] = i
        elif obj[i] == cond and kind[i] == TW_ENTER and tid[i] in last:
            held.append(t[i] - t[last.pop(tid[i])])
    for i in sig:
        j = i - 1
        while j >= 0 and t[i] - t[j] < 50_000 and not (kind[j] == TW_TIMEOUT and obj[j] == cond and tid[j] != tid[i]):
            j -= 1
        if j < 0 or t[i] - t[j] >= 50_000:
            continue
        b = i - 1
        while b > j and not (kind[b] == LOCK_ENTER and obj[b] == mutex and tid[b] == tid[i]):
            b -= 1
        if b > j:
            (same if cpu[b] == cpu[j] else other).append(t[b] - t[j])
        w = np.flatnonzero((kind[i + 1:] == TW_WOKEN) & (obj[i + 1:] == cond))
        if w.size:
            won.append(tid[i + 1 + w[0]] == tid[j])
    us = lambda x: np.median(x) / 1e3 if len(x) else float("nan")  # noqa: E731
    return us(held), us(other), us(same), float(np.mean(won)) if won else float("nan"), len(won)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    k = sys.argv[2] if len(sys.argv) > 2 else "4"
    py = sys.argv[3] if len(sys.argv) > 3 else os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python")
    log = sys.argv[4] if len(sys.argv) > 4 else "log"
    here = os.path.dirname(os.path.abspath(__file__))
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory() as d:
        so = os.path.join(d, "pthread_timer.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(here, "pthread_timer.c"), "-ldl"], check=True)
        real, model = os.path.join(d, "real.py"), os.path.join(d, "model.py")
        open(real, "w").write(REAL)
        open(model, "w").write(MODEL)
        res = {"real": [], "model": []}
        for r in range(rounds):
            for side, cmd in (("real", ["taskset", "-c", cores, py, real, k, "2.0"]), ("model", [sys.executable, model, py, k, log])):
                out = os.path.join(d, "%s%d" % (side, r))
                subprocess.run(cmd, env=dict(os.environ, LD_PRELOAD=so, PTHREAD_TIMER_OUT=out), check=True, capture_output=True)
                # the largest file: the run's process (not a calibration child)
                f = max((os.path.join(d, x) for x in os.listdir(d) if x.startswith(os.path.basename(out) + ".")), key=os.path.getsize)
                res[side].append(windows(f))
                h, o, s, w, n = res[side][-1]
                print("round %d %-5s: requester holds the mutex %.2f us; to the holder's lock %.2f us (other CPU), "
                      "%.2f us (same CPU); requester woke first %.2f of %d switches" % (r + 1, side, h, o, s, w, n), flush=True)
        for side, v in res.items():
            v = np.array(v)
            print("%-5s medians: mutex held %.2f us, holder's lock %.2f / %.2f us (other / same CPU), requester first %.2f"
                  % (side, *np.median(v[:, :4], axis=0)))


if __name__ == "__main__":
    main()
