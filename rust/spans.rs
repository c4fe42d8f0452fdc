//! The timeline's state spans (`gilmodel.eventlog.state_spans`), and its migrations
//! ([`migrations`], `gilmodel.lanes`). State spans: each state-changing event of
//! a thread starts a span that lasts until that thread's next state-changing event. Two passes
//! over the log in time order (count each thread's spans, then place them), so the spans come
//! out ordered by thread, then time, with no sort. The numpy version this replaces
//! (`tests/spans_reference.py`, which `tests/test_spans.py` holds this to) took 1.6 s per 10 M
//! events, most of `run.plot()`'s time, in its temporaries and a sort.
//!
//! Which event starts which state is the caller's table (`lut`, one entry per event code):
//! a state index (0 and up), [`NONE`] (the thread is then in no state: its span is dropped)
//! or [`NOT_STATE`] (the event changes nothing).

use crate::hugepages;

/// `lut` entry: the event ends the thread's span and starts none that is kept.
pub const NONE: i8 = -1;
/// `lut` entry: the event does not change the thread's state.
pub const NOT_STATE: i8 = -2;

/// Spans ordered by thread, then start.
#[derive(Default, Debug, PartialEq)]
pub struct Spans {
    pub thread: Vec<i64>,
    pub state: Vec<i8>,
    /// The blocking op (`arg` of its `io_begin`, clamped to `0..ops`) where `state ==
    /// io_state`, -1 otherwise.
    pub op: Vec<i8>,
    pub start: Vec<i64>,
    pub end: Vec<i64>,
    /// Still in that state when the thread's log ends.
    pub open: Vec<bool>,
}

/// The spans of a log (`t` in time order; `event` codes index `lut`). A span still open at
/// the end of its thread's log lasts until `end_ns` (at least its start; 0 if negative), or
/// until its start when the log was `truncated`. `None` when an event code is outside `lut`
/// or a column's length differs.
#[allow(clippy::too_many_arguments)]
pub fn state_spans(
    t: &[i64],
    thread: &[u16],
    event: &[i8],
    arg: &[i64],
    lut: &[i8],
    io_state: i8,
    ops: i64,
    end_ns: i64,
    truncated: bool,
) -> Option<Spans> {
    let n = t.len();
    if [thread.len(), event.len(), arg.len()]
        .iter()
        .any(|&k| k != n)
    {
        return None;
    }
    let state_of = |e: i8| lut.get(usize::try_from(e).ok()?).copied();
    let threads = thread.iter().copied().max().map_or(0, |m| m as usize + 1);
    // Pass 1: each thread's kept spans, hence where its spans begin in the output.
    let mut count = vec![0usize; threads];
    for (&k, &e) in thread.iter().zip(event) {
        if state_of(e)? >= 0 {
            count[k as usize] += 1;
        }
    }
    let mut next = Vec::with_capacity(threads);
    let mut total = 0;
    for c in &count {
        next.push(total);
        total += c;
    }
    let mut s = Spans {
        thread: hugepages::filled(total, 0),
        state: hugepages::filled(total, 0),
        op: hugepages::filled(total, -1),
        start: hugepages::filled(total, 0),
        end: hugepages::filled(total, 0),
        open: hugepages::filled(total, false),
    };
    // Pass 2: place each span; the thread's next state event ends it.
    let mut last: Vec<Option<usize>> = vec![None; threads];
    for (((&ti, &k), &e), &a) in t.iter().zip(thread).zip(event).zip(arg) {
        let st = state_of(e)?;
        if st == NOT_STATE {
            continue;
        }
        let k = k as usize;
        if let Some(j) = last[k].take() {
            s.end[j] = ti.max(s.start[j]);
        }
        if st >= 0 {
            let j = next[k];
            next[k] += 1;
            s.thread[j] = k as i64;
            s.state[j] = st;
            if st == io_state {
                s.op[j] = a.clamp(0, ops - 1) as i8;
            }
            s.start[j] = ti;
            last[k] = Some(j);
        }
    }
    // Spans open at the end of their thread's log.
    for j in last.into_iter().flatten() {
        s.open[j] = true;
        let e = if truncated { s.start[j] } else { end_ns.max(0) };
        s.end[j] = e.max(s.start[j]);
    }
    Some(s)
}

/// Per thread (`threads` of them), how many of its events at times in `[lo, hi)` found it on
/// another CPU than its event before (the timeline's migration marks). `None` when a column's
/// length differs or a thread is not below `threads`.
pub fn migrations(
    t: &[i64],
    thread: &[u16],
    cpu: &[i16],
    lo: i64,
    hi: i64,
    threads: usize,
) -> Option<Vec<i64>> {
    if thread.len() != t.len() || cpu.len() != t.len() {
        return None;
    }
    let mut last: Vec<Option<i16>> = vec![None; threads];
    let mut out = vec![0i64; threads];
    for ((&ti, &k), &c) in t.iter().zip(thread).zip(cpu) {
        let slot = last.get_mut(k as usize)?;
        if slot.is_some_and(|p| p != c) && ti >= lo && ti < hi {
            out[k as usize] += 1;
        }
        *slot = Some(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_end_at_the_next_state_event_and_come_out_by_thread() {
        // Codes: 0 starts state 0, 1 starts state 1 (the io state), 2 ends, 3 changes nothing.
        let lut = [0, 1, NONE, NOT_STATE];
        let t = [10, 20, 30, 40, 50, 60];
        let th = [1, 0, 1, 1, 0, 1];
        let ev = [0, 1, 3, 1, 2, 2];
        let arg = [0, 9, 0, 2, 0, 0];
        let s = state_spans(&t, &th, &ev, &arg, &lut, 1, 4, 100, false).unwrap();
        assert_eq!(s.thread, vec![0, 1, 1]);
        assert_eq!(s.state, vec![1, 0, 1]);
        assert_eq!(s.op, vec![3, -1, 2]); // 9 clamped to the last op
        assert_eq!(s.start, vec![20, 10, 40]);
        assert_eq!(s.end, vec![50, 40, 60]);
        assert_eq!(s.open, vec![false, false, false]);
        // Thread 1's last span left open: until the run's end, or its start when truncated.
        let (t, ev) = ([10, 20], [0, 1]);
        let s = state_spans(&t, &[1, 1], &ev, &[0, 0], &lut, 1, 4, 100, false).unwrap();
        assert_eq!((s.end, s.open), (vec![20, 100], vec![false, true]));
        let s = state_spans(&t, &[1, 1], &ev, &[0, 0], &lut, 1, 4, 100, true).unwrap();
        assert_eq!(s.end, vec![20, 20]);
        assert!(state_spans(&t, &[1, 1], &[0, 4], &[0, 0], &lut, 1, 4, 100, true).is_none());
    }

    #[test]
    fn migrations_count_cpu_changes_in_the_window() {
        let t = [0, 10, 20, 30, 40];
        let th = [0, 1, 0, 1, 0];
        let cpu = [0, 1, 1, 1, 0];
        // Thread 0 moves at 20 and 40; thread 1 never.
        assert_eq!(migrations(&t, &th, &cpu, 0, 100, 2), Some(vec![2, 0]));
        assert_eq!(migrations(&t, &th, &cpu, 0, 40, 2), Some(vec![1, 0]));
        assert_eq!(migrations(&t, &th, &cpu, 0, 40, 1), None);
    }
}
