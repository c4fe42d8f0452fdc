//! Hand-off latency through the replicas vs a bare pthread mutex + condvar ping-pong, measured
//! in the same run, across two cores and on one core.
//!
//! Both sides do the same dance: the holder works ~20 µs (so the other side is surely asleep
//! in its wait), records the time, hands over, and waits for its turn again. The latency is
//! the waiter's wake-up time minus the holder's hand-over time. Reported: medians of 20 000
//! hand-offs, interleaved in 5 rounds so machine noise hits every side alike.
//!
//! Run: `cargo bench --bench handoff`

use gilmodel::affinity::{allowed_cores, pin_current};
use gilmodel::beacon::Beacon;
use gilmodel::clock::now_ns;
use gilmodel::engine::spin::{calibration, spin};
use gilmodel::gil::{
    Gil, Instr, IntervalConfig, IntervalGil, LockKind, Release, ThreadCx, TickConfig, TickGil,
};
use gilmodel::log::EventBuf;
use gilmodel::prim::{Condvar, Mutex};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::*};

const HOLD_NS: f64 = 20_000.0;

/// Bare pthread ping-pong: `turn` under a mutex, one condvar.
fn bare(cores: [usize; 2], n: usize) -> Vec<i64> {
    struct S {
        m: Mutex,
        c: Condvar,
        turn: UnsafeCell<u32>,
        handed_at: UnsafeCell<i64>,
    }
    unsafe impl Sync for S {}
    let s = S {
        m: Mutex::new(),
        c: Condvar::new(),
        turn: UnsafeCell::new(0),
        handed_at: UnsafeCell::new(0),
    };
    let holder = AtomicU32::new(0);
    let iters = calibration().iters_for(HOLD_NS);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2u32)
            .map(|me| {
                let (s, holder) = (&s, &holder);
                sc.spawn(move || {
                    pin_current(&[cores[me as usize]]).unwrap();
                    let mut lat = Vec::with_capacity(n);
                    for i in 0..n {
                        s.m.lock();
                        // SAFETY: fields are only touched with the mutex held.
                        unsafe {
                            while *s.turn.get() != me {
                                s.c.wait(&s.m);
                            }
                            let woke = now_ns();
                            holder.store(me, Release);
                            let h = *s.handed_at.get();
                            if h != 0 {
                                lat.push(woke - h);
                            }
                            s.m.unlock();
                            std::hint::black_box(spin(iters, gilmodel::engine::spin::SEED)); // hold
                            s.m.lock();
                            *s.turn.get() = 1 - me;
                            *s.handed_at.get() = now_ns();
                            s.c.signal();
                            s.m.unlock();
                        }
                        // Same protocol as the replica side: yield until the other side has
                        // taken over, then queue again.
                        while i + 1 < n && holder.load(Acquire) == me {
                            std::thread::yield_now();
                        }
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// The same dance through a replica: hold the GIL ~20 µs, release, wait until the other
/// thread has it, take it again (blocking in the replica's own wait).
fn replica<G: Gil>(gil: &G, cores: [usize; 2], n: usize) -> Vec<i64> {
    let instr = Instr::default();
    let handed_at = AtomicI64::new(0);
    let holder = AtomicU32::new(u32::MAX);
    let iters = calibration().iters_for(HOLD_NS);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2u32)
            .map(|me| {
                let (instr, handed_at, holder) = (&instr, &handed_at, &holder);
                sc.spawn(move || {
                    pin_current(&[cores[me as usize]]).unwrap();
                    let beacon = Beacon::default();
                    let log = EventBuf::new(16 * n + 64, true);
                    let mut cx = ThreadCx::new(me as u16, log, instr, &beacon);
                    let mut lat = Vec::with_capacity(n);
                    // Thread 1 starts second, so thread 0 holds first.
                    if me == 1 {
                        while holder.load(Acquire) != 0 {
                            std::thread::yield_now(); // the other side may need this core
                        }
                    }
                    for i in 0..n {
                        gil.take(&mut cx);
                        let woke = now_ns();
                        holder.store(me, Release);
                        let h = handed_at.swap(0, AcqRel);
                        if h != 0 {
                            lat.push(woke - h);
                        }
                        std::hint::black_box(spin(iters, gilmodel::engine::spin::SEED)); // hold
                        handed_at.store(now_ns(), Release);
                        gil.release(&mut cx, Release::Blocking);
                        if i + 1 == n {
                            break;
                        }
                        // Wait until the other side has it, then queue again.
                        while holder.load(Acquire) == me && handed_at.load(Acquire) != 0 {
                            std::thread::yield_now(); // the other side may need this core
                        }
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

fn median(mut v: Vec<i64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1000.0
}

fn main() {
    let allowed = allowed_cores();
    let mut layouts = vec![("one core", [allowed[0], allowed[0]])];
    if allowed.len() >= 2 {
        layouts.insert(0, ("across cores", [allowed[0], allowed[1]]));
    }
    let n = 4000;
    for (label, cores) in layouts {
        let (mut b, mut iv, mut tc) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            b.extend(bare(cores, n));
            iv.extend(replica(
                &IntervalGil::new(IntervalConfig::default()),
                cores,
                n,
            ));
            tc.extend(replica(
                &TickGil::new(TickConfig {
                    check_interval: 100,
                    lock: LockKind::MutexCond,
                }),
                cores,
                n,
            ));
        }
        let (mb, mi, mt) = (median(b), median(iv), median(tc));
        println!(
            "handoff {label} {cores:?}: bare mutex+condvar {mb:.1} µs | interval GIL {mi:.1} µs ({:.2}x) | tick GIL mutex_cond {mt:.1} µs ({:.2}x)",
            mi / mb,
            mt / mb
        );
    }
}
