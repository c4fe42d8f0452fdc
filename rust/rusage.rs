//! `getrusage(RUSAGE_THREAD)`: the calling thread's context switches.

/// Context switches of the calling thread so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadUsage {
    /// Voluntary: the thread blocked (futex wait, sleep, read).
    pub nvcsw: u64,
    /// Involuntary: the scheduler preempted it.
    pub nivcsw: u64,
    pub utime_ns: i64,
    pub stime_ns: i64,
}

/// Read the calling thread's usage.
pub fn thread() -> ThreadUsage {
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; RUSAGE_THREAD is Linux-specific and always supported there.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec * 1_000_000_000 + t.tv_usec * 1000;
    ThreadUsage {
        nvcsw: ru.ru_nvcsw as u64,
        nivcsw: ru.ru_nivcsw as u64,
        utime_ns: tv(ru.ru_utime),
        stime_ns: tv(ru.ru_stime),
    }
}
