//! The thread engine: starts one pinned, named OS thread per scenario thread, releases them
//! together, runs their programs under the chosen GIL, stops them by the stop rule, and
//! returns the merged event log and per-thread counters.
//!
//! # Threads and their states
//! - *controller*: the calling thread. It sets up sockets, spawns everything, times the start,
//!   then waits (in 10 ms slices) for the stop rule or an abort from its caller, and wakes
//!   threads blocked in socket calls by shutting the sockets down.
//! - *workers*: one per scenario thread, pinned to its core, all signals blocked (so the
//!   host's Ctrl-C reaches the host's own thread), released from a barrier.
//! - *peers*: one per socket, outside the GIL, restricted to the scenario's cores.
//!
//! A worker stops at its next check point or op boundary after the stop flag is raised;
//! sleeps wake within 10 ms, socket calls at once (shutdown). Nothing waits unboundedly on a
//! thread that has been told to stop, so a stop always ends the run.
//!
//! # Watchdog and event budget
//! Each worker publishes its progress and current op in a [`Beacon`]. The controller
//! reads them in its 10 ms slices; when no thread made progress for the scenario's
//! [`Scenario::watchdog_s`], it stops the run as an abort does ([`StoppedBy::Watchdog`]) and
//! returns [`RunError::Halted`] with the partial output and a report of who held the GIL and
//! what each thread was doing. With `on_overflow = error`, the first event a full buffer has
//! to drop raises a flag the controller acts on the same way ([`StoppedBy::EventBudget`]).

pub mod gate;
pub mod peer;
pub mod spin;
pub mod worker;

use crate::affinity;
use crate::beacon::{self, Beacon, Doing, Seen, GIL_HOLDING};
use crate::clock::now_ns;
use crate::gil::{Gil, GilStats, Instr, Release, ThreadCx, WithGil};
use crate::host;
use crate::log::{Ev, EventBuf, Events};
use crate::prim::{counts, PrimCounts, Semaphore};
use crate::rusage;
use crate::scenario::{
    max_events_allowed, Overflow, PeerSpec, Placement, PolicySpec, Scenario, SignalSpec, SpecError,
    EVENT_BYTES,
};
use crate::signals::{self, Pending};
use gate::Gate;
use peer::{Link, Ping};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Condvar as StdCondvar, Mutex as StdMutex};
use std::time::Duration;
use worker::{Flow, Worker};

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
    finished: StdMutex<usize>,
    finished_cv: StdCondvar,
}

/// A run's signals: what to send, and the pending state the handler sets.
pub struct SignalRun {
    pub specs: Vec<SignalSpec>,
    pub pending: Pending,
}

impl<G> Shared<'_, G> {
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

fn run_with<G: Gil>(
    gil: G,
    sc: &Scenario,
    pl: Placement,
    abort: &mut dyn FnMut() -> bool,
) -> Result<RunOutput, RunError> {
    let n = sc.threads.len();
    let cal = spin::calibration();
    let iters_per_tick = cal.iters_for(sc.tick_ns);
    let per_thread_cap = (sc.max_events / n as u64) as usize;
    // Raised by the first event a thread's full buffer has to drop.
    let budget_full = Arc::new(AtomicBool::new(false));

    let links: Vec<Option<Link>> = sc
        .threads
        .iter()
        .map(|t| t.peer.as_ref().map(|_| Link::tcp()).transpose())
        .collect::<Result<_, _>>()
        .map_err(|e| RunError::Failed(format!("loopback socket setup failed: {e}")))?;
    let n_peers = links.iter().flatten().count();

    let sh = Shared {
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
        finished: StdMutex::new(0),
        finished_cv: StdCondvar::new(),
    };
    let stop_thread = sc.stop.thread.as_ref().map(|name| sh.index[name.as_str()]);
    let signums: Vec<i32> = sc.signals.iter().map(|s| s.signum).collect();
    // Installed for the whole run, restored when `_handler` drops (after every thread joined).
    let _handler = match &sh.signals {
        Some(sr) => Some(signals::Installed::new(&signums, &sr.pending).map_err(RunError::Failed)?),
        None => None,
    };
    // Everyone arrives → the controller reads t0 → the gate opens and everyone goes.
    let gate = Gate::new();

    let (results, peer_results, aborted, signals_sent, hung) = std::thread::scope(|s| {
        let mut spawn_error: Option<String> = None;
        let mut workers = Vec::with_capacity(n);
        for (i, spec) in sc.threads.iter().enumerate() {
            let (sh, gate, core, signums) = (&sh, &gate, pl.thread_cores[i], &signums);
            let all_cores = &pl.cores;
            let sock = links[i].as_ref().map(|l| &l.thread_end);
            let budget_full = budget_full.clone();
            let h = std::thread::Builder::new()
                .name(format!("gm:{}", spec.name))
                .spawn_scoped(s, move || {
                    affinity::block_signals();
                    if i == 0 && !signums.is_empty() {
                        // The main thread alone receives the scenario's signals.
                        signals::unblock(signums);
                        // SAFETY: pthread_self has no preconditions.
                        sh.main_pthread
                            .store(unsafe { libc::pthread_self() } as u64, Relaxed);
                    }
                    affinity::set_name(&format!("gm:{}", spec.name));
                    let pin_err = if sc.pin_threads {
                        affinity::pin_current(&[core])
                    } else {
                        affinity::pin_current(all_cores)
                    }
                    .err();
                    let allowed = affinity::allowed_cores();
                    let cpu_seen = crate::log::current_cpu();
                    counts::reset();
                    let ru0 = rusage::thread();
                    let log = EventBuf::new(per_thread_cap, sc.log).with_full_flag(budget_full);
                    let mut cx = ThreadCx::new(i as u16, log, &sh.instr, &sh.beacons[i]);
                    cx.signal_pending = sh.signals.as_ref().map(|s| &s.pending.flag);
                    let mut w = Worker {
                        iters_per_tick,
                        chain: spin::SEED,
                        sock,
                        buf: Vec::new(),
                        bytes_sent: 0,
                        bytes_received: 0,
                        handled: 0,
                    };
                    if !gate.arrive_and_wait() {
                        return None;
                    }
                    let start = now_ns();
                    // The start event's arg: the core pinned to; -1 unpinned.
                    let home = if sc.pin_threads { core as i64 } else { -1 };
                    cx.log.push(start, Ev::Start, home);
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if pin_err.is_some() {
                            return Flow::Stopped;
                        }
                        sh.gil.take(&mut cx);
                        w.exec(sh, &mut cx, &spec.program)
                    }));
                    if cx.holding {
                        sh.gil.release(&mut cx, Release::Exit);
                    }
                    sh.beacons[i].doing(Doing::Exited, 0);
                    let exit = now_ns();
                    let stopped = !matches!(outcome, Ok(Flow::Continue) | Ok(Flow::End));
                    cx.log.push(exit, Ev::Exit, stopped as i64);
                    sh.done[i].post();
                    let error = match outcome {
                        Err(p) => Some(panic_text(&p)),
                        Ok(_) => pin_err,
                    };
                    if error.is_some() {
                        sh.request_stop(StoppedBy::Abort);
                    }
                    if stop_thread == Some(i) {
                        sh.request_stop(StoppedBy::Thread);
                    }
                    let ru1 = rusage::thread();
                    let stats = ThreadStats {
                        name: spec.name.clone(),
                        affinity: allowed,
                        cpu_seen,
                        ticks: cx.ticks(),
                        gil: cx.stats.clone(),
                        nvcsw: ru1.nvcsw - ru0.nvcsw,
                        nivcsw: ru1.nivcsw - ru0.nivcsw,
                        utime_ns: ru1.utime_ns - ru0.utime_ns,
                        stime_ns: ru1.stime_ns - ru0.stime_ns,
                        prim: counts::snapshot(),
                        start_ns: start,
                        exit_ns: exit,
                        stopped,
                        events: cx.log.len() as u64,
                        events_dropped: cx.log.dropped,
                        bytes_sent: w.bytes_sent,
                        bytes_received: w.bytes_received,
                        error,
                    };
                    *sh.finished.lock().unwrap() += 1;
                    sh.finished_cv.notify_all();
                    Some((stats, cx.log))
                });
            match h {
                Ok(h) => workers.push(h),
                Err(e) => {
                    spawn_error = Some(format!("could not start thread {:?}: {e}", spec.name));
                    break;
                }
            }
        }

        let mut peers = Vec::new();
        for (i, (spec, link)) in sc.threads.iter().zip(&links).enumerate() {
            let (Some(link), Some(peer)) = (link, &spec.peer) else {
                continue;
            };
            if spawn_error.is_some() {
                break;
            }
            let (sh, gate, cores) = (&sh, &gate, &pl.cores);
            let h = std::thread::Builder::new()
                .name(format!("gm-peer:{}", spec.name))
                .spawn_scoped(s, move || {
                    affinity::block_signals();
                    affinity::set_name(&format!("gm-peer:{}", spec.name));
                    let _ = match peer.core() {
                        Some(c) => affinity::pin_current(&[c]),
                        None => affinity::pin_current(cores),
                    };
                    if !gate.arrive_and_wait() {
                        return (i, Vec::new());
                    }
                    let t0 = sh.t0.load(Relaxed);
                    match peer {
                        PeerSpec::Drain { .. } => {
                            peer::drain(&link.peer_end);
                            (i, Vec::new())
                        }
                        PeerSpec::Driver {
                            pings,
                            gap_us,
                            bytes,
                            reply_bytes,
                            ..
                        } => (
                            i,
                            peer::drive(
                                &link.peer_end,
                                t0,
                                *pings,
                                *gap_us,
                                *bytes,
                                *reply_bytes,
                                &sh.stop,
                            ),
                        ),
                    }
                });
            match h {
                Ok(h) => peers.push(h),
                Err(e) => {
                    spawn_error = Some(format!("could not start the peer of {:?}: {e}", spec.name))
                }
            }
        }
        if let Some(e) = spawn_error {
            gate.release(false);
            for h in workers {
                let _ = h.join();
            }
            for h in peers {
                let _ = h.join();
            }
            return Err(e);
        }

        gate.wait_for(n + n_peers);
        let t0 = now_ns();
        sh.t0.store(t0, Relaxed);
        gate.release(true);

        // Wait for the stop rule, in slices, polling the caller's abort.
        let deadline = sc.stop.duration_s.map(|d| t0 + (d * 1e9) as i64);
        let mut aborted = false;
        let mut woke_sockets = false;
        // Signals to send, in time order: (due time, signum, index in the spec).
        let mut due: Vec<(i64, i32, usize)> = sc
            .signals
            .iter()
            .enumerate()
            .map(|(k, s)| (t0 + s.at_us as i64 * 1000, s.signum, k))
            .collect();
        due.sort();
        let mut sent_ns = vec![None::<i64>; due.len()];
        let mut next_sig = 0;
        // The watchdog: the sum of all beacons' progress, and when it last moved.
        let watchdog_ns = (sc.watchdog_s() * 1e9) as i64;
        let progress = || {
            sh.beacons
                .iter()
                .fold(0u64, |a, b| a.wrapping_add(b.progress()))
        };
        let (mut last_progress, mut progress_at) = (progress(), t0);
        let mut hung: Option<(i64, Vec<Seen>)> = None;
        loop {
            while next_sig < due.len() && now_ns() >= due[next_sig].0 && !sh.stop.load(Relaxed) {
                let (_, signum, k) = due[next_sig];
                let target = sh.main_pthread.load(Relaxed) as libc::pthread_t;
                // SAFETY: the main thread is a scoped thread not yet joined, so its pthread_t
                // is valid (ESRCH at worst, if it has already returned).
                let rc = unsafe { libc::pthread_kill(target, signum) };
                if rc == 0 {
                    sent_ns[k] = Some(now_ns() - t0);
                }
                next_sig += 1;
            }
            let fin = *sh.finished.lock().unwrap();
            if fin == n {
                break;
            }
            if let Some(d) = deadline {
                if now_ns() >= d {
                    sh.request_stop(StoppedBy::Duration);
                }
            }
            if !aborted && abort() {
                aborted = true;
                sh.request_stop(StoppedBy::Abort);
            }
            if !sh.stop.load(Relaxed) {
                let (p, now) = (progress(), now_ns());
                if p != last_progress {
                    (last_progress, progress_at) = (p, now);
                } else if now - progress_at >= watchdog_ns {
                    hung = Some((now, sh.beacons.iter().map(Beacon::seen).collect()));
                    sh.request_stop(StoppedBy::Watchdog);
                }
                if sc.on_overflow == Overflow::Error && budget_full.load(Relaxed) {
                    sh.request_stop(StoppedBy::EventBudget);
                }
            }
            if sh.stop.load(Relaxed) && !woke_sockets {
                links.iter().flatten().for_each(Link::shutdown);
                woke_sockets = true;
            }
            let mut slice =
                deadline.map_or(10_000_000, |d| (d - now_ns()).clamp(100_000, 10_000_000));
            if let Some(&(at, _, _)) = due.get(next_sig) {
                slice = slice.min((at - now_ns()).max(1_000));
            }
            let g = sh.finished.lock().unwrap();
            if *g < n {
                let _ = sh
                    .finished_cv
                    .wait_timeout(g, Duration::from_nanos(slice as u64));
            }
        }
        sh.request_stop(StoppedBy::AllDone);
        links.iter().flatten().for_each(Link::shutdown);
        let results: Vec<_> = workers
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("worker panics are caught")
                    .expect("the gate opened")
            })
            .collect();
        let peer_results: Vec<_> = peers.into_iter().filter_map(|h| h.join().ok()).collect();
        Ok((results, peer_results, aborted, sent_ns, hung))
    })
    .map_err(RunError::Failed)?;

    let t0 = sh.t0.load(Relaxed);
    let (mut stats, bufs): (Vec<ThreadStats>, Vec<EventBuf>) = results.into_iter().unzip();
    for st in &mut stats {
        st.start_ns -= t0;
        st.exit_ns -= t0;
    }
    if let Some(e) = stats
        .iter()
        .find_map(|s| s.error.as_ref().map(|e| (s.name.clone(), e.clone())))
    {
        if !aborted {
            return Err(RunError::Failed(format!(
                "thread {:?} failed: {}",
                e.0, e.1
            )));
        }
    }
    let truncated = stats.iter().any(|s| s.events_dropped > 0);
    let stopped_by = StoppedBy::from_u8(sh.stopped_by.load(Relaxed));
    // The reports need the per-thread buffers, before the merge consumes them.
    let halted = if stopped_by == StoppedBy::Watchdog && !aborted {
        let (at, seen) = hung.expect("the watchdog recorded what it saw");
        Some((
            StoppedBy::Watchdog,
            watchdog_report(sc, &stats, &bufs, t0, at, &seen),
        ))
    } else if sc.on_overflow == Overflow::Error && truncated && !aborted {
        Some((StoppedBy::EventBudget, budget_report(sc, &stats, &bufs, t0)))
    } else {
        None
    };
    let merge_start = now_ns();
    let events = Events::merge(bufs, t0);
    let merge_ns = now_ns() - merge_start;
    let mut io = IoLog::default();
    for (i, pings) in peer_results {
        for Ping { sent_ns, rtt_ns } in pings {
            io.thread.push(i as u16);
            io.sent_ns.push(sent_ns);
            io.rtt_ns.push(rtt_ns);
        }
    }
    let end_ns = stats.iter().map(|s| s.exit_ns).max().unwrap_or(0);
    let elapsed_ns = match stopped_by {
        StoppedBy::AllDone => end_ns,
        _ => sh.stop_at.load(Relaxed) - t0,
    };
    let meta = serde_json::json!({
        "scenario": sc.name,
        "gil": sc.gil,
        "threads": n,
        "cores": pl.cores,
        "thread_cores": pl.thread_cores,
        "pin_threads": sc.pin_threads,
        "stop": { "thread": sc.stop.thread, "duration_s": sc.stop.duration_s },
        "stopped_by": stopped_by.name(),
        "elapsed_ns": elapsed_ns,
        "end_ns": end_ns,
        "switches": sh.instr.switches(),
        "tick_ns": sc.tick_ns,
        "spin": { "iters_per_tick": iters_per_tick, "tick_cost_ns": cal.tick_cost_ns(iters_per_tick),
                  "overhead_ns": cal.overhead_ns, "ns_per_iter": cal.ns_per_iter },
        "log": sc.log,
        "max_events": sc.max_events,
        "on_overflow": sc.on_overflow.name(),
        "events_truncated": truncated,
        "events_dropped": stats.iter().map(|s| s.events_dropped).sum::<u64>(),
        "watchdog_s": sc.watchdog_s(),
        "watchdog_default": sc.watchdog_s.is_none(),
        "merge_ns": merge_ns,
        "aborted": aborted,
        "host": host::info(),
        "version": env!("CARGO_PKG_VERSION"),
        "scenario_spec": sc,
        "signals": sc.signals.iter().zip(&signals_sent).map(|(s, sent)| serde_json::json!({
            "at_us": s.at_us, "signum": s.signum, "sent_ns": sent,
        })).collect::<Vec<_>>(),
    });
    let output = RunOutput {
        events,
        threads: stats,
        io,
        meta,
        aborted,
    };
    match halted {
        Some((reason, message)) => Err(RunError::Halted {
            reason,
            message,
            output: Box::new(output),
        }),
        None => Ok(output),
    }
}

/// The last `k` events of a buffer stored before time `until` (absolute ns), in words.
fn last_events(buf: &EventBuf, t0: i64, until: i64, k: usize) -> String {
    if buf.is_empty() && buf.dropped == 0 {
        return "none".into();
    }
    let end = buf.t_ns.partition_point(|&t| t <= until);
    let mut v: Vec<String> = (end.saturating_sub(k)..end)
        .map(|i| {
            let name = crate::log::EVENT_NAMES
                .get(buf.event[i] as usize)
                .copied()
                .unwrap_or("?");
            format!(
                "{:.6} s {name}({})",
                (buf.t_ns[i] - t0) as f64 * 1e-9,
                buf.arg[i]
            )
        })
        .collect();
    if buf.dropped > 0 && buf.first_drop_ns <= until {
        v.push(format!(
            "then {} events not stored (max_events)",
            buf.dropped
        ));
    }
    v.join(", ")
}

/// What the watchdog saw at time `at`: who held the GIL, what each thread was doing, and its
/// last events.
fn watchdog_report(
    sc: &Scenario,
    stats: &[ThreadStats],
    bufs: &[EventBuf],
    t0: i64,
    at: i64,
    seen: &[Seen],
) -> String {
    let names: Vec<String> = sc.threads.iter().map(|t| t.name.clone()).collect();
    let holders: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.gil == GIL_HOLDING)
        .map(|(i, _)| format!("{:?} (thread {i})", names[i]))
        .collect();
    let holder = match (holders.len(), &sc.gil) {
        (0, _) => "no thread held the GIL".to_string(),
        (_, PolicySpec::NoGil(_)) => {
            format!("no GIL (policy nogil); running: {}", holders.join(", "))
        }
        (1, _) => format!("the GIL was held by {}", holders[0]),
        _ => format!("the GIL was held by {} (?)", holders.join(" and ")),
    };
    let mut m = format!(
        "watchdog: no thread made progress for {:.3} s (watchdog_s={}{}), so the run was \
         stopped at {:.3} s; {holder}.",
        sc.watchdog_s(),
        sc.watchdog_s(),
        if sc.watchdog_s.is_none() {
            ", the default"
        } else {
            ""
        },
        (at - t0) as f64 * 1e-9,
    );
    for (i, s) in seen.iter().enumerate() {
        let last = if sc.log {
            last_events(&bufs[i], t0, at, 5)
        } else {
            "not logged (log=False)".into()
        };
        m.push_str(&format!(
            "\n  {:?} (thread {i}): {}; last events: {last}",
            stats[i].name,
            beacon::describe(*s, &names)
        ));
    }
    m.push_str(
        "\nA thread that legitimately goes longer without progress (a long sleep, a slow \
         peer) needs a larger watchdog_s.",
    );
    m
}

/// Which thread filled its share of the event budget first, the counts, and what to do.
fn budget_report(sc: &Scenario, stats: &[ThreadStats], bufs: &[EventBuf], t0: i64) -> String {
    let n = stats.len() as u64;
    let first = bufs
        .iter()
        .enumerate()
        .filter(|(_, b)| b.dropped > 0)
        .min_by_key(|(_, b)| b.first_drop_ns)
        .map(|(i, b)| (i, b.first_drop_ns));
    let stored: u64 = stats.iter().map(|s| s.events).sum();
    let dropped: u64 = stats.iter().map(|s| s.events_dropped).sum();
    let (who, at) = match first {
        Some((i, t)) => (
            format!("thread {:?}", stats[i].name),
            (t - t0) as f64 * 1e-9,
        ),
        None => ("a thread".into(), 0.0),
    };
    format!(
        "event budget exceeded: {who} filled its share of max_events={} ({} events for each of \
         {n} threads) at {at:.3} s, so the run was stopped (on_overflow=\"error\"); {} events \
         were reached: {stored} stored, {dropped} counted but not stored. Raise max_events (at \
         most {} on this machine: half its memory at {EVENT_BYTES} bytes an event), log fewer \
         events (a shorter run, log=False), or give on_overflow=\"truncate\" to keep each \
         thread's first events and let the run go on.",
        sc.max_events,
        sc.max_events / n,
        stored + dropped,
        max_events_allowed(host::memory_bytes()),
    )
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

#[cfg(test)]
mod tests;
