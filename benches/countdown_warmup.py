"""How fast a real interpreter runs the countdown loop of the probes, call by call, in fresh
processes: the warm-up that is not a GIL effect (docs/validation/README.md, item 4).

For each interpreter found (this one, and 2.7 / 3.12 / 3.13 under ~/.pyenv/versions), a fresh
process calls ``countdown(500000)`` 12 times on core 0 and prints ns per iteration of each call
(3.11 quickens a function from its 8th call on); then 8 fresh processes each time one cold
call (the first call's spread between identical runs).

Run: .venv/bin/python benches/countdown_warmup.py
"""

import glob
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
def countdown(n):
    while n > 0:
        n -= 1
out = []
for _ in range(int(sys.argv[1])):
    t = time.time(); countdown(500000); out.append((time.time() - t) / 500000 * 1e9)
print(json.dumps(out))
"""


def calls(py, k):
    out = subprocess.run(["taskset", "-c", "0", py, "-c", CHILD, str(k)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    pys = [sys.executable] + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python"))
                                   + glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[23]*/bin/python")))
    for py in pys:
        ver = subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], capture_output=True,
                             text=True).stdout.strip()
        per_call = calls(py, 12)
        cold = [calls(py, 1)[0] for _ in range(8)]
        print("%-8s calls 1-12: %s ns/iter | first call in 8 fresh processes: %.1f-%.1f (median %.1f)" % (
            ver, " ".join("%.0f" % x for x in per_call), min(cold), max(cold), statistics.median(cold)), flush=True)


if __name__ == "__main__":
    main()
