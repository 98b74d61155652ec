//! One page's snippet: the loader tag with what Tether knows about the visitor, the page's CSP
//! nonce, and `extra_html`.

use super::coding::OutputCoding;
use super::csp::{Origin, Policies, ScriptUrl, Verdict};
use super::rewrite::Snippet;
use super::Settings;
use std::sync::Arc;

/// What Tether knows, without asking the app anything, about who the page is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visitor {
    /// Signed in: the page's per-user cache key (`crate::user_key`), and what each vendor's
    /// page part may know about the visitor (vendor name, JSON).
    SignedIn(String, Vec<(&'static str, String)>),
    /// Nobody: a trusted gateway said so, or the app's session cookie is absent.
    Anonymous,
    /// The loader finds out when a vendor asks for a token.
    Unknown,
}

/// A navigation that may get the snippets, as seen on the way in.
#[derive(Debug)]
pub struct Candidate {
    pub(super) coding: OutputCoding,
    pub(super) visitor: Visitor,
    pub(super) origin: Origin,
    pub(super) path: String,
}

pub struct PageSnippet {
    settings: Arc<Settings>,
    visitor: Visitor,
    origin: Origin,
}

impl PageSnippet {
    pub fn new(settings: Arc<Settings>, candidate: &Candidate) -> Self {
        Self {
            settings,
            visitor: candidate.visitor.clone(),
            origin: candidate.origin.clone(),
        }
    }
}

/// Whether the page's policies let the injected scripts run. Most pages have no policy: their
/// scripts are not even resolved.
pub fn csp_verdict(settings: &Settings, policies: &Policies, origin: &Origin) -> Verdict {
    if policies.is_empty() {
        return Verdict::Allowed { nonce: None };
    }
    let scripts: Vec<ScriptUrl> = settings
        .scripts
        .iter()
        .filter_map(|src| ScriptUrl::resolve(src, origin))
        .collect();
    policies.verdict(&scripts, origin)
}

impl Snippet for PageSnippet {
    fn markup(&self, policies: &Policies) -> Option<String> {
        let nonce = match csp_verdict(&self.settings, policies, &self.origin) {
            Verdict::Allowed { nonce } => nonce,
            Verdict::Blocked => return None,
        };
        let mut markup = String::with_capacity(128 + self.settings.extra_html.len());
        // The loader's path (the reserved prefix: unreserved characters only) and the user key
        // (hex) need no escaping; the nonce comes from the app and does.
        if let Some(loader) = &self.settings.loader {
            markup.push_str("<script src=\"");
            markup.push_str(loader);
            markup.push('"');
            match &self.visitor {
                Visitor::SignedIn(key, vendors) => {
                    markup.push_str(" data-tether-user=\"");
                    markup.push_str(key);
                    markup.push('"');
                    for (vendor, data) in vendors {
                        markup.push_str(" data-tether-");
                        markup.push_str(vendor);
                        markup.push_str("=\"");
                        markup.push_str(&attribute(data));
                        markup.push('"');
                    }
                }
                Visitor::Anonymous => markup.push_str(" data-tether-user=\"-\""),
                Visitor::Unknown => {}
            }
            if let Some(nonce) = &nonce {
                markup.push_str(" nonce=\"");
                markup.push_str(&attribute(nonce));
                markup.push('"');
            }
            markup.push_str("></script>");
        }
        markup.push_str(&self.settings.extra_html);
        Some(markup)
    }
}

/// Text safe inside a double-quoted attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The one warning a process logs about policies that block the snippet: what to allow.
pub fn warn_csp(settings: &Settings, candidate: &Candidate) {
    let vendors: Vec<String> = settings
        .scripts
        .iter()
        .filter(|src| !src.starts_with('/') || src.starts_with("//"))
        .filter_map(|src| url::Url::parse(src).ok())
        .map(|url| url.origin().ascii_serialization())
        .collect();
    let vendors = if vendors.is_empty() {
        String::new()
    } else {
        format!(" and {}", vendors.join(" "))
    };
    tracing::warn!(
        path = %candidate.path,
        "a page's Content-Security-Policy would block Tether's injected script, so pages like it \
         are passed without the chat widget (counted in tether_inject_skipped_total{{reason=\"csp\"}}). \
         To have the widget there, let script-src allow 'self' (or give the page a nonce: Tether \
         uses it){vendors}; the vendors' widgets also load frames, styles and connections from \
         their own hosts (see their CSP guides). Tether never changes an app's policy. \
         This warning is logged once."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippet(visitor: Visitor) -> PageSnippet {
        let settings = Settings::for_test("/.tether/inject/loader.js", "<!-- extra -->");
        PageSnippet {
            settings: Arc::new(settings),
            visitor,
            origin: Origin::new("https", "example.com"),
        }
    }

    #[test]
    fn the_tag_says_what_tether_knows() {
        let none = Policies::default();
        assert_eq!(
            snippet(Visitor::Unknown).markup(&none).unwrap(),
            "<script src=\"/.tether/inject/loader.js\"></script><!-- extra -->"
        );
        assert_eq!(
            snippet(Visitor::Anonymous).markup(&none).unwrap(),
            "<script src=\"/.tether/inject/loader.js\" data-tether-user=\"-\"></script><!-- extra -->"
        );
        let mut nonce = Policies::default();
        nonce.add("script-src 'nonce-a\"b'");
        assert_eq!(
            snippet(Visitor::SignedIn(
                "k1".into(),
                vec![("liveperson", r#"{"sub":"a<b"}"#.into())]
            ))
            .markup(&nonce)
            .unwrap(),
            "<script src=\"/.tether/inject/loader.js\" data-tether-user=\"k1\" \
             data-tether-liveperson=\"{&quot;sub&quot;:&quot;a&lt;b&quot;}\" nonce=\"a&quot;b\"></script><!-- extra -->"
        );
        let mut blocked = Policies::default();
        blocked.add("script-src 'none'");
        assert!(snippet(Visitor::Unknown).markup(&blocked).is_none());
    }
}
