"""Does the model's spin follow the host's speed as the interpreter does?

Alternates, on core 0, for SECONDS: the engine's spin calibration (`gilmodel._core.recalibrate`,
ns per iteration) and the real interpreter's countdown (`probes/calibrate.py --only countdown`,
ns per iteration), and prints each one's range, their ratio's range and their correlation. If
the ratio held while both moved, a model whose ticks were counted in spin iterations would slow
with the host; where it does not, the model must be told the interpreter's speed (what
`validate` does per repeat: `fidelity.at_repeat_speed`).

    .venv/bin/python benches/spin_vs_interpreter.py [SECONDS] [PYTHON]
"""

import os
import sys
import time

import numpy as np

from gilmodel import _core
from gilmodel.interpreters import detect
from gilmodel.probes.runner import run_probe


def countdown_ns(interp) -> float:
    """The countdown's ns an iteration now, on core 0, as the profiles' speed check times it."""
    return float(run_probe(interp, "calibrate", {"n": 200_000, "rounds": 5, "only": "countdown"}, [0])["ns_per_iter"])


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    py = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python3.11")
    interp = detect(py)
    os.sched_setaffinity(0, {0})
    rows = []
    end = time.time() + seconds
    while time.time() < end:
        before = _core.recalibrate()[1]
        ns = countdown_ns(interp)
        after = _core.recalibrate()[1]
        rows.append((ns, (before + after) / 2))
    a = np.array(rows)
    r = a[:, 0] / a[:, 1]
    print("%d alternated samples over %.0f s, %s" % (len(a), seconds, py))
    for name, x in (("interpreter countdown, ns/iter", a[:, 0]), ("engine spin, ns/iter", a[:, 1]), ("ratio", r)):
        print("%-32s min %8.3f  median %8.3f  max %8.3f  (max/min x%.2f)" % (name, x.min(), np.median(x), x.max(),
                                                                            x.max() / x.min()))
    print("correlation of the two: %.2f" % np.corrcoef(a[:, 0], a[:, 1])[0, 1])


if __name__ == "__main__":
    main()
