//! Deciding whether a request belongs to Tether (the reserved prefix) or to the app.
//!
//! The prefix is matched on the raw path, exactly. A path that only reaches the prefix after
//! percent-decoding, dot-segment removal, slash merging, backslash folding, dropping `;`
//! path parameters (Tomcat, Jetty) or case folding (IIS) (`/%2Etether/`, `/x/../.tether/`,
//! `//.tether/`, `/.tether;x/`, `/.TETHER/`) is refused: some app or framework behind Tether could
//! normalise it into the prefix, so neither side may serve it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Forward to the app.
    App,
    /// Tether's own endpoint; the path below the prefix ("" or "/...").
    Reserved(&'a str),
    /// A disguised spelling of the prefix: refuse.
    Disguised,
}

pub fn classify<'a>(prefix: &str, path: &'a str) -> Route<'a> {
    if let Some(rest) = path.strip_prefix(prefix) {
        if rest.is_empty() || rest.starts_with('/') {
            return Route::Reserved(rest);
        }
    }
    let disguised = if needs_normalising(path) {
        readings(path).any(|reading| names_prefix(&reading, prefix))
    } else {
        names_prefix(path, prefix) // only its case can differ
    };
    if disguised {
        Route::Disguised
    } else {
        Route::App
    }
}

/// Cheap pre-check: only paths with escapes, dot segments, doubled or back slashes or path
/// parameters need the slow normalisation.
fn needs_normalising(path: &str) -> bool {
    path.contains('%')
        || path.contains("/.")
        || path.contains("//")
        || path.contains('\\')
        || path.contains(';')
}

/// Whether the normalised path names the prefix, in any case.
fn names_prefix(path: &str, prefix: &str) -> bool {
    match (path.get(..prefix.len()), path.get(prefix.len()..)) {
        (Some(head), Some(rest)) => {
            head.eq_ignore_ascii_case(prefix) && (rest.is_empty() || rest.starts_with('/'))
        }
        _ => false,
    }
}

/// The ways an app may read a path: as it is, or percent-decoded once, twice or three times
/// (double encoding), each then with `\` folded to `/`, slashes merged, `;` parameters dropped
/// and dot segments removed. Every depth counts, because decoding can make new slashes: an app
/// that removes dot segments before decoding reads `/%25%2fx/../.tether` as `/.tether`, one that
/// decodes first does not.
fn readings(path: &str) -> impl Iterator<Item = String> {
    let mut decoded = path.to_string();
    let mut depth = 0;
    std::iter::from_fn(move || {
        if depth > 3 {
            return None;
        }
        if depth > 0 {
            let next = percent_decode(&decoded);
            if next == decoded {
                return None;
            }
            decoded = next;
        }
        depth += 1;
        Some(normalise(&decoded))
    })
}

/// Folds `\` to `/`, merges slashes, drops `;` parameters from each segment and removes dot
/// segments.
fn normalise(path: &str) -> String {
    let decoded = path.replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    const P: &str = "/.tether";

    #[test]
    fn exact_prefix_is_reserved() {
        assert_eq!(classify(P, "/.tether"), Route::Reserved(""));
        assert_eq!(
            classify(P, "/.tether/livechat/token"),
            Route::Reserved("/livechat/token")
        );
        assert_eq!(classify(P, "/.tether/../etc"), Route::Reserved("/../etc"));
    }

    #[test]
    fn app_paths_are_forwarded() {
        for path in [
            "/",
            "/.tetherx",
            "/a/.tether",
            "/%41pp",
            "/.well-known/x",
            "/a//b",
            "/About;jsessionid=1",
            "/.TETHERx",
            "/a;b/.tether",
        ] {
            assert_eq!(classify(P, path), Route::App, "{path}");
        }
    }

    #[test]
    fn disguises_are_refused() {
        for path in [
            "/%2Etether/x",
            "/%2etether",
            "/.%74ether/",
            "/x/../.tether/",
            "/./.tether",
            "//.tether/",
            "\\.tether/x",
            "/%252Etether/x",
            "/%2F.tether",
            "/.tether;x/livechat/token",
            "/.tether;/x",
            "/x/..;/.tether/",
            "/.TETHER/livechat/token",
            "/.Tether",
            "/%2ETETHER/x",
            "/%25%2fx/../.tether",
            "/a%2f..%2f.tether",
        ] {
            assert_eq!(classify(P, path), Route::Disguised, "{path}");
        }
    }
}
