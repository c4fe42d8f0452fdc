"""The probes' peer processes (any CPython 2.7-3.13; single-threaded, so no GIL contention).

    _peer.py pinger PORT PINGS GAP_US NBYTES [MAX_S]   send NBYTES at t0 + k*GAP (at once when
                                              late), read the reply, time the round trip; no
                                              ping sent, and no reply counted, MAX_S or more
                                              after t0 (a model run ends then)
    _peer.py drain PORT                        read and discard until end of stream
    _peer.py bw_client PORT SECONDS NBYTES     send NBYTES, read them back, repeat for SECONDS

Each prints one JSON line on stdout when done. A pinger and a bw_client first wait for one
byte from the echoing side (``_probe._echo_beside`` sends it once its CPU threads and its echo
thread run) and start their clock then: the rate and the round trips are the GIL's steady
state, as the model's, not the start of k threads under a contended GIL (on one core 3.11 took
0.47-0.79 s to start 8 and the echo thread, 2.7 0.10-0.24 s, against validate's 0.25 s runs:
benches/thread_start.py, 2-core VM, 2026-12-03).
"""

import json
import socket
import sys
import time

try:
    now = time.perf_counter
except AttributeError:
    now = time.time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_exact(s, n):
    got = 0
    while got < n:
        d = s.recv(n - got)
        if not d:
            return False
        got += len(d)
    return True


def pinger(s, pings, gap_us, nbytes, max_s=0.0):
    msg = b"p" * nbytes
    rtt = []
    t0 = now()
    until = t0 + max_s
    for k in range(1, pings + 1):
        due = t0 + k * gap_us * 1e-6
        if max_s and max(due, now()) >= until:
            break
        wait = due - now()
        if wait > 0:
            time.sleep(wait)
        t = now()
        s.sendall(msg)
        if not read_exact(s, nbytes):
            break
        back = now()
        if max_s and back >= until:
            break  # answered after the end: a model run ends then and drops it
        rtt.append(back - t)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    return {"rtt_s": rtt}


def drain(s):
    # reads: recv calls that returned data. About one a send when the drain sleeps between
    # sends; far fewer when it is kept from running while they pile up in the socket buffer.
    total = reads = 0
    while True:
        d = s.recv(65536)
        if not d:
            return {"bytes": total, "reads": reads}
        total += len(d)
        reads += 1


def bw_client(s, seconds, nbytes):
    msg = b"b" * nbytes
    n = 0
    t0 = now()
    end = t0 + seconds
    while now() < end:
        s.sendall(msg)
        if not read_exact(s, nbytes):
            break
        n += 1
    el = now() - t0
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    return {"packets": n, "elapsed_s": el}


def main():
    role, port = sys.argv[1], int(sys.argv[2])
    s = connect(port)
    if role in ("pinger", "bw_client") and not read_exact(s, 1):  # the go
        raise SystemExit("%s: the echoing side closed before it started" % role)
    if role == "pinger":
        r = pinger(s, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]) if len(sys.argv) > 6 else 0.0)
    elif role == "drain":
        r = drain(s)
    elif role == "bw_client":
        r = bw_client(s, float(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit("unknown role %r" % role)
    s.close()
    sys.stdout.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
