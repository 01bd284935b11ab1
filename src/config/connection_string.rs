//! Storage connection strings (`STORAGE_CONNECTION_STRING`): the account-key forms
//! (`AccountName=…;AccountKey=…`, with or without `BlobEndpoint=` and `EndpointSuffix=`) and
//! `UseDevelopmentStorage=true` for Azurite.
//!
//! The SDK has no shared-key authentication, so a connection string is turned into an account
//! name, its key and the blob endpoint; [`crate::storage::sas`] signs short-lived account SAS
//! tokens with the key. Error messages never repeat the key.
//!
//! The grammar of a setting, so it lives with the configuration, which checks the value at
//! start-up ([`check_connection_string`]); `storage` builds its clients from the parsed form and
//! re-exports this module as `storage::connection`.

use secrecy::SecretString;
use url::Url;

use crate::redact::{shown, shown_url};
use crate::url_util::{is_loopback, plain_host};

/// Azurite's well-known development account (published in the Azurite README).
pub const DEVELOPMENT_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (published in the Azurite README; not a secret).
const DEVELOPMENT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default blob endpoint.
pub const DEVELOPMENT_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// A parsed account-key connection string.
#[derive(Clone)]
pub struct ConnectionString {
    /// The storage account name.
    pub account_name: String,
    /// The base64 account key.
    pub account_key: SecretString,
    /// The blob service root, without a trailing slash on a path-style (Azurite) URL.
    pub blob_endpoint: Url,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("account_name", &self.account_name)
            .field("account_key", &"[REDACTED]")
            .field("blob_endpoint", &self.blob_endpoint.as_str())
            .finish()
    }
}

/// Checks a connection string's shape without network I/O. The message says what is wrong
/// and never repeats the key.
pub fn check_connection_string(value: &str) -> Result<(), String> {
    ConnectionString::parse(value).map(|_| ())
}

impl ConnectionString {
    /// Parses `Key=Value;…` (keys case-insensitive, empty segments ignored, values may contain
    /// `=`). Accepts `UseDevelopmentStorage=true`, or `AccountName` + `AccountKey` with either
    /// `BlobEndpoint` or `DefaultEndpointsProtocol`/`EndpointSuffix` (defaults `https`,
    /// `core.windows.net`). Plain http is allowed only for loopback endpoints.
    pub fn parse(value: &str) -> Result<ConnectionString, String> {
        let mut account_name = None;
        let mut account_key = None;
        let mut blob_endpoint = None;
        let mut protocol = None;
        let mut suffix = None;
        let mut development = false;
        for segment in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, val)) = segment.split_once('=') else {
                return Err(
                    "a segment without `=` was found: write Key=Value pairs separated by `;` \
                     (for example AccountName=…;AccountKey=…;EndpointSuffix=core.usgovcloudapi.net)"
                        .to_owned(),
                );
            };
            let val = val.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "usedevelopmentstorage" => {
                    if !val.eq_ignore_ascii_case("true") {
                        return Err(format!(
                            "UseDevelopmentStorage={} is not supported: only `true`",
                            shown(val)
                        ));
                    }
                    development = true;
                }
                "accountname" => account_name = Some(val.to_owned()),
                "accountkey" => account_key = Some(val.to_owned()),
                "blobendpoint" => blob_endpoint = Some(val.to_owned()),
                "defaultendpointsprotocol" => protocol = Some(val.to_ascii_lowercase()),
                "endpointsuffix" => suffix = Some(val.to_owned()),
                "sharedaccesssignature" => {
                    return Err("SharedAccessSignature connection strings are not supported: use an \
                                account-key connection string, or STORAGE_ACCOUNT_URL with a token credential"
                        .to_owned());
                }
                // Endpoints of other services and Azurite's proxy setting are irrelevant here.
                "queueendpoint"
                | "tableendpoint"
                | "fileendpoint"
                | "developmentstorageproxyuri" => {}
                other => {
                    return Err(format!(
                        "unknown key {}: expected AccountName, AccountKey, BlobEndpoint, \
                         DefaultEndpointsProtocol, EndpointSuffix or UseDevelopmentStorage",
                        shown(other)
                    ));
                }
            }
        }

        if development {
            let endpoint = blob_endpoint
                .as_deref()
                .unwrap_or(DEVELOPMENT_BLOB_ENDPOINT);
            return Ok(ConnectionString {
                account_name: account_name.unwrap_or_else(|| DEVELOPMENT_ACCOUNT.to_owned()),
                account_key: SecretString::from(
                    account_key.unwrap_or_else(|| DEVELOPMENT_KEY.to_owned()),
                ),
                blob_endpoint: parse_endpoint(endpoint)?,
            });
        }

        let account_name = account_name.filter(|n| !n.is_empty()).ok_or_else(|| {
            "AccountName is missing: an account-key connection string needs AccountName and AccountKey \
             (or use UseDevelopmentStorage=true for Azurite)"
                .to_owned()
        })?;
        if !account_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || !(3..=24).contains(&account_name.len())
        {
            return Err(format!(
                "AccountName {} is not a storage account name (3 to 24 lowercase letters and digits)",
                shown(&account_name)
            ));
        }
        let account_key = account_key.filter(|k| !k.is_empty()).ok_or_else(|| {
            format!("AccountKey is missing for account `{account_name}`: copy the connection string from the portal (Access keys)")
        })?;
        if decode_key(&account_key).is_none() {
            return Err(format!(
                "AccountKey for account `{account_name}` is not valid base64: copy it again from the portal (Access keys)"
            ));
        }
        let blob_endpoint = match blob_endpoint {
            Some(endpoint) => parse_endpoint(&endpoint)?,
            None => {
                let protocol = protocol.unwrap_or_else(|| "https".to_owned());
                if protocol != "https" && protocol != "http" {
                    return Err(format!(
                        "DefaultEndpointsProtocol {} is not http or https",
                        shown(&protocol)
                    ));
                }
                let suffix = suffix.unwrap_or_else(|| "core.windows.net".to_owned());
                parse_endpoint(&format!(
                    "{protocol}://{account_name}.blob.{}",
                    suffix.trim_matches('.')
                ))?
            }
        };
        Ok(ConnectionString {
            account_name,
            account_key: SecretString::from(account_key),
            blob_endpoint,
        })
    }
}

/// The account name of a token-auth account URL: the first host label
/// (`https://<account>.blob.core.windows.net`), or the first path segment when the host is an
/// IP address or `localhost` (Azurite's path-style `https://127.0.0.1:10010/devstoreaccount1`).
pub fn account_name_from_url(url: &Url) -> Option<String> {
    let host = url.host()?;
    let name = match host {
        url::Host::Domain(domain) if !domain.eq_ignore_ascii_case("localhost") => {
            domain.split('.').next().unwrap_or_default().to_owned()
        }
        _ => url
            .path_segments()?
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .to_owned(),
    };
    (!name.is_empty()).then_some(name)
}

/// Removes a trailing slash from a path-style endpoint (`…/devstoreaccount1/` would make
/// `…/devstoreaccount1//container`, which Azurite refuses). The root path `/` stays.
pub fn normalize_endpoint(mut url: Url) -> Url {
    let trimmed = url.path().trim_end_matches('/').to_owned();
    if trimmed.is_empty() {
        url.set_path("/");
    } else {
        url.set_path(&trimmed);
    }
    url
}

fn parse_endpoint(value: &str) -> Result<Url, String> {
    // Never the raw value: it may carry a SAS or a password.
    let shown = shown_url(value);
    let url = Url::parse(value).map_err(|_| {
        format!("BlobEndpoint {shown} is not a URL such as https://<account>.blob.core.windows.net")
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "BlobEndpoint {shown} uses plain http, allowed only for loopback addresses: use https"
            ));
        }
        _ => return Err(format!("BlobEndpoint {shown} is not an http(s) URL")),
    }
    if !plain_host(&url)
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "BlobEndpoint {shown} must be a plain service URL without user, password, query or fragment"
        ));
    }
    Ok(normalize_endpoint(url))
}

fn decode_key(key: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .ok()
        .filter(|bytes| !bytes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const KEY: &str = "a2V5LWJ5dGVzLWZvci10ZXN0cw==";

    #[test]
    fn development_storage_means_azurite_defaults() {
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(cs.account_name, "devstoreaccount1");
        assert_eq!(
            cs.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            decode_key(cs.account_key.expose_secret()).unwrap().len(),
            64
        );
    }

    #[test]
    fn explicit_blob_endpoint_wins_and_loses_its_trailing_slash() {
        let cs = ConnectionString::parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};\
             BlobEndpoint=http://127.0.0.1:10001/devstoreaccount1/;"
        ))
        .unwrap();
        assert_eq!(
            cs.blob_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(cs.account_name, "devstoreaccount1");
    }

    #[test]
    fn endpoint_suffix_builds_the_host() {
        let cs = ConnectionString::parse(&format!(
            " DefaultEndpointsProtocol=https ; AccountName=contosologs;AccountKey={KEY};EndpointSuffix=core.usgovcloudapi.net"
        ))
        .unwrap();
        assert_eq!(
            cs.blob_endpoint.as_str(),
            "https://contosologs.blob.core.usgovcloudapi.net/"
        );
        let cs =
            ConnectionString::parse(&format!("accountname=contosologs;accountkey={KEY}")).unwrap();
        assert_eq!(
            cs.blob_endpoint.as_str(),
            "https://contosologs.blob.core.windows.net/"
        );
    }

    #[test]
    fn problems_are_explained_without_the_key() {
        let secret = "c2VjcmV0LWtleS12YWx1ZQ==";
        let cases = [
            ("", "AccountName is missing"),
            ("AccountName=contosologs", "AccountKey is missing"),
            (
                "AccountName=contosologs;AccountKey=not base64!",
                "not valid base64",
            ),
            (
                "AccountName=Contoso_Logs;AccountKey=a2V5",
                "not a storage account name",
            ),
            ("SharedAccessSignature=sv=2021&sig=abc", "not supported"),
            ("UseDevelopmentStorage=false", "only `true`"),
            ("garbage", "without `=`"),
            (
                "AccountName=contosologs;Colour=blue",
                "unknown key `colour`",
            ),
        ];
        for (value, expected) in cases {
            let message = ConnectionString::parse(value).unwrap_err();
            assert!(message.contains(expected), "{value}: {message}");
        }
        let message = ConnectionString::parse(&format!(
            "AccountName=contosologs;AccountKey={secret};BlobEndpoint=http://contoso.example/"
        ))
        .unwrap_err();
        assert!(message.contains("plain http"), "{message}");
        assert!(!message.contains(secret));
        assert!(check_connection_string("UseDevelopmentStorage=true").is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert!(!format!("{cs:?}").contains("Eby8"));
    }

    #[test]
    fn account_name_comes_from_host_or_path() {
        let name = |u: &str| account_name_from_url(&Url::parse(u).unwrap());
        assert_eq!(
            name("https://contosologs.blob.core.usgovcloudapi.net/").as_deref(),
            Some("contosologs")
        );
        assert_eq!(
            name("https://127.0.0.1:10010/devstoreaccount1").as_deref(),
            Some("devstoreaccount1")
        );
        assert_eq!(name("https://localhost/").as_deref(), None);
    }
}
