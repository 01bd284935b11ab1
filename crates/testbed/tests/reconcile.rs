//! The reconciliation sweep, end to end (real `serve`, the Graph simulator publishing a tenth of
//! its records long after their time, Azurite): records published after the replay window has
//! passed them are written once, by the sweep, and counted in the reports.

use std::collections::HashMap;
use std::time::Duration;

use entra_export::job::JobKind;
use graph_sim::{Lateness, SimConfig};
use testbed::e2e::{
    AMPLE, CLASSIC, assert_exactly_once, checkpoint, env, resource, scenario, tick,
};
use time::OffsetDateTime;

/// The tail's delay: far beyond the 3 s replay window.
const TAIL: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(20));

#[tokio::test]
async fn records_published_after_the_replay_window_are_caught_once_by_the_sweep() {
    // 360,000 sign-ins and 36,000 audit records an hour (a mid-size tenant), generated for 2
    // minutes of history and 40 s of live traffic; 10 % of them published 10-20 s after their
    // time, the rest within a second.
    let live = Duration::from_secs(40);
    let sim = SimConfig {
        seed: 31,
        history: Duration::from_secs(120),
        live_for: live,
        audit_per_hour: 36_000,
        signin_per_hour: 360_000,
        lateness: Lateness::Mixed {
            percent: 10,
            late: Box::new(Lateness::Uniform {
                min: TAIL.0,
                max: TAIL.1,
            }),
            otherwise: Box::new(Lateness::Uniform {
                min: Duration::ZERO,
                max: Duration::from_secs(1),
            }),
        },
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "5m"),
        ("QUERY_LAG", "0s"),
        ("REPLAY_WINDOW", "3s"),
        ("ACCEPT_LATE_RECORD_LOSS", "true"),
        ("RECONCILE_INTERVAL", "8s"),
        ("RECONCILE_WINDOW", "1h"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let sim_start = OffsetDateTime::now_utc();
    let mut first_start = HashMap::new();
    let mut reconciled: HashMap<JobKind, u64> = HashMap::new();
    let mut written: HashMap<JobKind, u64> = HashMap::new();
    let mut sweeps_done: HashMap<JobKind, u64> = HashMap::new();
    // Ticks every 4 s while the tail is published, then until a sweep that began after the
    // last tail record became visible has covered everything before the replay window.
    let quiet_from = sim_start + live + TAIL.1 + Duration::from_secs(2);
    let mut swept_after_quiet: HashMap<JobKind, bool> = HashMap::new();
    let mut rounds = 0;
    while CLASSIC
        .iter()
        .any(|k| !swept_after_quiet.get(k).copied().unwrap_or(false))
    {
        rounds += 1;
        assert!(
            rounds < 60,
            "no sweep covered the quiet period\n{}",
            serve.logs()
        );
        let round_start = OffsetDateTime::now_utc();
        for kind in CLASSIC {
            let reply = tick(&serve, kind).await;
            assert_eq!(reply.outcome(), "complete", "{}", serve.logs());
            let report = reply.report().unwrap();
            first_start.entry(kind).or_insert_with(|| {
                entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap()
            });
            *reconciled.entry(kind).or_default() += report["records_reconciled"].as_u64().unwrap();
            *written.entry(kind).or_default() += report["records_written"].as_u64().unwrap();
            if let Some(sweep) = report.get("reconcile") {
                assert!(sweep["error"].is_null(), "{report}");
                if sweep["done"] == true {
                    *sweeps_done.entry(kind).or_default() += 1;
                    if round_start > quiet_from {
                        swept_after_quiet.insert(kind, true);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let now = OffsetDateTime::now_utc();
    for kind in CLASSIC {
        let end = checkpoint(&stack, kind).await.unwrap();
        let landed = assert_exactly_once(&stack, kind, first_start[&kind], end, now).await;
        // Every record written is counted once across the reports.
        assert_eq!(written[&kind], landed.records as u64, "{kind}");
        // The tail: records of the live period published at least 10 s late. The main runs
        // (every 4 s, replaying 3 s) pass them before they appear; the sweep catches them.
        let tail = stack
            .sim
            .truth(resource(kind), first_start[&kind], end)
            .into_iter()
            .filter(|r| r.time >= sim_start && r.visible_at - r.time >= TAIL.0)
            .count() as u64;
        let caught = reconciled[&kind];
        assert!(tail > 20, "{kind}: the scenario has a tail of only {tail}");
        assert!(
            caught * 10 >= tail * 8,
            "{kind}: the sweep caught {caught} of a tail of {tail}\n{}",
            serve.logs()
        );
        assert!(sweeps_done[&kind] >= 2, "{kind}: {sweeps_done:?}");
    }
}
