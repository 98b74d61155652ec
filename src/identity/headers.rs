//! Reading who is signed in from headers: the app's answer to the probe, or a trusted
//! gateway's request. Exactly one non-empty user value, or nobody; ambiguous profile values are
//! dropped rather than guessed.

use super::{Identity, IdentityError};
use crate::config::Config;
use crate::proxy::Fetched;
use http::header::{HeaderMap, HeaderName};

/// Where identity fields are read: a trusted gateway's request (its header map), or the app's
/// answer to the probe (its fields as the app sent them, with no map built for a few lookups).
pub trait Fields {
    /// Every value of the field `name` (lowercase), in order.
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a;
}

impl Fields for HeaderMap {
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).into_iter().map(|value| value.as_bytes())
    }
}

impl Fields for Fetched {
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        Fetched::values(self, name.as_str())
    }
}

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

    pub fn read(&self, headers: &impl Fields) -> Result<Option<Identity>, IdentityError> {
        let mut users = headers.values(&self.user);
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
    pub fn claims(&self, headers: &impl Fields) -> std::collections::BTreeMap<String, String> {
        self.claims
            .iter()
            .filter_map(|(header, claim)| Some((claim.clone(), single(headers, header)?)))
            .collect()
    }
}

/// The one non-empty value of `name`; None when absent or given twice.
fn single(headers: &impl Fields, name: &HeaderName) -> Option<String> {
    let mut values = headers.values(name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    header_text(value).filter(|text| !text.is_empty())
}

/// Header values are bytes; identity values must be UTF-8 text, trimmed.
fn header_text(value: &[u8]) -> Option<String> {
    std::str::from_utf8(value)
        .ok()
        .map(|text| text.trim().to_string())
}
