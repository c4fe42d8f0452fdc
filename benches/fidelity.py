"""How close is the model to the real interpreters on this machine? The issue's targets:
every probe metric's median within ±15 % of the real one, convoy quartiles within ±25 %, for
3.11 (this interpreter) and 2.7 where present, on 1 and 2 cores. Prints, per version and core
set, each metric's ratio model/real and whether it meets the target (not the looser per-metric
tolerances `gilmodel validate` uses for its exit code).

Run: .venv/bin/python benches/fidelity.py [--pin|--unpin] [repeats] [scale]   (runs validate for 3.11 and 2.7;
     the model's threads pinned where each has a core of its own, as validate runs them;
     --pin: always pinned; --unpin: always left to the OS scheduler, Scenario(pin_threads=False))
     .venv/bin/python benches/fidelity.py --from docs/validation   (a saved run's samples)
"""

import os
import sys
from types import SimpleNamespace

import pandas as pd

import gilmodel as gm
from gilmodel.fidelity import tolerance as tl


def main() -> None:
    for flag, pin in (("--pin", True), ("--unpin", False)):
        if flag in sys.argv:
            from gilmodel.fidelity import model_side

            sys.argv.remove(flag)
            model_side.PIN_THREADS = pin
    if sys.argv[1:2] == ["--from"]:
        d = sys.argv[2]
        res = SimpleNamespace(samples=pd.read_parquet(os.path.join(d, "samples.parquet")),
                              verdicts=pd.read_parquet(os.path.join(d, "verdicts.parquet")), errors=[])
        # The targets are for 3.11 and 2.7.
        res.verdicts = res.verdicts[res.verdicts.version.str.match(r"(2\.7|3\.11)\.")]
        repeats = int(res.samples[res.samples.side == "real"].groupby(["version", "cores", "probe", "metric"]).size().max())
        scale = float("nan")
    else:
        repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
        scale = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
        py27 = os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python")
        pythons = [py27] if os.path.exists(py27) else []
        res = gm.validate(pythons, repeats=repeats, scale=scale, out=None, progress=False, say=lambda s: None)
    target = {k: tl.Tolerance(0.25 if k[0] == "convoy" else 0.15, 0.0, k[0] == "convoy") for k in tl.TOLERANCES}
    met = total = 0
    for (version, cores), g in res.verdicts.groupby(["version", "cores"], sort=False):
        print("CPython %s, cores %s (%d repeats, scale %g)" % (version, cores, repeats, scale))
        for r in g.itertuples():
            s = res.samples
            sel = (s.version == version) & (s.cores == cores) & (s.probe == r.probe) & (s.metric == r.metric)
            t = target.get((r.probe, r.metric)) or target.get((r.probe, "*")) or tl.Tolerance(0.15)
            if getattr(r, "pooled", False):  # one figure per side, over every repeat's pings (Tolerance.pooled)
                v = tl.compare([r.real_median], [r.model_median], t)
            else:
                v = tl.compare(s[sel & (s.side == "real")].value.tolist(), s[sel & (s.side == "model")].value.tolist(), t)
            met += v.ok
            total += 1
            print("  %-12s %-22s real %10.4g  model %10.4g  model/real %6.3f  %s" % (
                r.probe, r.metric, v.real_median, v.model_median, v.ratio, "meets target" if v.ok else "misses (%s)" % v.why))
    print("%d of %d metrics meet the issue's target; %d of %d within validate's tolerances" % (
        met, total, int(res.verdicts.ok.sum()), len(res.verdicts)))
    for e in res.errors:
        print("error:", e)


if __name__ == "__main__":
    main()
