//! The properties Tether's parsers must keep, each a function that panics when one is broken.
//! `tests/properties/main.rs` drives them with proptest in `cargo test`; the cargo-fuzz targets in
//! `tests/fuzz` drive the same functions with coverage-guided input (`scripts/fuzz.sh`).
//!
//! The oracles here (how an app normalises a path, how a framework folds a header name) are
//! written independently of Tether's code on purpose: a shared bug would hide itself.

// Each fuzz target includes this file and uses one or two of the checks.
#![allow(dead_code)]

use http::header::{HeaderMap, HeaderName, HeaderValue};
use tether::testing::parsers::{classify, Route};
use tether::testing::parsers::{strip_hop_by_hop, IdentityHeaders};
use tether::testing::parsers::{AmbiguousRequests, Follower};

pub const PREFIX: &str = "/.tether";

// ---- The reserved-prefix classifier -------------------------------------------------------

fn decode_once(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// RFC 3986 section 5.2.4 over `/`-separated segments, empty segments merged.
fn remove_dots(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    for segment in path.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = Vec::new();
    for segment in kept {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    out
}

fn strip_params(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(segment.split(|&b| b == b';').next().unwrap_or(b""));
    }
    out
}

fn backslashes(path: &[u8]) -> Vec<u8> {
    path.iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect()
}

/// What different servers and frameworks behind Tether may make of a path.
fn app_readings(path: &str) -> Vec<Vec<u8>> {
    let raw = path.as_bytes();
    let tomcat = remove_dots(&decode_once(&strip_params(raw)));
    let decode_first = remove_dots(&strip_params(&decode_once(raw)));
    let double = remove_dots(&strip_params(&decode_once(&decode_once(raw))));
    let windows = remove_dots(&backslashes(&decode_once(raw)));
    let windows_double = remove_dots(&backslashes(&decode_once(&decode_once(raw))));
    let merge_only = remove_dots(raw);
    vec![
        tomcat,
        decode_first,
        double,
        windows,
        windows_double,
        merge_only,
    ]
}

fn names_prefix(path: &[u8]) -> bool {
    let prefix = PREFIX.as_bytes();
    path.len() >= prefix.len()
        && path[..prefix.len()].eq_ignore_ascii_case(prefix)
        && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// A path is Tether's exactly when it starts with the prefix; any path an app could read as the
/// prefix is never forwarded.
pub fn check_reserved(path: &str) {
    let route = classify(PREFIX, path);
    if path == PREFIX || path.starts_with("/.tether/") {
        assert!(matches!(route, Route::Reserved(_)), "{path:?}: {route:?}");
        return;
    }
    if let Some(reading) = app_readings(path).iter().find(|r| names_prefix(r)) {
        assert_eq!(
            route,
            Route::Disguised,
            "{path:?} is forwarded, but an app may read it as {:?}",
            String::from_utf8_lossy(reading)
        );
    }
}

// ---- Identity-header stripping -------------------------------------------------------------

pub const IDENTITY: [&str; 3] = [
    "x-authenticated-user",
    "x-authenticated-email",
    "x-authenticated-name",
];
pub const ALWAYS: [&str; 1] = ["x-internal-role"];

/// CGI, WSGI, Rack and PHP read `_` and `.` as `-`, in any case.
fn folds_to_protected(name: &str) -> bool {
    let folded: String = name
        .chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    IDENTITY.contains(&folded.as_str()) || ALWAYS.contains(&folded.as_str())
}

/// Runs the proxy's header policy over client headers (`Connection` nominations included) and
/// checks that no protected header survives in any spelling; from a trusted gateway only the
/// identity headers spelled exactly as configured, with one value, do.
pub fn check_identity_strip(fields: &[(String, String)], trusted_gateway: bool) {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let before = headers.clone();
    let names = |list: &[&'static str]| -> Vec<HeaderName> {
        list.iter().map(|n| HeaderName::from_static(n)).collect()
    };
    let policy = IdentityHeaders::new(&names(&IDENTITY), &names(&ALWAYS));
    policy.strip(&mut headers, trusted_gateway);
    strip_hop_by_hop(&mut headers);
    for name in headers.keys() {
        if !folds_to_protected(name.as_str()) {
            continue;
        }
        let allowed = trusted_gateway
            && IDENTITY.contains(&name.as_str())
            && before.get_all(name).iter().count() == 1
            && !nominated(&before, name);
        assert!(allowed, "{name} survived: {before:?} -> {headers:?}");
    }
}

fn nominated(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(http::header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
        })
    })
}

// ---- Request framing -----------------------------------------------------------------------

/// However the client's bytes are cut into reads, the follower finds the same heads and the same
/// ambiguous request.
pub fn check_framing(stream: &[u8], cuts: &[usize]) {
    let follow = |pieces: &[&[u8]]| {
        let found = AmbiguousRequests::new();
        let mut follower = Follower::new(64 << 10, 100, found.clone());
        for piece in pieces {
            follower.feed(piece);
        }
        (follower.heads(), found.first())
    };
    let whole = follow(&[stream]);
    let mut pieces = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let cut = at + cut % (stream.len() - at + 1);
        pieces.push(&stream[at..cut]);
        at = cut;
    }
    pieces.push(&stream[at..]);
    assert_eq!(
        follow(&pieces),
        whole,
        "{:?}",
        String::from_utf8_lossy(stream)
    );
}

// ---- Token and code endpoint parameters ----------------------------------------------------

/// Form and JSON bodies never panic; a parameter is either absent or non-empty, and PKCE is
/// either refused or a valid challenge.
pub fn check_params(body: &[u8]) {
    use tether::testing::parsers::PkceMethod;
    for parsed in [
        tether::testing::parsers::from_form(body),
        tether::testing::parsers::from_json(body),
    ] {
        let Ok(params) = parsed else { continue };
        for name in [
            "client_id",
            "client_secret",
            "code",
            "code_verifier",
            "grant_type",
        ] {
            assert!(params.get(name).is_none_or(|v| !v.is_empty()));
        }
        if let Ok(Some((_, challenge))) = params.pkce(PkceMethod::S256) {
            assert!((43..=128).contains(&challenge.len()), "{challenge:?}");
        }
    }
}

// ---- The accounts server's answers ---------------------------------------------------------

/// Any answer is read without panicking; only a 2xx without an exception is a token; and an error
/// never carries a token the body held (it would reach the log).
pub fn check_accounts_answer(status: u16, body: &[u8]) {
    let read = tether::testing::parsers::read_customer_token_answer(status, body);
    match &read {
        Ok(_) => assert!((200..300).contains(&status), "{status} read as a token"),
        Err(message) => {
            let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
                return;
            };
            let own_words: Vec<&str> = [
                "oauth_exception",
                "identity_exception",
                "exception_description",
            ]
            .iter()
            .filter_map(|k| fields.get(*k).and_then(|v| v.as_str()))
            .collect();
            for key in ["access_token", "refresh_token"] {
                let Some(secret) = fields.get(key).map(|v| v.to_string()) else {
                    continue;
                };
                let secret = secret.trim_matches('"');
                if secret.len() >= 6 && !own_words.iter().any(|w| w.contains(secret)) {
                    assert!(!message.contains(secret), "{key} in {message:?}");
                }
            }
        }
    }
}

/// A cookie secret taken from `Set-Cookie` is always a valid cookie value.
pub fn check_cookie_secret(set_cookies: &[&[u8]]) {
    use tether::testing::parsers::{cookie_secret, is_cookie_octet};
    if let Some(secret) = cookie_secret(set_cookies.iter().copied()) {
        assert!(
            !secret.is_empty() && secret.bytes().all(is_cookie_octet),
            "{secret:?}"
        );
    }
}

// ---- The configuration loader --------------------------------------------------------------

/// Any text and environment is loaded or refused with a position inside the text; `${NAME}` is
/// replaced by exactly the environment's value.
pub fn check_config(text: &str, env: &[(String, String)]) {
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match tether::config::parse_str(text, "fuzz.toml", &lookup) {
        Ok(_) => {}
        Err(err) => {
            let shown = err.to_string();
            assert!(shown.starts_with("fuzz.toml"), "{shown}");
            if let Some((line, column)) = err.position {
                let lines: Vec<&str> = text.split('\n').collect();
                assert!(line >= 1 && line <= lines.len().max(1), "{shown}");
                let width = lines.get(line - 1).map_or(0, |l| l.chars().count());
                assert!(column >= 1 && column <= width + 1, "{shown}");
            }
        }
    }
}

/// `${A}` becomes exactly the environment's value (never expanded again), `$${` a literal `${`.
pub fn check_substitution(value: &str) {
    let text = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n\
                [liveperson]\nencryption_kid = \"a$${A}b${A}c\"\n";
    let lookup = |name: &str| (name == "A").then(|| value.to_string());
    match tether::config::parse_str(text, "fuzz.toml", &lookup) {
        Ok(config) => assert_eq!(
            config.liveperson.encryption_kid,
            format!("a${{A}}b{value}c")
        ),
        Err(err) => panic!("{value:?}: {err}"),
    }
}

// ---- Fuzz inputs ---------------------------------------------------------------------------

/// The fuzz targets' names (`tests/fuzz/fuzz_targets/NAME.rs`, seeds in `tests/fuzz/corpus/NAME`).
pub const TARGETS: [&str; 6] = [
    "reserved_prefix",
    "identity_headers",
    "request_framing",
    "oauth_params",
    "accounts_answer",
    "config_load",
];

/// Decodes a fuzz input for `target` and checks its property. The fuzz targets call this; the
/// proptest suite replays the committed corpora (seeds and the crashes fuzzing found) through it.
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "reserved_prefix" => check_reserved(&format!("/{}", String::from_utf8_lossy(data))),
        "identity_headers" => {
            // The first byte: from a trusted gateway; then one `name:value` field per line.
            let Some((&first, rest)) = data.split_first() else {
                return;
            };
            let text = String::from_utf8_lossy(rest);
            let fields: Vec<(String, String)> = text
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.to_string(), value.trim().to_string()))
                .collect();
            check_identity_strip(&fields, first & 1 == 1);
        }
        "request_framing" => {
            // The first byte: how many cut points follow (one byte each); then the stream.
            let Some((&count, rest)) = data.split_first() else {
                return;
            };
            let count = usize::from(count % 16).min(rest.len());
            let (cuts, stream) = rest.split_at(count);
            let cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c)).collect();
            check_framing(stream, &cuts);
        }
        "oauth_params" => check_params(data),
        "accounts_answer" => {
            // Two bytes of status, then the body; its lines are also read as Set-Cookie fields.
            if data.len() < 2 {
                return;
            }
            let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
            let body = &data[2..];
            check_accounts_answer(status, body);
            let fields: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
            check_cookie_secret(&fields);
        }
        "config_load" => {
            // TOML text, a NUL byte, then the environment as NAME=value lines.
            let text = String::from_utf8_lossy(data);
            let (toml, env) = text.split_once('\0').unwrap_or((&text, ""));
            let env: Vec<(String, String)> = env
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            check_config(toml, &env);
            if let Some((_, value)) = env.first() {
                check_substitution(value);
            }
        }
        other => panic!("no fuzz target {other}"),
    }
}
