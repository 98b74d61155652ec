//! `[inject]`: the snippets Tether puts on the app's HTML pages itself, so a legacy app gets the
//! chat widget and its identity without a template change.

use super::{Config, ConfigError};
use serde::{Deserialize, Deserializer};

/// Where the snippets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectPosition {
    /// Before `</head>` (or before `<body>` when the page omits `</head>`).
    Head,
    /// Before `</body>`.
    Body,
}

/// What Tether asks the app for when it fetches a page to inject into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEncoding {
    /// The page uncompressed: Tether compresses it for the client (best for apps that
    /// compress per request: Tether's fast level costs less than theirs).
    Identity,
    /// gzip, when the client takes gzip: for apps that serve pages compressed once (static
    /// sites, nginx `gzip_static`, a cache). Tether splices the snippet into the app's stream.
    Gzip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectConfig {
    pub enabled: bool,
    /// Path prefixes whose pages get the snippets; a prefix matches whole segments ("/shop"
    /// matches "/shop" and "/shop/cart", not "/shopping") unless it ends with "/".
    #[serde(deserialize_with = "de_paths")]
    pub paths: Vec<String>,
    /// Prefixes never touched (same matching).
    #[serde(deserialize_with = "de_paths")]
    pub exclude_paths: Vec<String>,
    pub position: InjectPosition,
    /// LiveChat: the identity provider and LiveChat's widget.
    pub livechat: bool,
    /// LivePerson: the identity function, the authentication method and the lpTag.
    pub liveperson: bool,
    /// Where LiveChat's widget script is loaded from.
    pub livechat_widget_src: String,
    /// LiveChat group for `__lc.group`, when the brand routes chats by group.
    pub livechat_group: Option<u32>,
    /// LivePerson account (site) id for the lpTag.
    pub liveperson_site_id: String,
    /// Where the lpTag is loaded from; empty: LivePerson's own tag for the site.
    pub liveperson_tag_src: String,
    /// Zendesk Messaging: the widget snippet, then `loginUser` / `logoutUser`.
    pub zendesk: bool,
    /// The Web Widget key (`snippet.js?key=...`).
    pub zendesk_snippet_key: String,
    /// Where the widget snippet is loaded from; empty: Zendesk's.
    pub zendesk_snippet_src: String,
    /// Intercom: `intercomSettings` with the user's values, then the Messenger script.
    pub intercom: bool,
    /// Where the Messenger script is loaded from; empty: Intercom's for the app id.
    pub intercom_widget_src: String,
    /// Salesforce: `setIdentityToken` on `onEmbeddedMessagingReady` (the deployment's own
    /// bootstrap snippet stays the page's, or goes in `extra_html`).
    pub salesforce: bool,
    /// More markup, added verbatim after Tether's tag.
    pub extra_html: String,
    /// Visitors nobody is logged in as get the vendors' widgets with the vendors' own anonymous
    /// identity (true) or no widget at all (false).
    pub anonymous_widget: bool,
    /// The app's session cookie: a page request without it is known to be anonymous, so the
    /// loader asks Tether nothing on it. Unset: the loader asks once per page when Tether cannot
    /// tell from the page itself (see the README).
    pub session_cookie: String,
    /// gzip level (1-9) for injected pages sent compressed; 1 is fast, 6 is zlib's default.
    pub compression_level: u32,
    /// What the app is asked for (`Accept-Encoding`) on a page to inject into.
    pub app_encoding: AppEncoding,
}

impl Default for InjectConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            paths: vec!["/".into()],
            exclude_paths: Vec::new(),
            position: InjectPosition::Head,
            livechat: true,
            liveperson: false,
            livechat_widget_src: "https://cdn.livechatinc.com/tracking.js".into(),
            livechat_group: None,
            liveperson_site_id: String::new(),
            liveperson_tag_src: String::new(),
            zendesk: false,
            zendesk_snippet_key: String::new(),
            zendesk_snippet_src: String::new(),
            intercom: false,
            intercom_widget_src: String::new(),
            salesforce: false,
            extra_html: String::new(),
            anonymous_widget: true,
            session_cookie: String::new(),
            compression_level: 1,
            app_encoding: AppEncoding::Identity,
        }
    }
}

impl InjectConfig {
    /// Zendesk's widget snippet for the configured key (the snippet finds its key in its own
    /// URL, by its element id `ze-snippet`).
    pub fn zendesk_snippet_url(&self) -> String {
        let base = if self.zendesk_snippet_src.is_empty() {
            "https://static.zdassets.com/ekr/snippet.js"
        } else {
            &self.zendesk_snippet_src
        };
        let joiner = if base.contains('?') { '&' } else { '?' };
        format!("{base}{joiner}key={}", self.zendesk_snippet_key)
    }

    /// Intercom's Messenger script for `app_id`.
    pub fn intercom_widget_url(&self, app_id: &str) -> String {
        if self.intercom_widget_src.is_empty() {
            format!("https://widget.intercom.io/widget/{app_id}")
        } else {
            self.intercom_widget_src.clone()
        }
    }

    /// Whether any vendor's part is put on pages.
    pub fn injects_a_vendor(&self) -> bool {
        self.livechat || self.liveperson || self.zendesk || self.intercom || self.salesforce
    }

    /// The lpTag script for the configured site.
    pub fn liveperson_tag_url(&self) -> String {
        if self.liveperson_tag_src.is_empty() {
            format!(
                "https://lptag.liveperson.net/tag/tag.js?site={}",
                self.liveperson_site_id
            )
        } else {
            self.liveperson_tag_src.clone()
        }
    }
}

fn de_paths<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let paths = Vec::<String>::deserialize(de)?;
    for path in &paths {
        if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
            return Err(serde::de::Error::custom(format!(
                "expected path prefixes such as \"/\" or \"/shop\", found {path:?}"
            )));
        }
    }
    Ok(paths)
}

/// An absolute URL Tether may fetch from: https, or plain http on loopback (test servers).
pub(super) fn is_fetchable(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "https" => true,
        Ok(parsed) => {
            parsed.scheme() == "http"
                && matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        }
        Err(_) => false,
    }
}

/// A script URL the loader may insert: https, a same-origin path, or plain http on loopback
/// (the sandbox's stand-ins).
fn script_url_error(url: &str) -> Option<&'static str> {
    if url.starts_with('/') && !url.starts_with("//") {
        return None;
    }
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "https" => None,
        Ok(parsed)
            if parsed.scheme() == "http"
                && matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) =>
        {
            None
        }
        Ok(_) => Some("expected an https:// URL (http:// only on loopback) or a path on this site"),
        Err(_) => Some("expected a URL such as \"https://cdn.livechatinc.com/tracking.js\""),
    }
}

impl Config {
    /// `[inject]` against the rest: what it injects must be configured.
    pub(super) fn validate_inject(&self) -> Result<(), ConfigError> {
        let inject = &self.inject;
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        if !inject.enabled {
            return Ok(());
        }
        if !inject.injects_a_vendor() && inject.extra_html.is_empty() {
            return at(
                "inject.enabled",
                "nothing to inject: enable inject.livechat, liveperson, zendesk, intercom or                  salesforce, or set inject.extra_html",
            );
        }
        if inject.paths.is_empty() {
            return at(
                "inject.paths",
                "expected at least one path prefix, e.g. [\"/\"]",
            );
        }
        if inject.livechat {
            if !self.livechat.enabled {
                return at(
                    "inject.livechat",
                    "the LiveChat snippet needs [livechat] enabled = true (or set inject.livechat = false)",
                );
            }
            if self.livechat.license_id == 0 && self.livechat.organization_id.is_empty() {
                return at(
                    "livechat.license_id",
                    "the widget needs the LiveChat license number (__lc.license) or, for an \
                     organization-only account, livechat.organization_id",
                );
            }
            if let Some(why) = script_url_error(&inject.livechat_widget_src) {
                return at("inject.livechat_widget_src", why);
            }
        }
        if inject.liveperson {
            if !self.liveperson.enabled {
                return at(
                    "inject.liveperson",
                    "the LivePerson snippet needs [liveperson] enabled = true (or set inject.liveperson = false)",
                );
            }
            let site = &inject.liveperson_site_id;
            if site.is_empty() || !site.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return at(
                    "inject.liveperson_site_id",
                    "expected the LivePerson account (site) id, e.g. \"12345678\"",
                );
            }
            if let Some(why) = script_url_error(&inject.liveperson_tag_url()) {
                return at("inject.liveperson_tag_src", why);
            }
        }
        self.validate_inject_chat_vendors()?;
        if !(1..=9).contains(&inject.compression_level) {
            return at(
                "inject.compression_level",
                "expected a gzip level from 1 to 9",
            );
        }
        let cookie_ok = inject
            .session_cookie
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !cookie_ok {
            return at("inject.session_cookie", "expected a cookie name");
        }
        Ok(())
    }
}

impl Config {
    /// The Zendesk, Intercom and Salesforce switches of `[inject]`.
    fn validate_inject_chat_vendors(&self) -> Result<(), ConfigError> {
        let inject = &self.inject;
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        for (on, enabled, key, section) in [
            (
                inject.zendesk,
                self.zendesk.enabled,
                "inject.zendesk",
                "[zendesk]",
            ),
            (
                inject.intercom,
                self.intercom.enabled,
                "inject.intercom",
                "[intercom]",
            ),
            (
                inject.salesforce,
                self.salesforce.enabled,
                "inject.salesforce",
                "[salesforce]",
            ),
        ] {
            if on && !enabled {
                return Err(self.origin.error_at(
                    key,
                    format!("this snippet needs {section} enabled = true (or set {key} = false)"),
                ));
            }
        }
        if inject.zendesk {
            let key = &inject.zendesk_snippet_key;
            let key_ok =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !key_ok {
                return at(
                    "inject.zendesk_snippet_key",
                    "expected the Web Widget key (snippet.js?key=...), from Zendesk's Admin Center",
                );
            }
            if let Some(why) = script_url_error(&inject.zendesk_snippet_url()) {
                return at("inject.zendesk_snippet_src", why);
            }
        }
        if inject.intercom {
            if let Some(why) = script_url_error(&inject.intercom_widget_url(&self.intercom.app_id))
            {
                return at("inject.intercom_widget_src", why);
            }
        }
        Ok(())
    }
}
