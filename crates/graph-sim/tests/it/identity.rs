//! The real client the service uses: `azure_identity` 1.0.0 `ClientSecretCredential`.

use std::sync::Arc;

use azure_core::cloud::CustomConfiguration;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use graph_sim::Sim;
use reqwest::StatusCode;

use crate::helpers::{client_for, empty_config, get_with};

fn credential(sim: &Sim, secret: &str) -> Arc<ClientSecretCredential> {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = sim.authority_url();
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(client_for(sim)))),
            cloud: Some(Arc::new(cloud.into())),
            ..Default::default()
        },
    };
    ClientSecretCredential::new(
        &sim.config().tenant,
        sim.config().client_id.clone(),
        secret.to_string().into(),
        Some(options),
    )
    .unwrap()
}

#[tokio::test]
async fn client_secret_credential_gets_a_token_graph_accepts() {
    let sim = graph_sim::start(empty_config()).await.unwrap();
    let token = credential(&sim, "sim-secret")
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .unwrap();
    let remaining = token.expires_on - time::OffsetDateTime::now_utc();
    assert!(remaining > time::Duration::seconds(3500), "{remaining}");
    let url = format!("{}/v1.0/auditLogs/directoryAudits", sim.graph_url());
    let (status, _, _) = get_with(&client_for(&sim), &url, Some(token.token.secret())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.counters().tokens_issued, 1);
}

#[tokio::test]
async fn client_secret_credential_reports_the_aadsts_error() {
    let sim = graph_sim::start(empty_config()).await.unwrap();
    let error = credential(&sim, "wrong")
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("AADSTS7000215"), "{message}");
}
