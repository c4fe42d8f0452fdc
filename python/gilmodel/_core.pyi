"""The Rust core (PyO3). Use the package's Python API; these are its building blocks."""

from typing import Any, Dict, List, Literal, Optional, Tuple, TypedDict, Union

import numpy as np

__version__: str
#: Event kinds in dictionary order.
EVENT_NAMES: List[str]
#: The blocking operations, by the code ``io_begin``'s ``arg`` carries: ``OP_NAMES[arg]``.
OP_NAMES: Tuple[str, ...]
#: Names of the counted glibc primitive calls (columns of the threads table).
CALL_NAMES: List[str]
#: Bytes one event takes in a thread's buffer (t_ns, cpu, event, arg: 19).
EVENT_BYTES: int
#: Memory the default event budget may take (256 MiB).
DEFAULT_LOG_BYTES: int
#: The default ``max_events``: ``DEFAULT_LOG_BYTES // EVENT_BYTES``.
DEFAULT_MAX_EVENTS: int
#: The default watchdog: ``max(WATCHDOG_MIN_S, WATCHDOG_FACTOR * longest expected wait)``.
WATCHDOG_MIN_S: float
WATCHDOG_FACTOR: float
#: Bounds of an explicit ``watchdog_s``, in seconds (``LIMITS["watchdog_s"]``).
WATCHDOG_RANGE_S: Tuple[float, float]
#: Every range the core checks a scenario against, inclusive: name -> ``(lo, hi)``, ints for
#: counts, floats for ``tick_ns``, ``stop_duration_s`` (``lo`` itself excluded: more than 0)
#: and ``watchdog_s``. Policies: ``check_period_ticks`` (``check_interval``, ``check_every``),
#: ``interval_us`` (``interval_us``, ``slice_us``), ``deadline_factor``, ``min_hold_us``.
#: Threads and ops: ``threads``, ``thread_name_chars``, ``cpu_ticks``, ``sleep_us``,
#: ``io_bytes`` (send, recv, write, a driver's ping), ``reply_bytes``, ``driver_pings``,
#: ``driver_gap_us``, ``driver_work_ticks``, ``loop_times``, ``loop_depth``, ``signal_at_us``. The run: ``tick_ns``,
#: ``stop_duration_s``, ``watchdog_s``, ``max_events`` (its ``hi`` is this machine's: half its
#: memory at ``EVENT_BYTES`` an event; a run of n threads needs at least 16 n).
LIMITS: Dict[str, Union[Tuple[int, int], Tuple[float, float]]]


# ---- the scenario run() and validate() take, as JSON (Scenario.to_spec builds it)

class TickSpec(TypedDict):
    policy: Literal["tick"]
    check_interval: int
    lock: Literal["sem", "mutex_cond"]


class IntervalSpec(TypedDict):
    policy: Literal["interval"]
    interval_us: int
    force_switching: bool
    dedupe_drop_request: bool
    check_every: int


class PrioritySpec(TypedDict):
    policy: Literal["priority"]
    interval_us: int
    check_every: int


class BfsSpec(TypedDict):
    policy: Literal["bfs"]
    slice_us: int
    deadline_factor: int
    check_every: int


class FifoSpec(TypedDict):
    policy: Literal["fifo"]
    check_every: int
    min_hold_us: int


class NoGilSpec(TypedDict):
    policy: Literal["nogil"]
    check_every: int


PolicySpec = Union[TickSpec, IntervalSpec, PrioritySpec, BfsSpec, FifoSpec, NoGilSpec]


class CpuOp(TypedDict):
    op: Literal["cpu"]
    ticks: int


class NativeOp(TypedDict):
    """C work with the GIL released (logged io_begin/io_end, op ``native``)."""
    op: Literal["native"]
    ticks: int


class HeldOp(TypedDict):
    """C work that keeps the GIL, with no check point (logged call_begin/call_end)."""
    op: Literal["held"]
    ticks: int


class SleepOp(TypedDict):
    op: Literal["sleep"]
    us: int


class SendOp(TypedDict):
    op: Literal["send"]
    bytes: int


class RecvOp(TypedDict):
    op: Literal["recv"]
    bytes: int


class _WriteOp(TypedDict):
    """A write to the thread's scratch file with the GIL released (op ``write``)."""
    op: Literal["write"]
    bytes: int


class WriteOp(_WriteOp, total=False):
    fsync: bool


class JoinOp(TypedDict):
    op: Literal["join"]
    thread: str


class _LoopOp(TypedDict):
    op: Literal["loop"]
    body: List["OpSpec"]


class LoopOp(_LoopOp, total=False):
    #: None or absent: until the run stops.
    times: Optional[int]


class AcquireOp(TypedDict):
    op: Literal["acquire"]
    lock: str


class ReleaseOp(TypedDict):
    op: Literal["release"]
    lock: str


class PutOp(TypedDict):
    op: Literal["put"]
    queue: str


class GetOp(TypedDict):
    op: Literal["get"]
    queue: str


class QueueSpec(TypedDict):
    name: str
    #: 0: unbounded.
    maxsize: int


OpSpec = Union[CpuOp, NativeOp, HeldOp, SleepOp, SendOp, RecvOp, WriteOp, JoinOp, AcquireOp, ReleaseOp, PutOp, GetOp, LoopOp]


class _DrainSpec(TypedDict):
    kind: Literal["drain"]


class DrainSpec(_DrainSpec, total=False):
    core: Optional[int]


class _DriverSpec(TypedDict):
    kind: Literal["driver"]
    pings: int
    gap_us: int
    bytes: int
    reply_bytes: int


class DriverSpec(_DriverSpec, total=False):
    core: Optional[int]
    work_ticks: int


PeerSpec = Union[DrainSpec, DriverSpec]


class _ThreadSpec(TypedDict):
    name: str
    program: List[OpSpec]


class ThreadSpec(_ThreadSpec, total=False):
    core: Optional[int]
    peer: Optional[PeerSpec]
    start_us: int


class StopSpec(TypedDict, total=False):
    thread: Optional[str]
    duration_s: Optional[float]


class _SignalSpec(TypedDict):
    at_us: int
    signum: int


class SignalSpec(_SignalSpec, total=False):
    handler: List[CpuOp]


class _ScenarioSpec(TypedDict):
    gil: PolicySpec
    threads: List[ThreadSpec]


class ScenarioSpec(_ScenarioSpec, total=False):
    """What ``run`` and ``validate`` read (as JSON); an absent key takes the core's default."""

    name: str
    #: Empty: every core this process may use.
    cores: List[int]
    stop: StopSpec
    tick_ns: float
    log: bool
    max_events: int
    on_overflow: Literal["truncate", "error"]
    #: None: the default rule (``WATCHDOG_MIN_S``, ``WATCHDOG_FACTOR``).
    watchdog_s: Optional[float]
    signals: List[SignalSpec]
    pin_threads: bool
    locks: List[str]
    queues: List[QueueSpec]


# ---- what run() returns

class RawEvents(TypedDict):
    """The merged event log, column by column, in time order."""

    t_ns: np.ndarray  # int64, ns since the start gate opened
    thread: np.ndarray  # uint16
    cpu: np.ndarray  # int16
    event: np.ndarray  # int8, an index into EVENT_NAMES
    arg: np.ndarray  # int64


class RunErrorInfo(TypedDict):
    kind: Literal["watchdog", "event_budget"]
    message: str


class RawRun(TypedDict):
    events: RawEvents
    #: The threads table: a column per name (numpy arrays; ``name`` a list of str, ``affinity``
    #: a list of str, ``error`` a list of Optional[str]).
    threads: Dict[str, Union[np.ndarray, List[str], List[Optional[str]]]]
    #: Round trips timed by driver peers: ``thread``, ``sent_ns``, ``rtt_ns`` (int64 arrays).
    io: Dict[str, np.ndarray]
    #: JSON: policy and knobs, scenario, host, how the run ended (docs/design.md §4).
    meta: str
    #: None, or why the watchdog or the event budget stopped the run (the results are partial).
    error: Optional[RunErrorInfo]


def observe(spec_json: str) -> RawRun:
    """Observe a real CPython's GIL (spec: ``command`` or ``pid``, ``cpus``, ``stdout``, ``binary``, ``libc``,
    ``version``, ``duration_s``, ``ring_pages``, ``poll_ms``, ``max_events``, ``grace_s``; see
    rust/observe/mod.rs ``ObserveSpec``) with kernel uprobes; the same dict as :func:`run`, with
    ``error`` None or ``{"kind": "interrupted", "exception": ...}`` when a signal handler raised
    (the partial run is returned). Raises RuntimeError when it cannot observe."""
    ...

def run(scenario_json: str) -> RawRun:
    """Run a scenario given as JSON (a :class:`ScenarioSpec`); returns ``events`` and
    ``threads`` and ``io`` (dicts of numpy arrays / lists), ``meta`` (JSON) and ``error``: None,
    or, when the watchdog or the event budget (``on_overflow="error"``) stopped the run,
    ``{"kind": "watchdog" | "event_budget", "message": str}`` beside the partial results.
    Releases Python's GIL while running; a signal handler's exception (KeyboardInterrupt)
    stops the run and is raised."""

def validate(scenario_json: str) -> List[int]:
    """Validate a :class:`ScenarioSpec` given as JSON without running it; returns each thread's
    core. Raises ValueError."""

def calibration() -> Tuple[float, float]:
    """``(overhead_ns, ns_per_iter)`` of the spin that makes one tick: the median of short
    rounds of the engine's tick loop, measured first if there is none yet or it is older than
    10 s (a run's ``meta["spin"]["calibrated_s_ago"]`` says how old the one it used was)."""

def recalibrate() -> Tuple[float, float]:
    """Measure :func:`calibration` again on the calling thread's core (26–31 ms on the 2-core
    VM at half speed) and use it from now on; returns it."""

def socket_pair_ns(n: int = 10_000, rounds: int = 5) -> float:
    """What a ``send`` of one byte and the ``recv`` that reads it cost on a loopback TCP pair
    without an interpreter, ns: the best of ``rounds`` rounds of ``n`` pairs, on the calling
    thread's core. The calibrate probe times the same pair in an interpreter; the difference
    is the interpreter's own work (:attr:`gilmodel.profiles.Profile.sock_work_ns`).

    Raises:
        ValueError: ``n`` or ``rounds`` is 0.
        RuntimeError: the loopback sockets could not be set up.
    """

def idle_echo_round_trips_ns(pings: int, gap_us: int, echo_ticks: int, client_ticks: int, tick_ns: float,
                             tick_gil: bool) -> List[int]:
    """Round trips, ns, of the model's own echo with no CPU thread, on the calling thread's
    first core: an echo thread looping ``recv``, ``echo_ticks`` ticks of work and ``send`` of
    8 bytes under the tick GIL (``tick_gil``) or the interval GIL, answering ``pings`` pings
    ``gap_us`` apart from a driver that spins ``client_ticks`` before each; no return cost.
    The calibration holds the interpreter's echo against it
    (:attr:`gilmodel.profiles.Profile.return_cost`).

    Raises:
        ValueError: ``pings`` not 1 to 100 000, ``gap_us`` not 1 to 1 000 000, or a tick
            out of the core's range.
        RuntimeError: the run failed (sockets, pinning).
    """

def allowed_cores() -> List[int]:
    """Cores this process may run on."""

def host_info() -> str:
    """Host facts as JSON."""


def perfetto_trace(path: str, gzip: bool,
                   runs: List[Tuple[str, List[str], List[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                    int, bool]],
                   lo: int, hi: int) -> int:
    """Write ``runs`` as a native Perfetto trace (rust/perfetto.rs): each run as (title, thread
    track labels, thread names, ``t_ns`` int64, ``thread`` uint16, ``cpu`` int16, ``event`` int8
    codes, ``arg`` int64, time shift ns, draw the GIL track), the window ``[lo, hi]`` ns of each
    run's own time; returns the bytes of protobuf written (before compression)."""


def analysis_pass(t: np.ndarray, thread: np.ndarray, cpu: np.ndarray, event: np.ndarray,
                  arg: np.ndarray, full: bool) -> Dict[str, Any]:
    """The columns of every table of ``gilmodel.analysis`` from one pass over a log (int64,
    uint16, int16, int8 codes, int64; rust/analysis.rs), by table: ``holds`` (uint16
    ``thread``, int16 ``cpu``, int64 ``start_ns``, ``end_ns``, ``dur_ns``, ``ticks``, int8
    ``ended``), ``waits`` (uint16 ``thread``, int64 ``request_ns``, ``acquire_ns``,
    ``wait_ns``, uint32 ``timeouts``, ``drop_requests``, ``futile_wakeups``), ``handoffs``
    (uint16 ``from_thread``, ``to_thread``, int64 ``release_ns``, ``acquire_ns``,
    ``latency_ns``), ``io`` (uint16 ``thread``, int64 ``op`` as logged, ``bytes``,
    ``begin_ns``, ``end_ns``, ``acquire_ns``, ``call_ns``, ``response_ns``), ``calls`` (uint16
    ``thread``, int64 ``begin_ns``, ``end_ns``, ``call_ns``, ``ticks``); and the int
    ``idle_with_waiters_ns``. With ``full`` false, only what ``analysis.summary`` reads:
    ``waits`` with ``wait_ns`` alone, ``handoffs``, ``io``, the idle time. ValueError for
    columns of different lengths."""


#: Entries of :func:`state_spans`' ``lut``: the event ends the thread's span and starts none
#: that is kept; the event does not change the thread's state.
SPAN_NONE: int
SPAN_NOT_STATE: int


def state_spans(t: np.ndarray, thread: np.ndarray, event: np.ndarray, arg: np.ndarray, lut: np.ndarray,
                io_state: int, ops: int, end_ns: int, truncated: bool
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The timeline's state spans of a log (int64, uint16, int8 codes, int64; rust/spans.rs):
    ``lut[code]`` is the state an event starts (0 and up), :data:`SPAN_NONE` or
    :data:`SPAN_NOT_STATE`; ``io_state`` the state whose span carries its op (``arg`` clamped to
    ``0..ops``). Returns (thread int64, state int8, op int8, start int64, end int64, open bool),
    ordered by thread, then start; an open span ends at ``end_ns`` (or its start when
    ``truncated``). Raises ValueError on columns of different lengths or a code outside
    ``lut``."""


def migrations(t: np.ndarray, thread: np.ndarray, cpu: np.ndarray, lo: int, hi: int, threads: int) -> np.ndarray:
    """Per thread (int64, ``threads`` of them), how many of its events at times in ``[lo, hi)``
    found it on another CPU than its event before (int64, uint16, int16 columns;
    rust/spans.rs). Raises ValueError on columns of different lengths or a thread not below
    ``threads``."""
