"""long_call: a thread blocked in recv answers pings from a separate process while another
thread calls sorted() on a large list of ints again and again (a C call that holds the GIL with
no check point); the ping round trips and the length of one call. The pings come every
``--gap-us``, or every 3 calls' length where that is longer (``gap_us`` says which): a ping sent
before the last one's reply came back finds the GIL in another state, and a slowed machine
made 200 000-int calls last longer than the default gap (74-89 ms under 2.7 against 40).

``fast_share``: the share of pings answered within 1 ms. Under 2.x on one core it is about a
half: 2.x offers the GIL every 100 ticks, and this loop runs about 30 a call, so a ping waits
for several calls (0.3-1 s), longer than the gap; the next ping, sent late, comes while the
caller has not run yet and is answered at once (docs/validation/c-work.md).

On two cores 2.x can starve the pinged thread for seconds a ping (the caller retakes the GIL
before the woken thread runs; with 20 000-int calls of 5 ms, p50 1.3 s in one run here and
1-209 ms in six others), so no new ping is
sent once ``--max-s`` (default: 4 x the pings' nominal time, at least 10 s, the rule of the
model's ``scenarios.long_call``) have passed:
``pings`` is how many were answered, ``pings_asked`` how many were asked for."""
import random
import threading
import time

import _probe


def sorter(data, flag, lengths):
    while flag[0]:
        t = _probe.now()
        sorted(data)
        lengths.append(_probe.now() - t)


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--n", type=int, default=200000, help="ints to sort per call")
    p.add_argument("--pings", type=int, default=20)
    p.add_argument("--gap-us", type=int, default=30000)
    p.add_argument("--max-s", type=float, default=None, help="send no new ping after this many seconds")
    a = p.parse_args()
    rnd = random.Random(1)
    data = [rnd.randint(0, 1 << 30) for _ in range(a.n)]
    t = _probe.now()
    sorted(data)
    gap_us = max(a.gap_us, int(3e6 * (_probe.now() - t)))
    flag, lengths = [True], []
    s = threading.Thread(target=sorter, args=(data, flag, lengths))
    s.start()
    time.sleep(0.01)
    max_s = a.max_s if a.max_s is not None else max(10.0, 4 * a.pings * gap_us * 1e-6)
    r = _probe._echo_beside(0, 8, "pinger", [a.pings, gap_us, 8, max_s])
    flag[0] = False
    s.join()
    rtt = [x * 1e3 for x in r["rtt_s"]]
    call = [x * 1e3 for x in lengths]
    fast = sum(1 for x in rtt if x < 1.0)
    _probe.emit("long_call", {"n": a.n, "pings": len(rtt), "pings_asked": a.pings, "gap_us": gap_us, "call_ms": _probe.percentile(call, 50),
                              "calls": len(call), "p50_ms": _probe.percentile(rtt, 50), "p99_ms": _probe.percentile(rtt, 99),
                              "max_ms": max(rtt) if rtt else None, "rtt_ms": rtt,
                              "fast_share": float(fast) / len(rtt) if rtt else None})
