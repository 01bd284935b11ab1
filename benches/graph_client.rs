//! Graph client throughput: `cargo bench --bench graph_client`.
//!
//! 1. Parsing 1000-record sign-in pages (`client::parse_page`), one core.
//! 2. Streaming a window from the simulator with no latency and no throttling: the client runs on
//!    a current-thread runtime (one core), the simulator on its own thread. Reports records/s
//!    and the resident memory while paging (it must not grow with the page count).
//!
//! A plain `harness = false` binary: no benchmark framework, numbers printed as text.
//! `BENCH_QUICK=1` shortens both parts (used as a smoke test). `BENCH_JSON=<file>` also writes
//! the figures there as one JSON object (read by `target/release/bench`, see
//! `docs/BENCHMARKS.md`). Parsing runs in several rounds and reports the median round.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use entra_export::auth::{TokenCache, build_credentials};
use entra_export::client::throttle::Limiter;
use entra_export::client::{FetchLimits, FetchStats, parse_page};
use entra_export::config::Config;
use entra_export::job::JobKind;
use futures::StreamExt;

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let parse = parse_pages(if quick { 20 } else { 200 }, if quick { 3 } else { 7 });
    let stream = stream_from_simulator(if quick { 20_000 } else { 200_000 });
    if let Some(path) = std::env::var_os("BENCH_JSON") {
        let json = serde_json::json!({ "parse_page": parse, "stream": stream, "quick": quick });
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap())
            .expect("BENCH_JSON is writable");
    }
}

/// A 1000-record page built from the documented sign-in example, with distinct ids and times.
fn thousand_record_page() -> Bytes {
    let template = r#"{"id":"ID","createdDateTime":"TIME","userDisplayName":"Test Contoso","userPrincipalName":"testaccount1@contoso.com","userId":"26be570a-ae82-4189-b4e2-a37c6808512d","appId":"de8bc8b5-d9f9-48b1-a8ad-b748da725064","appDisplayName":"Graph explorer","ipAddress":"131.107.159.37","clientAppUsed":"Browser","correlationId":"d79f5bee-5860-4832-928f-3133e22ae912","conditionalAccessStatus":"success","isInteractive":true,"riskDetail":"none","riskLevelAggregated":"none","riskLevelDuringSignIn":"none","riskState":"none","riskEventTypes":[],"riskEventTypes_v2":[],"resourceDisplayName":"Microsoft Graph","resourceId":"00000003-0000-0000-c000-000000000000","status":{"errorCode":0,"failureReason":null,"additionalDetails":null},"deviceDetail":{"deviceId":"","displayName":null,"operatingSystem":"Windows 10","browser":"Edge 80.0.361","isCompliant":null,"isManaged":null,"trustType":null},"location":{"city":"Redmond","state":"Washington","countryOrRegion":"US","geoCoordinates":{"altitude":null,"latitude":47.68050003051758,"longitude":-122.12094116210938}},"appliedConditionalAccessPolicies":[{"id":"de7e60eb-ed89-4d73-8205-2227def6b7c9","displayName":"SharePoint limited access for guest workers","enforcedGrantControls":[],"enforcedSessionControls":[],"result":"notEnabled"},{"id":"6701a0c3-4c7a-4a2b-9e4b-2b1bb1a8d9e2","displayName":"Exchange Online Requires Compliant Device","enforcedGrantControls":[],"enforcedSessionControls":[],"result":"notEnabled"}]}"#;
    let mut body = String::from(
        r#"{"@odata.context":"https://graph.microsoft.us/v1.0/$metadata#auditLogs/signIns","@odata.nextLink":"https://graph.microsoft.us/v1.0/auditLogs/signIns?$top=1000&$skiptoken=abc","value":["#,
    );
    for n in 0..1000 {
        if n > 0 {
            body.push(',');
        }
        let time = format!(
            "2024-03-13T19:{:02}:{:02}.{:07}Z",
            n / 60 % 60,
            n % 60,
            n * 37
        );
        body.push_str(
            &template
                .replace("ID", &format!("66ea54eb-6301-4ee5-be62-{n:012}"))
                .replace("TIME", &time),
        );
    }
    body.push_str("]}");
    Bytes::from(body)
}

fn parse_pages(iterations: usize, rounds: usize) -> serde_json::Value {
    let page = thousand_record_page();
    let job = JobKind::SignIn.spec_template();
    // Warm up.
    for _ in 0..5 {
        black_box(parse_page(page.clone(), job, 0).unwrap());
    }
    let mut round_rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let mut records = 0usize;
        for index in 0..iterations {
            let parsed = parse_page(page.clone(), job, index).unwrap();
            records += parsed
                .page
                .records()
                .map(|r| black_box(r.raw.len()).min(1))
                .sum::<usize>();
        }
        round_rates.push(records as f64 / started.elapsed().as_secs_f64());
    }
    round_rates.sort_by(f64::total_cmp);
    let median = round_rates[round_rates.len() / 2];
    let per_page_us = 1000.0 / median * 1e6;
    let mib_per_s = median / 1000.0 * page.len() as f64 / (1024.0 * 1024.0);
    println!(
        "parse_page: {rounds} rounds of {iterations} pages x 1000 records ({} KiB each), median round: {per_page_us:.0} us per page, {median:.0} records/s, {mib_per_s:.0} MiB/s (rounds: {:.0} .. {:.0} records/s)",
        page.len() / 1024,
        round_rates[0],
        round_rates[round_rates.len() - 1],
    );
    serde_json::json!({
        "page_bytes": page.len(),
        "pages_per_round": iterations,
        "rounds": rounds,
        "records_per_s_median": median,
        "records_per_s_min": round_rates[0],
        "records_per_s_max": round_rates[round_rates.len() - 1],
        "us_per_page": per_page_us,
        "mib_per_s": mib_per_s,
    })
}

fn stream_from_simulator(records_wanted: u32) -> serde_json::Value {
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let per_hour = records_wanted;
    let sim = sim_runtime
        .block_on(graph_sim::start(graph_sim::SimConfig {
            history: Duration::from_secs(2 * 3600),
            live_for: Duration::from_secs(60),
            signin_per_hour: per_hour,
            audit_per_hour: 10,
            throttle: None,
            ..graph_sim::SimConfig::default()
        }))
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    sim.write_ca_file(&ca).unwrap();
    let config = Config::from_vars([
        ("AZURE_TENANT_ID", sim.config().tenant.clone()),
        ("AUTH_MODE", "client_secret".into()),
        ("AZURE_CLIENT_ID", sim.config().client_id.clone()),
        ("AZURE_CLIENT_SECRET", sim.config().client_secret.clone()),
        ("AZURE_AUTHORITY_HOST", sim.authority_url()),
        ("GRAPH_ENDPOINT", sim.graph_url()),
        ("EXTRA_CA_FILE", ca.display().to_string()),
        (
            "STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true".into(),
        ),
        ("GRAPH_PAGE_SIZE", "1000".into()),
    ])
    .unwrap();
    let start = sim.started_at() - time::Duration::hours(2);
    let end = sim.started_at() - time::Duration::hours(1);

    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = client_runtime.block_on(async {
        let http = entra_export::http::build_client(config.extra_ca_file.as_deref()).unwrap();
        let credential = build_credentials(&config, http.clone()).unwrap().graph;
        let tokens = Arc::new(TokenCache::new(credential, config.graph.scope.clone()));
        let limiter = Arc::new(Limiter::with_period(1_000_000, Duration::from_secs(1)));
        let graph = entra_export::graph::client(&config.graph, tokens, http, limiter);
        let job = JobKind::SignIn.spec_template();
        let mut result = serde_json::Value::Null;
        for round in ["warm-up", "measured"] {
            let stats = Arc::new(FetchStats::default());
            let mut pages = std::pin::pin!(graph.fetch_window(job, start, end, stats, FetchLimits::default()));
            let started = Instant::now();
            let (mut records, mut bytes, mut count) = (0usize, 0usize, 0usize);
            let mut rss = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.expect("page");
                records += page.records().count();
                bytes += page.body_len();
                count += 1;
                if count % 10 == 0 {
                    rss.push(resident_kib());
                }
            }
            let elapsed = started.elapsed();
            if round == "measured" {
                println!(
                    "stream from simulator: {records} records in {count} pages ({} MiB) in {elapsed:?}: {:.0} records/s; resident memory every 10 pages (KiB): {rss:?}",
                    bytes / (1024 * 1024),
                    records as f64 / elapsed.as_secs_f64(),
                );
                result = serde_json::json!({
                    "records": records,
                    "pages": count,
                    "bytes": bytes,
                    "seconds": elapsed.as_secs_f64(),
                    "records_per_s": records as f64 / elapsed.as_secs_f64(),
                    "rss_kib_every_10_pages": rss,
                });
            }
        }
        result
    });
    drop(sim);
    result
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
