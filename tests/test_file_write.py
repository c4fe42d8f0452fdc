"""The ``write`` op: a real ``pwrite`` (and ``fdatasync``) to the thread's own scratch file with
the GIL released. Its checks, its events, that it releases the GIL, and that it leaves nothing
behind (no file, no descriptor)."""

import json
import os

import pytest

import gilmodel as gm
from gilmodel import _core, analysis, plot
from conftest import CORES, POLICIES
from log_checks import check_run, columns

HI = _core.LIMITS["io_bytes"][1]


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (HI + 1, ValueError), (1.5, TypeError)])
def test_write_refuses_bad_sizes_naming_the_field(bad, exc):
    with pytest.raises(exc, match=r"write\.bytes"):
        gm.write(bad)
    with pytest.raises(TypeError, match=r"write\.fsync"):
        gm.write(8, fsync="yes")


def test_the_core_refuses_bad_sizes_naming_the_field():
    spec = json.loads(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.write(HI, fsync=True)])], tick_ns=50.0).to_json())
    assert spec["threads"][0]["program"] == [{"op": "write", "bytes": HI, "fsync": True}]
    _core.validate(json.dumps(spec))
    for bad in (0, HI + 1):
        spec["threads"][0]["program"] = [{"op": "loop", "times": 2, "body": [{"op": "write", "bytes": bad}]}]
        with pytest.raises(ValueError, match=r"threads\[0\]\.program\[0\]\.body\[0\]\.bytes"):
            _core.validate(json.dumps(spec))


def _open_under(d):
    """This process's descriptors whose file is (or was, before its unlink) under ``d``."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(d)):
            out.append(target)
    return out


@pytest.mark.parametrize("version", ["3.11", "2.7"])
def test_writes_are_blocking_calls_of_their_bytes_and_leave_nothing_behind(version, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the scratch file is made
    sc = gm.Scenario(gm.cpython(version), [gm.Thread("w", [gm.loop(gm.cpu(50), gm.write(4096), gm.write(100, fsync=True), times=10)]),
                                           gm.Thread("c", [gm.cpu(20_000)])], cores=CORES, tick_ns=50.0)
    run = gm.run(sc)
    check_run(run, version)
    t, th, ev, arg, names = columns(run)
    w = th == 0
    seq, args = [names[e] for e in ev[w]], arg[w]
    begins = [i for i, e in enumerate(seq) if e == "io_begin"]
    assert len(begins) == 20
    for i in begins:  # the GIL released first, the bytes written at the end
        assert _core.OP_NAMES[args[i]] == "write" and seq[i - 1] == "release" and seq[i + 1] == "io_end"
    assert [args[i + 1] for i in begins] == [4096, 100] * 10
    io = analysis.io_response(run.events)
    assert io.column("op").to_pylist() == ["write"] * 20
    assert sum(io.column("bytes").to_pylist()) == 10 * (4096 + 100)
    sp = plot.spans(run)
    assert [o for s, o in zip(sp.column("state").to_pylist(), sp.column("op").to_pylist()) if s == "io"] == ["write"] * 20
    assert "io:write" in plot.LABELS
    # The file was unlinked at once and closed with the run.
    assert os.listdir(tmp_path) == [] and _open_under(tmp_path) == []


def test_another_thread_holds_the_gil_while_one_writes():
    # One writer of 4 MiB fsynced writes and one CPU thread on one core: the writer's calls
    # block in the kernel, and the CPU thread takes the GIL during them (counted in one run).
    sc = gm.Scenario(gm.cpython("3.11"), [gm.Thread("w", [gm.loop(gm.write(4 << 20, fsync=True), times=20)]),
                                          gm.Thread("c", [gm.loop(gm.cpu(1000))])],
                     cores=CORES[:1], stop_thread="w", tick_ns=50.0)
    run = gm.run(sc)
    t, th, ev, arg, names = columns(run)
    code = {n: i for i, n in enumerate(names)}
    spans = list(zip(t[(th == 0) & (ev == code["io_begin"])], t[(th == 0) & (ev == code["io_end"])]))
    acq = t[(th == 1) & (ev == code["acquire"])]
    inside = sum(((acq > b) & (acq < e)).any() for b, e in spans)
    assert len(spans) == 20 and inside >= 1, (spans, acq[:10])


@pytest.mark.parametrize("name", list(POLICIES) + ["nogil"])
def test_every_policy_keeps_the_log_invariants_with_writes(name):
    gil = gm.NoGIL() if name == "nogil" else POLICIES[name]
    prog = [gm.loop(gm.cpu(200), gm.write(512), times=20)]
    run = gm.run(gm.Scenario(gil, [gm.Thread("a", prog), gm.Thread("b", prog), gm.Thread("c", [gm.cpu(5000)])],
                             cores=CORES, tick_ns=50.0))
    check_run(run, name, exclusive=name != "nogil")
    assert analysis.io_response(run.events).num_rows == 40


def test_writes_past_the_files_span_run_to_their_end():
    # 70 writes of 1 MiB pass the 64 MiB span (where they wrap: rust/scenario.rs's
    # write_offset and its unit test); every byte is written and the run ends.
    run = gm.run(gm.Scenario(gm.cpython("3.11"), [gm.Thread("w", [gm.loop(gm.write(1 << 20), times=70)])],
                             cores=CORES[:1], tick_ns=50.0))
    assert run.meta["stopped_by"] == "all_done"
    assert sum(analysis.io_response(run.events).column("bytes").to_pylist()) == 70 << 20
