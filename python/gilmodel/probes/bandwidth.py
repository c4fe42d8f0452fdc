"""bandwidth: ccbench's bandwidth test: a separate process sends 1 KiB packets that a thread
here echoes, alone and next to k CPU-bound threads; packets per second."""
import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--cpu-threads", type=int, default=1)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--nbytes", type=int, default=1024)
    a = p.parse_args()
    alone = _probe.bandwidth(0, a.duration, a.nbytes)
    loaded = _probe.bandwidth(a.cpu_threads, a.duration, a.nbytes)
    _probe.emit("bandwidth", {"cpu_threads": a.cpu_threads, "nbytes": a.nbytes, "packets_per_s_alone": alone,
                              "packets_per_s": loaded, "slowdown": alone / loaded if loaded else None})
