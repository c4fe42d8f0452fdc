"""The Rust core (PyO3). Use the package's Python API; these are its building blocks."""

from typing import Any, Dict, List, Tuple

__version__: str
#: Event kinds in dictionary order.
EVENT_NAMES: List[str]
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
#: Bounds of an explicit ``watchdog_s``, in seconds.
WATCHDOG_RANGE_S: Tuple[float, float]

def run(scenario_json: str) -> Dict[str, Any]:
    """Run a scenario given as JSON; returns ``events`` and ``threads`` and ``io`` (dicts of
    numpy arrays / lists), ``meta`` (JSON) and ``error``: None, or, when the watchdog or the
    event budget (``on_overflow="error"``) stopped the run, ``{"kind": "watchdog" |
    "event_budget", "message": str}`` beside the partial results. Releases Python's GIL while
    running; a signal handler's exception (KeyboardInterrupt) stops the run and is raised."""

def validate(scenario_json: str) -> List[int]:
    """Validate without running; returns each thread's core. Raises ValueError."""

def calibration() -> Tuple[float, float]:
    """``(overhead_ns, ns_per_iter)`` of the spin that makes one tick."""

def allowed_cores() -> List[int]:
    """Cores this process may run on."""

def host_info() -> str:
    """Host facts as JSON."""
