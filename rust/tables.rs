//! Column-wise forms of a run's per-thread results and round trips, for export.

use crate::engine::{IoLog, ThreadStats};
use crate::prim::counts::CALL_NAMES;

/// One column of a small table.
pub enum Column {
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    OptStr(Vec<Option<String>>),
}

/// The `threads` table, one row per scenario thread, as named columns.
pub fn thread_columns(ts: &[ThreadStats]) -> Vec<(String, Column)> {
    let u = |f: &dyn Fn(&ThreadStats) -> u64| Column::U64(ts.iter().map(f).collect());
    let i = |f: &dyn Fn(&ThreadStats) -> i64| Column::I64(ts.iter().map(f).collect());
    let mut cols: Vec<(String, Column)> = vec![
        ("thread".into(), Column::I64(Vec::new())),
        (
            "name".into(),
            Column::Str(ts.iter().map(|t| t.name.clone()).collect()),
        ),
        // The one core the thread could run on; -1 when its mask held several (pin_threads off).
        (
            "core".into(),
            i(&|t| match t.affinity[..] {
                [c] => c as i64,
                _ => -1,
            }),
        ),
        (
            "affinity".into(),
            Column::Str(
                ts.iter()
                    .map(|t| {
                        let v: Vec<String> = t.affinity.iter().map(|c| c.to_string()).collect();
                        v.join(",")
                    })
                    .collect(),
            ),
        ),
        ("cpu_seen".into(), i(&|t| t.cpu_seen as i64)),
        ("ticks".into(), u(&|t| t.ticks)),
        ("hold_ns".into(), i(&|t| t.gil.hold_ns)),
        ("wait_ns".into(), i(&|t| t.gil.wait_ns)),
        ("acquisitions".into(), u(&|t| t.gil.acquisitions)),
        ("switches_in".into(), u(&|t| t.gil.switches_in)),
        ("futile_wakeups".into(), u(&|t| t.gil.futile_wakeups)),
        ("timeouts".into(), u(&|t| t.gil.timeouts)),
        ("drop_requests".into(), u(&|t| t.gil.drop_requests)),
        ("forced_drops".into(), u(&|t| t.gil.forced_drops)),
        ("switch_waits".into(), u(&|t| t.gil.switch_waits)),
        ("voluntary_ctx_switches".into(), u(&|t| t.nvcsw)),
        ("involuntary_ctx_switches".into(), u(&|t| t.nivcsw)),
        ("utime_ns".into(), i(&|t| t.utime_ns)),
        ("stime_ns".into(), i(&|t| t.stime_ns)),
        ("start_ns".into(), i(&|t| t.start_ns)),
        ("exit_ns".into(), i(&|t| t.exit_ns)),
        (
            "stopped".into(),
            Column::Bool(ts.iter().map(|t| t.stopped).collect()),
        ),
        ("events".into(), u(&|t| t.events)),
        ("events_dropped".into(), u(&|t| t.events_dropped)),
        ("bytes_sent".into(), u(&|t| t.bytes_sent)),
        ("bytes_received".into(), u(&|t| t.bytes_received)),
        ("peer_reads".into(), u(&|t| t.peer_reads)),
    ];
    cols[0].1 = Column::I64((0..ts.len() as i64).collect());
    for (k, name) in CALL_NAMES.iter().enumerate() {
        cols.push((
            name.to_string(),
            Column::U64(ts.iter().map(|t| t.prim.calls[k]).collect()),
        ));
    }
    cols.push((
        "error".into(),
        Column::OptStr(ts.iter().map(|t| t.error.clone()).collect()),
    ));
    cols
}

/// The `io` table (driver round trips), as named columns; consumes the log.
pub fn io_columns(io: IoLog) -> Vec<(String, Column)> {
    vec![
        (
            "thread".into(),
            Column::I64(io.thread.into_iter().map(i64::from).collect()),
        ),
        ("sent_ns".into(), Column::I64(io.sent_ns)),
        ("rtt_ns".into(), Column::I64(io.rtt_ns)),
    ]
}
