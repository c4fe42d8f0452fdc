"""native_work: C work that releases the GIL (hashlib.sha1 over 1 MiB buffers, which drops the
GIL for data of 2 KiB and more where hashlib is OpenSSL's): one thread hashing n chunks, then k
threads hashing n chunks each; the speed-up (k x alone time / threaded time). With
``--seconds S``, n is as many chunks as one thread hashes in S seconds (timed on the warm-up
hashes), so the round outlasts the threads' start: the second thread's first hash can begin
several ms late (benches/hashing_start.py), which in a round of 20 chunks (11 ms under 3.11)
cut the measured speed-up to 0.7-1.5 where 200 chunks gave 1.8-2.0. And whether a
chunk really releases the GIL (``released``): a CPython built without OpenSSL hashes with its
own _sha module, which holds the GIL throughout (this machine's pyenv 2.7.18 does)."""
import hashlib
import math
import threading
import time

import _probe


def hash_chunks(buf, n):
    for _ in range(n):
        hashlib.sha1(buf).digest()


def released_share(buf, chunks):
    """The share of ``chunks`` single hashes of ``buf`` that another thread's Python loop ran
    through: it cannot while the hash holds the GIL. The loop stamps the time every 64 turns;
    a hash counts as run through when no gap between stamps (or the call's ends) inside the
    call is as long as half the shorter of this call and a warm hash alone (the call's own
    length keeps the test sound when the machine's speed drifts). Held, the hash itself is
    such a gap, whatever switches come just before or after it (a drop request pending as the call starts or
    ends lets the other thread in there); released, the loop runs beside it once its wake-up
    comes. Each hash starts after a short sleep, so the other thread holds the GIL then and
    waits for it again as the hash begins; the buffer is big (20 ms of hashing), so that a
    released hash lasts well beyond the wake-up and the OS's time slices."""
    d = None
    for _ in range(2):  # warm: the first hash of a fresh buffer pays its page faults
        t = _probe.now()
        hashlib.sha1(buf).digest()
        d = min(d or 1e9, _probe.now() - t)
    stamps, stop = [], [False]

    def count():
        k = 0
        while not stop[0]:
            k += 1
            if k % 64 == 0:
                stamps.append(_probe.now())
    th = threading.Thread(target=count)
    th.daemon = True  # never keeps the probe alive, whatever happens below
    th.start()
    through = 0
    try:
        for _ in range(chunks):
            time.sleep(0.002)
            t0 = _probe.now()
            hashlib.sha1(buf).digest()
            t1 = _probe.now()
            inside = [t0] + [x for x in stamps[-50000:] if t0 < x < t1] + [t1]
            through += max(b - a for a, b in zip(inside, inside[1:])) < 0.5 * min(d, t1 - t0)
    finally:
        stop[0] = True
        th.join()
    return float(through) / chunks


#: hashlib releases the GIL only for data of this many bytes or more (HASHLIB_GIL_MINSIZE in
#: CPython's Modules/hashlib.h); the check hashes a multiple of the chunk, so a smaller chunk
#: is reported as held whatever the check finds.
GIL_MINSIZE = 2048


def releases_gil(share, chunk_bytes):
    """Whether the probe's chunks release the GIL, from :func:`released_share`: held, the
    other loop never runs through a hash; released, it does unless its wake-up comes too
    late, which a slowed VM made happen in most hashes at times (3.9-3.13 here)."""
    return share > 0 and chunk_bytes >= GIL_MINSIZE


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--seconds", type=float, default=0.0, help="size --chunks to this long a round alone")
    p.add_argument("--chunk-kib", type=int, default=1024)
    a = p.parse_args()
    buf = b"x" * (a.chunk_kib * 1024)
    t = _probe.now()
    hash_chunks(buf, 2)  # warm up
    if a.seconds > 0:
        a.chunks = max(4, int(math.ceil(a.seconds / max((_probe.now() - t) / 2, 1e-6))))
    t = _probe.now()
    hash_chunks(buf, a.chunks)
    alone = _probe.now() - t
    threaded = _probe.timed_threads(hash_chunks, [(buf, a.chunks)] * a.threads)
    # The check's buffer: about 20 ms of hashing (at most 64 MiB), long against the OS's time
    # slices, which on one core let the other thread run only every few ms.
    reps = int(min(max(1, 0.02 / max(alone / a.chunks, 1e-6)), max(1, (64 << 20) // len(buf))))
    share = released_share(buf * reps, 16)
    _probe.emit("native_work", {"threads": a.threads, "chunks": a.chunks, "chunk_kib": a.chunk_kib,
                                "alone_s": alone, "threaded_s": threaded, "chunk_ms": 1e3 * alone / a.chunks,
                                "speedup": a.threads * alone / threaded, "released_share": share,
                                "released": releases_gil(share, len(buf))})
