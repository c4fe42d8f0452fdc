//! The kernel side: uprobes defined in tracefs (`uprobe_events`, as `perf probe` defines
//! them), each opened with `perf_event_open` as a tracepoint event (through the `perf-event2`
//! crate) per task and CPU, all of a CPU's events writing into one ring buffer
//! (`PERF_EVENT_IOC_SET_OUTPUT`), read here as raw records.
//!
//! Why tracefs-defined probes and not the `uprobe` PMU (a probe made by `perf_event_open`
//! alone), tried first: a PMU uprobe is registered and unregistered once per perf event, and
//! every unregistering waits for RCU grace periods (about 0.17 s each on Linux 6.18 here), so
//! each observed thread's exit stalled for probes × CPUs × 0.17 s (1.7 s for 5 probes on 2
//! CPUs), and hits of the surviving threads went missing meanwhile (a `drop_gil` at a thread's
//! exit, seen in CI). It also names its file by a pointer that the kernel reads again in the
//! *target's* memory when the target starts a thread (`perf_uprobe_init`: `strndup_user`),
//! which made `pthread_create` fail. A tracefs probe is registered once for the whole
//! observation; per-task events only add and remove themselves from its filter. The price: the
//! definitions outlive a SIGKILLed observer. They are named `gilmodel_<observer pid>/…`, cost
//! nothing without a perf event attached (no breakpoint is installed), and the next
//! observation removes those whose observer is gone. Why not eBPF: no compiler or BPF
//! toolchain, and the kernel timestamps each hit on `CLOCK_MONOTONIC` (`use_clockid`), the
//! clock of the model's own log; the price is one record per hit (48 bytes) copied out.
//!
//! Events are per task with `inherit` + `inherit_thread` (Linux ≥ 5.13): threads the target
//! starts are followed, processes it forks are not (their GIL is another GIL). Inherited
//! events must be per CPU (the kernel refuses to mmap inherited per-task-any-CPU events). The
//! breakpoint is only installed in the traced processes' memory (the probe's filter), so other
//! processes that map the same libpython do not pay for it.

use super::symbols::Site;
use perf_event::events::Tracepoint;
use perf_event::{Builder, Clock, Counter, SampleFlag, Sampler};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// The tracing file system's directory, or why there is none.
pub fn tracefs() -> Result<PathBuf, String> {
    for d in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let p = PathBuf::from(d);
        if p.join("uprobe_events").exists() {
            return Ok(p);
        }
    }
    Err("no tracefs with uprobe_events (/sys/kernel/tracing): mount it (`mount -t tracefs nodev /sys/kernel/tracing`); \
         the kernel needs CONFIG_UPROBE_EVENTS"
        .into())
}

/// This observation's probe definitions in tracefs; removed on drop (after the perf events
/// that use them are closed: the kernel refuses to remove a probe in use).
pub struct Definitions {
    dir: PathBuf,
    group: String,
    names: Vec<String>,
    /// The tracepoint id of each probe, in the order given.
    pub ids: Vec<u64>,
    /// `raw_syscalls:sys_enter` and `sys_exit`, where this architecture's blocking calls are
    /// known (x86_64): the target's blocking calls, as the model's `io_begin`/`io_end`.
    pub syscalls: Option<(u64, u64)>,
}

/// The blocking system calls observed, by number (x86_64), and the model's op for each
/// (rust/log.rs `IoOp`: 0 send, 1 recv, 2 sleep, 5 lock): reads, receives and waits for
/// readiness are `recv`; writes, sends and connects `send`; the sleeps `sleep`; `futex` is
/// `lock` when it waits ([`FUTEX_NR`]; its wakes become the decoder's `lock_wake`): with the GIL
/// released outside the GIL's own functions, that is a wait for a `threading` lock, a
/// `Condition`, a `queue.Queue`, a `join` (all locks in CPython), or glibc's own locks.
#[cfg(target_arch = "x86_64")]
pub const BLOCKING_SYSCALLS: &[(i64, i64)] = &[
    (0, 1),   // read
    (7, 1),   // poll
    (23, 1),  // select
    (43, 1),  // accept
    (45, 1),  // recvfrom
    (47, 1),  // recvmsg
    (232, 1), // epoll_wait
    (270, 1), // pselect6
    (271, 1), // ppoll
    (281, 1), // epoll_pwait
    (288, 1), // accept4
    (299, 1), // recvmmsg
    (1, 0),   // write
    (42, 0),  // connect
    (44, 0),  // sendto
    (46, 0),  // sendmsg
    (307, 0), // sendmmsg
    (35, 2),  // nanosleep
    (230, 2), // clock_nanosleep
    (202, 5), // futex (its waits only: see FUTEX_NR)
];
/// `futex`'s number: the decoder makes its waits (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, read
/// from its second argument) `lock` spans and its wakes `lock_wake` (a lock's release).
#[cfg(target_arch = "x86_64")]
pub const FUTEX_NR: u64 = 202;
#[cfg(not(target_arch = "x86_64"))]
pub const FUTEX_NR: u64 = u64::MAX;
#[cfg(not(target_arch = "x86_64"))]
pub const BLOCKING_SYSCALLS: &[(i64, i64)] = &[];

/// The system calls that start a process (x86_64 `clone`, `fork`, `vfork`), traced at their
/// entry beside [`BLOCKING_SYSCALLS`] only to be counted: a forked process is not followed (its
/// GIL is another), and a replay must say so. glibc's `fork` (so `os.fork`, `multiprocessing`)
/// is a `clone` without `CLONE_THREAD`; CPython's `subprocess` is `vfork`. `clone3` is not
/// counted: glibc starts threads with it, and its flags are behind a pointer.
#[cfg(target_arch = "x86_64")]
pub const PROCESS_SYSCALLS: &[u64] = &[56, 57, 58];
#[cfg(not(target_arch = "x86_64"))]
pub const PROCESS_SYSCALLS: &[u64] = &[];
/// `clone`'s number: a process unless its flags (first argument) hold `CLONE_THREAD`.
pub const CLONE_NR: u64 = 56;
pub const CLONE_THREAD: u64 = 0x0001_0000;

fn tracepoint_id(dir: &std::path::Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join("events").join(name).join("id"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_line(file: &std::path::Path, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(file)?;
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")
}

impl Definitions {
    /// Define one uprobe per probe (`p:` entry or `r:` return, at its file offset).
    pub fn define(probes: &[Probe]) -> Result<Definitions, String> {
        let dir = tracefs()?;
        remove_stale(&dir);
        let syscalls = if BLOCKING_SYSCALLS.is_empty() {
            None
        } else {
            tracepoint_id(&dir, "raw_syscalls/sys_enter")
                .zip(tracepoint_id(&dir, "raw_syscalls/sys_exit"))
        };
        let mut d = Definitions {
            group: format!("gilmodel_{}", std::process::id()),
            dir,
            names: Vec::new(),
            ids: Vec::new(),
            syscalls,
        };
        let ue = d.dir.join("uprobe_events");
        for (k, p) in probes.iter().enumerate() {
            let path = p.site.path.to_string_lossy();
            if path.contains(char::is_whitespace) {
                return Err(format!(
                    "{path}: uprobe_events cannot name a path with white space"
                ));
            }
            let name = format!("p{k}");
            let line = format!(
                "{}:{}/{} {}:{:#x}",
                if p.retprobe { 'r' } else { 'p' },
                d.group,
                name,
                path,
                p.site.offset
            );
            write_line(&ue, &line).map_err(|e| match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    format!("cannot write {} ({e}): observing needs root", ue.display())
                }
                _ => format!("the kernel refused the uprobe `{line}` ({e})"),
            })?;
            d.names.push(name.clone());
            let idf = d.dir.join("events").join(&d.group).join(&name).join("id");
            let id = std::fs::read_to_string(&idf)
                .map_err(|e| format!("{}: {e}", idf.display()))?
                .trim()
                .parse()
                .map_err(|e| format!("{}: {e}", idf.display()))?;
            d.ids.push(id);
        }
        Ok(d)
    }
}

impl Drop for Definitions {
    fn drop(&mut self) {
        let ue = self.dir.join("uprobe_events");
        for n in &self.names {
            let _ = write_line(&ue, &format!("-:{}/{}", self.group, n));
        }
    }
}

/// The probe definitions of observers that are no longer running (a SIGKILLed one leaves its
/// own behind), removed.
fn remove_stale(dir: &std::path::Path) {
    let ue = dir.join("uprobe_events");
    let Ok(text) = std::fs::read_to_string(&ue) else {
        return;
    };
    for l in text.lines() {
        let Some(ev) = l
            .split_whitespace()
            .next()
            .and_then(|h| h.split_once(':'))
            .map(|x| x.1)
        else {
            continue;
        };
        let Some((group, _)) = ev.split_once('/') else {
            continue;
        };
        let Some(pid) = group
            .strip_prefix("gilmodel_")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = write_line(&ue, &format!("-:{ev}"));
        }
    }
}

/// What a probe hit means (its place in the GIL's protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Hook {
    /// `take_gil` entered (3.x).
    TakeEntry,
    /// `take_gil` returned: the GIL is held (3.x).
    TakeReturn,
    /// `drop_gil` entered (3.x).
    DropEntry,
    /// `drop_gil` returned (3.x): the futex waits inside it (its mutex, FORCE_SWITCHING's
    /// wait) are the GIL's own, not a wait for a lock of the program.
    DropReturn,
    /// `pthread_cond_timedwait` returned; RET = 0 or ETIMEDOUT (3.x: waits inside take_gil).
    TimedWaitReturn,
    /// `PyThread_acquire_lock` entered; ARG0 = the lock (2.7).
    LockEntry,
    /// `PyThread_acquire_lock` returned; RET = 1 when taken (2.7).
    LockReturn,
    /// `PyThread_release_lock` entered; ARG0 = the lock (2.7).
    UnlockEntry,
    /// A blocking system call entered (`raw_syscalls:sys_enter`, filtered to
    /// [`BLOCKING_SYSCALLS`]); ARG0 = its number, RET = its second argument (`futex`'s op),
    /// ARG1 = its first (`futex`'s address).
    SysEnter,
    /// It returned (`raw_syscalls:sys_exit`); ARG0 = its number, RET = its result.
    SysExit,
}

/// One probe to place.
#[derive(Clone, Debug)]
pub struct Probe {
    pub hook: Hook,
    pub site: Site,
    pub retprobe: bool,
}

/// Record types of `perf_event.h` this reader handles.
pub mod rec {
    pub const LOST: u32 = 2;
    pub const COMM: u32 = 3;
    pub const EXIT: u32 = 4;
    pub const FORK: u32 = 7;
    pub const SAMPLE: u32 = 9;
    pub const LOST_SAMPLES: u32 = 13;
    pub const SWITCH: u32 = 14;
    pub const MISC_COMM_EXEC: u16 = 1 << 13;
    pub const MISC_SWITCH_OUT: u16 = 1 << 13;
    pub const MISC_SWITCH_OUT_PREEMPT: u16 = 1 << 14;
}

/// A raw observation: a probe hit or a task record, with its kernel time and CPU.
#[derive(Clone, Copy, Debug)]
pub struct Raw {
    pub t: u64,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u16,
    pub what: What,
}

#[derive(Clone, Copy, Debug)]
pub enum What {
    Hit {
        hook: Hook,
        arg0: u64,
        ret: u64,
        /// A system call's entry: its first argument (`futex`'s address); else 0.
        arg1: u64,
    },
    /// A task started (a thread, or a forked process when pid != tid's tgid): its first
    /// record, which starts it in the log.
    Fork,
    Exit,
    /// The task's name; `exec`: set by an execve.
    Comm {
        name: [u8; 16],
        exec: bool,
    },
    /// Switched off its CPU; `preempt`: while still runnable (an involuntary switch).
    SwitchOut {
        preempt: bool,
    },
}

// perf_regs.h: x86_64 AX = 0, DI = 5 (sampled in bit order: AX, then DI); arm64 x0 = 0 is both
// the first argument and the return value.
#[cfg(target_arch = "x86_64")]
const REGS: (u64, usize, usize) = ((1 << 0) | (1 << 5), 1, 0); // (mask, ARG0 index, RET index)
#[cfg(target_arch = "aarch64")]
const REGS: (u64, usize, usize) = (1 << 0, 0, 0);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const REGS: (u64, usize, usize) = (0, 0, 0);

const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// The probes of an observation, opened and reading.
pub struct ProbeSet {
    rings: Vec<Sampler>,
    _others: Vec<Counter>,
    hooks: HashMap<u64, Hook>,
    /// Records the kernel could not write (ring full), from `PERF_RECORD_LOST`.
    pub lost: u64,
    /// Records this reader could not parse.
    pub malformed: u64,
    pub fds: usize,
}

/// The CPUs the kernel has online (`/sys/devices/system/cpu/online`, e.g. `0-3,8`).
pub fn online_cpus() -> Vec<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let mut it = part.splitn(2, '-').map(|x| x.parse::<usize>().ok());
        match (it.next().flatten(), it.next()) {
            (Some(a), Some(Some(b))) => out.extend(a..=b),
            (Some(a), None) => out.push(a),
            _ => {}
        }
    }
    if out.is_empty() {
        out.extend(0..std::thread::available_parallelism().map_or(1, |n| n.get()));
    }
    out
}

/// Why the kernel refused, in words a user can act on.
pub fn explain_open_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("the kernel refused a uprobe's perf event ({e}): observing needs root")
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            format!("out of file descriptors for the probes ({e}): raise `ulimit -n`")
        }
        _ => format!("perf_event_open of a uprobe failed: {e}"),
    }
}

impl ProbeSet {
    /// Open every probe of `defs` (defined from `probes`, in that order) for every task of
    /// `tasks` on every online CPU; the threads the tasks start are followed. `on_exec`: the
    /// events start disabled and turn on at the task's next `execve` (a launched command held
    /// before it), else at once. `ring_pages` (a power of two) is each CPU's ring size in pages.
    pub fn open(
        probes: &[Probe],
        defs: &Definitions,
        tasks: &[i32],
        on_exec: bool,
        ring_pages: usize,
    ) -> Result<ProbeSet, String> {
        raise_fd_limit();
        let page = 4096usize;
        let mut rings: Vec<Sampler> = Vec::new();
        let mut others = Vec::new();
        let mut hooks = HashMap::new();
        let mut fds = 0usize;
        for cpu in online_cpus() {
            let mut ring_fd: Option<i32> = None;
            for &task in tasks {
                for (k, p) in probes.iter().enumerate() {
                    let mut b = tracepoint(
                        defs.ids[k],
                        task,
                        cpu,
                        SampleFlag::REGS_USER,
                        on_exec,
                        ring_pages * page / 2,
                    );
                    b.sample_regs_user(REGS.0);
                    if k == 0 {
                        // One event per task and CPU reports the task's life, names and switches.
                        b.task(true).comm(true).comm_exec(true).context_switch(true);
                    }
                    let c = b.build().map_err(|e| {
                        if e.raw_os_error() == Some(libc::ESRCH) {
                            format!("process {task} does not exist (or exited)")
                        } else {
                            format!(
                                "{} ({} at {}+{:#x})",
                                explain_open_error(&e),
                                p.site.symbol,
                                p.site.path.display(),
                                p.site.offset
                            )
                        }
                    })?;
                    fds += 1;
                    hooks.insert(c.id(), p.hook);
                    attach(c, &mut ring_fd, &mut rings, &mut others, ring_pages * page)?;
                }
                // The blocking system calls, filtered in the kernel to BLOCKING_SYSCALLS.
                for (hook, id) in defs
                    .syscalls
                    .iter()
                    .flat_map(|&(a, b)| [(Hook::SysEnter, a), (Hook::SysExit, b)])
                {
                    let mut b = tracepoint(
                        id,
                        task,
                        cpu,
                        SampleFlag::RAW,
                        on_exec,
                        ring_pages * page / 2,
                    );
                    // The tracepoint fires in the kernel (perf-event2's Builder excludes it by default).
                    b.include_kernel();
                    let c = b
                        .build()
                        .map_err(|e| format!("{} (raw_syscalls)", explain_open_error(&e)))?;
                    let filter = std::ffi::CString::new(
                        BLOCKING_SYSCALLS
                            .iter()
                            .map(|&(nr, _)| nr as u64)
                            .chain(PROCESS_SYSCALLS.iter().copied())
                            .map(|nr| format!("id == {nr}"))
                            .collect::<Vec<_>>()
                            .join(" || "),
                    )
                    .expect("no NUL in a filter");
                    // SAFETY: a perf event fd this function owns and a NUL-terminated string.
                    if unsafe {
                        libc::ioctl(c.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER, filter.as_ptr())
                    } != 0
                    {
                        return Err(format!(
                            "PERF_EVENT_IOC_SET_FILTER failed: {}",
                            std::io::Error::last_os_error()
                        ));
                    }
                    fds += 1;
                    hooks.insert(c.id(), hook);
                    attach(c, &mut ring_fd, &mut rings, &mut others, ring_pages * page)?;
                }
            }
        }
        Ok(ProbeSet {
            rings,
            _others: others,
            hooks,
            lost: 0,
            malformed: 0,
            fds,
        })
    }
}

/// The CPU's first event gets the ring; the others write into it.
fn attach(
    c: Counter,
    ring_fd: &mut Option<i32>,
    rings: &mut Vec<Sampler>,
    others: &mut Vec<Counter>,
    bytes: usize,
) -> Result<(), String> {
    match *ring_fd {
        None => {
            let s = c
                .sampled(bytes)
                .map_err(|e| format!("mmap of a perf ring failed: {e}"))?;
            *ring_fd = Some(s.as_raw_fd());
            rings.push(s);
        }
        Some(fd) => {
            // SAFETY: both are perf event fds this function owns.
            if unsafe { libc::ioctl(c.as_raw_fd(), PERF_EVENT_IOC_SET_OUTPUT, fd) } != 0 {
                return Err(format!(
                    "PERF_EVENT_IOC_SET_OUTPUT failed: {}",
                    std::io::Error::last_os_error()
                ));
            }
            others.push(c);
        }
    }
    Ok(())
}

impl ProbeSet {
    /// Take over another set's rings and events (threads found on a later listing).
    pub fn absorb(&mut self, mut other: ProbeSet) {
        self.rings.append(&mut other.rings);
        self._others.append(&mut other._others);
        self.hooks.extend(std::mem::take(&mut other.hooks));
        self.fds += other.fds;
    }

    /// Move every record the rings hold into `out`; returns how many.
    pub fn drain(&mut self, out: &mut Vec<Raw>) -> usize {
        let before = out.len();
        let mut buf = Vec::new();
        for ring in self.rings.iter_mut() {
            while let Some(r) = ring.next_record() {
                let (ty, misc) = (r.ty(), r.misc());
                buf.clear();
                for part in r.data() {
                    buf.extend_from_slice(part);
                }
                drop(r);
                match parse(ty, misc, &buf, &self.hooks) {
                    Parsed::Raw(x) => out.push(x),
                    Parsed::Lost(n) => self.lost += n,
                    Parsed::Skip => {}
                    Parsed::Bad => self.malformed += 1,
                }
            }
        }
        out.len() - before
    }
}

/// A tracepoint event of one task (and the threads it starts) on one CPU, sampled at every
/// hit with its id, thread, time, CPU and `extra`, on `CLOCK_MONOTONIC`, enabled now or at the
/// task's `execve`: what every probe of an observation shares.
fn tracepoint(
    id: u64,
    task: i32,
    cpu: usize,
    extra: SampleFlag,
    on_exec: bool,
    watermark: usize,
) -> Builder<'static> {
    let mut b = Builder::new(Tracepoint::with_id(id));
    b.observe_pid(task)
        .one_cpu(cpu)
        .inherit(true)
        .inherit_thread(true)
        .sample_period(1)
        .sample(
            SampleFlag::IDENTIFIER | SampleFlag::TID | SampleFlag::TIME | SampleFlag::CPU | extra,
        )
        .clockid(Clock::MONOTONIC)
        .sample_id_all(true)
        .enabled(!on_exec)
        .enable_on_exec(on_exec)
        .wakeup_watermark(watermark);
    b
}

fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain rlimit calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

enum Parsed {
    Raw(Raw),
    Lost(u64),
    Skip,
    Bad,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The `sample_id_all` trailer of a non-sample record, for sample_type IDENTIFIER | TID |
/// TIME | CPU: { u32 pid, tid; u64 time; u32 cpu, res; u64 identifier } at the record's end.
fn trailer(b: &[u8]) -> Option<(u32, u32, u64, u16)> {
    let at = b.len().checked_sub(32)?;
    Some((
        u32_at(b, at)?,
        u32_at(b, at + 4)?,
        u64_at(b, at + 8)?,
        u32_at(b, at + 16)? as u16,
    ))
}

fn parse(ty: u32, misc: u16, b: &[u8], hooks: &HashMap<u64, Hook>) -> Parsed {
    let raw = |what: What| match trailer(b) {
        Some((pid, tid, t, cpu)) => Parsed::Raw(Raw {
            t,
            pid,
            tid,
            cpu,
            what,
        }),
        None => Parsed::Bad,
    };
    match ty {
        rec::SAMPLE => {
            // { u64 identifier; u32 pid, tid; u64 time; u32 cpu, res; u64 abi; u64 regs[] }
            let f = || -> Option<Raw> {
                let hook = *hooks.get(&u64_at(b, 0)?)?;
                let (pid, tid, t, cpu) = (
                    u32_at(b, 8)?,
                    u32_at(b, 12)?,
                    u64_at(b, 16)?,
                    u32_at(b, 24)? as u16,
                );
                if matches!(hook, Hook::SysEnter | Hook::SysExit) {
                    // { u32 size; raw: common fields (8 bytes), long id, then args[6] or long ret }:
                    // at an exit its result, at an entry its second argument.
                    let at = if hook == Hook::SysExit { 16 } else { 24 };
                    let (nr, ret) = (u64_at(b, 32 + 4 + 8)?, u64_at(b, 32 + 4 + at)?);
                    let first = if hook == Hook::SysExit {
                        0
                    } else {
                        u64_at(b, 32 + 4 + 16)?
                    };
                    return Some(Raw {
                        t,
                        pid,
                        tid,
                        cpu,
                        what: What::Hit {
                            hook,
                            arg0: nr,
                            ret,
                            arg1: first,
                        },
                    });
                }
                let abi = u64_at(b, 32)?;
                let reg = |i: usize| {
                    if abi == 0 {
                        Some(0)
                    } else {
                        u64_at(b, 40 + 8 * i)
                    }
                };
                Some(Raw {
                    t,
                    pid,
                    tid,
                    cpu,
                    what: What::Hit {
                        hook,
                        arg0: reg(REGS.1)?,
                        ret: reg(REGS.2)?,
                        arg1: 0,
                    },
                })
            };
            f().map_or(Parsed::Bad, Parsed::Raw)
        }
        rec::FORK => raw(What::Fork),
        rec::EXIT => raw(What::Exit),
        rec::COMM => {
            let mut name = [0u8; 16];
            let s = b.get(8..b.len().saturating_sub(32)).unwrap_or(&[]);
            let n = s.iter().position(|&c| c == 0).unwrap_or(s.len()).min(16);
            name[..n].copy_from_slice(&s[..n]);
            raw(What::Comm {
                name,
                exec: misc & rec::MISC_COMM_EXEC != 0,
            })
        }
        rec::SWITCH => {
            if misc & rec::MISC_SWITCH_OUT != 0 {
                raw(What::SwitchOut {
                    preempt: misc & rec::MISC_SWITCH_OUT_PREEMPT != 0,
                })
            } else {
                Parsed::Skip
            }
        }
        rec::LOST => u64_at(b, 8).map_or(Parsed::Bad, Parsed::Lost),
        rec::LOST_SAMPLES => u64_at(b, 0).map_or(Parsed::Bad, Parsed::Lost),
        _ => Parsed::Skip,
    }
}
