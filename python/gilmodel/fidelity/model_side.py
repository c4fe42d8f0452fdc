"""The model side: each probe's workload as a scenario, run under the replica of the
interpreter's version with the costs of its calibration profile (:class:`gilmodel.profiles.Profile`),
on the same cores and with the same sizes; returns the probe's own result fields."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import _core, analysis, scenarios
from ..experiments import get
from ..policies import IntervalGIL, Policy
from ..profiles import Profile
from ..run import Run
from ..run import run as _pinned_run
from ..scenario import Scenario, Thread, cpu, driver, loop, recv, send

__all__ = ["model_probe", "stream", "drain_core", "PIN_THREADS", "pins", "PILED_UP"]

#: Fewer drain reads a send than this: the kernel woke the real drain onto the sender's core,
#: where it waited while the sends piled up in the socket buffer. Measured on the 2-core VM
#: (validate's convoy and threads_sweep streams, 2026-12-04): 0.02-0.07 reads a send in that
#: mode, 0.3-1 when each send woke the drain on another core; the two modes differ 3-6x in the
#: stream's time (docs/validation/many-threads.md, "Where the kernel ran the stream's
#: peers").
PILED_UP = 0.15

#: Pin the model's threads one per core (True), leave them to the OS scheduler within the
#: probe's cores (False), as the probe's own threads are, or (None, the default) pin them only
#: where each can have a core of its own: with more threads than cores the kernel moves the
#: real interpreter's threads, and a fixed placement made the model's waiters hand the GIL
#: back and forth within a pair. 3.11 on 2 cores next to 4 and 8 CPU threads
#: (threads_sweep): the echo's p50 50–100 ms pinned against 24–29 ms unpinned and 10–44 ms
#: real, in four alternating runs (docs/validation/many-threads.md, "Placement"). With no more
#: threads than cores, pinning is what the kernel does with busy threads anyway, and keeps
#: every run's placement alike.
PIN_THREADS: Optional[bool] = None


def pins(sc: Scenario) -> bool:
    """Whether :func:`_prep` pins ``sc``'s threads, as :data:`PIN_THREADS` says."""
    if PIN_THREADS is None:
        return len(sc.threads) <= len(sc.cores or _core.allowed_cores())
    return PIN_THREADS


def _prep(cal: Profile):
    """What each model run of a probe goes through: its threads pinned or not, as
    :func:`pins` says, and the interpreter's cost of coming back from a blocking op
    (``cal.return_cost``: the scenarios here take their ticks from ``cal`` explicitly, so
    they are not resolved from it)."""
    rc = tuple(map(tuple, cal.return_cost or ()))

    def prepare(sc: Scenario) -> Scenario:
        sc = sc.replace(return_cost=rc)
        if pins(sc):
            return sc
        threads = tuple(dataclasses.replace(t, core=None) for t in sc.threads)
        return sc.replace(threads=threads, pin_threads=False)
    return prepare


def run(sc: Scenario, cal: Profile) -> Run:
    """Run ``sc`` as :func:`_prep` prepares it for ``cal``."""
    return _pinned_run(_prep(cal)(sc))


def _spinners(k: int, cs: Sequence[int]):
    return [Thread("cpu%d" % i, [loop(cpu(10_000))], core=cs[(1 + i) % len(cs)]) for i in range(k)]


def _echo(gil: Policy, cs, cal: Profile, cpu_threads: int, pings: int, gap_us: int, nbytes: int, duration_s=None) -> Scenario:
    # The probes' client is a second interpreter: its work per request is on the round trip.
    io = Thread("io", [loop(recv(nbytes), cpu(cal.echo_work_ticks), send(nbytes))], core=cs[0],
                peer=driver(pings, gap_us, nbytes, nbytes, work_ticks=cal.client_work_ticks))
    return Scenario(gil, [io] + _spinners(cpu_threads, cs), cores=cs, stop_thread=None if duration_s else "io",
                    duration_s=duration_s, tick_ns=cal.model_tick_ns, name="echo")


def _latency(gil, cs, cal, cpu_threads, pings, gap_us) -> Dict[str, Any]:
    r = run(_echo(gil, cs, cal, cpu_threads, pings, gap_us, 8), cal)
    rtt = r.io.column("rtt_ns").to_numpy() / 1e6
    p50, p90, p99 = np.percentile(rtt, [50, 90, 99]) if rtt.size else (np.nan,) * 3
    return {"cpu_threads": cpu_threads, "pings": int(rtt.size), "gap_us": gap_us, "rtt_ms": rtt.tolist(),
            "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(rtt.max()) if rtt.size else float("nan")}


def _handoffs(gil, cs, cal, duration_s) -> Dict[str, Any]:
    s = get("handoffs").run(gil, cs, log=False, prepare=_prep(cal), duration_s=duration_s, tick_ns=cal.model_tick_ns).metrics
    # The first take is not a change of the running thread (the probe counts the same way).
    sw = max(s["switches"] - 1, 0)
    return {"duration_s": s["elapsed_s"], "switches": sw, "switches_per_s": sw / s["elapsed_s"]}


def drain_core(cs: Sequence[int], real_reads: Optional[int], sends: int) -> Optional[int]:
    """Where the model's drain runs for a stream whose real drain made ``real_reads`` reads of
    ``sends`` sends: on the sender's core (``cs[0]``) where the real drain waited there (fewer
    than :data:`PILED_UP` reads a send), on the last core where each send woke it, and as the
    convoy scenario places it by default without a real stream to follow (None: the last
    core). Which one the kernel picks for the real
    drain is not the GIL's doing (the real convoy probe's fresh process mostly gets another
    core, threads_sweep's drain, started after its echo phases, mostly the sender's), so the
    model's drain is placed as the real one was, as each repeat's model runs at that repeat's
    speed."""
    if real_reads is None:
        return None
    return cs[0] if real_reads < PILED_UP * sends else cs[-1]


def stream(gil: Policy, cs: Sequence[int], cal: Profile, total_bytes: int, chunk: int, cpu_threads: int,
           peer_core: Optional[int] = None, on_sender_core: Optional[int] = None) -> Tuple[float, int, Run]:
    """The convoy probe's workload in the model: the ``convoy`` experiment with the profile's
    costs (its sender sleeps 5 ms, then its clock runs from its next GIL acquisition, as the
    probe's main thread does after starting its spinners), its drain on ``peer_core`` (None:
    :func:`gilmodel.scenarios.convoy`'s default, the last core); returns its ``stream_s`` (:func:`gilmodel.scenarios.stream_seconds`), its
    ``drain_reads`` and the run.

    ``on_sender_core``: how many of the real stream's CPU threads the kernel ran on the
    sender's core; where the model pins its threads (:func:`pins`), that many go there and the
    rest round-robin on the other cores. It decides the stream next to one CPU thread on 2
    cores: a CPU thread on its own core wakes on each of the sender's releases and, once it
    wins the race for the GIL, holds it for a switch interval (0.6-1 s for 256 sends under
    3.11); one on the sender's core waits behind it, never wins, and the sends take 2-3 ms
    (threads_sweep under 3.11, 8 of 8 standalone runs: docs/validation/many-threads.md, "Where
    the kernel ran the stream's peers")."""
    prep = _prep(cal)

    def prepare(sc: Scenario) -> Scenario:
        sc = prep(sc)
        if on_sender_core is None or not sc.pin_threads or len(cs) < 2:
            return sc
        ts = list(sc.threads)
        for i in range(1, len(ts)):  # thread 0 is the sender, on cs[0]
            j = i - 1 - on_sender_core
            ts[i] = dataclasses.replace(ts[i], core=cs[0] if j < 0 else cs[1 + j % (len(cs) - 1)])
        return sc.replace(threads=tuple(ts))

    res = get("convoy").run(gil, cs, profile=cal, prepare=prepare, cpu_threads=cpu_threads, total_bytes=total_bytes,
                            chunk_bytes=chunk, work_ticks=cal.send_work_ticks, tick_ns=cal.model_tick_ns, peer_core=peer_core)
    return res.metrics["stream_s"], int(res.metrics["drain_reads"]), res.runs["run"]


def _on_sender_core(r: Run) -> Optional[int]:
    """The CPU threads a :func:`stream` run pinned to its sender's core; None where they were
    left to the OS."""
    spec = r.meta["scenario_spec"]
    if not spec.get("pin_threads", True):
        return None
    ts = spec["threads"]
    return sum(1 for t in ts[1:] if t.get("core") == ts[0].get("core"))


def _bandwidth(gil, cs, cal, cpu_threads, duration_s, nbytes) -> float:
    s = run(_echo(gil, cs, cal, cpu_threads, 10**8, 1, nbytes, duration_s).replace(log=False), cal).summary()
    return s.get("io_pings", 0) / s["elapsed_s"]


def model_probe(probe: str, version: str, cores: Sequence[int], args: Dict[str, Any], cal: Profile,
                gil: Optional[Policy] = None) -> Dict[str, Any]:
    """Run ``probe``'s workload in the model configured as CPython ``version`` (``cpython``
    policy, ``cal.model_tick_ns``) on ``cores`` with the probe's ``args``; returns the same fields
    the real probe prints. ``gil``: another policy to run it under, with the same costs (what a
    proposed GIL would do to the probe's workload)."""
    gil = cal.policy(version) if gil is None else cal.adjust(gil)
    cs = tuple(cores)
    if probe == "calibrate":
        ticks = max(1000, int(0.05e9 / cal.model_tick_ns))
        sc = Scenario(gil, [Thread("t0", [cpu(ticks)], core=cs[0])], cores=cs, tick_ns=cal.model_tick_ns, log=False, name="calibrate")
        el = run(sc, cal).summary()["elapsed_s"]
        # per real tick, to compare with the probe's tick_ns
        return {"tick_ns": el * 1e9 / ticks / cal.group, "ticks": ticks, "group": cal.group}
    if probe == "cpu_pair":
        ticks = cal.iter_ticks(args["n"])
        m = get("cpu_pair").run(gil, cs, log=False, prepare=_prep(cal), ticks=ticks, tick_ns=cal.model_tick_ns).metrics
        return {"n": args["n"], "ticks": ticks, "sequential_s": m["sequential_s"], "threaded_s": m["threaded_s"],
                "ratio": m["cpu_pair_ratio"]}
    if probe == "handoffs":
        return _handoffs(gil, cs, cal, args["duration"])
    if probe == "io_latency":
        return _latency(gil, cs, cal, args["cpu_threads"], args["pings"], args["gap_us"])
    if probe == "convoy":
        sends = args["bytes"] // args["chunk"]
        _, ra, alone = stream(gil, cs, cal, args["bytes"], args["chunk"], 0, drain_core(cs, args.get("alone_reads"), sends))
        _, rl, loaded = stream(gil, cs, cal, args["bytes"], args["chunk"], args["cpu_threads"],
                               drain_core(cs, args.get("with_cpu_reads"), sends), args.get("on_sender_core"))
        t = scenarios.convoy_times(alone, loaded)
        return {"bytes": args["bytes"], "chunk": args["chunk"], "cpu_threads": args["cpu_threads"],
                "alone_s": t["alone_s"], "with_cpu_s": t["with_cpu_s"], "factor": t["factor"],
                "alone_reads": ra, "with_cpu_reads": rl, "on_sender_core": _on_sender_core(loaded)}
    if probe == "bandwidth":
        alone = _bandwidth(gil, cs, cal, 0, args["duration"], args["nbytes"])
        loaded = _bandwidth(gil, cs, cal, args["cpu_threads"], args["duration"], args["nbytes"])
        return {"cpu_threads": args["cpu_threads"], "nbytes": args["nbytes"], "packets_per_s_alone": alone,
                "packets_per_s": loaded, "slowdown": alone / loaded if loaded else None}
    if probe == "switch_sweep":
        if not isinstance(gil, IntervalGIL):
            raise ValueError("switch_sweep: CPython %s has no switch interval" % version)
        rows = []
        for ms in (float(x) for x in str(args["intervals_ms"]).split(",")):
            g = dataclasses.replace(gil, interval_us=max(1, int(round(ms * 1000))))
            h = _handoffs(g, cs, cal, args["duration"])
            gap = int(max(5000, 2000 + 1500 * ms))
            io = _latency(g, cs, cal, 1, args["pings"], gap)
            rows.append({"interval_ms": ms, "switches_per_s": h["switches_per_s"], "gap_us": gap,
                         "io_p50_ms": io["p50_ms"], "io_p90_ms": io["p90_ms"], "io_max_ms": io["max_ms"]})
        return {"rows": rows}
    if probe == "threads_sweep":
        rows, alone, drained, placed = [], None, [], []
        ks = [int(x) for x in str(args["ks"]).split(",")]
        real_reads = args.get("drain_reads") or [None] * len(ks)
        real_on = args.get("on_sender_core") or [None] * len(ks)
        for k, rr, on in zip(ks, real_reads, real_on):
            rate = _bandwidth(gil, cs, cal, k, args["duration"], 1)
            io = _latency(gil, cs, cal, k, args["pings"], args["gap_us"])
            st, reads, r = stream(gil, cs, cal, args["bytes"], 1024, k, drain_core(cs, rr, args["bytes"] // 1024), on)
            alone = st if k == 0 else alone
            drained.append(reads)
            placed.append(_on_sender_core(r))
            rows.append({"k": k, "requests_per_s": rate, "p50_ms": io["p50_ms"], "p99_ms": io["p99_ms"], "rtt_ms": io["rtt_ms"], "stream_s": st,
                         "convoy_factor": None if alone is None else st / alone})
        return {"rows": rows, "drain_reads": drained, "on_sender_core": placed}
    if probe == "three_threads":
        return _three_threads(gil, cs, cal, args["duration"])
    if probe == "native_work":
        return _native_work(gil, cs, cal, args)
    if probe == "long_call":
        return _long_call(gil, cs, cal, args)
    if probe == "thread_pool":
        return _thread_pool(gil, cs, cal, args)
    if probe == "pipeline":
        return _pipeline(gil, cs, cal, args)
    raise ValueError("unknown probe %r" % probe)


def _ticks_of_ms(ms: float, cal: Profile) -> int:
    return max(1, int(round(ms * 1e6 / cal.model_tick_ns)))


def _native_work(gil, cs, cal, args) -> Dict[str, Any]:
    """hashlib threads: each chunk is ``native`` work as long as the real probe's own chunk
    (``chunk_ms``, measured by the real side of the same repeat: the C code's speed is the
    machine's, not the GIL's), after one Python call's work (the profile's ``call_ns``); a
    ``held`` call instead where the real side found that its hash keeps the GIL
    (``released``: a CPython without OpenSSL hashes with its own ``_sha``)."""
    if args.get("chunk_ms") is None:
        raise ValueError("native_work: the model needs the real chunk's length (chunk_ms), from the real side")
    m = get("hashing").run(gil, cs, log=False, prepare=_prep(cal), threads=args["threads"], chunks=args["chunks"],
                           chunk_ticks=_ticks_of_ms(args["chunk_ms"], cal),
                           python_ticks=max(1, int(round(cal.call_ns / cal.model_tick_ns))), tick_ns=cal.model_tick_ns,
                           released=args.get("released") is not False).metrics
    return {"threads": args["threads"], "chunks": args["chunks"], "chunk_ms": args["chunk_ms"], "alone_s": m["alone_s"],
            "threaded_s": m["threaded_s"], "speedup": m["hashing_speedup"], "released": args.get("released") is not False}


#: Ticks of the interpreter (as 2.x counts them for its check interval) that the long_call
#: probe's loop runs between two ``sorted()`` calls: 2.7.18 released the GIL every 3.1-3.6
#: calls at its 100-tick interval (23-26 releases of the caller in 71-94 calls, 3 runs under
#: ``gilmodel observe``, 1 core, 2026-12-02). The model runs them as ``/ cal.group`` of its
#: own ticks, as the profile groups the interpreter's (the check interval is grouped alike).
#: Under 3.x's interval GIL they are a few µs between calls either way.
LONG_CALL_LOOP_TICKS = 30


def _long_call(gil, cs, cal, args) -> Dict[str, Any]:
    """Pings next to back-to-back GIL-holding calls as long as the real ``sorted()`` call
    (``call_ms``, from the real side of the same repeat), the probe loop's ticks between them
    (:data:`LONG_CALL_LOOP_TICKS`)."""
    if args.get("call_ms") is None:
        raise ValueError("long_call: the model needs the real call's length (call_ms), from the real side")
    res = get("long_call").run(gil, cs, log=False, prepare=_prep(cal), call_ticks=_ticks_of_ms(args["call_ms"], cal),
                               python_ticks=max(1, int(round(LONG_CALL_LOOP_TICKS / cal.group))),
                               pings=args["pings"], gap_us=args["gap_us"],
                               work_ticks=cal.echo_work_ticks, client_ticks=cal.client_work_ticks,
                               tick_ns=cal.model_tick_ns)
    m = res.metrics
    rtt = np.concatenate([r.io.column("rtt_ns").to_numpy() for r in res.runs.values()]) / 1e6
    return {"n": args["n"], "pings": int(rtt.size), "gap_us": args["gap_us"], "call_ms": args["call_ms"],
            "p50_ms": m.get("io_latency_p50_ms"), "p99_ms": m.get("io_latency_p99_ms"), "max_ms": m.get("io_latency_max_ms"),
            "fast_share": float((rtt < 1.0).mean()) if rtt.size else None, "rtt_ms": rtt.tolist(),
            "answered_share": float(rtt.size) / args["pings"]}


def _thread_pool(gil, cs, cal, args) -> Dict[str, Any]:
    """The pool for each k: each task the probe's countdown of ``n`` iterations as ticks (warm:
    :meth:`Profile.iter_ticks`, since the probe calls its countdown once a task), each
    put and each get half the real uncontended pair's cost (``queue_us``, from the real side of
    the same repeat: the queue's bytecode, which the model does not run)."""
    if args.get("queue_us") is None:
        raise ValueError("thread_pool: the model needs the real queue's cost (queue_us), from the real side")
    task = cal.iter_ticks(args["n"], warm=True)  # the countdown is called once a task
    q = max(1, int(round(args["queue_us"] * 1e3 / 2 / cal.model_tick_ns)))
    rows = []
    for k in (int(x) for x in str(args["ks"]).split(",")):
        r = get("thread_pool").run(gil, cs, prepare=_prep(cal), workers=k, tasks=args["tasks"], task_ticks=task,
                                   submit_ticks=max(1, int(round(cal.ns_per_iter / cal.model_tick_ns))), queue_ticks=q,
                                   tick_ns=cal.model_tick_ns)
        parts = r.detail["worker_tasks"].values()
        rows.append({"k": k, "tasks_per_s": r.metrics["tasks_per_s"], "top_part": max(parts) / float(args["tasks"])})
    return {"tasks": args["tasks"], "n": args["n"], "queue_us": args["queue_us"], "rows": rows}


def _pipeline(gil, cs, cal, args) -> Dict[str, Any]:
    """A producer and a consumer through one queue: each item the probe's countdown of ``n``
    iterations as ticks for the producer and of ``n / 2`` for the consumer (warm, as the
    pool's tasks), each plus half the
    real uncontended put and get pair (``queue_us``, from the real side of the same repeat),
    as :func:`_thread_pool`."""
    if args.get("queue_us") is None:
        raise ValueError("pipeline: the model needs the real queue's cost (queue_us), from the real side")
    q = max(1, int(round(args["queue_us"] * 1e3 / 2 / cal.model_tick_ns)))
    produce, consume = (cal.iter_ticks(n, warm=True) + q for n in (args["n"], args["n"] // 2))  # called once an item
    r = get("pipeline").run(gil, cs, prepare=_prep(cal), items=args["items"], produce_ticks=produce, consume_ticks=consume,
                            tick_ns=cal.model_tick_ns).runs["run"]
    t = scenarios.pipeline_times(r)
    ms = np.sort(analysis.items(r.events).column("latency_ns").to_numpy() / 1e6)
    return {"items": args["items"], "n": args["n"], "queue_us": args["queue_us"], "items_per_s": t["items_per_s"],
            "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
            "p99_ms": float(np.percentile(ms, 99)) if ms.size else None, "wait_ms": ms.tolist()}


def _three_threads_chunk(cal: Profile) -> int:
    """The probe's 100-iteration chunk of countdown in model ticks."""
    return cal.iter_ticks(100)


def _three_threads_run(gil, cs, cal, duration_s) -> Run:
    """Three CPU-bound threads (the probe's 100-iteration chunks of countdown as ticks), run."""
    chunk = _three_threads_chunk(cal)
    sc = Scenario(gil, [Thread("c%d" % i, [loop(cpu(chunk))], core=cs[i % len(cs)]) for i in range(3)], cores=cs,
                  duration_s=duration_s, tick_ns=cal.model_tick_ns, name="three_threads")
    return run(sc.replace(profile=cal), cal)


def seen_turns(r: Run, chunk: int) -> np.ndarray:
    """The threads in the order the three_threads probe sees them take turns: its threads
    look at ``last`` only between chunks of ``chunk`` ticks, so a hold counts only if it
    reaches such a point (its ticks span a multiple of ``chunk`` of the thread's own count),
    and holds in a row by the same thread count once. Under 2.7 on 2 cores most holds are
    one check interval (100 ticks) and the probe's chunk is 300 of them: the probe sees
    about a third of the hand-offs (docs/validation/many-threads.md)."""
    h = analysis.holds(r.events)
    th = h.column("thread").to_numpy()
    ticks = h.column("ticks").to_numpy().astype(np.int64)
    seen = np.zeros(th.size, dtype=bool)
    for t in np.unique(th):
        i = np.flatnonzero(th == t)
        end = np.cumsum(ticks[i])
        start = end - ticks[i]
        # a check at every multiple m of chunk with start <= m < end
        seen[i] = (end > start) & ((end - 1) // chunk >= -(-start // chunk))
    order = th[seen]
    keep = np.ones(order.size, dtype=bool)
    keep[1:] = order[1:] != order[:-1]
    return order[keep]


def _three_threads(gil, cs, cal, duration_s) -> Dict[str, Any]:
    """Three CPU-bound threads; the switch rate and the sorted shares of hand-offs won, as
    the probe sees them (:func:`seen_turns`), and the sorted shares of GIL time."""
    r = _three_threads_run(gil, cs, cal, duration_s)
    s = r.summary()
    turns = seen_turns(r, _three_threads_chunk(cal))
    won = np.bincount(turns, minlength=3)[:3] / max(1, turns.size)
    share = sorted(s["share"].values(), reverse=True)
    sw = max(turns.size - 1, 0)
    out = {"duration_s": s["elapsed_s"], "switches": sw, "switches_per_s": sw / s["elapsed_s"],
           "handoffs_per_s": max(s["switches"] - 1, 0) / s["elapsed_s"]}
    for i in range(3):
        out["share_%d" % (i + 1)] = float(share[i])
        out["won_%d" % (i + 1)] = float(sorted(won, reverse=True)[i])
    return out
