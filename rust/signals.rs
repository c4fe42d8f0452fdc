//! Real signals for the Ctrl-C experiments (docs/design.md §1, P3): a C-level handler that
//! only marks the signal pending, as CPython's `signal_handler` → `trip_signal` does, installed
//! for the length of one run and then replaced by the previous disposition.
//!
//! The engine sends each scheduled signal with `pthread_kill` to the scenario's main thread
//! (thread 0), the only scenario thread that has it unblocked. The handler tells the model's
//! signals (`si_code == SI_TKILL` from this process) from anybody else's (a real Ctrl-C from
//! the terminal, `kill` from a shell): those are passed on to the handler that was installed
//! before, so the host Python's own handling keeps working during a run.
//!
//! Only one run at a time may use signals in a process (the handler reaches its run through a
//! static); [`Installed::new`] says so when another is active.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering::SeqCst};
use std::sync::Mutex as StdMutex;

/// What the handler sets: shared with the run's threads.
#[derive(Default)]
pub struct Pending {
    /// A signal arrived and its Python-level handler has not run yet.
    pub flag: AtomicBool,
    /// `CLOCK_MONOTONIC` ns of the latest delivery.
    pub delivered_ns: AtomicI64,
    /// Signals delivered so far.
    pub count: AtomicI64,
}

static ACTIVE: AtomicPtr<Pending> = AtomicPtr::new(std::ptr::null_mut());
static OWNER: StdMutex<()> = StdMutex::new(());
const NSIG: usize = 65;
/// Dispositions replaced for the run, for passing on foreign signals. Written only while no
/// handler of ours is installed for that signal.
static mut PREVIOUS: [Option<libc::sigaction>; NSIG] = [None; NSIG];

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, pid) = unsafe { ((*info).si_code, (*info).si_pid()) };
    // SAFETY: getpid is async-signal-safe.
    let ours = code == libc::SI_TKILL && pid == unsafe { libc::getpid() };
    let p = ACTIVE.load(SeqCst);
    if ours && !p.is_null() {
        // SAFETY: ACTIVE points to the run's Pending until the handler is uninstalled.
        let p = unsafe { &*p };
        p.delivered_ns.store(crate::clock::now_ns(), SeqCst);
        p.count.fetch_add(1, SeqCst);
        p.flag.store(true, SeqCst);
        return;
    }
    // Not ours: hand it to whoever handled it before.
    // SAFETY: PREVIOUS[sig] is not written while our handler is installed for `sig`.
    let prev = unsafe { (*std::ptr::addr_of!(PREVIOUS))[sig as usize] };
    if let Some(act) = prev {
        let h = act.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            return;
        }
        // SAFETY: a handler the process installed, called as it expects to be.
        unsafe {
            if act.sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(h);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
                f(sig);
            }
        }
    }
}

/// Our handler, installed for some signals until dropped.
pub struct Installed {
    signums: Vec<i32>,
    _owner: std::sync::MutexGuard<'static, ()>,
}

impl Installed {
    /// Install the handler for `signums`, pointing it at `pending` (which must outlive the
    /// returned value).
    pub fn new(signums: &[i32], pending: &Pending) -> Result<Installed, String> {
        let owner = OWNER.try_lock().map_err(|_| {
            "another run in this process is using signals; run them one at a time".to_string()
        })?;
        let mut uniq: Vec<i32> = signums.to_vec();
        uniq.sort_unstable();
        uniq.dedup();
        ACTIVE.store(pending as *const Pending as *mut Pending, SeqCst);
        let mut done = Installed {
            signums: Vec::new(),
            _owner: owner,
        };
        for &s in &uniq {
            // SAFETY: plain sigaction calls with initialised structs; PREVIOUS[s] is written
            // before our handler is installed for s.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(s, std::ptr::null(), &mut old) != 0 {
                    return Err(format!(
                        "sigaction({s}): {}",
                        std::io::Error::last_os_error()
                    ));
                }
                (*std::ptr::addr_of_mut!(PREVIOUS))[s as usize] = Some(old);
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as *const () as usize;
                // No SA_RESTART: blocking calls return EINTR, as CPython asks with
                // siginterrupt(sig, 1).
                act.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut act.sa_mask);
                if libc::sigaction(s, &act, std::ptr::null_mut()) != 0 {
                    return Err(format!(
                        "sigaction({s}): {}",
                        std::io::Error::last_os_error()
                    ));
                }
            }
            done.signums.push(s);
        }
        Ok(done)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        for &s in &self.signums {
            // SAFETY: restores the saved disposition; PREVIOUS[s] is cleared only after.
            unsafe {
                if let Some(old) = (*std::ptr::addr_of!(PREVIOUS))[s as usize] {
                    libc::sigaction(s, &old, std::ptr::null_mut());
                }
                (*std::ptr::addr_of_mut!(PREVIOUS))[s as usize] = None;
            }
        }
        ACTIVE.store(std::ptr::null_mut(), SeqCst);
    }
}

/// Unblock `signums` in the calling thread (engine threads start with all blocked).
pub fn unblock(signums: &[i32]) {
    // SAFETY: builds a sigset and changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signums {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Signals a scenario may send: the ones a Python program commonly handles.
pub const ALLOWED: [(i32, &str); 6] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGALRM, "SIGALRM"),
];
