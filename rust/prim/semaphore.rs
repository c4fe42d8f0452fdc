//! `sem_t` (glibc's unnamed POSIX semaphore), as CPython 2.7's `thread_pthread.h` uses for
//! `PyThread_type_lock` when `USE_SEMAPHORES` is defined (Linux builds).

use super::counts::{bump, Call};
use std::cell::UnsafeCell;

/// A glibc semaphore. Boxed: never moves after `sem_init`.
pub struct Semaphore {
    inner: Box<UnsafeCell<libc::sem_t>>,
}

// SAFETY: made to be shared between threads (pshared = 0: threads of this process).
unsafe impl Send for Semaphore {}
unsafe impl Sync for Semaphore {}

/// How a `sem_wait` call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SemWait {
    Acquired,
    /// Interrupted by a signal handler (`EINTR`).
    Interrupted,
}

impl Semaphore {
    pub fn new(value: u32) -> Self {
        // SAFETY: zeroed sem_t is a valid argument to sem_init.
        let inner = Box::new(UnsafeCell::new(unsafe {
            std::mem::zeroed::<libc::sem_t>()
        }));
        // SAFETY: valid pointer, not yet shared.
        let rc = unsafe { libc::sem_init(inner.get(), 0, value) };
        assert_eq!(rc, 0, "sem_init failed");
        Semaphore { inner }
    }

    /// One `sem_wait` call (no retry).
    #[inline]
    pub fn wait_once(&self) -> SemWait {
        bump(Call::SemWait);
        // SAFETY: initialised, pinned.
        let rc = unsafe { libc::sem_wait(self.inner.get()) };
        if rc == 0 {
            SemWait::Acquired
        } else {
            let e = std::io::Error::last_os_error().raw_os_error();
            assert_eq!(e, Some(libc::EINTR), "sem_wait failed: {e:?}");
            bump(Call::SemEintr);
            SemWait::Interrupted
        }
    }

    /// `sem_wait` retried on `EINTR`, as 2.7's `PyThread_acquire_lock(lock, 1)`.
    #[inline]
    pub fn wait(&self) {
        while self.wait_once() == SemWait::Interrupted {}
    }

    /// `sem_trywait`: true when the count was decremented.
    #[inline]
    pub fn try_wait(&self) -> bool {
        bump(Call::SemTryWait);
        // SAFETY: initialised, pinned.
        unsafe { libc::sem_trywait(self.inner.get()) == 0 }
    }

    /// `sem_post`.
    #[inline]
    pub fn post(&self) {
        bump(Call::SemPost);
        // SAFETY: initialised, pinned.
        let rc = unsafe { libc::sem_post(self.inner.get()) };
        debug_assert_eq!(rc, 0);
    }

    /// Current value (`sem_getvalue`); for tests and diagnostics.
    pub fn value(&self) -> i32 {
        let mut v = 0;
        // SAFETY: initialised, pinned.
        unsafe { libc::sem_getvalue(self.inner.get(), &mut v) };
        v
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // SAFETY: nobody waits on it any more.
        unsafe { libc::sem_destroy(self.inner.get()) };
    }
}
