//! `pthread_cond_t` with `CLOCK_MONOTONIC`, as CPython's `condvar.h`/`thread_pthread.h`
//! configure it (`_PyThread_cond_init`): timed waits take an absolute monotonic deadline
//! computed as now + timeout (`_PyThread_cond_after`).

use super::counts::{bump, Call, PrimCounts};
use super::mutex::RawMutex;
use crate::clock;
use std::cell::UnsafeCell;

/// A glibc condition variable where it lies, its timed waits on `CLOCK_MONOTONIC` once
/// [`init`](RawCondvar::init) ran in place (see [`RawMutex`]: pinned before `init`, never
/// moved after).
#[repr(transparent)]
pub struct RawCondvar(UnsafeCell<libc::pthread_cond_t>);

// SAFETY: made to be shared; accessed only through pthread calls on a pinned pointer.
unsafe impl Send for RawCondvar {}
unsafe impl Sync for RawCondvar {}

/// A glibc condition variable of its own, timed waits on `CLOCK_MONOTONIC`. Boxed: never moves.
pub struct Condvar {
    inner: Box<RawCondvar>,
}

/// How a timed wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// Woken (by a signal, a broadcast, or spuriously).
    Woken,
    /// The deadline passed (`ETIMEDOUT`).
    TimedOut,
}

impl RawCondvar {
    /// Not yet initialised: call [`init`](Self::init) once it lies where it stays.
    pub const fn new() -> Self {
        RawCondvar(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER))
    }

    /// `pthread_cond_init` with a `CLOCK_MONOTONIC` attribute, in place.
    ///
    /// # Safety
    /// `self` must not move afterwards, and no other thread may use it yet.
    pub unsafe fn init(&self) {
        let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_condattr_init(&mut attr), 0);
        assert_eq!(
            libc::pthread_condattr_setclock(&mut attr, libc::CLOCK_MONOTONIC),
            0
        );
        let rc = libc::pthread_cond_init(self.0.get(), &attr);
        libc::pthread_condattr_destroy(&mut attr);
        assert_eq!(rc, 0, "pthread_cond_init failed: {rc}");
    }

    /// `pthread_cond_wait`; the caller holds `m`.
    #[inline]
    pub fn wait(&self, m: &RawMutex) {
        bump(Call::CondWait);
        self.wait_uncounted(m);
    }

    /// [`wait`](Self::wait), counted in `k` (see [`counts`](super::counts)).
    #[inline]
    pub fn wait_in(&self, m: &RawMutex, k: &mut PrimCounts) {
        k.add(Call::CondWait);
        self.wait_uncounted(m);
    }

    #[inline(always)]
    fn wait_uncounted(&self, m: &RawMutex) {
        // SAFETY: both initialised and pinned; the caller holds `m`.
        let rc = unsafe { libc::pthread_cond_wait(self.0.get(), m.raw()) };
        debug_assert_eq!(rc, 0);
    }

    /// `pthread_cond_timedwait` until `now + us` on `CLOCK_MONOTONIC`; the caller holds `m`.
    #[inline]
    pub fn wait_us(&self, m: &RawMutex, us: u64) -> Waited {
        let deadline = clock::deadline_after_us(us);
        self.wait_until(m, &deadline)
    }

    /// [`wait_us`](Self::wait_us), counted in `k`.
    #[inline]
    pub fn wait_us_in(&self, m: &RawMutex, us: u64, k: &mut PrimCounts) -> Waited {
        let deadline = clock::deadline_after_us(us);
        k.add(Call::CondTimedWait);
        let w = self.wait_until_uncounted(m, &deadline);
        if w == Waited::TimedOut {
            k.add(Call::CondTimeout);
        }
        w
    }

    /// `pthread_cond_timedwait` on an absolute `CLOCK_MONOTONIC` deadline; the caller holds `m`.
    #[inline]
    pub fn wait_until(&self, m: &RawMutex, deadline: &libc::timespec) -> Waited {
        bump(Call::CondTimedWait);
        let w = self.wait_until_uncounted(m, deadline);
        if w == Waited::TimedOut {
            bump(Call::CondTimeout);
        }
        w
    }

    #[inline(always)]
    fn wait_until_uncounted(&self, m: &RawMutex, deadline: &libc::timespec) -> Waited {
        // SAFETY: both initialised and pinned; the caller holds `m`.
        let rc = unsafe { libc::pthread_cond_timedwait(self.0.get(), m.raw(), deadline) };
        if rc == libc::ETIMEDOUT {
            Waited::TimedOut
        } else {
            debug_assert_eq!(rc, 0);
            Waited::Woken
        }
    }

    /// `pthread_cond_signal`.
    #[inline]
    pub fn signal(&self) {
        bump(Call::CondSignal);
        // SAFETY: initialised, pinned.
        unsafe { libc::pthread_cond_signal(self.0.get()) };
    }

    /// [`signal`](Self::signal), counted in `k`.
    #[inline]
    pub fn signal_in(&self, k: &mut PrimCounts) {
        k.add(Call::CondSignal);
        // SAFETY: initialised, pinned.
        unsafe { libc::pthread_cond_signal(self.0.get()) };
    }

    /// `pthread_cond_broadcast`.
    #[inline]
    pub fn broadcast(&self) {
        bump(Call::CondBroadcast);
        // SAFETY: initialised, pinned.
        unsafe { libc::pthread_cond_broadcast(self.0.get()) };
    }
}

impl Drop for RawCondvar {
    fn drop(&mut self) {
        // SAFETY: no thread can wait on it any more.
        unsafe { libc::pthread_cond_destroy(self.0.get()) };
    }
}

impl Condvar {
    pub fn new() -> Self {
        let inner = Box::new(RawCondvar::new());
        // SAFETY: boxed (it never moves) and not yet shared.
        unsafe { inner.init() };
        Condvar { inner }
    }
}

impl std::ops::Deref for Condvar {
    type Target = RawCondvar;
    fn deref(&self) -> &RawCondvar {
        &self.inner
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}
