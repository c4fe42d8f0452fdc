//! A worker's thread (started by `start.rs`) until it is joined: its signal mask and name, its
//! pinning, the start gate, its program under the GIL ([`Worker`]), the row of `threads` it
//! hands back.

use super::peer::sleep_until_or_stop;
use super::worker::{Flow, Worker};
use super::{spin, Setup, Shared, StoppedBy, ThreadStats};
use crate::affinity;
use crate::beacon::Doing;
use crate::clock::now_ns;
use crate::gil::{Gil, Release, ThreadCx};
use crate::log::{Ev, EventBuf};
use crate::prim::counts;
use crate::rusage;
use crate::signals;
use std::sync::atomic::Ordering::Relaxed;

/// What a worker hands back: its row of `threads` and its events (None: the gate was
/// cancelled before the start).
pub type WorkerEnd = Option<(ThreadStats, EventBuf)>;

/// Scenario thread `i`, whose thread is called `name`: every signal blocked (so the host's Ctrl-C reaches the host's own thread) but
/// the scenario's in the main thread, pinned; at the gate's opening it logs `start`, runs its
/// program holding the GIL (a panic is caught and becomes its error), gives the GIL up, logs
/// `exit` and hands back its counters and events. None: the gate was cancelled.
pub(super) fn body<G: Gil>(setup: &Setup, sh: &Shared<G>, i: usize, name: &str) -> WorkerEnd {
    let (sc, spec, core) = (setup.sc, &setup.sc.threads[i], setup.pl.thread_cores[i]);
    affinity::block_signals();
    if let (0, Some(sr)) = (i, &sh.signals) {
        // The main thread alone receives the scenario's signals.
        signals::unblock(&sr.signums());
        // SAFETY: pthread_self has no preconditions.
        sh.main_pthread
            .store(unsafe { libc::pthread_self() } as u64, Relaxed);
    }
    affinity::set_name(name);
    let pin_err = if sc.pin_threads {
        affinity::pin_current(&[core])
    } else {
        affinity::pin_current(&setup.pl.cores)
    }
    .err();
    let allowed = affinity::allowed_cores();
    let cpu_seen = crate::log::current_cpu();
    counts::reset();
    let ru0 = rusage::thread();
    let log = EventBuf::new(setup.per_thread_cap, sc.log).with_full_flag(setup.budget_full.clone());
    let mut cx = ThreadCx::new(i as u16, log, &sh.instr, &sh.beacons[i]);
    cx.signal_pending = sh.signals.as_ref().map(|s| &s.pending.flag);
    let mut w = Worker {
        iters_per_tick: setup.iters_per_tick,
        chain: spin::SEED,
        sock: setup.links[i].as_ref().map(|l| &l.thread_end),
        file: setup.files[i].as_ref(),
        file_at: 0,
        buf: Vec::new(),
        bytes_sent: 0,
        bytes_received: 0,
        handled: 0,
        return_cost: &sc.return_cost,
    };
    if !setup.gate.arrive_and_wait() {
        return None;
    }
    // A late start cut by the stop runs nothing: the thread logs start and exit (stopped).
    let cut =
        spec.start_us > 0 && !sleep_until_or_stop(now_ns() + spec.start_us as i64 * 1000, &sh.stop);
    let start = now_ns();
    // The start event's arg: the core pinned to; -1 unpinned.
    let home = if sc.pin_threads { core as i64 } else { -1 };
    cx.log.push(start, Ev::Start, home);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if pin_err.is_some() || cut {
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
    cx.flush(); // the events still kept in the context (ThreadCx::event)
    cx.log.push(exit, Ev::Exit, stopped as i64);
    sh.done[i].post();
    let error = match outcome {
        Err(p) => Some(panic_text(&p)),
        Ok(_) => pin_err,
    };
    if error.is_some() {
        sh.request_stop(StoppedBy::Abort);
    }
    if sc.stop.thread.as_deref() == Some(spec.name.as_str()) {
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
        prim: counts::snapshot().plus(&cx.calls),
        start_ns: start,
        exit_ns: exit,
        stopped,
        events: cx.log.len() as u64,
        events_dropped: cx.log.dropped,
        bytes_sent: w.bytes_sent,
        bytes_received: w.bytes_received,
        peer_reads: 0,
        error,
    };
    *sh.finished.lock().unwrap() += 1;
    sh.finished_cv.notify_all();
    Some((stats, cx.log))
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
