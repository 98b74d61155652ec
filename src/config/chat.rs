//! `[signing]`, `[zendesk]`, `[intercom]`, `[salesforce]`: the vendors whose widgets take a token
//! Tether signs from the user it already knows, with no call to the vendor.

use super::units::de_duration;
use super::{is_web_url, Config, ConfigError};
use crate::redact::Secret;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The RSA key Tether signs with (LivePerson, Salesforce).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// PKCS#8 PEM; unset: `liveperson.signing_key` (the older name).
    pub key: Option<PathBuf>,
}

/// Zendesk Messaging: an HS256 JWT for `zE("messenger", "loginUser", ...)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZendeskConfig {
    pub enabled: bool,
    /// The signing key's id (the JWT header's `kid`), from Zendesk's Admin Center.
    pub key_id: String,
    /// The key's shared secret.
    pub secret: Secret,
    #[serde(deserialize_with = "de_duration")]
    pub token_ttl: Duration,
    /// Put `email` and `email_verified: true` in the token (Zendesk then identifies the user by
    /// e-mail too; an e-mail already on another user makes Zendesk answer 409).
    pub send_email: bool,
}

impl Default for ZendeskConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            key_id: String::new(),
            secret: Secret::default(),
            token_ttl: Duration::from_secs(600),
            send_email: false,
        }
    }
}

/// How Intercom's Messenger is told who the user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntercomMode {
    /// `intercom_user_jwt`: an HS256 JWT with the Messenger API secret ("Messenger security").
    Jwt,
    /// `user_hash`: hex HMAC-SHA256 of the user id with the identity verification secret.
    UserHash,
}

/// Intercom Messenger: secure user identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntercomConfig {
    pub enabled: bool,
    /// The workspace's app id (public: it is in the Messenger's URL).
    pub app_id: String,
    pub mode: IntercomMode,
    pub secret: Secret,
    #[serde(deserialize_with = "de_duration")]
    pub token_ttl: Duration,
    /// The domain Intercom's cookies are set for (e.g. "example.com" when the Messenger sets them
    /// on ".example.com"); empty: the page's host.
    pub cookie_domain: String,
}

impl Default for IntercomConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            app_id: String::new(),
            mode: IntercomMode::Jwt,
            secret: Secret::default(),
            token_ttl: Duration::from_secs(3600),
            cookie_domain: String::new(),
        }
    }
}

/// Salesforce Messaging for In-App and Web: user verification with an RS256 JWT.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SalesforceConfig {
    pub enabled: bool,
    /// The keyset's issuer (the JWT's `iss`); empty: Tether's issuer URL.
    pub issuer: String,
    #[serde(deserialize_with = "de_duration")]
    pub token_ttl: Duration,
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: String::new(),
            token_ttl: Duration::from_secs(600),
        }
    }
}

impl Config {
    /// The RSA signing key's file and the key that names it (for errors).
    pub fn signing_key(&self) -> (&'static str, &std::path::Path) {
        match &self.signing.key {
            Some(path) => ("signing.key", path),
            None => ("liveperson.signing_key", &self.liveperson.signing_key),
        }
    }

    /// Whether a vendor signs with the RSA key (its JWKS is then served).
    pub fn signs_with_rsa(&self) -> bool {
        self.liveperson.enabled || self.salesforce.enabled
    }

    pub(super) fn validate_chat_vendors(&self) -> Result<(), ConfigError> {
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        let ttl_ok =
            |ttl: Duration, max: u64| ttl >= Duration::from_secs(60) && ttl.as_secs() <= max;
        let zendesk = &self.zendesk;
        if zendesk.enabled {
            if zendesk.key_id.is_empty() {
                return at(
                    "zendesk.key_id",
                    "expected the signing key's id from Zendesk's Admin Center (Account > Security \
                     > End user authentication > Messaging)",
                );
            }
            if zendesk.secret.expose().len() < 16 {
                return at(
                    "zendesk.secret",
                    "expected the signing key's shared secret (shown once when the key is created)",
                );
            }
            if !ttl_ok(zendesk.token_ttl, 86400) {
                return at(
                    "zendesk.token_ttl",
                    "expected between \"1m\" and \"24h\" (minutes are best)",
                );
            }
        }
        let intercom = &self.intercom;
        if intercom.enabled {
            let app_id_ok = !intercom.app_id.is_empty()
                && intercom.app_id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !app_id_ok {
                return at(
                    "intercom.app_id",
                    "expected the workspace's app id, such as \"abc12345\"",
                );
            }
            if intercom.secret.expose().len() < 16 {
                return at(
                    "intercom.secret",
                    "expected the Messenger API secret (mode = \"jwt\") or the identity \
                     verification secret (mode = \"user_hash\"), from Intercom's Settings > \
                     Messenger > Security",
                );
            }
            if !ttl_ok(intercom.token_ttl, 7 * 86400) {
                return at(
                    "intercom.token_ttl",
                    "expected between \"1m\" and \"7d\" (the app's session length)",
                );
            }
            let domain_ok = intercom
                .cookie_domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !domain_ok || intercom.cookie_domain.starts_with('.') {
                return at(
                    "intercom.cookie_domain",
                    "expected a domain such as \"example.com\" (no leading dot)",
                );
            }
        }
        let salesforce = &self.salesforce;
        if salesforce.enabled {
            if !salesforce.issuer.is_empty() && !is_web_url(&salesforce.issuer) {
                return at(
                    "salesforce.issuer",
                    "expected the keyset's issuer as an https URL (or empty for Tether's issuer)",
                );
            }
            if !ttl_ok(salesforce.token_ttl, 3600) {
                return at(
                    "salesforce.token_ttl",
                    "expected between \"1m\" and \"1h\" (Salesforce mints its own session from it)",
                );
            }
        }
        if self.signing.key.is_some() && self.liveperson.signing_key != default_liveperson_key() {
            return at(
                "signing.key",
                "the signing key is named twice (signing.key and liveperson.signing_key): keep one",
            );
        }
        Ok(())
    }
}

fn default_liveperson_key() -> PathBuf {
    super::LivePersonConfig::default().signing_key
}
