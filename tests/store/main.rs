//! Operating the identity data: moving mappings between store kinds (`tether store export` /
//! `import`), erasing a user (`forget`, `DELETE /users/{user}`), backing up the embedded store
//! while it serves, and the dashboards that watch it. The commands run as the real binary.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod checking;
mod erasure;
mod moving;
mod watching;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::backend::Backend;
use support::*;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The store a Tether or a command uses.
#[derive(Clone)]
pub enum StoreAt {
    File(PathBuf),
    Redis(String),
}

impl StoreAt {
    fn toml(&self) -> String {
        match self {
            StoreAt::File(path) => format!("kind = \"file\"\npath = \"{}\"", path.display()),
            StoreAt::Redis(url) => format!("kind = \"redis\"\nurl = \"{url}\"\ntimeout = \"5s\""),
        }
    }
}

/// A configuration file for the `tether store` commands, naming `admin` (a running Tether's
/// admin listener) when there is one.
pub fn command_config(dir: &Path, name: &str, store: &StoreAt, admin: Option<&str>) -> PathBuf {
    let admin = admin.map_or_else(String::new, |admin| {
        format!(
            "admin_listen = \"{}\"\nadmin_token = \"{ADMIN_TOKEN}\"",
            admin.trim_start_matches("http://")
        )
    });
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{admin}\n[upstream]\nurl = \"http://127.0.0.1:1\"\n[store]\n{}\n",
        store.toml()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `tether store VERB --config CONFIG ARGS...` (the real binary) off the async runtime:
/// (exit code, stdout, stderr).
pub async fn store_command(
    verb: &str,
    config: &Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let mut all = vec![
        "store".to_string(),
        verb.to_string(),
        "--config".to_string(),
        config.display().to_string(),
    ];
    all.extend(args.iter().map(|arg| arg.to_string()));
    tokio::task::spawn_blocking(move || {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_tether(&all)
    })
    .await
    .unwrap()
}

/// A LiveChat world whose Tether can be restarted on other stores: one sandbox, one app.
pub struct World {
    pub certs: TestCerts,
    pub app: Backend,
    pub sandbox: SandboxAccounts,
    pub client: reqwest::Client,
}

impl World {
    pub async fn new() -> Self {
        let sandbox = SandboxAccounts::start(SandboxConfig::default())
            .await
            .unwrap();
        let certs = TestCerts::new();
        let app = Backend::start().await;
        let client = certs.client();
        Self {
            certs,
            app,
            sandbox,
            client,
        }
    }

    /// Tether with LiveChat on `store`, its admin listener guarded by `ADMIN_TOKEN`.
    pub async fn tether(&self, store: &StoreAt) -> TestTether {
        self.tether_configured(store, |_| {}).await
    }

    /// `tether`, with `configure` applied last.
    pub async fn tether_configured(
        &self,
        store: &StoreAt,
        configure: impl FnOnce(&mut tether::Config),
    ) -> TestTether {
        let mut config = config_for(self.app.addr, &self.certs);
        enable_livechat(&mut config, &self.sandbox);
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:1\"\n[store]\n{}\n",
            store.toml()
        );
        config.store = tether::config::parse_str(&text, "store.toml", &|_| None)
            .unwrap()
            .store;
        config.server.admin_token = Some(tether::redact::Secret::new(ADMIN_TOKEN));
        configure(&mut config);
        let calls = self.info_calls();
        let tether = TestTether::start(config).await;
        // Let the start-up scope check happen before the test's own calls.
        wait_until(
            "the start-up scope check",
            Duration::from_secs(10),
            || async { self.info_calls() > calls },
        )
        .await;
        tether
    }

    fn info_calls(&self) -> u64 {
        self.sandbox
            .counters()
            .info_calls
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `tether` answers each user's recorded customer (`where_` names the store in failures).
    pub async fn assert_customers(
        &self,
        tether: &TestTether,
        users: &[(String, String)],
        where_: &str,
    ) {
        for (user, entity) in users {
            assert_eq!(&self.entity(tether, user).await, entity, "{user} {where_}");
        }
    }

    /// The entity id `tether` answers for `user`, who logs in with a session cookie.
    pub async fn entity(&self, tether: &TestTether, user: &str) -> String {
        let response = self
            .client
            .get(format!("{}/.tether/livechat/token", tether.https))
            .header("cookie", format!("session={user}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "token for {user}");
        let body: serde_json::Value = response.json().await.unwrap();
        body["entityId"].as_str().unwrap().to_string()
    }
}

/// Stops a Tether and waits until it has released its store.
pub async fn stop(mut tether: TestTether) {
    tether.running.take().unwrap().shutdown().await;
}
