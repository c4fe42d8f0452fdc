"""Shared helper of the probes: runs under any CPython from 2.7 to 3.13.

No f-strings, no dependencies, and no import of gilmodel: a probe is run as
``python path/to/probe.py --args`` by whatever interpreter is being measured, and finds this
module beside it (the script's folder is ``sys.path[0]``). Peers (the pinger, the drain, the
bandwidth client) are separate processes running ``_peer.py`` under the same interpreter.
"""

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time

try:
    now = time.perf_counter  # 3.3+
except AttributeError:  # 2.7: gettimeofday, microsecond resolution
    now = time.time

try:
    xrange
except NameError:  # 3.x
    xrange = range

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "_peer.py")


def countdown(n):
    """The P1 workload: David Beazley's countdown loop."""
    while n > 0:
        n -= 1


def spin_until(flag, counter, idx):
    """A CPU-bound thread: countdown chunks until ``flag[0]`` is false; counts chunks."""
    c = 0
    while flag[0]:
        n = 1000
        while n > 0:
            n -= 1
        c += 1
    counter[idx] = c


class Spinners(object):
    """``k`` CPU-bound threads running until :meth:`stop`."""

    def __init__(self, k):
        self.flag = [True]
        self.counts = [0] * k
        self.threads = [threading.Thread(target=spin_until, args=(self.flag, self.counts, i)) for i in range(k)]
        for t in self.threads:
            t.daemon = True
            t.start()

    def stop(self):
        self.flag[0] = False
        for t in self.threads:
            t.join()
        return self.counts


def interp_info():
    v = sys.version_info
    return {"python": "%d.%d.%d" % (v[0], v[1], v[2]), "implementation": platform.python_implementation(),
            "executable": sys.executable, "pid": os.getpid()}


def emit(probe, result):
    """Print the probe's one JSON line."""
    out = {"probe": probe}
    out.update(interp_info())
    try:
        out["cpus"] = sorted(os.sched_getaffinity(0))
    except AttributeError:  # 2.7
        pass
    out.update(result)
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    sys.stdout.flush()


def listener():
    """A TCP listening socket on loopback and its port."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    return ls, ls.getsockname()[1]


def start_peer(role, args):
    """Start a peer process (``_peer.py role port ...``) under this interpreter and accept
    its connection; returns ``(process, connected socket)``."""
    ls, port = listener()
    p = subprocess.Popen([sys.executable, "-E", "-s", "-B", PEER, role, str(port)] + [str(a) for a in args], stdout=subprocess.PIPE)
    ls.settimeout(30.0)
    conn, _ = ls.accept()
    ls.close()
    conn.settimeout(None)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return p, conn


def finish_peer(p):
    """Wait for a peer and return the JSON it printed."""
    out = p.communicate()[0]
    if p.returncode != 0:
        raise RuntimeError("peer exited with %r" % (p.returncode,))
    return json.loads(out.decode("ascii").strip().splitlines()[-1])


def percentile(xs, q):
    """numpy's default (linear) percentile, so both sides of a comparison agree."""
    s = sorted(xs)
    if not s:
        return None
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def timed_threads(target, args_each):
    """One thread of ``target`` per tuple of ``args_each``, all started, then all joined:
    the seconds from the first start to the last join."""
    ts = [threading.Thread(target=target, args=args) for args in args_each]
    t = now()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return now() - t


# ---- the measurements; each probe file calls one or more of these ----

def cpu_pair(n):
    t = now()
    countdown(n)
    countdown(n)
    seq = now() - t
    thr = timed_threads(countdown, [(n,)] * 2)
    return {"n": n, "sequential_s": seq, "threaded_s": thr, "ratio": thr / seq}


def _switch_counter(flag, last, me, counts, idx):
    # Counts how often this thread finds that another one ran since it last looked.
    c = 0
    while flag[0]:
        if last[0] is not me:
            last[0] = me
            c += 1
    counts[idx] = c


def handoffs(duration_s):
    """Two CPU-bound threads; how many times per second the running thread changes."""
    flag, last, counts = [True], [None], [0, 0]
    ts = [threading.Thread(target=_switch_counter, args=(flag, last, object(), counts, i)) for i in range(2)]
    t = now()
    for th in ts:
        th.start()
    time.sleep(duration_s)
    flag[0] = False
    el = now() - t
    for th in ts:
        th.join()
    # The first take of each thread is not a change of the running thread.
    sw = max(sum(counts) - 1, 0)
    return {"duration_s": el, "switches": sw, "switches_per_s": sw / el}


def _echo(conn, nbytes, replies, on_go=None):
    if on_go is not None:
        on_go()
    conn.sendall(b"g")  # the go: the CPU threads and this one run (see _peer.py)
    n = 0
    while True:
        d = conn.recv(nbytes)
        if not d:
            break
        conn.sendall(d)
        n += 1
    replies[0] = n


def _echo_beside(cpu_threads, nbytes, role, args, on_go=None):
    """A thread echoing what peer ``role`` sends, next to ``cpu_threads`` CPU-bound threads,
    until the peer closes; the peer's JSON. The peer starts when the echo thread sends it a
    byte, after every CPU thread has started; the echo thread calls ``on_go`` just before."""
    p, conn = start_peer(role, args)
    sp = Spinners(cpu_threads)
    replies = [0]
    io = threading.Thread(target=_echo, args=(conn, nbytes, replies, on_go))
    io.start()
    io.join()
    sp.stop()
    conn.close()
    return finish_peer(p)


def io_latency(cpu_threads, pings, gap_us, nbytes=8):
    """ccbench's latency test: a thread blocked in ``recv`` answers pings sent by a separate
    process every ``gap_us`` while ``cpu_threads`` CPU-bound threads spin."""
    r = _echo_beside(cpu_threads, nbytes, "pinger", [pings, gap_us, nbytes])
    rtt = [x * 1e3 for x in r["rtt_s"]]
    return {"cpu_threads": cpu_threads, "pings": len(rtt), "gap_us": gap_us, "rtt_ms": rtt,
            "p50_ms": percentile(rtt, 50), "p90_ms": percentile(rtt, 90), "p99_ms": percentile(rtt, 99),
            "max_ms": max(rtt) if rtt else None}


def task_cpus():
    """This process's threads (``/proc/self/task``): thread id -> the CPU it last ran on
    (``stat`` field 39). Read from outside the threads, so it moves nothing."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/stat" % tid) as f:
                st = f.read()
        except (IOError, OSError):  # the thread ended meanwhile
            continue
        out[int(tid)] = int(st[st.rindex(")") + 2:].split()[36])
    return out


def stream(total_bytes, chunk_bytes, cpu_threads):
    """Stream ``total_bytes`` in ``chunk_bytes`` sends to a draining process next to
    ``cpu_threads`` CPU-bound threads; ``(seconds the sends took, the drain's reads, the CPU
    threads on the sender's core when the sends ended)``."""
    p, conn = start_peer("drain", [])
    buf = b"x" * chunk_bytes
    n = total_bytes // chunk_bytes
    before = set(task_cpus())
    sp = Spinners(cpu_threads)
    time.sleep(0.005)  # let the spinners get going, as the model releases all threads at once
    t = now()
    for _ in xrange(n):
        conn.sendall(buf)
    el = now() - t
    # Where the kernel ran the CPU threads decides the stream next to one of them on 2 cores:
    # one on the sender's core waits behind it and starves (fidelity.model_side.stream).
    cpus = task_cpus()
    mine = cpus.get(os.getpid())
    shared = sum(1 for tid, c in cpus.items() if tid not in before and c == mine)
    sp.stop()
    conn.close()
    r = finish_peer(p)
    if r["bytes"] != n * chunk_bytes:
        raise RuntimeError("drain got %d bytes of %d" % (r["bytes"], n * chunk_bytes))
    return el, r["reads"], shared


def bandwidth(cpu_threads, duration_s, nbytes=1024):
    """ccbench's bandwidth test: a separate process sends ``nbytes`` packets and waits for
    each echo for ``duration_s``; a thread here echoes them while ``cpu_threads`` spin."""
    r = _echo_beside(cpu_threads, nbytes, "bw_client", [duration_s, nbytes])
    return r["packets"] / r["elapsed_s"]


def arg_parser(doc):
    import argparse

    return argparse.ArgumentParser(description=doc.strip().splitlines()[0])
