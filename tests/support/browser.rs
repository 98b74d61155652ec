//! Headless Chromium for the page-script tests: loads a page and returns the JSON the page
//! writes into `<pre id="result">`.

use std::process::Command;

/// The Chromium binary, or None when it is not installed (a failure under CI=true).
pub fn chromium() -> Option<&'static str> {
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

/// Runs `url` in a fresh headless profile until the page settles; the page's result as JSON.
pub async fn page_result(chromium: &'static str, url: String) -> serde_json::Value {
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
    let text = result
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("the page did not finish: {result}"))
}
