//! Certificate authentication: the client assertion (`private_key_jwt`) that `azure_identity`'s
//! `ClientAssertionCredential` sends in place of a client secret.
//!
//! The assertion is the one Entra ID documents ("Microsoft identity platform certificate
//! credentials") and the Azure SDKs' `ClientCertificateCredential` send: a JWT with the header
//! `{"alg":"RS256","typ":"JWT","x5t":<base64url SHA-1 thumbprint>}` and the claims `aud` (the
//! token endpoint, `{authority}/{tenant}/oauth2/v2.0/token`), `iss` and `sub` (the client id),
//! `jti` (a new GUID), `nbf` and `iat` (now) and `exp` (ten minutes on), signed RSASSA-PKCS1-v1_5
//! with SHA-256 by the certificate's key (`ring`). A new assertion is made for every token
//! request. Entra ID's page today recommends `PS256` with `x5t#S256`; `RS256` with `x5t` is the
//! form every Azure SDK has sent for years and Entra ID still documents, and the one
//! `azure_identity` 1.0's own certificate credential sends.

use std::fmt;

use azure_core::error::ErrorKind;
use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::config::ClientCertificate;

/// How long an assertion is valid (Entra ID: "a short time, 5-10 minutes after `nbf`").
const LIFETIME_SECS: i64 = 600;

/// Makes client assertions signed with a certificate's key.
pub(super) struct CertificateAssertion {
    certificate: ClientCertificate,
    client_id: String,
    audience: String,
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("thumbprint", &self.certificate.thumbprint())
            .finish()
    }
}

impl CertificateAssertion {
    /// Assertions for `client_id` to the token endpoint of `tenant_id` at `authority_host`, the
    /// URL `azure_identity` posts to (`{authority}/{tenant}/oauth2/v2.0/token`).
    pub(super) fn new(
        certificate: ClientCertificate,
        client_id: String,
        tenant_id: &str,
        authority_host: &str,
    ) -> azure_core::Result<CertificateAssertion> {
        let audience = url::Url::parse(authority_host)
            .and_then(|authority| authority.join(&format!("/{tenant_id}/oauth2/v2.0/token")))
            .map_err(|e| {
                azure_core::Error::with_message(
                    ErrorKind::Credential,
                    format!("the token endpoint of the authority and tenant is not a URL: {e}"),
                )
            })?
            .to_string();
        Ok(CertificateAssertion {
            certificate,
            client_id,
            audience,
        })
    }

    /// A signed assertion valid from `now`.
    pub(super) fn sign(&self, now: OffsetDateTime) -> azure_core::Result<String> {
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.certificate.x5t(),
        });
        let issued = now.unix_timestamp();
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": issued,
            "iat": issued,
            "exp": issued + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = self.certificate.key();
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| {
            azure_core::Error::with_message(
                ErrorKind::Credential,
                "signing the client assertion with the certificate's key failed",
            )
        })?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.sign(OffsetDateTime::now_utc())
    }
}
