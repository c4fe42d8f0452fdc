//! The controller: the calling thread, once every worker and peer has been released, waits
//! in slices of at most 10 ms for the run to end, and in each slice sends the signals now due,
//! applies the stop rule (all done, `stop.duration_s`; a worker applies `stop.thread` itself),
//! polls its caller's abort, runs the watchdog and the event budget's check, and once the stop
//! flag is up wakes the threads blocked in socket calls.

use super::{Setup, Shared, StoppedBy};
use crate::beacon::{Beacon, Seen};
use crate::clock::now_ns;
use crate::scenario::{Overflow, Scenario};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The longest slice the controller waits before it looks again.
const SLICE_NS: i64 = 10_000_000;

/// What the controller saw while the run went on.
pub struct Watched {
    /// The caller's abort stopped the run.
    pub aborted: bool,
    /// When each of the scenario's signals was sent (ns since t0), in its order; None: not
    /// sent (the run stopped first, or `pthread_kill` failed).
    pub signals_sent: Vec<Option<i64>>,
    /// When the watchdog stopped the run (absolute ns), and each thread's beacon then.
    pub hung: Option<(i64, Vec<Seen>)>,
}

/// Wait until every worker has finished, stopping the run on the way as the rules say; the
/// threads have been released at `sh.t0`.
pub(super) fn supervise<G>(
    setup: &Setup,
    sh: &Shared<G>,
    abort: &mut dyn FnMut() -> bool,
) -> Watched {
    let sc = setup.sc;
    let n = sc.threads.len();
    let t0 = sh.t0.load(Relaxed);
    let deadline = sc.stop.duration_s.map(|d| t0 + (d * 1e9) as i64);
    let mut signals = Signals::new(sc, t0);
    let mut watchdog = Watchdog::new(sc, sh, t0);
    let mut aborted = false;
    let mut woke_sockets = false;
    loop {
        signals.send_due(sh, t0);
        if *sh.finished.lock().unwrap() == n {
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
            watchdog.check(sh);
            if sc.on_overflow == Overflow::Error && setup.budget_full.load(Relaxed) {
                sh.request_stop(StoppedBy::EventBudget);
            }
        }
        if sh.stop.load(Relaxed) && !woke_sockets {
            setup.wake_sockets();
            woke_sockets = true;
        }
        if sh.stop.load(Relaxed) {
            // Every slice until all are joined: a thread that took a post of the stop's and
            // went on to wait again is woken by the next round.
            sh.objects.wake_all(n);
        }
        let mut slice = deadline.map_or(SLICE_NS, |d| (d - now_ns()).clamp(100_000, SLICE_NS));
        if let Some(at) = signals.next_at() {
            slice = slice.min((at - now_ns()).max(1_000));
        }
        let g = sh.finished.lock().unwrap();
        if *g < n {
            let _ = sh
                .finished_cv
                .wait_timeout(g, Duration::from_nanos(slice as u64));
        }
    }
    Watched {
        aborted,
        signals_sent: signals.sent_ns,
        hung: watchdog.hung,
    }
}

/// The scenario's signals, in time order, and which have been sent.
struct Signals {
    /// (due time, signum, index in the scenario's `signals`), sorted.
    due: Vec<(i64, i32, usize)>,
    next: usize,
    sent_ns: Vec<Option<i64>>,
}

impl Signals {
    fn new(sc: &Scenario, t0: i64) -> Self {
        let mut due: Vec<(i64, i32, usize)> = sc
            .signals
            .iter()
            .enumerate()
            .map(|(k, s)| (t0 + s.at_us as i64 * 1000, s.signum, k))
            .collect();
        due.sort();
        Signals {
            sent_ns: vec![None; due.len()],
            due,
            next: 0,
        }
    }

    /// Send every signal now due to the main thread (none once the run is stopping).
    fn send_due<G>(&mut self, sh: &Shared<G>, t0: i64) {
        while self.next < self.due.len()
            && now_ns() >= self.due[self.next].0
            && !sh.stop.load(Relaxed)
        {
            let (_, signum, k) = self.due[self.next];
            let target = sh.main_pthread.load(Relaxed) as libc::pthread_t;
            // SAFETY: the main thread is a scoped thread not yet joined, so its pthread_t
            // is valid (ESRCH at worst, if it has already returned).
            let rc = unsafe { libc::pthread_kill(target, signum) };
            if rc == 0 {
                self.sent_ns[k] = Some(now_ns() - t0);
            }
            self.next += 1;
        }
    }

    /// When the next signal is due (absolute ns).
    fn next_at(&self) -> Option<i64> {
        self.due.get(self.next).map(|&(at, _, _)| at)
    }
}

/// The watchdog: the sum of all beacons' progress, and when it last moved.
struct Watchdog {
    timeout_ns: i64,
    progress: u64,
    moved_at: i64,
    hung: Option<(i64, Vec<Seen>)>,
}

impl Watchdog {
    fn new<G>(sc: &Scenario, sh: &Shared<G>, t0: i64) -> Self {
        Watchdog {
            timeout_ns: (sc.watchdog_s() * 1e9) as i64,
            progress: progress(sh),
            moved_at: t0,
            hung: None,
        }
    }

    /// Stop the run ([`StoppedBy::Watchdog`]) when no thread made progress for the
    /// scenario's `watchdog_s`, recording what each beacon showed then.
    fn check<G>(&mut self, sh: &Shared<G>) {
        let (p, now) = (progress(sh), now_ns());
        if p != self.progress {
            (self.progress, self.moved_at) = (p, now);
        } else if now - self.moved_at >= self.timeout_ns {
            self.hung = Some((now, sh.beacons.iter().map(Beacon::seen).collect()));
            sh.request_stop(StoppedBy::Watchdog);
        }
    }
}

fn progress<G>(sh: &Shared<G>) -> u64 {
    sh.beacons
        .iter()
        .fold(0u64, |a, b| a.wrapping_add(b.progress()))
}
