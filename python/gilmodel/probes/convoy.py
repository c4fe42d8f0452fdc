"""convoy: a thread streams N bytes in small sends to a draining process, without and with k
CPU-bound threads; elapsed times and their ratio."""
import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--bytes", type=int, default=4 << 20)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--cpu-threads", type=int, default=1)
    a = p.parse_args()
    alone, alone_reads, _ = _probe.stream(a.bytes, a.chunk, 0)
    loaded, loaded_reads, shared = _probe.stream(a.bytes, a.chunk, a.cpu_threads)
    _probe.emit("convoy", {"bytes": a.bytes, "chunk": a.chunk, "cpu_threads": a.cpu_threads,
                           "alone_s": alone, "with_cpu_s": loaded, "factor": loaded / alone,
                           "alone_reads": alone_reads, "with_cpu_reads": loaded_reads, "on_sender_core": shared})
