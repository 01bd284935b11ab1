//! The token endpoint: issuance, refusals, TLS.

use graph_sim::certs::{PfxStyle, TestCertificate, TestKey};
use graph_sim::{AppRegistration, SimConfig};
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

/// A simulator whose main app has a certificate of key A, plus a second app in another tenant
/// with a certificate of key B and no secret.
async fn with_certificates() -> (Harness, TestCertificate, TestCertificate) {
    let main = TestCertificate::generate(TestKey::A, "main app").unwrap();
    let other = TestCertificate::generate(TestKey::B, "other app").unwrap();
    let harness = Harness::start(SimConfig {
        client_certificates: vec![main.der.clone()],
        apps: vec![AppRegistration {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "graph-app".into(),
            client_secret: None,
            certificates: vec![other.der.clone()],
        }],
        ..empty_config()
    })
    .await;
    (harness, main, other)
}

fn assertion_form<'a>(client_id: &'a str, assertion: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
        ("scope", "https://graph.microsoft.com/.default"),
    ]
}

#[tokio::test]
async fn accepts_an_assertion_signed_by_a_registered_certificate_and_records_it() {
    let (harness, main, other) = with_certificates().await;
    let url = token_url(&harness.sim);
    let assertion = main.assertion("sim-client", &url, TestKey::A);
    let (status, body) = post_form(&harness, &url, &assertion_form("sim-client", &assertion)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same with PS256 and x5t#S256, the form Entra ID documents today.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ps256 = graph_sim::certs::sign_assertion(
        TestKey::A,
        &serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": main.x5t_s256()}),
        &serde_json::json!({"aud": url, "iss": "sim-client", "sub": "sim-client",
                            "jti": "1", "nbf": now, "exp": now + 300}),
    );
    let (status, body) = post_form(&harness, &url, &assertion_form("sim-client", &ps256)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The second app, in its own tenant.
    let other_url = format!(
        "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
        harness.sim.authority_url()
    );
    let assertion = other.assertion("graph-app", &other_url, TestKey::B);
    let (status, body) = post_form(
        &harness,
        &other_url,
        &assertion_form("graph-app", &assertion),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The issued token is a JWT naming tenant, app and audience.
    let token = body["access_token"].as_str().unwrap();
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["tid"], "contoso.onmicrosoft.com");
    assert_eq!(claims["appid"], "graph-app");
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        "https://sts.windows.net/contoso.onmicrosoft.com/"
    );

    let requests = harness.sim.token_requests();
    let last = requests.last().unwrap();
    assert_eq!(last.tenant, "contoso.onmicrosoft.com");
    assert_eq!(last.client_id.as_deref(), Some("graph-app"));
    assert_eq!(last.credential, "client_assertion");
    assert_eq!(last.x5t.as_deref(), Some(other.x5t().as_str()));
    assert_eq!(last.alg.as_deref(), Some("RS256"));
    assert_eq!(last.error_code, None);
    assert!(last.host.starts_with("127.0.0.1:"), "{}", last.host);
    // The harness's own secret request came first.
    assert_eq!(requests[0].credential, "client_secret");
}

#[tokio::test]
async fn refuses_bad_assertions_with_the_aadsts_codes_of_entra_id() {
    let (harness, main, other) = with_certificates().await;
    let url = token_url(&harness.sim);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |aud: &str, iss: &str, nbf: i64, exp: i64| serde_json::json!({"aud": aud, "iss": iss, "sub": iss, "jti": "j", "nbf": nbf, "exp": exp});
    let rs256 = |cert: &TestCertificate| serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": cert.x5t()});
    let sign = graph_sim::certs::sign_assertion;
    let cases: Vec<(&str, String, u64)> = vec![
        // Signed by key B, naming the certificate of key A.
        (
            "sim-client",
            sign(
                TestKey::B,
                &rs256(&main),
                &claims(&url, "sim-client", now, now + 300),
            ),
            700027,
        ),
        // A certificate not registered on this app (it is the other app's).
        (
            "sim-client",
            other.assertion("sim-client", &url, TestKey::B),
            700027,
        ),
        // No thumbprint in the header.
        (
            "sim-client",
            sign(
                TestKey::A,
                &serde_json::json!({"alg": "RS256", "typ": "JWT"}),
                &claims(&url, "sim-client", now, now + 300),
            ),
            700027,
        ),
        // Another issuer than the client id.
        (
            "sim-client",
            sign(
                TestKey::A,
                &rs256(&main),
                &claims(&url, "graph-app", now, now + 300),
            ),
            700021,
        ),
        // The audience of another tenant's endpoint.
        (
            "sim-client",
            main.assertion(
                "sim-client",
                &url.replace(&harness.sim.config().tenant, "contoso.onmicrosoft.com"),
                TestKey::A,
            ),
            700023,
        ),
        // Expired long ago.
        (
            "sim-client",
            sign(
                TestKey::A,
                &rs256(&main),
                &claims(&url, "sim-client", now - 7200, now - 3600),
            ),
            700024,
        ),
        // Not a JWT.
        ("sim-client", "not.a-jwt".to_owned(), 50027),
        // An unsupported algorithm.
        (
            "sim-client",
            sign(
                TestKey::A,
                &serde_json::json!({"alg": "ES256", "typ": "JWT", "x5t": main.x5t()}),
                &claims(&url, "sim-client", now, now + 300),
            ),
            5002738,
        ),
    ];
    for (client, assertion, code) in &cases {
        let (status, body) = post_form(&harness, &url, &assertion_form(client, assertion)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{code}: {body}");
        assert_eq!(body["error"], "invalid_client", "{code}: {body}");
        assert_eq!(body["error_codes"][0], *code, "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
    }
    // A secret for an app that has none, and an app asked for in a tenant it is not in.
    let other_url = format!(
        "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
        harness.sim.authority_url()
    );
    let mut form = good_form();
    form[1] = ("client_id", "graph-app");
    let (_, body) = post_form(&harness, &other_url, &form).await;
    assert_eq!(body["error_codes"][0], 7000215, "{body}");
    let (_, body) = post_form(&harness, &url, &form).await;
    assert_eq!(body["error_codes"][0], 700016, "{body}");
    let recorded = harness.sim.token_requests();
    let refused: Vec<u32> = recorded.iter().filter_map(|r| r.error_code).collect();
    assert_eq!(refused.len(), cases.len() + 2, "{recorded:?}");
    assert_eq!(recorded[1].x5t.as_deref(), Some(main.x5t().as_str()));
}

#[tokio::test]
async fn test_certificates_make_pem_files_and_pfx_files() {
    let certificate = TestCertificate::generate(TestKey::A, "files").unwrap();
    let bundle = certificate.pem_bundle();
    assert!(bundle.contains("-----BEGIN PRIVATE KEY-----"));
    assert!(bundle.contains("-----BEGIN CERTIFICATE-----"));
    for style in [PfxStyle::Modern, PfxStyle::Legacy] {
        let pfx = certificate.pfx("pa55", style).unwrap();
        assert_eq!(pfx[0], 0x30);
    }
    assert_eq!(certificate.sha1_hex().len(), 40);
    let again = TestCertificate::generate(TestKey::A, "files").unwrap();
    assert_ne!(again.sha1_hex(), certificate.sha1_hex());
}
