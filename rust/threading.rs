//! CPython's `threading.Lock` and `queue.Queue`, for the `acquire`, `release`, `put` and `get`
//! ops: their spec, every check made before a thread starts, and the run-time objects, built
//! from glibc semaphores as CPython builds them. The worker's side of each op (where the GIL
//! is released) is in `engine/worker.rs`.
//!
//! # What is mirrored
//! - **A lock** is one `sem_t` (`PyThread_type_lock` with `USE_SEMAPHORES`, as on Linux).
//!   - 3.2+ (`acquire_timed`, `Modules/_threadmodule.c`, lines 81–124 at JuliaPoo/cpython
//!     d09535b76a, a 3.11a6 whose function is the same from v3.2 to v3.13): first a
//!     `sem_trywait` holding the GIL; only when the lock is taken, the GIL is released around a
//!     `sem_wait` that a signal interrupts (`PY_LOCK_INTR`: the handlers run with the GIL held,
//!     then it tries again, the non-blocking try first).
//!   - 2.7 (`lock_PyThread_acquire_lock`, `Modules/threadmodule.c` lines 44–56 at v2.7.18):
//!     the GIL is always released around `PyThread_acquire_lock`, a `sem_wait` retried on
//!     `EINTR` (`Python/thread_pthread.h` lines 345–371): even a free lock costs a release and
//!     a retake of the GIL.
//!   - Release is a `sem_post` with the GIL held, from any thread (a `Lock` has no owner).
//!   - Which of the two a run uses is the policy's [`Gil::interruptible`](crate::gil::Gil),
//!     the one switch between 2.x and 3.2+ thread modules (joins use it too).
//! - **A queue** is `queue.Queue` (`Lib/queue.py` `put`/`get`, lines 122–170 at v3.11.7;
//!   `Lib/Queue.py` lines 107–175 at v2.7.18): a mutex lock and two conditions on it,
//!   `not_empty` and `not_full`. `put` takes the mutex, waits on `not_full` while the queue is
//!   full (`maxsize` > 0), adds the item, notifies `not_empty`, releases; `get` the mirror.
//!   `Condition.wait` (`Lib/threading.py` line 295 at v3.11.7, 309 at v2.7.18) appends a
//!   waiter lock, already held, releases the mutex, acquires the waiter lock (blocking, as
//!   above), then takes the mutex again; `notify` releases the first waiter's lock. The model
//!   keeps one waiter lock per thread where Python allocates one per wait. Under 2.x, both
//!   `wait` and `notify` first test the mutex with `_is_owned`, an `acquire(0)`, and `wait`
//!   takes its fresh waiter lock once before queueing it: each a GIL release of its own there
//!   (`lock_PyThread_acquire_lock` wraps every acquire), none under 3.2+ (`acquire_timed` tries
//!   with the GIL held). Items are counted, not stored.
//!
//! Not modelled: the bytecode of `put`, `get` and `Condition.wait` between these steps (give
//! it as `cpu` ticks beside the op; the validation probes measure it on the real
//! interpreter); timeouts; `RLock`; `task_done`/`join`. Each op ends with one check point, as
//! the call's bytecode would.
//!
//! # Events
//! A blocked acquire is `io_begin`/`io_end` with op `lock`; a condition wait, `get` (for an
//! item) or `put` (for room). `put`/`got` (arg: the queue's index) are logged inside the
//! queue's mutex, so per queue the n-th `got` takes the n-th `put`'s item.

use crate::contract::{err, SpecError, QUEUE_MAXSIZE, SYNC_OBJECTS, THREAD_NAME_CHARS};
use crate::prim::Semaphore;
use crate::scenario::{Op, Scenario};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex as StdMutex;

/// A `queue.Queue(maxsize)` of the scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    pub name: String,
    /// As `queue.Queue`: 0 means unbounded; otherwise `put` waits while it holds this many.
    #[serde(default)]
    pub maxsize: u64,
}

/// The scenario's locks and queues by name: index and kind.
pub struct Names<'a> {
    pub locks: HashMap<&'a str, usize>,
    pub queues: HashMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    pub fn of(sc: &'a Scenario) -> Self {
        Names {
            locks: sc
                .locks
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect(),
            queues: sc
                .queues
                .iter()
                .enumerate()
                .map(|(i, q)| (q.name.as_str(), i))
                .collect(),
        }
    }
}

/// The names, sizes and count of the scenario's locks and queues.
pub fn validate_objects(sc: &Scenario) -> Result<(), SpecError> {
    let n = sc.locks.len() + sc.queues.len();
    if n as u64 > SYNC_OBJECTS.hi {
        return err(
            "locks",
            format!(
                "{n} locks and queues; at most {} are allowed",
                SYNC_OBJECTS.hi
            ),
        );
    }
    let mut seen = HashMap::new();
    let names = sc
        .locks
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("locks[{i}]"), l))
        .chain(
            sc.queues
                .iter()
                .enumerate()
                .map(|(i, q)| (format!("queues[{i}].name"), &q.name)),
        );
    for (f, name) in names {
        if !THREAD_NAME_CHARS.contains(name.chars().count() as u64) || name.contains('\0') {
            return err(
                f,
                format!(
                    "{name:?}: a name of {} to {} characters, without NUL, is required",
                    THREAD_NAME_CHARS.lo, THREAD_NAME_CHARS.hi
                ),
            );
        }
        if let Some(g) = seen.insert(name.as_str(), f.clone()) {
            return err(
                f,
                format!("{name:?} is also {g}; lock and queue names must be unique"),
            );
        }
    }
    for (i, q) in sc.queues.iter().enumerate() {
        QUEUE_MAXSIZE.check(format!("queues[{i}].maxsize"), q.maxsize)?;
    }
    Ok(())
}

/// One op's reference to a lock or a queue (`f`: the op's field path).
pub fn validate_op(names: &Names, op: &Op, f: &str) -> Result<(), SpecError> {
    match op {
        Op::Acquire { lock } | Op::Release { lock } if !names.locks.contains_key(lock.as_str()) => {
            err(
                format!("{f}.lock"),
                format!("{lock:?} is not a lock of this scenario (give it in locks=)"),
            )
        }
        Op::Put { queue } | Op::Get { queue } if !names.queues.contains_key(queue.as_str()) => err(
            format!("{f}.queue"),
            format!("{queue:?} is not a queue of this scenario (give it in queues=)"),
        ),
        _ => Ok(()),
    }
}

/// Everything about locks and queues a static look at the programs can tell: each thread
/// acquires and releases in pairs (never twice, never a release without its acquire, a loop's
/// body leaves what it holds as it found it, the program ends holding nothing); no two
/// threads take two locks in opposite orders with no lock in common held (the deadlock of two
/// threads: longer cycles are left to the watchdog); no queue is read more than it can ever
/// be written (or written more than it can hold and be read) when the run waits for every
/// thread.
pub fn validate_programs(sc: &Scenario, names: &Names) -> Result<(), SpecError> {
    // Each "acquires b while holding `held`" of each thread.
    let mut edges: Vec<(usize, usize, Vec<usize>)> = Vec::new(); // (thread, b, held)
    for (i, t) in sc.threads.iter().enumerate() {
        let mut held = Vec::new();
        pairs(
            &t.program,
            &format!("threads[{i}].program"),
            &t.name,
            names,
            &mut held,
            &mut |b, h| edges.push((i, b, h.to_vec())),
        )?;
        if let Some(&l) = held.first() {
            return err(
                format!("threads[{i}].program"),
                format!(
                    "thread {:?} ends its program holding lock {:?}; release it before the end",
                    t.name, sc.locks[l]
                ),
            );
        }
    }
    lock_order(sc, &edges)?;
    queue_counts(sc, names)
}

fn pairs(
    ops: &[Op],
    f: &str,
    thread: &str,
    names: &Names,
    held: &mut Vec<usize>,
    edge: &mut dyn FnMut(usize, &[usize]),
) -> Result<(), SpecError> {
    for (j, op) in ops.iter().enumerate() {
        let g = format!("{f}[{j}]");
        match op {
            Op::Acquire { lock } => {
                let l = names.locks[lock.as_str()];
                if held.contains(&l) {
                    return err(
                        g,
                        format!(
                            "thread {thread:?} acquires lock {lock:?} while it holds it: a Lock is \
                             not reentrant, so it would wait forever"
                        ),
                    );
                }
                if !held.is_empty() {
                    edge(l, held);
                }
                held.push(l);
            }
            Op::Release { lock } => {
                let l = names.locks[lock.as_str()];
                match held.iter().position(|&h| h == l) {
                    Some(p) => {
                        held.remove(p);
                    }
                    None => {
                        return err(
                            g,
                            format!(
                                "thread {thread:?} releases lock {lock:?} without acquiring it \
                                 first in its program: the model pairs each release with its \
                                 thread's acquire (Python lets another thread release a Lock, and \
                                 raises RuntimeError if it is unlocked); hand work over with a queue"
                            ),
                        )
                    }
                }
            }
            // Once through: its body is the program's, and need not balance.
            Op::Loop {
                times: Some(1),
                body,
            } => {
                pairs(body, &format!("{g}.body"), thread, names, held, edge)?;
            }
            Op::Loop { body, .. } => {
                let before = held.clone();
                pairs(body, &format!("{g}.body"), thread, names, held, edge)?;
                let (mut a, mut b) = (before.clone(), held.clone());
                a.sort_unstable();
                b.sort_unstable();
                if a != b {
                    return err(
                        format!("{g}.body"),
                        format!(
                            "thread {thread:?}: this loop's body does not release every lock it \
                             acquires (or releases one it did not): its next turn would wait forever \
                             or release an unlocked lock"
                        ),
                    );
                }
                *held = before;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Two threads each holding one of two locks and acquiring the other, with no lock in common
/// held that would keep them apart, can deadlock: refused, with both threads named.
fn lock_order(sc: &Scenario, edges: &[(usize, usize, Vec<usize>)]) -> Result<(), SpecError> {
    for (x, (ti, b, hi)) in edges.iter().enumerate() {
        for (tj, a, hj) in &edges[x + 1..] {
            // thread ti takes b holding a; thread tj takes a holding b.
            if ti == tj || !hi.contains(a) || !hj.contains(b) {
                continue;
            }
            let gate = hi.iter().any(|l| l != a && l != b && hj.contains(l));
            if !gate {
                return err(
                    "locks",
                    format!(
                        "threads {:?} and {:?} take locks {:?} and {:?} in opposite orders: they can \
                         deadlock (each holding one, waiting for the other)",
                        sc.threads[*ti].name, sc.threads[*tj].name, sc.locks[*a], sc.locks[*b]
                    ),
                );
            }
        }
    }
    Ok(())
}

/// How many times each queue is put to and got from over every program (`u64::MAX`: without
/// end, a loop until the run stops).
fn queue_counts(sc: &Scenario, names: &Names) -> Result<(), SpecError> {
    fn count(ops: &[Op], names: &Names, times: u64, puts: &mut [u64], gets: &mut [u64]) {
        for op in ops {
            match op {
                Op::Put { queue } => {
                    let q = names.queues[queue.as_str()];
                    puts[q] = puts[q].saturating_add(times);
                }
                Op::Get { queue } => {
                    let q = names.queues[queue.as_str()];
                    gets[q] = gets[q].saturating_add(times);
                }
                Op::Loop { times: t, body } => {
                    let k = times.saturating_mul(t.unwrap_or(u64::MAX));
                    count(body, names, k, puts, gets);
                }
                _ => {}
            }
        }
    }
    let n = sc.queues.len();
    let (mut puts, mut gets) = (vec![0u64; n], vec![0u64; n]);
    for t in &sc.threads {
        count(&t.program, names, 1, &mut puts, &mut gets);
    }
    let inf = u64::MAX;
    // A stop rule that does not wait for every thread may stop a get or a put still waiting:
    // only a queue no thread ever writes is refused then.
    let waits_for_all = sc.stop.duration_s.is_none() && sc.stop.thread.is_none();
    for (q, spec) in sc.queues.iter().enumerate() {
        let (p, g) = (puts[q], gets[q]);
        let name = &spec.name;
        if g > 0 && p == 0 {
            return err(
                format!("queues[{q}]"),
                format!("queue {name:?} is read (get) but no thread puts to it: the get would wait forever"),
            );
        }
        if !waits_for_all {
            continue;
        }
        if g != inf && p != inf && g > p {
            return err(
                format!("queues[{q}]"),
                format!("queue {name:?} is got from {g} times but put to only {p} times: the last get would wait forever"),
            );
        }
        if spec.maxsize > 0 && p != inf && g != inf && p > g.saturating_add(spec.maxsize) {
            return err(
                format!("queues[{q}]"),
                format!(
                    "queue {name:?} holds at most {} items and is put to {p} times but got from only {g}: the last put would wait forever",
                    spec.maxsize
                ),
            );
        }
        if spec.maxsize > 0 && g == 0 && p > spec.maxsize {
            return err(
                format!("queues[{q}]"),
                format!(
                    "queue {name:?} holds at most {} items, is put to {} times and never read: a put would wait forever",
                    spec.maxsize,
                    if p == inf { "without end".to_string() } else { p.to_string() }
                ),
            );
        }
    }
    Ok(())
}

/// A `threading.Lock` (or a queue's mutex, or a waiter lock): the semaphore, and counters for
/// the run's `meta`.
pub struct Lock {
    pub sem: Semaphore,
    /// The thread that took it last and has not released it (-1: free). A check on the model
    /// itself: two holders at once would be counted in `overlaps`.
    holder: AtomicI64,
    pub acquired: AtomicU64,
    /// Acquisitions that had to wait (the GIL released around `sem_wait` because it was taken).
    pub contended: AtomicU64,
    pub overlaps: AtomicU64,
}

impl Lock {
    fn new(value: u32) -> Self {
        Lock {
            sem: Semaphore::new(value),
            holder: AtomicI64::new(-1),
            acquired: AtomicU64::new(0),
            contended: AtomicU64::new(0),
            overlaps: AtomicU64::new(0),
        }
    }

    /// Thread `me` has just taken it (`waited`: it blocked first).
    pub fn took(&self, me: u16, waited: bool) {
        if self.holder.swap(me as i64, Relaxed) != -1 {
            self.overlaps.fetch_add(1, Relaxed);
        }
        self.acquired.fetch_add(1, Relaxed);
        if waited {
            self.contended.fetch_add(1, Relaxed);
        }
    }

    /// `lock.release()` (the GIL held).
    pub fn release(&self) {
        self.holder.store(-1, Relaxed);
        self.sem.post();
    }

    fn meta(&self, name: &str) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "acquired": self.acquired.load(Relaxed),
            "contended": self.contended.load(Relaxed),
            "overlaps": self.overlaps.load(Relaxed),
        })
    }
}

/// Which condition of a queue a thread waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// `get` on an empty queue.
    NotEmpty,
    /// `put` on a full one.
    NotFull,
}

/// What a queue's mutex protects.
#[derive(Default)]
pub struct QueueState {
    pub items: u64,
    not_empty: VecDeque<u16>,
    not_full: VecDeque<u16>,
    pub puts: u64,
    pub gets: u64,
    pub most_items: u64,
    pub waits_for_item: u64,
    pub waits_for_room: u64,
}

impl QueueState {
    /// `Condition.wait`'s first step: this thread's waiter lock joins the condition's list.
    pub fn enqueue(&mut self, c: Cond, me: u16) {
        match c {
            Cond::NotEmpty => {
                self.waits_for_item += 1;
                self.not_empty.push_back(me)
            }
            Cond::NotFull => {
                self.waits_for_room += 1;
                self.not_full.push_back(me)
            }
        }
    }

    /// `Condition.notify()`: the first waiter, whose lock is to be released, if any.
    pub fn notify(&mut self, c: Cond) -> Option<u16> {
        match c {
            Cond::NotEmpty => self.not_empty.pop_front(),
            Cond::NotFull => self.not_full.pop_front(),
        }
    }
}

/// A `queue.Queue`: its mutex lock and, behind it, its state.
pub struct Queue {
    pub mutex: Lock,
    pub maxsize: u64,
    /// Only ever locked by the thread holding `mutex` (so never contended): the Rust-side
    /// guard of what Python's GIL and the mutex guard together.
    pub state: StdMutex<QueueState>,
}

impl Queue {
    pub fn full(&self, st: &QueueState) -> bool {
        self.maxsize > 0 && st.items >= self.maxsize
    }
}

/// A run's locks, queues, and the waiter lock of each thread.
pub struct Objects {
    pub locks: Vec<Lock>,
    pub queues: Vec<Queue>,
    pub waiters: Vec<Lock>,
    lock_names: Vec<String>,
    queue_names: Vec<String>,
}

impl Objects {
    pub fn new(sc: &Scenario) -> Self {
        Objects {
            locks: sc.locks.iter().map(|_| Lock::new(1)).collect(),
            queues: sc
                .queues
                .iter()
                .map(|q| Queue {
                    mutex: Lock::new(1),
                    maxsize: q.maxsize,
                    state: StdMutex::new(QueueState::default()),
                })
                .collect(),
            // Held from the start: `Condition.wait` acquires a fresh one before queueing it.
            waiters: sc.threads.iter().map(|_| Lock::new(0)).collect(),
            lock_names: sc.locks.clone(),
            queue_names: sc.queues.iter().map(|q| q.name.clone()).collect(),
        }
    }

    pub fn lock_name(&self, i: usize) -> &str {
        self.lock_names.get(i).map_or("?", |s| s.as_str())
    }

    pub fn queue_name(&self, i: usize) -> &str {
        self.queue_names.get(i).map_or("?", |s| s.as_str())
    }

    /// The run is stopping: post every semaphore once per thread, so that no thread stays
    /// blocked in an acquire (each one, woken or trying, sees the stop flag after it and ends
    /// its program). The controller repeats it every 10 ms slice until all threads are joined.
    pub fn wake_all(&self, threads: usize) {
        let all = self
            .locks
            .iter()
            .chain(self.queues.iter().map(|q| &q.mutex))
            .chain(self.waiters.iter());
        for l in all {
            for _ in 0..threads {
                l.sem.post();
            }
        }
    }

    /// `meta["locks"]` and `meta["queues"]`: what each did in the run.
    pub fn meta(&self) -> (serde_json::Value, serde_json::Value) {
        let locks = self
            .locks
            .iter()
            .zip(&self.lock_names)
            .map(|(l, n)| l.meta(n))
            .collect();
        let queues = self
            .queues
            .iter()
            .zip(&self.queue_names)
            .map(|(q, n)| {
                let st = q.state.lock().unwrap_or_else(|e| e.into_inner());
                serde_json::json!({
                    "name": n,
                    "maxsize": q.maxsize,
                    "puts": st.puts,
                    "gets": st.gets,
                    "left": st.items,
                    "most_items": st.most_items,
                    "waits_for_item": st.waits_for_item,
                    "waits_for_room": st.waits_for_room,
                    "mutex": q.mutex.meta(n),
                })
            })
            .collect();
        (
            serde_json::Value::Array(locks),
            serde_json::Value::Array(queues),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(programs: Vec<Vec<Op>>, locks: &[&str], queues: &[(&str, u64)]) -> Scenario {
        let threads: Vec<String> = (0..programs.len()).map(|i| format!("t{i}")).collect();
        let j = serde_json::json!({
            "gil": {"policy": "nogil", "check_every": 1},
            "threads": threads.iter().zip(&programs).map(|(n, p)| serde_json::json!({"name": n, "program": p})).collect::<Vec<_>>(),
            "locks": locks,
            "queues": queues.iter().map(|(n, m)| serde_json::json!({"name": n, "maxsize": m})).collect::<Vec<_>>(),
        });
        Scenario::from_json(&j.to_string()).unwrap()
    }

    fn refused(s: &Scenario) -> SpecError {
        s.validate(&[0, 1], 8 << 30).expect_err("should be refused")
    }

    fn acq(l: &str) -> Op {
        Op::Acquire { lock: l.into() }
    }
    fn rel(l: &str) -> Op {
        Op::Release { lock: l.into() }
    }
    fn put(q: &str) -> Op {
        Op::Put { queue: q.into() }
    }
    fn get(q: &str) -> Op {
        Op::Get { queue: q.into() }
    }
    fn times(n: Option<u64>, body: Vec<Op>) -> Op {
        Op::Loop { times: n, body }
    }

    #[test]
    fn good_programs_pass() {
        let s = sc(
            vec![
                vec![times(
                    Some(10),
                    vec![acq("a"), acq("b"), rel("b"), rel("a"), put("q")],
                )],
                vec![times(Some(10), vec![acq("a"), rel("a"), get("q")])],
            ],
            &["a", "b"],
            &[("q", 2)],
        );
        s.validate(&[0, 1], 8 << 30).unwrap();
    }

    #[test]
    fn names_must_exist_and_be_unique() {
        let e = refused(&sc(vec![vec![acq("x"), rel("x")]], &["a"], &[]));
        assert_eq!(e.field, "threads[0].program[0].lock");
        assert!(e.message.contains("\"x\" is not a lock"), "{e}");
        let e = refused(&sc(vec![vec![get("q")]], &[], &[]));
        assert!(e.message.contains("not a queue"), "{e}");
        let e = refused(&sc(vec![vec![Op::Cpu { ticks: 1 }]], &["a"], &[("a", 0)]));
        assert_eq!(e.field, "queues[0].name");
        assert!(e.message.contains("unique"), "{e}");
        let e = refused(&sc(
            vec![vec![Op::Cpu { ticks: 1 }]],
            &[],
            &[("q", 1 << 41)],
        ));
        assert_eq!(e.field, "queues[0].maxsize");
    }

    #[test]
    fn pairs_are_checked() {
        let e = refused(&sc(vec![vec![rel("a")]], &["a"], &[]));
        assert!(e.message.contains("without acquiring it"), "{e}");
        let e = refused(&sc(vec![vec![acq("a"), acq("a")]], &["a"], &[]));
        assert_eq!(e.field, "threads[0].program[1]");
        assert!(e.message.contains("not reentrant"), "{e}");
        let e = refused(&sc(vec![vec![acq("a")]], &["a"], &[]));
        assert!(
            e.message.contains("ends its program holding lock \"a\""),
            "{e}"
        );
        let e = refused(&sc(
            vec![vec![times(Some(2), vec![acq("a")]), rel("a")]],
            &["a"],
            &[],
        ));
        assert_eq!(e.field, "threads[0].program[0].body");
        // Acquired before the loop, released after: fine.
        sc(
            vec![vec![
                acq("a"),
                times(Some(2), vec![Op::Cpu { ticks: 1 }]),
                rel("a"),
            ]],
            &["a"],
            &[],
        )
        .validate(&[0, 1], 8 << 30)
        .unwrap();
    }

    #[test]
    fn opposite_lock_orders_are_refused() {
        let e = refused(&sc(
            vec![
                vec![acq("a"), acq("b"), rel("b"), rel("a")],
                vec![acq("b"), acq("a"), rel("a"), rel("b")],
            ],
            &["a", "b"],
            &[],
        ));
        assert!(
            e.message.contains("opposite orders") && e.message.contains("\"t0\" and \"t1\""),
            "{e}"
        );
        // A gate lock held by both keeps them apart; a cycle through three locks of two threads
        // cannot close (each thread waits for one lock at a time): both pass.
        sc(
            vec![
                vec![acq("g"), acq("a"), acq("b"), rel("b"), rel("a"), rel("g")],
                vec![acq("g"), acq("b"), acq("a"), rel("a"), rel("b"), rel("g")],
            ],
            &["g", "a", "b"],
            &[],
        )
        .validate(&[0, 1], 8 << 30)
        .unwrap();
        sc(
            vec![
                vec![
                    acq("a"),
                    acq("b"),
                    rel("b"),
                    rel("a"),
                    acq("b"),
                    acq("c"),
                    rel("c"),
                    rel("b"),
                ],
                vec![acq("c"), acq("a"), rel("a"), rel("c")],
            ],
            &["a", "b", "c"],
            &[],
        )
        .validate(&[0, 1], 8 << 30)
        .unwrap();
        // A loop run once need not balance.
        sc(
            vec![vec![acq("a"), times(Some(1), vec![rel("a")])]],
            &["a"],
            &[],
        )
        .validate(&[0, 1], 8 << 30)
        .unwrap();
        // The same order in both threads is fine, and one thread alone cannot deadlock itself
        // by taking them in both orders at different times.
        sc(
            vec![vec![
                acq("a"),
                acq("b"),
                rel("b"),
                rel("a"),
                acq("b"),
                acq("a"),
                rel("a"),
                rel("b"),
            ]],
            &["a", "b"],
            &[],
        )
        .validate(&[0, 1], 8 << 30)
        .unwrap();
    }

    #[test]
    fn unsatisfiable_queues_are_refused() {
        let e = refused(&sc(vec![vec![get("q")]], &[], &[("q", 0)]));
        assert!(e.message.contains("no thread puts"), "{e}");
        let e = refused(&sc(
            vec![
                vec![times(Some(3), vec![put("q")])],
                vec![times(Some(4), vec![get("q")])],
            ],
            &[],
            &[("q", 0)],
        ));
        assert!(
            e.message.contains("got from 4 times but put to only 3"),
            "{e}"
        );
        let e = refused(&sc(
            vec![
                vec![times(Some(9), vec![put("q")])],
                vec![times(Some(4), vec![get("q")])],
            ],
            &[],
            &[("q", 2)],
        ));
        assert!(e.message.contains("holds at most 2"), "{e}");
        let e = refused(&sc(
            vec![vec![times(None, vec![put("q")])]],
            &[],
            &[("q", 2)],
        ));
        assert!(e.message.contains("never read"), "{e}");
        // With a stop rule that does not wait for every thread, a get may wait until the stop.
        let mut stopped = sc(
            vec![
                vec![times(Some(3), vec![put("q")])],
                vec![times(Some(4), vec![get("q")])],
            ],
            &[],
            &[("q", 0)],
        );
        stopped.stop.duration_s = Some(1.0);
        stopped.validate(&[0, 1], 8 << 30).unwrap();
        // An unbounded queue may be filled and never read; endless producers and consumers pass.
        let mut ok = sc(
            vec![
                vec![times(None, vec![put("q")])],
                vec![times(None, vec![get("q")])],
            ],
            &[],
            &[("q", 1)],
        );
        ok.stop.duration_s = Some(1.0);
        ok.validate(&[0, 1], 8 << 30).unwrap();
    }
}
