"""thread_pool: a main thread submits tasks (a countdown of n iterations each) to a
queue.Queue, k worker threads take them, run them and put a result on a second queue, and the
main thread collects every result; tasks per second for each k, and each worker's part. First,
in the main thread alone, the cost of one uncontended put and get pair (queue_us): the queue's
bytecode, which the model runs as interpreter work beside its put and get."""
import threading

import _probe

try:
    import queue  # 3.x
except ImportError:  # 2.7
    import Queue as queue


def worker(tasks, results, n, done):
    while True:
        item = tasks.get()
        if item is None:
            return
        _probe.countdown(n)
        done[0] += 1
        results.put(item)


def pool(k, tasks_n, n):
    tasks, results = queue.Queue(), queue.Queue()
    counts = [[0] for _ in range(k)]
    ts = [threading.Thread(target=worker, args=(tasks, results, n, counts[i])) for i in range(k)]
    for t in ts:
        t.start()
    t0 = _probe.now()
    for i in range(tasks_n):
        tasks.put(i)
    for _ in range(tasks_n):
        results.get()
    el = _probe.now() - t0
    for _ in ts:
        tasks.put(None)
    for t in ts:
        t.join()
    parts = sorted((c[0] / float(tasks_n) for c in counts), reverse=True)
    return {"k": k, "tasks_per_s": tasks_n / el, "elapsed_s": el, "top_part": parts[0]}


def queue_cost_us(rounds):
    q = queue.Queue()
    best = None
    for _ in range(5):
        t = _probe.now()
        for i in range(rounds):
            q.put(i)
            q.get()
        el = (_probe.now() - t) / rounds
        best = el if best is None else min(best, el)
    return best * 1e6


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--ks", default="1,2,4")
    p.add_argument("--tasks", type=int, default=400)
    p.add_argument("--n", type=int, default=20000, help="countdown iterations per task")
    a = p.parse_args()
    q_us = queue_cost_us(2000)
    rows = [pool(int(k), a.tasks, a.n) for k in a.ks.split(",")]
    _probe.emit("thread_pool", {"tasks": a.tasks, "n": a.n, "queue_us": q_us, "rows": rows})
