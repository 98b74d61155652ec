//! Where codes and popup answers may be sent (`docs/vendors/liveperson.md`, "The popup
//! window"): the registered URIs, exactly; and, opt-in for connectors created before May 2018,
//! LivePerson's window URL by a registered prefix, because those connectors put per-visitor
//! parameters in it (and redeem its codes with `https://liveperson.net`). LivePerson does not
//! publish that URL: the first refused `redirect_uri` is logged, so an operator can learn it.

use crate::config::{LivePersonConfig, RedirectUris, LIVEPERSON_REDIRECT};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// How a `redirect_uri` was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// It is registered, exactly.
    Registered,
    /// It is LivePerson's window URL, by a registered prefix (legacy connectors).
    LegacyWindow,
}

pub struct Redirects {
    registered: RedirectUris,
    prefixes: Vec<String>,
    refusal_logged: AtomicBool,
}

impl Redirects {
    pub fn new(config: &LivePersonConfig) -> Self {
        Self {
            registered: config.redirect_uris.clone(),
            prefixes: config.redirect_uri_prefixes.clone(),
            refusal_logged: AtomicBool::new(false),
        }
    }

    /// Whether `uri` may be sent a code or a token; a refusal is logged once per process.
    pub fn check(&self, uri: &str) -> Option<Allowed> {
        if self.registered.allows(uri) {
            return Some(Allowed::Registered);
        }
        if self.prefixes.iter().any(|prefix| under_prefix(uri, prefix)) {
            return Some(Allowed::LegacyWindow);
        }
        if !self.refusal_logged.swap(true, Relaxed) {
            tracing::warn!(
                redirect_uri = %uri,
                "LivePerson: a redirect_uri that is not registered was refused (logged once). If it \
                 is LivePerson's window with a legacy connector, register its prefix in \
                 liveperson.redirect_uri_prefixes"
            );
        }
        None
    }

    /// Where a code goes when the caller names none.
    pub fn default_uri(&self) -> &str {
        self.registered.default_uri()
    }

    /// The only registered URI, when there is exactly one.
    pub fn only(&self) -> Option<&str> {
        self.registered.only()
    }
}

/// `uri` is the prefix itself, or continues it with a query, more query parameters, or (for a
/// prefix ending in `/`) anything: never another host or a longer path segment.
fn under_prefix(uri: &str, prefix: &str) -> bool {
    let Some(rest) = uri.strip_prefix(prefix) else {
        return false;
    };
    !uri.contains('#')
        && (rest.is_empty() || prefix.ends_with(['/', '?', '&']) || rest.starts_with(['?', '&']))
}

/// The `redirect_uri` a legacy connector sends at the token endpoint for a window code.
pub fn legacy_exchange_uri() -> &'static str {
    LIVEPERSON_REDIRECT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_the_window_with_its_parameters_only() {
        let prefix = "https://lp.example/le_unauth/window";
        assert!(under_prefix(prefix, prefix));
        assert!(under_prefix(&format!("{prefix}?visitor=1&x=2"), prefix));
        assert!(!under_prefix(&format!("{prefix}s"), prefix));
        assert!(!under_prefix(&format!("{prefix}/../../evil"), prefix));
        assert!(!under_prefix(
            "https://lp.example.evil.com/",
            "https://lp.example"
        ));
        assert!(!under_prefix(&format!("{prefix}?x#frag"), prefix));
        assert!(under_prefix(
            "https://lp.example/win/anything?x=1",
            "https://lp.example/win/"
        ));
    }
}
