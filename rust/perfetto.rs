//! Native Perfetto traces: the protobuf `Trace` (a stream of length-prefixed `TracePacket`s),
//! written in one pass over a run's event log, in its time order: no table, no sort, memory
//! for a few open slices per thread. Several runs go into one trace as processes of their own
//! (merged by time). What the trace shows is the JSON trace's (`python/gilmodel/trace.py`,
//! for small runs, with args); `tests/test_trace.py` checks that both hold the same slices,
//! instants and counters, and that the holds are `analysis.holds` one for one.
//!
//! Field numbers are those of `protos/perfetto/trace/perfetto_trace.proto` as the `perfetto`
//! package 0.59.1 ships them (`perfetto_trace_pb2`), which the tests read the files back with.
//!
//! # Content, per run
//! - A process track, a `GIL` track (a slice per holding period, named after the holder),
//!   one thread track per scenario thread, and counters `GIL waiters` and `holder's CPU`.
//! - On a thread's track: `wait` (request → acquire), `hold` (acquire → release), the blocking
//!   op (io_begin → io_end, named by its op), `held call` (call_begin → call_end, nested in its
//!   hold) and `switch wait`; instants for timeouts, drop requests, forced drops, futile
//!   wake-ups, signals, handlers and a queue's put and got.
//! - A slice whose end the log does not have (a thread stopped while waiting) is left out, as
//!   `gilmodel.analysis` leaves such pairs out: a first pass finds each thread's last closing
//!   event of each kind.
//! - A window `[lo, hi]` cuts slices at its edges; the counters start with their level at `lo`.
//!
//! # Encoding (under 30 bytes an event in `benches/trace.py`'s big run, 49 before the default
//! track and the carried counters: the figures are in README "What the instrument costs")
//! - One packet sequence per run (`trusted_packet_sequence_id` = run index + 1). Its first
//!   packet clears the incremental state, defines clock 64 as an incremental nanosecond clock
//!   starting with `BOOTTIME` at 0, and sets the defaults (`trace_packet_defaults`): clock 64
//!   for every timestamp (the delta from the sequence's previous packet, 1 to 3 bytes instead of
//!   5 to 6), the run's `GIL` track for every track event that names none, and its two counter
//!   tracks for `extra_counter_values`.
//! - So the counters ride on the slice that changes them: a wait's begin carries the new
//!   number of waiters, the GIL slice's begin (the hold's, under no GIL) the waiters and the
//!   holder's CPU. A change with no slice to carry it is a counter event of its own.
//! - Track uuids are small (1-byte varints up to 127 tracks in all).
//! - Event names are interned (`interned_data.event_names`), the same iids on every sequence.
//!   Track events do not set `SEQ_NEEDS_INCREMENTAL_STATE`: Perfetto's reader uses the flag
//!   only to drop packets after a loss of state (`ProtoTraceReader::ParsePacket`), which a file
//!   written in one go cannot have, and it resolves interned names and the clock without it.
//! - Track descriptors follow, then the events. At one timestamp on one track an end comes
//!   before a begin (the log's order: a release before the next io_begin).

use crate::log::Ev;
use std::io::{self, Write};

// Field numbers (perfetto_trace.proto).
const TRACE_PACKET: u32 = 1;
const P_TIMESTAMP: u32 = 8;
const P_SEQ_ID: u32 = 10;
const P_TRACK_EVENT: u32 = 11;
const P_INTERNED: u32 = 12;
const P_SEQ_FLAGS: u32 = 13;
const P_CLOCK_SNAPSHOT: u32 = 6;
const P_DEFAULTS: u32 = 59;
const P_TRACK_DESCRIPTOR: u32 = 60;
const DEFAULTS_CLOCK_ID: u32 = 58;
const DEFAULTS_TRACK_EVENT: u32 = 11;
const TED_TRACK: u32 = 11;
const TED_EXTRA_COUNTERS: u32 = 31;
const CS_CLOCKS: u32 = 1;
const CLOCK_ID: u32 = 1;
const CLOCK_TIMESTAMP: u32 = 2;
const CLOCK_INCREMENTAL: u32 = 3;
const ID_EVENT_NAMES: u32 = 2;
const EN_IID: u32 = 1;
const EN_NAME: u32 = 2;
const TD_UUID: u32 = 1;
const TD_NAME: u32 = 2;
const TD_PROCESS: u32 = 3;
const TD_THREAD: u32 = 4;
const TD_PARENT: u32 = 5;
const TD_COUNTER: u32 = 8;
const PD_PID: u32 = 1;
const PD_NAME: u32 = 6;
const THD_PID: u32 = 1;
const THD_TID: u32 = 2;
const THD_NAME: u32 = 5;
const TE_TYPE: u32 = 9;
const TE_NAME_IID: u32 = 10;
const TE_TRACK: u32 = 11;
const TE_COUNTER: u32 = 30;
const TE_EXTRA_VALUES: u32 = 12;
const SLICE_BEGIN: u64 = 1;
const SLICE_END: u64 = 2;
const INSTANT: u64 = 3;
const COUNTER: u64 = 4;
const SEQ_CLEARED: u64 = 1;
const BOOTTIME: u64 = 6;
const OUR_CLOCK: u64 = 64;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    varint(buf, ((field as u64) << 3) | wire as u64);
}

fn uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    key(buf, field, 0);
    varint(buf, v);
}

/// A signed value as protobuf's `int64`/`int32` (two's complement, 10 bytes when negative).
fn int(buf: &mut Vec<u8>, field: u32, v: i64) {
    uint(buf, field, v as u64);
}

fn bytes(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(buf, field, 2);
    varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// `field` holding the message `build` writes.
fn message(buf: &mut Vec<u8>, field: u32, scratch: &mut Vec<u8>, build: impl FnOnce(&mut Vec<u8>)) {
    scratch.clear();
    build(scratch);
    bytes(buf, field, scratch);
}

struct Out<W: Write> {
    w: W,
    packet: Vec<u8>,
    inner: Vec<u8>,
    deep: Vec<u8>,
    frame: Vec<u8>,
    written: u64,
    /// Per sequence (run): the previous packet's time, and the default track.
    last_t: Vec<i64>,
    default_track: Vec<u64>,
}

impl<W: Write> Out<W> {
    /// Write `self.packet` as one `Trace.packet`.
    fn flush_packet(&mut self) -> io::Result<()> {
        self.frame.clear();
        key(&mut self.frame, TRACE_PACKET, 2);
        varint(&mut self.frame, self.packet.len() as u64);
        self.w.write_all(&self.frame)?;
        self.w.write_all(&self.packet)?;
        self.written += (self.frame.len() + self.packet.len()) as u64;
        self.packet.clear();
        Ok(())
    }

    /// A track event of run `seq` at `t` (ns; delta-encoded against the sequence's previous
    /// packet), with the values of the run's counters it carries (`extra`: waiters, CPU).
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        seq: usize,
        t: i64,
        kind: u64,
        track: u64,
        name: Option<u32>,
        value: Option<i64>,
        extra: &[i64],
    ) -> io::Result<()> {
        let p = &mut self.packet;
        uint(p, P_TIMESTAMP, (t - self.last_t[seq]) as u64);
        self.last_t[seq] = t;
        uint(p, P_SEQ_ID, seq as u64 + 1);
        let e = &mut self.inner;
        e.clear();
        uint(e, TE_TYPE, kind);
        if track != self.default_track[seq] {
            uint(e, TE_TRACK, track);
        }
        if let Some(n) = name {
            uint(e, TE_NAME_IID, n as u64 + 1);
        }
        if let Some(v) = value {
            int(e, TE_COUNTER, v);
        }
        for &v in extra {
            int(e, TE_EXTRA_VALUES, v);
        }
        bytes(p, P_TRACK_EVENT, e);
        self.flush_packet()
    }
}

/// One run of a trace: its event log in time order (the `events` table's columns, `event` as
/// [`Ev`] codes), its process title, its threads' track labels and names, and how far its
/// times move in the trace (to align several runs).
#[derive(Clone, Copy)]
pub struct RunLog<'a> {
    pub title: &'a str,
    pub labels: &'a [String],
    pub names: &'a [String],
    pub t: &'a [i64],
    pub thread: &'a [u16],
    pub cpu: &'a [i16],
    pub event: &'a [i8],
    pub arg: &'a [i64],
    pub shift: i64,
    /// Draw the `GIL` track's slices (who holds it); false under no GIL, where holds overlap
    /// and slices of one track cannot.
    pub gil_track: bool,
}

/// Why a trace cannot be written.
#[derive(Debug)]
pub enum TraceError {
    Input(String),
    Io(io::Error),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Input(m) => write!(f, "{m}"),
            TraceError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for TraceError {
    fn from(e: io::Error) -> Self {
        TraceError::Io(e)
    }
}

/// Instants, by event kind.
const INSTANTS: [Ev; 8] = [
    Ev::Timeout,
    Ev::DropRequest,
    Ev::ForcedDrop,
    Ev::FutileWakeup,
    Ev::Signal,
    Ev::Handler,
    Ev::Put,
    Ev::Got,
];
// Interned names: these, then the blocking ops, then each run's thread names.
const HOLD: u32 = 0;
const WAIT: u32 = 1;
const CALL: u32 = 2;
const SWITCH: u32 = 3;
const FIXED: [&str; 4] = ["hold", "wait", "held call", "switch wait"];

/// A run's track uuids: its threads' (`first + k`), then its GIL track, its two counters and
/// its process, one after another across runs from 1 (0 is Perfetto's default track).
#[derive(Clone, Copy)]
struct Uuids {
    first: u64,
    gil: u64,
    waiters: u64,
    cpu: u64,
    process: u64,
}

impl Uuids {
    fn after(prev: u64, threads: usize) -> Uuids {
        let gil = prev + 1 + threads as u64;
        Uuids {
            first: prev + 1,
            gil,
            waiters: gil + 1,
            cpu: gil + 2,
            process: gil + 3,
        }
    }
}

#[derive(Default, Clone)]
struct Open {
    wait: Option<i64>,
    hold: Option<i64>,
    io: Option<(i64, u32)>,
    call: Option<i64>,
    switch: Option<i64>,
}

// What `paired[row]` says: the row begins a slice whose end the log has, paired as
// `gilmodel.eventlog.pairs` pairs (per thread, consecutive among the two kinds).
const P_WAIT: u8 = 1;
const P_HOLD: u8 = 2;
const P_IO: u8 = 4;
const P_CALL: u8 = 8;
const P_SWITCH: u8 = 16;

/// For each row, which slices it begins and the log ends: the first pass.
fn paired_rows(r: &RunLog) -> Vec<u8> {
    #[derive(Default, Clone, Copy)]
    struct Th {
        wait: Option<usize>,
        hold: Option<usize>,
        io: Option<usize>,
        /// The io_begin whose io_end was the thread's last io_end/acquire event.
        io_done: Option<usize>,
        call: Option<usize>,
        switch: Option<usize>,
    }
    let mut th = vec![Th::default(); r.labels.len()];
    let mut out = vec![0u8; r.t.len()];
    for i in 0..r.t.len() {
        let s = &mut th[r.thread[i] as usize];
        match r.event[i] {
            e if e == Ev::Request as i8 => s.wait = Some(i),
            e if e == Ev::Acquire as i8 => {
                if let Some(o) = s.wait.take() {
                    out[o] |= P_WAIT;
                }
                if let Some(b) = s.io_done.take() {
                    out[b] |= P_IO; // its io_end is followed by this acquisition
                }
                s.hold = Some(i);
            }
            e if e == Ev::Release as i8 => {
                if let Some(o) = s.hold.take() {
                    out[o] |= P_HOLD;
                }
            }
            e if e == Ev::IoBegin as i8 => s.io = Some(i),
            e if e == Ev::IoEnd as i8 => s.io_done = s.io.take(),
            e if e == Ev::CallBegin as i8 => s.call = Some(i),
            e if e == Ev::CallEnd as i8 => {
                if let Some(o) = s.call.take() {
                    out[o] |= P_CALL;
                }
            }
            e if e == Ev::SwitchWait as i8 => s.switch = Some(i),
            e if e == Ev::SwitchDone as i8 => {
                if let Some(o) = s.switch.take() {
                    out[o] |= P_SWITCH;
                }
            }
            _ => {}
        }
    }
    out
}

struct RunState<'a> {
    r: &'a RunLog<'a>,
    idx: usize,
    pos: usize,
    paired: Vec<u8>,
    open: Vec<Open>,
    waiters: i64,
    waiters_seen: bool,
    cpu: Option<i64>,
    /// 0 before the window, 1 in it, 2 after.
    phase: u8,
    name0: u32,
    uuid: Uuids,
}

impl RunState<'_> {
    fn track(&self, k: usize) -> u64 {
        self.uuid.first + k as u64
    }
}

fn check_run(r: &RunLog) -> Result<(), TraceError> {
    let n = r.t.len();
    if [r.thread.len(), r.cpu.len(), r.event.len(), r.arg.len()]
        .iter()
        .any(|&k| k != n)
    {
        return Err(TraceError::Input(
            "event columns of different lengths".into(),
        ));
    }
    // A thread's tid in the trace is `pid << 16` + its index + 1.
    if r.labels.len() != r.names.len() || r.labels.len() > 65_000 {
        return Err(TraceError::Input(format!(
            "{} thread labels and {} names: one each per thread, at most 65 000",
            r.labels.len(),
            r.names.len()
        )));
    }
    if let Some(&k) = r.thread.iter().find(|&&k| k as usize >= r.labels.len()) {
        return Err(TraceError::Input(format!(
            "thread {k}: the run has {} threads",
            r.labels.len()
        )));
    }
    if let Some(&e) = r
        .event
        .iter()
        .find(|&&e| e < 0 || e as usize >= crate::log::EVENT_NAMES.len())
    {
        return Err(TraceError::Input(format!(
            "event code {e} is not one of the log's"
        )));
    }
    if r.t.windows(2).any(|w| w[1] < w[0]) {
        return Err(TraceError::Input(
            "the event log is not in time order".into(),
        ));
    }
    if r.t.first().is_some_and(|&t| t + r.shift < 0) || r.shift < 0 {
        return Err(TraceError::Input("times must not be negative".into()));
    }
    Ok(())
}

/// Write `runs` (one process each) as a native Perfetto trace to `w`, keeping the window
/// `[lo, hi]` of each run's own time; returns the bytes written.
pub fn write_runs<W: Write>(w: W, runs: &[RunLog], lo: i64, hi: i64) -> Result<u64, TraceError> {
    if lo < 0 || hi < lo {
        return Err(TraceError::Input(format!(
            "window [{lo}, {hi}]: need 0 <= lo <= hi"
        )));
    }
    runs.iter().try_for_each(check_run)?;
    let mut names: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    names.extend(crate::log::IO_OP_NAMES.iter().map(|s| s.to_string()));
    let instant0 = names.len() as u32;
    names.extend(
        INSTANTS
            .iter()
            .map(|e| crate::log::EVENT_NAMES[*e as usize].to_string()),
    );
    let mut st: Vec<RunState> = Vec::with_capacity(runs.len());
    let mut last_uuid = 0;
    for (idx, r) in runs.iter().enumerate() {
        let uuid = Uuids::after(last_uuid, r.labels.len());
        last_uuid = uuid.process;
        let name0 = names.len() as u32;
        names.extend(r.names.iter().cloned());
        let paired = paired_rows(r);
        st.push(RunState {
            r,
            idx,
            pos: 0,
            paired,
            open: vec![Open::default(); r.labels.len()],
            waiters: 0,
            waiters_seen: false,
            cpu: None,
            phase: 0,
            name0,
            uuid,
        });
    }
    let mut o = Out {
        w,
        packet: Vec::with_capacity(256),
        inner: Vec::with_capacity(64),
        deep: Vec::with_capacity(64),
        frame: Vec::with_capacity(16),
        written: 0,
        last_t: vec![0; runs.len()],
        default_track: st.iter().map(|s| s.uuid.gil).collect(),
    };
    for s in &st {
        preamble(&mut o, &names, s)?;
    }
    loop {
        // The next thing in time: a run's window opening (before its events at lo), one of
        // its events, or its window closing (after its events at hi).
        let mut best: Option<(i64, u8, usize)> = None;
        for (j, s) in st.iter().enumerate() {
            let r = s.r;
            let cand = match s.phase {
                0 => {
                    let te = r.t.get(s.pos).copied();
                    match te {
                        Some(t) if t < lo => Some((t + r.shift, 1, j)),
                        _ => Some((lo + r.shift, 0, j)),
                    }
                }
                1 => match r.t.get(s.pos).copied() {
                    Some(t) if t <= hi => Some((t + r.shift, 1, j)),
                    _ => Some((hi.max(lo) + r.shift, 2, j)),
                },
                _ => None,
            };
            if let Some(c) = cand {
                if best.is_none_or(|b| (c.0, c.1) < (b.0, b.1)) {
                    best = Some(c);
                }
            }
        }
        let Some((t, what, j)) = best else { break };
        match what {
            0 => open_window(&mut o, &mut st[j], t)?,
            2 => close_window(&mut o, &mut st[j], t)?,
            _ => {
                let s = &mut st[j];
                let i = s.pos;
                s.pos += 1;
                step(&mut o, s, i, t, instant0)?;
            }
        }
    }
    o.w.flush()?;
    Ok(o.written)
}

/// Run `s`'s sequence opens: the clock and defaults, the interned names, its track
/// descriptors.
fn preamble<W: Write>(o: &mut Out<W>, names: &[String], s: &RunState) -> io::Result<()> {
    let (r, u, seq) = (s.r, s.uuid, s.idx as u64 + 1);
    {
        let (p, a, b) = (&mut o.packet, &mut o.inner, &mut o.deep);
        uint(p, P_SEQ_ID, seq);
        uint(p, P_SEQ_FLAGS, SEQ_CLEARED);
        a.clear();
        for (id, incremental) in [(BOOTTIME, false), (OUR_CLOCK, true)] {
            message(a, CS_CLOCKS, b, |m| {
                uint(m, CLOCK_ID, id);
                uint(m, CLOCK_TIMESTAMP, 0);
                if incremental {
                    uint(m, CLOCK_INCREMENTAL, 1);
                }
            });
        }
        bytes(p, P_CLOCK_SNAPSHOT, a);
        message(p, P_DEFAULTS, a, |m| {
            uint(m, DEFAULTS_CLOCK_ID, OUR_CLOCK);
            message(m, DEFAULTS_TRACK_EVENT, b, |d| {
                uint(d, TED_TRACK, u.gil);
                uint(d, TED_EXTRA_COUNTERS, u.waiters);
                uint(d, TED_EXTRA_COUNTERS, u.cpu);
            });
        });
    }
    o.flush_packet()?;
    {
        let (p, a, b) = (&mut o.packet, &mut o.inner, &mut o.deep);
        uint(p, P_SEQ_ID, seq);
        a.clear();
        for (i, n) in names.iter().enumerate() {
            message(a, ID_EVENT_NAMES, b, |m| {
                uint(m, EN_IID, i as u64 + 1);
                bytes(m, EN_NAME, n.as_bytes());
            });
        }
        bytes(p, P_INTERNED, a);
    }
    o.flush_packet()?;
    let pid = s.idx as i64 + 1;
    descriptor(o, seq, u.process, 0, |a, m| {
        message(a, TD_PROCESS, m, |m| {
            int(m, PD_PID, pid);
            bytes(m, PD_NAME, r.title.as_bytes());
        })
    })?;
    descriptor(o, seq, u.gil, u.process, |a, _| bytes(a, TD_NAME, b"GIL"))?;
    for (k, label) in r.labels.iter().enumerate() {
        descriptor(o, seq, s.track(k), u.process, |a, m| {
            message(a, TD_THREAD, m, |m| {
                int(m, THD_PID, pid);
                int(m, THD_TID, (pid << 16) + k as i64 + 1);
                bytes(m, THD_NAME, label.as_bytes());
            })
        })?;
    }
    for (uuid, name) in [(u.waiters, "GIL waiters"), (u.cpu, "holder's CPU")] {
        descriptor(o, seq, uuid, u.process, |a, m| {
            bytes(a, TD_NAME, name.as_bytes());
            message(a, TD_COUNTER, m, |_| {});
        })?;
    }
    Ok(())
}

fn descriptor<W: Write>(
    o: &mut Out<W>,
    seq: u64,
    uuid: u64,
    parent: u64,
    body: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>),
) -> io::Result<()> {
    let (p, a, b) = (&mut o.packet, &mut o.inner, &mut o.deep);
    uint(p, P_SEQ_ID, seq);
    a.clear();
    uint(a, TD_UUID, uuid);
    if parent != 0 {
        uint(a, TD_PARENT, parent);
    }
    body(a, b);
    bytes(p, P_TRACK_DESCRIPTOR, a);
    o.flush_packet()
}

/// A hold begins (`SLICE_BEGIN`, carrying the counters `extra`) or ends (`SLICE_END`) at `t`:
/// its slice on the GIL track (named after its holder, `holder`; drawn unless the run has no
/// GIL) around its slice on the thread's track `k`.
fn hold<W: Write>(
    o: &mut Out<W>,
    s: &RunState,
    t: i64,
    kind: u64,
    k: usize,
    extra: &[i64],
) -> io::Result<()> {
    let (seq, gil, track) = (s.idx, s.uuid.gil, s.track(k));
    if kind == SLICE_BEGIN {
        if s.r.gil_track {
            o.event(
                seq,
                t,
                SLICE_BEGIN,
                gil,
                Some(s.name0 + k as u32),
                None,
                extra,
            )?;
            o.event(seq, t, SLICE_BEGIN, track, Some(HOLD), None, &[])
        } else {
            o.event(seq, t, SLICE_BEGIN, track, Some(HOLD), None, extra)
        }
    } else {
        o.event(seq, t, SLICE_END, track, None, None, &[])?;
        if s.r.gil_track {
            o.event(seq, t, SLICE_END, gil, None, None, &[])?;
        }
        Ok(())
    }
}

/// The counters' levels at `t` as counter events of their own (`waiters` and `cpu`, where
/// given), for a change that no slice carries.
fn counters<W: Write>(
    o: &mut Out<W>,
    s: &RunState,
    t: i64,
    waiters: Option<i64>,
    cpu: Option<i64>,
) -> io::Result<()> {
    if let Some(w) = waiters {
        o.event(s.idx, t, COUNTER, s.uuid.waiters, None, Some(w), &[])?;
    }
    if let Some(c) = cpu {
        o.event(s.idx, t, COUNTER, s.uuid.cpu, None, Some(c), &[])?;
    }
    Ok(())
}

/// The window opens at `t`: every slice open since before it begins there, outermost first,
/// and the counters show their level.
fn open_window<W: Write>(o: &mut Out<W>, s: &mut RunState, t: i64) -> io::Result<()> {
    s.phase = 1;
    for k in 0..s.open.len() {
        let (track, op, seq) = (s.track(k), s.open[k].clone(), s.idx);
        if op.hold.is_some() {
            hold(o, s, t, SLICE_BEGIN, k, &[])?;
        }
        if op.wait.is_some() {
            o.event(seq, t, SLICE_BEGIN, track, Some(WAIT), None, &[])?;
        }
        if let Some((_, n)) = op.io {
            o.event(seq, t, SLICE_BEGIN, track, Some(n), None, &[])?;
        }
        if op.switch.is_some() {
            o.event(seq, t, SLICE_BEGIN, track, Some(SWITCH), None, &[])?;
        }
        if op.call.is_some() {
            o.event(seq, t, SLICE_BEGIN, track, Some(CALL), None, &[])?;
        }
    }
    counters(o, s, t, s.waiters_seen.then_some(s.waiters), s.cpu)
}

/// The window closes at `t`: every open slice ends there, innermost first.
fn close_window<W: Write>(o: &mut Out<W>, s: &mut RunState, t: i64) -> io::Result<()> {
    s.phase = 2;
    for k in 0..s.open.len() {
        let (track, op) = (s.track(k), std::mem::take(&mut s.open[k]));
        // One end for each slice begun, the innermost (a held call) first.
        let open = [
            op.call.is_some(),
            op.switch.is_some(),
            op.io.is_some(),
            op.wait.is_some(),
            op.hold.is_some(),
        ];
        for _ in open.iter().filter(|&&x| x) {
            o.event(s.idx, t, SLICE_END, track, None, None, &[])?;
        }
        if op.hold.is_some() && s.r.gil_track {
            o.event(s.idx, t, SLICE_END, s.uuid.gil, None, None, &[])?;
        }
    }
    Ok(())
}

/// Event `i` of the run, at trace time `t`: its state changes, and, inside the window, its
/// packets.
fn step<W: Write>(
    o: &mut Out<W>,
    s: &mut RunState,
    i: usize,
    t: i64,
    instant0: u32,
) -> io::Result<()> {
    let r = s.r;
    let (k, e) = (r.thread[i] as usize, r.event[i]);
    let inside = s.phase == 1;
    let (track, seq, pr) = (s.track(k), s.idx, s.paired[i]);
    macro_rules! begin {
        ($slot:ident, $val:expr, $name:expr, $on:expr) => {
            if $on {
                s.open[k].$slot = Some($val);
                if inside {
                    o.event(seq, t, SLICE_BEGIN, track, Some($name), None, &[])?;
                }
            }
        };
    }
    macro_rules! end {
        ($slot:ident) => {
            if s.open[k].$slot.take().is_some() && inside {
                o.event(seq, t, SLICE_END, track, None, None, &[])?;
            }
        };
    }
    match e {
        x if x == Ev::Request as i8 => {
            s.waiters += 1;
            s.waiters_seen = true;
            let w = s.waiters;
            if pr & P_WAIT != 0 {
                s.open[k].wait = Some(t);
                if inside {
                    o.event(seq, t, SLICE_BEGIN, track, Some(WAIT), None, &[w])?;
                }
            } else if inside {
                counters(o, s, t, Some(w), None)?;
            }
        }
        x if x == Ev::Acquire as i8 => {
            end!(wait);
            s.waiters -= 1;
            s.waiters_seen = true;
            let c = r.cpu[i] as i64;
            s.cpu = Some(c);
            let extra = [s.waiters, c];
            if pr & P_HOLD != 0 {
                s.open[k].hold = Some(t);
                if inside {
                    hold(o, s, t, SLICE_BEGIN, k, &extra)?;
                }
            } else if inside {
                counters(o, s, t, Some(extra[0]), Some(c))?;
            }
        }
        x if x == Ev::Release as i8 => {
            if s.open[k].hold.take().is_some() && inside {
                hold(o, s, t, SLICE_END, k, &[])?;
            }
        }
        x if x == Ev::IoBegin as i8 => {
            let n = FIXED.len() as u32
                + r.arg[i].clamp(0, crate::log::IO_OP_NAMES.len() as i64 - 1) as u32;
            begin!(io, (t, n), n, pr & P_IO != 0);
        }
        x if x == Ev::IoEnd as i8 => end!(io),
        x if x == Ev::CallBegin as i8 => begin!(call, t, CALL, pr & P_CALL != 0),
        x if x == Ev::CallEnd as i8 => end!(call),
        x if x == Ev::SwitchWait as i8 => begin!(switch, t, SWITCH, pr & P_SWITCH != 0),
        x if x == Ev::SwitchDone as i8 => end!(switch),
        _ => {
            if inside {
                if let Some(j) = INSTANTS.iter().position(|&v| v as i8 == e) {
                    o.event(seq, t, INSTANT, track, Some(instant0 + j as u32), None, &[])?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal reader of one message level: (field, varint or length, bytes).
    fn fields(mut b: &[u8]) -> Vec<(u32, u64, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let read = |b: &mut &[u8]| {
            let (mut v, mut s) = (0u64, 0);
            loop {
                let x = b[0];
                *b = &b[1..];
                v |= ((x & 0x7f) as u64) << s;
                s += 7;
                if x < 0x80 {
                    return v;
                }
            }
        };
        while !b.is_empty() {
            let k = read(&mut b);
            let (field, wire) = ((k >> 3) as u32, k & 7);
            let v = read(&mut b);
            if wire == 2 {
                let (m, rest) = b.split_at(v as usize);
                out.push((field, v, Some(m.to_vec())));
                b = rest;
            } else {
                out.push((field, v, None));
            }
        }
        out
    }

    /// (t, type, track uuid, name iid) of every track event of a one-run trace, with the
    /// defaults applied: an event with no track is on the GIL track, and each extra counter
    /// value is read as a counter event of its own after the event that carries it. Checks
    /// that every packet is on sequence 1 and that events do not ask for incremental state.
    fn events(buf: &[u8]) -> Vec<(u64, u64, u64, Option<u64>)> {
        let (mut t, mut gil, mut extra_tracks) = (0, 0, Vec::new());
        let mut out = Vec::new();
        for (_, _, m) in fields(buf) {
            let p = fields(&m.unwrap());
            assert_eq!(p.iter().find(|f| f.0 == P_SEQ_ID).unwrap().1, 1);
            if let Some(d) = p.iter().find(|f| f.0 == P_DEFAULTS) {
                let d = fields(d.2.as_ref().unwrap());
                let te = fields(
                    d.iter()
                        .find(|f| f.0 == DEFAULTS_TRACK_EVENT)
                        .unwrap()
                        .2
                        .as_ref()
                        .unwrap(),
                );
                gil = te.iter().find(|f| f.0 == TED_TRACK).unwrap().1;
                extra_tracks = te
                    .iter()
                    .filter(|f| f.0 == TED_EXTRA_COUNTERS)
                    .map(|f| f.1)
                    .collect();
            }
            let Some(te) = p.iter().find(|f| f.0 == P_TRACK_EVENT) else {
                continue;
            };
            assert!(p.iter().all(|f| f.0 != P_SEQ_FLAGS));
            t += p.iter().find(|f| f.0 == P_TIMESTAMP).unwrap().1;
            let ev = fields(te.2.as_ref().unwrap());
            let get = |f: u32| ev.iter().find(|x| x.0 == f).map(|x| x.1);
            out.push((
                t,
                get(TE_TYPE).unwrap(),
                get(TE_TRACK).unwrap_or(gil),
                get(TE_NAME_IID),
            ));
            let extra = ev.iter().filter(|x| x.0 == TE_EXTRA_VALUES);
            for (k, _) in extra.enumerate() {
                out.push((t, COUNTER, extra_tracks[k], None));
            }
        }
        out
    }

    fn one_thread(ev: &[(i64, Ev)]) -> (Vec<i64>, Vec<i8>) {
        (
            ev.iter().map(|e| e.0).collect(),
            ev.iter().map(|e| e.1 as i8).collect(),
        )
    }

    #[test]
    fn slices_nest_cut_off_pairs_are_left_out_and_the_window_cuts() {
        use Ev::*;
        let (t, e) = one_thread(&[
            (0, Start),
            (10, Request),
            (20, Acquire),
            (30, CallBegin),
            (40, CallEnd),
            (50, Release),
            (60, Request), // never acquired: no wait slice
            (70, Exit),
        ]);
        let n = t.len();
        let labels = vec!["a (core 0)".to_string()];
        let names = vec!["a".to_string()];
        let run = RunLog {
            title: "t",
            labels: &labels,
            names: &names,
            t: &t,
            thread: &vec![0; n],
            cpu: &vec![3; n],
            event: &e,
            arg: &vec![0; n],
            shift: 0,
            gil_track: true,
        };
        let mut buf = Vec::new();
        write_runs(&mut buf, std::slice::from_ref(&run), 0, 100).unwrap();
        // One thread: its track is uuid 1, then the GIL, waiters, CPU and process.
        let (th, gil, w, c) = (1, 2, 3, 4);
        let a =
            FIXED.len() as u64 + crate::log::IO_OP_NAMES.len() as u64 + INSTANTS.len() as u64 + 1;
        assert_eq!(
            events(&buf),
            vec![
                (10, SLICE_BEGIN, th, Some(WAIT as u64 + 1)),
                (10, COUNTER, w, None), // carried by the wait's begin
                (20, SLICE_END, th, None),
                (20, SLICE_BEGIN, gil, Some(a)),
                (20, COUNTER, w, None), // carried by the GIL slice's begin
                (20, COUNTER, c, None),
                (20, SLICE_BEGIN, th, Some(HOLD as u64 + 1)),
                (30, SLICE_BEGIN, th, Some(CALL as u64 + 1)),
                (40, SLICE_END, th, None),
                (50, SLICE_END, th, None),
                (50, SLICE_END, gil, None),
                (60, COUNTER, w, None),
            ]
        );
        // The window [25, 45]: the hold and the GIL slice begin at 25, the call inside them.
        let mut buf = Vec::new();
        write_runs(&mut buf, std::slice::from_ref(&run), 25, 45).unwrap();
        let ev = events(&buf);
        assert_eq!(
            &ev[..3],
            &[
                (25, SLICE_BEGIN, gil, Some(a)),
                (25, SLICE_BEGIN, th, Some(HOLD as u64 + 1)),
                (25, COUNTER, w, None)
            ]
        );
        assert_eq!(ev.last().unwrap(), &(45, SLICE_END, gil, None));
        assert!(ev.iter().all(|x| (25..=45).contains(&x.0)));
        let begins = ev.iter().filter(|x| x.1 == SLICE_BEGIN).count();
        assert_eq!(begins, ev.iter().filter(|x| x.1 == SLICE_END).count());
    }

    #[test]
    fn bad_input_is_refused() {
        let labels = vec!["a".to_string()];
        let run = RunLog {
            title: "t",
            labels: &labels,
            names: &labels,
            t: &[5, 4],
            thread: &[0, 0],
            cpu: &[0, 0],
            event: &[0, 1],
            arg: &[0, 0],
            shift: 0,
            gil_track: true,
        };
        let e = write_runs(Vec::new(), &[run], 0, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("time order"), "{e}");
        let run = RunLog {
            t: &[4, 5],
            thread: &[0, 1],
            ..run
        };
        let e = write_runs(Vec::new(), &[run], 0, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("thread 1"), "{e}");
    }
}
