//! Observing a real CPython's GIL with kernel uprobes, into the model's own schema.
//!
//! - [`symbols`]: where the GIL's functions are in the interpreter's ELF file;
//! - [`probes`]: the uprobes (perf events) and their ring buffers;
//! - [`decode`]: probe hits → `request`/`acquire`/`release`/… events and per-thread counters;
//! - this module: the observation itself: launch a command (held at a gate until its probes
//!   are in place, enabled at its `execve`) or attach to a running process, read the rings
//!   every `poll_ms`, stop when the target exits, at `duration_s`, at the event budget or
//!   when the caller says so (Ctrl-C), and report what was lost.
//!
//! Nothing here stops the target: a launched command runs freely from its `execve`; an
//! attached process is never paused. Closing the perf file descriptors (on return, on error,
//! on a panic) removes every probe.

pub mod decode;
pub mod probes;
pub mod symbols;

use crate::clock::now_ns;
use crate::engine::{IoLog, RunOutput};
use decode::Flavour;
use probes::{Hook, Probe, ProbeSet};
use serde::Deserialize;
use std::collections::HashMap;
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
    let mm = spec.version.split('.').take(2).collect::<Vec<_>>().join(".");
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
        probes.extend(sites.into_iter().map(|site| Probe { hook, site, retprobe }));
        Ok(())
    };
    let mut gil_lock = None;
    match fl {
        Flavour::Interval => {
            add(Hook::TakeEntry, "take_gil", false)?;
            add(Hook::TakeReturn, "take_gil", true)?;
            add(Hook::DropEntry, "drop_gil", false)?;
        }
        Flavour::Lock => {
            add(Hook::LockEntry, "PyThread_acquire_lock", false)?;
            add(Hook::LockReturn, "PyThread_acquire_lock", true)?;
            add(Hook::UnlockEntry, "PyThread_release_lock", false)?;
            gil_lock = Some(syms.data("interpreter_lock").ok_or_else(|| {
                format!("no interpreter_lock in {}: not a CPython 2 interpreter", spec.binary.display())
            })?);
        }
    }
    if fl == Flavour::Interval {
        if let Some(libc_path) = &spec.libc {
            if let Ok(lc) = Symbols::read(libc_path) {
                for site in lc.function("pthread_cond_timedwait") {
                    probes.push(Probe { hook: Hook::TimedWaitReturn, site, retprobe: true });
                }
            }
        }
    }
    Ok((fl, probes, gil_lock, syms))
}

/// A command launched behind a gate: forked, traced (`PTRACE_TRACEME`) and waiting for one
/// byte before its `execve`; it stops at the `execve` (the tracer's SIGTRAP) until
/// [`Child::detach`], so its probes are in place before it runs a single bytecode.
struct Child {
    pid: i32,
    gate: i32,
    err: i32,
    traced: bool,
    reaped: Option<i32>,
}

impl Child {
    fn spawn(argv: &[String], env_extra: &[(String, String)]) -> Result<Child, String> {
        if argv.is_empty() {
            return Err("observe: an empty command".into());
        }
        let cstr = |s: &str| CString::new(s.as_bytes()).map_err(|_| format!("a NUL byte in {s:?}"));
        let cargs: Vec<CString> = argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
        let mut env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| !env_extra.iter().any(|(e, _)| std::ffi::OsStr::new(e) == k))
            .filter_map(|(k, v)| {
                let mut b = k.into_encoded_bytes();
                b.push(b'=');
                b.extend(v.into_encoded_bytes());
                CString::new(b).ok()
            })
            .collect();
        for (k, v) in env_extra {
            env.push(cstr(&format!("{k}={v}"))?);
        }
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        let (mut gate, mut err) = ([0i32; 2], [0i32; 2]);
        // SAFETY: pipe2/fork/ptrace/read/execvpe/_exit; the child only makes async-signal-safe calls.
        unsafe {
            if libc::pipe2(gate.as_mut_ptr(), libc::O_CLOEXEC) != 0 || libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
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
                let n = libc::read(gate[0], &mut b as *mut u8 as *mut libc::c_void, 1);
                if n != 1 || libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                    libc::_exit(127); // the observer gave up before the probes were in place
                }
                libc::execvpe(ptrs[0], ptrs.as_ptr(), envp.as_ptr());
                let e = *libc::__errno_location();
                libc::write(err[1], &e as *const i32 as *const libc::c_void, 4);
                libc::_exit(127);
            }
            libc::close(gate[0]);
            libc::close(err[1]);
            Ok(Child { pid, gate: gate[1], err: err[0], traced: true, reaped: None })
        }
    }

    /// Open the gate and wait for the child to stop at its `execve`; the execve error if it
    /// could not run the command.
    fn release_to_exec(&mut self, argv0: &str) -> Result<(), String> {
        // SAFETY: pipes this struct owns; waitpid/ptrace on our own traced child.
        unsafe {
            let b = 1u8;
            libc::write(self.gate, &b as *const u8 as *const libc::c_void, 1);
            libc::close(self.gate);
            self.gate = -1;
            loop {
                let mut st = 0;
                if libc::waitpid(self.pid, &mut st, 0) != self.pid {
                    return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
                }
                if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
                    self.reaped = Some(st);
                    self.traced = false;
                    let mut e = 0i32;
                    let n = libc::read(self.err, &mut e as *mut i32 as *mut libc::c_void, 4);
                    return Err(if n == 4 {
                        format!("cannot run {argv0:?}: {}", std::io::Error::from_raw_os_error(e))
                    } else {
                        format!("{argv0:?} ended before it started ({})", exit_status(st))
                    });
                }
                if libc::WIFSTOPPED(st) && libc::WSTOPSIG(st) == libc::SIGTRAP {
                    return Ok(()); // at the execve
                }
                // Another signal came first: deliver it and wait on.
                let sig = if libc::WIFSTOPPED(st) { libc::WSTOPSIG(st) } else { 0 };
                libc::ptrace(libc::PTRACE_CONT, self.pid, 0, sig);
            }
        }
    }

    /// Let the stopped child run, untraced.
    fn detach(&mut self) {
        if self.traced {
            // SAFETY: our own tracee, stopped.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, self.pid, 0, 0) };
            self.traced = false;
        }
    }

    /// Reap the child if it exited (`block`: wait for it); its wait status.
    fn wait(&mut self, block: bool) -> Option<i32> {
        if self.reaped.is_none() {
            let mut st = 0;
            // SAFETY: waitpid on our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut st, if block { 0 } else { libc::WNOHANG }) };
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
        // SAFETY: closing our own fds; a child still gated gets EOF and exits.
        unsafe {
            for fd in [self.gate, self.err] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
        }
        if self.reaped.is_none() && self.traced {
            // Stopped at its execve and never released (setting the probes failed): it was ours.
            self.signal(libc::SIGKILL);
            self.detach();
            self.wait(true);
        } else if self.reaped.is_none() {
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

/// Paths' strings at the same address in the target and in the observer (see
/// rust/observe/probes.rs on why inherited uprobes need that): the observer maps anonymous
/// pages at those addresses and copies the strings in; unmapped on drop.
pub struct PathAddrs {
    pub addrs: HashMap<PathBuf, u64>,
    maps: Vec<(usize, usize)>,
}

impl PathAddrs {
    fn mirror(found: Vec<(PathBuf, u64, Vec<u8>)>) -> Result<PathAddrs, String> {
        let mut out = PathAddrs { addrs: HashMap::new(), maps: Vec::new() };
        for (path, addr, bytes) in found {
            let lo = (addr as usize) & !4095;
            let hi = (addr as usize + bytes.len() + 1 + 4095) & !4095;
            let covered = out.maps.iter().any(|&(a, l)| lo >= a && hi <= a + l);
            if !covered {
                // SAFETY: an anonymous private mapping where nothing is mapped (NOREPLACE).
                let p = unsafe {
                    libc::mmap(lo as *mut libc::c_void, hi - lo, libc::PROT_READ | libc::PROT_WRITE,
                               libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, -1, 0)
                };
                if p == libc::MAP_FAILED || p as usize != lo {
                    return Err(format!(
                        "the target's copy of {} is at {addr:#x}, where the observer has memory of its own \
                         (an address clash, rare): run the observation again",
                        path.display()
                    ));
                }
                out.maps.push((lo, hi - lo));
            }
            // SAFETY: the range lies in a mapping made above, writable.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len());
                *(addr as *mut u8).add(bytes.len()) = 0;
            }
            out.addrs.insert(path, addr);
        }
        Ok(out)
    }
}

impl Drop for PathAddrs {
    fn drop(&mut self) {
        for &(a, l) in &self.maps {
            // SAFETY: mappings this struct made.
            unsafe { libc::munmap(a as *mut libc::c_void, l) };
        }
    }
}

const ENV_PREFIX: &str = "GILMODEL_OBSERVE_PATH_";

/// A launched command's copies of the probed paths: the environment strings this observer
/// gave it (`GILMODEL_OBSERVE_PATH_<k>=<path>`), which the kernel put on its stack at the
/// `execve` (between `env_start` and `env_end` of /proc/PID/stat) and nothing moves.
fn env_copies(pid: i32, paths: &[PathBuf]) -> Result<Vec<(PathBuf, u64, Vec<u8>)>, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name's closing parenthesis; env_start is field 50 (1-based).
    let rest = &stat[stat.rfind(')').ok_or("malformed /proc/PID/stat")? + 2..];
    let env_start: u64 = rest.split(' ').nth(50 - 3).and_then(|f| f.parse().ok()).ok_or("no env_start in /proc/PID/stat")?;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).map_err(|e| format!("/proc/{pid}/environ: {e}"))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    for entry in environ.split(|&b| b == 0) {
        for (k, p) in paths.iter().enumerate() {
            let key = format!("{ENV_PREFIX}{k}=");
            if entry.starts_with(key.as_bytes()) {
                let value = entry[key.len()..].to_vec();
                out.push((p.clone(), env_start + (at + key.len()) as u64, value));
            }
        }
        at += entry.len() + 1;
    }
    if out.len() != paths.len() {
        return Err("the launched command's environment lost the observer's GILMODEL_OBSERVE_PATH_* entries".into());
    }
    Ok(out)
}

/// A running process's copies of the probed paths: the names its dynamic loader keeps for
/// each loaded library (`_r_debug.r_map`, then each `link_map`'s `l_name`; glibc's
/// elf/link.h), read with `process_vm_readv`. None for a path the loader does not name (a
/// statically linked interpreter's own executable).
fn loader_copies(pid: i32, paths: &[PathBuf]) -> Vec<(PathBuf, u64, Vec<u8>)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let Some(ld) = maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 6 && f[2] == "00000000" && f[5].contains("/ld-linux")).then(|| PathBuf::from(f[5]))
    }) else {
        return Vec::new();
    };
    let (Ok(syms), Some(base)) = (Symbols::read(&ld), load_start(pid, &ld)) else { return Vec::new() };
    let Some(r_debug) = syms.data("_r_debug") else { return Vec::new() };
    let want: Vec<Option<PathBuf>> = paths.iter().map(|p| std::fs::canonicalize(p).ok()).collect();
    let mut out = Vec::new();
    let mut lm = read_u64(pid, base - syms.first_vaddr + r_debug + 8).unwrap_or(0);
    for _ in 0..4096 {
        if lm == 0 {
            break;
        }
        if let Some(name_at) = read_u64(pid, lm + 8) {
            let mut buf = vec![0u8; 4096];
            if read_bytes(pid, name_at, &mut buf) {
                let n = buf.iter().position(|&b| b == 0).unwrap_or(0);
                let name = PathBuf::from(String::from_utf8_lossy(&buf[..n]).into_owned());
                let canon = std::fs::canonicalize(&name).ok();
                for (p, w) in paths.iter().zip(&want) {
                    if n > 0 && w.is_some() && &canon == w && !out.iter().any(|o: &(PathBuf, u64, Vec<u8>)| &o.0 == p) {
                        out.push((p.clone(), name_at, buf[..n].to_vec()));
                    }
                }
            }
        }
        lm = read_u64(pid, lm + 24).unwrap_or(0);
    }
    out
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

fn read_bytes(pid: i32, addr: u64, buf: &mut [u8]) -> bool {
    let local = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: reads another process's memory into a local buffer of that length.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    // A string near the end of a mapping: a shorter read is still a string.
    n > 0 && (n as usize == buf.len() || buf[..n as usize].contains(&0))
}

fn read_u64(pid: i32, addr: u64) -> Option<u64> {
    let mut v = [0u8; 8];
    let local = libc::iovec { iov_base: v.as_mut_ptr() as *mut libc::c_void, iov_len: 8 };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: 8 };
    // SAFETY: reads 8 bytes of another process into a local array.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (n == 8).then(|| u64::from_ne_bytes(v))
}

/// Whether a process may have perf events copied into the threads it starts: the kernel
/// checks the *cloning* task's capabilities (CAP_PERFMON or CAP_SYS_ADMIN) for each copy.
fn can_inherit(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok()
        })
        .is_some_and(|c| c & ((1 << 38) | (1 << 21)) != 0)
}

/// Whether a process is still running (a zombie, exited but not yet reaped by its parent,
/// is not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(st) => st.rfind(')').and_then(|i| st[i + 1..].split_whitespace().next()).is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

fn tasks_of(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Observe: returns the run (events in the model's schema) with `meta` saying what was
/// observed, how, and what was lost. `interrupted` is polled every `poll_ms`; when it says so
/// the observation stops (a launched command gets SIGINT, then SIGKILL after `grace_s`) and the
/// partial run is returned with `stopped_by = "interrupted"`.
pub fn observe(spec: &ObserveSpec, interrupted: &mut dyn FnMut() -> bool) -> Result<RunOutput, String> {
    let (fl, probes, lock_sym, syms) = plan(spec)?;
    let started = now_ns();
    let mut paths: Vec<PathBuf> = probes.iter().map(|p| p.site.path.clone()).collect();
    paths.sort();
    paths.dedup();
    let mut child: Option<Child> = None;
    let tgid;
    let _mirror: PathAddrs;
    let mut set;
    let mut tasks_opened: Vec<i32>;
    let inherit: bool;
    match (&spec.command, spec.pid) {
        (Some(argv), None) => {
            // Launched: traced until its execve, where its probes are placed; then it runs.
            let env: Vec<(String, String)> = paths
                .iter()
                .enumerate()
                .map(|(k, p)| (format!("{ENV_PREFIX}{k}"), p.to_string_lossy().into_owned()))
                .collect();
            let c = child.insert(Child::spawn(argv, &env)?);
            c.release_to_exec(&argv[0])?;
            tgid = c.pid;
            _mirror = PathAddrs::mirror(env_copies(tgid, &paths)?)?;
            set = ProbeSet::open(&probes, &[tgid], Some(&_mirror.addrs), spec.ring_pages)?;
            c.detach();
            tasks_opened = vec![tgid];
            inherit = true;
        }
        (None, Some(pid)) => {
            if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("process {pid} does not exist"));
            }
            tgid = pid;
            // Threads it starts are followed by inheritance where the kernel allows it (the
            // target may copy perf events, and its loader names every probed file); else
            // its thread list is read again at every poll.
            let copies = if can_inherit(pid) { loader_copies(pid, &paths) } else { Vec::new() };
            inherit = copies.len() == paths.len();
            _mirror = PathAddrs::mirror(if inherit { copies } else { Vec::new() })?;
            let inh = inherit.then_some(&_mirror.addrs);
            tasks_opened = tasks_of(tgid);
            if tasks_opened.is_empty() {
                return Err(format!("process {tgid} has no threads to observe (it exited)"));
            }
            set = ProbeSet::open(&probes, &tasks_opened, inh, spec.ring_pages)?;
            for _ in 0..5 {
                let new: Vec<i32> = tasks_of(tgid).into_iter().filter(|t| !tasks_opened.contains(t)).collect();
                if new.is_empty() {
                    break;
                }
                set.absorb(ProbeSet::open(&probes, &new, inh, spec.ring_pages)?);
                tasks_opened.extend(new);
            }
        }
        _ => return Err("observe: give a command or a pid, not both".into()),
    }
    let t_open = now_ns() as u64;
    let mut raws = Vec::with_capacity(1 << 16);
    let mut gil_lock: Option<u64> = None;
    let poll = Duration::from_millis(spec.poll_ms.max(1));
    let deadline = spec.duration_s.map(|d| t_open + (d * 1e9) as u64);
    let mut stopped_by = "target_exited";
    let mut ending: Option<u64> = None; // when a launched command was told to stop
    let mut end_t: u64;
    let mut late_tasks = 0usize;
    loop {
        set.drain(&mut raws);
        if !inherit {
            let new: Vec<i32> = tasks_of(tgid).into_iter().filter(|t| !tasks_opened.contains(t)).collect();
            if !new.is_empty() {
                if let Ok(more) = ProbeSet::open(&probes, &new, None, spec.ring_pages) {
                    set.absorb(more);
                }
                late_tasks += new.len();
                tasks_opened.extend(new);
            }
        }
        if let Some(sym) = lock_sym.filter(|_| gil_lock.is_none()) {
            if let Some(start) = load_start(tgid, &syms.path) {
                gil_lock = read_u64(tgid, start - syms.first_vaddr + sym).filter(|&v| v != 0);
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
        Some(c) => c.wait(true).map(exit_status).unwrap_or(serde_json::Value::Null),
        None => serde_json::Value::Null,
    };
    let fds = set.fds;
    let (lost, malformed) = (set.lost, set.malformed);
    let t_close = now_ns();
    drop(set); // removes every probe
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
    let end_t = if stopped_by == "target_exited" { last } else { end_t.max(last) };
    let truncated = raws.len() > spec.max_events;
    if truncated {
        raws.sort_by_key(|r| r.t);
        raws.truncate(spec.max_events);
    }
    let lock_found_by = match (fl, gil_lock) {
        (Flavour::Lock, Some(_)) => "interpreter_lock",
        (Flavour::Lock, None) => {
            // The program ended before the lock could be read: take the lock most acquired.
            let mut counts = std::collections::HashMap::new();
            for r in &raws {
                if let probes::What::Hit { hook: Hook::LockEntry, arg0, .. } = r.what {
                    *counts.entry(arg0).or_insert(0u64) += 1;
                }
            }
            gil_lock = counts.into_iter().max_by_key(|c| c.1).map(|c| c.0);
            "most acquired lock (interpreter_lock was not read in time)"
        }
        _ => "",
    };
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
            "mechanism": "kernel uprobes via perf_event_open (uprobe PMU), one ring per CPU, CLOCK_MONOTONIC",
            "pid": tgid,
            "command": spec.command,
            "attached": spec.pid.is_some(),
            "binary": spec.binary,
            "symbols_from": syms.symbols_from,
            "probes": sites,
            "perf_fds": fds,
            "tasks_opened": tasks_opened.len(),
            "new_threads": if inherit {
                "followed from their first instruction (inherited events)"
            } else {
                "picked up from /proc at each poll: a thread's first GIL events before that are missed"
            },
            "threads_picked_up_late": late_tasks,
            "lost_records": lost,
            "malformed_records": malformed,
            "truncated": truncated,
            "gil_lock": gil_lock.map(|g| format!("{g:#x}")),
            "gil_lock_found_by": lock_found_by,
            "observed_events": match fl {
                Flavour::Interval if has_waits => "request, acquire, release, timeout, futile_wakeup; drop_request inferred",
                Flavour::Interval => "request, acquire, release",
                Flavour::Lock => "request, acquire, release",
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
    Ok(RunOutput { events: d.events, threads: d.threads, io: IoLog::default(), meta, aborted: false })
}
