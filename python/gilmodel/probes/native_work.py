"""native_work: C work that releases the GIL (hashlib.sha1 over 1 MiB buffers, which drops the
GIL for data of 2 KiB and more): one thread hashing n chunks, then k threads hashing n chunks
each; the speed-up (k x alone time / threaded time)."""
import hashlib
import threading

import _probe


def hash_chunks(buf, n):
    for _ in range(n):
        hashlib.sha1(buf).digest()


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--chunk-kib", type=int, default=1024)
    a = p.parse_args()
    buf = b"x" * (a.chunk_kib * 1024)
    hash_chunks(buf, 2)  # warm up
    t = _probe.now()
    hash_chunks(buf, a.chunks)
    alone = _probe.now() - t
    ts = [threading.Thread(target=hash_chunks, args=(buf, a.chunks)) for _ in range(a.threads)]
    t = _probe.now()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    threaded = _probe.now() - t
    _probe.emit("native_work", {"threads": a.threads, "chunks": a.chunks, "chunk_kib": a.chunk_kib,
                                "alone_s": alone, "threaded_s": threaded, "chunk_ms": 1e3 * alone / a.chunks,
                                "speedup": a.threads * alone / threaded})
