//! Certificates are reloaded from disk while serving; a bad reload keeps the last good pair.

use crate::support::backend::Backend;
use crate::support::*;
use std::path::Path;
use std::time::Duration;

async fn served_leaf(certs: &TestCerts, tether: &TestTether) -> Vec<u8> {
    let stream = tls_connect(certs, tether.tls_addr, &[b"http/1.1"]).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn wait_for_leaf(certs: &TestCerts, tether: &TestTether, expected: &[u8]) {
    wait_until(
        "the new certificate is served",
        Duration::from_secs(10),
        || async { served_leaf(certs, tether).await == expected },
    )
    .await;
}

/// Writes a new pair next to the live files and renames it over them (what cert-manager does).
fn replace_pair(certs: &TestCerts, name: &str, cert: &Path, key: &Path) -> Vec<u8> {
    let dir = certs.dir.path();
    let (new_cert, new_key) = (dir.join("new.crt"), dir.join("new.key"));
    let der = certs.write_leaf(name, &new_cert, &new_key);
    std::fs::rename(&new_key, key).unwrap();
    std::fs::rename(&new_cert, cert).unwrap();
    der
}

#[tokio::test]
async fn certificate_is_reloaded_while_serving() {
    let (certs, _backend, tether) = start_app_and_tether(|_| {}).await;
    let client = certs.client();
    let before = served_leaf(&certs, &tether).await;
    assert_eq!(
        client
            .get(format!("{}/echo", tether.https))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let renewed = replace_pair(&certs, "renewed", &certs.cert_path, &certs.key_path);
    assert_ne!(before, renewed);
    wait_for_leaf(&certs, &tether, &renewed).await;
    // The connection opened before the reload keeps working.
    assert_eq!(
        client
            .get(format!("{}/echo", tether.https))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        tether
            .metric("tether_cert_reloads_total{result=\"success\"}")
            .await
            >= 1
    );
}

#[tokio::test]
async fn a_broken_reload_keeps_the_last_good_pair() {
    let (certs, _backend, tether) = start_app_and_tether(|_| {}).await;
    let good = served_leaf(&certs, &tether).await;
    std::fs::write(
        &certs.cert_path,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    wait_until(
        "the failed reload is counted",
        Duration::from_secs(10),
        || async {
            tether
                .metric("tether_cert_reloads_total{result=\"failure\"}")
                .await
                >= 1
        },
    )
    .await;
    assert_eq!(served_leaf(&certs, &tether).await, good);
    let response = certs
        .client()
        .get(format!("{}/echo", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn kubernetes_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let certs = TestCerts::new();
    let backend = Backend::start().await;
    let root = certs.dir.path().join("secret");
    let first = root.join("..2026_11_01");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::copy(&certs.cert_path, first.join("tls.crt")).unwrap();
    std::fs::copy(&certs.key_path, first.join("tls.key")).unwrap();
    symlink(&first, root.join("..data")).unwrap();
    symlink("..data/tls.crt", root.join("tls.crt")).unwrap();
    symlink("..data/tls.key", root.join("tls.key")).unwrap();

    let mut config = config_for(backend.addr, &certs);
    config.tls.cert = root.join("tls.crt");
    config.tls.key = root.join("tls.key");
    let tether = TestTether::start(config).await;

    let second = root.join("..2026_11_02");
    std::fs::create_dir_all(&second).unwrap();
    let renewed = certs.write_leaf("swapped", &second.join("tls.crt"), &second.join("tls.key"));
    symlink(&second, root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    wait_for_leaf(&certs, &tether, &renewed).await;
}
