"""Canned scenarios: the workloads of docs/design.md §1, each returning a :class:`Scenario`
(or a pair), with small helpers that run them and return the number that matters.

Every builder's ``tick_ns`` defaults to None: the ticks take the measured cost of the
interpreter the policy stands for on this machine (:mod:`gilmodel.profiles`), and so does the
interpreter work around each socket call (``work_ticks``) where a builder has one."""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ._check import check_float, check_int
from .policies import IntervalGIL, Policy
from .run import Run, run
from .scenario import (Queue, Scenario, Thread, cpu, drain, driver, get, held, join, loop, native, put, recv, send, signal,
                       sleep)

__all__ = ["cpu_pair", "pair_times", "cpu_pair_ratio", "handoffs", "io_latency", "convoy", "stream_seconds", "drain_reads",
           "convoy_times",
           "convoy_factor", "ctrl_c", "syscalls", "syscalls_report", "FUTEX_LEVEL", "hashing", "hashing_times",
           "long_call", "pipeline", "pipeline_times", "thread_pool", "pool_times"]

Cores = Optional[Sequence[int]]


def _cores(cores: Cores):
    if cores is None:
        from . import _core

        return tuple(_core.allowed_cores())
    return tuple([cores] if isinstance(cores, int) else cores)


def _peer_core(cs: Sequence[int], peer_core: Optional[int]) -> Optional[int]:
    return cs[-1] if peer_core is None else peer_core


def _spinner(name: str, core: Optional[int]) -> Thread:
    # A CPU-bound thread that runs until the run stops (chunks of 10k ticks).
    return Thread(name, [loop(cpu(10_000))], core=core)


def cpu_pair(gil: Policy, cores: Cores = None, ticks: int = 2_000_000, tick_ns: Optional[float] = None) -> Tuple[Scenario, Scenario]:
    """Two equal CPU tasks (P1): ``(sequential, threaded)``.

    Sequential: one thread runs ``ticks`` twice, on the first core. Threaded: two threads run
    ``ticks`` each, on the first two cores (both on one core when ``cores`` has one).
    """
    check_int("cpu_pair.ticks", ticks, 1)
    cs = _cores(cores)
    seq = Scenario(gil, [Thread("t0", [cpu(ticks), cpu(ticks)], core=cs[0])], cores=cs, tick_ns=tick_ns, name="cpu_pair/sequential")
    thr = Scenario(gil, [Thread("t0", [cpu(ticks)], core=cs[0]), Thread("t1", [cpu(ticks)], core=cs[1 % len(cs)])],
                   cores=cs, tick_ns=tick_ns, name="cpu_pair/threaded")
    return seq, thr


def pair_times(sequential: Run, threaded: Run) -> Dict[str, float]:
    """``sequential_s``, ``threaded_s`` (each run's elapsed time) and ``ratio`` (threaded /
    sequential) of :func:`cpu_pair`'s two runs."""
    a, b = sequential.meta["elapsed_ns"] / 1e9, threaded.meta["elapsed_ns"] / 1e9
    return {"sequential_s": a, "threaded_s": b, "ratio": b / a}


def cpu_pair_ratio(gil: Policy, cores: Cores = None, ticks: int = 2_000_000, tick_ns: Optional[float] = None) -> Dict[str, Any]:
    """Run :func:`cpu_pair` and return ``sequential_s``, ``threaded_s``, ``ratio``
    (threaded / sequential, :func:`pair_times`) and the threaded run's summary."""
    seq, thr = cpu_pair(gil, cores, ticks, tick_ns)
    a, b = run(seq), run(thr)
    return {**pair_times(a, b), "threaded": b.summary()}


def handoffs(gil: Policy, cores: Cores = None, duration_s: float = 1.0, tick_ns: Optional[float] = None) -> Scenario:
    """Two CPU-bound threads for ``duration_s`` (P4): the summary's ``switches_per_s`` is the
    hand-off rate."""
    check_float("handoffs.duration_s", duration_s, 0.0, 86400.0, lo_open=True)
    cs = _cores(cores)
    return Scenario(gil, [_spinner("cpu0", cs[0]), _spinner("cpu1", cs[1 % len(cs)])], cores=cs,
                    duration_s=duration_s, tick_ns=tick_ns, name="handoffs")


def _work_ticks(gil: Policy, tick_ns: Optional[float], work_ticks: Optional[int], kind: str, fallback: int) -> int:
    # Measured interpreter work around a socket call (the profile's), unless the caller set
    # the ticks or the tick length itself.
    if work_ticks is not None:
        return check_int("%s.work_ticks" % kind, work_ticks, 1)
    if tick_ns is not None:
        return fallback
    from .profiles import for_policy

    p = for_policy(gil)
    return p.echo_work_ticks if kind == "io_latency" else p.send_work_ticks


def _longest_wait_us(gil: Policy) -> int:
    """How long an I/O thread back from ``recv`` may wait for a CPU-bound holder: the interval
    GIL's switch interval (a waiter times out once before it asks); the fixes preempt, the tick
    GIL and FIFO hand over at a check point (0)."""
    return gil.interval_us if isinstance(gil, IntervalGIL) else 0


def io_latency(gil: Policy, cores: Cores = None, cpu_threads: int = 1, pings: int = 200, gap_us: int = 10_000,
               work_ticks: Optional[int] = None, tick_ns: Optional[float] = None, peer_core: Optional[int] = None,
               client_ticks: int = 0) -> Scenario:
    """A thread blocked in ``recv`` answers pings sent every ``gap_us`` by a driver, next to
    ``cpu_threads`` CPU-bound threads (ccbench's latency test). Each answer costs
    ``work_ticks`` ticks of Python-level work (None: the profile's ``echo_work_ticks``, or 10
    with an explicit ``tick_ns``); the driver spins ``client_ticks`` before each ping, inside
    its round trip (a Python client's work per request: the profile's ``client_work_ticks``;
    0, a client with no cost of its own, by default). The summary's ``io_latency_*_ms`` are the round-trip
    quantiles. The I/O thread is on the first core, CPU threads round-robin on the others (or
    all on one core); the driver on ``peer_core`` (None: the last core; on one core, that
    core. On 2 cores this default puts the driver beside the CPU thread, so each ping's reply
    wakes it there: the fixes' p50 0.16-0.18 ms, docs/policies.md. Where the kernel puts a real
    client was not measured; for the convoy's drain it was, and varies: :func:`convoy`).

    The driver sends on a fixed schedule. Keep ``gap_us`` well above the policy's switch
    interval (the default 10 ms is twice 3.x's 5 ms): when a reply takes longer than the gap,
    the next ping is already due, goes out at once while the GIL may happen to be free, and
    comes back in microseconds, so the quantiles mix two populations (with pings every 3 ms
    under a 5 ms interval about half the round trips took < 1 ms and the p50 fell anywhere
    between 1.3 and 4.7 ms). A ``gap_us`` not above the policy's interval warns; the summary's
    ``io_pings_late`` counts the pings that went out late."""
    check_int("io_latency.cpu_threads", cpu_threads, 0, 1000)
    check_int("io_latency.gap_us", gap_us, 1)
    work_ticks = _work_ticks(gil, tick_ns, work_ticks, "io_latency", 10)
    wait = _longest_wait_us(gil)
    if cpu_threads and wait and gap_us <= wait:
        warnings.warn("io_latency: pings every %d us are not above the policy's %d us wait: replies that take longer "
                      "than the gap delay the next ping, which then finds the GIL free and returns at once; the "
                      "latency quantiles mix the two (see run.summary()['io_pings_late']); ccbench pings every "
                      "100 ms" % (gap_us, wait), stacklevel=2)
    cs = _cores(cores)
    io = Thread("io", [loop(recv(8), cpu(work_ticks), send(8))], core=cs[0],
                peer=driver(pings, gap_us, 8, 8, _peer_core(cs, peer_core), client_ticks))
    cpus = [_spinner("cpu%d" % i, cs[(1 + i) % len(cs)]) for i in range(cpu_threads)]
    return Scenario(gil, [io] + cpus, cores=cs, stop_thread="io", tick_ns=tick_ns, name="io_latency")


def hashing(gil: Policy, cores: Cores = None, threads: int = 2, chunk_ticks: int = 200_000, chunks: int = 20,
            python_ticks: int = 1_000, tick_ns: Optional[float] = None, released: bool = True) -> Scenario:
    """Threads hashing big buffers: each loops ``chunks`` times over a little Python work
    (``python_ticks`` of :func:`~gilmodel.cpu`) and one big chunk of C work with the GIL
    released (``chunk_ticks`` of :func:`~gilmodel.native`: ``hashlib`` over a large buffer,
    ``zlib``, a numpy kernel). What it shows: such threads scale with the cores under every
    GIL, since the GIL is held only for the short Python part; on 2 cores two threads take
    about as long as one (:func:`hashing_times`), while :func:`cpu_pair`'s pure-Python
    threads take twice as long. ``released=False`` makes each chunk a :func:`~gilmodel.held`
    call instead: the hash of a CPython built without OpenSSL (its own ``_sha`` module holds
    the GIL; the ``native_work`` probe says which its interpreter does), and the threads no
    longer scale. Threads are round-robin over ``cores``; the run ends when all have finished."""
    check_int("hashing.threads", threads, 1, 1000)
    check_int("hashing.chunks", chunks, 1)
    if not isinstance(released, bool):
        raise TypeError("hashing.released: expected True or False, got %r" % (released,))
    cs = _cores(cores)
    chunk = native if released else held
    ts = [Thread("h%d" % i, [loop(cpu(python_ticks), chunk(chunk_ticks), times=chunks)], core=cs[i % len(cs)])
          for i in range(threads)]
    return Scenario(gil, ts, cores=cs, tick_ns=tick_ns, name="hashing")


def hashing_times(alone: Run, threaded: Run) -> Dict[str, float]:
    """``alone_s`` (one hashing thread's run), ``threaded_s`` (the threaded run's), and
    ``speedup``: the threaded run's work per second over the lone thread's (n threads do n
    times the work: ``n * alone_s / threaded_s``; the number of cores it could reach with no
    GIL at all)."""
    a, b = alone.meta["elapsed_ns"] / 1e9, threaded.meta["elapsed_ns"] / 1e9
    n = threaded.threads.num_rows / max(alone.threads.num_rows, 1)
    return {"alone_s": a, "threaded_s": b, "speedup": n * a / b}


def long_call(gil: Policy, cores: Cores = None, call_ticks: int = 400_000, pings: int = 50, gap_us: int = 50_000,
              python_ticks: int = 100, work_ticks: Optional[int] = None, tick_ns: Optional[float] = None,
              peer_core: Optional[int] = None, client_ticks: int = 0, duration_s: Optional[float] = None) -> Scenario:
    """An I/O thread answering pings (as :func:`io_latency`: ``pings`` every ``gap_us`` from a
    driver, ``work_ticks`` of Python work per answer) next to a thread that makes long calls
    holding the GIL: a loop of ``python_ticks`` of Python work and a :func:`~gilmodel.held`
    call of ``call_ticks`` (``sorted()`` of a big list, a long regex, an extension that does
    not release the GIL). What it shows: no check point comes during a call, so a drop request
    waits for its end: the I/O thread's round trips (``io_latency_*_ms``) are set by the
    call's length (``call_ticks * tick_ns``: the rest of the call a ping lands in, a whole
    call more when that rest is shorter than the interval, since the caller, with no drop
    request yet, starts its next call), whatever the switch interval; next to plain
    :func:`~gilmodel.cpu` work (:func:`io_latency`) they are about one interval.
    ``client_ticks``: the driver's work per ping, as in :func:`io_latency`.
    Keep ``gap_us`` above a call's length. The I/O thread is on the first core, the caller on
    the next; the driver on ``peer_core`` (None: the last core).
    ``duration_s``: the run ends then at the latest (None: 4 x the pings' nominal time, at
    least 10 s; ``meta["stopped_by"]`` says ``"duration"`` and ``io_pings`` counts the pings
    answered): under 2.x on two cores the caller can retake the GIL before the woken I/O thread
    runs, release after release, and a CI host once stretched such a run past 5 minutes. The
    real probe stops alike (``probes/long_call.py``)."""
    check_int("long_call.gap_us", gap_us, 1)
    if duration_s is None:
        duration_s = max(10.0, 4 * pings * gap_us * 1e-6)
    work_ticks = _work_ticks(gil, tick_ns, work_ticks, "io_latency", 10)
    cs = _cores(cores)
    io = Thread("io", [loop(recv(8), cpu(work_ticks), send(8))], core=cs[0],
                peer=driver(pings, gap_us, 8, 8, _peer_core(cs, peer_core), client_ticks))
    caller = Thread("caller", [loop(cpu(python_ticks), held(call_ticks))], core=cs[1 % len(cs)])
    return Scenario(gil, [io, caller], cores=cs, stop_thread="io", duration_s=duration_s, tick_ns=tick_ns, name="long_call")


def _split(total: int, parts: int) -> list:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def pipeline(gil: Policy, cores: Cores = None, producers: int = 1, consumers: int = 1, items: int = 2000,
             produce_ticks: int = 2000, consume_ticks: int = 2000, native_ticks: int = 0, maxsize: int = 0,
             tick_ns: Optional[float] = None) -> Scenario:
    """A producer/consumer pipeline through one ``queue.Queue(maxsize)``: ``producers``
    threads make ``items`` items between them (``produce_ticks`` of Python work each, then
    :func:`~gilmodel.put`), ``consumers`` threads take them (:func:`~gilmodel.get`, then
    ``consume_ticks`` of Python work and ``native_ticks`` of C work with the GIL released).
    The ticks stand for everything the interpreter runs per item, ``put``'s and ``get``'s
    bytecode included (the model runs the queue's locks, not its bytecode). What it shows:
    how fast items flow (``items_per_s``, :func:`pipeline_times`) and how long each waits in
    the queue (``item_latency_*_ms``): a consumer woken by a put must win the GIL from the
    producer, the convoy question between Python threads. Threads are round-robin over
    ``cores``; the run ends when every item is consumed."""
    check_int("pipeline.producers", producers, 1, 500)
    check_int("pipeline.consumers", consumers, 1, 500)
    check_int("pipeline.items", items, max(producers, consumers))
    cs = _cores(cores)
    work = [cpu(consume_ticks)] + ([native(native_ticks)] if native_ticks else [])
    progs = [("producer%d" % i, [loop(cpu(produce_ticks), put("q"), times=n)]) for i, n in enumerate(_split(items, producers))]
    progs += [("consumer%d" % i, [loop(get("q"), *work, times=n)]) for i, n in enumerate(_split(items, consumers))]
    ts = [Thread(name, prog, core=cs[i % len(cs)]) for i, (name, prog) in enumerate(progs)]
    return Scenario(gil, ts, cores=cs, tick_ns=tick_ns, queues=[Queue("q", maxsize)], name="pipeline")


def pipeline_times(r: Run) -> Dict[str, float]:
    """``items``, ``items_per_s`` (consumed over the run's elapsed time), and the median time
    an item spent in the queue, ``item_latency_p50_ms`` (:func:`gilmodel.analysis.items`)."""
    from . import analysis
    it = analysis.items(r.events).column("latency_ns").to_numpy()
    elapsed = max(r.meta["elapsed_ns"], 1) / 1e9
    return {"items": int(it.size), "items_per_s": it.size / elapsed,
            "item_latency_p50_ms": float(np.median(it)) / 1e6 if it.size else float("nan")}


def thread_pool(gil: Policy, cores: Cores = None, workers: int = 4, tasks: int = 400, task_ticks: int = 20_000,
                native_ticks: int = 0, submit_ticks: int = 500, queue_ticks: int = 0,
                tick_ns: Optional[float] = None) -> Scenario:
    """A thread pool: the main thread submits ``tasks`` tasks to a queue (``submit_ticks`` of
    Python work each, then a put), ``workers`` threads take them, run each (``task_ticks`` of
    Python work and ``native_ticks`` of C work with the GIL released) and put a result on a
    second queue, from which the main thread collects every result. What it shows: Python-only
    tasks get no faster with more workers (the GIL runs one at a time), tasks of mostly C work
    do, up to the cores (``tasks_per_s`` and each worker's part, :func:`pool_times`).
    ``queue_ticks`` of interpreter work go before each put and each get (the queue's bytecode,
    which the model does not run; ``validate`` takes it from the real interpreter). The run
    ends when the main thread has every result (the workers are then stopped)."""
    check_int("thread_pool.workers", workers, 1, 1000)
    check_int("thread_pool.tasks", tasks, 1)
    check_int("thread_pool.queue_ticks", queue_ticks, 0)
    cs = _cores(cores)

    def q(op):
        return [cpu(queue_ticks), op] if queue_ticks else [op]

    main = Thread("main", [loop(cpu(submit_ticks), *q(put("tasks")), times=tasks), loop(*q(get("results")), times=tasks)],
                  core=cs[0])
    work = [cpu(task_ticks)] + ([native(native_ticks)] if native_ticks else [])
    ws = [Thread("worker%d" % i, [loop(*q(get("tasks")), *work, *q(put("results")))], core=cs[(i + 1) % len(cs)])
          for i in range(workers)]
    return Scenario(gil, [main] + ws, cores=cs, tick_ns=tick_ns, queues=["tasks", "results"], stop_thread="main",
                    name="thread_pool")


def pool_times(r: Run) -> Dict[str, Any]:
    """``tasks_per_s`` (results collected over the run's elapsed time) and ``worker_tasks``:
    how many tasks each worker took, by name."""
    from . import analysis
    it = analysis.items(r.events).to_pandas()
    taken = it[it.queue == 0].consumer.value_counts()
    names = r.threads.column("name").to_pylist()
    done = int((it.queue == 1).sum())
    return {"tasks_per_s": done / (max(r.meta["elapsed_ns"], 1) / 1e9),
            "worker_tasks": {names[k]: int(taken.get(k, 0)) for k in range(1, len(names))}}


def convoy(gil: Policy, cores: Cores = None, cpu_threads: int = 1, total_bytes: int = 4 << 20, chunk_bytes: int = 1024,
           work_ticks: Optional[int] = None, tick_ns: Optional[float] = None, peer_core: Optional[int] = None,
           head_start_us: int = 5000) -> Scenario:
    """The convoy effect (P7): a thread streams ``total_bytes`` in ``chunk_bytes`` sends to a
    draining peer (``work_ticks`` of Python-level work per send; None: the profile's
    ``send_work_ticks``, or 2 with an explicit ``tick_ns``), next to ``cpu_threads``
    CPU-bound threads. The sender first sleeps ``head_start_us`` so the CPU threads are
    running when it starts, as the real probe's main thread does after starting its spinners
    (``python/gilmodel/probes/convoy.py``); :func:`stream_seconds` times the stream from the
    sender's first GIL acquisition after that to its exit, as the probe does. The run ends
    when the stream is sent. The drain runs on ``peer_core`` (None: the last core; on one core,
    that core). Where it runs moves the baseline several-fold: woken onto the sender's core, it
    waits there while the sends pile up in the socket buffer (a handful of reads, the one-core
    rate); on another core each send wakes it (a read a send: :func:`drain_reads`). The real
    probe's drain, a process started just before its stream, ran on the other core in 20 of 20
    runs; the model's drain left to the OS (``drain(None)`` in a scenario of one's own) ran on
    the sender's core in 6 of 16, so the default pins it (docs/validation/many-threads.md,
    "Where the kernel ran the stream's peers")."""
    check_int("convoy.cpu_threads", cpu_threads, 0, 1000)
    check_int("convoy.chunk_bytes", chunk_bytes, 1, 64 << 20)
    check_int("convoy.total_bytes", total_bytes, chunk_bytes)
    check_int("convoy.head_start_us", head_start_us, 0, 10_000_000)
    work_ticks = _work_ticks(gil, tick_ns, work_ticks, "convoy", 2)
    cs = _cores(cores)
    n = total_bytes // chunk_bytes
    head = [sleep(head_start_us)] if head_start_us else []
    io = Thread("io", head + [loop(cpu(work_ticks), send(chunk_bytes), times=n)], core=cs[0],
                peer=drain(_peer_core(cs, peer_core)))
    cpus = [_spinner("cpu%d" % i, cs[(1 + i) % len(cs)]) for i in range(cpu_threads)]
    return Scenario(gil, [io] + cpus, cores=cs, stop_thread="io", tick_ns=tick_ns, name="convoy")


def stream_seconds(r: Run) -> float:
    """The stream's time in a :func:`convoy` run: from the sender's (thread 0) first GIL
    acquisition after its head-start sleep to its exit (the real probe's clock)."""
    ev = r.events
    if not ev.num_rows:
        raise ValueError("stream_seconds: the run has no event log (log=False)")
    mine = ev.column("thread").to_numpy() == 0
    kind = np.asarray(ev.column("event").to_numpy(zero_copy_only=False))[mine]
    t = ev.column("t_ns").to_numpy()[mine]
    prog = r.meta["scenario_spec"]["threads"][0]["program"]
    after = t[kind == "io_end"][0] if prog and prog[0].get("op") == "sleep" else t[0]
    start = t[(kind == "acquire") & (t >= after)][0]
    return (int(r.threads.column("exit_ns")[0].as_py()) - int(start)) / 1e9


def drain_reads(r: Run) -> int:
    """The drain's ``recv`` calls that returned data in a :func:`convoy` run (the sender's
    ``peer_reads``): about one a send when the drain sleeps between sends and each send wakes
    it; far fewer when it is kept from running and the sends pile up in the socket buffer,
    which makes the stream several times faster (docs/validation/many-threads.md, "Where the
    kernel ran the stream's peers"). The real probes report the same count."""
    return int(r.threads.column("peer_reads")[0].as_py())


def convoy_times(alone: Run, loaded: Run) -> Dict[str, float]:
    """The convoy factor of two :func:`convoy` runs: ``alone_s`` and ``with_cpu_s``
    (:func:`stream_seconds` of each) and ``factor``, their ratio. Every convoy factor the
    package reports (sweeps, demo, gallery, validate) is this one."""
    a, b = stream_seconds(alone), stream_seconds(loaded)
    return {"alone_s": a, "with_cpu_s": b, "factor": b / a}


def convoy_factor(gil: Policy, cores: Cores = None, cpu_threads: int = 1, **kw: Any) -> Dict[str, Any]:
    """Run :func:`convoy` alone and next to ``cpu_threads`` CPU threads; returns ``alone_s``
    and ``with_cpu_s`` (:func:`stream_seconds` of each), ``factor`` (:func:`convoy_times`) and
    the loaded run's summary."""
    alone = run(convoy(gil, cores, 0, **kw))
    loaded = run(convoy(gil, cores, cpu_threads, **kw))
    return {**convoy_times(alone, loaded), "loaded": loaded.summary()}


def ctrl_c(gil: Policy, cores: Cores = None, workers: int = 2, work_ticks: int = 4_000_000, signal_at_us: int = 20_000,
           signum: Any = "SIGINT", handler_ticks: int = 100, tick_ns: Optional[float] = None) -> Dict[str, Any]:
    """Ctrl-C with threads (P3): the main thread starts ``workers`` CPU-bound threads and joins
    them; a real signal reaches it ``signal_at_us`` after the start. Returns
    ``handler_latency_ms`` (delivery → the Python-level handler runs; None if it never ran),
    ``handler_after_join`` (it ran only once every worker had finished), the worker
    throughput before and after the signal in ticks/s (``ticks_per_s_before``/``_after``,
    from the holding periods), ``switches_per_s_before``/``_after``, and the run.

    Under the tick GIL the join cannot be interrupted: the handler waits for the workers, who
    meanwhile check at every tick (2.7's tick storm). From 3.2 on the handler runs within
    about one switch interval.
    """
    check_int("ctrl_c.workers", workers, 1, 1000)
    check_int("ctrl_c.work_ticks", work_ticks, 1)
    check_int("ctrl_c.handler_ticks", handler_ticks, 1)
    cs = _cores(cores)
    ws = [Thread("w%d" % i, [cpu(work_ticks)], core=cs[(1 + i) % len(cs)]) for i in range(workers)]
    main = Thread("main", [cpu(10)] + [join(w.name) for w in ws], core=cs[0])
    sc = Scenario(gil, [main] + ws, cores=cs, tick_ns=tick_ns, name="ctrl_c",
                  signals=[signal(signal_at_us, signum, [cpu(handler_ticks)])])
    r = run(sc)
    from . import analysis

    ev = r.events
    kinds = ev.column("event").to_numpy(zero_copy_only=False)
    t = ev.column("t_ns").to_numpy()
    handler_t = t[kinds == "handler"]
    sent = r.meta["signals"][0]["sent_ns"]
    delivered = ev.column("arg").to_numpy()[kinds == "signal"]
    at = sent if sent is not None else signal_at_us * 1000
    exits = r.threads.column("exit_ns").to_numpy()
    workers_exit = int(exits[1:].max())
    h = analysis.holds(ev).to_pandas()
    h = h[h.thread > 0]

    def rate(lo: int, hi: int) -> Tuple[float, float]:
        part = h[(h.start_ns >= lo) & (h.end_ns <= hi)]
        dur = max(hi - lo, 1) / 1e9
        return float(part.ticks.sum()) / dur, float(len(part)) / dur

    before, after = rate(0, at), rate(at, workers_exit)
    ran = bool(handler_t.size) and sent is not None
    return {
        "policy": r.meta["gil"]["policy"],
        "signal_sent_ms": None if sent is None else sent / 1e6,
        "signal_delivered_ms": float(delivered[0]) / 1e6 if delivered.size else None,
        "handler_ms": float(handler_t[0]) / 1e6 if handler_t.size else None,
        "handler_latency_ms": (int(handler_t[0]) - sent) / 1e6 if ran else None,
        # The main thread's first join is on w0: did the handler wait for it?
        "handler_waited_for_join": bool(handler_t.size) and int(handler_t[0]) >= int(exits[1]),
        "first_worker_done_ms": int(exits[1]) / 1e6,
        "workers_done_ms": workers_exit / 1e6,
        "ticks_per_s_before": before[0], "ticks_per_s_after": after[0],
        "holds_per_s_before": before[1], "holds_per_s_after": after[1],
        "run": r,
    }


#: Counted calls that can enter the kernel (a futex system call), and when they do (glibc 2.36
#: NPTL). ``sem_trywait`` never does; ``cond_timeouts`` and ``sem_eintr`` are outcomes, not calls.
FUTEX_LEVEL = {
    "mutex_lock": "FUTEX_WAIT when the mutex is held by another thread",
    "mutex_unlock": "FUTEX_WAKE when another thread waits for the mutex",
    "cond_wait": "FUTEX_WAIT unless a signal is already pending (plus the mutex's own futex calls)",
    "cond_timedwait": "FUTEX_WAIT with a deadline unless a signal is already pending",
    "cond_signal": "FUTEX_WAKE when a thread waits on the condvar",
    "cond_broadcast": "FUTEX_WAKE when threads wait on the condvar",
    "sem_wait": "FUTEX_WAIT when the count is 0 (the replica calls it only after sem_trywait failed); "
                "glibc retries inside, hiding repeated waits",
    "sem_post": "FUTEX_WAKE when a waiter is registered on the semaphore",
}
_BLOCKING = ("sem_wait", "cond_wait", "cond_timedwait")
_WAKING = ("sem_post", "cond_signal", "cond_broadcast")
_MUTEX = ("mutex_lock", "mutex_unlock")
_OUTCOMES = ("cond_timeouts", "sem_eintr")


def _syscall_side(r) -> Dict[str, Any]:
    from . import _core

    t = r.threads.to_pydict()
    names = _core.CALL_NAMES
    per_thread = {}
    for k, name in enumerate(t["name"]):
        per_thread[name] = {"voluntary_ctx_switches": int(t["voluntary_ctx_switches"][k]),
                            "involuntary_ctx_switches": int(t["involuntary_ctx_switches"][k]),
                            "utime_ns": int(t["utime_ns"][k]), "stime_ns": int(t["stime_ns"][k]),
                            "calls": {c: int(t[c][k]) for c in names}}
    calls = {c: int(sum(t[c])) for c in names}
    vol, invol = int(sum(t["voluntary_ctx_switches"])), int(sum(t["involuntary_ctx_switches"]))
    futex = {"blocking_waits": sum(calls[c] for c in _BLOCKING), "wakes": sum(calls[c] for c in _WAKING),
             "mutex": sum(calls[c] for c in _MUTEX)}
    futex["total"] = futex["blocking_waits"] + futex["wakes"] + futex["mutex"]
    return {"elapsed_s": r.meta["elapsed_ns"] / 1e9, "threads": per_thread,
            "voluntary_ctx_switches": vol, "involuntary_ctx_switches": invol, "ctx_switches": vol + invol,
            "utime_s": sum(t["utime_ns"]) / 1e9, "stime_s": sum(t["stime_ns"]) / 1e9,
            "calls": calls, "primitive_calls": sum(v for c, v in calls.items() if c not in _OUTCOMES),
            "futex_level": futex}


def syscalls(gil: Policy, cores: Cores = None, ticks: int = 2_000_000, tick_ns: Optional[float] = None) -> Dict[str, Any]:
    """The system-call and context-switch storm (P2): the two CPU tasks of :func:`cpu_pair`,
    run sequentially and threaded, and what each costs the OS.

    Returns ``{"gil", "cores", "ticks", "sequential", "threaded", "ratios", "counts_are"}``.
    ``sequential`` and ``threaded`` each hold:

    - ``elapsed_s``; ``utime_s``, ``stime_s`` (CPU time of the scenario threads, user and system);
    - ``voluntary_ctx_switches``, ``involuntary_ctx_switches``, ``ctx_switches`` (totals) and
      ``threads[name]`` with each thread's own, its ``utime_ns``/``stime_ns`` and ``calls``;
    - ``calls``: total counted calls by kind (the ``threads`` table's columns ``mutex_lock`` …
      ``sem_eintr``), and ``primitive_calls``, their sum without the two outcome counters
      ``cond_timeouts`` and ``sem_eintr``;
    - ``futex_level``: the counted calls that *can* enter the kernel, by class.
      ``blocking_waits`` = ``sem_wait`` + ``cond_wait`` + ``cond_timedwait``: a FUTEX_WAIT unless
      the resource came free in between (the tick replica calls ``sem_wait`` only after
      ``sem_trywait`` failed, and waits on the condvar only while the lock is taken);
      ``wakes`` = ``sem_post`` + ``cond_signal`` + ``cond_broadcast``: a FUTEX_WAKE when a waiter is
      registered; ``mutex`` = ``mutex_lock`` + ``mutex_unlock``: FUTEX_WAIT / FUTEX_WAKE when
      contended; ``total``, their sum. ``sem_trywait`` never enters the kernel. See
      :data:`FUTEX_LEVEL`.

    ``ratios`` are threaded / sequential for ``ctx_switches``, ``voluntary_ctx_switches``,
    ``involuntary_ctx_switches``, ``primitive_calls``, ``futex_level`` (its total),
    ``blocking_waits`` and ``elapsed_s``; a sequential count of 0 is taken as 1, so such a ratio
    is a lower bound.

    Where the counts come from: context switches and CPU times from
    ``getrusage(RUSAGE_THREAD)`` read by each scenario thread before the start gate and after its
    last op (so each includes the gate's own wait, about one voluntary switch); primitive calls
    from per-thread counters in the core's glibc wrappers (``rust/prim``), bumped once per call.
    They are calls to the primitive, **not system calls**: glibc's fast paths (an uncontended
    mutex, a semaphore with a count, a signal with no waiter) stay in user space, and a blocking
    ``sem_wait`` or ``cond_wait`` may make several futex calls (glibc retries a wake-up that
    found the lock taken again). ``futex_level`` is therefore neither a lower nor an upper bound
    on futex system calls; ``benches/syscalls.py`` counts those with ``strace -f -c`` and
    ``perf stat -e syscalls:sys_enter_futex`` beside these counts. The engine's own bookkeeping
    adds one ``sem_post`` per thread (its "done" signal).
    """
    seq, thr = cpu_pair(gil, cores, ticks, tick_ns)
    return syscalls_report(run(seq), run(thr))


def syscalls_report(sequential: Run, threaded: Run) -> Dict[str, Any]:
    """The report of :func:`syscalls` from :func:`cpu_pair`'s two runs (already run)."""
    spec = threaded.meta["scenario_spec"]
    out: Dict[str, Any] = {"gil": sequential.meta["scenario_spec"]["gil"], "cores": list(spec["cores"]),
                           "ticks": spec["threads"][0]["program"][0]["ticks"]}
    for mode, r in (("sequential", sequential), ("threaded", threaded)):
        out[mode] = _syscall_side(r)
    a, b = out["sequential"], out["threaded"]

    def ratio(x: float, y: float) -> float:
        return y / (x if x else 1)

    out["ratios"] = {k: ratio(a[k], b[k]) for k in ("ctx_switches", "voluntary_ctx_switches", "involuntary_ctx_switches",
                                                    "primitive_calls", "elapsed_s")}
    out["ratios"]["futex_level"] = ratio(a["futex_level"]["total"], b["futex_level"]["total"])
    out["ratios"]["blocking_waits"] = ratio(a["futex_level"]["blocking_waits"], b["futex_level"]["blocking_waits"])
    out["counts_are"] = "calls to glibc primitives counted by the model, not system calls; context switches from getrusage(RUSAGE_THREAD)"
    return out
    return out
