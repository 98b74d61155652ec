//! Intercom Messenger's secure user identity (docs/vendors/intercom.md): the values the page puts
//! in `intercomSettings` before the Messenger boots, `intercom_user_jwt` (HS256 with the
//! Messenger API secret) or the older `user_hash` (hex HMAC-SHA256 of the user id), served at
//! `{prefix}/intercom/settings`; and, as Intercom's own server library does, the Messenger's
//! session cookie cleared when the user the browser's Messenger last knew went away or changed
//! (`session`). The page part is `page.js`. No call to Intercom is made.

mod session;

use super::{Call, PagePart, Setup, Vendor, GET_HEAD};
use crate::clock::now_secs;
use crate::config::{Config, IntercomMode};
use crate::identity::Identity;
use crate::lifecycle::StartError;
use crate::metrics::{counter, Counter};
use crate::refusal::{Answer, Refusal};
use crate::respond::private_json;
use crate::signing::hs256::SharedKey;
use crate::user_key::UserKeys;
use futures_util::future::BoxFuture;
use http::StatusCode;
use serde_json::json;
use session::SessionCookies;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "intercom";

pub struct Intercom {
    app_id: String,
    mode: IntercomMode,
    key: SharedKey,
    ttl: Duration,
    user_keys: Arc<UserKeys>,
    cookies: SessionCookies,
    page: Option<PagePart>,
    values_signed: Counter,
    sessions_cleared: Counter,
}

/// The vendor, when `[intercom]` is enabled.
pub fn build(setup: &mut Setup<'_>) -> Result<Option<Arc<dyn Vendor>>, StartError> {
    let config = setup.config;
    if !config.intercom.enabled {
        return Ok(None);
    }
    let registry = setup.metrics(NAME);
    let values_signed = counter(
        registry,
        "values_signed",
        "intercom_user_jwt or user_hash values made.",
    );
    let sessions_cleared = counter(
        registry,
        "sessions_cleared",
        "Messenger session cookies cleared because the user went away or changed.",
    );
    let intercom = &config.intercom;
    Ok(Some(Arc::new(Intercom {
        app_id: intercom.app_id.clone(),
        mode: intercom.mode,
        key: SharedKey::new(intercom.secret.expose().as_bytes()),
        ttl: intercom.token_ttl,
        user_keys: setup.user_keys()?,
        cookies: SessionCookies::new(&intercom.app_id, &intercom.cookie_domain),
        page: page_part(config),
        values_signed,
        sessions_cleared,
    })))
}

fn page_part(config: &Config) -> Option<PagePart> {
    let inject = &config.inject;
    let widget = inject.intercom_widget_url(&config.intercom.app_id);
    inject.intercom.then(|| PagePart {
        name: NAME,
        settings: json!({ "app_id": config.intercom.app_id, "widget": widget }),
        script: format!(
            "function (tether, settings) {{\n{}\n}}",
            include_str!("page.js")
        ),
        scripts: vec![widget.clone()],
    })
}

impl Intercom {
    /// What goes into `intercomSettings` for `user` (docs/vendors/intercom.md, "The values").
    fn values(&self, user: &Identity) -> serde_json::Value {
        let mut values = json!({ "app_id": self.app_id, "user_id": user.user_id });
        match self.mode {
            IntercomMode::Jwt => {
                let now = now_secs();
                let mut claims = json!({
                    "user_id": user.user_id,
                    "iat": now,
                    "exp": now + self.ttl.as_secs(),
                });
                // Signed, so the browser cannot change them; not repeated in the open.
                for (name, value) in [("email", &user.email), ("name", &user.name)] {
                    if let Some(value) = value {
                        claims[name] = value.as_str().into();
                    }
                }
                values["intercom_user_jwt"] = self.key.sign(None, &claims).into();
                values["expires_in"] = self.ttl.as_secs().into();
            }
            IntercomMode::UserHash => {
                values["user_hash"] = self.key.hex(&user.user_id).into();
                for (name, value) in [("email", &user.email), ("name", &user.name)] {
                    if let Some(value) = value {
                        values[name] = value.as_str().into();
                    }
                }
            }
        }
        self.values_signed.inc();
        values
    }

    /// `GET {prefix}/intercom/settings`: the signed-in user's values (401 for nobody), with the
    /// Messenger's session cookie cleared when it belonged to someone else.
    async fn settings(&self, call: Call<'_>) -> Answer {
        call.only(GET_HEAD)?;
        call.same_site()?;
        let user = call.visitor().await?;
        let key = user
            .as_ref()
            .map(|user| self.user_keys.key_for(&user.user_id).unwrap_or_default());
        let mut reply = match &user {
            Some(user) => private_json(StatusCode::OK, &self.values(user)),
            None => Refusal::NotAuthenticated.into_reply(),
        };
        if let Some(key) = &key {
            if let Ok(value) = http::HeaderValue::from_str(key) {
                reply.headers_mut().insert("x-tether-user-key", value);
            }
        }
        let cleared =
            self.cookies
                .follow(call.request.headers(), key.as_deref(), reply.headers_mut());
        if cleared {
            self.sessions_cleared.inc();
        }
        Ok(reply)
    }
}

impl Vendor for Intercom {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            match call.path {
                "/settings" => self.settings(call).await,
                _ => Err(Refusal::NotFound),
            }
        })
    }

    fn page_part(&self) -> Option<PagePart> {
        self.page.clone()
    }
}
