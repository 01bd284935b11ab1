//! `AUTH_MODE` and the credential's variables (`AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
//! `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_CERTIFICATE`,
//! `AZURE_CLIENT_CERTIFICATE_PASSWORD`, `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`): how
//! the service obtains Entra ID tokens; and Graph's own tenant, cloud and credential
//! (`GRAPH_CLOUD`, `GRAPH_TENANT_ID`, `GRAPH_AUTH_MODE` and the `GRAPH_` twins of the credential's
//! variables), which default to the same. A secret, a certificate's key or its password is never
//! shown, neither in a problem nor in `config check`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::certificate::{self, ClientCertificate};
use super::parser::Parser;
use super::{Cloud, Lines, UNSET};
use crate::redact::{NOT_SHOWN, REDACTED, redact_url, shown};

/// How the service obtains Entra ID tokens, resolved from `AUTH_MODE` (or `GRAPH_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The Function App's managed identity (`IDENTITY_ENDPOINT`).
    ManagedIdentity,
    /// A service principal with a client secret.
    ClientSecret,
    /// A service principal with a certificate: a client assertion signed with its key.
    ClientCertificate,
    /// A federated token file (AKS workload identity, GitHub OIDC).
    WorkloadIdentity,
    /// The signed-in Azure CLI, for local use.
    AzureCli,
}

impl AuthMode {
    const NAMES: [(&'static str, AuthMode); 5] = [
        ("managed_identity", AuthMode::ManagedIdentity),
        ("client_secret", AuthMode::ClientSecret),
        ("client_certificate", AuthMode::ClientCertificate),
        ("workload_identity", AuthMode::WorkloadIdentity),
        ("azure_cli", AuthMode::AzureCli),
    ];

    /// The name written in `AUTH_MODE`.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, mode)| *mode == self)
            .map(|(name, _)| *name)
            .unwrap_or("?")
    }
}

/// Which set of settings a credential is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSet {
    /// `AUTH_MODE`, `AZURE_CLIENT_ID`, …: the service's credential (Blob Storage, and Graph
    /// unless Graph has its own).
    Azure,
    /// `GRAPH_AUTH_MODE`, `GRAPH_CLIENT_ID`, …: Graph's own credential.
    Graph,
}

/// The settings of one credential set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialVariables {
    /// `AUTH_MODE` or `GRAPH_AUTH_MODE`.
    pub mode: &'static str,
    /// The tenant: `AZURE_TENANT_ID` or `GRAPH_TENANT_ID`.
    pub tenant_id: &'static str,
    /// The client id.
    pub client_id: &'static str,
    /// The client secret.
    pub client_secret: &'static str,
    /// The certificate file (PEM or PFX).
    pub certificate_path: &'static str,
    /// The certificate itself (base64 PFX or PEM text, as a Key Vault reference resolves to).
    pub certificate: &'static str,
    /// The certificate's password.
    pub certificate_password: &'static str,
    /// The federated token file.
    pub federated_token_file: &'static str,
    /// The authority host.
    pub authority_host: &'static str,
}

impl CredentialSet {
    /// The names of this set's settings.
    pub fn variables(self) -> &'static CredentialVariables {
        const AZURE: CredentialVariables = CredentialVariables {
            mode: "AUTH_MODE",
            tenant_id: "AZURE_TENANT_ID",
            client_id: "AZURE_CLIENT_ID",
            client_secret: "AZURE_CLIENT_SECRET",
            certificate_path: "AZURE_CLIENT_CERTIFICATE_PATH",
            certificate: "AZURE_CLIENT_CERTIFICATE",
            certificate_password: "AZURE_CLIENT_CERTIFICATE_PASSWORD",
            federated_token_file: "AZURE_FEDERATED_TOKEN_FILE",
            authority_host: "AZURE_AUTHORITY_HOST",
        };
        const GRAPH: CredentialVariables = CredentialVariables {
            mode: "GRAPH_AUTH_MODE",
            tenant_id: "GRAPH_TENANT_ID",
            client_id: "GRAPH_CLIENT_ID",
            client_secret: "GRAPH_CLIENT_SECRET",
            certificate_path: "GRAPH_CLIENT_CERTIFICATE_PATH",
            certificate: "GRAPH_CLIENT_CERTIFICATE",
            certificate_password: "GRAPH_CLIENT_CERTIFICATE_PASSWORD",
            federated_token_file: "GRAPH_FEDERATED_TOKEN_FILE",
            authority_host: "GRAPH_AUTHORITY_HOST",
        };
        match self {
            CredentialSet::Azure => &AZURE,
            CredentialSet::Graph => &GRAPH,
        }
    }
}

/// Token acquisition settings of one credential.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The settings it was read from.
    pub set: CredentialSet,
    /// The resolved mode (never `auto`).
    pub mode: AuthMode,
    /// Service principal or user-assigned identity client id.
    pub client_id: Option<String>,
    /// The client secret, redacted in `Debug`.
    pub client_secret: Option<SecretString>,
    /// The client certificate with its key, read and checked (`Debug` shows its source and
    /// thumbprint only).
    pub certificate: Option<ClientCertificate>,
    /// The certificate's password, redacted in `Debug` (kept to show that it is set).
    pub certificate_password: Option<SecretString>,
    /// Workload identity token file.
    pub federated_token_file: Option<PathBuf>,
    /// The authority host, `https` (from the cloud or `AZURE_AUTHORITY_HOST`).
    pub authority_host: Url,
}

impl AuthConfig {
    /// Reads `AUTH_MODE` and the credential's variables; `auto` picks the mode from the
    /// variables that are set. The authority is the cloud's unless `AZURE_AUTHORITY_HOST` is set.
    pub(super) fn parse(p: &mut Parser<'_>, cloud: Cloud) -> AuthConfig {
        let authority_host = authority(
            p,
            CredentialSet::Azure.variables().authority_host,
            cloud.authority_host(),
        );
        Self::parse_set(p, CredentialSet::Azure, authority_host)
    }

    /// Reads one set's mode and credential variables, with this authority.
    fn parse_set(p: &mut Parser<'_>, set: CredentialSet, authority_host: Url) -> AuthConfig {
        let names = set.variables();
        let client_id = p.get(names.client_id).map(str::to_owned);
        let client_secret = p
            .get(names.client_secret)
            .map(|s| SecretString::from(s.to_owned()));
        let federated_token_file = p.get(names.federated_token_file).map(PathBuf::from);
        secret_shapes(
            p,
            names,
            client_id.as_deref(),
            client_secret.as_ref().map(expose),
            federated_token_file.as_deref(),
        );
        let (certificate, certificate_password, certificate_set) = read_certificate(p, names);
        let requested = p.get(names.mode).map(str::to_ascii_lowercase);
        let mode = match requested.as_deref() {
            None | Some("auto") => {
                if client_secret.is_some() && certificate_set {
                    p.problem(
                        names.mode,
                        format!(
                            "`auto` found both a client secret ({}) and a certificate ({} or {}): \
                             keep one, or choose with {} (client_secret or client_certificate)",
                            names.client_secret,
                            names.certificate_path,
                            names.certificate,
                            names.mode
                        ),
                    );
                    None
                } else if client_secret.is_some() {
                    Some(AuthMode::ClientSecret)
                } else if certificate_set {
                    Some(AuthMode::ClientCertificate)
                } else if federated_token_file.is_some() {
                    Some(AuthMode::WorkloadIdentity)
                } else if p.get("IDENTITY_ENDPOINT").is_some() {
                    Some(AuthMode::ManagedIdentity)
                } else {
                    p.problem(
                        names.mode,
                        format!(
                            "`auto` found no credential: set {secret} or {path} (with {id}), \
                             {token}, or run where IDENTITY_ENDPOINT is set (a Function App with a \
                             managed identity); for local use set {mode}=azure_cli",
                            secret = names.client_secret,
                            path = names.certificate_path,
                            id = names.client_id,
                            token = names.federated_token_file,
                            mode = names.mode,
                        ),
                    );
                    None
                }
            }
            Some(name) => match AuthMode::NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, mode)) => Some(*mode),
                None => {
                    p.problem(
                        names.mode,
                        format!(
                            "{} is not one of: auto, managed_identity, client_secret, \
                             client_certificate, workload_identity, azure_cli",
                            shown(name)
                        ),
                    );
                    None
                }
            },
        };
        let needs = |p: &mut Parser<'_>, variable: &str, present: bool, mode: AuthMode| {
            if !present {
                p.problem(
                    variable,
                    format!("is required with {} authentication", mode.name()),
                );
            }
        };
        match mode {
            Some(mode @ AuthMode::ClientSecret) => {
                needs(p, names.client_id, client_id.is_some(), mode);
                needs(p, names.client_secret, client_secret.is_some(), mode);
            }
            Some(mode @ AuthMode::ClientCertificate) => {
                needs(p, names.client_id, client_id.is_some(), mode);
                if !certificate_set {
                    p.problem(
                        &format!("{}/{}", names.certificate_path, names.certificate),
                        "one is required with client_certificate authentication: the path of a \
                         PEM or PFX file, or the certificate itself (a Key Vault reference)",
                    );
                }
            }
            Some(mode @ AuthMode::WorkloadIdentity) => {
                needs(p, names.client_id, client_id.is_some(), mode);
                needs(
                    p,
                    names.federated_token_file,
                    federated_token_file.is_some(),
                    mode,
                );
            }
            _ => {}
        }
        AuthConfig {
            set,
            mode: mode.unwrap_or(AuthMode::ManagedIdentity),
            client_id,
            client_secret,
            certificate,
            certificate_password,
            federated_token_file,
            authority_host,
        }
    }

    /// True when both describe the same credential (mode, client, secret, certificate, token
    /// file and authority), whichever settings they were read from.
    pub fn same_credential(&self, other: &AuthConfig) -> bool {
        self.mode == other.mode
            && self.client_id == other.client_id
            && self.client_secret.as_ref().map(expose) == other.client_secret.as_ref().map(expose)
            && self.certificate.as_ref().map(|c| c.der.clone())
                == other.certificate.as_ref().map(|c| c.der.clone())
            && self.federated_token_file == other.federated_token_file
            && self.authority_host == other.authority_host
    }

    /// The `config check` lines of the credential (without the authority), the secrets
    /// redacted, named after its set's settings.
    fn describe_credential(&self) -> Lines {
        let names = self.set.variables();
        let redacted = |present: bool| if present { REDACTED } else { UNSET }.to_owned();
        let (path, content) = match self.certificate.as_ref().map(|c| &c.source) {
            Some(certificate::CertificateSource::File(path)) => {
                (path.display().to_string(), UNSET.to_owned())
            }
            Some(certificate::CertificateSource::Setting(_)) => {
                (UNSET.to_owned(), REDACTED.to_owned())
            }
            None => (UNSET.to_owned(), UNSET.to_owned()),
        };
        vec![
            (names.mode.into(), self.mode.name().into()),
            (
                names.client_id.into(),
                self.client_id.clone().unwrap_or_else(|| UNSET.into()),
            ),
            (
                names.client_secret.into(),
                redacted(self.client_secret.is_some()),
            ),
            (names.certificate_path.into(), path),
            (names.certificate.into(), content),
            (
                names.certificate_password.into(),
                redacted(self.certificate_password.is_some()),
            ),
            (
                names.federated_token_file.into(),
                self.federated_token_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| UNSET.into()),
            ),
        ]
    }

    /// The `config check` lines of authentication, the secrets redacted.
    pub(super) fn describe(&self) -> Lines {
        let mut lines = self.describe_credential();
        lines.push((
            self.set.variables().authority_host.into(),
            redact_url(self.authority_host.as_str()),
        ));
        lines
    }
}

/// Reads an authority host setting: https, the cloud's (`default`) when unset.
fn authority(p: &mut Parser<'_>, variable: &str, default: &str) -> Url {
    let authority_host = p.endpoint(variable, default);
    if authority_host.scheme() != "https" {
        p.problem(
            variable,
            "must use https, even on loopback: the Azure SDK refuses plain-http authorities",
        );
    }
    authority_host
}

/// Reads a set's certificate settings: the certificate (read and checked: `None` when unset or
/// refused), its password, and whether a certificate setting is set at all.
fn read_certificate(
    p: &mut Parser<'_>,
    names: &CredentialVariables,
) -> (Option<ClientCertificate>, Option<SecretString>, bool) {
    let password = p
        .get(names.certificate_password)
        .map(|s| SecretString::from(s.to_owned()));
    let path = p.get(names.certificate_path).map(PathBuf::from);
    let content = p
        .get(names.certificate)
        .map(|s| SecretString::from(s.to_owned()));
    let certificate = match (&path, &content) {
        (None, None) => {
            if password.is_some() {
                p.problem(
                    names.certificate_password,
                    format!(
                        "is set but there is no certificate: set {} or {}",
                        names.certificate_path, names.certificate
                    ),
                );
            }
            None
        }
        (Some(_), Some(_)) => {
            p.problem(
                &format!("{}/{}", names.certificate_path, names.certificate),
                "both are set: keep one, the path of a PEM or PFX file or the certificate itself",
            );
            None
        }
        (Some(path), None) => match certificate::from_file(path, password.as_ref()) {
            Ok(certificate) => Some(certificate),
            Err(refusal) => {
                refused(p, names, names.certificate_path, refusal);
                None
            }
        },
        (None, Some(content)) => {
            match certificate::from_setting(names.certificate, content, password.as_ref()) {
                Ok(certificate) => Some(certificate),
                Err(refusal) => {
                    refused(p, names, names.certificate, refusal);
                    None
                }
            }
        }
    };
    (certificate, password, path.is_some() || content.is_some())
}

/// Notes a refused certificate: under the password setting when the password is at fault
/// (naming the certificate's setting), else under the certificate's.
fn refused(
    p: &mut Parser<'_>,
    names: &CredentialVariables,
    source: &str,
    refusal: certificate::Refusal,
) {
    if refusal.password {
        p.problem(
            names.certificate_password,
            format!("{} (the certificate of {source})", refusal.message),
        );
    } else {
        p.problem(source, refusal.message);
    }
}

/// Graph's identity: the tenant, cloud, authority and credential Graph tokens are asked with.
/// Each defaults to the service's (`AZURE_TENANT_ID`, `AZURE_CLOUD`, `AZURE_AUTHORITY_HOST`,
/// `AUTH_MODE`'s credential); setting any `GRAPH_` credential variable gives Graph a credential
/// of its own, read from the `GRAPH_` variables alone.
#[derive(Debug, Clone)]
pub struct GraphIdentity {
    /// `GRAPH_CLOUD`, by default `AZURE_CLOUD`: Graph's authority and endpoint by default.
    pub cloud: Cloud,
    /// `GRAPH_TENANT_ID`, by default `AZURE_TENANT_ID`.
    pub tenant_id: String,
    /// Graph's credential: the `GRAPH_` one, or the service's with Graph's authority
    /// (`GRAPH_AUTHORITY_HOST`, by default `GRAPH_CLOUD`'s when set, else the service's).
    pub auth: AuthConfig,
}

impl GraphIdentity {
    /// Reads `GRAPH_CLOUD`, `GRAPH_TENANT_ID`, `GRAPH_AUTHORITY_HOST` and Graph's credential.
    pub(super) fn parse(
        p: &mut Parser<'_>,
        cloud: Cloud,
        tenant_id: &str,
        service: &AuthConfig,
    ) -> GraphIdentity {
        let names = CredentialSet::Graph.variables();
        let cloud_set = p.get("GRAPH_CLOUD").is_some();
        let graph_cloud = p.choice("GRAPH_CLOUD", cloud, &Cloud::NAMES);
        let tenant_set = p.get(names.tenant_id).is_some();
        let graph_tenant = if tenant_set {
            super::cloud::tenant_id_of(p, names.tenant_id)
        } else {
            tenant_id.to_owned()
        };
        let default_authority = if cloud_set {
            graph_cloud.authority_host().to_owned()
        } else {
            service.authority_host.as_str().to_owned()
        };
        let authority_host = authority(p, names.authority_host, &default_authority);
        let own = [
            names.mode,
            names.client_id,
            names.client_secret,
            names.certificate_path,
            names.certificate,
            names.certificate_password,
            names.federated_token_file,
        ]
        .iter()
        .any(|name| p.get(name).is_some());
        let auth = if own {
            AuthConfig::parse_set(p, CredentialSet::Graph, authority_host)
        } else {
            AuthConfig {
                authority_host,
                ..service.clone()
            }
        };
        // A tenant and an app registration live in one cloud: another cloud's authority needs
        // its own tenant and app.
        let other_cloud = graph_cloud.authority_host() != cloud.authority_host();
        if other_cloud && !tenant_set {
            p.problem(
                names.tenant_id,
                format!(
                    "is required when GRAPH_CLOUD ({}) signs in elsewhere than AZURE_CLOUD ({}): \
                     a tenant lives in one cloud",
                    graph_cloud.name(),
                    cloud.name()
                ),
            );
        }
        if other_cloud && !own {
            p.problem(
                names.client_id,
                format!(
                    "GRAPH_CLOUD ({}) signs in elsewhere than AZURE_CLOUD ({}), so Graph needs an \
                     app registration of its own: set GRAPH_CLIENT_ID with \
                     GRAPH_CLIENT_CERTIFICATE_PATH, GRAPH_CLIENT_CERTIFICATE or GRAPH_CLIENT_SECRET",
                    graph_cloud.name(),
                    cloud.name()
                ),
            );
        } else if auth.mode == AuthMode::ManagedIdentity
            && !p.reported("AUTH_MODE")
            && !p.reported(names.mode)
            && (other_cloud || !graph_tenant.eq_ignore_ascii_case(tenant_id))
        {
            p.problem(
                &format!("{}/{}", names.tenant_id, names.mode),
                "a managed identity gets tokens only in its own tenant and cloud (AZURE_TENANT_ID, \
                 AZURE_CLOUD): for Graph in another tenant set GRAPH_CLIENT_ID with \
                 GRAPH_CLIENT_CERTIFICATE_PATH, GRAPH_CLIENT_CERTIFICATE or GRAPH_CLIENT_SECRET",
            );
        }
        GraphIdentity {
            cloud: graph_cloud,
            tenant_id: graph_tenant,
            auth,
        }
    }

    /// True when Graph's credential is the service's: same tenant, authority and credential
    /// (one credential object then serves both).
    pub fn shares_credential_with(&self, tenant_id: &str, service: &AuthConfig) -> bool {
        self.tenant_id == tenant_id && self.auth.same_credential(service)
    }

    /// The `config check` lines of Graph's identity. The credential's lines are `(unset…)` when
    /// Graph uses the service's credential.
    pub(super) fn describe(&self) -> Lines {
        let names = CredentialSet::Graph.variables();
        let mut lines = vec![
            ("GRAPH_CLOUD".into(), self.cloud.name().into()),
            (names.tenant_id.into(), self.tenant_id.clone()),
        ];
        match self.auth.set {
            CredentialSet::Graph => lines.extend(self.auth.describe_credential()),
            CredentialSet::Azure => {
                lines.push((names.mode.into(), INHERITED.into()));
                for name in [
                    names.client_id,
                    names.client_secret,
                    names.certificate_path,
                    names.certificate,
                    names.certificate_password,
                    names.federated_token_file,
                ] {
                    lines.push((name.into(), UNSET.into()));
                }
            }
        }
        lines.push((
            names.authority_host.into(),
            redact_url(self.auth.authority_host.as_str()),
        ));
        lines
    }
}

/// What `config check` shows for `GRAPH_AUTH_MODE` when Graph uses the service's credential.
pub const INHERITED: &str = "(unset: Graph uses the AUTH_MODE credential)";

/// Catches a secret in the wrong place or pasted badly, without ever showing it: a client id
/// is a GUID (or a name of letters, digits, `-`, `_`, `.`), a client secret is one line, and
/// the federated token file is a path, not the token.
fn secret_shapes(
    p: &mut Parser<'_>,
    names: &CredentialVariables,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    federated_token_file: Option<&std::path::Path>,
) {
    if let Some(id) = client_id
        && !(id.len() <= 64
            && !looks_like_token(id)
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        p.problem(
            names.client_id,
            format!(
                "{NOT_SHOWN} is not a client id: set the application (client) id, a GUID; \
                 the secret goes in {}",
                names.client_secret
            ),
        );
    }
    if let Some(secret) = client_secret
        && secret.chars().any(char::is_control)
    {
        p.problem(
            names.client_secret,
            "contains a line break or another control character, which a client secret never \
             has (the value is not shown): copy the secret's value again, on one line",
        );
    }
    if let Some(path) = federated_token_file {
        let text = path.to_string_lossy();
        let path_like = text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '\\' | '.' | '-' | '_' | ':' | ' '));
        if looks_like_token(&text) || !path_like {
            p.problem(
                names.federated_token_file,
                format!(
                    "{NOT_SHOWN} is not a file path: set the path of the file that holds the \
                     federated token, not the token"
                ),
            );
        }
    }
}

/// True for text shaped like a JSON Web Token (`eyJ…` and two dots): a token, not a setting.
fn looks_like_token(text: &str) -> bool {
    text.starts_with("eyJ") && text.matches('.').count() >= 2
}

/// Keeps a secret out of `Debug` and `Display` while letting the owner read it.
pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::testing::{
        assert_each_names_its_variable, every_rendering, problem_variables, problems, with,
    };

    #[test]
    fn auto_picks_the_credential_from_the_environment() {
        let base = [
            ("AZURE_TENANT_ID", "contoso.onmicrosoft.us"),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
        ];
        let mi = Config::from_vars(
            base.iter()
                .copied()
                .chain([("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token")]),
        )
        .unwrap();
        assert_eq!(mi.auth.mode, AuthMode::ManagedIdentity);
        let wi = Config::from_vars(base.iter().copied().chain([
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_CLIENT_ID", "x"),
        ]))
        .unwrap();
        assert_eq!(wi.auth.mode, AuthMode::WorkloadIdentity);
        let none = problem_variables(Config::from_vars(base));
        assert_eq!(none, vec!["AUTH_MODE"]);
        let cli =
            Config::from_vars(base.iter().copied().chain([("AUTH_MODE", "azure_cli")])).unwrap();
        assert_eq!(cli.auth.mode, AuthMode::AzureCli);
    }

    #[test]
    fn client_secret_mode_needs_both_halves() {
        let variables = problem_variables(with(&[
            ("AUTH_MODE", "client_secret"),
            ("AZURE_CLIENT_SECRET", ""),
        ]));
        assert_eq!(variables, vec!["AZURE_CLIENT_SECRET"]);
    }

    #[test]
    fn the_client_secret_is_never_shown_even_when_accepted() {
        for secret in ["MARKER", "Abc8Q~MARKER_x.y-z", "MARKER==", " MARKER \n"] {
            let result = with(&[("AZURE_CLIENT_SECRET", secret)]);
            let text = every_rendering(&result);
            assert!(result.is_ok(), "{secret:?}: {text}");
            assert!(!text.contains("MARKER"), "{secret:?}: {text}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("AUTH_MODE", "password"),
            ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
            ("AZURE_CLIENT_ID", "Abc8Q~not-an-id"),
            ("AZURE_CLIENT_SECRET", "two\nlines"),
            ("AZURE_FEDERATED_TOKEN_FILE", "eyJhbGciOi.eyJzdWIiOi.c2ln"),
        ]);
    }

    #[test]
    fn graph_uses_the_service_identity_by_default() {
        let config = with(&[]).unwrap();
        let graph = &config.graph_identity;
        assert_eq!(graph.tenant_id, config.tenant_id);
        assert_eq!(graph.cloud, config.cloud);
        assert_eq!(graph.auth.set, CredentialSet::Azure);
        assert_eq!(graph.auth.authority_host, config.auth.authority_host);
        assert!(config.graph_shares_credential());
        let described = config.describe();
        let line = |name: &str| {
            described
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(line("GRAPH_AUTH_MODE"), super::INHERITED);
        assert_eq!(line("GRAPH_CLIENT_ID"), UNSET);
        assert_eq!(
            line("GRAPH_TENANT_ID"),
            "72f988bf-86f1-41af-91ab-2d7cd011db47"
        );
        assert_eq!(line("GRAPH_CLOUD"), "AzureUSGovernment");
    }

    #[test]
    fn another_tenant_with_the_same_app_gets_a_credential_of_its_own() {
        let config = with(&[("GRAPH_TENANT_ID", "contoso.onmicrosoft.us")]).unwrap();
        assert_eq!(config.graph_identity.tenant_id, "contoso.onmicrosoft.us");
        assert_eq!(config.graph_identity.auth.set, CredentialSet::Azure);
        assert_eq!(config.graph_identity.auth.mode, AuthMode::ClientSecret);
        assert!(!config.graph_shares_credential());
    }

    #[test]
    fn a_commercial_tenant_from_a_government_app() {
        // The Function App in Azure Government uses its managed identity for storage; Graph is
        // a GCC Moderate (commercial cloud) tenant with an app registration of its own.
        let config = with(&[
            ("AUTH_MODE", "managed_identity"),
            ("AZURE_CLIENT_SECRET", ""),
            ("GRAPH_CLOUD", "AzurePublic"),
            ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com"),
            ("GRAPH_CLIENT_ID", "22222222-3333-4444-5555-666666666666"),
            ("GRAPH_CLIENT_SECRET", "graph-secret-MARKER"),
        ])
        .unwrap();
        assert_eq!(config.auth.mode, AuthMode::ManagedIdentity);
        assert_eq!(
            config.auth.authority_host.as_str(),
            "https://login.microsoftonline.us/"
        );
        let graph = &config.graph_identity;
        assert_eq!(graph.cloud, Cloud::AzurePublic);
        assert_eq!(graph.auth.set, CredentialSet::Graph);
        assert_eq!(graph.auth.mode, AuthMode::ClientSecret);
        assert_eq!(
            graph.auth.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(config.graph.scope, "https://graph.microsoft.com/.default");
        assert_eq!(
            config.graph.endpoint.as_str(),
            "https://graph.microsoft.com/"
        );
        assert!(!config.graph_shares_credential());
        let text = every_rendering(&Ok(config));
        assert!(!text.contains("MARKER"), "{text}");
    }

    #[test]
    fn every_bad_graph_combination_names_its_setting() {
        /// The variables, the problem's variable, a part of its message.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[("GRAPH_CLOUD", "AzurePublic")],
                "GRAPH_TENANT_ID",
                "a tenant lives in one cloud",
            ),
            (
                &[("GRAPH_CLOUD", "AzurePublic")],
                "GRAPH_CLIENT_ID",
                "needs an app registration of its own",
            ),
            (
                &[("GRAPH_CLIENT_SECRET", "x")],
                "GRAPH_CLIENT_ID",
                "is required with client_secret authentication",
            ),
            (
                &[("GRAPH_CLIENT_ID", "graph-app")],
                "GRAPH_AUTH_MODE",
                "`auto` found no credential: set GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH",
            ),
            (
                &[
                    ("GRAPH_AUTH_MODE", "client_certificate"),
                    ("GRAPH_CLIENT_ID", "graph-app"),
                ],
                "GRAPH_CLIENT_CERTIFICATE_PATH/GRAPH_CLIENT_CERTIFICATE",
                "one is required",
            ),
            (
                &[
                    ("AUTH_MODE", "managed_identity"),
                    ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com"),
                ],
                "GRAPH_TENANT_ID/GRAPH_AUTH_MODE",
                "a managed identity gets tokens only in its own tenant",
            ),
            (
                &[("GRAPH_AUTHORITY_HOST", "http://127.0.0.1:8443")],
                "GRAPH_AUTHORITY_HOST",
                "must use https",
            ),
            (
                &[("GRAPH_TENANT_ID", "not a tenant")],
                "GRAPH_TENANT_ID",
                "is neither a GUID nor a domain name",
            ),
            (
                &[
                    ("GRAPH_CLIENT_CERTIFICATE_PATH", "/nonexistent/graph.pem"),
                    ("GRAPH_CLIENT_ID", "g"),
                ],
                "GRAPH_CLIENT_CERTIFICATE_PATH",
                "cannot be read: no such file",
            ),
        ];
        for (vars, variable, expected) in cases {
            let vars: Vec<(&str, String)> =
                vars.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
            let found = problems(crate::config::testing::with_owned(&vars));
            assert!(
                found
                    .iter()
                    .any(|(v, m)| v == variable && m.contains(expected)),
                "{vars:?}: {found:?}"
            );
        }
    }

    #[test]
    fn a_bad_graph_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("GRAPH_CLOUD", "AzureMoon"),
            ("GRAPH_TENANT_ID", "not a tenant"),
            ("GRAPH_AUTH_MODE", "password"),
            ("GRAPH_AUTHORITY_HOST", "http://login.example.com"),
            ("GRAPH_CLIENT_ID", "Abc8Q~not-an-id"),
            ("GRAPH_CLIENT_SECRET", "two\nlines"),
            ("GRAPH_FEDERATED_TOKEN_FILE", "eyJhbGciOi.eyJzdWIiOi.c2ln"),
            (
                "GRAPH_CLIENT_CERTIFICATE",
                "@Microsoft.KeyVault(SecretUri=https://v/secrets/c/)",
            ),
            ("GRAPH_CLIENT_CERTIFICATE_PASSWORD", "pa55"),
        ]);
    }
}
