"""What gm.scenario_from captures from two real 2.7 programs (python/gilmodel/probes/):

- ``cpu_pair`` observed: the median hold of the GIL and the median gap from a release to the
  same thread's next request (the observer's probes fire at every periodic release, which is
  why docs/whatif.md says 2.x's observation is slowed);
- ``thread_pool`` (2 workers, 400 tasks) observed and turned into a replay: per thread, the
  lock waits paired with the wake that ended them (gets), the puts, and the joins.

    sudo .venv/bin/python benches/whatif_capture.py [PYTHON]
"""

import os
import sys

import numpy as np

import gilmodel as gm
from gilmodel.eventlog import CODE, decode
from gilmodel.probes import path

py = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python2.7")
r = gm.observe([py, "-E", "-s", "-B", path("cpu_pair"), "--n", "3000000"], stdout=os.devnull)
lg = decode(r.events)
gaps = []
for k in np.unique(lg.thread):
    m = lg.thread == k
    t, e = lg.t[m], lg.ev[m]
    after = np.flatnonzero(e[:-1] == CODE["release"])
    nxt = after[e[after + 1] == CODE["request"]]  # a release followed by the thread's next request
    gaps.append(t[nxt + 1] - t[nxt])
holds = gm.analysis.holds(r.events).column("dur_ns").to_numpy()
print("%s cpu_pair observed: median hold %.1f us, median release-to-request gap %.1f us (%d gaps)"
      % (r.meta["gil"]["interpreter"], np.median(holds) / 1e3, np.median(np.concatenate(gaps)) / 1e3,
         sum(g.size for g in gaps)))
r = gm.observe([py, "-E", "-s", "-B", path("thread_pool"), "--ks", "2", "--tasks", "400"], stdout=os.devnull)
print(gm.scenario_from(r, quiet=True).threads.to_pandas()[["name", "get_ops", "put_ops", "paired_waits", "join_ops",
                                                            "sleep_ops"]].to_string(index=False))
