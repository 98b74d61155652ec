//! The authorization-code grant of LiveChat's server-side app, behind `tether livechat
//! authorize`: the only way LiveChat hands out the refresh token the agent_token grant needs
//! (docs/vendors/livechat.md, "The agent's OAuth token").
//!
//! An Owner or Admin opens the consent URL and signs in; LiveChat sends the browser to the
//! app's redirect URI with `code` and `state`. When that URI is on loopback, `Loopback` receives
//! it; otherwise the operator copies the code from the address bar. The code is exchanged once
//! (`exchange`: a code is good once, so a lost answer is not retried) and the grant is kept as
//! the agent state every replica uses (`agent::keep_authorized`).

use super::accounts::{send, AccountsError, Scopes};
pub use super::agent::{authorized_state, keep_authorized, Refreshed, STATE_KEY};
use super::answers::AgentTokenBody;
use crate::config::{Grant, LiveChatConfig};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("cannot listen on {addr} for LiveChat's redirect: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("LiveChat did not authorize: {0}")]
    Denied(String),
    #[error("exchanging the code: {0}")]
    Exchange(#[from] AccountsError),
}

/// The URL the Owner or Admin opens: LiveChat's sign-in and consent page for the app.
pub fn consent_url(config: &LiveChatConfig, state: &str) -> String {
    let mut url = url::Url::parse(&config.accounts_url).expect("validated: an http(s) URL");
    url.set_path("/");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", &config.authorize_redirect_uri)
        .append_pair("state", state);
    url.to_string()
}

/// Where LiveChat sends the browser, when it is this machine (http on a loopback address).
pub struct Loopback {
    listener: TcpListener,
    path: String,
}

impl Loopback {
    /// Listens at `redirect_uri`; None when it is not a loopback http URL (the operator then
    /// pastes the code).
    pub async fn bind(redirect_uri: &str) -> Result<Option<Self>, AuthorizeError> {
        let Ok(url) = url::Url::parse(redirect_uri) else {
            return Ok(None);
        };
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() != "http" || !loopback {
            return Ok(None);
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            _ => "127.0.0.1".to_string(),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = SocketAddr::new(host.parse().expect("an IP address"), port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AuthorizeError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(Some(Self {
            listener,
            path: url.path().to_string(),
        }))
    }

    /// Waits for LiveChat's redirect carrying `state`, and answers the browser. Requests for
    /// other paths, or with another state (an old tab), are answered and ignored.
    pub async fn receive(self, state: &str) -> Result<String, AuthorizeError> {
        let (outcome_tx, mut outcome) = mpsc::channel::<Result<String, AuthorizeError>>(1);
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
                Some(result) = outcome.recv() => return result,
            };
            let path = self.path.clone();
            let state = state.to_string();
            let outcome_tx = outcome_tx.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let (status, page, result) = answer_redirect(&request, &path, &state);
                if let Some(result) = result {
                    let _ = outcome_tx.try_send(result);
                }
                let mut response = Response::new(Full::new(Bytes::from(page)));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

type RedirectAnswer = (
    StatusCode,
    &'static str,
    Option<Result<String, AuthorizeError>>,
);

/// What the browser is told, and the outcome when the request is LiveChat's redirect.
fn answer_redirect(request: &Request<Incoming>, path: &str, state: &str) -> RedirectAnswer {
    if request.uri().path() != path {
        return (StatusCode::NOT_FOUND, "Not LiveChat's redirect.\n", None);
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if query.get("state").map(String::as_str) != Some(state) {
        return (
            StatusCode::BAD_REQUEST,
            "This redirect is not for the authorization Tether is waiting for (another state): \
             open the URL it printed last.\n",
            None,
        );
    }
    if let Some(error) = query.get("error") {
        let why = match query.get("error_description") {
            Some(description) => format!("{error}: {description}"),
            None => error.clone(),
        };
        return (
            StatusCode::OK,
            "LiveChat did not authorize Tether; see the terminal.\n",
            Some(Err(AuthorizeError::Denied(why))),
        );
    }
    match query.get("code") {
        Some(code) if !code.is_empty() => (
            StatusCode::OK,
            "Tether received LiveChat's authorization. You can close this tab.\n",
            Some(Ok(code.clone())),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "LiveChat's redirect carried no code.\n",
            None,
        ),
    }
}

/// `POST /v2/token` with `grant_type=authorization_code`: the agent's tokens and the scopes
/// granted. One attempt: a code is good once.
pub async fn exchange(
    config: &LiveChatConfig,
    code: &str,
) -> Result<(Refreshed, Scopes), AuthorizeError> {
    let Grant::AgentToken { client_secret, .. } = config.grant() else {
        return Err(AccountsError::Rejected("the cookie grant has no agent token".into()).into());
    };
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| AccountsError::Unavailable(err.to_string()))?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", config.client_id.as_str()),
        ("client_secret", client_secret.expose()),
        ("redirect_uri", config.authorize_redirect_uri.as_str()),
    ];
    let url = format!("{}/v2/token", config.accounts_url.trim_end_matches('/'));
    let body: AgentTokenBody = send(http.post(url).form(&form))
        .await
        .map_err(AccountsError::Unavailable)?
        .into_result()?;
    let scopes = Scopes(body.scope.clone().unwrap_or_default());
    Ok((
        Refreshed {
            access_token: body.access_token,
            refresh_token: body.refresh_token,
            expires_in: body.expires_in,
        },
        scopes,
    ))
}
