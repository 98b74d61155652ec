//! Zendesk Messaging's authenticated end users: an HS256 JWT, signed with the key Zendesk issued,
//! that the page hands to `zE("messenger", "loginUser", ...)` (docs/vendors/zendesk.md). The
//! whole Zendesk flow lives here: the token endpoint (`{prefix}/zendesk/jwt`) and the page part
//! (`page.js`). No call to Zendesk is made.

use super::{tag_user_key, Call, PagePart, Setup, Vendor, GET_HEAD};
use crate::clock::now_secs;
use crate::config::Config;
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
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "zendesk";
/// Zendesk refuses a longer `external_id`.
const MAX_EXTERNAL_ID: usize = 255;

pub struct Zendesk {
    key: SharedKey,
    key_id: String,
    ttl: Duration,
    send_email: bool,
    user_keys: Arc<UserKeys>,
    page: Option<PagePart>,
    tokens_signed: Counter,
}

/// The vendor, when `[zendesk]` is enabled.
pub fn build(setup: &mut Setup<'_>) -> Result<Option<Arc<dyn Vendor>>, StartError> {
    let config = setup.config;
    if !config.zendesk.enabled {
        return Ok(None);
    }
    let tokens_signed = counter(setup.metrics(NAME), "tokens_signed", "Zendesk JWTs signed.");
    let zendesk = &config.zendesk;
    Ok(Some(Arc::new(Zendesk {
        key: SharedKey::new(zendesk.secret.expose().as_bytes()),
        key_id: zendesk.key_id.clone(),
        ttl: zendesk.token_ttl,
        send_email: zendesk.send_email,
        user_keys: setup.user_keys()?,
        page: page_part(config),
        tokens_signed,
    })))
}

fn page_part(config: &Config) -> Option<PagePart> {
    let inject = &config.inject;
    inject.zendesk.then(|| PagePart {
        name: NAME,
        settings: json!({ "snippet": inject.zendesk_snippet_url() }),
        script: format!(
            "function (tether, settings) {{\n{}\n}}",
            include_str!("page.js")
        ),
        scripts: vec![inject.zendesk_snippet_url()],
    })
}

impl Zendesk {
    /// The claims Zendesk reads (docs/vendors/zendesk.md, "The token").
    fn claims(&self, user: &Identity) -> Result<serde_json::Value, Refusal> {
        if user.user_id.chars().count() > MAX_EXTERNAL_ID {
            tracing::warn!("a user id longer than Zendesk's 255-character external_id");
            return Err(Refusal::IdentityInvalid);
        }
        let now = now_secs();
        let mut claims = json!({
            "scope": "user",
            "external_id": user.user_id,
            "iat": now,
            "exp": now + self.ttl.as_secs(),
        });
        if let Some(name) = &user.name {
            claims["name"] = name.as_str().into();
        }
        // An e-mail Zendesk already has on another user makes it answer 409: only on request.
        if let (true, Some(email)) = (self.send_email, &user.email) {
            claims["email"] = email.as_str().into();
            claims["email_verified"] = true.into();
        }
        Ok(claims)
    }

    /// `GET {prefix}/zendesk/jwt`: a new token each time the widget asks (HS256 costs about
    /// 0.35 µs, nothing worth caching).
    async fn jwt(&self, call: Call<'_>) -> Answer {
        call.only(GET_HEAD)?;
        call.same_site()?;
        let user = call.user().await?;
        let token = self.key.sign(Some(&self.key_id), &self.claims(&user)?);
        self.tokens_signed.inc();
        tracing::debug!(kid = %self.key_id, "signed a Zendesk JWT");
        let mut reply = private_json(StatusCode::OK, &json!({ "jwt": token }));
        tag_user_key(&mut reply, self.user_keys.header_for(&user.user_id));
        Ok(reply)
    }
}

impl Vendor for Zendesk {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            match call.path {
                "/jwt" => self.jwt(call).await,
                _ => Err(Refusal::NotFound),
            }
        })
    }

    fn page_part(&self) -> Option<PagePart> {
        self.page.clone()
    }
}
