//! Keeping secrets out of logs. Anything that may hold a credential is wrapped or formatted
//! through here, so that no log level and no `Debug` impl can print it.

use http::{HeaderMap, HeaderName};
use std::fmt;

const REDACTED: &str = "[redacted]";

/// A secret value (client secret, token) whose `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        String::deserialize(de).map(Secret)
    }
}

/// Headers whose values are credentials.
pub fn is_sensitive_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key"
    )
}

/// Formats a header map with every credential value replaced by `[redacted]`.
pub struct RedactedHeaders<'a>(pub &'a HeaderMap);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if is_sensitive_header(name) {
                map.entry(name, &REDACTED);
            } else {
                map.entry(name, &value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "session=hunter2".parse().unwrap());
        headers.insert("authorization", "Bearer hunter2".parse().unwrap());
        headers.insert("accept", "text/html".parse().unwrap());
        let shown = format!("{:?}", RedactedHeaders(&headers));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("text/html"), "{shown}");
    }
}
