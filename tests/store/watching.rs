//! The Grafana dashboard and the Prometheus alerts in examples/ parse, and every series they
//! use is one Tether's /metrics serves.

use crate::*;
use std::collections::BTreeSet;

/// Every `tether_*` identifier in a PromQL expression, with its `{label="value"}` matchers.
fn series_in(expr: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tether_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..len].to_string();
        let mut matchers = Vec::new();
        if let Some(labels) = tail[len..].strip_prefix('{') {
            let labels = &labels[..labels.find('}').expect("closed matcher")];
            for matcher in labels.split(',').filter(|m| !m.trim().is_empty()) {
                let (key, value) = matcher.split_once('=').expect("an equality matcher");
                matchers.push((
                    key.trim().to_string(),
                    value.trim().trim_matches('"').to_string(),
                ));
            }
        }
        found.push((name, matchers));
        rest = &tail[len..];
    }
    found
}

fn balanced(expr: &str) -> bool {
    let mut depth = 0i32;
    for c in expr.chars() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string("examples/grafana/tether.json").unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "unique panel ids"
        );
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        exprs.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_string()),
        );
    }
    assert!(
        exprs.len() >= 15,
        "the dashboard covers traffic, vendors, store and certificate"
    );
    exprs
}

fn alert_exprs() -> Vec<String> {
    let text = std::fs::read_to_string("examples/prometheus/alerts.yaml").unwrap();
    let rules: serde_json::Value = serde_norway::from_str(&text).expect("the alerts are YAML");
    let mut exprs = Vec::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(
                ["warning", "critical"].contains(&rule["labels"]["severity"].as_str().unwrap()),
                "{name}"
            );
            assert!(rule["annotations"]["summary"].is_string(), "{name}");
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

#[tokio::test]
async fn the_dashboard_and_alerts_use_only_series_tether_serves() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.pem");
    std::fs::write(&key, tether::testing::signing::generate_pem().unwrap()).unwrap();
    let tether = world
        .tether_configured(&StoreAt::File(dir.path().join("t.db")), |config| {
            let text = format!(
                "[upstream]\nurl = \"http://127.0.0.1:1\"\n[liveperson]\nenabled = true\nissuer = \"https://brand.example/.tether\"\nclient_id = \"lp\"\nclient_secret = \"lp-secret-long-enough\"\nsigning_key = \"{}\"\n",
                key.display()
            );
            config.liveperson = tether::config::parse_str(&text, "lp.toml", &|_| None)
                .unwrap()
                .liveperson;
        })
        .await;
    let exposition = tether.metrics().await;
    stop(tether).await;
    let samples: Vec<&str> = exposition.lines().filter(|l| !l.starts_with('#')).collect();

    let exprs: Vec<String> = dashboard_exprs().into_iter().chain(alert_exprs()).collect();
    let mut used = BTreeSet::new();
    for expr in &exprs {
        assert!(balanced(expr), "unbalanced: {expr}");
        for (name, matchers) in series_in(expr) {
            let served = samples.iter().any(|sample| {
                let (series, _) = sample.split_once(' ').unwrap();
                let (sample_name, labels) = series.split_once('{').unwrap_or((series, ""));
                sample_name == name
                    && matchers
                        .iter()
                        .all(|(key, value)| labels.contains(&format!("{key}=\"{value}\"")))
            });
            assert!(
                served,
                "{name}{matchers:?} (in `{expr}`) is not in /metrics:\n{exposition}"
            );
            used.insert(name);
        }
    }
    // What the issue asks the dashboard and alerts to watch is there.
    for needed in [
        "tether_responses_total",
        "tether_upstream_response_seconds_bucket",
        "tether_upstream_failures_total",
        "tether_livechat_tokens_issued_total",
        "tether_livechat_tokens_cached_total",
        "tether_livechat_customers_created_total",
        "tether_livechat_token_failures_total",
        "tether_liveperson_tokens_signed_total",
        "tether_liveperson_codes_redeemed_total",
        "tether_store_errors_total",
        "tether_tls_certificate_expiry_seconds",
        "tether_ready",
    ] {
        assert!(used.contains(needed), "nothing watches {needed}");
    }
}

#[test]
fn the_series_finder_reads_names_and_matchers() {
    assert_eq!(
        series_in("sum(rate(tether_responses_total{class=\"5xx\"}[5m])) / tether_ready"),
        vec![
            (
                "tether_responses_total".to_string(),
                vec![("class".to_string(), "5xx".to_string())]
            ),
            ("tether_ready".to_string(), vec![]),
        ]
    );
    assert!(!balanced("sum(rate(x[5m])"));
}
