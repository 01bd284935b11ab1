//! The Graph client over real HTTP against the simulator (`graph-sim`): completeness against the
//! simulator's truth, throttling, Retry-After, faults, token refresh, window splits, permanent
//! errors, and what reaches the logs.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use entra_export::auth::{TokenCache, build_credentials};
use entra_export::client::throttle::Limiter;
use entra_export::client::{Error, FetchLimits, FetchStats, Page, PagedClient, RetryPolicy};
use entra_export::config::Config;
use entra_export::job::{JobKind, JobSpec};
use futures::StreamExt;
use graph_sim::{Fault, FaultKind, Resource, RetryAfterStyle, Sim, SimConfig, Throttle};
use time::OffsetDateTime;

const SECRET: &str = "S3cr3t-value-zq9-never-logged";

/// A simulator plus a client configured against it (token over https with the sim's CA).
struct Setup {
    sim: Sim,
    graph: PagedClient,
    stats: Arc<FetchStats>,
    credential: Arc<Recording>,
    _dir: tempfile::TempDir,
}

struct Options {
    vars: Vec<(&'static str, String)>,
    limiter: Arc<Limiter>,
    policy: RetryPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vars: Vec::new(),
            limiter: Arc::new(Limiter::with_period(1000, Duration::from_secs(1))),
            policy: RetryPolicy::fast(6),
        }
    }
}

/// Records the tokens handed out, to check that none reaches the logs.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn TokenCredential>,
    issued: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl TokenCredential for Recording {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let token = self.inner.get_token(scopes, options).await?;
        self.issued
            .lock()
            .unwrap()
            .push(token.token.secret().to_owned());
        Ok(token)
    }
}

fn sim_config() -> SimConfig {
    SimConfig {
        client_secret: SECRET.into(),
        history: Duration::from_secs(6 * 3600),
        throttle: None,
        ..SimConfig::default()
    }
}

async fn setup(sim_config: SimConfig, options: Options) -> Setup {
    let sim = graph_sim::start(sim_config)
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("sim-ca.pem");
    sim.write_ca_file(&ca).unwrap();
    let mut vars: Vec<(&str, String)> = vec![
        ("AZURE_TENANT_ID", sim.config().tenant.clone()),
        ("AUTH_MODE", "client_secret".into()),
        ("AZURE_CLIENT_ID", sim.config().client_id.clone()),
        ("AZURE_CLIENT_SECRET", SECRET.into()),
        ("AZURE_AUTHORITY_HOST", sim.authority_url()),
        ("GRAPH_ENDPOINT", sim.graph_url()),
        ("EXTRA_CA_FILE", ca.display().to_string()),
        (
            "STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true".into(),
        ),
        ("GRAPH_PAGE_SIZE", "50".into()),
        // These tests keep every page they receive, to compare with the truth: a page budget
        // as large as that (the pipeline drops each page once its records are stored).
        ("GRAPH_PAGE_BUFFER", "1GiB".into()),
    ];
    vars.extend(options.vars);
    let config = Config::from_vars(vars).expect("valid configuration");
    let http = entra_export::http::build_client(config.extra_ca_file.as_deref()).unwrap();
    let credential = Arc::new(Recording {
        inner: build_credentials(&config, http.clone()).unwrap().graph,
        issued: Mutex::new(Vec::new()),
    });
    let tokens = Arc::new(TokenCache::new(
        credential.clone(),
        config.graph.scope.clone(),
    ));
    let graph = entra_export::graph::client(&config.graph, tokens, http, options.limiter)
        .with_retry_policy(options.policy);
    Setup {
        sim,
        graph,
        stats: Arc::new(FetchStats::default()),
        credential,
        _dir: dir,
    }
}

fn signins() -> &'static JobSpec {
    JobKind::SignIn.spec_template()
}

fn audits() -> &'static JobSpec {
    JobKind::Audit.spec_template()
}

fn hours(n: i64) -> time::Duration {
    time::Duration::hours(n)
}

/// Every page of a window, or the first error with the pages before it.
async fn collect(
    setup: &Setup,
    job: &JobSpec,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> (Vec<Page>, Option<Error>) {
    collect_within(setup, job, start, end, FetchLimits::default()).await
}

/// [`collect`] within `limits`.
async fn collect_within(
    setup: &Setup,
    job: &JobSpec,
    start: OffsetDateTime,
    end: OffsetDateTime,
    limits: FetchLimits,
) -> (Vec<Page>, Option<Error>) {
    let mut stream =
        std::pin::pin!(
            setup
                .graph
                .fetch_window(job, start, end, setup.stats.clone(), limits)
        );
    let mut pages = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(page) => pages.push(page),
            Err(error) => return (pages, Some(error)),
        }
    }
    (pages, None)
}

/// Ids of the pages, in order, with duplicates kept.
fn ids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.records().map(|r| r.id.to_owned()))
        .collect()
}

fn truth_ids(
    sim: &Sim,
    resource: Resource,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Vec<String> {
    let mut ids: Vec<String> = sim
        .truth(resource, start, end)
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

/// Asserts that the fetched records are exactly the truth, each once.
fn assert_exactly_once(pages: &[Page], truth: &[String]) {
    let mut got = ids(pages);
    got.sort();
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), got.len(), "no duplicates");
    assert_eq!(got.len(), truth.len(), "record count");
    assert_eq!(got, truth);
}

/// Asserts that every truth record arrived at least once (restarts and splits may repeat).
fn assert_complete(pages: &[Page], truth: &[String]) {
    let got: BTreeSet<String> = ids(pages).into_iter().collect();
    let want: BTreeSet<String> = truth.iter().cloned().collect();
    assert_eq!(got, want);
}

fn window(sim: &Sim, from_hours_ago: i64, to_hours_ago: i64) -> (OffsetDateTime, OffsetDateTime) {
    // Whole seconds, so that records injected exactly on a bound are on Graph's 100 ns grid.
    let at = sim.started_at().replace_nanosecond(0).unwrap();
    (at - hours(from_hours_ago), at - hours(to_hours_ago))
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[tokio::test]
async fn every_record_of_a_window_arrives_exactly_once_across_pages() {
    let setup = setup(sim_config(), Options::default()).await;
    for (job, resource) in [
        (signins(), Resource::SignIns),
        (audits(), Resource::DirectoryAudits),
    ] {
        let (start, end) = window(&setup.sim, 5, 1);
        let (pages, error) = collect(&setup, job, start, end).await;
        assert!(error.is_none(), "{error:?}");
        let truth = truth_ids(&setup.sim, resource, start, end);
        assert!(truth.len() > 200, "enough records for several pages");
        assert!(pages.len() > 4);
        assert_exactly_once(&pages, &truth);
        for page in &pages {
            for record in page.records() {
                assert!(record.time >= start && record.time < end);
                let value: serde_json::Value = serde_json::from_slice(record.raw).unwrap();
                assert_eq!(value["id"], record.id);
            }
        }
    }
    let sim = setup.sim.counters();
    assert_eq!(sim.throttled, 0);
    assert_eq!(sim.tokens_issued, 1, "one token for the whole run");
    assert_eq!(load(&setup.stats.requests), sim.list_requests);
}

#[tokio::test]
async fn records_with_equal_timestamps_straddling_pages_arrive_once() {
    let setup = setup(
        SimConfig {
            signin_per_hour: 0,
            ..sim_config()
        },
        Options {
            vars: vec![("GRAPH_PAGE_SIZE", "4".into())],
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let tie = start + time::Duration::minutes(10);
    let visible = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for n in 0..10 {
        let time = if n < 7 {
            tie
        } else {
            tie + time::Duration::nanoseconds(100 * n)
        };
        setup.sim.inject(
            Resource::SignIns,
            serde_json::json!({"id": format!("tie-{n:02}"), "createdDateTime": entra_export::timestamp::format(time)}),
            visible,
        );
    }
    // Two records exactly on the bounds: the start is in, the end is out.
    for (id, time) in [("at-start", start), ("at-end", end)] {
        setup.sim.inject(
            Resource::SignIns,
            serde_json::json!({"id": id, "createdDateTime": entra_export::timestamp::format(time)}),
            visible,
        );
    }
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    let truth = truth_ids(&setup.sim, Resource::SignIns, start, end);
    assert_eq!(truth.len(), 11);
    assert!(truth.contains(&"at-start".to_owned()) && !truth.contains(&"at-end".to_owned()));
    assert_eq!(pages.len(), 3);
    assert_exactly_once(&pages, &truth);
}

#[tokio::test]
async fn short_and_empty_pages_with_a_next_link_mean_keep_going() {
    let setup = setup(
        SimConfig {
            short_page_probability: 0.5,
            seed: 5,
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert!(
        pages
            .iter()
            .any(|p| p.len() < 50 && p.index + 1 < pages.len())
    );
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    let indexes: Vec<usize> = pages.iter().map(|p| p.index).collect();
    assert_eq!(indexes, (0..pages.len()).collect::<Vec<_>>());
}

#[tokio::test]
async fn one_job_failing_does_not_affect_the_other() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::LicenceForbidden).on(Resource::SignIns)],
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 1);
    let ((_, signin_error), (audit_pages, audit_error)) = tokio::join!(
        collect(&setup, signins(), start, end),
        collect(&setup, audits(), start, end)
    );
    assert!(
        matches!(signin_error, Some(Error::Forbidden { .. })),
        "{signin_error:?}"
    );
    assert!(audit_error.is_none(), "{audit_error:?}");
    assert_exactly_once(
        &audit_pages,
        &truth_ids(&setup.sim, Resource::DirectoryAudits, start, end),
    );
    // And the client still works for the failed job once Graph does.
    setup.sim.set_faults(Vec::new());
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
}

#[tokio::test]
async fn a_lone_run_at_the_default_budget_provokes_no_429() {
    // Seven requests at 5 per 10 s: five at once, two more 10.25 s later.
    let setup = setup(
        SimConfig {
            throttle: Some(Throttle {
                requests: 5,
                per: Duration::from_secs(10),
            }),
            ..sim_config()
        },
        Options {
            vars: vec![("GRAPH_PAGE_SIZE", "40".into())],
            limiter: Arc::new(Limiter::new(5)),
            ..Options::default()
        },
    )
    .await;
    let (start, _) = window(&setup.sim, 4, 3);
    // Sign-ins arrive at 240/h: 70 minutes hold about 280 records, seven pages of 40.
    let end = start + time::Duration::minutes(70);
    let started = Instant::now();
    let (pages, error) = collect(&setup, signins(), start, end).await;
    let elapsed = started.elapsed();
    assert!(error.is_none(), "{error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    let counters = setup.sim.counters();
    assert_eq!(counters.throttled, 0);
    assert!(counters.max_requests_in_any_10s_window <= 5);
    let requests = load(&setup.stats.requests);
    assert!((6..=8).contains(&requests), "{requests} requests");
    assert!(elapsed >= Duration::from_secs(10), "paced: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(14),
        "not slower than needed: {elapsed:?}"
    );
}

#[tokio::test]
async fn both_jobs_share_one_limiter_without_429_at_a_scaled_budget() {
    // Budget and time scaled together: 4 requests per second in any 1 s window.
    let limiter = Arc::new(Limiter::with_period(4, Duration::from_secs(1)));
    let setup = setup(
        SimConfig {
            throttle: Some(Throttle {
                requests: 4,
                per: Duration::from_secs(1),
            }),
            ..sim_config()
        },
        Options {
            limiter,
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 4, 1);
    let started = Instant::now();
    let ((signin_pages, e1), (audit_pages, e2)) = tokio::join!(
        collect(&setup, signins(), start, end),
        collect(&setup, audits(), start, end)
    );
    assert!(e1.is_none() && e2.is_none(), "{e1:?} {e2:?}");
    assert_exactly_once(
        &signin_pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    assert_exactly_once(
        &audit_pages,
        &truth_ids(&setup.sim, Resource::DirectoryAudits, start, end),
    );
    let requests = load(&setup.stats.requests);
    assert_eq!(setup.sim.counters().throttled, 0);
    // n requests at 4 per 1.025 s take at least (n / 4 - 1) windows.
    let floor = Duration::from_secs_f64(((requests as f64 / 4.0).ceil() - 1.0) * 1.0);
    assert!(
        started.elapsed() >= floor,
        "{requests} requests in {:?}",
        started.elapsed()
    );
}

async fn retry_after_is_honoured(style: RetryAfterStyle) {
    // The sim allows 3 requests per second, our limiter far more: the sim throttles and we wait.
    let setup = setup(
        SimConfig {
            throttle: Some(Throttle {
                requests: 3,
                per: Duration::from_secs(1),
            }),
            retry_after_style: style,
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, _) = window(&setup.sim, 4, 3);
    let end = start + time::Duration::minutes(90);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{style:?}: {error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    let counters = setup.sim.counters();
    assert!(counters.throttled >= 1, "{style:?}: the sim throttled");
    assert_eq!(
        counters.retry_after_ignored, 0,
        "{style:?}: Retry-After honoured"
    );
    assert_eq!(load(&setup.stats.throttled), counters.throttled);
    assert!(load(&setup.stats.retries) >= counters.throttled);
}

#[tokio::test]
async fn retry_after_in_integer_seconds_is_honoured() {
    retry_after_is_honoured(RetryAfterStyle::Integer).await;
}

#[tokio::test]
async fn retry_after_in_fractional_seconds_is_honoured() {
    retry_after_is_honoured(RetryAfterStyle::Fractional).await;
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    retry_after_is_honoured(RetryAfterStyle::HttpDate).await;
}

async fn survives(faults: Vec<Fault>) -> Setup {
    let setup = setup(
        SimConfig {
            faults,
            seed: 11,
            ..sim_config()
        },
        Options {
            policy: RetryPolicy::fast(10),
            vars: vec![("GRAPH_REQUEST_TIMEOUT", "5s".into())],
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    assert!(setup.sim.counters().faults_injected > 0);
    assert_eq!(load(&setup.stats.window_splits), 0);
    setup
}

#[tokio::test]
async fn a_5xx_storm_is_survived_with_the_full_result() {
    let setup = survives(vec![
        Fault::new(FaultKind::Status(500)).with_probability(0.2),
        Fault::new(FaultKind::Status(502)).with_probability(0.1),
        Fault::new(FaultKind::Status(503)).with_probability(0.1),
        Fault::new(FaultKind::Status(504)).with_probability(0.1),
    ])
    .await;
    assert!(load(&setup.stats.retries) >= setup.sim.counters().faults_injected);
}

#[tokio::test]
async fn truncated_bodies_are_retried() {
    survives(vec![
        Fault::new(FaultKind::TruncatedBody).with_probability(0.3),
    ])
    .await;
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    survives(vec![
        Fault::new(FaultKind::DropConnection).with_probability(0.3),
    ])
    .await;
}

#[tokio::test]
async fn a_401_mid_run_refreshes_the_token_and_retries_the_same_page() {
    let setup = setup(sim_config(), Options::default()).await;
    let (start, end) = window(&setup.sim, 5, 2);
    let mut stream = std::pin::pin!(setup.graph.fetch_window(
        signins(),
        start,
        end,
        setup.stats.clone(),
        FetchLimits::default()
    ));
    let mut pages = vec![stream.next().await.unwrap().unwrap()];
    setup
        .sim
        .set_faults(vec![Fault::new(FaultKind::ExpiredToken).first(1)]);
    while let Some(page) = stream.next().await {
        pages.push(page.unwrap());
    }
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    let counters = setup.sim.counters();
    assert_eq!(counters.unauthorized, 1);
    assert_eq!(
        counters.tokens_issued, 2,
        "one refresh, despite the SDK's own cache"
    );
    let issued = setup.credential.issued.lock().unwrap().clone();
    assert_eq!(issued.len(), 2);
    assert_ne!(issued[0], issued[1]);
}

#[tokio::test]
async fn a_401_that_outlasts_the_grace_for_new_credentials_is_permanent() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::ExpiredToken)],
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 2);
    let started = Instant::now();
    let (pages, error) = collect(&setup, signins(), start, end).await;
    let elapsed = started.elapsed();
    assert!(pages.is_empty());
    let error = error.unwrap();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    assert!(!error.is_transient());
    // RetryPolicy::fast retries 401s for 1 s (the last retry starts before it ends), each time
    // with a new token.
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let counters = setup.sim.counters();
    assert!(counters.unauthorized > 3, "{counters:?}");
    assert_eq!(
        counters.tokens_issued, counters.unauthorized,
        "{counters:?}"
    );
}

#[tokio::test]
async fn a_401_while_new_credentials_propagate_is_retried_until_graph_accepts_them() {
    // Graph refuses the first six requests whatever the token, as while an app's admin consent
    // reaches every front end.
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::ExpiredToken).first(6)],
            ..sim_config()
        },
        Options {
            policy: RetryPolicy {
                unauthorized_grace: Duration::from_secs(20),
                ..RetryPolicy::fast(6)
            },
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    let counters = setup.sim.counters();
    assert_eq!(counters.unauthorized, 6);
    assert_eq!(counters.tokens_issued, 7, "a new token after every 401");
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_ahead_of_expiry() {
    let setup = setup(
        SimConfig {
            token_lifetime: Duration::from_secs(2),
            page_latency: Duration::from_millis(150),
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 1);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    let counters = setup.sim.counters();
    assert_eq!(
        counters.unauthorized, 0,
        "refreshed before Graph refused it"
    );
    assert!(counters.tokens_issued >= 2, "{counters:?}");
}

#[tokio::test]
async fn short_lived_tokens_outlive_waits_in_a_busy_limiter() {
    // Tokens live 15 s (refreshed after 7.5 s); eight windows share 3 requests per 10 s, so a
    // request waits up to about 25 s in the limiter: a token taken before that wait would
    // expire on the way, and its replacement too.
    let setup = setup(
        SimConfig {
            token_lifetime: Duration::from_secs(15),
            throttle: Some(Throttle {
                requests: 3,
                per: Duration::from_secs(10),
            }),
            ..sim_config()
        },
        Options {
            limiter: Arc::new(Limiter::new(3)),
            ..Options::default()
        },
    )
    .await;
    let (first, _) = window(&setup.sim, 5, 4);
    let windows: Vec<_> = (0..8)
        .map(|n| {
            let start = first + time::Duration::minutes(20 * n);
            (start, start + time::Duration::minutes(20))
        })
        .collect();
    let results = futures::future::join_all(
        windows
            .iter()
            .map(|&(start, end)| collect(&setup, signins(), start, end)),
    )
    .await;
    for ((start, end), (pages, error)) in windows.iter().zip(&results) {
        assert!(error.is_none(), "{error:?}");
        assert_exactly_once(
            pages,
            &truth_ids(&setup.sim, Resource::SignIns, *start, *end),
        );
    }
    let counters = setup.sim.counters();
    assert_eq!(counters.unauthorized, 0, "{counters:?}");
    assert!(counters.tokens_issued >= 3, "{counters:?}");
    assert!(load(&setup.stats.requests) >= 16);
}

#[tokio::test]
async fn a_window_that_keeps_failing_is_split_in_half() {
    // Windows wider than 30 min fail with 500: 2 h -> 2 x 1 h -> 4 x 30 min.
    let setup = setup(
        SimConfig {
            faults: vec![
                Fault::new(FaultKind::Status(500))
                    .on(Resource::SignIns)
                    .wider_than(Duration::from_secs(1800)),
            ],
            ..sim_config()
        },
        Options {
            policy: RetryPolicy::fast(2),
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 4, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_complete(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    assert_eq!(load(&setup.stats.window_splits), 3);
}

#[tokio::test]
async fn a_window_that_keeps_timing_out_is_split() {
    let setup = setup(
        SimConfig {
            faults: vec![
                Fault::new(FaultKind::Stall(Duration::from_secs(3)))
                    .wider_than(Duration::from_secs(1800)),
            ],
            ..sim_config()
        },
        Options {
            policy: RetryPolicy::fast(2),
            vars: vec![("GRAPH_REQUEST_TIMEOUT", "1s".into())],
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_complete(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    assert_eq!(load(&setup.stats.window_splits), 1);
}

/// How long a test may take for what should happen "at once".
const PROMPTLY: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn a_retry_after_past_the_deadline_ends_the_streams_at_once() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::TooManyRequests("600".into())).first(1)],
            ..sim_config()
        },
        Options {
            // Production's longest single wait, so that sleeping would show.
            policy: RetryPolicy {
                max_retry_after: Duration::from_secs(300),
                ..RetryPolicy::fast(6)
            },
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 2);
    let started = Instant::now();
    let limits = FetchLimits::until(tokio::time::Instant::now() + Duration::from_secs(5));
    // Two windows at once: one is answered 429 with Retry-After 600, the other then finds the
    // shared limiter paused for 600 s, past its deadline too.
    let ((_, first), (_, second)) = tokio::join!(
        collect_within(&setup, signins(), start, end, limits),
        collect_within(&setup, audits(), start, end, limits)
    );
    let elapsed = started.elapsed();
    assert!(elapsed < PROMPTLY, "no sleeping: {elapsed:?}");
    let mut retry_afters = Vec::new();
    for error in [first.unwrap(), second.unwrap()] {
        match &error {
            Error::Throttled {
                status: 429,
                retry_after: Some(wait),
                ..
            } => retry_afters.push(*wait),
            other => panic!("{other:?}"),
        }
        assert!(error.is_transient());
        assert_eq!(error.retry_after(), retry_afters.last().copied());
    }
    retry_afters.sort();
    assert_eq!(
        retry_afters[1],
        Duration::from_secs(600),
        "the full Retry-After"
    );
    assert!(
        retry_afters[0] > Duration::from_secs(590),
        "what is left of it: {retry_afters:?}"
    );
    let (_, error) = collect_within(&setup, signins(), start, end, limits).await;
    let text = error.unwrap().to_string();
    assert!(
        text.ends_with("(HTTP 429) for 600 s (Retry-After)"),
        "{text}"
    );
    assert_eq!(load(&setup.stats.throttled), 1);
    assert_eq!(setup.sim.counters().throttled, 1);
}

#[tokio::test]
async fn no_request_is_sent_after_the_deadline() {
    // Two requests per 3 s: the third page waits for the limiter past the deadline.
    let setup = setup(
        sim_config(),
        Options {
            limiter: Arc::new(Limiter::with_period(2, Duration::from_secs(3))),
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    let (pages, error) =
        collect_within(&setup, signins(), start, end, FetchLimits::until(deadline)).await;
    let ended = tokio::time::Instant::now();
    assert_eq!(
        pages.len(),
        2,
        "the pages requested before the deadline arrive"
    );
    match error {
        Some(Error::DeadlinePassed { path }) => assert_eq!(path, "/v1.0/auditLogs/signIns"),
        other => panic!("{other:?}"),
    }
    assert!(
        ended >= deadline && ended < deadline + Duration::from_millis(500),
        "gave up at the deadline, not when the limiter had a slot: {:?} after it",
        ended.saturating_duration_since(deadline)
    );
    assert_eq!(
        load(&setup.stats.requests),
        2,
        "nothing sent after the deadline"
    );
    assert_eq!(setup.sim.counters().requests, 2);
}

#[tokio::test]
async fn absurd_retry_afters_end_the_stream_and_leave_the_limiter_usable() {
    for value in ["99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        // A limiter whose longest pause is short enough for a test (production: one hour).
        let limiter = Limiter::with_period(1000, Duration::from_secs(1))
            .with_max_pause(Duration::from_secs(2));
        let setup = setup(
            SimConfig {
                faults: vec![Fault::new(FaultKind::TooManyRequests(value.into())).first(1)],
                ..sim_config()
            },
            Options {
                limiter: Arc::new(limiter),
                ..Options::default()
            },
        )
        .await;
        let (start, end) = window(&setup.sim, 5, 2);
        let started = Instant::now();
        let limits = FetchLimits::until(tokio::time::Instant::now() + Duration::from_secs(5));
        let (pages, error) = collect_within(&setup, signins(), start, end, limits).await;
        assert!(
            started.elapsed() < PROMPTLY,
            "{value}: {:?}",
            started.elapsed()
        );
        assert!(pages.is_empty());
        let error = error.unwrap();
        let wait = error
            .retry_after()
            .unwrap_or_else(|| panic!("{value}: {error:?}"));
        assert!(
            wait > Duration::from_secs(7000 * 365 * 86_400),
            "{value}: {wait:?}"
        );
        // The limiter paused for its longest pause only: the next fetch, without deadline,
        // goes through within seconds.
        let started = Instant::now();
        let (pages, error) = collect(&setup, signins(), start, end).await;
        assert!(error.is_none(), "{value}: {error:?}");
        assert_exactly_once(
            &pages,
            &truth_ids(&setup.sim, Resource::SignIns, start, end),
        );
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{value}: {elapsed:?}");
    }
}

#[tokio::test]
async fn under_a_deadline_a_window_of_timeouts_is_split_in_time() {
    // Windows wider than 30 min hang longer than the request timeout. Six attempts of 2 s per
    // wide window (2 h, then both 1 h halves) would take 36 s; the deadline is 20 s away.
    let setup = setup(
        SimConfig {
            faults: vec![
                Fault::new(FaultKind::Stall(Duration::from_secs(5)))
                    .on(Resource::SignIns)
                    .wider_than(Duration::from_secs(1800)),
            ],
            ..sim_config()
        },
        Options {
            vars: vec![("GRAPH_REQUEST_TIMEOUT", "2s".into())],
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 4, 2);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (pages, error) =
        collect_within(&setup, signins(), start, end, FetchLimits::until(deadline)).await;
    let elapsed = started.elapsed();
    assert!(error.is_none(), "{error:?}");
    assert!(
        tokio::time::Instant::now() < deadline,
        "every record before the deadline: {elapsed:?}"
    );
    assert_complete(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    assert_eq!(load(&setup.stats.window_splits), 3);
    // 2 h: two attempts (a third would end past a quarter of the time left); each 1 h: one.
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
}

#[tokio::test]
async fn under_a_deadline_a_window_that_always_times_out_fails_early() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::Stall(Duration::from_secs(5)))],
            ..sim_config()
        },
        Options {
            vars: vec![
                ("GRAPH_REQUEST_TIMEOUT", "2s".into()),
                ("GRAPH_MIN_WINDOW", "15m".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    let (start, _) = window(&setup.sim, 4, 2);
    let end = start + time::Duration::hours(1);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (pages, error) =
        collect_within(&setup, signins(), start, end, FetchLimits::until(deadline)).await;
    let elapsed = started.elapsed();
    assert!(pages.is_empty());
    let error = error.unwrap();
    match &error {
        Error::Exhausted { attempts, last, .. } => {
            assert!(*attempts < 6, "{error:?}");
            assert!(matches!(**last, Error::Timeout { .. }), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    // 1 h (two attempts), 30 min and 15 min (one each): about 8 s, where the first window
    // alone used to take six full attempts (12 s).
    assert_eq!(load(&setup.stats.window_splits), 2);
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
}

#[tokio::test]
async fn splitting_stops_at_the_minimum_window() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::Status(500))],
            ..sim_config()
        },
        Options {
            policy: RetryPolicy::fast(2),
            vars: vec![("GRAPH_MIN_WINDOW", "1m".into())],
            ..Options::default()
        },
    )
    .await;
    let (start, _) = window(&setup.sim, 3, 2);
    let end = start + time::Duration::minutes(4);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(pages.is_empty());
    let error = error.unwrap();
    assert!(
        matches!(error, Error::Exhausted { attempts: 2, .. }),
        "{error:?}"
    );
    // 4 min -> 2 x 2 min; the first 2 min -> 2 x 1 min; the first 1 min cannot be split.
    assert_eq!(load(&setup.stats.window_splits), 2);
    assert!(error.to_string().contains("failed 2 times"), "{error}");
}

#[tokio::test]
async fn an_expired_skip_token_restarts_only_that_window() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::ExpiredSkiptoken).first(1)],
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 5, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_complete(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
    assert_eq!(load(&setup.stats.window_restarts), 1);
    assert_eq!(setup.sim.counters().bad_requests, 1);
}

#[tokio::test]
async fn a_bad_request_is_reported_with_its_query_and_not_retried() {
    let setup = setup(
        SimConfig {
            retention: Duration::from_secs(3600),
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let (_, error) = collect(&setup, signins(), start, end).await;
    let error = error.unwrap();
    assert!(matches!(error, Error::BadRequest { .. }), "{error:?}");
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(
        text.contains("`/v1.0/auditLogs/signIns` with $filter `createdDateTime ge ")
            && text.contains(" and createdDateTime lt ")
            && text.contains("Invalid filter clause"),
        "{text}"
    );
    assert!(!text.contains("Bearer") && !text.contains(SECRET));
    assert_eq!(setup.sim.counters().list_requests, 1);
}

#[tokio::test]
async fn a_licence_403_gets_three_tries_then_names_the_jobs_hint() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::LicenceForbidden)],
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let (_, error) = collect(&setup, signins(), start, end).await;
    let error = error.unwrap();
    assert!(matches!(error, Error::Forbidden { .. }), "{error:?}");
    assert!(
        error.to_string().contains(signins().forbidden_hint),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    );
    assert_eq!(setup.sim.counters().list_requests, 3);
}

#[tokio::test]
async fn an_intermittent_licence_403_is_survived() {
    let setup = setup(
        SimConfig {
            faults: vec![Fault::new(FaultKind::LicenceForbidden).first(2)],
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    assert_exactly_once(
        &pages,
        &truth_ids(&setup.sim, Resource::SignIns, start, end),
    );
}

#[tokio::test]
async fn a_record_without_id_is_set_apart_with_its_page_and_the_rest_arrives() {
    let setup = setup(sim_config(), Options::default()).await;
    let (start, end) = window(&setup.sim, 3, 2);
    let time = start + time::Duration::minutes(30);
    setup.sim.inject(
        Resource::SignIns,
        serde_json::json!({"createdDateTime": entra_export::timestamp::format(time), "userPrincipalName": "someone@contoso.com"}),
        OffsetDateTime::now_utc() - time::Duration::seconds(1),
    );
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    let rejects: Vec<(String, Vec<u8>)> = pages
        .iter()
        .flat_map(|p| {
            p.rejects()
                .map(|r| (r.reason.to_owned(), r.raw.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(rejects.len(), 1);
    let (reason, raw) = &rejects[0];
    assert!(reason.contains("/v1.0/auditLogs/signIns page "), "{reason}");
    assert!(reason.contains("has no `id`"), "{reason}");
    // The reason names fields, never values; the record itself is kept for the quarantine.
    assert!(!reason.contains("someone@contoso.com"), "{reason}");
    assert!(String::from_utf8_lossy(raw).contains("someone@contoso.com"));
    let truth: Vec<String> = truth_ids(&setup.sim, Resource::SignIns, start, end)
        .into_iter()
        .filter(|id| !id.is_empty())
        .collect();
    assert_exactly_once(&pages, &truth);
}

#[tokio::test]
async fn a_record_with_a_bad_time_is_set_apart_with_the_reason() {
    let setup = setup(sim_config(), Options::default()).await;
    let (start, end) = window(&setup.sim, 3, 2);
    setup.sim.inject(
        Resource::SignIns,
        serde_json::json!({"id": "bad-time", "createdDateTime": "yesterday"}),
        start + time::Duration::minutes(30),
    );
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(error.is_none(), "{error:?}");
    let reasons: Vec<String> = pages
        .iter()
        .flat_map(|p| p.rejects().map(|r| r.reason.to_owned()).collect::<Vec<_>>())
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("its `createdDateTime` is not a timestamp"),
        "{}",
        reasons[0]
    );
}

/// A tiny Graph stand-in whose first page links to another server.
#[tokio::test]
async fn a_foreign_next_link_is_refused_and_gets_no_token() {
    use axum::routing::get;
    let foreign_hits = Arc::new(AtomicUsize::new(0));
    let foreign = {
        let hits = foreign_hits.clone();
        axum::Router::new().fallback(get(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { "{}" }
        }))
    };
    let foreign_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let foreign_address = foreign_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(foreign_listener, foreign).await });
    let page = format!(
        r#"{{"@odata.nextLink":"http://{foreign_address}/v1.0/auditLogs/signIns?$skiptoken=x","value":[]}}"#
    );
    let graph = axum::Router::new().fallback(get(move || {
        let page = page.clone();
        async move { page }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, graph).await });

    let setup = setup(
        sim_config(),
        Options {
            vars: vec![("GRAPH_ENDPOINT", format!("http://{address}"))],
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let (pages, error) = collect(&setup, signins(), start, end).await;
    assert!(
        pages.is_empty(),
        "the page carrying the link is not yielded"
    );
    let error = error.unwrap();
    match &error {
        Error::ForeignNextLink { link_host, .. } => {
            assert_eq!(link_host, &format!("http://{foreign_address}"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(foreign_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_page_without_envelope_and_a_404_are_permanent() {
    use axum::http::StatusCode;
    use axum::routing::get;
    let fixture = std::fs::read_to_string(fixture_path(
        "directoryAudits-list-beta-example1-NO-ENVELOPE.json",
    ))
    .unwrap();
    let graph = axum::Router::new()
        .route(
            "/v1.0/auditLogs/directoryAudits",
            get(move || async move { fixture }),
        )
        .fallback(get(|| async {
            (
                StatusCode::NOT_FOUND,
                r#"{"error":{"code":"ResourceNotFound","message":"Resource not found"}}"#,
            )
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, graph).await });
    let setup = setup(
        sim_config(),
        Options {
            vars: vec![("GRAPH_ENDPOINT", format!("http://{address}"))],
            ..Options::default()
        },
    )
    .await;
    let (start, end) = window(&setup.sim, 3, 2);
    let (_, error) = collect(&setup, audits(), start, end).await;
    let error = error.unwrap();
    assert!(matches!(error, Error::InvalidPage { .. }), "{error:?}");
    let (_, error) = collect(&setup, signins(), start, end).await;
    let error = error.unwrap();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert_eq!(load(&setup.stats.requests), 2, "neither was retried");
}

/// A Graph fixture in the repository's own copy, `tests/fixtures/graph`.
fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/graph")
        .join(name)
}

/// Collects everything written through `tracing` (all targets, TRACE) on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_carry_no_token_secret_or_record_content() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let setup = setup(
        SimConfig {
            throttle: Some(Throttle {
                requests: 4,
                per: Duration::from_secs(1),
            }),
            faults: vec![
                Fault::new(FaultKind::Status(500)).first(1),
                Fault::new(FaultKind::TruncatedBody).first(1),
            ],
            ..sim_config()
        },
        Options::default(),
    )
    .await;
    let (start, end) = window(&setup.sim, 4, 2);
    let mut stream = std::pin::pin!(setup.graph.fetch_window(
        signins(),
        start,
        end,
        setup.stats.clone(),
        FetchLimits::default()
    ));
    let mut pages = vec![stream.next().await.unwrap().unwrap()];
    setup
        .sim
        .set_faults(vec![Fault::new(FaultKind::ExpiredToken).first(1)]);
    while let Some(page) = stream.next().await {
        pages.push(page.unwrap());
    }
    assert!(setup.sim.counters().throttled > 0 && setup.sim.counters().unauthorized == 1);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    if std::env::var_os("DUMP_GRAPH_LOGS").is_some() {
        eprintln!("{logs}");
    }
    assert!(
        logs.contains("graph request failed: retrying"),
        "warnings were logged"
    );
    assert!(
        logs.contains("graph page received"),
        "debug lines were logged"
    );
    let tokens = setup.credential.issued.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a token was logged");
    }
    assert!(!logs.contains(SECRET), "the client secret was logged");
    assert!(
        !logs.to_ascii_lowercase().contains("bearer "),
        "an Authorization header was logged"
    );
    // Personal data from the records.
    let mut personal: HashMap<String, usize> = HashMap::new();
    for page in &pages {
        for record in page.records() {
            let value: serde_json::Value = serde_json::from_slice(record.raw).unwrap();
            for field in ["userPrincipalName", "userDisplayName", "ipAddress"] {
                if let Some(text) = value[field].as_str().filter(|t| t.len() > 4) {
                    *personal.entry(text.to_owned()).or_default() += 1;
                }
            }
        }
    }
    assert!(personal.len() > 10);
    for text in personal.keys() {
        assert!(
            !logs.contains(text.as_str()),
            "record content logged: {text}"
        );
    }
}
