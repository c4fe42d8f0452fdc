//! The model's own echo with no CPU thread, for the calibration of [`ReturnCost`]: the real
//! interpreter's echo round trip at a ping gap, less this one's at the same gap, is what the
//! model leaves out when a thread comes back after that long (`gilmodel.profiles`).
//!
//! [`ReturnCost`]: crate::return_cost::ReturnCost

use super::{run, RunError};
use crate::gil::{IntervalConfig, PolicySpec, TickConfig};
use crate::scenario::{Op, PeerSpec, Scenario, StopSpec, ThreadSpec};

/// What the echo spins: the calibrated work of the interpreter's echo loop and of its client.
#[derive(Clone, Copy, Debug)]
pub struct IdleEcho {
    pub pings: u64,
    pub gap_us: u64,
    pub echo_ticks: u64,
    pub client_ticks: u64,
    pub tick_ns: f64,
    /// The tick GIL (2.x) or the interval GIL (3.2+); uncontended, either takes and drops
    /// around the echo's calls as its interpreter does.
    pub tick_gil: bool,
}

/// Round trips, ns, of the driver's pings: the scenario `fidelity.model_side` runs for the
/// `io_latency` probe with no CPU thread (an echo thread looping `recv`, its work, `send` of
/// 8 bytes, next to a driver with its client's work), on the calling thread's cores, with no
/// return cost.
pub fn idle_echo_round_trips_ns(e: IdleEcho) -> Result<Vec<i64>, RunError> {
    let io = ThreadSpec {
        name: "io".into(),
        program: vec![Op::Loop {
            times: None,
            body: vec![
                Op::Recv { bytes: 8 },
                Op::Cpu {
                    ticks: e.echo_ticks,
                },
                Op::Send { bytes: 8 },
            ],
        }],
        core: None,
        peer: Some(PeerSpec::Driver {
            pings: e.pings,
            gap_us: e.gap_us,
            bytes: 8,
            reply_bytes: 8,
            work_ticks: e.client_ticks,
            core: None,
        }),
        start_us: 0,
    };
    let gil = if e.tick_gil {
        PolicySpec::Tick(TickConfig::default())
    } else {
        PolicySpec::Interval(IntervalConfig::default())
    };
    let sc = Scenario {
        cores: crate::affinity::allowed_cores()[..1].to_vec(),
        stop: StopSpec {
            thread: Some("io".into()),
            duration_s: None,
        },
        tick_ns: e.tick_ns,
        log: false,
        ..Scenario::of("idle_echo", gil, vec![io])
    };
    Ok(run(&sc, &mut || false)?.io.rtt_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ping_is_answered_and_the_work_is_inside_it() {
        // 20 000 ticks of 50 ns: 1 ms of spin a round trip (the echo's and the client's
        // halves), which a spin never runs much faster than calibrated.
        for tick_gil in [false, true] {
            let e = IdleEcho {
                pings: 5,
                gap_us: 2_000,
                echo_ticks: 10_000,
                client_ticks: 10_000,
                tick_ns: 50.0,
                tick_gil,
            };
            let rtts = idle_echo_round_trips_ns(e).unwrap();
            assert_eq!(rtts.len(), 5);
            assert!(rtts.iter().all(|&r| r > 500_000), "{rtts:?}");
        }
    }
}
