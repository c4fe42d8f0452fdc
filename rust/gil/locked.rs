//! State guarded by a glibc mutex, for the policies that keep more than a flag under their
//! lock (queues, priorities, deadlines).
//!
//! [`Locked::lock`] returns a guard that derefs to the state and unlocks on drop; waits on a
//! [`Condvar`] go through the guard, so the state is only reachable while the mutex is held.
//! The mutex is the counted glibc one, so the policies' calls show in the `threads` table.

use crate::prim::{Condvar, Mutex, Waited};
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

/// A value only reachable with its mutex held.
pub struct Locked<T> {
    mutex: Mutex,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached through a `Guard`, which exists only while `mutex` is held.
unsafe impl<T: Send> Sync for Locked<T> {}
unsafe impl<T: Send> Send for Locked<T> {}

impl<T> Locked<T> {
    pub fn new(data: T) -> Self {
        Locked {
            mutex: Mutex::new(),
            data: UnsafeCell::new(data),
        }
    }

    /// `pthread_mutex_lock`; the guard unlocks.
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        self.mutex.lock();
        Guard { l: self }
    }
}

/// Proof that the mutex is held.
pub struct Guard<'a, T> {
    l: &'a Locked<T>,
}

impl<T> Guard<'_, T> {
    /// `pthread_cond_wait` on `cv` (the mutex is released while waiting, held again after).
    #[inline]
    pub fn wait(&mut self, cv: &Condvar) {
        cv.wait(&self.l.mutex);
    }

    /// `pthread_cond_timedwait` for `us` µs on `CLOCK_MONOTONIC`.
    #[inline]
    pub fn wait_us(&mut self, cv: &Condvar, us: u64) -> Waited {
        cv.wait_us(&self.l.mutex, us)
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mutex is held for the guard's lifetime.
        unsafe { &*self.l.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut *self.l.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.l.mutex.unlock();
    }
}
