import pytest

import gilmodel as gm


@pytest.mark.parametrize("v", ["2.7", "3.0", "3.1", "2.7.18"])
def test_tick_versions_use_the_semaphore_tick_gil(v):
    # The preset names its version, so a scenario without tick_ns takes that version's costs.
    assert gm.cpython(v) == gm.TickGIL(check_interval=100, lock="sem", python=".".join(v.split(".")[:2]))
    assert gm.cpython(v).to_spec() == {"policy": "tick", "check_interval": 100, "lock": "sem"}


def test_osx_preset_uses_mutex_cond():
    assert gm.cpython("2.6-osx") == gm.TickGIL(check_interval=100, lock="mutex_cond", python="2.7")


@pytest.mark.parametrize("v", ["3.%d" % m for m in range(2, 14)] + ["3.11.7"])
def test_interval_versions(v):
    assert gm.cpython(v) == gm.IntervalGIL(interval_us=5000, force_switching=True, dedupe_drop_request=True, check_every=1,
                                           python=".".join(v.split(".")[:2]))


@pytest.mark.parametrize("v", ["3.14x", "4.0", "2.5", ""])
def test_unknown_version_is_refused(v):
    with pytest.raises(ValueError, match="unknown version"):
        gm.cpython(v)


def test_version_must_be_a_string():
    with pytest.raises(TypeError):
        gm.cpython(3.11)


def test_spec_matches_the_core_names():
    assert gm.TickGIL(7, "mutex_cond").to_spec() == {"policy": "tick", "check_interval": 7, "lock": "mutex_cond"}
    assert gm.IntervalGIL(100, False, False, 3).to_spec() == {
        "policy": "interval", "interval_us": 100, "force_switching": False, "dedupe_drop_request": False, "check_every": 3}
