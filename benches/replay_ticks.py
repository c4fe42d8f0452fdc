"""How long a replay's ticks last: an observed real program (the ``cpu_pair`` probe: two
CPU-bound threads after the same work done in the main thread) replayed by ``gm.whatif`` under
its own GIL, each thread's hold total in the replay over what its ``cpu`` ticks ask for
(ticks × ``tick_ns``), and the observed hold total over the same (the conversion, which should
be 1.00). A ratio above 1 is the spin running slower than it was calibrated: the figure
``rust/engine/spin.rs`` quotes.

    sudo .venv/bin/python benches/replay_ticks.py [REPEATS] [PYTHON]
"""

import os
import sys
import tempfile

import numpy as np

import gilmodel as gm
from gilmodel import analysis
from gilmodel.probes import path as probe_path


def holds(run):
    h = analysis.holds(run.events)
    d, t = np.asarray(h.column("dur_ns")), np.asarray(h.column("thread"))
    return {int(i): float(d[t == i].sum()) / 1e9 for i in np.unique(t)}


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    py = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python3.11")
    print("| repeat | thread | observed hold s | asked (ticks × tick_ns) s | observed / asked | replay / asked |")
    print("|---|---|---|---|---|---|")
    for rep in range(repeats):
        with tempfile.NamedTemporaryFile("w+", suffix=".json") as out:
            res = gm.whatif([py, "-E", "-s", "-B", probe_path("cpu_pair"), "--n", "3000000"], gils=[], repeats=1,
                            progress=False, quiet=True, stdout=out.name)
        sc = res.replay.scenario
        replay = next(iter(res.runs.values()))
        obs, rep_h = holds(res.observed), holds(replay)
        for i, th in enumerate(sc.threads):
            asked = sum(op.ticks for op in th.program if isinstance(op, gm.scenario.Cpu)) * sc.tick_ns / 1e9
            print("| %d | %s | %.3f | %.3f | %.2f | %.2f |" % (rep, th.name, obs.get(i, 0.0), asked,
                                                            obs.get(i, 0.0) / asked, rep_h.get(i, 0.0) / asked))
    print("\nspin calibration (overhead ns, ns per iteration): %.2f, %.3f; tick_ns %.1f (%s)" % (
        *gm._core.calibration(), sc.tick_ns, res.replay.profile.describe()))


if __name__ == "__main__":
    main()
