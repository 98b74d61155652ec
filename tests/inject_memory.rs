//! A 50 MiB HTML page through `[inject]` with the snippet before `</body>` (so the rewriter
//! parses all of it) and gzip to the client: resident memory grows by less than 32 MiB. A test
//! binary of its own, so nothing else shares the RSS.

#[path = "support/mod.rs"]
mod support;

#[path = "inject/app.rs"]
mod app;

use futures_util::StreamExt;
use std::io::Write;
use support::*;

const MIB: usize = 50;
const BUDGET: u64 = 32 << 20;
const TAG: &str = "<script src=\"/.tether/inject/loader.js\"></script>";

/// Decodes gzip as it arrives, keeping only a count and the last bytes.
#[derive(Default)]
struct Tail {
    len: usize,
    last: Vec<u8>,
}

impl Write for Tail {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.len += data.len();
        self.last.extend_from_slice(data);
        let keep = self.last.len().saturating_sub(200);
        self.last.drain(..keep);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn fetch_big(tether: &TestTether, certs: &TestCerts, mib: usize) -> Tail {
    let response = certs
        .client()
        .get(format!("{}/big?mib={mib}", tether.https))
        .header("accept", "text/html")
        .header("sec-fetch-dest", "document")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let mut decoder = flate2::write::GzDecoder::new(Tail::default());
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        decoder.write_all(&chunk.unwrap()).unwrap();
    }
    decoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_mebibyte_page_in_bounded_memory() {
    let certs = TestCerts::new();
    let app = app::App::start().await;
    let sandbox = tether_sandbox::livechat::SandboxAccounts::start(Default::default())
        .await
        .unwrap();
    let mut config = config_for(app.addr(), &certs);
    enable_livechat(&mut config, &sandbox);
    config.inject.enabled = true;
    config.inject.position = tether::config::InjectPosition::Body;
    let tether = TestTether::start(config).await;

    // Warm every buffer and pool once, then take the baseline.
    fetch_big(&tether, &certs, 2).await;
    let baseline = process_status_bytes("VmRSS:");
    let page = fetch_big(&tether, &certs, MIB).await;
    assert_eq!(
        page.len,
        app::big_page_len(MIB) + TAG.len(),
        "every byte and the tag"
    );
    let tail = String::from_utf8_lossy(&page.last);
    assert!(tail.ends_with(&format!("{TAG}</body></html>\n")), "{tail}");
    let peak = process_status_bytes("VmHWM:");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "RSS baseline {} MiB, peak {} MiB, growth {} MiB",
        baseline >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < BUDGET,
        "RSS grew by {} MiB streaming a {MIB} MiB page",
        growth >> 20
    );
    assert_eq!(tether.metric("tether_inject_pages_total").await, 2);
}
