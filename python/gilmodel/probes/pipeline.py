"""pipeline: a producer and a consumer thread through one queue.Queue: the producer runs a
countdown of n iterations per item, then puts it (stamped with the time); the consumer gets
it, then runs a countdown of n / 2, so that it keeps up and waits in get for most items.
Items per second (from the producer's start to the last get) and each item's time in the
queue, put to get (p50, p99): a consumer woken by a put must win the GIL from the producer.
(With equal work on both sides the queue's length is a random walk: every switch the host
delays adds a slice to it for good, and the waits measured that walk, 5-45 ms in one run of
3.11 on 2 cores.) First, in the main thread alone, the cost of one uncontended
put and get pair (queue_us: the queue's bytecode, which the model runs as interpreter work
beside its put and get, as thread_pool's)."""
import threading

import _probe

try:
    import queue  # 3.x
except ImportError:  # 2.7
    import Queue as queue

from thread_pool import queue_cost_us


def producer(q, items, n):
    for _ in range(items):
        _probe.countdown(n)
        q.put(_probe.now())


def consumer(q, items, n, waits):
    for _ in range(items):
        t = q.get()
        waits.append(_probe.now() - t)
        _probe.countdown(n // 2)


def pipeline(items, n):
    """Seconds from the producer's start to the consumer's end, and each item's wait."""
    q, waits = queue.Queue(), []
    c = threading.Thread(target=consumer, args=(q, items, n, waits))
    c.start()  # first: it blocks in get, off the GIL, so the producer starts at once
    t = _probe.now()
    pr = threading.Thread(target=producer, args=(q, items, n))
    pr.start()
    pr.join()
    c.join()
    return _probe.now() - t, waits


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--n", type=int, default=20000, help="countdown iterations per item, on each side")
    a = p.parse_args()
    q_us = queue_cost_us(2000)
    el, waits = pipeline(a.items, a.n)
    ms = sorted(1e3 * w for w in waits)
    _probe.emit("pipeline", {"items": a.items, "n": a.n, "queue_us": q_us, "elapsed_s": el,
                             "items_per_s": a.items / el, "p50_ms": _probe.percentile(ms, 50),
                             "p99_ms": _probe.percentile(ms, 99), "wait_ms": ms})
