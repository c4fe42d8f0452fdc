"""three_threads: three CPU-bound threads for a while (P5, P6): how often the running thread
changes, and each thread's share of the work done and of the hand-offs it won (sorted, largest
first: which thread wins is up to the OS, so only the shape of the split is compared)."""
import threading
import time

import _probe


def worker(flag, last, me, won, work, idx):
    # Counts the times it found that another thread ran since it last looked (a hand-off it
    # won), and its chunks of countdown work (its share of the GIL's time).
    w = c = 0
    while flag[0]:
        if last[0] is not me:
            last[0] = me
            w += 1
        n = 100
        while n > 0:
            n -= 1
        c += 1
    won[idx] = w
    work[idx] = c


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--duration", type=float, default=0.5)
    a = p.parse_args()
    flag, last, won, work = [True], [None], [0, 0, 0], [0, 0, 0]
    ts = [threading.Thread(target=worker, args=(flag, last, object(), won, work, i)) for i in range(3)]
    t = _probe.now()
    for th in ts:
        th.start()
    time.sleep(a.duration)
    flag[0] = False
    el = _probe.now() - t
    for th in ts:
        th.join()
    sw = max(sum(won) - 1, 0)  # the first take is not a change of the running thread
    share = sorted((float(c) / max(sum(work), 1) for c in work), reverse=True)
    wshare = sorted((float(w) / max(sum(won), 1) for w in won), reverse=True)
    _probe.emit("three_threads", {"duration_s": el, "switches": sw, "switches_per_s": sw / el,
                                  "share_1": share[0], "share_2": share[1], "share_3": share[2],
                                  "won_1": wshare[0], "won_2": wshare[1], "won_3": wshare[2]})
