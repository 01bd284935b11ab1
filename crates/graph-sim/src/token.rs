//! The token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client-credentials grant) and the TLS
//! material it is served with.
//!
//! `azure_identity` 1.0.0 `ClientSecretCredential` posts `client_id`, `client_secret`,
//! `grant_type=client_credentials` and `scope` as a form to `{authority}/{tenant}/oauth2/v2.0/token`
//! and reads `access_token` and `expires_in` (or `error_codes` and `error_description` on failure);
//! it calls no other endpoint (no instance discovery, no OpenID metadata).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::timefmt::to_ns;
use crate::{Shared, new_guid};

/// An access token the Graph server accepts until `expires_at`.
pub(crate) struct IssuedToken {
    pub client_id: String,
    pub expires_at: i64,
    /// The scope without `/.default` (`https://graph.microsoft.com`): ARM checks it.
    pub audience: String,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: String,
) -> Response {
    shared
        .counters
        .token_requests
        .fetch_add(1, AtomicOrdering::Relaxed);
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let config = &shared.config;
    let refusal = if !tenant.eq_ignore_ascii_case(&config.tenant) {
        Some((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ))
    } else if let Some(missing) = ["grant_type", "client_id", "scope"]
        .into_iter()
        .find(|name| field(name).is_none())
    {
        Some((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{missing}'."),
        ))
    } else if field("grant_type") != Some("client_credentials") {
        Some((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.".to_string(),
        ))
    } else if field("client_id") != Some(config.client_id.as_str()) {
        Some((
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                field("client_id").unwrap_or(""),
                config.tenant
            ),
        ))
    } else if !field("scope").is_some_and(|scope| {
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        scopes.len() == 1 && scopes[0].ends_with("/.default")
    }) {
        Some((
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope").unwrap_or("")
            ),
        ))
    } else if field("client_secret").is_none() {
        Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".to_string(),
        ))
    } else if field("client_secret") != Some(config.client_secret.as_str()) {
        Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                config.client_id
            ),
        ))
    } else {
        None
    };
    if let Some((status, error, code, message)) = refusal {
        shared
            .counters
            .token_refused
            .fetch_add(1, AtomicOrdering::Relaxed);
        return aadsts_error(status, error, code, &message);
    }

    let access_token = random_token();
    let lifetime = config.token_lifetime;
    let expires_at = to_ns(OffsetDateTime::now_utc())
        .saturating_add(i64::try_from(lifetime.as_nanos()).unwrap_or(i64::MAX));
    shared.tokens.lock().expect("tokens lock").insert(
        access_token.clone(),
        IssuedToken {
            client_id: config.client_id.clone(),
            expires_at,
            audience: field("scope")
                .and_then(|scope| scope.trim().strip_suffix("/.default"))
                .unwrap_or("")
                .to_string(),
        },
    );
    shared
        .counters
        .tokens_issued
        .fetch_add(1, AtomicOrdering::Relaxed);
    let seconds = lifetime.as_secs();
    let body = json!({
        "token_type": "Bearer",
        "expires_in": seconds,
        "ext_expires_in": seconds,
        "access_token": access_token,
    });
    token_response(StatusCode::OK, body)
}

fn token_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An Entra ID (AADSTS) error body.
fn aadsts_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let now = OffsetDateTime::now_utc();
    let timestamp = crate::timefmt::format_timestamp(to_ns(now), 0).replace('T', " ");
    let trace_id = new_guid();
    let correlation_id = new_guid();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    token_response(status, body)
}

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A CA generated at start and a server certificate it signed.
pub(crate) struct TlsMaterial {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Generates the test CA (`CA:TRUE`) and a leaf for `localhost` / `127.0.0.1` (`CA:FALSE`,
/// serverAuth), valid from a day ago for a year.
pub(crate) fn generate_tls() -> anyhow::Result<TlsMaterial> {
    let now = OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, "graph-sim test CA");
    ca_name.push(DnType::OrganizationName, "graph-sim");
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::from_secs(86_400);
    ca_params.not_after = now + Duration::from_secs(2 * 365 * 86_400);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let mut leaf_name = DistinguishedName::new();
    leaf_name.push(DnType::CommonName, "localhost");
    leaf_params.distinguished_name = leaf_name;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = now - Duration::from_secs(86_400);
    leaf_params.not_after = now + Duration::from_secs(365 * 86_400);
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca.pem(),
        server_config: Arc::new(server_config),
    })
}
