"""How long starting k CPU-bound threads takes under a contended GIL, on one core: the time
the echo probes' peers once counted as requests not served (python/gilmodel/probes/_peer.py
now starts their clock after it).

    .venv/bin/python benches/thread_start.py [--timeline K] [PYTHON ...]   (default: this interpreter)

For each interpreter, pinned to the first allowed core, 3 rounds of: start k = 1, 2, 4, 8
spinners (``_probe.Spinners``: ``Thread.start`` waits until the new thread runs, which needs the
GIL from the running spinners), then one more thread (the echo thread's start).

``--timeline K``: instead, 3 rounds of the closed-loop echo (the ``bw_client`` peer, 2 s) next
to K spinners, counting replies per 100 ms from the moment the peer connected, before the
spinners start (when the probes' peers used to start their clock): how long the echo serves
nothing, and how bursty it is after.
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

TIMELINE = r"""
import sys, threading
sys.path.insert(0, %r)
import _probe
k = int(sys.argv[1])
p, conn = _probe.start_peer("bw_client", [2.0, 1])
t0 = _probe.now()
sp = _probe.Spinners(k)
ts = []


def echo():
    conn.sendall(b"g")
    while True:
        d = conn.recv(1)
        if not d:
            break
        conn.sendall(d)
        ts.append(_probe.now())


io = threading.Thread(target=echo)
io.start()
io.join()
sp.stop()
conn.close()
_probe.finish_peer(p)
bins = [0] * 22
for t in ts:
    bins[min(21, int((t - t0) / 0.1))] += 1
sys.stdout.write("%%d replies, %%.0f req/s; per 100 ms: %%s\n" %% (len(ts), len(ts) / 2.0, " ".join(map(str, bins))))
""" % os.path.dirname(path("calibrate"))


def main():
    args = sys.argv[1:]
    k = None
    if args[:1] == ["--timeline"]:
        k, args = int(args[1]), args[2:]
    core = gm._core.allowed_cores()[0]
    for py in args or [sys.executable]:
        if k is None:
            print("%s, core %d: start k spinners + one more thread" % (py, core))
            cmd = [py, "-c", SCRIPT]
        else:
            print("%s, core %d: closed-loop echo next to %d spinners, from the peer's connection" % (py, core, k))
            cmd = [py, "-c", TIMELINE, str(k)]
        for _ in range(3):
            r = subprocess.run(["taskset", "-c", str(core)] + cmd, capture_output=True, text=True, check=True)
            print("  " + r.stdout.strip())


if __name__ == "__main__":
    main()
