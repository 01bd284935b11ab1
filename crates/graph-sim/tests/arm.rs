//! The Azure Resource Manager part over real HTTP: subscriptions, the Activity Log's `$filter`
//! grammar, paging, order, retention, late publication, per-subscription 403/404, token audience
//! and read throttling.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use graph_sim::{ArmAccess, ArmConfig, ArmThrottle, Lateness, Sim, SimConfig, subscription_id};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ARM_SCOPE: &str = "https://management.azure.com/.default";
const ARM_GOV_SCOPE: &str = "https://management.usgovcloudapi.net/.default";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const ACTIVITY: &str = "providers/Microsoft.Insights/eventtypes/management/values";

/// Dense events, all published 1 s after they happen, no throttling, small pages.
fn arm_config() -> ArmConfig {
    ArmConfig {
        subscriptions: 2,
        events_per_hour: 600,
        history: Duration::from_secs(3 * 3600),
        live_for: Duration::ZERO,
        publication_delay: Lateness::Fixed(Duration::from_secs(1)),
        page_size: 50,
        throttle: None,
        ..ArmConfig::default()
    }
}

fn sim_config(arm: ArmConfig) -> SimConfig {
    SimConfig {
        seed: 11,
        audit_per_hour: 0,
        signin_per_hour: 0,
        throttle: None,
        arm,
        ..SimConfig::default()
    }
}

struct Arm {
    sim: Sim,
    http: reqwest::Client,
    token: String,
}

impl Arm {
    async fn start(arm: ArmConfig) -> Arm {
        let sim = graph_sim::start(sim_config(arm)).await.unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = reqwest::Certificate::from_pem_bundle(sim.ca_pem().as_bytes()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_merge(certs)
            .build()
            .unwrap();
        let mut arm = Arm {
            sim,
            http,
            token: String::new(),
        };
        arm.token = arm.token_for(ARM_SCOPE).await;
        arm
    }

    async fn token_for(&self, scope: &str) -> String {
        let config = self.sim.config();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("client_id", config.client_id.as_str()),
                ("client_secret", config.client_secret.as_str()),
                ("scope", scope),
            ])
            .finish();
        let response = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.sim.authority_url(),
                config.tenant
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    fn sub(&self, n: u32) -> String {
        subscription_id(n)
    }

    /// The Activity Log URL of subscription `sub` with `query` appended verbatim.
    fn activity_url(&self, sub: &str, query: &str) -> String {
        format!(
            "{}/subscriptions/{sub}/{ACTIVITY}?{query}",
            self.sim.arm_url()
        )
    }

    /// The Activity Log URL for `ge start and le end`, properly encoded.
    fn window_url(&self, sub: &str, start: &str, end: &str) -> String {
        let filter = format!("eventTimestamp ge '{start}' and eventTimestamp le '{end}'");
        self.activity_url(
            sub,
            &query(&[("api-version", "2015-04-01"), ("$filter", &filter)]),
        )
    }

    async fn get(&self, url: &str) -> (StatusCode, HeaderMap, Value) {
        get_with(&self.http, url, Some(&self.token)).await
    }

    /// Follows `nextLink` from `url`: the events and the number of pages.
    async fn collect(&self, url: &str) -> (Vec<Value>, usize) {
        let mut events = Vec::new();
        let mut pages = 0;
        let mut next = Some(url.to_string());
        while let Some(url) = next {
            let (status, _, body) = self.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            pages += 1;
            events.extend(body["value"].as_array().unwrap().iter().cloned());
            next = body["nextLink"].as_str().map(str::to_string);
            if let Some(link) = &next {
                assert!(link.starts_with(&self.sim.arm_url()), "{link}");
                assert!(link.contains("$skiptoken="), "{link}");
            }
            assert!(pages < 10_000, "paging does not end");
        }
        (events, pages)
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn get_with(
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
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn iso(instant: OffsetDateTime) -> String {
    instant.format(&Rfc3339).unwrap()
}

fn parse(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["eventDataId"].as_str().unwrap().to_string())
        .collect()
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/arm")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn filter_grammar_accepted_and_refused() {
    let arm = Arm::start(arm_config()).await;
    let sub = arm.sub(1);
    let now = OffsetDateTime::now_utc();
    let t0 = iso(now - Duration::from_secs(3600));
    let t1 = iso(now);
    let accepted = [
        format!("eventTimestamp ge '{t0}' and eventTimestamp le '{t1}'"),
        format!("eventTimestamp ge '{t0}'"),
        format!("  EventTimestamp   GE '{t0}'   AND eventTimestamp LE '{t1}' "),
        format!(
            "eventTimestamp ge '{}' and eventTimestamp le '{}'",
            (now - Duration::from_secs(3600))
                .to_offset(time::macros::offset!(+2))
                .format(&Rfc3339)
                .unwrap(),
            "2099-01-01T00:00:00.123456789Z"
        ),
    ];
    for filter in &accepted {
        let url = arm.activity_url(
            &sub,
            &query(&[("api-version", "2015-04-01"), ("$filter", filter)]),
        );
        let (status, _, body) = arm.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{filter}: {body}");
        assert!(body["value"].is_array());
    }
    let refused = [
        format!("eventTimestamp ge {t0} and eventTimestamp le {t1}"),
        format!("eventTimestamp gt '{t0}' and eventTimestamp le '{t1}'"),
        format!("eventTimestamp ge '{t0}' and eventTimestamp lt '{t1}'"),
        format!("eventTimestamp eq '{t0}'"),
        format!("eventTimestamp le '{t1}'"),
        format!("eventTimestamp ge '{t0}' or eventTimestamp le '{t1}'"),
        format!(
            "eventTimestamp ge '{t0}' and eventTimestamp le '{t1}' and resourceGroupName eq 'rg-sim-1'"
        ),
        format!("eventTimestamp ge '{t0}' and eventTimestamp le '{t1}' and status eq 'Failed'"),
        format!(
            "eventTimestamp ge '{t0}' and eventTimestamp le '{t1}' and correlationId eq '1e121103-0ba6-4300-ac9d-952bb5d0c80f'"
        ),
        "eventTimestamp ge 'yesterday'".to_string(),
        "createdDateTime ge 2024-01-01T00:00:00Z".to_string(),
        String::new(),
    ];
    let shape = fixture("error-400-start-time-90-days.json");
    for filter in &refused {
        let url = arm.activity_url(
            &sub,
            &query(&[("api-version", "2015-04-01"), ("$filter", filter)]),
        );
        let (status, _, body) = arm.get(&url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}: {body}");
        assert_eq!(body["code"], "BadRequest", "{filter}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("$filter"),
            "{body}"
        );
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            shape.as_object().unwrap().keys().collect::<Vec<_>>()
        );
    }
    // No $filter at all.
    let (status, _, body) = arm
        .get(&arm.activity_url(&sub, "api-version=2015-04-01"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "BadRequest");

    // api-version: ARM's own error shape.
    let filter = format!("eventTimestamp ge '{t0}'");
    for (version, code) in [
        (None, "MissingApiVersionParameter"),
        (Some("2017-03-01-preview"), "NoRegisteredProviderFound"),
        (Some("2099-01-01"), "NoRegisteredProviderFound"),
        (Some("latest"), "InvalidApiVersionParameter"),
    ] {
        let mut pairs = vec![("$filter", filter.as_str())];
        if let Some(version) = version {
            pairs.push(("api-version", version));
        }
        let (status, _, body) = arm.get(&arm.activity_url(&sub, &query(&pairs))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{version:?}");
        assert_eq!(body["error"]["code"], code, "{version:?}: {body}");
    }

    // The Insights errors can be wrapped like ARM's own.
    let wrapped = Arm::start(ArmConfig {
        rp_errors_wrapped: true,
        ..arm_config()
    })
    .await;
    let url = wrapped.activity_url(
        &sub,
        &query(&[
            ("api-version", "2015-04-01"),
            ("$filter", "eventTimestamp gt '2024-01-01T00:00:00Z'"),
        ]),
    );
    let (status, _, body) = wrapped.get(&url).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BadRequest");
    let counters = arm.sim.arm_counters();
    assert!(counters.total.bad_requests >= refused.len() as u64 + 5);
}

#[tokio::test]
async fn bounds_are_inclusive_and_match_the_truth() {
    let arm = Arm::start(arm_config()).await;
    let sub = arm.sub(1);
    let start = arm.sim.started_at() - Duration::from_secs(2 * 3600);
    let truth = arm
        .sim
        .arm_truth(&sub, start, start + Duration::from_secs(1800));
    assert!(truth.len() > 100, "{}", truth.len());
    // A window whose both ends are exactly the times of two events.
    let first = &truth[10];
    let last = &truth[truth.len() - 10];
    let url = arm.window_url(
        &sub,
        &iso(first.event_timestamp),
        &iso(last.event_timestamp),
    );
    let (events, _) = arm.collect(&url).await;
    let got: HashSet<String> = ids(&events).into_iter().collect();
    let expected: HashSet<String> = arm
        .sim
        .arm_truth(
            &sub,
            first.event_timestamp,
            last.event_timestamp + Duration::from_nanos(1),
        )
        .into_iter()
        .map(|record| record.event_data_id)
        .collect();
    assert_eq!(got, expected);
    assert!(got.contains(&first.event_data_id));
    assert!(got.contains(&last.event_data_id));
    // One nanosecond inside on both sides drops exactly the events at the two instants.
    let inner = arm.window_url(
        &sub,
        &iso(first.event_timestamp + Duration::from_nanos(1)),
        &iso(last.event_timestamp - Duration::from_nanos(1)),
    );
    let (inner_events, _) = arm.collect(&inner).await;
    let at_ends = events
        .iter()
        .filter(|event| {
            let time = parse(event["eventTimestamp"].as_str().unwrap());
            time == first.event_timestamp || time == last.event_timestamp
        })
        .count();
    assert!(at_ends >= 2);
    assert_eq!(inner_events.len(), events.len() - at_ends);
}

#[tokio::test]
async fn newest_first_complete_paging_and_truth_endpoint() {
    let arm = Arm::start(ArmConfig {
        short_page_probability: 0.3,
        ..arm_config()
    })
    .await;
    let sub = arm.sub(2);
    let start = arm.sim.started_at() - Duration::from_secs(3 * 3600 + 60);
    // Well before start: every event of the window is published before the first request.
    let end = arm.sim.started_at() - Duration::from_secs(5);
    let url = arm.window_url(&sub, &iso(start), &iso(end));
    let (events, pages) = arm.collect(&url).await;
    let truth = arm
        .sim
        .arm_truth(&sub, start, end + Duration::from_nanos(1));
    assert!(truth.len() > 1500, "{}", truth.len());
    assert!(pages > truth.len() / 50, "{pages} pages");
    let got = ids(&events);
    assert_eq!(
        got.len(),
        got.iter().collect::<HashSet<_>>().len(),
        "duplicates"
    );
    let mut expected: Vec<String> = truth.iter().map(|r| r.event_data_id.clone()).collect();
    expected.reverse();
    assert_eq!(
        got, expected,
        "newest first, ties by eventDataId descending"
    );
    // Times never increase.
    let times: Vec<OffsetDateTime> = events
        .iter()
        .map(|event| parse(event["eventTimestamp"].as_str().unwrap()))
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]));

    // A skiptoken replayed on another window or subscription is refused.
    let (_, _, first_page) = arm.get(&url).await;
    let link = first_page["nextLink"].as_str().unwrap().to_string();
    let token = link.split("$skiptoken=").nth(1).unwrap();
    let other = format!(
        "{}&$skiptoken={token}",
        arm.window_url(&arm.sub(1), &iso(start), &iso(end))
    );
    let (status, _, body) = arm.get(&other).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The truth endpoint agrees with Sim::arm_truth.
    let truth_url = format!(
        "{}/_sim/arm/truth?{}",
        arm.sim.arm_url(),
        query(&[
            ("subscription", sub.as_str()),
            ("start", &iso(start)),
            ("end", &iso(end + Duration::from_nanos(1000))),
        ])
    );
    let (status, _, body) = get_with(&arm.http, &truth_url, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<String> = body[&sub]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["eventDataId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        truth
            .iter()
            .map(|r| r.event_data_id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(body.as_object().unwrap().len(), 1);
    let counters = arm.sim.arm_counters();
    assert_eq!(counters.total.pages_served, pages as u64 + 1);
    assert_eq!(
        counters.per_subscription[&sub].records_served,
        events.len() as u64 + first_page["value"].as_array().unwrap().len() as u64
    );
}

#[tokio::test]
async fn multi_phase_operations_share_correlation_ids() {
    let arm = Arm::start(arm_config()).await;
    let sub = arm.sub(1);
    let start = arm.sim.started_at() - Duration::from_secs(3 * 3600);
    let (events, _) = arm
        .collect(&arm.window_url(&sub, &iso(start), &iso(arm.sim.started_at())))
        .await;
    let mut by_correlation: HashMap<String, Vec<&Value>> = HashMap::new();
    for event in &events {
        by_correlation
            .entry(event["correlationId"].as_str().unwrap().to_string())
            .or_default()
            .push(event);
    }
    let pairs = by_correlation
        .values()
        .filter(|group| {
            let statuses: HashSet<&str> = group
                .iter()
                .map(|event| event["status"]["value"].as_str().unwrap())
                .collect();
            statuses.contains("Started")
                && (statuses.contains("Succeeded") || statuses.contains("Failed"))
        })
        .count();
    assert!(pairs > 300, "{pairs} Started/ended pairs");
    let mut categories: HashSet<&str> = HashSet::new();
    for event in &events {
        categories.insert(event["category"]["value"].as_str().unwrap_or("?"));
        let id = event["eventDataId"].as_str().unwrap();
        assert!(
            event["id"]
                .as_str()
                .unwrap()
                .contains(&format!("/events/{id}/ticks/"))
        );
        assert_eq!(event["subscriptionId"], sub.as_str());
        let time = parse(event["eventTimestamp"].as_str().unwrap());
        let submitted = parse(event["submissionTimestamp"].as_str().unwrap());
        assert_eq!(submitted - time, time::Duration::seconds(1));
    }
    for category in [
        "Administrative",
        "Policy",
        "ServiceHealth",
        "ResourceHealth",
        "Autoscale",
    ] {
        assert!(categories.contains(category), "{category}: {categories:?}");
    }
}

/// Every top-level key of a Microsoft sample is present with the same JSON type (`null` on either
/// side matches anything); objects other than the free-form `properties` and `claims` recurse.
fn assert_like_sample(actual: &Value, sample: &Value, path: &str) {
    match (actual, sample) {
        (_, Value::Null) | (Value::Null, _) => {}
        (Value::Object(actual), Value::Object(sample)) => {
            for (key, value) in sample {
                let inner = actual
                    .get(key)
                    .unwrap_or_else(|| panic!("missing {path}.{key}"));
                if key != "properties" && key != "claims" {
                    assert_like_sample(inner, value, &format!("{path}.{key}"));
                } else {
                    assert!(inner.is_object(), "{path}.{key}");
                }
            }
        }
        (Value::Array(_), Value::Array(_))
        | (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: {actual} does not have the type of {sample}"),
    }
}

#[tokio::test]
async fn events_have_the_shape_of_microsoft_samples() {
    let arm = Arm::start(arm_config()).await;
    let sub = arm.sub(1);
    let start = arm.sim.started_at() - Duration::from_secs(3 * 3600);
    let (events, _) = arm
        .collect(&arm.window_url(&sub, &iso(start), &iso(arm.sim.started_at())))
        .await;
    let find = |category: &str, status: &str| {
        events
            .iter()
            .find(|event| {
                event["category"]["value"] == category && event["status"]["value"] == status
            })
            .unwrap_or_else(|| panic!("no {category} {status} event"))
    };
    for (category, status, sample) in [
        (
            "Administrative",
            "Succeeded",
            "eventdata-administrative-msdocs.json",
        ),
        (
            "ServiceHealth",
            "Active",
            "eventdata-servicehealth-msdocs.json",
        ),
        (
            "ResourceHealth",
            "Active",
            "eventdata-resourcehealth-msdocs.json",
        ),
        ("Autoscale", "Succeeded", "eventdata-autoscale-msdocs.json"),
        (
            "Policy",
            "Succeeded",
            "eventdata-policy-msdocs-derived.json",
        ),
    ] {
        assert_like_sample(find(category, status), &fixture(sample), category);
    }
    // The spec example's envelope and the Started event's httpRequest.
    let spec = fixture("activityLogs-list-filtered-spec-example.json");
    let started = find("Administrative", "Started");
    assert_like_sample(
        &started["httpRequest"],
        &spec["value"][0]["httpRequest"],
        "httpRequest",
    );
    let policy = find("Policy", "Succeeded");
    let policies: Value =
        serde_json::from_str(policy["properties"]["policies"].as_str().unwrap()).unwrap();
    assert!(policies[0]["policyDefinitionEffect"].is_string());
    // Claims stay small.
    assert!(started["claims"].as_object().unwrap().len() <= 14);

    // $select keeps only the named properties.
    let filter = format!("eventTimestamp ge '{}'", iso(start));
    let url = arm.activity_url(
        &sub,
        &query(&[
            ("api-version", "2015-04-01"),
            ("$filter", &filter),
            ("$select", "eventDataId,eventTimestamp,submissionTimestamp"),
        ]),
    );
    let (status, _, body) = arm.get(&url).await;
    assert_eq!(status, StatusCode::OK);
    let first = body["value"][0].as_object().unwrap();
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(body["nextLink"].as_str().unwrap().contains("$select="));
    let url = arm.activity_url(
        &sub,
        &query(&[
            ("api-version", "2015-04-01"),
            ("$filter", &filter),
            ("$select", "category"),
        ]),
    );
    assert_eq!(arm.get(&url).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn start_older_than_ninety_days_is_refused() {
    let arm = Arm::start(arm_config()).await;
    let sub = arm.sub(1);
    let now = OffsetDateTime::now_utc();
    let day = Duration::from_secs(86_400);
    let (status, _, body) = arm
        .get(&arm.window_url(&sub, &iso(now - 91 * day), &iso(now)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, fixture("error-400-start-time-90-days.json"));
    let (status, _, _) = arm
        .get(&arm.window_url(&sub, &iso(now - 89 * day), &iso(now)))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A start just inside the retention (the client's clock a little behind is not enough).
    let (status, _, _) = arm
        .get(&arm.window_url(
            &sub,
            &iso(now - 90 * day + Duration::from_secs(60)),
            &iso(now),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn events_become_visible_at_their_submission_time() {
    let arm = Arm::start(ArmConfig {
        subscriptions: 1,
        events_per_hour: 7200,
        history: Duration::from_secs(600),
        live_for: Duration::from_secs(120),
        publication_delay: Lateness::Fixed(Duration::from_secs(3)),
        page_size: 500,
        ..arm_config()
    })
    .await;
    let sub = arm.sub(1);
    let start = arm.sim.started_at() - Duration::from_secs(600);
    let end = arm.sim.started_at() + Duration::from_secs(120);
    let url = arm.window_url(&sub, &iso(start), &iso(end));
    let (before, _) = arm.collect(&url).await;
    let asked = OffsetDateTime::now_utc();
    for event in &before {
        let submitted = parse(event["submissionTimestamp"].as_str().unwrap());
        assert!(submitted <= asked, "{submitted} is after {asked}");
    }
    let hidden_before = arm.sim.arm_all_events(&sub, start, end).len() - before.len();
    assert!(
        hidden_before > 100,
        "{hidden_before} events still unpublished"
    );
    // Events that happened before the first read but were not yet published arrive later.
    let window_end = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (after, _) = arm.collect(&url).await;
    let seen: HashSet<String> = ids(&before).into_iter().collect();
    let late: Vec<&Value> = after
        .iter()
        .filter(|event| !seen.contains(event["eventDataId"].as_str().unwrap()))
        .collect();
    assert!(
        late.iter()
            .any(|event| parse(event["eventTimestamp"].as_str().unwrap()) < window_end),
        "no late arrival inside the first read's window"
    );
    assert!(after.len() > before.len());
    // What the API returns matches the truth (visible now), give or take the events published
    // between the two calls.
    let truth: HashSet<String> = arm
        .sim
        .arm_truth(&sub, start, end)
        .into_iter()
        .map(|record| record.event_data_id)
        .collect();
    let got: HashSet<String> = ids(&after).into_iter().collect();
    assert!(got.is_subset(&truth));
    assert!(
        truth.len() - got.len() < 20,
        "{} vs {}",
        truth.len(),
        got.len()
    );
}

#[tokio::test]
async fn forbidden_and_not_found_subscriptions() {
    let arm = Arm::start(ArmConfig {
        subscriptions: 4,
        forbidden: vec![subscription_id(2)],
        not_found: vec![subscription_id(3)],
        subscriptions_page_size: 2,
        ..arm_config()
    })
    .await;
    // The list: 1, 2 (forbidden but visible), 4; 3 is gone. Paged by nextLink.
    let mut listed = Vec::new();
    let mut next = Some(format!(
        "{}/subscriptions?api-version=2022-12-01",
        arm.sim.arm_url()
    ));
    let mut pages = 0;
    while let Some(url) = next {
        let (status, headers, body) = arm.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        header(&headers, "x-ms-ratelimit-remaining-tenant-reads");
        assert_eq!(body["count"]["value"], 3);
        for sub in body["value"].as_array().unwrap() {
            assert_eq!(sub["state"], "Enabled");
            assert!(sub["displayName"].is_string());
            assert_eq!(
                sub["id"],
                format!("/subscriptions/{}", sub["subscriptionId"].as_str().unwrap())
            );
            listed.push(sub["subscriptionId"].as_str().unwrap().to_string());
        }
        next = body["nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 2);
    assert_eq!(listed, [1, 2, 4].map(subscription_id));
    let (status, _, body) = arm
        .get(&format!("{}/subscriptions", arm.sim.arm_url()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");

    let start = iso(OffsetDateTime::now_utc() - Duration::from_secs(3600));
    let end = iso(OffsetDateTime::now_utc());
    let (status, _, _) = arm
        .get(&arm.window_url(&subscription_id(1), &start, &end))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = arm
        .get(&arm.window_url(&subscription_id(2), &start, &end))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "AuthorizationFailed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("microsoft.insights/eventtypes/values/read"),
        "{message}"
    );
    assert!(message.contains(&subscription_id(2)));
    header(&headers, "x-ms-ratelimit-remaining-subscription-reads");
    for missing in [subscription_id(3), subscription_id(99)] {
        let (status, _, body) = arm.get(&arm.window_url(&missing, &start, &end)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "SubscriptionNotFound");
        assert_eq!(
            body["error"]["message"],
            format!("The subscription '{missing}' could not be found.")
        );
    }
    let (status, _, body) = arm.get(&arm.window_url("not-a-guid", &start, &end)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "InvalidSubscriptionId");
    // The subscription itself.
    let (status, _, body) = arm
        .get(&format!(
            "{}/subscriptions/{}?api-version=2020-01-01",
            arm.sim.arm_url(),
            subscription_id(2)
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["subscriptionId"], subscription_id(2));

    // At run time: subscription 1 is removed, 3 comes back.
    arm.sim
        .set_arm_access(&subscription_id(1), ArmAccess::NotFound);
    arm.sim
        .set_arm_access(&subscription_id(3), ArmAccess::Allowed);
    let (status, _, _) = arm
        .get(&arm.window_url(&subscription_id(1), &start, &end))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = arm
        .get(&arm.window_url(&subscription_id(3), &start, &end))
        .await;
    assert_eq!(status, StatusCode::OK);

    let counters = arm.sim.arm_counters();
    assert_eq!(counters.per_subscription[&subscription_id(2)].forbidden, 1);
    assert_eq!(counters.per_subscription[&subscription_id(3)].not_found, 1);
    assert_eq!(counters.per_subscription[&subscription_id(1)].not_found, 1);
    assert_eq!(counters.total.forbidden, 1);
    assert_eq!(counters.total.subscription_list_requests, 3);
    let (status, _, body) = get_with(
        &arm.http,
        &format!("{}/_sim/arm/counters", arm.sim.arm_url()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["forbidden"], 1);
    assert_eq!(body["per_subscription"][subscription_id(2)]["forbidden"], 1);
    let (_, _, body) = get_with(
        &arm.http,
        &format!("{}/_sim/arm/subscriptions", arm.sim.arm_url()),
        None,
    )
    .await;
    assert_eq!(body[0]["access"], "notFound");
    assert_eq!(body[1]["access"], "forbidden");
    assert_eq!(body[2]["access"], "allowed");
}

#[tokio::test]
async fn graph_audience_is_refused_arm_audiences_accepted() {
    let arm = Arm::start(arm_config()).await;
    let sub = arm.sub(1);
    let now = OffsetDateTime::now_utc();
    let url = arm.window_url(&sub, &iso(now - Duration::from_secs(600)), &iso(now));

    let graph_token = arm.token_for(GRAPH_SCOPE).await;
    let (status, headers, body) = get_with(&arm.http, &url, Some(&graph_token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationTokenAudience");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'https://graph.microsoft.com'"),
        "{message}"
    );
    assert!(
        message.contains("'https://management.azure.com/'"),
        "{message}"
    );
    let sample = fixture("error-401-wrong-audience.json");
    assert_like_sample(&body, &sample, "401");
    assert!(header(&headers, "www-authenticate").starts_with("Bearer "));
    // The Graph token still works on Graph.
    let (status, _, _) = get_with(
        &arm.http,
        &format!("{}/v1.0/auditLogs/signIns", arm.sim.graph_url()),
        Some(&graph_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    for scope in [
        ARM_SCOPE,
        ARM_GOV_SCOPE,
        "https://management.core.windows.net//.default",
    ] {
        let token = arm.token_for(scope).await;
        let (status, _, body) = get_with(&arm.http, &url, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{scope}: {body}");
        let (status, _, _) = get_with(
            &arm.http,
            &format!("{}/subscriptions?api-version=2020-01-01", arm.sim.arm_url()),
            Some(&token),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{scope}");
    }

    let (status, _, body) = get_with(&arm.http, &url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    let (status, _, body) = get_with(&arm.http, &url, Some("made-up")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(arm.sim.arm_counters().total.unauthorized, 3);
}

#[tokio::test]
async fn read_budget_gives_429_with_retry_after() {
    let arm = Arm::start(ArmConfig {
        throttle: Some(ArmThrottle {
            capacity: 3,
            refill_per_second: 0.5,
        }),
        ..arm_config()
    })
    .await;
    let now = OffsetDateTime::now_utc();
    let url_for = |n: u32| {
        arm.window_url(
            &subscription_id(n),
            &iso(now - Duration::from_secs(600)),
            &iso(now),
        )
    };
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = arm.get(&url_for(1)).await;
        assert_eq!(status, StatusCode::OK);
        remaining.push(header(&headers, "x-ms-ratelimit-remaining-subscription-reads").to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let (status, headers, body) = arm.get(&url_for(1)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "SubscriptionRequestsThrottled");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&subscription_id(1))
    );
    assert_eq!(
        header(&headers, "x-ms-ratelimit-remaining-subscription-reads"),
        "0"
    );
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert_eq!(retry_after, 2);
    // Another subscription has its own budget; a bad request still costs a read.
    let (status, headers, _) = arm.get(&url_for(2)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "x-ms-ratelimit-remaining-subscription-reads"),
        "2"
    );
    let (status, headers, _) = arm
        .get(&arm.activity_url(&subscription_id(2), "api-version=2015-04-01"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&headers, "x-ms-ratelimit-remaining-subscription-reads"),
        "1"
    );
    // Retrying at once is counted as ignoring Retry-After; after it, the request passes.
    let (status, _, _) = arm.get(&url_for(1)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, _) = arm.get(&url_for(1)).await;
    assert_eq!(status, StatusCode::OK);
    let counters = arm.sim.arm_counters();
    assert_eq!(counters.total.throttled, 2);
    assert_eq!(counters.total.retry_after_ignored, 1);
    assert_eq!(counters.per_subscription[&subscription_id(1)].throttled, 2);
    assert_eq!(counters.per_subscription[&subscription_id(2)].throttled, 0);
}
