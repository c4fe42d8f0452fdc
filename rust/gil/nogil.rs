//! No GIL at all: the upper bound of throughput and the lower bound of latency, as a
//! free-threaded interpreter (PEP 703) would give if its other costs were nil.
//!
//! `take` and `release` only log, so every thread's log still alternates request → acquire →
//! release around its blocking calls, but holding periods of different threads overlap: the
//! global "one holder" invariant does not apply to this policy, and hand-off metrics are
//! meaningless for it.
//!
//! Upstream: none (no CPython code is mirrored; PEP 703's free-threaded build is the idea, not
//! the source).

use super::{Gil, Knobs, Release, ThreadCx};
use crate::contract::{SpecError, CHECK_PERIOD_TICKS};
use serde::{Deserialize, Serialize};

/// Knobs of the no-GIL policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoGilConfig {
    /// Ticks between check points (only the stop flag is looked at there).
    pub check_every: u32,
}

impl Default for NoGilConfig {
    fn default() -> Self {
        NoGilConfig { check_every: 100 }
    }
}

impl Knobs for NoGilConfig {
    fn validate(&self) -> Result<(), SpecError> {
        CHECK_PERIOD_TICKS.check("gil.check_every", self.check_every.into())
    }
}

/// No lock.
pub struct NoGil {
    cfg: NoGilConfig,
}

impl NoGil {
    pub fn new(cfg: NoGilConfig) -> Self {
        NoGil { cfg }
    }
}

impl Gil for NoGil {
    fn take(&self, cx: &mut ThreadCx) {
        cx.requested();
        cx.acquired();
    }

    fn release(&self, cx: &mut ThreadCx, _why: Release) {
        cx.releasing();
    }

    #[inline(always)]
    fn check_every(&self) -> u32 {
        self.cfg.check_every
    }
}
