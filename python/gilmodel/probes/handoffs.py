"""handoffs: two CPU-bound threads; how many times per second the running thread changes."""
import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--duration", type=float, default=1.0, help="seconds")
    a = p.parse_args()
    _probe.emit("handoffs", _probe.handoffs(a.duration))
