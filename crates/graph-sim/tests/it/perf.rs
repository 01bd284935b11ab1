//! Serving throughput: 1000-record pages with no latency and no throttle.

use std::time::{Duration, Instant};

use graph_sim::SimConfig;

use crate::helpers::Harness;

/// Follows next links reading raw bytes only (no JSON parsing on the client side).
async fn drain(harness: &Harness, url: &str) -> (usize, usize) {
    let mut next = Some(url.to_string());
    let (mut pages, mut bytes) = (0, 0);
    while let Some(url) = next.take() {
        let response = harness
            .http
            .get(&url)
            .bearer_auth(&harness.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let body = response.bytes().await.unwrap();
        pages += 1;
        bytes += body.len();
        let head = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        if let Some(start) = head.find("\"@odata.nextLink\":\"") {
            let rest = &head[start + 19..];
            next = Some(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    (pages, bytes)
}

/// Serves 50,000 sign-ins in 1000-record pages per API version and reports records per second.
/// Debug builds of the simulator are several times slower than release builds, so the bound
/// asserted here is loose; the printed figure is the measurement (run with `--nocapture`).
#[tokio::test]
async fn serves_sign_in_pages_quickly() {
    let harness = Harness::start(SimConfig {
        history: Duration::from_secs(3600),
        live_for: Duration::ZERO,
        signin_per_hour: 50_000,
        throttle: None,
        ..SimConfig::default()
    })
    .await;
    for version in ["v1.0", "beta"] {
        let before = harness.sim.counters().records_served;
        let url = harness.url(&format!("/{version}/auditLogs/signIns?$top=1000"));
        let started = Instant::now();
        let (pages, bytes) = drain(&harness, &url).await;
        let elapsed = started.elapsed();
        let records = harness.sim.counters().records_served - before;
        assert_eq!((records, pages), (50_000, 50));
        let rate = records as f64 / elapsed.as_secs_f64();
        println!(
            "{version}: {rate:.0} records/s, {:.0} MB/s, {} bytes per record",
            bytes as f64 / elapsed.as_secs_f64() / 1e6,
            bytes / records as usize
        );
        let floor = if cfg!(debug_assertions) {
            20_000.0
        } else {
            100_000.0
        };
        assert!(rate > floor, "{version}: {rate:.0} records/s");
    }
}
