"""The observer effect of `gilmodel observe`, per interpreter, each workload with and without
observation, alternating:

- a two-thread countdown that times itself (threads start → joined), counts its own thread
  switches and reports its own CPU time (``os.times()``: user and kernel, the whole process,
  start-up included);
- the `io_latency` probe (python/gilmodel/probes/): a thread echoing pings from another
  process beside a CPU-bound thread; its median and p90 round trip.

    sudo .venv/bin/python benches/observe_overhead.py [REPEATS] [PYTHON ...]

Prints two Markdown tables of medians over the repeats.
"""

import os
import statistics
import subprocess
import sys
import tempfile

import json

import gilmodel as gm
from gilmodel.observe import find_interpreter
from gilmodel.probes import path as probe_path

SCRIPT = """\
import os, sys, threading, time
N, out = int(sys.argv[1]), sys.argv[2]
last, switches = [None], [0]
def count(me, n):
    while n > 0:
        n -= 1
        if last[0] != me:
            last[0] = me
            switches[0] += 1
ts = [threading.Thread(target=count, args=(i, N)) for i in range(2)]
t = time.time()
for x in ts: x.start()
for x in ts: x.join()
el = time.time() - t
u, k = os.times()[:2]
open(out, "w").write("%f %d %f %f\\n" % (el, switches[0], u, k))
"""


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    pys = sys.argv[2:] or [sys.executable]
    d = tempfile.mkdtemp()
    script, out = os.path.join(d, "countdown.py"), os.path.join(d, "out.txt")
    open(script, "w").write(SCRIPT)
    print("| interpreter | N | elapsed unobserved (s) | observed (s) | ratio | switches/s unobserved | observed "
          "| user CPU unobserved (s) | observed | kernel CPU unobserved (s) | observed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for py in pys:
        v = find_interpreter(py).version
        n = 300_000 if v.startswith("2.") else 3_000_000
        res = {False: [], True: []}
        for _ in range(repeats):
            for observed in (False, True):
                cmd = [py, script, str(n), out]
                if observed:
                    gm.observe(cmd)
                else:
                    subprocess.run(cmd, check=True)
                el, sw, u, k = open(out).read().split()
                res[observed].append((float(el), int(sw) / float(el), float(u), float(k)))
        med = {o: [statistics.median(x[i] for x in r) for i in range(4)] for o, r in res.items()}
        print("| %s | %d | %.3f | %.3f | %.2f× | %.0f | %.0f | %.3f | %.3f | %.3f | %.3f |" % (
            v, n, med[False][0], med[True][0], med[True][0] / med[False][0], med[False][1], med[True][1],
            med[False][2], med[True][2], med[False][3], med[True][3]))

    print()
    print("| interpreter | echo p50 unobserved (ms) | observed | echo p90 unobserved | observed |")
    print("|---|---|---|---|---|")
    for py in pys:
        v = find_interpreter(py).version
        cmd = [py, "-E", "-s", "-B", probe_path("io_latency"), "--cpu-threads", "1", "--pings", "40", "--gap-us", "10000"]
        res = {False: [], True: []}
        for _ in range(repeats):
            for observed in (False, True):
                if observed:
                    gm.observe(cmd, stdout=out)
                    r = json.loads(open(out).read().strip().splitlines()[-1])
                else:
                    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
                res[observed].append((r["p50_ms"], r["p90_ms"]))
        med = {k: (statistics.median(a for a, _ in x), statistics.median(b for _, b in x)) for k, x in res.items()}
        print("| %s | %.3f | %.3f | %.3f | %.3f |" % (v, med[False][0], med[True][0], med[False][1], med[True][1]))


if __name__ == "__main__":
    main()
