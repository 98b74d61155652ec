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

/// The ways an app may read a path. Servers differ in what they do and in which order: decode
/// percent-escapes once or more (double encoding), before or after dropping `;` parameters or
/// not at all, drop parameters or keep them, fold `\` to `/` or not; all of them merge slashes
/// and remove dot segments. Decoding can make new slashes and dots, so an app that removes dot
/// segments before decoding reads `/%25%2fx/../.tether` as `/.tether` while one that decodes
/// first does not. Every combination is tried: this runs only for paths `needs_normalising`.
fn readings(path: &str) -> impl Iterator<Item = String> {
    let mut bases = decodings(path);
    bases.extend(decodings(&strip_parameters(path)));
    bases.into_iter().flat_map(|base| {
        [(true, true), (true, false), (false, true), (false, false)]
            .map(|(parameters, backslashes)| normalise(&base, parameters, backslashes))
    })
}

/// The path as it is and percent-decoded up to three times (while decoding changes it).
fn decodings(path: &str) -> Vec<String> {
    let mut out = vec![path.to_string()];
    while out.len() < 4 {
        let next = percent_decode(out.last().expect("never empty"));
        if out.contains(&next) {
            break;
        }
        out.push(next);
    }
    out
}

fn strip_parameters(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// Merges slashes and removes dot segments; optionally drops `;` parameters from each segment
/// and folds `\` to `/` first.
fn normalise(path: &str, drop_parameters: bool, fold_backslashes: bool) -> String {
    let folded;
    let path = if fold_backslashes {
        folded = path.replace('\\', "/");
        &folded
    } else {
        path
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        let segment = if drop_parameters {
            segment.split(';').next().unwrap_or("")
        } else {
            segment
        };
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// One round of percent-decoding, as an app would do it (malformed escapes stay as they are).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
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
            "//.tether/..;/x/",
        ] {
            assert_eq!(classify(P, path), Route::Disguised, "{path}");
        }
    }
}
