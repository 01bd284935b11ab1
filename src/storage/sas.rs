//! Short-lived account SAS tokens signed with an account key, and the pipeline policy that puts
//! the current token on every request.
//!
//! The 1.x SDK has no shared-key authentication, so a connection string with an account key is
//! used this way: the service signs an account SAS and [`SasPolicy`] appends it to each
//! request's query string, signing a fresh one once less than half its lifetime is left.
//! Tokens are never logged: the SDK's logging policy redacts `sig`, and our own errors are
//! scrubbed (see [`super::error`]).
//!
//! Least privilege: the token is for the blob service only (`ss=b`), for containers and
//! blobs but not the service (`srt=co`: no service properties, no container listing), with
//! read, write, list and create only (`sp=rwlc`: no delete, no tags, no immutability
//! policies), valid for [`SAS_LIFETIME`] (20 minutes). Account-SAS permissions each service
//! operation needs (as Azure documents them and Azurite enforces them):
//!
//! | operation | `srt` | `sp` |
//! |---|---|---|
//! | Create Container | c | c (or w) |
//! | Get Container Properties (the checkpoint, `exists`) | c | r |
//! | Set Container Metadata (the checkpoint) | c | w |
//! | Lease Container: acquire, renew, release, break | c | w |
//! | List Blobs | c | l |
//! | Put Blob (new: c; replacing a state blob: w) | o | c, w |
//! | Put Block, Put Block List | o | w |
//! | Get Blob | o | r |
//!
//! There is no `st` (start): a token is valid at once whatever the clock skew; a local clock
//! running more than [`SAS_RENEW_BEFORE`] behind the service's would see tokens refused as
//! expired (the error says to check the clock).

use std::sync::{Arc, Mutex};

use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};

use super::connection::ConnectionString;

/// The SAS service version; its string-to-sign has ten fields, the last one `ses`.
pub const SAS_VERSION: &str = "2021-08-06";
/// `sp`: read, write, list, create (in the order Azure's SDKs write them): what the service
/// does, without delete.
pub const SAS_PERMISSIONS: &str = "rwlc";
/// `ss`: the blob service only.
pub const SAS_SERVICES: &str = "b";
/// `srt`: containers and objects (blobs), not the service.
pub const SAS_RESOURCE_TYPES: &str = "co";
/// How long a signed token is valid.
pub const SAS_LIFETIME: Duration = Duration::minutes(20);
/// A new token is signed once less than this is left.
pub const SAS_RENEW_BEFORE: Duration = Duration::minutes(10);

/// The query parameters an account SAS consists of; removed before a fresh token is added.
const SAS_PARAMS: [&str; 10] = [
    "sv", "ss", "srt", "sp", "se", "st", "sip", "spr", "ses", "sig",
];

/// The fields of one account SAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSasFields {
    /// Storage account name.
    pub account: String,
    /// `sp`.
    pub permissions: String,
    /// `se`, formatted `YYYY-MM-DDTHH:MM:SSZ`.
    pub expiry: String,
    /// `spr`: `https` for https endpoints, empty (https or http) for loopback Azurite.
    pub protocol: String,
}

impl AccountSasFields {
    /// The string to sign for `sv` ≥ 2020-12-06: ten fields each followed by `\n`
    /// (account, sp, ss, srt, st, se, sip, spr, sv, ses).
    pub fn string_to_sign(&self) -> String {
        format!(
            "{}\n{}\n{SAS_SERVICES}\n{SAS_RESOURCE_TYPES}\n\n{}\n\n{}\n{SAS_VERSION}\n\n",
            self.account, self.permissions, self.expiry, self.protocol
        )
    }

    /// The query pairs of the signed token, `sig` last.
    pub fn query_pairs(&self, signature: &str) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("sv", SAS_VERSION.to_owned()),
            ("ss", SAS_SERVICES.to_owned()),
            ("srt", SAS_RESOURCE_TYPES.to_owned()),
            ("sp", self.permissions.clone()),
            ("se", self.expiry.clone()),
        ];
        if !self.protocol.is_empty() {
            pairs.push(("spr", self.protocol.clone()));
        }
        pairs.push(("sig", signature.to_owned()));
        pairs
    }
}

/// `base64(HMAC-SHA256(base64-decoded key, string_to_sign))`.
pub fn sign(key: &Secret, string_to_sign: &str) -> Result<String, String> {
    azure_core::hmac::hmac_sha256(string_to_sign, key)
        .map_err(|_| "cannot sign the account SAS with the account key".to_owned())
}

/// A signed token and when it stops being valid.
#[derive(Clone)]
struct Token {
    pairs: Arc<Vec<(&'static str, String)>>,
    expires_at: OffsetDateTime,
}

/// Signs account SAS tokens for one account and caches the current one.
pub struct SasSigner {
    account: String,
    key: Secret,
    protocol: String,
    current: Mutex<Option<Token>>,
}

impl std::fmt::Debug for SasSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SasSigner")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SasSigner {
    /// A signer for the connection string's account. Tokens are restricted to https unless
    /// the endpoint is plain-http loopback (Azurite).
    pub fn new(connection: &ConnectionString) -> SasSigner {
        SasSigner {
            account: connection.account_name.clone(),
            key: Secret::new(connection.account_key.expose_secret().to_owned()),
            protocol: if connection.blob_endpoint.scheme() == "https" {
                "https".to_owned()
            } else {
                String::new()
            },
            current: Mutex::new(None),
        }
    }

    /// The query pairs of a token valid for at least [`SAS_RENEW_BEFORE`] from `now`.
    fn token(&self, now: OffsetDateTime) -> Result<Arc<Vec<(&'static str, String)>>, String> {
        let mut current = self
            .current
            .lock()
            .expect("the SAS cache is never poisoned");
        if let Some(token) = current.as_ref()
            && token.expires_at - now > SAS_RENEW_BEFORE
        {
            return Ok(token.pairs.clone());
        }
        let expires_at = (now + SAS_LIFETIME)
            .replace_nanosecond(0)
            .expect("zero nanoseconds are valid");
        let fields = AccountSasFields {
            account: self.account.clone(),
            permissions: SAS_PERMISSIONS.to_owned(),
            expiry: format_expiry(expires_at),
            protocol: self.protocol.clone(),
        };
        let signature = sign(&self.key, &fields.string_to_sign())?;
        let pairs = Arc::new(fields.query_pairs(&signature));
        tracing::debug!(storage.account = %self.account, sas.expires_at = %fields.expiry, "signed a new account SAS");
        *current = Some(Token {
            pairs: pairs.clone(),
            expires_at,
        });
        Ok(pairs)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form `se` takes.
pub fn format_expiry(instant: OffsetDateTime) -> String {
    let t = instant.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Puts the signer's current token on each try of each request (replacing a token a previous
/// try added), so that a renewed token is used as soon as it exists.
#[derive(Debug)]
pub struct SasPolicy {
    signer: Arc<SasSigner>,
}

impl SasPolicy {
    /// A policy using `signer`.
    pub fn new(signer: Arc<SasSigner>) -> SasPolicy {
        SasPolicy { signer }
    }
}

#[async_trait::async_trait]
impl Policy for SasPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let pairs = self
            .signer
            .token(OffsetDateTime::now_utc())
            .map_err(|message| {
                azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message)
            })?;
        apply_token(request.url_mut(), &pairs);
        next[0].send(ctx, request, &next[1..]).await
    }
}

fn apply_token(url: &mut url::Url, pairs: &[(&'static str, String)]) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !SAS_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = url.query_pairs_mut();
    query.clear();
    for (k, v) in &kept {
        query.append_pair(k, v);
    }
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn azurite_key() -> Secret {
        Secret::new(AZURITE_KEY)
    }

    #[test]
    fn string_to_sign_has_ten_newline_terminated_fields() {
        let fields = AccountSasFields {
            account: "devstoreaccount1".into(),
            permissions: SAS_PERMISSIONS.into(),
            expiry: "2030-01-01T00:00:00Z".into(),
            protocol: String::new(),
        };
        assert_eq!(
            fields.string_to_sign(),
            "devstoreaccount1\nrwlc\nb\nco\n\n2030-01-01T00:00:00Z\n\n\n2021-08-06\n\n"
        );
        assert_eq!(fields.string_to_sign().matches('\n').count(), 10);
    }

    #[test]
    fn signature_matches_a_vector_computed_with_openssl() {
        // printf '<string-to-sign>' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key> -binary | base64
        // (<key>: the account key base64-decoded, as hex: `base64 -d | xxd -p -c 256`)
        let fields = AccountSasFields {
            account: "devstoreaccount1".into(),
            permissions: SAS_PERMISSIONS.into(),
            expiry: "2030-01-01T00:00:00Z".into(),
            protocol: String::new(),
        };
        assert_eq!(
            sign(&azurite_key(), &fields.string_to_sign()).unwrap(),
            "Mggjl+DKsKOf3P3ejIE+MWg2xXve6Yf2rVaPpESTg+A="
        );
        let https = AccountSasFields {
            account: "myaccount".into(),
            expiry: "2024-01-13T15:00:00Z".into(),
            protocol: "https".into(),
            ..fields
        };
        assert_eq!(
            sign(&azurite_key(), &https.string_to_sign()).unwrap(),
            "+r6HjFpq7pM58E+o6ruK9EC8usoeOpzbznDrrTdhMck="
        );
    }

    #[test]
    fn the_token_is_blob_only_without_service_access_or_delete() {
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        let pairs = SasSigner::new(&cs)
            .token(OffsetDateTime::now_utc())
            .unwrap();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ss"), Some("b"));
        assert_eq!(get("srt"), Some("co"));
        assert_eq!(get("sp"), Some("rwlc"));
        assert_eq!(
            get("st"),
            None,
            "no start time: valid at once whatever the skew"
        );
        let permissions = get("sp").unwrap();
        for forbidden in ['d', 'x', 'y', 't', 'f', 'i', 'a', 'u', 'p'] {
            assert!(!permissions.contains(forbidden), "{permissions}");
        }
        assert!(SAS_RENEW_BEFORE * 2 == SAS_LIFETIME);
    }

    #[test]
    fn token_is_cached_then_renewed_before_it_expires() {
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        let signer = SasSigner::new(&cs);
        let t0 = datetime!(2024-01-13 14:00:00.5 UTC);
        let first = signer.token(t0).unwrap();
        let se =
            |pairs: &[(&str, String)]| pairs.iter().find(|(k, _)| *k == "se").unwrap().1.clone();
        assert_eq!(se(&first), "2024-01-13T14:20:00Z");
        let still = signer.token(t0 + Duration::minutes(9)).unwrap();
        assert!(Arc::ptr_eq(&first, &still));
        let renewed = signer.token(t0 + Duration::minutes(11)).unwrap();
        assert_eq!(se(&renewed), "2024-01-13T14:31:00Z");
    }

    #[test]
    fn applying_a_token_replaces_the_previous_one_and_keeps_other_parameters() {
        let mut url = url::Url::parse(
            "http://127.0.0.1:10000/devstoreaccount1/c?restype=container&comp=lease",
        )
        .unwrap();
        let fields = AccountSasFields {
            account: "devstoreaccount1".into(),
            permissions: SAS_PERMISSIONS.into(),
            expiry: "2030-01-01T00:00:00Z".into(),
            protocol: String::new(),
        };
        apply_token(&mut url, &fields.query_pairs("a+b/c="));
        apply_token(&mut url, &fields.query_pairs("x+y/z="));
        let query = url.query().unwrap();
        assert!(
            query.starts_with("restype=container&comp=lease&sv=2021-08-06"),
            "{query}"
        );
        assert_eq!(query.matches("sig=").count(), 1);
        assert!(query.ends_with("sig=x%2By%2Fz%3D"), "{query}");
    }
}
