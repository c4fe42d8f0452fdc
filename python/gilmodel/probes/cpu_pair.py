"""cpu_pair: a countdown loop run twice sequentially, then in two threads; both times."""
import _probe

if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--n", type=int, default=2000000, help="countdown iterations per task")
    a = p.parse_args()
    _probe.emit("cpu_pair", _probe.cpu_pair(a.n))
