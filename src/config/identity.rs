//! `[identity]`: where Tether learns who is signed in. The app's answer to a probe (headers, or
//! its own JSON "who am I"), a trusted gateway's header, or a signed token that already comes
//! with every request (a gateway's assertion or the app's own session JWT), verified against the
//! issuer's keys. The presets fill in the well-known gateways.

use super::units::de_duration;
use super::{Config, ConfigError};
use http::HeaderName;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// Ask the app: GET probe_path with the caller's credentials.
    Probe,
    /// Trust `user_header` on requests from `server.trusted_proxies`.
    Header,
    /// Verify a signed token (JWT) the request carries, against the issuer's keys.
    Jwt,
}

/// The identity-aware gateways whose tokens Tether knows how to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JwtPreset {
    /// Cloudflare Access: `Cf-Access-Jwt-Assertion`, keys of the team domain (`jwt_team`).
    CloudflareAccess,
    /// Google Cloud IAP: `x-goog-iap-jwt-assertion`, Google's IAP keys.
    GoogleIap,
    /// AWS Application Load Balancer: `x-amzn-oidc-data`, keys by `kid` in `jwt_region`.
    AwsAlb,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub source: IdentitySource,
    #[serde(deserialize_with = "de_probe_path")]
    pub probe_path: String,
    #[serde(deserialize_with = "de_header_name")]
    pub user_header: HeaderName,
    #[serde(deserialize_with = "de_opt_header_name")]
    pub email_header: Option<HeaderName>,
    #[serde(deserialize_with = "de_opt_header_name")]
    pub name_header: Option<HeaderName>,
    /// probe: JSON pointers into the probe's 200 JSON answer (the app's own "who am I");
    /// empty: the answer's headers are read instead.
    #[serde(deserialize_with = "de_pointer")]
    pub probe_json_user: String,
    #[serde(deserialize_with = "de_pointer")]
    pub probe_json_email: String,
    #[serde(deserialize_with = "de_pointer")]
    pub probe_json_name: String,
    /// More header names always stripped from client requests.
    #[serde(deserialize_with = "de_header_names")]
    pub protected_headers: Vec<HeaderName>,
    /// Strip the identity headers from the app's responses too, so internal ids do not leak.
    pub strip_from_responses: bool,
    /// probe: how long the app may take to answer the identity probe (then: fail closed, 503).
    #[serde(deserialize_with = "de_duration")]
    pub probe_timeout: Duration,
    /// probe: most probes in flight to the app at once (and so connections for them).
    pub probe_concurrency: usize,
    /// probe: how long a token request may wait for a free probe before 503 + Retry-After.
    #[serde(deserialize_with = "de_duration")]
    pub probe_queue_timeout: Duration,
    /// Further app headers mapped to profile claims: (header, claim name), in header order.
    #[serde(deserialize_with = "de_claims")]
    pub claims: Vec<(HeaderName, String)>,
    /// jwt: the cookie that carries the token (the app's own session JWT), or
    pub jwt_cookie: String,
    /// jwt: the request header that carries it (a gateway's assertion).
    #[serde(deserialize_with = "de_opt_header_name")]
    pub jwt_header: Option<HeaderName>,
    /// jwt: the issuer's JWKS (for aws-alb: a URL with `{kid}`, one PEM key each).
    pub jwks_url: String,
    /// jwt: the exact `iss` (required unless a preset says it).
    pub jwt_issuer: String,
    /// jwt: an `aud` the token must carry, exactly.
    pub jwt_audience: String,
    pub jwt_user_claim: String,
    pub jwt_email_claim: String,
    pub jwt_name_claim: String,
    pub jwt_preset: Option<JwtPreset>,
    /// cloudflare-access: the team name (`<team>.cloudflareaccess.com`) or its whole domain.
    pub jwt_team: String,
    /// aws-alb: the load balancer's region (its keys are published per region).
    pub jwt_region: String,
    /// aws-alb: the load balancer's ARN, which its tokens name in their `signer` header.
    pub jwt_signer: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            source: IdentitySource::Probe,
            probe_path: "/whoami".into(),
            probe_timeout: Duration::from_secs(2),
            probe_concurrency: 64,
            probe_queue_timeout: Duration::from_secs(1),
            user_header: HeaderName::from_static("x-authenticated-user"),
            email_header: Some(HeaderName::from_static("x-authenticated-email")),
            name_header: Some(HeaderName::from_static("x-authenticated-name")),
            probe_json_user: String::new(),
            probe_json_email: String::new(),
            probe_json_name: String::new(),
            protected_headers: Vec::new(),
            strip_from_responses: true,
            claims: Default::default(),
            jwt_cookie: String::new(),
            jwt_header: None,
            jwks_url: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_user_claim: "sub".into(),
            jwt_email_claim: "email".into(),
            jwt_name_claim: "name".into(),
            jwt_preset: None,
            jwt_team: String::new(),
            jwt_region: String::new(),
            jwt_signer: String::new(),
        }
    }
}

/// Where the verification keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeys {
    /// A JWKS document.
    Jwks(String),
    /// One PEM public key per `kid`, at this URL with `{kid}` (AWS ALB).
    PerKid(String),
}

/// `source = "jwt"` with the preset filled in: what the verifier checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub cookie: Option<String>,
    pub header: Option<HeaderName>,
    pub keys: JwtKeys,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The `signer` header value required (AWS ALB's ARN).
    pub signer: Option<String>,
    pub user_claim: String,
    pub email_claim: String,
    pub name_claim: String,
}

impl IdentityConfig {
    /// The headers that carry identity (user, email, name, claims). A trusted gateway may set
    /// them in header mode; `protected_headers` are stripped always and are not listed here.
    pub fn identity_headers(&self) -> Vec<HeaderName> {
        let mut names = vec![self.user_header.clone()];
        names.extend(self.email_header.iter().cloned());
        names.extend(self.name_header.iter().cloned());
        names.extend(self.claims.iter().map(|(header, _)| header.clone()));
        names
    }

    /// The token source with its preset applied (an explicit key wins over the preset's).
    pub fn jwt_settings(&self) -> JwtSettings {
        let given = |text: &str| (!text.is_empty()).then(|| text.to_string());
        let team_domain = if self.jwt_team.contains('.') {
            self.jwt_team.clone()
        } else {
            format!("{}.cloudflareaccess.com", self.jwt_team)
        };
        let (header, keys, issuer) = match self.jwt_preset {
            Some(JwtPreset::CloudflareAccess) => (
                Some(HeaderName::from_static("cf-access-jwt-assertion")),
                Some(JwtKeys::Jwks(format!(
                    "https://{team_domain}/cdn-cgi/access/certs"
                ))),
                Some(format!("https://{team_domain}")),
            ),
            Some(JwtPreset::GoogleIap) => (
                Some(HeaderName::from_static("x-goog-iap-jwt-assertion")),
                Some(JwtKeys::Jwks(
                    "https://www.gstatic.com/iap/verify/public_key-jwk".into(),
                )),
                Some("https://cloud.google.com/iap".to_string()),
            ),
            Some(JwtPreset::AwsAlb) => (
                Some(HeaderName::from_static("x-amzn-oidc-data")),
                Some(JwtKeys::PerKid(format!(
                    "https://public-keys.auth.elb.{}.amazonaws.com/{{kid}}",
                    self.jwt_region
                ))),
                None,
            ),
            None => (None, None, None),
        };
        let explicit_keys = given(&self.jwks_url).map(|url| {
            if url.contains("{kid}") {
                JwtKeys::PerKid(url)
            } else {
                JwtKeys::Jwks(url)
            }
        });
        let cookie = given(&self.jwt_cookie);
        JwtSettings {
            // A configured cookie is the only place a token is taken from.
            header: if cookie.is_some() {
                None
            } else {
                self.jwt_header.clone().or(header)
            },
            cookie,
            keys: explicit_keys
                .or(keys)
                .unwrap_or(JwtKeys::Jwks(String::new())),
            issuer: given(&self.jwt_issuer).or(issuer),
            audience: given(&self.jwt_audience),
            signer: given(&self.jwt_signer),
            user_claim: self.jwt_user_claim.clone(),
            email_claim: self.jwt_email_claim.clone(),
            name_claim: self.jwt_name_claim.clone(),
        }
    }
}

impl Config {
    pub(super) fn validate_identity(&self) -> Result<(), ConfigError> {
        let identity = &self.identity;
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        if identity.probe_concurrency == 0 {
            return at("identity.probe_concurrency", "expected at least 1");
        }
        if identity.probe_json_user.is_empty()
            && !(identity.probe_json_email.is_empty() && identity.probe_json_name.is_empty())
        {
            return at(
                "identity.probe_json_user",
                "expected the JSON pointer of the user id (email and name pointers need it)",
            );
        }
        if identity.source != IdentitySource::Jwt {
            return Ok(());
        }
        let jwt = identity.jwt_settings();
        match identity.jwt_preset {
            Some(JwtPreset::CloudflareAccess) if identity.jwt_team.is_empty() => {
                return at(
                    "identity.jwt_team",
                    "cloudflare-access needs the team name (<team>.cloudflareaccess.com)",
                );
            }
            Some(JwtPreset::CloudflareAccess | JwtPreset::GoogleIap) if jwt.audience.is_none() => {
                return at(
                    "identity.jwt_audience",
                    "this gateway signs for every application behind it: the audience (Cloudflare's \
                     Application Audience tag, or IAP's /projects/.../backendServices/...) is needed",
                );
            }
            Some(JwtPreset::AwsAlb) if identity.jwt_region.is_empty() => {
                return at(
                    "identity.jwt_region",
                    "aws-alb needs the load balancer's region, such as \"eu-west-1\"",
                );
            }
            Some(JwtPreset::AwsAlb) if jwt.signer.is_none() => {
                return at(
                    "identity.jwt_signer",
                    "aws-alb needs the load balancer's ARN: every ALB in a region publishes keys at \
                     the same place, so only the signer tells yours apart",
                );
            }
            _ => {}
        }
        if jwt.cookie.is_none() && jwt.header.is_none() {
            return at(
                "identity.jwt_cookie",
                "source = \"jwt\" needs jwt_cookie or jwt_header (or a jwt_preset)",
            );
        }
        let url = match &jwt.keys {
            JwtKeys::Jwks(url) | JwtKeys::PerKid(url) => url,
        };
        if url.is_empty() {
            return at("identity.jwks_url", "expected the issuer's JWKS URL");
        }
        if !super::inject::is_fetchable(url) {
            return at(
                "identity.jwks_url",
                "expected an https:// URL (http:// only on loopback)",
            );
        }
        if jwt.issuer.is_none() {
            return at(
                "identity.jwt_issuer",
                "expected the tokens' issuer (iss), checked exactly",
            );
        }
        if jwt.user_claim.is_empty() {
            return at(
                "identity.jwt_user_claim",
                "expected a claim name such as \"sub\"",
            );
        }
        Ok(())
    }
}

/// A JSON pointer (RFC 6901), or empty.
fn de_pointer<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let text = String::deserialize(de)?;
    if text.is_empty() || text.starts_with('/') {
        Ok(text)
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a JSON pointer such as \"/user/id\", found {text:?}"
        )))
    }
}

fn parse_header_name(text: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(text.as_bytes())
        .map_err(|_| format!("expected an HTTP header name, found {text:?}"))
}

fn de_header_name<'de, D: Deserializer<'de>>(de: D) -> Result<HeaderName, D::Error> {
    parse_header_name(&String::deserialize(de)?).map_err(serde::de::Error::custom)
}

/// An empty string switches an optional header off.
fn de_opt_header_name<'de, D: Deserializer<'de>>(de: D) -> Result<Option<HeaderName>, D::Error> {
    let text = String::deserialize(de)?;
    if text.is_empty() {
        return Ok(None);
    }
    parse_header_name(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn de_header_names<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<HeaderName>, D::Error> {
    Vec::<String>::deserialize(de)?
        .iter()
        .map(|name| parse_header_name(name))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn de_probe_path<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let text = String::deserialize(de)?;
    let valid = text.starts_with('/') && text.parse::<http::uri::PathAndQuery>().is_ok();
    if valid {
        Ok(text)
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a path on the app such as \"/whoami\", found {text:?}"
        )))
    }
}

fn de_claims<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<(HeaderName, String)>, D::Error> {
    std::collections::BTreeMap::<String, String>::deserialize(de)?
        .into_iter()
        .map(|(header, claim)| Ok((parse_header_name(&header)?, claim)))
        .collect::<Result<_, String>>()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(identity: &str) -> Result<Config, String> {
        crate::config::parse_str(
            &format!("[upstream]\nurl = \"http://127.0.0.1:3000\"\n[identity]\n{identity}"),
            "t.toml",
            &|_| None,
        )
        .map_err(|err| err.to_string())
    }

    #[test]
    fn presets_fill_in_the_gateways() {
        let config = parse(
            "source = \"jwt\"\njwt_preset = \"cloudflare-access\"\njwt_team = \"shop\"\njwt_audience = \"aud-tag\"\n",
        )
        .unwrap();
        let jwt = config.identity.jwt_settings();
        assert_eq!(jwt.header.unwrap(), "cf-access-jwt-assertion");
        assert_eq!(
            jwt.keys,
            JwtKeys::Jwks("https://shop.cloudflareaccess.com/cdn-cgi/access/certs".into())
        );
        assert_eq!(
            jwt.issuer.as_deref(),
            Some("https://shop.cloudflareaccess.com")
        );
        let config = parse(
            "source = \"jwt\"\njwt_preset = \"google-iap\"\njwt_audience = \"/projects/1/global/backendServices/2\"\n",
        )
        .unwrap();
        let jwt = config.identity.jwt_settings();
        assert_eq!(jwt.header.unwrap(), "x-goog-iap-jwt-assertion");
        assert_eq!(jwt.issuer.as_deref(), Some("https://cloud.google.com/iap"));
        let config = parse(
            "source = \"jwt\"\njwt_preset = \"aws-alb\"\njwt_region = \"eu-west-1\"\njwt_signer = \"arn:x\"\njwt_issuer = \"https://idp/\"\n",
        )
        .unwrap();
        assert_eq!(
            config.identity.jwt_settings().keys,
            JwtKeys::PerKid("https://public-keys.auth.elb.eu-west-1.amazonaws.com/{kid}".into())
        );
        // An explicit key wins; a cookie makes the header irrelevant.
        let config = parse(
            "source = \"jwt\"\njwt_preset = \"google-iap\"\njwt_audience = \"a\"\njwks_url = \"https://keys.test/jwks\"\njwt_cookie = \"s\"\n",
        )
        .unwrap();
        let jwt = config.identity.jwt_settings();
        assert_eq!(jwt.keys, JwtKeys::Jwks("https://keys.test/jwks".into()));
        assert_eq!((jwt.cookie.as_deref(), jwt.header), (Some("s"), None));
    }

    #[test]
    fn what_each_source_lacks_is_located() {
        for (text, expected) in [
            ("source = \"jwt\"\njwt_preset = \"cloudflare-access\"\n", "identity.jwt_team"),
            ("source = \"jwt\"\njwt_preset = \"google-iap\"\n", "identity.jwt_audience"),
            ("source = \"jwt\"\njwt_preset = \"aws-alb\"\njwt_region = \"eu-west-1\"\n", "identity.jwt_signer"),
            ("source = \"jwt\"\njwks_url = \"https://k/\"\njwt_issuer = \"i\"\n", "identity.jwt_cookie"),
            ("source = \"jwt\"\njwt_cookie = \"s\"\njwt_issuer = \"i\"\n", "identity.jwks_url"),
            ("source = \"jwt\"\njwt_cookie = \"s\"\njwks_url = \"http://keys.example/\"\njwt_issuer = \"i\"\n", "http:// only on loopback"),
            ("source = \"jwt\"\njwt_cookie = \"s\"\njwks_url = \"https://k/\"\n", "identity.jwt_issuer"),
            ("probe_json_user = \"user.id\"\n", "expected a JSON pointer"),
            ("probe_json_email = \"/email\"\n", "identity.probe_json_user"),
            ("jwt_preset = \"okta\"\n", "unknown variant `okta`"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.starts_with("t.toml:"), "{error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
