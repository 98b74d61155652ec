//! The served provider script in a real browser (headless Chromium), called the way LiveChat's
//! Customer SDK calls it, with users switching on one browser.

use crate::World;
use std::process::Command;

/// The Chromium binary, or None when it is not installed (a failure under CI=true).
fn chromium() -> Option<&'static str> {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(candidate);
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "chromium is not installed (CI must install it)"
    );
    eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
    None
}

#[tokio::test]
async fn provider_script_behaves_like_the_customer_sdk_expects() {
    let Some(chromium) = chromium() else { return };
    let world = World::start(|_| {}).await;
    let url = format!("{}/page/sdk.html", world.tether.https);
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let profile = profile.path().to_path_buf();
        move || {
            Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--ignore-certificate-errors",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "no result in the page:\n{dom}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let result: serde_json::Value = serde_json::from_str(&result.replace("&quot;", "\""))
        .unwrap_or_else(|_| panic!("the page did not finish: {result}"));
    let expect = |name: &str, value: bool| {
        assert_eq!(result[name], value, "{name} in {result}");
    };
    expect("anonymousRejects", true);
    expect("hasTokenAnonymous", false);
    expect("hasTokenBefore", false);
    expect("hasTokenAfter", true);
    expect("units", true);
    expect("cloneable", true);
    expect("cachedKeepsCreationDate", true);
    expect("moreThanAnHourLeft", true);
    expect("invalidateReturnsPromise", true);
    expect("hasTokenAfterInvalidate", false);
    expect("freshIsNew", true);
    expect("freshSameEntity", true);
    expect("bobHasHisOwnCustomer", true);
    expect("noAliceTokenStoredForBob", true);
    expect("aliceKeepsHerCustomer", true);
    expect("aliceNeverGetsBobsToken", true);
    expect("hasTokenAfterLogout", false);
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "alice and bob, once each"
    );
}
