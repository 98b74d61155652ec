//! Settings that are valid but unsafe in production. `tether check` reports them as located
//! warnings, and `--strict` makes them errors (exit 2), for a CI gate on production files.

use super::{Config, ConfigError, StoreKind};

/// Every production-unsafe setting, each pointing at the key to change.
pub fn production_warnings(config: &Config) -> Vec<ConfigError> {
    let mut warnings = Vec::new();
    let mut warn = |key: &str, why: &str| warnings.push(config.origin.error_at(key, why));
    if config.liveperson.enabled && config.liveperson.issuer.is_empty() {
        warn(
            "liveperson.issuer",
            "empty: the issuer is then taken from each request's host, so replicas or host names that differ sign tokens LivePerson rejects; set it to https://<your host>/.tether",
        );
    }
    if config.salesforce.enabled
        && config.salesforce.issuer.is_empty()
        && config.liveperson.issuer.is_empty()
    {
        warn(
            "salesforce.issuer",
            "empty: the issuer is then taken from each request's host, and it must equal the keyset's issuer in Salesforce; set it",
        );
    }
    if config.tls.self_signed && !config.server.listen.ip().is_loopback() {
        warn(
            "tls.self_signed",
            "a self-signed development certificate on a listener other than loopback: browsers refuse it; use the site's certificate",
        );
    }
    if config.livechat.enabled && config.store.kind == StoreKind::Memory {
        warn(
            "store.kind",
            "\"memory\" with LiveChat on loses every user -> customer mapping on restart, and with it every customer's chat history; use \"file\" or \"redis\"",
        );
    }
    warnings
}

impl ConfigError {
    /// The same place and message, said as a warning: `file:line:col: warning: ...`.
    pub fn as_warning(&self) -> String {
        match self.position {
            Some((line, col)) => format!("{}:{line}:{col}: warning: {}", self.file, self.message),
            None => format!("{}: warning: {}", self.file, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        crate::config::parse_str(text, "t.toml", &|_| None).unwrap()
    }

    #[test]
    fn unsafe_settings_are_located() {
        let config = parse(
            "[server]\nlisten = \"0.0.0.0:8443\"\n[tls]\nself_signed = true\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n[store]\nkind = \"memory\"\n[livechat]\nenabled = true\nlicense_id = 1\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n",
        );
        let warnings: Vec<String> = production_warnings(&config)
            .iter()
            .map(ConfigError::as_warning)
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("t.toml:4:15: warning: tls.self_signed"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("t.toml:8:8: warning: store.kind"),
            "{warnings:?}"
        );
        let loopback = parse("[server]\nlisten = \"127.0.0.1:8443\"\n[tls]\nself_signed = true\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n");
        assert!(production_warnings(&loopback).is_empty());
    }
}
