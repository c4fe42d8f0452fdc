"""How long starting k CPU-bound threads takes under a contended GIL, on one core: the time
the echo probes' peers once counted as requests not served (python/gilmodel/probes/_peer.py
now starts their clock after it).

    .venv/bin/python benches/thread_start.py [PYTHON ...]   (default: this interpreter)

For each interpreter, pinned to the first allowed core, 3 rounds of: start k = 1, 2, 4, 8
spinners (``_probe.Spinners``: ``Thread.start`` waits until the new thread runs, which needs the
GIL from the running spinners), then one more thread (the echo thread's start).
"""

import os
import subprocess
import sys

import gilmodel as gm
from gilmodel.probes import path

SCRIPT = r"""
import sys, threading
sys.path.insert(0, %r)
import _probe
out = []
for k in (1, 2, 4, 8):
    t = _probe.now(); sp = _probe.Spinners(k); st = _probe.now() - t
    io = threading.Thread(target=lambda: None); t = _probe.now(); io.start(); io.join(); st2 = _probe.now() - t
    sp.stop()
    out.append("k=%%d %%.0f + %%.0f ms" %% (k, st * 1e3, st2 * 1e3))
sys.stdout.write(", ".join(out) + "\n")
""" % os.path.dirname(path("calibrate"))


def main():
    core = gm._core.allowed_cores()[0]
    for py in sys.argv[1:] or [sys.executable]:
        print("%s, core %d: start k spinners + one more thread" % (py, core))
        for _ in range(3):
            r = subprocess.run(["taskset", "-c", str(core), py, "-c", SCRIPT], capture_output=True, text=True, check=True)
            print("  " + r.stdout.strip())


if __name__ == "__main__":
    main()
