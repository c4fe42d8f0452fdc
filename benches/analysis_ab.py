"""The analysis speed of this build against another one, alternating on the same machine, so
that a host whose speed drifts moves both alike: the four tables and ``summary()`` per 10 M
events, in processes that each make a fresh big run (as benches/analysis.py does) and time 3
calls of each: the median of all calls, and of the first calls alone (a first call touches
fresh memory: on a VM that hands freed memory back to its host, that is most of its cost).

Install the other build into a folder first, e.g. for a commit OLD:
    git worktree add /tmp/old-src OLD && .venv/bin/pip install -q -c constraints.txt --no-deps \\
        --target /tmp/old-pkg /tmp/old-src
Run: .venv/bin/python benches/analysis_ab.py /tmp/old-pkg [rounds]
"""

import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import gilmodel as gm
from gilmodel import analysis, eventlog
sc = gm.Scenario(gm.TickGIL(check_interval=10), [
    gm.Thread("a", [gm.cpu(30_000_000)]), gm.Thread("b", [gm.cpu(30_000_000)]),
    gm.Thread("io", [gm.loop(gm.cpu(5), gm.send(1024))], peer=gm.drain()),
], tick_ns=5, stop_thread="a", max_events=30_000_000)
run = gm.run(sc)
n = run.events.num_rows
out = {"tables": [], "summary": []}
for _ in range(3):
    eventlog._DECODED.clear()
    t = time.perf_counter()
    for name in ("holds", "handoffs", "waits", "io_response"):
        getattr(analysis, name)(run.events)
    out["tables"].append((time.perf_counter() - t) * 1e7 / n)
    eventlog._DECODED.clear()
    t = time.perf_counter()
    analysis.summary(run)
    out["summary"].append((time.perf_counter() - t) * 1e7 / n)
print(json.dumps(out))
"""


def main() -> None:
    other = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    got = {"this": {"tables": [], "summary": []}, "other": {"tables": [], "summary": []}}
    builds = [("other", dict(os.environ, PYTHONPATH=other)), ("this", dict(os.environ))]
    for r in range(rounds):
        # Each build goes first in every other round: the second process of a round measured
        # 0.12-0.16 s slower per 10 M events in its later calls, whichever build it was (3 A/B
        # runs of identical code, 2026-12-02).
        for who, env in builds if r % 2 == 0 else builds[::-1]:
            r = json.loads(subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                                          capture_output=True, text=True).stdout)
            for k, v in r.items():
                got[who][k].extend(v)
    def median(v):
        v = sorted(v)
        return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2

    for what in ("summary", "tables"):
        line = []
        for who in ("this", "other"):
            v = got[who][what]
            first = v[::3]
            line.append("%s median %.2f s (min %.2f; first calls median %.2f, max %.2f)"
                        % (who, median(v), min(v), median(first), max(first)))
        print("per 10 M events, %-8s %s" % (what + ":", "; ".join(line)))


if __name__ == "__main__":
    main()
