//! Paging: completeness across pages in both orders, next links, skiptokens, snapshots.

use std::collections::HashSet;
use std::time::Duration;

use graph_sim::{Resource, SimConfig};
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use crate::helpers::{Harness, empty_config, fast_config, fixture, iso, parse_time, window_query};

#[tokio::test]
async fn every_record_of_a_window_comes_exactly_once_in_both_orders() {
    let harness = Harness::start(fast_config()).await;
    let start = harness.sim.started_at() - time::Duration::minutes(90);
    let end = harness.sim.started_at() - time::Duration::minutes(30);
    let (start_text, end_text) = (iso(start), iso(end));
    for (resource, field) in [
        (Resource::SignIns, "createdDateTime"),
        (Resource::DirectoryAudits, "activityDateTime"),
    ] {
        let truth: Vec<String> = harness
            .sim
            .truth(resource, parse_time(&start_text), parse_time(&end_text))
            .into_iter()
            .map(|record| record.id)
            .collect();
        assert!(truth.len() > 1000, "{}", truth.len());
        for order in ["asc", "desc"] {
            let url = harness.url(&format!(
                "/v1.0/auditLogs/{}?{}&$orderby={field}%20{order}&$top=97",
                resource.segment(),
                window_query(field, &start_text, &end_text),
            ));
            let (records, pages) = harness.collect(&url).await;
            let ids: Vec<String> = records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            let unique: HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "no duplicates");
            let mut expected = truth.clone();
            if order == "desc" {
                expected.reverse();
            }
            assert_eq!(ids, expected, "{resource:?} {order}");
            assert_eq!(pages, truth.len().div_ceil(97));
        }
    }
}

#[tokio::test]
async fn default_page_sizes_and_order() {
    let harness = Harness::start(fast_config()).await;
    let (_, _, signins) = harness.get(&harness.url("/v1.0/auditLogs/signIns")).await;
    let (_, _, audits) = harness
        .get(&harness.url("/v1.0/auditLogs/directoryAudits"))
        .await;
    assert_eq!(signins["value"].as_array().unwrap().len(), 1000);
    assert_eq!(audits["value"].as_array().unwrap().len(), 100);
    let times: Vec<OffsetDateTime> = signins["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| parse_time(r["createdDateTime"].as_str().unwrap()))
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first"
    );
    assert!(times[0] <= OffsetDateTime::now_utc());
}

#[tokio::test]
async fn next_link_is_absolute_and_keeps_the_query() {
    let harness = Harness::start(fast_config()).await;
    let start = iso(harness.sim.started_at() - time::Duration::minutes(60));
    let url = harness.url(&format!(
        "/v1.0/auditLogs/signIns?$filter=createdDateTime+ge+{start}&$top=10"
    ));
    let (_, _, body) = harness.get(&url).await;
    let next = body["@odata.nextLink"].as_str().unwrap();
    let prefix = format!("{}/v1.0/auditLogs/signIns?", harness.sim.graph_url());
    assert!(next.starts_with(&prefix), "{next}");
    assert!(next.contains("$filter=createdDateTime%20ge%20"), "{next}");
    assert!(next.contains("$top=10"), "{next}");
    assert!(next.contains("&$skiptoken="), "{next}");
    // Same shape as Graph's documented first page.
    let documented = fixture("signIns-list-v1.json");
    for key in documented.as_object().unwrap().keys() {
        assert!(body.get(key).is_some(), "{key}");
    }
    // Requests through `localhost` get next links on `localhost`.
    let local = url.replace("127.0.0.1", "localhost");
    let (_, _, body) = harness.get(&local).await;
    assert!(
        body["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:")
    );
}

#[tokio::test]
async fn last_page_has_no_next_link() {
    let harness = Harness::start(empty_config()).await;
    let now = OffsetDateTime::now_utc();
    for index in 0..4 {
        harness.sim.inject(
            Resource::DirectoryAudits,
            json!({"id": format!("a{index}"), "activityDateTime": iso(now - time::Duration::minutes(index))}),
            now,
        );
    }
    let (_, _, body) = harness
        .get(&harness.url("/v1.0/auditLogs/directoryAudits?$top=4"))
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 4);
    assert!(body.get("@odata.nextLink").is_none());
    let (records, pages) = harness
        .collect(&harness.url("/v1.0/auditLogs/directoryAudits?$top=3"))
        .await;
    assert_eq!((records.len(), pages), (4, 2));
}

#[tokio::test]
async fn expired_or_foreign_skiptokens_are_refused() {
    let harness = Harness::start(SimConfig {
        skiptoken_ttl: Duration::from_secs(2),
        ..fast_config()
    })
    .await;
    let (_, _, body) = harness
        .get(&harness.url("/v1.0/auditLogs/signIns?$top=5"))
        .await;
    let next = body["@odata.nextLink"].as_str().unwrap().to_string();
    let token = next.split("$skiptoken=").nth(1).unwrap().to_string();
    let expected = fixture("error-400-invalid-skip-token-users.json");
    // Replayed against another query.
    let foreign = harness.url(&format!(
        "/v1.0/auditLogs/signIns?$orderby=createdDateTime%20asc&$skiptoken={token}"
    ));
    let (status, _, body) = harness.get(&foreign).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "Invalid Skip Token");
    // Garbage.
    let garbage =
        harness.url("/v1.0/auditLogs/signIns?$skiptoken=9177f2e3532fcd4c4d225f68f7b9bdf7_1");
    assert_eq!(harness.get(&garbage).await.0, StatusCode::BAD_REQUEST);
    // Fine while fresh, refused once older than the TTL.
    assert_eq!(harness.get(&next).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, body) = harness.get(&next).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    crate::helpers::assert_same_shape(&body, &expected, "");
    assert_eq!(body["error"]["code"], "");
    assert_eq!(body["error"]["message"], "Invalid Skip Token");
}

#[tokio::test]
async fn a_paged_query_sees_the_visibility_of_its_first_request() {
    let harness = Harness::start(empty_config()).await;
    let now = OffsetDateTime::now_utc();
    for index in 0..3 {
        harness.sim.inject(
            Resource::SignIns,
            json!({"id": format!("s{index}"), "createdDateTime": iso(now - time::Duration::minutes(10 + index))}),
            now - time::Duration::seconds(1),
        );
    }
    // Newest first: `late` would come second, but only becomes visible after the first page.
    harness.sim.inject(
        Resource::SignIns,
        json!({"id": "late", "createdDateTime": iso(now - time::Duration::seconds(630))}),
        now + time::Duration::milliseconds(1500),
    );
    let (_, _, first) = harness
        .get(&harness.url("/v1.0/auditLogs/signIns?$top=1"))
        .await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut ids = vec![first["value"][0]["id"].as_str().unwrap().to_string()];
    let (rest, _) = harness
        .collect(first["@odata.nextLink"].as_str().unwrap())
        .await;
    ids.extend(rest.iter().map(|r| r["id"].as_str().unwrap().to_string()));
    assert_eq!(ids, ["s0", "s1", "s2"]);
    let (fresh, _) = harness
        .collect(&harness.url("/v1.0/auditLogs/signIns?$top=1"))
        .await;
    assert_eq!(fresh.len(), 4);
}

#[tokio::test]
async fn short_pages_still_cover_everything() {
    let harness = Harness::start(SimConfig {
        short_page_probability: 0.5,
        ..fast_config()
    })
    .await;
    let start = iso(harness.sim.started_at() - time::Duration::minutes(20));
    let end = iso(harness.sim.started_at() - time::Duration::minutes(10));
    let url = harness.url(&format!(
        "/v1.0/auditLogs/signIns?{}&$top=50",
        window_query("createdDateTime", &start, &end)
    ));
    let (records, pages) = harness.collect(&url).await;
    let truth = harness
        .sim
        .truth(Resource::SignIns, parse_time(&start), parse_time(&end));
    assert_eq!(records.len(), truth.len());
    assert!(pages > truth.len().div_ceil(50), "{pages} pages");
}
