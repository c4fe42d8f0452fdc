"""`gm.whatif` on the validation workloads run as real programs (python/gilmodel/probes/):

- ``cpu_pair``: two CPU-bound threads (after the same work done sequentially);
- ``io_latency``: a thread echoing pings from another process beside a CPU-bound thread;
- ``convoy``: a thread sending 1 MiB in 1 KiB chunks beside a CPU-bound thread;
- ``thread_pool``: a main thread feeding 400 tasks to 2 workers through a ``queue.Queue`` and
  collecting their results through another (the waits paired with their wakes).

Each of REPEATS rows is ``gm.whatif`` with ``observations=OBSERVATIONS``: the program observed
that many times, the first observation replayed REPLAYS times under the interpreter's own GIL
and under the priority GIL and BFS (the figures are the replays' medians, as ``gm.whatif``
gives them by default). Columns, medians over the rows:

- the check: replay / real for elapsed time and each busy thread's hold and wait totals, to be
  within ±20 % (the worst busy hold and wait ratios; how many rows are within);
- pooled: each busy thread's wait summed over the rows, replay over real, the worst thread;
- the real spread: the other observations over the first, for the figure of the worst busy
  wait; "or the spread": rows whose replay is within ±20 % or no farther off than another real
  run on each figure (``reproduces["within_spread"]``);
- the GIL's delay after the blocking calls (every one, those that returned at once too) of the
  thread the GIL delayed most after them in the real run (the echo thread; the sender; the
  pool's main thread collecting results): p50 / p99 and the delays' sum, which the priority
  GIL and BFS should cut.

    sudo .venv/bin/python benches/whatif.py [--each] [REPEATS] [PYTHON ...]

(REPEATS default 3; OBSERVATIONS and REPLAYS are 3.)

``--each``: also, under the table's line, each row's two verdicts and its busy threads' wait
totals, real and replayed, with the spread's ratio of each.
"""

import os
import statistics
import sys
import tempfile

import gilmodel as gm
from gilmodel.probes import path as probe_path
from gilmodel.whatif import _BUSY_SHARE

WORKLOADS = [
    ("cpu_pair", ["--n", "3000000"]),
    # A gap that is no multiple of the 5 ms interval: at 5 or 10 ms the echo's cycle (a GIL
    # wait after its recv, another after its send) lines up with the pings, its recv returns
    # at once and its delays fall after its sends; at 12 ms it waits for each ping in recv,
    # and the GIL's delay after it is the echo's latency, as in ccbench.
    ("io_latency", ["--cpu-threads", "1", "--pings", "100", "--gap-us", "12000"]),
    ("convoy", ["--bytes", str(1 << 20), "--cpu-threads", "1"]),
    ("thread_pool", ["--ks", "2", "--tasks", "400"]),
]
GILS = [("priority", gm.PriorityGIL()), ("bfs", gm.BfsGIL())]
OBSERVATIONS = 3
REPLAYS = 3  # per GIL, the figures their medians: gm.whatif's and the CLI's default


def main():
    argv = sys.argv[1:]
    each = argv[:1] == ["--each"]
    argv = argv[1:] if each else argv
    repeats = int(argv[0]) if argv else 3
    pythons = argv[1:] or [sys.executable]
    print("| interpreter | workload | elapsed replay/real | worst busy hold ratio | worst busy wait ratio "
          "| pooled wait ratio | real spread of that wait | within ±20 % | or the spread "
          "| most delayed I/O thread's p50 / p99 ms, delays' sum s: real | own replay | priority | bfs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for py in pythons:
        for name, args in WORKLOADS:
            rows = []
            for _ in range(repeats):
                with tempfile.NamedTemporaryFile("w+", suffix=".json") as out:
                    res = gm.whatif([py, "-E", "-s", "-B", probe_path(name)] + args, gils=GILS, repeats=REPLAYS,
                                    observations=OBSERVATIONS, progress=False, quiet=True, stdout=out.name)
                rows.append(res)
            version = rows[0].replay.version

            def med(f):
                vals = [f(r) for r in rows]
                vals = [v for v in vals if v is not None]
                return statistics.median(vals) if vals else float("nan")

            def worst_key(r, kind):
                v = [k for k in r.reproduces["ratios"] if k.startswith(kind + ":")]
                return max(v, key=lambda k: abs(r.reproduces["ratios"][k] - 1.0)) if v else None

            def worst(r, kind):
                k = worst_key(r, kind)
                return r.reproduces["ratios"][k] if k else None

            def spread_of_worst(r):
                return r.reproduces["spread"].get(worst_key(r, "wait"))

            def io(r, row):
                th = r.threads.to_pandas()
                real = th[th.gil == "real"]
                busiest = real.thread[real.io_delay_s.idxmax()]
                t = th[(th.gil == r.table.column("gil")[row].as_py()) & (th.thread == busiest)]
                return (t.io_p50_ms.iloc[0], t.io_p99_ms.iloc[0], t.io_delay_s.iloc[0]) if len(t) else (float("nan"),) * 3

            def pooled(kind):
                """Each thread's hold or wait summed over the observations, replay over real, for the
                threads busy in the sums (as ``reproduces`` judges one observation: at least
                ``_BUSY_SHARE`` of all threads' hold and wait): the worst. A total made of a few
                switch intervals (the CPU pair's main thread waits 15-30 ms in all) varies 2x
                between real runs; pooled, a bias shows apart from that draw."""
                real, own = {}, {}
                for r in rows:
                    th = r.threads.to_pandas()
                    own_label = r.table.column("gil")[1].as_py()
                    for side, into in (("real", real), (own_label, own)):
                        for n, h, w in zip(th.thread[th.gil == side], th.hold_s[th.gil == side], th.wait_s[th.gil == side]):
                            x = into.setdefault(n, [0.0, 0.0])
                            x[0] += h
                            x[1] += w
                total = sum(h + w for h, w in real.values())
                at = 0 if kind == "hold" else 1
                v = [own[n][at] / x[at] for n, x in real.items() if n in own and x[at] >= _BUSY_SHARE * total and x[at] > 0]
                return max(v, key=lambda x: abs(x - 1.0)) if v else float("nan")

            cells = []
            for k in range(4):
                cells.append("%.3f / %.3f, %.3f" % tuple(med(lambda r: io(r, k)[x]) for x in range(3)))
            ok = sum(r.reproduces["ok"] for r in rows)
            spread_ok = sum(bool(r.reproduces["within_spread"]) for r in rows)
            print("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %d of %d | %d of %d | %s |" % (
                version, name, med(lambda r: r.reproduces["ratios"]["elapsed"]), med(lambda r: worst(r, "hold")),
                med(lambda r: worst(r, "wait")), pooled("wait"), med(spread_of_worst), ok, repeats, spread_ok, repeats,
                " | ".join(cells)))
            for i, r in enumerate(rows if each else ()):
                th = r.threads.to_pandas().set_index(["gil", "thread"])
                own = r.table.column("gil")[1].as_py()
                busy = sorted({k.split(":", 1)[1] for k in r.reproduces["ratios"] if ":" in k})
                sp = r.reproduces["spread"]
                print("    row %d: %s, %s the spread; wait s real / replay (the spread's ratio): %s" % (
                    i + 1, "within" if r.reproduces["ok"] else "not within",
                    "within" if r.reproduces["within_spread"] else "not within",
                    ", ".join("%s %.4f / %.4f (%.2f)" % (n, th.loc[("real", n), "wait_s"], th.loc[(own, n), "wait_s"],
                                                         sp.get("wait:" + n, float("nan"))) for n in busy)))
            sys.stdout.flush()


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("benches/whatif.py observes real programs: run it as root")
    main()
