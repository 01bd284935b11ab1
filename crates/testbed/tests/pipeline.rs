//! End to end: the real `serve` process over the custom-handler protocol, the Graph simulator
//! over HTTP and Azurite through the real SDK; what landed is compared with the simulator's truth.

use std::time::Duration;

use entra_export::job::JobKind;
use graph_sim::{Fault, FaultKind, Lateness, Resource, SimConfig, Throttle};
use testbed::e2e::{
    AMPLE, CLASSIC, assert_both_exactly_once, assert_exactly_once, both_complete, checkpoint, env,
    scenario, tick,
};
use testbed::verify::landed;
use testbed::{HostReply, Serve, Stack, StackOptions, admin_payload, timer_payload};
use time::OffsetDateTime;

#[tokio::test]
async fn a_first_run_backfills_several_days_exactly_once() {
    let sim = SimConfig {
        seed: 1,
        history: Duration::from_secs(3 * 86_400),
        audit_per_hour: 40,
        signin_per_hour: 150,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "3d"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let sim = SimConfig {
        throttle: AMPLE,
        ..sim
    };
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let started = OffsetDateTime::now_utc();
    for kind in CLASSIC {
        let reply = tick(&serve, kind).await;
        assert_eq!(reply.status, 200, "{}", serve.logs());
        let report = reply.report().unwrap();
        assert_eq!(report["outcome"], "complete", "{report}");
        // Requests are spent on data: about one per page of records, not one per hour.
        let records = report["records_fetched"].as_u64().unwrap();
        let minimum = records.div_ceil(1000);
        assert!(
            report["requests"].as_u64().unwrap() <= 2 * minimum + 2,
            "{minimum} pages of data: {report}"
        );
        assert_eq!(report["throttled"], 0, "{report}");
        let end = checkpoint(&stack, kind)
            .await
            .expect("the checkpoint was written");
        // Graph's `Date` has whole seconds: the checkpoint may stop up to a second early.
        assert!(
            end <= OffsetDateTime::now_utc() && end >= started - time::Duration::seconds(2),
            "checkpoint {end}"
        );
        let start =
            entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap();
        assert!(end - start > time::Duration::days(3) - time::Duration::minutes(1));
        let landed = assert_exactly_once(&stack, kind, start, end, started).await;
        assert_eq!(
            report["records_written"].as_u64().unwrap() as usize,
            landed.records,
            "{report}"
        );
    }
    // Sign-in records are personal data; tokens and keys are secrets: none reach the logs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = serve.logs();
    assert!(
        logs.contains("run report"),
        "the run report line is missing: {logs}"
    );
    for leak in [
        "@contoso.example",
        "sim-secret",
        "Bearer ",
        "sig=",
        testbed::stack::AZURITE_KEY,
        "userPrincipalName",
        "ipAddress",
    ] {
        assert!(!logs.contains(leak), "the service logged `{leak}`");
    }
}

#[tokio::test]
async fn repeated_runs_with_late_arrivals_lose_nothing_and_duplicate_nothing() {
    let sim = SimConfig {
        seed: 2,
        history: Duration::from_secs(2 * 3600),
        audit_per_hour: 600,
        signin_per_hour: 1800,
        lateness: Lateness::Uniform {
            min: Duration::ZERO,
            max: Duration::from_secs(12),
        },
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "2h"),
        ("QUERY_LAG", "0s"),
        ("REPLAY_WINDOW", "30s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let mut first_start = std::collections::HashMap::new();
    let mut late = 0;
    let mut last_started = OffsetDateTime::now_utc();
    for _ in 0..6 {
        last_started = OffsetDateTime::now_utc();
        for kind in CLASSIC {
            let reply = tick(&serve, kind).await;
            assert_eq!(reply.outcome(), "complete", "{}", serve.logs());
            let report = reply.report().unwrap();
            late += report["late_records"].as_u64().unwrap();
            // The first run starts INITIAL_LOOKBACK before its own start.
            first_start.entry(kind).or_insert_with(|| {
                entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap()
            });
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert!(late > 0, "the scenario produced no late arrival");
    for kind in CLASSIC {
        let end = checkpoint(&stack, kind).await.unwrap();
        assert_exactly_once(&stack, kind, first_start[&kind], end, last_started).await;
    }
}

#[tokio::test]
async fn injected_faults_are_survived_with_the_full_result() {
    let faults = vec![
        Fault::new(FaultKind::Status(503)).first(3),
        Fault::new(FaultKind::Status(500))
            .on(Resource::SignIns)
            .first(2),
        Fault::new(FaultKind::Status(504))
            .on(Resource::DirectoryAudits)
            .first(2),
        Fault::new(FaultKind::TruncatedBody).first(2),
        Fault::new(FaultKind::DropConnection).first(2),
        Fault::new(FaultKind::ExpiredToken).first(1),
        Fault::new(FaultKind::ExpiredSkiptoken).first(1),
    ];
    let sim = SimConfig {
        seed: 3,
        history: Duration::from_secs(4 * 3600),
        audit_per_hour: 300,
        signin_per_hour: 900,
        throttle: AMPLE,
        faults,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "4h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("GRAPH_PAGE_SIZE", "200"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let started = OffsetDateTime::now_utc();
    let (audit, signin) = both_complete(&serve).await;
    let report = |r: &HostReply, field: &str| r.report().unwrap()[field].as_u64().unwrap();
    assert!(
        report(&audit, "retries") + report(&signin, "retries") >= 8,
        "{:?} {:?}",
        audit.report(),
        signin.report()
    );
    assert!(report(&audit, "window_restarts") + report(&signin, "window_restarts") >= 1);
    assert!(stack.sim.counters().faults_injected >= 13);
    assert_both_exactly_once(&stack, time::Duration::hours(4), started).await;
}

#[tokio::test]
async fn a_page_budget_smaller_than_a_page_serialises_pages_without_deadlock() {
    // 8 slices per job, both jobs at once, and a page budget (the minimum, 256 KiB) that admits
    // one 200-record page at a time: every slice must still finish, exactly once, with window
    // restarts and retries in the mix; and no blob may span pages although a blob may hold
    // 1000 records.
    let sim = SimConfig {
        seed: 13,
        history: Duration::from_secs(4 * 3600),
        audit_per_hour: 600,
        signin_per_hour: 1500,
        throttle: AMPLE,
        faults: vec![
            Fault::new(FaultKind::ExpiredSkiptoken).first(2),
            Fault::new(FaultKind::TruncatedBody).first(2),
        ],
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "4h"),
        ("QUERY_LAG", "0s"),
        ("SLICE_WIDTH", "15m"),
        ("PARALLEL_SLICES", "8"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("GRAPH_PAGE_SIZE", "200"),
        ("GRAPH_PAGE_BUFFER", "256KiB"),
        ("MAX_RECORDS_PER_BLOB", "1000"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let started = OffsetDateTime::now_utc();
    let (audit, signin) = tokio::time::timeout(Duration::from_secs(120), both_complete(&serve))
        .await
        .unwrap_or_else(|_| panic!("the runs did not finish: {}", serve.logs()));
    for reply in [&audit, &signin] {
        let report = reply.report().unwrap();
        assert!(report["pages"].as_u64().unwrap() > 10, "{report}");
    }
    assert!(stack.sim.counters().faults_injected >= 4);
    assert_both_exactly_once(&stack, time::Duration::hours(4), started).await;
    for kind in CLASSIC {
        let storage = stack.storage().await.unwrap();
        let landed = landed(&storage, &stack.container(kind)).await.unwrap();
        assert!(
            landed.largest_blob <= 200,
            "{kind}: a blob holds {} records, more than one 200-record page",
            landed.largest_blob
        );
    }
}

#[tokio::test]
async fn throttling_by_graph_is_honoured_and_survived() {
    let sim = SimConfig {
        seed: 9,
        history: Duration::from_secs(4 * 3600),
        audit_per_hour: 300,
        signin_per_hour: 900,
        throttle: Some(Throttle {
            requests: 10,
            per: Duration::from_secs(10),
        }),
        retry_after_style: graph_sim::RetryAfterStyle::Integer,
        ..SimConfig::default()
    };
    // The service believes it may send 40 per 10 s; the simulator allows 10, so it throttles.
    let env = env(&[
        ("INITIAL_LOOKBACK", "4h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "40"),
        ("GRAPH_PAGE_SIZE", "500"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let started = OffsetDateTime::now_utc();
    let (audit, signin) = both_complete(&serve).await;
    let counters = stack.sim.counters();
    assert!(
        counters.throttled > 0,
        "the scenario provoked no 429: {counters:?}"
    );
    let reported = audit.report().unwrap()["throttled"].as_u64().unwrap()
        + signin.report().unwrap()["throttled"].as_u64().unwrap();
    assert_eq!(
        reported, counters.throttled,
        "the run reports count every 429"
    );
    // Requests already in flight when a 429 is answered reach the simulator inside the
    // Retry-After period and are counted there; that no request *starts* inside it is shown by
    // the Graph client's tests. Here the bound is the slices in flight.
    assert!(counters.retry_after_ignored <= 16, "{counters:?}");
    assert_both_exactly_once(&stack, time::Duration::hours(4), started).await;
}

#[tokio::test]
async fn a_run_cut_by_the_time_budget_resumes_where_it_stopped() {
    // Far more pages than one run can fetch: each run stops after its budget, keeps how far
    // every window got, and the next run goes on from there.
    let sim = SimConfig {
        seed: 4,
        history: Duration::from_secs(30 * 3600),
        audit_per_hour: 2000,
        page_latency: Duration::from_millis(1000),
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "1d"),
        ("QUERY_LAG", "0s"),
        ("REPLAY_WINDOW", "10m"),
        ("RUN_TIME_BUDGET", "3s"),
        ("GRAPH_PAGE_SIZE", "500"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let first = tick(&serve, JobKind::Audit).await;
    let report = first.report().unwrap();
    assert_eq!(report["outcome"], "partial", "{report}");
    assert!(
        report["reason"].as_str().unwrap().contains("will resume"),
        "{report}"
    );
    let range_start =
        entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap();
    let mut previous = checkpoint(&stack, JobKind::Audit).await;
    assert!(
        previous.is_some(),
        "a run that stored pages moves the checkpoint"
    );
    let mut started = OffsetDateTime::now_utc();
    let mut outcome = String::new();
    let (mut runs, mut moved) = (0, 0);
    for _ in 0..40 {
        started = OffsetDateTime::now_utc();
        let reply = tick(&serve, JobKind::Audit).await;
        outcome = reply.outcome();
        let now = checkpoint(&stack, JobKind::Audit).await;
        assert!(
            now >= previous,
            "the checkpoint went back: {previous:?} -> {now:?}"
        );
        runs += 1;
        if now > previous {
            moved += 1;
        }
        let report = reply.report().unwrap();
        assert_eq!(report["made_progress"], now > previous, "{report}");
        previous = now;
        if outcome == "complete" {
            break;
        }
    }
    assert_eq!(outcome, "complete", "the backlog never completed");
    assert!(runs >= 3, "the scenario fits in too few runs: {runs}");
    assert!(
        moved * 10 >= runs * 8,
        "the checkpoint moved on {moved} of {runs} runs"
    );
    let end = previous.unwrap();
    assert_exactly_once(&stack, JobKind::Audit, range_start, end, started).await;
}

#[tokio::test]
async fn a_process_killed_mid_run_loses_nothing() {
    let sim = SimConfig {
        seed: 5,
        history: Duration::from_secs(12 * 3600),
        audit_per_hour: 200,
        page_latency: Duration::from_millis(150),
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "12h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "20"),
        ("GRAPH_PAGE_SIZE", "50"),
        ("MAX_RECORDS_PER_BLOB", "50"),
        ("LOCK_LEASE", "15s"),
    ]);
    let Some(stack) = Stack::start(StackOptions { sim, env }).await.unwrap() else {
        return;
    };
    let range_start =
        OffsetDateTime::now_utc() - time::Duration::hours(12) - time::Duration::hours(1);
    for kill_after_ms in [700u64, 1900, 3100] {
        let mut serve = Serve::spawn(&stack.env()).await.unwrap();
        let function = "AuditTimer";
        let payload = admin_payload(function);
        let run = serve.invoke(function, &payload);
        tokio::select! {
            reply = run => panic!("the run ended before it was killed: {:?}", reply.map(|r| r.outcome())),
            _ = tokio::time::sleep(Duration::from_millis(kill_after_ms)) => {}
        }
        serve.kill().await.unwrap();
        // The killed run's lease lapses by itself (15 s here, 60 s in production).
        tokio::time::sleep(Duration::from_secs(16)).await;
    }
    let serve = Serve::spawn(&stack.env()).await.unwrap();
    let started = OffsetDateTime::now_utc();
    let reply = tick(&serve, JobKind::Audit).await;
    assert_eq!(reply.outcome(), "complete", "{}", serve.logs());
    let end = checkpoint(&stack, JobKind::Audit).await.unwrap();
    let storage = stack.storage().await.unwrap();
    let landed = landed(&storage, &stack.container(JobKind::Audit))
        .await
        .unwrap();
    let must: Vec<_> = stack
        .sim
        .truth(Resource::DirectoryAudits, range_start, end)
        .into_iter()
        .filter(|r| r.visible_at <= started)
        .collect();
    let missing = landed.missing(must.iter().map(|r| r.id.as_str()));
    assert!(
        missing.is_empty(),
        "{} records lost after kills",
        missing.len()
    );
}

#[tokio::test]
async fn a_manual_and_a_scheduled_run_of_one_job_at_once_one_skips() {
    let sim = SimConfig {
        seed: 6,
        history: Duration::from_secs(3 * 3600),
        page_latency: Duration::from_millis(1200),
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "3h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let Some(stack) = Stack::start(StackOptions { sim, env }).await.unwrap() else {
        return;
    };
    // Two instances of the Function App: only the storage lease can keep them apart.
    let instance_a = Serve::spawn(&stack.env()).await.unwrap();
    let instance_b = Serve::spawn(&stack.env()).await.unwrap();
    let scheduled_payload = timer_payload("SignInTimer", true, false);
    let manual_payload = admin_payload("SignInTimer");
    let (scheduled, manual) = tokio::join!(
        instance_a.invoke("SignInTimer", &scheduled_payload),
        async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            instance_b.invoke("SignInTimer", &manual_payload).await
        }
    );
    let (scheduled, manual) = (scheduled.unwrap(), manual.unwrap());
    assert_eq!((scheduled.status, manual.status), (200, 200));
    assert_eq!(scheduled.outcome(), "complete");
    assert_eq!(manual.outcome(), "skipped");
    assert_eq!(
        manual.report().unwrap()["reason"],
        "skipped: another run holds the lock"
    );
}

#[tokio::test]
async fn a_sign_in_job_failing_on_403_does_not_stop_the_audit_job() {
    let sim = SimConfig {
        seed: 7,
        history: Duration::from_secs(2 * 3600),
        faults: vec![Fault::new(FaultKind::LicenceForbidden).on(Resource::SignIns)],
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "2h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let (audit, signin) = tokio::join!(tick(&serve, JobKind::Audit), tick(&serve, JobKind::SignIn));
    assert_eq!(audit.status, 200);
    assert_eq!(audit.outcome(), "complete");
    assert_eq!(signin.status, 500);
    let reason = signin.report().unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("P1/P2"), "{reason}");
    // One window's licence retries tell; nothing else is asked of Graph for the job.
    let requests = signin.report().unwrap()["requests"].as_u64().unwrap();
    assert!(requests <= 3, "{requests} Graph requests for a 403 job");
    assert_eq!(
        checkpoint(&stack, JobKind::SignIn).await,
        None,
        "a failed first run must not write a checkpoint"
    );
    // A second run costs no more: the density learned is nothing, the plan one window.
    let again = tick(&serve, JobKind::SignIn).await;
    assert_eq!(again.status, 500);
    let report = again.report().unwrap();
    let requests = report["requests"].as_u64().unwrap();
    assert!(requests <= 3, "{requests} Graph requests for a 403 job");
    // Honest: two runs in a row made no progress, and the metadata says so for alerts.
    assert_eq!(report["made_progress"], false, "{report}");
    assert_eq!(report["runs_without_progress"], 2, "{report}");
    let stored = stack
        .storage()
        .await
        .unwrap()
        .read_checkpoint(&stack.container(JobKind::SignIn))
        .await
        .unwrap()
        .last_run
        .expect("a failed run records itself");
    assert_eq!(stored.outcome, "failed");
    assert!(stored.report_json.contains("\"runs_without_progress\":2"));
    assert!(
        serve.logs().contains("signin run failed"),
        "the failure must reach stderr"
    );
}

#[tokio::test]
async fn republished_records_are_skipped_unless_updates_are_wanted() {
    for republish_updates in [false, true] {
        let sim = SimConfig {
            seed: 8,
            history: Duration::from_secs(3600),
            signin_per_hour: 7200,
            republish_fraction: 0.5,
            republish_delay: Lateness::Uniform {
                min: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            lateness: Lateness::Fixed(Duration::ZERO),
            throttle: AMPLE,
            ..SimConfig::default()
        };
        let updates = republish_updates.to_string();
        let env = env(&[
            ("INITIAL_LOOKBACK", "1h"),
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "2h"),
            ("REPUBLISH_UPDATES", updates.as_str()),
            ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ]);
        let Some((stack, serve)) = scenario(sim, env).await else {
            return;
        };
        let mut updated = 0;
        let mut skipped = 0;
        for _ in 0..5 {
            let reply = tick(&serve, JobKind::SignIn).await;
            assert_eq!(reply.outcome(), "complete", "{}", serve.logs());
            let report = reply.report().unwrap();
            updated += report["records_updated"].as_u64().unwrap();
            skipped += report["records_skipped"].as_u64().unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let storage = stack.storage().await.unwrap();
        let landed = landed(&storage, &stack.container(JobKind::SignIn))
            .await
            .unwrap();
        let republished = stack
            .sim
            .truth(
                Resource::SignIns,
                OffsetDateTime::now_utc() - time::Duration::hours(3),
                OffsetDateTime::now_utc(),
            )
            .into_iter()
            .filter(|r| r.version > 0)
            .count();
        assert!(skipped > 0, "nothing was seen twice");
        if republish_updates {
            assert!(
                updated > 0 && republished > 0,
                "no updated version was written ({republished} republished)"
            );
            assert_eq!(
                landed.duplicates().len() as u64,
                updated,
                "each update is one more copy of its id"
            );
        } else {
            assert_eq!(updated, 0);
            assert!(
                landed.duplicates().is_empty(),
                "a republished record was written twice"
            );
        }
    }
}

#[tokio::test]
async fn a_failing_slice_holds_the_checkpoint_back_and_the_next_run_fills_the_gap() {
    // Every request whose window contains one poisoned instant fails, however narrow: the
    // window is split around it and given up; everything before it is stored and the
    // checkpoint stops just before it.
    let poison = OffsetDateTime::now_utc() - time::Duration::minutes(100);
    let sim = SimConfig {
        seed: 12,
        history: Duration::from_secs(5 * 3600),
        audit_per_hour: 120,
        throttle: AMPLE,
        faults: vec![
            Fault::new(FaultKind::Status(500))
                .on(Resource::DirectoryAudits)
                .covering(poison),
        ],
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "3h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("GRAPH_MAX_ATTEMPTS", "2"),
        ("GRAPH_MIN_WINDOW", "5m"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let failed = tick(&serve, JobKind::Audit).await;
    assert_eq!(failed.status, 500);
    let report = failed.report().unwrap();
    assert_eq!(report["outcome"], "failed", "{report}");
    assert!(report["windows_failed"].as_u64().unwrap() >= 1, "{report}");
    let range_start =
        entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap();
    let held = checkpoint(&stack, JobKind::Audit)
        .await
        .expect("the first slice completed");
    assert!(
        held <= poison && held >= poison - time::Duration::minutes(10),
        "the checkpoint should stop within one narrowest window before the poisoned instant {poison}: {held}"
    );
    // Everything before the checkpoint is stored.
    let storage = stack.storage().await.unwrap();
    let landed_now = landed(&storage, &stack.container(JobKind::Audit))
        .await
        .unwrap();
    let before = stack
        .sim
        .truth(Resource::DirectoryAudits, range_start, held);
    assert!(!before.is_empty());
    assert!(
        landed_now
            .missing(before.iter().map(|r| r.id.as_str()))
            .is_empty()
    );

    stack.sim.set_faults(Vec::new());
    let started = OffsetDateTime::now_utc();
    let recovered = tick(&serve, JobKind::Audit).await;
    assert_eq!(recovered.outcome(), "complete", "{}", serve.logs());
    let end = checkpoint(&stack, JobKind::Audit).await.unwrap();
    assert_exactly_once(&stack, JobKind::Audit, range_start, end, started).await;
}

#[tokio::test]
async fn a_run_killed_after_thousands_of_records_rewrites_at_most_the_pages_in_flight() {
    // Dense history, four lanes of 100-record pages: the run is killed once the container
    // holds at least 2,000 records, long before its first commit (a minute). Its successor
    // finds the ids in the journal and writes again at most the pages that were in flight.
    let sim = SimConfig {
        seed: 13,
        history: Duration::from_secs(6 * 3600),
        audit_per_hour: 3000,
        page_latency: Duration::from_millis(100),
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "6h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("GRAPH_PAGE_SIZE", "100"),
        ("PARALLEL_SLICES", "4"),
        ("LOCK_LEASE", "15s"),
    ]);
    let Some(stack) = Stack::start(StackOptions { sim, env }).await.unwrap() else {
        return;
    };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);
    let mut serve = Serve::spawn(&stack.env()).await.unwrap();
    let function = "AuditTimer";
    let payload = admin_payload(function);
    let run = serve.invoke(function, &payload);
    let watch = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(so_far) = landed(&storage, &container).await
                && so_far.records >= 2000
            {
                return so_far.records;
            }
        }
    };
    let stored_before_kill = tokio::select! {
        reply = run => panic!("the run ended before it was killed: {:?}", reply.map(|r| r.outcome())),
        stored = watch => stored,
    };
    serve.kill().await.unwrap();
    let written_by_the_kill = landed(&storage, &container).await.unwrap().records;
    // The killed run's lease lapses by itself (15 s here, 60 s in production).
    tokio::time::sleep(Duration::from_secs(16)).await;
    let serve = Serve::spawn(&stack.env()).await.unwrap();
    let started = OffsetDateTime::now_utc();
    let reply = tick(&serve, JobKind::Audit).await;
    let report = reply.report().unwrap();
    assert_eq!(report["outcome"], "complete", "{report}\n{}", serve.logs());
    assert!(
        serve.logs().contains("found in the journal"),
        "{}",
        serve.logs()
    );
    let end = checkpoint(&stack, JobKind::Audit).await.unwrap();
    let landed_now = landed(&storage, &container).await.unwrap();
    let must: Vec<_> = stack
        .sim
        .truth(
            Resource::DirectoryAudits,
            end - time::Duration::hours(6),
            end,
        )
        .into_iter()
        .filter(|r| r.visible_at <= started)
        .collect();
    let missing = landed_now.missing(must.iter().map(|r| r.id.as_str()));
    assert!(
        missing.is_empty(),
        "{} records lost after the kill",
        missing.len()
    );
    let duplicates = landed_now.duplicates().len();
    eprintln!(
        "killed after {stored_before_kill} records ({written_by_the_kill} stored at the kill): {duplicates} written twice"
    );
    assert!(
        duplicates <= 4 * 100,
        "{duplicates} records written twice after a kill; at most 4 lanes x 100 records were in flight"
    );
}

#[tokio::test]
async fn malformed_records_are_quarantined_and_the_job_moves_on() {
    let sim = SimConfig {
        seed: 14,
        history: Duration::from_secs(2 * 3600),
        signin_per_hour: 600,
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "2h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("GRAPH_PAGE_SIZE", "200"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let now = OffsetDateTime::now_utc();
    let at = |minutes: i64| entra_export::timestamp::format(now - time::Duration::minutes(minutes));
    let visible = now - time::Duration::seconds(1);
    let bad = [
        serde_json::json!({"createdDateTime": at(90), "userPrincipalName": "no-id@contoso.example"}),
        serde_json::json!({"id": "null-time", "createdDateTime": null}),
        serde_json::json!({"id": "bad-time", "createdDateTime": "yesterday"}),
        serde_json::json!({"id": "nine-digits", "createdDateTime": at(30).replace('Z', "89Z")}),
    ];
    for record in bad {
        stack.sim.inject(Resource::SignIns, record, visible);
    }
    let started = OffsetDateTime::now_utc();
    let reply = tick(&serve, JobKind::SignIn).await;
    let report = reply.report().unwrap();
    assert_eq!(report["outcome"], "complete", "{report}\n{}", serve.logs());
    assert_eq!(report["records_quarantined"], 4, "{report}");
    // The checkpoint reached the end of the range (within the second that Graph's `Date`
    // header rounds off): one bad record does not stall the job.
    let time_of =
        |field: &str| entra_export::timestamp::parse(report[field].as_str().unwrap()).unwrap();
    assert!(
        time_of("checkpoint_after") >= time_of("range_end") - time::Duration::seconds(2),
        "{report}"
    );
    let storage = stack.storage().await.unwrap();
    let landed_now = landed(&storage, &stack.container(JobKind::SignIn))
        .await
        .unwrap();
    assert_eq!(landed_now.quarantined.len(), 4);
    for kept in &landed_now.quarantined {
        assert!(
            kept["reason"].as_str().unwrap().contains("record "),
            "{kept}"
        );
        assert!(
            kept["query"]
                .as_str()
                .unwrap()
                .contains("auditLogs/signIns"),
            "{kept}"
        );
        assert!(kept["record"].is_object(), "{kept}");
    }
    // Sign-in content reaches storage, never the logs.
    assert!(!serve.logs().contains("no-id@contoso.example"));
    // Every good record landed exactly once (the four bad ones are in the quarantine only).
    let end = checkpoint(&stack, JobKind::SignIn).await.unwrap();
    let start = time_of("range_start");
    let bad_ids = ["", "null-time", "bad-time", "nine-digits"];
    let good: Vec<_> = stack
        .sim
        .truth(Resource::SignIns, start, end)
        .into_iter()
        .filter(|r| r.visible_at <= started && !bad_ids.contains(&r.id.as_str()))
        .collect();
    assert!(good.len() > 1000);
    assert!(
        landed_now
            .missing(good.iter().map(|r| r.id.as_str()))
            .is_empty()
    );
    assert!(landed_now.duplicates().is_empty());
    // Fetched again inside the replay window: quarantined once, not twice.
    let again = tick(&serve, JobKind::SignIn).await;
    assert_eq!(again.outcome(), "complete");
    let landed_now = landed(&storage, &stack.container(JobKind::SignIn))
        .await
        .unwrap();
    assert_eq!(landed_now.quarantined.len(), 4);
}

#[tokio::test]
async fn records_published_late_into_a_stretch_stored_beyond_the_checkpoint_are_not_lost() {
    // Every run stores its range to its end, but its checkpoint stops up to a second below it
    // (Graph's clock, whole seconds): the stretch in between was read once, before some of its
    // records were published. 10 sign-ins a second, each published 1-3 s late: every such
    // stretch holds records the next run must read again.
    let sim = SimConfig {
        seed: 8,
        history: Duration::from_secs(600),
        audit_per_hour: 3_600,
        signin_per_hour: 36_000,
        lateness: Lateness::Uniform {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3),
        },
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "10m"),
        ("QUERY_LAG", "0s"),
        ("REPLAY_WINDOW", "30s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let mut first_start = std::collections::HashMap::new();
    let mut last_started = std::collections::HashMap::new();
    for _ in 0..6 {
        for kind in CLASSIC {
            last_started.insert(kind, OffsetDateTime::now_utc());
            let reply = tick(&serve, kind).await;
            assert_eq!(reply.outcome(), "complete", "{}", serve.logs());
            let report = reply.report().unwrap();
            first_start.entry(kind).or_insert_with(|| {
                entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap()
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for kind in CLASSIC {
        let end = checkpoint(&stack, kind).await.unwrap();
        assert_exactly_once(&stack, kind, first_start[&kind], end, last_started[&kind]).await;
    }
}
