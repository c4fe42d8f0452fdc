//! The interval GIL of CPython 3.2 and later (the algorithm is unchanged through 3.13).
//!
//! Replicates `Python/ceval_gil.h` (3.2–3.11) / `Python/ceval_gil.c` (3.12, 3.13):
//! - `take_gil`: under `gil->mutex`, while `locked`: save `switch_number`, timed-wait
//!   `interval` µs on `gil->cond` (`COND_TIMED_WAIT`, an absolute `CLOCK_MONOTONIC` deadline);
//!   if the wait timed out, the GIL is still locked and `switch_number` is unchanged, set
//!   `gil_drop_request`. Once free (`_ready`): take `switch_mutex`, set `locked`, bump
//!   `switch_number` if `last_holder` changes, signal `switch_cond`, release `switch_mutex`,
//!   reset a pending drop request, release `gil->mutex`.
//! - `drop_gil`: set `last_holder`; under `gil->mutex` clear `locked` and signal `gil->cond`;
//!   then (FORCE_SWITCHING) if a drop request is pending: under `switch_mutex`, if
//!   `last_holder` is still this thread, reset the request and wait once on `switch_cond`.
//!   A thread that exits releases with `tstate == NULL` and skips that wait.
//! - the eval loop (`eval_breaker` / `_Py_HandlePending`): at a check point, if
//!   `gil_drop_request` is set, `drop_gil` then `take_gil`.
//!
//! Upstream, as checked: CPython main at e5e1c1fabd8b5626f9193e6c61b9d7ceb7fb2f95 (2023-02-24,
//! 3.12.0a5+), `Python/ceval_gil.c` lines 275–315 (`drop_gil`), 342–462 (`take_gil`) and
//! 963–978 (the drop-request branch of `_Py_HandlePending`). The interpreters the model is
//! validated against keep `take_gil`/`drop_gil` in v3.11.7 `Python/ceval_gil.h` (3.11 has the
//! drop-request branch in `Python/ceval.c`, `eval_frame_handle_pending`) and in v3.13.0
//! `Python/ceval_gil.c`; neither tag could be fetched when these lines were checked, so no line
//! range is given for them. Not replicated: the finalization paths (`tstate_must_exit`,
//! bpo-39877, bpo-36475, gh-96387), `async_exc`, and `COMPUTE_EVAL_BREAKER`'s other flags.
//!
//! Ablations: `force_switching = false` removes the switch wait; `dedupe_drop_request = false`
//! removes the `switch_number == saved_switchnum` test (docs/design.md §1, P5); `check_every`
//! is the number of ticks between check points (1: every loop back-edge / call, as 3.10+
//! polls).

use super::{Gil, Knobs, Release, ThreadCx};
use crate::clock::now_ns;
use crate::contract::{SpecError, CHECK_PERIOD_TICKS, INTERVAL_US};
use crate::log::Ev;
use crate::prim::{RawCondvar, RawMutex, Waited};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};

/// Knobs of the interval GIL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalConfig {
    /// `sys.setswitchinterval` in µs (default 5000).
    pub interval_us: u64,
    /// FORCE_SWITCHING (defined in every CPython build): a forced dropper waits for the switch.
    pub force_switching: bool,
    /// The `switch_number` check before setting the drop request.
    pub dedupe_drop_request: bool,
    /// Ticks between check points.
    pub check_every: u32,
}

impl Default for IntervalConfig {
    fn default() -> Self {
        IntervalConfig {
            interval_us: 5000,
            force_switching: true,
            dedupe_drop_request: true,
            check_every: 1,
        }
    }
}

impl Knobs for IntervalConfig {
    fn validate(&self) -> Result<(), SpecError> {
        INTERVAL_US.check("gil.interval_us", self.interval_us)?;
        CHECK_PERIOD_TICKS.check("gil.check_every", self.check_every.into())
    }

    /// A waiter's timed wait.
    fn longest_wait_us(&self) -> u64 {
        self.interval_us
    }
}

const NOBODY: u64 = u64::MAX;

/// CPython's `struct _gil_runtime_state` (3.11 `Include/internal/pycore_gil.h`; the same fields,
/// in the same order, from 3.2 to 3.13), laid out as the interpreter lays it out, primitives
/// inline, so the fields share cache lines as they do there: `switch_number` with the head of
/// `cond`, `cond`'s signal counters with `mutex` (x86-64: 208 bytes). Which waiter gets the GIL
/// is decided by sub-microsecond races between a waiter leaving and re-entering `cond` and the
/// holder's signal, where a line moved between cores counts; on the 2-core VM the layout's
/// own effect was within the host's drift (docs/validation/many-threads.md). Boxed before the
/// primitives are initialised: never moves.
#[repr(C)]
struct GilState {
    /// `interval` (µs): read from `cfg`; kept for the layout.
    interval: u64,
    /// `last_holder` (a thread state's address there; the thread's index here).
    last_holder: AtomicU64,
    /// `locked`: only read and written with `mutex` held (atomic to share it safely; CPython's
    /// is atomic because `drop_gil`'s sanity check reads it without the mutex).
    locked: AtomicI32,
    /// `switch_number`: protected by `mutex`.
    switch_number: AtomicU64,
    cond: RawCondvar,
    mutex: RawMutex,
    switch_cond: RawCondvar,
    switch_mutex: RawMutex,
}

/// `gil_drop_request` (with `eval_breaker`, which folds it in): part of the interpreter's
/// `struct _ceval_state`, away from the GIL's struct. The holder reads it at every check point.
#[repr(C, align(64))]
struct EvalBreaker {
    drop_request: AtomicBool,
}

/// CPython 3.2+'s GIL.
pub struct IntervalGil {
    cfg: IntervalConfig,
    st: Box<GilState>,
    eval: Box<EvalBreaker>,
}

impl IntervalGil {
    pub fn new(cfg: IntervalConfig) -> Self {
        let st = Box::new(GilState {
            interval: cfg.interval_us,
            last_holder: AtomicU64::new(NOBODY),
            locked: AtomicI32::new(0),
            switch_number: AtomicU64::new(0),
            cond: RawCondvar::new(),
            mutex: RawMutex::new(),
            switch_cond: RawCondvar::new(),
            switch_mutex: RawMutex::new(),
        });
        // SAFETY: boxed, so they never move, and not shared yet.
        unsafe {
            st.cond.init();
            st.mutex.init();
            st.switch_cond.init();
            st.switch_mutex.init();
        }
        IntervalGil {
            cfg,
            st,
            eval: Box::new(EvalBreaker {
                drop_request: AtomicBool::new(false),
            }),
        }
    }
}

impl Gil for IntervalGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        let me = cx.idx as u64;
        self.st.mutex.lock_in(&mut cx.calls);
        while self.st.locked.load(Relaxed) != 0 {
            let saved = self.st.switch_number.load(Relaxed);
            let waited =
                self.st
                    .cond
                    .wait_us_in(&self.st.mutex, self.cfg.interval_us.max(1), &mut cx.calls);
            let still_locked = self.st.locked.load(Relaxed) != 0;
            match waited {
                Waited::TimedOut => {
                    let no_switch = !self.cfg.dedupe_drop_request
                        || self.st.switch_number.load(Relaxed) == saved;
                    let ask = still_locked && no_switch;
                    if ask {
                        // SET_GIL_DROP_REQUEST first, then the clock: as soon after the
                        // timeout as CPython sets it.
                        self.eval.drop_request.store(true, Relaxed);
                    }
                    let t = now_ns();
                    cx.stats.timeouts += 1;
                    cx.event_at(t, Ev::Timeout, saved as i64);
                    if ask {
                        cx.stats.drop_requests += 1;
                        cx.event_at(t, Ev::DropRequest, saved as i64);
                    }
                }
                Waited::Woken if still_locked => cx.futile(1),
                Waited::Woken => {}
            }
        }
        // _ready:
        if self.cfg.force_switching {
            self.st.switch_mutex.lock_in(&mut cx.calls);
        }
        self.st.locked.store(1, Relaxed);
        if self.st.last_holder.load(Relaxed) != me {
            self.st.last_holder.store(me, Relaxed);
            self.st
                .switch_number
                .store(self.st.switch_number.load(Relaxed) + 1, Relaxed);
        }
        if self.cfg.force_switching {
            self.st.switch_cond.signal_in(&mut cx.calls);
            self.st.switch_mutex.unlock_in(&mut cx.calls);
        }
        if self.eval.drop_request.load(Relaxed) {
            self.eval.drop_request.store(false, Relaxed); // RESET_GIL_DROP_REQUEST
        }
        let t = now_ns(); // while gil->mutex is held: see ThreadCx::acquired_at
        self.st.mutex.unlock_in(&mut cx.calls);
        cx.acquired_at(t);
    }

    fn release(&self, cx: &mut ThreadCx, why: Release) {
        let me = cx.idx as u64;
        cx.releasing();
        self.st.last_holder.store(me, Relaxed);
        self.st.mutex.lock_in(&mut cx.calls);
        self.st.locked.store(0, Relaxed);
        self.st.cond.signal_in(&mut cx.calls);
        self.st.mutex.unlock_in(&mut cx.calls);
        if self.cfg.force_switching && why != Release::Exit && self.eval.drop_request.load(Relaxed)
        {
            self.st.switch_mutex.lock_in(&mut cx.calls);
            // Not switched yet => wait (once, as CPython: no loop around COND_WAIT).
            if self.st.last_holder.load(Relaxed) == me {
                self.eval.drop_request.store(false, Relaxed);
                cx.stats.switch_waits += 1;
                cx.event(Ev::SwitchWait, 0);
                self.st
                    .switch_cond
                    .wait_in(&self.st.switch_mutex, &mut cx.calls);
                cx.event(Ev::SwitchDone, 0);
            }
            self.st.switch_mutex.unlock_in(&mut cx.calls);
        }
    }

    #[inline(always)]
    fn check_every(&self) -> u32 {
        self.cfg.check_every
    }

    #[inline(always)]
    fn must_drop(&self, _cx: &ThreadCx) -> bool {
        self.eval.drop_request.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_exclusive, contend};
    use super::*;

    #[test]
    fn exclusive_with_forced_switches() {
        let gil = IntervalGil::new(IntervalConfig {
            interval_us: 200,
            ..Default::default()
        });
        let res = contend(&gil, 3, 400_000);
        assert_exclusive(&res);
        for (_, _, ticks) in &res {
            assert_eq!(*ticks, 400_000);
        }
    }

    #[test]
    fn single_thread_never_times_out() {
        let gil = IntervalGil::new(IntervalConfig {
            interval_us: 100,
            ..Default::default()
        });
        let res = contend(&gil, 1, 100_000);
        assert_eq!(res[0].0.acquisitions, 1);
        assert_eq!(res[0].0.timeouts, 0);
        assert_eq!(res[0].0.forced_drops, 0);
    }

    #[test]
    fn kept_events_reach_the_log_in_time_order_a_drop_request_at_its_timeouts_time() {
        // ThreadCx::event keeps events and pushes them at the next acquisition: each
        // thread's log must still be in time order, and a drop request is logged with the
        // time of the timeout that decided it (one clock read, after the request was set).
        let gil = IntervalGil::new(IntervalConfig {
            interval_us: 100,
            ..Default::default()
        });
        // Every run's logs are checked; a drop request must come in one of 3 runs of 1 M ticks
        // (about 13 ms a thread on the 2-core VM). With one run of 300 000 ticks, a CI run on
        // that loaded VM once saw none: its threads ran nearly one after another.
        let mut asked = 0;
        for _ in 0..3 {
            let res = contend(&gil, 3, 1_000_000);
            for (stats, log, _) in &res {
                for i in 1..log.len() {
                    assert!(
                        log.t_ns[i] >= log.t_ns[i - 1],
                        "event {i} out of time order"
                    );
                    if log.event[i] == Ev::DropRequest as i8 {
                        assert_eq!(log.event[i - 1], Ev::Timeout as i8);
                        assert_eq!(log.t_ns[i], log.t_ns[i - 1]);
                        asked += 1;
                    }
                }
                let forced = (0..log.len()).filter(|&i| log.event[i] == Ev::ForcedDrop as i8);
                assert_eq!(forced.clone().count() as u64, stats.forced_drops);
                for i in forced {
                    // logged by `releasing`, just before the release, at the same time
                    assert_eq!(log.event[i + 1], Ev::Release as i8);
                    assert_eq!(log.t_ns[i + 1], log.t_ns[i]);
                }
            }
            if asked > 0 {
                break;
            }
        }
        assert!(
            asked > 0,
            "no drop request in 3 runs of 3 threads x 1 000 000 ticks"
        );
    }

    #[test]
    fn drop_request_set_only_after_a_timeout_without_switch() {
        let gil = IntervalGil::new(IntervalConfig {
            interval_us: 100,
            ..Default::default()
        });
        let res = contend(&gil, 3, 300_000);
        for (_, log, _) in &res {
            let mut last_timeout: Option<i64> = None;
            for i in 0..log.len() {
                if log.event[i] == Ev::Timeout as i8 {
                    last_timeout = Some(log.arg[i]);
                } else if log.event[i] == Ev::DropRequest as i8 {
                    assert_eq!(
                        last_timeout,
                        Some(log.arg[i]),
                        "drop request without its timeout"
                    );
                }
            }
        }
    }
}
