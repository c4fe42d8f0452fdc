//! A fair FIFO GIL: a ticket hand-off, the baseline against which the others' fairness is
//! judged. Not a CPython design.
//!
//! Waiters queue in arrival order, each on its own condition variable. Whoever releases hands
//! the GIL straight to the head of the queue (no race to retake it, so no futile wake-ups), and
//! the holder gives way at each check point where someone waits (after holding at least
//! `min_hold_us`), then queues at the tail. A thread that returns from a blocking call queues
//! like everyone else.
//!
//! Upstream: none (no CPython code is mirrored).

use super::locked::Locked;
use super::{Gil, Knobs, Release, ThreadCx};
use crate::clock::now_ns;
use crate::contract::{SpecError, CHECK_PERIOD_TICKS, MIN_HOLD_US};
use crate::prim::Condvar;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Knobs of the FIFO GIL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FifoConfig {
    /// Ticks between check points (2.7's check interval by default).
    pub check_every: u32,
    /// The holder gives way only after holding this long (0: at the first check point).
    pub min_hold_us: u64,
}

impl Default for FifoConfig {
    fn default() -> Self {
        FifoConfig {
            check_every: 100,
            min_hold_us: 0,
        }
    }
}

impl Knobs for FifoConfig {
    fn validate(&self) -> Result<(), SpecError> {
        MIN_HOLD_US.check("gil.min_hold_us", self.min_hold_us)?;
        CHECK_PERIOD_TICKS.check("gil.check_every", self.check_every.into())
    }

    /// The holder's least hold, which a waiter waits out.
    fn longest_wait_us(&self) -> u64 {
        self.min_hold_us
    }
}

const NOBODY: u32 = u32::MAX;

struct State {
    owner: u32,
    queue: VecDeque<u32>,
}

/// The FIFO GIL.
pub struct FifoGil {
    cfg: FifoConfig,
    st: Locked<State>,
    conds: Vec<Condvar>,
    /// Queue length, read by the holder at check points without the mutex.
    waiting: AtomicU32,
}

impl FifoGil {
    pub fn new(cfg: FifoConfig, threads: usize) -> Self {
        FifoGil {
            cfg,
            st: Locked::new(State {
                owner: NOBODY,
                queue: VecDeque::with_capacity(threads),
            }),
            conds: (0..threads).map(|_| Condvar::new()).collect(),
            waiting: AtomicU32::new(0),
        }
    }
}

impl Gil for FifoGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        let me = cx.idx as u32;
        let mut st = self.st.lock();
        if st.owner == NOBODY && st.queue.is_empty() {
            st.owner = me;
        } else {
            st.queue.push_back(me);
            self.waiting.store(st.queue.len() as u32, Relaxed);
            let mut futile = 0;
            while st.owner != me {
                st.wait(&self.conds[me as usize]);
                if st.owner != me {
                    futile += 1; // spurious: glibc allows them, rarely
                }
            }
            drop(st);
            cx.futile(futile);
            let t = now_ns();
            cx.acquired_at(t);
            return;
        }
        let t = now_ns();
        drop(st);
        cx.acquired_at(t);
    }

    fn release(&self, cx: &mut ThreadCx, _why: Release) {
        cx.releasing();
        let mut st = self.st.lock();
        match st.queue.pop_front() {
            Some(next) => {
                st.owner = next;
                self.waiting.store(st.queue.len() as u32, Relaxed);
                self.conds[next as usize].signal();
            }
            None => st.owner = NOBODY,
        }
    }

    #[inline(always)]
    fn check_every(&self) -> u32 {
        self.cfg.check_every
    }

    /// Someone waits, and the holder has held at least `min_hold_us`.
    #[inline(always)]
    fn must_drop(&self, cx: &ThreadCx) -> bool {
        self.waiting.load(Relaxed) > 0
            && (self.cfg.min_hold_us == 0
                || now_ns() - cx.acquired_ns() >= self.cfg.min_hold_us as i64 * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_exclusive, contend};
    use super::*;
    use crate::log::Ev;

    #[test]
    fn exclusive_and_round_robin() {
        let gil = FifoGil::new(FifoConfig::default(), 3);
        let res = contend(&gil, 3, 100_000);
        assert_exclusive(&res);
        // Served in arrival order: with three CPU threads always queued, the holders cycle,
        // so no thread holds twice in a row once all three are in the queue.
        let mut holds: Vec<(i64, usize)> = Vec::new();
        for (k, (_, log, _)) in res.iter().enumerate() {
            for i in 0..log.len() {
                if log.event[i] == Ev::Acquire as i8 {
                    holds.push((log.t_ns[i], k));
                }
            }
        }
        holds.sort();
        let repeats = holds.windows(2).filter(|w| w[0].1 == w[1].1).count();
        assert!(
            repeats <= 3,
            "{repeats} back-to-back holds by the same thread"
        );
        let futile: u64 = res.iter().map(|(s, _, _)| s.futile_wakeups).sum();
        assert!(
            futile <= 3,
            "direct hand-off should not wake threads for nothing ({futile})"
        );
    }
}
