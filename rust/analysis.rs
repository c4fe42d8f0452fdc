//! One pass over an event log for `gilmodel.analysis`: the columns of its tables of holding
//! periods, waits, hand-offs between holders, blocking calls and held calls, and the time the
//! GIL was free while someone waited. The Python front makes its Arrow tables of these columns
//! without a copy (`python/gilmodel/analysis.py`); this pass replaces what were a dozen numpy
//! passes with fancy indexing over a per-thread sort of the whole log.
//!
//! The pass writes each table's final columns, not the rows they come from: a 10 M-event log's
//! tables are some 250 MB, and every byte more is a page to fault in (README "What the
//! instrument costs": on a VM that hands freed memory back to its host, a first touch costs
//! about 2 ms a MB, more than the pass's own work).
//!
//! The pairing is `eventlog.pairs`' exactly, for any log (a hand-built one too): per thread,
//! among the events of the two kinds, a first-kind event immediately followed by a
//! second-kind one. Counts "between" two events of a pair are of the same thread's events
//! strictly between them in its own order. The neighbours of a release (what ended the hold)
//! are the thread's previous and next events. The free gaps are consecutive release →
//! acquire in the global order; the hand-offs, those whose acquirer is another thread (the
//! only ones `analysis.handoffs` keeps). The idle time is computed on times, as the numpy
//! version did, ties included: "waiting at a release" counts every request and acquisition at
//! or before the release's time, even in later rows.

use crate::hugepages;
use crate::log::Ev;

/// Holding periods, ordered by start (`analysis.holds`).
#[derive(Default, Debug, PartialEq)]
pub struct Holds {
    pub thread: Vec<u16>,
    /// The holder's CPU at the acquisition.
    pub cpu: Vec<i16>,
    pub start: Vec<i64>,
    pub end: Vec<i64>,
    pub dur: Vec<i64>,
    /// The release's `arg`: ticks run while holding.
    pub ticks: Vec<i64>,
    /// 0 poll, 1 forced_drop, 2 blocking, 3 exit (`analysis.HOLD_ENDS`).
    pub ended: Vec<i8>,
}

/// Waits for the GIL, ordered by request (`analysis.waits`).
#[derive(Default, Debug, PartialEq)]
pub struct Waits {
    pub thread: Vec<u16>,
    pub request: Vec<i64>,
    pub acquire: Vec<i64>,
    pub wait: Vec<i64>,
    /// Counts between the request and the acquisition, 32 bits (4 billion timed waits in one
    /// wait would take 8 years at CPython's shortest interval, 1 µs): a first call of the
    /// tables of 10 M events 0.77 s against 0.92 s with 64-bit counts (README, "What the
    /// instrument costs").
    pub timeouts: Vec<u32>,
    pub drop_requests: Vec<u32>,
    /// The sum of the `futile_wakeup` events' `arg`s.
    pub futile: Vec<u32>,
}

/// Hand-offs: a release and the next acquisition in the global order, by another thread.
#[derive(Default, Debug, PartialEq)]
pub struct Handoffs {
    pub from: Vec<u16>,
    pub to: Vec<u16>,
    pub release: Vec<i64>,
    pub acquire: Vec<i64>,
    pub latency: Vec<i64>,
}

/// Blocking calls whose end was paired and after which the thread took the GIL again,
/// ordered by begin (`analysis.io_response`).
#[derive(Default, Debug, PartialEq)]
pub struct Ios {
    pub thread: Vec<u16>,
    /// The io_begin's `arg`: the operation (`log::IO_OP_NAMES`), as logged.
    pub op: Vec<i64>,
    /// The io_end's `arg`.
    pub bytes: Vec<i64>,
    pub begin: Vec<i64>,
    pub end: Vec<i64>,
    pub acquire: Vec<i64>,
    pub call: Vec<i64>,
    pub response: Vec<i64>,
}

/// Held calls, ordered by begin (`analysis.calls`).
#[derive(Default, Debug, PartialEq)]
pub struct Calls {
    pub thread: Vec<u16>,
    pub begin: Vec<i64>,
    pub end: Vec<i64>,
    pub call: Vec<i64>,
    /// The call_end's `arg`: ticks done.
    pub ticks: Vec<i64>,
}

/// Every table of [`pass`], and the time the GIL was free while at least one thread waited.
#[derive(Default, Debug)]
pub struct Tables {
    pub holds: Holds,
    pub waits: Waits,
    pub handoffs: Handoffs,
    pub io: Ios,
    pub calls: Calls,
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
    /// Output slots of the pair begun last (reserved at its first row, so that every table
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
    /// The time of the request begun last.
    request_t: i64,
    timeouts: i64,
    drops: i64,
    futile: i64,
    at_request: (i64, i64, i64),
}

/// A slot's end time (or acquisition) not filled yet: no time in a log is this.
const UNSET: i64 = i64::MIN;
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

/// A count between two rows, in a wait's 32-bit column (clamped: a hand-built log's negative
/// `futile_wakeup` arguments count 0).
fn count(n: i64) -> u32 {
    n.clamp(0, u32::MAX as i64) as u32
}

/// The first slot that `key` leaves unfilled, if any.
fn first_unset(key: &[i64]) -> Option<usize> {
    key.iter().position(|&x| x == UNSET)
}

/// Keep the entries of `col` from `from` on that `keep(slot, value)` picks, in place (those
/// before `from` stay: a cut-off log leaves its unfilled slots near the end, and `Vec::retain`
/// would read the whole column again).
fn retain_from<T: Copy>(col: &mut Vec<T>, from: usize, keep: impl Fn(usize, T) -> bool) {
    let mut j = from;
    for i in from..col.len() {
        let v = col[i];
        if keep(i, v) {
            col[j] = v;
            j += 1;
        }
    }
    col.truncate(j);
}

/// Drop the slots of pairs the log does not complete from a table whose `key` column marks
/// them, in every column named, then in the key.
macro_rules! drop_unfilled {
    ($table:expr, $key:ident, [$($col:ident),*]) => {
        if let Some(from) = first_unset(&$table.$key) {
            $(retain_from(&mut $table.$col, from, |i, _| $table.$key[i] != UNSET);)*
            retain_from(&mut $table.$key, from, |_, k| k != UNSET);
        }
    };
}

/// One pass over the log (`t` in time order; `event` as [`Ev`] codes). With `full` false,
/// only what `analysis.summary` reads: the waits' `wait` column, the hand-offs, the blocking
/// calls and the idle time (a third of the memory to fill, at 10 M events).
pub fn pass(
    t: &[i64],
    thread: &[u16],
    cpu: &[i16],
    event: &[i8],
    arg: &[i64],
    full: bool,
) -> Tables {
    if full {
        pass_of::<true>(t, thread, cpu, event, arg)
    } else {
        pass_of::<false>(t, thread, cpu, event, arg)
    }
}

fn pass_of<const FULL: bool>(
    t: &[i64],
    thread: &[u16],
    cpu: &[i16],
    event: &[i8],
    arg: &[i64],
) -> Tables {
    let threads = thread.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut th = vec![Thread::default(); threads];
    // Every column at its final capacity (a count of the kinds first), on huge pages.
    let mut kinds = [0usize; 256];
    for &e in event {
        kinds[e as u8 as usize] += 1;
    }
    let cap = |e: i8| kinds[e as u8 as usize];
    let (ios, gaps_cap) = (cap(IO_BEGIN), cap(ACQUIRE).min(cap(RELEASE)));
    let all = |n: usize| if FULL { n } else { 0 };
    let (holds, waits, calls) = (all(cap(ACQUIRE)), cap(REQUEST), all(cap(CALL_BEGIN)));
    let wait_counts = all(waits);
    use hugepages::with_capacity as v;
    let mut r = Tables {
        holds: Holds {
            thread: v(holds),
            cpu: v(holds),
            start: v(holds),
            end: v(holds),
            dur: v(holds),
            ticks: v(holds),
            ended: v(holds),
        },
        waits: Waits {
            thread: v(wait_counts),
            request: v(wait_counts),
            acquire: v(wait_counts),
            wait: v(waits),
            timeouts: v(wait_counts),
            drop_requests: v(wait_counts),
            futile: v(wait_counts),
        },
        handoffs: Handoffs {
            from: v(gaps_cap),
            to: v(gaps_cap),
            release: v(gaps_cap),
            acquire: v(gaps_cap),
            latency: v(gaps_cap),
        },
        io: Ios {
            thread: v(ios),
            op: v(ios),
            bytes: v(ios),
            begin: v(ios),
            end: v(ios),
            acquire: v(ios),
            call: v(ios),
            response: v(ios),
        },
        calls: Calls {
            thread: v(calls),
            begin: v(calls),
            end: v(calls),
            call: v(calls),
            ticks: v(calls),
        },
        idle_with_waiters_ns: 0,
    };
    let (h, w, io, c, ho) = (
        &mut r.holds,
        &mut r.waits,
        &mut r.io,
        &mut r.calls,
        &mut r.handoffs,
    );
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
    let rows = t
        .iter()
        .zip(thread)
        .zip(cpu)
        .zip(event)
        .zip(arg)
        .enumerate();
    for (i, ((((&ti, &k), &ci), &e), &ai)) in rows {
        if ti != rel_t && !gaps.open.is_empty() {
            gaps.settle(rel_req - rel_acq, req_after_rel);
        }
        let s = &mut th[k as usize];
        if let Some(slot) = s.pending_hold.take() {
            h.ended[slot] = if e == Ev::IoBegin as i8 {
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
                s.wait_slot = w.wait.len();
                s.request_t = ti;
                w.wait.push(UNSET);
                if FULL {
                    w.thread.push(k);
                    w.request.push(ti);
                    w.acquire.push(0);
                    w.timeouts.push(0);
                    w.drop_requests.push(0);
                    w.futile.push(0);
                }
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
                    let j = s.wait_slot;
                    w.wait[j] = ti - s.request_t;
                    if FULL {
                        w.acquire[j] = ti;
                        w.timeouts[j] = count(s.timeouts - s.at_request.0);
                        w.drop_requests[j] = count(s.drops - s.at_request.1);
                        w.futile[j] = count(s.futile - s.at_request.2);
                    }
                }
                s.wait = Last::second(i);
                s.hold = Last::first(i);
                if FULL {
                    s.hold_slot = h.start.len();
                    h.thread.push(k);
                    h.cpu.push(ci);
                    h.start.push(ti);
                    h.end.push(UNSET);
                    h.dur.push(0);
                    h.ticks.push(0);
                    h.ended.push(0);
                }
                if s.io_taken.kind == FIRST {
                    if let Some(j) = s.io_pair {
                        io.acquire[j] = ti;
                        io.response[j] = ti - io.end[j];
                    }
                }
                s.io_taken = Last::second(i);
                if last_global.kind == SECOND {
                    let j = last_global.row;
                    if thread[j] != k {
                        ho.from.push(thread[j]);
                        ho.to.push(k);
                        ho.release.push(t[j]);
                        ho.acquire.push(ti);
                        ho.latency.push(ti - t[j]);
                    }
                    gaps.open.push((t[j], ti));
                }
                last_global = Last::first(i);
                n_acq += 1;
            }
            RELEASE => {
                if FULL && s.hold.kind == FIRST {
                    let j = s.hold_slot;
                    h.end[j] = ti;
                    h.dur[j] = ti - h.start[j];
                    h.ticks[j] = ai;
                    if s.prev == Ev::ForcedDrop as i8 {
                        h.ended[j] = 1;
                    } else {
                        s.pending_hold = Some(j);
                    }
                }
                s.hold = Last::second(i);
                last_global = Last::second(i);
                rel_t = ti;
                req_after_rel = None;
            }
            IO_BEGIN => {
                s.io = Last::first(i);
                s.io_slot = io.begin.len();
                io.thread.push(k);
                io.op.push(ai);
                io.bytes.push(0);
                io.begin.push(ti);
                io.end.push(UNSET);
                io.acquire.push(UNSET);
                io.call.push(0);
                io.response.push(0);
            }
            IO_END => {
                s.io_pair = (s.io.kind == FIRST).then(|| {
                    let j = s.io_slot;
                    io.end[j] = ti;
                    io.bytes[j] = ai;
                    io.call[j] = ti - io.begin[j];
                    j
                });
                s.io = Last::second(i);
                s.io_taken = Last::first(i);
            }
            CALL_BEGIN if FULL => {
                s.call = Last::first(i);
                s.call_slot = c.begin.len();
                c.thread.push(k);
                c.begin.push(ti);
                c.end.push(UNSET);
                c.call.push(0);
                c.ticks.push(0);
            }
            CALL_END if FULL => {
                if s.call.kind == FIRST {
                    let j = s.call_slot;
                    c.end[j] = ti;
                    c.call[j] = ti - c.begin[j];
                    c.ticks[j] = ai;
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
    drop_unfilled!(r.holds, end, [thread, cpu, start, dur, ticks, ended]);
    if FULL {
        drop_unfilled!(
            r.waits,
            wait,
            [thread, request, acquire, timeouts, drop_requests, futile]
        );
    } else {
        drop_unfilled!(r.waits, wait, []);
    }
    drop_unfilled!(
        r.io,
        acquire,
        [thread, op, bytes, begin, end, call, response]
    );
    drop_unfilled!(r.calls, end, [thread, begin, call, ticks]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ev::*;

    fn run(rows: &[(i64, u16, Ev, i64)]) -> Tables {
        let t: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let th: Vec<u16> = rows.iter().map(|r| r.1).collect();
        let cpu: Vec<i16> = rows.iter().map(|r| r.1 as i16 + 10).collect();
        let ev: Vec<i8> = rows.iter().map(|r| r.2 as i8).collect();
        let arg: Vec<i64> = rows.iter().map(|r| r.3).collect();
        let r = pass(&t, &th, &cpu, &ev, &arg, true);
        // The summary's pass finds the same waits, hand-offs and blocking calls.
        let light = pass(&t, &th, &cpu, &ev, &arg, false);
        assert_eq!(
            (&light.waits.wait, &light.handoffs, &light.io),
            (&r.waits.wait, &r.handoffs, &r.io)
        );
        assert_eq!(light.idle_with_waiters_ns, r.idle_with_waiters_ns);
        assert!(light.holds.start.is_empty() && light.waits.request.is_empty());
        r
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
            (93, 0, IoBegin, 1), // never ended
        ]);
        assert_eq!(
            r.holds,
            Holds {
                thread: vec![0, 1, 1],
                cpu: vec![10, 11, 11],
                start: vec![20, 50, 80],
                end: vec![41, 60, 90],
                dur: vec![21, 10, 10],
                ticks: vec![5, 3, 1],
                ended: vec![1, 2, 3],
            }
        );
        assert_eq!(
            r.waits,
            Waits {
                thread: vec![0, 1, 1],
                request: vec![10, 25, 71],
                acquire: vec![20, 50, 80],
                wait: vec![10, 25, 9],
                timeouts: vec![0, 1, 0],
                drop_requests: vec![0, 1, 0],
                futile: vec![0, 2, 0],
            }
        );
        // Free gaps 41→50 (thread 0 to 1) and 60→80 (1 to 1): one hand-off.
        assert_eq!(
            r.handoffs,
            Handoffs {
                from: vec![0],
                to: vec![1],
                release: vec![41],
                acquire: vec![50],
                latency: vec![9],
            }
        );
        assert_eq!(
            r.io,
            Ios {
                thread: vec![1],
                op: vec![0],
                bytes: vec![8],
                begin: vec![61],
                end: vec![70],
                acquire: vec![80],
                call: vec![9],
                response: vec![10],
            }
        );
        // Free 41→50 with thread 1 waiting: 9 ns; free 60→80, nobody waiting at 60, the next
        // request at 71: 9 ns.
        assert_eq!(r.idle_with_waiters_ns, 9 + 9);
    }

    #[test]
    fn unfinished_pairs_anywhere_are_dropped() {
        // Thread 0's first call never ends (its next call_begin starts another pair); the
        // tables keep the pairs the log completes, in order.
        let r = run(&[
            (0, 0, CallBegin, 0),
            (1, 0, CallBegin, 0),
            (2, 0, CallEnd, 4),
            (3, 1, CallBegin, 0),
            (4, 1, CallEnd, 6),
            (5, 0, CallBegin, 0),
        ]);
        assert_eq!(
            r.calls,
            Calls {
                thread: vec![0, 1],
                begin: vec![1, 3],
                end: vec![2, 4],
                call: vec![1, 1],
                ticks: vec![4, 6],
            }
        );
    }
}
