//! Facts about the host, recorded in every run's `meta`.

use std::ffi::CStr;

/// CPU model, core counts, kernel, glibc.
pub fn info() -> serde_json::Value {
    serde_json::json!({
        "cpu_model": cpu_model(),
        "cores_online": cores_online(),
        "cores_allowed": crate::affinity::allowed_cores().len(),
        "kernel": kernel(),
        "glibc": glibc(),
        "hostname": hostname(),
        "memory_bytes": memory_bytes(),
    })
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn cores_online() -> usize {
    // SAFETY: plain sysconf query.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) as usize }
}

pub fn memory_bytes() -> u64 {
    // SAFETY: plain sysconf queries.
    unsafe {
        (libc::sysconf(libc::_SC_PHYS_PAGES).max(0) as u64)
            * (libc::sysconf(libc::_SC_PAGESIZE).max(0) as u64)
    }
}

fn uname_field(f: impl Fn(&libc::utsname) -> &[libc::c_char]) -> String {
    // SAFETY: zeroed utsname is a valid out-parameter; fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        CStr::from_ptr(f(&u).as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

pub fn kernel() -> String {
    format!(
        "{} {}",
        uname_field(|u| &u.sysname),
        uname_field(|u| &u.release)
    )
}

pub fn hostname() -> String {
    uname_field(|u| &u.nodename)
}

pub fn glibc() -> String {
    extern "C" {
        fn gnu_get_libc_version() -> *const libc::c_char;
    }
    // SAFETY: glibc returns a static NUL-terminated string.
    unsafe {
        CStr::from_ptr(gnu_get_libc_version())
            .to_string_lossy()
            .into_owned()
    }
}
