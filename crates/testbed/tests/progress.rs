//! Forward progress at any volume, end to end (real `serve`, the Graph simulator at its real
//! throttle where it matters, Azurite): requests are spent on data, failing windows are split
//! inside one run, and Graph's long pauses end a run promptly instead of freezing it.

use std::time::{Duration, Instant};

use entra_export::job::JobKind;
use graph_sim::{Fault, FaultKind, Resource, SimConfig};
use testbed::e2e::{AMPLE, assert_exactly_once, checkpoint, env, scenario, tick};
use time::OffsetDateTime;

fn range_start(report: &serde_json::Value) -> OffsetDateTime {
    entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_sparse_tenant_costs_requests_only_for_its_data() {
    // 3,000 audit and 12,000 sign-in records over 3 days, at Graph's real throttle (5 requests
    // per 10 s, shared by both jobs): 3 + 12 pages of data at least.
    let sim = SimConfig {
        seed: 21,
        history: Duration::from_secs(3 * 86_400),
        audit_per_hour: 42,
        signin_per_hour: 167,
        ..SimConfig::default()
    };
    let env = env(&[("INITIAL_LOOKBACK", "3d"), ("QUERY_LAG", "0s")]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let (audit, signin) = tokio::join!(tick(&serve, JobKind::Audit), tick(&serve, JobKind::SignIn));
    let elapsed = clock.elapsed();
    let mut minimum = 0;
    let mut requests = 0;
    for (kind, reply) in [(JobKind::Audit, &audit), (JobKind::SignIn, &signin)] {
        let report = reply.report().unwrap();
        assert_eq!(report["outcome"], "complete", "{report}\n{}", serve.logs());
        let end = checkpoint(&stack, kind).await.unwrap();
        let landed = assert_exactly_once(&stack, kind, range_start(&report), end, started).await;
        minimum += (landed.records as u64).div_ceil(1000);
        requests += report["requests"].as_u64().unwrap();
    }
    assert!(minimum >= 15, "the scenario holds {minimum} pages");
    assert!(
        requests <= 2 * minimum + 10,
        "{requests} Graph requests for {minimum} pages of data"
    );
    assert_eq!(stack.sim.counters().throttled, 0);
    eprintln!(
        "sparse: {requests} requests for {minimum} pages in {:.1} s",
        elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn a_window_that_times_out_on_every_try_is_split_and_completed_inside_one_run() {
    // Every request for a window wider than 30 minutes hangs longer than the request timeout:
    // the window must be split early enough, not after six full attempts per level.
    let sim = SimConfig {
        seed: 22,
        history: Duration::from_secs(3 * 3600),
        audit_per_hour: 600,
        throttle: AMPLE,
        faults: vec![
            Fault::new(FaultKind::Stall(Duration::from_secs(30)))
                .on(Resource::DirectoryAudits)
                .wider_than(Duration::from_secs(30 * 60)),
        ],
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "3h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("GRAPH_REQUEST_TIMEOUT", "2s"),
        ("RUN_TIME_BUDGET", "90s"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let reply = tick(&serve, JobKind::Audit).await;
    let report = reply.report().unwrap();
    assert_eq!(report["outcome"], "complete", "{report}\n{}", serve.logs());
    assert!(report["window_splits"].as_u64().unwrap() >= 1, "{report}");
    assert!(clock.elapsed() < Duration::from_secs(90), "{report}");
    let end = checkpoint(&stack, JobKind::Audit).await.unwrap();
    assert_exactly_once(&stack, JobKind::Audit, range_start(&report), end, started).await;
}

#[tokio::test]
async fn a_retry_after_longer_than_the_run_ends_it_promptly_and_says_why() {
    for retry_after in [
        "600",
        "99999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let sim = SimConfig {
            seed: 23,
            history: Duration::from_secs(3600),
            throttle: AMPLE,
            faults: vec![
                Fault::new(FaultKind::TooManyRequests(retry_after.to_owned()))
                    .on(Resource::DirectoryAudits),
            ],
            ..SimConfig::default()
        };
        let env = env(&[
            ("INITIAL_LOOKBACK", "1h"),
            ("QUERY_LAG", "0s"),
            ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
            ("RUN_TIME_BUDGET", "20s"),
        ]);
        let Some((stack, serve)) = scenario(sim, env).await else {
            return;
        };
        for _ in 0..2 {
            let clock = Instant::now();
            let reply = tick(&serve, JobKind::Audit).await;
            let took = clock.elapsed();
            let report = reply.report().unwrap();
            assert_eq!(report["outcome"], "partial", "{retry_after}: {report}");
            let reason = report["reason"].as_str().unwrap();
            assert!(
                reason.contains("throttled by Graph for"),
                "{retry_after}: {reason}"
            );
            assert!(
                took < Duration::from_secs(20),
                "{retry_after}: the run took {took:?}"
            );
        }
        // The process is up and answers the host.
        let ready = serve.get("/").await.unwrap();
        assert_eq!(ready.status, 200, "{retry_after}");
        assert_eq!(checkpoint(&stack, JobKind::Audit).await, None);
    }
}

#[tokio::test]
async fn two_processes_one_per_job_share_graphs_throttle_without_fighting() {
    // On Flex Consumption each timer function runs on its own instances: AuditTimer and
    // SignInTimer in two processes, each with its own limiter, against one tenant budget of
    // 5 requests per 10 s. Both have far more backlog than a minute can fetch.
    let sim = SimConfig {
        seed: 24,
        history: Duration::from_secs(2 * 86_400),
        audit_per_hour: 20_000,
        signin_per_hour: 20_000,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "2d"),
        ("QUERY_LAG", "0s"),
        ("RUN_TIME_BUDGET", "60s"),
    ]);
    let Some((stack, audit_process)) = scenario(sim, env).await else {
        return;
    };
    let signin_process = testbed::Serve::spawn(&stack.env()).await.unwrap();
    let clock = Instant::now();
    let (audit, signin) = tokio::join!(
        tick(&audit_process, JobKind::Audit),
        tick(&signin_process, JobKind::SignIn)
    );
    let elapsed = clock.elapsed().as_secs_f64();
    for reply in [&audit, &signin] {
        let report = reply.report().unwrap();
        assert_eq!(report["outcome"], "partial", "{report}");
    }
    let counters = stack.sim.counters();
    let accepted = counters.list_requests - counters.throttled;
    let bound = 5.0 * elapsed / 10.0;
    let share = accepted as f64 / bound;
    let refused = counters.throttled as f64 / counters.list_requests as f64;
    eprintln!(
        "two processes: {accepted} requests answered in {elapsed:.1} s ({:.0} % of the bound), {} answered 429 ({:.1} %)",
        share * 100.0,
        counters.throttled,
        refused * 100.0
    );
    assert!(share >= 0.8, "{:.0} % of the bound", share * 100.0);
    assert!(refused <= 0.05, "{:.1} % answered 429", refused * 100.0);
}
