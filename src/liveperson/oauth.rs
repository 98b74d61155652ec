//! The endpoints LivePerson's side calls: `POST /oauth/token` (its servers exchange a code for an
//! id_token) and `GET /oauth/authorize` (its hosted window sends the browser here).

use super::client_auth::AuthFailure;
use super::codes::{self, Exchange, PkceMethod, Refused};
use super::params;
use super::{refusal_with, CodeRequest, LivePerson};
use crate::clock::now_secs;
use crate::identity::IdentityResolver;
use crate::proxy::{ConnInfo, ResponseBody};
use crate::respond::refusal;
use crate::throttle::retry_after_secs;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

impl LivePerson {
    /// RFC 6749 section 4.1.3 and OIDC Core 3.1.3: code -> id_token, for LivePerson's servers.
    pub(super) async fn token_endpoint(
        &self,
        request: Request<Incoming>,
        conn: &ConnInfo,
    ) -> Response<ResponseBody> {
        let basic = request.headers().get(header::AUTHORIZATION).cloned();
        let from = conn.client_ip(request.headers());
        let params = match params::read(request).await {
            Ok(params) => params,
            Err(why) => return refusal_with(StatusCode::BAD_REQUEST, "invalid_request", why),
        };
        let client_id = match self.client_auth.authenticate(basic.as_ref(), &params, from) {
            Ok(client_id) => client_id,
            Err(AuthFailure::Refused(why)) => return self.client_refused(why),
            Err(AuthFailure::Malformed(why)) => {
                return refusal_with(StatusCode::BAD_REQUEST, "invalid_request", why)
            }
            Err(AuthFailure::Throttled(wait)) => return self.client_throttled(wait, from),
        };
        match params.get("grant_type") {
            Some("authorization_code") => {}
            Some(_) => {
                return refusal_with(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "only authorization_code is supported",
                )
            }
            None => {
                return refusal_with(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is required",
                )
            }
        }
        let Some(code) = params.get("code") else {
            return refusal_with(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code is required",
            );
        };
        let exchange = Exchange {
            code,
            client_id: &client_id,
            redirect_uri: params.get("redirect_uri"),
            verifier: params.get("code_verifier"),
            now: now_secs(),
        };
        let grant = match codes::redeem(self.store.as_ref(), &exchange).await {
            Ok(Ok(grant)) => grant,
            Ok(Err(refused)) => return self.refuse_exchange(&refused),
            Err(err) => {
                tracing::error!(error = %err, "cannot redeem a code");
                return refusal(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
            }
        };
        self.counters.codes_redeemed.fetch_add(1, Relaxed);
        crate::respond::private_json(
            StatusCode::OK,
            Some(json!({
                "access_token": random_token(),
                "token_type": "Bearer",
                "expires_in": self.claims.ttl().as_secs(),
                "scope": "openid",
                "id_token": grant.id_token,
            })),
        )
    }

    fn refuse_exchange(&self, refused: &Refused) -> Response<ResponseBody> {
        if *refused == Refused::Replayed {
            self.counters.code_replays.fetch_add(1, Relaxed);
        }
        self.counters.exchanges_refused.fetch_add(1, Relaxed);
        tracing::warn!(reason = refused.reason(), "code exchange refused");
        refusal_with(StatusCode::BAD_REQUEST, "invalid_grant", refused.reason())
    }

    fn client_throttled(&self, wait: Duration, from: IpAddr) -> Response<ResponseBody> {
        self.counters.client_auth_throttled.fetch_add(1, Relaxed);
        tracing::warn!(%from, "token endpoint: too many failed client authentications");
        let mut response = refusal_with(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many failed client authentications",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(wait)),
        );
        response
    }

    fn client_refused(&self, why: &str) -> Response<ResponseBody> {
        self.counters.client_auth_failures.fetch_add(1, Relaxed);
        tracing::warn!(reason = why, "token endpoint client authentication failed");
        let mut response = refusal_with(StatusCode::UNAUTHORIZED, "invalid_client", why);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tether\", charset=\"UTF-8\""),
        );
        response
    }

    /// The popup flow (liveperson.md section 4): validate the client and the redirect_uri before
    /// anything is sent there, log the user in through the app if needed, then redirect.
    pub(super) async fn authorize(
        &self,
        request: Request<Incoming>,
        conn: &ConnInfo,
        identity: &IdentityResolver,
    ) -> Response<ResponseBody> {
        let query = request.uri().query().unwrap_or("");
        let params = match params::from_form(query.as_bytes()) {
            Ok(params) => params,
            Err(why) => return refusal_with(StatusCode::BAD_REQUEST, "invalid_request", why),
        };
        // Until client_id and redirect_uri check out, errors are shown, never redirected.
        let client_id = self.client_auth.client_id();
        if client_id.is_empty() || params.get("client_id") != Some(client_id) {
            return refusal_with(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "unknown client_id",
            );
        }
        let redirect_uri = match params.get("redirect_uri") {
            Some(uri) if self.redirect_uris.iter().any(|allowed| allowed == uri) => uri.to_string(),
            Some(_) => {
                return refusal_with(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not registered",
                )
            }
            None if self.redirect_uris.len() == 1 => self.redirect_uris[0].clone(),
            None => {
                return refusal_with(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is required",
                )
            }
        };
        let response_type = params.get("response_type").unwrap_or("");
        let in_fragment = matches!(response_type, "id_token" | "token");
        let back = Redirect {
            uri: &redirect_uri,
            state: params.get("state"),
            in_fragment,
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
        let Some(issuer) = self.issuer_for(&request) else {
            return refusal(StatusCode::BAD_REQUEST, "invalid_host");
        };
        let user = match identity.resolve(request.headers(), conn).await {
            Ok(Some(user)) => user,
            Ok(None) if params.get("prompt") == Some("none") => {
                return back.error("login_required", "nobody is logged in");
            }
            Ok(None) => return self.to_login(request.uri()),
            Err(err) => return crate::respond::identity_failure(err),
        };
        let nonce = params.get("nonce");
        let answer = match response_type {
            "code" => {
                let grant = CodeRequest {
                    redirect_uri: redirect_uri.clone(),
                    redirect_uri_given: params.get("redirect_uri").is_some(),
                    challenge,
                    nonce,
                };
                match self.issue_code(&issuer, &user, grant).await {
                    Ok(code) => vec![("code", code)],
                    Err(response) => return *response,
                }
            }
            kind => {
                let token = match self.id_token(&issuer, &user, nonce) {
                    Ok(token) => token,
                    Err(response) => return *response,
                };
                if kind == "id_token" {
                    vec![("id_token", token)]
                } else {
                    vec![
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
    fn to_login(&self, authorize: &http::Uri) -> Response<ResponseBody> {
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
        redirect(&location)
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
    fn error(&self, code: &str, description: &str) -> Response<ResponseBody> {
        self.with(&[
            ("error", code.to_string()),
            ("error_description", description.to_string()),
        ])
    }

    fn with(&self, pairs: &[(&str, String)]) -> Response<ResponseBody> {
        let mut url = match url::Url::parse(self.uri) {
            Ok(url) => url,
            Err(_) => return refusal(StatusCode::BAD_REQUEST, "invalid_request"),
        };
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
        redirect(url.as_str())
    }
}

fn redirect(location: &str) -> Response<ResponseBody> {
    let mut response = crate::proxy::full(
        StatusCode::FOUND,
        "text/plain; charset=utf-8",
        bytes::Bytes::new(),
    );
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        Err(_) => return refusal(StatusCode::BAD_REQUEST, "invalid_request"),
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An opaque access token (LivePerson does not use it; OIDC requires one).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    let _ = SystemRandom::new().fill(&mut bytes);
    super::base64url::b64(&bytes)
}
