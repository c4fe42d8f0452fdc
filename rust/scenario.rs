//! What to run: the policy, the threads and their programs, the core map and the stop rule.
//!
//! Python builds a [`Scenario`] and hands it over as JSON; [`Scenario::validate`] checks it
//! completely before any thread starts and names the offending field in its error.

use crate::contract::{
    err, max_events, CPU_TICKS, DRIVER_GAP_US, DRIVER_PINGS, DRIVER_WORK_TICKS, IO_BYTES,
    LOOP_DEPTH, LOOP_TIMES, REPLY_BYTES, SIGNAL_AT_US, SLEEP_US, START_US, STOP_DURATION_S,
    THREADS, THREAD_NAME_CHARS, TICK_NS, WATCHDOG_S,
};
use crate::log::IoOp;
use crate::return_cost::ReturnCost;
use crate::threading::{self, QueueSpec};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub use crate::contract::{max_events_allowed, SpecError, MIN_MAX_EVENTS};
pub use crate::gil::PolicySpec;

/// The system call a `native` op stands for, when it replays one (its log's op).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Send,
    Recv,
    Sleep,
    Lock,
    Write,
}

impl CallKind {
    pub fn io_op(self) -> IoOp {
        match self {
            CallKind::Send => IoOp::Send,
            CallKind::Recv => IoOp::Recv,
            CallKind::Sleep => IoOp::Sleep,
            CallKind::Lock => IoOp::Lock,
            CallKind::Write => IoOp::Write,
        }
    }
}

/// One step of a thread's program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Interpreter work: `ticks` calibrated spins of `tick_ns`, with a GIL check point per tick.
    Cpu { ticks: u64 },
    /// C work that releases the GIL and occupies the core (hashlib on a big buffer, zlib, a
    /// numpy kernel): release as a blocking call does, `ticks` calibrated spins outside the
    /// GIL, retake. Logged `io_begin`/`io_end` with the op `native`, or with `call`'s: a
    /// replayed system call that returned at once and so ran on its CPU
    /// (python/gilmodel/whatif.py), which the I/O figures count as the call it was.
    Native {
        ticks: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKind>,
    },
    /// C work that holds the GIL and reaches no check point (`sorted()` of a big list, a long
    /// regex, an extension that forgets to release the GIL): `ticks` calibrated spins with no
    /// check; other threads' drop requests wait for its end, and the holder checks once after
    /// it, as the next bytecode would. Logged `call_begin`/`call_end` inside the hold.
    Held { ticks: u64 },
    /// `nanosleep(us)` with the GIL released.
    Sleep { us: u64 },
    /// Send `bytes` to the thread's peer (all of them) with the GIL released.
    Send { bytes: u64 },
    /// One `recv` of up to `bytes` from the peer with the GIL released; end of stream ends the
    /// thread's program.
    Recv { bytes: u64 },
    /// Write `bytes` to the thread's own scratch file with the GIL released, as CPython's
    /// `FileIO.write`, `os.write` or a full `BufferedWriter`'s flush do: one `pwrite` (then
    /// `fdatasync` with `fsync`, as `os.fdatasync` after it would). The file is made for the
    /// run in the temporary directory, unlinked at once and closed with the run; writes
    /// go one after another and wrap to its start after [`WRITE_SPAN`] bytes, so a long run
    /// does not fill the disk.
    Write {
        bytes: u64,
        #[serde(default)]
        fsync: bool,
    },
    /// Wait for another thread to finish, with the GIL released.
    Join { thread: String },
    /// `lock.acquire()` of one of the scenario's `locks`, as the policy's interpreter does it
    /// (2.x: the GIL always released around `sem_wait`; 3.2+: a try first, the GIL released
    /// only when the lock is taken). See `threading.rs`.
    Acquire { lock: String },
    /// `lock.release()`: a `sem_post`, the GIL held.
    Release { lock: String },
    /// `q.put(item)` on one of the scenario's `queues` (waits for room when it is bounded).
    Put { queue: String },
    /// `q.get()`: waits for an item.
    Get { queue: String },
    /// Repeat `body` `times` times, or until the run stops when `times` is absent.
    Loop {
        #[serde(default)]
        times: Option<u64>,
        body: Vec<Op>,
    },
    /// TEST-ONLY, not part of the scenario language: do nothing, holding whatever the thread
    /// holds (the GIL), until the run is stopped. A real hang, to test the watchdog with.
    #[doc(hidden)]
    #[serde(rename = "_hang")]
    Hang,
}

/// The helper at the other end of a thread's socket (outside the GIL).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerSpec {
    /// Reads and discards everything the thread sends.
    Drain {
        /// Core to pin the peer to; `None`: any of the scenario's cores (the OS decides).
        #[serde(default)]
        core: Option<usize>,
    },
    /// Sends `bytes` every `gap_us` (scheduled from the start, `pings` times), then closes. With
    /// `reply_bytes > 0` it reads that many bytes back after each ping and records the
    /// round-trip time; the next ping goes at its scheduled time or at once if late.
    Driver {
        pings: u64,
        gap_us: u64,
        bytes: u64,
        reply_bytes: u64,
        /// Ticks of CPU work (the spin of `cpu` ops) before each ping: a client's own work
        /// per request, such as the interpreter's around its `sendall` and `recv`.
        #[serde(default)]
        work_ticks: u64,
        /// Core to pin the peer to; `None`: any of the scenario's cores (the OS decides).
        #[serde(default)]
        core: Option<usize>,
    },
}

impl PeerSpec {
    /// The core the peer is pinned to, if any.
    pub fn core(&self) -> Option<usize> {
        match self {
            PeerSpec::Drain { core } | PeerSpec::Driver { core, .. } => *core,
        }
    }
}

/// One scenario thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadSpec {
    pub name: String,
    pub program: Vec<Op>,
    /// Core to pin to; `None`: round-robin over the scenario's cores.
    #[serde(default)]
    pub core: Option<usize>,
    #[serde(default)]
    pub peer: Option<PeerSpec>,
    /// Microseconds after the release of the threads that this one starts (logs `start` and
    /// asks for the GIL): a thread a program starts later (a replayed one, gilmodel.whatif).
    #[serde(default)]
    pub start_us: u64,
}

impl Op {
    /// Whether any op of `ops`, loop bodies included, is one `f` picks.
    pub fn any_in(ops: &[Op], f: &impl Fn(&Op) -> bool) -> bool {
        ops.iter().any(|op| match op {
            Op::Loop { body, .. } => f(op) || Op::any_in(body, f),
            _ => f(op),
        })
    }
}

impl ThreadSpec {
    /// Whether its program has a `write` (it then gets a scratch file before the start).
    pub fn writes(&self) -> bool {
        Op::any_in(&self.program, &|op| matches!(op, Op::Write { .. }))
    }
}

/// Bytes of a thread's scratch file that its `write`s fill in turn before they start again at
/// its beginning: the largest write ([`IO_BYTES`]' limit).
pub const WRITE_SPAN: u64 = IO_BYTES.hi;

/// Where a write of `bytes` goes when the previous ones ended at `at`: there, or at the file's
/// start when it would pass [`WRITE_SPAN`].
pub fn write_offset(at: u64, bytes: u64) -> u64 {
    if at + bytes > WRITE_SPAN {
        0
    } else {
        at
    }
}

/// When the run ends: when all threads finished, or when `thread` finished, or after
/// `duration_s`, whichever comes first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    #[serde(default)]
    pub thread: Option<String>,
    #[serde(default)]
    pub duration_s: Option<f64>,
}

/// A complete experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    pub gil: PolicySpec,
    pub threads: Vec<ThreadSpec>,
    /// Cores the threads may use; empty: every core the process may use.
    #[serde(default)]
    pub cores: Vec<usize>,
    #[serde(default)]
    pub stop: StopSpec,
    /// Nanoseconds of work per tick.
    #[serde(default = "default_tick_ns")]
    pub tick_ns: f64,
    /// Record events (the counters in `threads` are kept either way).
    #[serde(default = "yes")]
    pub log: bool,
    /// Event budget for the whole run, split evenly between threads.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// What happens when a thread fills its share of `max_events`.
    #[serde(default)]
    pub on_overflow: Overflow,
    /// Seconds without progress after which the run is stopped and reported as hung; `None`:
    /// [`Scenario::watchdog_s`]'s default rule.
    #[serde(default)]
    pub watchdog_s: Option<f64>,
    /// Signals sent to the main thread (thread 0) during the run.
    #[serde(default)]
    pub signals: Vec<SignalSpec>,
    /// Pin each thread to its one core (default); false: every thread may run on any of the
    /// scenario's cores and the OS scheduler places and moves it, as it does a real
    /// interpreter's threads (no thread may then name a core).
    #[serde(default = "yes")]
    pub pin_threads: bool,
    /// The `threading.Lock`s the threads' `acquire`/`release` name.
    #[serde(default)]
    pub locks: Vec<String>,
    /// The `queue.Queue`s the threads' `put`/`get` name.
    #[serde(default)]
    pub queues: Vec<QueueSpec>,
    /// What a thread back from a blocking op spins before its next (empty: nothing).
    #[serde(default)]
    pub return_cost: ReturnCost,
}

/// What a run does when a thread's share of the event budget is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Keep the first events of each thread, count the rest, say so in `meta`.
    #[default]
    Truncate,
    /// Stop the run (within one 10 ms controller slice) and report it as an error.
    Error,
}

impl Overflow {
    pub fn name(self) -> &'static str {
        match self {
            Overflow::Truncate => "truncate",
            Overflow::Error => "error",
        }
    }
}

/// A real signal sent with `pthread_kill` to the main thread `at_us` after the start; its
/// Python-level `handler` (CPU work only) runs in the main thread at its next check point
/// with the GIL held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSpec {
    pub at_us: u64,
    pub signum: i32,
    #[serde(default)]
    pub handler: Vec<Op>,
}

pub const DEFAULT_TICK_NS: f64 = 50.0;
pub use crate::log::EVENT_BYTES;
/// Memory the default event budget may take in the per-thread buffers (256 MiB).
pub const DEFAULT_LOG_BYTES: u64 = 256 << 20;
/// The default event budget: [`DEFAULT_LOG_BYTES`] / [`EVENT_BYTES`] (14 128 181 events).
pub const DEFAULT_MAX_EVENTS: u64 = DEFAULT_LOG_BYTES / EVENT_BYTES;
/// The default watchdog: `max(WATCHDOG_MIN_S, WATCHDOG_FACTOR × the longest expected wait)`
/// (an explicit one: [`WATCHDOG_S`]).
pub const WATCHDOG_MIN_S: f64 = 5.0;
pub const WATCHDOG_FACTOR: f64 = 4.0;

fn default_tick_ns() -> f64 {
    DEFAULT_TICK_NS
}
fn yes() -> bool {
    true
}
fn default_max_events() -> u64 {
    DEFAULT_MAX_EVENTS
}

/// The validated core map: the core of every thread, and the set the run may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub thread_cores: Vec<usize>,
    pub cores: Vec<usize>,
}

impl Scenario {
    /// `threads` under `gil` with every other field at its default (what a JSON spec that
    /// gives only these three gets): all allowed cores, no stop rule, 50 ns ticks, logged.
    pub fn of(name: &str, gil: PolicySpec, threads: Vec<ThreadSpec>) -> Scenario {
        Scenario {
            name: name.into(),
            gil,
            threads,
            cores: vec![],
            stop: StopSpec::default(),
            tick_ns: default_tick_ns(),
            log: true,
            max_events: DEFAULT_MAX_EVENTS,
            on_overflow: Overflow::Truncate,
            watchdog_s: None,
            signals: vec![],
            pin_threads: true,
            locks: vec![],
            queues: vec![],
            return_cost: Default::default(),
        }
    }

    /// Parse a scenario from JSON (as the Python front sends it).
    pub fn from_json(s: &str) -> Result<Scenario, SpecError> {
        serde_json::from_str(s).map_err(|e| SpecError {
            field: "scenario".into(),
            message: e.to_string(),
        })
    }

    /// Check everything that can be checked before a thread starts. `allowed` is the set of
    /// cores the process may run on; `mem_bytes` the machine's memory.
    pub fn validate(&self, allowed: &[usize], mem_bytes: u64) -> Result<Placement, SpecError> {
        self.gil.knobs().validate()?;
        self.return_cost.validate()?;
        let n = self.threads.len();
        if (n as u64) < THREADS.lo {
            return err("threads", "a scenario needs at least one thread");
        }
        if n as u64 > THREADS.hi {
            return err(
                "threads",
                format!("{n} threads; at most {} are allowed", THREADS.hi),
            );
        }
        threading::validate_objects(self)?;
        let objects = threading::Names::of(self);
        let mut index = HashMap::new();
        for (i, t) in self.threads.iter().enumerate() {
            let f = format!("threads[{i}].name");
            // Characters, as Python counts them; a NUL would make the OS thread name panic.
            if !THREAD_NAME_CHARS.contains(t.name.chars().count() as u64) || t.name.contains('\0') {
                return err(
                    f,
                    format!(
                        "{:?}: a name of {} to {} characters, without NUL, is required",
                        t.name, THREAD_NAME_CHARS.lo, THREAD_NAME_CHARS.hi
                    ),
                );
            }
            if index.insert(t.name.as_str(), i).is_some() {
                return err(
                    f,
                    format!("{:?} is used by two threads; names must be unique", t.name),
                );
            }
        }
        for (i, t) in self.threads.iter().enumerate() {
            self.validate_peer(i, t)?;
            START_US.check(format!("threads[{i}].start_us"), t.start_us)?;
            if t.program.is_empty() {
                return err(
                    format!("threads[{i}].program"),
                    "a thread needs at least one op",
                );
            }
            for (j, op) in t.program.iter().enumerate() {
                self.validate_op(
                    i,
                    t,
                    &index,
                    &objects,
                    op,
                    &format!("threads[{i}].program[{j}]"),
                    0,
                )?;
            }
        }
        self.validate_joins(&index)?;
        threading::validate_programs(self, &objects)?;
        for (i, sg) in self.signals.iter().enumerate() {
            if !crate::signals::ALLOWED.iter().any(|&(s, _)| s == sg.signum) {
                let names: Vec<String> = crate::signals::ALLOWED
                    .iter()
                    .map(|(s, n)| format!("{n} ({s})"))
                    .collect();
                return err(
                    format!("signals[{i}].signum"),
                    format!("{}: allowed are {}", sg.signum, names.join(", ")),
                );
            }
            SIGNAL_AT_US.check(format!("signals[{i}].at_us"), sg.at_us)?;
            for (j, op) in sg.handler.iter().enumerate() {
                if !matches!(op, Op::Cpu { ticks } if *ticks >= 1) {
                    return err(
                        format!("signals[{i}].handler[{j}]"),
                        "a handler is CPU work only: cpu(ticks) with ticks >= 1",
                    );
                }
            }
        }
        TICK_NS.check("tick_ns", self.tick_ns)?;
        let budget = max_events(n, mem_bytes);
        if !budget.contains(self.max_events) {
            return err(
                "max_events",
                format!(
                    "{}: must be between {} and {} (half this machine's memory at {} bytes an event)",
                    self.max_events, budget.lo, budget.hi, EVENT_BYTES
                ),
            );
        }
        if let Some(w) = self.watchdog_s {
            let (lo, hi) = (WATCHDOG_S.lo, WATCHDOG_S.hi);
            if !WATCHDOG_S.contains(w) {
                return err(
                    "watchdog_s",
                    format!(
                        "{w}: must be between {lo} and {hi} s, or None for the default \
                         (max({WATCHDOG_MIN_S} s, {WATCHDOG_FACTOR} × the longest expected wait); \
                         it cannot be switched off: {hi} is the most)"
                    ),
                );
            }
        }
        self.validate_stop(&index)?;
        self.place(allowed)
    }

    /// The longest a thread of this scenario may legitimately go without progress (a tick, an
    /// op begun, a GIL acquisition), in seconds: its longest `sleep` or `start_us`, the longest `gap_us` of a
    /// driver plus its work before a ping (a `recv` waits that long for the next ping), and the policy's own
    /// ([`Knobs::longest_wait_us`](crate::gil::Knobs::longest_wait_us): its interval, slice or
    /// least hold).
    pub fn longest_expected_wait_s(&self) -> f64 {
        fn sleeps(ops: &[Op]) -> u64 {
            ops.iter()
                .map(|o| match o {
                    Op::Sleep { us } => *us,
                    Op::Loop { body, .. } => sleeps(body),
                    _ => 0,
                })
                .max()
                .unwrap_or(0)
        }
        let mut us = 0u64;
        for t in &self.threads {
            us = us.max(sleeps(&t.program)).max(t.start_us);
            if let Some(PeerSpec::Driver {
                gap_us, work_ticks, ..
            }) = &t.peer
            {
                let work_us = (*work_ticks as f64 * self.tick_ns / 1e3).min(u64::MAX as f64) as u64;
                us = us.max(gap_us.saturating_add(work_us));
            }
        }
        us.max(self.gil.knobs().longest_wait_us()) as f64 * 1e-6
    }

    /// Seconds without progress before the watchdog stops the run: `watchdog_s` if given, else
    /// `max(WATCHDOG_MIN_S, WATCHDOG_FACTOR × longest_expected_wait_s())`.
    pub fn watchdog_s(&self) -> f64 {
        self.watchdog_s.unwrap_or_else(|| {
            (WATCHDOG_FACTOR * self.longest_expected_wait_s()).max(WATCHDOG_MIN_S)
        })
    }

    fn validate_peer(&self, i: usize, t: &ThreadSpec) -> Result<(), SpecError> {
        if let Some(PeerSpec::Driver {
            pings,
            gap_us,
            bytes,
            reply_bytes,
            work_ticks,
            ..
        }) = &t.peer
        {
            let f = format!("threads[{i}].peer");
            DRIVER_PINGS.check(format!("{f}.pings"), *pings)?;
            DRIVER_GAP_US.check(format!("{f}.gap_us"), *gap_us)?;
            DRIVER_WORK_TICKS.check(format!("{f}.work_ticks"), *work_ticks)?;
            IO_BYTES.check(format!("{f}.bytes"), *bytes)?;
            if !REPLY_BYTES.contains(*reply_bytes) {
                return err(
                    format!("{f}.reply_bytes"),
                    format!("{reply_bytes}: at most {}", REPLY_BYTES.hi),
                );
            }
        }
        Ok(())
    }

    fn validate_op(
        &self,
        i: usize,
        t: &ThreadSpec,
        index: &HashMap<&str, usize>,
        objects: &threading::Names,
        op: &Op,
        f: &str,
        depth: usize,
    ) -> Result<(), SpecError> {
        match op {
            Op::Acquire { .. } | Op::Release { .. } | Op::Put { .. } | Op::Get { .. } => {
                threading::validate_op(objects, op, f)
            }
            Op::Cpu { ticks } | Op::Native { ticks, .. } | Op::Held { ticks }
                if !CPU_TICKS.contains(*ticks) =>
            {
                CPU_TICKS.check(format!("{f}.ticks"), *ticks)
            }
            Op::Sleep { us } if !SLEEP_US.contains(*us) => SLEEP_US.check(format!("{f}.us"), *us),
            Op::Send { bytes } | Op::Recv { bytes } | Op::Write { bytes, .. }
                if !IO_BYTES.contains(*bytes) =>
            {
                IO_BYTES.check(format!("{f}.bytes"), *bytes)
            }
            Op::Send { .. } if t.peer.is_none() => err(
                f,
                format!(
                    "thread {:?} sends but has no peer; give it peer=drain() or driver(...)",
                    t.name
                ),
            ),
            Op::Recv { .. } if !matches!(t.peer, Some(PeerSpec::Driver { .. })) => err(
                f,
                format!(
                    "thread {:?} receives but its peer sends nothing; give it peer=driver(...)",
                    t.name
                ),
            ),
            Op::Join { thread } => match index.get(thread.as_str()) {
                None => err(
                    format!("{f}.thread"),
                    format!("{thread:?} is not a thread of this scenario"),
                ),
                Some(&j) if j == i => err(
                    format!("{f}.thread"),
                    format!("thread {thread:?} cannot join itself"),
                ),
                Some(_) => Ok(()),
            },
            Op::Loop { times, body } => {
                if depth as u64 >= LOOP_DEPTH.hi {
                    return err(f, format!("loops nest deeper than {}", LOOP_DEPTH.hi));
                }
                if let Some(t) = times {
                    LOOP_TIMES.check(format!("{f}.times"), *t)?;
                }
                if body.is_empty() {
                    return err(format!("{f}.body"), "a loop needs at least one op");
                }
                for (j, o) in body.iter().enumerate() {
                    self.validate_op(
                        i,
                        t,
                        index,
                        objects,
                        o,
                        &format!("{f}.body[{j}]"),
                        depth + 1,
                    )?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Join edges must not form a cycle (every thread in it would wait forever).
    fn validate_joins(&self, index: &HashMap<&str, usize>) -> Result<(), SpecError> {
        let n = self.threads.len();
        let edges: Vec<Vec<usize>> = self
            .threads
            .iter()
            .map(|t| {
                let mut v = Vec::new();
                collect_joins(&t.program, index, &mut v);
                v
            })
            .collect();
        // 0 unvisited, 1 on stack, 2 done
        let mut state = vec![0u8; n];
        fn visit(u: usize, edges: &[Vec<usize>], state: &mut [u8]) -> Option<usize> {
            state[u] = 1;
            for &v in &edges[u] {
                if state[v] == 1 {
                    return Some(v);
                }
                if state[v] == 0 {
                    if let Some(c) = visit(v, edges, state) {
                        return Some(c);
                    }
                }
            }
            state[u] = 2;
            None
        }
        for u in 0..n {
            if state[u] == 0 {
                if let Some(c) = visit(u, &edges, &mut state) {
                    return err(
                        "threads",
                        format!(
                            "thread {:?} is part of a join cycle; it would wait forever",
                            self.threads[c].name
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    fn validate_stop(&self, index: &HashMap<&str, usize>) -> Result<(), SpecError> {
        if let Some(d) = self.stop.duration_s {
            let (lo, hi) = (STOP_DURATION_S.lo, STOP_DURATION_S.hi);
            if !STOP_DURATION_S.contains(d) || d == lo {
                return err(
                    "stop.duration_s",
                    format!("{d}: must be more than {lo} and at most {hi} s"),
                );
            }
        }
        let target = match &self.stop.thread {
            Some(name) => match index.get(name.as_str()) {
                Some(&i) => Some(i),
                None => {
                    return err(
                        "stop.thread",
                        format!("{name:?} is not a thread of this scenario"),
                    )
                }
            },
            None => None,
        };
        if self.stop.duration_s.is_none() {
            let forever =
                |i: usize| self.may_run_forever(i, index, &mut vec![false; self.threads.len()]);
            match target {
                Some(i) if forever(i) => {
                    return err(
                        "stop",
                        format!(
                            "thread {:?} loops until stopped, so stopping when it finishes never ends; give stop.duration_s",
                            self.threads[i].name
                        ),
                    )
                }
                None => {
                    if let Some(i) = (0..self.threads.len()).find(|&i| forever(i)) {
                        return err(
                            "stop",
                            format!(
                                "thread {:?} loops until stopped and the run waits for all threads; give stop.duration_s or stop.thread",
                                self.threads[i].name
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether thread `i` may never finish by itself: it has an endless loop with no `recv`
    /// (a driver's end of stream ends it), or joins a thread that may never finish.
    fn may_run_forever(
        &self,
        i: usize,
        index: &HashMap<&str, usize>,
        seen: &mut Vec<bool>,
    ) -> bool {
        if seen[i] {
            return false;
        }
        seen[i] = true;
        fn endless(ops: &[Op]) -> bool {
            ops.iter().any(|o| match o {
                Op::Loop { times: None, body } => !has_recv(body),
                Op::Loop { body, .. } => endless(body),
                _ => false,
            })
        }
        fn has_recv(ops: &[Op]) -> bool {
            Op::any_in(ops, &|o| matches!(o, Op::Recv { .. }))
        }
        let prog = &self.threads[i].program;
        if endless(prog) {
            return true;
        }
        let mut joins = Vec::new();
        collect_joins(prog, index, &mut joins);
        joins
            .into_iter()
            .any(|j| self.may_run_forever(j, index, seen))
    }

    fn place(&self, allowed: &[usize]) -> Result<Placement, SpecError> {
        let cores: Vec<usize> = if self.cores.is_empty() {
            allowed.to_vec()
        } else {
            self.cores.clone()
        };
        let mut seen = std::collections::HashSet::new();
        for &c in &cores {
            if !allowed.contains(&c) {
                return err(
                    "cores",
                    format!("core {c} is not in this process's affinity mask {allowed:?}"),
                );
            }
            if !seen.insert(c) {
                return err("cores", format!("core {c} is listed twice"));
            }
        }
        if cores.is_empty() {
            return err("cores", "no core to run on");
        }
        let mut thread_cores = Vec::with_capacity(self.threads.len());
        let mut rr = 0;
        for (i, t) in self.threads.iter().enumerate() {
            match t.core {
                Some(c) if !self.pin_threads => {
                    return err(
                        format!("threads[{i}].core"),
                        format!("core {c} given, but pin_threads is false: unpinned threads run on any of the scenario's cores"),
                    );
                }
                Some(c) => {
                    if !cores.contains(&c) {
                        return err(
                            format!("threads[{i}].core"),
                            format!("core {c} is not among the scenario's cores {cores:?}"),
                        );
                    }
                    thread_cores.push(c);
                }
                None => {
                    thread_cores.push(cores[rr % cores.len()]);
                    rr += 1;
                }
            }
            if let Some(c) = t.peer.as_ref().and_then(PeerSpec::core) {
                if !cores.contains(&c) {
                    return err(
                        format!("threads[{i}].peer.core"),
                        format!("core {c} is not among the scenario's cores {cores:?}"),
                    );
                }
            }
        }
        Ok(Placement {
            thread_cores,
            cores,
        })
    }
}

fn collect_joins(ops: &[Op], index: &HashMap<&str, usize>, out: &mut Vec<usize>) {
    for o in ops {
        match o {
            Op::Join { thread } => {
                if let Some(&j) = index.get(thread.as_str()) {
                    out.push(j);
                }
            }
            Op::Loop { body, .. } => collect_joins(body, index, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gil::IntervalConfig;

    fn cpu_thread(name: &str) -> ThreadSpec {
        ThreadSpec {
            name: name.into(),
            program: vec![Op::Cpu { ticks: 10 }],
            core: None,
            peer: None,
            start_us: 0,
        }
    }

    fn sc(threads: Vec<ThreadSpec>) -> Scenario {
        Scenario::of(
            "t",
            PolicySpec::Interval(IntervalConfig::default()),
            threads,
        )
    }

    const MEM: u64 = 8 << 30;

    #[test]
    fn json_round_trip() {
        let s = sc(vec![cpu_thread("a")]);
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains("\"policy\":\"interval\""), "{j}");
        assert_eq!(Scenario::from_json(&j).unwrap(), s);
    }

    #[test]
    fn round_robin_and_explicit_cores() {
        let mut s = sc(vec![cpu_thread("a"), cpu_thread("b"), cpu_thread("c")]);
        s.threads[2].core = Some(0);
        let p = s.validate(&[0, 1], MEM).unwrap();
        assert_eq!(p.thread_cores, vec![0, 1, 0]);
    }

    #[test]
    fn refuses_bad_input_naming_the_field() {
        type Mutation = Box<dyn Fn(&mut Scenario)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.threads.clear()), "threads"),
            (Box::new(|s| s.cores = vec![7]), "cores"),
            (
                Box::new(|s| s.threads[0].program = vec![Op::Cpu { ticks: 0 }]),
                "threads[0].program[0].ticks",
            ),
            (
                Box::new(|s| {
                    s.threads[0].program = vec![Op::Native {
                        ticks: 0,
                        call: None,
                    }]
                }),
                "threads[0].program[0].ticks",
            ),
            (
                Box::new(|s| s.threads[0].program = vec![Op::Held { ticks: 0 }]),
                "threads[0].program[0].ticks",
            ),
            (
                Box::new(|s| {
                    s.threads[1].program = vec![Op::Loop {
                        times: Some(2),
                        body: vec![Op::Held {
                            ticks: CPU_TICKS.hi + 1,
                        }],
                    }]
                }),
                "threads[1].program[0].body[0].ticks",
            ),
            (
                Box::new(|s| {
                    s.threads[0].program = vec![Op::Native {
                        ticks: CPU_TICKS.hi + 1,
                        call: None,
                    }]
                }),
                "threads[0].program[0].ticks",
            ),
            (
                Box::new(|s| s.threads[0].program = vec![Op::Join { thread: "a".into() }]),
                "threads[0].program[0].thread",
            ),
            (
                Box::new(|s| {
                    s.threads[0].program = vec![Op::Join {
                        thread: "zz".into(),
                    }]
                }),
                "threads[0].program[0].thread",
            ),
            (
                Box::new(|s| s.stop.thread = Some("zz".into())),
                "stop.thread",
            ),
            (
                Box::new(|s| s.stop.duration_s = Some(-1.0)),
                "stop.duration_s",
            ),
            (Box::new(|s| s.max_events = 10), "max_events"),
            (Box::new(|s| s.max_events = u64::MAX), "max_events"),
            (Box::new(|s| s.tick_ns = f64::NAN), "tick_ns"),
            (Box::new(|s| s.watchdog_s = Some(0.0)), "watchdog_s"),
            (
                Box::new(|s| s.watchdog_s = Some(f64::INFINITY)),
                "watchdog_s",
            ),
            (Box::new(|s| s.watchdog_s = Some(1e9)), "watchdog_s"),
            (
                Box::new(|s| s.threads[0].program = vec![Op::Send { bytes: 1 }]),
                "threads[0].program[0]",
            ),
            (
                Box::new(|s| {
                    s.gil = PolicySpec::Interval(IntervalConfig {
                        interval_us: 0,
                        ..Default::default()
                    })
                }),
                "gil.interval_us",
            ),
            (
                Box::new(|s| {
                    s.threads[0].program = vec![Op::Loop {
                        times: None,
                        body: vec![Op::Cpu { ticks: 1 }],
                    }]
                }),
                "stop",
            ),
            (
                Box::new(|s| s.threads[1].name = "a".into()),
                "threads[1].name",
            ),
            (
                Box::new(|s| s.threads[1].name = "b\0".into()),
                "threads[1].name",
            ),
            (
                Box::new(|s| s.threads[1].name = "é".repeat(65)),
                "threads[1].name",
            ),
        ];
        for (mutate, field) in cases {
            let mut s = sc(vec![cpu_thread("a"), cpu_thread("b")]);
            mutate(&mut s);
            let e = s.validate(&[0, 1], MEM).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn watchdog_default_rule() {
        let mut s = sc(vec![cpu_thread("a")]);
        assert_eq!(s.watchdog_s(), WATCHDOG_MIN_S);
        s.threads[0].program = vec![Op::Loop {
            times: Some(2),
            body: vec![Op::Sleep { us: 3_000_000 }],
        }];
        assert_eq!(s.watchdog_s(), 12.0);
        s.gil = PolicySpec::Interval(IntervalConfig {
            interval_us: 5_000_000,
            ..Default::default()
        });
        assert_eq!(s.watchdog_s(), 20.0);
        s.watchdog_s = Some(0.5);
        assert_eq!(s.watchdog_s(), 0.5);
    }

    #[test]
    fn new_fields_default_and_parse() {
        let j = r#"{"gil":{"policy":"nogil","check_every":1},"threads":[{"name":"a","program":[{"op":"_hang"}]}]}"#;
        let s = Scenario::from_json(j).unwrap();
        assert_eq!(s.on_overflow, Overflow::Truncate);
        assert_eq!(s.watchdog_s, None);
        assert_eq!(s.max_events, DEFAULT_MAX_EVENTS);
        assert_eq!(s.threads[0].program, vec![Op::Hang]);
        let j = j.replace(
            "\"threads\"",
            "\"on_overflow\":\"error\",\"watchdog_s\":2.5,\"threads\"",
        );
        let s = Scenario::from_json(&j).unwrap();
        assert_eq!((s.on_overflow, s.watchdog_s), (Overflow::Error, Some(2.5)));
        let bad = j.replace("\"error\"", "\"panic\"");
        assert!(Scenario::from_json(&bad)
            .unwrap_err()
            .message
            .contains("truncate"));
    }

    #[test]
    fn unpinned_threads_may_not_name_a_core() {
        let mut s = sc(vec![cpu_thread("a"), cpu_thread("b")]);
        s.pin_threads = false;
        assert!(s.validate(&[0, 1], MEM).is_ok());
        s.threads[1].core = Some(1);
        let e = s.validate(&[0, 1], MEM).unwrap_err();
        assert_eq!(e.field, "threads[1].core");
        assert!(e.message.contains("pin_threads"), "{}", e.message);
        let j = r#"{"gil":{"policy":"nogil","check_every":1},"threads":[{"name":"a","program":[{"op":"cpu","ticks":1}]}]}"#;
        assert!(
            Scenario::from_json(j).unwrap().pin_threads,
            "pinned by default"
        );
    }

    #[test]
    fn non_ascii_name_counted_in_characters() {
        let mut s = sc(vec![cpu_thread("a"), cpu_thread("b")]);
        s.threads[1].name = "é".repeat(64);
        assert!(s.validate(&[0], MEM).is_ok());
    }

    #[test]
    fn join_cycle_refused() {
        let mut s = sc(vec![cpu_thread("a"), cpu_thread("b")]);
        s.threads[0].program.push(Op::Join { thread: "b".into() });
        s.threads[1].program.push(Op::Join { thread: "a".into() });
        assert!(s.validate(&[0], MEM).unwrap_err().message.contains("cycle"));
    }

    #[test]
    fn endless_loop_ok_with_duration_or_finite_stop_thread() {
        let mut s = sc(vec![cpu_thread("a"), cpu_thread("b")]);
        s.threads[1].program = vec![Op::Loop {
            times: None,
            body: vec![Op::Cpu { ticks: 1 }],
        }];
        s.stop.thread = Some("a".into());
        assert!(s.validate(&[0], MEM).is_ok());
        s.stop = StopSpec {
            thread: None,
            duration_s: Some(0.1),
        };
        assert!(s.validate(&[0], MEM).is_ok());
    }

    #[test]
    fn native_and_held_parse_and_validate() {
        let j = r#"{"gil":{"policy":"nogil","check_every":1},"threads":[{"name":"a","program":[{"op":"native","ticks":5},{"op":"held","ticks":7}]}]}"#;
        let s = Scenario::from_json(j).unwrap();
        assert_eq!(
            s.threads[0].program,
            vec![
                Op::Native {
                    ticks: 5,
                    call: None
                },
                Op::Held { ticks: 7 }
            ]
        );
        assert!(s.validate(&[0], MEM).is_ok());
        let neg = j.replace("\"ticks\":5", "\"ticks\":-5");
        assert!(Scenario::from_json(&neg).is_err());
        // A native op standing for a system call that returned at once names the call.
        let send = j.replace("\"ticks\":5}", "\"ticks\":5,\"call\":\"send\"}");
        let s = Scenario::from_json(&send).unwrap();
        assert_eq!(
            s.threads[0].program[0],
            Op::Native {
                ticks: 5,
                call: Some(CallKind::Send)
            }
        );
        let other = j.replace("\"ticks\":5}", "\"ticks\":5,\"call\":\"native\"}");
        assert!(Scenario::from_json(&other).is_err());
    }

    #[test]
    fn unknown_field_or_lock_refused_by_parser() {
        let bad = r#"{"gil":{"policy":"tick","check_interval":100,"lock":"spin"},"threads":[]}"#;
        assert!(Scenario::from_json(bad)
            .unwrap_err()
            .message
            .contains("spin"));
    }

    #[test]
    fn writes_go_one_after_another_and_wrap_at_the_span() {
        assert_eq!(write_offset(0, 4096), 0);
        assert_eq!(write_offset(4096, 4096), 4096);
        // The last write that fits ends at the span exactly; the next starts again at 0.
        assert_eq!(write_offset(WRITE_SPAN - 4096, 4096), WRITE_SPAN - 4096);
        assert_eq!(write_offset(WRITE_SPAN - 4095, 4096), 0);
        assert_eq!(write_offset(WRITE_SPAN, 1), 0);
        // The largest write fits from the start.
        assert_eq!(write_offset(0, IO_BYTES.hi), 0);
        assert_eq!(write_offset(1, IO_BYTES.hi), 0);
    }

    #[test]
    fn a_drivers_work_counts_in_the_longest_expected_wait() {
        let j = |work: u64| {
            format!(
                r#"{{"gil":{{"policy":"tick","check_interval":100,"lock":"sem"}},"tick_ns":50.0,"threads":[{{"name":"io","program":[{{"op":"recv","bytes":8}}],"peer":{{"kind":"driver","pings":1,"gap_us":10000,"bytes":8,"reply_bytes":8,"work_ticks":{work}}}}}]}}"#
            )
        };
        let a = Scenario::from_json(&j(0))
            .unwrap()
            .longest_expected_wait_s();
        let b = Scenario::from_json(&j(1_000_000))
            .unwrap()
            .longest_expected_wait_s();
        assert!((a - 0.01).abs() < 1e-9, "{a}");
        assert!((b - 0.06).abs() < 1e-9, "{b}"); // + 1e6 ticks of 50 ns
    }
}
