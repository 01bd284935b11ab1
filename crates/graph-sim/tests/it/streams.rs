//! The streams of issue 14: sign-ins of every event type (beta type filter), provisioning, risk
//! detections; per-stream truth, refusals (403), lateness, faults and ids.

use std::collections::BTreeSet;
use std::time::Duration;

use graph_sim::{Fault, FaultKind, Lateness, Refusal, Resource, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    Harness, assert_same_shape, crate_fixture, encode, fixture, iso, lenient_fixture, parse_time,
};

/// Every stream populated, history only (nothing becomes visible during a test), no throttle.
fn streams_config() -> SimConfig {
    SimConfig {
        seed: 14,
        history: Duration::from_secs(2 * 3600),
        live_for: Duration::ZERO,
        audit_per_hour: 150,
        signin_per_hour: 600,
        noninteractive_per_hour: 1500,
        service_principal_per_hour: 900,
        managed_identity_per_hour: 300,
        provisioning_per_hour: 600,
        risk_detections_per_hour: 150,
        sp_risk_detections_per_hour: 60,
        throttle: None,
        ..SimConfig::default()
    }
}

/// The sign-in streams and their `signInEventTypes` values.
const SIGN_IN_TYPES: [(Resource, &str); 4] = [
    (Resource::SignIns, "interactiveUser"),
    (Resource::NonInteractiveSignIns, "nonInteractiveUser"),
    (Resource::ServicePrincipalSignIns, "servicePrincipal"),
    (Resource::ManagedIdentitySignIns, "managedIdentity"),
];

fn type_filter(kind: &str) -> String {
    encode(&format!("signInEventTypes/any(t: t eq '{kind}')"))
}

fn ids(records: &[Value]) -> BTreeSet<String> {
    let list: Vec<String> = records
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_string())
        .collect();
    let set: BTreeSet<String> = list.iter().cloned().collect();
    assert_eq!(set.len(), list.len(), "ids are unique within a stream");
    set
}

/// The ids of every record of `resource` visible now.
fn truth_ids(harness: &Harness, resource: Resource) -> BTreeSet<String> {
    let start = harness.sim.started_at() - time::Duration::hours(3);
    let end = harness.sim.started_at() + time::Duration::hours(1);
    harness
        .sim
        .truth(resource, start, end)
        .into_iter()
        .map(|record| record.id)
        .collect()
}

/// `instant` without its fraction, as [`iso`] writes it.
fn whole_seconds(instant: OffsetDateTime) -> OffsetDateTime {
    instant.replace_nanosecond(0).unwrap()
}

fn times(records: &[Value], field: &str) -> Vec<OffsetDateTime> {
    records
        .iter()
        .map(|record| parse_time(record[field].as_str().unwrap()))
        .collect()
}

async fn error_of(harness: &Harness, path_and_query: &str) -> (StatusCode, Value) {
    let (status, _, body) = harness.get(&harness.url(path_and_query)).await;
    (status, body)
}

#[tokio::test]
async fn each_sign_in_type_is_its_own_stream() {
    let harness = Harness::start(streams_config()).await;
    let mut seen = BTreeSet::new();
    for (resource, kind) in SIGN_IN_TYPES {
        let url = harness.url(&format!(
            "/beta/auditLogs/signIns?$filter={}&$top=500",
            type_filter(kind)
        ));
        let (records, pages) = harness.collect(&url).await;
        let returned = ids(&records);
        let truth = truth_ids(&harness, resource);
        assert!(truth.len() > 300, "{kind}: {} records", truth.len());
        assert_eq!(returned, truth, "{kind}");
        assert!(pages > 1, "{kind} pages");
        for record in &records {
            assert_eq!(record["signInEventTypes"], json!([kind]), "{record}");
        }
        let instants = times(&records, "createdDateTime");
        assert!(
            instants.windows(2).all(|pair| pair[0] >= pair[1]),
            "newest first"
        );
        assert!(
            seen.is_disjoint(&returned),
            "{kind} shares no id with another stream"
        );
        seen.extend(returned);
    }
    let counters = harness.sim.counters();
    let served = &counters.streams["nonInteractiveUser"];
    assert_eq!(
        served.records_served as usize,
        truth_ids(&harness, Resource::NonInteractiveSignIns).len()
    );
    assert_eq!(served.forbidden, 0);
}

#[tokio::test]
async fn type_filters_combine_with_time_windows() {
    let harness = Harness::start(streams_config()).await;
    let start = whole_seconds(harness.sim.started_at() - time::Duration::minutes(90));
    let end = whole_seconds(harness.sim.started_at() - time::Duration::minutes(30));
    let expected = |resource| -> BTreeSet<String> {
        harness
            .sim
            .truth(resource, start, end)
            .into_iter()
            .map(|record| record.id)
            .collect()
    };
    let filters = [
        (
            Resource::ServicePrincipalSignIns,
            format!(
                "createdDateTime ge {} and createdDateTime lt {} and signInEventTypes/any(t: t eq 'servicePrincipal')",
                iso(start),
                iso(end)
            ),
        ),
        (
            Resource::ManagedIdentitySignIns,
            format!(
                "(signInEventTypes/any(t:t eq 'managedIdentity')) and (createdDateTime ge {}) and createdDateTime lt {}",
                iso(start),
                iso(end)
            ),
        ),
        (
            Resource::NonInteractiveSignIns,
            format!(
                "createdDateTime ge {} and signInEventTypes/any(x: x ne 'interactiveUser') and createdDateTime lt {}",
                iso(start),
                iso(end)
            ),
        ),
    ];
    for (resource, filter) in filters {
        let url = harness.url(&format!(
            "/beta/auditLogs/signIns?$filter={}&$orderby=createdDateTime%20asc&$top=100",
            encode(&filter)
        ));
        let (records, _) = harness.collect(&url).await;
        assert_eq!(ids(&records), expected(resource), "{filter}");
        let instants = times(&records, "createdDateTime");
        assert!(
            instants.windows(2).all(|pair| pair[0] <= pair[1]),
            "ascending"
        );
    }
}

#[tokio::test]
async fn v1_refuses_the_type_filter_and_beta_defaults_to_interactive() {
    let harness = Harness::start(streams_config()).await;
    let expected_shape = fixture("error-400-invalid-filter-clause.json");
    for kind in ["nonInteractiveUser", "servicePrincipal", "interactiveUser"] {
        let (status, body) = error_of(
            &harness,
            &format!("/v1.0/auditLogs/signIns?$filter={}", type_filter(kind)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_same_shape(&body, &expected_shape, "");
        assert_eq!(body["error"]["code"], "BadRequest");
        assert_eq!(
            body["error"]["message"],
            "Could not find a property named 'signInEventTypes' on type 'microsoft.graph.signIn'."
        );
    }
    let (status, body) = error_of(
        &harness,
        &format!(
            "/beta/auditLogs/directoryAudits?$filter={}",
            type_filter("interactiveUser")
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Could not find a property named 'signInEventTypes' on type 'microsoft.graph.directoryAudit'."
    );

    let interactive = truth_ids(&harness, Resource::SignIns);
    let since = iso(harness.sim.started_at() - time::Duration::hours(3));
    for url in [
        "/beta/auditLogs/signIns?$top=400".to_string(),
        format!("/beta/auditLogs/signIns?$filter=createdDateTime%20ge%20{since}&$top=400"),
        format!(
            "/beta/auditLogs/signIns?$filter={}&$top=400",
            type_filter("interactiveUser")
        ),
        "/v1.0/auditLogs/signIns?$top=400".to_string(),
    ] {
        let (records, _) = harness.collect(&harness.url(&url)).await;
        assert_eq!(ids(&records), interactive, "{url}");
    }
}

#[tokio::test]
async fn user_and_workload_types_cannot_be_combined() {
    let harness = Harness::start(streams_config()).await;
    for filter in [
        "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'servicePrincipal')",
        "signInEventTypes/any(t: t eq 'servicePrincipal' or t eq 'managedIdentity')",
        "signInEventTypes/any(t: t eq 'nonInteractiveUser') and signInEventTypes/any(t: t eq 'managedIdentity')",
        "signInEventTypes/any(t: t eq 'nonInteractiveUser' and t eq 'interactiveUser')",
        "signInEventTypes/any(t: s eq 'nonInteractiveUser')",
        "signInEventTypes/any(t: t eq nonInteractiveUser)",
        "signInEventTypes eq 'nonInteractiveUser'",
    ] {
        let (status, body) = error_of(
            &harness,
            &format!("/beta/auditLogs/signIns?$filter={}", encode(filter)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(body["error"]["code"], "BadRequest");
        assert_eq!(
            body["error"]["message"], "Invalid filter clause",
            "{filter}"
        );
    }

    // Both user types in one lambda: one ordered result across the two streams.
    let filter =
        encode("signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')");
    let url = harness.url(&format!(
        "/beta/auditLogs/signIns?$filter={filter}&$top=700"
    ));
    let (records, pages) = harness.collect(&url).await;
    let mut expected = truth_ids(&harness, Resource::SignIns);
    expected.extend(truth_ids(&harness, Resource::NonInteractiveSignIns));
    assert_eq!(ids(&records), expected);
    assert!(pages > 2);
    let instants = times(&records, "createdDateTime");
    assert!(
        instants.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first"
    );
    let kinds: BTreeSet<String> = records
        .iter()
        .map(|record| record["signInEventTypes"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.len(), 2);
}

#[tokio::test]
async fn each_sign_in_type_has_its_shape() {
    let harness = Harness::start(streams_config()).await;
    let first_page = |kind: &str| {
        let url = harness.url(&format!(
            "/beta/auditLogs/signIns?$filter={}&$top=200",
            type_filter(kind)
        ));
        let harness = &harness;
        async move {
            let (status, _, body) = harness.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                body["@odata.context"]
                    .as_str()
                    .unwrap()
                    .ends_with("/beta/$metadata#auditLogs/signIns")
            );
            body["value"].as_array().unwrap().clone()
        }
    };

    let mut expected =
        crate_fixture("signIns-list-beta-example3-noninteractive.json")["value"][0].clone();
    // The example's policies carry condition fields the simulator does not write.
    expected
        .as_object_mut()
        .unwrap()
        .remove("appliedConditionalAccessPolicies");
    for record in first_page("nonInteractiveUser").await {
        assert_same_shape(&record, &expected, "signIn(nonInteractiveUser)");
        assert_eq!(record["isInteractive"], false);
        assert!(!record["userPrincipalName"].as_str().unwrap().is_empty());
        assert_eq!(record["servicePrincipalId"], "");
        assert_eq!(record["authenticationDetails"], json!([]));
    }

    let mut credential_types = BTreeSet::new();
    for record in first_page("servicePrincipal").await {
        assert_eq!(record["isInteractive"], false);
        assert_eq!(record["userPrincipalName"], "");
        assert_eq!(record["userId"], "");
        assert_eq!(record["homeTenantId"], "");
        assert!(!record["servicePrincipalId"].as_str().unwrap().is_empty());
        assert_eq!(record["servicePrincipalName"], record["appDisplayName"]);
        assert_eq!(record["managedServiceIdentity"]["msiType"], "none");
        let credential = record["clientCredentialType"].as_str().unwrap().to_string();
        assert!(credential != "none" && credential != "managedIdentity");
        if credential == "certificate" {
            let thumbprint = record["servicePrincipalCredentialThumbprint"]
                .as_str()
                .unwrap();
            assert_eq!(thumbprint.len(), 40);
        }
        credential_types.insert(credential);
    }
    assert!(credential_types.len() >= 3, "{credential_types:?}");

    for record in first_page("managedIdentity").await {
        assert_eq!(record["userPrincipalName"], "");
        assert_eq!(record["clientCredentialType"], "managedIdentity");
        let identity = &record["managedServiceIdentity"];
        let kind = identity["msiType"].as_str().unwrap();
        assert!(kind == "systemAssigned" || kind == "userAssigned", "{kind}");
        assert!(
            identity["associatedResourceId"]
                .as_str()
                .unwrap()
                .starts_with("/subscriptions/")
        );
        assert!(!record["servicePrincipalName"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn provisioning_refuses_ge_and_le() {
    let harness = Harness::start(streams_config()).await;
    let at = iso(harness.sim.started_at() - time::Duration::hours(1));
    for operator in ["ge", "le", "GE"] {
        let (status, body) = error_of(
            &harness,
            &format!("/v1.0/auditLogs/provisioning?$filter=activityDateTime%20{operator}%20{at}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{operator}");
        assert_same_shape(&body, &fixture("error-400-invalid-filter-clause.json"), "");
        assert_eq!(body["error"]["code"], "BadRequest");
        assert_eq!(body["error"]["message"], "Invalid filter clause");
    }
    let (status, _) = error_of(
        &harness,
        &format!("/v1.0/auditLogs/provisioning?$filter=createdDateTime%20gt%20{at}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for operator in ["gt", "lt", "eq"] {
        let (status, body) = error_of(
            &harness,
            &format!("/beta/auditLogs/provisioning?$filter=activityDateTime%20{operator}%20{at}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{operator}: {body}");
    }
}

#[tokio::test]
async fn provisioning_pages_are_complete_but_not_in_time_order() {
    let harness = Harness::start(streams_config()).await;
    let start = whole_seconds(harness.sim.started_at() - time::Duration::minutes(100));
    let end = whole_seconds(harness.sim.started_at() - time::Duration::minutes(10));
    let expected: BTreeSet<String> = harness
        .sim
        .truth(Resource::Provisioning, start, end)
        .into_iter()
        .filter(|record| record.time > start)
        .map(|record| record.id)
        .collect();
    assert!(expected.len() > 500);
    let filter = format!(
        "activityDateTime%20gt%20{}%20and%20activityDateTime%20lt%20{}",
        iso(start),
        iso(end)
    );
    let mut orders = Vec::new();
    for order in [
        "",
        "&$orderby=activityDateTime%20asc",
        "&$orderby=activityDateTime%20desc",
    ] {
        let url = harness.url(&format!(
            "/v1.0/auditLogs/provisioning?$filter={filter}&$top=50{order}"
        ));
        let (records, pages) = harness.collect(&url).await;
        assert_eq!(ids(&records), expected, "{order}");
        assert!(pages > 10);
        let instants = times(&records, "activityDateTime");
        assert!(
            !instants.windows(2).all(|pair| pair[0] <= pair[1]),
            "{order}: not ascending"
        );
        assert!(
            !instants.windows(2).all(|pair| pair[0] >= pair[1]),
            "{order}: not descending"
        );
        orders.push(
            records
                .iter()
                .map(|record| record["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(orders[0], orders[1], "$orderby is not honoured");

    // The default page size, the record shape and `servicePrincipal` as one object.
    let (status, _, body) = harness
        .get(&harness.url("/v1.0/auditLogs/provisioning"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#auditLogs/provisioning")
    );
    assert!(body["@odata.nextLink"].is_string());
    let records = body["value"].as_array().unwrap();
    assert_eq!(records.len(), 100);
    let mut expected_shape =
        lenient_fixture("provisioning-list-v1-example1.verbatim.txt")["value"][0].clone();
    // The example spells `initiatedBy.initiatingType`; the schema's `initiatorType` is written.
    expected_shape["initiatedBy"]
        .as_object_mut()
        .unwrap()
        .remove("initiatingType");
    let mut statuses = BTreeSet::new();
    for record in records {
        assert_same_shape(record, &expected_shape, "provisioningObjectSummary");
        let principal = &record["servicePrincipal"];
        assert!(principal.is_object(), "{principal}");
        assert!(principal["id"].is_string() && principal["displayName"].is_string());
        assert_eq!(record["initiatedBy"]["initiatorType"], "system");
        statuses.insert(
            record["provisioningStatusInfo"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(statuses.contains("success") && statuses.contains("skipped"));
}

#[tokio::test]
async fn risk_detections_filter_page_and_cap_page_size() {
    let harness = Harness::start(streams_config()).await;
    let (status, body) =
        error_of(&harness, "/v1.0/identityProtection/riskDetections?$top=501").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Invalid page size specified: '501'. Must be between 1 and 500 inclusive."
    );
    let (status, _, body) = harness
        .get(&harness.url("/v1.0/identityProtection/riskDetections"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#identityProtection/riskDetections")
    );
    assert_eq!(
        body["value"].as_array().unwrap().len(),
        20,
        "default page size"
    );
    assert!(body["@odata.nextLink"].is_string());
    let expected_shape = crate_fixture("riskDetections-list-v1-live-record.json");
    for record in body["value"].as_array().unwrap() {
        assert_same_shape(record, &expected_shape, "riskDetection");
        let id = record["id"].as_str().unwrap();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        let detected = parse_time(record["detectedDateTime"].as_str().unwrap());
        let activity = parse_time(record["activityDateTime"].as_str().unwrap());
        assert!(activity <= detected);
        let info: Value = serde_json::from_str(record["additionalInfo"].as_str().unwrap()).unwrap();
        assert!(info.is_array());
    }

    for (resource, path) in [
        (Resource::RiskDetections, "riskDetections"),
        (
            Resource::ServicePrincipalRiskDetections,
            "servicePrincipalRiskDetections",
        ),
    ] {
        let start = whole_seconds(harness.sim.started_at() - time::Duration::minutes(110));
        let end = whole_seconds(harness.sim.started_at() - time::Duration::minutes(5));
        let expected: BTreeSet<String> = harness
            .sim
            .truth(resource, start, end + time::Duration::nanoseconds(1))
            .into_iter()
            .map(|record| record.id)
            .collect();
        assert!(expected.len() > 50, "{path}");
        let url = harness.url(&format!(
            "/v1.0/identityProtection/{path}?$filter=detectedDateTime%20ge%20{}%20and%20detectedDateTime%20le%20{}&$orderby=detectedDateTime%20asc&$top=37",
            iso(start),
            iso(end)
        ));
        let (records, _) = harness.collect(&url).await;
        assert_eq!(ids(&records), expected, "{path}");
        let instants = times(&records, "detectedDateTime");
        assert!(
            instants.windows(2).all(|pair| pair[0] >= pair[1]),
            "{path}: $orderby is ignored, newest first"
        );
    }

    let mut expected_shape =
        crate_fixture("servicePrincipalRiskDetections-list-v1-example1.json")["value"][0].clone();
    // Live records carry no `@odata.type` (see the riskDetections record).
    expected_shape
        .as_object_mut()
        .unwrap()
        .remove("@odata.type");
    let (_, _, body) = harness
        .get(&harness.url("/beta/identityProtection/servicePrincipalRiskDetections?$top=100"))
        .await;
    for record in body["value"].as_array().unwrap() {
        assert_same_shape(record, &expected_shape, "servicePrincipalRiskDetection");
        assert_eq!(record["id"].as_str().unwrap().len(), 52);
        assert_eq!(record["activity"], "servicePrincipal");
        assert!(record["keyIds"].is_array());
    }
}

#[tokio::test]
async fn a_tenant_without_p2_gets_403_on_identity_protection_only() {
    let harness = Harness::start(SimConfig {
        p2_licence: false,
        ..streams_config()
    })
    .await;
    let expected = crate_fixture("error-403-identityprotection-not-licensed.json");
    for path in [
        "/v1.0/identityProtection/riskDetections",
        "/v1.0/identityProtection/servicePrincipalRiskDetections?$top=5",
        "/beta/identityProtection/riskDetections",
    ] {
        let (status, body) = error_of(&harness, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_same_shape(&body, &expected, "");
        assert_eq!(body["error"]["code"], "Forbidden");
        assert_eq!(
            body["error"]["message"],
            "Your tenant is not licensed for this feature."
        );
    }
    for path in [
        "/v1.0/auditLogs/directoryAudits".to_string(),
        "/v1.0/auditLogs/provisioning".to_string(),
        "/v1.0/auditLogs/signIns?$top=5".to_string(),
        format!(
            "/beta/auditLogs/signIns?$top=5&$filter={}",
            type_filter("servicePrincipal")
        ),
    ] {
        let (status, _) = error_of(&harness, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let counters = harness.sim.counters();
    assert_eq!(counters.streams["riskDetections"].forbidden, 2);
    assert_eq!(
        counters.streams["servicePrincipalRiskDetections"].forbidden,
        1
    );
    assert_eq!(counters.streams["provisioning"].forbidden, 0);
    assert_eq!(
        harness.sim.refusal(Resource::RiskDetections),
        Some(Refusal::Licence)
    );
}

#[tokio::test]
async fn one_refused_stream_leaves_the_others_serving() {
    let harness = Harness::start(SimConfig {
        refusals: vec![(Resource::NonInteractiveSignIns, Refusal::Licence)],
        ..streams_config()
    })
    .await;
    let beta = |kind: &str| {
        format!(
            "/beta/auditLogs/signIns?$top=3&$filter={}",
            type_filter(kind)
        )
    };
    let (status, body) = error_of(&harness, &beta("nonInteractiveUser")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_same_shape(&body, &fixture("error-403-nonpremium-tenant.json"), "");
    assert_eq!(
        body["error"]["code"],
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    );
    // A request that also reads the refused stream is refused.
    let both =
        encode("signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')");
    let (status, _) = error_of(&harness, &format!("/beta/auditLogs/signIns?$filter={both}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for kind in ["interactiveUser", "servicePrincipal", "managedIdentity"] {
        let (status, _) = error_of(&harness, &beta(kind)).await;
        assert_eq!(status, StatusCode::OK, "{kind}");
    }

    // At run time, through the handle ...
    harness
        .sim
        .set_refusal(Resource::NonInteractiveSignIns, None);
    let (status, _) = error_of(&harness, &beta("nonInteractiveUser")).await;
    assert_eq!(status, StatusCode::OK);

    // ... and through the control endpoint.
    let post = |query: &str| {
        harness
            .http
            .post(harness.url(&format!("/_sim/refusal?{query}")))
            .send()
    };
    let reply: Value = post("stream=provisioning&refusal=permission")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"stream": "provisioning", "refusal": "permission"})
    );
    let (status, body) = error_of(&harness, "/v1.0/auditLogs/provisioning").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let (status, _) = error_of(&harness, "/v1.0/auditLogs/directoryAudits").await;
    assert_eq!(status, StatusCode::OK);
    let streams: Value = harness
        .http
        .get(harness.url("/_sim/streams"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let provisioning = streams
        .as_array()
        .unwrap()
        .iter()
        .find(|stream| stream["name"] == "provisioning")
        .unwrap();
    assert_eq!(provisioning["refusal"], "permission");
    assert_eq!(provisioning["path"], "/v1.0/auditLogs/provisioning");
    assert_eq!(provisioning["time_field"], "activityDateTime");
    assert!(
        post("stream=provisioning&refusal=none")
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let (status, _) = error_of(&harness, "/v1.0/auditLogs/provisioning").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        post("stream=signUps").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_truth_endpoint_serves_each_stream() {
    let harness = Harness::start(streams_config()).await;
    let start = whole_seconds(harness.sim.started_at() - time::Duration::hours(3));
    let end = whole_seconds(harness.sim.started_at());
    for resource in Resource::ALL {
        for parameter in ["stream", "resource"] {
            let truth: Vec<Value> = harness
                .http
                .get(harness.url(&format!(
                    "/_sim/truth?{parameter}={}&start={}&end={}",
                    resource.name(),
                    iso(start),
                    iso(end)
                )))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let expected = harness.sim.truth(resource, start, end);
            assert!(!expected.is_empty(), "{resource:?}");
            let returned: Vec<&str> = truth.iter().map(|r| r["id"].as_str().unwrap()).collect();
            let wanted: Vec<&str> = expected.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(returned, wanted, "{resource:?}");
        }
    }
    let interactive = harness
        .http
        .get(harness.url("/_sim/truth?resource=interactiveUser"))
        .send()
        .await
        .unwrap();
    assert_eq!(interactive.status(), StatusCode::OK);
    let unknown = harness
        .http
        .get(harness.url("/_sim/truth?resource=signUps"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ids_may_repeat_across_sign_in_streams_but_not_within_one() {
    let harness = Harness::start(SimConfig {
        shared_id_fraction: 0.3,
        ..streams_config()
    })
    .await;
    let interactive = truth_ids(&harness, Resource::SignIns);
    let mut total_shared = 0;
    for (resource, kind) in &SIGN_IN_TYPES[1..] {
        let url = harness.url(&format!(
            "/beta/auditLogs/signIns?$filter={}&$top=1000",
            type_filter(kind)
        ));
        let (records, _) = harness.collect(&url).await;
        let returned = ids(&records);
        assert_eq!(returned, truth_ids(&harness, *resource));
        let shared = returned.intersection(&interactive).count();
        assert!(shared > 0, "{kind} shares ids with interactive sign-ins");
        total_shared += shared;
        for record in records
            .iter()
            .filter(|record| interactive.contains(record["id"].as_str().unwrap()))
        {
            assert_eq!(record["signInEventTypes"], json!([kind]));
        }
    }
    assert!(total_shared > 200, "{total_shared}");
}

#[tokio::test]
async fn lateness_applies_to_each_stream() {
    let harness = Harness::start(SimConfig {
        lateness: Lateness::Fixed(Duration::from_secs(600)),
        stream_lateness: vec![
            (
                Resource::NonInteractiveSignIns,
                Lateness::Fixed(Duration::from_secs(3600)),
            ),
            (Resource::SignIns, Lateness::None),
        ],
        ..streams_config()
    })
    .await;
    let start = harness.sim.started_at() - time::Duration::hours(3);
    let now = OffsetDateTime::now_utc();
    for (resource, hidden_for) in [
        (Resource::SignIns, None),
        (
            Resource::NonInteractiveSignIns,
            Some(time::Duration::hours(1)),
        ),
        (Resource::Provisioning, Some(time::Duration::minutes(10))),
        (Resource::RiskDetections, Some(time::Duration::minutes(10))),
    ] {
        let all = harness.sim.all_records(resource, start, now);
        let visible = harness.sim.truth(resource, start, now);
        let asked = OffsetDateTime::now_utc();
        match hidden_for {
            None => assert_eq!(all.len(), visible.len(), "{resource:?}"),
            Some(delay) => {
                assert!(visible.len() < all.len(), "{resource:?}");
                assert!(
                    visible.iter().all(|record| record.time + delay <= asked),
                    "{resource:?}"
                );
                assert!(
                    all.iter()
                        .all(|record| record.visible_at == record.time + delay)
                );
            }
        }
    }
    // Records keep becoming visible during the test: what a paged read returns lies between
    // the truth before and after it.
    let before = truth_ids(&harness, Resource::NonInteractiveSignIns);
    let url = harness.url(&format!(
        "/beta/auditLogs/signIns?$filter={}&$top=1000",
        type_filter("nonInteractiveUser")
    ));
    let (records, _) = harness.collect(&url).await;
    let returned = ids(&records);
    let after = truth_ids(&harness, Resource::NonInteractiveSignIns);
    assert!(before.is_subset(&returned) && returned.is_subset(&after));
}

#[tokio::test]
async fn faults_can_target_one_stream() {
    let harness = Harness::start(streams_config()).await;
    harness.sim.set_faults(vec![
        Fault::new(FaultKind::Status(500)).on(Resource::ManagedIdentitySignIns),
    ]);
    let beta = |kind: &str| {
        format!(
            "/beta/auditLogs/signIns?$top=3&$filter={}",
            type_filter(kind)
        )
    };
    let (status, _) = error_of(&harness, &beta("managedIdentity")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    for path in [
        beta("servicePrincipal"),
        "/v1.0/auditLogs/signIns?$top=3".to_string(),
        "/v1.0/auditLogs/provisioning?$top=3".to_string(),
    ] {
        let (status, _) = error_of(&harness, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    harness.sim.set_faults(vec![
        Fault::new(FaultKind::LicenceForbidden).on(Resource::Provisioning),
    ]);
    let (status, body) = error_of(&harness, "/v1.0/auditLogs/provisioning").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["code"],
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    );
    assert_eq!(harness.sim.counters().streams["provisioning"].forbidden, 1);
}

#[tokio::test]
async fn injected_records_join_their_stream() {
    let harness = Harness::start(SimConfig {
        seed: 3,
        ..crate::helpers::empty_config()
    })
    .await;
    let now = OffsetDateTime::now_utc();
    let visible = now - time::Duration::seconds(5);
    harness.sim.inject(
        Resource::ServicePrincipalSignIns,
        json!({"id": "sp-1", "createdDateTime": iso(now - time::Duration::minutes(5)), "signInEventTypes": ["servicePrincipal"]}),
        visible,
    );
    harness.sim.inject(
        Resource::RiskDetections,
        json!({"id": "rd-1", "detectedDateTime": iso(now - time::Duration::minutes(5))}),
        visible,
    );
    for id in ["p-1", "p-2", "p-3"] {
        harness.sim.inject(
            Resource::Provisioning,
            json!({"id": id, "activityDateTime": iso(now - time::Duration::minutes(5))}),
            visible,
        );
    }
    let (records, _) = harness
        .collect(&harness.url(&format!(
            "/beta/auditLogs/signIns?$filter={}",
            type_filter("servicePrincipal")
        )))
        .await;
    assert_eq!(ids(&records), BTreeSet::from(["sp-1".to_string()]));
    let (records, _) = harness
        .collect(&harness.url("/v1.0/auditLogs/signIns"))
        .await;
    assert!(records.is_empty());
    let (records, _) = harness
        .collect(&harness.url("/v1.0/identityProtection/riskDetections"))
        .await;
    assert_eq!(ids(&records), BTreeSet::from(["rd-1".to_string()]));
    let (records, pages) = harness
        .collect(&harness.url("/v1.0/auditLogs/provisioning?$top=1"))
        .await;
    assert_eq!(ids(&records).len(), 3);
    assert!(pages >= 3);
}
