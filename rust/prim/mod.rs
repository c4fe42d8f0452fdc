//! Safe wrappers over glibc's own synchronisation primitives, the ones CPython is built from.
//!
//! Rust's `std::sync` and `parking_lot` implement their own algorithms and wake threads
//! differently, so they are not used anywhere a replica synchronises. Every wrapper boxes its
//! primitive (glibc forbids moving an initialised one) and counts its calls per thread
//! ([`counts`]).

pub mod condvar;
pub mod counts;
pub mod mutex;
pub mod semaphore;

pub use condvar::{Condvar, RawCondvar, Waited};
pub use counts::{Call, PrimCounts};
pub use mutex::{Mutex, RawMutex};
pub use semaphore::{SemWait, Semaphore};
