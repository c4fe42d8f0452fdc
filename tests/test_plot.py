"""The GIL timeline (gilmodel.plot): exact spans, shares and markers on a hand-built run; real
runs rendered to PNG and SVG at a 1 ms window and whole, aggregated when they must be; the
demo's picture."""

import json
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import gilmodel as gm
from gilmodel import plot
from gilmodel.run import _events_table

from conftest import CORES, needs_2_cores

_CODE = {n: i for i, n in enumerate(gm.EVENT_NAMES)}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# PNG sizes, measured with matplotlib 3.11 on the development machine (11 in x ~4 in at 110
# dpi): a blank canvas of that size is 3.3 KB; the frame of a run with nothing drawn in it (an
# empty log: panels, titles, ticks, labels) 20-25 KB, depending on the title; a hand-built
# run with one bar per lane 28 KB; real runs 30-130 KB (a 1 ms window of 2.7 hand-offs about
# 30 KB, a whole 1 s of them 125 KB, the demo's two runs 85 KB). MIN_PNG_BYTES is a floor
# that a blank or cut-off file cannot reach; that something was drawn is checked against an
# empty frame of the same run rendered here (real runs come out > 2x; 1.5x is required).
MIN_PNG_BYTES = 15_000


def make_run(rows, names=("main", "worker"), elapsed_ns=420, **meta):
    """A Run from ``(t_ns, thread, cpu, event, arg)`` rows, with the exact schema of a real
    one (sorted by time here, as the log is)."""
    rows = sorted(rows, key=lambda r: r[0])
    cols = list(zip(*rows)) if rows else [(), (), (), (), ()]
    events = _events_table({
        "t_ns": np.array(cols[0], dtype=np.int64),
        "thread": np.array(cols[1], dtype=np.uint16),
        "cpu": np.array(cols[2], dtype=np.int16),
        "event": np.array([_CODE[e] for e in cols[3]], dtype=np.int8),
        "arg": np.array(cols[4], dtype=np.int64),
    })
    threads = pa.table({"name": list(names), "core": list(range(len(names)))})
    m = {"gil": {"policy": "interval", "interval_us": 5000}, "scenario": "tiny", "elapsed_ns": elapsed_ns}
    m.update(meta)
    return gm.Run(events, threads, pa.table({"thread": pa.array([], pa.int64())}), m)


# Two threads. main: waits 10-20, holds 20-120 (then a drop request makes it yield), blocks
# in recv 130-200, waits 210-300, holds 300-400. worker: waits 15-125 (a timeout, its drop
# request, 3 futile wake-ups), holds 125-180 (having moved from CPU 1 to CPU 0), waits for
# its release to be taken 185-290, waits 295-405, holds 405-408.
TINY = [
    (0, 0, 0, "start", 0), (10, 0, 0, "request", 0), (20, 0, 0, "acquire", 1), (115, 0, 0, "forced_drop", 0),
    (120, 0, 0, "release", 5), (130, 0, 0, "io_begin", 1), (200, 0, 0, "io_end", 8), (210, 0, 0, "request", 0),
    (300, 0, 0, "acquire", 3), (400, 0, 0, "release", 7), (410, 0, 0, "exit", 0),
    (5, 1, 1, "start", 0), (15, 1, 1, "request", 0), (50, 1, 1, "timeout", 1), (55, 1, 1, "drop_request", 1),
    (60, 1, 1, "futile_wakeup", 3), (125, 1, 0, "acquire", 2), (180, 1, 0, "release", 4),
    (185, 1, 0, "switch_wait", 0), (290, 1, 0, "switch_done", 0), (295, 1, 0, "request", 0),
    (405, 1, 0, "acquire", 4), (408, 1, 0, "release", 1), (409, 1, 0, "exit", 0),
]
TINY_SPANS = [
    (0, "wait", None, 10, 20), (0, "hold", None, 20, 120), (0, "io", "recv", 130, 200),
    (0, "wait", None, 210, 300), (0, "hold", None, 300, 400),
    (1, "wait", None, 15, 125), (1, "hold", None, 125, 180), (1, "switch", None, 185, 290),
    (1, "wait", None, 295, 405), (1, "hold", None, 405, 408),
]


def rows_of(table):
    d = table.to_pydict()
    return list(zip(d["thread"], d["state"], d["op"], d["start_ns"], d["end_ns"]))


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC, "not a PNG: %r" % head[:8]
    return struct.unpack(">II", head[16:24])


def axes_of(fig):
    lanes = [a for a in fig.axes if a.get_label().startswith("gil-lanes-")]
    cpus = [a for a in fig.axes if a.get_label().startswith("gil-cpu-")]
    return lanes, cpus


def artists(ax, prefix):
    return [c for c in ax.collections if c.get_label().startswith(prefix)]


# ---------------------------------------------------------------------------------------------
# A hand-built run: exact numbers


def test_spans_of_a_tiny_run_are_exact():
    run = make_run(TINY)
    t = plot.spans(run)
    assert t.schema.field("thread").type == pa.uint16()
    assert rows_of(t) == TINY_SPANS
    assert not any(t.column("open").to_pylist())
    # A window [100, 300) ns clips the spans that cross it and drops those outside.
    assert rows_of(plot.spans(run, 100e-9, 300e-9)) == [
        (0, "hold", None, 100, 120), (0, "io", "recv", 130, 200), (0, "wait", None, 210, 300),
        (1, "wait", None, 100, 125), (1, "hold", None, 125, 180), (1, "switch", None, 185, 290), (1, "wait", None, 295, 300),
    ]


def test_a_state_open_when_the_log_ends_lasts_to_the_end_of_the_run():
    cut = make_run([r for r in TINY if r[0] < 350], elapsed_ns=360)
    t = plot.spans(cut)
    assert rows_of(t)[-2:] == [(1, "switch", None, 185, 290), (1, "wait", None, 295, 360)]
    assert rows_of(t)[4] == (0, "hold", None, 300, 360)
    assert t.column("open").to_pylist() == [False] * 4 + [True] + [False] * 3 + [True]
    # A truncated log says nothing about what came after a thread's last event: not extended.
    trunc = make_run([r for r in TINY if r[0] < 350], elapsed_ns=360, events_truncated=True)
    assert rows_of(plot.spans(trunc))[4] == (0, "hold", None, 300, 300)


def test_occupancy_of_a_tiny_run_is_exact():
    edges, occ = plot.occupancy(make_run(TINY), 0.0, 400e-9, bins=4)
    np.testing.assert_allclose(edges, [0, 100, 200, 300, 400])
    expect = {
        "hold": [[0.8, 0.2, 0, 1.0], [0, 0.55, 0, 0]],
        "wait": [[0.1, 0, 0.9, 0], [0.85, 0.25, 0.05, 1.0]],
        "io:recv": [[0, 0.7, 0, 0], [0, 0, 0, 0]],
        "switch": [[0, 0, 0, 0], [0, 0.15, 0.9, 0]],
        "io:send": [[0] * 4] * 2, "io:sleep": [[0] * 4] * 2, "io:join": [[0] * 4] * 2,
        "io:native": [[0] * 4] * 2, "call": [[0] * 4] * 2,
        "io:lock": [[0] * 4] * 2, "io:get": [[0] * 4] * 2, "io:put": [[0] * 4] * 2, "io:write": [[0] * 4] * 2,
    }
    assert set(occ) == set(expect)
    for k, v in expect.items():
        np.testing.assert_allclose(occ[k], v, atol=1e-12, err_msg=k)


def test_plan_aggregates_only_beyond_one_span_per_column():
    run = make_run(TINY)
    p = plot.plan(run, columns=5)  # 5 spans in each lane: one per column still fits
    assert (p.start_ns, p.end_ns, p.lane_spans, p.lane_marks, p.lane_migrations) == (0, 420, 5, 1, 1)
    assert not p.aggregate and not p.aggregate_marks and not p.aggregate_cpu
    assert plot.plan(run, columns=4).aggregate
    assert plot.plan(run).columns == plot.COLUMNS


def test_the_figure_draws_exactly_the_expected_spans_and_markers():
    run = make_run(TINY)
    fig = plot.plot_run(run)
    lanes, cpus = axes_of(fig)
    assert len(lanes) == 1 and len(cpus) == 1
    ax = lanes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["main", "worker"]
    assert [t.get_text() for t in cpus[0].get_yticklabels()] == ["cpu 0", "cpu 1"]
    assert not fig.gilmodel_plans[0].aggregate
    drawn = []
    for c in artists(ax, "_span:"):
        kind = c.get_label()[len("_span:"):]
        for path in c.get_paths():
            v = path.vertices[:4]
            drawn.append((int(round(v[:, 1].mean())), kind, round(v[:, 0].min() * 1e6, 6), round(v[:, 0].max() * 1e6, 6)))
    expect = [(th, "io:" + op if st == "io" else st, s, e) for th, st, op, s, e in TINY_SPANS]
    assert sorted(drawn) == sorted(expect)
    assert not artists(ax, "_share:")
    # One marker per event, in its thread's lane, at its time (ms).
    marks = {c.get_label()[len("_mark:"):]: c.get_offsets() for c in artists(ax, "_mark:")}
    assert sorted(marks) == ["drop_request", "forced_drop", "futile_wakeup", "switch_wait", "timeout"]
    np.testing.assert_allclose(marks["timeout"][:, 0], [50e-6])
    np.testing.assert_allclose(marks["forced_drop"][:, 0], [115e-6])
    assert np.round(marks["timeout"][:, 1]).tolist() == [1.0] and np.round(marks["forced_drop"][:, 1]).tolist() == [0.0]
    assert set(fig.gilmodel_kinds) >= {"hold", "wait", "io:recv", "switch", "timeout", "futile_wakeup"}
    # The legend names every kind drawn, with its count (futile wake-ups count their arg).
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert plot.LABELS["hold"] + " (4)" in legend and plot.LABELS["futile_wakeup"] + " (3)" in legend
    assert not any(plot.LABELS["io:send"] in t for t in legend)


def test_draw_lanes_draws_the_same_lanes_on_a_given_axes():
    from matplotlib.figure import Figure

    run = make_run(TINY)
    ax = Figure().add_subplot()
    p = plot.draw_lanes(ax, run, title="tiny", columns=700)
    assert p == plot.plan(run, columns=700) and not p.aggregate
    assert [t.get_text() for t in ax.get_yticklabels()] == ["main", "worker"] and ax.get_title(loc="left") == "tiny"
    drawn = sorted((c.get_label()[len("_span:"):], len(c.get_paths())) for c in artists(ax, "_span:"))
    assert drawn == [("hold", 4), ("io:recv", 1), ("switch", 1), ("wait", 4)]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert plot.LABELS["hold"] in legend and plot.LABELS["timeout"] in legend
    assert plot.IO_OPS is gm.analysis.IO_OPS  # one list of operations
    with pytest.raises(ValueError, match="columns"):
        plot.draw_lanes(ax, run, columns=0)


def test_spans_shorter_than_a_pixel_are_drawn_one_pixel_wide():
    fig = plot.plot_run(make_run(TINY), start=0.0, end=1e-3)  # 1 ms: a pixel is 1000 ns
    px = 1e-3 / plot.COLUMNS * 1e3  # in ms
    (ax,), _ = axes_of(fig)
    widths = [np.ptp(p.vertices[:4, 0]) for c in artists(ax, "_span:") for p in c.get_paths()]
    assert len(widths) == len(TINY_SPANS)
    np.testing.assert_allclose(widths, px)


def test_an_empty_log_still_draws_its_lanes():
    run = make_run([], elapsed_ns=1_000_000)
    fig = plot.plot_run(run)
    (ax,), (cpu,) = axes_of(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["main", "worker"]
    assert "no events" in ax.get_xlabel()
    assert plot.spans(run).num_rows == 0


def test_bad_windows_and_suffixes_are_refused(tmp_path):
    run = make_run(TINY)
    with pytest.raises(ValueError, match="end"):
        plot.plot_run(run, start=3e-7, end=2e-7)
    with pytest.raises(ValueError, match="suffix"):
        plot.plot_run(run, tmp_path / "x.jpg")
    assert not (tmp_path / "x.jpg").exists()
    with pytest.raises(ValueError, match="bins"):
        plot.occupancy(run, bins=0)


def test_timeline_stacks_runs_on_the_same_drawing(tmp_path):
    run = make_run(TINY)
    one = plot.plot_run(run, tmp_path / "one.png")
    two = plot.timeline([("first", run), ("second", run)], str(tmp_path / "two.png"), 0.0, 0.0004)
    assert two == str(tmp_path / "two.png")
    (w1, h1), (w2, h2) = png_size(one), png_size(two)
    assert w1 == w2 and h2 > 1.5 * h1  # two runs' panels under one legend
    with pytest.raises(ValueError):
        plot.timeline([], str(tmp_path / "none.png"))


def test_many_migrations_are_drawn_as_shares():
    # A synthetic log: 3000 holds taking turns, each thread on a new CPU at every hold.
    n = 3000
    k = np.arange(n)
    rows = []
    for name, off in (("request", 0), ("acquire", 100), ("release", 900)):
        rows += [(int(1000 * i + off), int(i % 2), int(i % 4), name, 0) for i in k]
    run = make_run(rows, elapsed_ns=1000 * n)
    p = plot.plan(run)
    assert p.aggregate and p.aggregate_cpu and p.lane_migrations == n // 2 - 1
    fig = plot.plot_run(run)
    (ax,), (cpu,) = axes_of(fig)
    assert artists(ax, "_share:hold") and not artists(ax, "_span:")
    assert [t.get_text() for t in cpu.get_yticklabels()] == ["cpu 0", "cpu 1", "cpu 2", "cpu 3"]
    edges, occ = plot.occupancy(run, bins=10)
    # Each thread holds 800 of every 2000 ns.
    np.testing.assert_allclose(occ["hold"], 0.4, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Real runs


@pytest.fixture(scope="module")
def convoy311():
    return gm.run(gm.scenarios.convoy(gm.cpython("3.11"), CORES[:2], total_bytes=64 << 10))


@pytest.fixture(scope="module")
def handoffs27():
    return gm.run(gm.scenarios.handoffs(gm.cpython("2.7"), CORES[:2], 1.0))


def empty_frame_bytes(run, path):
    """The PNG size of the same run's frame with nothing in it."""
    empty = gm.Run(run.events.slice(0, 0), run.threads, run.io, run.meta)
    plot.plot_run(empty, path, 0.0, run.meta["elapsed_ns"] / 1e9)
    return path.stat().st_size


def expected_labels(run):
    """Legend texts the kinds in the log call for, worked out from the log alone."""
    kinds = set(run.to_pandas()["event"].astype(str))
    out = {plot.LABELS[k] for k in kinds if k in plot.MARKS}
    out |= {plot.LABELS[s] for e, s in (("acquire", "hold"), ("request", "wait"), ("switch_wait", "switch"),
                                        ("call_begin", "call")) if e in kinds}
    ev = run.to_pandas()
    ops = set(ev.loc[ev["event"] == "io_begin", "arg"])
    out |= {plot.LABELS["io:" + plot.IO_OPS[o]] for o in ops}
    return out


@needs_2_cores
def test_a_real_run_renders_to_png_and_svg(convoy311, tmp_path):
    png = plot.plot_run(convoy311, tmp_path / "convoy.png")
    assert png == str(tmp_path / "convoy.png")
    size = (tmp_path / "convoy.png").stat().st_size
    assert png_size(png)[0] > 1000
    assert size > MIN_PNG_BYTES and size > 1.5 * empty_frame_bytes(convoy311, tmp_path / "empty.png")
    svg = plot.plot_run(convoy311, str(tmp_path / "convoy.svg"), title="the 3.11 convoy")
    text = (tmp_path / "convoy.svg").read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert len(text) > 40_000  # the frame alone (an empty log) is 17 KB of SVG; this run about 100 KB
    labels = expected_labels(convoy311)
    assert {plot.LABELS["hold"], plot.LABELS["wait"], plot.LABELS["io:send"]} <= labels
    missing = [lab for lab in labels if lab not in text]
    assert not missing, "legend entries missing from the SVG: %s" % missing
    assert "the 3.11 convoy" in text
    # Only kinds the run has: the sender's head-start sleep is drawn, no signal handler ran.
    assert plot.LABELS["io:sleep"] in text and plot.LABELS["handler"] not in text
    fig = plot.plot_run(convoy311)
    (ax,), (cpu,) = axes_of(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == convoy311.threads.column("name").to_pylist()
    assert cpu.get_yticklabels() and all(t.get_text().startswith("cpu ") for t in cpu.get_yticklabels())


@needs_2_cores
def test_a_short_window_and_a_whole_long_run(handoffs27, tmp_path):
    whole = plot.plan(handoffs27)
    assert whole.lane_spans > 20 * plot.COLUMNS, "expected many thousands of holds in 1 s of 2.7 hand-offs: %r" % (whole,)
    assert whole.aggregate and whole.aggregate_marks
    fig = plot.plot_run(handoffs27)
    assert fig.gilmodel_plans == [whole]
    (ax,), _ = axes_of(fig)
    assert artists(ax, "_share:hold") and not artists(ax, "_span:")
    plot.plot_run(handoffs27, tmp_path / "whole.png")
    size = (tmp_path / "whole.png").stat().st_size
    assert size > MIN_PNG_BYTES and size > 1.5 * empty_frame_bytes(handoffs27, tmp_path / "empty.png")

    # The shares add up: at most one holder in any bin, and all the holding time is there.
    edges, occ = plot.occupancy(handoffs27)
    assert occ["hold"].sum(axis=0).max() <= 1 + 1e-9
    ev = handoffs27.to_pandas()
    held = 0
    for _, g in ev.groupby("thread"):
        acq = g.loc[g["event"] == "acquire", "t_ns"].to_numpy()
        rel = g.loc[g["event"] == "release", "t_ns"].to_numpy()
        held += int((rel[: acq.size] - acq[: rel.size]).sum())
    assert occ["hold"].sum() * (edges[1] - edges[0]) == pytest.approx(held, rel=1e-9)
    for th in range(handoffs27.threads.num_rows):
        assert sum(v[th] for v in occ.values()).max() <= 1 + 1e-9

    # A 0.2 ms window is drawn span by span (2.7 with its measured ticks hands off every
    # ~1 us on 2 cores: a whole millisecond holds ~1000 spans a lane, past the pixel columns).
    mid = handoffs27.meta["elapsed_ns"] / 2e9
    w = 2e-4
    p = plot.plan(handoffs27, mid, mid + w)
    assert not p.aggregate and p.lane_spans > 0
    fig = plot.plot_run(handoffs27, start=mid, end=mid + w)
    (ax,), _ = axes_of(fig)
    n_holds = sum(len(c.get_paths()) for c in artists(ax, "_span:hold"))
    t = plot.spans(handoffs27, mid, mid + w)
    # (A thread descheduled for the whole window can make it one long hold.)
    assert n_holds == t.filter(pc.equal(t.column("state").cast(pa.string()), "hold")).num_rows >= 1
    assert ax.get_xlim() == pytest.approx((mid * 1e3, mid * 1e3 + w * 1e3))
    plot.plot_run(handoffs27, tmp_path / "ms.png", mid, mid + w)
    assert (tmp_path / "ms.png").stat().st_size > MIN_PNG_BYTES


@needs_2_cores
def test_the_demo_still_draws_its_picture(tmp_path):
    from gilmodel.demo import DEMO_GILS, demo

    rows = demo(str(tmp_path), CORES[:2], total_bytes=64 << 10, quiet=True, repeats=1)
    assert [r["gil"] for r in rows] == list(DEMO_GILS)
    png = tmp_path / "convoy.png"
    assert png_size(png)[0] > 1000 and png.stat().st_size > MIN_PNG_BYTES
    assert json.loads((tmp_path / "summary.json").read_text())["rows"][0]["gil"] == "2.7"
