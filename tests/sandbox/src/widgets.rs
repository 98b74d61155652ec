//! Stand-ins for the vendors' page scripts, served by the sandbox at `/sandbox/widget/...`, so
//! `tether demo` and the browser tests show both vendors working on a page with no Tether code:
//!
//! - `livechat.js` plays LiveChat's widget (`inject.livechat_widget_src`): it reads `__lc`, calls
//!   the custom identity provider as `@livechat/customer-sdk` does (hasToken, getToken, a fresh
//!   token when an hour or less is left, the identity-mismatch check on a second getToken), asks
//!   the sandbox whose token it got, and draws a bubble naming the verified customer.
//! - `lptag.js` plays LivePerson's lpTag (`inject.liveperson_tag_src`): it calls the identity
//!   function, then the authentication method, checks the JWT's signature against the issuer's
//!   JWKS (WebCrypto) and its `iss`/`sub` against the identity, and draws a bubble.
//! - `zendesk.js`, `intercom.js` and `salesforce.js` play Zendesk's messaging snippet,
//!   Intercom's Messenger and a Salesforce deployment's bootstrap; each verifies what it is
//!   handed with WebCrypto against the account below (`standin-common.js` is served in front
//!   of each).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The vendors' accounts the widget stand-ins verify against.
#[derive(Debug, Clone)]
pub struct WidgetAccounts {
    pub zendesk: ZendeskAccount,
    pub intercom: IntercomAccount,
    pub salesforce: SalesforceAccount,
}

/// A Zendesk account: its Web Widget key and its messaging signing keys.
#[derive(Debug, Clone)]
pub struct ZendeskAccount {
    pub widget_key: String,
    pub key_id: String,
    pub secret: String,
}

/// An Intercom workspace: its app id and its Messenger secret.
#[derive(Debug, Clone)]
pub struct IntercomAccount {
    pub app_id: String,
    pub secret: String,
}

/// A Salesforce keyset: its issuer and JWKS URL (None: the page origin's `/.tether` and its
/// `/jwks.json`, where Tether serves them).
#[derive(Debug, Clone, Default)]
pub struct SalesforceAccount {
    pub issuer: Option<String>,
    pub keyset: Option<String>,
}

impl Default for WidgetAccounts {
    fn default() -> Self {
        Self {
            zendesk: ZendeskAccount {
                widget_key: "sandbox-widget-key".into(),
                key_id: "app_sandbox0001".into(),
                secret: "sandbox-zendesk-secret-0123456789".into(),
            },
            intercom: IntercomAccount {
                app_id: "sandbox1".into(),
                secret: "sandbox-intercom-secret-0123456789".into(),
            },
            salesforce: SalesforceAccount::default(),
        }
    }
}

/// The script at `path`, if it is one of the stand-ins.
pub fn script(path: &str, accounts: &WidgetAccounts) -> Option<Response<Full<Bytes>>> {
    let source = match path {
        "/sandbox/widget/livechat.js" => include_str!("livechat-widget.js").to_string(),
        "/sandbox/widget/lptag.js" => include_str!("lptag.js").to_string(),
        "/sandbox/widget/zendesk.js" => with_account(
            include_str!("zendesk-snippet.js"),
            serde_json::json!({
                "widget_key": accounts.zendesk.widget_key,
                "keys": { accounts.zendesk.key_id.as_str(): accounts.zendesk.secret },
            }),
        ),
        "/sandbox/widget/intercom.js" => with_account(
            include_str!("intercom-widget.js"),
            serde_json::json!({
                "app_id": accounts.intercom.app_id,
                "secret": accounts.intercom.secret,
            }),
        ),
        "/sandbox/widget/salesforce.js" => with_account(
            include_str!("salesforce-bootstrap.js"),
            serde_json::json!({
                "issuer": accounts.salesforce.issuer,
                "keyset": accounts.salesforce.keyset,
            }),
        ),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from(source)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

/// A stand-in with the shared helpers in front and its account in place of `{{ACCOUNT}}`.
fn with_account(source: &str, account: serde_json::Value) -> String {
    format!(
        "{}\n{}",
        include_str!("standin-common.js"),
        source.replace("{{ACCOUNT}}", &account.to_string())
    )
}
