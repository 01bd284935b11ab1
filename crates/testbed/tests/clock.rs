//! "Now" comes from Graph's clock (issue 13): a host clock ahead of Graph's never moves the
//! checkpoint into Graph's future, and a checkpoint in the future fails the run with both times
//! and the fix. The skewed clock is real: `serve` runs under libfaketime.

use std::path::Path;
use std::time::Duration;

use entra_export::job::JobKind;
use graph_sim::{Lateness, SimConfig};
use testbed::e2e::{AMPLE, assert_exactly_once, checkpoint, env, scenario, tick};
use testbed::{Serve, Stack, StackOptions};
use time::OffsetDateTime;

/// libfaketime from Debian's `faketime` package (installed by `.ci/run`).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

#[tokio::test]
async fn a_checkpoint_in_the_future_fails_the_run_with_both_times_and_the_fix() {
    let sim = SimConfig {
        seed: 31,
        history: Duration::from_secs(3600),
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[("INITIAL_LOOKBACK", "1h"), ("QUERY_LAG", "0s")]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let future = entra_export::timestamp::truncate_to_ticks(
        OffsetDateTime::now_utc() + time::Duration::hours(3),
    );
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);
    storage.ensure_container(&container).await.unwrap();
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    let last_run = entra_export::storage::LastRun {
        run_id: "set-by-test".into(),
        finished_at: OffsetDateTime::now_utc(),
        outcome: "complete".into(),
        records_written: 0,
        report_json: "{}".into(),
    };
    storage
        .write_checkpoint(&container, &lock, Some(future), &last_run)
        .await
        .unwrap();
    lock.release().await.unwrap();

    let reply = tick(&serve, JobKind::Audit).await;
    assert_eq!(reply.status, 500);
    let report = reply.report().unwrap();
    assert_eq!(report["outcome"], "failed", "{report}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("is ahead of the time now"), "{reason}");
    assert!(
        reason.contains(&entra_export::timestamp::format(future)),
        "{reason}"
    );
    assert!(reason.contains("by Graph's clock"), "{reason}");
    assert!(reason.contains("checkpoint set"), "{reason}");
    // Never "complete with zero slices", and the checkpoint is left for the operator.
    assert_eq!(checkpoint(&stack, JobKind::Audit).await, Some(future));
}

#[tokio::test]
async fn a_host_clock_two_hours_ahead_of_graph_loses_nothing() {
    if !Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{LIBFAKETIME} is missing: .ci/run installs Debian's faketime package"
        );
        eprintln!("skipped: {LIBFAKETIME} is not installed (apt-get install faketime)");
        return;
    }
    // Live arrivals up to 20 s late; the replay window is one minute.
    let sim = SimConfig {
        seed: 32,
        history: Duration::from_secs(3600),
        audit_per_hour: 1200,
        lateness: Lateness::Uniform {
            min: Duration::ZERO,
            max: Duration::from_secs(20),
        },
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let options = StackOptions {
        sim,
        env: env(&[
            ("INITIAL_LOOKBACK", "3h"),
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "60s"),
            ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ]),
    };
    let Some(stack) = Stack::start(options).await.unwrap() else {
        return;
    };
    let skewed = stack.env_with(&[
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME", "+2h"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("FAKETIME_NO_CACHE", "1"),
    ]);
    let serve = Serve::spawn(&skewed).await.unwrap();
    let mut first_start = None;
    let mut last_started = OffsetDateTime::now_utc();
    for _ in 0..4 {
        last_started = OffsetDateTime::now_utc();
        let reply = tick(&serve, JobKind::Audit).await;
        let report = reply.report().unwrap();
        assert_eq!(report["outcome"], "complete", "{report}\n{}", serve.logs());
        first_start.get_or_insert_with(|| {
            entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap()
        });
        let stored = checkpoint(&stack, JobKind::Audit).await.unwrap();
        assert!(
            stored <= OffsetDateTime::now_utc(),
            "the checkpoint {stored} is in Graph's future"
        );
        tokio::time::sleep(Duration::from_secs(8)).await;
    }
    assert!(
        serve.logs().contains("runs ahead of Graph's"),
        "the skew is not reported"
    );
    let end = checkpoint(&stack, JobKind::Audit).await.unwrap();
    assert_exactly_once(
        &stack,
        JobKind::Audit,
        first_start.unwrap(),
        end,
        last_started,
    )
    .await;
}
