//! Nir Aides' BFS GIL: the GIL scheduled like Con Kolivas' Brain Fuck Scheduler.
//!
//! Source: Nir Aides' patch in CPython issue 7946 (2010; "bfs.patch" and its revisions), as its
//! discussion describes it; the patch itself was not reachable when this was written, so this
//! is a reconstruction of the mechanism, knob by knob (compared with a port of the patch
//! afterwards: see "Upstream" below):
//! - *virtual clock*: advances only while some thread holds the GIL (interpreter time);
//! - *slices*: a thread may hold for `slice_us` of that time before it can be preempted; a
//!   thread that has used its slice up gets a fresh one and a new *virtual deadline* of
//!   now + `slice_us` × `deadline_factor` (10 ms × 8 by default). A thread that gives the GIL
//!   up before its slice ends (an I/O thread) keeps its deadline, so it is usually earlier
//!   than a CPU-bound thread's, which is renewed every slice;
//! - *earliest deadline first*: waiters sleep each on its own condition variable; a preempted
//!   holder hands the GIL straight to the waiter with the earliest deadline (expired deadlines,
//!   being the earliest, first), so it cannot retake it; a GIL given up around a blocking call
//!   is left free and the earliest waiter woken, and a thread that comes back with a still
//!   earlier deadline (an I/O thread) takes it without waiting;
//! - *preemption through the drop request*: a waiter whose deadline is earlier than the
//!   holder's sets the drop request at once ([`Ev::Preempt`]); otherwise waiters sleep in timed
//!   waits of `slice_us` × the number of waiters and, on waking, set the drop request if the
//!   holder has used its slice up;
//! - the holder polls the drop request at each check point, as the interval GIL does.
//!
//! Upstream (compared, not mirrored): Aides' `Python/bfs.c` as ported to CPython 3.11-dev in
//! github.com/JuliaPoo/cpython, branch `bfs`, commit d09535b76aec818ec551b53756ba22b04f0ff5de
//! (2022-03-26, "barebones minimum required from bfs patch"): `bfs_find_task` lines 304–325,
//! `_bfs_timed_wait` 330–348, `bfs_schedule` 365–461, `_bfs_yield` 465–516, `bfs_checkpoint`
//! 534–546; `rr_interval` 10 ms and `DEADLINE_FACTOR` 8 match the defaults here. Where this
//! reconstruction differs from that source:
//! - *urgency*: bfs.c preempts when the waiter's deadline is `<=` the running thread's and the
//!   running thread's deadline has not expired (396–398); here `<`, with no expiry test;
//! - *a waiter that is not urgent*: bfs.c at once flags the holder to check its own slice at
//!   its next check point (`bfs_check_depleted`, 413–417), and again whenever a timed wait of
//!   waiters × 10 ms × 0.55 runs out (334–347); here the waiter waits `slice_us` × waiters and
//!   then itself compares the holder's time with its slice before setting the drop request;
//! - *choice of the next thread*: bfs.c scans the queue in arrival order and takes the first
//!   waiter whose deadline has expired, else the earliest (FIFO among expired, 314–322); here
//!   the earliest deadline overall, ties by arrival;
//! - *clock*: bfs.c caps each holding period's contribution to the interpreter clock at 10 ms
//!   (`_bfs_diff_ts`, 353–361; TSC or `gettimeofday`); here uncapped `CLOCK_MONOTONIC` time;
//! - *slice refill*: bfs.c renews a used-up slice and its deadline when the thread next asks
//!   to run (`bfs_schedule`, 382–385); here when it releases;
//! - *release*: bfs.c's yield always names the earliest waiter the next owner and signals it,
//!   around a blocking call too, but after a blocking call's yield lets an urgent arriving
//!   thread snatch the GIL before that waiter runs (`bfs_thread_prev`, 400–403, 486–490; the
//!   woken waiter spins up to 12 µs to allow it, 427–439); here a blocking release leaves the
//!   GIL free and wakes the earliest waiter, and a returning thread takes it only as the
//!   earliest waiter itself;
//! - *force switch*: bfs.c's yielding thread waits until the next owner runs when its own
//!   slice is used up, the next one's deadline has expired or is no later than its own
//!   (499–510), around blocking calls too; here there is no such wait (a preempted holder
//!   hands the GIL over directly instead).

use super::locked::Locked;
use super::{Gil, Knobs, Release, ThreadCx};
use crate::clock::now_ns;
use crate::contract::{SpecError, CHECK_PERIOD_TICKS, DEADLINE_FACTOR, INTERVAL_US};
use crate::log::Ev;
use crate::prim::{Condvar, Waited};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Knobs of the BFS GIL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfsConfig {
    /// Time slice in µs of interpreter time (default 10 000).
    pub slice_us: u64,
    /// Virtual deadline = now + slice × this (default 8).
    pub deadline_factor: u32,
    /// Ticks between check points.
    pub check_every: u32,
}

impl Default for BfsConfig {
    fn default() -> Self {
        BfsConfig {
            slice_us: 10_000,
            deadline_factor: 8,
            check_every: 1,
        }
    }
}

impl Knobs for BfsConfig {
    fn validate(&self) -> Result<(), SpecError> {
        INTERVAL_US.check("gil.slice_us", self.slice_us)?;
        DEADLINE_FACTOR.check("gil.deadline_factor", self.deadline_factor.into())?;
        CHECK_PERIOD_TICKS.check("gil.check_every", self.check_every.into())
    }

    /// A slice: a waiter's timed wait is a slice per waiter, and it asks for the GIL only
    /// once the holder's slice is used up.
    fn longest_wait_us(&self) -> u64 {
        self.slice_us
    }
}

const NOBODY: u32 = u32::MAX;

struct State {
    owner: u32,
    /// Virtual time accumulated by finished holding periods.
    vclock: i64,
    /// Real time the current holding period began.
    held_since: i64,
    deadline: Vec<i64>,
    /// Interpreter time left in each thread's slice.
    slice_left: Vec<i64>,
    waiting: Vec<u32>,
}

impl State {
    /// The waiter with the earliest deadline (ties: arrival order).
    fn earliest(&self) -> Option<u32> {
        self.waiting
            .iter()
            .enumerate()
            .min_by_key(|&(k, &w)| (self.deadline[w as usize], k))
            .map(|(_, &w)| w)
    }
}

/// The BFS GIL.
pub struct BfsGil {
    cfg: BfsConfig,
    st: Locked<State>,
    conds: Vec<Condvar>,
    drop_request: AtomicBool,
}

impl BfsGil {
    pub fn new(cfg: BfsConfig, threads: usize) -> Self {
        let slice = cfg.slice_us as i64 * 1000;
        let horizon = slice * cfg.deadline_factor as i64;
        BfsGil {
            st: Locked::new(State {
                owner: NOBODY,
                vclock: 0,
                held_since: 0,
                deadline: vec![horizon; threads],
                slice_left: vec![slice; threads],
                waiting: Vec::with_capacity(threads),
            }),
            conds: (0..threads).map(|_| Condvar::new()).collect(),
            drop_request: AtomicBool::new(false),
            cfg,
        }
    }

    fn slice_ns(&self) -> i64 {
        self.cfg.slice_us as i64 * 1000
    }

    fn request_drop(&self, cx: &mut ThreadCx, ev: Ev, arg: i64) {
        if !self.drop_request.swap(true, Relaxed) {
            cx.stats.drop_requests += 1;
            cx.event(ev, arg);
        }
    }
}

impl Gil for BfsGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        let me = cx.idx as u32;
        let mut st = self.st.lock();
        st.waiting.push(me);
        let mut futile = 0;
        let mut woken = false;
        loop {
            if st.owner == NOBODY && st.earliest() == Some(me) {
                st.owner = me;
                st.held_since = now_ns();
            }
            if st.owner == me {
                let k = st.waiting.iter().position(|&w| w == me).expect("queued");
                st.waiting.remove(k);
                break;
            }
            if woken {
                futile += 1;
            }
            let holder = st.owner;
            if holder != NOBODY && st.deadline[me as usize] < st.deadline[holder as usize] {
                self.request_drop(cx, Ev::Preempt, holder as i64);
            }
            let wait_us = self.cfg.slice_us * st.waiting.len() as u64;
            match st.wait_us(&self.conds[me as usize], wait_us.max(1)) {
                Waited::TimedOut => {
                    woken = false;
                    cx.stats.timeouts += 1;
                    cx.event(Ev::Timeout, 0);
                    let h = st.owner;
                    if h != NOBODY && h != me {
                        let used = now_ns() - st.held_since;
                        if used >= st.slice_left[h as usize] {
                            self.request_drop(cx, Ev::DropRequest, h as i64);
                        }
                    }
                }
                Waited::Woken => woken = true,
            }
        }
        cx.futile(futile); // before the time is read: events stay in time order
        let t = now_ns();
        drop(st);
        cx.acquired_at(t);
    }

    fn release(&self, cx: &mut ThreadCx, why: Release) {
        let me = cx.idx as usize;
        let now = cx.releasing();
        let mut st = self.st.lock();
        let used = now - st.held_since;
        st.vclock += used;
        st.slice_left[me] -= used;
        if st.slice_left[me] <= 0 {
            let v = st.vclock;
            st.slice_left[me] = self.slice_ns();
            st.deadline[me] = v + self.slice_ns() * self.cfg.deadline_factor as i64;
        }
        self.drop_request.store(false, Relaxed);
        match st.earliest() {
            // Preempted: hand the GIL straight to the earliest deadline, so the preempted
            // thread cannot take it back before that waiter runs.
            Some(w) if why == Release::Poll => {
                st.owner = w;
                st.held_since = now_ns();
                self.conds[w as usize].signal();
            }
            // Given up (a blocking call, an exit): the GIL is free; wake the earliest waiter,
            // but a thread with a still earlier deadline (the I/O thread coming straight back)
            // may take it first.
            Some(w) => {
                st.owner = NOBODY;
                self.conds[w as usize].signal();
            }
            None => st.owner = NOBODY,
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
    fn exclusive_and_slices_respected() {
        let gil = BfsGil::new(
            BfsConfig {
                slice_us: 50,
                ..Default::default()
            },
            3,
        );
        let res = contend(&gil, 3, 1_000_000);
        assert_exclusive(&res);
        let forced: u64 = res.iter().map(|(s, _, _)| s.forced_drops).sum();
        assert!(forced > 0, "CPU threads were never preempted");
    }
}
