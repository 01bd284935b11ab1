//! Exactly once under storage and Graph faults (issue 13): the real `serve` process talks to
//! Azurite through a fault proxy (`testbed::proxy`), the test reads what landed directly from
//! Azurite and compares it with the simulator's truth.

use std::time::{Duration, Instant};

use entra_export::job::JobKind;
use graph_sim::{Fault, FaultKind, SimConfig, Throttle};
use testbed::e2e::{AMPLE, CLASSIC, assert_exactly_once, both_complete, checkpoint, env, tick};
use testbed::proxy::{FaultProxy, Match};
use testbed::{HostReply, Serve, Stack, StackOptions};
use time::OffsetDateTime;

/// The stand-ins, a fault proxy in front of Azurite and a `serve` process that reaches storage
/// only through the proxy; `None` when Azurite is unreachable outside CI.
async fn behind_proxy(
    sim: SimConfig,
    env: Vec<(String, String)>,
) -> Option<(Stack, FaultProxy, Serve)> {
    let stack = Stack::start(StackOptions { sim, env }).await.unwrap()?;
    let proxy = FaultProxy::azurite().await.unwrap();
    let via_proxy = proxy.connection_string();
    let serve = Serve::spawn(&stack.env_with(&[("STORAGE_CONNECTION_STRING", &via_proxy)]))
        .await
        .unwrap();
    Some((stack, proxy, serve))
}

/// The start of the range a first run planned, from its report.
fn range_start(reply: &HostReply) -> OffsetDateTime {
    let report = reply.report().unwrap();
    entra_export::timestamp::parse(report["range_start"].as_str().unwrap()).unwrap()
}

/// Asserts that every record of each job from its first run's range start to its checkpoint
/// that was visible by `visible_by` landed exactly once.
async fn assert_exactly_once_since(
    stack: &Stack,
    starts: &[(JobKind, OffsetDateTime)],
    visible_by: OffsetDateTime,
) {
    for (kind, start) in starts {
        let end = checkpoint(stack, *kind).await.expect("a checkpoint");
        let landed = assert_exactly_once(stack, *kind, *start, end, visible_by).await;
        eprintln!(
            "{kind}: {} records in {} blobs, each once, from {start} to {end}",
            landed.records, landed.blobs
        );
    }
}

/// Three hours back, no lag, a fast budget, small pages and blobs: many blobs per run.
const SMALL_PAGES: &[(&str, &str)] = &[
    ("INITIAL_LOOKBACK", "3h"),
    ("QUERY_LAG", "0s"),
    ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
    ("GRAPH_PAGE_SIZE", "200"),
    ("MAX_RECORDS_PER_BLOB", "100"),
];

fn modest_history(seed: u64, hours: u64) -> SimConfig {
    SimConfig {
        seed,
        history: Duration::from_secs(hours * 3600),
        audit_per_hour: 120,
        signin_per_hour: 360,
        throttle: AMPLE,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_checkpoint_write_that_fails_after_the_state_was_saved_loses_and_duplicates_nothing() {
    let env = env(SMALL_PAGES);
    let Some((stack, proxy, serve)) = behind_proxy(modest_history(31, 3), env).await else {
        return;
    };
    let (audit, signin) = both_complete(&serve).await;
    let starts = [
        (JobKind::Audit, range_start(&audit)),
        (JobKind::SignIn, range_start(&signin)),
    ];
    assert!(
        proxy.requests().iter().any(|r| r.contains("comp=metadata")),
        "serve does not reach storage through the proxy: {:?}",
        proxy.requests()
    );
    let mut held = std::collections::HashMap::new();
    for kind in CLASSIC {
        held.insert(
            kind,
            checkpoint(&stack, kind).await.expect("first checkpoint"),
        );
    }
    // Records published since the first run, for the failing run to store.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The failing run: its state write lands, then every try of its checkpoint write (the SDK
    // retries a 500 four times: `MAX_RETRIES` in src/storage/client.rs) is answered 500 by the
    // proxy.
    let tries = 5;
    for kind in CLASSIC {
        let container = stack.container(kind);
        proxy.fail_after(
            Some(Match::state_write(&container)),
            Match::set_container_metadata(&container),
            500,
            tries,
        );
    }
    let (audit, signin) = tokio::join!(tick(&serve, JobKind::Audit), tick(&serve, JobKind::SignIn));
    for (kind, reply) in [(JobKind::Audit, &audit), (JobKind::SignIn, &signin)] {
        let report = reply.report().unwrap();
        eprintln!(
            "{kind}: the run whose checkpoint write failed: {} ({})",
            reply.outcome(),
            report["reason"]
        );
        assert!(
            ["failed", "partial"].contains(&reply.outcome().as_str()),
            "{kind}: a run whose checkpoint write failed reported {report}\n{}",
            serve.logs()
        );
        assert_eq!(
            checkpoint(&stack, kind).await,
            Some(held[&kind]),
            "{kind}: the checkpoint moved although every write of it failed: {report}"
        );
    }
    let injected = proxy.failed();
    eprintln!("checkpoint writes refused by the proxy: {injected}");
    assert!(
        (2..=2 * tries).contains(&injected),
        "{injected} checkpoint writes refused by the proxy: {:?}",
        proxy.requests()
    );
    proxy.clear();

    // The following runs, the proxy clean.
    both_complete(&serve).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last_started = OffsetDateTime::now_utc();
    both_complete(&serve).await;
    assert_eq!(proxy.failed(), injected, "faults after the failing run");
    assert_exactly_once_since(&stack, &starts, last_started).await;
}

#[tokio::test]
async fn a_state_write_whose_reply_is_lost_is_recognised_and_nothing_is_lost_or_duplicated() {
    let env = env(SMALL_PAGES);
    let Some((stack, proxy, serve)) = behind_proxy(modest_history(32, 3), env).await else {
        return;
    };
    let mut starts = Vec::new();
    // The first run creates the state blob (If-None-Match), the second replaces it (If-Match):
    // both writes land and their replies are lost; the SDK retries into 409 / 412.
    for run in 1..=2 {
        for kind in CLASSIC {
            proxy.drop_reply_of(Match::state_write(&stack.container(kind)), 1);
        }
        let (audit, signin) = both_complete(&serve).await;
        if starts.is_empty() {
            starts = vec![
                (JobKind::Audit, range_start(&audit)),
                (JobKind::SignIn, range_start(&signin)),
            ];
        }
        assert_eq!(
            proxy.replies_dropped(),
            2 * run,
            "run {run}: the state writes' replies were not dropped: {:?}",
            proxy.requests()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let last_started = OffsetDateTime::now_utc();
    both_complete(&serve).await;
    assert_eq!(proxy.replies_dropped(), 4);
    // Each lost reply was met by the SDK's retry and recognised as our own write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let recognised = serve
        .logs()
        .matches("the state blob already holds exactly these bytes")
        .count();
    assert_eq!(recognised, 4, "{}", serve.logs());
    assert_exactly_once_since(&stack, &starts, last_started).await;
}

#[tokio::test]
async fn a_state_save_that_fails_keeps_the_journal_so_the_next_run_writes_nothing_twice() {
    let env = env(SMALL_PAGES);
    let Some((stack, proxy, serve)) = behind_proxy(modest_history(34, 3), env).await else {
        return;
    };
    // The first run writes its blobs (and journals their ids), then every try of its state
    // save is refused (the SDK tries a 500 five times): the save fails, so no checkpoint may be
    // set and the journal must stay for the next run.
    let tries = 5;
    for kind in CLASSIC {
        proxy.fail_after(None, Match::state_write(&stack.container(kind)), 500, tries);
    }
    let (audit, signin) = tokio::join!(tick(&serve, JobKind::Audit), tick(&serve, JobKind::SignIn));
    let mut starts = Vec::new();
    let mut failing_wrote = Vec::new();
    for (kind, reply) in [(JobKind::Audit, &audit), (JobKind::SignIn, &signin)] {
        let report = reply.report().unwrap();
        assert_eq!(
            reply.outcome(),
            "failed",
            "{kind}: {report}\n{}",
            serve.logs()
        );
        assert!(
            report["reason"]
                .as_str()
                .unwrap()
                .contains("could not save the written-ids state"),
            "{kind}: {report}"
        );
        assert!(
            report["records_written"].as_u64().unwrap() > 100,
            "{kind}: the failing run wrote too little for the test to prove anything: {report}"
        );
        assert_eq!(
            checkpoint(&stack, kind).await,
            None,
            "{kind}: a checkpoint was set although the state was not saved: {report}"
        );
        starts.push((kind, range_start(reply)));
        failing_wrote.push(report["records_written"].as_u64().unwrap());
    }
    assert_eq!(proxy.failed(), 2 * tries, "{:?}", proxy.requests());
    proxy.clear();

    // The next runs fetch the same range again: the ids the failing run wrote come from its
    // journal, so nothing is written twice.
    let (audit, signin) = both_complete(&serve).await;
    for (reply, wrote) in [(&audit, failing_wrote[0]), (&signin, failing_wrote[1])] {
        let report = reply.report().unwrap();
        assert!(
            report["records_skipped"].as_u64().unwrap() >= wrote,
            "the {wrote} records the failing run wrote are known: {report}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last_started = OffsetDateTime::now_utc();
    both_complete(&serve).await;
    assert_exactly_once_since(&stack, &starts, last_started).await;
}

#[tokio::test]
async fn data_blob_writes_whose_replies_are_lost_are_recognised_not_written_twice() {
    let env = env(SMALL_PAGES);
    let Some((stack, proxy, serve)) = behind_proxy(modest_history(33, 3), env).await else {
        return;
    };
    // The first data blob of each stream lands, and the replies of all six tries are lost: the
    // SDK's five tries fail, the pipeline tries the same name again (it may have landed), and
    // that write is recognised as ours. A retry under a new name (the next sequence number)
    // would store those records twice.
    let lost = 6;
    for kind in CLASSIC {
        proxy.drop_reply_of(
            Match::new("PUT", &[&format!("/{}/y=", stack.container(kind))]),
            lost,
        );
    }
    let (audit, signin) = both_complete(&serve).await;
    let starts = vec![
        (JobKind::Audit, range_start(&audit)),
        (JobKind::SignIn, range_start(&signin)),
    ];
    assert_eq!(
        proxy.replies_dropped(),
        2 * lost,
        "the data blob writes' replies were not dropped: {:?}",
        proxy.requests()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let last_started = OffsetDateTime::now_utc();
    both_complete(&serve).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let recognised = serve
        .logs()
        .matches("the blob already holds exactly these bytes")
        .count();
    assert_eq!(recognised, 2, "{}", serve.logs());
    let same_name = serve
        .logs()
        .matches("blob write failed and may have landed: trying the same name again")
        .count();
    assert_eq!(same_name, 2, "{}", serve.logs());
    assert_eq!(
        serve.logs().matches("blob name already taken").count(),
        0,
        "no write moved to another name"
    );
    assert_exactly_once_since(&stack, &starts, last_started).await;
}

#[tokio::test]
async fn everything_at_once_short_tokens_throttling_and_graph_faults() {
    let sim = SimConfig {
        seed: 33,
        history: Duration::from_secs(2 * 3600),
        audit_per_hour: 90,
        signin_per_hour: 240,
        token_lifetime: Duration::from_secs(15),
        throttle: Some(Throttle {
            requests: 3,
            per: Duration::from_secs(10),
        }),
        faults: vec![
            // One certain fault of each kind (the first three requests), whatever the draws.
            Fault::new(FaultKind::Status(500)).first(1),
            Fault::new(FaultKind::TruncatedBody).first(1),
            Fault::new(FaultKind::DropConnection).first(1),
            Fault::new(FaultKind::Status(500)).with_probability(0.05),
            Fault::new(FaultKind::Status(503)).with_probability(0.05),
            Fault::new(FaultKind::TruncatedBody).with_probability(0.05),
            Fault::new(FaultKind::DropConnection).with_probability(0.05),
        ],
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "2h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "3"),
        ("GRAPH_PAGE_SIZE", "50"),
        ("MAX_RECORDS_PER_BLOB", "50"),
        // Runs cut by the budget resume their windows; a short replay window keeps the re-reads
        // of each run small (the default 2 h would re-read the whole history every run).
        ("RUN_TIME_BUDGET", "40s"),
        ("REPLAY_WINDOW", "10m"),
    ]);
    let Some(stack) = Stack::start(StackOptions { sim, env }).await.unwrap() else {
        return;
    };
    let serve = Serve::spawn(&stack.env()).await.unwrap();
    let began = Instant::now();
    let mut last_started = OffsetDateTime::now_utc();
    let mut starts = Vec::new();
    let mut pending: Vec<JobKind> = CLASSIC.to_vec();
    let mut runs = 0;
    let mut outcomes = Vec::new();
    while !pending.is_empty() && runs < 5 {
        runs += 1;
        last_started = OffsetDateTime::now_utc();
        let replies = futures_join(&serve, &pending).await;
        pending.clear();
        for (kind, reply) in replies {
            if runs == 1 {
                starts.push((kind, range_start(&reply)));
            }
            outcomes.push(format!("run {runs} {kind}: {}", reply.outcome()));
            if reply.outcome() != "complete" {
                pending.push(kind);
            }
        }
    }
    assert!(
        pending.is_empty(),
        "not complete after {runs} runs: {outcomes:?}\n{}",
        serve.logs()
    );
    let counters = stack.sim.counters();
    eprintln!(
        "everything at once: {runs} runs in {:?}, {outcomes:?}, {counters:?}",
        began.elapsed()
    );
    assert!(counters.faults_injected >= 3, "{counters:?}");
    assert!(
        counters.tokens_issued >= 2,
        "no token was renewed: {counters:?}"
    );
    assert_exactly_once_since(&stack, &starts, last_started).await;
}

/// Runs the given jobs at once, as timers firing together.
async fn futures_join(serve: &Serve, kinds: &[JobKind]) -> Vec<(JobKind, testbed::HostReply)> {
    match kinds {
        [one] => vec![(*one, tick(serve, *one).await)],
        _ => {
            let (audit, signin) =
                tokio::join!(tick(serve, JobKind::Audit), tick(serve, JobKind::SignIn));
            vec![(JobKind::Audit, audit), (JobKind::SignIn, signin)]
        }
    }
}
