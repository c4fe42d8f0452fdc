"""Who gets the GIL after a drop request when two or more threads wait (3.x): the requester,
or another waiter? A 3.11 thread pool (``python/gilmodel/probes/thread_pool.py``: the main
thread collecting results from 2 CPU-bound workers) observed with ``gm.whatif`` and replayed
under its own GIL; for the real run and the replay:

- the hand-offs that follow a drop request while two or more threads wait, split by whether the
  requester got the GIL (the mechanism: a waiter that timed out and asked waits again, behind the
  others in the condition variable, docs/validation/many-threads.md);
- the main thread's waits for the GIL over 0.1 ms: how many, their p50, and how many over 8 ms
  (more than one interval);
- the events of one real wait over 8 ms.

Needs root (uprobes).

    sudo .venv/bin/python benches/waiter_requeue.py [REPEATS] [PYTHON]
"""

import os
import sys
import tempfile

import numpy as np

import gilmodel as gm
from gilmodel.probes import path as probe_path


def mechanism(run):
    """(hand-offs to the requester, to another waiter), and the main thread's waits (ms)."""
    ev = run.events.to_pandas().sort_values("t_ns", kind="stable")
    main = int(ev.thread.min())
    waiting, req = {}, None
    to_req = to_other = 0
    main_waits = []
    for t, th, e in zip(ev.t_ns.values, ev.thread.values, ev.event.values):
        if e == "request":
            waiting[th] = t
        elif e == "drop_request":
            req = th
        elif e == "acquire":
            if req is not None and len(waiting) >= 2 and req in waiting:
                if th == req:
                    to_req += 1
                else:
                    to_other += 1
            if th == main and th in waiting:
                main_waits.append((t - waiting[th]) / 1e6)
            waiting.pop(th, None)
            req = None
        elif e == "exit":
            waiting.pop(th, None)
    return to_req, to_other, np.array(main_waits)


def show_long_wait(run, longer_ms=8.0):
    """The GIL events between the main thread's first request that waited over ``longer_ms``
    and its acquire, in µs from the request."""
    ev = run.events.to_pandas().sort_values("t_ns", kind="stable")
    main = int(ev.thread.min())
    T, H, E = ev.t_ns.values, ev.thread.values, ev.event.values
    keep = ("request", "acquire", "release", "timeout", "drop_request")
    req = None
    for i in range(len(T)):
        if H[i] == main and E[i] == "request":
            req = i
        elif H[i] == main and E[i] == "acquire" and req is not None:
            if (T[i] - T[req]) / 1e6 > longer_ms:
                print("\nOne real wait of the main thread (t%d), µs from its request:" % main)
                for j in range(req, i + 1):
                    if E[j] in keep:
                        print("  %+10.1f  t%d %s" % ((T[j] - T[req]) / 1e3, H[j], E[j]))
                return
            req = None


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    py = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python3.11")
    print("| observation | side | hand-offs after a request, 2+ waiting | to another waiter | main's waits > 0.1 ms | p50 ms | > 8 ms |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for rep in range(repeats):
        with tempfile.NamedTemporaryFile("w+", suffix=".json") as out:
            res = gm.whatif([py, "-E", "-s", "-B", probe_path("thread_pool"), "--ks", "2", "--tasks", "400"], gils=[],
                            repeats=1, progress=False, quiet=True, stdout=out.name)
        first = first or res.observed
        for side, run in (("real", res.observed), ("replay", next(iter(res.runs.values())))):
            to_req, to_other, w = mechanism(run)
            long = w[w > 0.1]
            n = to_req + to_other
            print("| %d | %s | %d | %d (%.0f %%) | %d | %.1f | %d |" % (
                rep, side, n, to_other, 100.0 * to_other / n if n else float("nan"), long.size,
                float(np.median(long)) if long.size else float("nan"), int((long > 8).sum())))
    show_long_wait(first)


if __name__ == "__main__":
    main()
