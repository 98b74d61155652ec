//! Checks that need several keys at once; each error points at the key to fix.

use super::*;

impl Config {
    /// Checks that need several keys at once; each error points at the key to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let lc = &self.livechat;
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        if lc.enabled {
            if lc.client_id.is_empty() {
                return at(
                    "livechat.client_id",
                    "expected the Developer Console app's client id",
                );
            }
            if lc.license_id == 0 && lc.organization_id.is_empty() {
                return at(
                    "livechat.organization_id",
                    "expected the organization id (or license_id)",
                );
            }
            for (key, url) in [
                ("livechat.accounts_url", &lc.accounts_url),
                ("livechat.api_url", &lc.api_url),
            ] {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return at(key, "expected an http(s) URL");
                }
            }
            match lc.grant {
                LiveChatGrant::AgentToken => {
                    if lc.client_secret.expose().is_empty() {
                        return at(
                            "livechat.client_secret",
                            "the agent_token grant needs the app's client secret",
                        );
                    }
                    // No refresh token in the file: `tether livechat authorize` keeps one in
                    // the store (`tether doctor` says whether it is there).
                }
                LiveChatGrant::Cookie => {
                    if lc.organization_id.is_empty() {
                        return at(
                            "livechat.organization_id",
                            "the cookie grant needs the organization id",
                        );
                    }
                    if lc.redirect_uri.is_empty() {
                        return at(
                            "livechat.redirect_uri",
                            "the cookie grant needs a whitelisted redirect_uri",
                        );
                    }
                }
            }
            if lc.max_attempts == 0 {
                return at("livechat.max_attempts", "expected at least 1");
            }
            self.validate_refresh_margin()?;
            for (key, url) in [
                ("livechat.api_region_url", &lc.api_region_url),
                (
                    "livechat.authorize_redirect_uri",
                    &lc.authorize_redirect_uri,
                ),
            ] {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return at(key, "expected an http(s) URL");
                }
            }
            if !lc.api_region_url.contains("{region}") {
                return at(
                    "livechat.api_region_url",
                    "expected a URL with {region}, such as \"https://api-{region}.livechatinc.com\"",
                );
            }
        }
        self.validate_identity()?;
        self.validate_liveperson()?;
        self.validate_chat_vendors()?;
        self.validate_inject()?;
        self.validate_store()?;
        self.validate_admin()
    }

    /// A cached token must outlive the widget's one-hour rule (or every page load re-issues it)
    /// and leave something to cache within LiveChat's 8-hour lifetime.
    fn validate_refresh_margin(&self) -> Result<(), ConfigError> {
        let margin = self.livechat.refresh_margin;
        let floor = LIVECHAT_REISSUE_AT + Duration::from_secs(60);
        if margin < floor {
            return Err(self.origin.error_at(
                "livechat.refresh_margin",
                "expected at least \"61m\": LiveChat's widget re-issues any token with an hour or \
                 less left, so a smaller margin hands out tokens it throws away (\"65m\" is the \
                 default)",
            ));
        }
        if margin >= LIVECHAT_TOKEN_LIFETIME {
            return Err(self.origin.error_at(
                "livechat.refresh_margin",
                "expected less than \"8h\", LiveChat's token lifetime: at or above it no token is \
                 ever served from the cache (\"65m\" is the default)",
            ));
        }
        Ok(())
    }

    /// The admin token guards erasure and exports (which hold cookie secrets): it must be hard to
    /// guess, and there must be a listener to use it on.
    fn validate_admin(&self) -> Result<(), ConfigError> {
        let Some(token) = &self.server.admin_token else {
            return Ok(());
        };
        if token.expose().len() < 16 {
            return Err(self.origin.error_at(
                "server.admin_token",
                "expected at least 16 characters (for example from `openssl rand -hex 32`)",
            ));
        }
        if self.server.admin_listen.is_none() {
            return Err(self.origin.error_at(
                "server.admin_token",
                "an admin token needs server.admin_listen",
            ));
        }
        Ok(())
    }

    /// One of `url`, `sentinels` (with `sentinel_master`) or `cluster`, each a Redis URL.
    fn validate_redis_servers(&self) -> Result<(), ConfigError> {
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        let store = &self.store;
        let given = [
            store
                .url
                .as_ref()
                .is_some_and(|url| !url.expose().is_empty()),
            !store.sentinels.is_empty(),
            !store.cluster.is_empty(),
        ];
        match given.iter().filter(|given| **given).count() {
            0 => {
                return at(
                    "store.kind",
                    "the redis store needs store.url (one server), store.sentinels with \
                     store.sentinel_master, or store.cluster",
                )
            }
            1 => {}
            _ => {
                return at(
                    "store.url",
                    "name the servers one way: url, sentinels or cluster",
                )
            }
        }
        if !store.sentinels.is_empty() && store.sentinel_master.is_empty() {
            return at(
                "store.sentinel_master",
                "expected the primary's name as the sentinels know it (e.g. \"mymaster\")",
            );
        }
        let urls = store
            .url
            .iter()
            .map(|url| ("store.url", url))
            .chain(store.sentinels.iter().map(|url| ("store.sentinels", url)))
            .chain(store.cluster.iter().map(|url| ("store.cluster", url)));
        for (key, url) in urls {
            if let Err(err) = redis::Client::open(url.expose()) {
                // redis' message describes the URL's shape, never its password.
                return at(
                    key,
                    &format!("expected a redis://, rediss:// or redis+unix:// URL ({err})"),
                );
            }
        }
        Ok(())
    }

    fn validate_store(&self) -> Result<(), ConfigError> {
        let at = |key: &str, message: &str| Err(self.origin.error_at(key, message));
        if self.store.kind == StoreKind::Redis {
            self.validate_redis_servers()?;
            if self.store.prefix.is_empty() {
                return at(
                    "store.prefix",
                    "expected a key prefix such as \"tether:\" (keys are namespaced)",
                );
            }
            if self.store.timeout.is_zero() {
                return at("store.timeout", "expected a duration above zero");
            }
            if self.store.min_replica_acks > 0 && self.store.replica_ack_timeout.is_zero() {
                return at(
                    "store.replica_ack_timeout",
                    "expected a duration above zero (how long replicas may take to have a write)",
                );
            }
            if self.store.mapping_cache_capacity == 0 {
                return at(
                    "store.mapping_cache_capacity",
                    "expected at least 1 (mappings kept in memory per replica)",
                );
            }
        }
        if self.livechat.enabled
            && self.livechat.token_cache == TokenCache::Shared
            && self.store.kind != StoreKind::Redis
        {
            return at(
                "livechat.token_cache",
                "a shared token cache needs store.kind = \"redis\" (use \"replica\" otherwise)",
            );
        }
        Ok(())
    }
}
