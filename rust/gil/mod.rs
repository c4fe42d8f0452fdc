//! GIL policies behind one trait, and the per-thread context they record into.
//!
//! Vocabulary (docs/design.md §2): *take* (a thread wants the GIL), *release* (it gives it up),
//! *tick* (one unit of the holder's work between "bytecodes", after which the policy may check;
//! a tick where it does is a *check point*), and the blocking call, which the engine builds from
//! release + system call + take, as `Py_BEGIN/END_ALLOW_THREADS` does.
//!
//! The engine is generic over `G: Gil`, so a policy's `tick` is inlined into the spin loop: the
//! per-tick cost is what the policy itself does (a decrement and, at a check point, one relaxed
//! load), never an indirect call.
//!
//! # Logging contract
//! A policy calls [`ThreadCx::requested`] before it starts to wait, [`ThreadCx::acquired`]
//! after it holds the GIL, and [`ThreadCx::releasing`] *before* it makes the GIL available.
//! Because a release is logged before the lock is freed and an acquisition after it is taken,
//! the holding periods in the log never overlap.

pub mod bfs;
pub mod fifo;
pub mod interval;
mod locked;
pub mod nogil;
pub mod priority;
pub mod tick;

use crate::beacon::{Beacon, GIL_HOLDING, GIL_NONE, GIL_WAITING};
use crate::clock::now_ns;
use crate::contract::SpecError;
use crate::log::{current_cpu, Ev, EventBuf, IoOp};
use crate::prim::PrimCounts;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

pub use bfs::{BfsConfig, BfsGil};
pub use fifo::{FifoConfig, FifoGil};
pub use interval::{IntervalConfig, IntervalGil};
pub use nogil::{NoGil, NoGilConfig};
pub use priority::{PriorityConfig, PriorityGil};
pub use tick::{LockKind, TickConfig, TickGil};

/// Which GIL, with its knobs: a scenario's `gil`, and (its serialisation) `meta["gil"]`.
///
/// A policy is its module, a variant here with its arms in [`PolicySpec::knobs`] and
/// [`PolicySpec::with_gil`], and its Python class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum PolicySpec {
    Tick(TickConfig),
    Interval(IntervalConfig),
    Priority(PriorityConfig),
    Bfs(BfsConfig),
    Fifo(FifoConfig),
    #[serde(rename = "nogil")]
    NoGil(NoGilConfig),
}

impl PolicySpec {
    /// The knobs, to check them or ask what waits they imply.
    pub fn knobs(&self) -> &dyn Knobs {
        match self {
            PolicySpec::Tick(c) => c,
            PolicySpec::Interval(c) => c,
            PolicySpec::Priority(c) => c,
            PolicySpec::Bfs(c) => c,
            PolicySpec::Fifo(c) => c,
            PolicySpec::NoGil(c) => c,
        }
    }

    /// Build this policy's GIL for a run of `threads` threads and hand it to `f`.
    pub fn with_gil<F: WithGil>(&self, threads: usize, f: F) -> F::Out {
        match self {
            PolicySpec::Tick(c) => f.with(TickGil::new(c.clone())),
            PolicySpec::Interval(c) => f.with(IntervalGil::new(c.clone())),
            PolicySpec::Priority(c) => f.with(PriorityGil::new(c.clone(), threads)),
            PolicySpec::Bfs(c) => f.with(BfsGil::new(c.clone(), threads)),
            PolicySpec::Fifo(c) => f.with(FifoGil::new(c.clone(), threads)),
            PolicySpec::NoGil(c) => f.with(NoGil::new(c.clone())),
        }
    }
}

/// A policy's knobs, as a scenario gives them.
pub trait Knobs {
    /// Check every knob against its [`contract`](crate::contract) limit; the error names the
    /// knob as `gil.<knob>`.
    fn validate(&self) -> Result<(), SpecError>;
    /// The longest a waiter may legitimately wait by this policy's own timing, in µs, in case
    /// it only notices a free GIL when its timed wait runs out (its interval, its slice, the
    /// holder's least hold); 0: it has none. The watchdog's default allows for it.
    fn longest_wait_us(&self) -> u64 {
        0
    }
}

/// What to do with a policy's GIL once [`PolicySpec::with_gil`] has built it: generic over the
/// policy, so the engine is compiled for each one and its `tick` inlined into the spin loop.
pub trait WithGil {
    type Out;
    fn with<G: Gil>(self, gil: G) -> Self::Out;
}

/// Why the holder releases the GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// At a check point (the tick GIL's periodic release, or a drop request).
    Poll,
    /// Around a blocking call (`Py_BEGIN_ALLOW_THREADS`).
    Blocking,
    /// The thread is finishing (3.x: `drop_gil(NULL)`, no FORCE_SWITCHING wait).
    Exit,
}

/// A GIL policy. One instance is shared by all threads of a run.
pub trait Gil: Send + Sync {
    /// Block until the calling thread holds the GIL.
    fn take(&self, cx: &mut ThreadCx);
    /// Give the GIL up; the caller holds it.
    fn release(&self, cx: &mut ThreadCx, why: Release);
    /// Ticks between this policy's check points (its `check_every`), counted per thread in
    /// [`ThreadCx::countdown`] by the default [`tick`](Gil::tick).
    fn check_every(&self) -> u32;
    /// At a check point: whether the holder must give the GIL up now (a drop request is
    /// pending, a waiter is due). The default: never (no GIL to give up).
    #[inline(always)]
    fn must_drop(&self, _cx: &ThreadCx) -> bool {
        false
    }
    /// Called by the holder after every tick of work. Returns true when this tick was a check
    /// point (the engine then also looks at its stop flag). May release and retake the GIL.
    ///
    /// The default counts [`check_every`](Gil::check_every) ticks down per thread; at a check
    /// point, when [`must_drop`](Gil::must_drop) says so, it logs a forced drop, releases
    /// ([`Release::Poll`]) and takes the GIL again (the eval loop's drop-request branch).
    #[inline(always)]
    fn tick(&self, cx: &mut ThreadCx) -> bool {
        cx.countdown -= 1;
        if cx.countdown != 0 {
            return false;
        }
        cx.countdown = self.check_every();
        if self.must_drop(cx) {
            cx.stats.forced_drops += 1;
            cx.forced = true; // logged by `releasing`, with the release's time
            self.release(cx, Release::Poll);
            self.take(cx);
        }
        true
    }
    /// A system call with the GIL released around it (`Py_BEGIN/END_ALLOW_THREADS`): release,
    /// log `io_begin`, run `call` (which returns the bytes it moved), log `io_end`, take again.
    /// A policy that treats early releases specially (a priority boost, say) overrides this.
    fn blocking(&self, cx: &mut ThreadCx, op: IoOp, call: impl FnOnce() -> i64) -> i64
    where
        Self: Sized,
    {
        self.release(cx, Release::Blocking);
        cx.event(Ev::IoBegin, op as i64);
        let r = call();
        cx.event(Ev::IoEnd, r);
        self.take(cx);
        r
    }
    /// Whether a blocking lock acquire (a `join`) returns to run a signal handler when a
    /// signal arrives (3.2+: `PY_LOCK_INTR`), or retries on `EINTR` and stays blocked (2.x).
    fn interruptible(&self) -> bool {
        true
    }
}

/// Measurement state shared by all threads: who held the GIL last and how often the holder
/// changed. Written only by the thread that just acquired the GIL (so relaxed suffices: the
/// GIL's own synchronisation orders these writes).
pub struct Instr {
    last_holder: AtomicU32,
    switches: AtomicU64,
}

impl Default for Instr {
    fn default() -> Self {
        Instr {
            last_holder: AtomicU32::new(u32::MAX),
            switches: AtomicU64::new(0),
        }
    }
}

impl Instr {
    pub fn switches(&self) -> u64 {
        self.switches.load(Relaxed)
    }
}

/// Counters a thread accumulates while it runs (the GIL-related columns of `threads`).
#[derive(Clone, Debug, Default)]
pub struct GilStats {
    pub acquisitions: u64,
    /// Acquisitions that changed the holder.
    pub switches_in: u64,
    pub hold_ns: i64,
    pub wait_ns: i64,
    pub futile_wakeups: u64,
    pub timeouts: u64,
    pub drop_requests: u64,
    pub forced_drops: u64,
    pub switch_waits: u64,
}

/// Events a thread keeps before pushing them to its log ([`ThreadCx::event`]); more are
/// pushed at once.
const PENDING: usize = 16;

/// One scenario thread's view of the run: its identity, its log buffer and its counters.
pub struct ThreadCx<'a> {
    pub idx: u16,
    pub log: EventBuf,
    pub stats: GilStats,
    /// Calls of the glibc primitives a policy counted here rather than in the thread-local
    /// counters (the `_in` calls, `crate::prim::counts`); added to them at the thread's end.
    pub calls: PrimCounts,
    /// Ticks left until this thread's next check point (policies that poll every n ticks).
    pub countdown: u32,
    /// Whether this thread holds the GIL (so a panic can release it).
    pub holding: bool,
    /// The default [`Gil::tick`] saw a drop request: [`releasing`](Self::releasing) logs
    /// the forced drop.
    pub forced: bool,
    /// The scenario's main thread (thread 0): the one that runs signal handlers.
    pub main: bool,
    /// The run's "a signal is pending" flag, when it sends signals.
    pub signal_pending: Option<&'a AtomicBool>,
    /// This thread's tick counter, GIL state and current op, where the engine's watchdog
    /// reads them.
    pub beacon: &'a Beacon,
    instr: &'a Instr,
    request_ns: i64,
    /// Events recorded but not yet pushed to `log` (see [`ThreadCx::event`]), oldest first.
    pending: [(i64, i16, Ev, i64); PENDING],
    npending: usize,
    hold_start_ns: i64,
    ticks_at_acquire: u64,
}

impl<'a> ThreadCx<'a> {
    pub fn new(idx: u16, log: EventBuf, instr: &'a Instr, beacon: &'a Beacon) -> Self {
        ThreadCx {
            idx,
            log,
            stats: GilStats::default(),
            calls: PrimCounts::default(),
            countdown: 1,
            holding: false,
            forced: false,
            main: idx == 0,
            signal_pending: None,
            beacon,
            instr,
            request_ns: 0,
            pending: [(0, 0, Ev::Start, 0); PENDING],
            npending: 0,
            hold_start_ns: 0,
            ticks_at_acquire: 0,
        }
    }

    /// Ticks of work done so far.
    #[inline(always)]
    pub fn ticks(&self) -> u64 {
        self.beacon.ticks()
    }

    /// One more tick of work done.
    #[inline(always)]
    pub fn add_tick(&mut self) {
        self.beacon.add_tick();
    }

    /// Record an event now.
    ///
    /// Its time and CPU are read now; it is pushed to the log at the thread's next
    /// acquisition (after the policy's internal lock was released) or exit. Most events fall
    /// inside a GIL's critical windows, while the thread holds the policy's mutex between a
    /// wait's return and its next wait, or between the holder's decision to drop and its
    /// release. There, four stores into log columns that went cold while the thread slept
    /// cost a good part of a microsecond, and which waiter gets the GIL is decided by races of
    /// about that size: with 4 CPU threads on 2 cores and 3.11's costs, a timed-out waiter
    /// held the mutex 1.24 µs before this (and the layout of `interval.rs`), 0.80 µs after,
    /// 0.34–0.42 µs in CPython 3.11.7 (`benches/pthread_timer.py`,
    /// docs/validation/many-threads.md). A few stores into this context, which the thread
    /// touches anyway, cost much less.
    #[inline]
    pub fn event(&mut self, ev: Ev, arg: i64) {
        let t = now_ns();
        self.event_at(t, ev, arg);
    }

    /// As [`event`](Self::event), with a time the caller has just read.
    #[inline]
    pub fn event_at(&mut self, t: i64, ev: Ev, arg: i64) {
        if !self.log.enabled() {
            return;
        }
        if self.npending == PENDING {
            self.flush();
        }
        self.pending[self.npending] = (t, current_cpu(), ev, arg);
        self.npending += 1;
    }

    /// Push the recorded events to the log.
    #[inline]
    pub fn flush(&mut self) {
        for &(t, cpu, ev, arg) in &self.pending[..self.npending] {
            self.log.push_on(t, cpu, ev, arg);
        }
        self.npending = 0;
    }

    /// The thread starts waiting for the GIL.
    #[inline]
    pub fn requested(&mut self) {
        let t = now_ns();
        self.requested_at(t);
    }

    /// As [`requested`](Self::requested), with a time the caller has just read.
    ///
    /// Like every GIL event it is pushed at the next acquisition ([`event`](Self::event)), so
    /// the window between a release and the immediate retake, where the tick GIL's races are
    /// decided, is nearly the same with logging on and off.
    #[inline]
    pub fn requested_at(&mut self, t: i64) {
        self.request_ns = t;
        self.event_at(t, Ev::Request, 0);
        self.beacon.gil(GIL_WAITING);
    }

    /// The thread now holds the GIL.
    #[inline]
    pub fn acquired(&mut self) {
        let t = now_ns();
        self.acquired_at(t);
    }

    /// As [`acquired`](Self::acquired), with a time the policy read while it still held its
    /// internal lock: then no event another thread logs because of this acquisition (a drop
    /// request carrying the new switch number, say) can carry an earlier time.
    #[inline]
    pub fn acquired_at(&mut self, t: i64) {
        let me = self.idx as u32;
        let mut n = self.instr.switches.load(Relaxed);
        if self.instr.last_holder.load(Relaxed) != me {
            self.instr.last_holder.store(me, Relaxed);
            n += 1;
            self.instr.switches.store(n, Relaxed);
            self.stats.switches_in += 1;
        }
        self.stats.acquisitions += 1;
        self.stats.wait_ns += t - self.request_ns;
        self.hold_start_ns = t;
        self.ticks_at_acquire = self.ticks();
        self.holding = true;
        self.beacon.gil(GIL_HOLDING);
        self.beacon.step();
        self.flush();
        self.log.push(t, Ev::Acquire, n as i64);
    }

    /// The thread is about to make the GIL available; returns the time read.
    #[inline]
    pub fn releasing(&mut self) -> i64 {
        let t = now_ns();
        if self.forced {
            // One clock read for both: the holder's path from the drop request to the
            // policy's mutex is one of the races that decide who gets the GIL.
            self.forced = false;
            self.event_at(t, Ev::ForcedDrop, 0);
        }
        self.stats.hold_ns += t - self.hold_start_ns;
        self.holding = false;
        self.beacon.gil(GIL_NONE);
        let ticks = self.ticks() - self.ticks_at_acquire;
        self.event_at(t, Ev::Release, ticks as i64);
        t
    }

    /// A signal is waiting for the main thread to run its handler.
    #[inline(always)]
    pub fn signal_is_pending(&self) -> bool {
        self.signal_pending.is_some_and(|p| p.load(Relaxed))
    }

    /// When the current holding period began (valid while holding).
    #[inline]
    pub fn acquired_ns(&self) -> i64 {
        self.hold_start_ns
    }

    /// A waiter found the GIL still taken after `n` wake-ups.
    #[inline]
    pub fn futile(&mut self, n: u64) {
        if n > 0 {
            self.stats.futile_wakeups += n;
            self.event(Ev::FutileWakeup, n as i64);
        }
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Helpers to drive a policy from plain threads in unit tests.
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Run `threads` threads that each do `ticks` ticks of (no) work under `gil`, holding it
    /// around the work as the engine does; returns each thread's context data.
    pub fn contend<G: Gil>(gil: &G, threads: usize, ticks: u64) -> Vec<(GilStats, EventBuf, u64)> {
        drive(threads, |_, cx| {
            gil.take(cx);
            for _ in 0..ticks {
                work_tick(gil, cx);
            }
            gil.release(cx, Release::Exit);
        })
    }

    /// One tick of (no) work, then the policy's tick.
    pub fn work_tick<G: Gil>(gil: &G, cx: &mut ThreadCx) -> bool {
        for _ in 0..50 {
            std::hint::black_box(0u64);
        }
        cx.add_tick();
        gil.tick(cx)
    }

    /// Run `threads` threads, released together, each running `body(its index, its context)`
    /// (which takes and releases the GIL itself); returns each thread's context data.
    pub fn drive(
        threads: usize,
        body: impl Fn(usize, &mut ThreadCx) + Sync,
    ) -> Vec<(GilStats, EventBuf, u64)> {
        let instr = Instr::default();
        let go = AtomicBool::new(false);
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|i| {
                    let (instr, go, body) = (&instr, &go, &body);
                    s.spawn(move || {
                        let beacon = Beacon::default();
                        let log = EventBuf::new(1 << 20, true);
                        let mut cx = ThreadCx::new(i as u16, log, instr, &beacon);
                        while !go.load(Relaxed) {
                            std::hint::spin_loop();
                        }
                        body(i, &mut cx);
                        cx.flush();
                        let ticks = cx.ticks();
                        (cx.stats, cx.log, ticks)
                    })
                })
                .collect();
            go.store(true, Relaxed);
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// Check that no two threads' holding periods overlap and every thread alternates
    /// request → acquire → release.
    pub fn assert_exclusive(res: &[(GilStats, EventBuf, u64)]) {
        let mut holds: Vec<(i64, i64)> = Vec::new();
        for (stats, log, _) in res {
            let mut state = 0; // 0 idle, 1 requested, 2 holding
            let mut start = 0;
            let mut acq = 0;
            for i in 0..log.len() {
                let e = log.event[i];
                if e == Ev::Request as i8 {
                    assert_eq!(state, 0, "request while not idle");
                    state = 1;
                } else if e == Ev::Acquire as i8 {
                    assert_eq!(state, 1, "acquire without request");
                    state = 2;
                    start = log.t_ns[i];
                    acq += 1;
                } else if e == Ev::Release as i8 {
                    assert_eq!(state, 2, "release without holding");
                    state = 0;
                    holds.push((start, log.t_ns[i]));
                }
            }
            assert_eq!(state, 0);
            assert_eq!(acq, stats.acquisitions);
        }
        holds.sort();
        for w in holds.windows(2) {
            assert!(w[0].1 <= w[1].0, "holds overlap: {:?} {:?}", w[0], w[1]);
        }
    }
}
