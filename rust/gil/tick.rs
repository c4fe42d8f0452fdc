//! The tick GIL of CPython 2.x (and 3.0, 3.1).
//!
//! Replicates CPython 2.7:
//! - `Python/ceval.c`, `PyEval_EvalFrameEx`: the global `_Py_Ticker` is decremented per
//!   instruction; when `--_Py_Ticker < 0` it is reset to `_Py_CheckInterval` (default 100,
//!   `sys.setcheckinterval`) and the holder calls `PyThread_release_lock(interpreter_lock)` and
//!   at once `PyThread_acquire_lock(interpreter_lock, 1)`. There is no hand-off: a waiter gets
//!   the lock only if the OS runs it before the holder retakes it.
//! - `Python/thread_pthread.h`, `PyThread_acquire_lock` / `PyThread_release_lock`, in both
//!   builds: `USE_SEMAPHORES` (Linux): `sem_wait` retried on `EINTR`, `sem_post`; and the
//!   mutex + condvar lock (OS X): a `locked` flag under a mutex, waiters loop on
//!   `pthread_cond_wait` while it is set, release clears it, unlocks, then signals.
//!
//! Upstream: CPython v2.7.18 (8d21aa21f2cbc6d50aab3f420bb23be1d081dac4), `Python/ceval.c`
//! lines 1098–1148 (the `--_Py_Ticker < 0` block of `PyEval_EvalFrameEx`), 408–449
//! (`Py_AddPendingCall`, which sets `_Py_Ticker = 0`) and 451–498 (`Py_MakePendingCalls`,
//! main thread only); `Python/thread_pthread.h` lines 344–371 and 373–384
//! (`PyThread_acquire_lock` / `PyThread_release_lock` with `USE_SEMAPHORES`) and 445–487 and
//! 489–509 (the mutex + condvar lock). One difference: this `mutex_cond` release unlocks and
//! then signals, as `thread_pthread.h` did up to v2.7.16 (lines 486–506; also 2.6, 3.0 and 3.1,
//! the OS X builds of the `2.6-osx` preset); from v2.7.17 (bpo-38106) 2.7 signals before it
//! unlocks. The `sem` lock, which Linux builds and the 2.7 presets use, is unaffected.
//!
//! The ticker is one shared counter, as `_Py_Ticker` is a global: a new holder continues the
//! countdown where the previous one left it. Only the holder touches it, so relaxed atomics
//! are enough (the lock orders the accesses).
//!
//! Futile wake-ups: with `mutex_cond` each return from `pthread_cond_wait` that finds the lock
//! still taken is one. glibc's `sem_wait` retries internally and hides them, so with `sem` they
//! are inferred: the waiter first tries `sem_trywait` (what `sem_wait`'s own fast path does), and
//! only if that fails reads `getrusage(RUSAGE_THREAD)` around the blocking `sem_wait`; every
//! voluntary context switch beyond the last is a wake-up that found the count taken again.

use super::{Gil, Knobs, Release, ThreadCx};
use crate::contract::{SpecError, CHECK_PERIOD_TICKS};
use crate::prim::{Condvar, Mutex, Semaphore};
use crate::rusage;
use serde::{Deserialize, Serialize};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// Which `PyThread_type_lock` implementation backs the GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// POSIX semaphore (`USE_SEMAPHORES`: Linux builds).
    Sem,
    /// Mutex + condition variable (OS X builds).
    MutexCond,
}

/// Knobs of the tick GIL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickConfig {
    /// `sys.setcheckinterval`: ticks between checks (2.7 default 100).
    pub check_interval: u32,
    pub lock: LockKind,
}

impl Default for TickConfig {
    fn default() -> Self {
        TickConfig {
            check_interval: 100,
            lock: LockKind::Sem,
        }
    }
}

impl Knobs for TickConfig {
    fn validate(&self) -> Result<(), SpecError> {
        CHECK_PERIOD_TICKS.check("gil.check_interval", self.check_interval.into())
    }
}

enum Lock {
    Sem(Semaphore),
    MutexCond {
        mutex: Mutex,
        cond: Condvar,
        locked: UnsafeCell<bool>,
    },
}

/// CPython 2.7's GIL: a plain lock released and retaken every `check_interval` ticks.
pub struct TickGil {
    cfg: TickConfig,
    lock: Lock,
    ticker: AtomicI64,
}

// SAFETY: `locked` is only accessed with `mutex` held.
unsafe impl Sync for TickGil {}

impl TickGil {
    pub fn new(cfg: TickConfig) -> Self {
        let lock = match cfg.lock {
            LockKind::Sem => Lock::Sem(Semaphore::new(1)),
            LockKind::MutexCond => Lock::MutexCond {
                mutex: Mutex::new(),
                cond: Condvar::new(),
                locked: UnsafeCell::new(false),
            },
        };
        let ticker = AtomicI64::new(cfg.check_interval as i64);
        TickGil { cfg, lock, ticker }
    }

    /// `PyThread_acquire_lock(lock, 1)`.
    fn acquire_lock(&self, cx: &mut ThreadCx) {
        match &self.lock {
            Lock::Sem(sem) => {
                if sem.try_wait() {
                    return;
                }
                let before = rusage::thread().nvcsw;
                sem.wait(); // retried on EINTR inside, as 2.7 does
                let blocks = rusage::thread().nvcsw - before;
                cx.futile(blocks.saturating_sub(1));
            }
            Lock::MutexCond {
                mutex,
                cond,
                locked,
            } => {
                mutex.lock();
                // SAFETY: `locked` is only touched with `mutex` held.
                unsafe {
                    let mut futile = 0;
                    while *locked.get() {
                        cond.wait(mutex);
                        if *locked.get() {
                            futile += 1;
                        }
                    }
                    *locked.get() = true;
                    mutex.unlock();
                    cx.futile(futile);
                }
            }
        }
    }

    /// `PyThread_release_lock(lock)`.
    fn release_lock(&self) {
        match &self.lock {
            Lock::Sem(sem) => sem.post(),
            Lock::MutexCond {
                mutex,
                cond,
                locked,
            } => {
                mutex.lock();
                // SAFETY: `mutex` is held.
                unsafe { *locked.get() = false };
                mutex.unlock();
                cond.signal();
            }
        }
    }
}

impl Gil for TickGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        self.acquire_lock(cx);
        cx.acquired();
    }

    fn release(&self, cx: &mut ThreadCx, _why: Release) {
        cx.releasing();
        // Pushed now, before the lock is released, as before events were kept (ThreadCx::event):
        // the release-retake race of this GIL was measured and validated with that cost in it.
        cx.flush();
        self.release_lock();
    }

    /// The check interval; counted on the one shared ticker by this policy's own `tick`, not
    /// per thread.
    fn check_every(&self) -> u32 {
        self.cfg.check_interval
    }

    /// 2.7's `--_Py_Ticker < 0` on the shared ticker, in place of the per-thread countdown.
    #[inline(always)]
    fn tick(&self, cx: &mut ThreadCx) -> bool {
        let t = self.ticker.load(Relaxed) - 1;
        if t >= 0 {
            self.ticker.store(t, Relaxed);
            return false;
        }
        // Py_AddPendingCall set `things_to_do`; only the main thread can run the handler
        // (Py_MakePendingCalls returns at once elsewhere and leaves it set), so 2.7 sets
        // `_Py_Ticker = 0`: every tick is a check, and a GIL release, until the main thread
        // gets to it (the tick storm).
        let storm = cx.signal_is_pending() && !cx.main;
        let next = if storm {
            0
        } else {
            self.cfg.check_interval as i64
        };
        self.ticker.store(next, Relaxed);
        // "Give another thread a chance": release, then retake at once.
        let t = cx.releasing();
        cx.flush(); // as in `release`
        self.release_lock();
        cx.requested_at(t);
        self.acquire_lock(cx);
        cx.acquired();
        true
    }

    /// 2.x's `PyThread_acquire_lock` retries `sem_wait` on `EINTR`: a `join` cannot be
    /// interrupted, so the handler waits until it returns.
    fn interruptible(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_exclusive, contend};
    use super::*;

    #[test]
    fn exclusive_and_counts_agree_sem() {
        let gil = TickGil::new(TickConfig {
            check_interval: 10,
            lock: LockKind::Sem,
        });
        let res = contend(&gil, 3, 20_000);
        assert_exclusive(&res);
        for (_, _, ticks) in &res {
            assert_eq!(*ticks, 20_000);
        }
    }

    #[test]
    fn exclusive_and_counts_agree_mutex_cond() {
        let gil = TickGil::new(TickConfig {
            check_interval: 10,
            lock: LockKind::MutexCond,
        });
        let res = contend(&gil, 3, 20_000);
        assert_exclusive(&res);
    }

    #[test]
    fn releases_every_check_interval_plus_one_ticks() {
        // `--_Py_Ticker < 0` fires on the 101st decrement from 100.
        let gil = TickGil::new(TickConfig {
            check_interval: 100,
            lock: LockKind::Sem,
        });
        let res = contend(&gil, 1, 1010);
        let (stats, _, _) = &res[0];
        assert_eq!(stats.acquisitions, 1 + 10);
    }
}
