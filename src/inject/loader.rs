//! `{prefix}/inject/loader.js`: the one script `[inject]` puts on pages. It carries every
//! injected vendor's page part (`vendors::PagePart`) and runs them in turn; the same for every
//! visitor, so browsers may cache it.

use crate::config::Config;
use crate::vendors::PagePart;
use bytes::Bytes;

/// The loader for this configuration and these vendors' parts.
pub fn render(config: &Config, parts: &[PagePart]) -> Bytes {
    let parts: Vec<String> = parts
        .iter()
        .map(|part| {
            // JSON in a script: `</` must not end the script element if a value ever holds it.
            let settings = part.settings.to_string().replace("</", "<\\/");
            format!(
                "    {{ name: {name:?}, settings: {settings}, run: {run} }}",
                name = part.name,
                run = part.script
            )
        })
        .collect();
    let script = include_str!("loader.js")
        .replace("{{PREFIX}}", &config.reserved.prefix)
        .replace(
            "{{ANONYMOUS_WIDGET}}",
            if config.inject.anonymous_widget {
                "true"
            } else {
                "false"
            },
        )
        .replace("{{PARTS}}", &parts.join(",\n"));
    Bytes::from(script)
}
