"""long_call: a thread blocked in recv answers pings from a separate process while another
thread calls sorted() on a large list of ints again and again (a C call that holds the GIL with
no check point); the ping round trips and the length of one call. The pings come every
``--gap-us``, or every 3 calls' length where that is longer (``gap_us`` says which): a ping sent
before the last one's reply came back finds the GIL in another state, and a slowed machine
made 200 000-int calls last longer than the default gap (74-89 ms under 2.7 against 40).

``answered_share``: the share of the pings asked for that were answered before the end (0
when the I/O thread starved throughout). ``fast_share``: the share of pings answered within
1 ms. Under 2.x on one core it is about a half: 2.x offers the GIL every 100 ticks, and this
loop runs about 30 a call, so a ping waits for several calls (0.3-1 s), longer than the gap;
the next ping, sent late, comes while the caller has not run yet and is answered at once
(docs/validation/c-work.md).

On two cores 2.x can starve the other threads for seconds a ping (the caller retakes the GIL
before the woken thread runs; with 20 000-int calls of 5 ms, p50 1.3 s in one run here and
1-209 ms in six others), so the probe ends ``--max-s`` after the go (default: 4 x the pings'
nominal time, at least 10 s), as the model's ``scenarios.long_call`` run does: no ping is sent
or counted after it, and the caller stops calling just after. ``pings`` is how many were
answered by then (possibly none), ``pings_asked`` how many were asked for, ``capped`` whether
the caller stopped at its deadline rather than when the pinger was done.

The caller waits for the go (the I/O thread is up and its pinger starts its clock) before its
first call, as the model's threads start together: under 2.7 on two cores a caller already
calling kept the main thread from starting the I/O thread for 10 s in every try, and once for
over 5 minutes (2026-12-04)."""
import random
import threading

import _probe


def sorter(data, flag, capped, lengths, go, max_s):
    go.wait()
    # The caller stops itself just after the pinger's deadline: it holds the GIL, and under
    # 2.x the threads that should stop it may not get the GIL back.
    until = _probe.now() + max_s + 0.05
    while flag[0]:
        t = _probe.now()
        if t >= until:
            capped[0] = True
            break
        sorted(data)
        lengths.append(_probe.now() - t)


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--n", type=int, default=200000, help="ints to sort per call")
    p.add_argument("--pings", type=int, default=20)
    p.add_argument("--gap-us", type=int, default=30000)
    p.add_argument("--max-s", type=float, default=None, help="end the probe this many seconds after the go")
    a = p.parse_args()
    rnd = random.Random(1)
    data = [rnd.randint(0, 1 << 30) for _ in range(a.n)]
    t = _probe.now()
    sorted(data)
    gap_us = max(a.gap_us, int(3e6 * (_probe.now() - t)))
    flag, capped, lengths = [True], [False], []
    max_s = a.max_s if a.max_s is not None else max(10.0, 4 * a.pings * gap_us * 1e-6)
    go = threading.Event()
    s = threading.Thread(target=sorter, args=(data, flag, capped, lengths, go, max_s))
    s.start()
    try:
        r = _probe._echo_beside(0, 8, "pinger", [a.pings, gap_us, 8, max_s], on_go=go.set)
    finally:
        flag[0] = False
        go.set()  # a caller still waiting (the echo side failed) must not keep the join waiting
        s.join()
    rtt = [x * 1e3 for x in r["rtt_s"]]
    call = [x * 1e3 for x in lengths]
    fast = sum(1 for x in rtt if x < 1.0)
    _probe.emit("long_call", {"n": a.n, "pings": len(rtt), "pings_asked": a.pings, "gap_us": gap_us, "call_ms": _probe.percentile(call, 50),
                              "calls": len(call), "p50_ms": _probe.percentile(rtt, 50), "p99_ms": _probe.percentile(rtt, 99),
                              "max_ms": max(rtt) if rtt else None, "rtt_ms": rtt,
                              "fast_share": float(fast) / len(rtt) if rtt else None,
                              "answered_share": float(len(rtt)) / a.pings, "capped": capped[0]})
