//! `[liveperson]`: Tether as the brand's OpenID Connect provider for LivePerson.

use super::units::de_duration;
use super::{Config, ConfigError};
use crate::redact::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How the `sub` claim is derived from the app's user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The app's user id as it is (fine when ids are opaque, not e-mails or phone numbers).
    UserId,
    /// HMAC-SHA256 of the user id under `sub_secret`: stable and not guessable.
    Hmac,
}

/// The content encryption of an encrypted id_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JweEnc {
    #[serde(rename = "A256GCM")]
    A256Gcm,
    #[serde(rename = "A128CBC-HS256")]
    A128CbcHs256,
}

impl JweEnc {
    pub fn name(self) -> &'static str {
        match self {
            Self::A256Gcm => "A256GCM",
            Self::A128CbcHs256 => "A128CBC-HS256",
        }
    }
}

/// What the page's authentication method hands LivePerson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageFlow {
    /// Implicit Flow: a signed JWT.
    Jwt,
    /// Code Flow: a one-time code LivePerson's servers exchange at the token endpoint.
    Code,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivePersonConfig {
    pub enabled: bool,
    /// The `iss` of every token; discovery lives under it. Empty: `https://<Host>{prefix}` per
    /// request (development only: set it to what LivePerson's console says in production).
    pub issuer: String,
    /// The `aud` of every token and the client LivePerson's servers authenticate as.
    pub client_id: String,
    pub client_secret: Secret,
    /// Failed client authentications at the token endpoint allowed per address a minute (in a
    /// burst of as many); then 429 with Retry-After. Ten times this per client id, except for
    /// addresses that authenticated in the last day. 0: no limit.
    pub client_auth_failures_per_minute: u32,
    /// Count those failures in Redis too, so the limit holds for the whole fleet, not per
    /// replica (needs store.kind = "redis"; one Redis read per token-endpoint call).
    pub client_auth_limit_shared: bool,
    /// RSA private key (PKCS#8 PEM, 2048 bits or more) that signs tokens.
    pub signing_key: PathBuf,
    /// Keys still published in the JWKS during a rotation (public SPKI PEM or private PKCS#8 PEM).
    pub retired_keys: Vec<PathBuf>,
    #[serde(deserialize_with = "de_duration")]
    pub token_ttl: Duration,
    /// Where codes and popup answers may be sent (exact match); never empty.
    pub redirect_uris: RedirectUris,
    /// Opt-in, for LivePerson connectors created before May 2018: prefixes of LivePerson's
    /// window URL, which such connectors send with per-visitor parameters (their codes are then
    /// redeemed with `https://liveperson.net`).
    pub redirect_uri_prefixes: Vec<String>,
    /// LivePerson's RSA public key (SPKI PEM): set it to encrypt id_tokens (JWE).
    pub encryption_key: Option<PathBuf>,
    pub encryption_kid: String,
    pub encryption_enc: JweEnc,
    pub sub: SubjectKind,
    pub sub_secret: Secret,
    /// How long a Code Flow code may wait for its exchange (at most 10 minutes).
    #[serde(deserialize_with = "de_duration")]
    pub code_ttl: Duration,
    /// Where the popup flow sends a browser with nobody logged in.
    pub login_url: String,
    /// The query parameter of `login_url` that carries the address to come back to.
    pub login_return_param: String,
    /// The page function LivePerson calls for a token (its console's "authentication method").
    pub auth_method: String,
    pub page_flow: PageFlow,
    /// `lp_sdes` engagement attributes: section (`ctmrinfo`, `personal`) -> attribute -> identity
    /// field (`user_id`, `email`, `name`, or a claim named in `[identity.claims]`).
    pub sdes: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for LivePersonConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_auth_failures_per_minute: 10,
            client_auth_limit_shared: false,
            signing_key: PathBuf::from("certs/liveperson-signing.pem"),
            retired_keys: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            redirect_uris: RedirectUris(vec![LIVEPERSON_REDIRECT.into()]),
            redirect_uri_prefixes: Vec::new(),
            encryption_key: None,
            encryption_kid: String::new(),
            encryption_enc: JweEnc::A256Gcm,
            sub: SubjectKind::UserId,
            sub_secret: Secret::default(),
            code_ttl: Duration::from_secs(60),
            login_url: "/login".into(),
            login_return_param: "return_to".into(),
            auth_method: "lpGetAuthenticationToken".into(),
            page_flow: PageFlow::Jwt,
            sdes: BTreeMap::new(),
        }
    }
}

/// The `redirect_uri` LivePerson sends with a code by default.
pub const LIVEPERSON_REDIRECT: &str = "https://liveperson.net";

/// Where codes and popup answers may be sent: at least one URI (the file cannot say `[]`), the
/// first being where a code goes when the page names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUris(Vec<String>);

impl RedirectUris {
    pub fn new(first: String, rest: impl IntoIterator<Item = String>) -> Self {
        Self(std::iter::once(first).chain(rest).collect())
    }

    /// Where a code goes when the caller names no redirect_uri.
    pub fn default_uri(&self) -> &str {
        &self.0[0]
    }

    /// The only registered URI, when there is exactly one.
    pub fn only(&self) -> Option<&str> {
        (self.0.len() == 1).then(|| self.default_uri())
    }

    /// Whether `uri` is registered (exact match).
    pub fn allows(&self, uri: &str) -> bool {
        self.0.iter().any(|allowed| allowed == uri)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for RedirectUris {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let uris = Vec::<String>::deserialize(de)?;
        if uris.is_empty() {
            return Err(serde::de::Error::custom(format!(
                "expected at least one redirect URI, such as [\"{LIVEPERSON_REDIRECT}\"]"
            )));
        }
        Ok(Self(uris))
    }
}

/// The longest a code may live (RFC 6749 section 4.1.2 recommends at most 10 minutes).
pub const MAX_CODE_TTL: Duration = Duration::from_secs(600);

/// Whether `url` is an absolute https URL (http only on loopback, for development).
pub fn is_web_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or("");
    match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => matches!(host, "localhost" | "127.0.0.1" | "[::1]"),
        _ => false,
    }
}

impl Config {
    pub(super) fn validate_liveperson(&self) -> Result<(), ConfigError> {
        let lp = &self.liveperson;
        if !lp.enabled {
            return Ok(());
        }
        let at = |key: &str, message: String| Err(self.origin.error_at(key, message));
        if !lp.issuer.is_empty() {
            if !is_web_url(&lp.issuer) || lp.issuer.contains(['?', '#']) {
                return at(
                    "liveperson.issuer",
                    format!(
                        "expected an https URL such as \"https://www.example.com{}\"",
                        self.reserved.prefix
                    ),
                );
            }
            let path = lp
                .issuer
                .parse::<http::Uri>()
                .map(|u| u.path().to_string())
                .unwrap_or_default();
            if path != self.reserved.prefix {
                return at(
                    "liveperson.issuer",
                    format!(
                        "expected the issuer's path to be the reserved prefix {:?} (discovery is served at \
                         {{issuer}}/.well-known/openid-configuration), found {path:?}",
                        self.reserved.prefix
                    ),
                );
            }
        }
        if !lp.client_id.is_empty() && lp.client_secret.expose().len() < 16 {
            return at(
                "liveperson.client_secret",
                "expected a client secret of at least 16 characters (LivePerson's servers \
                 authenticate with it at the token endpoint)"
                    .into(),
            );
        }
        if lp.token_ttl < Duration::from_secs(60) || lp.token_ttl > Duration::from_secs(86400) {
            return at(
                "liveperson.token_ttl",
                "expected between \"1m\" and \"24h\"".into(),
            );
        }
        if lp.code_ttl.is_zero() || lp.code_ttl > MAX_CODE_TTL {
            return at(
                "liveperson.code_ttl",
                "expected more than 0 and at most \"10m\"".into(),
            );
        }
        if let Some(bad) = lp
            .redirect_uris
            .iter()
            .find(|uri| !is_web_url(uri) || uri.contains('#'))
        {
            return at(
                "liveperson.redirect_uris",
                format!("expected absolute https URLs without a fragment, found {bad:?}"),
            );
        }
        if let Some(bad) = lp.redirect_uri_prefixes.iter().find(|prefix| {
            let path = prefix
                .parse::<http::Uri>()
                .map(|u| u.path().to_string())
                .unwrap_or_default();
            !prefix.starts_with("https://")
                || !is_web_url(prefix)
                || path.len() < 2
                || prefix.contains('#')
        }) {
            return at(
                "liveperson.redirect_uri_prefixes",
                format!(
                    "expected https URL prefixes with a path (LivePerson's window, such as \
                     \"https://<LivePerson host>/<path of its window>\"), found {bad:?}"
                ),
            );
        }
        if lp.client_auth_limit_shared
            && (self.store.kind != super::StoreKind::Redis
                || lp.client_auth_failures_per_minute == 0)
        {
            return at(
                "liveperson.client_auth_limit_shared",
                "a limit shared by the replicas needs store.kind = \"redis\" and \
                 client_auth_failures_per_minute above 0"
                    .into(),
            );
        }
        if lp.sub == SubjectKind::Hmac && lp.sub_secret.expose().len() < 32 {
            return at(
                "liveperson.sub_secret",
                "sub = \"hmac\" needs a secret of at least 32 characters".into(),
            );
        }
        let is_js_name = |name: &str| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        if !is_js_name(&lp.auth_method) {
            return at(
                "liveperson.auth_method",
                format!(
                    "expected a JavaScript function name, found {:?}",
                    lp.auth_method
                ),
            );
        }
        if !lp.login_url.starts_with('/') && !is_web_url(&lp.login_url) {
            return at(
                "liveperson.login_url",
                "expected a path on the app (\"/login\") or an https URL".into(),
            );
        }
        self.validate_sdes()
    }

    /// Every `lp_sdes` attribute is one LivePerson supports in the authenticated flow, and reads
    /// an identity field that exists.
    fn validate_sdes(&self) -> Result<(), ConfigError> {
        let known_fields: Vec<&str> = ["user_id", "email", "name"]
            .into_iter()
            .chain(self.identity.claims.iter().map(|(_, claim)| claim.as_str()))
            .collect();
        for (section, attributes) in &self.liveperson.sdes {
            for (attribute, field) in attributes {
                let key = format!("liveperson.sdes.{section}.{attribute}");
                super::sdes::check_attribute(section, attribute)
                    .map_err(|why| self.origin.error_at(&key, why))?;
                if !known_fields.contains(&field.as_str()) {
                    return Err(self.origin.error_at(
                        &key,
                        format!(
                            "expected an identity field ({}; add app headers under [identity.claims]), found {field:?}",
                            known_fields.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
