//! Injected faults, each kind and the matching rules.

use std::time::{Duration, Instant};

use graph_sim::{Fault, FaultKind, Resource, SimConfig};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    Harness, assert_same_shape, fast_config, fixture, fresh_client, iso, window_query,
};

async fn harness_with(faults: Vec<Fault>) -> Harness {
    Harness::start(SimConfig {
        faults,
        ..fast_config()
    })
    .await
}

#[tokio::test]
async fn status_faults_answer_graph_errors_for_the_first_n_requests() {
    for code in [500u16, 502, 503, 504] {
        let harness = harness_with(vec![Fault::new(FaultKind::Status(code)).first(2)]).await;
        let url = harness.url("/v1.0/auditLogs/signIns?$top=5");
        for _ in 0..2 {
            let (status, headers, body) = harness.get(&url).await;
            assert_eq!(status.as_u16(), code);
            assert_eq!(body["error"]["code"], "UnknownError");
            assert!(body["error"]["innerError"]["request-id"].is_string());
            assert_eq!(headers.contains_key("retry-after"), code == 503, "{code}");
        }
        assert_eq!(harness.get(&url).await.0, StatusCode::OK);
        assert_eq!(harness.sim.counters().faults_injected, 2);
    }
}

#[tokio::test]
async fn faults_respect_resource_probability_and_window_width() {
    let harness = harness_with(vec![
        Fault::new(FaultKind::Status(500))
            .on(Resource::SignIns)
            .wider_than(Duration::from_secs(3600)),
        Fault::new(FaultKind::Status(502)).with_probability(0.0),
    ])
    .await;
    let harness = &harness;
    let now = harness.sim.started_at();
    let wide = window_query(
        "createdDateTime",
        &iso(now - time::Duration::hours(2)),
        &iso(now),
    );
    let narrow = window_query(
        "createdDateTime",
        &iso(now - time::Duration::minutes(30)),
        &iso(now),
    );
    let status = |query: String, path: &'static str| {
        let url = harness.url(&format!("/v1.0/auditLogs/{path}?{query}"));
        async move { harness.get(&url).await.0 }
    };
    assert_eq!(
        status(wide.clone(), "signIns").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        status(String::new(), "signIns").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(status(narrow, "signIns").await, StatusCode::OK);
    assert_eq!(
        status(
            wide.replace("createdDateTime", "activityDateTime"),
            "directoryAudits"
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn truncated_body_does_not_parse() {
    let harness = harness_with(vec![Fault::new(FaultKind::TruncatedBody).first(1)]).await;
    let url = harness.url("/v1.0/auditLogs/signIns?$top=100");
    let response = fresh_client()
        .get(&url)
        .bearer_auth(&harness.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    match response.bytes().await {
        Err(_) => {}
        Ok(bytes) => assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err()),
    }
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
}

#[tokio::test]
async fn truncated_body_is_chunked_and_ends_without_the_last_chunk() {
    let harness = harness_with(vec![Fault::new(FaultKind::TruncatedBody)]).await;
    let address = harness
        .sim
        .graph_url()
        .trim_start_matches("http://")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /v1.0/auditLogs/signIns?$top=50 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
        harness.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let result =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(result.is_ok(), "the server closes the connection");
    let text = String::from_utf8_lossy(&received).to_lowercase();
    assert!(
        text.starts_with("http/1.1 200"),
        "{}",
        &text[..100.min(text.len())]
    );
    assert!(text.contains("transfer-encoding: chunked"));
    assert!(text.contains("\"value\":["));
    assert!(!text.ends_with("0\r\n\r\n"));
}

#[tokio::test]
async fn drop_connection_closes_without_a_response() {
    let harness = harness_with(vec![Fault::new(FaultKind::DropConnection).first(1)]).await;
    let url = harness.url("/v1.0/auditLogs/signIns");
    let result = fresh_client()
        .get(&url)
        .bearer_auth(&harness.token)
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    assert_eq!(harness.sim.counters().faults_injected, 1);
}

#[tokio::test]
async fn stall_delays_a_normal_answer() {
    let harness = harness_with(vec![
        Fault::new(FaultKind::Stall(Duration::from_millis(400))).first(1),
    ])
    .await;
    let url = harness.url("/v1.0/auditLogs/signIns?$top=1");
    let started = Instant::now();
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn expired_token_fault_answers_401() {
    let harness = harness_with(vec![Fault::new(FaultKind::ExpiredToken).first(1)]).await;
    let url = harness.url("/v1.0/auditLogs/directoryAudits");
    let (status, headers, body) = harness.get(&url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    assert_eq!(harness.sim.counters().unauthorized, 1);
}

#[tokio::test]
async fn expired_skiptoken_fault_only_hits_requests_with_a_skiptoken() {
    let harness = harness_with(vec![Fault::new(FaultKind::ExpiredSkiptoken).first(1)]).await;
    let (status, _, body) = harness
        .get(&harness.url("/v1.0/auditLogs/signIns?$top=5"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let next = body["@odata.nextLink"].as_str().unwrap();
    let (status, _, body) = harness.get(next).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_same_shape(
        &body,
        &fixture("error-400-invalid-skip-token-users.json"),
        "",
    );
    assert_eq!(body["error"]["message"], "Invalid Skip Token");
    assert_eq!(harness.get(next).await.0, StatusCode::OK);
}

#[tokio::test]
async fn licence_fault_answers_the_documented_403() {
    let harness = harness_with(vec![
        Fault::new(FaultKind::LicenceForbidden).on(Resource::SignIns),
    ])
    .await;
    let (status, _, body) = harness.get(&harness.url("/v1.0/auditLogs/signIns")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let expected = fixture("error-403-nonpremium-tenant.json");
    assert_same_shape(&body, &expected, "");
    assert_eq!(body["error"]["code"], expected["error"]["code"]);
    assert_eq!(body["error"]["message"], expected["error"]["message"]);
    assert_eq!(
        harness
            .get(&harness.url("/v1.0/auditLogs/directoryAudits"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn too_many_requests_fault_sends_its_retry_after_verbatim() {
    let values = [
        "600",
        "99999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "",
    ];
    let harness = harness_with(
        values
            .iter()
            .map(|v| Fault::new(FaultKind::TooManyRequests(v.to_string())).first(1))
            .collect(),
    )
    .await;
    let url = harness.url("/v1.0/auditLogs/signIns?$top=5");
    for value in values {
        let (status, headers, body) = harness.get(&url).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{value}");
        assert_eq!(
            headers.get("retry-after").map(|v| v.to_str().unwrap()),
            Some(value).filter(|v| !v.is_empty()),
        );
        assert_same_shape(&body, &fixture("graph-429-throttled.body.json"), "");
    }
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    let counters = harness.sim.counters();
    assert_eq!((counters.throttled, counters.faults_injected), (4, 4));
    assert_eq!(counters.retry_after_ignored, 0);
}

#[tokio::test]
async fn faults_and_latency_can_change_at_run_time() {
    let harness = harness_with(Vec::new()).await;
    let url = harness.url("/v1.0/auditLogs/signIns?$top=1");
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    harness
        .sim
        .set_faults(vec![Fault::new(FaultKind::Status(504)).first(1)]);
    assert_eq!(harness.get(&url).await.0, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    harness.sim.set_page_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(harness.get(&url).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn per_record_latency_scales_with_the_page() {
    let harness = Harness::start(SimConfig {
        per_record_latency: Duration::from_millis(5),
        ..fast_config()
    })
    .await;
    let started = Instant::now();
    let (_, _, body) = harness
        .get(&harness.url("/v1.0/auditLogs/signIns?$top=100"))
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 100);
    assert!(started.elapsed() >= Duration::from_millis(500));
}
