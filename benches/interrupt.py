"""Ctrl-C latency: a real SIGINT to this process during ``gm.run``, and to a ``gilmodel
validate`` / ``gilmodel sweep`` child; how long until control is back, and what is left.

``run``: the scenario of tests/test_interrupt.py (two CPU threads, a ping-pong with a driver
peer, a sleeper; 60 s duration) under the 2.7 and 3.11 GILs; SIGINT at a random moment 0.1-0.5 s
in; latency = SIGINT sent -> KeyboardInterrupt caught. Threads and fds are counted after each.
``validate`` / ``sweep``: the command in its own session; SIGINT to its process group (as a
terminal's Ctrl-C) once a probe (or a sweep run) is under way; latency = SIGINT -> exit; then
the session must be empty (no probe, peer or worker left).

Run: .venv/bin/python benches/interrupt.py [--tries 20] [--cli-tries 5]
(on a quiet machine: another job on the same cores adds its time slices to the latency).

On the 2-core VM (x86-64, "AMD EPYC", Linux 6.18, glibc 2.36, Python 3.11.7), quiet (load
under 1), `.venv/bin/python benches/interrupt.py`, two runs: run, 2.7 GIL: 20 tries, median
14.6 and 14.2 ms, max 21.0 and 23.9 ms; run, 3.11 GIL: median 11.3 and 11.5 ms, max 15.7 and
18.0 ms; threads and fds as before after every run. `gilmodel validate`: 5 tries a run, 74-104
ms; `gilmodel sweep`: 69-106 ms; exit code 130 and an empty session every time. (The run's
controller polls every 10 ms; most of a command's time is the interpreter's exit.)
"""

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import gilmodel as gm
from gilmodel import _procs
from gilmodel.probes import path as probe_path

CORES = gm._core.allowed_cores()


def scenario(version):
    return gm.Scenario(gm.cpython(version), [
        gm.Thread("cpu0", [gm.loop(gm.cpu(10_000))]),
        gm.Thread("cpu1", [gm.loop(gm.cpu(10_000))]),
        gm.Thread("io", [gm.loop(gm.recv(8), gm.send(8))], peer=gm.driver(10**6, 100_000)),
        gm.Thread("sleeper", [gm.loop(gm.sleep(1_000_000))]),
    ], cores=CORES, duration_s=60)


def counts():
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def run_latency(version, tries):
    sc, lat, before = scenario(version), [], counts()
    for _ in range(tries):
        sent = []

        def fire():
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(random.uniform(0.1, 0.5), fire)
        timer.start()
        try:
            gm.run(sc)
            raise SystemExit("the run ended without the interrupt")
        except KeyboardInterrupt:
            lat.append(time.monotonic() - sent[0])
        timer.join()
        if counts() != before:
            raise SystemExit("left behind: threads, fds %s -> %s" % (before, counts()))
    return lat


def session_procs(sid):
    return [q.pid for q in _procs.live() if q.session == sid]


def cli_latency(prepare, ready, tries):
    """``prepare(tmp)`` gives the command's arguments for a fresh temporary directory."""
    lat = []
    for _ in range(tries):
        with tempfile.TemporaryDirectory() as tmp:
            argv = prepare(tmp)
            p = subprocess.Popen([sys.executable, "-m", "gilmodel.cli"] + argv, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while not ready(p.pid, tmp):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise SystemExit("%s: never got under way" % argv[0])
                time.sleep(0.005)
            time.sleep(random.uniform(0.0, 0.2))
            t = time.monotonic()
            os.killpg(p.pid, signal.SIGINT)
            # A blocking wait (Popen.wait with a timeout polls at growing gaps up to 50 ms,
            # which would quantise the figure); a timer kills a command that does not exit.
            guard = threading.Timer(30, lambda: os.killpg(p.pid, signal.SIGKILL))
            guard.start()
            rc = p.wait()
            lat.append(time.monotonic() - t)
            guard.cancel()
            time.sleep(1.0)  # multiprocessing's resource tracker exits when its pipe closes
            left = session_procs(p.pid)
            if rc != 130 or left:
                raise SystemExit("%s: exit %s, left %s" % (argv[0], rc, left))
    return lat


def show(name, lat):
    ms = sorted(x * 1e3 for x in lat)
    print("%-22s %3d tries: min %6.1f  median %6.1f  max %6.1f ms" % (name, len(ms), ms[0], statistics.median(ms), ms[-1]),
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=20)
    ap.add_argument("--cli-tries", type=int, default=5)
    a = ap.parse_args()
    print("gilmodel %s, Python %s, %s, cores %s, load %s" % (gm._core.__version__, platform.python_version(),
                                                           platform.platform(), CORES, os.getloadavg()))
    for v in ("2.7", "3.11"):
        show("run, %s GIL" % v, run_latency(v, a.tries))
    print("threads and fds after every run: as before", flush=True)
    probe_dir = os.path.dirname(probe_path("calibrate"))

    def probe_running(pid, _tmp):
        return any(probe_dir in q.cmdline and "_peer.py" in q.cmdline for q in _procs.live() if q.session == pid)

    show("gilmodel validate", cli_latency(lambda tmp: ["validate", "--probes", "io_latency,convoy", "--repeats", "50", "--scale",
                                                      "0.3", "--no-progress", "--out", os.path.join(tmp, "v")],
                                          probe_running, a.cli_tries))

    def sweep_spec(tmp):
        path = os.path.join(tmp, "spec.toml")
        with open(path, "w") as f:
            f.write('out = "%s/out"\nrepeats = 3\ncores_per_run = 1\nprogress = false\n[base]\nexperiment = "handoffs"\n'
                    'cores = 1\n[base.scenario]\nduration_s = 0.3\n[grid]\n"gil.interval_us" = [200, 500, 1000, 2000]\n' % tmp)
        return ["sweep", path]

    def sweep_running(pid, tmp):  # a run finished: the workers are busy with the next ones
        d = os.path.join(tmp, "out")
        return os.path.isdir(d) and any(n.endswith(".parquet") for _, _, fs in os.walk(d) for n in fs)

    show("gilmodel sweep", cli_latency(sweep_spec, sweep_running, a.cli_tries))
    print("validate and sweep: exit code 130 and an empty session (no probe, peer or worker) every time")


if __name__ == "__main__":
    main()
