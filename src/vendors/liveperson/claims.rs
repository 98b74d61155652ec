//! What an id_token says about the user: the registered claims, the profile claims LivePerson
//! shows agents, and `lp_sdes`.

use super::sdes::{civil_date, SdesMapping};
use crate::config::{LivePersonConfig, SubjectKind};
use crate::identity::Identity;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Profile claims LivePerson maps to the agent's view; taken from `[identity.claims]` of the
/// same name (`email` and `name` come from their own headers).
const PROFILE_CLAIMS: &[&str] = &[
    "given_name",
    "family_name",
    "preferred_username",
    "phone_number",
    "gender",
];

enum Subject {
    UserId,
    /// HMAC-SHA256 of the user id: stable, but not the e-mail or phone LivePerson warns about.
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

pub struct ClaimsBuilder {
    client_id: Option<String>,
    subject: Subject,
    sdes: SdesMapping,
    ttl: Duration,
}

impl ClaimsBuilder {
    pub fn new(config: &LivePersonConfig) -> Self {
        let subject = match config.sub {
            SubjectKind::UserId => Subject::UserId,
            SubjectKind::Hmac => Subject::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                config.sub_secret.expose().as_bytes(),
            ))),
        };
        Self {
            client_id: Some(config.client_id.clone()).filter(|id| !id.is_empty()),
            subject,
            sdes: SdesMapping::new(&config.sdes),
            ttl: config.token_ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The `sub` for a user id (also what the page's identity function reports).
    pub fn subject(&self, user_id: &str) -> String {
        match &self.subject {
            Subject::UserId => user_id.to_string(),
            Subject::Hmac(key) => crate::signing::base64url::b64(
                aws_lc_rs::hmac::sign(key, user_id.as_bytes()).as_ref(),
            ),
        }
    }

    /// The id_token claims for `identity`, issued at `now` (Unix seconds; NumericDate is in
    /// seconds, never milliseconds).
    pub fn build(&self, issuer: &str, identity: &Identity, nonce: Option<&str>, now: u64) -> Value {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(issuer));
        claims.insert("sub".into(), json!(self.subject(&identity.user_id)));
        if let Some(client_id) = &self.client_id {
            claims.insert("aud".into(), json!(client_id));
            claims.insert("azp".into(), json!(client_id));
        }
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + self.ttl.as_secs()));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        if let Some(email) = identity.email.as_deref().filter(|e| !e.is_empty()) {
            claims.insert("email".into(), json!(email));
        }
        if let Some(name) = identity.name.as_deref().filter(|n| !n.is_empty()) {
            claims.insert("name".into(), json!(name));
        }
        for claim in PROFILE_CLAIMS {
            if let Some(value) = identity.claims.get(*claim).filter(|v| !v.is_empty()) {
                claims.insert((*claim).into(), json!(value));
            }
        }
        if !self.sdes.is_empty() {
            let sdes = self.sdes.build(identity, civil_date(now));
            if !sdes.is_empty() {
                claims.insert("lp_sdes".into(), Value::Array(sdes));
            }
        }
        Value::Object(claims)
    }
}
