//! Putting the chat widget and its identity on the app's pages as they stream through
//! (`[inject]`), so a legacy app needs no template change.
//!
//! The proxy asks twice per forwarded request: `Injector::candidate` on the way in (a GET
//! navigation under `inject.paths`: the app is then asked for the page uncompressed), and
//! `Injector::respond` on the way out (a 200 `text/html` page the tags may run on gets its body
//! wrapped in an `InjectedBody`). Everything else passes byte for byte. What goes in is one
//! same-origin script, `{prefix}/inject/loader.js` (`loader`), which sets up the vendors.

pub mod body;
pub mod coding;
pub mod csp;
mod headers;
pub mod loader;
mod page;
pub mod rewrite;
pub mod splice;

pub use body::InjectedBody;
pub use page::Candidate;

use crate::config::{AppEncoding, Config, IdentitySource, InjectPosition};
use crate::metrics::{InjectSkip, Metrics};
use coding::{Decoder, Encoder, InputCoding, OutputCoding};
use csp::{Origin, Verdict};
use headers::{
    charset_of, compressible, content_security_policies, has_cookie, header_has_token, header_text,
    header_values, rewrite_headers,
};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, Method, Response, StatusCode};
use page::{PageSnippet, Visitor};
use rewrite::{Outcome, Transformer};
use std::sync::Arc;

/// What `[inject]` says, prepared once.
struct Settings {
    paths: Vec<String>,
    exclude_paths: Vec<String>,
    head: bool,
    /// The loader's path, when a vendor is injected.
    loader: Option<String>,
    /// Scripts the markup makes the page load: the loader and the vendors' entry scripts.
    scripts: Vec<String>,
    extra_html: String,
    /// The identity header: a trusted gateway's on the request in header mode (`gateway`), or
    /// the app's on the page's response.
    user_header: HeaderName,
    gateway: bool,
    session_cookie: Option<String>,
    gzip_level: u32,
    /// Ask the app for gzip when the client takes it (`app_encoding = "gzip"`).
    ask_app_for_gzip: bool,
    /// The users' page keys, when a vendor is injected.
    user_keys: Option<Arc<crate::user_key::UserKeys>>,
    visitor_data: Option<VisitorData>,
}

#[cfg(test)]
impl Settings {
    /// A loader and extra markup, nothing else.
    fn for_test(loader: &str, extra_html: &str) -> Self {
        Self {
            paths: vec!["/".into()],
            exclude_paths: Vec::new(),
            head: true,
            loader: Some(loader.into()),
            scripts: vec![loader.into()],
            extra_html: extra_html.into(),
            user_header: HeaderName::from_static("x-authenticated-user"),
            gateway: false,
            session_cookie: None,
            gzip_level: 1,
            ask_app_for_gzip: false,
            user_keys: None,
            visitor_data: None,
        }
    }
}

/// What the vendors give `[inject]`: the scripts an injected page loads (the loader's path
/// first, then the vendors' widgets: the page's CSP must allow them), and the users' page keys
/// (the tag says whose page it is).
#[derive(Clone)]
pub struct PageInputs {
    pub scripts: Vec<String>,
    pub user_keys: Arc<crate::user_key::UserKeys>,
    /// What the vendors' parts may know about a signed-in user: (vendor, JSON) pairs.
    pub visitor_data: VisitorData,
}

/// Per vendor, what an injected page may know about its signed-in user (`Vendor::page_visitor`).
pub type VisitorData = Arc<dyn Fn(&str) -> Vec<(&'static str, String)> + Send + Sync>;

pub struct Injector {
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
}

/// Why a page under `inject.paths` did not get the snippet, or that it did.
enum Decision {
    Inject,
    Skip(InjectSkip),
    /// Not an HTML page at all (not counted).
    NotAPage,
}

impl Injector {
    /// None when `[inject]` is off. `page`: None when no vendor is injected (only `extra_html`
    /// goes in).
    pub fn new(config: &Config, metrics: Arc<Metrics>, page: Option<&PageInputs>) -> Option<Self> {
        let inject = &config.inject;
        if !inject.enabled {
            return None;
        }
        let scripts = page.map(|page| page.scripts.clone()).unwrap_or_default();
        let loader = scripts.first().cloned();
        let user_keys = page.map(|page| page.user_keys.clone());
        let visitor_data = page.map(|page| page.visitor_data.clone());
        let settings = Settings {
            paths: inject.paths.clone(),
            exclude_paths: inject.exclude_paths.clone(),
            head: inject.position == InjectPosition::Head,
            loader,
            scripts,
            extra_html: inject.extra_html.clone(),
            user_header: config.identity.user_header.clone(),
            gateway: config.identity.source == IdentitySource::Header,
            session_cookie: Some(inject.session_cookie.clone()).filter(|c| !c.is_empty()),
            gzip_level: inject.compression_level,
            ask_app_for_gzip: inject.app_encoding == AppEncoding::Gzip,
            user_keys,
            visitor_data,
        };
        Some(Self {
            settings: Arc::new(settings),
            metrics,
        })
    }

    /// Whether a GET for `path` could be a page to inject (under `paths`, not excluded): the
    /// HTTP/1 engine leaves those to the hyper path.
    pub fn may_inject(&self, path: &str) -> bool {
        let s = &self.settings;
        s.paths.iter().any(|p| under(path, p)) && !s.exclude_paths.iter().any(|p| under(path, p))
    }

    /// The request side: a GET navigation to a page under `paths` is a candidate. The app is
    /// then asked for it uncompressed (Tether compresses for the client after rewriting).
    /// `from_gateway`: the request came from a trusted gateway in header mode (its identity
    /// headers are still on the request).
    pub fn candidate(
        &self,
        parts: &mut request::Parts,
        from_gateway: bool,
        scheme: &str,
    ) -> Option<Candidate> {
        if parts.method != Method::GET || !is_navigation(&parts.headers) {
            return None;
        }
        let path = parts.uri.path();
        let s = &self.settings;
        if !s.paths.iter().any(|p| under(path, p)) || s.exclude_paths.iter().any(|p| under(path, p))
        {
            return None;
        }
        let accepted: Vec<&str> = header_values(&parts.headers, header::ACCEPT_ENCODING);
        let coding = OutputCoding::for_client(&accepted);
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| header_text(&parts.headers, header::HOST))
            .unwrap_or_default();
        let visitor = self.visitor_of_request(&parts.headers, from_gateway);
        // Uncompressed, unless the app serves pages compressed once (then gzip is spliced).
        let ask = if s.ask_app_for_gzip && coding == OutputCoding::Gzip {
            "gzip"
        } else {
            "identity"
        };
        parts
            .headers
            .insert(header::ACCEPT_ENCODING, HeaderValue::from_static(ask));
        Some(Candidate {
            coding,
            visitor,
            origin: Origin::new(scheme, &host),
            path: path.to_string(),
        })
    }

    fn visitor_of_request(&self, headers: &HeaderMap, from_gateway: bool) -> Visitor {
        if from_gateway && self.settings.gateway {
            return match header_text(headers, &self.settings.user_header).filter(|u| !u.is_empty())
            {
                Some(user) => self.signed_in(&user),
                None => Visitor::Anonymous,
            };
        }
        match &self.settings.session_cookie {
            Some(cookie) if !has_cookie(headers, cookie) => Visitor::Anonymous,
            _ => Visitor::Unknown,
        }
    }

    /// A signed-in visitor by their page key (Unknown while the key's secret is not known).
    fn signed_in(&self, user: &str) -> Visitor {
        let Some(key) = self
            .settings
            .user_keys
            .as_ref()
            .and_then(|keys| keys.key_for(user))
        else {
            return Visitor::Unknown;
        };
        let vendors = self
            .settings
            .visitor_data
            .as_ref()
            .map(|data| data(user))
            .unwrap_or_default();
        Visitor::SignedIn(key, vendors)
    }

    /// The response side: the page with its body rewritten as it streams, or the response as
    /// it was (`Err`) when it is not a page to touch.
    pub fn respond<B>(
        &self,
        mut candidate: Candidate,
        mut response: Response<B>,
    ) -> Result<Response<InjectedBody<B>>, Box<Response<B>>> {
        if candidate.visitor == Visitor::Unknown {
            if let Some(user) = header_text(response.headers(), &self.settings.user_header)
                .filter(|u| !u.is_empty())
            {
                candidate.visitor = self.signed_in(&user);
            }
        }
        let (decision, input) = self.decide(&response);
        let policies = content_security_policies(response.headers());
        let decision = match decision {
            Decision::Inject
                if page::csp_verdict(&self.settings, &policies, &candidate.origin)
                    == Verdict::Blocked =>
            {
                Decision::Skip(InjectSkip::Csp)
            }
            decision => decision,
        };
        let transformer = match decision {
            Decision::Inject => {
                let encoding = charset_of(response.headers()).expect("checked by decide");
                // A gzipped page for a gzip client: spliced, not compressed again (and no
                // codec state is made for it: zlib's costs more to set up than a splice).
                let splice = input == InputCoding::Gzip && candidate.coding == OutputCoding::Gzip;
                let transformer = Transformer::new(
                    Arc::new(PageSnippet::new(self.settings.clone(), &candidate)),
                    policies,
                    self.settings.head,
                    encoding,
                    (!splice).then(|| Decoder::new(input)).flatten(),
                    (!splice)
                        .then(|| Encoder::new(candidate.coding, self.settings.gzip_level))
                        .flatten(),
                );
                if splice {
                    transformer.splicing(self.settings.gzip_level)
                } else {
                    transformer
                }
            }
            // Unchanged content; compressed when Tether asked the app for it plain.
            Decision::Skip(reason) => {
                self.skipped(reason, &candidate);
                let untouchable = matches!(
                    reason,
                    InjectSkip::NoTransform | InjectSkip::Attachment | InjectSkip::Encoding
                );
                match self.compressing(&candidate) {
                    Some(compressing) if !untouchable && input == InputCoding::Identity => {
                        compressing
                    }
                    _ => return Err(Box::new(response)),
                }
            }
            Decision::NotAPage => match self.compressing(&candidate) {
                Some(compressing) if compressible(&response, input) => compressing,
                _ => return Err(Box::new(response)),
            },
        };
        let injecting = matches!(decision, Decision::Inject);
        rewrite_headers(response.headers_mut(), candidate.coding, injecting);
        let report = injecting.then(|| self.report(candidate));
        Ok(response.map(|body| InjectedBody::new(body, transformer, report)))
    }

    /// Whether the response is a page to rewrite, and the coding to undo.
    fn decide<B>(&self, response: &Response<B>) -> (Decision, InputCoding) {
        let headers = response.headers();
        let input = InputCoding::parse(header_text(headers, header::CONTENT_ENCODING).as_deref());
        let is_html = header_text(headers, header::CONTENT_TYPE).is_some_and(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/html")
        });
        if response.status() != StatusCode::OK || !is_html {
            return (Decision::NotAPage, input.unwrap_or(InputCoding::Identity));
        }
        let decision = if header_has_token(headers, header::CONTENT_DISPOSITION, "attachment") {
            Decision::Skip(InjectSkip::Attachment)
        } else if header_has_token(headers, header::CACHE_CONTROL, "no-transform") {
            Decision::Skip(InjectSkip::NoTransform)
        } else if input.is_none() {
            Decision::Skip(InjectSkip::Encoding)
        } else if charset_of(headers).is_none() {
            Decision::Skip(InjectSkip::Charset)
        } else {
            Decision::Inject
        };
        (decision, input.unwrap_or(InputCoding::Identity))
    }

    /// A stream that only compresses, when the client takes a coding.
    fn compressing(&self, candidate: &Candidate) -> Option<Transformer> {
        Encoder::new(candidate.coding, self.settings.gzip_level).map(Transformer::compressing)
    }

    fn skipped(&self, reason: InjectSkip, candidate: &Candidate) {
        self.metrics.page_skipped(reason);
        if matches!(reason, InjectSkip::Csp) && self.metrics.first_csp_warning() {
            page::warn_csp(&self.settings, candidate);
        }
    }

    /// Counts the page once the stream knows how it came out.
    fn report(&self, candidate: Candidate) -> body::Report {
        let metrics = self.metrics.clone();
        let settings = self.settings.clone();
        Box::new(move |outcome| match outcome {
            Outcome::Injected => metrics.page_injected(),
            Outcome::BlockedByCsp => {
                metrics.page_skipped(InjectSkip::Csp);
                if metrics.first_csp_warning() {
                    page::warn_csp(&settings, &candidate);
                }
            }
            Outcome::NotAsciiCompatible => metrics.page_skipped(InjectSkip::Charset),
            Outcome::RewriteFailed => metrics.page_skipped(InjectSkip::RewriteFailed),
            Outcome::Pending => {}
        })
    }
}

/// A top-level navigation: `Sec-Fetch-Dest: document` when the browser says (frames, fetches
/// and htmx partials say otherwise), else an `Accept` that asks for HTML. Upgrades and range
/// requests are never pages to rewrite.
fn is_navigation(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::UPGRADE) || headers.contains_key(header::RANGE) {
        return false;
    }
    if let Some(dest) = header_text(headers, "sec-fetch-dest") {
        return dest.eq_ignore_ascii_case("document");
    }
    header_values(headers, header::ACCEPT)
        .iter()
        .any(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// `prefix` covers `path` on whole segments ("/shop" covers "/shop/cart", not "/shopping"),
/// or as a plain prefix when it ends with "/".
fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_whole_segments() {
        assert!(under("/shop", "/shop"));
        assert!(under("/shop/cart", "/shop"));
        assert!(!under("/shopping", "/shop"));
        assert!(under("/anything", "/"));
        assert!(!under("/shopping", "/shop/"));
        assert!(under("/shop/x", "/shop/"));
    }

    #[test]
    fn navigations() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,*/*;q=0.8"),
        );
        assert!(is_navigation(&headers));
        headers.insert("sec-fetch-dest", HeaderValue::from_static("iframe"));
        assert!(!is_navigation(&headers));
        headers.insert("sec-fetch-dest", HeaderValue::from_static("document"));
        assert!(is_navigation(&headers));
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert!(!is_navigation(&headers));
        let mut api = HeaderMap::new();
        api.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!is_navigation(&api));
    }

    #[test]
    fn charsets() {
        let with = |ct: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            charset_of(&headers).is_some()
        };
        assert!(with("text/html"));
        assert!(with("text/html; charset=UTF-8"));
        assert!(with("text/html; charset=\"iso-8859-1\""));
        assert!(with("text/html;charset=shift_jis"));
        assert!(!with("text/html; charset=utf-16"));
        assert!(!with("text/html; charset=no-such-charset"));
    }
}
