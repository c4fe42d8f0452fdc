//! End-to-end runs of the engine: log invariants on every policy.

use super::*;
use crate::gil::{IntervalConfig, LockKind, TickConfig};
use crate::log::Ev;
use crate::scenario::{Op, Overflow, PeerSpec, PolicySpec, StopSpec, ThreadSpec};

fn cpu(name: &str, ticks: u64) -> ThreadSpec {
    ThreadSpec {
        name: name.into(),
        program: vec![Op::Cpu { ticks }],
        core: None,
        peer: None,
    }
}

fn endless(name: &str) -> ThreadSpec {
    ThreadSpec {
        name: name.into(),
        program: vec![Op::Loop {
            times: None,
            body: vec![Op::Cpu { ticks: 1000 }],
        }],
        core: None,
        peer: None,
    }
}

/// Thread "io" looping over `body` forever, next to a driver that sends `pings` 8-byte pings
/// 1 ms apart and waits for an 8-byte reply to each.
fn driven(body: Vec<Op>, pings: u64) -> ThreadSpec {
    ThreadSpec {
        name: "io".into(),
        program: vec![Op::Loop { times: None, body }],
        core: None,
        peer: Some(PeerSpec::Driver {
            pings,
            gap_us: 1000,
            bytes: 8,
            reply_bytes: 8,
            core: None,
        }),
    }
}

fn scenario(gil: PolicySpec, threads: Vec<ThreadSpec>) -> Scenario {
    Scenario {
        name: "test".into(),
        gil,
        threads,
        cores: vec![],
        stop: StopSpec::default(),
        tick_ns: 50.0,
        log: true,
        max_events: 4_000_000,
        on_overflow: Overflow::Truncate,
        watchdog_s: None,
        signals: vec![],
        pin_threads: true,
    }
}

fn policies() -> Vec<PolicySpec> {
    vec![
        PolicySpec::Tick(TickConfig {
            check_interval: 100,
            lock: LockKind::Sem,
        }),
        PolicySpec::Tick(TickConfig {
            check_interval: 100,
            lock: LockKind::MutexCond,
        }),
        PolicySpec::Interval(IntervalConfig {
            interval_us: 500,
            ..Default::default()
        }),
        PolicySpec::Interval(IntervalConfig {
            interval_us: 500,
            force_switching: false,
            ..Default::default()
        }),
        PolicySpec::Interval(IntervalConfig {
            interval_us: 500,
            dedupe_drop_request: false,
            ..Default::default()
        }),
    ]
}

fn count(out: &RunOutput, thread: u16, ev: Ev) -> u64 {
    out.events
        .thread
        .iter()
        .zip(&out.events.event)
        .filter(|&(&t, &e)| t == thread && e == ev as i8)
        .count() as u64
}

/// The invariants every run of every policy must keep.
fn check_invariants(out: &RunOutput) {
    let e = &out.events;
    let n = out.threads.len();
    let mut holder: Option<u16> = None;
    let mut last_t = vec![i64::MIN; n];
    let mut state = vec![0u8; n]; // 0 idle, 1 requested, 2 holding
    for i in 0..e.len() {
        let (t, th, ev) = (e.t_ns[i], e.thread[i], e.event[i]);
        assert!(t >= last_t[th as usize], "time goes back for thread {th}");
        last_t[th as usize] = t;
        let s = &mut state[th as usize];
        if ev == Ev::Request as i8 {
            assert_eq!(*s, 0);
            *s = 1;
        } else if ev == Ev::Acquire as i8 {
            assert_eq!(*s, 1, "acquire without request (thread {th}, event {i})");
            assert!(
                holder.is_none(),
                "thread {th} acquires while {holder:?} holds (event {i})"
            );
            holder = Some(th);
            *s = 2;
        } else if ev == Ev::Release as i8 {
            assert_eq!(*s, 2);
            assert_eq!(holder, Some(th));
            holder = None;
            *s = 0;
        }
    }
    assert!(holder.is_none());
    for (k, st) in out.threads.iter().enumerate() {
        let k = k as u16;
        assert_eq!(
            st.gil.acquisitions,
            count(out, k, Ev::Acquire),
            "{}",
            st.name
        );
        assert_eq!(st.gil.drop_requests, count(out, k, Ev::DropRequest));
        assert_eq!(st.gil.forced_drops, count(out, k, Ev::ForcedDrop));
        assert_eq!(st.gil.timeouts, count(out, k, Ev::Timeout));
        assert_eq!(st.events_dropped, 0);
    }
}

#[test]
fn cpu_pair_keeps_invariants_on_every_policy() {
    for p in policies() {
        let out = run(
            &scenario(p.clone(), vec![cpu("a", 200_000), cpu("b", 200_000)]),
            &mut || false,
        )
        .unwrap();
        check_invariants(&out);
        assert!(out.threads.iter().all(|t| t.ticks == 200_000), "{p:?}");
        assert_eq!(out.meta["stopped_by"], "all_done");
    }
}

/// `meta["gil"]` is the policy as the scenario gives it (its serde form), which Python reads
/// by key (`policy`, `lock`, ...).
#[test]
fn meta_names_the_policy_and_its_knobs() {
    let sc = scenario(policies().swap_remove(1), vec![cpu("a", 1000)]);
    let out = run(&sc, &mut || false).unwrap();
    assert_eq!(
        out.meta["gil"],
        serde_json::json!({"policy": "tick", "check_interval": 100, "lock": "mutex_cond"})
    );
}

#[test]
fn three_threads_with_io_keep_invariants() {
    for p in policies() {
        let mut io = cpu("io", 1);
        io.program = vec![Op::Loop {
            // Few sends: next to a spinner the tick GIL, and the interval GIL without
            // FORCE_SWITCHING, starve this thread (each send can cost tens of ms).
            times: Some(20),
            body: vec![Op::Send { bytes: 512 }, Op::Cpu { ticks: 20 }],
        }];
        io.peer = Some(PeerSpec::Drain { core: None });
        let mut sleeper = cpu("sleeper", 1);
        sleeper.program = vec![Op::Loop {
            times: Some(20),
            body: vec![Op::Sleep { us: 200 }, Op::Cpu { ticks: 100 }],
        }];
        let mut joiner = cpu("joiner", 10);
        joiner.program.push(Op::Join {
            thread: "io".into(),
        });
        let mut sc = scenario(p.clone(), vec![endless("spin"), io, sleeper, joiner]);
        sc.stop.thread = Some("joiner".into());
        let out = run(&sc, &mut || false).unwrap();
        check_invariants(&out);
        assert_eq!(out.threads[1].bytes_sent, 20 * 512, "{p:?}");
        assert_eq!(out.meta["stopped_by"], "thread");
        assert!(
            out.threads[0].stopped,
            "the spinner is stopped, not finished"
        );
    }
}

#[test]
fn dedupe_keeps_waiters_from_rearming_after_a_switch() {
    // With the switch_number check on, a drop request is only set by a waiter whose wait saw
    // no switch: its saved switch number equals the switch count at that moment.
    let p = PolicySpec::Interval(IntervalConfig {
        interval_us: 300,
        ..Default::default()
    });
    let out = run(
        &scenario(
            p,
            vec![cpu("a", 400_000), cpu("b", 400_000), cpu("c", 400_000)],
        ),
        &mut || false,
    )
    .unwrap();
    let e = &out.events;
    let mut switches = 0i64;
    let mut requests = 0;
    for i in 0..e.len() {
        if e.event[i] == Ev::Acquire as i8 {
            switches = e.arg[i];
        } else if e.event[i] == Ev::DropRequest as i8 {
            assert_eq!(
                e.arg[i], switches,
                "drop request from a waiter that missed a switch"
            );
            requests += 1;
        }
    }
    assert!(requests > 0);
}

#[test]
fn duration_stop_and_abort_end_endless_runs() {
    let mut sc = scenario(
        PolicySpec::Tick(TickConfig::default()),
        vec![endless("a"), endless("b")],
    );
    sc.stop.duration_s = Some(0.05);
    let out = run(&sc, &mut || false).unwrap();
    assert_eq!(out.meta["stopped_by"], "duration");
    let el = out.meta["elapsed_ns"].as_i64().unwrap();
    assert!((50_000_000..200_000_000).contains(&el), "{el}");

    sc.stop.duration_s = Some(100.0);
    let t = now_ns();
    let mut polls = 0;
    let out = run(&sc, &mut || {
        polls += 1;
        polls > 3
    })
    .unwrap();
    assert!(out.aborted);
    assert!(now_ns() - t < 1_000_000_000);
}

#[test]
fn driver_round_trips_are_recorded() {
    let io = driven(vec![Op::Recv { bytes: 8 }, Op::Send { bytes: 8 }], 20);
    let mut sc = scenario(PolicySpec::Interval(IntervalConfig::default()), vec![io]);
    sc.stop.thread = Some("io".into());
    let out = run(&sc, &mut || false).unwrap();
    assert_eq!(out.io.rtt_ns.len(), 20);
    assert!(
        !out.threads[0].stopped,
        "the io thread ends at the driver's end of stream"
    );
}

#[test]
fn logging_off_keeps_counters() {
    let mut sc = scenario(
        PolicySpec::Tick(TickConfig::default()),
        vec![cpu("a", 100_000), cpu("b", 100_000)],
    );
    sc.log = false;
    let out = run(&sc, &mut || false).unwrap();
    assert!(out.events.is_empty());
    assert!(out.threads.iter().all(|t| t.gil.acquisitions > 900));
}

#[test]
fn small_budget_truncates_and_says_so() {
    let mut sc = scenario(
        PolicySpec::Tick(TickConfig::default()),
        vec![cpu("a", 200_000), cpu("b", 200_000)],
    );
    sc.max_events = 1000;
    let out = run(&sc, &mut || false).unwrap();
    assert_eq!(out.events.len(), 1000);
    assert_eq!(out.meta["events_truncated"], true);
    assert_eq!(out.meta["on_overflow"], "truncate");
    assert!(out.meta["events_dropped"].as_u64().unwrap() > 0);
}

/// Run a scenario that must be halted; returns the reason, message, output and wall time.
fn halted(sc: &Scenario) -> (StoppedBy, String, RunOutput, f64) {
    let t = now_ns();
    match run(sc, &mut || false) {
        Err(RunError::Halted {
            reason,
            message,
            output,
        }) => (reason, message, *output, (now_ns() - t) as f64 * 1e-9),
        Err(e) => panic!("expected a halted run, got the error {e}"),
        Ok(out) => panic!(
            "expected a halted run, it ended: {}",
            out.meta["stopped_by"]
        ),
    }
}

#[test]
fn watchdog_stops_a_holder_that_hangs() {
    // "holder" takes the GIL and hangs (the test-only op); "w" waits for the GIL, and under
    // the interval GIL keeps timing out and setting drop requests: events, but no progress.
    for p in [
        PolicySpec::Interval(IntervalConfig {
            interval_us: 500,
            ..Default::default()
        }),
        PolicySpec::Tick(TickConfig::default()),
    ] {
        let mut holder = cpu("holder", 10);
        holder.program.push(Op::Hang);
        let mut sc = scenario(p.clone(), vec![holder, cpu("w", 1000)]);
        // w sleeps first so that the holder surely takes the GIL first (2 ms was once too
        // little when the other tests' threads loaded both cores).
        sc.threads[1].program.insert(0, Op::Sleep { us: 50_000 });
        sc.watchdog_s = Some(0.3);
        let (why, msg, out, wall) = halted(&sc);
        assert_eq!(why, StoppedBy::Watchdog);
        assert!(wall < 0.3 + 0.5, "{wall} s");
        assert_eq!(out.meta["stopped_by"], "watchdog");
        assert!(msg.contains(r#"held by "holder" (thread 0)"#), "{msg}");
        assert!(msg.contains("holds the GIL, in _hang"), "{msg}");
        assert!(
            msg.contains(r#""w" (thread 1): waiting for the GIL"#),
            "{msg}"
        );
        assert!(msg.contains(" s acquire("), "last events listed: {msg}");
        check_invariants(&out);
        assert!(out.threads.iter().all(|t| t.stopped), "{p:?}");
        if matches!(p, PolicySpec::Interval(_)) {
            assert!(out.threads[1].gil.timeouts > 10, "the waiter kept logging");
        }
    }
}

#[test]
fn watchdog_stops_a_real_deadlock() {
    // The driver waits for a reply the thread never sends; the thread waits for the next
    // ping. Nothing in the scenario language forbids it.
    let io = driven(vec![Op::Recv { bytes: 8 }, Op::Cpu { ticks: 10 }], 5);
    let mut joiner = cpu("joiner", 10);
    joiner.program.push(Op::Join {
        thread: "io".into(),
    });
    let mut sc = scenario(
        PolicySpec::Interval(IntervalConfig::default()),
        vec![io, joiner],
    );
    sc.watchdog_s = Some(0.2);
    let (why, msg, out, wall) = halted(&sc);
    assert_eq!(why, StoppedBy::Watchdog);
    assert!(wall < 0.2 + 0.5, "{wall} s");
    assert!(msg.contains("no thread held the GIL"), "{msg}");
    assert!(msg.contains("blocked in recv(8 bytes)"), "{msg}");
    assert!(msg.contains(r#"waiting in join("io")"#), "{msg}");
    check_invariants(&out);
}

#[test]
fn watchdog_counts_check_points_of_a_lone_cpu_op() {
    // One thread, one long cpu op, no contention: no event for the whole op, yet progress.
    let mut sc = scenario(
        PolicySpec::Interval(IntervalConfig::default()),
        vec![cpu("a", 6_000_000)],
    );
    sc.watchdog_s = Some(0.05);
    let out = run(&sc, &mut || false).unwrap();
    assert!(out.meta["elapsed_ns"].as_i64().unwrap() > 150_000_000);
    assert_eq!(out.meta["watchdog_s"], 0.05);
    assert_eq!(out.events.len(), 5, "start request acquire release exit");
}

#[test]
fn event_budget_error_stops_the_run() {
    let mut sc = scenario(
        PolicySpec::Tick(TickConfig::default()),
        vec![endless("a"), endless("b")],
    );
    sc.stop.duration_s = Some(30.0);
    sc.max_events = 1000;
    sc.on_overflow = Overflow::Error;
    let (why, msg, out, wall) = halted(&sc);
    assert_eq!(why, StoppedBy::EventBudget);
    assert!(wall < 1.0, "{wall} s");
    assert_eq!(out.meta["stopped_by"], "event_budget");
    assert_eq!(out.meta["on_overflow"], "error");
    // The thread that filled its share (500) stored all of it; the other was stopped early.
    assert!(out.events.len() <= 1000);
    assert!(out
        .threads
        .iter()
        .any(|t| t.events == 500 && t.events_dropped > 0));
    assert!(
        msg.contains("max_events=1000") && msg.contains("Raise max_events"),
        "{msg}"
    );
    assert!(out.meta["events_dropped"].as_u64().unwrap() > 0);
}

#[test]
fn pinning_is_what_the_kernel_reports() {
    let allowed = affinity::allowed_cores();
    let mut sc = scenario(
        PolicySpec::Interval(IntervalConfig::default()),
        vec![cpu("a", 1000), cpu("b", 1000)],
    );
    let out = run(&sc, &mut || false).unwrap();
    for (t, core) in out
        .threads
        .iter()
        .zip(out.meta["thread_cores"].as_array().unwrap())
    {
        assert_eq!(
            t.affinity,
            vec![core.as_u64().unwrap() as usize],
            "pinned to its one core"
        );
    }
    sc.pin_threads = false;
    let out = run(&sc, &mut || false).unwrap();
    for t in &out.threads {
        assert_eq!(t.affinity, allowed, "unpinned: every core of the scenario");
    }
    assert_eq!(out.meta["pin_threads"], false);
}
