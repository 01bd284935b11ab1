//! Entra ID credentials and the Graph token cache.
//!
//! [`build_credentials`] picks an `azure_identity` 1.x credential from [`AuthMode`], points it at
//! the configured authority (`AZURE_AUTHORITY_HOST` or the cloud's) and sends its token requests
//! through the shared reqwest client, so `EXTRA_CA_FILE` trust applies to the token endpoint too.
//! It builds one credential for Blob Storage (whose SDK policy caches on its own) and Graph, or,
//! when Graph's tenant, authority or credential differ (`GRAPH_TENANT_ID`, `GRAPH_CLOUD`,
//! `GRAPH_CLIENT_ID`, ...), a second one for Graph. `client_certificate` is
//! `ClientAssertionCredential` with an assertion signed by the certificate's key
//! ([`certificate`]): `azure_identity`'s own `ClientCertificateCredential` needs OpenSSL.
//! A refused token request is reported with the credential's settings and the AADSTS code,
//! plus a hint naming the setting to check for the common codes.
//!
//! [`TokenCache`] holds one Graph token (one scope) and refreshes it ahead of expiry
//! ([`REFRESH_AHEAD`] before, or half its lifetime for short-lived tokens). The Graph client asks
//! it for the token of every attempt once the request limiter has admitted that attempt (a cache
//! hit, cheap), so no token is held through a wait. After a 401 the Graph client calls
//! [`TokenCache::refresh_after_rejection`] (again, after a backoff, for each further 401 while
//! new credentials propagate), which gets a new token even though the SDK credentials keep their
//! own cache: the credential built here is a wrapper that, when asked through a [`ForceRefresh`]
//! marker in the request context, rebuilds its SDK credential (and so its cache) before asking
//! again.
//!
//! Tokens and secrets are never logged: they are held as `azure_core::credentials::Secret`,
//! whose `Debug` is redacted, and only expiry times appear in log fields.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientMethodOptions, ClientOptions, Context, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::config::{AuthConfig, AuthMode, CertificateSource, ClientCertificate, Config};

mod certificate;

/// A token is refreshed this long before it expires.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// Why a credential could not be built or a token obtained.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The SDK refused to build the credential (missing setting, non-https authority, ...).
    #[error("cannot build the {mode} credential: {}", sdk_reason(source))]
    Build {
        /// `AUTH_MODE` name.
        mode: &'static str,
        /// The SDK's reason (Display only: `Debug` can print a backtrace). Shown in this error's
        /// own message, so it is not a `source` (a cause chain would print it twice).
        source: azure_core::Error,
    },
    /// The configuration lacks something the mode needs.
    #[error("the {mode} credential needs {missing}")]
    Missing {
        /// `AUTH_MODE` name.
        mode: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// The token endpoint (or the Azure CLI) refused or failed.
    #[error("cannot get a token for scope `{scope}`: {}", reason(source, 1000))]
    Token {
        /// The scope asked for (not secret).
        scope: String,
        /// The SDK's reason, which quotes the AADSTS code and text but never the secret; shown
        /// in this error's own message (see `Build`).
        source: azure_core::Error,
    },
}

/// The SDK's reason on one line, shortened: for a refused token request the SDK's text is
/// `ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret
/// provided. …` followed by trace ids and a troubleshooting link, of which the first line is what
/// an operator needs. The cause chain is followed (the Azure CLI's "az not found on PATH" sits
/// below the SDK's own message), and URLs are cut at their query string.
fn sdk_reason(error: &azure_core::Error) -> String {
    reason(error, 400)
}

/// [`sdk_reason`] shortened to `max_chars`.
fn reason(error: &azure_core::Error, max_chars: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        let first = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("")
            .to_owned();
        if !first.is_empty() && !parts.iter().any(|p| p.contains(&first)) {
            parts.push(first);
        }
        current = e.source();
    }
    let joined = without_parse_noise(&parts.join(": "));
    let scrubbed: String = joined
        .split(' ')
        .map(|word| match word.split_once('?') {
            Some((before, _)) if word.contains("://") => format!("{before}?…"),
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    crate::redact::shorten(&scrubbed, max_chars)
}

/// The credentials of one process: Graph's, and the service's for Blob Storage and Resource
/// Manager (the same object when Graph has no identity of its own).
#[derive(Clone)]
pub struct Credentials {
    /// For Graph's [`TokenCache`].
    pub graph: Arc<dyn TokenCredential>,
    /// The service's (`AUTH_MODE`): Blob Storage (`STORAGE_ACCOUNT_URL`), Resource Manager.
    pub service: Arc<dyn TokenCredential>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("graph", &self.graph)
            .field("service", &self.service)
            .field("shared", &Arc::ptr_eq(&self.graph, &self.service))
            .finish()
    }
}

/// Builds the service's credential (`AUTH_MODE`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`: Blob
/// Storage and Resource Manager) and,
/// when Graph's identity differs, Graph's (`GRAPH_AUTH_MODE`, `GRAPH_TENANT_ID`,
/// `GRAPH_AUTHORITY_HOST`), using `http` as the transport. No network I/O happens here.
///
/// Each credential honours a [`ForceRefresh`] value in the request context by rebuilding its SDK
/// credential, so that a token rejected by Graph (401) is replaced even before the SDK's own
/// cache would expire it.
pub fn build_credentials(config: &Config, http: reqwest::Client) -> Result<Credentials, AuthError> {
    let service = build_credential(&config.auth, &config.tenant_id, http.clone())?;
    let graph = if config.graph_shares_credential() {
        service.clone()
    } else {
        build_credential(
            &config.graph_identity.auth,
            &config.graph_identity.tenant_id,
            http,
        )?
    };
    Ok(Credentials { graph, service })
}

/// Builds the credential of one set of settings in `tenant_id`.
pub fn build_credential(
    auth: &AuthConfig,
    tenant_id: &str,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let settings = Arc::new(CredentialSettings::from_config(auth, tenant_id, http));
    let inner = settings.build()?;
    if let Some(certificate) = &settings.certificate {
        let days = (certificate.not_after - OffsetDateTime::now_utc()).whole_days();
        tracing::info!(
            credential = %settings.label(),
            certificate.thumbprint = %certificate.thumbprint(),
            certificate.not_after = %certificate.not_after,
            "client certificate loaded"
        );
        if days < 30 {
            tracing::warn!(
                credential = %settings.label(),
                certificate.thumbprint = %certificate.thumbprint(),
                certificate.not_after = %certificate.not_after,
                "the client certificate expires in {days} days: add a new one to the app registration and to the settings"
            );
        }
    }
    Ok(Arc::new(ConfiguredCredential {
        settings,
        inner: RwLock::new(inner),
    }))
}

/// Marker put in a token request's context to ask a credential built by [`build_credential`] for
/// a new token, bypassing the SDK's cache. Other credentials ignore it.
#[derive(Debug, Clone, Copy)]
pub struct ForceRefresh;

/// One scope's token, refreshed ahead of expiry; shared by every Graph request of the process.
pub struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    current: Mutex<Option<Cached>>,
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: OffsetDateTime,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache for `scope` (for Graph, `GraphConfig::scope`).
    pub fn new(credential: Arc<dyn TokenCredential>, scope: String) -> TokenCache {
        TokenCache {
            credential,
            scope,
            current: Mutex::new(None),
        }
    }

    /// The scope this cache serves.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// A valid token: the cached one unless it is due for refresh.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref()
            && OffsetDateTime::now_utc() < cached.refresh_at
        {
            return Ok(cached.token.token.clone());
        }
        let cached = self.fetch(false).await?;
        let secret = cached.token.token.clone();
        *current = Some(cached);
        Ok(secret)
    }

    /// After Graph answered 401 to `rejected`: a new token, unless another request has already
    /// replaced it, in which case that one.
    pub async fn refresh_after_rejection(&self, rejected: &Secret) -> Result<Secret, AuthError> {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref()
            && cached.token.token != *rejected
            && OffsetDateTime::now_utc() < cached.refresh_at
        {
            return Ok(cached.token.token.clone());
        }
        let cached = self.fetch(true).await?;
        let secret = cached.token.token.clone();
        *current = Some(cached);
        Ok(secret)
    }

    async fn fetch(&self, force: bool) -> Result<Cached, AuthError> {
        let mut context = Context::new();
        if force {
            context.insert(ForceRefresh);
        }
        let options = TokenRequestOptions {
            method_options: ClientMethodOptions { context },
        };
        let obtained_at = OffsetDateTime::now_utc();
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], Some(options))
            .await
            .map_err(|source| AuthError::Token {
                scope: self.scope.clone(),
                source,
            })?;
        let refresh_at = refresh_time(obtained_at, token.expires_on);
        tracing::debug!(
            token.expires_on = %token.expires_on,
            token.refresh_at = %refresh_at,
            token.forced = force,
            "graph token obtained"
        );
        Ok(Cached { token, refresh_at })
    }
}

/// When to refresh a token obtained at `obtained_at`: [`REFRESH_AHEAD`] before expiry, or half
/// way through its life when it lives less than twice that.
fn refresh_time(obtained_at: OffsetDateTime, expires_on: OffsetDateTime) -> OffsetDateTime {
    let lifetime = expires_on - obtained_at;
    let ahead = time::Duration::try_from(REFRESH_AHEAD).expect("five minutes fit");
    if lifetime >= ahead * 2 {
        expires_on - ahead
    } else {
        obtained_at + lifetime / 2
    }
}

/// Everything needed to (re)build the SDK credential.
struct CredentialSettings {
    auth: AuthConfig,
    mode: AuthMode,
    tenant_id: String,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    certificate: Option<ClientCertificate>,
    federated_token_file: Option<std::path::PathBuf>,
    authority_host: String,
    http: reqwest::Client,
}

impl CredentialSettings {
    fn from_config(
        auth: &AuthConfig,
        tenant_id: &str,
        http: reqwest::Client,
    ) -> CredentialSettings {
        CredentialSettings {
            auth: auth.clone(),
            mode: auth.mode,
            tenant_id: tenant_id.to_owned(),
            client_id: auth.client_id.clone(),
            client_secret: auth
                .client_secret
                .as_ref()
                .map(|s| Secret::new(crate::config::expose(s).to_owned())),
            certificate: auth.certificate.clone(),
            federated_token_file: auth.federated_token_file.clone(),
            authority_host: auth
                .authority_host
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            http,
        }
    }

    /// The credential and the settings it comes from, for messages: `client_certificate
    /// credential of GRAPH_CLIENT_ID `…` in GRAPH_TENANT_ID `…``.
    fn label(&self) -> String {
        let names = self.auth.set.variables();
        let client = match &self.client_id {
            Some(id) => format!(" of {} `{id}`", names.client_id),
            None if self.mode == AuthMode::ManagedIdentity => " (system-assigned)".to_owned(),
            None => String::new(),
        };
        match self.mode {
            AuthMode::ManagedIdentity => format!("{} credential{client}", self.mode.name()),
            _ => format!(
                "{} credential{client} in {} `{}`",
                self.mode.name(),
                names.tenant_id,
                self.tenant_id
            ),
        }
    }

    /// What to check for a refusal with this AADSTS code, naming the settings.
    fn hint(&self, code: u32) -> Option<String> {
        let names = self.auth.set.variables();
        let cloud = match self.auth.set {
            crate::config::CredentialSet::Azure => "AZURE_CLOUD",
            crate::config::CredentialSet::Graph => "GRAPH_CLOUD",
        };
        let certificate_setting = match self.certificate.as_ref().map(|c| &c.source) {
            Some(CertificateSource::Setting(name)) => (*name).to_owned(),
            _ => names.certificate_path.to_owned(),
        };
        match code {
            90002 => Some(format!(
                "{} names no tenant that {} `{}` knows: check it, and {cloud} (a tenant lives in \
                 one cloud)",
                names.tenant_id, names.authority_host, self.authority_host
            )),
            700016 => Some(format!(
                "{} is not an application of the tenant of {}: check both",
                names.client_id, names.tenant_id
            )),
            7000215 => Some(format!(
                "{} is not a current secret of the application: copy the secret's value (not \
                 its id) again",
                names.client_secret
            )),
            7000222 => Some(format!(
                "the secret in {} has expired: make a new one",
                names.client_secret
            )),
            700027 => Some(match &self.certificate {
                Some(certificate) => format!(
                    "the certificate of {certificate_setting} (thumbprint {}) is not among the \
                     application's certificates, or its key is not that certificate's: add the \
                     certificate (its public part) to the app registration's certificates",
                    certificate.thumbprint()
                ),
                None => "the client assertion was refused".to_owned(),
            }),
            700021 | 700023 | 700024 => Some(format!(
                "the client assertion of {} was refused: check {} and this machine's clock",
                certificate_setting, names.client_id
            )),
            _ => None,
        }
    }

    /// A refused token request, with the credential's settings and a hint.
    fn explain(&self, error: &azure_core::Error) -> azure_core::Error {
        let reason = sdk_reason(error);
        let hint = aadsts_code(&reason)
            .and_then(|code| self.hint(code))
            .map(|hint| format!(" ({hint})"))
            .unwrap_or_default();
        azure_core::Error::with_message(
            error.kind().clone(),
            format!("{}: {reason}{hint}", self.label()),
        )
    }

    fn client_options(&self) -> ClientOptions {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = self.authority_host.clone();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..Default::default()
        }
    }

    fn build(&self) -> Result<Arc<dyn TokenCredential>, AuthError> {
        let mode = self.mode.name();
        let build_error = |source| AuthError::Build { mode, source };
        let credential: Arc<dyn TokenCredential> = match self.mode {
            AuthMode::ManagedIdentity => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: self.client_id.clone().map(UserAssignedId::ClientId),
                    client_options: self.client_options(),
                }))
                .map_err(build_error)?
            }
            AuthMode::ClientSecret => {
                let names = self.auth.set.variables();
                let client_id = self.client_id.clone().ok_or(AuthError::Missing {
                    mode,
                    missing: names.client_id,
                })?;
                let secret = self.client_secret.clone().ok_or(AuthError::Missing {
                    mode,
                    missing: names.client_secret,
                })?;
                ClientSecretCredential::new(
                    &self.tenant_id,
                    client_id,
                    secret,
                    Some(ClientSecretCredentialOptions {
                        client_options: self.client_options(),
                    }),
                )
                .map_err(build_error)?
            }
            AuthMode::ClientCertificate => {
                let names = self.auth.set.variables();
                let client_id = self.client_id.clone().ok_or(AuthError::Missing {
                    mode,
                    missing: names.client_id,
                })?;
                let certificate = self.certificate.clone().ok_or(AuthError::Missing {
                    mode,
                    missing: names.certificate_path,
                })?;
                let assertion = certificate::CertificateAssertion::new(
                    certificate,
                    client_id.clone(),
                    &self.tenant_id,
                    &self.authority_host,
                )
                .map_err(build_error)?;
                ClientAssertionCredential::new(
                    self.tenant_id.clone(),
                    client_id,
                    assertion,
                    Some(ClientAssertionCredentialOptions {
                        client_options: self.client_options(),
                    }),
                )
                .map_err(build_error)?
            }
            AuthMode::WorkloadIdentity => {
                let names = self.auth.set.variables();
                let client_id = self.client_id.clone().ok_or(AuthError::Missing {
                    mode,
                    missing: names.client_id,
                })?;
                let file = self
                    .federated_token_file
                    .clone()
                    .ok_or(AuthError::Missing {
                        mode,
                        missing: names.federated_token_file,
                    })?;
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: self.client_options(),
                    },
                    client_id: Some(client_id),
                    tenant_id: Some(self.tenant_id.clone()),
                    token_file_path: Some(file),
                }))
                .map_err(build_error)?
            }
            AuthMode::AzureCli => AzureCliCredential::new(Some(AzureCliCredentialOptions {
                tenant_id: Some(self.tenant_id.clone()),
                ..Default::default()
            }))
            .map_err(build_error)?,
        };
        Ok(credential)
    }
}

/// The credential handed out by [`build_credential`]: the SDK credential plus the means to
/// rebuild it when a [`ForceRefresh`] request arrives.
struct ConfiguredCredential {
    settings: Arc<CredentialSettings>,
    inner: RwLock<Arc<dyn TokenCredential>>,
}

impl fmt::Debug for ConfiguredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredCredential")
            .field("credential", &self.settings.label())
            .field("authority_host", &self.settings.authority_host)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ConfiguredCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let forced = options
            .as_ref()
            .is_some_and(|o| o.method_options.context.value::<ForceRefresh>().is_some());
        let credential = if forced {
            let fresh = self.settings.build().map_err(|error| {
                azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    error.to_string(),
                )
            })?;
            *self.inner.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
            fresh
        } else {
            self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
        };
        credential
            .get_token(scopes, options)
            .await
            .map_err(|error| self.settings.explain(&error))
    }
}

/// `azure_identity` 1.0.0 cannot read an Entra ID error body whose `error_description` holds
/// escapes (Entra's always ends in `\r\n`-separated trace lines), and says `invalid type:
/// string "AADSTS…: …\r\nTrace ID: …", expected a borrowed string at line 1 column …`: keep the
/// description's first line, which is the AADSTS code and text.
fn without_parse_noise(text: &str) -> String {
    const NOISE: &str = "invalid type: string \"";
    let Some(start) = text.find(NOISE) else {
        return text.to_owned();
    };
    let rest = &text[start + NOISE.len()..];
    let end = [rest.find("\\r\\n"), rest.find('"')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    format!("{}{}", &text[..start], &rest[..end])
}

/// The first `AADSTS<digits>` code in a text.
fn aadsts_code(text: &str) -> Option<u32> {
    let start = text.find("AADSTS")? + "AADSTS".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct CountingCredential {
        calls: AtomicUsize,
        forced: AtomicUsize,
        lifetime_secs: i64,
    }

    #[async_trait::async_trait]
    impl TokenCredential for CountingCredential {
        async fn get_token(
            &self,
            _scopes: &[&str],
            options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if options.is_some_and(|o| o.method_options.context.value::<ForceRefresh>().is_some()) {
                self.forced.fetch_add(1, Ordering::SeqCst);
            }
            Ok(AccessToken::new(
                Secret::new(format!("token-{n}")),
                OffsetDateTime::now_utc() + time::Duration::seconds(self.lifetime_secs),
            ))
        }
    }

    #[tokio::test]
    async fn caches_until_refresh_is_due() {
        let credential = Arc::new(CountingCredential {
            lifetime_secs: 3600,
            ..Default::default()
        });
        let cache = TokenCache::new(
            credential.clone(),
            "https://graph.microsoft.us/.default".into(),
        );
        let a = cache.token().await.unwrap();
        let b = cache.token().await.unwrap();
        assert_eq!(a, b);
        assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_soon_tokens_are_replaced() {
        // A lifetime of 0 s is always due for refresh.
        let credential = Arc::new(CountingCredential::default());
        let cache = TokenCache::new(credential.clone(), "s/.default".into());
        let a = cache.token().await.unwrap();
        let b = cache.token().await.unwrap();
        assert_ne!(a, b);
        assert_eq!(credential.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn rejection_forces_one_refresh_even_when_many_requests_saw_it() {
        let credential = Arc::new(CountingCredential {
            lifetime_secs: 3600,
            ..Default::default()
        });
        let cache = TokenCache::new(credential.clone(), "s/.default".into());
        let rejected = cache.token().await.unwrap();
        let first = cache.refresh_after_rejection(&rejected).await.unwrap();
        let second = cache.refresh_after_rejection(&rejected).await.unwrap();
        assert_ne!(first, rejected);
        assert_eq!(first, second);
        assert_eq!(credential.forced.load(Ordering::SeqCst), 1);
        assert_eq!(cache.token().await.unwrap(), first);
    }

    #[test]
    fn refresh_time_is_five_minutes_ahead_or_half_life() {
        let now = OffsetDateTime::now_utc();
        let hour = now + time::Duration::hours(1);
        assert_eq!(refresh_time(now, hour), hour - time::Duration::minutes(5));
        let short = now + time::Duration::seconds(60);
        assert_eq!(refresh_time(now, short), now + time::Duration::seconds(30));
    }

    fn config(vars: &[(&str, &str)]) -> Config {
        let mut all = vec![
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
        ];
        all.extend_from_slice(vars);
        Config::from_vars(all).unwrap()
    }

    #[test]
    fn builds_every_mode_without_network() {
        crate::http::install_crypto_provider();
        let http = reqwest::Client::new();
        let secret = config(&[
            ("AUTH_MODE", "client_secret"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_CLIENT_SECRET", "hunter2"),
        ]);
        let built = build_credentials(&secret, http.clone()).unwrap();
        let debug = format!("{built:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("login.microsoftonline.us"), "{debug}");
        assert!(debug.contains("shared: true"), "{debug}");

        let managed = config(&[
            ("AUTH_MODE", "managed_identity"),
            ("AZURE_CLIENT_ID", "uai"),
        ]);
        build_credentials(&managed, http.clone()).unwrap();
        let cli = config(&[("AUTH_MODE", "azure_cli")]);
        build_credentials(&cli, http.clone()).unwrap();
    }

    #[test]
    fn graph_gets_a_credential_of_its_own_when_its_identity_differs() {
        use graph_sim::certs::{TestCertificate, TestKey};
        crate::http::install_crypto_provider();
        let certificate = TestCertificate::generate(TestKey::A, "graph").unwrap();
        let value = certificate.key_vault_secret_value().unwrap();
        let split = config(&[
            ("AUTH_MODE", "managed_identity"),
            ("GRAPH_CLOUD", "AzurePublic"),
            ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com"),
            ("GRAPH_CLIENT_ID", "graph-app"),
            ("GRAPH_CLIENT_CERTIFICATE", &value),
        ]);
        let built = build_credentials(&split, reqwest::Client::new()).unwrap();
        assert!(!Arc::ptr_eq(&built.graph, &built.service));
        let graph = format!("{:?}", built.graph);
        assert!(
            graph.contains(
                "client_certificate credential of GRAPH_CLIENT_ID `graph-app` in GRAPH_TENANT_ID `contoso.onmicrosoft.com`"
            ),
            "{graph}"
        );
        assert!(graph.contains("login.microsoftonline.com"), "{graph}");
        let storage = format!("{:?}", built.service);
        assert!(
            storage.contains("managed_identity credential (system-assigned)"),
            "{storage}"
        );
        assert!(!format!("{built:?}").contains(&value[10..40]));
    }

    #[test]
    fn the_assertion_names_the_certificate_and_is_signed_by_its_key() {
        use base64::Engine as _;
        use graph_sim::certs::{TestCertificate, TestKey};
        use ring::signature::KeyPair as _;
        let test = TestCertificate::generate(TestKey::B, "assertion").unwrap();
        let config = config(&[
            ("AZURE_CLIENT_ID", "app-id"),
            ("AZURE_CLIENT_CERTIFICATE", &test.pem_bundle()),
        ]);
        let loaded = config.auth.certificate.clone().unwrap();
        let public = loaded.key().public_key().as_ref().to_vec();
        let assertion = certificate::CertificateAssertion::new(
            loaded,
            "app-id".into(),
            "00000000-0000-0000-0000-000000000001",
            "https://login.microsoftonline.us",
        )
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let jwt = assertion.sign(now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t"], test.x5t());
        assert_eq!(
            claims["aud"],
            "https://login.microsoftonline.us/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token"
        );
        assert_eq!(claims["iss"], "app-id");
        assert_eq!(claims["sub"], "app-id");
        assert_eq!(claims["nbf"], now.unix_timestamp());
        assert_eq!(claims["exp"], now.unix_timestamp() + 600);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            public,
        )
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode(parts[2]),
        )
        .expect("the signature verifies with the certificate's key");
        assert_ne!(
            assertion.sign(now).unwrap(),
            jwt,
            "each assertion has its own jti"
        );
    }

    #[test]
    fn refusals_name_the_settings_to_check() {
        assert_eq!(
            aadsts_code("x. AADSTS700027: Client assertion"),
            Some(700027)
        );
        assert_eq!(aadsts_code("no code"), None);
        use graph_sim::certs::{TestCertificate, TestKey};
        let test = TestCertificate::generate(TestKey::A, "hint").unwrap();
        let split = config(&[
            ("AUTH_MODE", "azure_cli"),
            ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com"),
            ("GRAPH_CLIENT_ID", "graph-app"),
            ("GRAPH_CLIENT_CERTIFICATE", &test.pem_bundle()),
        ]);
        let settings = CredentialSettings::from_config(
            &split.graph_identity.auth,
            &split.graph_identity.tenant_id,
            reqwest::Client::new(),
        );
        let error = azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "ClientAssertionCredential authentication failed. AADSTS700027: Client assertion failed signature validation.\r\nTrace ID: x",
        );
        let explained = settings.explain(&error).to_string();
        assert!(
            explained.starts_with(
                "client_certificate credential of GRAPH_CLIENT_ID `graph-app` in GRAPH_TENANT_ID `contoso.onmicrosoft.com`: ClientAssertionCredential authentication failed. AADSTS700027"
            ),
            "{explained}"
        );
        assert!(
            explained.contains(&format!(
                "the certificate of GRAPH_CLIENT_CERTIFICATE (thumbprint {})",
                test.sha1_hex()
            )),
            "{explained}"
        );
        assert!(!explained.contains("Trace ID"), "{explained}");
        let tenant = azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "ClientAssertionCredential authentication failed. AADSTS90002: Tenant 'x' not found.",
        );
        let explained = settings.explain(&tenant).to_string();
        assert!(
            explained.contains("GRAPH_TENANT_ID names no tenant that GRAPH_AUTHORITY_HOST"),
            "{explained}"
        );
    }
}
