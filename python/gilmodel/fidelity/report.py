"""The side-by-side table, the Parquet files and the Markdown report of a validation."""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Dict, List

import pyarrow as pa
import pyarrow.parquet as pq

from ..probes import PROBES
from .tolerance import TOLERANCES

if TYPE_CHECKING:
    from . import Validation

__all__ = ["side_by_side", "markdown", "write_all"]


def _f(x: float) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    a = abs(x)
    if a >= 1000:
        return "%.0f" % x
    if a >= 10:
        return "%.1f" % x
    if a >= 0.1:
        return "%.3f" % x
    return "%.3g" % x


def _rng(lo: float, hi: float) -> str:
    return "%s-%s" % (_f(lo), _f(hi))


def _groups(res: "Validation"):
    v = res.verdicts
    if not len(v):
        return
    for (version, cores), g in v.groupby(["version", "cores"], sort=False):
        yield version, cores, g


def side_by_side(res: "Validation") -> str:
    """A plain-text table: per interpreter and core set, each metric's real median and range,
    model median and range, ratio, tolerance and verdict."""
    lines: List[str] = []
    hdr = "%-14s %-24s %10s %19s %10s %19s %7s %6s  %s" % ("probe", "metric", "real", "real range", "model", "model range",
                                                           "ratio", "tol", "ok")
    for version, cores, g in _groups(res):
        lines += ["", "CPython %s, cores %s" % (version, cores), hdr, "-" * len(hdr)]
        for r in g.itertuples():
            lines.append("%-14s %-24s %10s %19s %10s %19s %7s %5d%%  %s" % (
                r.probe, r.metric, _f(r.real_median), _rng(r.real_min, r.real_max), _f(r.model_median),
                _rng(r.model_min, r.model_max), _f(r.ratio), round(r.tolerance * 100), "ok" if r.ok else "NO"))
    v = res.verdicts
    if len(v):
        lines += ["", "%d of %d metrics within tolerance" % (int(v["ok"].sum()), len(v))]
    for w in res.meta.get("machine", {}).get("warnings", []):
        lines.append("warning: " + w)
    for e in res.errors:
        lines.append("error: " + e)
    return "\n".join(lines)


def markdown(res: "Validation") -> str:
    m = res.meta
    h = m.get("host", {})
    v = res.verdicts
    out = ["# Validation: the model against the real interpreters", "",
           "Command: `%s`  " % (m.get("command") or "gilmodel.validate(...)"),
           "Machine: %s, %s cores online (%s allowed), %s, glibc %s; gilmodel %s, driven by Python %s  " % (
               h.get("cpu_model"), h.get("cores_online"), h.get("cores_allowed"), h.get("kernel"), h.get("glibc"),
               m.get("gilmodel"), m.get("python")),
           "Repeats: %d per side, interleaved; scale %g; core sets %s; took %.0f s" % (
               m.get("repeats"), m.get("scale"), m.get("core_sets"), m.get("seconds", 0)), ""]
    r = res.runs
    if len(r) and "speed_scale" in r:
        sc = r.loc[r.side == "model", "speed_scale"].dropna()
        if len(sc):
            out += ["Each repeat's model side ran its interpreter's profile scaled to that repeat's speed, the "
                    "countdown timed by the real `calibrate` probe that opens it (`fidelity.at_repeat_speed`): "
                    "scales %.2f-%.2f, median %.2f." % (sc.min(), sc.max(), sc.median()), ""]
    pin = m.get("pin_threads", True)
    out += ["The model's threads: %s." % {
        None: "pinned one per core where each has a core of its own, else left to the OS scheduler within the core "
              "set, as the real interpreter's threads are (`fidelity.model_side.pins`)",
        True: "pinned one per core (`fidelity.model_side.PIN_THREADS = True`)",
        False: "left to the OS scheduler within the core set (`fidelity.model_side.PIN_THREADS = False`)"}[pin], ""]
    slow = m.get("slow_probes_on")
    if slow is not None and len(slow) < len(res.interpreters) and set(m.get("probes", ())) & set(m.get("slow_probes", ())):
        out += ["The slow probes (%s) ran under %s only; the other interpreters ran the rest "
                "(`validate --all` runs them under this interpreter, those named by `--python`, and the newest of "
                "each GIL design otherwise missing; `--probes` names them to run them everywhere)." % (
                    ", ".join(m.get("slow_probes", ())), ", ".join(slow) or "none"), ""]
    mach = m.get("machine", {})
    if mach:
        out += ["Machine during the run: other processes %.2f cores, the hypervisor's steal %.2f cores on average; "
                "the real tick's max / min over the repeats: %s" % (
                    mach["foreign_cores"], mach["steal_cores"],
                    ", ".join("%s x%.2f" % kv for kv in mach["tick_spread"].items()) or "-"), ""]
        out += ["**Warning: %s.**" % w for w in mach["warnings"]] + ([""] if mach["warnings"] else [])
    if len(v):
        out += ["**%d of %d metrics within tolerance.**" % (int(v["ok"].sum()), len(v)), "",
                "| version | cores | metrics | within tolerance | outside |", "|---|---|---|---|---|"]
        for version, cores, g in _groups(res):
            bad = ", ".join("%s.%s" % (r.probe, r.metric) for r in g.itertuples() if not r.ok)
            out.append("| %s | %s | %d | %d | %s |" % (version, cores, len(g), int(g["ok"].sum()), bad or "—"))
    out += ["", "## Calibration (one per interpreter)", "",
            "| version | tick_ns | ticks per countdown iteration | ns per iteration | call_ns | sock_call_ns | send + recv: interpreter's work, ns | model tick (real ticks, ns) | model policy | model work ticks per send / per echo / per client request |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for c in res.calibrations.values():
        work = c.get("sock_work_ns")
        out.append("| %s | %.2f | %g (%s) | %.2f | %.2f | %.2f | %s | %d, %.2f | `%s` | %d / %d / %s |" % (
            c["version"], c["tick_ns"], c["ticks_per_iter"], c.get("source"), c["ns_per_iter"], c["call_ns"],
            c.get("sock_call_ns", c["call_ns"]), "—" if work is None else "%.0f" % work, c.get("group", 1),
            c.get("model_tick_ns", c["tick_ns"]), c.get("model_policy", ""), c["work_ticks_send"], c["work_ticks_echo"],
            c.get("work_ticks_client", "—")))
    rc = ["%s: %s" % (c["version"], ", ".join("%.1f µs after %g ms" % (ns / 1e3, us / 1e3) for us, ns in c["return_cost"]))
          for c in res.calibrations.values() if c.get("return_cost")]
    if rc:
        out += ["", "The model's threads spin, back from a blocking op, what the interpreter's echo paid beyond the "
                "model's after as long away (`Profile.return_cost`, linear between the points; at the calibrated "
                "speed, scaled with the profile): %s." % "; ".join(rc)]
    scaled = ["%s ×%.2f" % (c["version"], c["speed_scale"]) for c in res.calibrations.values()
              if c.get("speed_scale", 1.0) != 1.0]
    if scaled:
        out += ["", "Cached profiles scaled to their interpreter's speed at the run (`profiles.speed_checked`; "
                "the figures above are the scaled ones): %s." % ", ".join(scaled)]
    out += ["", "## Side by side", "",
            "Medians of the repeats; ranges are min–max; spread is the real side's (q3 − q1) / median; "
            "ratio is model / real. Rows marked \"pooled pings\" compare one figure per side: the percentile of "
            "every repeat's pings together.", ""]
    for version, cores, g in _groups(res):
        out += ["### CPython %s, cores %s" % (version, cores), "",
                "| probe | metric | real | real range | real spread | model | model range | ratio | tolerance | ok |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in g.itertuples():
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | ±%d%%%s | %s |" % (
                r.probe, r.metric, _f(r.real_median), _rng(r.real_min, r.real_max),
                "-" if not math.isfinite(r.real_spread) else "%d%%" % round(r.real_spread * 100),
                _f(r.model_median), _rng(r.model_min, r.model_max), _f(r.ratio), round(r.tolerance * 100),
                " (quartiles)" if r.quartiles else " (pooled pings)" if getattr(r, "pooled", False) else "", "ok" if r.ok else "**no**: " + r.why))
        out.append("")
    out += _k_series(res)
    out += _outside(res)
    out += _streams_table(res)
    out += _times(res)
    out += ["## Tolerances", "", "| probe | metric | tolerance | absolute floor | why |", "|---|---|---|---|---|"]
    for (p, mname), t in TOLERANCES.items():
        out.append("| %s | %s | ±%d%%%s | %g | %s |" % (p, mname, round(t.rel * 100), " (quartiles too)" if t.quartiles else "", t.abs_floor, t.why))
    if res.errors:
        out += ["", "## Errors", ""] + ["- %s" % e for e in res.errors]
    out += ["", "## Interpreters", ""] + ["- %s" % i.label for i in res.interpreters]
    return "\n".join(out) + "\n"


def _outside(res: "Validation") -> List[str]:
    """Every repeat of each metric outside tolerance, both sides sorted: the distributions
    behind a failed median (two modes on one side, or a different mix of them, reads at once)."""
    v, s = res.verdicts, res.samples
    if not len(v) or not len(s) or bool(v["ok"].all()):
        return []
    out = ["## Outside tolerance: every repeat", "",
           "Each side's values over the repeats, sorted; a metric compared over pooled pings shows its per-run values.", "",
           "| version | cores | probe | metric | real | model |", "|---|---|---|---|---|---|"]
    by = {k: g for k, g in s.groupby(["version", "cores", "probe", "metric", "side"], sort=False)}
    for r in v[~v["ok"]].itertuples():
        cells = []
        for side in ("real", "model"):
            g = by.get((r.version, r.cores, r.probe, r.metric, side))
            cells.append(" ".join(_f(x) for x in sorted(g.value)) if g is not None else "—")
        out.append("| %s | %s | %s | %s | %s | %s |" % (r.version, r.cores, r.probe, r.metric, cells[0], cells[1]))
    return out + [""]


def _streams(probe: str, args: Dict, result: Dict):
    """Of a convoy or threads_sweep result: ``(seconds alone, drain reads per send alone)``
    or None, and ``(seconds next to one CPU thread, the CPU threads on the sender's core or
    None)`` or None (a failed run, or one from before these were counted)."""
    if probe == "convoy":
        sends = args["bytes"] // args["chunk"]
        alone = (result.get("alone_s"), result.get("alone_reads"))
        one = (result.get("with_cpu_s"), result.get("on_sender_core")) if args.get("cpu_threads") == 1 else (None, None)
    else:
        sends, rows = args["bytes"] // 1024, result.get("rows", ())
        at = {w["k"]: i for i, w in enumerate(rows)}
        reads, on = result.get("drain_reads") or [], result.get("on_sender_core") or []
        alone = (rows[at[0]]["stream_s"], reads[at[0]] if at[0] < len(reads) else None) if 0 in at else (None, None)
        one = (rows[at[1]]["stream_s"], on[at[1]] if at[1] < len(on) else None) if 1 in at else (None, None)
    return (None if None in alone else (alone[0], alone[1] / sends)), (None if one[0] is None else one)


def _streams_table(res: "Validation") -> List[str]:
    """Every repeat's convoy streams, both sides: alone (the factor's baseline) with the
    drain's reads per send, and next to one CPU thread with the CPU threads on the sender's
    core: where the kernel ran the stream's peers, which decides its mode on 2 cores."""
    r = res.runs
    if not len(r) or "result" not in r:
        return []
    rows = []
    for (version, cores, probe), g in r[r.probe.isin(("convoy", "threads_sweep"))].groupby(
            ["version", "cores", "probe"], sort=False):
        cells = []
        for side in ("real", "model"):
            alone, one = [], []
            for x in g[g.side == side].itertuples():
                if isinstance(x.result, str) and isinstance(x.args, str):
                    a, o = _streams(probe, json.loads(x.args), json.loads(x.result))
                    alone += [a] if a is not None else []
                    one += [o] if o is not None else []
            cells.append(" ".join("%s (%.2f)" % (_f(s * 1e3), rps) for s, rps in sorted(alone)))
            cells.append(" ".join(_f(s * 1e3) + ("" if n is None else " (%d)" % n) for s, n in sorted(one)))
        if cells[0] or cells[2]:
            rows.append("| %s | %s | %s | %s |" % (version, cores, probe, " | ".join(c or "—" for c in cells)))
    if not rows:
        return []
    return ["## The convoy's streams: where the kernel ran the drain and the CPU thread", "",
            "Each repeat, sorted. Alone (no CPU thread): ms (the drain's reads per send). Around 0.02 reads a "
            "send: the kernel woke the drain onto the sender's core, where it waited while the sends piled up in "
            "the socket buffer (the one-core rate); around 0.5-1: each send woke it on another core, several "
            "times slower. Next to one CPU thread: ms (the CPU threads on the sender's core: where the kernel ran "
            "them, or where the model pinned them). "
            "One there waits behind the sender and never takes the GIL from it (a few ms); one on its own core "
            "wins it back and holds it for switch intervals (hundreds of ms under 3.x). The model's drain and "
            "CPU thread are placed as the real ones were, repeat by repeat, where it pins its threads "
            "(`fidelity.FROM_REAL`; docs/validation/many-threads.md, \"Where the kernel ran the stream's peers\").",
            "", "| version | cores | probe | real alone | real, one CPU thread | model alone | model, one CPU thread |",
            "|---|---|---|---|---|---|---|"] + rows + [""]


def _times(res: "Validation") -> List[str]:
    """Seconds each probe took per interpreter, both sides, all core sets and repeats: where a
    run's time went."""
    r = res.runs
    if not len(r) or "wall_s" not in r:
        return []
    t = r.pivot_table(index="probe", columns="version", values="wall_s", aggfunc="sum", sort=False)
    t = t.reindex([p for p in PROBES if p in t.index])
    vs = list(t.columns)
    out = ["## Time per probe", "", "Seconds, real and model sides, every core set and repeat.", "",
           "| probe | " + " | ".join(vs) + " |", "|---|" + "---|" * len(vs)]
    for probe, row in t.iterrows():
        out.append("| %s | " % probe + " | ".join("—" if not math.isfinite(x) else "%.0f" % x for x in row) + " |")
    out.append("| all | " + " | ".join("%.0f" % t[v].sum() for v in vs) + " |")
    return out + [""]


def _k_series(res: "Validation") -> List[str]:
    """threads_sweep's metrics as series against k (the CPU-bound threads beside the I/O
    thread): one row per metric, ``real / model`` medians per k, bold where outside tolerance."""
    v = res.verdicts
    if not len(v):
        return []
    v = v[v.probe == "threads_sweep"]
    if not len(v):
        return []
    out = ["## Against the number of CPU-bound threads (threads_sweep)", "",
           "Medians, real / model; **bold**: outside tolerance. k = CPU-bound threads beside the I/O thread.", ""]
    for version, cores, g in _groups(res):
        g = g[g.probe == "threads_sweep"]
        if not len(g):
            continue
        parts = g.metric.str.split("@k", expand=True)
        g = g.assign(base=parts[0], k=parts[1].astype(int))
        ks = sorted(g.k.unique())
        out += ["### CPython %s, cores %s" % (version, cores), "",
                "| metric | " + " | ".join("k=%d" % k for k in ks) + " |", "|---|" + "---|" * len(ks)]
        for base, gb in g.groupby("base", sort=False):
            cells = []
            for k in ks:
                r = gb[gb.k == k]
                if not len(r):
                    cells.append("")
                    continue
                r = r.iloc[0]
                c = "%s / %s" % (_f(r.real_median), _f(r.model_median))
                cells.append(c if r.ok else "**%s**" % c)
            out.append("| %s | %s |" % (base, " | ".join(cells)))
        out.append("")
    return out


def write_all(res: "Validation", out_dir: str) -> Dict[str, str]:
    """Write ``samples.parquet``, ``verdicts.parquet``, ``runs.parquet`` and ``report.md``."""
    import json

    os.makedirs(out_dir, exist_ok=True)
    files = {}
    md = {b"gilmodel.validate": json.dumps({"meta": res.meta, "calibrations": res.calibrations, "errors": res.errors}).encode()}
    for name, df in (("samples", res.samples), ("verdicts", res.verdicts), ("runs", res.runs)):
        p = os.path.join(out_dir, name + ".parquet")
        t = pa.Table.from_pandas(df, preserve_index=False)
        meta = dict(t.schema.metadata or {})
        meta.update(md)
        pq.write_table(t.replace_schema_metadata(meta), p, compression="zstd")
        files[name] = p
    p = os.path.join(out_dir, "report.md")
    with open(p, "w") as f:
        f.write(markdown(res))
    files["report"] = p
    return files
