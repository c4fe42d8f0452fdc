"""Calibration profiles (gilmodel.profiles): the default path takes the measured costs of the
policy's interpreter; the cache round-trips, invalidates and survives damage and concurrency;
a machine without the interpreter gets the shipped reference profile, with a notice."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

import gilmodel as gm
from gilmodel import profiles
from conftest import CORES, needs_2_cores

HOST = "%d.%d" % sys.version_info[:2]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private, empty profile cache for one test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("GILMODEL_CACHE_DIR", str(d))
    monkeypatch.setattr(profiles, "_RESOLVED", {})
    monkeypatch.setattr(profiles, "_CHECKED", {})
    return d


def wrapper(tmp_path, name="python", probe_action='exec "$REAL" "$@"'):
    """An executable that answers the version question as the running interpreter does and
    does ``probe_action`` when asked to run a probe (its third argument is then ``-B``)."""
    p = tmp_path / name
    p.write_text('#!/bin/sh\nREAL=%s\nif [ "$3" = "-c" ]; then exec "$REAL" "$@"; fi\n%s\n' % (sys.executable, probe_action))
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def entries(cache):
    return json.loads((cache / "profiles.json").read_text())["profiles"]


def test_default_preset_runs_with_the_profile_and_meta_says_so():
    sc = gm.scenarios.handoffs(gm.cpython(HOST), CORES, 0.05)
    assert sc.tick_ns is None
    r = gm.run(sc)
    prof = r.meta["profile"]
    assert prof["source"] in ("measured", "cache") and prof["version"].startswith(HOST)
    assert r.meta["tick_ns"] == pytest.approx(prof["model_tick_ns"]) == pytest.approx(prof["tick_ns"] * prof["group"])
    assert prof["host"] == profiles.host_fingerprint() and prof["python"]
    # An explicit tick_ns wins, and meta says it was explicit.
    r2 = gm.run(gm.scenarios.handoffs(gm.cpython(HOST), CORES, 0.05, tick_ns=50))
    assert r2.meta["tick_ns"] == 50 and r2.meta["profile"] == {"source": "explicit tick_ns", "tick_ns": 50.0}
    # The fixes run with the running interpreter's costs; a bare TickGIL with 2.7's.
    assert profiles.default_version(gm.PriorityGIL()) == HOST
    assert profiles.default_version(gm.TickGIL()) == "2.7" and gm.cpython("2.6-osx").python == "2.7"


def test_resolved_scenario_groups_short_ticks_and_keeps_the_check_period():
    # 2.7's tick (4-8 ns here) is shorter than the spin can make: the model ticks in groups of
    # a countdown iteration's ticks and checks every (100 + 1) / group of them.
    sc = gm.Scenario(gm.cpython("2.7"), [gm.Thread("t", [gm.cpu(10)])]).resolved(quiet=True)
    p = sc.profile
    assert sc.tick_ns == pytest.approx(p.tick_ns * p.group)
    assert sc.gil.check_interval == (100 if p.group == 1 else max(1, round(101 / p.group)))
    # Changing the policy of a resolved scenario resolves it anew; a new tick_ns is explicit.
    assert sc.replace(gil=gm.cpython(HOST)).tick_ns is None
    assert sc.replace(tick_ns=30).profile is None


def test_warm_iterations_take_the_warm_ratio_and_old_profiles_count_them_cold():
    p = gm.profiles.for_version(HOST, quiet=True)
    warm = profiles.Profile.from_dict(dict(p.to_dict(), warm_ns_per_iter=0.5 * p.ns_per_iter))
    assert warm.warm_ratio == pytest.approx(0.5)
    n = 100_000
    assert warm.iter_ticks(n) == max(1, round(n * p.ticks_per_iter / p.group))
    assert warm.iter_ticks(n, warm=True) == max(1, round(0.5 * n * p.ticks_per_iter / p.group))
    assert warm.scaled(2.0).warm_ns_per_iter == pytest.approx(p.ns_per_iter)  # scaled with the rest
    old = profiles.Profile.from_dict(dict(p.to_dict(), warm_ns_per_iter=None))
    assert old.warm_ratio == 1.0 and old.iter_ticks(n, warm=True) == old.iter_ticks(n)
    with pytest.raises(ValueError, match="warm_ns_per_iter"):
        profiles.Profile.from_dict(dict(p.to_dict(), warm_ns_per_iter="fast"))


def test_cache_round_trips_and_a_hit_measures_nothing(cache, capfd):
    p = gm.calibrate(sys.executable, repeats=2)
    assert p.source == "measured" and p.version.startswith(HOST)
    assert 2 <= p.repeats <= 2 + profiles.SOCKET_RETRIES  # more where the socket pairs contradicted
    assert p.tick_ns > 0 and p.ns_per_iter > 0 and p.spread["tick_ns"][0] <= p.tick_ns <= p.spread["tick_ns"][1]
    assert "calibrating CPython" in capfd.readouterr().err
    q = gm.calibrate(sys.executable)
    assert q.source == "cache" and q == p  # the same figures, read back
    assert capfd.readouterr().err == ""
    assert [e["python"] for e in entries(cache)] == [sys.executable]
    # By version too, without a second entry.
    assert gm.calibrate(HOST).source == "cache" and len(entries(cache)) == 1


@pytest.mark.timing
def test_the_echo_and_the_client_are_charged_the_interpreters_socket_work(cache):
    # The probe times a send and its recv in the interpreter; the core times the same two
    # system calls without one. The interpreter's part is what the echo and the client spin,
    # several times a plain C call (call_ns). (refresh: a retry measures again; a calibration
    # whose pairs contradict measures again itself, SOCKET_RETRIES times.)
    p = gm.calibrate(sys.executable, repeats=1, refresh=True)
    assert p.sock_pair_ns > p.sys_pair_ns > 0, (p.sock_pair_ns, p.sys_pair_ns)
    assert p.sock_work_ns == pytest.approx(p.sock_pair_ns - p.sys_pair_ns)
    assert p.sock_work_ns > 5 * p.call_ns, (p.sock_work_ns, p.call_ns)
    assert p.echo_work_ticks == max(1, round((p.ns_per_iter + p.sock_work_ns) / p.model_tick_ns))
    assert p.client_work_ticks > p.echo_work_ticks
    assert p.meta()["client_work_ticks"] == p.client_work_ticks
    # A profile without the measurement (the reference profiles) charges the C calls instead.
    old = profiles.Profile.from_dict(dict(p.to_dict(), sock_pair_ns=None, sys_pair_ns=None))
    assert old.sock_work_ns is None and old.client_work_ticks == old.echo_work_ticks < p.echo_work_ticks
    # A pair that measured no slower in the interpreter than bare (the speed moved) is no figure.
    moved = profiles.Profile.from_dict(dict(p.to_dict(), sock_pair_ns=p.sys_pair_ns))
    assert moved.sock_work_ns is None and moved.echo_work_ticks == old.echo_work_ticks
    with pytest.raises(ValueError, match="sock_pair_ns"):
        profiles.Profile.from_dict(dict(p.to_dict(), sock_pair_ns="slow"))


def test_a_socket_pair_no_slower_than_bare_is_said_and_charged_as_c_calls(cache, capfd, monkeypatch):
    # The host's speed moving between the two measurements, made to happen: the bare pair
    # measures slower than any interpreter's.
    monkeypatch.setattr(profiles, "_sys_pair_ns", lambda core: 1e8)
    p = gm.calibrate(sys.executable, repeats=1, refresh=True)
    assert p.repeats == 1 + profiles.SOCKET_RETRIES  # it measured again before giving up
    assert p.sock_work_ns is None and p.echo_work_ticks == profiles.Profile.from_dict(
        dict(p.to_dict(), sock_pair_ns=None)).echo_work_ticks
    err = capfd.readouterr().err
    assert "measured no slower than the bare system calls" in err and "--refresh" in err


def test_a_cached_profile_without_the_socket_work_is_measured_again(cache):
    gm.calibrate(sys.executable, repeats=1)
    f = cache / "profiles.json"
    doc = json.loads(f.read_text())
    for k in ("sock_pair_ns", "sys_pair_ns"):
        doc["profiles"][0].pop(k)
        doc["profiles"][0]["spread"].pop(k, None)
    f.write_text(json.dumps(doc))
    p = gm.calibrate(sys.executable, repeats=1)
    assert p.source == "measured" and p.sock_pair_ns is not None and p.sys_pair_ns is not None
    assert len(entries(cache)) == 1


def test_the_return_cost_is_measured_at_each_gap_and_scales_with_the_profile(cache):
    p = gm.calibrate(sys.executable, repeats=1, refresh=True)
    assert [a for a, _ in p.return_cost] == [float(g) for g, _ in profiles.RETURN_GAPS]
    costs = [c for _, c in p.return_cost]
    assert all(c >= 0 for c in costs) and costs == sorted(costs), costs  # never falling with time away
    assert p.scaled(2.0).return_cost == [[a, c * 2] for a, c in p.return_cost]
    assert profiles.Profile.from_dict(p.to_dict()) == p
    for bad in ([[0, 1]], [[5, 1], [5, 2]], [[1, 2, 3]], "x", [[1, True]]):
        with pytest.raises(ValueError, match="return_cost"):
            profiles.Profile.from_dict(dict(p.to_dict(), return_cost=bad))
    # A cached entry from before the measurement is measured again.
    f = cache / "profiles.json"
    doc = json.loads(f.read_text())
    doc["profiles"][0]["return_cost"] = None
    f.write_text(json.dumps(doc))
    q = gm.calibrate(sys.executable, repeats=1)
    assert q.source == "measured" and q.return_cost is not None and len(entries(cache)) == 1


def test_a_changed_interpreter_is_measured_again(cache, tmp_path):
    w = wrapper(tmp_path)
    assert gm.calibrate(w, repeats=1).source == "measured"
    assert gm.calibrate(w, repeats=1).source == "cache"
    st = os.stat(w)
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed (an upgrade)
    assert gm.calibrate(w, repeats=1).source == "measured"
    assert len(entries(cache)) == 1
    # A preset can name the interpreter whose costs it takes.
    p = profiles.for_policy(gm.cpython(HOST, python=w))
    assert p.python == w and p.source in ("cache", "measured")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign-format", "bad-entry"])
def test_a_damaged_cache_is_measured_again_with_a_notice(cache, capfd, damage):
    gm.calibrate(sys.executable, repeats=1)
    f = cache / "profiles.json"
    text = f.read_text()
    f.write_text({"garbage": "\x00not json{",
                  "truncated": text[: len(text) // 2],
                  "foreign-format": json.dumps({"format": "something-else", "profiles": []}),
                  "bad-entry": text.replace('"tick_ns": %r' % json.loads(text)["profiles"][0]["tick_ns"], '"tick_ns": "fast"')}[damage])
    assert f.read_text() != text
    capfd.readouterr()
    p = gm.calibrate(sys.executable, repeats=1)
    assert p.source == "measured"
    err = capfd.readouterr().err
    if damage != "bad-entry":  # an entry that does not parse is just not used
        assert "re-measuring" in err and str(f) in err
    assert [e["python"] for e in entries(cache)] == [sys.executable]  # a whole, valid file again


def test_a_profile_from_another_machine_is_not_used(cache):
    gm.calibrate(sys.executable, repeats=1)
    f = cache / "profiles.json"
    doc = json.loads(f.read_text())
    doc["profiles"][0]["host"]["machine_id"] = "another-machine"
    doc["profiles"][0]["tick_ns"] = 12345.0
    f.write_text(json.dumps(doc))
    p = gm.calibrate(sys.executable, repeats=1)
    assert p.source == "measured" and p.tick_ns != 12345.0
    # Both stay: a shared home keeps each machine's own entry.
    assert sorted(e["host"]["machine_id"] for e in entries(cache)) == sorted(["another-machine", p.host["machine_id"]])


@pytest.mark.parametrize("kind,action,expect", [
    ("not-python", None, "not a Python interpreter"),
    ("crashes", "kill -SEGV $$", "failed"),
    ("hangs", "exec sleep 60", "timed out"),
    ("prints-junk", "echo '{\"tick_ns\": \"soon\"}'", "no usable calibration"),
])
def test_what_cannot_be_calibrated_is_a_clear_error_and_no_entry(cache, tmp_path, kind, action, expect):
    if kind == "not-python":
        path = str(tmp_path / "notpython")
        (tmp_path / "notpython").write_text("#!/bin/sh\necho hello\n")
        os.chmod(path, 0o755)
    else:
        path = wrapper(tmp_path, kind, action)
    t = time.monotonic()
    with pytest.raises(gm.CalibrationError) as ei:
        gm.calibrate(path, repeats=1, timeout_s=1.5)
    assert time.monotonic() - t < 10
    assert expect in str(ei.value) and path in str(ei.value)
    assert not (cache / "profiles.json").exists() or entries(cache) == []


def test_calibrate_refuses_bad_arguments(cache):
    with pytest.raises(gm.CalibrationError, match="no CPython 1.5 found"):
        gm.calibrate("1.5")
    with pytest.raises(TypeError, match="calibrate"):
        gm.calibrate(3.11)
    with pytest.raises(ValueError, match="repeats"):
        gm.calibrate(sys.executable, repeats=0)


def test_many_processes_calibrating_at_once_measure_once_and_leave_one_file(cache):
    code = "import gilmodel as gm; print(gm.calibrate(%r, repeats=1).source)" % sys.executable
    env = dict(os.environ, GILMODEL_CACHE_DIR=str(cache))
    ps = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
          for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in ps]
    assert all(p.returncode == 0 for p in ps), outs
    sources = sorted(o.strip() for o, _ in outs)
    assert sources == ["cache", "cache", "cache", "measured"], outs  # the lock: one measured, three waited
    assert sum(e.count("calibrating CPython") for _, e in outs) == 1
    assert len(entries(cache)) == 1


def test_no_interpreter_gives_the_reference_profile_with_a_notice(cache, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("PATH", str(tmp_path))  # no python2.7 to be found
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert profiles.find_python("2.7") is None
    p = profiles.for_version("2.7")
    assert p.source == "reference" and p.minor == "2.7" and p.host["hostname"]
    err = capfd.readouterr().err
    assert "no CPython 2.7 on this machine: using the reference profile" in err
    r = gm.run(gm.scenarios.handoffs(gm.cpython("2.7"), CORES[:1], 0.02))
    assert r.meta["profile"]["source"] == "reference" and r.meta["profile"]["version"].startswith("2.7")
    assert capfd.readouterr().err == ""  # said once per process
    # A version not in the reference set takes the nearest of the same GIL, and says so.
    q = profiles.for_version("3.1")
    assert q.source == "reference" and q.minor == "2.7" and "nearest" in capfd.readouterr().err


def test_every_reference_profile_parses_and_names_its_machine():
    refs = profiles.reference_profiles()
    assert {p.minor for p in refs} >= {"2.7", "3.11"}
    for p in refs:
        assert p.tick_ns > 0 and p.host["cpu"] and p.measured_at and p.source == "reference"


@needs_2_cores
@pytest.mark.timing
def test_the_default_27_preset_hands_off_several_times_more_than_tick_ns_50():
    # 2.7's tick measures 4-8 ns on the dev VM, not 50: checks come ~7x more often, and hand-offs
    # 4-6x (real 2.7: 21 600/s; calibrated model 19 600/s; tick_ns=50: 2 400/s). A host that
    # runs the VM slowed while the suite calibrates 2.7 measures a longer tick, and fewer checks
    # (a CI run: 2.3x the hand-offs): the bound is 0.4 of the check ratio the profile gives,
    # which is 3x for a 6.7 ns tick.
    two = CORES[:2]
    prof = gm.profiles.for_version("2.7", quiet=True)
    checks = (100 * 50.0) / (prof.adjust(gm.cpython("2.7")).check_interval * prof.model_tick_ns)
    default = gm.run(gm.scenarios.handoffs(gm.cpython("2.7"), two, 0.3).replace(log=False)).summary()["switches_per_s"]
    fifty = gm.run(gm.scenarios.handoffs(gm.cpython("2.7"), two, 0.3, tick_ns=50).replace(log=False)).summary()["switches_per_s"]
    assert checks > 1.5 and default > 0.4 * checks * fifty, (default, fifty, checks)


def test_cli_calibrate_show_clear(cache):
    def cli(*a):
        return subprocess.run([sys.executable, "-m", "gilmodel.cli", "calibrate", *a], capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, GILMODEL_CACHE_DIR=str(cache)))

    p = cli("--python", sys.executable, "--repeats", "1")
    assert p.returncode == 0, p.stderr
    assert HOST in p.stdout and "measured" in p.stdout and str(cache) in p.stdout
    p = cli("--show")
    assert p.returncode == 0 and "1 profile for this host" in p.stdout and "cache" in p.stdout
    p = cli("--clear")
    assert p.returncode == 0 and "removed 1" in p.stdout
    assert "0 profiles" in cli("--show").stdout
    p = cli("--python", "/nonexistent/python")
    assert p.returncode == 2 and "/nonexistent/python" in p.stderr


def test_a_cached_profile_from_a_slower_moment_is_scaled_to_the_interpreter_now(cache, capfd):
    # The cache says the interpreter ran 5 times slower than it does: the default path times its
    # countdown, scales the interpreter figures (the system calls' own cost stays), keeps the
    # grouping, says so once, records it in meta, and does not time it again within the period.
    p = gm.calibrate(sys.executable, repeats=1, quiet=True)
    doc = json.loads((cache / "profiles.json").read_text())
    e = doc["profiles"][0]
    for k in ("tick_ns", "ns_per_iter", "call_ns", "sock_call_ns"):
        e[k] = e[k] * 5 if e[k] is not None else None
    (cache / "profiles.json").write_text(json.dumps(doc))
    q = profiles.for_version(sys.executable)
    err = capfd.readouterr().err
    assert q.source == "cache" and q.speed_scale < 1 / (1 + profiles.SPEED_TOLERANCE), (q.speed_scale, err)
    assert "scale the profile's interpreter costs by %.2f" % q.speed_scale in err
    assert q.tick_ns == pytest.approx(5 * p.tick_ns * q.speed_scale)
    assert q.sys_pair_ns == p.sys_pair_ns and q.group == p.group
    if p.sock_work_ns is not None:
        assert q.sock_work_ns == pytest.approx(p.sock_work_ns * q.speed_scale)
    def checked():
        return [v for k, v in profiles._CHECKED.items() if k[0] == os.path.realpath(sys.executable)]
    checked_at = checked()[0][0]
    again = profiles.for_version(sys.executable)
    assert again == q and checked() == [(checked_at, q.speed_scale)]
    assert capfd.readouterr().err == ""
    # Another process on the host takes the same check from speed.json, without timing anew.
    [shared] = json.loads((cache / "speed.json").read_text()).values()
    out = subprocess.run([sys.executable, "-c", "from gilmodel import profiles; import sys; "
                          "print(profiles.for_version(sys.argv[1], quiet=True).speed_scale)", sys.executable],
                         capture_output=True, text=True, check=True, env=dict(os.environ))
    assert float(out.stdout) == pytest.approx(q.speed_scale)
    assert [e["at"] for e in json.loads((cache / "speed.json").read_text()).values()] == [shared["at"]]
    r = gm.run(gm.Scenario(gm.cpython(HOST, python=sys.executable), [gm.Thread("t", [gm.cpu(1000)])]))
    assert r.meta["profile"]["speed_scale"] == pytest.approx(q.speed_scale)
    assert r.meta["tick_ns"] == pytest.approx(q.model_tick_ns)
    # What gm.calibrate returns is the profile as measured; a reference profile is not checked.
    assert gm.calibrate(sys.executable).speed_scale == 1.0
    ref = profiles.reference_profiles()[0]
    assert profiles.speed_checked(ref) is ref


def test_the_speed_check_scales_only_beyond_its_tolerance():
    tol = profiles.SPEED_TOLERANCE
    assert profiles.scale_for(30.0, 30.0) == 1.0
    assert profiles.scale_for(30.0 * (1 + tol) * 0.99, 30.0) == 1.0
    assert profiles.scale_for(30.0 / ((1 + tol) * 0.99), 30.0) == 1.0
    assert profiles.scale_for(60.0, 20.0) == pytest.approx(3.0)
    assert profiles.scale_for(20.0, 60.0) == pytest.approx(1 / 3)
