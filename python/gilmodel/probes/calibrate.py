"""calibrate: the interpreter's time per tick on the countdown loop, which sets the model's
tick_ns. On 3.x a tick is one loop back-edge (one countdown iteration: the eval breaker is
checked there). On 2.x a tick is one decrement of _Py_Ticker; the probe counts them with the
thread state's tick_counter (via ctypes; +1 per check interval) and reports ticks per
iteration, and the time per check interval. Also the interpreter work around each socket call
of the I/O probes: one Python-level C call in a loop (call_ns: `recv`, a plain C method on every
version) and one call of a socket-object method of sendall's kind (sock_call_ns, timed on
`fileno`: on 2.x both are Python-level wrappers in socket.py that forward to the C socket,
`def sendall(self, *args): return self._sock.sendall(*args)`; on 3.x both are C methods); and
one `send` of a byte with the `recv` that reads it on a loopback TCP pair (sock_pair_ns, system
calls included: the model subtracts what the same two calls cost without an interpreter,
`gilmodel._core.socket_pair_ns`, to get the interpreter's own work in an echo).

The countdown is timed two ways, in alternate rounds (cold: a countdown compiled afresh for
each round; warm: one called ten times first): CPython 3.11 specialises a function's code only
from its 8th call on (quickening counts calls, not loop turns; 3.12 counts both), and its
countdown then runs 0.67-0.72x as long on the 2-core VM (warm_ns_per_iter against ns_per_iter;
README, "Faithful by default"). A probe thread that loops inside
one call runs cold; a task called again and again, as a pool's, runs warm."""
import socket
import sys

import _probe

now = _probe.now


COUNTDOWN = "def countdown(n):\n    while n > 0:\n        n -= 1\n"  # as _probe.countdown


def fresh_countdown():
    """A countdown with its own, never-called code object (so not yet specialised by 3.11)."""
    g = {}
    exec(compile(COUNTDOWN, "<countdown>", "exec"), g)
    return g["countdown"]


def cold_warm_per_iter(n, rounds, with_warm=True):
    """The least time an iteration of a countdown's first call took over ``rounds`` calls,
    each on a fresh countdown, and (``with_warm``, else None) the least once a countdown has
    been called ten times (3.11 quickens it at the 8th); the rounds alternate, so a drift of
    the machine's speed moves both alike."""
    warm = fresh_countdown()
    for _ in range(10):
        warm(10)
    cold_best = warm_best = None
    for _ in range(rounds):
        for f, is_cold in ((fresh_countdown(), True), (warm, False))[:2 if with_warm else 1]:
            t = now()
            f(n)
            dt = (now() - t) / n
            if is_cold:
                cold_best = dt if cold_best is None or dt < cold_best else cold_best
            else:
                warm_best = dt if warm_best is None or dt < warm_best else warm_best
    return cold_best, warm_best


def best_per_iter(f, n, rounds):
    best = None
    for _ in range(rounds):
        t = now()
        f(n)
        dt = (now() - t) / n
        best = dt if best is None or dt < best else best
    return best


def calls(n):
    d, k, g = {}, 1, None
    g = d.get
    while n > 0:
        n -= 1
        g(k)


def sock_calls(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        f = s.fileno
        while n > 0:
            n -= 1
            f()
    finally:
        s.close()


def tcp_pair():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    a = socket.create_connection(ls.getsockname())
    b = ls.accept()[0]
    ls.close()
    for x in (a, b):
        x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return a, b


PAIR = []  # the connected pair sock_pairs uses, made before it is timed


def sock_pairs(n):
    a, b = PAIR
    send, recv, msg = a.send, b.recv, b"x"
    while n > 0:
        n -= 1
        send(msg)
        recv(1)


def ticks_per_iter_2x(n):
    """Ticks per countdown iteration on 2.x, counted by PyThreadState.tick_counter."""
    try:
        import ctypes
        import thread

        get = ctypes.pythonapi.PyThreadState_Get
        get.restype = ctypes.c_void_p
        ts = get()
        # PyThreadState of 2.7 on LP64: ... dict @120, tick_counter @128, gilstate_counter @132,
        # async_exc @136, thread_id @144. Check the layout by the thread id before trusting it.
        if ctypes.sizeof(ctypes.c_void_p) != 8 or ctypes.c_long.from_address(ts + 144).value != thread.get_ident():
            return None
        tc = ctypes.c_int.from_address(ts + 128)
        ci = sys.getcheckinterval()
        a = tc.value
        _probe.countdown(n)
        b = tc.value
        # The ticker runs from check_interval down past 0: check_interval + 1 ticks a period.
        return (b - a) * (ci + 1) / float(n)
    except Exception:
        return None


if __name__ == "__main__":
    p = _probe.arg_parser(__doc__)
    p.add_argument("--n", type=int, default=1000000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pairs", type=int, default=None,
                   help="socket pairs a round (default n / 50, at least 100: system calls take microseconds)")
    p.add_argument("--only", choices=["countdown"], default=None,
                   help="countdown: time the countdown loop alone (ns_per_iter), the quick check of a cached profile")
    a = p.parse_args()
    per_iter, warm_iter = cold_warm_per_iter(a.n, a.rounds, with_warm=a.only is None)
    if a.only == "countdown":
        _probe.emit("calibrate", {"n": a.n, "rounds": a.rounds, "ns_per_iter": per_iter * 1e9})
        sys.exit(0)
    per_call_iter = best_per_iter(calls, a.n, a.rounds)
    per_sock_iter = best_per_iter(sock_calls, a.n, a.rounds)
    pairs = a.pairs if a.pairs else max(a.n // 50, 100)
    PAIR.extend(tcp_pair())
    try:
        per_pair_iter = best_per_iter(sock_pairs, pairs, a.rounds)
    finally:
        for s in PAIR:
            s.close()
    out = {"n": a.n, "ns_per_iter": per_iter * 1e9, "call_ns": max(per_call_iter - per_iter, 0.0) * 1e9,
           "sock_call_ns": max(per_sock_iter - per_iter, 0.0) * 1e9, "sock_pair_ns": max(per_pair_iter - per_iter, 0.0) * 1e9,
           "pairs": pairs, "rounds": a.rounds, "warm_ns_per_iter": warm_iter * 1e9}
    if sys.version_info[0] == 2 or sys.version_info[:2] in ((3, 0), (3, 1)):
        tpi = ticks_per_iter_2x(a.n)
        out["ticks_per_iter_source"] = "tick_counter" if tpi is not None else "assumed (2.7 ceval: INPLACE_SUBTRACT, JUMP_ABSOLUTE, COMPARE_OP)"
        tpi = round(tpi, 2) if tpi is not None else 3.0
        out["check_interval"] = sys.getcheckinterval()
        out["ticks_per_iter"] = tpi
        out["tick_ns"] = out["ns_per_iter"] / tpi
        out["ns_per_check"] = out["tick_ns"] * (out["check_interval"] + 1)
    else:
        out["ticks_per_iter"] = 1.0
        out["ticks_per_iter_source"] = "one eval-breaker check per loop back-edge"
        out["tick_ns"] = out["ns_per_iter"]
        out["switch_interval_s"] = sys.getswitchinterval() if hasattr(sys, "getswitchinterval") else None
    _probe.emit("calibrate", out)
