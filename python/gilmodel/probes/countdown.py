"""countdown: two threads count down N each; the program counts how often the running thread
changed, and reports its elapsed time (threads started to joined) and its own CPU time.

Not one of validate's probes: the workload `gilmodel observe` is tested and measured with
(tests/test_observe.py, benches/observe_overhead.py), kept in one place."""
import os

import _probe


def count(me, n, last, switches):
    while n > 0:
        n -= 1
        if last[0] != me:
            last[0] = me
            switches[0] += 1


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--n", type=int, default=3000000, help="iterations per thread")
    a = p.parse_args()
    last, switches = [None], [0]
    el = _probe.timed_threads(count, [(i, a.n, last, switches) for i in range(2)])
    user, kernel = os.times()[:2]
    _probe.emit("countdown", {"n": a.n, "elapsed_s": el, "switches": switches[0], "user_s": user, "kernel_s": kernel})
