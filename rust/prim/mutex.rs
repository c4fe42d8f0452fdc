//! `pthread_mutex_t` (glibc, default attributes: a futex-based normal mutex, as CPython's
//! `PyMUTEX_T`).

use super::counts::{bump, Call, PrimCounts};
use std::cell::UnsafeCell;

/// A glibc mutex where it lies: `PTHREAD_MUTEX_INITIALIZER` until [`init`](RawMutex::init)
/// runs `pthread_mutex_init` in place. Embedded in a structure that is pinned (boxed) before
/// `init` and never moves after it (glibc forbids moving an initialised mutex), so a replica
/// can lay out its state as CPython's struct does.
#[repr(transparent)]
pub struct RawMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads; all access goes through
// pthread calls on a pointer that never moves (the owner's contract, see `init`).
unsafe impl Send for RawMutex {}
unsafe impl Sync for RawMutex {}

impl RawMutex {
    /// Not yet initialised: call [`init`](Self::init) once it lies where it stays.
    pub const fn new() -> Self {
        RawMutex(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER))
    }

    /// `pthread_mutex_init` with default attributes, in place.
    ///
    /// # Safety
    /// `self` must not move afterwards, and no other thread may use it yet.
    pub unsafe fn init(&self) {
        let rc = libc::pthread_mutex_init(self.0.get(), std::ptr::null());
        assert_eq!(rc, 0, "pthread_mutex_init failed: {rc}");
    }

    pub(crate) fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }

    /// `pthread_mutex_lock`.
    #[inline]
    pub fn lock(&self) {
        bump(Call::MutexLock);
        self.lock_uncounted();
    }

    /// [`lock`](Self::lock), counted in `k` (see [`counts`](super::counts)).
    #[inline]
    pub fn lock_in(&self, k: &mut PrimCounts) {
        k.add(Call::MutexLock);
        self.lock_uncounted();
    }

    #[inline(always)]
    fn lock_uncounted(&self) {
        // SAFETY: initialised, pinned mutex.
        let rc = unsafe { libc::pthread_mutex_lock(self.raw()) };
        debug_assert_eq!(rc, 0);
    }

    /// `pthread_mutex_unlock`; the caller must hold the mutex.
    #[inline]
    pub fn unlock(&self) {
        bump(Call::MutexUnlock);
        self.unlock_uncounted();
    }

    /// [`unlock`](Self::unlock), counted in `k`.
    #[inline]
    pub fn unlock_in(&self, k: &mut PrimCounts) {
        k.add(Call::MutexUnlock);
        self.unlock_uncounted();
    }

    #[inline(always)]
    fn unlock_uncounted(&self) {
        // SAFETY: initialised, pinned mutex, held by this thread (caller's contract).
        let rc = unsafe { libc::pthread_mutex_unlock(self.raw()) };
        debug_assert_eq!(rc, 0);
    }
}

impl Drop for RawMutex {
    fn drop(&mut self) {
        // SAFETY: no thread can hold a reference any more.
        unsafe { libc::pthread_mutex_destroy(self.raw()) };
    }
}

/// A glibc mutex of its own. Boxed so it never moves after `pthread_mutex_init`.
pub struct Mutex {
    inner: Box<RawMutex>,
}

impl Mutex {
    pub fn new() -> Self {
        let inner = Box::new(RawMutex::new());
        // SAFETY: boxed (it never moves) and not yet shared.
        unsafe { inner.init() };
        Mutex { inner }
    }
}

impl std::ops::Deref for Mutex {
    type Target = RawMutex;
    fn deref(&self) -> &RawMutex {
        &self.inner
    }
}

impl Default for Mutex {
    fn default() -> Self {
        Self::new()
    }
}
