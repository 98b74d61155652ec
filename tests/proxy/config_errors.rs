//! Invalid configuration: exit code 2 and `file:line:col: what was expected`.

use crate::support::*;
use tether::config::parse_str;

const VALID: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
"#;

fn error_of(text: &str) -> String {
    parse_str(text, "bad.toml", &|name| {
        (name == "PRESENT").then(|| "from-env".to_string())
    })
    .expect_err("the configuration should be rejected")
    .to_string()
}

#[test]
fn every_error_names_file_line_column_and_expectation() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[upstream]\nurl = \"http://a:1\"\n[server]\nlisten = 8443\n",
            "bad.toml:4:10:",
            "invalid type",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\nbogus = 1\n",
            "bad.toml:3:1:",
            "unknown field `bogus`",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[limits]\nidle_timeout = \"60 seconds\"\n",
            "bad.toml:4:16:",
            "expected a duration",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[limits]\nmax_header_bytes = \"64XB\"\n",
            "bad.toml:4:20:",
            "expected a size",
        ),
        (
            "[upstream]\nurl = \"https://a:1\"\n",
            "bad.toml:2:7:",
            "only http://",
        ),
        (
            "[upstream]\nurl = \"http://a:1/app\"\n",
            "bad.toml:2:7:",
            "a path or query is not allowed",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "bad.toml:4:",
            "invalid IP address",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[identity]\nuser_header = \"X User\"\n",
            "bad.toml:4:15:",
            "expected an HTTP header name",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[identity]\nsource = \"cookie\"\n",
            "bad.toml:4:10:",
            "unknown variant `cookie`",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[reserved]\nprefix = \"tether/\"\n",
            "bad.toml:4:10:",
            "expected a path prefix",
        ),
        (
            "[upstream]\nurl = \"http://a:1\"\n[tls]\nmin_version = \"1.1\"\n",
            "bad.toml:4:15:",
            "unknown variant `1.1`",
        ),
        (
            "[upstream]\nurl = \"http://${MISSING_VAR}:1\"\n",
            "bad.toml:2:7:",
            "environment variable MISSING_VAR is not set",
        ),
        ("[upstream\nurl = 1\n", "bad.toml:1:", ""),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            "bad.toml:1:1:",
            "missing field `upstream`",
        ),
    ];
    for (text, location, expectation) in cases {
        let message = error_of(text);
        assert!(
            message.starts_with(location),
            "{text:?}\n  gave {message:?}\n  expected location {location}"
        );
        assert!(
            message.contains(expectation),
            "{text:?}\n  gave {message:?}\n  expected {expectation:?}"
        );
    }
}

#[test]
fn environment_variables_are_substituted() {
    let text = "[upstream]\nurl = \"http://${PRESENT}:1\"\n[reserved]\nprefix = \"/$${literal}\"\n";
    let err = error_of(text); // "from-env" is a fine host; the prefix with "{" is not.
    assert!(err.starts_with("bad.toml:4:10:"), "{err}");
    let config = parse_str(
        "[upstream]\nurl = \"http://${PRESENT}:1\"\n",
        "ok.toml",
        &|name| (name == "PRESENT").then(|| "app.internal".to_string()),
    )
    .unwrap();
    assert_eq!(config.upstream.url.as_str(), "app.internal:1");
}

#[test]
fn the_shipped_example_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tether.toml"))
        .unwrap();
    parse_str(&text, "config/tether.toml", &|_| None).unwrap();
    parse_str(VALID, "minimal.toml", &|_| None).unwrap();
}

#[test]
fn check_command_exit_codes() {
    let certs = TestCerts::new();
    let dir = certs.dir.path();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let tls = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        )
    };
    let good = write(
        "good.toml",
        format!("{VALID}{}", tls(&certs.cert_path, &certs.key_path)),
    );
    let (code, stdout, _) = run_tether(&["check", "--config", &good]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("ok"), "{stdout}");

    let bad = write("bad.toml", format!("{VALID}[limits]\nidle_timeout = 5\n"));
    let (code, _, stderr) = run_tether(&["check", "--config", &bad]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(&format!("{bad}:5:16: invalid type")),
        "{stderr}"
    );

    // A key that does not belong to the certificate: the error points at the `key` line.
    let other_key = dir.join("other.key");
    certs.write_leaf("other", &dir.join("other.crt"), &other_key);
    let mismatch = write(
        "mismatch.toml",
        format!("{VALID}{}", tls(&certs.cert_path, &other_key)),
    );
    let (code, _, stderr) = run_tether(&["check", "--config", &mismatch]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(&format!("{mismatch}:6:7: tls.key:")),
        "{stderr}"
    );
    assert!(stderr.contains("does not match"), "{stderr}");

    let missing_cert = write(
        "missing.toml",
        format!("{VALID}{}", tls(&dir.join("nope.crt"), &certs.key_path)),
    );
    let (code, _, stderr) = run_tether(&["check", "--config", &missing_cert]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(&format!("{missing_cert}:5:8: tls.cert:")),
        "{stderr}"
    );

    let (code, _, stderr) = run_tether(&["check", "--config", "/nonexistent/tether.toml"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read"), "{stderr}");
    let (code, _, _) = run_tether(&["run"]);
    assert_eq!(code, Some(2), "missing arguments");
    let (code, _, _) = run_tether(&["frobnicate"]);
    assert_eq!(code, Some(2), "unknown command");
    let (code, stdout, _) = run_tether(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("tether "), "{stdout}");

    // `run` with an invalid file exits 2 too, before binding anything.
    let (code, _, stderr) = run_tether(&["run", "--config", &bad]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(":5:16:"), "{stderr}");
}

#[test]
fn self_signed_pair_is_created_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("dev/tether.crt");
    let key = dir.path().join("dev/tether.key");
    let text = format!(
        "{VALID}[tls]\nself_signed = true\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let config = parse_str(&text, "dev.toml", &|_| None).unwrap();
    assert!(tether::testing::tls::ensure_self_signed(&config.tls).unwrap());
    tether::testing::tls::load_pair(&cert, &key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !tether::testing::tls::ensure_self_signed(&config.tls).unwrap(),
        "an existing pair is kept"
    );
}

/// LiveChat's widget re-issues tokens with an hour or less left, and they live 8 hours: a
/// `refresh_margin` outside that defeats the cache, and `tether check` says where.
#[test]
fn refresh_margin_must_fit_the_widgets_rule_and_the_token_lifetime() {
    let livechat = |margin: &str| {
        format!(
            "[upstream]\nurl = \"http://a:1\"\n[livechat]\nenabled = true\nlicense_id = 1\n\
             client_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n\
             refresh_margin = \"{margin}\"\n"
        )
    };
    let short = error_of(&livechat("30m"));
    assert!(
        short.starts_with("bad.toml:9:18: livechat.refresh_margin: expected at least \"61m\""),
        "{short}"
    );
    let long = error_of(&livechat("8h"));
    assert!(
        long.starts_with("bad.toml:9:18: livechat.refresh_margin: expected less than \"8h\""),
        "{long}"
    );
    parse_str(&livechat("65m"), "ok.toml", &|_| None).expect("the default margin is valid");
}
