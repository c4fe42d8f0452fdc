"""The observer effect of `gilmodel observe`, per interpreter, each workload with and without
observation, alternating:

- the ``countdown`` script (python/gilmodel/probes/countdown.py): two threads count down,
  timing themselves (threads started → joined), counting their own thread switches and
  reporting their own CPU time (``os.times()``: user and kernel, the whole process, start-up
  included);
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

def _last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    pys = sys.argv[2:] or [sys.executable]
    out = os.path.join(tempfile.mkdtemp(), "out.json")
    print("| interpreter | N | elapsed unobserved (s) | observed (s) | ratio | switches/s unobserved | observed "
          "| user CPU unobserved (s) | observed | kernel CPU unobserved (s) | observed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for py in pys:
        v = find_interpreter(py).version
        n = 300_000 if v.startswith("2.") else 3_000_000
        res = {False: [], True: []}
        for _ in range(repeats):
            for observed in (False, True):
                cmd = [py, probe_path("countdown"), "--n", str(n)]
                if observed:
                    gm.observe(cmd, stdout=out)
                    r = _last_json(open(out).read())
                else:
                    r = _last_json(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                el = r["elapsed_s"]
                res[observed].append((el, r["switches"] / el, r["user_s"], r["kernel_s"]))
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
                    r = _last_json(open(out).read())
                else:
                    r = _last_json(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                res[observed].append((r["p50_ms"], r["p90_ms"]))
        med = {k: (statistics.median(a for a, _ in x), statistics.median(b for _, b in x)) for k, x in res.items()}
        print("| %s | %.3f | %.3f | %.3f | %.3f |" % (v, med[False][0], med[True][0], med[False][1], med[True][1]))


if __name__ == "__main__":
    main()
