"""The ``timing`` marker: timing-sensitive tests that say whether the machine was quiet.

A test marked ``@pytest.mark.timing`` (or a module with ``pytestmark = pytest.mark.timing``)
runs with the CPU time of other processes measured around it (``/proc/stat`` less this
process tree's own time: :func:`gilmodel._procs.contention`) and the host's speed sampled on
every allowed core before it and after a failure (:func:`speeds`). When it fails while others
took more than :data:`BUSY_CORES` of a core on average (or the hypervisor stole that much), or
while the speeds spread more than :data:`SPEED_SPREAD` (a host that slows its VM without steal),
it
waits for a quiet spell (:data:`QUIET_SPELL_S` in a row with every core loaded, so that the
hypervisor's steal shows, up to :data:`QUIET_WAIT_S`) and runs again, whether the spell came or
not, at most :data:`ATTEMPTS` times in all; a pass after such a retry is reported as a warning
naming the contention. The waits of a whole session are capped at :data:`SESSION_WAIT_S`: once
it is spent, retries come without a wait, so a machine that stays busy cannot stretch the suite
without end. Every failure's message ends with the
contention measured during each attempt, so a failure always says whether the machine was
busy. A failure on a quiet machine is never retried.
"""

from __future__ import annotations

import time
import warnings

from gilmodel import _procs

#: Other processes' average busy cores above which a run counts as disturbed. Measured on the
#: quiet 2-core dev VM: 0.00-0.04 during the suite; one busy shell loop: 0.9-1.0. It was 0.25
#: until a CI run in which an observed echo thread found the GIL free half the time with the
#: hypervisor stealing 0.20 cores, counted as quiet, so not retried.
BUSY_CORES = 0.15
ATTEMPTS = 5
QUIET_WAIT_S = 30.0
#: Steal comes in bursts: in one CI run a 0.5 s quiet window was followed by an attempt with
#: 0.5-0.9 cores stolen, three times over. A retry waits for this long a quiet spell.
QUIET_SPELL_S = 3.0
SESSION_WAIT_S = 300.0
#: The host of the 2-core dev VM slows it at times without any steal showing: 3.11's countdown
#: took 29 ns an iteration on a quiet day and 34-72 ns within minutes on 2026-12-02, when a CI
#: run failed the interval cpu-pair test (ratios 1.12, 1.13) as "quiet". That day :func:`speeds`
#: before and 1 s after spread 1.34-2.12 in 9 samples; no steady spell came to measure its
#: floor. 1.15: a host whose speed moves more than the tests' own tolerances (about 10 %) can
#: carry a timing ratio past them.
SPEED_SPREAD = 1.15
_waited = [0.0]


def speeds() -> list:
    """Seconds a fixed pure-Python loop takes on each allowed core (best of 3, pinned there)."""
    import os

    mask = os.sched_getaffinity(0)
    out = []
    try:
        for core in sorted(mask):
            os.sched_setaffinity(0, {core})
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                n = 0
                for i in range(100_000):
                    n += i
                best = min(best, time.perf_counter() - t)
            out.append(best)
    finally:
        os.sched_setaffinity(0, mask)
    return out


def _spread(samples: list) -> float:
    return max(samples) / min(samples) if samples else 1.0


class ContentionWarning(UserWarning):
    """A timing test failed while the machine was busy and passed on a retry."""


def _reading(c) -> str:
    speed = "; the host's speed spread %.2fx across cores and time" % c["speed_spread"] if "speed_spread" in c else ""
    return "other processes %.2f cores, steal %.2f cores over %.2f s%s" % (c["foreign_cores"], c["steal_cores"], c["wall_s"], speed)


def _quiet(c) -> bool:
    # The hypervisor's steal counts too: in a CI run a test failed three times with steal at
    # 0.62-0.88 cores while the wait between attempts had looked at other processes alone.
    return (c["foreign_cores"] <= BUSY_CORES and c["steal_cores"] <= BUSY_CORES
            and c.get("speed_spread", 1.0) <= SPEED_SPREAD)


def _load(window_s: float) -> list:
    """Keep every allowed core busy for ``window_s`` (child processes: counted as this tree's
    own, not as others'). The hypervisor steals only from vCPUs that want to run: an idle
    machine shows no steal even while the host is overcommitted, and a timing test that loads
    both cores then meets it (a CI run: 3 s of idle quiet, then 0.5-0.9 cores stolen in the
    test, five times over)."""
    import os
    import subprocess
    import sys

    code = "import time\ne = time.monotonic() + %r\nwhile time.monotonic() < e:\n    pass\n" % window_s
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(len(os.sched_getaffinity(0)))]


def wait_for_quiet(limit_s: float = QUIET_WAIT_S, window_s: float = 0.5, spell_s: float = QUIET_SPELL_S):
    """Sample the machine in ``window_s`` windows, every core loaded (:func:`_load`), until
    ``spell_s`` of them in a row were quiet (other processes and the hypervisor's steal both
    under :data:`BUSY_CORES`), or ``limit_s`` (less what the session has already waited) has
    passed; the last reading and whether the spell came."""
    start = time.monotonic()
    end = start + max(0.0, min(limit_s, SESSION_WAIT_S - _waited[0]))
    spell = 0.0
    try:
        while True:
            a = _procs.cpu_sample(tree=True)
            for p in _load(window_s):
                p.wait()
            c = _procs.contention(a, _procs.cpu_sample(tree=True))
            spell = spell + c["wall_s"] if _quiet(c) else 0.0
            if spell >= spell_s or time.monotonic() >= end:
                return c, spell >= spell_s
    finally:
        _waited[0] += time.monotonic() - start


def run_measured(item, runtest) -> None:
    readings, spells = [], []
    for attempt in range(1, ATTEMPTS + 1):
        a = _procs.cpu_sample(tree=True)
        before = speeds()
        try:
            runtest()
        except Exception as e:
            c = _procs.contention(a, _procs.cpu_sample(tree=True))
            c["speed_spread"] = _spread(before + speeds())
            readings.append(c)
            busy = not _quiet(c)
            if busy and attempt < ATTEMPTS:
                # Wait for a quiet spell; when none comes, try again anyway: a host busy for
                # minutes (CI runs on 2026-12-02 saw 0.4-0.6 cores stolen for over 30 s) would
                # otherwise fail a test whose every attempt was disturbed. A failure on a quiet
                # attempt still ends it at once.
                spells.append(wait_for_quiet())
                continue
            lines = ["contention during attempt %d: %s%s" % (i + 1, _reading(r), " (quiet)" if _quiet(r) else " (busy)")
                     for i, r in enumerate(readings)]
            lines += ["wait %d: %s (last: %s)" % (i + 1, "a quiet spell of %.0f s came" % QUIET_SPELL_S if ok else
                                                  "no quiet spell of %.0f s came" % QUIET_SPELL_S, _reading(q))
                      for i, (q, ok) in enumerate(spells)]
            if spells:
                lines.append("this session has waited %.0f s of its %.0f s" % (_waited[0], SESSION_WAIT_S))
            verdict = ("the machine was busy: this failure may be the contention's, not the model's"
                       if busy else "the machine was quiet: this failure is not contention's")
            e.add_note("[timing] " + verdict + "\n" + "\n".join("[timing] " + x for x in lines))
            raise
        else:
            if readings:
                warnings.warn(ContentionWarning(
                    "%s failed %d time(s) while the machine was busy (%s) and passed on a retry%s"
                    % (item.nodeid, len(readings), "; ".join(_reading(r) for r in readings),
                       "" if all(ok for _, ok in spells) else " (not every wait found a quiet spell)")))
            return
