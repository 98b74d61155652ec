//! `{prefix}/inject/loader.js`: the one script `[inject]` puts on pages. It carries the vendors'
//! page scripts (LiveChat's identity provider, LivePerson's identity function) and sets up the
//! vendors' widgets; the same for every visitor, so browsers may cache it.

use crate::config::Config;
use bytes::Bytes;
use serde_json::json;

/// The loader for this configuration. `livechat_provider` and `liveperson_identity` are the
/// vendors' rendered page scripts, present when that vendor is injected.
pub fn render(
    config: &Config,
    livechat_provider: Option<&str>,
    liveperson_identity: Option<&str>,
) -> Bytes {
    let inject = &config.inject;
    let livechat = livechat_provider.map(|_| {
        json!({
            "license": config.livechat.license_id,
            "group": inject.livechat_group,
            "widget": inject.livechat_widget_src,
        })
    });
    let liveperson = liveperson_identity.map(|_| {
        json!({
            "site": inject.liveperson_site_id,
            "tag": inject.liveperson_tag_url(),
        })
    });
    let settings = json!({
        "livechat": livechat,
        "liveperson": liveperson,
        "anonymousWidget": inject.anonymous_widget,
    });
    // JSON in a script: `</` must not end the script element if a value ever holds it.
    let settings = settings.to_string().replace("</", "<\\/");
    let script = include_str!("loader.js")
        .replace("{{PREFIX}}", &config.reserved.prefix)
        .replace("{{CONFIG}}", &settings)
        .replace("{{LIVEPERSON}}", liveperson_identity.unwrap_or(""))
        .replace("{{LIVECHAT}}", livechat_provider.unwrap_or(""));
    Bytes::from(script)
}
