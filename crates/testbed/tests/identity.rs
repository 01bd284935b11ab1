//! Who the service signs in as, through the real `serve` process: one identity for Graph and
//! storage (client secret, a certificate as a PEM file, a PFX with a password, or the certificate
//! in an app setting as a Key Vault reference resolves it), or Graph in another tenant and cloud
//! with its own app (secret or certificate) while storage keeps the service's identity. The
//! simulator records every token request, so each test checks which authority host, tenant,
//! client, scope and credential each token was asked with; a wrong certificate or tenant fails
//! the run with the setting to check and the AADSTS code.

use std::time::Duration;

use entra_export::job::JobKind;
use graph_sim::certs::{PfxStyle, TestCertificate, TestKey};
use graph_sim::{AppRegistration, SimConfig, Throttle, TokenRequest};
use testbed::e2e::{assert_exactly_once, checkpoint, tick};
use testbed::{HostReply, Serve, Stack, StackOptions};
use time::OffsetDateTime;

/// The tenant of Graph's own app: a commercial (GCC Moderate) tenant.
const GRAPH_TENANT: &str = "contoso.onmicrosoft.com";
/// Graph's own app registration.
const GRAPH_APP: &str = "22222222-3333-4444-5555-666666666666";

fn sim_config(certificates: Vec<Vec<u8>>, apps: Vec<AppRegistration>) -> SimConfig {
    SimConfig {
        seed: 16,
        history: Duration::from_secs(86_400),
        audit_per_hour: 40,
        signin_per_hour: 0,
        throttle: Some(Throttle {
            requests: 100,
            per: Duration::from_secs(10),
        }),
        client_certificates: certificates,
        apps,
        ..SimConfig::default()
    }
}

fn graph_app(secret: Option<&str>, certificates: Vec<Vec<u8>>) -> AppRegistration {
    AppRegistration {
        tenant: GRAPH_TENANT.into(),
        client_id: GRAPH_APP.into(),
        client_secret: secret.map(str::to_owned),
        certificates,
    }
}

async fn start(sim: SimConfig) -> Option<Stack> {
    let env = [
        ("GRAPH_MAX_REQUESTS_PER_10S", "100"),
        ("QUERY_LAG", "0s"),
        ("INITIAL_LOOKBACK", "2h"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    Stack::start(StackOptions { sim, env }).await.unwrap()
}

/// One `AuditTimer` tick through a fresh `serve` with the stack's environment and `overrides`.
async fn tick_audit(stack: &Stack, overrides: &[(&str, &str)]) -> (HostReply, Serve) {
    let serve = Serve::spawn(&stack.env_with(overrides)).await.unwrap();
    let reply = tick(&serve, JobKind::Audit).await;
    (reply, serve)
}

/// Asserts the tick completed and the records of its last hour landed once each.
async fn assert_complete(stack: &Stack, reply: &HostReply, serve: &Serve) {
    assert_eq!(
        reply.outcome(),
        "complete",
        "{}\n{}",
        String::from_utf8_lossy(&reply.body),
        serve.logs()
    );
    let end = checkpoint(stack, JobKind::Audit).await.unwrap();
    assert_exactly_once(
        stack,
        JobKind::Audit,
        end - time::Duration::hours(1),
        end,
        OffsetDateTime::now_utc(),
    )
    .await;
}

/// The failed stream's reason, asserting the reply is the host's 500.
fn failure_reason(reply: &HostReply) -> String {
    assert_eq!(
        reply.status,
        500,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let report = reply.report_of("audit").unwrap();
    assert_eq!(report["outcome"], "failed", "{report}");
    report["reason"].as_str().unwrap().to_owned()
}

fn graph_scope(stack: &Stack) -> String {
    format!("{}/.default", stack.sim.graph_url())
}

/// The simulator's authority under another host name (its certificate names both): Graph's
/// authority, told apart from the service's in the recorded requests.
fn graph_authority(stack: &Stack) -> String {
    stack.sim.authority_url().replace("127.0.0.1", "localhost")
}

/// Every recorded token request for `scope`.
fn requests_for(stack: &Stack, scope: &str) -> Vec<TokenRequest> {
    stack
        .sim
        .token_requests()
        .into_iter()
        .filter(|r| r.scope.as_deref() == Some(scope))
        .collect()
}

/// Every Graph token came from the service's own tenant and app, by an assertion signed with
/// `certificate`.
fn assert_service_certificate_tokens(stack: &Stack, certificate: &TestCertificate) {
    let tenant = stack.sim.config().tenant.clone();
    assert_tokens(
        &requests_for(stack, &graph_scope(stack)),
        "127.0.0.1",
        &tenant,
        "sim-client",
        "client_assertion",
        Some(&certificate.x5t()),
    );
}

/// Asserts there were token requests for `scope` and that each was granted to this tenant,
/// client and credential, at this authority host.
fn assert_tokens(
    requests: &[TokenRequest],
    host: &str,
    tenant: &str,
    client: &str,
    credential: &str,
    x5t: Option<&str>,
) {
    assert!(!requests.is_empty(), "no token request");
    for request in requests {
        assert!(request.host.starts_with(&format!("{host}:")), "{request:?}");
        assert_eq!(request.tenant, tenant, "{request:?}");
        assert_eq!(request.client_id.as_deref(), Some(client), "{request:?}");
        assert_eq!(request.credential, credential, "{request:?}");
        assert_eq!(request.x5t.as_deref(), x5t, "{request:?}");
        assert_eq!(request.error_code, None, "{request:?}");
    }
}

fn write(stack: &Stack, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let path = std::env::temp_dir().join(format!("{}-{name}", stack.prefix));
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn one_identity_with_a_client_secret_as_today() {
    let Some(stack) = start(sim_config(Vec::new(), Vec::new())).await else {
        return;
    };
    let (reply, serve) = tick_audit(&stack, &[]).await;
    assert_complete(&stack, &reply, &serve).await;
    let tenant = stack.sim.config().tenant.clone();
    assert_tokens(
        &requests_for(&stack, &graph_scope(&stack)),
        "127.0.0.1",
        &tenant,
        "sim-client",
        "client_secret",
        None,
    );
}

#[tokio::test]
async fn one_identity_with_a_certificate_in_a_pem_file() {
    let certificate = TestCertificate::generate(TestKey::A, "entra-export pem").unwrap();
    let Some(stack) = start(sim_config(vec![certificate.der.clone()], Vec::new())).await else {
        return;
    };
    let pem = write(&stack, "app.pem", certificate.pem_bundle());
    let (reply, serve) = tick_audit(
        &stack,
        &[
            ("AZURE_CLIENT_SECRET", ""),
            ("AUTH_MODE", ""),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &pem),
        ],
    )
    .await;
    assert_complete(&stack, &reply, &serve).await;
    assert_service_certificate_tokens(&stack, &certificate);
    // The thumbprint is logged (to match it with the app registration), the key never.
    let logs = serve.logs();
    assert!(logs.contains(&certificate.sha1_hex()), "{logs}");
    assert!(!logs.contains("PRIVATE KEY"), "{logs}");
    let _ = std::fs::remove_file(pem);
}

#[tokio::test]
async fn one_identity_with_a_certificate_in_a_pfx_with_a_password() {
    let certificate = TestCertificate::generate(TestKey::B, "entra-export pfx").unwrap();
    let Some(stack) = start(sim_config(vec![certificate.der.clone()], Vec::new())).await else {
        return;
    };
    let pfx = write(
        &stack,
        "app.pfx",
        certificate.pfx("s3cret-pfx", PfxStyle::Modern).unwrap(),
    );
    let (reply, serve) = tick_audit(
        &stack,
        &[
            ("AZURE_CLIENT_SECRET", ""),
            ("AUTH_MODE", "client_certificate"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &pfx),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "s3cret-pfx"),
        ],
    )
    .await;
    assert_complete(&stack, &reply, &serve).await;
    assert_service_certificate_tokens(&stack, &certificate);
    assert!(!serve.logs().contains("s3cret-pfx"));
    let _ = std::fs::remove_file(pfx);
}

#[tokio::test]
async fn one_identity_with_the_certificate_of_a_key_vault_reference() {
    // What the Functions platform puts in the app setting for
    // `@Microsoft.KeyVault(SecretUri=https://<vault>/secrets/<certificate name>/)`: the
    // certificate's PFX, without password, in base64.
    let certificate = TestCertificate::generate(TestKey::A, "entra-export key vault").unwrap();
    let Some(stack) = start(sim_config(vec![certificate.der.clone()], Vec::new())).await else {
        return;
    };
    let value = certificate.key_vault_secret_value().unwrap();
    let (reply, serve) = tick_audit(
        &stack,
        &[
            ("AZURE_CLIENT_SECRET", ""),
            ("AUTH_MODE", "client_certificate"),
            ("AZURE_CLIENT_CERTIFICATE", &value),
        ],
    )
    .await;
    assert_complete(&stack, &reply, &serve).await;
    assert_service_certificate_tokens(&stack, &certificate);
    assert!(!serve.logs().contains(&value[..40]));
}

#[tokio::test]
async fn graph_in_another_tenant_and_cloud_with_its_own_client_secret() {
    let Some(stack) = start(sim_config(
        Vec::new(),
        vec![graph_app(Some("graph-secret"), Vec::new())],
    ))
    .await
    else {
        return;
    };
    let authority = graph_authority(&stack);
    // The service's identity stays the stack's (Azure Government, client secret in the
    // simulator's first tenant); storage is Azurite with its connection string.
    let (reply, serve) = tick_audit(
        &stack,
        &[
            ("GRAPH_CLOUD", "AzurePublic"),
            ("GRAPH_TENANT_ID", GRAPH_TENANT),
            ("GRAPH_CLIENT_ID", GRAPH_APP),
            ("GRAPH_CLIENT_SECRET", "graph-secret"),
            ("GRAPH_AUTHORITY_HOST", &authority),
        ],
    )
    .await;
    assert_complete(&stack, &reply, &serve).await;
    assert_tokens(
        &requests_for(&stack, &graph_scope(&stack)),
        "localhost",
        GRAPH_TENANT,
        GRAPH_APP,
        "client_secret",
        None,
    );
    assert!(
        stack
            .sim
            .token_requests()
            .iter()
            .all(|r| r.tenant == GRAPH_TENANT),
        "{:?}",
        stack.sim.token_requests()
    );
    assert!(!serve.logs().contains("graph-secret"));
}

#[tokio::test]
async fn graph_with_its_own_certificate_while_storage_uses_the_service_identity() {
    let certificate = TestCertificate::generate(TestKey::B, "graph app").unwrap();
    let Some(stack) = start(sim_config(
        Vec::new(),
        vec![graph_app(None, vec![certificate.der.clone()])],
    ))
    .await
    else {
        return;
    };
    let pem = write(&stack, "graph.pem", certificate.pem_bundle());
    let authority = graph_authority(&stack);
    let mut overrides = vec![
        ("GRAPH_CLOUD", "AzurePublic".to_owned()),
        ("GRAPH_TENANT_ID", GRAPH_TENANT.to_owned()),
        ("GRAPH_CLIENT_ID", GRAPH_APP.to_owned()),
        ("GRAPH_CLIENT_CERTIFICATE_PATH", pem.clone()),
        ("GRAPH_AUTHORITY_HOST", authority),
    ];
    // Storage through its token path when the https/oauth Azurite runs: the storage token must
    // come from the service's identity (the simulator's first tenant, its client secret).
    let oauth = oauth_azurite(&stack).await;
    if let Some((url, ca_file)) = &oauth {
        overrides.extend([
            ("STORAGE_CONNECTION_STRING", String::new()),
            ("STORAGE_ACCOUNT_URL", url.clone()),
            ("EXTRA_CA_FILE", ca_file.clone()),
        ]);
    }
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (reply, serve) = tick_audit(&stack, &overrides).await;
    assert_tokens(
        &requests_for(&stack, &graph_scope(&stack)),
        "localhost",
        GRAPH_TENANT,
        GRAPH_APP,
        "client_assertion",
        Some(&certificate.x5t()),
    );
    if oauth.is_some() {
        assert_eq!(
            reply.outcome(),
            "complete",
            "{}\n{}",
            String::from_utf8_lossy(&reply.body),
            serve.logs()
        );
        let report = reply.report_of("audit").unwrap();
        assert!(report["records_written"].as_u64().unwrap() > 0, "{report}");
        let tenant = stack.sim.config().tenant.clone();
        assert_tokens(
            &requests_for(&stack, "https://storage.azure.com/.default"),
            "127.0.0.1",
            &tenant,
            "sim-client",
            "client_secret",
            None,
        );
    } else {
        assert_complete(&stack, &reply, &serve).await;
    }
    let _ = std::fs::remove_file(pem);
}

/// The https Azurite with `--oauth basic` (`scripts/azurite.sh start` starts it when openssl is
/// there): its URL and a CA file trusting both it and the simulator. `None`, with a notice, when
/// it was not started; under CI=true a CA file without a listening instance fails.
async fn oauth_azurite(stack: &Stack) -> Option<(String, String)> {
    let ca = std::env::var("AZURITE_OAUTH_CA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.azurite/oauth-ca.pem")
        });
    let url = std::env::var("AZURITE_OAUTH_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "https://127.0.0.1:10010/devstoreaccount1".to_owned());
    if !ca.is_file() {
        eprintln!(
            "NOTICE: storage keeps its connection string: no {} (scripts/azurite.sh start writes it when openssl is available)",
            ca.display()
        );
        return None;
    }
    let address = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let reachable = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&address),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !reachable {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "the https/oauth Azurite is not reachable at {url} although {} exists and CI=true",
                ca.display()
            );
        }
        eprintln!("NOTICE: storage keeps its connection string: nothing answers at {url}");
        return None;
    }
    let both = format!(
        "{}{}",
        stack.sim.ca_pem(),
        std::fs::read_to_string(&ca).unwrap()
    );
    Some((url, write(stack, "cas.pem", both)))
}

#[tokio::test]
async fn a_certificate_the_app_does_not_have_fails_the_run_naming_the_setting() {
    let registered = TestCertificate::generate(TestKey::A, "registered").unwrap();
    let other = TestCertificate::generate(TestKey::B, "not registered").unwrap();
    let Some(stack) = start(sim_config(
        Vec::new(),
        vec![graph_app(None, vec![registered.der.clone()])],
    ))
    .await
    else {
        return;
    };
    let pem = write(&stack, "other.pem", other.pem_bundle());
    let authority = graph_authority(&stack);
    let (reply, serve) = tick_audit(
        &stack,
        &[
            ("GRAPH_TENANT_ID", GRAPH_TENANT),
            ("GRAPH_CLIENT_ID", GRAPH_APP),
            ("GRAPH_CLIENT_CERTIFICATE_PATH", &pem),
            ("GRAPH_AUTHORITY_HOST", &authority),
        ],
    )
    .await;
    let reason = failure_reason(&reply);
    for part in [
        "cannot authenticate to graph",
        "AADSTS700027",
        "GRAPH_CLIENT_ID",
        "GRAPH_CLIENT_CERTIFICATE_PATH",
        &other.sha1_hex(),
    ] {
        assert!(reason.contains(part), "{part}: {reason}\n{}", serve.logs());
    }
    let refused: Vec<Option<u32>> = stack
        .sim
        .token_requests()
        .iter()
        .map(|r| r.error_code)
        .collect();
    assert!(refused.contains(&Some(700027)), "{refused:?}");
    let _ = std::fs::remove_file(pem);
}

#[tokio::test]
async fn an_unknown_graph_tenant_fails_the_run_naming_the_setting() {
    let Some(stack) = start(sim_config(
        Vec::new(),
        vec![graph_app(Some("graph-secret"), Vec::new())],
    ))
    .await
    else {
        return;
    };
    let (reply, serve) = tick_audit(
        &stack,
        &[
            ("GRAPH_TENANT_ID", "fabrikam.onmicrosoft.com"),
            ("GRAPH_CLIENT_ID", GRAPH_APP),
            ("GRAPH_CLIENT_SECRET", "graph-secret"),
        ],
    )
    .await;
    let reason = failure_reason(&reply);
    for part in [
        "AADSTS90002",
        "GRAPH_TENANT_ID `fabrikam.onmicrosoft.com`",
        "GRAPH_TENANT_ID names no tenant",
    ] {
        assert!(reason.contains(part), "{part}: {reason}\n{}", serve.logs());
    }
    assert!(!reason.contains("graph-secret") && !serve.logs().contains("graph-secret"));
}

#[tokio::test]
async fn config_check_shows_both_identities_with_secrets_redacted() {
    let certificate = TestCertificate::generate(TestKey::A, "config check").unwrap();
    let value = certificate.key_vault_secret_value().unwrap();
    let base = [
        ("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000000aa"),
        ("AUTH_MODE", "managed_identity"),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
        (
            "STORAGE_ACCOUNT_URL",
            "https://logs.blob.core.usgovcloudapi.net",
        ),
        ("GRAPH_CLOUD", "AzurePublic"),
        ("GRAPH_TENANT_ID", GRAPH_TENANT),
        ("GRAPH_CLIENT_ID", GRAPH_APP),
    ];
    let run = |extra: Vec<(&'static str, String)>| {
        let mut command = std::process::Command::new(testbed::host::binary().unwrap());
        command
            .args(["config", "check"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(base.iter().map(|(k, v)| (*k, (*v).to_owned())))
            .envs(extra);
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(vec![("GRAPH_CLIENT_CERTIFICATE", value.clone())]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for line in [
        "AUTH_MODE=managed_identity",
        "AZURE_AUTHORITY_HOST=https://login.microsoftonline.us/",
        "GRAPH_ENDPOINT=https://graph.microsoft.com/",
        "GRAPH_CLOUD=AzurePublic",
        "GRAPH_TENANT_ID=contoso.onmicrosoft.com",
        "GRAPH_AUTH_MODE=client_certificate",
        "GRAPH_CLIENT_CERTIFICATE=[REDACTED]",
        "GRAPH_AUTHORITY_HOST=https://login.microsoftonline.com/",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(!stdout.contains(&value[..40]) && !stderr.contains(&value[..40]));
    // A password without a certificate, and an unresolved Key Vault reference.
    let (code, stdout, stderr) = run(vec![
        ("GRAPH_CLIENT_CERTIFICATE_PASSWORD", "pa55-MARKER".into()),
        (
            "AZURE_CLIENT_CERTIFICATE",
            "@Microsoft.KeyVault(SecretUri=https://v.vault.usgovcloudapi.net/secrets/c/)".into(),
        ),
    ]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("GRAPH_CLIENT_CERTIFICATE_PASSWORD: is set but there is no certificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AZURE_CLIENT_CERTIFICATE: is a Key Vault reference that the Functions platform did not resolve"),
        "{stderr}"
    );
    assert!(!stderr.contains("MARKER") && !stdout.contains("MARKER"));
}
