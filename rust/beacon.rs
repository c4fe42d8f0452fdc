//! What each scenario thread is doing, published for the controller's watchdog.
//!
//! Every worker owns one [`Beacon`] (a cache line of its own) and writes it with relaxed
//! loads and stores only: its tick counter, a step count bumped when an op begins and when the
//! GIL is acquired, the op it is in, and whether it waits for or holds the GIL. The controller
//! reads all beacons in its 10 ms slices; when their progress has not moved for `watchdog_s`,
//! it stops the run and describes each thread from its beacon.
//!
//! Progress is *work done*, not events: a waiter's timeouts, drop requests and futile wake-ups
//! go on being logged while a holder hangs, and a lone thread in a long `cpu` op logs nothing
//! at all, yet does ticks. The hot path pays nothing for it: the thread's tick counter *is* the
//! beacon's (`ThreadCx::ticks` reads it), and a relaxed load + add + store of a counter the
//! thread alone writes compiles to the same `mov`/`inc`/`mov` the loop did on a private field;
//! the controller's read costs the thread one cache-line transfer per 10 ms.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// The GIL state in a beacon.
pub const GIL_NONE: u8 = 0;
pub const GIL_WAITING: u8 = 1;
pub const GIL_HOLDING: u8 = 2;

/// The op a thread is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Doing {
    Starting = 0,
    Cpu,
    Sleep,
    Send,
    Recv,
    /// arg: the joined thread's index.
    Join,
    Handler,
    /// The test-only `_hang` op.
    Hang,
    Exited,
    /// arg: the op's ticks.
    Native,
    /// arg: the op's ticks.
    Held,
    /// arg: the lock's index (`acquire`, `release`).
    Lock,
    /// arg: the queue's index.
    Put,
    /// arg: the queue's index.
    Get,
    /// arg: the bytes.
    Write,
}

impl Doing {
    fn from_u8(v: u8) -> Doing {
        match v {
            1 => Doing::Cpu,
            2 => Doing::Sleep,
            3 => Doing::Send,
            4 => Doing::Recv,
            5 => Doing::Join,
            6 => Doing::Handler,
            7 => Doing::Hang,
            8 => Doing::Exited,
            9 => Doing::Native,
            10 => Doing::Held,
            11 => Doing::Lock,
            12 => Doing::Put,
            13 => Doing::Get,
            14 => Doing::Write,
            _ => Doing::Starting,
        }
    }
}

/// One thread's published state. Written only by its thread.
#[repr(align(64))]
#[derive(Default)]
pub struct Beacon {
    ticks: AtomicU64,
    steps: AtomicU64,
    gil: AtomicU8,
    doing: AtomicU8,
    arg: AtomicU64,
}

/// A reading of a beacon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub gil: u8,
    pub doing: Doing,
    pub arg: u64,
}

impl Beacon {
    /// One more tick of work done (single writer: no read-modify-write).
    #[inline(always)]
    pub fn add_tick(&self) {
        self.ticks
            .store(self.ticks.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Ticks of work done so far.
    #[inline(always)]
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Relaxed)
    }

    /// Something happened that counts as progress (single writer: no read-modify-write).
    #[inline(always)]
    pub fn step(&self) {
        self.steps
            .store(self.steps.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// The thread begins an op.
    #[inline(always)]
    pub fn doing(&self, d: Doing, arg: u64) {
        self.doing.store(d as u8, Relaxed);
        self.arg.store(arg, Relaxed);
        self.step();
    }

    /// The thread waits for (`GIL_WAITING`), holds (`GIL_HOLDING`) or released the GIL.
    #[inline(always)]
    pub fn gil(&self, state: u8) {
        self.gil.store(state, Relaxed);
    }

    /// A number that grows whenever the thread makes progress.
    pub fn progress(&self) -> u64 {
        self.ticks
            .load(Relaxed)
            .wrapping_add(self.steps.load(Relaxed))
    }

    pub fn seen(&self) -> Seen {
        Seen {
            gil: self.gil.load(Relaxed),
            doing: Doing::from_u8(self.doing.load(Relaxed)),
            arg: self.arg.load(Relaxed),
        }
    }
}

/// The scenario's names, for [`describe`].
pub struct Names<'a> {
    pub threads: &'a [String],
    pub locks: &'a [String],
    pub queues: &'a [String],
}

/// What a thread is doing, in words (the thread, lock or queue its op names).
pub fn describe(s: Seen, names: &Names) -> String {
    let name = |v: &[String]| format!("{:?}", v.get(s.arg as usize).map_or("?", |n| n.as_str()));
    let op = match s.doing {
        Doing::Starting => {
            return match s.gil {
                GIL_WAITING => "waiting for the GIL, before its first op".into(),
                GIL_HOLDING => "holds the GIL, before its first op".into(),
                _ => "starting".into(),
            }
        }
        Doing::Exited => return "finished".into(),
        Doing::Cpu => format!("cpu({})", s.arg),
        Doing::Sleep => format!("sleep({} µs)", s.arg),
        Doing::Send => format!("send({} bytes) to its peer", s.arg),
        Doing::Recv => format!("recv({} bytes) from its driver", s.arg),
        Doing::Join => format!("join({})", name(names.threads)),
        Doing::Lock => format!("acquire({}) or release", name(names.locks)),
        Doing::Put => format!("put({})", name(names.queues)),
        Doing::Get => format!("get({})", name(names.queues)),
        Doing::Native => format!("native({}) (C work)", s.arg),
        Doing::Write => format!("write({} bytes) to its scratch file", s.arg),
        Doing::Held => format!("held({}) (C work, no check point)", s.arg),
        Doing::Handler => "a signal handler".to_string(),
        Doing::Hang => "_hang (the test-only op that never returns until stopped)".to_string(),
    };
    match (s.gil, s.doing) {
        (GIL_WAITING, _) => format!("waiting for the GIL (in {op})"),
        (GIL_HOLDING, _) => format!("holds the GIL, in {op}"),
        (_, Doing::Sleep) => format!("sleeping: {op}"),
        (_, Doing::Send | Doing::Recv | Doing::Write) => format!("blocked in {op}"),
        (_, Doing::Join | Doing::Lock | Doing::Put | Doing::Get) => format!("waiting in {op}"),
        _ => format!("in {op}, GIL released"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_moves_and_descriptions_read() {
        let b = Beacon::default();
        assert_eq!(std::mem::align_of::<Beacon>(), 64);
        let p0 = b.progress();
        for _ in 0..5 {
            b.add_tick();
        }
        assert_eq!((b.ticks(), b.progress()), (5, p0 + 5));
        b.doing(Doing::Join, 1);
        assert_eq!(b.progress(), p0 + 6);
        let threads = vec!["a".to_string(), "b".to_string()];
        let queues = vec!["q".to_string()];
        let names = Names {
            threads: &threads,
            locks: &[],
            queues: &queues,
        };
        assert_eq!(describe(Beacon::default().seen(), &names), "starting");
        let c = Beacon::default();
        c.doing(Doing::Native, 9);
        assert_eq!(
            describe(c.seen(), &names),
            "in native(9) (C work), GIL released"
        );
        c.doing(Doing::Held, 9);
        c.gil(GIL_HOLDING);
        assert_eq!(
            describe(c.seen(), &names),
            "holds the GIL, in held(9) (C work, no check point)"
        );
        assert_eq!(describe(b.seen(), &names), "waiting in join(\"b\")");
        let q = Beacon::default();
        q.doing(Doing::Get, 0);
        assert_eq!(describe(q.seen(), &names), "waiting in get(\"q\")");
        b.gil(GIL_WAITING);
        assert_eq!(
            describe(b.seen(), &names),
            "waiting for the GIL (in join(\"b\"))"
        );
    }
}
