//! The thread engine: starts one pinned, named OS thread per scenario thread, releases them
//! together, runs their programs under the chosen GIL, stops them by the stop rule, and
//! returns the merged event log and per-thread counters.
//!
//! # Threads and their states
//! - *controller*: the calling thread. It sets up sockets, spawns everything, times the start
//!   (`start.rs`), then waits (in 10 ms slices) for the stop rule or an abort from its
//!   caller, and wakes threads blocked in socket calls by shutting the sockets down
//!   (`controller.rs`); once all are joined it writes the report (`report.rs`).
//! - *workers*: one per scenario thread, pinned to its core, all signals blocked (so the
//!   host's Ctrl-C reaches the host's own thread), released from the start gate
//!   (`worker_thread.rs`), running its program (`worker.rs`).
//! - *peers*: one per socket, outside the GIL, pinned to their core or restricted to the
//!   scenario's cores (`peer_thread.rs`, `peer.rs`).
//!
//! A worker stops at its next check point or op boundary after the stop flag is raised;
//! sleeps wake within 10 ms, socket calls at once (shutdown), lock and queue waits at once
//! (every semaphore posted, `Objects::wake_all`). Nothing waits unboundedly on a
//! thread that has been told to stop, so a stop always ends the run.
//!
//! # Watchdog and event budget
//! Each worker publishes its progress and current op in a [`Beacon`]. The controller
//! reads them in its 10 ms slices; when no thread made progress for the scenario's
//! [`Scenario::watchdog_s`], it stops the run as an abort does ([`StoppedBy::Watchdog`]) and
//! returns [`RunError::Halted`] with the partial output and a report of who held the GIL and
//! what each thread was doing. With `on_overflow = error`, the first event a full buffer has
//! to drop raises a flag the controller acts on the same way ([`StoppedBy::EventBudget`]).

mod controller;
pub mod gate;
pub mod idle_echo;
pub mod peer;
mod peer_thread;
mod report;
pub mod spin;
mod start;
pub mod worker;
mod worker_thread;

use crate::affinity;
use crate::beacon::Beacon;
use crate::clock::now_ns;
use crate::gil::{Gil, GilStats, Instr, WithGil};
use crate::host;
use crate::log::{EventBuf, Events};
use crate::prim::{PrimCounts, Semaphore};
use crate::scenario::{Placement, Scenario, SignalSpec, SpecError};
use crate::signals::{self, Pending};
use crate::threading::Objects;
use peer_thread::PeerEnd;
use start::Setup;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Condvar as StdCondvar, Mutex as StdMutex};

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StoppedBy {
    AllDone = 0,
    Duration = 1,
    Thread = 2,
    Abort = 3,
    /// No thread made progress for `watchdog_s`.
    Watchdog = 4,
    /// A thread filled its share of `max_events` with `on_overflow = error`.
    EventBudget = 5,
}

impl StoppedBy {
    pub fn name(self) -> &'static str {
        match self {
            StoppedBy::AllDone => "all_done",
            StoppedBy::Duration => "duration",
            StoppedBy::Thread => "thread",
            StoppedBy::Abort => "abort",
            StoppedBy::Watchdog => "watchdog",
            StoppedBy::EventBudget => "event_budget",
        }
    }

    fn from_u8(v: u8) -> StoppedBy {
        match v {
            1 => StoppedBy::Duration,
            2 => StoppedBy::Thread,
            3 => StoppedBy::Abort,
            4 => StoppedBy::Watchdog,
            5 => StoppedBy::EventBudget,
            _ => StoppedBy::AllDone,
        }
    }
}

/// A run that could not be carried out.
#[derive(Debug)]
pub enum RunError {
    /// The scenario is invalid (nothing was started).
    Spec(SpecError),
    /// Setting up failed (sockets, pinning) or a thread panicked.
    Failed(String),
    /// The run was stopped because it went wrong ([`StoppedBy::Watchdog`] or
    /// [`StoppedBy::EventBudget`]); every thread has been joined, and what it produced up to
    /// then is in `output`.
    Halted {
        reason: StoppedBy,
        message: String,
        output: Box<RunOutput>,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spec(e) => write!(f, "{e}"),
            RunError::Failed(m) => write!(f, "{m}"),
            RunError::Halted { message, .. } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<SpecError> for RunError {
    fn from(e: SpecError) -> Self {
        RunError::Spec(e)
    }
}

/// Per-thread results (a row of the `threads` table).
#[derive(Clone, Debug, Default)]
pub struct ThreadStats {
    pub name: String,
    /// The cores its affinity mask held after pinning (read back from the kernel: its one
    /// core with `pin_threads`), and the CPU it was seen on then.
    pub affinity: Vec<usize>,
    pub cpu_seen: i16,
    pub ticks: u64,
    pub gil: GilStats,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub utime_ns: i64,
    pub stime_ns: i64,
    pub prim: PrimCounts,
    pub start_ns: i64,
    pub exit_ns: i64,
    /// Ended by the stop rule or an abort rather than by finishing its program.
    pub stopped: bool,
    pub events: u64,
    pub events_dropped: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Its drain peer's `recv` calls that returned data (0 without a drain).
    pub peer_reads: u64,
    pub error: Option<String>,
}

/// Round trips timed by a driver peer.
#[derive(Clone, Debug, Default)]
pub struct IoLog {
    pub thread: Vec<u16>,
    pub sent_ns: Vec<i64>,
    pub rtt_ns: Vec<i64>,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunOutput {
    pub events: Events,
    pub threads: Vec<ThreadStats>,
    pub io: IoLog,
    pub meta: serde_json::Value,
    pub aborted: bool,
}

/// State shared by every thread of one run.
pub struct Shared<'a, G> {
    pub gil: G,
    pub stop: AtomicBool,
    stopped_by: AtomicU8,
    stop_at: AtomicI64,
    pub done: Vec<Semaphore>,
    pub index: HashMap<&'a str, usize>,
    pub instr: Instr,
    pub t0: AtomicI64,
    /// The scenario's signals and the flag their handler sets (None: it sends none).
    pub signals: Option<SignalRun>,
    /// `pthread_t` of the main thread (thread 0), the target of `pthread_kill`.
    main_pthread: AtomicU64,
    /// One per scenario thread: its progress and current op, for the watchdog.
    pub beacons: Vec<Beacon>,
    /// The scenario's locks and queues, and each thread's waiter lock (`threading.rs`).
    pub objects: Objects,
    pub lock_index: HashMap<&'a str, usize>,
    pub queue_index: HashMap<&'a str, usize>,
    finished: StdMutex<usize>,
    finished_cv: StdCondvar,
}

/// A run's signals: what to send, and the pending state the handler sets.
pub struct SignalRun {
    pub specs: Vec<SignalSpec>,
    pub pending: Pending,
}

impl SignalRun {
    /// The signal numbers the scenario sends (the handler's, the main thread's to unblock).
    pub fn signums(&self) -> Vec<i32> {
        self.specs.iter().map(|s| s.signum).collect()
    }
}

impl<'a, G> Shared<'a, G> {
    fn new(gil: G, sc: &'a Scenario) -> Self {
        let n = sc.threads.len();
        Shared {
            gil,
            stop: AtomicBool::new(false),
            stopped_by: AtomicU8::new(u8::MAX),
            stop_at: AtomicI64::new(0),
            done: (0..n).map(|_| Semaphore::new(0)).collect(),
            index: sc
                .threads
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.as_str(), i))
                .collect(),
            instr: Instr::default(),
            t0: AtomicI64::new(0),
            signals: (!sc.signals.is_empty()).then(|| SignalRun {
                specs: sc.signals.clone(),
                pending: Pending::default(),
            }),
            main_pthread: AtomicU64::new(0),
            beacons: (0..n).map(|_| Beacon::default()).collect(),
            objects: Objects::new(sc),
            lock_index: sc
                .locks
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect(),
            queue_index: sc
                .queues
                .iter()
                .enumerate()
                .map(|(i, q)| (q.name.as_str(), i))
                .collect(),
            finished: StdMutex::new(0),
            finished_cv: StdCondvar::new(),
        }
    }

    /// Raise the stop flag; the first reason wins.
    fn request_stop(&self, why: StoppedBy) {
        if self
            .stopped_by
            .compare_exchange(u8::MAX, why as u8, Relaxed, Relaxed)
            .is_ok()
        {
            self.stop_at.store(now_ns(), Relaxed);
        }
        self.stop.store(true, Relaxed);
    }
}

/// Run a scenario. `abort` is polled every 10 ms by the calling thread; when it returns true
/// the run is stopped and the partial output returned with `aborted` set.
pub fn run(sc: &Scenario, abort: &mut dyn FnMut() -> bool) -> Result<RunOutput, RunError> {
    let allowed = affinity::allowed_cores();
    let pl = sc.validate(&allowed, host::memory_bytes())?;
    sc.gil.with_gil(sc.threads.len(), Runner { sc, pl, abort })
}

/// [`run_with`], for the GIL the scenario's policy builds.
struct Runner<'a> {
    sc: &'a Scenario,
    pl: Placement,
    abort: &'a mut dyn FnMut() -> bool,
}

impl WithGil for Runner<'_> {
    type Out = Result<RunOutput, RunError>;
    fn with<G: Gil>(self, gil: G) -> Self::Out {
        run_with(gil, self.sc, self.pl, self.abort)
    }
}

/// One run under `gil`: set up, start every thread, supervise until the run ends, join, report.
fn run_with<G: Gil>(
    gil: G,
    sc: &Scenario,
    pl: Placement,
    abort: &mut dyn FnMut() -> bool,
) -> Result<RunOutput, RunError> {
    let setup = Setup::new(sc, pl)?;
    let sh = Shared::new(gil, sc);
    // Installed for the whole run, restored when `_handler` drops (after every thread joined).
    let _handler = sh
        .signals
        .as_ref()
        .map(|sr| signals::Installed::new(&sr.signums(), &sr.pending))
        .transpose()
        .map_err(RunError::Failed)?;
    let ended = std::thread::scope(|s| {
        let started = start::start(s, &setup, &sh)?;
        let watched = controller::supervise(&setup, &sh, abort);
        sh.request_stop(StoppedBy::AllDone);
        setup.wake_sockets();
        let (workers, pings) = started.join();
        Ok(Ended {
            workers,
            pings,
            watched,
        })
    })
    .map_err(RunError::Failed)?;
    report::output(&setup, &sh, ended)
}

/// What the threads of a run handed back, and what the controller saw.
struct Ended {
    workers: Vec<(ThreadStats, EventBuf)>,
    pings: Vec<PeerEnd>,
    watched: controller::Watched,
}

#[cfg(test)]
mod tests;
