//! `tether check` warns about production-unsafe settings, and `--strict` refuses them.

use crate::support::redis_server::RedisServer;
use crate::*;

fn check(config: &Path, strict: bool) -> (Option<i32>, String) {
    let mut args = vec!["check", "--config", config.to_str().unwrap()];
    if strict {
        args.push("--strict");
    }
    let (code, _, stderr) = run_tether(&args);
    (code, stderr)
}

#[tokio::test]
async fn unsafe_settings_are_warnings_and_strict_makes_them_errors() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("unsafe.toml");
    let certs = dir.path().join("certs");
    let text = format!(
        "[server]\nlisten = \"0.0.0.0:8443\"\n[tls]\nself_signed = true\ncert = \"{0}/t.crt\"\nkey = \"{0}/t.key\"\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n[store]\nkind = \"redis\"\nurl = \"{1}\"\n",
        certs.display(),
        redis.url()
    );
    std::fs::write(&config, &text).unwrap();
    // The test server is durable: only the certificate is unsafe.
    let (code, stderr) = check(&config, false);
    assert_eq!(code, Some(0), "{stderr}");
    let name = config.display().to_string();
    assert!(
        stderr.contains(&format!("{name}:4:15: warning: tls.self_signed")),
        "{stderr}"
    );
    assert!(!stderr.contains("store.url"), "{stderr}");

    // A Redis that would lose mappings on restart is named too, where its URL is.
    let mut connection = redis.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query_async(&mut connection)
        .await
        .unwrap();
    let (code, stderr) = check(&config, false);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{name}:11:7: warning: store.url"))
            && stderr.contains("without appendonly"),
        "{stderr}"
    );

    let (code, stderr) = check(&config, true);
    assert_eq!(code, Some(2), "--strict refuses: {stderr}");
    assert!(stderr.contains("2 production-unsafe settings"), "{stderr}");
}
