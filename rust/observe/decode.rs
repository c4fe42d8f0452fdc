//! Probe hits → the model's events, so an observed run has the schema of a model run
//! (rust/log.rs): per thread `request` → `acquire` → `release`, at most one holder at a time.
//!
//! What is observed and what is inferred, by interpreter:
//!
//! - 3.2–3.13 (`Python/ceval_gil.h`, 3.12+ `Python/ceval_gil.c`): `request` is `take_gil`'s entry, `acquire` its return,
//!   `release` `drop_gil`'s entry; all three observed. Inside a take, each return of
//!   `pthread_cond_timedwait` is observed: ETIMEDOUT is a `timeout`; a wake-up that is followed
//!   by another wait of the same take is a `futile_wakeup` (the waiter found the GIL taken
//!   again). `drop_request` is inferred as CPython decides it (`take_gil`: `timed_out &&
//!   gil->locked && gil->switch_number == saved_switchnum`; CPython e5e1c1f `Python/ceval_gil.c`
//!   lines 342–462, the lines rust/gil/interval.rs replicates): at a timeout, the
//!   GIL is held by another thread and no hand-off happened since this wait began: at its
//!   first futex wait on the condition variable where system calls are traced (the read of
//!   `switch_number` comes just before; a hand-off is logged at the acquirer's return from
//!   `take_gil`, µs after the waiter may have seen it), else at the take's entry or the
//!   previous wait's return. Forced drops and FORCE_SWITCHING's wait are not observed.
//! - 2.7 (`Python/ceval.c`, `Python/thread_pthread.h`): the GIL is a plain lock; calls of
//!   `PyThread_acquire_lock`/`PyThread_release_lock` on it (the lock in the static
//!   `interpreter_lock`) are `request`/`acquire`/`release`; calls on other locks are dropped.
//!   There are no timed waits, so no timeouts or drop requests.
//!
//! Blocking system calls (x86_64, `raw_syscalls` filtered to
//! [`super::probes::BLOCKING_SYSCALLS`]) made with the GIL released are `io_begin`/`io_end`
//! with the model's op (send, recv, sleep, lock) and, at the end, the bytes or 0. `lock` is a
//! `futex` wait outside the GIL's own functions: a wait for a lock, a `Condition`, a queue or a
//! `join`. The futex waits inside 3.x's `drop_gil` (from its entry to its return: its mutex,
//! FORCE_SWITCHING's wait) are the GIL's own and left out. Each `lock` wait is followed by a
//! `lock_wait` naming the futex's address; a futex wake that woke someone, outside the GIL's
//! own functions (3.x: `take_gil`, `drop_gil`; 2.x: the `sem_post` of the GIL's release), is a
//! `lock_wake` naming its address: the pair says who woke whom.
//!
//! Threads: a `start` at the thread's creation (`PERF_RECORD_FORK`) or, for threads already
//! running when observation began, at their first record; an `exit` at `PERF_RECORD_EXIT`.

use super::probes::{Hook, Raw, What};
use crate::engine::ThreadStats;
use crate::log::{Ev, Events};
use std::collections::HashMap;

/// Which protocol the probes follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Flavour {
    /// 3.2+: take_gil / drop_gil.
    Interval,
    /// 2.x: the interpreter lock.
    Lock,
}

const ETIMEDOUT: u64 = libc::ETIMEDOUT as u64;
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;

#[derive(Default)]
struct Th {
    tid: u32,
    comm: String,
    stats: ThreadStats,
    started: bool,
    in_take: bool,
    requested_at: i64,
    holding: bool,
    acquired_at: i64,
    saved_switches: u64,
    /// `saved_switches` was taken at this wait's own futex entry (see the `SysEnter` arm).
    wait_saved: bool,
    woke_at: Option<(i64, i16)>,
    pending_lock: Option<u64>,
    /// Where this thread's pending `request` is in the output (removed if its take's return
    /// is never seen).
    req_at: usize,
    /// The blocking system call it is in (its number), between `io_begin` and `io_end`.
    in_io: Option<u64>,
    /// Inside `drop_gil` (3.x): from its entry to its return (or, its return unseen, the next take).
    in_drop: bool,
    /// 2.x: released the GIL, whose `sem_post` (a futex wake, when it has waiters) is the
    /// GIL's own; cleared by the next futex wake or take.
    gil_post: bool,
    /// A futex wake entered outside the GIL's functions: its address, time and CPU, logged
    /// (at its entry's time, before the waiter it woke returns) when its exit says it woke
    /// anyone.
    wake: Option<(u64, i64, i16)>,
}

/// The model's op (`io_begin`'s arg) for a blocking system call, if it is one observed.
/// `futex`'s waits are kept, its wakes not (`futex_op`: its second argument, flags masked).
/// glibc 2.36 waits with `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` and wakes with `FUTEX_WAKE`/
/// `FUTEX_WAKE_BITSET`; the older `FUTEX_WAKE_OP`/`FUTEX_CMP_REQUEUE` wakes are not paired.
fn op_of(nr: u64, futex_op: u64) -> Option<i64> {
    if nr == super::probes::FUTEX_NR && !matches!(futex_op & 127, FUTEX_WAIT | FUTEX_WAIT_BITSET) {
        return None;
    }
    super::probes::BLOCKING_SYSCALLS
        .iter()
        .find(|(n, _)| *n as u64 == nr)
        .map(|(_, op)| *op)
}

/// What decoding found beside the events (for `meta`).
#[derive(Default, Debug, serde::Serialize)]
pub struct Notes {
    pub other_process_records: u64,
    /// Processes the program started (`fork`, `vfork`, a `clone` without `CLONE_THREAD`:
    /// [`super::probes::PROCESS_SYSCALLS`]), which are not followed.
    pub processes_started: u64,
    pub unpaired_returns: u64,
    pub releases_without_acquire: u64,
    pub other_lock_calls: u64,
    /// Takes whose return the kernel never reported (seen as a second take, or a drop, with no
    /// return between): their `request` is left out, and so is the hold. With the uprobe PMU
    /// (tried first, rust/observe/probes.rs) about 1 in 10 000 of 2.7's went missing around a
    /// thread's creation; with tracefs probes none in 160 000 (2.7 and 3.11, 16 observations).
    pub lost_returns: u64,
}

/// A decoded observation.
pub struct Decoded {
    pub events: Events,
    pub threads: Vec<ThreadStats>,
    /// Each thread's OS thread id (same order as `threads`).
    pub tids: Vec<u32>,
    /// Acquisitions that changed the holder.
    pub switches: u64,
    pub notes: Notes,
}

/// Decode `raws` (any order) of process `tgid` into a run's events and threads, times made
/// relative to `t0` (ns, CLOCK_MONOTONIC); `end` is when observation ended. `gil_lock`: the
/// 2.7 interpreter lock's address.
pub fn decode(
    mut raws: Vec<Raw>,
    tgid: u32,
    flavour: Flavour,
    gil_lock: Option<u64>,
    t0: u64,
    end: u64,
) -> Decoded {
    raws.sort_by_key(|r| (r.t, r.tid));
    let mut notes = Notes::default();
    let mut ths: Vec<Th> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    // The main thread (tid == tgid) is thread 0.
    index.insert(tgid, 0);
    ths.push(Th {
        tid: tgid,
        ..Default::default()
    });
    let mut out: Vec<(i64, u16, i16, Option<Ev>, i64)> = Vec::new();
    let (mut holder, mut last_holder): (Option<usize>, Option<usize>) = (None, None);
    let mut switches = 0u64;
    let rel = |t: u64| t.saturating_sub(t0) as i64;
    for r in raws {
        if r.pid != tgid {
            notes.other_process_records += 1;
            continue;
        }
        let t = rel(r.t);
        let i = *index.entry(r.tid).or_insert_with(|| {
            ths.push(Th {
                tid: r.tid,
                ..Default::default()
            });
            ths.len() - 1
        });
        let idx = i as u16;
        let cpu = r.cpu as i16;
        let th = &mut ths[i];
        if !th.started {
            th.started = true;
            th.stats.start_ns = t;
            out.push((t, idx, cpu, Some(Ev::Start), -1));
        }
        match r.what {
            What::Fork => {}
            What::Comm { name, .. } => {
                let n = name.iter().position(|&c| c == 0).unwrap_or(16);
                th.comm = String::from_utf8_lossy(&name[..n]).into_owned();
            }
            What::Exit => {
                th.stats.exit_ns = t;
                out.push((t, idx, cpu, Some(Ev::Exit), 0));
            }
            What::SwitchOut { preempt } => {
                if preempt {
                    th.stats.nivcsw += 1;
                } else {
                    th.stats.nvcsw += 1;
                }
            }
            What::Hit {
                hook,
                arg0,
                ret,
                arg1,
            } => {
                th.stats.events += 1;
                let is_gil = |lock: u64| gil_lock.is_some_and(|g| g == lock);
                let (take, taken, dropped) = match (flavour, hook) {
                    (Flavour::Interval, Hook::TakeEntry) => (true, false, false),
                    (Flavour::Interval, Hook::TakeReturn) => (false, true, false),
                    (Flavour::Interval, Hook::DropEntry) => (false, false, true),
                    (Flavour::Interval, Hook::DropReturn) => {
                        th.in_drop = false;
                        (false, false, false)
                    }
                    (Flavour::Lock, Hook::LockEntry) => {
                        th.pending_lock = Some(arg0);
                        if !is_gil(arg0) {
                            notes.other_lock_calls += 1;
                        }
                        (is_gil(arg0), false, false)
                    }
                    (Flavour::Lock, Hook::LockReturn) => {
                        let lock = th.pending_lock.take();
                        (false, lock.is_some_and(is_gil) && ret == 1, false)
                    }
                    (Flavour::Lock, Hook::UnlockEntry) => (false, false, is_gil(arg0)),
                    // Blocking calls made with the GIL released (a write while holding it, a
                    // print, is not a wait for anything the GIL decides).
                    (_, Hook::SysEnter) => {
                        let futex = arg0 == super::probes::FUTEX_NR;
                        let (futex_op, addr) = (ret, arg1); // at an entry: args[1], args[0]
                        use super::probes::{CLONE_NR, CLONE_THREAD, PROCESS_SYSCALLS};
                        if PROCESS_SYSCALLS.contains(&arg0)
                            && (arg0 != CLONE_NR || addr & CLONE_THREAD == 0)
                        {
                            notes.processes_started += 1;
                        }
                        let gil_own = th.in_drop && futex;
                        // take_gil reads `switch_number` under the GIL's mutex, just before its
                        // timed wait; the take's entry can come before another thread's
                        // hand-off that the waiter, blocked on the mutex meanwhile, still saw
                        // (its acquisition is logged at its take's return, µs later). The
                        // condition variable's first futex wait (glibc 2.36: FUTEX_WAIT_BITSET;
                        // the mutex waits with FUTEX_WAIT) comes after the read: save there.
                        if futex
                            && th.in_take
                            && !th.wait_saved
                            && futex_op & 127 == FUTEX_WAIT_BITSET
                        {
                            th.saved_switches = switches;
                            th.wait_saved = true;
                        }
                        if let (false, false, None, false, Some(op)) = (
                            th.holding,
                            th.in_take,
                            th.in_io,
                            gil_own,
                            op_of(arg0, futex_op),
                        ) {
                            th.in_io = Some(arg0);
                            out.push((t, idx, cpu, Some(Ev::IoBegin), op));
                            if futex {
                                out.push((t, idx, cpu, Some(Ev::LockWait), addr as i64));
                            }
                        } else if futex && matches!(futex_op & 127, FUTEX_WAKE | FUTEX_WAKE_BITSET)
                        {
                            // A wake of the program's (a lock's release, a notify), not the GIL's.
                            if !(th.in_drop || th.in_take || std::mem::take(&mut th.gil_post)) {
                                th.wake = Some((addr, t, cpu));
                            }
                        }
                        (false, false, false)
                    }
                    (_, Hook::SysExit) => {
                        if th.in_io == Some(arg0) {
                            th.in_io = None;
                            out.push((t, idx, cpu, Some(Ev::IoEnd), (ret as i64).max(0)));
                        } else if let Some((a, t_in, c_in)) = th.wake.take() {
                            if arg0 == super::probes::FUTEX_NR && (ret as i64) > 0 {
                                out.push((t_in, idx, c_in, Some(Ev::LockWake), a as i64));
                            }
                        }
                        (false, false, false)
                    }
                    (Flavour::Interval, Hook::TimedWaitReturn) if th.in_take => {
                        if let Some((w, c)) = th.woke_at.take() {
                            th.stats.gil.futile_wakeups += 1;
                            out.push((w, idx, c, Some(Ev::FutileWakeup), 1));
                        }
                        if ret == ETIMEDOUT {
                            th.stats.gil.timeouts += 1;
                            out.push((t, idx, cpu, Some(Ev::Timeout), th.saved_switches as i64));
                            if holder.is_some_and(|h| h != i) && switches == th.saved_switches {
                                th.stats.gil.drop_requests += 1;
                                out.push((
                                    t,
                                    idx,
                                    cpu,
                                    Some(Ev::DropRequest),
                                    th.saved_switches as i64,
                                ));
                            }
                        } else {
                            th.woke_at = Some((t, cpu));
                        }
                        th.saved_switches = switches;
                        th.wait_saved = false;
                        (false, false, false)
                    }
                    _ => (false, false, false),
                };
                if take {
                    if th.in_io.take().is_some() {
                        out.push((t, idx, cpu, Some(Ev::IoEnd), 0)); // its exit was not seen
                    }
                    if th.in_take {
                        notes.lost_returns += 1;
                        out[th.req_at].3 = None;
                    }
                    th.req_at = out.len();
                    th.in_take = true;
                    th.in_drop = false;
                    th.gil_post = false;
                    th.requested_at = t;
                    th.saved_switches = switches;
                    th.wait_saved = false;
                    th.woke_at = None;
                    out.push((t, idx, cpu, Some(Ev::Request), 0));
                }
                if taken {
                    if !th.in_take {
                        notes.unpaired_returns += 1;
                    } else {
                        th.in_take = false;
                        th.woke_at = None;
                        if last_holder != Some(i) {
                            switches += 1;
                            th.stats.gil.switches_in += 1;
                        }
                        th.stats.gil.acquisitions += 1;
                        th.stats.gil.wait_ns += t - th.requested_at;
                        th.holding = true;
                        th.acquired_at = t;
                        holder = Some(i);
                        last_holder = Some(i);
                        out.push((t, idx, cpu, Some(Ev::Acquire), switches as i64));
                    }
                }
                if dropped {
                    if th.in_take {
                        // Its take returned unseen, then it dropped: the hold is unknown.
                        notes.lost_returns += 1;
                        out[th.req_at].3 = None;
                        th.in_take = false;
                    } else if th.holding {
                        th.holding = false;
                        th.in_drop = flavour == Flavour::Interval;
                        th.gil_post = flavour == Flavour::Lock;
                        th.stats.gil.hold_ns += t - th.acquired_at;
                        holder = None;
                        out.push((t, idx, cpu, Some(Ev::Release), 0));
                    } else {
                        notes.releases_without_acquire += 1;
                    }
                }
            }
        }
    }
    out.sort_by_key(|e| (e.0, e.1));
    let mut ev = Events::default();
    for (t, th, cpu, e, arg) in out {
        let Some(e) = e else { continue };
        ev.t_ns.push(t);
        ev.thread.push(th);
        ev.cpu.push(cpu);
        ev.event.push(e as i8);
        ev.arg.push(arg);
    }
    let end = rel(end);
    let main_comm = ths[0].comm.clone();
    let mut tids = Vec::new();
    let stats = ths
        .into_iter()
        .enumerate()
        .map(|(k, th)| {
            let mut s = th.stats;
            if s.exit_ns == 0 {
                s.exit_ns = end;
            }
            s.name = match k {
                0 => "main".to_string(),
                _ if th.comm.is_empty() || th.comm == main_comm => format!("thread-{k}"),
                _ => format!("thread-{k} ({})", th.comm),
            };
            s.error = None;
            s.affinity = Vec::new();
            s.cpu_seen = -1;
            tids.push(th.tid);
            s
        })
        .collect();
    Decoded {
        events: ev,
        threads: stats,
        tids,
        switches,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::probes::FUTEX_NR;

    fn hit(t: u64, tid: u32, hook: Hook, arg0: u64, ret: u64) -> Raw {
        at(t, tid, hook, arg0, ret, 0)
    }

    /// A hit with a system call's first argument (`futex`'s address).
    fn at(t: u64, tid: u32, hook: Hook, arg0: u64, ret: u64, arg1: u64) -> Raw {
        Raw {
            t,
            pid: 1,
            tid,
            cpu: 0,
            what: What::Hit {
                hook,
                arg0,
                ret,
                arg1,
            },
        }
    }

    /// Thread `thread`'s events as (code, arg).
    fn kinds(d: &Decoded, thread: u16) -> Vec<(i8, i64)> {
        (0..d.events.t_ns.len())
            .filter(|&k| d.events.thread[k] == thread)
            .map(|k| (d.events.event[k], d.events.arg[k]))
            .collect()
    }
    const IO: [i8; 2] = [Ev::IoBegin as i8, Ev::IoEnd as i8];

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn futex_waits_outside_the_gil_are_lock_spans_and_wakes_and_drop_gils_own_are_not() {
        use Hook::*;
        const WAIT_PRIVATE: u64 = 128; // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
        const WAKE_PRIVATE: u64 = 129;
        let raws = vec![
            // Thread 1 (main) takes the GIL, drops it, wakes a lock's waiter (a wake: not a
            // span) and waits for a lock (a join) with the GIL released.
            hit(10, 1, TakeEntry, 0, 0),
            hit(11, 1, TakeReturn, 0, 0),
            hit(16, 1, DropEntry, 0, 0),
            // drop_gil's own mutex, contended: not a span.
            hit(17, 1, SysEnter, FUTEX_NR, WAIT_PRIVATE),
            hit(17, 1, SysExit, FUTEX_NR, 0),
            hit(18, 1, DropReturn, 0, 0),
            at(19, 1, SysEnter, FUTEX_NR, WAKE_PRIVATE, 0xB),
            hit(20, 1, SysExit, FUTEX_NR, 1),
            at(21, 1, SysEnter, FUTEX_NR, WAIT_PRIVATE, 0xA),
            // Thread 2 takes the GIL and is asked to drop by thread 3's timeout.
            hit(22, 2, TakeEntry, 0, 0),
            hit(23, 2, TakeReturn, 0, 0),
            hit(30, 3, TakeEntry, 0, 0),
            hit(40, 3, TimedWaitReturn, 0, ETIMEDOUT),
            // Thread 2 drops as asked and waits in FORCE_SWITCHING (a futex: not a span).
            hit(41, 2, DropEntry, 0, 0),
            hit(42, 2, SysEnter, FUTEX_NR, WAIT_PRIVATE),
            hit(43, 3, TakeReturn, 0, 0),
            // Thread 3, holding the GIL, releases the lock main waits on: it wakes it.
            at(46, 3, SysEnter, FUTEX_NR, WAKE_PRIVATE, 0xA),
            hit(47, 3, SysExit, FUTEX_NR, 1),
            hit(44, 2, SysExit, FUTEX_NR, 0),
            hit(44, 2, DropReturn, 0, 0),
            hit(45, 2, TakeEntry, 0, 0),
            hit(50, 1, SysExit, FUTEX_NR, 0),
            hit(51, 1, TakeEntry, 0, 0),
        ];
        let d = decode(raws, 1, Flavour::Interval, None, 0, 100);
        let main = kinds(&d, 0);
        let io: Vec<_> = main.iter().filter(|(e, _)| IO.contains(e)).collect();
        assert_eq!(io, [&(IO[0], 5), &(IO[1], 0)]);
        // Who woke whom: main waited on 0xA (and woke 0xB's waiter), thread 3 woke 0xA.
        let of = |th: u16, e: Ev| -> Vec<i64> {
            kinds(&d, th)
                .iter()
                .filter(|k| k.0 == e as i8)
                .map(|k| k.1)
                .collect()
        };
        assert_eq!(of(0, Ev::LockWait), [0xA]);
        assert_eq!(of(0, Ev::LockWake), [0xB]);
        assert_eq!(of(2, Ev::LockWake), [0xA]);
        assert!(of(1, Ev::LockWake).is_empty() && of(1, Ev::LockWait).is_empty());
        let other = kinds(&d, 1);
        assert!(!other.iter().any(|(e, _)| IO.contains(e)), "{other:?}");
        assert!(kinds(&d, 2)
            .iter()
            .any(|&(e, _)| e == Ev::DropRequest as i8));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_processes_a_program_starts_are_counted_and_its_threads_are_not() {
        use Hook::*;
        const SIGCHLD: u64 = 17;
        let raws = vec![
            hit(10, 1, TakeEntry, 0, 0),
            hit(11, 1, TakeReturn, 0, 0),
            hit(12, 1, DropEntry, 0, 0),
            hit(13, 1, DropReturn, 0, 0),
            // os.fork: glibc's clone without CLONE_THREAD; a thread's clone; a vfork; a fork
            at(14, 1, SysEnter, 56, 0, 0x0120_0000 | SIGCHLD),
            hit(15, 1, SysExit, 56, 7),
            at(16, 1, SysEnter, 56, 0, 0x003d_0f00),
            hit(17, 1, SysExit, 56, 8),
            hit(18, 1, SysEnter, 58, 0),
            hit(19, 1, SysExit, 58, 9),
            hit(20, 1, SysEnter, 57, 0),
            hit(21, 1, SysExit, 57, 10),
        ];
        let d = decode(raws, 1, Flavour::Interval, None, 0, 100);
        assert_eq!(d.notes.processes_started, 3);
        // not blocking calls: no I/O spans
        assert!(!kinds(&d, 0).iter().any(|(e, _)| IO.contains(e)));
    }

    #[test]
    fn a_hand_off_logged_after_a_waiters_entry_but_before_its_wait_still_lets_it_ask() {
        use Hook::*;
        const WAIT_BITSET_PRIVATE: u64 = 137; // the condition variable's wait (glibc 2.36)
        const WAIT_PRIVATE: u64 = 128; // the mutex's
        let drop_requests = |raws: Vec<Raw>| {
            let d = decode(raws, 1, Flavour::Interval, None, 0, 100);
            d.events
                .event
                .iter()
                .filter(|&&e| e == Ev::DropRequest as i8)
                .count()
        };
        // Thread 1 holds; thread 2 enters take_gil at 12, blocks on the mutex meanwhile held by
        // thread 3, whose hand-off is logged at its take's return (13); thread 2 then reads
        // switch_number and waits on the condition variable (14), and times out at 5014.
        let mut raws = vec![
            hit(10, 1, TakeEntry, 0, 0),
            hit(11, 1, TakeReturn, 0, 0),
            hit(11, 1, DropEntry, 0, 0),
            hit(11, 1, DropReturn, 0, 0),
            hit(11, 3, TakeEntry, 0, 0),
            hit(12, 2, TakeEntry, 0, 0),
            hit(12, 2, SysEnter, FUTEX_NR, WAIT_PRIVATE),
            hit(13, 3, TakeReturn, 0, 0),
            hit(13, 2, SysExit, FUTEX_NR, 0),
            hit(14, 2, SysEnter, FUTEX_NR, WAIT_BITSET_PRIVATE),
            hit(5014, 2, SysExit, FUTEX_NR, 0),
            hit(5014, 2, TimedWaitReturn, 0, ETIMEDOUT),
        ];
        assert_eq!(drop_requests(raws.clone()), 1);
        // Without the system calls (not traced), the take's entry is all there is: the hand-off
        // after it counts as one inside the wait, and no request is inferred.
        let bare: Vec<Raw> = raws
            .iter()
            .filter(|r| {
                !matches!(
                    r.what,
                    What::Hit {
                        hook: SysEnter | SysExit,
                        ..
                    }
                )
            })
            .cloned()
            .collect();
        assert_eq!(drop_requests(bare), 0);
        // A hand-off after the wait began (thread 3 to thread 1) is one: no request.
        raws.extend([
            hit(19, 3, DropEntry, 0, 0),
            hit(19, 3, DropReturn, 0, 0),
            hit(20, 1, TakeEntry, 0, 0),
            hit(21, 1, TakeReturn, 0, 0),
        ]);
        raws.sort_by_key(|r| r.t);
        assert_eq!(drop_requests(raws), 0);
    }
}
