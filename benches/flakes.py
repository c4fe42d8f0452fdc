"""Hunt flaky tests: run the whole pytest suite N times on a quiet machine and M times with K
busy cores, and report every test that failed even once, with its message.

    .venv/bin/python benches/flakes.py --quiet 20 --loaded 3 --busy 1 [--out docs/flakes.md] [-- PYTEST ARGS]

A busy core is a separate process spinning in a loop (a laptop with a browser open), left to
the OS scheduler unless ``--pin``. Each run writes a JUnit XML file; the report counts passes,
failures and skips per run and lists each failing test with how often it failed, in which
mode, and its first message. Run it with nothing else on the machine: the quiet runs are only
quiet if the machine is.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def busy(k: int, pin: bool) -> List[subprocess.Popen]:
    procs = []
    ncpu = os.cpu_count() or 1
    for i in range(k):
        pre = (lambda c=i % ncpu: os.sched_setaffinity(0, {c})) if pin else None
        procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pre))
    return procs


def parse(junit: str) -> Tuple[Dict[str, int], Dict[str, str]]:
    """Counts and {test id: first line(s) of its failure} from one JUnit XML file."""
    counts = collections.Counter()
    failed = {}
    root = ET.parse(junit).getroot()
    for tc in root.iter("testcase"):
        tid = "%s::%s" % (tc.get("classname", ""), tc.get("name", ""))
        bad = [c for c in tc if c.tag in ("failure", "error")]
        if bad:
            counts["failed"] += 1
            msg = (bad[0].get("message") or bad[0].text or "").strip()
            failed[tid] = msg[:600]
        elif any(c.tag == "skipped" for c in tc):
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return dict(counts), failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiet", type=int, default=5, help="runs with nothing else busy")
    ap.add_argument("--loaded", type=int, default=2, help="runs with --busy busy cores")
    ap.add_argument("--busy", type=int, default=1, help="busy cores in the loaded runs")
    ap.add_argument("--pin", action="store_true", help="pin each busy process to its own core")
    ap.add_argument("--out", help="also write the report (Markdown) here")
    ap.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (default: the whole suite)")
    a = ap.parse_args(argv)
    modes = ["quiet"] * a.quiet + ["loaded"] * a.loaded
    tmp = tempfile.mkdtemp(prefix="gilmodel-flakes-")
    fails: Dict[str, List[Tuple[str, int, str]]] = collections.defaultdict(list)
    lines = []
    t_all = time.time()
    for i, mode in enumerate(modes):
        junit = os.path.join(tmp, "run%02d.xml" % i)
        hogs = busy(a.busy, a.pin) if mode == "loaded" else []
        t = time.time()
        try:
            # SIGINT as a terminal has it (a background job of a script starts with it ignored).
            p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", junit]
                               + (a.pytest_args or ["tests"]), cwd=ROOT, capture_output=True, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        finally:
            for h in hogs:
                h.send_signal(signal.SIGKILL)
                h.wait()
        secs = time.time() - t
        if not os.path.exists(junit):
            print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
            raise SystemExit("run %d: pytest wrote no report (exit %d)" % (i + 1, p.returncode))
        counts, failed = parse(junit)
        for tid, msg in failed.items():
            fails[tid].append((mode, i + 1, msg))
        line = "run %2d %-6s exit %d  %4d passed %3d failed %3d skipped  %5.0f s%s" % (
            i + 1, mode, p.returncode, counts.get("passed", 0), counts.get("failed", 0), counts.get("skipped", 0), secs,
            ("  (" + a.busy.__str__() + " busy)") if mode == "loaded" else "")
        print(line, flush=True)
        lines.append(line)
    out = ["# Flaky-test hunt", "",
           "`%s` on %s (%s, %d cores, Linux %s), %s; %d quiet and %d loaded runs (%d busy core%s%s), %.0f min." % (
               " ".join(["benches/flakes.py"] + (argv if argv is not None else sys.argv[1:])), platform.node(), _cpu(),
               os.cpu_count() or 0, platform.release(), time.strftime("%Y-%m-%d"), a.quiet, a.loaded, a.busy,
               "" if a.busy == 1 else "s", ", pinned" if a.pin else "", (time.time() - t_all) / 60), "", "```"] + lines + ["```", ""]
    if not fails:
        out.append("No test failed in any run.")
    else:
        out.append("| test | failed (quiet) | failed (loaded) | first message |")
        out.append("|---|---|---|---|")
        for tid, fs in sorted(fails.items()):
            q = sum(1 for m, _, _ in fs if m == "quiet")
            msg = fs[0][2].replace("|", "\\|").replace("\n", " ")[:300]
            out.append("| `%s` | %d of %d | %d of %d | %s |" % (tid, q, a.quiet, len(fs) - q, a.loaded, msg))
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 1 if fails else 0


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    sys.exit(main())
