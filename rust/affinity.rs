//! Pinning, naming and signal masks of the engine's threads (and the affinity mask `host`
//! reports).

/// Cores in the calling thread's affinity mask (what threads it starts inherit).
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restrict the calling thread to `cores`.
pub fn pin_current(cores: &[usize]) -> Result<(), String> {
    // SAFETY: builds a cpu_set_t and applies it to the calling thread (tid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity({cores:?}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Name the calling thread (visible in `top -H`, `ps -L`, gdb); truncated to 15 bytes.
pub fn set_name(name: &str) {
    let mut b: Vec<u8> = name.bytes().filter(|&c| c != 0).take(15).collect();
    b.push(0);
    // SAFETY: NUL-terminated buffer of at most 16 bytes, as the kernel requires.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), b.as_ptr() as *const libc::c_char) };
}

/// Block every asynchronous signal in the calling thread, so the host's signals (Ctrl-C) go
/// to the host's own threads and never interrupt a replica's system calls.
pub fn block_signals() {
    // SAFETY: a full sigset applied to the calling thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_to_each_allowed_core() {
        let allowed = allowed_cores();
        assert!(!allowed.is_empty());
        std::thread::spawn(move || {
            for &c in &allowed {
                pin_current(&[c]).unwrap();
                // SAFETY: no arguments.
                assert_eq!(unsafe { libc::sched_getcpu() } as usize, c);
            }
        })
        .join()
        .unwrap();
    }
}
