//! Per-thread counts of calls into the glibc primitives.
//!
//! Each OS thread has its own counters (a `thread_local!` of `Cell`s), so counting costs one
//! TLS-relative increment and never a lock or a shared cache line. The engine reads a thread's
//! counters with [`snapshot`] when that thread finishes.
//!
//! In a Python extension module a thread-local is reached through `__tls_get_addr`, whose data
//! has gone cold after a wait: counting that way inside the interval GIL's critical windows
//! cost the holder about 0.9 µs on its way to the mutex (`benches/pthread_timer.py`,
//! docs/validation/many-threads.md). So the primitives also have `_in` calls that count into a
//! [`PrimCounts`] the caller keeps at hand (the thread's `ThreadCx`), added to the snapshot.

use std::cell::Cell;

/// Counted operations. The discriminant indexes [`PrimCounts::calls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Call {
    MutexLock = 0,
    MutexUnlock,
    CondWait,
    CondTimedWait,
    CondTimeout,
    CondSignal,
    CondBroadcast,
    SemWait,
    SemTryWait,
    SemPost,
    SemEintr,
}

/// Names of the counters, in [`Call`] order (column names of the `threads` table).
pub const CALL_NAMES: [&str; 11] = [
    "mutex_lock",
    "mutex_unlock",
    "cond_wait",
    "cond_timedwait",
    "cond_timeouts",
    "cond_signal",
    "cond_broadcast",
    "sem_wait",
    "sem_trywait",
    "sem_post",
    "sem_eintr",
];

/// A copy of one thread's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrimCounts {
    pub calls: [u64; CALL_NAMES.len()],
}

impl PrimCounts {
    pub fn get(&self, c: Call) -> u64 {
        self.calls[c as usize]
    }

    /// Count one call of `c` here (the `_in` calls of the primitives): no thread-local access.
    #[inline(always)]
    pub fn add(&mut self, c: Call) {
        self.calls[c as usize] += 1;
    }

    /// These counts plus `other`'s.
    pub fn plus(mut self, other: &PrimCounts) -> PrimCounts {
        for (a, b) in self.calls.iter_mut().zip(other.calls.iter()) {
            *a += b;
        }
        self
    }
}

thread_local! {
    static COUNTS: [Cell<u64>; CALL_NAMES.len()] = const { [const { Cell::new(0) }; CALL_NAMES.len()] };
}

/// Count one call of `c` on the current thread.
#[inline(always)]
pub fn bump(c: Call) {
    COUNTS.with(|k| {
        let cell = &k[c as usize];
        cell.set(cell.get() + 1);
    });
}

/// The current thread's counters.
pub fn snapshot() -> PrimCounts {
    COUNTS.with(|k| {
        let mut out = PrimCounts::default();
        for (o, c) in out.calls.iter_mut().zip(k.iter()) {
            *o = c.get();
        }
        out
    })
}

/// Zero the current thread's counters (the engine does this when a scenario thread starts).
pub fn reset() {
    COUNTS.with(|k| k.iter().for_each(|c| c.set(0)));
}
