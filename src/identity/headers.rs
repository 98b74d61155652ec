//! Reading who is signed in from headers: the app's answer to the probe, or a trusted
//! gateway's request. Exactly one non-empty user value, or nobody; ambiguous profile values are
//! dropped rather than guessed.

use super::{Identity, IdentityError};
use crate::config::Config;
use http::header::{HeaderMap, HeaderName, HeaderValue};

pub struct HeaderReader {
    user: HeaderName,
    email: Option<HeaderName>,
    name: Option<HeaderName>,
    claims: Vec<(HeaderName, String)>,
}

impl HeaderReader {
    pub fn new(config: &Config) -> Self {
        let identity = &config.identity;
        Self {
            user: identity.user_header.clone(),
            email: identity.email_header.clone(),
            name: identity.name_header.clone(),
            claims: identity.claims.clone(),
        }
    }

    pub fn read(&self, headers: &HeaderMap) -> Result<Option<Identity>, IdentityError> {
        let mut users = headers.get_all(&self.user).iter();
        let Some(user) = users.next() else {
            return Ok(None);
        };
        if users.next().is_some() {
            return Err(IdentityError::Invalid(format!(
                "several {} values",
                self.user
            )));
        }
        let user_id = header_text(user)
            .ok_or_else(|| IdentityError::Invalid(format!("{} is not valid text", self.user)))?;
        if user_id.is_empty() {
            return Ok(None);
        }
        Ok(Some(Identity {
            user_id,
            email: self.email.as_ref().and_then(|name| single(headers, name)),
            name: self.name.as_ref().and_then(|name| single(headers, name)),
            claims: self.claims(headers),
        }))
    }

    /// `[identity.claims]`: profile claims from headers (also beside a JSON answer).
    pub fn claims(&self, headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
        self.claims
            .iter()
            .filter_map(|(header, claim)| Some((claim.clone(), single(headers, header)?)))
            .collect()
    }
}

/// The one non-empty value of `name`; None when absent or given twice.
fn single(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    header_text(value).filter(|text| !text.is_empty())
}

/// Header values are bytes; identity values must be UTF-8 text, trimmed.
fn header_text(value: &HeaderValue) -> Option<String> {
    std::str::from_utf8(value.as_bytes())
        .ok()
        .map(|text| text.trim().to_string())
}
