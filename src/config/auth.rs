//! `AUTH_MODE` and the credential's variables (`AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
//! `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`): how the service obtains Entra ID
//! tokens. A secret is never shown, neither in a problem nor in `config check`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::parser::Parser;
use super::{Cloud, Lines, UNSET};
use crate::redact::{NOT_SHOWN, REDACTED, redact_url, shown};

/// How the service obtains Entra ID tokens, resolved from `AUTH_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The Function App's managed identity (`IDENTITY_ENDPOINT`).
    ManagedIdentity,
    /// A service principal with a client secret.
    ClientSecret,
    /// A federated token file (AKS workload identity, GitHub OIDC).
    WorkloadIdentity,
    /// The signed-in Azure CLI, for local use.
    AzureCli,
}

impl AuthMode {
    /// The name written in `AUTH_MODE`.
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::ManagedIdentity => "managed_identity",
            AuthMode::ClientSecret => "client_secret",
            AuthMode::WorkloadIdentity => "workload_identity",
            AuthMode::AzureCli => "azure_cli",
        }
    }
}

/// Token acquisition settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The resolved mode (never `auto`).
    pub mode: AuthMode,
    /// Service principal or user-assigned identity client id.
    pub client_id: Option<String>,
    /// The client secret, redacted in `Debug`.
    pub client_secret: Option<SecretString>,
    /// Workload identity token file.
    pub federated_token_file: Option<PathBuf>,
    /// The authority host, `https` (from the cloud or `AZURE_AUTHORITY_HOST`).
    pub authority_host: Url,
}

impl AuthConfig {
    /// Reads `AUTH_MODE` and the credential's variables; `auto` picks the mode from the
    /// variables that are set. The authority is the cloud's unless `AZURE_AUTHORITY_HOST` is set.
    pub(super) fn parse(p: &mut Parser<'_>, cloud: Cloud) -> AuthConfig {
        let client_id = p.get("AZURE_CLIENT_ID").map(str::to_owned);
        let client_secret = p
            .get("AZURE_CLIENT_SECRET")
            .map(|s| SecretString::from(s.to_owned()));
        let federated_token_file = p.get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from);
        secret_shapes(
            p,
            client_id.as_deref(),
            client_secret.as_ref().map(expose),
            federated_token_file.as_deref(),
        );
        let authority_host = p.endpoint("AZURE_AUTHORITY_HOST", cloud.authority_host());
        if authority_host.scheme() != "https" {
            p.problem(
                "AZURE_AUTHORITY_HOST",
                "must use https, even on loopback: the Azure SDK refuses plain-http authorities",
            );
        }
        let requested = p.get("AUTH_MODE").map(str::to_ascii_lowercase);
        let mode = match requested.as_deref() {
            None | Some("auto") => {
                if client_secret.is_some() {
                    Some(AuthMode::ClientSecret)
                } else if federated_token_file.is_some() {
                    Some(AuthMode::WorkloadIdentity)
                } else if p.get("IDENTITY_ENDPOINT").is_some() {
                    Some(AuthMode::ManagedIdentity)
                } else {
                    p.problem(
                        "AUTH_MODE",
                        "`auto` found no credential: set AZURE_CLIENT_SECRET (with AZURE_CLIENT_ID), \
                         AZURE_FEDERATED_TOKEN_FILE, or run where IDENTITY_ENDPOINT is set (a Function App \
                         with a managed identity); for local use set AUTH_MODE=azure_cli",
                    );
                    None
                }
            }
            Some("managed_identity") => Some(AuthMode::ManagedIdentity),
            Some("client_secret") => Some(AuthMode::ClientSecret),
            Some("workload_identity") => Some(AuthMode::WorkloadIdentity),
            Some("azure_cli") => Some(AuthMode::AzureCli),
            Some(other) => {
                p.problem(
                    "AUTH_MODE",
                    format!("{} is not one of: auto, managed_identity, client_secret, workload_identity, azure_cli", shown(other)),
                );
                None
            }
        };
        match mode {
            Some(AuthMode::ClientSecret) => {
                if client_id.is_none() {
                    p.problem(
                        "AZURE_CLIENT_ID",
                        "is required with client_secret authentication",
                    );
                }
                if client_secret.is_none() {
                    p.problem(
                        "AZURE_CLIENT_SECRET",
                        "is required with client_secret authentication",
                    );
                }
            }
            Some(AuthMode::WorkloadIdentity) => {
                if client_id.is_none() {
                    p.problem(
                        "AZURE_CLIENT_ID",
                        "is required with workload_identity authentication",
                    );
                }
                if federated_token_file.is_none() {
                    p.problem(
                        "AZURE_FEDERATED_TOKEN_FILE",
                        "is required with workload_identity authentication",
                    );
                }
            }
            _ => {}
        }
        AuthConfig {
            mode: mode.unwrap_or(AuthMode::ManagedIdentity),
            client_id,
            client_secret,
            federated_token_file,
            authority_host,
        }
    }

    /// The `config check` lines of authentication, the secret redacted.
    pub(super) fn describe(&self) -> Lines {
        vec![
            ("AUTH_MODE".into(), self.mode.name().into()),
            (
                "AZURE_CLIENT_ID".into(),
                self.client_id.clone().unwrap_or_else(|| UNSET.into()),
            ),
            (
                "AZURE_CLIENT_SECRET".into(),
                if self.client_secret.is_some() {
                    REDACTED.into()
                } else {
                    UNSET.into()
                },
            ),
            (
                "AZURE_FEDERATED_TOKEN_FILE".into(),
                self.federated_token_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| UNSET.into()),
            ),
            (
                "AZURE_AUTHORITY_HOST".into(),
                redact_url(self.authority_host.as_str()),
            ),
        ]
    }
}

/// Catches a secret in the wrong place or pasted badly, without ever showing it: a client id
/// is a GUID (or a name of letters, digits, `-`, `_`, `.`), a client secret is one line, and
/// the federated token file is a path, not the token.
fn secret_shapes(
    p: &mut Parser<'_>,
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
            "AZURE_CLIENT_ID",
            format!(
                "{NOT_SHOWN} is not a client id: set the application (client) id, a GUID; \
                 the secret goes in AZURE_CLIENT_SECRET"
            ),
        );
    }
    if let Some(secret) = client_secret
        && secret.chars().any(char::is_control)
    {
        p.problem(
            "AZURE_CLIENT_SECRET",
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
                "AZURE_FEDERATED_TOKEN_FILE",
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
        assert_each_names_its_variable, every_rendering, problem_variables, with,
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
}
