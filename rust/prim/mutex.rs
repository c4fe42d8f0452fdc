//! `pthread_mutex_t` (glibc, default attributes: a futex-based normal mutex, as CPython's
//! `PyMUTEX_T`).

use super::counts::{bump, Call};
use std::cell::UnsafeCell;

/// A glibc mutex. Boxed so it never moves after `pthread_mutex_init` (glibc forbids it).
pub struct Mutex {
    inner: Box<UnsafeCell<libc::pthread_mutex_t>>,
}

// SAFETY: a pthread mutex is made to be shared between threads; all access goes through
// pthread calls on a pointer that never moves.
unsafe impl Send for Mutex {}
unsafe impl Sync for Mutex {}

impl Mutex {
    pub fn new() -> Self {
        let inner = Box::new(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));
        // SAFETY: the pointer is valid and the mutex not yet shared.
        let rc = unsafe { libc::pthread_mutex_init(inner.get(), std::ptr::null()) };
        assert_eq!(rc, 0, "pthread_mutex_init failed: {rc}");
        Mutex { inner }
    }

    pub(crate) fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.inner.get()
    }

    /// `pthread_mutex_lock`.
    #[inline]
    pub fn lock(&self) {
        bump(Call::MutexLock);
        // SAFETY: initialised, pinned mutex.
        let rc = unsafe { libc::pthread_mutex_lock(self.raw()) };
        debug_assert_eq!(rc, 0);
    }

    /// `pthread_mutex_unlock`; the caller must hold the mutex.
    #[inline]
    pub fn unlock(&self) {
        bump(Call::MutexUnlock);
        // SAFETY: initialised, pinned mutex, held by this thread (caller's contract).
        let rc = unsafe { libc::pthread_mutex_unlock(self.raw()) };
        debug_assert_eq!(rc, 0);
    }
}

impl Default for Mutex {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Mutex {
    fn drop(&mut self) {
        // SAFETY: no thread can hold a reference any more.
        unsafe { libc::pthread_mutex_destroy(self.raw()) };
    }
}
