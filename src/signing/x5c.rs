//! `x5c` for the JWKS: a self-signed X.509 certificate over each RSA key Tether holds the private
//! half of. Salesforce refuses keys without one, and one that expires within 10 days
//! (docs/vendors/salesforce.md, "The keyset").
//!
//! The certificate is a pure function of the key and a 30-day period: fixed validity (from a day
//! before the period began to two years after), serial from a hash of the key id and the
//! period, and RSASSA-PKCS1-v1_5, which is deterministic. So every replica publishes the same
//! bytes, and a long-running Tether renews it each period, always with 23 months or more left.

use crate::redact::Secret;
use base64::Engine;

/// How often the certificate is renewed.
const PERIOD_SECS: u64 = 30 * 86_400;
/// How long a certificate is valid from its period's start.
const VALIDITY_SECS: u64 = 730 * 86_400;

/// A private key (PKCS#8 PEM) that certificates are made for.
pub struct Certifier {
    pem: Secret,
    kid: String,
}

impl Certifier {
    pub fn new(pem: String, kid: String) -> Self {
        Self {
            pem: Secret::new(pem),
            kid,
        }
    }

    /// The 30-day period `now` (Unix seconds) falls in; certificates change with it.
    pub fn period(now_secs: u64) -> u64 {
        now_secs / PERIOD_SECS
    }

    /// The standard base64 DER of this period's certificate, for `x5c`.
    pub fn x5c(&self, period: u64) -> Result<String, String> {
        let der = self.certificate(period)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(der))
    }

    fn certificate(&self, period: u64) -> Result<Vec<u8>, String> {
        use rcgen::{CertificateParams, DnType, KeyPair, SerialNumber, PKCS_RSA_SHA256};
        let key = KeyPair::from_pkcs8_pem_and_sign_algo(self.pem.expose(), &PKCS_RSA_SHA256)
            .map_err(|err| format!("cannot certify the signing key: {err}"))?;
        let start = period * PERIOD_SECS;
        let at = |secs: u64| {
            time::OffsetDateTime::from_unix_timestamp(secs as i64)
                .map_err(|err| format!("certificate date: {err}"))
        };
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|err| format!("certificate: {err}"))?;
        params.distinguished_name.push(
            DnType::CommonName,
            format!("Tether signing key {}", self.kid),
        );
        params.not_before = at(start.saturating_sub(86_400))?;
        params.not_after = at(start + VALIDITY_SECS)?;
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{}:{period}", self.kid).as_bytes(),
        );
        let mut serial = digest.as_ref()[..16].to_vec();
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let certificate = params
            .self_signed(&key)
            .map_err(|err| format!("cannot certify the signing key: {err}"))?;
        Ok(certificate.der().to_vec())
    }
}
