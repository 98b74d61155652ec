//! OAuth parameters from a query string or a small request body (form, or JSON for the old
//! LivePerson docs that said so). RFC 6749 section 3.1: a parameter sent twice is an error, one
//! sent without a value counts as absent.

use super::codes::{is_pkce_value, PkceMethod};
use crate::proxy::EndpointBody;
use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Limited};
use std::collections::HashMap;

/// Largest body an OAuth endpoint reads.
const BODY_LIMIT: usize = 16 * 1024;

pub struct Params(HashMap<String, String>);

/// Reads the body of `request` as form fields, or as a JSON object of strings.
pub async fn read(request: Request<EndpointBody>) -> Result<Params, &'static str> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let body: Bytes = Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|_| "the request body is too large or was cut off")?
        .to_bytes();
    if is_json {
        from_json(&body)
    } else {
        from_form(&body)
    }
}

pub fn from_form(form: &[u8]) -> Result<Params, &'static str> {
    let mut params = HashMap::new();
    for (name, value) in form_urlencoded::parse(form) {
        if value.is_empty() {
            continue;
        }
        if params
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err("a parameter was sent more than once");
        }
    }
    Ok(Params(params))
}

pub fn from_json(body: &[u8]) -> Result<Params, &'static str> {
    if body.is_empty() {
        return Ok(Params(HashMap::new()));
    }
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "the body is not a JSON object")?;
    let mut params = HashMap::new();
    for (name, value) in object {
        match value {
            serde_json::Value::String(text) if text.is_empty() => {}
            serde_json::Value::String(text) => {
                params.insert(name, text);
            }
            serde_json::Value::Null => {}
            _ => return Err("JSON parameters must be strings"),
        }
    }
    Ok(Params(params))
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The PKCE challenge, if any, with its method (`default` when none is named).
    pub fn pkce(&self, default: PkceMethod) -> Result<Option<(PkceMethod, String)>, &'static str> {
        let method = match self.get("code_challenge_method") {
            Some(name) => {
                Some(PkceMethod::parse(name).ok_or("code_challenge_method must be S256 or plain")?)
            }
            None => None,
        };
        match self.get("code_challenge") {
            None if method.is_some() => Err("code_challenge_method without code_challenge"),
            None => Ok(None),
            Some(challenge) if !is_pkce_value(challenge) => {
                Err("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]")
            }
            Some(challenge) => Ok(Some((method.unwrap_or(default), challenge.to_string()))),
        }
    }
}
