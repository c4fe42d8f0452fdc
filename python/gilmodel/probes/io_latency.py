"""io_latency: a thread blocked in recv answers pings from a separate process at fixed gaps
while k CPU-bound threads spin; round-trip quantiles (ccbench's latency test)."""
import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--cpu-threads", type=int, default=1)
    p.add_argument("--pings", type=int, default=100)
    p.add_argument("--gap-us", type=int, default=10000)
    a = p.parse_args()
    _probe.emit("io_latency", _probe.io_latency(a.cpu_threads, a.pings, a.gap_us))
