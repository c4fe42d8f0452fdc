"""Where the real ``native_work`` probe's short threaded round loses its speed-up: two threads
each hash 20 buffers of 1 MiB (``hashlib.sha1``, which releases the GIL), ROUNDS rounds in one
process, printing per round the total, when each thread's first hash began (the second
thread's start), the longest gap between one thread's hashes, and its mean hash time. Run it
under the interpreter to look at, on the cores the probe uses:

    taskset -c 0,1 ~/.pyenv/versions/3.11.7/bin/python benches/hashing_start.py [ROUNDS]

The probe's round is about 11 ms at validate's scale, so a second thread that starts a few ms
late, or hashes slower while the other core wakes, moves its speed-up far more than the GIL
does (README, "C work that releases the GIL: hashing").
"""
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "gilmodel", "probes"))
import _probe  # noqa: E402  (the probes' helpers: runs under any interpreter, 2.7 too)

buf = b"x" * (1 << 20)


def hash_chunks(n, log):
    for _ in range(n):
        t0 = _probe.now()
        hashlib.sha1(buf).digest()
        log.append((t0, _probe.now()))


hash_chunks(2, [])
for rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 4):
    logs = [[], []]
    t = _probe.now()
    total = _probe.timed_threads(hash_chunks, [(20, lg) for lg in logs])
    out = []
    for i, lg in enumerate(logs):
        gaps = [b[0] - a[1] for a, b in zip(lg, lg[1:])]
        out.append("T%d first hash at %.2f ms, longest gap %.2f ms, mean hash %.2f ms"
                   % (i, 1e3 * (lg[0][0] - t), 1e3 * max(gaps), 1e3 * sum(b - a for a, b in lg) / len(lg)))
    print("round %d: %.2f ms | %s" % (rep, 1e3 * total, " | ".join(out)))
