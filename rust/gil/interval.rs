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
use crate::prim::{Condvar, Mutex, Waited};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

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

const NOBODY: u32 = u32::MAX;

/// CPython 3.2+'s GIL.
pub struct IntervalGil {
    cfg: IntervalConfig,
    mutex: Mutex,
    cond: Condvar,
    switch_mutex: Mutex,
    switch_cond: Condvar,
    /// Only read and written with `mutex` held (an atomic only to share it safely). CPython's
    /// `gil->locked` is atomic because `drop_gil`'s sanity check reads it without the mutex;
    /// the replica has no such read.
    locked: AtomicBool,
    last_holder: AtomicU32,
    /// Protected by `mutex` (an atomic only to share it safely).
    switch_number: AtomicU64,
    /// `gil_drop_request` (part of `eval_breaker`): read by the holder at each check point.
    drop_request: AtomicBool,
}

impl IntervalGil {
    pub fn new(cfg: IntervalConfig) -> Self {
        IntervalGil {
            cfg,
            mutex: Mutex::new(),
            cond: Condvar::new(),
            switch_mutex: Mutex::new(),
            switch_cond: Condvar::new(),
            locked: AtomicBool::new(false),
            last_holder: AtomicU32::new(NOBODY),
            switch_number: AtomicU64::new(0),
            drop_request: AtomicBool::new(false),
        }
    }

    /// `SET_GIL_DROP_REQUEST`.
    fn set_drop_request(&self, cx: &mut ThreadCx, saved: u64) {
        self.drop_request.store(true, Relaxed);
        cx.stats.drop_requests += 1;
        cx.event(Ev::DropRequest, saved as i64);
    }
}

impl Gil for IntervalGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        let me = cx.idx as u32;
        self.mutex.lock();
        while self.locked.load(Relaxed) {
            let saved = self.switch_number.load(Relaxed);
            let waited = self.cond.wait_us(&self.mutex, self.cfg.interval_us.max(1));
            let still_locked = self.locked.load(Relaxed);
            match waited {
                Waited::TimedOut => {
                    cx.stats.timeouts += 1;
                    cx.event(Ev::Timeout, saved as i64);
                    let no_switch =
                        !self.cfg.dedupe_drop_request || self.switch_number.load(Relaxed) == saved;
                    if still_locked && no_switch {
                        self.set_drop_request(cx, saved);
                    }
                }
                Waited::Woken if still_locked => cx.futile(1),
                Waited::Woken => {}
            }
        }
        // _ready:
        if self.cfg.force_switching {
            self.switch_mutex.lock();
        }
        self.locked.store(true, Relaxed);
        if self.last_holder.load(Relaxed) != me {
            self.last_holder.store(me, Relaxed);
            self.switch_number
                .store(self.switch_number.load(Relaxed) + 1, Relaxed);
        }
        if self.cfg.force_switching {
            self.switch_cond.signal();
            self.switch_mutex.unlock();
        }
        if self.drop_request.load(Relaxed) {
            self.drop_request.store(false, Relaxed); // RESET_GIL_DROP_REQUEST
        }
        let t = now_ns(); // while gil->mutex is held: see ThreadCx::acquired_at
        self.mutex.unlock();
        cx.acquired_at(t);
    }

    fn release(&self, cx: &mut ThreadCx, why: Release) {
        let me = cx.idx as u32;
        cx.releasing();
        self.last_holder.store(me, Relaxed);
        self.mutex.lock();
        self.locked.store(false, Relaxed);
        self.cond.signal();
        self.mutex.unlock();
        if self.cfg.force_switching && why != Release::Exit && self.drop_request.load(Relaxed) {
            self.switch_mutex.lock();
            // Not switched yet => wait (once, as CPython: no loop around COND_WAIT).
            if self.last_holder.load(Relaxed) == me {
                self.drop_request.store(false, Relaxed);
                cx.stats.switch_waits += 1;
                cx.event(Ev::SwitchWait, 0);
                self.switch_cond.wait(&self.switch_mutex);
                cx.event(Ev::SwitchDone, 0);
            }
            self.switch_mutex.unlock();
        }
    }

    #[inline(always)]
    fn check_every(&self) -> u32 {
        self.cfg.check_every
    }

    #[inline(always)]
    fn must_drop(&self, _cx: &ThreadCx) -> bool {
        self.drop_request.load(Relaxed)
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
