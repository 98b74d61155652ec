//! The new sections' mistakes are located (`file:line:col`), and their secrets never show.

use tether::config::parse_str;

const APP: &str = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n";

fn error_of(text: &str) -> String {
    parse_str(&format!("{APP}{text}"), "bad.toml", &|_| None)
        .expect_err("the configuration should be rejected")
        .to_string()
}

#[test]
fn mistakes_are_located_with_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[zendesk]\nenabled = true\nsecret = \"0123456789abcdef\"\n",
            "bad.toml:3:1:",
            "zendesk.key_id: expected the signing key's id",
        ),
        (
            "[zendesk]\nenabled = true\nkey_id = \"k\"\nsecret = \"short\"\n",
            "bad.toml:6:10:",
            "shared secret",
        ),
        (
            "[intercom]\nenabled = true\napp_id = \"a b\"\nsecret = \"0123456789abcdef\"\n",
            "bad.toml:5:10:",
            "the workspace's app id",
        ),
        (
            "[intercom]\nenabled = true\napp_id = \"abc\"\nmode = \"hash\"\n",
            "bad.toml:6:8:",
            "unknown variant `hash`",
        ),
        (
            "[intercom]\nenabled = true\napp_id = \"abc\"\nsecret = \"0123456789abcdef\"\ncookie_domain = \".example.com\"\n",
            "bad.toml:7:17:",
            "no leading dot",
        ),
        (
            "[salesforce]\nenabled = true\nissuer = \"ftp://x\"\n",
            "bad.toml:5:10:",
            "https URL",
        ),
        (
            "[salesforce]\nenabled = true\ntoken_ttl = \"2h\"\n",
            "bad.toml:5:13:",
            "between \"1m\" and \"1h\"",
        ),
        (
            "[inject]\nenabled = true\nlivechat = false\nzendesk = true\n",
            "bad.toml:6:11:",
            "needs [zendesk] enabled = true",
        ),
        (
            "[signing]\nkey = \"a.pem\"\n[liveperson]\nsigning_key = \"b.pem\"\n",
            "bad.toml:4:7:",
            "named twice",
        ),
    ];
    for (text, place, expected) in cases {
        let error = error_of(text);
        assert!(error.starts_with(place), "{error}\n(expected at {place})");
        assert!(error.contains(expected), "{error}\n(expected {expected:?})");
    }
}

#[test]
fn secrets_are_redacted_in_debug() {
    let config = parse_str(
        &format!(
            "{APP}[zendesk]\nenabled = true\nkey_id = \"k\"\nsecret = \"zendesk-secret-0123456789\"\n\
             [intercom]\nenabled = true\napp_id = \"abc\"\nsecret = \"intercom-secret-0123456789\"\n"
        ),
        "ok.toml",
        &|_| None,
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("zendesk-secret") && !debug.contains("intercom-secret"));
}
