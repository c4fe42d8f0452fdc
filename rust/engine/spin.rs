//! The unit of interpreter work: a spin of a calibrated number of iterations.
//!
//! Work is counted in iterations, not timed, so a thread that loses its core or runs on a
//! slower one takes longer, as real bytecode would. Successive ticks form one dependency chain
//! (each spin starts from the value the previous one ended with): independent chains would
//! let the CPU overlap one tick with the next and make short ticks run faster than
//! calibrated. The per-tick cost is calibrated once per process (or again, on the caller's core,
//! by [`recalibrate`]): the loop
//! `for _ in 0..n { x = spin(k, x) }` is timed for two values of k and fitted as `a + b·k` ns
//! per tick, so the call overhead is included; then `k = (tick_ns − a) / b`.

use crate::clock::now_ns;
use std::hint::black_box;
use std::sync::Mutex;

/// Seed of a thread's spin chain.
pub const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// `iters` rounds of a dependent multiply-add chain the compiler cannot fold, continuing from
/// `x` (the previous tick's result).
#[inline(never)]
pub fn spin(iters: u32, mut x: u64) -> u64 {
    for i in 0..iters {
        x = black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(i as u64),
        );
    }
    x
}

/// The process's spin calibration.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Calibration {
    /// Fixed cost of one tick (call and loop), ns.
    pub overhead_ns: f64,
    /// Cost of one spin iteration, ns.
    pub ns_per_iter: f64,
}

impl Calibration {
    /// Iterations that make one tick last `tick_ns` (at least 1).
    pub fn iters_for(&self, tick_ns: f64) -> u32 {
        (((tick_ns - self.overhead_ns) / self.ns_per_iter)
            .round()
            .max(1.0))
        .min(u32::MAX as f64) as u32
    }

    /// What one tick of `iters` iterations costs, ns.
    pub fn tick_cost_ns(&self, iters: u32) -> f64 {
        self.overhead_ns + self.ns_per_iter * iters as f64
    }
}

fn time_ticks(k: u32, n: u32, rounds: usize) -> f64 {
    // Best of many short rounds: interference only ever adds time, and a round short enough
    // to fit in one scheduler time slice is likely to run undisturbed even on a loaded machine.
    (0..rounds)
        .map(|_| {
            let t = now_ns();
            let mut x = SEED;
            for _ in 0..n {
                x = spin(black_box(k), x);
            }
            black_box(x);
            (now_ns() - t) as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn measure() -> Calibration {
    // Rounds of about 0.2 ms: tick errors measured after 60 calibrations each way were the
    // same as with rounds 4 times longer (median of the worst of 20, 50 and 2 000 ns ticks
    // 4–8 % either way, 2-core VM, 2026-12-02: `cargo test --release -- --ignored
    // round_lengths --nocapture`), at a quarter of the cost, which every sweep worker pays
    // before its first run.
    measure_with(12_500, 500, 1)
}

/// A calibration from `n1` ticks of 8 iterations and `n2` of 256 a round, best of 30 rounds
/// each, after `warm` warm-up rounds.
fn measure_with(n1: u32, n2: u32, warm: usize) -> Calibration {
    time_ticks(64, 20_000, warm); // warm up (frequency, caches)
    let (k1, k2) = (8u32, 256u32);
    let t1 = time_ticks(k1, n1, 30);
    let t2 = time_ticks(k2, n2, 30);
    let b = ((t2 - t1) / (k2 - k1) as f64).max(1e-3);
    let a = (t1 - b * k1 as f64).max(0.0);
    Calibration {
        overhead_ns: a,
        ns_per_iter: b,
    }
}

static CAL: Mutex<Option<Calibration>> = Mutex::new(None);

/// The calibration, measured on first use (26–31 ms on the 2-core VM when its host ran it at
/// half speed) and reused for the process until [`recalibrate`].
pub fn calibration() -> Calibration {
    *CAL.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(measure)
}

/// Measure again, on the calling thread's core, and use that from now on: for a process
/// forked from one that calibrated on other cores (`gilmodel.sweeps.local`'s workers).
pub fn recalibrate() -> Calibration {
    let c = measure();
    *CAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_ticks_last_about_tick_ns_short_and_long() {
        // The claim: a calibration predicts tick lengths measured under the same conditions.
        // Other tests run beside this one, and a busy hyperthread sibling slows a core by 15 %
        // or more for as long as it stays busy, which best-of-many rounds cannot remove; so each
        // attempt calibrates afresh and measures at once, and one clean attempt of five passes.
        // A calibration that is wrong (a bad fit, a folded loop) fails all five.
        let mut misses = Vec::new();
        for _ in 0..5 {
            let c = measure();
            let off: Vec<String> = [20.0, 50.0, 2000.0]
                .into_iter()
                .filter_map(|tick_ns| {
                    let per = time_ticks(c.iters_for(tick_ns), (500_000.0 / tick_ns) as u32, 40);
                    ((per / tick_ns - 1.0).abs() >= 0.15)
                        .then(|| format!("{tick_ns} ns tick measured {per:.2} ns"))
                })
                .collect();
            if off.is_empty() {
                return;
            }
            misses.push(format!("{} ({c:?})", off.join(", ")));
        }
        panic!(
            "every attempt was off by 15 % or more:\n{}",
            misses.join("\n")
        );
    }

    /// A measurement, not a check: tick errors after calibrations with these rounds and with
    /// rounds 4 times longer, alternating, 15 calibrations each per pass.
    #[test]
    #[ignore = "a measurement: cargo test --release -- --ignored round_lengths --nocapture"]
    fn round_lengths() {
        for (name, n1, n2, warm) in [
            ("4x longer", 50_000, 2_000, 3),
            ("as measure()", 12_500, 500, 1),
            ("4x longer", 50_000, 2_000, 3),
            ("as measure()", 12_500, 500, 1),
        ] {
            let t0 = now_ns();
            let mut worst: Vec<f64> = (0..15)
                .map(|_| {
                    let c = measure_with(n1, n2, warm);
                    [20.0, 50.0, 2000.0]
                        .into_iter()
                        .map(|tick: f64| {
                            let per = time_ticks(c.iters_for(tick), (500_000.0 / tick) as u32, 40);
                            (per / tick - 1.0).abs()
                        })
                        .fold(0.0, f64::max)
                })
                .collect();
            worst.sort_by(|a, b| a.total_cmp(b));
            eprintln!(
                "{name}: worst tick error median {:.3}, max {:.3}; {:.0} ms",
                worst[7],
                worst[14],
                (now_ns() - t0) as f64 / 1e6
            );
        }
    }
}
