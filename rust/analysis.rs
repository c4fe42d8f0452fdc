//! One pass over an event log for `gilmodel.analysis`: the rows of every holding period,
//! wait, hand-off between holders, blocking call and held call, and the time the GIL was free
//! while someone waited. The Python front gathers its tables' columns from these rows
//! (`python/gilmodel/analysis.py`); this pass replaces what were a dozen numpy passes with
//! fancy indexing over a per-thread sort of the whole log.
//!
//! The pairing is `eventlog.pairs`' exactly, for any log (a hand-built one too): per thread,
//! among the events of the two kinds, a first-kind event immediately followed by a
//! second-kind one. Counts "between" two events of a pair are of the same thread's events
//! strictly between them in its own order. The neighbours of a release (what ended the hold)
//! are the thread's previous and next events. The free gaps are consecutive release →
//! acquire in the global order; the hand-offs, those whose acquirer is another thread (the
//! only ones `analysis.handoffs` keeps: returning them all cost a gather over every gap,
//! 5.9 M of them for 0.33 M hand-offs in `benches/analysis.py`'s log). The idle time is computed on times, as the numpy version
//! did, ties included: "waiting at a release" counts every request and acquisition at or
//! before the release's time, even in later rows.

use crate::hugepages;
use crate::log::Ev;

/// A row of the log. 32 bits: the lists of a 10 M-event log take half the memory, and half
/// the fresh pages to fault in, of 64-bit rows. [`pass`] refuses a log of [`MAX_ROWS`] rows
/// or more.
pub type Row = u32;

/// [`pass`] takes fewer rows than this (2^32 − 1: 82 GB of log at 19 bytes a row; `Row::MAX`
/// marks a slot not filled).
pub const MAX_ROWS: usize = Row::MAX as usize;

/// The rows (indices into the log) the analysis tables are made of, each list in the order
/// of its first row.
#[derive(Default, Debug)]
pub struct Rows {
    pub hold_acquire: Vec<Row>,
    pub hold_release: Vec<Row>,
    /// 0 poll, 1 forced_drop, 2 blocking, 3 exit (`analysis.HOLD_ENDS`).
    pub hold_ended: Vec<i8>,
    pub wait_request: Vec<Row>,
    pub wait_acquire: Vec<Row>,
    pub wait_timeouts: Vec<i64>,
    pub wait_drop_requests: Vec<i64>,
    pub wait_futile: Vec<i64>,
    /// Hand-offs: a release and the next acquisition in the global order, by another thread.
    pub handoff_release: Vec<Row>,
    pub handoff_acquire: Vec<Row>,
    pub io_begin: Vec<Row>,
    pub io_end: Vec<Row>,
    pub io_acquire: Vec<Row>,
    pub call_begin: Vec<Row>,
    pub call_end: Vec<Row>,
    /// ns the GIL was free while at least one thread waited for it.
    pub idle_with_waiters_ns: i64,
}

// `Last::kind`: 0 none yet, then the first or the second kind of the pair.
const FIRST: u8 = 1;
const SECOND: u8 = 2;

/// The last event of a pair's two kinds seen on a thread: which, and its row.
#[derive(Clone, Copy, Default)]
struct Last {
    kind: u8,
    row: usize,
}

impl Last {
    fn first(row: usize) -> Self {
        Last { kind: FIRST, row }
    }
    fn second(row: usize) -> Self {
        Last { kind: SECOND, row }
    }
}

/// Free gaps whose waiter count is not final yet (their release's time may still have rows),
/// and what the settled ones add up to.
#[derive(Default)]
struct Gaps {
    /// (release time, acquire time).
    open: Vec<(i64, i64)>,
    idle: i64,
    /// Acquire times of gaps nobody waited at whose first request after the release (by
    /// time) has not come yet: the log's next request is it, or the last request of all
    /// when none comes.
    nobody_waiting: Vec<i64>,
}

impl Gaps {
    /// The open gaps' counts are final: `waiting` threads at their release; `next_req`, the
    /// first request after the release's time, if the log had it already.
    fn settle(&mut self, waiting: i64, next_req: Option<i64>) {
        for (rt, at) in self.open.drain(..) {
            if waiting > 0 {
                self.idle += (at - rt).max(0);
            } else if let Some(q) = next_req {
                self.idle += (at - q.min(at)).max(0);
            } else {
                self.nobody_waiting.push(at);
            }
        }
    }

    /// A request at `t`: the gaps nobody waited at count from it.
    fn request(&mut self, t: i64) {
        for at in self.nobody_waiting.drain(..) {
            self.idle += (at - t.min(at)).max(0);
        }
    }
}

#[derive(Clone, Default)]
struct Thread {
    hold: Last,
    wait: Last,
    io: Last,
    io_taken: Last,
    call: Last,
    /// Output slots of the pair begun last (reserved at its first row, so that every list
    /// comes out in the order of its first rows without a sort; slots never filled are
    /// dropped at the end).
    hold_slot: usize,
    wait_slot: usize,
    io_slot: usize,
    call_slot: usize,
    /// The io slot whose end is `io_taken`'s io_end (if that end was paired).
    io_pair: Option<usize>,
    prev: i8,
    /// A hold whose end is decided by the thread's next event.
    pending_hold: Option<usize>,
    timeouts: i64,
    drops: i64,
    futile: i64,
    at_request: (i64, i64, i64),
}

const UNSET: Row = Row::MAX;
// Event codes as patterns (a jump table, not a chain of comparisons).
const REQUEST: i8 = Ev::Request as i8;
const ACQUIRE: i8 = Ev::Acquire as i8;
const RELEASE: i8 = Ev::Release as i8;
const IO_BEGIN: i8 = Ev::IoBegin as i8;
const IO_END: i8 = Ev::IoEnd as i8;
const CALL_BEGIN: i8 = Ev::CallBegin as i8;
const CALL_END: i8 = Ev::CallEnd as i8;
const TIMEOUT: i8 = Ev::Timeout as i8;
const DROP_REQUEST: i8 = Ev::DropRequest as i8;
const FUTILE: i8 = Ev::FutileWakeup as i8;

/// Keep the entries of parallel lists whose `key` is set.
fn compact<T: Copy>(key: &[Row], col: &mut Vec<T>) {
    let mut j = 0;
    for i in 0..key.len() {
        if key[i] != UNSET {
            col[j] = col[i];
            j += 1;
        }
    }
    col.truncate(j);
}

/// One pass over the log (`t` in time order; `event` as [`Ev`] codes; fewer than
/// [`MAX_ROWS`] rows, or `None`).
pub fn pass(t: &[i64], thread: &[u16], event: &[i8], arg: &[i64]) -> Option<Rows> {
    let n = t.len();
    if n >= MAX_ROWS {
        return None;
    }
    let threads = thread.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut th = vec![Thread::default(); threads];
    // Every list at its final capacity (a count of the kinds first), on huge pages.
    let mut kinds = [0usize; 256];
    for &e in event {
        kinds[e as u8 as usize] += 1;
    }
    let cap = |e: i8| kinds[e as u8 as usize];
    let (holds, waits, ios, calls) = (cap(ACQUIRE), cap(REQUEST), cap(IO_BEGIN), cap(CALL_BEGIN));
    let mut r = Rows {
        hold_acquire: hugepages::with_capacity(holds),
        hold_release: hugepages::with_capacity(holds),
        hold_ended: hugepages::with_capacity(holds),
        wait_request: hugepages::with_capacity(waits),
        wait_acquire: hugepages::with_capacity(waits),
        wait_timeouts: hugepages::with_capacity(waits),
        wait_drop_requests: hugepages::with_capacity(waits),
        wait_futile: hugepages::with_capacity(waits),
        handoff_release: hugepages::with_capacity(holds.min(cap(RELEASE))),
        handoff_acquire: hugepages::with_capacity(holds.min(cap(RELEASE))),
        io_begin: hugepages::with_capacity(ios),
        io_end: hugepages::with_capacity(ios),
        io_acquire: hugepages::with_capacity(ios),
        call_begin: hugepages::with_capacity(calls),
        call_end: hugepages::with_capacity(calls),
        idle_with_waiters_ns: 0,
    };
    // The global acquire/release sequence, for the free gaps.
    let mut last_global = Last::default();
    // Running counts of requests and acquisitions, the time of the last request and of the
    // first one after the latest release's time.
    let (mut n_req, mut n_acq) = (0i64, 0i64);
    let (mut last_req, mut req_after_rel): (Option<i64>, Option<i64>) = (None, None);
    // The latest release: its time, and the counts at the last row with that time.
    let (mut rel_t, mut rel_req, mut rel_acq) = (i64::MIN, 0i64, 0i64);
    // Gaps whose counts are final once the time moves past their release's time.
    let mut gaps = Gaps::default();
    let rows = t.iter().zip(thread).zip(event).zip(arg).enumerate();
    for (i, (((&ti, &k), &e), &ai)) in rows {
        if ti != rel_t && !gaps.open.is_empty() {
            gaps.settle(rel_req - rel_acq, req_after_rel);
        }
        let s = &mut th[k as usize];
        if let Some(h) = s.pending_hold.take() {
            r.hold_ended[h] = if e == Ev::IoBegin as i8 {
                2
            } else if e == Ev::Exit as i8 {
                3
            } else {
                0
            };
        }
        match e {
            REQUEST => {
                s.wait = Last::first(i);
                s.wait_slot = r.wait_request.len();
                r.wait_request.push(i as Row);
                r.wait_acquire.push(UNSET);
                r.wait_timeouts.push(0);
                r.wait_drop_requests.push(0);
                r.wait_futile.push(0);
                s.at_request = (s.timeouts, s.drops, s.futile);
                n_req += 1;
                last_req = Some(ti);
                if ti > rel_t && req_after_rel.is_none() {
                    req_after_rel = Some(ti);
                }
                gaps.request(ti);
            }
            ACQUIRE => {
                if s.wait.kind == FIRST {
                    // The wait, and the counts between its request and this acquisition.
                    let w = s.wait_slot;
                    r.wait_acquire[w] = i as Row;
                    r.wait_timeouts[w] = s.timeouts - s.at_request.0;
                    r.wait_drop_requests[w] = s.drops - s.at_request.1;
                    r.wait_futile[w] = s.futile - s.at_request.2;
                }
                s.wait = Last::second(i);
                s.hold = Last::first(i);
                s.hold_slot = r.hold_acquire.len();
                r.hold_acquire.push(i as Row);
                r.hold_release.push(UNSET);
                r.hold_ended.push(0);
                if s.io_taken.kind == FIRST {
                    if let Some(slot) = s.io_pair {
                        r.io_acquire[slot] = i as Row;
                    }
                }
                s.io_taken = Last::second(i);
                if last_global.kind == SECOND {
                    let j = last_global.row;
                    if thread[j] != k {
                        r.handoff_release.push(j as Row);
                        r.handoff_acquire.push(i as Row);
                    }
                    gaps.open.push((t[j], ti));
                }
                last_global = Last::first(i);
                n_acq += 1;
            }
            RELEASE => {
                if s.hold.kind == FIRST {
                    let h = s.hold_slot;
                    r.hold_release[h] = i as Row;
                    if s.prev == Ev::ForcedDrop as i8 {
                        r.hold_ended[h] = 1;
                    } else {
                        s.pending_hold = Some(h);
                    }
                }
                s.hold = Last::second(i);
                last_global = Last::second(i);
                rel_t = ti;
                req_after_rel = None;
            }
            IO_BEGIN => {
                s.io = Last::first(i);
                s.io_slot = r.io_begin.len();
                r.io_begin.push(i as Row);
                r.io_end.push(UNSET);
                r.io_acquire.push(UNSET);
            }
            IO_END => {
                s.io_pair = (s.io.kind == FIRST).then(|| {
                    r.io_end[s.io_slot] = i as Row;
                    s.io_slot
                });
                s.io = Last::second(i);
                s.io_taken = Last::first(i);
            }
            CALL_BEGIN => {
                s.call = Last::first(i);
                s.call_slot = r.call_begin.len();
                r.call_begin.push(i as Row);
                r.call_end.push(UNSET);
            }
            CALL_END => {
                if s.call.kind == FIRST {
                    r.call_end[s.call_slot] = i as Row;
                }
                s.call = Last::second(i);
            }
            TIMEOUT => s.timeouts += 1,
            DROP_REQUEST => s.drops += 1,
            FUTILE => s.futile += ai,
            _ => {}
        }
        s.prev = e;
        if ti == rel_t {
            (rel_req, rel_acq) = (n_req, n_acq);
        }
    }
    gaps.settle(rel_req - rel_acq, req_after_rel);
    if let Some(t) = last_req {
        gaps.request(t);
    }
    r.idle_with_waiters_ns = gaps.idle;
    // Drop the slots of pairs the log does not complete.
    let key = std::mem::take(&mut r.hold_release);
    compact(&key, &mut r.hold_acquire);
    compact(&key, &mut r.hold_ended);
    r.hold_release = key.into_iter().filter(|&x| x != UNSET).collect();
    let key = std::mem::take(&mut r.wait_acquire);
    let m = r.wait_request.len();
    for v in [
        &mut r.wait_timeouts,
        &mut r.wait_drop_requests,
        &mut r.wait_futile,
    ] {
        v.resize(m, 0);
        compact(&key, v);
    }
    compact(&key, &mut r.wait_request);
    r.wait_acquire = key.into_iter().filter(|&x| x != UNSET).collect();
    let key = std::mem::take(&mut r.io_acquire);
    compact(&key, &mut r.io_begin);
    compact(&key, &mut r.io_end);
    r.io_acquire = key.into_iter().filter(|&x| x != UNSET).collect();
    let key = std::mem::take(&mut r.call_end);
    compact(&key, &mut r.call_begin);
    r.call_end = key.into_iter().filter(|&x| x != UNSET).collect();
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ev::*;

    fn run(rows: &[(i64, u16, Ev, i64)]) -> Rows {
        let t: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let th: Vec<u16> = rows.iter().map(|r| r.1).collect();
        let ev: Vec<i8> = rows.iter().map(|r| r.2 as i8).collect();
        let arg: Vec<i64> = rows.iter().map(|r| r.3).collect();
        pass(&t, &th, &ev, &arg).unwrap()
    }

    #[test]
    fn pairs_counts_ends_and_gaps() {
        let r = run(&[
            (0, 0, Start, 0),
            (0, 1, Start, 0),
            (10, 0, Request, 0),
            (20, 0, Acquire, 1),
            (25, 1, Request, 0),
            (30, 1, Timeout, 0),
            (30, 1, DropRequest, 0),
            (40, 0, ForcedDrop, 0),
            (41, 0, Release, 5),
            (45, 1, FutileWakeup, 2),
            (50, 1, Acquire, 2),
            (60, 1, Release, 3),
            (61, 1, IoBegin, 0),
            (70, 1, IoEnd, 8),
            (71, 1, Request, 0),
            (80, 1, Acquire, 3),
            (90, 1, Release, 1),
            (91, 1, Exit, 0),
            (92, 0, Request, 0), // never acquired
        ]);
        assert_eq!(r.hold_acquire, vec![3, 10, 15]);
        assert_eq!(r.hold_release, vec![8, 11, 16]);
        assert_eq!(r.hold_ended, vec![1, 2, 3]);
        assert_eq!(r.wait_request, vec![2, 4, 14]);
        assert_eq!(r.wait_timeouts, vec![0, 1, 0]);
        assert_eq!(r.wait_drop_requests, vec![0, 1, 0]);
        assert_eq!(r.wait_futile, vec![0, 2, 0]);
        // Free gaps 8→10 (thread 0 to 1) and 11→15 (1 to 1): one hand-off.
        assert_eq!((r.handoff_release, r.handoff_acquire), (vec![8], vec![10]));
        assert_eq!(
            (r.io_begin, r.io_end, r.io_acquire),
            (vec![12], vec![13], vec![15])
        );
        // Free 41→50 with thread 1 waiting: 9 ns; free 60→80, nobody waiting at 60, the next
        // request at 71: 9 ns.
        assert_eq!(r.idle_with_waiters_ns, 9 + 9);
    }
}
