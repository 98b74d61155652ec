//! `tether demo`, the real binary, in headless Chromium: log in as alice and the five vendors'
//! stand-ins each name her; bob gets his own.

use crate::support::browser::Browser;
use std::io::BufRead;
use std::process::{Command, Stdio};

/// The five bubbles once each names `user`.
async fn five_bubbles(browser: &mut Browser, user: &str) -> serde_json::Value {
    browser
        .wait_for(
            &format!("five bubbles for {user}"),
            &format!(
                "(function () {{
                  var state = function (id) {{
                    var el = document.getElementById(id);
                    return el ? el.getAttribute('data-state') : null;
                  }};
                  var user = function (id) {{
                    var el = document.getElementById(id);
                    return el ? el.getAttribute('data-user') : null;
                  }};
                  var all = {{
                    livechat: state('sandbox-livechat'),
                    liveperson: state('sandbox-liveperson') + ' ' + (__sandboxLivePerson.sub || ''),
                    zendesk: user('sandbox-zendesk'),
                    intercom: user('sandbox-intercom'),
                    salesforce: user('sandbox-salesforce')
                  }};
                  return all.livechat === 'verified' && all.liveperson === 'verified {user}' &&
                    all.zendesk === '{user}' && all.intercom === '{user}' &&
                    all.salesforce === '{user}' && all;
                }})()"
            ),
        )
        .await
}

/// The demo process, stopped when the test ends (also when it fails).
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_demo_shows_all_five_vendors() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["demo", "--listen", "127.0.0.1:0"])
            .env("TMPDIR", tempfile::tempdir().unwrap().keep())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines.next().expect("the demo prints its URL").unwrap();
            if let Some(rest) = line.trim().strip_prefix("open") {
                let url = rest.split_whitespace().next().unwrap();
                let port: u16 = url
                    .trim_start_matches("https://localhost:")
                    .trim_end_matches('/')
                    .parse()
                    .unwrap();
                std::thread::spawn(move || lines.for_each(drop));
                return port;
            }
        }
    })
    .await
    .unwrap();
    let base = format!("https://localhost:{port}");
    browser.goto(&format!("{base}/login?user=alice")).await;
    five_bubbles(&mut browser, "alice").await;
    browser.goto(&format!("{base}/logout")).await;
    browser.goto(&format!("{base}/login?user=bob")).await;
    five_bubbles(&mut browser, "bob").await;
}
