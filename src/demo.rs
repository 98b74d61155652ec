//! `tether demo`: the newcomer's tour. Starts a small demo app (log in as any name; it answers the
//! identity probe; its pages carry no Tether code), the sandbox (LiveChat's accounts server and
//! the stand-ins for the five vendors' widgets), and Tether in front of the app with a
//! self-signed certificate and `[inject]` on, then prints the URL to open.

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

/// Runs the demo until Ctrl-C.
pub async fn run(listen: SocketAddr) -> Result<(), String> {
    let sandbox = SandboxAccounts::start(SandboxConfig::default())
        .await
        .map_err(|err| format!("starting the sandbox accounts server: {err}"))?;
    let app = start_app()
        .await
        .map_err(|err| format!("starting the demo app: {err}"))?;
    let dir = std::env::temp_dir().join("tether-demo");
    std::fs::create_dir_all(&dir).map_err(|err| format!("creating {}: {err}", dir.display()))?;
    let signing_key = dir.join("liveperson-signing.pem");
    if !signing_key.exists() {
        let pem = crate::signing::keys::generate_pem()
            .map_err(|err| format!("making a LivePerson signing key: {err}"))?;
        std::fs::write(&signing_key, pem)
            .map_err(|err| format!("writing {}: {err}", signing_key.display()))?;
    }
    let config = demo_config(listen, app, &sandbox, &dir)?;
    crate::logging::init(&config.log);
    let running = crate::start(config).await.map_err(|err| err.to_string())?;
    println!(
        "\nTether demo\n\
         \x20 open        https://localhost:{port}/   (a self-signed certificate: accept the browser's warning)\n\
         \x20 then        log in as alice: five chat bubbles (the sandbox's stand-ins for LiveChat's widget,\n\
         \x20             LivePerson's lpTag, Zendesk's messenger, Intercom's Messenger and a Salesforce\n\
         \x20             deployment, put on the app's page by Tether) each name her, as verified by that\n\
         \x20             vendor's rules; log out, log in as bob, then alice again: she keeps her customer\n\
         \x20 the app     http://{app} (no Tether code in its pages; it answers the probe at /whoami)\n\
         \x20 LiveChat    sandbox accounts server at {accounts} (state: {accounts}/sandbox/state)\n\
         \x20 admin       http://{admin}/metrics\n\
         \x20 stop        Ctrl-C\n",
        port = running.tls_addr.port(),
        accounts = sandbox.url(),
        admin = running.admin_addr.map_or("-".to_string(), |a| a.to_string()),
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|err| err.to_string())?;
    running.shutdown().await;
    Ok(())
}

fn demo_config(
    listen: SocketAddr,
    app: SocketAddr,
    sandbox: &SandboxAccounts,
    dir: &std::path::Path,
) -> Result<crate::Config, String> {
    let defaults = SandboxConfig::default();
    let text = format!(
        r#"
[server]
listen = "{listen}"
admin_listen = "127.0.0.1:0"
shutdown_grace = "2s"
[tls]
cert = "{cert}"
key = "{key}"
self_signed = true
[upstream]
url = "http://{app}"
[store]
kind = "memory"
[livechat]
enabled = true
license_id = 12345
organization_id = "{org}"
client_id = "{client}"
client_secret = "{secret}"
refresh_token = "{refresh}"
accounts_url = "{accounts}"
api_url = "{accounts}"
[liveperson]
enabled = true
client_id = "demo-liveperson"
client_secret = "demo-liveperson-secret"
signing_key = "{signing_key}"
[zendesk]
enabled = true
key_id = "{zendesk_kid}"
secret = "{zendesk_secret}"
[intercom]
enabled = true
app_id = "{intercom_app}"
secret = "{intercom_secret}"
[salesforce]
enabled = true
[inject]
enabled = true
livechat = true
liveperson = true
zendesk = true
intercom = true
salesforce = true
liveperson_site_id = "12345678"
livechat_widget_src = "{accounts}/sandbox/widget/livechat.js"
liveperson_tag_src = "{accounts}/sandbox/widget/lptag.js"
zendesk_snippet_key = "{zendesk_widget}"
zendesk_snippet_src = "{accounts}/sandbox/widget/zendesk.js"
intercom_widget_src = "{accounts}/sandbox/widget/intercom.js"
# A Salesforce deployment's own bootstrap snippet, as a brand pastes it on its pages.
extra_html = """<script src="{accounts}/sandbox/widget/salesforce.js" onload="embeddedservice_bootstrap.init('00D000000000001', 'Web', 'https://brand.my.site.com/ESWWeb', {{}})"></script>"""
session_cookie = "demo_session"
"#,
        signing_key = dir.join("liveperson-signing.pem").display(),
        cert = dir.join("tether.crt").display(),
        key = dir.join("tether.key").display(),
        org = defaults.organization_id,
        client = defaults.client_id,
        secret = defaults.client_secret,
        refresh = defaults.refresh_token,
        accounts = sandbox.url(),
        zendesk_kid = defaults.widgets.zendesk.key_id,
        zendesk_secret = defaults.widgets.zendesk.secret,
        zendesk_widget = defaults.widgets.zendesk.widget_key,
        intercom_app = defaults.widgets.intercom.app_id,
        intercom_secret = defaults.widgets.intercom.secret,
    );
    crate::config::parse_str(&text, "demo", &|_| None).map_err(|err| err.to_string())
}

/// The demo app on 127.0.0.1 (an ephemeral port).
pub async fn start_app() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request| async move {
                    Ok::<_, Infallible>(route(&request))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn redirect_home(set_cookie: &str) -> Reply {
    let mut response = reply(StatusCode::SEE_OTHER, "text/plain", "");
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header::HeaderValue::from_static("/"));
    if let Ok(cookie) = header::HeaderValue::from_str(set_cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The logged-in user: the `demo_session` cookie (a demo; a real app checks a real session).
fn session(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("demo_session="))
        .filter(|user| valid_user(user))
        .map(str::to_string)
}

fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn route(request: &Request<Incoming>) -> Reply {
    match request.uri().path() {
        "/whoami" => match session(request) {
            Some(user) => {
                let mut response = reply(StatusCode::OK, "text/plain", "ok");
                let headers = response.headers_mut();
                let value = |text: String| {
                    header::HeaderValue::from_str(&text)
                        .expect("validated user names are header-safe")
                };
                headers.insert("x-authenticated-user", value(user.clone()));
                headers.insert(
                    "x-authenticated-email",
                    value(format!("{user}@example.com")),
                );
                headers.insert("x-authenticated-name", value(user));
                response
            }
            None => reply(StatusCode::UNAUTHORIZED, "text/plain", "not logged in"),
        },
        "/login" => {
            let user = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("user=")))
                .unwrap_or("");
            if !valid_user(user) {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "user: letters, digits, . _ - (up to 64)",
                );
            }
            redirect_home(&format!(
                "demo_session={user}; Path=/; HttpOnly; Secure; SameSite=Lax"
            ))
        }
        "/logout" => {
            redirect_home("demo_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
        }
        "/" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page(session(request).as_deref()),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

/// The demo app's page: plain HTML, no Tether code. Tether puts the widgets on it.
fn page(user: Option<&str>) -> String {
    let body = match user {
        None => r#"<p>Nobody is logged in.</p>
<form action="/login"><label>Log in as <input name="user" value="alice" pattern="[A-Za-z0-9._-]{1,64}"></label>
<button>Log in</button></form>"#
            .to_string(),
        Some(user) => format!(
            r#"<p>Logged in as <b>{user}</b>. <a href="/logout">Log out</a></p>
<p>This page has no Tether code in it: Tether adds its loader as the page streams through, and
the chat bubbles in the corner are the sandbox's stand-ins for LiveChat's widget, LivePerson's
lpTag, Zendesk's messenger, Intercom's Messenger and a Salesforce deployment, each naming the
user as that vendor verified it.</p>"#
        ),
    };
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Tether demo</title>
<style>body{{font:16px system-ui;margin:2em auto;max-width:48em}}</style></head><body>
<h1>Tether demo app</h1>{body}
</body></html>"#
    )
}
