//! Connecting a LivePerson account with the real binary: `tether liveperson console` prints
//! what LivePerson's console needs, and `tether doctor` fetches the JWKS where LivePerson does.

use crate::{new_signing_key, World, CLIENT_ID};
use std::path::Path;
use std::process::Command;

/// A configuration file for the commands: LivePerson with `issuer` and `key`, the app of
/// `world`.
fn write_config(world: &World, dir: &Path, issuer: &str, key: &Path) -> std::path::PathBuf {
    let path = dir.join("tether.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[tls]
cert = "{cert}"
key = "{tls_key}"
[upstream]
url = "http://{app}"
[store]
kind = "memory"
[liveperson]
enabled = true
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "not-printed-secret"
signing_key = "{key}"
redirect_uris = ["https://liveperson.net"]
"#,
            cert = world.certs.cert_path.display(),
            tls_key = world.certs.key_path.display(),
            app = world.app.addr,
            key = key.display(),
        ),
    )
    .unwrap();
    path
}

/// Runs the binary off the test's runtime (Tether and the app answer on it), trusting the
/// test CA as the machine's roots: (exit code, stdout, stderr).
async fn tether(args: &[&str], config: &Path, ca: &Path) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("SSL_CERT_FILE", ca)
        .env_remove("SSL_CERT_DIR");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value printed for a console setting.
fn setting<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|line| line.strip_prefix(name))
        .unwrap_or_else(|| panic!("{name} in {out}"))
        .trim()
}

#[tokio::test]
async fn console_lists_every_value_livepersons_console_needs() {
    let world = World::start(|_, _| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &world.certs.ca_pem).unwrap();
    let key = new_signing_key(dir.path(), "signing.pem");
    let config = write_config(&world, dir.path(), "https://www.example.com/.tether", &key);

    let (code, out, err) = tether(&["liveperson", "console"], &config, &ca).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        setting(&out, "JWT issuer"),
        "https://www.example.com/.tether"
    );
    assert_eq!(
        setting(&out, "JWKS endpoint"),
        "https://www.example.com/.tether/jwks.json"
    );
    assert_eq!(
        setting(&out, "Authorization endpoint"),
        "https://www.example.com/.tether/oauth/authorize"
    );
    assert_eq!(
        setting(&out, "Token endpoint"),
        "https://www.example.com/.tether/oauth/token"
    );
    assert_eq!(setting(&out, "Client ID"), CLIENT_ID);
    assert_eq!(
        setting(&out, "Authentication method"),
        "lpGetAuthenticationToken"
    );
    assert!(!out.contains("not-printed-secret"), "{out}");
    // The same one-line key `liveperson-key` prints for that key file.
    let key_only = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["liveperson-key", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    let key_only = String::from_utf8_lossy(&key_only.stdout).into_owned();
    let one_line = key_only.lines().last().unwrap();
    assert_eq!(setting(&out, "JWT public key"), one_line);

    // LivePerson needs one fixed issuer: without it the command says where to set it.
    let config = write_config(&world, dir.path(), "", &key);
    let (code, _, err) = tether(&["liveperson", "console"], &config, &ca).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("liveperson.issuer"), "{err}");
}

/// The JWKS at the issuer's public URL has the signing key: doctor fetches it (with the
/// machine's roots, as LivePerson would) and says so; a key the served Tether does not publish
/// (rotated in the file, not yet deployed) is named.
#[tokio::test]
async fn doctor_fetches_the_jwks_where_liveperson_does() {
    let world = World::start(|_, _| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &world.certs.ca_pem).unwrap();
    let served_key = world.keys.path().join("signing.pem");
    let config = write_config(&world, dir.path(), &world.issuer(), &served_key);

    let (code, out, err) = tether(&["doctor"], &config, &ca).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ok    jwks: "), "{out}");
    assert!(out.contains("publishes the signing key"), "{out}");

    let rotated = new_signing_key(dir.path(), "rotated.pem");
    let config = write_config(&world, dir.path(), &world.issuer(), &rotated);
    let (code, out, _) = tether(&["doctor"], &config, &ca).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  jwks: ") && out.contains("does not publish the signing key"),
        "{out}"
    );
    assert!(out.contains("-> set liveperson.issuer"), "{out}");

    let nobody = "https://127.0.0.1:1/.tether";
    let config = write_config(&world, dir.path(), nobody, &served_key);
    let (code, out, _) = tether(&["doctor"], &config, &ca).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  jwks: https://127.0.0.1:1/.tether/jwks.json"),
        "{out}"
    );
}
