//! The operator's command line, run as a process: `run` with a backfill range, `status`,
//! `checkpoint show` and `set`, and `config check`, against the stand-ins.

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
    // Every stream is listed, enabled or not (the stack enables the two original ones).
    assert_eq!(
        stdout.matches("never run").count(),
        JobKind::ALL.len(),
        "{stdout}"
    );
    assert_eq!(stdout.matches("run by ").count(), 2, "{stdout}");
    assert!(
        stdout.contains("not enabled: add nonInteractiveUser to SIGNIN_EVENT_TYPES"),
        "{stdout}"
    );
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
            stdout.contains(&format!("{job} (container {}-{job}, run by ", stack.prefix)),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("checkpoint (last_datetime): 20"),
        "{stdout}"
    );
    assert!(stdout.contains("lock: lease available"), "{stdout}");
    assert!(stdout.contains("outcome complete"), "{stdout}");
    assert!(
        stdout.contains("runs in a row without progress: 0"),
        "{stdout}"
    );
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

// `checkpoint show` and `checkpoint set`.

fn rfc(instant: OffsetDateTime) -> String {
    entra_export::timestamp::format(instant)
}

fn state_name(container: &str) -> String {
    format!("{container}/written-ids.json")
}

/// Metadata of a container, `None` when it does not exist.
async fn metadata(
    storage: &entra_export::storage::Storage,
    container: &str,
) -> Option<entra_export::storage::checkpoint::StoredMetadata> {
    match storage.read_metadata(container).await {
        Ok(stored) => Some(stored),
        Err(entra_export::storage::Error::ContainerNotFound { .. }) => None,
        Err(error) => panic!("{error}"),
    }
}

/// The written-ids state a run left.
async fn written_ids(
    storage: &entra_export::storage::Storage,
    container: &str,
) -> entra_export::pipeline::dedup::WrittenIds {
    let (body, _) = storage
        .load_state(&state_name(container))
        .await
        .unwrap()
        .expect("a run saved its state");
    entra_export::pipeline::dedup::WrittenIds::decode(&body).unwrap()
}

/// Makes the state say that a run left a window open after `from`, as a run cut short does.
async fn plant_leftover(
    storage: &entra_export::storage::Storage,
    container: &str,
    from: OffsetDateTime,
) -> entra_export::pipeline::plan::Leftover {
    let name = state_name(container);
    let (body, etag) = storage.load_state(&name).await.unwrap().unwrap();
    let mut written = entra_export::pipeline::dedup::WrittenIds::decode(&body).unwrap();
    let minutes = time::Duration::minutes;
    let leftover = entra_export::pipeline::plan::Leftover {
        from,
        end: from + minutes(60),
        open: vec![(from + minutes(10), from + minutes(20), from + minutes(15))],
    };
    written.set_leftover(Some(leftover.clone()));
    storage
        .save_state(&name, written.encode().into(), Some(&etag))
        .await
        .unwrap();
    leftover
}

/// Runs a job to completion and returns the checkpoint it wrote.
async fn run_to_completion(stack: &Stack, kind: JobKind) -> OffsetDateTime {
    let output = entra_export(&stack.env(), &["run", kind.name(), "--no-progress"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outcome"], "complete", "{report}");
    let storage = stack.storage().await.unwrap();
    storage
        .read_checkpoint(&stack.container(kind))
        .await
        .unwrap()
        .checkpoint
        .unwrap()
}

#[tokio::test]
async fn checkpoint_show_says_never_run_then_shows_what_runs_left() {
    let Some(stack) = stack().await else { return };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);

    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!("audit (container {container})\n")),
        "{stdout}"
    );
    assert!(stdout.contains("never run"), "{stdout}");
    let output = entra_export(&stack.env(), &["checkpoint", "show", "all", "--json"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let shown: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(shown.len(), 2, "{stdout}");
    assert_eq!(shown[0]["job"], "audit");
    assert_eq!(shown[1]["job"], "signin");
    assert!(shown.iter().all(|job| job["exists"] == false), "{stdout}");
    assert!(
        metadata(&storage, &container).await.is_none(),
        "show must not create the container"
    );

    let checkpoint = run_to_completion(&stack, JobKind::Audit).await;
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        format!("  checkpoint (last_datetime): {}\n", rfc(checkpoint)),
        "  checkpoint_version: 1\n".to_owned(),
        "  lock: lease available / unlocked\n".to_owned(),
        "outcome complete".to_owned(),
        format!(
            "written-ids state {}-state/{}: ",
            stack.prefix,
            state_name(&container)
        ),
        " ids remembered".to_owned(),
        "  windows left open: none\n".to_owned(),
    ] {
        assert!(stdout.contains(&line), "{line}: {stdout}");
    }
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit", "--json"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["exists"], true);
    assert_eq!(shown["checkpoint"], rfc(checkpoint).as_str());
    assert_eq!(shown["checkpoint_version"], "1");
    assert_eq!(shown["lease"]["state"], "available");
    assert_eq!(shown["last_run"]["outcome"], "complete");
    assert_eq!(shown["last_run"]["report"]["job"], "audit");
    assert!(shown["state"]["ids"].as_u64().unwrap() > 0, "{shown}");
    // A complete run leaves its plan with no window open.
    let plan = &shown["state"]["windows_left_open"];
    assert!(
        plan.is_null() || plan["open"].as_array().unwrap().is_empty(),
        "{shown}"
    );

    // Windows a run left open are shown, as text and as JSON.
    let leftover = plant_leftover(&storage, &container, checkpoint).await;
    let (start, end, progress) = leftover.open[0];
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit"]).await;
    let (stdout, _) = text(&output);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  windows left open: 1, of the range [{}, {})",
            rfc(leftover.from),
            rfc(leftover.end)
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "    [{}, {}) stored up to {}\n",
            rfc(start),
            rfc(end),
            rfc(progress)
        )),
        "{stdout}"
    );
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit", "--json"]).await;
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let open = &shown["state"]["windows_left_open"];
    assert_eq!(open["from"], rfc(leftover.from).as_str(), "{shown}");
    assert_eq!(open["open"][0]["stored_up_to"], rfc(progress).as_str());
}

#[tokio::test]
async fn checkpoint_set_dry_run_changes_nothing() {
    let Some(stack) = stack().await else { return };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);
    let now = OffsetDateTime::now_utc();

    // A job that never ran: nothing is created.
    let target = rfc(now - time::Duration::days(1));
    let output = entra_export(
        &stack.env(),
        &["checkpoint", "set", "audit", &target, "--dry-run"],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("last_datetime: none -> {target}")),
        "{stdout}"
    );
    assert!(stdout.contains("does not exist yet: it would be created"));
    assert!(
        stdout.ends_with("dry run: nothing was changed\n"),
        "{stdout}"
    );
    assert!(metadata(&storage, &container).await.is_none());

    // After a run, with windows left open: the metadata, the state and the lock stay as they are.
    let checkpoint = run_to_completion(&stack, JobKind::Audit).await;
    plant_leftover(&storage, &container, checkpoint).await;
    let before = metadata(&storage, &container).await.unwrap();
    let state_before = storage.load_state(&state_name(&container)).await.unwrap();
    let target = rfc(checkpoint - time::Duration::hours(3));
    let output = entra_export(
        &stack.env(),
        &["checkpoint", "set", "audit", &target, "--dry-run"],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "audit (container {container}): checkpoint would change\n  last_datetime: {} -> {target}\n",
            rfc(checkpoint)
        )),
        "{stdout}"
    );
    assert!(stdout.contains("would be cleared"), "{stdout}");
    assert!(stdout.contains("dry run: nothing was changed"), "{stdout}");
    assert_eq!(metadata(&storage, &container).await.unwrap(), before);
    assert_eq!(
        storage.load_state(&state_name(&container)).await.unwrap(),
        state_before
    );
    assert_eq!(before.lease.state, "available");
}

#[tokio::test]
async fn checkpoint_set_moves_the_checkpoint_keeps_other_keys_and_clears_the_windows_left_open() {
    let Some(stack) = stack().await else { return };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);
    let checkpoint = run_to_completion(&stack, JobKind::Audit).await;

    // A key of somebody else's, as the Python sample wrote.
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    storage
        .update_metadata(&container, &lock, |current| {
            let mut metadata = current.clone();
            metadata.insert("last_execution".into(), "2019-05-21 12:15:41.123".into());
            metadata
        })
        .await
        .unwrap();
    lock.release().await.unwrap();
    plant_leftover(&storage, &container, checkpoint).await;
    let before = metadata(&storage, &container).await.unwrap().metadata;
    let written_before = written_ids(&storage, &container).await;

    let target = checkpoint - time::Duration::hours(3);
    let output = entra_export(&stack.env(), &["checkpoint", "set", "audit", &rfc(target)]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for part in [
        format!("audit (container {container}): checkpoint changed\n"),
        format!("  last_datetime: {} -> {}\n", rfc(checkpoint), rfc(target)),
        "  checkpoint_version: 1 -> 1\n".to_owned(),
        "last_execution, last_run_finished_at, last_run_id".to_owned(),
        format!("1 in the last run's range [{}, ", rfc(checkpoint)),
        "cleared: the next run plans its range afresh".to_owned(),
        "the checkpoint moves back".to_owned(),
    ] {
        assert!(stdout.contains(&part), "{part}: {stdout}");
    }

    let after = metadata(&storage, &container).await.unwrap();
    assert_eq!(after.lease.state, "available", "the lock is released");
    let mut expected = before.clone();
    expected.insert("last_datetime".into(), rfc(target));
    assert_eq!(after.metadata, expected, "only last_datetime changed");
    let written = written_ids(&storage, &container).await;
    assert_eq!(written.leftover(), None);
    assert_eq!(written.len(), written_before.len(), "the written ids stay");
    assert_eq!(
        written.density_per_hour(),
        written_before.density_per_hour()
    );

    // The next run starts from the new checkpoint minus REPLAY_WINDOW (2 h), planned afresh.
    let output = entra_export(&stack.env(), &["run", "audit", "--no-progress"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["checkpoint_before"],
        rfc(target).as_str(),
        "{report}"
    );
    assert_eq!(
        report["range_start"],
        rfc(target - time::Duration::hours(2)).as_str(),
        "{report}"
    );
    assert_eq!(report["outcome"], "complete", "{report}");
}

#[tokio::test]
async fn checkpoint_set_is_refused_while_a_run_holds_the_lock() {
    let Some(stack) = stack().await else { return };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::SignIn);
    storage.ensure_container(&container).await.unwrap();
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .expect("the lock is free");
    let target = rfc(OffsetDateTime::now_utc() - time::Duration::hours(1));

    let output = entra_export(&stack.env(), &["checkpoint", "set", "signin", &target]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "a run of signin holds the lock; try again when it ends (at most LOCK_LEASE, 60 s, after it stops)"
        ),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    let stored = metadata(&storage, &container).await.unwrap();
    assert!(stored.metadata.is_empty(), "{:?}", stored.metadata);
    assert_eq!(stored.lease.state, "leased", "our lease is untouched");

    // A dry run says it would be refused.
    let output = entra_export(
        &stack.env(),
        &["checkpoint", "set", "signin", &target, "--dry-run"],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("a run of signin holds the lock now"),
        "{stdout}"
    );
    // `show` says who holds it.
    let output = entra_export(&stack.env(), &["checkpoint", "show", "signin"]).await;
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains("lock: lease leased / locked (a run holds it)"),
        "{stdout}"
    );

    // Once the run ends, the same command goes through.
    lock.release().await.unwrap();
    let output = entra_export(&stack.env(), &["checkpoint", "set", "signin", &target]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("last_datetime: none -> {target}")),
        "{stdout}"
    );
    let stored = metadata(&storage, &container).await.unwrap();
    assert_eq!(stored.metadata["last_datetime"], target);
    assert_eq!(stored.metadata["checkpoint_version"], "1");
}

#[tokio::test]
async fn checkpoint_set_refuses_a_future_an_expired_or_a_bad_time() {
    let Some(stack) = stack().await else { return };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);
    let now = OffsetDateTime::now_utc();

    let future = rfc(now + time::Duration::days(1));
    let expired = rfc(now - time::Duration::days(31));
    let refusals: [(&[&str], &[&str]); 5] = [
        (
            &["checkpoint", "set", "audit", &future],
            &[&format!("{future} is in the future")],
        ),
        (
            &["checkpoint", "set", "audit", &expired, "--dry-run"],
            &[
                &format!("{expired} is older than Entra's 30-day retention"),
                "can no longer be fetched",
                "cannot recover them",
                "--force",
            ],
        ),
        (
            &["checkpoint", "set", "audit", "2026-13-01T00:00:00Z"],
            &["`2026-13-01T00:00:00Z` is not an RFC 3339 date-time"],
        ),
        (
            &[
                "checkpoint",
                "set",
                "audit",
                "2026-11-01T00:00:00.123456789Z",
            ],
            &["`2026-11-01T00:00:00.123456789Z` has more than 7 fractional second digits"],
        ),
        (
            &["checkpoint", "set", "all", &expired],
            &["invalid value 'all'", "audit, signin"],
        ),
    ];
    for (args, expected) in refusals {
        let output = entra_export(&stack.env(), args).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {stdout}\n{stderr}"
        );
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: {part}: {stderr}");
        }
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
    assert!(
        metadata(&storage, &container).await.is_none(),
        "a refused set touches nothing"
    );

    // --force accepts a time before the retention.
    let output = entra_export(
        &stack.env(),
        &["checkpoint", "set", "audit", &expired, "--force"],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let stored = metadata(&storage, &container).await.unwrap();
    assert_eq!(stored.metadata["last_datetime"], expired);
}

#[tokio::test]
async fn an_unreadable_checkpoint_is_shown_and_replaced_by_checkpoint_set() {
    let Some(stack) = stack().await else { return };
    let storage = stack.storage().await.unwrap();
    let container = stack.container(JobKind::Audit);
    storage.ensure_container(&container).await.unwrap();
    let lock = storage
        .try_lock_for(&container, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    storage
        .update_metadata(&container, &lock, |_| {
            [
                ("last_datetime", "21/05/2019 19:15"),
                ("last_execution", "2019-05-21 12:15:41.123"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
        })
        .await
        .unwrap();
    lock.release().await.unwrap();

    // The run refuses it and names the command that fixes it.
    let output = entra_export(&stack.env(), &["run", "audit", "--no-progress"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("`21/05/2019 19:15`"), "{reason}");
    assert!(
        reason.contains("entra-export checkpoint set <job> <time>"),
        "{reason}"
    );
    // `show` shows the value and the fix, and exits 1.
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("  checkpoint: unreadable `21/05/2019 19:15`: "),
        "{stdout}"
    );
    assert!(stdout.contains("lock: lease available"), "{stdout}");
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit", "--json"]).await;
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["checkpoint_unreadable"]["value"], "21/05/2019 19:15");

    // `set` replaces it, keeping the other key.
    let target = rfc(OffsetDateTime::now_utc() - time::Duration::hours(1));
    let output = entra_export(&stack.env(), &["checkpoint", "set", "audit", &target]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("last_datetime: 21/05/2019 19:15 -> {target}")),
        "{stdout}"
    );
    let stored = metadata(&storage, &container).await.unwrap().metadata;
    assert_eq!(stored["last_datetime"], target);
    assert_eq!(stored["last_execution"], "2019-05-21 12:15:41.123");
    let output = entra_export(&stack.env(), &["checkpoint", "show", "audit"]).await;
    assert!(output.status.success(), "{:?}", text(&output));
}
