//! A peer's thread from spawn to join: outside the GIL, pinned to its core or restricted to
//! the scenario's, released with the workers; it drains its socket or drives it
//! ([`peer::drain`], [`peer::drive`]) and hands back the round trips it timed.

use super::peer::{self, Ping};
use super::{Setup, Shared};
use crate::affinity;
use crate::gil::Gil;
use crate::scenario::PeerSpec;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::{Scope, ScopedJoinHandle};

/// What a peer hands back: its thread's index and the round trips it timed.
pub type PeerEnd = (usize, Vec<Ping>);

/// Start the peer of scenario thread `i` (which has one), named `gm-peer:<name>`.
pub(super) fn spawn<'s, G: Gil>(
    s: &'s Scope<'s, '_>,
    setup: &'s Setup,
    sh: &'s Shared<G>,
    i: usize,
) -> io::Result<ScopedJoinHandle<'s, PeerEnd>> {
    let name = format!("gm-peer:{}", setup.sc.threads[i].name);
    std::thread::Builder::new()
        .name(name.clone())
        .spawn_scoped(s, move || body(setup, sh, i, &name))
}

fn body<G: Gil>(setup: &Setup, sh: &Shared<G>, i: usize, name: &str) -> PeerEnd {
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
        return (i, Vec::new());
    }
    let t0 = sh.t0.load(Relaxed);
    match spec {
        PeerSpec::Drain { .. } => {
            peer::drain(&link.peer_end);
            (i, Vec::new())
        }
        PeerSpec::Driver {
            pings,
            gap_us,
            bytes,
            reply_bytes,
            ..
        } => (
            i,
            peer::drive(
                &link.peer_end,
                t0,
                *pings,
                *gap_us,
                *bytes,
                *reply_bytes,
                &sh.stop,
            ),
        ),
    }
}
