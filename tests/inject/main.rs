//! `[inject]` end to end: Tether in-process over TLS in front of an app whose pages carry no
//! Tether code, driven by a real client (and, in `browser`, by headless Chromium).

#[path = "../support/mod.rs"]
mod support;

mod app;
mod browser;
mod chat_vendors;
mod demo;
mod identity_sources;
mod pages;
mod single_page;

use support::*;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

pub const TAG: &str = "<script src=\"/.tether/inject/loader.js\"></script>";

pub struct World {
    pub certs: TestCerts,
    pub app: app::App,
    pub sandbox: SandboxAccounts,
    pub tether: TestTether,
}

impl World {
    /// LiveChat on, `[inject]` on for "/" except "/excluded", then `configure`.
    pub async fn start(configure: impl FnOnce(&mut tether::Config)) -> Self {
        let certs = TestCerts::new();
        let app = app::App::start().await;
        let sandbox = SandboxAccounts::start(SandboxConfig::default())
            .await
            .unwrap();
        let mut config = config_for(app.addr(), &certs);
        enable_livechat(&mut config, &sandbox);
        config.inject.enabled = true;
        config.inject.exclude_paths = vec!["/excluded".into()];
        configure(&mut config);
        config.validate().expect("valid test configuration");
        let tether = TestTether::start(config).await;
        Self {
            certs,
            app,
            sandbox,
            tether,
        }
    }

    /// A browser's navigation to `path`, asking for `accept_encoding`.
    pub async fn navigate(&self, path: &str, accept_encoding: &str) -> reqwest::Response {
        self.certs
            .client()
            .get(format!("{}{path}", self.tether.https))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("sec-fetch-dest", "document")
            .header("sec-fetch-mode", "navigate")
            .header("accept-encoding", accept_encoding)
            .send()
            .await
            .unwrap()
    }

    /// `tether_inject_skipped_total{reason}`.
    pub async fn skipped(&self, reason: &str) -> u64 {
        let metrics = self.tether.metrics().await;
        let line = format!("tether_inject_skipped_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in /metrics"))
            .parse()
            .unwrap()
    }
}

/// `page` with the tag inserted before `</head>`.
pub fn injected(page: &str) -> String {
    page.replacen("</head>", &format!("{TAG}</head>"), 1)
}
