//! The Kubernetes example in examples/kubernetes keeps a configuration Tether accepts.

use tether::config::{StoreKind, TokenCache};

/// The `tether.toml: |` block of the manifest's ConfigMap, dedented.
fn configmap_toml(manifest: &str) -> String {
    let mut lines = manifest
        .lines()
        .skip_while(|line| line.trim() != "tether.toml: |");
    lines.next().expect("the ConfigMap has tether.toml");
    lines
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_kubernetes_example_configuration_is_valid_and_takes_secrets_from_the_environment() {
    let manifest = include_str!("../../examples/kubernetes/tether.yaml");
    let text = configmap_toml(manifest);
    let env = |name: &str| {
        Some(match name {
            "REDIS_URL" => "redis://:password@tether-redis:6379/0".to_string(),
            _ => format!("{name}-value-long-enough"),
        })
    };
    let config = tether::config::parse_str(&text, "tether.yaml", &env)
        .unwrap_or_else(|err| panic!("{err}\n{text}"));
    assert_eq!(config.store.kind, StoreKind::Redis);
    assert_eq!(config.livechat.token_cache, TokenCache::Replica);
    assert!(config.livechat.enabled && config.liveperson.enabled);
    assert!(
        config.server.admin_token.is_some(),
        "erasure works in the example (its admin listener is not on loopback)"
    );
    assert!(
        !config.liveperson.issuer.is_empty(),
        "one issuer for all replicas"
    );
    // Every secret comes from the environment, which the Deployment fills from tether-secrets.
    assert!(manifest.contains("secretRef: { name: tether-secrets }"));
    for name in [
        "REDIS_URL",
        "LIVECHAT_CLIENT_SECRET",
        "LIVECHAT_REFRESH_TOKEN",
        "LIVEPERSON_CLIENT_SECRET",
        "TETHER_ADMIN_TOKEN",
    ] {
        assert!(
            text.contains(&format!("${{{name}}}")),
            "{name} from the environment"
        );
        assert!(
            manifest.contains(&format!("--from-literal={name}=")),
            "{name} in the secret"
        );
    }
}
