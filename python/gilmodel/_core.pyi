"""The Rust core (PyO3). Use the package's Python API; these are its building blocks."""

from typing import Any, Dict, List, Tuple

__version__: str
#: Event kinds in dictionary order.
EVENT_NAMES: List[str]
#: Names of the counted glibc primitive calls (columns of the threads table).
CALL_NAMES: List[str]

def run(scenario_json: str) -> Dict[str, Any]:
    """Run a scenario given as JSON; returns ``events`` and ``threads`` and ``io`` (dicts of
    numpy arrays / lists) and ``meta`` (JSON). Releases Python's GIL while running; a signal
    handler's exception (KeyboardInterrupt) stops the run and is raised."""

def validate(scenario_json: str) -> List[int]:
    """Validate without running; returns each thread's core. Raises ValueError."""

def calibration() -> Tuple[float, float]:
    """``(overhead_ns, ns_per_iter)`` of the spin that makes one tick."""

def allowed_cores() -> List[int]:
    """Cores this process may run on."""

def host_info() -> str:
    """Host facts as JSON."""
