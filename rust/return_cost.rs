//! The interpreter's extra work when a thread comes back to Python after time away from it.
//!
//! A real interpreter's thread that blocked (a `recv`, a sleep, a lock, C work without the
//! GIL) pays, when it runs Python again, more than its warm per-request work: on the 2-core
//! VM an echo's round trip with pings 10 ms apart cost 51–76 µs more in the real interpreter
//! than in the model, 5–12 µs with pings 0.2 ms apart, next to no CPU thread or one alike
//! (docs/validation/many-threads.md, "After an idle gap"). The calibration measures that
//! difference at a few times away (`gilmodel.profiles`); the scenario carries it as points
//! `(away_ns, ticks)`, and a thread back from a blocking op spins the ticks the table gives
//! for the time since it released the GIL, under the GIL and with no check point, before its
//! next op (`engine/worker.rs`, `Worker::come_back`, which says why no check point).

use crate::contract::{err, SpecError};
use serde::{Deserialize, Serialize};

/// At most this many points (the calibration measures three).
pub const MAX_POINTS: usize = 16;

/// Points `(away_ns, ticks)`, `away_ns` strictly increasing; linear between them, from
/// `(0, 0)`, flat past the last. Empty: no cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReturnCost(pub Vec<(u64, u64)>);

impl ReturnCost {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ticks to spin after `away_ns` away from the GIL.
    pub fn ticks(&self, away_ns: i64) -> u64 {
        let a = away_ns.max(0) as u64;
        let (mut x0, mut y0) = (0u64, 0u64);
        for &(x1, y1) in &self.0 {
            if a <= x1 {
                // x1 > x0 (validated), so no division by zero.
                let f = (a - x0) as f64 / (x1 - x0) as f64;
                return (y0 as f64 + f * (y1 as f64 - y0 as f64)).round() as u64;
            }
            (x0, y0) = (x1, y1);
        }
        y0
    }

    /// The points' checks, named as the scenario's field `return_cost`.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.0.len() > MAX_POINTS {
            return err(
                "return_cost",
                format!("{} points; at most {MAX_POINTS}", self.0.len()),
            );
        }
        let mut last = 0u64;
        for (i, &(x, y)) in self.0.iter().enumerate() {
            if x <= last {
                return err(
                    format!("return_cost[{i}]"),
                    format!("away_ns {x} must be above 0 and above the point before's ({last})"),
                );
            }
            // A cost of more than 10^9 ticks (seconds of work) is no calibration.
            if y > 1_000_000_000 {
                return err(
                    format!("return_cost[{i}]"),
                    format!("{y} ticks; at most 1e9"),
                );
            }
            last = x;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_from_zero_between_points_and_flat_past_the_last() {
        let c = ReturnCost(vec![(200_000, 10), (1_000_000, 20), (10_000_000, 110)]);
        assert_eq!(c.ticks(0), 0);
        assert_eq!(c.ticks(-5), 0);
        assert_eq!(c.ticks(100_000), 5);
        assert_eq!(c.ticks(200_000), 10);
        assert_eq!(c.ticks(600_000), 15);
        assert_eq!(c.ticks(5_500_000), 65);
        assert_eq!(c.ticks(10_000_000), 110);
        assert_eq!(c.ticks(1_000_000_000), 110);
        assert_eq!(ReturnCost::default().ticks(1_000_000), 0);
    }

    #[test]
    fn points_must_rise_and_stay_in_range() {
        assert!(ReturnCost(vec![(1, 0), (2, 5)]).validate().is_ok());
        let e = ReturnCost(vec![(0, 1)]).validate().unwrap_err();
        assert_eq!(e.field, "return_cost[0]");
        let e = ReturnCost(vec![(5, 1), (5, 2)]).validate().unwrap_err();
        assert!(
            e.message.contains("above the point before"),
            "{}",
            e.message
        );
        let e = ReturnCost(vec![(5, 2_000_000_000)]).validate().unwrap_err();
        assert_eq!(e.field, "return_cost[0]");
        let e = ReturnCost((1..=17).map(|i| (i, 0)).collect())
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "return_cost");
    }
}
