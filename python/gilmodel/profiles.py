"""Calibration profiles: what one real interpreter's work costs on this machine.

The model's unit of interpreter work is a *tick* (2.x: one ``_Py_Ticker`` decrement; 3.x: one
loop back-edge, where the eval breaker is checked). How long a tick lasts decides the whole
race of the tick GIL (the time between checks) and the cost of the work around each socket
call. A :class:`Profile` holds those costs for one interpreter on one host, measured by the
``calibrate`` probe (``python/gilmodel/probes/calibrate.py``) under that interpreter.

:func:`calibrate` measures (or finds in the cache) the profile of an interpreter given by
path or version; :func:`for_policy` is what every scenario without an explicit ``tick_ns``
uses: the profile of the interpreter the policy stands for (``cpython("2.7")`` → 2.7's), found
on this machine, measured once and cached, or, where the machine has no such interpreter, the
reference profile shipped in the package (``reference_profiles.json``), with a notice.

The cache is one JSON file, ``profiles.json``, in ``$GILMODEL_CACHE_DIR``, else
``$XDG_CACHE_HOME/gilmodel``, else ``~/.cache/gilmodel``. Entries are keyed by the host's
fingerprint (CPU model, kernel, cores, machine id) and the interpreter's real path; an entry
is used only on the host that measured it and while the interpreter's files (the executable
and its ``libpython``) are unchanged. Writers take an exclusive ``flock`` on ``profiles.lock``
for the whole read-measure-write, so processes calibrating at once measure one at a time and
the file is always one consistent document, replaced atomically (temp file + rename).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ._check import show
from ._core import allowed_cores, idle_echo_round_trips_ns, socket_pair_ns
from ._procs import contention, cpu_sample
from .interpreters import Interpreter, detect, find_python, norm_minor
from .policies import Policy, TickGIL, cpython, gil_family
from .probes.runner import ProbeError, run_probe

__all__ = ["Profile", "CalibrationError", "calibrate", "for_policy", "speed_checked", "cache_dir", "cache_file",
           "clear_cache", "cached_profiles", "host_fingerprint", "find_python", "reference_profiles", "MIN_TICK_NS"]

#: The measured figures of a profile (the ``calibrate`` probe's fields, and ``sys_pair_ns``
#: measured beside each probe run by the core), each kept as the least
#: over the repeats (``ticks_per_iter``: the median) with its min and max in ``spread``.
FIGURES = ("tick_ns", "ticks_per_iter", "ns_per_iter", "warm_ns_per_iter", "call_ns", "sock_call_ns", "sock_pair_ns",
           "sys_pair_ns")
_FORMAT = "gilmodel-profiles"
#: 2: profiles gained ``warm_ns_per_iter`` (a cache of format 1 is measured again).
_FORMAT_VERSION = 2
#: The model's spin keeps its tick length within a few % from 10 ns up; below that its
#: per-tick poll costs more than the tick (2.7's tick measures 4-8 ns here), so ticks are
#: grouped (see :attr:`Profile.group`).
MIN_TICK_NS = 10.0
#: Countdown iterations the probe times per round (5 rounds, best kept): 0.5 M is the size
#: ``gilmodel validate``'s reference run used.
PROBE_N = 500_000
#: Socket pairs a round the probe times in the interpreter, and the core bare (``sys_pair_ns``):
#: 2 000, about 9 ms a round here, short enough to fit a scheduler slice as the countdown's
#: rounds do. (10 000 made a calibration of 3 repeats take 1.7 s more.)
PROBE_PAIRS = 2_000
#: Rounds of each (the least is kept).
PROBE_ROUNDS = 5
#: Probe runs a calibration adds while the interpreter's socket pair measures no slower than
#: the bare one. Their difference, the interpreter's part, is 0.3-2.6 µs of 7-10 µs pairs
#: (6 single runs of 3.11, 2026-12-03 19:31), so a host whose speed moves between the two can
#: turn it negative (once in a CI run: 9 047 against 9 068 ns).
SOCKET_RETRIES = 2
#: Times away at which a calibration measures :attr:`Profile.return_cost`: ``(away_us,
#: pings)``, an echo with no CPU thread pinged that far apart (0.6 s of pings a side). The
#: real echo's cost grows most between 1 and 10 ms (``benches/idle_gap.py``); 10 ms is the
#: probes' ping gap.
RETURN_GAPS = ((200, 100), (1_000, 60), (10_000, 50))
#: Other processes' CPU on the probe's core above which a calibration says the machine was busy.
BUSY_CORES = 0.25
#: A cached profile stands for its interpreter only while that interpreter still runs at about
#: the speed it was measured at. A shared host's speed moves: on the 2-core VM 3.11's countdown
#: took 54 ns an iteration at 06:46 and 30 ns at 07:55 (2026-12-02), so a model run with the
#: 06:46 profile ran its ticks 1.8× as long as the interpreter's. On first use in a process,
#: and again once this many seconds have passed, the default path times the interpreter's
#: countdown as the calibration does (the ``calibrate`` probe with ``--only countdown``, 5
#: rounds of PROBE_N, the least: 0.12–0.27 s on the 2-core VM) and scales the profile's interpreter figures to
#: it when it moved by more than SPEED_TOLERANCE.
SPEED_CHECK_S = 120.0
#: How far (a ratio, either way) the countdown may move before the profile is scaled. Wide, so
#: that only a lasting change of speed moves the model: on that VM the same check gave 38–68 ns
#: for 3.11 from one second to the next (six runs in a row of ``probes/calibrate.py --n 500000
#: --rounds 5 --only countdown``, 2026-12-02 08:10), and scaling
#: to each draw would only trade a stale profile for a noisy one.
SPEED_TOLERANCE = 0.5


def _warm(results: List[Dict[str, Any]], ns_per_iter: float) -> Optional[float]:
    """``ns_per_iter`` times the median over the probe runs of each run's warm over cold
    countdown (timed alternately in one run, so a drift of the host's speed between runs does
    not enter it, as it would the ratio of two least times); None if no run timed it."""
    rs = [float(r["warm_ns_per_iter"]) / float(r["ns_per_iter"]) for r in results
          if r.get("warm_ns_per_iter") and r.get("ns_per_iter")]
    return ns_per_iter * statistics.median(rs) if rs else None


class CalibrationError(RuntimeError):
    """An interpreter could not be calibrated: not a Python, it failed, or it timed out. No
    cache entry was written."""


@dataclasses.dataclass(frozen=True)
class Profile:
    """The measured costs of one interpreter on one host.

    Attributes:
        version: the interpreter's full version (``"2.7.18"``).
        python: its path.
        tick_ns: time of one tick (2.x: one ``_Py_Ticker`` decrement; 3.x: one loop back-edge).
        ticks_per_iter: ticks in one iteration of the countdown loop (2.x: counted through the
            thread state's ``tick_counter``, 3 on 2.7; 3.x: 1).
        ns_per_iter: one countdown iteration, in the countdown's first calls.
        warm_ns_per_iter: the same once the countdown has been called 10 times: CPython 3.11
            specialises a function's code only from its 8th call on, and it then runs
            0.67-0.72x as long on the 2-core VM (0.95-1.07 on 2.7, 3.10, 3.12 and 3.13; 3 runs
            each of ``probes/calibrate.py --n 200000 --rounds 5`` on one core); ``ns_per_iter``
            times the median of the probe runs' ratios. None in profiles that predate it (the
            reference ones).
        call_ns: a Python-level C call in a loop, beyond the loop itself (what ``recv`` costs
            the interpreter besides the system call).
        sock_call_ns: the same for a socket-object method of ``sendall``'s kind (on 2.x a
            Python-level wrapper in socket.py, ~125 ns; on 3.x a C method, ~10 ns).
        sock_pair_ns: a ``send`` of one byte and the ``recv`` that reads it on a loopback TCP
            pair, in the interpreter, system calls included (4.0–4.7 µs on the 2-core VM).
        sys_pair_ns: the same two calls without an interpreter (``_core.socket_pair_ns`` on
            the probe's core, 3.2–3.4 µs there); :attr:`sock_work_ns` is the difference.
        check_interval: ``sys.getcheckinterval()`` (2.x), else None.
        switch_interval_s: ``sys.getswitchinterval()`` (3.2+), else None.
        host: the fingerprint of the host it was measured on (:func:`host_fingerprint`).
        measured_at: when (UTC, ISO 8601).
        repeats: how many probe runs the figures are the least of.
        spread: per figure, ``[min, max]`` over the repeats.
        binary: the interpreter's files as they were (paths, sizes, mtimes, inodes).
        ticks_per_iter_source: how ``ticks_per_iter`` was found (counted, or assumed).
        contention: the most CPU other processes took on the probe's core during a probe
            run, in cores (0: quiet; a busy core makes ticks look slower).
        return_cost: what the interpreter pays beyond the model when a thread comes back to
            Python after time away from it: ``[[away_us, extra_ns], ...]``, the real echo's
            round trip with pings ``away_us`` apart (:data:`RETURN_GAPS`) less the model's own
            echo's with the same pings and work (``_core.idle_echo_round_trips_ns``); never
            falling with time away. 5-12 µs at 0.2 ms, 50-76 µs at 10 ms for 2.7 and 3.11 on the 2-core
            VM. A scenario resolved from the profile spins it after each blocking op
            (``Scenario.return_cost``). None where not measured (the reference profiles).
        speed_scale: 1, or the ratio by which :func:`speed_checked` scaled the interpreter
            figures (``tick_ns``, ``ns_per_iter``, ``call_ns``, ``sock_call_ns``, the
            interpreter's part of ``sock_pair_ns`` and ``return_cost``): its countdown now over
            its countdown then.
        source: ``"measured"`` (just now), ``"cache"`` or ``"reference"`` (shipped in the
            package, measured on the host it names).
    """

    version: str
    python: str
    tick_ns: float
    ticks_per_iter: float
    ns_per_iter: float
    call_ns: float
    warm_ns_per_iter: Optional[float] = None
    sock_call_ns: Optional[float] = None
    sock_pair_ns: Optional[float] = None
    sys_pair_ns: Optional[float] = None
    check_interval: Optional[int] = None
    switch_interval_s: Optional[float] = None
    host: Dict[str, Any] = dataclasses.field(default_factory=dict)
    measured_at: str = ""
    repeats: int = 1
    spread: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    binary: Dict[str, Any] = dataclasses.field(default_factory=dict)
    ticks_per_iter_source: str = ""
    contention: float = 0.0
    return_cost: Optional[List[List[float]]] = None
    speed_scale: float = 1.0
    source: str = dataclasses.field(default="measured", compare=False)

    @property
    def minor(self) -> str:
        """``"2.7"``, ``"3.11"``: the key :func:`gilmodel.cpython` takes."""
        return ".".join(self.version.split(".")[:2])

    def version_tuple(self) -> Tuple[int, int]:
        major, minor = self.minor.split(".")[:2]
        return int(major), int(minor)

    @property
    def group(self) -> int:
        """Real ticks per model tick: 1, or the real ticks of one countdown iteration when a
        real tick is shorter than the spin can make (:data:`MIN_TICK_NS`). The tick GIL's
        check period is then kept in real time: it checks every ``(check_interval + 1) /
        group`` model ticks (CPython 2's ticker runs ``check_interval + 1`` ticks a period)."""
        # The tick as measured: a profile scaled to the host's speed now keeps its grouping.
        if self.tick_ns / self.speed_scale >= MIN_TICK_NS:
            return 1
        return max(1, int(round(self.ticks_per_iter)))

    @property
    def model_tick_ns(self) -> float:
        """The model's tick: ``tick_ns × group``."""
        return self.tick_ns * self.group

    def adjust(self, gil: Policy) -> Policy:
        """``gil`` with its check period in model ticks: a tick GIL with grouped ticks checks
        every ``(check_interval + 1) / group`` model ticks, so the real time between checks
        is kept. Other policies are returned as they are."""
        if self.group > 1 and isinstance(gil, TickGIL):
            return dataclasses.replace(gil, check_interval=max(1, int(round((gil.check_interval + 1) / self.group))))
        return gil

    def policy(self, version: Optional[str] = None) -> Policy:
        """``cpython(version or self.minor)``, adjusted (:meth:`adjust`)."""
        return self.adjust(cpython(version or self.minor))

    def _ticks(self, ns: float) -> int:
        return max(1, int(round(ns / self.model_tick_ns)))

    @property
    def warm_ratio(self) -> float:
        """:attr:`warm_ns_per_iter` over :attr:`ns_per_iter` (1 where it was not measured)."""
        if not self.warm_ns_per_iter:
            return 1.0
        return self.warm_ns_per_iter / self.ns_per_iter

    def iter_ticks(self, n: int, warm: bool = False) -> int:
        """Model ticks (at least 1) of ``n`` iterations of the probes' countdown: cold, as
        a thread that loops inside one call runs it, or ``warm``, as a task called again and
        again does (:attr:`warm_ratio`: under 3.11 a warm iteration is shorter)."""
        return max(1, int(round(n * self.ticks_per_iter / self.group * (self.warm_ratio if warm else 1.0))))

    @property
    def sock_work_ns(self) -> Optional[float]:
        """The interpreter's own work in a ``send`` and a ``recv``, beyond their system calls
        (None where the profile predates its measurement, as the shipped reference profiles
        do, or where the interpreter's pair measured no slower than the bare one: the machine's
        speed moved between them). 1.0–1.3 µs for 2.7 and 3.11 on the 2-core VM: the calls' argument parsing, bytes
        objects and error checks, where one Python-level C call in a loop (``call_ns``) is
        20–60 ns."""
        if self.sock_pair_ns is None or self.sys_pair_ns is None or self.sock_pair_ns <= self.sys_pair_ns:
            return None  # not measured, or measured while the machine's speed moved
        return self.sock_pair_ns - self.sys_pair_ns

    @property
    def send_work_ticks(self) -> int:
        """Model ticks of interpreter work in one iteration of a ``sendall`` loop."""
        sock = self.call_ns if self.sock_call_ns is None else self.sock_call_ns
        return self._ticks(self.ns_per_iter + sock)

    @property
    def echo_work_ticks(self) -> int:
        """Model ticks of interpreter work in one iteration of an echo loop (``recv``,
        ``sendall``): the loop and :attr:`sock_work_ns`; without that measurement, the loop
        and a C call of each kind (``call_ns``, ``sock_call_ns``), which is less."""
        sock = self.call_ns if self.sock_call_ns is None else self.sock_call_ns
        work = self.sock_work_ns
        return self._ticks(self.ns_per_iter + (self.call_ns + sock if work is None else work))

    @property
    def client_work_ticks(self) -> int:
        """Model ticks of interpreter work a Python client spends per request (the probes'
        ``_peer.py``: ``sendall``, a ``read_exact`` function around its ``recv``, a clock
        read): two loop iterations, :attr:`sock_work_ns` and two C calls; without
        :attr:`sock_work_ns`, :attr:`echo_work_ticks`."""
        work = self.sock_work_ns
        if work is None:
            return self.echo_work_ticks
        return self._ticks(2 * self.ns_per_iter + work + 2 * self.call_ns)

    def relative_spread(self, figure: str = "tick_ns") -> float:
        """``(max - min) / median`` of a figure over the repeats (0 with one repeat)."""
        lo, hi = self.spread.get(figure, [getattr(self, figure)] * 2)
        med = getattr(self, figure)
        return (hi - lo) / med if med else 0.0

    def describe(self) -> str:
        """One line: interpreter, tick, model tick, where the profile came from."""
        where = {"measured": "measured now", "cache": "cached, measured %s" % self.measured_at,
                 "reference": "reference profile measured on %s (%s), %s" % (
                     self.host.get("hostname", "?"), self.host.get("cpu", "?"), self.measured_at)}.get(self.source, self.source)
        grp = "" if self.group == 1 else "; model tick = %d real ticks = %.1f ns" % (self.group, self.model_tick_ns)
        if self.speed_scale != 1.0:
            where += "; scaled ×%.2f to the interpreter's speed now" % self.speed_scale
        return "CPython %s (%s): tick %.2f ns (±%.0f %% over %d runs)%s; %s" % (
            self.version, self.python, self.tick_ns, 50 * self.relative_spread(), self.repeats, grp, where)

    def scaled(self, r: float) -> "Profile":
        """This profile with its interpreter figures multiplied by ``r`` (the system calls'
        own cost, ``sys_pair_ns``, stays); ``speed_scale`` records the product."""
        pair = self.sock_pair_ns
        if pair is not None and self.sys_pair_ns is not None:
            pair = self.sys_pair_ns + (pair - self.sys_pair_ns) * r
        spread = {k: [v * r for v in lohi] if k in ("tick_ns", "ns_per_iter", "warm_ns_per_iter", "call_ns",
                                                     "sock_call_ns") else lohi
                  for k, lohi in self.spread.items()}
        return dataclasses.replace(self, tick_ns=self.tick_ns * r, ns_per_iter=self.ns_per_iter * r,
                                   warm_ns_per_iter=None if self.warm_ns_per_iter is None else self.warm_ns_per_iter * r,
                                   call_ns=self.call_ns * r, spread=spread,
                                   sock_call_ns=None if self.sock_call_ns is None else self.sock_call_ns * r,
                                   sock_pair_ns=pair, speed_scale=self.speed_scale * r,
                                   return_cost=None if self.return_cost is None else
                                   [[a, c * r] for a, c in self.return_cost])

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def meta(self) -> Dict[str, Any]:
        """What ``run.meta["profile"]`` records: source, interpreter, figures, host, group."""
        d = self.to_dict()
        d.pop("binary")
        d.update(group=self.group, model_tick_ns=self.model_tick_ns, send_work_ticks=self.send_work_ticks,
                 echo_work_ticks=self.echo_work_ticks, client_work_ticks=self.client_work_ticks)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Profile":
        """A profile from :meth:`to_dict`'s form; ValueError if a field is missing or of the
        wrong type (a damaged cache entry)."""
        if not isinstance(d, dict):
            raise ValueError("a profile must be a JSON object, got %s" % show(d))
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError("unknown profile field(s) %s" % ", ".join(sorted(unknown)))
        kw = dict(d)
        for k in ("version", "python"):
            if not isinstance(kw.get(k), str):
                raise ValueError("profile.%s: expected a string, got %s" % (k, show(kw.get(k))))
        for k in ("tick_ns", "ticks_per_iter", "ns_per_iter", "call_ns"):
            v = kw.get(k)
            # call_ns may be 0 (a call no slower than the loop); the others must be positive.
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < 1e9) or (v == 0 and k != "call_ns"):
                raise ValueError("profile.%s: expected a positive number, got %s" % (k, show(v)))
            kw[k] = float(v)
        for k in ("warm_ns_per_iter", "sock_call_ns", "sock_pair_ns", "sys_pair_ns"):
            v = kw.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < 1e9)):
                raise ValueError("profile.%s: expected a number of ns or null, got %s" % (k, show(v)))
        rc = kw.get("return_cost")
        if rc is not None:
            ok = isinstance(rc, list) and len(rc) <= 16 and all(
                isinstance(pt, list) and len(pt) == 2 and all(
                    not isinstance(x, bool) and isinstance(x, (int, float)) and 0 <= x < 1e9 for x in pt) for pt in rc)
            if not ok or any(b[0] <= a[0] for a, b in zip(rc, rc[1:])) or (rc and rc[0][0] <= 0):
                raise ValueError("profile.return_cost: expected [[away_us, extra_ns], ...] with away_us rising from "
                                 "above 0, or null, got %s" % show(rc))
        v = kw.get("speed_scale", 1.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < 1e3):
            raise ValueError("profile.speed_scale: expected a positive number, got %s" % show(v))
        for k in ("host", "spread", "binary"):
            if not isinstance(kw.get(k, {}), dict):
                raise ValueError("profile.%s: expected an object, got %s" % (k, show(kw.get(k))))
        try:
            return cls(**kw)
        except TypeError as e:
            raise ValueError("profile: %s" % e) from None

    @classmethod
    def from_probe(cls, results: List[Dict[str, Any]], interp: Interpreter) -> "Profile":
        """The profile of ``interp`` from the JSON results of its ``calibrate`` probe runs:
        the least of each time (the median of ``ticks_per_iter``), with its min and max."""
        if not results:
            raise ValueError("from_probe: no probe results")
        med, spread = {}, {}
        for k in FIGURES:
            xs = [float(r[k]) for r in results if r.get(k) is not None]
            if xs:
                # Times: the least (each run is already the best of its rounds, and other work
                # on the core only ever adds time); ticks per iteration is a count: the median.
                med[k] = statistics.median(xs) if k == "ticks_per_iter" else min(xs)
                spread[k] = [min(xs), max(xs)]
        first = results[0]
        ci = first.get("check_interval")
        return cls(version=interp.version, python=interp.path, tick_ns=med["tick_ns"],
                   ticks_per_iter=med["ticks_per_iter"], ns_per_iter=med["ns_per_iter"], call_ns=med["call_ns"],
                   warm_ns_per_iter=_warm(results, med["ns_per_iter"]),
                   sock_call_ns=med.get("sock_call_ns"), sock_pair_ns=med.get("sock_pair_ns"),
                   sys_pair_ns=med.get("sys_pair_ns"), check_interval=None if ci is None else int(ci),
                   switch_interval_s=first.get("switch_interval_s"), host=host_fingerprint(),
                   measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), repeats=len(results),
                   spread=spread, binary=binary_identity(interp.path),
                   ticks_per_iter_source=str(first.get("ticks_per_iter_source", "")), source="measured")


# ---------------------------------------------------------------------------------------------
# The host and the interpreter's files


_HOST: Optional[Dict[str, Any]] = None


def host_fingerprint() -> Dict[str, Any]:
    """What identifies this machine for a profile: CPU model, kernel release, architecture,
    online CPUs, host name and machine id (``/etc/machine-id``). A profile measured where any
    of these differ is not used."""
    global _HOST
    if _HOST is None:
        cpu = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name") or line.startswith("Processor"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mid = ""
        for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
            try:
                with open(p) as f:
                    mid = f.read().strip()
                break
            except OSError:
                continue
        u = os.uname()
        _HOST = {"cpu": cpu, "kernel": u.release, "machine": u.machine, "cores": os.cpu_count() or 0,
                 "hostname": u.nodename, "machine_id": mid}
    return dict(_HOST)


def binary_identity(python: str) -> Dict[str, Any]:
    """The interpreter's executable and its shared ``libpython`` (where the install has one):
    real path, size, mtime and inode of each. A change re-measures the profile."""
    real = os.path.realpath(python)
    files = [real]
    prefix = os.path.dirname(os.path.dirname(real))
    files += sorted(glob.glob(os.path.join(prefix, "lib", "libpython*.so*")))
    out = {}
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            continue
        out[os.path.realpath(f)] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


# ---------------------------------------------------------------------------------------------
# The cache


def cache_dir() -> str:
    """``$GILMODEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/gilmodel``, else ``~/.cache/gilmodel``."""
    d = os.environ.get("GILMODEL_CACHE_DIR")
    if d:
        return os.path.abspath(os.path.expanduser(d))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gilmodel")


def cache_file() -> str:
    return os.path.join(cache_dir(), "profiles.json")


def _notice(msg: str) -> None:
    print("gilmodel: " + msg, file=sys.stderr, flush=True)


def _read_cache(path: str, notice: Callable[[str], None]) -> List[Dict[str, Any]]:
    """The raw entries of the cache file ([] when there is none). A file that is not a
    gilmodel profile cache (corrupt, truncated, foreign) gives [] and a notice."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        notice("the profile cache %s is unreadable (%s); re-measuring" % (path, str(e)[:120]))
        return []
    if not (isinstance(doc, dict) and doc.get("format") == _FORMAT and doc.get("version") == _FORMAT_VERSION
            and isinstance(doc.get("profiles"), list)):
        notice("%s is not a gilmodel profile cache of format %d; re-measuring" % (path, _FORMAT_VERSION))
        return []
    return [e for e in doc["profiles"] if isinstance(e, dict)]


def _usable(entry: Dict[str, Any], host: Dict[str, Any]) -> Optional[Profile]:
    """The cached profile if it parses and still stands (:func:`_still_good`); else None."""
    try:
        p = Profile.from_dict(entry)
    except ValueError:
        return None
    if not _still_good(p, host) or p.speed_scale != 1.0:  # a scaled entry was never written by _store
        return None
    return dataclasses.replace(p, source="cache")


def _still_good(p: Profile, host: Dict[str, Any]) -> bool:
    """Whether a measured profile still stands here: measured on ``host``, its interpreter's
    files unchanged, and measured with the echo's socket work (``sock_pair_ns``, ``sys_pair_ns``)
    and its ``return_cost`` (older entries are measured again)."""
    return (p.host == host and bool(p.binary) and binary_identity(p.python) == p.binary
            and p.sock_pair_ns is not None and p.sys_pair_ns is not None and p.return_cost is not None)


def cached_profiles() -> List[Profile]:
    """Every profile in the cache that this host can use (measured here, interpreter unchanged)."""
    host = host_fingerprint()
    out = []
    for e in _read_cache(cache_file(), lambda m: None):
        p = _usable(e, host)
        if p is not None:
            out.append(p)
    return out


def _lookup(python: Optional[str], minor: Optional[str], notice: Callable[[str], None]) -> Optional[Profile]:
    host = host_fingerprint()
    real = os.path.realpath(python) if python else None
    for e in _read_cache(cache_file(), notice):
        if real is not None and os.path.realpath(str(e.get("python", ""))) != real:
            continue
        if minor is not None and norm_minor(str(e.get("version", ""))) != minor:
            continue
        p = _usable(e, host)
        if p is not None:
            return p
    return None


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "profiles.lock"), "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def _write_json(path: str, doc: Any, sync: bool) -> None:
    """``doc`` to ``path`` atomically (temp file + rename in its folder; ``fsync`` first with
    ``sync``)."""
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + "-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write(entries: List[Dict[str, Any]]) -> None:
    _write_json(cache_file(), {"format": _FORMAT, "version": _FORMAT_VERSION, "profiles": entries}, sync=True)


def _store(p: Profile) -> None:
    """Add ``p`` to the cache, replacing this host's entry for the same interpreter (the
    caller holds the lock). Only a profile as measured: a scaled one stands for one moment."""
    if p.speed_scale != 1.0:
        raise ValueError("_store: a profile scaled to the interpreter's speed (×%.2f) is not a measurement" % p.speed_scale)
    host = host_fingerprint()
    real = os.path.realpath(p.python)
    keep = [e for e in _read_cache(cache_file(), lambda m: None)
            if not (e.get("host") == host and os.path.realpath(str(e.get("python", ""))) == real)]
    d = p.to_dict()
    d["source"] = "measured"
    _write(keep + [d])


def clear_cache(python: Optional[str] = None) -> int:
    """Remove this host's cached profiles (all, or those of interpreter ``python``: a path or
    a version); returns how many were removed. Other hosts' entries stay."""
    host = host_fingerprint()
    if python is None:
        match = lambda e: True  # noqa: E731
    elif os.sep in python or os.path.exists(python):
        real = os.path.realpath(python)
        match = lambda e: os.path.realpath(str(e.get("python", ""))) == real  # noqa: E731
    else:
        minor = norm_minor(python)
        match = lambda e: norm_minor(str(e.get("version", ""))) == minor  # noqa: E731
    with _locked():
        entries = _read_cache(cache_file(), lambda m: None)
        keep = [e for e in entries if not (e.get("host") == host and match(e))]
        if len(keep) != len(entries) or not os.path.exists(cache_file()):
            _write(keep)
        return len(entries) - len(keep)


# ---------------------------------------------------------------------------------------------
# Measuring


def _resolve(python: Optional[str]) -> Interpreter:
    if python is None:
        return detect(sys.executable)
    if not isinstance(python, str):
        raise TypeError("calibrate(python): expected a path or a version such as '2.7', got %s" % show(python))
    if os.sep in python or os.path.exists(python):
        try:
            return detect(python)
        except ValueError as e:
            raise CalibrationError("calibrate: %s" % e) from None
    it = find_python(python)
    if it is None:
        raise CalibrationError("calibrate: no CPython %s found on this machine (looked at the running interpreter, "
                               "$PYENV_ROOT/versions and PATH); give its path" % python)
    return it


def _sys_pair_ns(core: List[int]) -> float:
    """``_core.socket_pair_ns`` on the probe's core (this thread pinned there meanwhile), with
    the pairs and rounds the probe times."""
    was = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, core)
        return socket_pair_ns(PROBE_PAIRS, PROBE_ROUNDS)
    finally:
        os.sched_setaffinity(0, was)


def _measure(interp: Interpreter, repeats: int, timeout_s: float) -> Profile:
    core = allowed_cores()[:1]
    args = {"n": PROBE_N, "rounds": PROBE_ROUNDS, "pairs": PROBE_PAIRS}
    results = []
    busy = 0.0
    extra = 0
    while len(results) < repeats + extra:
        try:
            sys_before = _sys_pair_ns(core)
            before = cpu_sample(tree=True)
            r = run_probe(interp, "calibrate", args, core, timeout=timeout_s)
            busy = max(busy, contention(before, cpu_sample(tree=True), core)["foreign_cores"])
        except ProbeError as e:
            raise CalibrationError("calibrate: %s" % e) from None
        except ValueError as e:  # it printed something that is not the probe's JSON
            raise CalibrationError("calibrate: %s did not print a calibration (%s)" % (interp.label, e)) from None
        if not isinstance(r, dict) or any(not isinstance(r.get(k), (int, float)) or r.get(k) != r.get(k)
                                          for k in ("tick_ns", "ticks_per_iter", "ns_per_iter", "call_ns")):
            raise CalibrationError("calibrate: %s printed no usable calibration: %s" % (interp.label, show(r)))
        # Before and after the probe's own pairs, the lesser: the host's speed can move within
        # seconds (a pair measured 5.2 µs bare after 4.0 µs in the interpreter, in a CI run).
        r["sys_pair_ns"] = min(sys_before, _sys_pair_ns(core))
        results.append(r)
        if (len(results) == repeats + extra and extra < SOCKET_RETRIES
                and Profile.from_probe(results, interp).sock_work_ns is None):
            extra += 1  # the pairs contradict each other: the host's speed moved; measure again
    p = Profile.from_probe(results, interp)
    return dataclasses.replace(p, contention=busy, return_cost=_return_cost(interp, core, p, timeout_s))


def _return_cost(interp: Interpreter, core: List[int], p: Profile, timeout_s: float) -> List[List[float]]:
    """:attr:`Profile.return_cost` of ``p``'s interpreter: at each of :data:`RETURN_GAPS`, the
    p50 round trip of its ``io_latency`` echo (no CPU thread) less the p50 of the model's own
    echo with ``p``'s work, on the same core; at least the cost at the gap before."""
    out: List[List[float]] = []
    floor = 0.0
    for gap, pings in RETURN_GAPS:
        try:
            r = run_probe(interp, "io_latency", {"cpu_threads": 0, "pings": pings, "gap_us": gap}, core,
                          timeout=timeout_s)
        except ProbeError as e:
            raise CalibrationError("calibrate: %s" % e) from None
        if not isinstance(r, dict) or not isinstance(r.get("p50_ms"), (int, float)):
            raise CalibrationError("calibrate: %s's io_latency probe printed no p50: %s" % (interp.label, show(r)))
        model = statistics.median(_model_echo_ns(core, p, pings, gap))
        floor = max(floor, r["p50_ms"] * 1e6 - model)
        out.append([float(gap), round(floor, 1)])
    return out


def _model_echo_ns(core: List[int], p: Profile, pings: int, gap_us: int) -> List[int]:
    """``_core.idle_echo_round_trips_ns`` with ``p``'s work on the probe's core (this thread
    pinned there meanwhile)."""
    was = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, core)
        return idle_echo_round_trips_ns(pings, gap_us, p.echo_work_ticks, p.client_work_ticks, p.model_tick_ns,
                                        isinstance(p.policy(), TickGIL))
    finally:
        os.sched_setaffinity(0, was)


def calibrate(python: Optional[str] = None, *, repeats: int = 3, refresh: bool = False, timeout_s: float = 30.0,
              quiet: bool = False) -> Profile:
    """The profile of an interpreter on this machine: from the cache, or measured now (and
    cached).

    Args:
        python: a path, a version (``"2.7"``, ``"3.11"``: found with :func:`find_python`), or
            None for the running interpreter.
        repeats: runs of the ``calibrate`` probe (the least time is kept, with the spread);
            up to :data:`SOCKET_RETRIES` more while its socket pairs contradict the bare ones.
        refresh: measure even if the cache has a usable profile.
        timeout_s: the most one probe run may take.
        quiet: no notice on stderr when measuring.

    Raises:
        CalibrationError: not a Python, the probe failed, or it timed out (nothing cached).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 100:
        raise ValueError("calibrate: repeats %s must be an integer from 1 to 100" % show(repeats))
    notice = (lambda m: None) if quiet else _notice
    if not refresh:
        # A hit asks the interpreter nothing (starting it takes ~15 ms): the cache knows its
        # path, version and files.
        if python is None or (isinstance(python, str) and (os.sep in python or os.path.exists(python))):
            p = _lookup(sys.executable if python is None else python, None, notice)
        elif isinstance(python, str):
            p = _lookup(None, norm_minor(python), notice)
        else:
            p = None
        if p is not None:
            return p
    it = _resolve(python)
    with _locked():
        if not refresh:  # another process may have measured it while this one waited
            p = _lookup(it.path, None, lambda m: None)
            if p is not None:
                return p
        notice("calibrating CPython %s (%s) for this machine; cached in %s" % (it.version, it.path, cache_file()))
        p = _measure(it, repeats, timeout_s)
        if p.sock_work_ns is None:
            notice("CPython %s's socket calls measured no slower than the bare system calls (%.0f against %.0f ns a "
                   "send and recv): the machine's speed moved between them, so its echoes are charged one C call "
                   "each instead; `gilmodel calibrate --refresh --python %s` on a quiet machine"
                   % (it.version, p.sock_pair_ns or 0, p.sys_pair_ns or 0, it.path))
        if p.contention > BUSY_CORES:
            notice("other processes took %.2f of core %d while calibrating %s: its ticks may measure slow; "
                   "`gilmodel calibrate --refresh --python %s` on a quiet machine" % (p.contention, _first_core(), it.path, it.path))
        _store(p)
    return p


def _first_core() -> int:
    return allowed_cores()[0]


# ---------------------------------------------------------------------------------------------
# The profile a policy stands for


_REFERENCE: Optional[List[Profile]] = None
#: Per process: the profile resolved for each (cache file, version), so a version this machine
#: lacks is looked for, and noticed, once.
_RESOLVED: Dict[Tuple[str, str], Profile] = {}


def reference_profiles() -> List[Profile]:
    """The profiles shipped in the package (``reference_profiles.json``), measured on the
    development machine each one names; used where this machine has no such interpreter."""
    global _REFERENCE
    if _REFERENCE is None:
        from importlib.resources import files

        doc = json.loads(files(__package__).joinpath("reference_profiles.json").read_text())
        _REFERENCE = [dataclasses.replace(Profile.from_dict(d), source="reference") for d in doc["profiles"]]
    return list(_REFERENCE)


def _reference_for(minor: str) -> Tuple[Profile, bool]:
    """The reference profile of ``minor``, else of the nearest version with the same GIL;
    ``(profile, exact)``."""
    refs = reference_profiles()
    for p in refs:
        if p.minor == minor:
            return p, True
    major, mi = (int(x) for x in minor.split(".")[:2])
    same = [p for p in refs if gil_family(p.minor) == gil_family(minor)] or refs
    best = min(same, key=lambda p: abs((p.version_tuple()[0] - major) * 100 + p.version_tuple()[1] - mi))
    return best, False


def default_version(gil: Policy) -> str:
    """Whose costs a policy runs with: its ``python`` (set by :func:`gilmodel.cpython`), else
    2.7 for a tick GIL, else the running interpreter's version (the fixes were proposed as
    patches to 3.x; measured on the Python that runs gilmodel)."""
    v = getattr(gil, "python", None)
    if v:
        return v
    if isinstance(gil, TickGIL):
        return "2.7"
    return "%d.%d" % sys.version_info[:2]


def for_version(version: str, quiet: bool = False) -> Profile:
    """The profile of CPython ``version`` (or of the interpreter at a path) on this machine:
    cached, else measured once (with a notice), else the shipped reference profile (with a
    notice saying so)."""
    notice = (lambda m: None) if quiet else _notice
    is_path = os.sep in version
    key = (cache_file(), version)
    p = _RESOLVED.get(key)
    # A profile resolved before is checked again (``_usable``'s test without its round trip
    # through a dict, which cost a sweep's worker 0.45 ms a run against 0.16: the median of 50 calls of
    # for_policy, 2-core VM, 2026-12-02).
    if p is not None and (p.source == "reference" or _still_good(p, host_fingerprint())):
        return speed_checked(p, quiet=quiet)
    if is_path:
        p = calibrate(version, quiet=quiet)
    else:
        minor = norm_minor(version)
        p = _lookup(None, minor, notice)
        if p is None:
            it = find_python(minor)
            if it is not None:
                p = calibrate(it.path, quiet=quiet)
            else:
                p, exact = _reference_for(minor)
                notice("no CPython %s on this machine: using the reference profile of CPython %s measured on %s (%s, %s)%s"
                       % (minor, p.version, p.host.get("hostname", "?"), p.host.get("cpu", "?"), p.measured_at[:10],
                          "" if exact else "; no reference for %s either, so the nearest version's" % minor))
    _RESOLVED[key] = p
    return speed_checked(p, quiet=quiet)


#: In this process, per profile checked (interpreter's real path, ``measured_at``,
#: ``ns_per_iter``): when its speed was last checked or measured (``time.monotonic``) and the
#: scale found.
_CHECKED: Dict[Tuple[str, str, float], Tuple[float, float]] = {}


def speed_file() -> str:
    """``speed.json`` beside the profile cache: the latest speed check of each interpreter on
    this host, shared by every process (a sweep's workers, a cluster's local nodes) so that runs
    made within one check period take the same scale."""
    return os.path.join(cache_dir(), "speed.json")


def _read_speed() -> Dict[str, Any]:
    try:
        with open(speed_file()) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _shared_check(p: Profile) -> Tuple[float, Optional[float]]:
    """``(scale, ns now)``: the host's latest check of ``p`` (this interpreter, this very
    profile, this host) if it is younger than SPEED_CHECK_S, else a new one, written back for
    the host's other processes. The probe runs outside the cache's lock (it takes up to a few
    tenths of a second, a hung one 30 s); a cache folder that cannot be written keeps the check
    to this process."""
    host = host_fingerprint()
    key = "%s@%s" % (os.path.realpath(p.python), host.get("machine_id") or host.get("hostname", ""))

    def fresh(e: Any) -> bool:
        return (isinstance(e, dict) and e.get("host") == host and e.get("measured_at") == p.measured_at
                and e.get("ns_then") == p.ns_per_iter and isinstance(e.get("scale"), (int, float))
                and 0 <= time.time() - float(e.get("at", 0)) < SPEED_CHECK_S)

    e = _read_speed().get(key)
    if fresh(e):
        return float(e["scale"]), e.get("ns_now")
    ns = _countdown_now(p)
    scale = 1.0 if ns is None else scale_for(ns, p.ns_per_iter)
    try:
        with _locked():
            doc = _read_speed()
            if fresh(doc.get(key)):  # another process checked meanwhile: take its figure
                e = doc[key]
                return float(e["scale"]), e.get("ns_now")
            doc[key] = {"host": host, "measured_at": p.measured_at, "ns_then": p.ns_per_iter, "ns_now": ns,
                        "scale": scale, "at": time.time()}
            _write_json(speed_file(), doc, sync=False)
    except OSError:
        pass
    return scale, ns


def _countdown_now(p: Profile) -> Optional[float]:
    """The interpreter's countdown now, ns an iteration (the least of PROBE_ROUNDS rounds of
    PROBE_N, as a calibration times it), on the core calibrations use; None if the probe
    failed."""
    try:
        r = run_probe(Interpreter(p.python, p.version), "calibrate",
                      {"n": PROBE_N, "rounds": PROBE_ROUNDS, "only": "countdown"}, [_first_core()], timeout=30.0)
        v = float(r["ns_per_iter"])
    except (ProbeError, ValueError, KeyError, TypeError, OSError):
        return None
    return v if v > 0 else None


def scale_for(ns_now: float, ns_then: float) -> float:
    """The scale :func:`speed_checked` applies: ``ns_now / ns_then`` when that is beyond
    :data:`SPEED_TOLERANCE` either way, else 1."""
    r = ns_now / ns_then
    return 1.0 if 1 / (1 + SPEED_TOLERANCE) <= r <= 1 + SPEED_TOLERANCE else r


def speed_checked(p: Profile, quiet: bool = False) -> Profile:
    """``p``, or ``p`` scaled (:meth:`Profile.scaled`) to its interpreter's speed now when a cached
    profile's interpreter runs more than :data:`SPEED_TOLERANCE` faster or slower than when it
    was measured (checked on first use in a process and every :data:`SPEED_CHECK_S`, the check
    shared through :func:`speed_file` by the host's processes, with a notice when it scales).
    A profile measured in this process counts as checked when it was measured; a reference
    profile is returned as it is."""
    if p.source == "reference":
        return p
    key = (os.path.realpath(p.python), p.measured_at, p.ns_per_iter)
    now = time.monotonic()
    seen = _CHECKED.get(key)
    if seen is None and p.source == "measured":  # measured now: as good as a check
        seen = _CHECKED[key] = (now, 1.0)
    if seen is None or now - seen[0] >= SPEED_CHECK_S:
        scale, ns = _shared_check(p)
        if not quiet and scale != 1.0 and (seen is None or seen[1] != scale):
            _notice("CPython %s runs its countdown in %.1f ns an iteration now, against %.1f when its profile was "
                    "measured (%s): runs scale the profile's interpreter costs by %.2f until the next check; "
                    "`gilmodel calibrate --refresh --python %s` measures it again"
                    % (p.version, ns or 0.0, p.ns_per_iter, p.measured_at, scale, p.python))
        _CHECKED[key] = (now, scale)
    else:
        scale = seen[1]
    return p if scale == 1.0 else p.scaled(scale)


def for_policy(gil: Policy, quiet: bool = False) -> Profile:
    """The profile a scenario with policy ``gil`` and no explicit ``tick_ns`` runs with
    (:func:`default_version`, :func:`for_version`)."""
    return for_version(default_version(gil), quiet=quiet)
