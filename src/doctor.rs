//! `tether doctor`, online: does everything the configuration names answer as Tether needs?
//! The same checks `/readyz` runs (the app, the store, each vendor's credentials and scopes,
//! strictly: a readiness warning is a finding here), then the app's answer to the identity
//! probe for a visitor nobody signed in, and the issuer's JWKS at its public URL, where
//! LivePerson fetches it.
//!
//! The embedded store belongs to one process: when a running Tether holds it, the store and
//! vendor checks are that Tether's own `/readyz`, asked through its admin listener.

use crate::admin::UpstreamReachable;
use crate::config::{Config, StoreKind};
use crate::health::ReadinessCheck;
use crate::identity::{IdentityResolver, IdentityShared};
use crate::metrics::Registry;
use crate::proxy::ConnInfo;
use crate::signing::Signer;
use crate::store::file::{open_database, OpenError};
use std::sync::Arc;
use std::time::Duration;

/// How long one check may take (a vendor call with all its retries fits).
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// One line of the report.
pub struct Finding {
    pub name: String,
    /// Ok(what was seen) or Err(what is wrong).
    pub outcome: Result<String, String>,
    /// What to do about a failure.
    pub remedy: Option<String>,
}

impl Finding {
    fn new(name: impl Into<String>, outcome: Result<String, String>) -> Self {
        let name = name.into();
        let remedy = outcome.as_ref().err().and_then(|_| remedy_for(&name));
        Self {
            name,
            outcome,
            remedy,
        }
    }
}

/// Every online check for a configuration that `check` accepted.
pub async fn examine(config: &Config) -> Vec<Finding> {
    let mut findings = match held_by_running_tether(config) {
        true => ask_running_tether(config).await,
        false => run_checks(config).await,
    };
    if config.store.kind == StoreKind::Redis {
        findings.push(redis_durability(config).await);
    }
    findings.push(identity_probe(config).await);
    if config.signs_with_rsa() {
        findings.push(issuer_jwks(config).await);
    }
    findings
}

fn held_by_running_tether(config: &Config) -> bool {
    config.store.kind == StoreKind::File
        && matches!(
            open_database(&config.store.path, false, Some(1 << 20)),
            Err(OpenError::InUse(_))
        )
}

/// The readiness checks `tether run` would run, in this process.
async fn run_checks(config: &Config) -> Vec<Finding> {
    let mut checks: Vec<Arc<dyn ReadinessCheck>> = vec![Arc::new(UpstreamReachable {
        authority: config.upstream.url.clone(),
        timeout: config.upstream.connect_timeout,
    })];
    match crate::router::build(config).await {
        Ok(extensions) => checks.extend(extensions.checks),
        Err(err) => return vec![Finding::new("vendors", Err(err.to_string()))],
    }
    let mut findings = Vec::new();
    for check in checks {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
            Ok(Ok(())) => Ok(String::new()),
            Ok(Err(why)) => Err(why),
            Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
        findings.push(Finding::new(check.name(), outcome));
    }
    findings
}

/// The running Tether's `/readyz`, warnings included, through its admin listener.
async fn ask_running_tether(config: &Config) -> Vec<Finding> {
    let held = format!(
        "{} is held by a running Tether",
        config.store.path.display()
    );
    let Some(listen) = config.server.admin_listen else {
        return vec![Finding {
            name: "store".into(),
            outcome: Err(format!("{held} without an admin listener to ask")),
            remedy: Some(
                "set server.admin_listen, or stop that Tether and run doctor again".into(),
            ),
        }];
    };
    let url = format!("http://{}/readyz", crate::io::reachable(listen));
    let report = async {
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(CHECK_TIMEOUT)
            .send()
            .await
            .map_err(|err| format!("{url}: {err}"))?;
        response
            .json::<serde_json::Value>()
            .await
            .map_err(|err| format!("{url}: {err}"))
    };
    let report = match report.await {
        Ok(report) => report,
        Err(why) => return vec![Finding::new("store", Err(format!("{held}; {why}")))],
    };
    let mut findings = Vec::new();
    for (section, failing_only) in [("checks", false), ("warnings", true)] {
        let Some(entries) = report[section].as_object() else {
            continue;
        };
        for (name, value) in entries {
            let text = value.as_str().unwrap_or_default().to_string();
            let outcome = match (failing_only, text.as_str()) {
                (false, "ok") => Ok(format!("(asked the running Tether at {url})")),
                _ => Err(text),
            };
            if name != "draining" {
                findings.push(Finding::new(name.clone(), outcome));
            }
        }
    }
    findings
}

/// What the configured Redis keeps through a crash or a failover.
async fn redis_durability(config: &Config) -> Finding {
    let outcome = match crate::store::RedisStore::open(&config.store) {
        Ok(store) => match store.durability().await {
            Ok(None) => Ok(match config.store.min_replica_acks {
                0 => "every write is fsynced before it is acknowledged".to_string(),
                n => format!("new mappings are acknowledged once {n} replicas have them"),
            }),
            Ok(Some(problem)) => Err(problem),
            Err(err) => Err(err.to_string()),
        },
        Err(err) => Err(err.to_string()),
    };
    Finding::new("store_durability", outcome)
}

/// What the app answers for a visitor nobody signed in: it must say "nobody", not fail.
async fn identity_probe(config: &Config) -> Finding {
    use crate::config::IdentitySource;
    match config.identity.source {
        IdentitySource::Header => {
            return Finding::new(
                "identity",
                Ok(format!(
                    "{} from the trusted gateway (nothing to probe)",
                    config.identity.user_header
                )),
            )
        }
        IdentitySource::Jwt => {
            let jwt = config.identity.jwt_settings();
            let from = match (&jwt.cookie, &jwt.header) {
                (Some(cookie), _) => format!("the {cookie} cookie"),
                (None, Some(header)) => format!("the {header} header"),
                (None, None) => "nowhere".into(),
            };
            return Finding::new(
                "identity",
                Ok(format!(
                    "signed tokens from {from} (the issuer's keys: identity_keys above)"
                )),
            );
        }
        IdentitySource::Probe => {}
    }
    let shared = IdentityShared::new(config, &mut Registry::default());
    let resolver = IdentityResolver::new(config, &shared);
    let here = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let conn = ConnInfo::new(here, here, true, &[]);
    let outcome = match resolver.resolve(&http::HeaderMap::new(), &conn).await {
        Ok(None) => Ok(format!(
            "http://{}{} answers \"nobody signed in\" for a visitor without a session",
            config.upstream.url, config.identity.probe_path
        )),
        Ok(Some(_)) => Err(format!(
            "the app names a user for a request without cookies: {} must name the user of \
             the request's session only",
            config.identity.probe_path
        )),
        Err(err) => Err(err.to_string()),
    };
    Finding::new("identity", outcome)
}

/// The issuer's JWKS, fetched where LivePerson fetches it, has this signing key.
async fn issuer_jwks(config: &Config) -> Finding {
    let lp = &config.liveperson;
    if lp.issuer.is_empty() {
        return Finding::new(
            "jwks",
            Err(
                "liveperson.issuer is empty, so LivePerson has no fixed URL to fetch keys from"
                    .into(),
            ),
        );
    }
    let url = format!(
        "{}{}",
        lp.issuer.trim_end_matches('/'),
        crate::signing::JWKS_PATH
    );
    let kid = match Signer::load(config) {
        Ok(signer) => signer.kid().to_string(),
        Err((key, why)) => return Finding::new("jwks", Err(format!("{key}: {why}"))),
    };
    let outcome = async {
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(CHECK_TIMEOUT)
            .send()
            .await
            .map_err(|err| format!("{url}: {}", crate::io::ErrorChain(&err)))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let jwks: serde_json::Value = response
            .json()
            .await
            .map_err(|err| format!("{url} is not a JWKS: {err}"))?;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .map(|keys| keys.iter().filter_map(|key| key["kid"].as_str()).collect())
            .unwrap_or_default();
        if kids.contains(&kid.as_str()) {
            Ok(format!("{url} publishes the signing key (kid {kid})"))
        } else {
            Err(format!(
                "{url} does not publish the signing key's kid {kid} (it has: {})",
                kids.join(", ")
            ))
        }
    };
    Finding::new("jwks", outcome.await)
}

/// What to do when a check of this name fails (the vendors' own messages say more).
fn remedy_for(name: &str) -> Option<String> {
    let remedy = match name {
        "upstream" => "start the app, or correct upstream.url",
        "store" => "start the store (Redis: store.url), or correct [store]",
        "livechat" => {
            "connect LiveChat with `tether livechat authorize --config PATH` (an Owner or Admin \
             signs in), and check livechat.client_id and client_secret"
        }
        "livechat_profiles" => {
            "add the customers:rw scope to the app in LiveChat's Developer Console, then run \
             `tether livechat authorize` again (or set livechat.sync_customer_profile = false)"
        }
        "identity" => {
            "identity.probe_path must answer 2xx with the user (headers, or JSON at \
             probe_json_user) for a session, and 401, 403 or a redirect without one"
        }
        "identity_keys" => "check identity.jwks_url (or the preset's team, project or region)",
        "jwks" => {
            "set liveperson.issuer (or salesforce.issuer) to the public https URL of Tether's \
             prefix, and make it reachable from the Internet (the vendors fetch the keys from \
             there)"
        }
        "certificate" => "renew the certificate (tls.cert)",
        "store_durability" => {
            "see the README's \"Several replicas\": appendonly with appendfsync always on one \
             server, store.min_replica_acks with Sentinel or Cluster"
        }
        _ => return None,
    };
    Some(remedy.to_string())
}
