//! The LiveChat endpoints under the reserved prefix:
//! `GET|POST|DELETE {prefix}/livechat/token` and `GET {prefix}/livechat/identity-provider.js`.

use super::accounts::AccountsError;
use super::accounts::CustomerToken;
use super::profile::ProfileSync;
use super::tokens::{TokenError, TokenService};
use crate::config::Config;
use crate::identity::Identity;
use crate::proxy::ResponseBody;
use crate::respond::{private_json, private_json_bytes, refusal};
use http::{header, HeaderValue, Method, Response, StatusCode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// LiveChat state shared by every core.
pub struct LiveChat {
    pub tokens: Arc<TokenService>,
    profiles: Option<Arc<ProfileSync>>,
    license_id: u64,
    organization_id: String,
    provider_script: bytes::Bytes,
}

impl LiveChat {
    pub fn new(config: &Config, tokens: TokenService) -> Self {
        let script =
            include_str!("identity-provider.js").replace("{{PREFIX}}", &config.reserved.prefix);
        Self {
            tokens: Arc::new(tokens),
            profiles: config.livechat.sync_customer_profile.then(Arc::default),
            license_id: config.livechat.license_id,
            organization_id: config.livechat.organization_id.clone(),
            provider_script: bytes::Bytes::from(script),
        }
    }

    /// The identity provider's source (for the page loader, which carries it).
    pub fn provider_source(&self) -> &str {
        std::str::from_utf8(&self.provider_script).expect("built from a str")
    }

    pub fn provider_script(&self) -> Response<ResponseBody> {
        let mut response = crate::proxy::full(
            StatusCode::OK,
            "application/javascript; charset=utf-8",
            self.provider_script.clone(),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// The token endpoint for a caller already known to be logged in as `identity`.
    pub async fn token(&self, method: &Method, identity: &Identity) -> Response<ResponseBody> {
        let user = identity.user_id.as_str();
        if method == Method::DELETE {
            self.tokens.forget(user).await;
            return private_json(StatusCode::NO_CONTENT, None);
        }
        let fresh = method == Method::POST;
        match self.tokens.token(user, fresh).await {
            Ok(token) => {
                if let Some(profiles) = &self.profiles {
                    profiles.update(self.tokens.accounts(), identity, &token);
                }
                let body = token.rendered.get_or_init(|| self.render(&token)).clone();
                let mut response = private_json_bytes(StatusCode::OK, body);
                response
                    .headers_mut()
                    .insert("x-tether-user-key", user_key_header(user));
                response
            }
            Err(err) => {
                self.tokens.counters.failures.fetch_add(1, Relaxed);
                tracing::warn!(error = %err, "no LiveChat token");
                match err {
                    TokenError::Accounts(AccountsError::Unavailable(_)) | TokenError::Store(_) => {
                        refusal(StatusCode::SERVICE_UNAVAILABLE, "livechat_unavailable")
                    }
                    TokenError::Accounts(AccountsError::Rejected(_)) => {
                        refusal(StatusCode::BAD_GATEWAY, "livechat_rejected")
                    }
                    TokenError::Accounts(AccountsError::UnknownCustomer(_))
                    | TokenError::CustomerMismatch => {
                        refusal(StatusCode::BAD_GATEWAY, "livechat_customer_unknown")
                    }
                }
            }
        }
    }
}

impl LiveChat {
    /// The token object the widget expects (livechat.md section 1).
    fn render(&self, token: &CustomerToken) -> bytes::Bytes {
        let body = serde_json::json!({
            "accessToken": token.access_token.expose(),
            "entityId": token.entity_id,
            "expiresIn": token.expires_in.saturating_mul(1000),
            "tokenType": token.token_type,
            "creationDate": token.issued_at_ms,
            "licenseId": self.license_id,
            "organizationId": token.organization_id.as_deref().unwrap_or(&self.organization_id),
        });
        bytes::Bytes::from(body.to_string())
    }
}

/// The page's cache key for the user (`crate::user_key`).
fn user_key_header(user: &str) -> HeaderValue {
    HeaderValue::from_str(&crate::user_key::user_key(user)).expect("hex is a valid header value")
}

pub type Shared = Arc<LiveChat>;
