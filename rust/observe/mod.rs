//! Observing a real CPython's GIL with kernel uprobes, into the model's own schema.
//!
//! - [`symbols`]: where the GIL's functions are in the interpreter's ELF file;
//! - [`probes`]: the uprobes (tracefs definitions, perf events) and their ring buffers;
//! - [`decode`]: probe hits → `request`/`acquire`/`release`/… events and per-thread counters;
//! - this module: the observation itself: launch a command (held at a gate until its probes
//!   are in place, enabled at its `execve`) or attach to a running process, read the rings
//!   every `poll_ms`, stop when the target exits, at `duration_s`, at the event budget or
//!   when the caller says so (Ctrl-C), and report what was lost.
//!
//! Nothing here stops the target: a launched command runs freely from its `execve`; an
//! attached process is never paused. On return, on an error or a panic the perf events are
//! closed and then the probes' definitions removed (Rust drops them in that order).

pub mod decode;
pub mod probes;
pub mod symbols;

use crate::clock::now_ns;
use crate::engine::{IoLog, RunOutput};
use decode::Flavour;
use probes::{Hook, Probe, ProbeSet};
use serde::Deserialize;
use std::ffi::CString;
use std::path::PathBuf;
use std::time::Duration;
use symbols::Symbols;

/// What to observe (JSON from the Python front, `gilmodel.observe`).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ObserveSpec {
    /// A command to launch (argv); or
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// a running process to attach to.
    #[serde(default)]
    pub pid: Option<i32>,
    /// CPUs a launched command may run on (its affinity, set before its `execve`; threads
    /// and the processes it starts inherit it). None: the observer's own.
    #[serde(default)]
    pub cpus: Option<Vec<usize>>,
    /// A file a launched command's standard output goes to (None: the observer's).
    #[serde(default)]
    pub stdout: Option<PathBuf>,
    /// The ELF file that holds the GIL's functions (libpython, or the executable when it is
    /// linked statically).
    pub binary: PathBuf,
    /// The C library whose `pthread_cond_timedwait` the interpreter calls (3.x timeouts).
    #[serde(default)]
    pub libc: Option<PathBuf>,
    /// The interpreter's version, e.g. "3.11.7".
    pub version: String,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default = "default_ring_pages")]
    pub ring_pages: usize,
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Seconds a launched command gets to exit after SIGINT (at the duration or an interrupt)
    /// before SIGKILL.
    #[serde(default = "default_grace_s")]
    pub grace_s: f64,
    /// Only these probes (hook names as in `meta["observed"]["probes"]`, e.g. "TakeEntry"),
    /// to measure what each costs (benches/observe_overhead.py); None: all.
    #[serde(default)]
    pub hooks: Option<Vec<String>>,
}

fn default_ring_pages() -> usize {
    512
}
fn default_poll_ms() -> u64 {
    10
}
fn default_max_events() -> usize {
    10_000_000
}
fn default_grace_s() -> f64 {
    2.0
}

fn flavour(version: &str) -> Result<Flavour, String> {
    let mut it = version.split('.').map(|x| x.parse::<u32>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(2), Some(m)) if m >= 4 => Ok(Flavour::Lock),
        (Some(3), Some(m)) if (2..=13).contains(&m) => Ok(Flavour::Interval),
        _ => Err(format!(
            "CPython {version} is not one the observer knows (2.4–2.7 and 3.2–3.13); 3.14's GIL \
             and free-threaded builds are not covered"
        )),
    }
}

/// The probes for an interpreter: which functions, in which files.
pub fn plan(spec: &ObserveSpec) -> Result<(Flavour, Vec<Probe>, Option<u64>, Symbols), String> {
    let fl = flavour(&spec.version)?;
    let syms = Symbols::read(&spec.binary)?;
    let mm = spec
        .version
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let stripped = || {
        format!(
            "{} has no symbol table, so the GIL's functions cannot be found (it is stripped); \
             install its debug symbols (Debian/Ubuntu: `apt-get install python{mm}-dbg`; Fedora: \
             `dnf debuginfo-install python3`), or use an interpreter built with symbols (pyenv \
             builds keep them)",
            spec.binary.display()
        )
    };
    if !syms.has_symbols() {
        return Err(stripped());
    }
    let stripped_only = !syms.has_symtab;
    let mut probes = Vec::new();
    let mut add = |hook, name: &str, retprobe| -> Result<(), String> {
        let sites = syms.function(name);
        if sites.is_empty() && stripped_only {
            return Err(stripped());
        }
        if sites.is_empty() {
            return Err(format!(
                "no {name} in {} (symbols read from {}): {}",
                spec.binary.display(),
                syms.symbols_from.display(),
                if fl == Flavour::Interval {
                    "not a CPython 3 interpreter, or a build that inlined it"
                } else {
                    "not a CPython 2 interpreter with threads"
                }
            ));
        }
        probes.extend(sites.into_iter().map(|site| Probe {
            hook,
            site,
            retprobe,
        }));
        Ok(())
    };
    let mut gil_lock = None;
    match fl {
        Flavour::Interval => {
            add(Hook::TakeEntry, "take_gil", false)?;
            add(Hook::TakeReturn, "take_gil", true)?;
            add(Hook::DropEntry, "drop_gil", false)?;
            add(Hook::DropReturn, "drop_gil", true)?;
        }
        Flavour::Lock => {
            add(Hook::LockEntry, "PyThread_acquire_lock", false)?;
            add(Hook::LockReturn, "PyThread_acquire_lock", true)?;
            add(Hook::UnlockEntry, "PyThread_release_lock", false)?;
            gil_lock = Some(syms.data("interpreter_lock").ok_or_else(|| {
                format!(
                    "no interpreter_lock in {}: not a CPython 2 interpreter",
                    spec.binary.display()
                )
            })?);
        }
    }
    if fl == Flavour::Interval {
        if let Some(libc_path) = &spec.libc {
            if let Ok(lc) = Symbols::read(libc_path) {
                for site in lc.function("pthread_cond_timedwait") {
                    probes.push(Probe {
                        hook: Hook::TimedWaitReturn,
                        site,
                        retprobe: true,
                    });
                }
            }
        }
    }
    if let Some(keep) = &spec.hooks {
        probes.retain(|p| keep.iter().any(|k| *k == format!("{:?}", p.hook)));
    }
    Ok((fl, probes, gil_lock, syms))
}

/// A command launched behind a gate: forked, waiting for one byte before its `execve`, so its
/// probes (enabled at the `execve`) are in place before it runs a single instruction.
struct Child {
    pid: i32,
    gate: i32,
    err: i32,
    reaped: Option<i32>,
}

impl Child {
    fn spawn(
        argv: &[String],
        cpus: Option<&[usize]>,
        stdout: Option<&std::path::Path>,
    ) -> Result<Child, String> {
        if argv.is_empty() {
            return Err("observe: an empty command".into());
        }
        let cargs: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("a NUL byte in {a:?}")))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a zeroed cpu_set_t filled with CPU_SET, before the fork.
        let mask = cpus.map(|cs| unsafe {
            let mut m: libc::cpu_set_t = std::mem::zeroed();
            for &c in cs {
                libc::CPU_SET(c, &mut m);
            }
            m
        });
        let out_fd = match stdout {
            Some(p) => {
                Some(std::fs::File::create(p).map_err(|e| format!("stdout {}: {e}", p.display()))?)
            }
            None => None,
        };
        let (mut gate, mut err) = ([0i32; 2], [0i32; 2]);
        // SAFETY: pipe2/fork/read/dup2/sched_setaffinity/execvp/_exit; the child only makes
        // async-signal-safe calls.
        unsafe {
            if libc::pipe2(gate.as_mut_ptr(), libc::O_CLOEXEC) != 0
                || libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) != 0
            {
                return Err(format!("pipe: {}", std::io::Error::last_os_error()));
            }
            let pid = libc::fork();
            if pid < 0 {
                return Err(format!("fork: {}", std::io::Error::last_os_error()));
            }
            if pid == 0 {
                libc::close(gate[1]);
                libc::close(err[0]);
                let mut b = 0u8;
                if libc::read(gate[0], &mut b as *mut u8 as *mut libc::c_void, 1) != 1 {
                    libc::_exit(127); // the observer gave up before the probes were in place
                }
                if let Some(f) = &out_fd {
                    libc::dup2(std::os::fd::AsRawFd::as_raw_fd(f), 1);
                }
                let ok = match &mask {
                    Some(m) => {
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), m) == 0
                    }
                    None => true,
                };
                if ok {
                    libc::execvp(ptrs[0], ptrs.as_ptr());
                }
                let e = *libc::__errno_location();
                libc::write(err[1], &e as *const i32 as *const libc::c_void, 4);
                libc::_exit(127);
            }
            libc::close(gate[0]);
            libc::close(err[1]);
            Ok(Child {
                pid,
                gate: gate[1],
                err: err[0],
                reaped: None,
            })
        }
    }

    /// Open the gate; the error if the command could not be run.
    fn release(&mut self, argv0: &str) -> Result<(), String> {
        // SAFETY: pipes this struct owns.
        unsafe {
            let b = 1u8;
            libc::write(self.gate, &b as *const u8 as *const libc::c_void, 1);
            libc::close(self.gate);
            self.gate = -1;
            let mut e = 0i32;
            // EOF (the execve closed the pipe) or the errno the child wrote.
            let n = libc::read(self.err, &mut e as *mut i32 as *mut libc::c_void, 4);
            libc::close(self.err);
            self.err = -1;
            if n == 4 {
                self.wait(true);
                return Err(format!(
                    "cannot run {argv0:?}: {}",
                    std::io::Error::from_raw_os_error(e)
                ));
            }
        }
        Ok(())
    }

    /// Reap the child if it exited (`block`: wait for it); its wait status.
    fn wait(&mut self, block: bool) -> Option<i32> {
        if self.reaped.is_none() {
            let mut st = 0;
            // SAFETY: waitpid on our own child.
            let r =
                unsafe { libc::waitpid(self.pid, &mut st, if block { 0 } else { libc::WNOHANG }) };
            if r == self.pid && (libc::WIFEXITED(st) || libc::WIFSIGNALED(st)) {
                self.reaped = Some(st);
            }
        }
        self.reaped
    }

    fn signal(&self, sig: i32) {
        if self.reaped.is_none() {
            // SAFETY: a signal to our own unreaped child.
            unsafe { libc::kill(self.pid, sig) };
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: closing our own fds; a child still at the gate reads EOF and exits.
        unsafe {
            for fd in [self.gate, self.err] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
        }
        if self.reaped.is_none() {
            // Never leave a launched target behind.
            let deadline = now_ns() + 2_000_000_000;
            while self.wait(false).is_none() && now_ns() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if self.reaped.is_none() {
                self.signal(libc::SIGKILL);
                self.wait(true);
            }
        }
    }
}

fn exit_status(st: i32) -> serde_json::Value {
    if libc::WIFEXITED(st) {
        serde_json::json!({"exit_code": libc::WEXITSTATUS(st)})
    } else if libc::WIFSIGNALED(st) {
        serde_json::json!({"signal": libc::WTERMSIG(st)})
    } else {
        serde_json::json!({"status": st})
    }
}

/// Where `path` is mapped in process `pid` (the start of its mapping at file offset 0).
fn load_start(pid: i32, path: &std::path::Path) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let want = std::fs::canonicalize(path).ok()?;
    maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 6 && f[2] == "00000000" && std::path::Path::new(f[5]) == want {
            u64::from_str_radix(f[0].split('-').next()?, 16).ok()
        } else {
            None
        }
    })
}

fn read_u64(pid: i32, addr: u64) -> Option<u64> {
    let mut v = [0u8; 8];
    let local = libc::iovec {
        iov_base: v.as_mut_ptr() as *mut libc::c_void,
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: reads 8 bytes of another process into a local array.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (n == 8).then(|| u64::from_ne_bytes(v))
}

/// Whether a process is still running (a zombie, exited but not yet reaped by its parent,
/// is not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(st) => st
            .rfind(')')
            .and_then(|i| st[i + 1..].split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

fn tasks_of(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Observe: returns the run (events in the model's schema) with `meta` saying what was
/// observed, how, and what was lost. `interrupted` is polled every `poll_ms`; when it says so
/// the observation stops (a launched command gets SIGINT, then SIGKILL after `grace_s`) and the
/// partial run is returned with `stopped_by = "interrupted"`.
pub fn observe(
    spec: &ObserveSpec,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<RunOutput, String> {
    let (fl, probes, lock_sym, syms) = plan(spec)?;
    let started = now_ns();
    let defs = probes::Definitions::define(&probes)?;
    let mut child: Option<Child> = None;
    let tgid;
    let mut set;
    let mut tasks_opened: Vec<i32>;
    match (&spec.command, spec.pid) {
        (Some(argv), None) => {
            // Launched: held at the gate while its events are opened (enabled at its execve).
            let c = child.insert(Child::spawn(
                argv,
                spec.cpus.as_deref(),
                spec.stdout.as_deref(),
            )?);
            tgid = c.pid;
            set = ProbeSet::open(&probes, &defs, &[tgid], true, spec.ring_pages)?;
            c.release(&argv[0])?;
            tasks_opened = vec![tgid];
        }
        (None, Some(pid)) => {
            if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("process {pid} does not exist"));
            }
            tgid = pid;
            // Each of its threads, until a listing finds no new one (the threads they start
            // from then on are inherited).
            tasks_opened = tasks_of(tgid);
            if tasks_opened.is_empty() {
                return Err(format!(
                    "process {tgid} has no threads to observe (it exited)"
                ));
            }
            set = ProbeSet::open(&probes, &defs, &tasks_opened, false, spec.ring_pages)?;
            for _ in 0..5 {
                let new: Vec<i32> = tasks_of(tgid)
                    .into_iter()
                    .filter(|t| !tasks_opened.contains(t))
                    .collect();
                if new.is_empty() {
                    break;
                }
                set.absorb(ProbeSet::open(
                    &probes,
                    &defs,
                    &new,
                    false,
                    spec.ring_pages,
                )?);
                tasks_opened.extend(new);
            }
        }
        _ => return Err("observe: give a command or a pid, not both".into()),
    }
    let t_open = now_ns() as u64;
    let mut raws = Vec::with_capacity(1 << 16);
    // 2.7: every distinct value read from `interpreter_lock` (a value read while the loader
    // was still setting up the library's data can be stale, seen once in 32 observations).
    let mut lock_values: Vec<u64> = Vec::new();
    let poll = Duration::from_millis(spec.poll_ms.max(1));
    let deadline = spec.duration_s.map(|d| t_open + (d * 1e9) as u64);
    let mut stopped_by = "target_exited";
    let mut ending: Option<u64> = None; // when a launched command was told to stop
    let mut end_t: u64;
    loop {
        set.drain(&mut raws);
        if let Some(sym) = lock_sym.filter(|_| lock_values.len() < 16) {
            if let Some(start) = load_start(tgid, &syms.path) {
                if let Some(v) = read_u64(tgid, start - syms.first_vaddr + sym).filter(|&v| v != 0)
                {
                    if !lock_values.contains(&v) {
                        lock_values.push(v);
                    }
                }
            }
        }
        let now = now_ns() as u64;
        let gone = match child.as_mut() {
            Some(c) => c.wait(false).is_some(),
            None => !alive(tgid),
        };
        if gone {
            end_t = now;
            break;
        }
        if ending.is_none() {
            let why = if raws.len() >= spec.max_events {
                Some("event_budget")
            } else if deadline.is_some_and(|d| now >= d) {
                Some("duration")
            } else if interrupted() {
                Some("interrupted")
            } else {
                None
            };
            if let Some(w) = why {
                stopped_by = w;
                end_t = now;
                match child.as_ref() {
                    Some(c) => {
                        c.signal(libc::SIGINT);
                        ending = Some(now);
                    }
                    None => break, // detach: the process runs on
                }
            }
        } else if let (Some(e), Some(c)) = (ending, child.as_ref()) {
            if now - e > (spec.grace_s * 1e9) as u64 {
                c.signal(libc::SIGKILL);
            }
        }
        std::thread::sleep(poll);
    }
    set.drain(&mut raws);
    let t_reap = now_ns();
    let target = match child.as_mut() {
        Some(c) => c
            .wait(true)
            .map(exit_status)
            .unwrap_or(serde_json::Value::Null),
        None => serde_json::Value::Null,
    };
    let fds = set.fds;
    let (lost, malformed) = (set.lost, set.malformed);
    let t_close = now_ns();
    drop(set);
    drop(defs); // the probes' definitions, once no event uses them
    let t_closed = now_ns();
    // The launched command's events start at its execve; an attached one's at attach.
    let t0 = if child.is_some() {
        raws.iter().map(|r| r.t).min().unwrap_or(t_open)
    } else {
        t_open
    };
    // A target that exited ended at its last record (its threads' exits): the kernel's
    // teardown of inherited uprobes after that can take a second and is not the program's.
    let last = raws.iter().map(|r| r.t).max().unwrap_or(end_t);
    let end_t = if stopped_by == "target_exited" {
        last
    } else {
        end_t.max(last)
    };
    let truncated = raws.len() > spec.max_events;
    if truncated {
        raws.sort_by_key(|r| r.t);
        raws.truncate(spec.max_events);
    }
    let mut counts = std::collections::HashMap::new();
    if fl == Flavour::Lock {
        for r in &raws {
            if let probes::What::Hit {
                hook: Hook::LockEntry,
                arg0,
                ..
            } = r.what
            {
                *counts.entry(arg0).or_insert(0u64) += 1;
            }
        }
    }
    // The value of interpreter_lock that the program's lock calls used most; else (the program
    // ended before it could be read) the lock most acquired.
    let read = lock_values
        .iter()
        .copied()
        .filter(|v| counts.contains_key(v))
        .max_by_key(|v| counts[v]);
    let (gil_lock, lock_found_by) = match (fl, read) {
        (Flavour::Lock, Some(v)) => (Some(v), "interpreter_lock"),
        (Flavour::Lock, None) => (
            counts.iter().max_by_key(|c| *c.1).map(|c| *c.0),
            "most acquired lock (interpreter_lock was not read in time)",
        ),
        _ => (None, ""),
    };
    let mut hits: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in &raws {
        if let probes::What::Hit { hook, .. } = r.what {
            *hits.entry(format!("{hook:?}")).or_insert(0) += 1;
        }
    }
    let d = decode::decode(raws, tgid as u32, fl, gil_lock, t0, end_t);
    let elapsed = end_t.saturating_sub(t0) as i64;
    let sites: Vec<serde_json::Value> = probes
        .iter()
        .map(|p| serde_json::json!({"hook": p.hook, "symbol": p.site.symbol, "path": p.site.path, "offset": p.site.offset, "return": p.retprobe}))
        .collect();
    let has_waits = probes.iter().any(|p| p.hook == Hook::TimedWaitReturn);
    let meta = serde_json::json!({
        "source": "observed",
        "gil": {"policy": "real", "interpreter": spec.version, "flavour": fl},
        "observed": {
            "mechanism": "kernel uprobes (tracefs uprobe_events) read as perf tracepoint events, one ring per CPU, CLOCK_MONOTONIC",
            "pid": tgid,
            "command": spec.command,
            "attached": spec.pid.is_some(),
            "cpus": spec.cpus,
            "binary": spec.binary,
            "symbols_from": syms.symbols_from,
            "probes": sites,
            "perf_fds": fds,
            "tasks_opened": tasks_opened.len(),
            "new_threads": "followed from their first instruction (inherited events)",
            "lost_records": lost,
            "hits": hits,
            "malformed_records": malformed,
            "truncated": truncated,
            "gil_lock": gil_lock.map(|g| format!("{g:#x}")),
            "gil_lock_found_by": lock_found_by,
            "interpreter_lock_values": lock_values.iter().map(|g| format!("{g:#x}")).collect::<Vec<_>>(),
            "observed_events": match fl {
                Flavour::Interval if has_waits => "request, acquire, release, timeout, futile_wakeup; drop_request inferred; io_begin/io_end of blocking system calls (x86_64)",
                _ => "request, acquire, release; io_begin/io_end of blocking system calls (x86_64)",
            },
            "notes": d.notes,
            "t0_monotonic_ns": t0,
            "setup_ns": t_open as i64 - started,
            "reap_ns": t_close - t_reap,
            "close_ns": t_closed - t_close,
            "target": target,
            "tids": d.tids,
        },
        "elapsed_ns": elapsed,
        "stopped_by": stopped_by,
        "switches": d.switches,
        "host": crate::host::info(),
    });
    Ok(RunOutput {
        events: d.events,
        threads: d.threads,
        io: IoLog::default(),
        meta,
        aborted: false,
    })
}
