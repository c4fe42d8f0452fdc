//! The run report: the output of a run once every thread has been joined (its merged event
//! log, `threads` rows, round trips and `meta`), and, when the run was halted, the message that
//! says why (the watchdog's picture of every thread, or the event budget's counts).

use super::controller::Watched;
use super::{Ended, IoLog, RunError, RunOutput, Setup, Shared, StoppedBy, ThreadStats};
use crate::beacon::{self, Seen, GIL_HOLDING};
use crate::clock::now_ns;
use crate::host;
use crate::log::{EventBuf, Events};
use crate::scenario::{max_events_allowed, Overflow, PolicySpec, Scenario, EVENT_BYTES};
use std::sync::atomic::Ordering::Relaxed;

/// What the run produced; [`RunError::Halted`] (with it) when the watchdog or the event
/// budget stopped it, [`RunError::Failed`] when a thread failed (unless the run was aborted).
pub(super) fn output<G>(
    setup: &Setup,
    sh: &Shared<G>,
    ended: Ended,
) -> Result<RunOutput, RunError> {
    let sc = setup.sc;
    let Ended {
        workers,
        pings,
        watched,
    } = ended;
    let t0 = sh.t0.load(Relaxed);
    let (mut stats, bufs): (Vec<ThreadStats>, Vec<EventBuf>) = workers.into_iter().unzip();
    for st in &mut stats {
        st.start_ns -= t0;
        st.exit_ns -= t0;
    }
    let failed = stats
        .iter()
        .find_map(|s| s.error.as_ref().map(|e| (&s.name, e)));
    if let Some((name, e)) = failed {
        if !watched.aborted {
            return Err(RunError::Failed(format!("thread {name:?} failed: {e}")));
        }
    }
    let truncated = stats.iter().any(|s| s.events_dropped > 0);
    let stopped_by = StoppedBy::from_u8(sh.stopped_by.load(Relaxed));
    // The reports need the per-thread buffers, before the merge consumes them.
    let halted = if stopped_by == StoppedBy::Watchdog && !watched.aborted {
        let (at, seen) = watched
            .hung
            .as_ref()
            .expect("the watchdog recorded what it saw");
        Some((
            StoppedBy::Watchdog,
            watchdog_report(sc, &stats, &bufs, t0, *at, seen),
        ))
    } else if sc.on_overflow == Overflow::Error && truncated && !watched.aborted {
        Some((StoppedBy::EventBudget, budget_report(sc, &stats, &bufs, t0)))
    } else {
        None
    };
    let merge_start = now_ns();
    let events = Events::merge(bufs, t0);
    let merge_ns = now_ns() - merge_start;
    let mut io = IoLog::default();
    for end in pings {
        stats[end.thread].peer_reads = end.reads;
        for p in end.pings {
            io.thread.push(end.thread as u16);
            io.sent_ns.push(p.sent_ns);
            io.rtt_ns.push(p.rtt_ns);
        }
    }
    let meta = meta(setup, sh, &stats, &watched, stopped_by, merge_ns);
    let output = RunOutput {
        events,
        threads: stats,
        io,
        meta,
        aborted: watched.aborted,
    };
    match halted {
        Some((reason, message)) => Err(RunError::Halted {
            reason,
            message,
            output: Box::new(output),
        }),
        None => Ok(output),
    }
}

/// The run's `meta`: the scenario, the placement, how and when it ended, the calibration, the
/// event budget, the host (docs/design.md §4).
fn meta<G>(
    setup: &Setup,
    sh: &Shared<G>,
    stats: &[ThreadStats],
    watched: &Watched,
    stopped_by: StoppedBy,
    merge_ns: i64,
) -> serde_json::Value {
    let (sc, pl, cal) = (setup.sc, &setup.pl, &setup.cal);
    let end_ns = stats.iter().map(|s| s.exit_ns).max().unwrap_or(0);
    let elapsed_ns = match stopped_by {
        StoppedBy::AllDone => end_ns,
        _ => sh.stop_at.load(Relaxed) - sh.t0.load(Relaxed),
    };
    let (locks, queues) = sh.objects.meta();
    serde_json::json!({
        "scenario": sc.name,
        "gil": sc.gil,
        "threads": sc.threads.len(),
        "cores": pl.cores,
        "thread_cores": pl.thread_cores,
        "pin_threads": sc.pin_threads,
        "return_cost": sc.return_cost,
        "stop": { "thread": sc.stop.thread, "duration_s": sc.stop.duration_s },
        "stopped_by": stopped_by.name(),
        "elapsed_ns": elapsed_ns,
        "end_ns": end_ns,
        "switches": sh.instr.switches(),
        "tick_ns": sc.tick_ns,
        "spin": { "iters_per_tick": setup.iters_per_tick,
                  "tick_cost_ns": cal.tick_cost_ns(setup.iters_per_tick),
                  "overhead_ns": cal.overhead_ns, "ns_per_iter": cal.ns_per_iter,
                  "calibrated_s_ago": setup.cal_age_s },
        "log": sc.log,
        "max_events": sc.max_events,
        "on_overflow": sc.on_overflow.name(),
        "events_truncated": stats.iter().any(|s| s.events_dropped > 0),
        "events_dropped": stats.iter().map(|s| s.events_dropped).sum::<u64>(),
        "watchdog_s": sc.watchdog_s(),
        "watchdog_default": sc.watchdog_s.is_none(),
        "merge_ns": merge_ns,
        "aborted": watched.aborted,
        "host": host::info(),
        "version": env!("CARGO_PKG_VERSION"),
        "scenario_spec": sc,
        "locks": locks,
        "queues": queues,
        "signals": sc.signals.iter().zip(&watched.signals_sent).map(|(s, sent)| serde_json::json!({
            "at_us": s.at_us, "signum": s.signum, "sent_ns": sent,
        })).collect::<Vec<_>>(),
    })
}

/// The last `k` events of a buffer stored before time `until` (absolute ns), in words.
fn last_events(buf: &EventBuf, t0: i64, until: i64, k: usize) -> String {
    if buf.is_empty() && buf.dropped == 0 {
        return "none".into();
    }
    let end = buf.t_ns.partition_point(|&t| t <= until);
    let mut v: Vec<String> = (end.saturating_sub(k)..end)
        .map(|i| {
            let name = crate::log::EVENT_NAMES
                .get(buf.event[i] as usize)
                .copied()
                .unwrap_or("?");
            format!(
                "{:.6} s {name}({})",
                (buf.t_ns[i] - t0) as f64 * 1e-9,
                buf.arg[i]
            )
        })
        .collect();
    if buf.dropped > 0 && buf.first_drop_ns <= until {
        v.push(format!(
            "then {} events not stored (max_events)",
            buf.dropped
        ));
    }
    v.join(", ")
}

/// What the watchdog saw at time `at`: who held the GIL, what each thread was doing, and its
/// last events.
fn watchdog_report(
    sc: &Scenario,
    stats: &[ThreadStats],
    bufs: &[EventBuf],
    t0: i64,
    at: i64,
    seen: &[Seen],
) -> String {
    let names: Vec<String> = sc.threads.iter().map(|t| t.name.clone()).collect();
    let queues: Vec<String> = sc.queues.iter().map(|q| q.name.clone()).collect();
    let words = beacon::Names {
        threads: &names,
        locks: &sc.locks,
        queues: &queues,
    };
    let holders: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.gil == GIL_HOLDING)
        .map(|(i, _)| format!("{:?} (thread {i})", names[i]))
        .collect();
    let holder = match (holders.len(), &sc.gil) {
        (0, _) => "no thread held the GIL".to_string(),
        (_, PolicySpec::NoGil(_)) => {
            format!("no GIL (policy nogil); running: {}", holders.join(", "))
        }
        (1, _) => format!("the GIL was held by {}", holders[0]),
        _ => format!("the GIL was held by {} (?)", holders.join(" and ")),
    };
    let mut m = format!(
        "watchdog: no thread made progress for {:.3} s (watchdog_s={}{}), so the run was \
         stopped at {:.3} s; {holder}.",
        sc.watchdog_s(),
        sc.watchdog_s(),
        if sc.watchdog_s.is_none() {
            ", the default"
        } else {
            ""
        },
        (at - t0) as f64 * 1e-9,
    );
    for (i, s) in seen.iter().enumerate() {
        let last = if sc.log {
            last_events(&bufs[i], t0, at, 5)
        } else {
            "not logged (log=False)".into()
        };
        m.push_str(&format!(
            "\n  {:?} (thread {i}): {}; last events: {last}",
            stats[i].name,
            beacon::describe(*s, &words)
        ));
    }
    m.push_str(
        "\nA thread that legitimately goes longer without progress (a long sleep, a slow \
         peer) needs a larger watchdog_s.",
    );
    m
}

/// Which thread filled its share of the event budget first, the counts, and what to do.
fn budget_report(sc: &Scenario, stats: &[ThreadStats], bufs: &[EventBuf], t0: i64) -> String {
    let n = stats.len() as u64;
    let first = bufs
        .iter()
        .enumerate()
        .filter(|(_, b)| b.dropped > 0)
        .min_by_key(|(_, b)| b.first_drop_ns)
        .map(|(i, b)| (i, b.first_drop_ns));
    let stored: u64 = stats.iter().map(|s| s.events).sum();
    let dropped: u64 = stats.iter().map(|s| s.events_dropped).sum();
    let (who, at) = match first {
        Some((i, t)) => (
            format!("thread {:?}", stats[i].name),
            (t - t0) as f64 * 1e-9,
        ),
        None => ("a thread".into(), 0.0),
    };
    format!(
        "event budget exceeded: {who} filled its share of max_events={} ({} events for each of \
         {n} threads) at {at:.3} s, so the run was stopped (on_overflow=\"error\"); {} events \
         were reached: {stored} stored, {dropped} counted but not stored. Raise max_events (at \
         most {} on this machine: half its memory at {EVENT_BYTES} bytes an event), log fewer \
         events (a shorter run, log=False), or give on_overflow=\"truncate\" to keep each \
         thread's first events and let the run go on.",
        sc.max_events,
        sc.max_events / n,
        stored + dropped,
        max_events_allowed(host::memory_bytes()),
    )
}
