"""threads_sweep: an I/O thread next to k CPU-bound threads, for each k of a list: closed-loop
echo throughput (a client process sends the next byte as soon as the reply came), ping round
trips, and the convoy (a stream of sends, against the same stream alone)."""
import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--ks", default="0,1,2,4,8", help="comma-separated numbers of CPU-bound threads")
    p.add_argument("--duration", type=float, default=0.5, help="echo throughput: seconds per k")
    p.add_argument("--pings", type=int, default=20, help="round trips: pings per k")
    p.add_argument("--gap-us", type=int, default=10000, help="round trips: gap between pings")
    p.add_argument("--bytes", type=int, default=64 << 10, help="convoy: bytes streamed per k (1 KiB sends)")
    a = p.parse_args()
    rows, drained, shared = [], [], []
    alone = None
    for k in [int(x) for x in a.ks.split(",")]:
        rate = _probe.bandwidth(k, a.duration, 1)
        io = _probe.io_latency(k, a.pings, a.gap_us)
        s, reads, on = _probe.stream(a.bytes, 1024, k)
        if k == 0:
            alone = s
        drained.append(reads)
        shared.append(on)
        rows.append({"k": k, "requests_per_s": rate, "p50_ms": io["p50_ms"], "p99_ms": io["p99_ms"], "rtt_ms": io["rtt_ms"], "stream_s": s,
                     "convoy_factor": None if alone is None else s / alone})
    # Per k, where the kernel ran the stream's peers: the drain's reads (how often it woke), the
    # CPU threads on the sender's core (fidelity.model_side.stream)
    _probe.emit("threads_sweep", {"rows": rows, "drain_reads": drained, "on_sender_core": shared})
