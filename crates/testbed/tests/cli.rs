//! The operator's command line, run as a process: `run` with a backfill range, `status` and
//! `config check`, against the stand-ins.

use std::process::Output;
use std::time::Duration;

use entra_export::job::JobKind;
use graph_sim::{Resource, SimConfig, Throttle};
use testbed::{Stack, StackOptions};
use time::OffsetDateTime;

async fn entra_export(env: &[(String, String)], args: &[&str]) -> Output {
    tokio::process::Command::new(testbed::host::binary().unwrap())
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn stack() -> Option<Stack> {
    let sim = SimConfig {
        seed: 11,
        history: Duration::from_secs(2 * 86_400),
        audit_per_hour: 40,
        throttle: Some(Throttle {
            requests: 100,
            per: Duration::from_secs(10),
        }),
        ..SimConfig::default()
    };
    let env = [
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("QUERY_LAG", "0s"),
        ("INITIAL_LOOKBACK", "2h"),
    ];
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Stack::start(StackOptions { sim, env }).await.unwrap()
}

#[tokio::test]
async fn a_backfill_writes_its_range_and_leaves_the_checkpoint_alone() {
    let Some(stack) = stack().await else { return };
    // Whole hours, so that the range is exactly six slices of the hour grid.
    let now = OffsetDateTime::now_utc();
    let to =
        now.replace_time(time::Time::from_hms(now.hour(), 0, 0).unwrap()) - time::Duration::days(1);
    let from = to - time::Duration::hours(6);
    let (from_text, to_text) = (
        entra_export::timestamp::format(from),
        entra_export::timestamp::format(to),
    );
    let output = entra_export(
        &stack.env(),
        &["run", "audit", "--from", &from_text, "--to", &to_text],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outcome"], "complete");
    assert_eq!(report["backfill"], true);
    assert_eq!(report["range_start"], from_text.as_str());
    // 240 records in six hours fit in one page: one window, one request.
    assert_eq!(report["windows"], 1, "{report}");
    assert_eq!(report["requests"], 1, "{report}");
    // Not a terminal: plain progress lines instead of a bar.
    assert!(
        stderr.contains("audit: 360 minutes of events to fetch"),
        "{stderr}"
    );
    let storage = stack.storage().await.unwrap();
    let state = storage
        .read_checkpoint(&stack.container(JobKind::Audit))
        .await
        .unwrap();
    assert_eq!(
        state.checkpoint, None,
        "a backfill must not move the checkpoint"
    );
    let landed = testbed::verify::landed(&storage, &stack.container(JobKind::Audit))
        .await
        .unwrap();
    let truth = stack.sim.truth(Resource::DirectoryAudits, from, to);
    assert!(!truth.is_empty());
    assert!(
        landed
            .missing(truth.iter().map(|r| r.id.as_str()))
            .is_empty()
    );
    assert!(
        landed
            .unexpected(truth.iter().map(|r| r.id.as_str()))
            .is_empty()
    );

    // The same backfill again writes nothing twice: the written ids are remembered.
    let again = entra_export(
        &stack.env(),
        &["run", "audit", "--from", &from_text, "--to", &to_text],
    )
    .await;
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["records_written"], 0, "{report}");
    assert_eq!(
        report["records_skipped"].as_u64().unwrap() as usize,
        truth.len()
    );
}

#[tokio::test]
async fn status_shows_checkpoint_lock_and_last_run() {
    let Some(stack) = stack().await else { return };
    // Before any run: each job is "never run", not an error.
    let output = entra_export(&stack.env(), &["status"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("never run").count(), 2, "{stdout}");
    assert!(
        !stdout.contains("does not exist in storage account"),
        "{stdout}"
    );

    let output = entra_export(&stack.env(), &["run", "all"]).await;
    assert!(output.status.success(), "{:?}", text(&output));
    // `run all` prints one pretty JSON report per job.
    let printed: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(printed.len(), 2);
    let storage = stack.storage().await.unwrap();
    for report in &printed {
        let kind = if report["job"] == "audit" {
            JobKind::Audit
        } else {
            JobKind::SignIn
        };
        let stored = storage
            .read_checkpoint(&stack.container(kind))
            .await
            .unwrap()
            .last_run
            .unwrap();
        let stored: serde_json::Value = serde_json::from_str(&stored.report_json).unwrap();
        let (printed_ms, stored_ms) = (
            report["duration_ms"].as_u64().unwrap(),
            stored["duration_ms"].as_u64().unwrap(),
        );
        // The stored report is written just before the checkpoint write, the printed one after.
        assert!(
            stored_ms > 0 && stored_ms <= printed_ms && printed_ms - stored_ms < 5_000,
            "stored {stored_ms} ms, printed {printed_ms} ms"
        );
    }
    let output = entra_export(&stack.env(), &["status"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for job in ["audit", "signin"] {
        assert!(
            stdout.contains(&format!("{job} (container {}-{job})", stack.prefix)),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("checkpoint (last_datetime): 20"),
        "{stdout}"
    );
    assert!(stdout.contains("lock: lease available"), "{stdout}");
    assert!(stdout.contains("outcome complete"), "{stdout}");
}

#[tokio::test]
async fn config_check_redacts_secrets_and_fails_on_problems() {
    let secret = "do-not-print-this-secret";
    let key = "c2VjcmV0LWFjY291bnQta2V5LW5vdC10by1wcmludA==";
    let env: Vec<(String, String)> = [
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.us"),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
        ("AZURE_CLIENT_SECRET", secret),
        (
            "STORAGE_CONNECTION_STRING",
            &format!("DefaultEndpointsProtocol=https;AccountName=logs;AccountKey={key};EndpointSuffix=core.usgovcloudapi.net"),
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_string()))
    .collect();
    let output = entra_export(&env, &["config", "check"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("AZURE_CLOUD=AzureUSGovernment") && stdout.contains("configuration ok"),
        "{stdout}"
    );
    for leak in [secret, key] {
        assert!(
            !stdout.contains(leak) && !stderr.contains(leak),
            "a secret was printed"
        );
    }

    let mut bad = env.clone();
    bad.push(("GRAPH_PAGE_SIZE".into(), "0".into()));
    bad.push(("QUERY_LAG".into(), "later".into()));
    let output = entra_export(&bad, &["config", "check"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("2 configuration problem(s)"), "{stderr}");
    assert!(
        stderr.contains("GRAPH_PAGE_SIZE") && stderr.contains("QUERY_LAG"),
        "{stderr}"
    );
    assert!(!stdout.contains(secret) && !stderr.contains(secret) && !stderr.contains(key));

    // Values that carry a secret where it does not belong: each is a problem, none is echoed.
    let marked = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = env.clone();
        for (name, value) in pairs {
            env.retain(|(k, _)| k != name);
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
        env
    };
    let runs = [
        (
            marked(&[
                ("AZURE_CLIENT_SECRET", "MARKER-secret\nMARKER-second-line"),
                ("AZURE_CLIENT_ID", "Abc8Q~MARKER-client-secret"),
                ("GRAPH_ENDPOINT", "https://user:MARKER-pw@graph.example.com"),
                (
                    "AZURE_AUTHORITY_HOST",
                    "https://login.example.com/?client_secret=MARKER",
                ),
                (
                    "STORAGE_CONNECTION_STRING",
                    &format!(
                        "AccountName=logs;AccountKey={key};BlobEndpoint=https://logs.blob.core.usgovcloudapi.net/?sv=2024-08-04&sig=MARKER%3D"
                    ),
                ),
                ("QUERY_LAG", "0s"),
                ("RUN_TIME_BUDGET", "9m"),
            ]),
            &[
                "AZURE_CLIENT_SECRET",
                "AZURE_CLIENT_ID",
                "GRAPH_ENDPOINT: `https://[REDACTED]@graph.example.com/`",
                "AZURE_AUTHORITY_HOST: `https://login.example.com/?[REDACTED]`",
                "STORAGE_CONNECTION_STRING: BlobEndpoint `https://logs.blob.core.usgovcloudapi.net/?[REDACTED]`",
                "QUERY_LAG",
                "ACCEPT_LATE_RECORD_LOSS=true",
                "RUN_TIME_BUDGET/FUNCTION_TIMEOUT",
            ][..],
        ),
        (
            marked(&[
                ("STORAGE_CONNECTION_STRING", ""),
                (
                    "STORAGE_ACCOUNT_URL",
                    "https://user:MARKER@logs.blob.core.usgovcloudapi.net/?sv=2024-08-04&sig=MARKER%3D",
                ),
                (
                    "AZURE_TENANT_ID",
                    "contoso.onmicrosoft.us;AccountKey=MARKER==",
                ),
                ("REPLAY_WINDOW", "2h\nsig=MARKER"),
            ]),
            &[
                "STORAGE_ACCOUNT_URL: `https://[REDACTED]@logs.blob.core.usgovcloudapi.net/?[REDACTED]`",
                "AZURE_TENANT_ID: (value not shown",
                "REPLAY_WINDOW: (value not shown",
            ][..],
        ),
    ];
    for (env, expected) in runs {
        let output = entra_export(&env, &["config", "check"]).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
        for part in expected {
            assert!(stderr.contains(part), "{part}: {stderr}");
        }
        for printed in [&stdout, &stderr] {
            assert!(
                !printed.to_ascii_lowercase().contains("marker") && !printed.contains(key),
                "a secret was printed: {printed}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_client_secret_is_reported_with_the_aadsts_code() {
    let Some(stack) = stack().await else { return };
    let env = stack.env_with(&[("AZURE_CLIENT_SECRET", "not-the-secret")]);
    let output = entra_export(&env, &["run", "audit", "--no-progress"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("cannot authenticate to graph"), "{reason}");
    assert!(reason.contains("AADSTS7000215"), "{reason}");
    assert!(reason.contains("Invalid client secret"), "{reason}");
    assert!(!stdout.contains("not-the-secret") && !stderr.contains("not-the-secret"));
}

#[tokio::test]
async fn azure_cli_without_az_blames_the_credential_not_the_storage_account() {
    // A storage endpoint that counts connections: it must never be contacted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let contacted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = contacted.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let env: Vec<(String, String)> = [
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.us"),
        ("AUTH_MODE", "azure_cli"),
        (
            "STORAGE_ACCOUNT_URL",
            &format!("https://127.0.0.1:{port}/devstoreaccount1"),
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_string()))
    .collect();
    let output = tokio::process::Command::new(testbed::host::binary().unwrap())
        .args(["run", "audit", "--no-progress"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", "/nonexistent/entra-export-test/bin")
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("was not contacted"), "{reason}");
    assert!(reason.contains("az"), "{reason}");
    assert!(
        !reason.contains("unreachable") && !reason.contains("refused access"),
        "{reason}"
    );
    assert_eq!(contacted.load(std::sync::atomic::Ordering::SeqCst), 0);
}
