"""The convoy's two modes, in the real interpreter and the model: does pinning one thread per
core (as the model does) decide them? Streams ``bytes`` in 1 KiB sends next to one CPU thread on
cores 0,1 with this interpreter, its threads free (as CPython runs them) or pinned one per core
(the main/sending thread on 0, the CPU thread on 1, as the model places them), and the same in the
model; prints each run's time and how many sends waited more than 1 ms for the GIL.

Run: PYTHONPATH=python .venv/bin/python benches/convoy_pinning.py [runs] [bytes]
"""

import os
import sys
import threading
import time

import gilmodel as gm
from gilmodel import analysis
from gilmodel.probes import path

sys.path.insert(0, os.path.dirname(path("convoy")))
import _probe  # noqa: E402  (the probes' helper: peer processes)


def _spin(flag, pin):
    if pin:
        os.sched_setaffinity(0, {1})  # this thread only
    while flag[0]:
        n = 1000
        while n > 0:
            n -= 1


def real(total, pin):
    p, conn = _probe.start_peer("drain", [])
    if pin:
        os.sched_setaffinity(0, {0})
    buf, n = b"x" * 1024, total // 1024
    flag = [True]
    t1 = threading.Thread(target=_spin, args=(flag, pin))
    t1.start()
    time.sleep(0.005)
    waits, t = 0, time.perf_counter()
    for _ in range(n):
        a = time.perf_counter()
        conn.sendall(buf)
        waits += time.perf_counter() - a > 1e-3
    el = time.perf_counter() - t
    flag[0] = False
    t1.join()
    conn.close()
    _probe.finish_peer(p)
    os.sched_setaffinity(0, {0, 1})
    return el, waits


def model(total):
    r = gm.run(gm.scenarios.convoy(gm.cpython("3.11"), [0, 1], 1, total_bytes=total, work_ticks=2, tick_ns=22))
    io = analysis.io_response(r.events).to_pandas()
    return r.summary()["elapsed_s"], int((io.response_ns > 1e6).sum())


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 512 << 10
    os.sched_setaffinity(0, {0, 1})
    print("Python %s, %d KiB in 1 KiB sends, one CPU thread, cores 0,1" % (sys.version.split()[0], total >> 10))
    for label, f in (("real, threads free", lambda: real(total, False)), ("real, pinned 1/core", lambda: real(total, True)),
                     ("model (pinned 1/core)", lambda: model(total))):
        res = [f() for _ in range(runs)]
        print("  %-22s %s" % (label, "  ".join("%.4fs/%d" % r for r in res)))
        print("  %-22s fast runs (no send waited > 1 ms): %d of %d" % ("", sum(1 for _, w in res if w == 0), runs))


if __name__ == "__main__":
    main()
