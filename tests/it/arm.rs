//! The Azure Resource Manager source (the Azure Activity Log) through the shared paged client
//! (`entra_export::arm`), against the simulator's ARM over real HTTP: the same client, limiter,
//! retries and page parser as Graph, with ARM's dialect. The pipeline-level stream (per
//! subscription checkpoints, the third timer) is not built yet (issue 15).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use entra_export::auth::{TokenCache, build_credentials};
use entra_export::client::throttle::Limiter;
use entra_export::client::{Error, FetchLimits, FetchStats, Page, PagedClient, RetryPolicy};
use entra_export::config::Config;
use entra_export::job::{Api, JobKind, JobSpec};
use graph_sim::{ArmConfig, ArmThrottle, Lateness, Sim, SimConfig, subscription_id};
use time::OffsetDateTime;

const SECRET: &str = "arm-S3cr3t-never-logged";
const HINT: &str = "the identity lacks Reader or Monitoring Reader on the subscription";

struct Setup {
    sim: Sim,
    arm: PagedClient,
    stats: Arc<FetchStats>,
    _dir: tempfile::TempDir,
}

async fn setup(arm: ArmConfig) -> Setup {
    let sim = graph_sim::start(SimConfig {
        client_secret: SECRET.into(),
        audit_per_hour: 0,
        signin_per_hour: 0,
        throttle: None,
        arm,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("sim-ca.pem");
    sim.write_ca_file(&ca).unwrap();
    let config = Config::from_vars([
        ("AZURE_TENANT_ID", sim.config().tenant.clone()),
        ("AUTH_MODE", "client_secret".into()),
        ("AZURE_CLIENT_ID", sim.config().client_id.clone()),
        ("AZURE_CLIENT_SECRET", SECRET.into()),
        ("AZURE_AUTHORITY_HOST", sim.authority_url()),
        ("GRAPH_ENDPOINT", sim.graph_url()),
        ("ARM_ENDPOINT", sim.arm_url()),
        ("EXTRA_CA_FILE", ca.display().to_string()),
        (
            "STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true".into(),
        ),
        ("GRAPH_PAGE_BUFFER", "1GiB".into()),
    ])
    .expect("valid configuration");
    let http = entra_export::http::build_client(config.extra_ca_file.as_deref()).unwrap();
    let credential = build_credentials(&config, http.clone()).unwrap().service;
    // ARM's scope, from ARM_ENDPOINT: a Graph token would be refused (wrong audience).
    let tokens = Arc::new(TokenCache::new(credential, config.arm.scope.clone()));
    let limiter = Arc::new(Limiter::new(config.arm.max_requests_per_10s));
    let arm = entra_export::arm::client(&config.arm, &config.graph, tokens, http, limiter)
        .with_retry_policy(RetryPolicy::fast(6));
    Setup {
        sim,
        arm,
        stats: Arc::new(FetchStats::default()),
        _dir: dir,
    }
}

/// The Activity Log of `subscription` as a stream description.
fn stream(subscription: &str) -> JobSpec {
    JobSpec {
        api: Api::Arm,
        retention: Duration::from_secs(90 * 86_400),
        retention_name: "the Activity Log's 90-day retention",
        resource_path: Box::leak(entra_export::arm::activity_path(subscription).into_boxed_str()),
        time_field: "eventTimestamp",
        id_field: "eventDataId",
        ordered: false,
        forbidden_hint: HINT,
        // The kind is a placeholder until the activity stream exists.
        ..JobKind::Audit.spec_template().clone()
    }
}

async fn collect(
    setup: &Setup,
    stream: &JobSpec,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> (Vec<Page>, Option<Error>) {
    let mut pages = std::pin::pin!(setup.arm.fetch_window(
        stream,
        start,
        end,
        setup.stats.clone(),
        FetchLimits::default()
    ));
    let mut got = Vec::new();
    while let Some(page) = futures::StreamExt::next(&mut pages).await {
        match page {
            Ok(page) => got.push(page),
            Err(error) => return (got, Some(error)),
        }
    }
    (got, None)
}

fn ids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page.records().map(|r| r.id.to_owned()))
        .collect()
}

fn arm_config() -> ArmConfig {
    ArmConfig {
        subscriptions: 2,
        events_per_hour: 900,
        history: Duration::from_secs(4 * 3600),
        live_for: Duration::ZERO,
        publication_delay: Lateness::Fixed(Duration::from_secs(1)),
        page_size: 50,
        throttle: None,
        ..ArmConfig::default()
    }
}

#[tokio::test]
async fn each_subscriptions_windows_arrive_exactly_once_against_the_truth() {
    let setup = setup(arm_config()).await;
    let now = OffsetDateTime::now_utc();
    let (start, end) = (
        now - time::Duration::hours(3),
        now - time::Duration::minutes(1),
    );
    let middle = start + time::Duration::minutes(97);
    for index in 1..=2 {
        let sub = subscription_id(index);
        let stream = stream(&sub);
        let mut got = Vec::new();
        // Two adjacent windows: a record on the boundary belongs to exactly one of them.
        for (from, to) in [(start, middle), (middle, end)] {
            let (pages, error) = collect(&setup, &stream, from, to).await;
            assert!(error.is_none(), "{error:?}");
            assert!(pages.len() > 5, "several pages: {}", pages.len());
            for page in &pages {
                assert_eq!(page.rejects().count(), 0, "every record placed");
                for record in page.records() {
                    assert!(from <= record.time && record.time < to, "inside its window");
                }
            }
            got.extend(ids(&pages));
        }
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "no event twice in {sub}");
        let mut truth: Vec<String> = setup
            .sim
            .arm_truth(&sub, start, end)
            .into_iter()
            .map(|record| record.event_data_id)
            .collect();
        assert!(truth.len() > 1000, "a busy subscription: {}", truth.len());
        truth.sort();
        got.sort();
        assert_eq!(got, truth, "{sub}: exactly the simulator's truth");
    }
}

#[tokio::test]
async fn a_forbidden_subscription_fails_alone_with_its_hint() {
    let allowed = subscription_id(1);
    let forbidden = subscription_id(2);
    let setup = setup(ArmConfig {
        forbidden: vec![forbidden.clone()],
        ..arm_config()
    })
    .await;
    let now = OffsetDateTime::now_utc();
    let (start, end) = (
        now - time::Duration::hours(1),
        now - time::Duration::minutes(1),
    );
    let (pages, error) = collect(&setup, &stream(&forbidden), start, end).await;
    assert!(pages.is_empty());
    let error = error.expect("refused");
    assert!(!error.is_transient(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("HTTP 403") && text.contains("AuthorizationFailed"),
        "{text}"
    );
    assert!(text.contains(HINT), "{text}");
    let (pages, error) = collect(&setup, &stream(&allowed), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert!(!ids(&pages).is_empty());
}

#[tokio::test]
async fn a_start_older_than_ninety_days_is_a_clear_bad_request() {
    let setup = setup(arm_config()).await;
    let now = OffsetDateTime::now_utc();
    let sub = subscription_id(1);
    let (_, error) = collect(
        &setup,
        &stream(&sub),
        now - time::Duration::days(91),
        now - time::Duration::days(90) + time::Duration::hours(6),
    )
    .await;
    let error = error.expect("refused");
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(
        text.contains("eventTimestamp ge '"),
        "the query is named: {text}"
    );
    assert_eq!(setup.sim.arm_counters().total.throttled, 0);
}

#[tokio::test]
async fn arms_throttling_is_honoured_and_the_window_completes() {
    let setup = setup(ArmConfig {
        subscriptions: 1,
        throttle: Some(ArmThrottle {
            capacity: 8,
            refill_per_second: 4.0,
        }),
        ..arm_config()
    })
    .await;
    let now = OffsetDateTime::now_utc();
    let (start, end) = (
        now - time::Duration::hours(1),
        now - time::Duration::minutes(1),
    );
    let sub = subscription_id(1);
    let (pages, error) = collect(&setup, &stream(&sub), start, end).await;
    assert!(error.is_none(), "{error:?}");
    let counters = setup.sim.arm_counters();
    assert!(
        counters.total.throttled > 0,
        "the bucket ran dry: {counters:?}"
    );
    assert_eq!(
        counters.total.retry_after_ignored, 0,
        "Retry-After honoured"
    );
    let mut got = ids(&pages);
    got.sort();
    got.dedup();
    let truth: HashSet<String> = setup
        .sim
        .arm_truth(&sub, start, end)
        .into_iter()
        .map(|record| record.event_data_id)
        .collect();
    let got: HashSet<String> = got.into_iter().collect();
    assert_eq!(got, truth, "complete despite the 429s");
}
