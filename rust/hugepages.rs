//! Big output vectors backed by transparent huge pages where the kernel offers them
//! (`MADV_HUGEPAGE`; `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise` on many
//! distributions, this machine's too). numpy asks for them for its large arrays; a `Vec`
//! does not, and the analysis pass's fresh outputs then cost one page fault per 4 KiB:
//! 50 k faults, about a third of the pass, at 18 M events (README "What the instrument costs").

/// Ask for huge pages for the pages wholly inside `v`'s capacity, if it is 4 MiB or more (so
/// that the range surely holds one whole aligned 2 MiB page). Advice only: nothing changes
/// where the kernel declines.
fn advise<T>(v: &mut Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < 4 << 20 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = v.as_mut_ptr() as usize;
        let (lo, hi) = (start.div_ceil(PAGE) * PAGE, (start + bytes) / PAGE * PAGE);
        // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE changes
        // how its pages are backed, not their contents.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        }
    }
}

/// An empty vector with room for `cap` items.
pub fn with_capacity<T>(cap: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(cap);
    advise(&mut v);
    v
}

/// `n` copies of `x`.
pub fn filled<T: Clone>(n: usize, x: T) -> Vec<T> {
    let mut v = with_capacity(n);
    v.resize(n, x);
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectors_hold_what_they_are_given() {
        let v = super::filled(3 << 20, 7u32);
        assert_eq!((v.len(), v[0], v[(3 << 20) - 1]), (3 << 20, 7, 7));
        let mut w: Vec<u8> = super::with_capacity(10);
        w.push(1);
        assert_eq!(w, vec![1]);
    }
}
