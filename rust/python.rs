//! The PyO3 glue: the only module that knows about Python.
//!
//! Scenarios arrive as JSON (built and type-checked by the Python front); results leave as
//! numpy arrays that own the Rust vectors (no copy), which the front wraps as pyarrow arrays
//! (again no copy).

use crate::affinity;
use crate::contract::{self, WATCHDOG_S};
use crate::engine::{self, spin, RunError, RunOutput};
use crate::log::{EVENT_NAMES, IO_OP_NAMES};
use crate::prim::counts::CALL_NAMES;
use crate::scenario::{
    Scenario, DEFAULT_LOG_BYTES, DEFAULT_MAX_EVENTS, EVENT_BYTES, WATCHDOG_FACTOR, WATCHDOG_MIN_S,
};
use crate::tables::{io_columns, thread_columns, Column};
use numpy::IntoPyArray;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

fn columns<'py>(py: Python<'py>, cols: Vec<(String, Column)>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, col) in cols {
        match col {
            Column::I64(v) => d.set_item(name, v.into_pyarray(py))?,
            Column::U64(v) => d.set_item(name, v.into_pyarray(py))?,
            Column::Bool(v) => d.set_item(name, v.into_pyarray(py))?,
            Column::Str(v) => d.set_item(name, v)?,
            Column::OptStr(v) => d.set_item(name, v)?,
        }
    }
    Ok(d)
}

/// Re-attach and run Python's signal handlers; true (and the exception kept in `pending`) when
/// one raised: the stop test of a run or an observation with Python's GIL released.
fn signalled(pending: &mut Option<PyErr>) -> bool {
    match Python::attach(|py| py.check_signals()) {
        Ok(()) => false,
        Err(e) => {
            *pending = Some(e);
            true
        }
    }
}

fn spec(json: &str) -> PyResult<Scenario> {
    Scenario::from_json(json).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Run a scenario given as JSON. Python's GIL is released while the experiment runs; every
/// 10 ms the calling thread re-attaches to check for signals, and a KeyboardInterrupt (or any
/// exception a signal handler raises) stops the run, joins every thread and is re-raised.
///
/// A run halted by the watchdog or the event budget is returned like any other, with an
/// `error` entry `{"kind": "watchdog" | "event_budget", "message": ...}` (None otherwise): the
/// Python front raises it with the partial run attached.
#[pyfunction]
fn run<'py>(py: Python<'py>, scenario_json: &str) -> PyResult<Bound<'py, PyDict>> {
    let sc = spec(scenario_json)?;
    let mut pending: Option<PyErr> = None;
    let result = py.detach(|| engine::run(&sc, &mut || signalled(&mut pending)));
    if let Some(e) = pending {
        return Err(e);
    }
    let (out, error) = match result {
        Ok(out) => (out, None),
        Err(RunError::Spec(e)) => return Err(PyValueError::new_err(e.to_string())),
        Err(RunError::Failed(m)) => return Err(PyRuntimeError::new_err(m)),
        Err(RunError::Halted {
            reason,
            message,
            output,
        }) => {
            let e = PyDict::new(py);
            e.set_item("kind", reason.name())?;
            e.set_item("message", message)?;
            (*output, Some(e))
        }
    };
    let d = output_dict(py, out)?;
    d.set_item("error", error)?;
    Ok(d)
}

fn output_dict(py: Python<'_>, out: RunOutput) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let ev = PyDict::new(py);
    ev.set_item("t_ns", out.events.t_ns.into_pyarray(py))?;
    ev.set_item("thread", out.events.thread.into_pyarray(py))?;
    ev.set_item("cpu", out.events.cpu.into_pyarray(py))?;
    ev.set_item("event", out.events.event.into_pyarray(py))?;
    ev.set_item("arg", out.events.arg.into_pyarray(py))?;
    d.set_item("events", ev)?;
    d.set_item("threads", columns(py, thread_columns(&out.threads))?)?;
    d.set_item("io", columns(py, io_columns(out.io))?)?;
    d.set_item("meta", out.meta.to_string())?;
    Ok(d)
}

/// Observe a real CPython's GIL (spec as JSON, `gilmodel.observe` builds it): the same dict as
/// `run`, from kernel uprobes. Python's GIL is released meanwhile; every poll the calling
/// thread re-attaches to check for signals, and a KeyboardInterrupt ends the observation: the
/// partial run comes back with `meta["stopped_by"] == "interrupted"` and the exception is
/// kept for the front to raise after building the run (`error` = {"kind": "interrupted"}).
#[cfg(target_os = "linux")]
#[pyfunction]
fn observe<'py>(py: Python<'py>, spec_json: &str) -> PyResult<Bound<'py, PyDict>> {
    let spec: crate::observe::ObserveSpec = serde_json::from_str(spec_json)
        .map_err(|e| PyValueError::new_err(format!("observe spec: {e}")))?;
    let mut pending: Option<PyErr> = None;
    let result = py.detach(|| crate::observe::observe(&spec, &mut || signalled(&mut pending)));
    let out = result.map_err(PyRuntimeError::new_err)?;
    let d = output_dict(py, out)?;
    match pending {
        Some(e) => {
            let err = PyDict::new(py);
            err.set_item("kind", "interrupted")?;
            err.set_item("exception", e.into_value(py))?;
            d.set_item("error", err)?;
        }
        None => d.set_item("error", py.None())?,
    }
    Ok(d)
}

/// Validate a scenario given as JSON without running it; returns each thread's core.
#[pyfunction]
fn validate(scenario_json: &str) -> PyResult<Vec<usize>> {
    let sc = spec(scenario_json)?;
    sc.validate(&affinity::allowed_cores(), crate::host::memory_bytes())
        .map(|p| p.thread_cores)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The spin calibration in use: `(overhead_ns, ns_per_iter)`; measured first if there is none
/// yet or it is older than `spin::MAX_AGE_S`.
#[pyfunction]
fn calibration(py: Python<'_>) -> (f64, f64) {
    let c = py.detach(spin::calibration);
    (c.overhead_ns, c.ns_per_iter)
}

/// Measure the spin calibration again on the calling thread's core and use it from now on:
/// `(overhead_ns, ns_per_iter)`.
#[pyfunction]
fn recalibrate(py: Python<'_>) -> (f64, f64) {
    let c = py.detach(spin::recalibrate);
    (c.overhead_ns, c.ns_per_iter)
}

/// What a `send` of one byte and the `recv` that reads it cost on a loopback TCP pair without
/// an interpreter, ns (best of `rounds` rounds of `n` pairs, on the calling thread's core).
#[pyfunction]
#[pyo3(signature = (n = 10_000, rounds = 5))]
fn socket_pair_ns(py: Python<'_>, n: u32, rounds: u32) -> PyResult<f64> {
    if n == 0 || rounds == 0 {
        return Err(PyValueError::new_err(
            "socket_pair_ns: n and rounds must be at least 1",
        ));
    }
    py.detach(|| crate::engine::peer::socket_pair_ns(n, rounds))
        .map_err(|e| PyRuntimeError::new_err(format!("socket_pair_ns: {e}")))
}

/// Round trips, ns, of the model's own echo with no CPU thread (`engine::idle_echo`), on the
/// calling thread's first core: what the calibration holds the interpreter's echo against.
#[pyfunction]
#[pyo3(signature = (pings, gap_us, echo_ticks, client_ticks, tick_ns, tick_gil))]
fn idle_echo_round_trips_ns(
    py: Python<'_>,
    pings: u64,
    gap_us: u64,
    echo_ticks: u64,
    client_ticks: u64,
    tick_ns: f64,
    tick_gil: bool,
) -> PyResult<Vec<i64>> {
    if !(1..=100_000).contains(&pings) || !(1..=1_000_000).contains(&gap_us) {
        return Err(PyValueError::new_err(format!(
            "idle_echo_round_trips_ns: pings {pings} must be 1 to 100000 and gap_us {gap_us} 1 to 1000000"
        )));
    }
    let e = engine::idle_echo::IdleEcho {
        pings,
        gap_us,
        echo_ticks,
        client_ticks,
        tick_ns,
        tick_gil,
    };
    py.detach(|| engine::idle_echo::idle_echo_round_trips_ns(e))
        .map_err(|e| match e {
            RunError::Spec(e) => PyValueError::new_err(format!("idle_echo_round_trips_ns: {e}")),
            e => PyRuntimeError::new_err(format!("idle_echo_round_trips_ns: {e:?}")),
        })
}

/// Cores this process may run on.
#[pyfunction]
fn allowed_cores() -> Vec<usize> {
    affinity::allowed_cores()
}

/// Every range a scenario is checked against: name → `(lo, hi)`, as the core checks them.
fn limits(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (name, b) in contract::limits(crate::host::memory_bytes()) {
        match b {
            contract::Bound::Int(lo, hi) => d.set_item(name, (lo, hi))?,
            contract::Bound::Float(lo, hi) => d.set_item(name, (lo, hi))?,
        }
    }
    Ok(d)
}

/// Host facts as JSON (CPU model, cores, kernel, glibc).
#[pyfunction]
fn host_info() -> String {
    crate::host::info().to_string()
}

/// One run of a native trace, as the front gives it: title, thread track labels, thread
/// names, the event log's columns (`event` as the log's codes), the run's time shift, and
/// whether to draw the GIL track.
type RunRow<'py> = (
    String,
    Vec<String>,
    Vec<String>,
    numpy::PyReadonlyArray1<'py, i64>,
    numpy::PyReadonlyArray1<'py, u16>,
    numpy::PyReadonlyArray1<'py, i16>,
    numpy::PyReadonlyArray1<'py, i8>,
    numpy::PyReadonlyArray1<'py, i64>,
    i64,
    bool,
);

/// Write `runs` as a native Perfetto trace to `path` (gzip-compressed with `gzip`), keeping
/// the window `[lo, hi]` ns of each run (rust/perfetto.rs). Returns the bytes of protobuf
/// written (before compression). Python's GIL is released while it encodes.
#[pyfunction]
fn perfetto_trace(
    py: Python<'_>,
    path: &str,
    gzip: bool,
    runs: Vec<RunRow<'_>>,
    lo: i64,
    hi: i64,
) -> PyResult<u64> {
    use crate::perfetto::{write_runs, RunLog, TraceError};
    let cols = runs
        .iter()
        .map(|r| {
            Ok((
                r.3.as_slice()?,
                r.4.as_slice()?,
                r.5.as_slice()?,
                r.6.as_slice()?,
                r.7.as_slice()?,
            ))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let logs: Vec<RunLog> = runs
        .iter()
        .zip(&cols)
        .map(|(r, c)| RunLog {
            title: &r.0,
            labels: &r.1,
            names: &r.2,
            t: c.0,
            thread: c.1,
            cpu: c.2,
            event: c.3,
            arg: c.4,
            shift: r.8,
            gil_track: r.9,
        })
        .collect();
    let file =
        std::fs::File::create(path).map_err(|e| PyRuntimeError::new_err(format!("{path}: {e}")))?;
    py.detach(|| {
        let w = std::io::BufWriter::with_capacity(1 << 20, file);
        if gzip {
            let mut z = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
            let n = write_runs(&mut z, &logs, lo, hi)?;
            z.finish()?;
            Ok(n)
        } else {
            write_runs(w, &logs, lo, hi)
        }
    })
    .map_err(|e: TraceError| match e {
        TraceError::Input(m) => PyValueError::new_err(m),
        TraceError::Io(e) => PyRuntimeError::new_err(format!("{path}: {e}")),
    })
}

/// The columns of every table of `gilmodel.analysis`, in one pass over an event log
/// (rust/analysis.rs): a dict of tables (`holds`, `waits`, `handoffs`, `io`, `calls`), each a
/// dict of numpy arrays, and `idle_with_waiters_ns`; with `full` false, only what the summary
/// reads (`waits` with `wait_ns` alone, `handoffs`, `io`). Python's GIL is released during the
/// pass.
#[pyfunction]
fn analysis_pass<'py>(
    py: Python<'py>,
    t: numpy::PyReadonlyArray1<'py, i64>,
    thread: numpy::PyReadonlyArray1<'py, u16>,
    cpu: numpy::PyReadonlyArray1<'py, i16>,
    event: numpy::PyReadonlyArray1<'py, i8>,
    arg: numpy::PyReadonlyArray1<'py, i64>,
    full: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (t, th, cpu, ev, a) = (
        t.as_slice()?,
        thread.as_slice()?,
        cpu.as_slice()?,
        event.as_slice()?,
        arg.as_slice()?,
    );
    if [th.len(), cpu.len(), ev.len(), a.len()]
        .iter()
        .any(|&k| k != t.len())
    {
        return Err(PyValueError::new_err(
            "analysis_pass: columns of different lengths",
        ));
    }
    let r = py.detach(|| crate::analysis::pass(t, th, cpu, ev, a, full));
    // A table: its columns by name, moved into numpy arrays without a copy.
    macro_rules! table {
        ($($name:literal => $v:expr),* $(,)?) => {{
            let d = PyDict::new(py);
            $(d.set_item($name, $v.into_pyarray(py))?;)*
            d
        }};
    }
    let (h, w, ho, io, c) = (r.holds, r.waits, r.handoffs, r.io, r.calls);
    let d = PyDict::new(py);
    if full {
        d.set_item(
            "holds",
            table!("thread" => h.thread, "cpu" => h.cpu, "start_ns" => h.start,
            "end_ns" => h.end, "dur_ns" => h.dur, "ticks" => h.ticks, "ended" => h.ended),
        )?;
        d.set_item(
            "waits",
            table!("thread" => w.thread, "request_ns" => w.request,
            "acquire_ns" => w.acquire, "wait_ns" => w.wait, "timeouts" => w.timeouts,
            "drop_requests" => w.drop_requests, "futile_wakeups" => w.futile),
        )?;
        d.set_item(
            "calls",
            table!("thread" => c.thread, "begin_ns" => c.begin,
            "end_ns" => c.end, "call_ns" => c.call, "ticks" => c.ticks),
        )?;
    } else {
        d.set_item("waits", table!("wait_ns" => w.wait))?;
    }
    d.set_item(
        "handoffs",
        table!("from_thread" => ho.from, "to_thread" => ho.to,
        "release_ns" => ho.release, "acquire_ns" => ho.acquire, "latency_ns" => ho.latency),
    )?;
    d.set_item(
        "io",
        table!("thread" => io.thread, "op" => io.op, "bytes" => io.bytes,
        "begin_ns" => io.begin, "end_ns" => io.end, "acquire_ns" => io.acquire,
        "call_ns" => io.call, "response_ns" => io.response),
    )?;
    d.set_item("idle_with_waiters_ns", r.idle_with_waiters_ns)?;
    Ok(d)
}

/// The timeline's state spans of an event log (rust/spans.rs): a tuple of numpy arrays
/// (thread, state, op, start, end, open), ordered by thread, then start. Python's GIL is
/// released meanwhile.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn state_spans<'py>(
    py: Python<'py>,
    t: numpy::PyReadonlyArray1<'py, i64>,
    thread: numpy::PyReadonlyArray1<'py, u16>,
    event: numpy::PyReadonlyArray1<'py, i8>,
    arg: numpy::PyReadonlyArray1<'py, i64>,
    lut: numpy::PyReadonlyArray1<'py, i8>,
    io_state: i8,
    ops: i64,
    end_ns: i64,
    truncated: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let (t, th, ev, a, lut) = (
        t.as_slice()?,
        thread.as_slice()?,
        event.as_slice()?,
        arg.as_slice()?,
        lut.as_slice()?,
    );
    if ops < 1 {
        return Err(PyValueError::new_err("state_spans: ops must be at least 1"));
    }
    let s = py
        .detach(|| crate::spans::state_spans(t, th, ev, a, lut, io_state, ops, end_ns, truncated))
        .ok_or_else(|| {
            PyValueError::new_err(
                "state_spans: columns of different lengths, or an event code outside the table",
            )
        })?;
    PyTuple::new(
        py,
        [
            s.thread.into_pyarray(py).into_any(),
            s.state.into_pyarray(py).into_any(),
            s.op.into_pyarray(py).into_any(),
            s.start.into_pyarray(py).into_any(),
            s.end.into_pyarray(py).into_any(),
            s.open.into_pyarray(py).into_any(),
        ],
    )
}

/// Per thread, the events in `[lo, hi)` ns that found it on another CPU than its event before
/// (rust/spans.rs): an int64 numpy array of `threads` counts.
#[pyfunction]
fn migrations<'py>(
    py: Python<'py>,
    t: numpy::PyReadonlyArray1<'py, i64>,
    thread: numpy::PyReadonlyArray1<'py, u16>,
    cpu: numpy::PyReadonlyArray1<'py, i16>,
    lo: i64,
    hi: i64,
    threads: usize,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let (t, th, c) = (t.as_slice()?, thread.as_slice()?, cpu.as_slice()?);
    py.detach(|| crate::spans::migrations(t, th, c, lo, hi, threads))
        .map(|v| v.into_pyarray(py))
        .ok_or_else(|| {
            PyValueError::new_err(
                "migrations: columns of different lengths, or a thread outside 0..threads",
            )
        })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    #[cfg(target_os = "linux")]
    m.add_function(wrap_pyfunction!(observe, m)?)?;
    m.add_function(wrap_pyfunction!(calibration, m)?)?;
    m.add_function(wrap_pyfunction!(recalibrate, m)?)?;
    m.add_function(wrap_pyfunction!(socket_pair_ns, m)?)?;
    m.add_function(wrap_pyfunction!(idle_echo_round_trips_ns, m)?)?;
    m.add_function(wrap_pyfunction!(allowed_cores, m)?)?;
    m.add_function(wrap_pyfunction!(host_info, m)?)?;
    m.add_function(wrap_pyfunction!(perfetto_trace, m)?)?;
    m.add_function(wrap_pyfunction!(analysis_pass, m)?)?;
    m.add_function(wrap_pyfunction!(state_spans, m)?)?;
    m.add_function(wrap_pyfunction!(migrations, m)?)?;
    m.add("EVENT_NAMES", EVENT_NAMES.to_vec())?;
    m.add("SPAN_NONE", crate::spans::NONE)?;
    m.add("SPAN_NOT_STATE", crate::spans::NOT_STATE)?;
    m.add("OP_NAMES", PyTuple::new(m.py(), IO_OP_NAMES)?)?;
    m.add("LIMITS", limits(m.py())?)?;
    m.add("CALL_NAMES", CALL_NAMES.to_vec())?;
    m.add("EVENT_BYTES", EVENT_BYTES)?;
    m.add("DEFAULT_LOG_BYTES", DEFAULT_LOG_BYTES)?;
    m.add("DEFAULT_MAX_EVENTS", DEFAULT_MAX_EVENTS)?;
    m.add("WATCHDOG_MIN_S", WATCHDOG_MIN_S)?;
    m.add("WATCHDOG_FACTOR", WATCHDOG_FACTOR)?;
    m.add("WATCHDOG_RANGE_S", (WATCHDOG_S.lo, WATCHDOG_S.hi))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
