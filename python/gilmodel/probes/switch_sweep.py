"""switch_sweep (CPython 3.2+): io_latency and handoffs at switch intervals from 0.1 ms to
50 ms (sys.setswitchinterval)."""
import sys

import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--intervals-ms", default="0.1,0.5,2,5,20,50")
    p.add_argument("--duration", type=float, default=0.5, help="handoffs: seconds per interval")
    p.add_argument("--pings", type=int, default=20, help="io_latency: pings per interval")
    a = p.parse_args()
    if not hasattr(sys, "setswitchinterval"):
        sys.stderr.write("switch_sweep: this interpreter has no switch interval (CPython 3.2+ only)\n")
        sys.exit(3)
    rows = []
    for ms in [float(x) for x in a.intervals_ms.split(",")]:
        sys.setswitchinterval(ms / 1e3)
        h = _probe.handoffs(a.duration)
        gap = int(max(5000, 2000 + 1500 * ms))  # longer than one wait, so pings do not queue
        io = _probe.io_latency(1, a.pings, gap)
        rows.append({"interval_ms": ms, "switches_per_s": h["switches_per_s"], "gap_us": gap,
                     "io_p50_ms": io["p50_ms"], "io_p90_ms": io["p90_ms"], "io_max_ms": io["max_ms"]})
    sys.setswitchinterval(0.005)
    _probe.emit("switch_sweep", {"rows": rows})
