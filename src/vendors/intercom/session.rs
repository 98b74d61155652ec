//! Whose Messenger session this browser holds, and clearing it when that user went away or
//! changed. Intercom's cookie (`intercom-session-<app_id>`) keeps the last user's conversations
//! in the browser for a week unless the page shuts the Messenger down; Intercom's own server
//! library also expires it from the server, and so does Tether, on the answer the page loader
//! fetches before the Messenger boots. To know whose session it is, Tether keeps its own
//! cookie (`tether_intercom`: the user's page key, a keyed hash, HttpOnly) beside it.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// Tether's cookie naming the user whose Messenger session the browser holds.
const MARKER: &str = "tether_intercom";
/// A week, like Intercom's own session cookie.
const MARKER_MAX_AGE: u64 = 7 * 86_400;

pub struct SessionCookies {
    /// `intercom-session-<app_id>`.
    session: String,
    /// `; Domain=.<domain>` when the Messenger sets its cookies for a parent domain.
    domain: Option<String>,
}

impl SessionCookies {
    pub fn new(app_id: &str, cookie_domain: &str) -> Self {
        Self {
            session: format!("intercom-session-{app_id}"),
            domain: (!cookie_domain.is_empty()).then(|| format!(".{cookie_domain}")),
        }
    }

    /// Adds to `answer` what keeps the Messenger's session with its user: for `now` (the
    /// signed-in user's page key, or None for nobody) against the user `request`'s marker
    /// names. True when the session cookie was cleared.
    pub fn follow(&self, request: &HeaderMap, now: Option<&str>, answer: &mut HeaderMap) -> bool {
        let marked = cookie(request, MARKER);
        let had_session = cookie(request, &self.session).is_some();
        let changed = match (marked.as_deref(), now) {
            (Some(before), Some(now)) => before != now,
            (Some(_), None) => true,
            // No marker: a session from before Tether knew it, or none; nobody is signed in now.
            (None, None) => had_session,
            (None, Some(_)) => had_session,
        };
        if changed {
            for value in self.expired_session() {
                answer.append(SET_COOKIE, value);
            }
        }
        match now {
            Some(now) if marked.as_deref() != Some(now) => answer.append(
                SET_COOKIE,
                header(&format!(
                    "{MARKER}={now}; Path=/; Max-Age={MARKER_MAX_AGE}; Secure; HttpOnly; SameSite=Lax"
                )),
            ),
            None if marked.is_some() => answer.append(
                SET_COOKIE,
                header(&format!("{MARKER}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")),
            ),
            _ => false,
        };
        changed
    }

    /// `Set-Cookie`s that expire the Messenger's session cookie: for the page's host, and for
    /// the configured parent domain.
    fn expired_session(&self) -> Vec<HeaderValue> {
        let expired = format!(
            "{}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0",
            self.session
        );
        let mut values = vec![header(&expired)];
        if let Some(domain) = &self.domain {
            values.push(header(&format!("{expired}; Domain={domain}")));
        }
        values
    }
}

fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("cookie names and page keys are header-safe")
}

/// The value of cookie `name` in the request's Cookie headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cookies: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookies).unwrap());
        headers
    }

    fn set_cookies(answer: &HeaderMap) -> Vec<String> {
        answer
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_session_goes_when_its_user_goes_or_changes() {
        let cookies = SessionCookies::new("abc123", "example.com");
        let session = "intercom-session-abc123=s; tether_intercom=alice";
        // The same user: nothing cleared, nothing re-set.
        let mut answer = HeaderMap::new();
        assert!(!cookies.follow(&request(session), Some("alice"), &mut answer));
        assert!(set_cookies(&answer).is_empty());
        // Another user: the session expires (host and parent domain), the marker moves.
        let mut answer = HeaderMap::new();
        assert!(cookies.follow(&request(session), Some("bob"), &mut answer));
        let set = set_cookies(&answer);
        assert!(set[0].starts_with("intercom-session-abc123=; Path=/; Expires=Thu, 01 Jan 1970"));
        assert!(set[1].ends_with("; Domain=.example.com"));
        assert!(set[2].starts_with("tether_intercom=bob; "));
        // Nobody: the session expires and the marker goes.
        let mut answer = HeaderMap::new();
        assert!(cookies.follow(&request(session), None, &mut answer));
        assert!(set_cookies(&answer)
            .last()
            .unwrap()
            .starts_with("tether_intercom=; Path=/; Max-Age=0"));
        // A session nobody marked, for a signed-in user: cleared (whose it is is unknown).
        let mut answer = HeaderMap::new();
        assert!(cookies.follow(
            &request("intercom-session-abc123=s"),
            Some("bob"),
            &mut answer
        ));
        // A first visit: the marker is set, nothing cleared.
        let mut answer = HeaderMap::new();
        assert!(!cookies.follow(&HeaderMap::new(), Some("bob"), &mut answer));
        assert_eq!(set_cookies(&answer).len(), 1);
    }
}
