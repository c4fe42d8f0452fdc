//! The scenario contract's numbers: every range a scenario is checked against, each a named
//! constant, and the error that names the offending field.
//!
//! [`Scenario::validate`](crate::scenario::Scenario::validate) and each policy's
//! [`Knobs::validate`](crate::gil::Knobs::validate) check with these constants; the Python
//! front reads the same ones from `_core.LIMITS` ([`limits`]), so each bound is written once.
//! This module sits below [`gil`](crate::gil) and [`scenario`](crate::scenario): it imports
//! neither.

use crate::log::EVENT_BYTES;
use std::fmt;

/// A scenario that cannot run: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for SpecError {}

/// The error naming `field`, as a `Result`.
pub fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError {
        field: field.into(),
        message: message.into(),
    })
}

/// The inclusive range `lo..=hi` a scenario field must lie in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit<T> {
    pub lo: T,
    pub hi: T,
    /// How [`check`](Limit::check)'s message says the range, after the value; `None`: "must be
    /// between `lo` and `hi`".
    says: Option<&'static str>,
}

impl<T: Copy> Limit<T> {
    pub const fn new(lo: T, hi: T) -> Self {
        Limit { lo, hi, says: None }
    }

    /// The same range, said in these words by [`check`](Limit::check).
    pub const fn says(self, words: &'static str) -> Self {
        Limit {
            lo: self.lo,
            hi: self.hi,
            says: Some(words),
        }
    }
}

impl<T: Copy + PartialOrd + fmt::Display> Limit<T> {
    /// Whether `v` lies in the range (NaN never does).
    pub fn contains(&self, v: T) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// `Ok` when `v` lies in the range, else the error naming `field`: "`v`: must be ...".
    pub fn check(&self, field: impl Into<String>, v: T) -> Result<(), SpecError> {
        if self.contains(v) {
            return Ok(());
        }
        match self.says {
            Some(words) => err(field, format!("{v}: {words}")),
            None => err(
                field,
                format!("{v}: must be between {} and {}", self.lo, self.hi),
            ),
        }
    }
}

// ---- the policies' knobs (checked in each policy's module under rust/gil/)

/// Ticks between check points: the tick GIL's `check_interval`, every other policy's
/// `check_every`.
pub const CHECK_PERIOD_TICKS: Limit<u64> =
    Limit::new(1, 1_000_000_000).says("must be between 1 and 1e9");
/// A policy's timed interval: `interval_us` (interval, priority), `slice_us` (BFS).
pub const INTERVAL_US: Limit<u64> = Limit::new(1, 100_000_000).says("must be between 1 and 1e8 µs");
/// BFS: virtual deadline = now + slice × this.
pub const DEADLINE_FACTOR: Limit<u64> = Limit::new(1, 1_000_000).says("must be between 1 and 1e6");
/// FIFO: the least a holder keeps the GIL before giving way.
pub const MIN_HOLD_US: Limit<u64> = Limit::new(0, 100_000_000).says("must be between 0 and 1e8 µs");

// ---- threads and their programs

/// Threads in a scenario.
pub const THREADS: Limit<u64> = Limit::new(1, 1024);
/// A thread's name, in characters (as Python counts them).
pub const THREAD_NAME_CHARS: Limit<u64> = Limit::new(1, 64);
/// `cpu(ticks)`.
pub const CPU_TICKS: Limit<u64> = Limit::new(1, 1 << 50).says("must be between 1 and 2^50");
/// `sleep(us)`.
pub const SLEEP_US: Limit<u64> =
    Limit::new(1, 3_600_000_000).says("must be between 1 µs and 1 hour");
/// A thread's `start_us`: how long after the others' release it starts (0: with them).
pub const START_US: Limit<u64> =
    Limit::new(0, 3_600_000_000).says("must be between 0 and 1 hour (in µs)");
/// Bytes of one `send` or `recv`, and of a driver's ping.
pub const IO_BYTES: Limit<u64> = Limit::new(1, 64 << 20);
/// Bytes a driver reads back after each ping (0: no reply, no round trip timed).
pub const REPLY_BYTES: Limit<u64> = Limit::new(0, IO_BYTES.hi);
/// A driver's pings.
pub const DRIVER_PINGS: Limit<u64> = Limit::new(1, 100_000_000).says("must be between 1 and 1e8");
/// A driver's gap between pings (the range of a sleep).
pub const DRIVER_GAP_US: Limit<u64> = SLEEP_US;
/// A driver's work before each ping, in ticks (0: none; the range of a `cpu` op otherwise).
pub const DRIVER_WORK_TICKS: Limit<u64> = Limit::new(0, CPU_TICKS.hi);
/// A loop's `times` (None: until the run stops).
pub const LOOP_TIMES: Limit<u64> =
    Limit::new(1, u64::MAX).says("must be at least 1, or None for until stopped");
/// How deep loops may nest (a loop in a thread's program is depth 1).
pub const LOOP_DEPTH: Limit<u64> = Limit::new(1, 16);
/// Locks and queues of a scenario, together.
pub const SYNC_OBJECTS: Limit<u64> = Limit::new(0, 1024);
/// A queue's `maxsize` (0: unbounded, as `queue.Queue`).
pub const QUEUE_MAXSIZE: Limit<u64> =
    Limit::new(0, 1 << 40).says("must be between 0 (unbounded) and 2^40");
/// When a signal is sent, µs after the start.
pub const SIGNAL_AT_US: Limit<u64> = Limit::new(0, 86_400_000_000).says("at most one day");

// ---- the run

/// Nanoseconds of work per tick.
pub const TICK_NS: Limit<f64> = Limit::new(1.0, 1e6).says("must be between 1 and 1e6 ns");
/// `stop.duration_s`; the lower bound itself is excluded (more than 0 s).
pub const STOP_DURATION_S: Limit<f64> = Limit::new(0.0, 86_400.0);
/// An explicit `watchdog_s` (it cannot be switched off: `hi` is the most).
pub const WATCHDOG_S: Limit<f64> = Limit::new(0.01, 86_400.0);
/// The least event budget of a run, and the least share of it per thread.
pub const MIN_MAX_EVENTS: u64 = 1_000;
pub const MIN_EVENTS_PER_THREAD: u64 = 16;

/// The largest event budget a machine with `mem_bytes` of memory allows: half of it, at
/// [`EVENT_BYTES`] an event.
pub fn max_events_allowed(mem_bytes: u64) -> u64 {
    (mem_bytes / 2 / EVENT_BYTES).max(MIN_MAX_EVENTS)
}

/// The event budget a run of `threads` threads may have on a machine with `mem_bytes`.
pub fn max_events(threads: usize, mem_bytes: u64) -> Limit<u64> {
    Limit::new(
        MIN_MAX_EVENTS.max(threads as u64 * MIN_EVENTS_PER_THREAD),
        max_events_allowed(mem_bytes),
    )
}

/// One entry of [`limits`]: an integer or a real range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    Int(u64, u64),
    Float(f64, f64),
}

impl From<Limit<u64>> for Bound {
    fn from(l: Limit<u64>) -> Bound {
        Bound::Int(l.lo, l.hi)
    }
}

impl From<Limit<f64>> for Bound {
    fn from(l: Limit<f64>) -> Bound {
        Bound::Float(l.lo, l.hi)
    }
}

/// Every limit above by its name in `_core.LIMITS`, the unit in the name where it has one.
/// `max_events` is `(MIN_MAX_EVENTS, the most a machine with mem_bytes allows)`; a run of n
/// threads needs at least `MIN_EVENTS_PER_THREAD × n` besides.
pub fn limits(mem_bytes: u64) -> Vec<(&'static str, Bound)> {
    vec![
        ("check_period_ticks", CHECK_PERIOD_TICKS.into()),
        ("interval_us", INTERVAL_US.into()),
        ("deadline_factor", DEADLINE_FACTOR.into()),
        ("min_hold_us", MIN_HOLD_US.into()),
        ("threads", THREADS.into()),
        ("thread_name_chars", THREAD_NAME_CHARS.into()),
        ("cpu_ticks", CPU_TICKS.into()),
        ("sleep_us", SLEEP_US.into()),
        ("start_us", START_US.into()),
        ("io_bytes", IO_BYTES.into()),
        ("reply_bytes", REPLY_BYTES.into()),
        ("driver_pings", DRIVER_PINGS.into()),
        ("driver_gap_us", DRIVER_GAP_US.into()),
        ("driver_work_ticks", DRIVER_WORK_TICKS.into()),
        ("loop_times", LOOP_TIMES.into()),
        ("loop_depth", LOOP_DEPTH.into()),
        ("signal_at_us", SIGNAL_AT_US.into()),
        ("sync_objects", SYNC_OBJECTS.into()),
        ("queue_maxsize", QUEUE_MAXSIZE.into()),
        ("tick_ns", TICK_NS.into()),
        ("stop_duration_s", STOP_DURATION_S.into()),
        ("watchdog_s", WATCHDOG_S.into()),
        ("max_events", max_events(0, mem_bytes).into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_says_the_range() {
        let e = INTERVAL_US.check("gil.interval_us", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gil.interval_us: 0: must be between 1 and 1e8 µs"
        );
        let e = IO_BYTES.check("f", 1 << 40).unwrap_err();
        assert_eq!(
            e.message,
            format!("{}: must be between 1 and 67108864", 1u64 << 40)
        );
        assert!(TICK_NS.check("tick_ns", f64::NAN).is_err());
        assert!(TICK_NS.check("tick_ns", f64::INFINITY).is_err());
        assert!(TICK_NS.check("tick_ns", 1.0).is_ok() && TICK_NS.check("tick_ns", 1e6).is_ok());
    }

    #[test]
    fn limits_are_named_once_and_ordered() {
        let all = limits(8 << 30);
        let mut names: Vec<_> = all.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for (name, b) in all {
            match b {
                Bound::Int(lo, hi) => assert!(lo <= hi, "{name}"),
                Bound::Float(lo, hi) => assert!(lo <= hi, "{name}"),
            }
        }
    }
}
