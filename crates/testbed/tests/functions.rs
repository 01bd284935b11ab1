//! The custom-handler protocol, tested as the Functions host uses it: a real `entra-export serve`
//! process, raw HTTP/1.1 over a socket, chunked JSON bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use graph_sim::SimConfig;
use testbed::{Serve, Stack, StackOptions, admin_payload, timer_payload};

/// A listener that counts connections: where the service must not connect.
struct Tripwire {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Tripwire {
    async fn start() -> Tripwire {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Tripwire { port, connections }
    }

    fn env(&self) -> Vec<(String, String)> {
        let url = format!("127.0.0.1:{}", self.port);
        [
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000000aa".to_owned()),
            ("AUTH_MODE", "client_secret".into()),
            ("AZURE_CLIENT_ID", "tripwire-client".into()),
            ("AZURE_CLIENT_SECRET", "tripwire-secret".into()),
            ("AZURE_AUTHORITY_HOST", format!("https://{url}")),
            ("GRAPH_ENDPOINT", format!("http://{url}")),
            (
                "STORAGE_CONNECTION_STRING",
                format!(
                    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://{url}/devstoreaccount1;",
                    testbed::stack::AZURITE_KEY
                ),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn readiness_answers_before_any_network_work() {
    let tripwire = Tripwire::start().await;
    let serve = Serve::spawn(&tripwire.env()).await.unwrap();
    let reply = serve.get("/").await.unwrap();
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        tripwire.connections(),
        0,
        "serve connected to Graph, the authority or storage before any invocation"
    );
    eprintln!("start-up to first answered GET /: {:?}", serve.startup);
}

#[tokio::test]
async fn malformed_json_gets_400_naming_the_problem_and_runs_nothing() {
    let tripwire = Tripwire::start().await;
    let serve = Serve::spawn(&tripwire.env()).await.unwrap();
    for body in [
        &b"{\"Data\":{\"timer\":"[..],
        b"not json",
        b"[]",
        br#"{"Data":{"timer":{"IsPastDue":"soon"}}}"#,
    ] {
        let reply = serve.invoke("AuditTimer", body).await.unwrap();
        assert_eq!(
            reply.status,
            400,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let text = String::from_utf8_lossy(&reply.body);
        assert!(text.contains("invocation body"), "{text}");
    }
    assert_eq!(
        tripwire.connections(),
        0,
        "a refused invocation must not start a run"
    );
}

#[tokio::test]
async fn an_unknown_function_gets_404() {
    let tripwire = Tripwire::start().await;
    let serve = Serve::spawn(&tripwire.env()).await.unwrap();
    let reply = serve
        .invoke(
            "ProvisioningTimer",
            &timer_payload("ProvisioningTimer", false, false),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(serve.get("/api/AuditTimer").await.unwrap().status, 404);
}

#[tokio::test]
async fn an_invalid_configuration_fails_every_run_with_the_problems_on_stderr() {
    let serve = Serve::spawn(&[("GRAPH_PAGE_SIZE".to_owned(), "5000".to_owned())])
        .await
        .unwrap();
    let reply = serve
        .invoke("SignInTimer", &timer_payload("SignInTimer", false, false))
        .await
        .unwrap();
    assert_eq!(reply.status, 500);
    assert_eq!(reply.content_type, "application/json");
    // Without a configuration, the timer's default streams each fail with its problems.
    let reports = reply.reports().unwrap();
    assert_eq!(reports.len(), 4);
    for report in reports {
        assert_eq!(report["outcome"], "failed");
        let reason = report["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("AZURE_TENANT_ID") && reason.contains("GRAPH_PAGE_SIZE"),
            "{reason}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = serve.logs();
    assert!(
        logs.contains("signin run failed") && logs.contains("GRAPH_PAGE_SIZE"),
        "{logs}"
    );
}

fn small_sim() -> SimConfig {
    SimConfig {
        history: Duration::from_secs(3 * 3600),
        audit_per_hour: 30,
        signin_per_hour: 60,
        ..SimConfig::default()
    }
}

fn small_env() -> Vec<(String, String)> {
    [
        ("INITIAL_LOOKBACK", "2h"),
        ("QUERY_LAG", "0s"),
        ("GRAPH_MAX_REQUESTS_PER_10S", "50"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn every_shape_of_timer_payload_runs_the_job() {
    let Some(stack) = Stack::start(StackOptions {
        sim: small_sim(),
        env: small_env(),
    })
    .await
    .unwrap() else {
        return;
    };
    let serve = Serve::spawn(&stack.env()).await.unwrap();
    let payloads = [
        (
            "scheduled, no schedule monitor",
            timer_payload("AuditTimer", false, false),
        ),
        (
            "scheduled, with schedule status",
            timer_payload("AuditTimer", true, false),
        ),
        (
            "catch-up after a missed run",
            timer_payload("AuditTimer", true, true),
        ),
        (
            "started through the admin endpoint",
            admin_payload("AuditTimer"),
        ),
        (
            "camelCase",
            br#"{"data":{"timer":{"scheduleStatus":null,"isPastDue":false}},"metadata":{}}"#
                .to_vec(),
        ),
    ];
    for (what, payload) in payloads {
        let reply = serve.invoke("AuditTimer", &payload).await.unwrap();
        assert_eq!(
            reply.status,
            200,
            "{what}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.content_type, "application/json", "{what}");
        let body = reply.json().unwrap();
        assert_eq!(body["Outputs"], serde_json::json!({}), "{what}");
        assert!(
            body["Logs"][0]
                .as_str()
                .unwrap()
                .starts_with("audit run complete"),
            "{what}: {body}"
        );
        assert_eq!(body["ReturnValue"]["outcome"], "complete", "{what}");
        assert_eq!(body["ReturnValue"]["reports"][0]["job"], "audit", "{what}");
        assert_eq!(
            body["ReturnValue"]["reports"][0]["outcome"], "complete",
            "{what}"
        );
    }
}

#[tokio::test]
async fn one_function_never_runs_twice_at_once_but_both_functions_do() {
    let sim = SimConfig {
        page_latency: Duration::from_millis(1500),
        ..small_sim()
    };
    let Some(stack) = Stack::start(StackOptions {
        sim,
        env: small_env(),
    })
    .await
    .unwrap() else {
        return;
    };
    let serve = Serve::spawn(&stack.env()).await.unwrap();
    let audit_payload = timer_payload("AuditTimer", true, false);
    let signin_payload = timer_payload("SignInTimer", true, false);
    let (first, second, signin) = tokio::join!(
        serve.invoke("AuditTimer", &audit_payload),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            serve
                .invoke("AuditTimer", &admin_payload("AuditTimer"))
                .await
        },
        serve.invoke("SignInTimer", &signin_payload),
    );
    let (first, second, signin) = (first.unwrap(), second.unwrap(), signin.unwrap());
    assert_eq!(
        (first.status, second.status, signin.status),
        (200, 200, 200)
    );
    assert_eq!(first.outcome(), "complete");
    assert_eq!(second.outcome(), "skipped");
    let reason = second.report().unwrap()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("another run"), "{reason}");
    assert_eq!(signin.outcome(), "complete");
    let first_ms = first.report().unwrap()["duration_ms"].as_u64().unwrap();
    let signin_ms = signin.report().unwrap()["duration_ms"].as_u64().unwrap();
    assert!(
        first_ms >= 1500 && signin_ms >= 1500,
        "runs were not slow enough to overlap: {first_ms} {signin_ms}"
    );
}
