//! Client certificates for tests of certificate authentication (`private_key_jwt`): the two RSA
//! keys in `testdata/` (published, test-only: see `testdata/README.md`) and certificates made
//! from them at run time, written as an Azure SDK PEM file (key and certificate), as a PFX, or
//! as the base64 PFX that an app setting with a Key Vault reference resolves to; plus a client
//! assertion signer, to send the token endpoint assertions the service would never make.
//!
//! Register a certificate with [`crate::SimConfig::client_certificates`] (or an app of
//! [`crate::SimConfig::apps`]): the token endpoint then accepts assertions signed by its key.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use time::OffsetDateTime;

/// One of the two test keys in `testdata/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// `testdata/test-rsa-a.key.pem`, RSA 2048.
    A,
    /// `testdata/test-rsa-b.key.pem`, RSA 2048.
    B,
}

impl TestKey {
    /// The key as PKCS#8 PEM (`PRIVATE KEY`).
    pub fn pem(self) -> &'static str {
        match self {
            TestKey::A => include_str!("../testdata/test-rsa-a.key.pem"),
            TestKey::B => include_str!("../testdata/test-rsa-b.key.pem"),
        }
    }
}

/// A self-signed certificate for a test key, valid from a day ago for a year.
#[derive(Clone)]
pub struct TestCertificate {
    /// The key it was made for.
    pub key: TestKey,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate, PEM.
    pub pem: String,
}

impl std::fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCertificate")
            .field("key", &self.key)
            .field("sha1", &self.sha1_hex())
            .finish()
    }
}

/// PFX encryption, as tools write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PfxStyle {
    /// PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and an HMAC-SHA256 MAC: OpenSSL 3's default.
    Modern,
    /// `pbeWithSHAAnd3-KeyTripleDES-CBC` and an HMAC-SHA1 MAC: older Windows and Key Vault
    /// exports.
    Legacy,
}

impl TestCertificate {
    /// A new certificate with this common name for `key`. Two calls give two certificates
    /// (different serial numbers and thumbprints) even for the same key.
    pub fn generate(key: TestKey, common_name: &str) -> anyhow::Result<TestCertificate> {
        let now = OffsetDateTime::now_utc();
        Self::generate_valid(
            key,
            common_name,
            now - std::time::Duration::from_secs(86_400),
            now + std::time::Duration::from_secs(365 * 86_400),
        )
    }

    /// A certificate valid from `not_before` to `not_after` (an expired one, one not yet valid).
    pub fn generate_valid(
        key: TestKey,
        common_name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> anyhow::Result<TestCertificate> {
        let key_pair = KeyPair::from_pem(key.pem())?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand_serial()));
        let certificate = params.self_signed(&key_pair)?;
        Ok(TestCertificate {
            key,
            der: certificate.der().to_vec(),
            pem: certificate.pem(),
        })
    }

    /// The key and the certificate in one PEM text, as `AZURE_CLIENT_CERTIFICATE_PATH` takes it.
    pub fn pem_bundle(&self) -> String {
        format!("{}{}", self.key.pem(), self.pem)
    }

    /// The key and the certificate as a PKCS#12 (PFX) file protected by `password` (may be
    /// empty, as Key Vault's are).
    pub fn pfx(&self, password: &str, style: PfxStyle) -> anyhow::Result<Vec<u8>> {
        let key_der = pkcs8_der(self.key.pem())?;
        let certificate = p12_keystore::Certificate::from_der(&self.der)?;
        let chain =
            p12_keystore::PrivateKeyChain::new(key_der, *b"graph-sim-key-id", vec![certificate]);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "graph-sim",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        let writer = store.writer(password);
        let writer = match style {
            PfxStyle::Modern => writer
                .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
                .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256),
            PfxStyle::Legacy => writer
                .encryption_algorithm(
                    p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
                )
                .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1),
        };
        Ok(writer
            .encryption_iterations(2048)
            .mac_iterations(2048)
            .write()?)
    }

    /// The value an app setting `@Microsoft.KeyVault(SecretUri=…)` resolves to for a Key Vault
    /// certificate whose content type is PKCS#12: the PFX, without password, in base64.
    pub fn key_vault_secret_value(&self) -> anyhow::Result<String> {
        Ok(STANDARD.encode(self.pfx("", PfxStyle::Legacy)?))
    }

    /// The SHA-1 thumbprint in upper-case hex, as the portal shows it.
    pub fn sha1_hex(&self) -> String {
        hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der).as_ref())
    }

    /// `x5t`: base64url of the SHA-1 thumbprint.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.der,
        ))
    }

    /// `x5t#S256`: base64url of the SHA-256 thumbprint.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.der))
    }

    /// A client assertion for `client_id` and the token endpoint `audience`, valid from now for
    /// five minutes, `RS256` with `x5t`, signed with `signer` (normally this certificate's key).
    pub fn assertion(&self, client_id: &str, audience: &str, signer: TestKey) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        sign_assertion(
            signer,
            &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t()}),
            &serde_json::json!({
                "aud": audience, "iss": client_id, "sub": client_id, "jti": crate::new_guid(),
                "nbf": now, "iat": now, "exp": now + 300,
            }),
        )
    }
}

/// A JWT with this header and these claims, signed with `key` by the header's `alg`
/// (`RS256`, else `PS256`).
pub fn sign_assertion(
    key: TestKey,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key_pair =
        ring::signature::RsaKeyPair::from_pkcs8(&pkcs8_der(key.pem()).expect("test keys are PEM"))
            .expect("test keys are RSA PKCS#8");
    let padding: &'static dyn ring::signature::RsaEncoding = if header["alg"] == "RS256" {
        &ring::signature::RSA_PKCS1_SHA256
    } else {
        &ring::signature::RSA_PSS_SHA256
    };
    let mut signature = vec![0; key_pair.public().modulus_len()];
    key_pair
        .sign(
            padding,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .expect("an RSA signature");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The DER inside a one-block PEM text.
fn pkcs8_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    Ok(STANDARD.decode(body)?)
}

fn rand_serial() -> [u8; 16] {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
