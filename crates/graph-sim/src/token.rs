//! The token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client-credentials grant) and the TLS
//! material it is served with.
//!
//! `azure_identity` 1.0.0 `ClientSecretCredential` posts `client_id`, `client_secret`,
//! `grant_type=client_credentials` and `scope` as a form to `{authority}/{tenant}/oauth2/v2.0/token`
//! and reads `access_token` and `expires_in` (or `error_codes` and `error_description` on failure);
//! it calls no other endpoint (no instance discovery, no OpenID metadata).
//! `ClientAssertionCredential` posts `client_assertion` and `client_assertion_type` instead of
//! the secret. A certificate assertion (`private_key_jwt`) is checked as Entra ID documents it
//! ("Microsoft identity platform certificate credentials"): a JWT whose header names the
//! certificate (`x5t`, base64url SHA-1 thumbprint, with `RS256`; or `x5t#S256`, SHA-256, with
//! `PS256`), whose `iss` and `sub` are the client id, whose `aud` is this token endpoint and whose
//! `nbf`..`exp` holds now, signed by the key of a certificate registered on the app. Each request
//! is recorded ([`crate::Sim::token_requests`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::AppRegistration;
use crate::timefmt::to_ns;
use crate::{Shared, new_guid};

/// An access token the Graph server accepts until `expires_at`.
pub(crate) struct IssuedToken {
    pub client_id: String,
    pub expires_at: i64,
    /// The scope without `/.default` (`https://graph.microsoft.com`): ARM checks it.
    pub audience: String,
}

/// One request to the token endpoint, as recorded ([`crate::Sim::token_requests`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRequest {
    /// The `Host` header: which authority host the client used.
    pub host: String,
    /// The tenant of the path (`/{tenant}/oauth2/v2.0/token`), as sent.
    pub tenant: String,
    /// The form's `client_id`.
    pub client_id: Option<String>,
    /// The form's `scope`.
    pub scope: Option<String>,
    /// `client_secret`, `client_assertion` or `none`: how the client authenticated.
    pub credential: &'static str,
    /// The assertion's `x5t` header (base64url SHA-1 thumbprint), if any.
    pub x5t: Option<String>,
    /// The assertion's `x5t#S256` header (base64url SHA-256 thumbprint), if any.
    pub x5t_s256: Option<String>,
    /// The assertion's `alg` header, if any.
    pub alg: Option<String>,
    /// The AADSTS code of a refusal; `None` when a token was issued.
    pub error_code: Option<u32>,
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

/// A refusal: status, OAuth `error`, AADSTS code, message.
type Refusal = (StatusCode, &'static str, u32, String);

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
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
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let assertion_header = field("client_assertion").and_then(jwt_header);
    let header_text = |name: &str| {
        assertion_header
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut record = TokenRequest {
        host: host.clone(),
        tenant: tenant.clone(),
        client_id: field("client_id").map(str::to_string),
        scope: field("scope").map(str::to_string),
        credential: if field("client_assertion").is_some() {
            "client_assertion"
        } else if field("client_secret").is_some() {
            "client_secret"
        } else {
            "none"
        },
        x5t: header_text("x5t"),
        x5t_s256: header_text("x5t#S256"),
        alg: header_text("alg"),
        error_code: None,
    };
    let registrations = shared.config.registrations();
    let refusal = check(&registrations, &tenant, &host, &field);
    if let Some((status, error, code, message)) = refusal {
        record.error_code = Some(code);
        shared
            .token_log
            .lock()
            .expect("token log lock")
            .push(record);
        shared
            .counters
            .token_refused
            .fetch_add(1, AtomicOrdering::Relaxed);
        return aadsts_error(status, error, code, &message);
    }
    shared
        .token_log
        .lock()
        .expect("token log lock")
        .push(record);

    let config = &shared.config;
    let client_id = field("client_id").unwrap_or("").to_string();
    let audience = field("scope")
        .and_then(|scope| scope.trim().strip_suffix("/.default"))
        .unwrap_or("")
        .to_string();
    let lifetime = config.token_lifetime;
    let now = OffsetDateTime::now_utc();
    let access_token = access_token(&tenant, &client_id, &audience, now, lifetime);
    let expires_at =
        to_ns(now).saturating_add(i64::try_from(lifetime.as_nanos()).unwrap_or(i64::MAX));
    shared.tokens.lock().expect("tokens lock").insert(
        access_token.clone(),
        IssuedToken {
            client_id,
            expires_at,
            audience,
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

/// Entra ID's checks, in its order: tenant, form, grant, client, scope, then the client's
/// credential (an assertion, else a secret).
fn check<'a>(
    registrations: &[AppRegistration],
    tenant: &str,
    host: &str,
    field: &dyn Fn(&str) -> Option<&'a str>,
) -> Option<Refusal> {
    if !registrations
        .iter()
        .any(|app| app.tenant.eq_ignore_ascii_case(tenant))
    {
        return Some((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    if let Some(missing) = ["grant_type", "client_id", "scope"]
        .into_iter()
        .find(|name| field(name).is_none())
    {
        return Some((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{missing}'."),
        ));
    }
    if field("grant_type") != Some("client_credentials") {
        return Some((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.".to_string(),
        ));
    }
    let client_id = field("client_id").unwrap_or("");
    let Some(app) = registrations
        .iter()
        .find(|app| app.tenant.eq_ignore_ascii_case(tenant) && app.client_id == client_id)
    else {
        return Some((
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    };
    if !field("scope").is_some_and(|scope| {
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        scopes.len() == 1 && scopes[0].ends_with("/.default")
    }) {
        return Some((
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope").unwrap_or("")
            ),
        ));
    }
    if let Some(assertion) = field("client_assertion") {
        return match field("client_assertion_type") {
            None => Some((
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'."
                    .to_string(),
            )),
            Some(kind) if kind != ASSERTION_TYPE => Some((
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                format!("Invalid client_assertion_type '{kind}'."),
            )),
            Some(_) => check_assertion(app, tenant, host, assertion),
        };
    }
    match field("client_secret") {
        None => Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".to_string(),
        )),
        Some(secret) if app.client_secret.as_deref() != Some(secret) => Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        )),
        Some(_) => None,
    }
}

/// The JSON header of a JWT, if it has one.
fn jwt_header(jwt: &str) -> Option<Value> {
    let header = jwt.split('.').next()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?).ok()
}

/// Checks a certificate assertion of `app`: shape, application id, key, signature, audience,
/// time.
fn check_assertion(app: &AppRegistration, tenant: &str, host: &str, jwt: &str) -> Option<Refusal> {
    let malformed = || {
        Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.".to_string(),
        ))
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        return malformed();
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok();
    let (Some(header), Some(claims), Some(signature)) = (
        decode(header_b64).and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
        decode(claims_b64).and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
        decode(signature_b64),
    ) else {
        return malformed();
    };
    let text =
        |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let invalid_signature = |reason: String| {
        Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - {reason} Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'. Review the documentation at https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0 to learn more.]",
                app.client_id
            ),
        ))
    };
    if text(&claims, "iss").as_deref() != Some(app.client_id.as_str())
        || text(&claims, "sub").as_deref() != Some(app.client_id.as_str())
    {
        return Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials.".to_string(),
        ));
    }
    let alg = text(&header, "alg").unwrap_or_default();
    let (thumbprint, digest, verifier): (
        Option<String>,
        &'static ring::digest::Algorithm,
        &'static dyn rustls::pki_types::SignatureVerificationAlgorithm,
    ) = match alg.as_str() {
        "RS256" => (
            text(&header, "x5t"),
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        ),
        "PS256" => (
            text(&header, "x5t#S256"),
            &ring::digest::SHA256,
            webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        ),
        other => {
            return Some((
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                5002738,
                format!(
                    "Invalid JWT token. '{other}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256,PS256'."
                ),
            ));
        }
    };
    let Some(thumbprint) = thumbprint else {
        return invalid_signature(
            "The key was not found: the assertion's header has no x5t (RS256) or x5t#S256 (PS256)."
                .to_string(),
        );
    };
    let Some(certificate) = app.certificates.iter().find(|der| {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(digest, der))
            == thumbprint.trim_end_matches('=')
    }) else {
        return invalid_signature(format!(
            "The key was not found., Thumbprint of key used by client: '{}'.",
            thumbprint_hex(&thumbprint)
        ));
    };
    let signing_input = format!("{header_b64}.{claims_b64}");
    let verified = rustls::pki_types::CertificateDer::from(certificate.as_slice());
    let verified = webpki::EndEntityCert::try_from(&verified)
        .and_then(|cert| cert.verify_signature(verifier, signing_input.as_bytes(), &signature));
    if verified.is_err() {
        return invalid_signature(format!(
            "The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{}', Found key 'Start=…, End=…'.",
            thumbprint_hex(&thumbprint)
        ));
    }
    let expected_path = format!("/{tenant}/oauth2/v2.0/token");
    let audience_ok = text(&claims, "aud").is_some_and(|aud| {
        url::Url::parse(&aud).is_ok_and(|url| {
            url.scheme() == "https"
                && url.path().eq_ignore_ascii_case(&expected_path)
                && url.host_str().is_some_and(|h| {
                    host.split(':')
                        .next()
                        .is_some_and(|ours| ours.eq_ignore_ascii_case(h))
                })
        })
    });
    if !audience_ok {
        return Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials.".to_string(),
        ));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let skew = 300;
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims
        .get("nbf")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN);
    if exp.is_none_or(|exp| exp + skew < now) || nbf > now + skew {
        return Some((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {}.",
                exp.map_or("none".to_string(), |e| e.to_string())
            ),
        ));
    }
    None
}

/// A base64url thumbprint as the upper-case hex Entra ID prints.
fn thumbprint_hex(thumbprint: &str) -> String {
    URL_SAFE_NO_PAD
        .decode(thumbprint.trim_end_matches('='))
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
        .unwrap_or_else(|_| thumbprint.to_string())
}

/// An access token shaped like Entra ID's (a JWT with `aud`, `iss`, `tid`, `appid`, `nbf`,
/// `iat`, `exp`), so that Azurite's `--oauth basic` accepts the storage ones; its signature is
/// random bytes (nothing here checks it: the Graph server looks tokens up).
fn access_token(
    tenant: &str,
    client_id: &str,
    audience: &str,
    now: OffsetDateTime,
    lifetime: Duration,
) -> String {
    let issued = now.unix_timestamp();
    let expires = issued.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "graph-sim"});
    let claims = json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "tid": tenant,
        "appid": client_id,
        "azp": client_id,
        "sub": client_id,
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "uti": random_token(),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(random_token())
    )
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
