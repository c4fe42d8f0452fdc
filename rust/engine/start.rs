//! The start of a run: what it sets up before any thread exists (calibration, sockets, the
//! event budget's flag, the start gate), and starting every worker and peer so that all are
//! released together at t0, or none is when one cannot be started.

use super::gate::Gate;
use super::peer::Link;
use super::peer_thread::{self, PeerEnd};
use super::worker_thread::{self, WorkerEnd};
use super::{spin, RunError, Shared, ThreadStats};
use crate::clock::now_ns;
use crate::gil::Gil;
use crate::log::EventBuf;
use crate::scenario::{Placement, Scenario};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

/// What a run sets up before any thread starts, besides [`Shared`]; read by every thread.
pub(super) struct Setup<'a> {
    pub sc: &'a Scenario,
    pub pl: Placement,
    pub cal: spin::Calibration,
    /// How old `cal` was when the run began, s (0: measured for this run).
    pub cal_age_s: f64,
    pub iters_per_tick: u32,
    /// Each thread's share of `max_events`.
    pub per_thread_cap: usize,
    /// Raised by the first event a thread's full buffer has to drop.
    pub budget_full: Arc<AtomicBool>,
    /// The socket to its peer of each thread that has one.
    pub links: Vec<Option<Link>>,
    /// The scratch file of each thread whose program writes (`Op::Write`).
    pub files: Vec<Option<std::fs::File>>,
    /// Everyone arrives → the controller reads t0 → the gate opens and everyone goes.
    pub gate: Gate,
}

/// A file in the temporary directory (`$TMPDIR`, else /tmp) that no other process can open:
/// `O_TMPFILE` where the file system has it, else a new name unlinked at once. It goes with its
/// last descriptor.
fn scratch_file() -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).mode(0o600);
    match o.clone().custom_flags(libc::O_TMPFILE).open(&dir) {
        Ok(f) => return Ok(f),
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            return Err(e)
        }
        Err(_) => {}
    }
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = dir.join(format!(
        "gilmodel-write-{}-{}",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    ));
    let f = o.create_new(true).open(&path)?;
    std::fs::remove_file(&path)?; // on failure the file closes here; its name stays, empty
    Ok(f)
}

impl<'a> Setup<'a> {
    pub fn new(sc: &'a Scenario, pl: Placement) -> Result<Self, RunError> {
        let (cal, cal_age_s) = spin::calibration_aged();
        let links = sc
            .threads
            .iter()
            .map(|t| t.peer.as_ref().map(|_| Link::tcp()).transpose())
            .collect::<Result<_, _>>()
            .map_err(|e| RunError::Failed(format!("loopback socket setup failed: {e}")))?;
        let files = sc
            .threads
            .iter()
            .map(|t| t.writes().then(scratch_file).transpose())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                RunError::Failed(format!(
                    "a scratch file for write ops in {} could not be made: {e}",
                    std::env::temp_dir().display()
                ))
            })?;
        Ok(Setup {
            sc,
            pl,
            cal,
            cal_age_s,
            iters_per_tick: cal.iters_for(sc.tick_ns),
            per_thread_cap: (sc.max_events / sc.threads.len() as u64) as usize,
            budget_full: Arc::new(AtomicBool::new(false)),
            links,
            files,
            gate: Gate::new(),
        })
    }

    /// Wake every thread blocked in a socket call: pending and later calls return.
    pub fn wake_sockets(&self) {
        self.links.iter().flatten().for_each(Link::shutdown);
    }
}

/// The running threads of a run.
pub(super) struct Started<'s> {
    workers: Vec<ScopedJoinHandle<'s, WorkerEnd>>,
    peers: Vec<ScopedJoinHandle<'s, PeerEnd>>,
}

impl Started<'_> {
    /// Join every thread (the run has been told to stop): each worker's row and events, each
    /// peer's round trips.
    pub fn join(self) -> (Vec<(ThreadStats, EventBuf)>, Vec<PeerEnd>) {
        let workers = self
            .workers
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("worker panics are caught")
                    .expect("the gate opened")
            })
            .collect();
        let peers = self
            .peers
            .into_iter()
            .filter_map(|h| h.join().ok())
            .collect();
        (workers, peers)
    }
}

/// Start every worker, then every peer, and release them all together at t0 (`sh.t0`). When
/// one cannot be started, the gate is cancelled and those started are joined.
pub(super) fn start<'s, G: Gil>(
    s: &'s Scope<'s, '_>,
    setup: &'s Setup,
    sh: &'s Shared<G>,
) -> Result<Started<'s>, String> {
    let threads = &setup.sc.threads;
    let mut failed = None;
    let mut workers = Vec::with_capacity(threads.len());
    for (i, t) in threads.iter().enumerate() {
        let body = move |name: &str| worker_thread::body(setup, sh, i, name);
        match spawn_named(s, format!("gm:{}", t.name), body) {
            Ok(h) => workers.push(h),
            Err(e) => {
                failed = Some(format!("could not start thread {:?}: {e}", t.name));
                break;
            }
        }
    }
    let mut peers = Vec::new();
    for (i, t) in threads.iter().enumerate().filter(|(_, t)| t.peer.is_some()) {
        if failed.is_some() {
            break;
        }
        let body = move |name: &str| peer_thread::body(setup, sh, i, name);
        match spawn_named(s, format!("gm-peer:{}", t.name), body) {
            Ok(h) => peers.push(h),
            Err(e) => failed = Some(format!("could not start the peer of {:?}: {e}", t.name)),
        }
    }
    if let Some(e) = failed {
        setup.gate.release(false);
        for h in workers {
            let _ = h.join();
        }
        for h in peers {
            let _ = h.join();
        }
        return Err(e);
    }
    setup.gate.wait_for(workers.len() + peers.len());
    sh.t0.store(now_ns(), Relaxed);
    setup.gate.release(true);
    Ok(Started { workers, peers })
}

/// Run `body(name)` on a new scoped thread called `name` (std's name; `body` names the OS
/// thread itself, after setting its signal mask).
fn spawn_named<'s, T: Send + 's>(
    s: &'s Scope<'s, '_>,
    name: String,
    body: impl FnOnce(&str) -> T + Send + 's,
) -> io::Result<ScopedJoinHandle<'s, T>> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn_scoped(s, move || body(&name))
}
