//! A peer's thread (started by `start.rs`) until it is joined: outside the GIL, pinned to its
//! core or restricted to the scenario's, released with the workers; it drains its socket or
//! drives it ([`peer::drain`], [`peer::drive`]) and hands back the round trips it timed.

use super::peer::{self, Ping};
use super::{Setup, Shared};
use crate::affinity;
use crate::gil::Gil;
use crate::scenario::PeerSpec;
use std::sync::atomic::Ordering::Relaxed;

/// What a peer hands back.
#[derive(Debug, Default)]
pub struct PeerEnd {
    /// The scenario thread it serves.
    pub thread: usize,
    /// The round trips a driver timed.
    pub pings: Vec<Ping>,
    /// The `recv` calls a drain made that returned data.
    pub reads: u64,
}

/// The peer of scenario thread `i` (which has one), whose thread is called `name`.
pub(super) fn body<G: Gil>(setup: &Setup, sh: &Shared<G>, i: usize, name: &str) -> PeerEnd {
    let (Some(link), Some(spec)) = (&setup.links[i], &setup.sc.threads[i].peer) else {
        unreachable!("thread {i} has a peer, and a socket to it");
    };
    affinity::block_signals();
    affinity::set_name(name);
    let _ = match spec.core() {
        Some(c) => affinity::pin_current(&[c]),
        None => affinity::pin_current(&setup.pl.cores),
    };
    if !setup.gate.arrive_and_wait() {
        return PeerEnd {
            thread: i,
            ..PeerEnd::default()
        };
    }
    let t0 = sh.t0.load(Relaxed);
    match spec {
        PeerSpec::Drain { .. } => {
            let d = peer::drain(&link.peer_end);
            PeerEnd {
                thread: i,
                pings: Vec::new(),
                reads: d.reads,
            }
        }
        PeerSpec::Driver {
            pings,
            gap_us,
            bytes,
            reply_bytes,
            work_ticks,
            ..
        } => PeerEnd {
            thread: i,
            pings: peer::drive(
                &link.peer_end,
                t0,
                peer::Pings {
                    pings: *pings,
                    gap_us: *gap_us,
                    bytes: *bytes,
                    reply_bytes: *reply_bytes,
                    work_ticks: *work_ticks,
                    iters_per_tick: setup.iters_per_tick,
                },
                &sh.stop,
            ),
            reads: 0,
        },
    }
}
