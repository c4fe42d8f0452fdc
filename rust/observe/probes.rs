//! The kernel side: uprobes made with `perf_event_open` (the `uprobe` PMU, through the
//! `perf-event2` crate), one per probe site, task and CPU, all of a CPU's events writing into
//! one ring buffer (`PERF_EVENT_IOC_SET_OUTPUT`), read here as raw records.
//!
//! Why perf events and not eBPF: a uprobe made this way lives exactly as long as its file
//! descriptor (nothing is written to `/sys/kernel/tracing/uprobe_events`, so a crash or a
//! SIGKILL of the observer leaves nothing registered), it needs no compiler or BPF toolchain,
//! and the kernel timestamps each hit on `CLOCK_MONOTONIC` (`use_clockid`), the clock of the
//! model's own log. The price is one record per hit (32–48 bytes) copied to user space.
//!
//! Events are per task with `inherit` + `inherit_thread` (Linux ≥ 5.13): threads the target
//! starts are followed, processes it forks are not (their GIL is another GIL). Inherited
//! events must be per CPU (the kernel refuses to mmap inherited per-task-any-CPU events).
//!
//! A uprobe event names its file by a *pointer* to the path (`config1`), and when the traced
//! task starts a thread the kernel copies the event by reading that pointer again, in the
//! memory of the task that is cloning (kernel/trace/trace_event_perf.c, `perf_uprobe_init`:
//! `strndup_user(attr.uprobe_path)`). A pointer into the observer's memory makes the target's
//! `pthread_create` fail ("can't start new thread"). So for inherited events the path pointer
//! is an address where the target itself holds that path (see `observe::PathAddrs`), and the
//! observer maps a copy of the string at the same address so the first open reads the same.
//! The breakpoint is only installed in the traced processes' memory, so other processes that
//! map the same libpython do not pay for it.

use super::symbols::Site;
use perf_event::events::Event;
use perf_event::{Builder, Clock, Counter, SampleFlag, Sampler};
use perf_event_open_sys::bindings::perf_event_attr;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// A uprobe event of the `uprobe` PMU (perf-event2 0.7.4's own `UProbe` does not implement
/// `Event`): `config1` points at the path, `config2` is the offset in the file.
struct Uprobe {
    pmu: u32,
    retprobe: bool,
    /// Kept alive until the event is open (the kernel reads `path_ptr` then).
    path: CString,
    /// What `config1` points at: `path`, or the same string at the target's address.
    path_ptr: u64,
    offset: u64,
}

impl Event for Uprobe {
    fn update_attrs(self, _: &mut perf_event_attr) {
        unreachable!("Builder calls update_attrs_with_data")
    }

    fn update_attrs_with_data(self, attr: &mut perf_event_attr) -> Option<Arc<dyn perf_event::events::EventData>> {
        attr.type_ = self.pmu;
        // format/retprobe is "config:0" on every kernel that has the uprobe PMU (4.17+).
        attr.config = self.retprobe.into();
        attr.__bindgen_anon_3.config1 = self.path_ptr;
        attr.__bindgen_anon_4.config2 = self.offset;
        Some(Arc::new(self.path))
    }
}

/// The uprobe PMU's type number, or why there is none.
pub fn uprobe_pmu() -> Result<u32, String> {
    let p = "/sys/bus/event_source/devices/uprobe/type";
    std::fs::read_to_string(p)
        .map_err(|e| format!("this kernel has no uprobe PMU ({p}: {e}); observing needs CONFIG_UPROBE_EVENTS (Linux 4.17+)"))?
        .trim()
        .parse()
        .map_err(|e| format!("{p}: {e}"))
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
    /// `pthread_cond_timedwait` returned; RET = 0 or ETIMEDOUT (3.x: waits inside take_gil).
    TimedWaitReturn,
    /// `PyThread_acquire_lock` entered; ARG0 = the lock (2.7).
    LockEntry,
    /// `PyThread_acquire_lock` returned; RET = 1 when taken (2.7).
    LockReturn,
    /// `PyThread_release_lock` entered; ARG0 = the lock (2.7).
    UnlockEntry,
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
    Hit { hook: Hook, arg0: u64, ret: u64 },
    /// A task started (a thread, or a forked process when pid != tid's tgid).
    Fork { ptid: u32 },
    Exit,
    /// The task's name; `exec`: set by an execve.
    Comm { name: [u8; 16], exec: bool },
    /// Switched off its CPU; `preempt`: while still runnable (an involuntary switch).
    SwitchOut { preempt: bool },
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
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "the kernel refused a uprobe ({e}): observing needs root or CAP_PERFMON (and \
             CAP_SYS_ADMIN on kernels before 5.8); run as root, or `setcap cap_perfmon+ep` on the Python that runs gilmodel"
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) => format!(
            "this kernel has no uprobe PMU ({e}): /sys/bus/event_source/devices/uprobe is missing; \
             it needs CONFIG_UPROBE_EVENTS"
        ),
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            format!("out of file descriptors for the probes ({e}): raise `ulimit -n`")
        }
        _ => format!("perf_event_open of a uprobe failed: {e}"),
    }
}

impl ProbeSet {
    /// Open every probe for every task of `tasks` on every online CPU, enabled at once.
    /// `inherit`: `Some(path → address in the target of that path's string)`, and the threads
    /// the tasks start are followed; `None`: only these tasks. `ring_pages` (a power of two) is
    /// each CPU's ring size in pages.
    pub fn open(
        probes: &[Probe],
        tasks: &[i32],
        inherit: Option<&HashMap<std::path::PathBuf, u64>>,
        ring_pages: usize,
    ) -> Result<ProbeSet, String> {
        raise_fd_limit();
        let page = 4096usize;
        let mut rings: Vec<Sampler> = Vec::new();
        let mut others = Vec::new();
        let mut hooks = HashMap::new();
        let mut fds = 0usize;
        let pmu = uprobe_pmu()?;
        for cpu in online_cpus() {
            let mut ring_fd: Option<i32> = None;
            for &task in tasks {
                for (k, p) in probes.iter().enumerate() {
                    let path = CString::new(p.site.path.as_os_str().as_encoded_bytes())
                        .map_err(|_| format!("{}: a path with a NUL byte", p.site.path.display()))?;
                    let path_ptr = match inherit {
                        Some(addrs) => *addrs.get(&p.site.path).ok_or_else(|| {
                            format!("{}: no copy of this path in the target's memory", p.site.path.display())
                        })?,
                        None => path.as_ptr() as usize as u64,
                    };
                    let ev = Uprobe { pmu, retprobe: p.retprobe, path, path_ptr, offset: p.site.offset };
                    let mut b = Builder::new(ev);
                    b.observe_pid(task)
                        .one_cpu(cpu)
                        .inherit(inherit.is_some())
                        .inherit_thread(inherit.is_some())
                        .sample_period(1)
                        .sample(SampleFlag::IDENTIFIER | SampleFlag::TID | SampleFlag::TIME | SampleFlag::CPU | SampleFlag::REGS_USER)
                        .sample_regs_user(REGS.0)
                        .clockid(Clock::MONOTONIC)
                        .sample_id_all(true)
                        .exclude_kernel(true)
                        .exclude_hv(true)
                        .enabled(true)
                        .wakeup_watermark(ring_pages * page / 2);
                    if k == 0 {
                        // One event per task and CPU reports the task's life, names and switches.
                        b.task(true).comm(true).comm_exec(true).context_switch(true);
                    }
                    let c = b.build().map_err(|e| {
                        if e.raw_os_error() == Some(libc::ESRCH) {
                            format!("process {task} does not exist (or exited)")
                        } else {
                            format!("{} ({} at {}+{:#x})", explain_open_error(&e), p.site.symbol, p.site.path.display(), p.site.offset)
                        }
                    })?;
                    fds += 1;
                    hooks.insert(c.id(), p.hook);
                    match ring_fd {
                        None => {
                            let s = c.sampled(ring_pages * page).map_err(|e| format!("mmap of a perf ring failed: {e}"))?;
                            ring_fd = Some(s.as_raw_fd());
                            rings.push(s);
                        }
                        Some(fd) => {
                            // SAFETY: both are perf event fds this function owns.
                            let r = unsafe { libc::ioctl(c.as_raw_fd(), PERF_EVENT_IOC_SET_OUTPUT, fd) };
                            if r != 0 {
                                return Err(format!("PERF_EVENT_IOC_SET_OUTPUT failed: {}", std::io::Error::last_os_error()));
                            }
                            others.push(c);
                        }
                    }
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

fn raise_fd_limit() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
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
    Some((u32_at(b, at)?, u32_at(b, at + 4)?, u64_at(b, at + 8)?, u32_at(b, at + 16)? as u16))
}

fn parse(ty: u32, misc: u16, b: &[u8], hooks: &HashMap<u64, Hook>) -> Parsed {
    let raw = |what: What| match trailer(b) {
        Some((pid, tid, t, cpu)) => Parsed::Raw(Raw { t, pid, tid, cpu, what }),
        None => Parsed::Bad,
    };
    match ty {
        rec::SAMPLE => {
            // { u64 identifier; u32 pid, tid; u64 time; u32 cpu, res; u64 abi; u64 regs[] }
            let f = || -> Option<Raw> {
                let hook = *hooks.get(&u64_at(b, 0)?)?;
                let (pid, tid, t, cpu) = (u32_at(b, 8)?, u32_at(b, 12)?, u64_at(b, 16)?, u32_at(b, 24)? as u16);
                let abi = u64_at(b, 32)?;
                let reg = |i: usize| if abi == 0 { Some(0) } else { u64_at(b, 40 + 8 * i) };
                Some(Raw { t, pid, tid, cpu, what: What::Hit { hook, arg0: reg(REGS.1)?, ret: reg(REGS.2)? } })
            };
            f().map_or(Parsed::Bad, Parsed::Raw)
        }
        rec::FORK => match u32_at(b, 12) {
            Some(ptid) => raw(What::Fork { ptid }),
            None => Parsed::Bad,
        },
        rec::EXIT => raw(What::Exit),
        rec::COMM => {
            let mut name = [0u8; 16];
            let s = b.get(8..b.len().saturating_sub(32)).unwrap_or(&[]);
            let n = s.iter().position(|&c| c == 0).unwrap_or(s.len()).min(16);
            name[..n].copy_from_slice(&s[..n]);
            raw(What::Comm { name, exec: misc & rec::MISC_COMM_EXEC != 0 })
        }
        rec::SWITCH => {
            if misc & rec::MISC_SWITCH_OUT != 0 {
                raw(What::SwitchOut { preempt: misc & rec::MISC_SWITCH_OUT_PREEMPT != 0 })
            } else {
                Parsed::Skip
            }
        }
        rec::LOST => u64_at(b, 8).map_or(Parsed::Bad, Parsed::Lost),
        rec::LOST_SAMPLES => u64_at(b, 0).map_or(Parsed::Bad, Parsed::Lost),
        _ => Parsed::Skip,
    }
}
