//! The `graph-sim` binary: prints KEY=value lines, serves, stops on SIGTERM.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;

#[tokio::test]
async fn binary_prints_settings_serves_and_stops_on_sigterm() {
    let directory = std::env::temp_dir().join(format!("graph-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let ca_file = directory.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_graph-sim"))
        .args([
            "--seed",
            "7",
            "--history",
            "10m",
            "--throttle",
            "off",
            "--ca-file",
        ])
        .arg(&ca_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut settings = HashMap::new();
    for _ in 0..7 {
        let line = lines.next().unwrap().unwrap();
        let (key, value) = line.split_once('=').unwrap();
        settings.insert(key.to_string(), value.to_string());
    }
    assert_eq!(settings["EXTRA_CA_FILE"], ca_file.display().to_string());
    assert_eq!(settings["AZURE_CLIENT_ID"], "sim-client");
    assert_eq!(settings["AUTH_MODE"], "client_secret");

    crate::helpers::install_crypto();
    let pem = std::fs::read(&ca_file).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap();
    let token_url = format!(
        "{}/{}/oauth2/v2.0/token",
        settings["AZURE_AUTHORITY_HOST"], settings["AZURE_TENANT_ID"]
    );
    let token: serde_json::Value = crate::helpers::post_form(
        &http,
        &token_url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", settings["AZURE_CLIENT_ID"].as_str()),
            ("client_secret", settings["AZURE_CLIENT_SECRET"].as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let response = http
        .get(format!(
            "{}/beta/auditLogs/signIns",
            settings["GRAPH_ENDPOINT"]
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&directory);
}
