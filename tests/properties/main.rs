//! The parser properties of `checks.rs`, driven by proptest (seconds in `cargo test`; the same
//! checks run for hours under cargo-fuzz with `scripts/fuzz.sh`).

mod checks;
mod differential;

use checks::*;
use proptest::prelude::*;

/// Paths built from pieces apps treat specially, around the prefix.
fn path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("//".to_string()),
        Just("\\".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("/./".to_string()),
        Just("/../".to_string()),
        Just("x/../".to_string()),
        Just(";".to_string()),
        Just(";jsessionid=1".to_string()),
        Just("..;".to_string()),
        Just(".tether".to_string()),
        Just(".TeThEr".to_string()),
        Just("%2e".to_string()),
        Just("%2E".to_string()),
        Just("%2f".to_string()),
        Just("%5c".to_string()),
        Just("%25".to_string()),
        Just("%252e".to_string()),
        Just("%74".to_string()),
        Just("%3b".to_string()),
        Just("tether".to_string()),
        Just("livechat/token".to_string()),
        "[a-zA-Z0-9._~-]{0,4}",
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|pieces| format!("/{}", pieces.concat()))
}

/// A header name close to a protected one: case, `_` or `.` for `-`, or something else.
fn header_name() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just("x-authenticated-user"),
        Just("x-authenticated-email"),
        Just("x-authenticated-name"),
        Just("x-internal-role"),
        Just("connection"),
        Just("x-other"),
        Just("cookie"),
    ];
    (base, proptest::collection::vec(0u8..4, 21)).prop_map(|(base, changes)| {
        base.chars()
            .zip(changes.iter().cycle())
            .map(|(c, change)| match (c, change) {
                ('-', 1) => '_',
                ('-', 2) => '.',
                (c, 3) => c.to_ascii_uppercase(),
                (c, _) => c,
            })
            .collect()
    })
}

fn header_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let value = prop_oneof![
        Just("alice".to_string()),
        header_name(),
        (header_name(), header_name()).prop_map(|(a, b)| format!("{a}, {b}")),
    ];
    proptest::collection::vec((header_name(), value), 0..8)
}

/// Request streams made of heads with every framing, bodies that look like heads included.
fn request_stream() -> impl Strategy<Value = Vec<u8>> {
    let request = prop_oneof![
        Just("GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        "[a-zA-Z\r\n: ]{0,30}".prop_map(|body| format!(
            "POST /l HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        "[a-zA-Z\r\n: ]{1,30}".prop_map(|data| format!(
            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x};e=1\r\n{data}\r\n0\r\nT: 1\r\n\r\n",
            data.len()
        )),
        Just("POST /s HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_string()),
        Just("POST /s HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n".to_string()),
    ];
    proptest::collection::vec(request, 1..6).prop_map(|r| r.concat().into_bytes())
}

/// Client streams for the engines' differential check: every framing, pipelining, heads the
/// engine leaves to hyper, smuggling attempts and malformed heads.
fn client_stream() -> impl Strategy<Value = Vec<u8>> {
    let request = prop_oneof![
        Just("GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        Just("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        Just("GET /q?a=%2F&b=c HTTP/1.1\r\nHost: a\r\nConnection: x-hop, keep-alive\r\nX-Hop: 1\r\nTE: trailers\r\n\r\n".to_string()),
        Just("GET / HTTP/1.1\r\nHost: a\r\nX-Authenticated-User: mallory\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=1.2.3.4\r\n\r\n".to_string()),
        Just("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_string()),
        Just("GET / HTTP/1.0\r\n\r\n".to_string()),
        Just("GET http://b/abs HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        Just("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        Just("GET /g HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc".to_string()),
        Just("GET /g HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_string()),
        Just("HEAD /h HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc".to_string()),
        Just("HEAD /h HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_string()),
        Just("GET /{x}|^`\"<> HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        Just("POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi".to_string()),
        Just("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_string()),
        "[a-zA-Z\r\n: ]{0,30}".prop_map(|body| format!(
            "POST /l HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        "[a-zA-Z\r\n: ]{1,30}".prop_map(|data| format!(
            "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{:x};e=1\r\n{data}\r\n0\r\nT: 1\r\n\r\n",
            data.len()
        )),
        Just("POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_string()),
        Just("POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_string()),
        Just("POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n".to_string()),
        Just("POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n".to_string()),
        Just("POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc".to_string()),
        Just("POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n".to_string()),
        Just("GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n".to_string()),
        Just("GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_string()),
        Just("GET / HTTP/1.1\nHost: a\n\n".to_string()),
        Just("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_string()),
        Just("GET / HTTP/1.1\r\n\r\n".to_string()),
        Just("GET /.tether/healthz HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        // Tether's own endpoints: bodies the engine reads (or leaves to hyper), a HEAD, a
        // disguised prefix, a close.
        "[a-zA-Z\r\n: ]{0,30}".prop_map(|body| format!(
            "POST /.tether/x HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        Just("POST /.tether/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_string()),
        Just("HEAD /.tether/jwks.json?x=1 HTTP/1.1\r\nHost: a\r\nX-Authenticated-User: mallory\r\n\r\n".to_string()),
        Just("GET /.tether HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_string()),
        Just("GET /%2Etether/x HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        "[ -~]{0,20}\r\n".prop_map(|line| line),
    ];
    proptest::collection::vec(request, 1..5).prop_map(|r| r.concat().into_bytes())
}

/// Every committed fuzz input (the seeds, and each crash fuzzing found, kept as a seed once fixed)
/// still keeps its target's property.
#[test]
fn fuzz_corpora_keep_their_properties() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    for target in TARGETS {
        let inputs = std::fs::read_dir(corpus.join(target)).expect("a seed corpus per target");
        let mut count = 0;
        for input in inputs {
            let path = input.unwrap().path();
            run_target(target, &std::fs::read(&path).unwrap());
            count += 1;
        }
        assert!(count > 0, "{target} has no seeds");
    }
}

/// The committed inputs of the `engines` fuzz target (its seeds, and any disagreement fuzzing
/// found, kept once fixed): the engines still agree on each.
#[test]
fn engines_corpus_keeps_the_engines_agreeing() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/engines");
    let mut count = 0;
    for input in std::fs::read_dir(corpus).expect("the engines target has a seed corpus") {
        let data = std::fs::read(input.unwrap().path()).unwrap();
        let Some((&pick, client)) = data.split_first() else {
            continue;
        };
        let (reply, close) = differential::REPLIES[usize::from(pick) % differential::REPLIES.len()];
        differential::check_engines_agree(client, reply, close);
        count += 1;
    }
    assert!(count > 0, "the engines corpus is empty");
}

proptest! {
    // Each case is two real exchanges through two Tethers; a stalled one lasts a timeout. The
    // fuzz target `engines` runs the same check for as long as it is given.
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_two_http1_engines_agree(client in client_stream(), reply in 0..differential::REPLIES.len()) {
        let (reply, close) = differential::REPLIES[reply];
        differential::check_engines_agree(&client, reply, close);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn disguised_prefixes_are_never_forwarded(path in path()) {
        check_reserved(&path);
    }

    #[test]
    fn any_path_at_all_keeps_the_reserved_property(path in "/[ -~]{0,40}") {
        check_reserved(&path);
    }

    #[test]
    fn no_protected_header_survives(fields in header_fields(), trusted in any::<bool>()) {
        check_identity_strip(&fields, trusted);
    }

    #[test]
    fn framing_does_not_depend_on_how_reads_are_cut(
        stream in request_stream(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        check_framing(&stream, &cuts);
    }

    #[test]
    fn oauth_parameters_parse_safely(body in prop_oneof![
        "[a-z_=&%0-9A-F+]{0,60}",
        "\\{(\"[a-z_]{1,12}\": ?(\"[a-zA-Z0-9._~-]{0,50}\"|null|1|\\[\\]), ?){0,4}\\}",
    ]) {
        check_params(body.as_bytes());
    }

    #[test]
    fn accounts_answers_are_read_safely(
        status in prop_oneof![Just(200u16), Just(201), Just(400), Just(401), Just(429), Just(500), 100u16..600],
        token in "[a-zA-Z0-9]{6,20}",
        shape in 0usize..5,
    ) {
        let body = match shape {
            0 => format!(r#"{{"access_token":"{token}","entity_id":"e","expires_in":1,"token_type":"Bearer"}}"#),
            1 => format!(r#"{{"access_token":"{token}","entity_id":"e","expires_in":"{token}","token_type":"Bearer"}}"#),
            2 => format!(r#"{{"access_token":"{token}","entity_id":7,"token_type":"{token}"}}"#),
            3 => format!(r#"{{"oauth_exception":"server_error","access_token":"{token}"}}"#),
            _ => format!(r#"{{"refresh_token":"{token}","token_type":["{token}"]}}"#),
        };
        check_accounts_answer(status, body.as_bytes());
    }

    #[test]
    fn cookie_secrets_are_cookie_values(value in "[ -~]{0,20}", attributes in "(; [A-Za-z]{1,8}(=[ -~]{0,6})?){0,3}") {
        let field = format!("__lc_cst={value}{attributes}");
        check_cookie_secret(&[b"__lc_cid=x; Path=/", field.as_bytes()]);
    }

    #[test]
    fn configuration_errors_point_inside_the_text(text in "(\\[[a-z.]{1,12}\\]\n|[a-z_]{1,14} = (\"[ -~]{0,16}\"|[0-9]{1,4}|true|\\[\\])\n|[ -~]{0,20}\n){0,8}") {
        check_config(&text, &[("A".to_string(), "x".to_string())]);
    }

    #[test]
    fn environment_values_are_substituted_exactly(value in "[ -~]{0,30}") {
        check_substitution(&value);
    }
}
