//! One page's snippet: the loader tag with what Tether knows about the visitor, the page's CSP
//! nonce, and `extra_html`.

use super::coding::OutputCoding;
use super::csp::{Origin, Policies, ScriptUrl, Verdict};
use super::rewrite::Snippet;
use super::Settings;

/// What Tether knows, without asking the app anything, about who the page is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visitor {
    /// Signed in, with the page's per-user cache key (`crate::user_key`).
    SignedIn(String),
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
    loader: Option<String>,
    scripts: Vec<ScriptUrl>,
    extra_html: String,
    visitor: Visitor,
    origin: Origin,
}

impl PageSnippet {
    pub fn new(settings: &Settings, candidate: &Candidate) -> Self {
        Self {
            loader: settings.loader.clone(),
            scripts: settings
                .scripts
                .iter()
                .filter_map(|src| ScriptUrl::resolve(src, &candidate.origin))
                .collect(),
            extra_html: settings.extra_html.clone(),
            visitor: candidate.visitor.clone(),
            origin: candidate.origin.clone(),
        }
    }
}

impl Snippet for PageSnippet {
    fn markup(&self, policies: &Policies) -> Option<String> {
        let nonce = match policies.verdict(&self.scripts, &self.origin) {
            Verdict::Allowed { nonce } => nonce,
            Verdict::Blocked => return None,
        };
        let mut markup = String::new();
        if let Some(loader) = &self.loader {
            markup.push_str("<script src=\"");
            markup.push_str(&attribute(loader));
            markup.push('"');
            match &self.visitor {
                Visitor::SignedIn(key) => {
                    markup.push_str(" data-tether-user=\"");
                    markup.push_str(&attribute(key));
                    markup.push('"');
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
        markup.push_str(&self.extra_html);
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
        let origin = Origin::new("https", "example.com");
        PageSnippet {
            loader: Some("/.tether/inject/loader.js".into()),
            scripts: vec![ScriptUrl::resolve("/.tether/inject/loader.js", &origin).unwrap()],
            extra_html: "<!-- extra -->".into(),
            visitor,
            origin,
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
            snippet(Visitor::SignedIn("k1".into())).markup(&nonce).unwrap(),
            "<script src=\"/.tether/inject/loader.js\" data-tether-user=\"k1\" nonce=\"a&quot;b\"></script><!-- extra -->"
        );
        let mut blocked = Policies::default();
        blocked.add("script-src 'none'");
        assert!(snippet(Visitor::Unknown).markup(&blocked).is_none());
    }
}
