//! Filters, query errors, record shapes, visibility and the control endpoints.

use std::time::Duration;

use graph_sim::{Lateness, Resource, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    Harness, assert_same_shape, empty_config, fast_config, fixture, iso, parse_time, window_query,
};

/// Six hand-made sign-ins around one whole second `P`, with mixed precision and ties.
async fn boundary_harness() -> (Harness, String) {
    let harness = Harness::start(empty_config()).await;
    let base = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap();
    let p = iso(base)[..19].to_string();
    let before = iso(base - time::Duration::seconds(1))[..19].to_string();
    let visible = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for (id, time) in [
        ("tie-b", format!("{p}.0000000Z")),
        ("tie-a", format!("{p}Z")),
        ("after", format!("{p}.0000001Z")),
        ("before", format!("{before}.9999999Z")),
        ("half-6", format!("{p}.500000Z")),
        ("half", format!("{p}.500Z")),
    ] {
        harness.sim.inject(
            Resource::SignIns,
            json!({"id": id, "createdDateTime": time, "userPrincipalName": "user1@contoso.example"}),
            visible,
        );
    }
    (harness, p)
}

async fn ids(harness: &Harness, filter: &str, order: &str) -> Vec<String> {
    let url = harness.url(&format!(
        "/v1.0/auditLogs/signIns?$filter={}&$orderby=createdDateTime%20{order}&$top=1",
        filter.replace(' ', "%20").replace('+', "%2B")
    ));
    let (records, _) = harness.collect(&url).await;
    records
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn filter_bounds_are_exact_with_ties_and_mixed_precision() {
    let (harness, p) = boundary_harness().await;
    let next = {
        let base = parse_time(&format!("{p}Z")) + time::Duration::seconds(1);
        iso(base)
    };
    let f = "createdDateTime";
    let cases = [
        (
            format!("{f} ge {p}Z and {f} lt {next}"),
            vec!["tie-a", "tie-b", "after", "half", "half-6"],
        ),
        (format!("{f} gt {p}Z"), vec!["after", "half", "half-6"]),
        (format!("{f} le {p}Z"), vec!["before", "tie-a", "tie-b"]),
        (format!("{f} lt {p}Z"), vec!["before"]),
        (format!("{f} eq {p}Z"), vec!["tie-a", "tie-b"]),
        (
            format!("{f} ge {p}.0000001Z"),
            vec!["after", "half", "half-6"],
        ),
        (format!("{f} ge {p}.5Z"), vec!["half", "half-6"]),
        (format!("{f} gt {p}.500000Z"), vec![]),
        (
            format!("{f} ge {p}.5Z and {f} lt {p}.5000001Z"),
            vec!["half", "half-6"],
        ),
        (
            format!("{f} ge {p}+00:00 and {f} le {p}.0000001+00:00"),
            vec!["tie-a", "tie-b", "after"],
        ),
        (
            format!("({f} ge {p}.000Z) and ({f} lt {p}.000001Z)"),
            vec!["tie-a", "tie-b", "after"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(ids(&harness, &filter, "asc").await, expected, "{filter}");
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            ids(&harness, &filter, "desc").await,
            reversed,
            "{filter} desc"
        );
    }
}

#[tokio::test]
async fn date_only_literals_are_accepted() {
    let harness = Harness::start(empty_config()).await;
    let today = &iso(OffsetDateTime::now_utc())[..10];
    let url = harness.url(&format!(
        "/v1.0/auditLogs/directoryAudits?$filter=activityDateTime%20ge%20{today}"
    ));
    let (status, _, body) = harness.get(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn invalid_filters_get_the_fixture_error() {
    let harness = Harness::start(empty_config()).await;
    let expected = fixture("error-400-invalid-filter-clause.json");
    for query in [
        "$filter=createdDateTime%20ge%20'2024-01-13T14:13:32Z'",
        "$filter=activityDateTime%20ge%202024-01-13T14:13:32Z",
        "$filter=startsWith(appDisplayName,'Graph')",
        "$filter=createdDateTime%20ge%202024-01-13T14:13:32.12345678Z",
        "$filter=createdDateTime%20ge%202024-01-13T14:13:32",
    ] {
        let (status, _, body) = harness
            .get(&harness.url(&format!("/v1.0/auditLogs/signIns?{query}")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_same_shape(&body, &expected, "");
        assert_eq!(body["error"]["code"], "BadRequest");
        assert_eq!(body["error"]["message"], "Invalid filter clause");
    }
}

#[tokio::test]
async fn filters_older_than_retention_are_refused() {
    let harness = Harness::start(SimConfig {
        retention: Duration::from_secs(86_400),
        ..empty_config()
    })
    .await;
    let now = OffsetDateTime::now_utc();
    let too_old = iso(now - time::Duration::hours(25));
    let inside = iso(now - time::Duration::hours(23));
    let end = iso(now);
    let url = |start: &str| {
        harness.url(&format!(
            "/v1.0/auditLogs/signIns?{}",
            window_query("createdDateTime", start, &end)
        ))
    };
    let (status, _, body) = harness.get(&url(&too_old)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "Invalid filter clause");
    let (status, _, _) = harness.get(&url(&inside)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn top_must_be_between_one_and_a_thousand() {
    let harness = Harness::start(empty_config()).await;
    for (top, expected) in [
        ("1000", StatusCode::OK),
        ("1", StatusCode::OK),
        ("1001", StatusCode::BAD_REQUEST),
        ("0", StatusCode::BAD_REQUEST),
        ("abc", StatusCode::BAD_REQUEST),
    ] {
        let url = harness.url(&format!("/beta/auditLogs/signIns?$top={top}"));
        let (status, _, body) = harness.get(&url).await;
        assert_eq!(status, expected, "{top}");
        if expected == StatusCode::BAD_REQUEST {
            assert_eq!(body["error"]["code"], "BadRequest");
        }
    }
    let url = harness.url("/v1.0/auditLogs/signIns?$orderby=userId");
    assert_eq!(harness.get(&url).await.0, StatusCode::BAD_REQUEST);
    let url = harness.url("/v1.0/auditLogs/signIns?$skip=5");
    assert_eq!(harness.get(&url).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(harness.sim.counters().bad_requests, 5);
}

#[tokio::test]
async fn paths_are_case_insensitive_and_unknown_ones_refused() {
    let harness = Harness::start(empty_config()).await;
    for path in [
        "/V1.0/AUDITLOGS/SIGNINS",
        "/beta/auditlogs/directoryaudits",
        "/v1.0/auditLogs/signIns/",
    ] {
        let (status, _, body) = harness.get(&harness.url(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body["value"].is_array());
    }
    for path in [
        "/v1.0/auditLogs/signUps",
        "/v1.0/identityProtection/riskyUsers",
        "/beta/identityProtection",
    ] {
        let (status, _, body) = harness.get(&harness.url(path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("segment")
        );
    }
    let (status, _, _) = harness.get(&harness.url("/v2.0/auditLogs/signIns")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn records_have_the_documented_fields_per_version() {
    let harness = &Harness::start(fast_config()).await;
    let get_first = |path: &'static str| {
        let url = harness.url(path);
        async move {
            let (status, _, body) = harness.get(&url).await;
            assert_eq!(status, StatusCode::OK);
            body
        }
    };
    let v1 = get_first("/v1.0/auditLogs/signIns?$top=50").await;
    let beta = get_first("/beta/auditLogs/signIns?$top=50").await;
    assert!(
        v1["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#auditLogs/signIns")
    );
    let fixture_v1 = fixture("signIns-list-v1.json");
    let fixture_beta = fixture("signIns-list-beta-example2-password.json");
    for record in v1["value"].as_array().unwrap() {
        assert_same_shape(record, &fixture_v1["value"][0], "signIn");
        assert!(record.get("signInEventTypes").is_none());
        assert!(record.get("riskEventTypes_v2").is_some());
    }
    let mut beta_expected = fixture_beta["value"][0].clone();
    // The documentation's misspelling is not Graph's field name.
    beta_expected
        .as_object_mut()
        .unwrap()
        .remove("riskLevelDuringsignIn");
    for record in beta["value"].as_array().unwrap() {
        assert_same_shape(record, &beta_expected, "signIn(beta)");
        assert_eq!(record["signInEventTypes"], json!(["interactiveUser"]));
    }

    let audits_v1 = get_first("/v1.0/auditLogs/directoryAudits?$top=200").await;
    let audits_beta = get_first("/beta/auditLogs/directoryAudits?$top=50").await;
    let mut audit_expected = fixture("directoryAudits-list-v1.json")["value"][0].clone();
    // The v1.0 example spells `type` as `Type`; Graph's schema says `type`.
    audit_expected
        .as_object_mut()
        .unwrap()
        .remove("targetResources");
    let beta_audit = fixture("directoryAudits-list-beta-example1-NO-ENVELOPE.json");
    let mut saw_space = false;
    for record in audits_v1["value"].as_array().unwrap() {
        assert_same_shape(record, &audit_expected, "directoryAudit");
        assert!(record["targetResources"][0]["type"].is_string());
        assert!(record.get("userAgent").is_none());
        saw_space |= record["id"].as_str().unwrap().contains(' ');
    }
    assert!(saw_space, "some audit ids contain a space");
    for record in audits_beta["value"].as_array().unwrap() {
        assert_same_shape(record, &beta_audit, "directoryAudit(beta)");
        assert!(record.get("userAgent").is_some());
    }
}

#[tokio::test]
async fn generated_times_have_mixed_precision_and_shared_instants() {
    let harness = Harness::start(fast_config()).await;
    let (records, _) = harness
        .collect(&harness.url("/v1.0/auditLogs/directoryAudits?$top=1000"))
        .await;
    let mut digits = std::collections::BTreeSet::new();
    let mut instants = Vec::new();
    for record in &records {
        let text = record["activityDateTime"].as_str().unwrap();
        assert!(text.ends_with('Z'));
        digits.insert(text.split_once('.').map_or(0, |(_, f)| f.len() - 1));
        instants.push(parse_time(text));
    }
    assert_eq!(digits.into_iter().collect::<Vec<_>>(), vec![0, 3, 6, 7]);
    let shared = instants
        .windows(2)
        .filter(|pair| pair[0] == pair[1])
        .count();
    assert!(
        shared > 5,
        "{shared} records share an instant with their neighbour"
    );
    assert!(
        instants.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first"
    );
}

#[tokio::test]
async fn select_keeps_only_the_named_properties() {
    let harness = Harness::start(fast_config()).await;
    let url = harness.url("/v1.0/auditLogs/signIns?$select=id,createdDateTime&$top=3");
    let (status, _, body) = harness.get(&url).await;
    assert_eq!(status, StatusCode::OK);
    for record in body["value"].as_array().unwrap() {
        let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{record}");
    }
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("signIns(id,createdDateTime)")
    );
    let url = harness.url("/v1.0/auditLogs/signIns?$select=nonsense");
    assert_eq!(harness.get(&url).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn late_records_stay_hidden_until_visible() {
    let harness = Harness::start(SimConfig {
        history: Duration::from_secs(120),
        live_for: Duration::from_secs(60),
        signin_per_hour: 36_000,
        lateness: Lateness::Fixed(Duration::from_secs(3)),
        ..empty_config()
    })
    .await;
    let start = harness.sim.started_at() - time::Duration::seconds(120);
    let end = harness.sim.started_at() + time::Duration::seconds(60);
    let url = harness.url(&format!(
        "/v1.0/auditLogs/signIns?$filter=createdDateTime%20ge%20{}&$orderby=createdDateTime%20asc",
        iso(start)
    ));
    let (before, _) = harness.collect(&url).await;
    let asked_at = OffsetDateTime::now_utc();
    let hidden: Vec<_> = harness
        .sim
        .all_records(Resource::SignIns, start, asked_at)
        .into_iter()
        .filter(|record| record.visible_at > asked_at)
        .collect();
    assert!(
        !hidden.is_empty(),
        "records of the last 3 s are not visible yet"
    );
    let returned: Vec<&str> = before.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for record in &hidden {
        assert!(!returned.contains(&record.id.as_str()));
    }
    let truth = harness.sim.truth(Resource::SignIns, start, end);
    assert!(truth.len() >= returned.len());
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (after, _) = harness.collect(&url).await;
    let returned: Vec<&str> = after.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for record in &hidden {
        assert!(
            returned.contains(&record.id.as_str()),
            "{} became visible",
            record.id
        );
    }
}

#[tokio::test]
async fn republished_sign_ins_switch_version_with_the_same_id() {
    let harness = Harness::start(SimConfig {
        history: Duration::from_secs(1),
        live_for: Duration::ZERO,
        signin_per_hour: 36_000,
        republish_fraction: 1.0,
        republish_delay: Lateness::Fixed(Duration::from_secs(4)),
        ..empty_config()
    })
    .await;
    let url = harness.url("/v1.0/auditLogs/signIns");
    let (_, _, first) = harness.get(&url).await;
    let first = first["value"].as_array().unwrap().clone();
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|r| r["riskLevelAggregated"] == "none"));
    let window = (
        harness.sim.started_at() - time::Duration::seconds(5),
        harness.sim.started_at() + time::Duration::seconds(5),
    );
    assert!(
        harness
            .sim
            .truth(Resource::SignIns, window.0, window.1)
            .iter()
            .all(|r| r.version == 0)
    );
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let (_, _, second) = harness.get(&url).await;
    let second = second["value"].as_array().unwrap();
    assert_eq!(second.len(), 10);
    for (old, new) in first.iter().zip(second) {
        assert_eq!(old["id"], new["id"]);
        assert_eq!(old["createdDateTime"], new["createdDateTime"]);
        assert_eq!(new["riskLevelAggregated"], "medium");
        assert_ne!(old, new);
    }
    let truth = harness.sim.truth(Resource::SignIns, window.0, window.1);
    assert!(
        truth
            .iter()
            .all(|r| r.version == 1 && r.republished_at.is_some())
    );
}

#[tokio::test]
async fn injected_records_are_served_verbatim_even_when_malformed() {
    let harness = Harness::start(empty_config()).await;
    let now = OffsetDateTime::now_utc();
    let odd = json!({"createdDateTime": "yesterday-ish", "note": "no id"});
    harness.sim.inject(
        Resource::SignIns,
        odd.clone(),
        now - time::Duration::seconds(10),
    );
    harness.sim.inject(
        Resource::SignIns,
        json!({"id": "future", "createdDateTime": iso(now)}),
        now + time::Duration::hours(1),
    );
    let (_, _, body) = harness.get(&harness.url("/v1.0/auditLogs/signIns")).await;
    assert_eq!(body["value"], json!([odd]));
    let truth = harness.sim.truth(
        Resource::SignIns,
        now - time::Duration::hours(1),
        now + time::Duration::hours(2),
    );
    assert_eq!(truth.len(), 1);
    let all = harness.sim.all_records(
        Resource::SignIns,
        now - time::Duration::hours(1),
        now + time::Duration::hours(2),
    );
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn control_endpoints_report_counters_and_truth() {
    let harness = Harness::start(fast_config()).await;
    let (status, _, _) = harness
        .get(&harness.url("/v1.0/auditLogs/signIns?$top=5"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let counters: Value = harness
        .http
        .get(harness.url("/_sim/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["list_requests"], 1);
    assert_eq!(counters["records_served"], 5);
    assert_eq!(counters["tokens_issued"], 1);
    let start = harness.sim.started_at() - time::Duration::minutes(30);
    let end = harness.sim.started_at();
    let truth: Vec<Value> = harness
        .http
        .get(harness.url(&format!(
            "/_sim/truth?resource=signIns&start={}&end={}",
            iso(start),
            iso(end)
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = harness.sim.truth(
        Resource::SignIns,
        start.replace_nanosecond(0).unwrap(),
        end.replace_nanosecond(0).unwrap(),
    );
    assert_eq!(truth.len(), expected.len());
    assert!(truth.len() > 1000);
    assert_eq!(truth[0]["id"], expected[0].id);
    assert_eq!(
        parse_time(truth[0]["time"].as_str().unwrap()),
        expected[0].time
    );
    assert_eq!(truth[0]["version"], 0);
    // The control endpoints are not Graph requests.
    assert_eq!(harness.sim.counters().requests, 1);
}
