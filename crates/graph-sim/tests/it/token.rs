//! The token endpoint: issuance, refusals, TLS.

use graph_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Harness, client_for, empty_config, get_with, token_url};

async fn post_form(harness: &Harness, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = crate::helpers::post_form(&harness.http, url, form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Form overrides, expected status, expected `error`, expected AADSTS code.
type RefusalCase = (
    Vec<(&'static str, &'static str)>,
    StatusCode,
    &'static str,
    u64,
);

fn good_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", "sim-client"),
        ("client_secret", "sim-secret"),
        ("scope", "https://graph.microsoft.com/.default"),
    ]
}

#[tokio::test]
async fn issues_a_bearer_token_for_the_configured_client() {
    let harness = Harness::start(SimConfig {
        token_lifetime: std::time::Duration::from_secs(1234),
        ..empty_config()
    })
    .await;
    let (status, body) = post_form(&harness, &token_url(&harness.sim), &good_form()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1234);
    assert_eq!(body["ext_expires_in"], 1234);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    assert_ne!(token, harness.token);
    assert_eq!(harness.sim.counters().tokens_issued, 2);
}

#[tokio::test]
async fn refuses_wrong_credentials_with_aadsts_errors() {
    let harness = Harness::start(empty_config()).await;
    let url = token_url(&harness.sim);
    let cases: Vec<RefusalCase> = vec![
        (
            vec![("client_secret", "wrong")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
        ),
        (
            vec![("client_id", "someone-else")],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            vec![("scope", "https://graph.microsoft.com/AuditLog.Read.All")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
        ),
        (
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for (overrides, expected_status, expected_error, code) in cases {
        let mut form = good_form();
        for (key, value) in &overrides {
            form.retain(|(k, _)| k != key);
            form.push((key, value));
        }
        let (status, body) = post_form(&harness, &url, &form).await;
        assert_eq!(status, expected_status, "{overrides:?}: {body}");
        assert_eq!(body["error"], expected_error);
        assert_eq!(body["error_codes"][0], code);
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        for key in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
            assert!(body[key].is_string(), "{key}");
        }
    }
    let (status, body) = post_form(
        &harness,
        &url.replace(
            &harness.sim.config().tenant,
            "11111111-2222-3333-4444-555555555555",
        ),
        &good_form(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002")
    );
    assert_eq!(harness.sim.counters().token_refused, 5);
    assert_eq!(harness.sim.counters().tokens_issued, 1);
}

#[tokio::test]
async fn wrong_secret_message_names_aadsts7000215() {
    let harness = Harness::start(empty_config()).await;
    let mut form = good_form();
    form[2] = ("client_secret", "nope");
    let (_, body) = post_form(&harness, &token_url(&harness.sim), &form).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("AADSTS7000215: Invalid client secret provided")
    );
}

#[tokio::test]
async fn certificate_is_valid_for_localhost_and_the_loopback_ip() {
    let harness = Harness::start(empty_config()).await;
    let localhost = token_url(&harness.sim).replace("127.0.0.1", "localhost");
    let (status, _) = post_form(&harness, &localhost, &good_form()).await;
    assert_eq!(status, StatusCode::OK);
    // A client that does not trust the generated CA refuses the connection.
    crate::helpers::install_crypto();
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .post(token_url(&harness.sim))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn graph_refuses_missing_unknown_and_expired_tokens() {
    let harness = Harness::start(SimConfig {
        token_lifetime: std::time::Duration::from_secs(2),
        ..empty_config()
    })
    .await;
    let url = harness.url("/v1.0/auditLogs/signIns");
    let (status, headers, body) = get_with(&harness.http, &url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(headers.get("www-authenticate").is_some());
    let (status, _, _) = get_with(&harness.http, &url, Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = harness.get(&url).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, body) = harness.get(&url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(harness.sim.counters().unauthorized, 3);
    let fresh = crate::helpers::fetch_token(&harness.sim, &client_for(&harness.sim)).await;
    let (status, _, _) = get_with(&harness.http, &url, Some(&fresh)).await;
    assert_eq!(status, StatusCode::OK);
}
