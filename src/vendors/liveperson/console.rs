//! Where LivePerson's side finds Tether (discovery, and what `tether liveperson console` tells
//! the brand to enter in LivePerson's console), from one list of endpoints.

use crate::config::{Config, PageFlow};
use crate::signing::keys;

/// The OpenID provider's endpoints below the issuer.
pub const AUTHORIZE: &str = "/oauth/authorize";
pub const TOKEN: &str = "/oauth/token";
pub use crate::signing::JWKS_PATH as JWKS;
pub const DISCOVERY: &str = "/.well-known/openid-configuration";

/// One setting of LivePerson's console: its name there, the value, and a note.
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub note: String,
}

fn setting(name: &'static str, value: impl Into<String>, note: impl Into<String>) -> Setting {
    Setting {
        name,
        value: value.into(),
        note: note.into(),
    }
}

/// Every value the brand enters in LivePerson's console (Conversational Cloud, the connector's
/// consumer authentication settings; docs/vendors/liveperson.md), from the configuration. Err
/// names the config key that must be set first.
pub fn settings(config: &Config) -> Result<Vec<Setting>, (&'static str, String)> {
    let lp = &config.liveperson;
    if lp.issuer.is_empty() {
        return Err((
            "liveperson.issuer",
            format!(
                "LivePerson needs one fixed issuer: set it to the public URL of Tether's prefix, \
                 such as \"https://www.example.com{}\"",
                config.reserved.prefix
            ),
        ));
    }
    let issuer = lp.issuer.trim_end_matches('/');
    let (name, path) = config.signing_key();
    let key = keys::load_signing_key(path).map_err(|why| (name, why))?;
    let public_key = keys::console_public_key(&key).map_err(|why| (name, why))?;
    let flow = match lp.page_flow {
        PageFlow::Jwt => "Implicit Flow (the page hands LivePerson a signed JWT)",
        PageFlow::Code => "Code Flow (the page hands LivePerson a code; LivePerson redeems it)",
    };
    let mut list = vec![
        setting("Flow", flow, "liveperson.page_flow"),
        setting(
            "JWT issuer",
            issuer,
            "the tokens' iss; the identity function says the same",
        ),
        setting(
            "JWKS endpoint",
            format!("{issuer}{JWKS}"),
            format!("or paste the public key below instead; kid {}", key.kid),
        ),
        setting(
            "JWT public key",
            public_key,
            "one line, for a console that takes a pasted key",
        ),
        setting(
            "Authorization endpoint",
            format!("{issuer}{AUTHORIZE}"),
            "the popup / separate-window flow",
        ),
        setting(
            "Token endpoint",
            format!("{issuer}{TOKEN}"),
            "Code Flow: LivePerson's servers redeem codes here",
        ),
        setting("Client ID", lp.client_id.clone(), "liveperson.client_id"),
        setting(
            "Client Secret",
            "(the value of liveperson.client_secret; not printed)",
            "sent as HTTP Basic (client_secret_basic); body credentials are accepted too",
        ),
        setting(
            "Authentication method",
            lp.auth_method.clone(),
            "the page function LivePerson calls for a token (liveperson.auth_method)",
        ),
    ];
    list.push(match &lp.encryption_key {
        Some(path) => setting(
            "JWT encryption",
            format!(
                "on: RSA-OAEP-256 / {}, kid {}",
                lp.encryption_enc.name(),
                if lp.encryption_kid.is_empty() {
                    "(none)"
                } else {
                    &lp.encryption_kid
                }
            ),
            format!("with LivePerson's public key from {}", path.display()),
        ),
        None => setting(
            "JWT encryption",
            "off",
            "set liveperson.encryption_key to LivePerson's key to hide claims from the consumer",
        ),
    });
    list.push(setting(
        "Popup redirect URL",
        lp.redirect_uris.iter().collect::<Vec<_>>().join(" "),
        popup_note(config),
    ));
    Ok(list)
}

fn popup_note(config: &Config) -> String {
    let lp = &config.liveperson;
    let mut note = String::from(
        "where Tether may send a popup's answer (liveperson.redirect_uris, exact match); \
         Tether logs the first redirect_uri it refuses, which is how LivePerson's window URL is \
         learnt",
    );
    if lp.redirect_uri_prefixes.is_empty() {
        note.push_str(
            "; connectors created before May 2018 send per-visitor URLs: allow them with \
             liveperson.redirect_uri_prefixes",
        );
    } else {
        note.push_str(&format!(
            "; legacy connectors' window URLs allowed under {}",
            lp.redirect_uri_prefixes.join(" ")
        ));
    }
    note
}
