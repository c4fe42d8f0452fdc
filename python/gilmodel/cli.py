"""The ``gilmodel`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from . import _core
from .demo import DEMO_GILS
from .policies import CPYTHON_VERSIONS, POLICIES, resolve_gil
from .run import RunHalted

__all__ = ["main"]


def _cores(s: Optional[str]):
    if s is None:
        return None
    try:
        return [int(c) for c in s.split(",") if c.strip()]
    except ValueError:
        raise SystemExit("--cores: expected a comma-separated list of core numbers such as 0,1; got %r" % s)


def _cmd_demo(a) -> int:
    from .demo import demo

    gils = [g.strip() for g in a.gils.split(",") if g.strip()]
    if a.all:
        from .interpreters import discover

        found = [i.minor for i in discover([], True) if i.minor in CPYTHON_VERSIONS]
        gils = [g for g in gils if g in CPYTHON_VERSIONS] + [m for m in found if m not in gils] + \
               [g for g in gils if g not in CPYTHON_VERSIONS]
    try:
        demo(a.out, _cores(a.cores), a.bytes, gils, repeats=a.repeats, real=not a.no_real)
    except ValueError as e:
        raise SystemExit("gilmodel demo: %s" % e)
    return 0


def _params(a, exp) -> dict:
    """The experiment's parameters from the command line: the named flags it takes, then
    ``--param NAME=VALUE`` (VALUE read as JSON, else as a string)."""
    takes = exp.params()
    kw = {}
    for flag, name in (("ticks", "ticks"), ("duration", "duration_s"), ("cpu_threads", "cpu_threads"),
                       ("bytes", "total_bytes"), ("tick_ns", "tick_ns")):
        v = getattr(a, flag)
        if v is None:
            continue
        if name not in takes:
            raise ValueError("--%s: experiment %r has no parameter %s; it takes %s" % (
                flag.replace("_", "-"), exp.name, name, ", ".join(sorted(takes))))
        kw[name] = v
    for item in a.param or ():
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise ValueError("--param %r: expected NAME=VALUE" % item)
        try:
            kw[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            kw[k.strip()] = v
    exp.check_params(kw, "--param: ")
    return kw


def _cmd_run(a) -> int:
    from .experiments import get

    exp = get(a.scenario)
    gil = resolve_gil(a.gil or a.version)
    res = exp.run(gil, _cores(a.cores), log=bool(a.out), **_params(a, exp))
    print(json.dumps({**res.metrics, **res.detail}, indent=2, default=str))
    if a.out:
        r = res.runs[exp.phases[-1]]
        r.to_parquet(a.out)
        print("wrote %s (%d events, the %s run)" % (a.out, r.events.num_rows, exp.phases[-1]), file=sys.stderr)
    return 0


def _cmd_plot(a) -> int:
    from .run import load_run

    r = load_run(a.run)
    out = a.out or (a.run.rsplit(".", 1)[0] + ".png")
    if a.beside:
        from .plot import beside

        other = load_run(a.beside)
        title = lambda run, f: "%s: %s" % (os.path.basename(f), run.meta.get("scenario") or run.meta["gil"]["policy"])
        beside([(title(r, a.run), r), (title(other, a.beside), other)], out,
               0.0 if a.start is None else a.start * 1e3, None if a.end is None else a.end * 1e3)
    else:
        r.plot(out, a.start, a.end)
    print("wrote %s" % out)
    return 0


def _cmd_trace(a) -> int:
    from .run import load_run

    from .trace import format_of, to_trace

    runs = [load_run(a.run)] + ([load_run(a.beside)] if a.beside else [])
    fmt = a.format or (format_of(a.out) if a.out else "perfetto")
    out = a.out or (a.run.rsplit(".", 1)[0] + (".perfetto-trace" if fmt == "perfetto" else ".trace.json"))
    to_trace(runs if len(runs) > 1 else runs[0], out, None if a.start is None else int(a.start * 1e9),
             None if a.end is None else int(a.end * 1e9), format=fmt)
    print("wrote %s (%s; open it in ui.perfetto.dev)" % (out, fmt))
    return 0


def _cmd_observe(a) -> int:
    from .observe import ObserveError, ObserveInterrupted, observe

    cmd = list(a.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if bool(cmd) == (a.pid is not None):
        raise SystemExit("gilmodel observe: give a command after -- (e.g. -- python3 app.py) or --pid PID")
    status = 0
    try:
        r = observe(cmd or None, pid=a.pid, duration_s=a.duration, ring_pages=a.ring_pages, stdout=a.stdout)
    except ObserveInterrupted as e:
        r, status = e.run, 130
        print("gilmodel: %s" % e, file=sys.stderr)
    except ObserveError as e:
        print("gilmodel: error: %s" % e, file=sys.stderr)
        return 2
    s = r.summary()
    o = r.meta["observed"]
    print("observed %s (CPython %s, %s): %d threads, %d events, %.3f s, stopped by %s; %d records lost"
          % (" ".join(cmd) if cmd else "pid %d" % a.pid, r.meta["gil"]["interpreter"], o["binary"], r.threads.num_rows,
             r.events.num_rows, s["elapsed_s"], r.meta["stopped_by"], o["lost_records"]), file=sys.stderr)
    keys = ("switches_per_s", "acquisitions", "handoffs", "handoff_latency_p50_us", "handoff_latency_p99_us", "wait_p50_ms",
            "wait_p99_ms", "timeouts", "drop_requests", "futile_wakeups", "gil_utilisation")
    print(json.dumps({k: s[k] for k in keys if k in s}, indent=1, default=float))
    if a.out:
        r.to_parquet(a.out)
        print("wrote %s" % a.out, file=sys.stderr)
    if a.plot:
        r.plot(a.plot)
        print("wrote %s" % a.plot, file=sys.stderr)
    return status


def _cmd_whatif(a) -> int:
    from .observe import ObserveError
    from .whatif import WhatIfError, whatif

    cmd = list(a.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if bool(cmd) == (a.source is not None):
        raise SystemExit("gilmodel whatif: give a command after -- (e.g. -- python3 app.py) or --from RUN.parquet, "
                         "not both")
    gils = None
    if a.gil:
        gils = [(n.strip(), resolve_gil(n.strip())) for g in a.gil for n in g.split(",") if n.strip()]
    try:
        res = whatif(cmd or None, run=a.source, gils=gils, repeats=a.repeats, observations=a.observations,
                     cpus=_cores(a.cpus), partial=a.partial, progress=not a.no_progress, stdout=a.stdout)
    except (ObserveError, WhatIfError) as e:
        print("gilmodel: error: %s" % e, file=sys.stderr)
        return 2
    print(res.format())
    os.makedirs(a.out, exist_ok=True)
    import pyarrow.parquet as pq

    files = [os.path.join(a.out, n) for n in ("whatif.parquet", "whatif_threads.parquet", "whatif.png")]
    pq.write_table(res.table, files[0])
    pq.write_table(res.threads, files[1])
    res.plot(files[2])
    if cmd:
        for k, o in enumerate([res.observed] + res.also_observed, 1):
            files.append(os.path.join(a.out, "observed.parquet" if k == 1 else "observed_%d.parquet" % k))
            o.to_parquet(files[-1])
    print("wrote %s" % ", ".join(files), file=sys.stderr)
    return 0 if res.reproduces["ok"] else 1


def _cmd_reproduce(a) -> int:
    from .gallery import EXPERIMENTS, canonical, reproduce

    names = list(EXPERIMENTS) if a.name == "all" else [canonical(a.name)]
    for n in names:
        r = reproduce(n, a.out, a.scale, _cores(a.cores))
        print("%s: wrote %s and %s" % (n, r["figure"], r["table"]))
    return 0


def _cmd_validate_events(a, cores) -> int:
    from . import profiles
    from .fidelity import _default_cores, discover
    from .fidelity.events import EVENT_PROBES, report, validate_events
    from .observe import ObserveError, can_observe

    why = can_observe()
    if why:
        print("gilmodel: error: validate --events observes the real interpreters: %s" % why, file=sys.stderr)
        return 2
    interps = [i for i in discover(list(a.python or ()), a.all) if i.implementation == "CPython"]
    core_sets = cores or _default_cores()
    cals = {}
    for it in interps:
        cals[it.label] = profiles.calibrate(it.path, repeats=3, quiet=True)
    total = len(interps) * len(core_sets) * len(EVENT_PROBES)  # cases, each of --repeats observations
    done = [0]

    def progress(interp, cs, probe):
        done[0] += 1
        print("[%d/%d] %s cores %s %s" % (done[0], total, interp.version, ",".join(map(str, cs)), probe), file=sys.stderr)

    try:
        df = validate_events(interps, core_sets, cals, a.scale, a.out, progress, repeats=a.repeats)
    except ObserveError as e:
        print("gilmodel: error: %s" % e, file=sys.stderr)
        return 2
    print(report(df))
    print("wrote %s" % ", ".join(os.path.join(a.out, f) for f in ("events.parquet", "events.md")), file=sys.stderr)
    return 0 if df.within.all() else 1


def _cmd_validate(a) -> int:
    from .fidelity import validate

    cores = [_cores(c) for c in a.cores] if a.cores else None
    if a.events:
        return _cmd_validate_events(a, cores)
    probes = [p.strip() for p in a.probes.split(",") if p.strip()] if a.probes else None
    command = "gilmodel " + " ".join(sys.argv[1:]) if a.command is None else a.command
    res = validate(a.python or (), a.all, cores, a.repeats, probes, a.scale, a.out, not a.no_progress, command,
                   quick=a.quick)
    if a.out:
        print("wrote %s" % ", ".join(res.files.values()), file=sys.stderr)
    return 0 if res.ok else (2 if res.errors else 1)


def _profile_table(profs) -> str:
    hdr = "%-8s %-44s %9s %6s %8s %11s %5s %8s %9s %9s %-9s %s" % (
        "version", "python", "tick_ns", "±%", "ticks/it", "model tick", "warm", "call_ns", "sock_call", "sock_work", "source",
        "measured")
    rows = [hdr, "-" * len(hdr)]
    for p in profs:
        mt = "%.1f" % p.model_tick_ns + ("" if p.group == 1 else " (x%d)" % p.group)
        work = p.sock_work_ns
        rows.append("%-8s %-44s %9.2f %6.1f %8.2f %11s %5s %8.1f %9s %9s %-9s %s" % (
            p.version, p.python[-44:], p.tick_ns, 50 * p.relative_spread(), p.ticks_per_iter, mt,
            "-" if p.warm_ns_per_iter is None else "%.2f" % p.warm_ratio, p.call_ns,
            "-" if p.sock_call_ns is None else "%.1f" % p.sock_call_ns, "-" if work is None else "%.0f" % work,
            p.source, p.measured_at))
    return "\n".join(rows)


def _cmd_calibrate(a) -> int:
    import time

    from . import profiles
    from .interpreters import discover, norm_minor

    if a.clear:
        targets = a.python or [None]
        n = sum(profiles.clear_cache(t) for t in targets)
        print("removed %d cached profile%s of this host from %s" % (n, "" if n == 1 else "s", profiles.cache_file()))
        return 0
    if a.show:
        profs = profiles.cached_profiles()
        if a.python:
            want = set()
            for t in a.python:
                want |= {p.python for p in profs if p.minor == norm_minor(t) or
                         os.path.realpath(p.python) == os.path.realpath(t)}
            profs = [p for p in profs if p.python in want]
        print("cache: %s (%d profile%s for this host)" % (profiles.cache_file(), len(profs), "" if len(profs) == 1 else "s"))
        if profs:
            print(_profile_table(profs))
        return 0
    targets = list(a.python or [])
    if a.all:
        targets += [i.path for i in discover([], True)]
    if not targets:
        targets = [sys.executable]
    seen, profs, failed = set(), [], []
    for t in targets:
        t0 = time.monotonic()
        try:
            p = profiles.calibrate(t, repeats=a.repeats, refresh=a.refresh)
        except profiles.CalibrationError as e:
            print("gilmodel: %s" % e, file=sys.stderr)
            failed.append(t)
            continue
        if os.path.realpath(p.python) in seen:
            continue
        seen.add(os.path.realpath(p.python))
        profs.append(p)
        if a.verbose:
            print("%s in %.2f s" % (p.describe(), time.monotonic() - t0), file=sys.stderr)
    if profs:
        print(_profile_table(profs))
        print("cache: %s" % profiles.cache_file())
    if a.export:
        docs = [dict(p.to_dict(), source="reference") for p in profs]
        with open(a.export, "w") as f:
            json.dump({"format": "gilmodel-reference-profiles", "profiles": docs}, f, indent=1, sort_keys=True)
            f.write("\n")
        print("wrote %s (%d profiles)" % (a.export, len(docs)), file=sys.stderr)
    return 2 if failed else 0


def _cmd_info(a) -> int:
    oh, per = _core.calibration()
    print(json.dumps({"version": _core.__version__, "host": json.loads(_core.host_info()),
                      "spin": {"overhead_ns": oh, "ns_per_iter": per}}, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="gilmodel", description="A laboratory for the Python GIL.")
    p.add_argument("--version", action="version", version="gilmodel " + _core.__version__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="the convoy effect: real CPython 2.7 and 3.x beside the model, the proposed fixes, a picture")
    d.add_argument("--out", default="gilmodel-demo", help="folder for convoy.png and summary.json (default: %(default)s)")
    d.add_argument("--cores", help="comma-separated cores (default: the first two this process may use)")
    d.add_argument("--bytes", type=int, default=1 << 20, help="bytes to stream (default: %(default)s)")
    d.add_argument("--gils", default=",".join(DEMO_GILS),
                   help="comma-separated CPython versions and policy names; the first three are drawn (default: %(default)s)")
    d.add_argument("--all", action="store_true", help="also every other CPython version found on this machine, real beside model")
    d.add_argument("--repeats", type=int, default=3, help="runs per side and GIL; medians are shown (default: %(default)s)")
    d.add_argument("--no-real", action="store_true", help="the model alone: skip the real interpreters")
    d.set_defaults(fn=_cmd_demo)
    from .experiments import EXPERIMENTS as _EXPS

    r = sub.add_parser("run", help="run one experiment of the registry and print its metrics (JSON)",
                       description="Experiments: " + "; ".join("%s: %s" % (k, e.title) for k, e in _EXPS.items()))
    r.add_argument("scenario", metavar="experiment", choices=list(_EXPS), help="one of: %(choices)s")
    r.add_argument("--gil", help="a CPython version (%s) or a policy name (%s); default 3.11" % (
        ", ".join(CPYTHON_VERSIONS), ", ".join(POLICIES)))
    r.add_argument("--version", dest="version", default="3.11", choices=CPYTHON_VERSIONS, help="CPython version whose GIL to use "
                   "(the same as --gil VERSION)")
    r.add_argument("--tick-ns", type=float, help="ns of work per tick (default: the measured profile of the GIL's interpreter)")
    r.add_argument("--cores", help="comma-separated cores")
    r.add_argument("--ticks", type=int, help="cpu_pair, syscalls: ticks per task (default 2000000)")
    r.add_argument("--duration", type=float, help="handoffs: seconds (default 1)")
    r.add_argument("--cpu-threads", type=int, help="io_latency, convoy, convoy_factor: CPU-bound threads beside the I/O "
                                                  "thread (default 1)")
    r.add_argument("--bytes", type=int, help="convoy, convoy_factor: bytes to stream (default 4 MiB)")
    r.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="any parameter of the experiment's builder, e.g. -p gap_us=20000 (repeatable; VALUE is JSON)")
    r.add_argument("--out", help="write the (last) run to this Parquet file")
    r.set_defaults(fn=_cmd_run)
    for name, fn, what in (("plot", _cmd_plot, "draw the GIL timeline of a run saved with --out / Run.to_parquet"),
                           ("trace", _cmd_trace, "export a saved run as a Perfetto trace (native protobuf by default, "
                                                 "or Chrome JSON)")):
        q = sub.add_parser(name, help=what)
        q.add_argument("run", help="a run's Parquet file")
        q.add_argument("--out", help="output file (default: next to the run; PNG/SVG/PDF by suffix for plot)")
        q.add_argument("--start", type=float, help="window start, seconds since the threads were released")
        q.add_argument("--end", type=float, help="window end, seconds")
        if name == "plot":
            q.add_argument("--beside", metavar="RUN", help="a second run drawn below the first on one time axis, each "
                                                          "from its workload's start (its first started thread): an "
                                                          "observed real run beside a model run")
        if name == "trace":
            q.add_argument("--beside", metavar="RUN", help="a second run in the same trace, as a process of its own, "
                                                          "the workloads' starts aligned (a model run and an observed one, "
                                                          "or two policies)")
            q.add_argument("--format", choices=("perfetto", "json"),
                           help="native Perfetto protobuf (default, any size) or Chrome Trace Event JSON (small runs); "
                                "default: by --out's suffix (.perfetto-trace, .pftrace, .pb; .gz compresses), else perfetto")
        q.set_defaults(fn=fn)
    o = sub.add_parser("observe", help="observe a real CPython's GIL event by event (kernel uprobes; root): "
                       "gilmodel observe [--out run.parquet] -- python3 app.py ARGS, or --pid PID",
                       description="Launches the command (its first word a CPython) or attaches to a running process and "
                                   "records its GIL's requests, acquisitions and releases (3.x also timeouts, futile wake-ups "
                                   "and drop requests; on x86_64 its blocking system calls as I/O) in the model's own "
                                   "event schema. Prints the summary as JSON. Exit "
                                   "status 2 when it cannot observe (the message says why), 130 when interrupted (the partial "
                                   "run is still written).")
    o.add_argument("--pid", type=int, help="attach to this running process (it is never stopped)")
    o.add_argument("--duration", type=float, help="stop after this many seconds (a launched command is sent SIGINT)")
    o.add_argument("--out", help="write the observed run to this Parquet file")
    o.add_argument("--plot", help="draw its GIL timeline to this image (PNG/SVG/PDF)")
    o.add_argument("--stdout", metavar="FILE", help="write the launched command's standard output to FILE (the summary "
                                                  "keeps this command's)")
    o.add_argument("--ring-pages", type=int, default=512, help="ring buffer per CPU, in 4 KiB pages, a power of two (default: %(default)s)")
    o.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to launch")
    o.set_defaults(fn=_cmd_observe)
    from .whatif import REPRODUCE_TOLERANCE

    w = sub.add_parser("whatif", help="what another GIL would do to a program: observe it, replay it under every GIL: "
                       "gilmodel whatif -- python3 app.py ARGS, or --from observed.parquet",
                       description="Observes the command (root, uprobes: as `gilmodel observe`) or takes a saved observation, "
                                   "turns each real thread into the model's ops, replays it under the interpreter's own GIL "
                                   "(which must reproduce the observation) and under the other GILs and switch intervals, and "
                                   "prints a table: elapsed, hand-offs/s, GIL utilisation, the GIL's delay after blocking "
                                   "calls. Writes the tables, a picture (real, own replay, best alternative) and the "
                                   "observation to --out. Exit status 1 when the own-GIL replay does not reproduce the "
                                   "observation within ±%d %% (2.x: its hold totals), 2 when it cannot observe or replay "
                                   "(the message says why)." % round(REPRODUCE_TOLERANCE * 100))
    w.add_argument("--from", dest="source", metavar="RUN.parquet", action="append",
                   help="replay a saved observation (gilmodel observe --out); given again, more observations of the same "
                        "program: the first is replayed, the others are its spread (as --observations)")
    w.add_argument("--gil", action="append", help="GILs to compare (CPython versions or policy names, comma-separated; "
                                                  "default: the own GIL with two other intervals and every proposed fix)")
    w.add_argument("--repeats", type=int, default=3, help="replays per GIL; the table has medians (default: %(default)s)")
    w.add_argument("--observations", type=int, default=1,
                   help="observe the command this many times: the first is replayed, the others show how much the "
                        "program's own runs differ, beside the check (default: %(default)s)")
    w.add_argument("--cpus", help="CPUs the command runs on, e.g. 0 or 0,1 (default: this process's)")
    w.add_argument("--out", default="whatif_out", help="directory for the tables, the picture and the observation "
                                                       "(default: %(default)s)")
    w.add_argument("--stdout", metavar="FILE", help="write the launched command's standard output to FILE")
    w.add_argument("--partial", action="store_true", help="replay an observation that lost records (refused otherwise)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    w.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to launch")
    w.set_defaults(fn=_cmd_whatif)
    from .gallery import ALIASES, EXPERIMENTS

    g = sub.add_parser("reproduce", help="run one experiment of the gallery (or all): figure, table, JSON",
                       description="Experiments: " + "; ".join("%s: %s" % (k, v[0]) for k, v in EXPERIMENTS.items())
                       + ". Old names: " + ", ".join("%s=%s" % kv for kv in ALIASES.items()) + ".")
    g.add_argument("name", choices=list(EXPERIMENTS) + list(ALIASES) + ["all"], metavar="name",
                   help="an experiment (%s), an old name p1..p8, or all" % ", ".join(EXPERIMENTS))
    g.add_argument("--out", default="gallery", help="output folder (default: %(default)s)")
    g.add_argument("--scale", type=float, default=1.0, help="workload size factor (default: %(default)s)")
    g.add_argument("--cores", help="comma-separated cores (default: the first two this process may use)")
    g.set_defaults(fn=_cmd_reproduce)
    v = sub.add_parser("validate", help="compare the model with the real interpreters on this machine (probes vs model, side by side)",
                       description="Exit status: 0 all metrics within tolerance, 1 some outside, 2 a probe failed.")
    v.add_argument("--python", action="append", metavar="PATH", help="an interpreter to compare besides this one (repeatable)")
    v.add_argument("--all", action="store_true", help="also each CPython under ~/.pyenv/versions or on PATH (one per version); the slow "
                                                     "probes run under this one, those named by --python and the newest of each GIL design "
                                                     "(2.x tick, 3.x interval) only, unless --probes names them")
    v.add_argument("--cores", action="append", metavar="LIST", help="a core set, e.g. --cores 0 --cores 0,1 (default: 1 and 2 cores)")
    v.add_argument("--repeats", type=int, default=5, help="repeats per side, interleaved (default: %(default)s)")
    v.add_argument("--probes", help="comma-separated probes (default: all)")
    v.add_argument("--scale", type=float, default=0.5, help="workload size factor (default: %(default)s; the two many-thread probes take ~90 s per interpreter on 2 cores)")
    v.add_argument("--out", default="validation", help="folder for the Parquet files and report.md (default: %(default)s)")
    v.add_argument("--quick", action="store_true", help="leave out the slow probes everywhere: switch_sweep, "
                                                       "three_threads, threads_sweep (the switch-interval sweep, the "
                                                       "three-thread split, the 0-8 CPU-thread sweep)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.add_argument("--events", action="store_true", help="event by event instead: observe the real interpreter (uprobes, "
                                                        "root) while it runs the handoffs, io_latency and three_threads probes, run the "
                                                        "model on the same workloads, and compare the distributions of "
                                                        "holds, waits and hand-offs (KS, Wasserstein; events.md, "
                                                        "events.parquet, a picture per interpreter and core set)")
    v.add_argument("--command", help=argparse.SUPPRESS)
    v.set_defaults(fn=_cmd_validate)
    c = sub.add_parser("calibrate", help="measure (or show the cached) costs of real interpreters: the profiles the model runs with",
                       description="Every scenario without an explicit tick_ns runs with the measured profile of the interpreter "
                                   "its policy stands for (cpython('2.7') -> 2.7's). Profiles are measured once per machine and "
                                   "interpreter and cached; this command measures, lists or clears them. Exit status 2 when an "
                                   "interpreter could not be calibrated.")
    c.add_argument("--python", action="append", metavar="P", help="an interpreter: a path or a version such as 2.7 (repeatable; "
                                                                 "default: the running interpreter)")
    c.add_argument("--all", action="store_true", help="every CPython under ~/.pyenv/versions or on PATH (one per version)")
    c.add_argument("--show", action="store_true", help="list this host's cached profiles; measure nothing")
    c.add_argument("--clear", action="store_true", help="remove this host's cached profiles (all, or those of --python)")
    c.add_argument("--refresh", action="store_true", help="measure again even where the cache has a profile")
    c.add_argument("--repeats", type=int, default=3, help="probe runs per interpreter (default: %(default)s)")
    c.add_argument("--export", metavar="FILE", help="also write the profiles as a reference-profile file (JSON)")
    c.add_argument("-v", "--verbose", action="store_true", help="one line per interpreter with the time it took")
    c.set_defaults(fn=_cmd_calibrate)
    i = sub.add_parser("info", help="host facts and the spin calibration")
    i.set_defaults(fn=_cmd_info)
    from .sweeps.cli import add_commands as _add_sweep_commands

    _add_sweep_commands(sub)
    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print("gilmodel: error: %s" % e, file=sys.stderr)
        return 2
    except RunHalted as e:  # the watchdog or the event budget stopped a run
        print("gilmodel: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gilmodel: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
