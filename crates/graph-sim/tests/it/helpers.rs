//! Shared test helpers: a fast simulator configuration, HTTP clients, token fetching, paging.

use std::path::PathBuf;
use std::time::Duration;

use graph_sim::{Sim, SimConfig};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// No throttle, a small history, data dense enough for ties.
pub fn fast_config() -> SimConfig {
    SimConfig {
        seed: 42,
        history: Duration::from_secs(2 * 3600),
        live_for: Duration::from_secs(60),
        audit_per_hour: 1500,
        signin_per_hour: 3000,
        throttle: None,
        ..SimConfig::default()
    }
}

/// A configuration with no generated records, for hand-made ones.
pub fn empty_config() -> SimConfig {
    SimConfig {
        audit_per_hour: 0,
        signin_per_hour: 0,
        throttle: None,
        ..SimConfig::default()
    }
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that trusts the simulator's CA (in addition to the system roots).
pub fn client_for(sim: &Sim) -> reqwest::Client {
    install_crypto();
    let certs = reqwest::Certificate::from_pem_bundle(sim.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_merge(certs)
        .build()
        .unwrap()
}

/// A client with no connection reuse, for faults that kill connections.
pub fn fresh_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub fn token_url(sim: &Sim) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        sim.authority_url(),
        sim.config().tenant
    )
}

/// A started simulator with a client and a valid token.
pub struct Harness {
    pub sim: Sim,
    pub http: reqwest::Client,
    pub token: String,
}

impl Harness {
    pub async fn start(config: SimConfig) -> Harness {
        let sim = graph_sim::start(config).await.unwrap();
        let http = client_for(&sim);
        let token = fetch_token(&sim, &http).await;
        Harness { sim, http, token }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.sim.graph_url(), path_and_query)
    }

    /// GET with the bearer token; the body as JSON (Null when it does not parse).
    pub async fn get(&self, url: &str) -> (StatusCode, HeaderMap, Value) {
        get_with(&self.http, url, Some(&self.token)).await
    }

    /// Follows next links from `url`; returns the records and the number of pages.
    pub async fn collect(&self, url: &str) -> (Vec<Value>, usize) {
        let mut records = Vec::new();
        let mut pages = 0;
        let mut next = Some(url.to_string());
        while let Some(url) = next {
            let (status, _, body) = self.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            pages += 1;
            records.extend(body["value"].as_array().unwrap().iter().cloned());
            next = body["@odata.nextLink"].as_str().map(str::to_string);
            assert!(pages < 100_000, "paging does not end");
        }
        (records, pages)
    }
}

/// POSTs `pairs` as `application/x-www-form-urlencoded`.
pub fn post_form(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

pub async fn fetch_token(sim: &Sim, http: &reqwest::Client) -> String {
    let config = sim.config();
    let response = post_form(
        http,
        &token_url(sim),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

pub async fn get_with(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// `2024-01-13T14:13:32.1234567Z` style, whole seconds.
pub fn iso(instant: OffsetDateTime) -> String {
    instant
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

pub fn parse_time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

/// `$filter=<field> ge <start> and <field> lt <end>` as a query string.
pub fn window_query(field: &str, start: &str, end: &str) -> String {
    format!("$filter={field}%20ge%20{start}%20and%20{field}%20lt%20{end}")
}

/// The repository's Graph fixtures, `<repo>/tests/fixtures/graph` (this crate is
/// `<repo>/crates/graph-sim`).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/graph")
}

pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Every key path of `expected` exists in `actual` with the same JSON type; `null` on either
/// side matches anything.
pub fn assert_same_shape(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (_, Value::Null) | (Value::Null, _) => {}
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, value) in expected {
                let inner = actual
                    .get(key)
                    .unwrap_or_else(|| panic!("missing {path}.{key}"));
                assert_same_shape(inner, value, &format!("{path}.{key}"));
            }
        }
        (Value::Array(actual), Value::Array(expected)) => {
            if let (Some(a), Some(e)) = (actual.first(), expected.first()) {
                assert_same_shape(a, e, &format!("{path}[0]"));
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: {actual} does not have the type of {expected}"),
    }
}

/// This crate's own fixtures, `crates/graph-sim/tests/fixtures` (see the `SOURCES.md` there).
pub fn crate_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A verbatim documentation fixture that is not valid JSON only because of trailing commas
/// (`,` before `]` or `}`): parsed with those commas removed.
pub fn lenient_fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()));
    let mut cleaned = String::with_capacity(text.len());
    let mut pending_comma = false;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            cleaned.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            ',' => {
                if pending_comma {
                    cleaned.push(',');
                }
                pending_comma = true;
            }
            c if c.is_whitespace() => cleaned.push(c),
            c => {
                if pending_comma && c != ']' && c != '}' {
                    cleaned.push(',');
                }
                pending_comma = false;
                if c == '"' {
                    in_string = true;
                }
                cleaned.push(c);
            }
        }
    }
    serde_json::from_str(&cleaned).unwrap()
}

/// A query-string value with spaces and quotes percent-encoded.
pub fn encode(value: &str) -> String {
    value
        .replace(' ', "%20")
        .replace('\'', "%27")
        .replace('+', "%2B")
}
