//! gilmodel's core: faithful replicas of CPython's GILs, built from glibc's pthread mutexes,
//! condition variables and semaphores, contended by real pinned OS threads, every event
//! logged.
//!
//! - [`prim`]: the glibc primitives, counting their calls per thread;
//! - [`affinity`], [`beacon`]: pinning and naming threads; the per-thread progress the
//!   watchdog reads (below both [`gil`] and [`engine`]);
//! - [`contract`]: every range a scenario is checked against, and the error naming the field;
//! - [`gil`]: [`gil::PolicySpec`], the [`gil::Gil`] trait and one policy per module (its
//!   algorithm and the checks of its knobs);
//! - [`engine`]: threads, programs of ops, socket peers, stop rules, the run's report;
//! - [`log`]: the per-thread event buffers and their merge;
//! - [`analysis`]: one pass over a merged log for the analysis tables;
//! - [`perfetto`]: the native Perfetto trace encoder (protobuf, from arrays);
//! - [`scenario`]: what to run, and its validation; [`return_cost`]: the interpreter's extra
//!   work for a thread back from a blocking op, one of its fields;
//! - [`observe`]: a real CPython's GIL observed with kernel uprobes, in the same schema;
//! - [`signals`]: the C-level signal handler of the Ctrl-C experiments;
//! - [`threading`]: `threading.Lock` and `queue.Queue` as CPython builds them (spec, checks,
//!   run-time objects) for the lock and queue ops;
//! - `python` (feature `python`): the PyO3 glue, the only place that knows about Python.

pub mod affinity;
pub mod analysis;
pub mod beacon;
pub mod clock;
pub mod contract;
pub mod engine;
pub mod gil;
pub mod host;
pub mod hugepages;
pub mod log;
#[cfg(target_os = "linux")]
pub mod observe;
pub mod perfetto;
pub mod prim;
pub mod return_cost;
pub mod rusage;
pub mod scenario;
pub mod signals;
pub mod spans;
pub mod tables;
pub mod threading;

#[cfg(feature = "python")]
mod python;

pub use engine::{run, RunError, RunOutput, ThreadStats};
pub use scenario::{Op, PeerSpec, PolicySpec, Scenario, StopSpec, ThreadSpec};
