"""Arrow, pandas and Parquet export."""

import numpy as np
import pyarrow as pa

import pytest

import gilmodel as gm
from gilmodel import _core
from gilmodel.run import _events_table


def small():
    return gm.Scenario(gm.cpython("2.7"), [gm.Thread("a", [gm.cpu(50_000)]), gm.Thread("b", [gm.cpu(50_000)])], name="small")


def test_numeric_columns_reach_pyarrow_without_a_copy():
    raw = _core.run(small().to_json())
    ev = raw["events"]
    table = _events_table(ev)
    for col in ("t_ns", "thread", "cpu", "arg"):
        arr = table.column(col).chunks[0]
        assert arr.buffers()[1].address == ev[col].ctypes.data, col
    assert table.column("event").chunks[0].indices.buffers()[1].address == ev["event"].ctypes.data


def test_schema():
    run = gm.run(small())
    s = run.events.schema
    assert s.field("t_ns").type == pa.int64()
    assert s.field("thread").type == pa.uint16()
    assert s.field("cpu").type == pa.int16()
    assert s.field("event").type == pa.dictionary(pa.int8(), pa.string())
    assert s.field("arg").type == pa.int64()
    assert set(run.events.column("event").combine_chunks().dictionary.to_pylist()) == set(gm.EVENT_NAMES)


def test_meta_describes_the_run():
    m = gm.run(small()).meta
    # No tick_ns given: 2.7's measured profile; where its ticks are grouped the check period
    # is in model ticks (the real time between checks is kept).
    prof = m["profile"]
    assert prof["source"] in ("measured", "cache", "reference") and prof["version"].startswith("2.7")
    ci = 100 if prof["group"] == 1 else max(1, round(101 / prof["group"]))
    assert m["gil"] == {"policy": "tick", "check_interval": ci, "lock": "sem"}
    assert m["scenario"] == "small" and m["tick_ns"] == pytest.approx(prof["model_tick_ns"])
    assert m["contention"]["wall_s"] > 0 and m["contention"]["foreign_cores"] >= 0
    for k in ("cpu_model", "cores_online", "kernel", "glibc"):
        assert m["host"][k]
    assert m["version"] == gm.__version__
    assert m["spin"]["iters_per_tick"] >= 1


def test_threads_table_has_counters():
    t = gm.run(small()).threads
    for col in ("name", "core", "ticks", "hold_ns", "wait_ns", "acquisitions", "futile_wakeups", "drop_requests",
                "voluntary_ctx_switches", "involuntary_ctx_switches", "sem_wait", "sem_post", "mutex_lock", "cond_timedwait"):
        assert col in t.column_names, col
    d = t.to_pydict()
    assert d["ticks"] == [50_000, 50_000]
    assert all(p > 0 for p in d["sem_post"])


def test_parquet_round_trip(tmp_path):
    run = gm.run(small())
    p = tmp_path / "run.parquet"
    run.to_parquet(p)
    back = gm.load_run(p)
    assert back.events.equals(run.events)
    assert back.threads.to_pydict() == run.threads.to_pydict()
    assert back.meta == run.meta
    assert back.summary() == run.summary()


def test_pandas():
    df = gm.run(small()).to_pandas()
    assert len(df) > 0 and str(df["event"].dtype) == "category"
    assert (df.groupby("thread")["t_ns"].apply(lambda s: s.is_monotonic_increasing)).all()


def test_truncation_is_reported():
    run = gm.run(small().replace(max_events=1000))
    assert run.events.num_rows == 1000
    assert run.meta["events_truncated"]
    assert sum(run.threads.column("events_dropped").to_pylist()) > 0


def test_logging_off_keeps_the_counters():
    run = gm.run(small().replace(log=False))
    assert run.events.num_rows == 0
    assert run.summary()["acquisitions"] > 900
