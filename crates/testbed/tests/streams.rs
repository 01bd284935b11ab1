//! Every stream through one pipeline, end to end (real `serve`, the Graph simulator serving each
//! stream as Graph documents it, Azurite): each stream lands in its own container exactly once
//! with its own checkpoint, no record of one stream lands in another's, and a stream refused
//! with 403 fails alone.

use std::collections::HashMap;
use std::time::Duration;

use entra_export::job::{JobKind, Timer};
use graph_sim::{Refusal, Resource, SimConfig};
use testbed::e2e::{AMPLE, assert_exactly_once, checkpoint, env, scenario, tick_timer};
use time::OffsetDateTime;

#[tokio::test]
async fn every_stream_lands_in_its_own_container_exactly_once_and_a_refused_one_fails_alone() {
    // Two hours of a mid-size tenant: non-interactive sign-ins ten times the interactive ones,
    // a tenth of the workload sign-ins reusing an interactive sign-in's id (ids are unique only
    // within a type), provisioning in no time order, and risk detections refused (no P2).
    let sim = SimConfig {
        seed: 41,
        history: Duration::from_secs(2 * 3600),
        audit_per_hour: 1_000,
        signin_per_hour: 3_000,
        noninteractive_per_hour: 30_000,
        service_principal_per_hour: 5_000,
        managed_identity_per_hour: 5_000,
        provisioning_per_hour: 600,
        risk_detections_per_hour: 100,
        sp_risk_detections_per_hour: 60,
        shared_id_fraction: 0.1,
        refusals: vec![(Resource::RiskDetections, Refusal::Licence)],
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "2h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        (
            "SIGNIN_EVENT_TYPES",
            "interactiveUser,nonInteractiveUser,servicePrincipal,managedIdentity",
        ),
        (
            "AUDIT_STREAMS",
            "directoryAudits,provisioning,riskDetections,servicePrincipalRiskDetections",
        ),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    let mut first_start: HashMap<String, OffsetDateTime> = HashMap::new();
    let mut last_started = OffsetDateTime::now_utc();
    for round in 0..2 {
        last_started = OffsetDateTime::now_utc();
        let (audit, signin) = tokio::join!(
            tick_timer(&serve, Timer::Audit),
            tick_timer(&serve, Timer::SignIn)
        );
        // Sign-ins: four streams, all complete.
        assert_eq!(signin.status, 200, "{}", serve.logs());
        assert_eq!(signin.outcome(), "complete");
        let reports = signin.reports().unwrap();
        let names: Vec<&str> = reports.iter().map(|r| r["job"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            vec![
                "signin",
                "signin-noninteractive",
                "signin-serviceprincipal",
                "signin-managedidentity"
            ]
        );
        // Audit: the refused stream fails with its hint; the others complete; the reply is 500
        // because a stream failed.
        assert_eq!(audit.status, 500, "{}", serve.logs());
        assert_eq!(audit.outcome(), "failed");
        for report in audit.reports().unwrap() {
            let job = report["job"].as_str().unwrap();
            if job == "riskdetections" {
                assert_eq!(report["outcome"], "failed", "{report}");
                let reason = report["reason"].as_str().unwrap();
                assert!(reason.contains("Entra ID P2"), "{reason}");
                assert!(reason.contains("IdentityRiskEvent.Read.All"), "{reason}");
            } else {
                assert_eq!(report["outcome"], "complete", "{job}: {report}");
            }
        }
        for report in audit.reports().unwrap().iter().chain(reports.iter()) {
            if round == 0 {
                let start = report["range_start"]
                    .as_str()
                    .map(|s| entra_export::timestamp::parse(s).unwrap());
                if let Some(start) = start {
                    first_start.insert(report["job"].as_str().unwrap().to_owned(), start);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for kind in JobKind::ALL {
        if kind == JobKind::RiskDetections {
            assert_eq!(
                checkpoint(&stack, kind).await,
                None,
                "a refused stream has no checkpoint"
            );
            continue;
        }
        let end = checkpoint(&stack, kind)
            .await
            .unwrap_or_else(|| panic!("{kind} has its own checkpoint"));
        // Exactly once against the stream's own truth; `unexpected` would list a record of
        // another stream (the shared ids make a mix-up visible).
        let landed =
            assert_exactly_once(&stack, kind, first_start[kind.name()], end, last_started).await;
        assert!(landed.records > 0, "{kind}");
    }
}

#[tokio::test]
async fn the_python_samples_sign_in_checkpoint_is_honoured_next_to_the_new_streams() {
    let sim = SimConfig {
        seed: 42,
        history: Duration::from_secs(4 * 3600),
        signin_per_hour: 3_000,
        noninteractive_per_hour: 6_000,
        throttle: AMPLE,
        ..SimConfig::default()
    };
    let env = env(&[
        ("INITIAL_LOOKBACK", "3h"),
        ("QUERY_LAG", "0s"),
        ("REPLAY_WINDOW", "10m"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("SIGNIN_EVENT_TYPES", "interactiveUser,nonInteractiveUser"),
    ]);
    let Some((stack, serve)) = scenario(sim, env).await else {
        return;
    };
    // The Python sample left `logs-signin` with its checkpoint an hour ago: the raw Graph
    // timestamp (three fraction digits here) and its own `last_execution` key.
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::SignIn);
    storage.ensure_container(&container).await.unwrap();
    let python =
        OffsetDateTime::now_utc().replace_millisecond(250).unwrap() - time::Duration::hours(1);
    let python_text = format!(
        "{}.250Z",
        entra_export::timestamp::format(python)
            .split('.')
            .next()
            .unwrap()
    );
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    storage
        .update_metadata(&container, &lock, |current| {
            let mut metadata = current.clone();
            metadata.insert("last_datetime".into(), python_text.clone());
            metadata.insert("last_execution".into(), "2026-12-02 09:15:41.123".into());
            metadata
        })
        .await
        .unwrap();
    lock.release().await.unwrap();

    let reply = tick_timer(&serve, Timer::SignIn).await;
    assert_eq!(reply.outcome(), "complete", "{}", serve.logs());
    let signin = reply.report_of("signin").unwrap();
    // The interactive stream goes on from the sample's checkpoint, minus the replay window.
    let range_start =
        entra_export::timestamp::parse(signin["range_start"].as_str().unwrap()).unwrap();
    assert_eq!(
        range_start,
        python - time::Duration::minutes(10),
        "{signin}"
    );
    assert_eq!(
        entra_export::timestamp::parse(signin["checkpoint_before"].as_str().unwrap()).unwrap(),
        python
    );
    // The new stream starts its own first run INITIAL_LOOKBACK back.
    let noninteractive = reply.report_of("signin-noninteractive").unwrap();
    assert!(
        noninteractive["checkpoint_before"].is_null(),
        "{noninteractive}"
    );
    let start =
        entra_export::timestamp::parse(noninteractive["range_start"].as_str().unwrap()).unwrap();
    assert!(OffsetDateTime::now_utc() - start > time::Duration::minutes(179));
    for (kind, from) in [
        (JobKind::SignIn, range_start),
        (JobKind::NonInteractiveSignIn, start),
    ] {
        let end = checkpoint(&stack, kind).await.unwrap();
        assert_exactly_once(&stack, kind, from, end, OffsetDateTime::now_utc()).await;
    }
    // The sample's own key is kept.
    let after = storage.read_metadata(&container).await.unwrap();
    assert_eq!(
        after.metadata.get("last_execution").map(String::as_str),
        Some("2026-12-02 09:15:41.123")
    );
}
