//! `CLOCK_MONOTONIC` readings (through the vDSO: no system call).

/// Nanoseconds on `CLOCK_MONOTONIC`.
#[inline(always)]
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// An absolute `CLOCK_MONOTONIC` deadline `us` microseconds from now (`_PyThread_cond_after`).
#[inline]
pub fn deadline_after_us(us: u64) -> libc::timespec {
    to_timespec(now_ns().saturating_add((us as i64).saturating_mul(1000)))
}

/// Convert monotonic nanoseconds to a `timespec`.
#[inline]
pub fn to_timespec(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

/// Sleep until an absolute monotonic time (`clock_nanosleep(TIMER_ABSTIME)`), resuming after
/// signal interruptions.
pub fn sleep_until_ns(t: i64) {
    let ts = to_timespec(t);
    // SAFETY: valid timespec; a null remainder is allowed with TIMER_ABSTIME.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}
