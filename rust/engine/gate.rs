//! The start gate: every thread of a run arrives, the controller reads t0 and opens it (all go
//! at once), or cancels it when setting up failed part-way (all return at once). Unlike
//! `std::sync::Barrier`, a gate that will never fill can still be released.

use std::sync::{Condvar, Mutex};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open,
    Cancelled,
}

pub struct Gate {
    m: Mutex<(usize, State)>,
    cv: Condvar,
}

impl Gate {
    pub fn new() -> Self {
        Gate {
            m: Mutex::new((0, State::Closed)),
            cv: Condvar::new(),
        }
    }

    /// Arrive and wait until the gate opens (true) or is cancelled (false).
    pub fn arrive_and_wait(&self) -> bool {
        let mut g = self.m.lock().unwrap();
        g.0 += 1;
        self.cv.notify_all();
        while g.1 == State::Closed {
            g = self.cv.wait(g).unwrap();
        }
        g.1 == State::Open
    }

    /// Wait until `n` threads have arrived.
    pub fn wait_for(&self, n: usize) {
        let mut g = self.m.lock().unwrap();
        while g.0 < n {
            g = self.cv.wait(g).unwrap();
        }
    }

    /// Let everyone go (`go = true`) or send everyone home.
    pub fn release(&self, go: bool) {
        self.m.lock().unwrap().1 = if go { State::Open } else { State::Cancelled };
        self.cv.notify_all();
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_releases_waiters() {
        let g = Gate::new();
        std::thread::scope(|s| {
            let h: Vec<_> = (0..3).map(|_| s.spawn(|| g.arrive_and_wait())).collect();
            g.wait_for(3);
            g.release(false);
            assert!(h.into_iter().all(|h| !h.join().unwrap()));
        });
    }
}
