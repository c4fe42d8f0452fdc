"""The core's exported contract: ``_core.LIMITS`` is what the core checks and what the Python
constructors check, and ``_core.OP_NAMES`` names ``io_begin``'s codes."""

import json

import pytest

import gilmodel as gm
from gilmodel import _core


def test_limits_are_ranges():
    assert {"cpu_ticks", "sleep_us", "io_bytes", "check_period_ticks", "interval_us", "tick_ns", "watchdog_s",
            "max_events"} <= set(_core.LIMITS)
    for name, (lo, hi) in _core.LIMITS.items():
        assert type(lo) is type(hi) and lo <= hi, name
    assert _core.LIMITS["watchdog_s"] == _core.WATCHDOG_RANGE_S


@pytest.mark.parametrize("limit, make, field", [
    ("cpu_ticks", gm.cpu, "cpu.ticks"),
    ("sleep_us", gm.sleep, "sleep.us"),
    ("io_bytes", gm.send, "send.bytes"),
    ("check_period_ticks", lambda v: gm.TickGIL(check_interval=v), "TickGIL.check_interval"),
    ("interval_us", lambda v: gm.BfsGIL(slice_us=v), "BfsGIL.slice_us"),
    ("min_hold_us", lambda v: gm.FifoGIL(min_hold_us=v), "FifoGIL.min_hold_us"),
    ("driver_gap_us", lambda v: gm.driver(1, v), "driver.gap_us"),
    ("driver_work_ticks", lambda v: gm.driver(1, 1000, work_ticks=v), "driver.work_ticks"),
])
def test_python_checks_the_cores_limits(limit, make, field):
    lo, hi = _core.LIMITS[limit]
    make(lo), make(hi)
    for v in (lo - 1, hi + 1):
        with pytest.raises(ValueError, match=field):
            make(v)


def test_core_refuses_what_the_limits_exclude():
    spec = gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(1)])]).to_spec(resolve=False)
    hi = _core.LIMITS["cpu_ticks"][1]
    spec["threads"][0]["program"] = [{"op": "cpu", "ticks": hi}]
    _core.validate(json.dumps(spec))
    spec["threads"][0]["program"] = [{"op": "cpu", "ticks": hi + 1}]
    with pytest.raises(ValueError, match=r"threads\[0\].program\[0\].ticks"):
        _core.validate(json.dumps(spec))


def test_core_refuses_a_drivers_work_beyond_the_limit():
    th = gm.Thread("io", [gm.loop(gm.recv(8), gm.send(8))], peer=gm.driver(1, 1000, work_ticks=5))
    spec = gm.Scenario(gm.cpython("3.11"), [th]).to_spec(resolve=False)
    assert spec["threads"][0]["peer"]["work_ticks"] == 5
    spec["threads"][0]["peer"]["work_ticks"] = _core.LIMITS["driver_work_ticks"][1] + 1
    with pytest.raises(ValueError, match=r"threads\[0\].peer.work_ticks"):
        _core.validate(json.dumps(spec))


def test_op_names_name_io_begin_codes():
    assert _core.OP_NAMES == ("send", "recv", "sleep", "join", "native", "lock", "get", "put", "write")
    sc = gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.sleep(10)])], tick_ns=50.0)
    ev = gm.run(sc).events.to_pydict()
    args = [a for e, a in zip(ev["event"], ev["arg"]) if e == "io_begin"]
    assert [_core.OP_NAMES[a] for a in args] == ["sleep"]
