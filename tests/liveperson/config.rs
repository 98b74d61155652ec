//! `[liveperson]` configuration errors, and the `tether liveperson-key` command.

use crate::support::run_tether;
use tether::config::parse_str;

const BASE: &str = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[identity.claims]\n\"X-Plan\" = \"plan\"\n[liveperson]\nenabled = true\nclient_id = \"lp\"\nclient_secret = \"0123456789abcdef\"\n";

fn error_of(extra: &str) -> String {
    parse_str(&format!("{BASE}{extra}"), "lp.toml", &|_| None)
        .expect_err("the configuration should be rejected")
        .to_string()
}

#[test]
fn liveperson_errors_name_the_line_and_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[liveperson.sdes.ctmrinfo]\nstoreNumber = \"plan\"\n",
            "lp.toml:10:15: liveperson.sdes.ctmrinfo.storeNumber:",
            "not supported in LivePerson's authenticated flow",
        ),
        (
            "[liveperson.sdes.ctmrinfo]\nstoreZipCode = \"plan\"\n",
            "lp.toml:10:16:",
            "not supported",
        ),
        (
            "[liveperson.sdes.ctmrinfo]\nbalanse = \"plan\"\n",
            "lp.toml:10:11:",
            "expected one of cstatus, ctype, customerId, balance",
        ),
        (
            "[liveperson.sdes.purchase]\ntotal = \"plan\"\n",
            "lp.toml:10:9:",
            "expected the section \"ctmrinfo\" or \"personal\"",
        ),
        (
            "[liveperson.sdes.personal]\nfirstname = \"given_name\"\n",
            "lp.toml:10:13:",
            "expected an identity field (user_id, email, name, plan",
        ),
        (
            "issuer = \"https://www.example.com/auth\"\n",
            "lp.toml:9:10: liveperson.issuer:",
            "expected the issuer's path to be the reserved prefix \"/.tether\"",
        ),
        (
            "issuer = \"ftp://x/.tether\"\n",
            "lp.toml:9:10:",
            "expected an https URL",
        ),
        ("code_ttl = \"11m\"\n", "lp.toml:9:12:", "at most \"10m\""),
        (
            "sub = \"hmac\"\n",
            "lp.toml:",
            "sub = \"hmac\" needs a secret of at least 32 characters",
        ),
        (
            "sub = \"email\"\n",
            "lp.toml:9:7:",
            "unknown variant `email`",
        ),
        (
            // Code Flow would have nowhere to send a code (this panicked on a request before).
            "redirect_uris = []\n",
            "lp.toml:9:17:",
            "expected at least one redirect URI",
        ),
        (
            "redirect_uris = [\"liveperson.net\"]\n",
            "lp.toml:9:17:",
            "expected absolute https URLs",
        ),
        (
            "encryption_enc = \"A128GCM\"\n",
            "lp.toml:9:18:",
            "unknown variant `A128GCM`",
        ),
        (
            "redirect_uri_prefixes = [\"https://lp.example\"]\n",
            "lp.toml:9:25:",
            "expected https URL prefixes with a path",
        ),
        (
            "auth_method = \"get token\"\n",
            "lp.toml:9:15:",
            "expected a JavaScript function name",
        ),
    ];
    for (extra, location, expectation) in cases {
        let message = error_of(extra);
        assert!(
            message.starts_with(location),
            "{extra:?}\n  gave {message:?}\n  expected location {location}"
        );
        assert!(
            message.contains(expectation),
            "{extra:?}\n  gave {message:?}\n  expected {expectation:?}"
        );
    }
    // A short client secret, pointed at.
    let message = parse_str(
        "[upstream]\nurl = \"http://a:1\"\n[liveperson]\nenabled = true\nclient_id = \"lp\"\nclient_secret = \"short\"\n",
        "lp.toml",
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.starts_with("lp.toml:6:17: liveperson.client_secret:"),
        "{message}"
    );
}

#[test]
fn liveperson_key_generates_and_prints_the_console_key() {
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rsa::traits::PublicKeyParts;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys/liveperson-signing.pem");
    let key_arg = key.display().to_string();
    let (code, stdout, stderr) = run_tether(&["liveperson-key", "--generate", &key_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // One line of base64 SPKI that an independent parser reads as the key's public half.
    let line = stdout.lines().last().unwrap();
    assert!(!line.contains("BEGIN") && !line.contains(' '), "{line}");
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, line).unwrap();
    let public = rsa::RsaPublicKey::from_public_key_der(&der).unwrap();
    let private =
        rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert_eq!(public.n(), private.n());
    assert!(public.n().bits() >= 2048);
    assert!(stdout.starts_with("kid: "), "{stdout}");

    // Never overwrites; reading the key again prints the same thing.
    let (code, _, _) = run_tether(&["liveperson-key", "--generate", &key_arg]);
    assert_eq!(code, Some(1));
    let (code, again, _) = run_tether(&["liveperson-key", "--key", &key_arg]);
    assert_eq!((code, again), (Some(0), stdout));

    // A file that is not a key: exit 2 with what was expected.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a key").unwrap();
    let (code, _, stderr) = run_tether(&["liveperson-key", "--key", &bogus.display().to_string()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("expected an RSA private key in PKCS#8 PEM"),
        "{stderr}"
    );

    // `check` reads the key the configuration names and points at its line.
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        format!(
            "{BASE}signing_key = \"{}\"\n[tls]\nself_signed = true\ncert = \"{dir}/t.crt\"\nkey = \"{dir}/t.key\"\n",
            bogus.display(),
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, stderr) = run_tether(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, Some(2));
    let expected = format!("{}:9:15: liveperson.signing_key:", config.display());
    assert!(stderr.starts_with(&expected), "{stderr}");
}
