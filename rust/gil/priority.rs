//! Beazley's priority GIL: the interval GIL plus two priority levels.
//!
//! Source: David Beazley, "Understanding the Python GIL" (PyCon 2010, the slide "A Possible
//! Solution") and his follow-up post "Revisiting thread priorities and the new GIL" (2010),
//! with the experimental patch discussed in CPython issue 7946 (the convoy-effect issue):
//! - a thread preempted by a timeout (forced out by a drop request) is demoted;
//! - a thread that suspends early (gives the GIL up around a blocking call) is promoted;
//! - high-priority threads always preempt low-priority ones: a high-priority waiter that
//!   finds a low-priority holder sets the drop request at once ([`Ev::Preempt`]) instead of
//!   waiting out the interval, and a released GIL goes to a high-priority waiter first (each
//!   level waits on its own condition variable, and a low waiter defers while high ones wait).
//!
//! Everything else is the interval GIL's (`take_gil`'s timed wait and drop request with the
//! `switch_number` check, the holder's poll at each check point, FORCE_SWITCHING's wait after
//! a forced drop). Beazley's post leaves open
//! what a new thread starts as; here every thread starts high, so it must be forced out once
//! to count as CPU-bound.
//!
//! Upstream: none in CPython (the proposal was never merged); the interval-GIL part follows
//! the revision and line ranges named in `interval.rs`.

use super::locked::Locked;
use super::{Gil, Knobs, Release, ThreadCx};
use crate::clock::now_ns;
use crate::contract::{SpecError, CHECK_PERIOD_TICKS, INTERVAL_US};
use crate::log::Ev;
use crate::prim::{Condvar, Waited};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Knobs of the priority GIL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityConfig {
    /// The interval (µs) a waiter of equal priority waits before it asks for a drop.
    pub interval_us: u64,
    /// Ticks between check points.
    pub check_every: u32,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        PriorityConfig {
            interval_us: 5000,
            check_every: 1,
        }
    }
}

impl Knobs for PriorityConfig {
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

struct State {
    locked: bool,
    holder: u32,
    holder_high: bool,
    switch_number: u64,
    last_holder: u32,
    waiting_high: u32,
    waiting: u32,
    /// Per thread: high priority?
    high: Vec<bool>,
}

/// The priority GIL.
pub struct PriorityGil {
    cfg: PriorityConfig,
    st: Locked<State>,
    cond_high: Condvar,
    cond_low: Condvar,
    /// FORCE_SWITCHING's `switch_cond` (under the same mutex here).
    switch_cond: Condvar,
    drop_request: AtomicBool,
}

impl PriorityGil {
    pub fn new(cfg: PriorityConfig, threads: usize) -> Self {
        PriorityGil {
            cfg,
            st: Locked::new(State {
                locked: false,
                holder: NOBODY,
                holder_high: false,
                switch_number: 0,
                last_holder: NOBODY,
                waiting_high: 0,
                waiting: 0,
                high: vec![true; threads],
            }),
            cond_high: Condvar::new(),
            cond_low: Condvar::new(),
            switch_cond: Condvar::new(),
            drop_request: AtomicBool::new(false),
        }
    }

    fn set_priority(&self, cx: &mut ThreadCx, high: bool) {
        let mut st = self.st.lock();
        let me = cx.idx as usize;
        if st.high[me] != high {
            st.high[me] = high;
            drop(st);
            if high {
                cx.event(Ev::Promote, 1);
            } else {
                cx.event(Ev::Demote, 0);
            }
        }
    }
}

impl Gil for PriorityGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        let me = cx.idx as u32;
        let mut st = self.st.lock();
        let high = st.high[me as usize];
        if high {
            st.waiting_high += 1;
        }
        st.waiting += 1;
        let mut futile = 0;
        // A low waiter also defers to any high waiter, even with the GIL free.
        while st.locked || (!high && st.waiting_high > 0) {
            if st.locked && high && !st.holder_high && !self.drop_request.load(Relaxed) {
                self.drop_request.store(true, Relaxed);
                cx.stats.drop_requests += 1;
                let holder = st.holder as i64;
                cx.event(Ev::Preempt, holder);
            }
            let saved = st.switch_number;
            let cv = if high {
                &self.cond_high
            } else {
                &self.cond_low
            };
            match st.wait_us(cv, self.cfg.interval_us.max(1)) {
                Waited::TimedOut => {
                    cx.stats.timeouts += 1;
                    cx.event(Ev::Timeout, saved as i64);
                    if st.locked && st.switch_number == saved {
                        self.drop_request.store(true, Relaxed);
                        cx.stats.drop_requests += 1;
                        cx.event(Ev::DropRequest, saved as i64);
                    }
                }
                Waited::Woken if st.locked => futile += 1,
                Waited::Woken => {}
            }
        }
        if high {
            st.waiting_high -= 1;
        }
        st.waiting -= 1;
        st.locked = true;
        st.holder = me;
        st.holder_high = high;
        if st.last_holder != me {
            st.last_holder = me;
            st.switch_number += 1;
            self.switch_cond.signal();
        }
        self.drop_request.store(false, Relaxed);
        cx.futile(futile); // before the time is read: events stay in time order
        let t = now_ns();
        drop(st);
        cx.acquired_at(t);
    }

    fn release(&self, cx: &mut ThreadCx, why: Release) {
        match why {
            Release::Poll => self.set_priority(cx, false),
            Release::Blocking => self.set_priority(cx, true),
            Release::Exit => {}
        }
        cx.releasing();
        let me = cx.idx as u32;
        let mut st = self.st.lock();
        st.locked = false;
        st.holder = NOBODY;
        st.last_holder = me;
        if st.waiting_high > 0 {
            self.cond_high.signal();
        } else {
            self.cond_low.signal();
        }
        // FORCE_SWITCHING, as in the interval GIL this builds on: a thread forced out waits
        // (once) until another has taken the GIL, so it cannot retake it at once.
        if why == Release::Poll && st.waiting > 0 && st.last_holder == me {
            cx.stats.switch_waits += 1;
            cx.event(Ev::SwitchWait, 0);
            st.wait(&self.switch_cond);
            cx.event(Ev::SwitchDone, 0);
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
    fn exclusive_and_cpu_threads_get_demoted() {
        let gil = PriorityGil::new(
            PriorityConfig {
                interval_us: 50,
                ..Default::default()
            },
            3,
        );
        let res = contend(&gil, 3, 1_000_000);
        assert_exclusive(&res);
        let demotes: usize = res
            .iter()
            .map(|(_, log, _)| {
                (0..log.len())
                    .filter(|&i| log.event[i] == Ev::Demote as i8)
                    .count()
            })
            .sum();
        let forced: u64 = res.iter().map(|(s, _, _)| s.forced_drops).sum();
        assert!(forced > 0, "CPU threads were never forced out");
        assert!(demotes > 0 && demotes as u64 <= forced);
    }
}
