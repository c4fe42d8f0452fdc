//! The event log: one pre-allocated buffer per scenario thread, merged after the run.
//!
//! Recording an event is a `CLOCK_MONOTONIC` read (done by the caller, who usually needs the
//! time anyway), a `sched_getcpu()` (glibc ≥ 2.35 reads it from the thread's rseq area: no
//! system call), and four stores into vectors whose capacity was reserved before the threads
//! were released. No lock, no allocation, no system call. When a buffer is full, further events
//! of that thread are counted in `dropped` and not stored. A GIL policy's events are first
//! kept in the thread's context and stored at its next acquisition (`ThreadCx::event`), out of
//! the windows where the policy's races are decided.
//!
//! The event kinds and their args below are the schema of the `events` table (docs/design.md
//! §4); the recording cost is discussed in docs/design.md §5.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// Event kinds; the discriminant is the value in the `event` column's dictionary indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum Ev {
    /// Thread released from the start gate; arg = the core it was pinned to (-1: unpinned).
    Start = 0,
    /// Thread finished; arg = 1 when it did not finish its program (stopped by the stop rule,
    /// an abort, the watchdog or the event budget, or it failed), else 0.
    Exit,
    /// Wants the GIL; arg = 0 (stored, with its own time, when the thread's next event is:
    /// see `ThreadCx::requested_at`).
    Request,
    /// Holds the GIL; arg = switch count after this acquisition (the holder changed that often).
    Acquire,
    /// Gave the GIL up; arg = ticks run while holding it.
    Release,
    /// A timed wait for the GIL ran out; arg = the switch number it had saved (BFS: 0).
    Timeout,
    /// This waiter set the drop request; arg = the switch number it had saved. BFS: it set
    /// `bfs_check_depleted` (on arrival and at each timeout), asking the holder to look at its
    /// own slice; arg = `bfs_thread`'s index (the holder, or the thread named next).
    DropRequest,
    /// The holder saw the drop request (FIFO: a waiter; BFS: `bfs_preempt`, or a flag and its
    /// slice used up) at a check point and is about to release.
    ForcedDrop,
    /// The releasing thread waits until another thread took the GIL (FORCE_SWITCHING; BFS:
    /// `bfs_thread_switch`).
    SwitchWait,
    /// That wait ended.
    SwitchDone,
    /// A waiter was woken but found the GIL taken again; arg = how many such wake-ups.
    FutileWakeup,
    /// A blocking call begins (GIL already released); arg = the [`IoOp`] code.
    IoBegin,
    /// A blocking call returned (GIL not yet retaken); arg = bytes moved (0 for sleeps,
    /// native work, finished joins, a send to a closed peer, a recv at end of stream; -1 for a join
    /// interrupted by a signal).
    IoEnd,
    /// The main thread, holding the GIL, begins to handle a delivered signal (the worker's
    /// `run_handlers`, at an op boundary, a check point or an interrupted join); arg = when the
    /// latest signal was delivered, in ns on the `t_ns` scale (since the start gate).
    Signal,
    /// Logged right after `Signal`, before the handler's ops run; arg = the index in the
    /// scenario's `signals` of the handler run (the n-th handled delivery runs entry n, the
    /// last entry once they run out).
    Handler,
    /// A policy raised this thread's priority (it gave the GIL up early); arg = new level.
    Promote,
    /// A policy lowered this thread's priority (it was forced out); arg = new level.
    Demote,
    /// This waiter asked the holder to drop at once, without waiting an interval; arg = the
    /// holder's thread index (BFS: `bfs_preempt`; `bfs_thread`'s index, the holder or the
    /// thread named next).
    Preempt,
    /// A `held` call begins: C work that keeps the GIL and reaches no check point (a long
    /// `sorted()`, an extension that does not release the GIL); arg = its ticks. The thread
    /// holds the GIL throughout: this pair nests inside an acquire → release.
    CallBegin,
    /// That call returned (GIL still held; its one check point follows); arg = ticks done
    /// (fewer than asked when the run was stopped during it).
    CallEnd,
    /// An item went into a queue (`put`, inside the queue's mutex); arg = the queue's index in
    /// the scenario's `queues`.
    Put,
    /// An item came out of a queue (`get`, inside its mutex); arg = the queue's index. Per
    /// queue, the n-th `got` takes the n-th `put`'s item (a FIFO queue).
    Got,
    /// Observed runs only: logged right after the `io_begin` of a `lock` wait (a futex wait);
    /// arg = the futex's address, which the waker's `lock_wake` names.
    LockWait,
    /// Observed runs only: this thread woke waiters of a futex (a lock's release, a
    /// `Condition`'s notify), outside the GIL's own functions; arg = the futex's address.
    LockWake,
}

/// Names of the event kinds, in discriminant order (the `event` column's dictionary).
pub const EVENT_NAMES: [&str; 24] = [
    "start",
    "exit",
    "request",
    "acquire",
    "release",
    "timeout",
    "drop_request",
    "forced_drop",
    "switch_wait",
    "switch_done",
    "futile_wakeup",
    "io_begin",
    "io_end",
    "signal",
    "handler",
    "promote",
    "demote",
    "preempt",
    "call_begin",
    "call_end",
    "put",
    "got",
    "lock_wait",
    "lock_wake",
];

/// Blocking operations, as `io_begin`'s arg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum IoOp {
    Send = 0,
    Recv = 1,
    Sleep = 2,
    Join = 3,
    /// C work with the GIL released that occupies the core (the `native` op: hashlib on a big
    /// buffer, zlib, a numpy kernel); its `io_end` arg is 0.
    Native = 4,
    /// A lock acquire with the GIL released (`acquire`, a queue's mutex): under 3.2+ only a
    /// wait for a taken lock; under 2.x every acquire, a free lock's too, and `Condition`'s
    /// `acquire(0)` tests. `io_end` arg 0 (-1: a signal interrupted the wait, 3.2+). In an
    /// observed run: any futex wait made with the GIL released (a lock, `Condition`, queue or
    /// `join`, or glibc's own locks), followed by its `lock_wait` (rust/observe/decode.rs).
    Lock = 5,
    /// A `get` waiting on the queue's `not_empty` condition (its waiter lock); `io_end` arg as
    /// for `Lock`.
    Get = 6,
    /// A `put` waiting on a bounded queue's `not_full` condition.
    Put = 7,
    /// A `write` of the op's bytes to the thread's scratch file (`pwrite`, then `fdatasync`
    /// with `fsync=True`); `io_end` arg: the bytes written.
    Write = 8,
}

/// Names of the blocking operations, in [`IoOp`] order (`io_begin`'s arg indexes them): the
/// ops of the same names in a scenario.
pub const IO_OP_NAMES: [&str; 9] = [
    "send", "recv", "sleep", "join", "native", "lock", "get", "put", "write",
];

/// Bytes one stored event takes in a thread's buffer: `t_ns`, `cpu`, `event`, `arg` (the
/// merged log adds the 2-byte `thread` column; during the merge both forms exist).
pub const EVENT_BYTES: u64 = (std::mem::size_of::<i64>()
    + std::mem::size_of::<i16>()
    + std::mem::size_of::<i8>()
    + std::mem::size_of::<i64>()) as u64;

/// The CPU the calling thread runs on (`sched_getcpu`).
#[inline(always)]
pub fn current_cpu() -> i16 {
    // SAFETY: no arguments; returns -1 on failure.
    unsafe { libc::sched_getcpu() as i16 }
}

/// One thread's events, column by column.
pub struct EventBuf {
    pub t_ns: Vec<i64>,
    pub cpu: Vec<i16>,
    pub event: Vec<i8>,
    pub arg: Vec<i64>,
    cap: usize,
    enabled: bool,
    /// Events not stored because the buffer was full.
    pub dropped: u64,
    /// Time of the first event not stored (valid when `dropped > 0`).
    pub first_drop_ns: i64,
    /// Raised when the first event is not stored (the engine's controller watches it).
    full: Option<Arc<AtomicBool>>,
}

impl EventBuf {
    /// A buffer holding up to `cap` events; `enabled = false` records nothing.
    pub fn new(cap: usize, enabled: bool) -> Self {
        let cap = if enabled { cap } else { 0 };
        EventBuf {
            t_ns: Vec::with_capacity(cap),
            cpu: Vec::with_capacity(cap),
            event: Vec::with_capacity(cap),
            arg: Vec::with_capacity(cap),
            cap,
            enabled,
            dropped: 0,
            first_drop_ns: 0,
            full: None,
        }
    }

    /// Raise `flag` when this buffer first has to drop an event.
    pub fn with_full_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.full = Some(flag);
        self
    }

    /// Record event `ev` at monotonic time `t_ns` with argument `arg`.
    #[inline(always)]
    pub fn push(&mut self, t_ns: i64, ev: Ev, arg: i64) {
        if self.enabled {
            self.push_on(t_ns, current_cpu(), ev, arg);
        }
    }

    /// As [`push`](Self::push), with the CPU the event happened on read earlier.
    #[inline]
    pub fn push_on(&mut self, t_ns: i64, cpu: i16, ev: Ev, arg: i64) {
        if !self.enabled {
            return;
        }
        if self.t_ns.len() < self.cap {
            self.t_ns.push(t_ns);
            self.cpu.push(cpu);
            self.event.push(ev as i8);
            self.arg.push(arg);
        } else {
            self.drop_one(t_ns);
        }
    }

    /// Whether events are stored (the scenario's `log`).
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    #[cold]
    #[inline(never)]
    fn drop_one(&mut self, t_ns: i64) {
        if self.dropped == 0 {
            self.first_drop_ns = t_ns;
            if let Some(f) = &self.full {
                f.store(true, Relaxed);
            }
        }
        self.dropped += 1;
    }

    pub fn len(&self) -> usize {
        self.t_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_ns.is_empty()
    }
}

/// The merged log of a run, column by column, ordered by (`t_ns`, `thread`).
#[derive(Default, Debug)]
pub struct Events {
    pub t_ns: Vec<i64>,
    pub thread: Vec<u16>,
    pub cpu: Vec<i16>,
    pub event: Vec<i8>,
    pub arg: Vec<i64>,
}

impl Events {
    pub fn len(&self) -> usize {
        self.t_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_ns.is_empty()
    }

    /// Merge per-thread buffers (each already in time order) into one log with times relative
    /// to `t0_ns`; ties go to the lower thread index. A k-way merge, no sort: a linear scan of
    /// the heads for a few threads, a binary heap for many.
    pub fn merge(bufs: Vec<EventBuf>, t0_ns: i64) -> Events {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        let mut out = Events {
            t_ns: Vec::with_capacity(n),
            thread: Vec::with_capacity(n),
            cpu: Vec::with_capacity(n),
            event: Vec::with_capacity(n),
            arg: Vec::with_capacity(n),
        };
        let mut take = |k: usize, i: usize| {
            let b = &bufs[k];
            out.t_ns.push(b.t_ns[i] - t0_ns);
            out.thread.push(k as u16);
            out.cpu.push(b.cpu[i]);
            out.event.push(b.event[i]);
            out.arg.push(b.arg[i]);
        };
        let mut pos = vec![0usize; bufs.len()];
        if bufs.len() <= 8 {
            for _ in 0..n {
                let mut best = usize::MAX;
                let mut bt = i64::MAX;
                for (k, b) in bufs.iter().enumerate() {
                    if let Some(&t) = b.t_ns.get(pos[k]) {
                        if t < bt {
                            bt = t;
                            best = k;
                        }
                    }
                }
                take(best, pos[best]);
                pos[best] += 1;
            }
        } else {
            use std::cmp::Reverse;
            let mut heap: std::collections::BinaryHeap<Reverse<(i64, usize)>> = bufs
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
                .map(|(k, b)| Reverse((b.t_ns[0], k)))
                .collect();
            while let Some(Reverse((_, k))) = heap.pop() {
                take(k, pos[k]);
                pos[k] += 1;
                if let Some(&t) = bufs[k].t_ns.get(pos[k]) {
                    heap.push(Reverse((t, k)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_op_names_follow_the_codes() {
        for op in [
            IoOp::Send,
            IoOp::Recv,
            IoOp::Sleep,
            IoOp::Join,
            IoOp::Native,
            IoOp::Lock,
            IoOp::Get,
            IoOp::Put,
            IoOp::Write,
        ] {
            let name = IO_OP_NAMES[op as usize];
            assert_eq!(format!("{op:?}").to_lowercase(), name);
        }
    }

    fn buf(ts: &[i64]) -> EventBuf {
        let mut b = EventBuf::new(ts.len(), true);
        for &t in ts {
            b.push(t, Ev::Acquire, t * 10);
        }
        b
    }

    #[test]
    fn merge_orders_by_time_then_thread() {
        let e = Events::merge(vec![buf(&[1, 5, 5, 9]), buf(&[2, 5, 6]), buf(&[])], 1);
        assert_eq!(e.t_ns, vec![0, 1, 4, 4, 4, 5, 8]);
        assert_eq!(e.thread, vec![0, 1, 0, 0, 1, 1, 0]);
        assert_eq!(e.arg, vec![10, 20, 50, 50, 50, 60, 90]);
    }

    #[test]
    fn merge_many_threads_uses_the_same_order() {
        let bufs: Vec<EventBuf> = (0..20).map(|k| buf(&[k % 3, 10 - k % 5, 40 + k])).collect();
        let e = Events::merge(bufs, 0);
        assert_eq!(e.len(), 60);
        for i in 1..e.len() {
            assert!(
                (e.t_ns[i - 1], e.thread[i - 1]) <= (e.t_ns[i], e.thread[i]),
                "at {i}"
            );
        }
    }

    #[test]
    fn full_buffer_counts_dropped() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut b = EventBuf::new(2, true).with_full_flag(flag.clone());
        for t in 0..5 {
            b.push(t, Ev::Release, 0);
            assert_eq!(flag.load(Relaxed), t >= 2);
        }
        assert_eq!(b.len(), 2);
        assert_eq!(b.dropped, 3);
        assert_eq!(b.first_drop_ns, 2);
        assert_eq!(EVENT_BYTES, 19);
        let mut off = EventBuf::new(100, false);
        off.push(1, Ev::Release, 0);
        assert_eq!((off.len(), off.dropped), (0, 0));
    }

    #[test]
    fn names_match_kinds() {
        assert_eq!(EVENT_NAMES[Ev::Handler as usize], "handler");
        assert_eq!(EVENT_NAMES[Ev::FutileWakeup as usize], "futile_wakeup");
        assert_eq!(EVENT_NAMES[Ev::CallBegin as usize], "call_begin");
        assert_eq!(EVENT_NAMES[Ev::CallEnd as usize], "call_end");
        assert_eq!(EVENT_NAMES[Ev::LockWake as usize], "lock_wake");
    }
}
