//! Client certificates for certificate authentication (`AUTH_MODE=client_certificate`): read and
//! checked while the configuration is, so that an unreadable file, something that is not an RSA
//! certificate with its private key, a wrong password, a key that does not belong to the
//! certificate or a certificate out of its validity is a problem naming its setting, before any
//! run.
//!
//! A certificate comes from a file (`AZURE_CLIENT_CERTIFICATE_PATH`: a PEM file holding the
//! private key and the certificate, as the Azure SDKs take it, or a PFX / PKCS#12 file) or from
//! the setting itself (`AZURE_CLIENT_CERTIFICATE`: the base64 PFX that an app setting
//! `@Microsoft.KeyVault(SecretUri=…)` resolves to for a Key Vault certificate, or PEM text),
//! with `AZURE_CLIENT_CERTIFICATE_PASSWORD` for an encrypted PFX or PEM key; the `GRAPH_` twins
//! for Graph's own credential. PFX files are read with `p12-keystore` (PBES2 with AES, and the
//! legacy triple-DES and RC2 schemes; HMAC-SHA1 or SHA-256 MACs), encrypted PEM keys
//! (`ENCRYPTED PRIVATE KEY`, PKCS#8 with PBES2) with `pkcs8`, certificates with `x509-parser`,
//! and the key is loaded into `ring`, which signs the client assertions (`crate::auth`). No
//! OpenSSL: the `azure_identity` `ClientCertificateCredential` needs it (its `client_certificate`
//! feature), which the portable package cannot link.
//!
//! The private key and the password are never shown: not in problems, `Debug` or `config check`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ring::signature::{KeyPair as _, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::redact::shown;

/// A PFX or PEM file larger than this is not a client certificate.
const MAX_BYTES: u64 = 256 * 1024;

/// Where a certificate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// A file (`…_CERTIFICATE_PATH`).
    File(PathBuf),
    /// The setting's own value (`…_CERTIFICATE`), named here.
    Setting(&'static str),
}

/// A client certificate with its RSA private key, checked and ready to sign.
#[derive(Clone)]
pub struct ClientCertificate {
    /// Where it came from.
    pub source: CertificateSource,
    /// The certificate (DER): its thumbprints name it in a client assertion.
    pub der: Arc<[u8]>,
    /// The certificate's subject, for messages.
    pub subject: String,
    /// The end of its validity.
    pub not_after: OffsetDateTime,
    key: Arc<RsaKeyPair>,
}

impl ClientCertificate {
    /// The SHA-1 thumbprint in upper-case hex, as the portal lists an app's certificates.
    pub fn thumbprint(&self) -> String {
        hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der).as_ref())
    }

    /// `x5t`: base64url of the SHA-1 thumbprint.
    pub fn x5t(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.der,
        ))
    }

    /// The private key.
    pub fn key(&self) -> &RsaKeyPair {
        &self.key
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("source", &self.source)
            .field("thumbprint", &self.thumbprint())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Why a certificate was refused; the message names no secret and says what to do.
#[derive(Debug)]
pub(super) struct Refusal {
    /// True when the password setting is at fault (wrong, or missing), not the certificate's.
    pub password: bool,
    /// What is wrong.
    pub message: String,
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal {
            password: false,
            message,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        message.to_owned().into()
    }
}

fn password_refusal(message: String) -> Refusal {
    Refusal {
        password: true,
        message,
    }
}

/// Reads the file at `path` (a PEM file or a PFX).
pub(super) fn from_file(
    path: &Path,
    password: Option<&SecretString>,
) -> Result<ClientCertificate, Refusal> {
    let shown_path = shown(&path.to_string_lossy());
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("{shown_path} cannot be read: {}", io_reason(&e)))?;
    if !metadata.is_file() {
        return Err(Refusal::from(format!("{shown_path} is not a file")));
    }
    if metadata.len() > MAX_BYTES {
        return Err(Refusal::from(format!(
            "{shown_path} is {} bytes: a client certificate file is a few kilobytes (a PEM file with the key and the certificate, or a PFX)",
            metadata.len()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{shown_path} cannot be read: {}", io_reason(&e)))?;
    parse(&bytes, password, CertificateSource::File(path.to_owned()))
}

/// Reads the certificate from a setting's value: the base64 PFX a Key Vault reference resolves
/// to, or PEM text.
pub(super) fn from_setting(
    variable: &'static str,
    value: &SecretString,
    password: Option<&SecretString>,
) -> Result<ClientCertificate, Refusal> {
    let text = value.expose_secret().trim();
    if text
        .get(..20)
        .is_some_and(|start| start.eq_ignore_ascii_case("@Microsoft.KeyVault("))
    {
        return Err(Refusal::from(
            "is a Key Vault reference that the Functions platform did not resolve (the value \
             arrived as `@Microsoft.KeyVault(…)`): give the app's identity the Key Vault Secrets \
             User role on the vault (or a get-secret access policy), set keyVaultReferenceIdentity \
             when that identity is user-assigned, check the vault's network rules, and look at the \
             reference's status among the app's environment variables in the portal"
                .to_owned(),
        ));
    }
    let source = CertificateSource::Setting(variable);
    if text.contains("-----BEGIN") {
        return parse(text.as_bytes(), password, source);
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| {
            "is neither base64 (a PFX, as a Key Vault reference to a certificate resolves to) \
             nor PEM text (the value is not shown)"
                .to_owned()
        })?;
    parse(&bytes, password, source)
}

/// A PEM text (key and certificate) or a PFX.
fn parse(
    bytes: &[u8],
    password: Option<&SecretString>,
    source: CertificateSource,
) -> Result<ClientCertificate, Refusal> {
    let (key, chain) = if bytes.starts_with(b"-----BEGIN") || contains(bytes, b"\n-----BEGIN") {
        from_pem(bytes, password)?
    } else if bytes.first() == Some(&0x30) {
        from_pfx(bytes, password)?
    } else {
        return Err(Refusal::from(
            "is neither a PEM file (`-----BEGIN …`, with the private key and the certificate) \
             nor a PFX (PKCS#12)"
                .to_owned(),
        ));
    };
    // The certificate is the one whose public key is the private key's.
    let public = key.public_key().as_ref().to_vec();
    let mut first_problem = None;
    for der in &chain {
        match X509Certificate::from_der(der) {
            Ok((_, certificate)) => {
                if certificate.public_key().subject_public_key.data.as_ref() == public.as_slice() {
                    return checked(&certificate, der, key, source);
                }
            }
            Err(e) => {
                first_problem
                    .get_or_insert(format!("holds a certificate that cannot be read ({e})"));
            }
        }
    }
    Err(Refusal::from(first_problem.unwrap_or_else(|| {
        if chain.is_empty() {
            "holds a private key but no certificate: it needs both (PEM: a `PRIVATE KEY` and a \
             `CERTIFICATE` block)"
                .to_owned()
        } else {
            "holds no certificate of its private key: the key and the certificate do not belong \
             together"
                .to_owned()
        }
    })))
}

/// Checks the certificate's validity and builds the result.
fn checked(
    certificate: &X509Certificate<'_>,
    der: &[u8],
    key: RsaKeyPair,
    source: CertificateSource,
) -> Result<ClientCertificate, Refusal> {
    let validity = certificate.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    let now = OffsetDateTime::now_utc();
    let thumbprint =
        hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref());
    if now >= not_after {
        return Err(Refusal::from(format!(
            "holds a certificate (thumbprint {thumbprint}) that expired on {}: make a new one, add \
             it to the app registration's certificates and put it here",
            crate::timestamp::format(not_after)
        )));
    }
    if now < not_before {
        return Err(Refusal::from(format!(
            "holds a certificate (thumbprint {thumbprint}) that is not valid before {}",
            crate::timestamp::format(not_before)
        )));
    }
    Ok(ClientCertificate {
        source,
        der: Arc::from(der),
        subject: certificate.subject().to_string(),
        not_after,
        key: Arc::new(key),
    })
}

/// The RSA key and the certificates of a PEM text.
fn from_pem(
    bytes: &[u8],
    password: Option<&SecretString>,
) -> Result<(RsaKeyPair, Vec<Vec<u8>>), Refusal> {
    let mut certificates = Vec::new();
    let mut key = None;
    for block in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|_| {
            "holds a PEM block that cannot be read (a broken `-----BEGIN`/`-----END` pair or base64)"
                .to_owned()
        })?;
        match block.label.as_str() {
            "CERTIFICATE" => certificates.push(block.contents),
            "PRIVATE KEY" => {
                if key.is_some() {
                    return Err(Refusal::from(
                        "holds more than one private key: keep one".to_owned(),
                    ));
                }
                key = Some(rsa_pkcs8(&block.contents)?);
            }
            "RSA PRIVATE KEY" => {
                if key.is_some() {
                    return Err(Refusal::from(
                        "holds more than one private key: keep one".to_owned(),
                    ));
                }
                key = Some(RsaKeyPair::from_der(&block.contents).map_err(key_rejected)?);
            }
            "ENCRYPTED PRIVATE KEY" => {
                if key.is_some() {
                    return Err(Refusal::from(
                        "holds more than one private key: keep one".to_owned(),
                    ));
                }
                let Some(password) = password else {
                    return Err(password_refusal(
                        "is required: the private key is encrypted".to_owned(),
                    ));
                };
                let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(block.contents.as_slice())
                    .map_err(|_| "holds an encrypted private key that cannot be read".to_owned())?;
                let decrypted = encrypted
                    .decrypt(password.expose_secret().as_bytes())
                    .map_err(|_| {
                        password_refusal(
                            "does not open the encrypted private key: the password is wrong (or \
                             the key is encrypted with another scheme than PBES2)"
                                .to_owned(),
                        )
                    })?;
                key = Some(rsa_pkcs8(decrypted.as_bytes())?);
            }
            "EC PRIVATE KEY" => {
                return Err(Refusal::from(
                    "holds an EC key: Entra ID certificate credentials need an RSA key".to_owned(),
                ));
            }
            _ => {}
        }
    }
    if contains(bytes, b"Proc-Type: 4,ENCRYPTED") {
        return Err(Refusal::from(
            "holds a legacy OpenSSL-encrypted key (`Proc-Type: 4,ENCRYPTED`): convert it to \
             PKCS#8 (`openssl pkcs8 -topk8 -v2 aes256`) or use a PFX"
                .to_owned(),
        ));
    }
    let Some(key) = key else {
        return Err(Refusal::from(if certificates.is_empty() {
            "holds no certificate and no private key".to_owned()
        } else {
            "holds a certificate but no private key: it needs both (a `PRIVATE KEY` block and a \
             `CERTIFICATE` block, as the Azure SDKs take it), or use a PFX"
                .to_owned()
        }));
    };
    Ok((key, certificates))
}

/// The RSA key and the certificates of a PFX.
fn from_pfx(
    bytes: &[u8],
    password: Option<&SecretString>,
) -> Result<(RsaKeyPair, Vec<Vec<u8>>), Refusal> {
    let secret = password.map(|p| p.expose_secret()).unwrap_or("");
    let store = p12_keystore::KeyStore::from_pkcs12(bytes, secret).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) if password.is_some() => {
            password_refusal("does not open the PFX: the password is wrong".to_owned())
        }
        p12_keystore::error::Error::MacError(_) => {
            password_refusal("is required: the PFX is protected by a password".to_owned())
        }
        p12_keystore::error::Error::UnsupportedEncryptionScheme
        | p12_keystore::error::Error::UnsupportedMacAlgorithm => {
            "is a PFX encrypted in a way this build cannot read (it reads PBES2 with AES and the \
             legacy triple-DES and RC2 schemes): export it again with AES-256 and SHA-256"
                .into()
        }
        _ => "is neither a PEM file nor a PFX (PKCS#12) that can be read".into(),
    })?;
    let Some((_, chain)) = store.private_key_chain() else {
        return Err(Refusal::from(
            "is a PFX without a private key: export the certificate with its private key"
                .to_owned(),
        ));
    };
    let key = rsa_pkcs8(chain.key())?;
    let certificates = chain.chain().iter().map(|c| c.as_der().to_vec()).collect();
    Ok((key, certificates))
}

fn rsa_pkcs8(der: &[u8]) -> Result<RsaKeyPair, Refusal> {
    RsaKeyPair::from_pkcs8(der).map_err(key_rejected)
}

fn key_rejected(error: ring::error::KeyRejected) -> Refusal {
    let reason = error.to_string();
    Refusal::from(match reason.as_str() {
        "WrongAlgorithm" => {
            "holds a private key that is not RSA: Entra ID certificate credentials need an RSA key"
                .to_owned()
        }
        "TooSmall" | "TooLarge" => {
            format!("holds an RSA key of a size that cannot sign ({reason}): use 2048 to 8192 bits")
        }
        other => format!("holds a private key that cannot be used ({other})"),
    })
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.kind().to_string(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use graph_sim::certs::{PfxStyle, TestCertificate, TestKey};

    use crate::config::AuthMode;
    use crate::config::testing::{problems, with_owned};

    /// A temporary folder with a file of these bytes; its path.
    fn file(dir: &tempfile::TempDir, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// Certificate settings on top of the minimal configuration, without its client secret.
    fn certificate_auth<'a>(extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
        let mut vars = vec![("AZURE_CLIENT_SECRET", String::new())];
        vars.extend(extra.iter().cloned());
        vars
    }

    /// A PEM block.
    fn pem_block(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// The one problem of a configuration with these certificate settings.
    fn problem(extra: &[(&str, String)]) -> (String, String) {
        let found = problems(with_owned(&certificate_auth(extra)));
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn reads_pem_files_pfx_files_and_key_vault_values() {
        let dir = tempfile::tempdir().unwrap();
        let certificate = TestCertificate::generate(TestKey::A, "entra-export test").unwrap();
        let pem = file(&dir, "app.pem", certificate.pem_bundle());
        // The certificate before the key works too, and so does a PKCS#1 key.
        let reversed = file(
            &dir,
            "reversed.pem",
            format!("{}{}", certificate.pem, TestKey::A.pem()),
        );
        let modern = file(
            &dir,
            "modern.pfx",
            certificate.pfx("pa55", PfxStyle::Modern).unwrap(),
        );
        let legacy = file(
            &dir,
            "legacy.pfx",
            certificate.pfx("pa55", PfxStyle::Legacy).unwrap(),
        );
        let no_password = file(
            &dir,
            "open.pfx",
            certificate.pfx("", PfxStyle::Legacy).unwrap(),
        );
        let password = "pa55".to_owned();
        let cases: Vec<Vec<(&str, String)>> = vec![
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", pem)],
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", reversed)],
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", modern),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password.clone()),
            ],
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", legacy),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password),
            ],
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", no_password)],
            vec![(
                "AZURE_CLIENT_CERTIFICATE",
                certificate.key_vault_secret_value().unwrap(),
            )],
            vec![("AZURE_CLIENT_CERTIFICATE", certificate.pem_bundle())],
        ];
        for case in cases {
            let config = with_owned(&certificate_auth(&case)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(config.auth.mode, AuthMode::ClientCertificate, "{case:?}");
            let loaded = config.auth.certificate.as_ref().unwrap();
            assert_eq!(loaded.thumbprint(), certificate.sha1_hex());
            assert_eq!(loaded.x5t(), certificate.x5t());
        }
    }

    #[test]
    fn an_encrypted_pem_key_opens_with_its_password() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let certificate = TestCertificate::generate(TestKey::B, "encrypted").unwrap();
        let body: String = TestKey::B
            .pem()
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let key_der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let info = pkcs8::PrivateKeyInfo::try_from(key_der.as_slice()).unwrap();
        let parameters =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16])
                .unwrap();
        let encrypted = info.encrypt_with_params(parameters, b"pa55").unwrap();
        let encrypted = pem_block("ENCRYPTED PRIVATE KEY", encrypted.as_bytes());
        let path = file(
            &dir,
            "encrypted.pem",
            format!("{encrypted}{}", certificate.pem),
        );
        let config = with_owned(&certificate_auth(&[
            ("AZURE_CLIENT_CERTIFICATE_PATH", path.clone()),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pa55".into()),
        ]))
        .unwrap();
        assert_eq!(
            config.auth.certificate.unwrap().thumbprint(),
            certificate.sha1_hex()
        );
        let (variable, message) = problem(&[
            ("AZURE_CLIENT_CERTIFICATE_PATH", path.clone()),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "wrong".into()),
        ]);
        assert_eq!(variable, "AZURE_CLIENT_CERTIFICATE_PASSWORD");
        assert!(message.contains("password is wrong"), "{message}");
        let (variable, message) = problem(&[("AZURE_CLIENT_CERTIFICATE_PATH", path)]);
        assert_eq!(variable, "AZURE_CLIENT_CERTIFICATE_PASSWORD");
        assert!(message.contains("is required"), "{message}");
    }

    #[test]
    fn every_bad_certificate_is_a_problem_naming_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let a = TestCertificate::generate(TestKey::A, "a").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let expired = TestCertificate::generate_valid(
            TestKey::A,
            "expired",
            now - time::Duration::days(400),
            now - time::Duration::days(35),
        )
        .unwrap();
        let pfx = file(&dir, "a.pfx", a.pfx("pa55", PfxStyle::Modern).unwrap());
        let path = |name: &str, bytes: &[u8]| file(&dir, name, bytes);
        /// The variables, the problem's variable, a part of its message.
        type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                vec![("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/app.pem".into())],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "`/nonexistent/app.pem` cannot be read: no such file",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    dir.path().display().to_string(),
                )],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "is not a file",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    path("notes.txt", b"just some text"),
                )],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "is neither a PEM file",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    path("cert-only.pem", a.pem.as_bytes()),
                )],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "holds a certificate but no private key",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    path("key-only.pem", TestKey::A.pem().as_bytes()),
                )],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "no certificate",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    path(
                        "mismatch.pem",
                        format!("{}{}", TestKey::B.pem(), a.pem).as_bytes(),
                    ),
                )],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "do not belong together",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    path("expired.pem", expired.pem_bundle().as_bytes()),
                )],
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "expired on",
            ),
            (
                vec![
                    ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.clone()),
                    ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "wrong".into()),
                ],
                "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                "does not open the PFX: the password is wrong (the certificate of AZURE_CLIENT_CERTIFICATE_PATH)",
            ),
            (
                vec![("AZURE_CLIENT_CERTIFICATE_PATH", pfx.clone())],
                "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                "is required: the PFX is protected by a password",
            ),
            (
                vec![(
                    "AZURE_CLIENT_CERTIFICATE",
                    "@Microsoft.KeyVault(SecretUri=https://vault.vault.usgovcloudapi.net/secrets/app/)"
                        .into(),
                )],
                "AZURE_CLIENT_CERTIFICATE",
                "Key Vault reference that the Functions platform did not resolve",
            ),
            (
                vec![("AZURE_CLIENT_CERTIFICATE", "not base64 at all!".into())],
                "AZURE_CLIENT_CERTIFICATE",
                "is neither base64",
            ),
            (
                vec![
                    ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.clone()),
                    ("AZURE_CLIENT_CERTIFICATE", a.pem_bundle()),
                ],
                "AZURE_CLIENT_CERTIFICATE_PATH/AZURE_CLIENT_CERTIFICATE",
                "both are set",
            ),
            (
                vec![
                    ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pa55".into()),
                    ("AUTH_MODE", "azure_cli".into()),
                ],
                "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                "is set but there is no certificate",
            ),
            (
                vec![("AUTH_MODE", "client_certificate".into())],
                "AZURE_CLIENT_CERTIFICATE_PATH/AZURE_CLIENT_CERTIFICATE",
                "one is required with client_certificate authentication",
            ),
            (
                vec![
                    ("AZURE_CLIENT_CERTIFICATE", a.pem_bundle()),
                    ("AZURE_CLIENT_ID", String::new()),
                ],
                "AZURE_CLIENT_ID",
                "is required with client_certificate authentication",
            ),
        ];
        for (vars, variable, expected) in cases {
            let (found, message) = problem(&vars);
            assert_eq!(found, variable, "{vars:?}: {message}");
            assert!(message.contains(expected), "{vars:?}: {message}");
            assert!(!message.contains("pa55"), "{message}");
        }
        // A secret and a certificate both: `auto` does not choose.
        let found = problems(with_owned(&[(
            "AZURE_CLIENT_CERTIFICATE_PATH",
            file(&dir, "b.pem", a.pem_bundle()),
        )]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "AUTH_MODE");
        assert!(found[0].1.contains("both a client secret"), "{found:?}");
    }
}
