//! Per-client throttling: 429 with Retry-After in each style, budget and counters.

use std::time::{Duration, Instant};

use graph_sim::{RetryAfterStyle, SimConfig, Throttle};
use reqwest::StatusCode;

use crate::helpers::{Harness, assert_same_shape, empty_config, fixture};

fn throttled_config(style: RetryAfterStyle) -> SimConfig {
    SimConfig {
        throttle: Some(Throttle {
            requests: 2,
            per: Duration::from_millis(1500),
        }),
        retry_after_style: style,
        ..empty_config()
    }
}

/// Parses a Retry-After value of any style into a delay from now.
fn retry_after_delay(value: &str) -> Duration {
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::from_secs_f64(seconds);
    }
    let date = httpdate::parse_http_date(value).unwrap();
    date.duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
}

#[tokio::test]
async fn excess_requests_get_429_with_retry_after_in_each_style() {
    for style in [
        RetryAfterStyle::Integer,
        RetryAfterStyle::Fractional,
        RetryAfterStyle::HttpDate,
    ] {
        let harness = Harness::start(throttled_config(style)).await;
        let url = harness.url("/v1.0/auditLogs/signIns");
        assert_eq!(harness.get(&url).await.0, StatusCode::OK);
        assert_eq!(harness.get(&url).await.0, StatusCode::OK);
        let (status, headers, body) = harness.get(&url).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{style:?}");
        assert_same_shape(&body, &fixture("graph-429-throttled.body.json"), "");
        assert_eq!(body["error"]["code"], "TooManyRequests");
        let value = headers["retry-after"].to_str().unwrap().to_string();
        match style {
            RetryAfterStyle::Integer => {
                assert!(value.parse::<u64>().unwrap() >= 1, "{value}");
            }
            RetryAfterStyle::Fractional => {
                let (whole, fraction) = value.split_once('.').unwrap();
                assert!(
                    whole.parse::<u64>().is_ok() && fraction.len() == 3,
                    "{value}"
                );
            }
            RetryAfterStyle::HttpDate => {
                assert!(value.ends_with(" GMT"), "{value}");
                assert!(httpdate::parse_http_date(&value).unwrap() > std::time::SystemTime::now());
            }
        }
        let delay = retry_after_delay(&value);
        assert!(delay <= Duration::from_millis(2600), "{style:?} {value}");
        // Ignoring the Retry-After is counted.
        let (status, _, _) = harness.get(&url).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let counters = harness.sim.counters();
        assert_eq!(
            (counters.throttled, counters.retry_after_ignored),
            (2, 1),
            "{style:?}"
        );
        // Honouring it works and is not counted.
        let (_, headers, _) = harness.get(&url).await;
        let wait = retry_after_delay(headers["retry-after"].to_str().unwrap());
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        let (status, _, _) = harness.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{style:?}");
        let counters = harness.sim.counters();
        assert_eq!(counters.retry_after_ignored, 2, "{style:?}");
        assert_eq!(counters.max_requests_in_any_10s_window, 3);
    }
}

#[tokio::test]
async fn throttled_requests_do_not_consume_budget() {
    let harness = Harness::start(throttled_config(RetryAfterStyle::Fractional)).await;
    let url = harness.url("/v1.0/auditLogs/directoryAudits");
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    // Both accepted requests were accepted before this instant.
    let accepted_by = Instant::now();
    for _ in 0..5 {
        assert_eq!(harness.get(&url).await.0, StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The accepted requests have left the 1.5 s window; the throttled ones (the latest less than
    // a second old) would still be in it if they counted.
    tokio::time::sleep_until((accepted_by + Duration::from_millis(1600)).into()).await;
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    let counters = harness.sim.counters();
    assert_eq!(counters.throttled, 5);
    assert_eq!(counters.list_requests, 9);
    assert_eq!(counters.max_requests_in_any_10s_window, 4);
}

#[tokio::test]
async fn default_budget_is_five_per_ten_seconds() {
    let harness = Harness::start(SimConfig {
        throttle: SimConfig::default().throttle,
        ..empty_config()
    })
    .await;
    let url = harness.url("/beta/auditLogs/signIns");
    for _ in 0..5 {
        assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    }
    let (status, headers, _) = harness.get(&url).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let delay: f64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(delay > 5.0 && delay <= 10.0, "{delay}");
}

#[tokio::test]
async fn without_throttle_the_window_maximum_is_still_tracked() {
    let harness = Harness::start(empty_config()).await;
    let url = harness.url("/v1.0/auditLogs/signIns");
    for _ in 0..7 {
        assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    }
    assert_eq!(harness.sim.counters().max_requests_in_any_10s_window, 7);
}
