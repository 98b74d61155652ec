//! Content-Security-Policy, read only as far as the injected `<script src>` tags need: would the
//! page's policies let them run, and with which nonce. Tether never changes a policy; a page
//! whose policy would block the tags is passed unchanged (CSP Level 3, section 6.7 matching).

/// A script the injected markup loads, located for source matching.
#[derive(Debug, Clone)]
pub struct ScriptUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

impl ScriptUrl {
    /// `src` as the page would resolve it: a path is on the page's own origin.
    pub fn resolve(src: &str, page: &Origin) -> Option<Self> {
        if src.starts_with('/') && !src.starts_with("//") {
            return Some(Self {
                scheme: page.scheme.clone(),
                host: page.host.clone(),
                port: page.port,
                path: src.split(['?', '#']).next().unwrap_or("/").to_string(),
            });
        }
        let url = url::Url::parse(src).ok()?;
        Some(Self {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port(),
            path: url.path().to_string(),
        })
    }

    fn port_or_default(&self) -> Option<u16> {
        self.port.or(default_port(&self.scheme))
    }
}

/// The page's origin (`'self'`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl Origin {
    fn port_or_default(&self) -> Option<u16> {
        self.port.or(default_port(&self.scheme))
    }

    /// From the request's scheme and Host (or authority) value.
    pub fn new(scheme: &str, host: &str) -> Self {
        let (name, port) = split_host_port(host);
        Self {
            scheme: scheme.to_string(),
            host: name.to_ascii_lowercase(),
            port: port
                .and_then(|p| p.parse().ok())
                .filter(|p| Some(*p) != default_port(scheme)),
        }
    }
}

/// The policies in force on one page (`Content-Security-Policy` headers and `<meta>` tags; a
/// report-only policy blocks nothing and is not read).
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// For each policy, the source list that governs `<script src>` elements, if it has one.
    script_lists: Vec<Vec<String>>,
}

/// Whether the tags may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// They may, carrying this nonce (when a policy asks for one).
    Allowed {
        nonce: Option<String>,
    },
    Blocked,
}

impl Policies {
    /// Adds one header value, which may hold several policies separated by commas.
    pub fn add(&mut self, value: &str) {
        for policy in value.split(',') {
            if let Some(list) = script_list(policy) {
                self.script_lists.push(list);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.script_lists.is_empty()
    }

    /// Every policy must allow every script. A nonce found in any policy is tried: the loader
    /// hands its own nonce to the scripts it inserts, so one nonce covers them all.
    pub fn verdict(&self, scripts: &[ScriptUrl], page: &Origin) -> Verdict {
        let nonce = self
            .script_lists
            .iter()
            .flatten()
            .find_map(|source| nonce_of(source))
            .map(str::to_string);
        let allowed = self.script_lists.iter().all(|list| {
            scripts
                .iter()
                .all(|script| list_allows(list, script, page, nonce.as_deref()))
        });
        if allowed {
            Verdict::Allowed { nonce }
        } else {
            Verdict::Blocked
        }
    }
}

/// The effective list for script elements: `script-src-elem`, else `script-src`, else
/// `default-src`; None when the policy restricts no scripts.
fn script_list(policy: &str) -> Option<Vec<String>> {
    let mut directives: Vec<(String, Vec<String>)> = Vec::new();
    for directive in policy.split(';') {
        let mut tokens = directive.split_ascii_whitespace();
        let Some(name) = tokens.next() else { continue };
        let name = name.to_ascii_lowercase();
        // The first occurrence of a directive wins; later duplicates are ignored.
        if directives.iter().all(|(seen, _)| *seen != name) {
            directives.push((name, tokens.map(str::to_string).collect()));
        }
    }
    ["script-src-elem", "script-src", "default-src"]
        .iter()
        .find_map(|wanted| directives.iter().find(|(name, _)| name == wanted))
        .map(|(_, list)| list.clone())
}

fn nonce_of(source: &str) -> Option<&str> {
    let inner = source.strip_prefix('\'')?.strip_suffix('\'')?;
    let (kind, value) = inner.split_once('-')?;
    (kind.eq_ignore_ascii_case("nonce") && !value.is_empty()).then_some(value)
}

fn list_allows(list: &[String], script: &ScriptUrl, page: &Origin, nonce: Option<&str>) -> bool {
    if nonce.is_some_and(|nonce| list.iter().any(|s| nonce_of(s) == Some(nonce))) {
        return true;
    }
    // With 'strict-dynamic', host and scheme sources are ignored: only nonces and hashes count.
    if list
        .iter()
        .any(|s| s.eq_ignore_ascii_case("'strict-dynamic'"))
    {
        return false;
    }
    list.iter()
        .any(|source| source_matches(source, script, page))
}

fn source_matches(source: &str, script: &ScriptUrl, page: &Origin) -> bool {
    // Keywords and schemes are case-insensitive; a host-source's path is not.
    let lower = source.to_ascii_lowercase();
    if lower == "'self'" {
        return same_origin_or_upgrade(script, page);
    }
    if lower.starts_with('\'') {
        return false; // 'none', 'unsafe-inline', hashes, nonces (handled above), ...
    }
    if lower == "*" {
        return matches!(script.scheme.as_str(), "http" | "https") || script.scheme == page.scheme;
    }
    if let Some(scheme) = lower.strip_suffix(':') {
        return scheme_matches(scheme, &script.scheme);
    }
    host_source_matches(source, script, page)
}

/// CSP3 section 6.7.2.8 for a host-source (`[scheme://]host[:port][/path]`).
fn host_source_matches(source: &str, script: &ScriptUrl, page: &Origin) -> bool {
    let (scheme, rest) = match source.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, source),
    };
    let scheme_ok = match &scheme {
        Some(scheme) => scheme_matches(scheme, &script.scheme),
        None => scheme_matches(&page.scheme, &script.scheme),
    };
    if !scheme_ok {
        return false;
    }
    let (host_port, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(host_port);
    let host = host.to_ascii_lowercase();
    let host_ok = match host.strip_prefix('*') {
        Some("") => true,
        Some(parent) if parent.starts_with('.') => script.host.ends_with(parent),
        _ => host == script.host,
    };
    host_ok && port_matches(port, script) && path_matches(path, &script.path)
}

/// Port-part matching: no port in the source matches only a URL whose port is its scheme's
/// default (so `http://host` does not match `https://host:80`).
fn port_matches(port: Option<&str>, script: &ScriptUrl) -> bool {
    match port {
        Some("*") => true,
        Some(port) => {
            let wanted = port.parse::<u16>().ok();
            wanted == script.port
                || (script.port.is_none() && wanted == default_port(&script.scheme))
        }
        None => script.port.is_none(),
    }
}

/// Path-part matching: segment by segment after percent-decoding, case-sensitive; a path
/// ending in `/` matches everything below it.
fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern.is_empty() || pattern == "/" {
        return true;
    }
    let exact = !pattern.ends_with('/');
    let mut wanted: Vec<&str> = pattern.split('/').collect();
    let actual: Vec<&str> = path.split('/').collect();
    if !exact {
        wanted.pop();
    }
    if wanted.len() > actual.len() || (exact && wanted.len() != actual.len()) {
        return false;
    }
    let decoded = |piece: &str| percent_encoding::percent_decode_str(piece).collect::<Vec<u8>>();
    wanted
        .iter()
        .zip(&actual)
        .all(|(a, b)| decoded(a) == decoded(b))
}

/// Scheme-part matching, with the upgrades a browser allows (`http:` covers `https:`, `ws:`
/// covers every network scheme, `wss:` covers `https:`).
fn scheme_matches(source: &str, actual: &str) -> bool {
    source == actual
        || matches!(
            (source, actual),
            ("http", "https") | ("ws", "wss" | "http" | "https") | ("wss", "https")
        )
}

/// `'self'`: the page's origin, or its secure upgrade on the same host (ports the same, or
/// each the default for its scheme).
fn same_origin_or_upgrade(script: &ScriptUrl, page: &Origin) -> bool {
    if script.host != page.host {
        return false;
    }
    if script.scheme == page.scheme && script.port_or_default() == page.port_or_default() {
        return true;
    }
    let upgrade = matches!(script.scheme.as_str(), "https" | "wss")
        || (page.scheme == "http" && script.scheme == "http");
    let ports_ok = script.port == page.port || (script.port.is_none() && page.port.is_none());
    upgrade && ports_ok && scheme_matches(&page.scheme, &script.scheme)
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// "host:port" -> ("host", Some("port")); an IPv6 address keeps its brackets, as URLs write it
/// (`[::1]:8443` -> ("[::1]", Some("8443"))).
fn split_host_port(host: &str) -> (&str, Option<&str>) {
    let after_address = if host.starts_with('[') {
        host.find(']').map_or(host.len(), |end| end + 1)
    } else {
        0
    };
    match host[after_address..].rfind(':') {
        Some(colon) => {
            let at = after_address + colon;
            (&host[..at], Some(&host[at + 1..]))
        }
        None => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Origin {
        Origin::new("https", "shop.example.com")
    }

    fn scripts() -> Vec<ScriptUrl> {
        [
            "/.tether/inject/loader.js",
            "https://cdn.livechatinc.com/tracking.js",
        ]
        .iter()
        .map(|src| ScriptUrl::resolve(src, &page()).unwrap())
        .collect()
    }

    fn verdict(headers: &[&str]) -> Verdict {
        let mut policies = Policies::default();
        for header in headers {
            policies.add(header);
        }
        policies.verdict(&scripts(), &page())
    }

    fn allowed(nonce: Option<&str>) -> Verdict {
        Verdict::Allowed {
            nonce: nonce.map(str::to_string),
        }
    }

    #[test]
    fn no_script_restriction_allows_the_tags() {
        assert_eq!(verdict(&[]), allowed(None));
        assert_eq!(
            verdict(&["img-src 'self'; frame-ancestors 'none'"]),
            allowed(None)
        );
    }

    #[test]
    fn a_nonce_is_used_for_every_tag() {
        let csp = "script-src 'nonce-r4nd0m' 'strict-dynamic'; object-src 'none'";
        assert_eq!(verdict(&[csp]), allowed(Some("r4nd0m")));
        // A nonce in default-src counts when script-src is absent.
        assert_eq!(verdict(&["default-src 'nonce-abc'"]), allowed(Some("abc")));
    }

    #[test]
    fn self_and_the_vendor_host_allow_the_tags() {
        let csp = "script-src 'self' https://cdn.livechatinc.com";
        assert_eq!(verdict(&[csp]), allowed(None));
        assert_eq!(
            verdict(&["script-src 'self' *.livechatinc.com"]),
            allowed(None)
        );
        assert_eq!(verdict(&["script-src 'self' https:"]), allowed(None));
        assert_eq!(verdict(&["default-src *"]), allowed(None));
        assert_eq!(
            verdict(&["script-src https://shop.example.com https://cdn.livechatinc.com/"]),
            allowed(None)
        );
    }

    #[test]
    fn policies_that_block_either_tag_block_the_page() {
        for csp in [
            "script-src 'self'",
            "default-src 'self'",
            "script-src 'none'",
            "script-src 'self' 'strict-dynamic' https://cdn.livechatinc.com",
            "script-src 'unsafe-inline' 'sha256-abc='",
            "script-src 'self' https://cdn.livechatinc.com/other.js",
            "script-src 'self' http://cdn.livechatinc.com:8080",
            "script-src-elem 'self'; script-src *",
        ] {
            assert_eq!(verdict(&[csp]), Verdict::Blocked, "{csp}");
        }
        // Every policy must allow: a second, stricter policy blocks.
        assert_eq!(
            verdict(&["script-src *", "script-src 'self'"]),
            Verdict::Blocked
        );
        assert_eq!(
            verdict(&["script-src * , script-src 'self'"]),
            Verdict::Blocked
        );
    }

    #[test]
    fn a_nonce_policy_and_a_host_policy_together() {
        let both = [
            "script-src 'nonce-n1'",
            "script-src 'self' cdn.livechatinc.com",
        ];
        assert_eq!(verdict(&both), allowed(Some("n1")));
    }

    #[test]
    fn hosts_and_ports_split_like_urls() {
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(split_host_port("example.com:*"), ("example.com", Some("*")));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
        assert_eq!(split_host_port("[::1]:8443"), ("[::1]", Some("8443")));
        let page = Origin::new("https", "[::1]:8443");
        let loader = ScriptUrl::resolve("/x.js", &page).unwrap();
        let mut policies = Policies::default();
        policies.add("script-src https://[::1]:8443");
        assert_eq!(policies.verdict(&[loader], &page), allowed(None));
    }

    #[test]
    fn origins_with_ports() {
        let page = Origin::new("https", "localhost:8443");
        let loader = ScriptUrl::resolve("/.tether/inject/loader.js", &page).unwrap();
        let sandbox = ScriptUrl::resolve("http://127.0.0.1:5000/widget.js", &page).unwrap();
        let mut policies = Policies::default();
        policies.add("script-src 'self' http://127.0.0.1:5000");
        assert_eq!(
            policies.verdict(&[loader.clone(), sandbox.clone()], &page),
            allowed(None)
        );
        let mut policies = Policies::default();
        policies.add("script-src 'self' http://127.0.0.1");
        assert_eq!(
            policies.verdict(&[loader, sandbox], &page),
            Verdict::Blocked
        );
    }

    #[test]
    fn source_paths_are_case_sensitive_and_ports_follow_the_scheme() {
        let page = page();
        let script = ScriptUrl::resolve("https://cdn.example.com/Widget.js", &page).unwrap();
        let check = |csp: &str| {
            let mut policies = Policies::default();
            policies.add(csp);
            policies.verdict(std::slice::from_ref(&script), &page)
        };
        assert_eq!(
            check("script-src https://CDN.example.com/Widget.js"),
            allowed(None)
        );
        assert_eq!(
            check("script-src https://cdn.example.com/widget.js"),
            Verdict::Blocked
        );
        let on_80 = ScriptUrl::resolve("https://cdn.example.com:80/w.js", &page).unwrap();
        let mut policies = Policies::default();
        policies.add("script-src http://cdn.example.com");
        assert_eq!(policies.verdict(&[on_80], &page), Verdict::Blocked);
    }

    /// Our reading against Servo's CSP implementation over generated policies and scripts.
    mod oracle {
        use super::super::*;
        use content_security_policy as servo;
        use proptest::prelude::*;

        fn page_origin() -> impl Strategy<Value = (String, Option<u16>)> {
            (
                prop::sample::select(vec!["http", "https"]),
                prop::sample::select(vec![None, Some(8443), Some(80), Some(443)]),
            )
                .prop_map(|(scheme, port)| (scheme.to_string(), port))
        }

        fn script_url() -> impl Strategy<Value = String> {
            (
                prop::sample::select(vec!["http", "https"]),
                prop::sample::select(vec![
                    "shop.example.com",
                    "cdn.example.com",
                    "a.cdn.example.com",
                ]),
                prop::sample::select(vec!["", ":80", ":443", ":8080", ":8443"]),
                prop::sample::select(vec![
                    "/",
                    "/w.js",
                    "/W.js",
                    "/dir/w.js",
                    "/dir/x/w.js",
                    "/d%69r/w.js",
                ]),
            )
                .prop_map(|(scheme, host, port, path)| format!("{scheme}://{host}{port}{path}"))
        }

        fn source() -> impl Strategy<Value = String> {
            let keyword = prop::sample::select(vec![
                "'self'",
                "*",
                "https:",
                "http:",
                "'none'",
                "'strict-dynamic'",
                "'nonce-n1'",
                "'unsafe-inline'",
            ])
            .prop_map(str::to_string);
            let host = (
                prop::sample::select(vec!["", "http://", "https://", "HTTPS://"]),
                prop::sample::select(vec![
                    "shop.example.com",
                    "cdn.example.com",
                    "*.example.com",
                    "*.cdn.example.com",
                    "*",
                    "CDN.Example.com",
                ]),
                prop::sample::select(vec!["", ":80", ":443", ":8080", ":*"]),
                prop::sample::select(vec![
                    "",
                    "/",
                    "/w.js",
                    "/W.js",
                    "/dir/",
                    "/dir/w.js",
                    "/dir",
                    "/di%72/",
                ]),
            )
                .prop_map(|(scheme, host, port, path)| format!("{scheme}{host}{port}{path}"));
            prop_oneof![keyword, host]
        }

        fn servo_blocks(policy: &str, script: &str, origin: &url::Origin, nonce: &str) -> bool {
            let list = servo::CspList::parse(
                policy,
                servo::PolicySource::Header,
                servo::PolicyDisposition::Enforce,
            );
            let url = url::Url::parse(script).unwrap();
            let request = servo::Request {
                url: url.clone(),
                current_url: url,
                origin: origin.clone(),
                redirect_count: 0,
                destination: servo::Destination::Script,
                initiator: servo::Initiator::None,
                nonce: nonce.to_string(),
                integrity_metadata: String::new(),
                parser_metadata: servo::ParserMetadata::ParserInserted,
            };
            list.should_request_be_blocked(&request).0 == servo::CheckResult::Blocked
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
            #[test]
            fn our_reading_agrees_with_servos(
                (scheme, port) in page_origin(),
                script in script_url(),
                sources in prop::collection::vec(source(), 1..4),
            ) {
                let host = match port {
                    Some(port) => format!("shop.example.com:{port}"),
                    None => "shop.example.com".to_string(),
                };
                let page = Origin::new(&scheme, &host);
                let resolved = ScriptUrl::resolve(&script, &page).unwrap();
                let policy = format!("script-src {}", sources.join(" "));
                // Servo compares ports for 'self' across schemes by the page's scheme's
                // default, where CSP3 says each scheme's own (an http page on :80 and its
                // https upgrade on :443 are 'self' in CSP3, not in Servo): not compared.
                let self_upgrade = sources.iter().any(|s| s == "'self'")
                    && resolved.host == page.host
                    && resolved.scheme != page.scheme;
                prop_assume!(!self_upgrade);
                let mut policies = Policies::default();
                policies.add(&policy);
                let ours = policies.verdict(std::slice::from_ref(&resolved), &page);
                let nonce = match &ours {
                    Verdict::Allowed { nonce } => nonce.clone().unwrap_or_default(),
                    Verdict::Blocked => sources
                        .iter()
                        .find_map(|s| nonce_of(s).map(str::to_string))
                        .unwrap_or_default(),
                };
                let origin = url::Url::parse(&format!("{scheme}://{host}/")).unwrap().origin();
                let servo = servo_blocks(&policy, &script, &origin, &nonce);
                prop_assert_eq!(
                    ours == Verdict::Blocked,
                    servo,
                    "policy {:?}, script {}, page {}://{}",
                    policy, script, scheme, host
                );
            }
        }
    }
}
