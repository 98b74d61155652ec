//! The endpoints LivePerson's side calls: `POST /oauth/token` (its servers exchange a code for an
//! id_token) and `GET /oauth/authorize` (its hosted window sends the browser here).

use super::client_auth::AuthFailure;
use super::codes::{self, Exchange, PkceMethod, Refused};
use super::params;
use super::redirects::Allowed;
use super::{CodeRequest, LivePerson};
use crate::clock::now_secs;
use crate::refusal::Answer;
use crate::refusal::Refusal;
use crate::respond::{private_json, redirect};
use crate::vendors::Call;
use http::{header, StatusCode};
use serde_json::json;
use std::net::IpAddr;

impl LivePerson {
    /// RFC 6749 section 4.1.3 and OIDC Core 3.1.3: code -> id_token, for LivePerson's servers.
    pub(super) async fn token_endpoint(&self, call: Call<'_>) -> Answer {
        let basic = call.request.headers().get(header::AUTHORIZATION).cloned();
        let from = call.conn.client_ip(call.request.headers());
        let params = params::read(call.request)
            .await
            .map_err(|why| Refusal::InvalidRequest(why.into()))?;
        if let Some(shared) = &self.shared_failures {
            shared
                .check(&from.to_string())
                .await
                .map_err(|wait| self.auth_failed(AuthFailure::Throttled(wait), from))?;
        }
        let authenticated = self.client_auth.authenticate(basic.as_ref(), &params, from);
        if let (Some(shared), Err(AuthFailure::Refused(_))) =
            (&self.shared_failures, &authenticated)
        {
            shared.failed(&from.to_string()).await;
        }
        let client_id = authenticated.map_err(|failure| self.auth_failed(failure, from))?;
        match params.get("grant_type") {
            Some("authorization_code") => {}
            Some(_) => return Err(Refusal::UnsupportedGrantType),
            None => return Err(Refusal::InvalidRequest("grant_type is required".into())),
        }
        let code = params
            .get("code")
            .ok_or_else(|| Refusal::InvalidRequest("code is required".into()))?;
        let exchange = Exchange {
            code,
            client_id: &client_id,
            redirect_uri: params.get("redirect_uri"),
            verifier: params.get("code_verifier"),
            now: now_secs(),
        };
        let grant = codes::redeem(self.store.as_ref(), &exchange)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "cannot redeem a code");
                Refusal::TemporarilyUnavailable
            })?
            .map_err(|refused| self.refuse_exchange(&refused))?;
        self.counters.codes_redeemed.inc();
        Ok(private_json(
            StatusCode::OK,
            &json!({
                "access_token": random_token(),
                "token_type": "Bearer",
                "expires_in": self.claims.ttl().as_secs(),
                "scope": "openid",
                "id_token": grant.id_token,
            }),
        ))
    }

    fn refuse_exchange(&self, refused: &Refused) -> Refusal {
        if *refused == Refused::Replayed {
            self.counters.code_replays.inc();
        }
        self.counters.exchanges_refused.inc();
        tracing::warn!(reason = refused.reason(), "code exchange refused");
        Refusal::InvalidGrant(refused.reason().into())
    }

    /// A failed client authentication: counted, logged, and refused.
    fn auth_failed(&self, failure: AuthFailure, from: IpAddr) -> Refusal {
        match failure {
            AuthFailure::Refused(why) => {
                self.counters.client_auth_failures.inc();
                tracing::warn!(reason = why, "token endpoint client authentication failed");
                Refusal::InvalidClient(why.into())
            }
            AuthFailure::Throttled(wait) => {
                self.counters.client_auth_throttled.inc();
                tracing::warn!(%from, "token endpoint: too many failed client authentications");
                Refusal::SlowDown(wait)
            }
        }
    }

    /// The popup flow (`docs/vendors/liveperson.md`, "The popup window"): validate the client
    /// and the redirect_uri before anything is sent there, log the user in through the app if
    /// needed, then redirect.
    pub(super) async fn authorize(&self, call: Call<'_>) -> Answer {
        let query = call.request.uri().query().unwrap_or("");
        let params = params::from_form(query.as_bytes())
            .map_err(|why| Refusal::InvalidRequest(why.into()))?;
        // Until client_id and redirect_uri check out, errors are shown, never redirected.
        let client_id = self.client_auth.client_id();
        if client_id.is_empty() || params.get("client_id") != Some(client_id) {
            return Err(Refusal::UnknownClient);
        }
        let (redirect_uri, allowed) = match params.get("redirect_uri") {
            Some(uri) => match self.redirects.check(uri) {
                Some(allowed) => (uri.to_string(), allowed),
                None => {
                    return Err(Refusal::InvalidRequest(
                        "redirect_uri is not registered".into(),
                    ))
                }
            },
            None => match self.redirects.only() {
                Some(only) => (only.to_string(), Allowed::Registered),
                None => return Err(Refusal::InvalidRequest("redirect_uri is required".into())),
            },
        };
        let response_type = params.get("response_type").unwrap_or("");
        let back = Redirect {
            uri: &redirect_uri,
            state: params.get("state"),
            in_fragment: matches!(response_type, "id_token" | "token"),
        };
        if !matches!(response_type, "code" | "id_token" | "token") {
            return back.error(
                "unsupported_response_type",
                "response_type must be code, id_token or token",
            );
        }
        // RFC 7636: without a method the challenge is "plain".
        let challenge = match params.pkce(PkceMethod::Plain) {
            Ok(challenge) => challenge,
            Err(why) => return back.error("invalid_request", why),
        };
        let issuer = self.issuer_for(&call.request)?;
        let user = match call.visitor().await? {
            Some(user) => user,
            None if params.get("prompt") == Some("none") => {
                return back.error("login_required", "nobody is logged in");
            }
            None => return self.to_login(call.request.uri()),
        };
        let nonce = params.get("nonce");
        let answer = match response_type {
            "code" => {
                let grant = CodeRequest {
                    redirect_uri: redirect_uri.clone(),
                    redirect_uri_given: params.get("redirect_uri").is_some(),
                    legacy_window: allowed == Allowed::LegacyWindow,
                    challenge,
                    nonce,
                };
                vec![("code", self.issue_code(&issuer, &user, grant).await?)]
            }
            kind => {
                let token = self.id_token(&issuer, &user, nonce)?;
                if kind == "id_token" {
                    vec![("id_token", token)]
                } else {
                    // Legacy connectors' window reads the JWT as `token`; standard OAuth
                    // clients read `access_token`.
                    vec![
                        ("token", token.clone()),
                        ("access_token", token),
                        ("token_type", "Bearer".into()),
                        ("expires_in", self.claims.ttl().as_secs().to_string()),
                    ]
                }
            }
        };
        back.with(&answer)
    }

    /// Sends a browser with nobody logged in to the app's login page, to come back here after.
    fn to_login(&self, authorize: &http::Uri) -> Answer {
        let back_here = authorize.path_and_query().map_or("/", |pq| pq.as_str());
        let separator = if self.login_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!(
            "{}{separator}{}",
            self.login_url,
            form_urlencoded::Serializer::new(String::new())
                .append_pair(&self.login_return_param, back_here)
                .finish()
        );
        redirect(&location).ok_or(Refusal::InvalidRequest("bad login_url".into()))
    }
}

/// Where the popup flow answers: the registered redirect_uri, with `state` echoed.
struct Redirect<'a> {
    uri: &'a str,
    state: Option<&'a str>,
    /// Implicit answers (`id_token`, `token`) travel in the fragment, codes in the query.
    in_fragment: bool,
}

impl Redirect<'_> {
    fn error(&self, code: &str, description: &str) -> Answer {
        self.with(&[
            ("error", code.to_string()),
            ("error_description", description.to_string()),
        ])
    }

    fn with(&self, pairs: &[(&str, String)]) -> Answer {
        let mut url = url::Url::parse(self.uri)
            .map_err(|_| Refusal::InvalidRequest("redirect_uri is not a URL".into()))?;
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            encoded.append_pair(name, value);
        }
        if let Some(state) = self.state {
            encoded.append_pair("state", state);
        }
        let encoded = encoded.finish();
        if self.in_fragment {
            url.set_fragment(Some(&encoded));
        } else {
            let query = match url.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
                _ => encoded,
            };
            url.set_query(Some(&query));
        }
        redirect(url.as_str()).ok_or(Refusal::InvalidRequest("redirect_uri is not a URL".into()))
    }
}

/// An opaque access token (LivePerson does not use it; OIDC requires one).
fn random_token() -> String {
    crate::signing::base64url::b64(&crate::random::bytes::<32>())
}
