"""gilmodel: a laboratory for the Python GIL.

Real OS threads, pinned to cores, contend faithful replicas of CPython's GILs built from
glibc's pthread mutexes, condition variables and semaphores; every GIL event is logged and
returned as Arrow tables.

>>> import gilmodel as gm
>>> run = gm.run(gm.scenarios.convoy(gm.cpython("3.11"), cores=[0, 1], total_bytes=1 << 20))
>>> run.summary()["elapsed_s"]  # doctest: +SKIP
"""

from . import analysis, experiments, plot, profiles, scenarios, trace
from ._core import __version__
from .policies import (
    CPYTHON_VERSIONS, POLICIES, BfsGIL, FifoGIL, IntervalGIL, NoGIL, Policy, PriorityGIL, TickGIL, cpython, resolve_gil,
)
from .profiles import CalibrationError, Profile, calibrate
from .run import EVENT_NAMES, EventBudgetError, Run, RunHalted, WatchdogError, load_run, run
from .scenario import (
    Acquire, Cpu, Drain, Driver, Get, Held, Join, Loop, Native, Op, Put, Queue, Recv, Release, Scenario, Send, Signal,
    Sleep, Thread, Write, acquire, cpu, drain, driver, get, held, join, loop, native, put, recv, release, send, signal,
    sleep, write,
)
from .analysis import summary
from .sweeps import load, sweep
from .fidelity import validate
from .observe import ObserveError, ObserveInterrupted, observe
from .whatif import Replay, WhatIf, WhatIfError, scenario_from, whatif

__all__ = [
    "__version__", "scenarios", "experiments", "analysis", "plot", "profiles", "trace",
    "TickGIL", "IntervalGIL", "PriorityGIL", "BfsGIL", "FifoGIL", "NoGIL", "POLICIES", "Policy", "cpython",
    "CPYTHON_VERSIONS", "resolve_gil",
    "calibrate", "Profile", "CalibrationError",
    "Scenario", "Thread", "Op", "Cpu", "Native", "Held", "Sleep", "Send", "Recv", "Write", "Join", "Loop",
    "Acquire", "Release", "Put", "Get", "Queue", "acquire", "release", "put", "get",
    "cpu", "native", "held", "sleep", "send", "recv", "write", "join", "loop", "Drain", "Driver", "drain", "driver", "Signal", "signal",
    "run", "Run", "load_run", "summary", "EVENT_NAMES", "RunHalted", "WatchdogError", "EventBudgetError",
    "sweep", "load",
    "validate",
    "observe", "ObserveError", "ObserveInterrupted",
    "whatif", "scenario_from", "WhatIf", "Replay", "WhatIfError",
]
