//! Reading the accounts server's answers: LiveChat's error body, the bodies Tether expects, and
//! whether an answer is a success, worth a retry, or a failure. Kept apart from the HTTP calls so
//! the parsing can be fuzzed on its own (`tests/fuzz`).

use super::accounts_error::AccountsError;
use serde::Deserialize;

/// LiveChat's error body; present on failures whatever the status.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExceptionBody {
    pub(crate) oauth_exception: Option<String>,
    pub(crate) identity_exception: Option<String>,
    pub(crate) exception_description: Option<String>,
}

impl ExceptionBody {
    pub(crate) fn describe(&self) -> String {
        let kind = self
            .oauth_exception
            .as_deref()
            .or(self.identity_exception.as_deref())
            .unwrap_or("unknown");
        match &self.exception_description {
            Some(description) => format!("{kind}: {description}"),
            None => kind.to_string(),
        }
    }

    fn is_temporary(&self) -> bool {
        matches!(
            self.oauth_exception.as_deref(),
            Some("server_error" | "temporarily_unavailable")
        )
    }
}

#[derive(Deserialize)]
pub(crate) struct CustomerTokenBody {
    pub(crate) access_token: String,
    pub(crate) entity_id: String,
    pub(crate) expires_in: u64,
    pub(crate) token_type: String,
    pub(crate) organization_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct AgentTokenBody {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_in: u64,
    /// Comma-separated, as `GET /v2/info` has it.
    #[serde(default)]
    pub(crate) scope: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct InfoBody {
    pub(crate) scope: Option<String>,
}

/// One attempt's outcome.
pub(crate) enum Attempt<T> {
    Done(T),
    Retry(String),
    Fail(AccountsError),
}

/// Success, retry or failure for one accounts answer.
pub(crate) fn classify<T: serde::de::DeserializeOwned>(
    status: reqwest::StatusCode,
    bytes: &[u8],
    exception: &ExceptionBody,
) -> Attempt<T> {
    let has_exception =
        exception.oauth_exception.is_some() || exception.identity_exception.is_some();
    if status.is_server_error() || status == 429 || exception.is_temporary() {
        return Attempt::Retry(format!("HTTP {status}: {}", exception.describe()));
    }
    if has_exception || !status.is_success() {
        return Attempt::Fail(AccountsError::Rejected(format!(
            "HTTP {status}: {}",
            exception.describe()
        )));
    }
    match serde_json::from_slice(bytes) {
        Ok(body) => Attempt::Done(body),
        Err(err) => Attempt::Fail(AccountsError::Rejected(format!(
            "unexpected answer: {}",
            describe_json_error(&err)
        ))),
    }
}

/// serde_json's message without the values it quotes ("invalid type: string \"...\"" would put
/// a token sent in the wrong field into the log).
fn describe_json_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let kind = if message.starts_with("missing field") || message.starts_with("duplicate field") {
        message.split(" at line").next().unwrap_or("").to_string()
    } else {
        message.split(':').next().unwrap_or("").to_string()
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

/// How Tether reads one answer of each kind (the fuzz target's entry point): `Ok` with the
/// `entity_id` of a customer token answer, or the error text that would be logged.
#[cfg(any(test, feature = "testing"))]
pub fn read_customer_token_answer(status: u16, body: &[u8]) -> Result<String, String> {
    let status = reqwest::StatusCode::from_u16(status).map_err(|err| err.to_string())?;
    let exception: ExceptionBody = serde_json::from_slice(body).unwrap_or_default();
    match classify::<CustomerTokenBody>(status, body, &exception) {
        Attempt::Done(token) => Ok(token.entity_id),
        Attempt::Retry(why) => Err(why),
        Attempt::Fail(err) => Err(err.to_string()),
    }
}

/// The customer's cookie secret from the accounts server's `Set-Cookie` fields (cookie grant):
/// the `__lc_cst` value, if it is a valid cookie value (RFC 6265 cookie-octets). Tether sends it
/// back in a `Cookie` header, where a `;` or a space would smuggle in another cookie.
pub fn cookie_secret<'a>(set_cookies: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    set_cookies
        .into_iter()
        .filter_map(|value| cookie::Cookie::parse(std::str::from_utf8(value).ok()?).ok())
        .find(|cookie| cookie.name() == "__lc_cst")
        .map(|cookie| cookie.value().to_string())
        .filter(|value| !value.is_empty() && value.bytes().all(is_cookie_octet))
}

/// RFC 6265 section 4.1.1: US-ASCII except controls, whitespace, `"`, `,`, `;` and `\\`.
pub fn is_cookie_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}
