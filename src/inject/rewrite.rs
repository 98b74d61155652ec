//! The page as it streams: the app's coding undone, the snippet inserted by lol_html (a streaming
//! HTML tokenizer: `</head>` inside a script or a comment is not an end tag), the client's
//! coding applied. Memory is bounded by one chunk plus lol_html's limit for a single tag; a page
//! of any size streams through.
//!
//! Every byte the rewriter holds back is also kept in `pending` until it comes out, so if the
//! rewriter fails (a tag larger than its memory limit) the rest of the page still passes
//! unchanged. With `position = "head"` the rewriter stops once the snippet is in: the rest of the
//! page is copied without being parsed.

use super::coding::{Decoder, Encoder, InputCoding, OutputCoding};
use super::csp::Policies;
use super::splice::{self, Splicer};
use bytes::{Buf, BytesMut};
use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{element, end, AsciiCompatibleEncoding, MemorySettings};
use std::sync::{Arc, Mutex, PoisonError};

/// The most lol_html may buffer for one token before giving up on the page.
const REWRITER_MEMORY: usize = 1 << 20;

/// With position = "head", the rewriter is fed this much at a time (see `html`).
const SLICE: usize = 4096;

/// Decides the markup at the insertion point, when every `<meta>` policy before it is known.
pub trait Snippet: Send + Sync + 'static {
    /// The markup for a page under `policies`, or None when they would block it.
    fn markup(&self, policies: &Policies) -> Option<String>;
}

/// How the page came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not decided yet (the page is still streaming).
    Pending,
    Injected,
    /// A `<meta>` policy forbade the tags.
    BlockedByCsp,
    /// The page is UTF-16 (by its byte-order mark): passed unchanged.
    NotAsciiCompatible,
    /// The rewriter gave up (a tag over its memory limit): the rest passed unchanged.
    RewriteFailed,
}

/// What the handlers share with the stream.
struct PageState {
    /// Header policies, then each `<meta http-equiv=Content-Security-Policy>` met on the way.
    policies: Policies,
    outcome: Outcome,
    /// Bytes the handlers inserted since the stream last looked (in the page's encoding).
    inserted: usize,
    /// And in all.
    inserted_total: usize,
    seen_input: bool,
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(shared: &Shared<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Html {
    Rewriting {
        rewriter: Box<HtmlRewriter<'static, Sink>>,
        /// Input given to the rewriter that has not come out yet.
        pending: BytesMut,
    },
    Passing,
}

/// The rewriter's output, collected for the stream to take after each write.
#[derive(Clone, Default)]
struct Sink(Shared<Vec<u8>>);

impl lol_html::OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        lock(&self.0).extend_from_slice(chunk);
    }
}

pub struct Transformer {
    decoder: Option<Decoder>,
    html: Html,
    encoder: Option<Encoder>,
    state: Shared<PageState>,
    sink: Sink,
    /// position = "head": stop parsing once the snippet is decided.
    stop_after_insertion: bool,
    started: bool,
    /// The encoder took bytes since its last flush.
    unflushed: bool,
    /// A gzipped page for a gzip client: spliced rather than decoded and compressed again
    /// (`splice`), with the gzip level to fall back on.
    splicer: Option<(Box<Splicer>, u32)>,
    /// Decoded bytes the rewriter has already had (after a fallback from splicing).
    skip: usize,
}

impl Transformer {
    pub fn new(
        snippet: Arc<dyn Snippet>,
        policies: Policies,
        head: bool,
        encoding: AsciiCompatibleEncoding,
        decoder: Option<Decoder>,
        encoder: Option<Encoder>,
    ) -> Self {
        let state = Arc::new(Mutex::new(PageState {
            policies,
            outcome: Outcome::Pending,
            inserted: 0,
            inserted_total: 0,
            seen_input: false,
        }));
        let sink = Sink::default();
        let encoding: &'static encoding_rs::Encoding = encoding.into();
        let settings = settings(snippet, &state, head, encoding);
        let rewriter = HtmlRewriter::new(settings, sink.clone());
        Self {
            decoder,
            html: Html::Rewriting {
                rewriter: Box::new(rewriter),
                pending: BytesMut::new(),
            },
            encoder,
            state,
            sink,
            stop_after_insertion: head,
            started: false,
            unflushed: false,
            splicer: None,
            skip: 0,
        }
    }

    /// Splices the app's gzip into the client's (both must be gzip: see `splice`; made
    /// without a decoder and an encoder).
    pub fn splicing(mut self, gzip_level: u32) -> Self {
        debug_assert!(self.decoder.is_none() && self.encoder.is_none());
        self.splicer = Some((Box::default(), gzip_level));
        self
    }

    /// A stream that only compresses (nothing to insert).
    pub fn compressing(encoder: Encoder) -> Self {
        Self {
            decoder: None,
            html: Html::Passing,
            encoder: Some(encoder),
            state: Arc::new(Mutex::new(PageState {
                policies: Policies::default(),
                outcome: Outcome::Pending,
                inserted: 0,
                inserted_total: 0,
                seen_input: false,
            })),
            sink: Sink::default(),
            stop_after_insertion: false,
            started: false,
            unflushed: false,
            splicer: None,
            skip: 0,
        }
    }

    pub fn outcome(&self) -> Outcome {
        lock(&self.state).outcome
    }

    /// One chunk of the app's body; what is ready for the client.
    pub fn push(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        if let Some((mut splicer, level)) = self.splicer.take() {
            let step = splicer.push(data, self);
            self.splicer = Some((splicer, level));
            return self.spliced(step);
        }
        let mut decoded;
        let plain = match &mut self.decoder {
            Some(decoder) => {
                decoder.write(data)?;
                decoded = decoder.take();
                let skip = self.skip.min(decoded.len());
                self.skip -= skip;
                decoded.drain(..skip);
                &decoded[..]
            }
            None => data,
        };
        let html = self.html(plain);
        self.encode(html, false)
    }

    /// Nothing more is ready from the app for now: push out what the encoder holds.
    pub fn flush(&mut self) -> std::io::Result<Vec<u8>> {
        self.encode(Vec::new(), true)
    }

    /// The app's body ended.
    pub fn finish(&mut self) -> std::io::Result<Vec<u8>> {
        if let Some((mut splicer, level)) = self.splicer.take() {
            let step = splicer.finish(self);
            self.splicer = Some((splicer, level));
            let out = self.spliced(step)?;
            if self.splicer.is_some() {
                return Ok(out);
            }
            // Fell back: the decode-and-compress path ends the page.
            let mut rest = self.finish()?;
            rest.splice(0..0, out);
            return Ok(rest);
        }
        let mut plain = Vec::new();
        if let Some(decoder) = &mut self.decoder {
            decoder.finish()?;
            plain = decoder.take();
            let skip = self.skip.min(plain.len());
            self.skip -= skip;
            plain.drain(..skip);
        }
        let mut html = self.html(&plain);
        html.extend(self.end_rewriting());
        let Some(encoder) = &mut self.encoder else {
            return Ok(html);
        };
        encoder.write(&html)?;
        encoder.finish()?;
        Ok(encoder.take())
    }

    /// What the splicer made, or the decode-and-compress path taking over from where it
    /// stood (nothing has been sent yet then).
    fn spliced(
        &mut self,
        step: Result<Vec<u8>, Box<splice::Fallback>>,
    ) -> std::io::Result<Vec<u8>> {
        let fallback = match step {
            Ok(out) => return Ok(out),
            Err(fallback) => fallback,
        };
        let (_, level) = self.splicer.take().expect("splicing");
        let mut encoder = Encoder::new(OutputCoding::Gzip, level).expect("gzip");
        encoder.write(&fallback.rewritten)?;
        self.unflushed = true;
        self.encoder = Some(encoder);
        self.decoder = Decoder::new(InputCoding::Gzip);
        self.skip = fallback.fed;
        self.push(&fallback.input)
    }

    fn encode(&mut self, html: Vec<u8>, flush: bool) -> std::io::Result<Vec<u8>> {
        let Some(encoder) = &mut self.encoder else {
            return Ok(html);
        };
        if !html.is_empty() {
            encoder.write(&html)?;
            self.unflushed = true;
        }
        if flush && self.unflushed {
            encoder.flush()?;
            self.unflushed = false;
        }
        Ok(encoder.take())
    }

    /// Plain page bytes in, plain page bytes out (with the snippet once it is due).
    fn html(&mut self, data: &[u8]) -> Vec<u8> {
        if data.is_empty() {
            return Vec::new();
        }
        if !self.started {
            self.started = true;
            lock(&self.state).seen_input = true;
            // UTF-16 by its byte-order mark: ASCII markup would corrupt it.
            if data.starts_with(&[0xFE, 0xFF]) || data.starts_with(&[0xFF, 0xFE]) {
                if matches!(self.html, Html::Rewriting { .. }) {
                    lock(&self.state).outcome = Outcome::NotAsciiCompatible;
                }
                self.html = Html::Passing;
            }
        }
        // In slices, so that with position = "head" parsing stops soon after `</head>` even
        // when the app's body arrives in one large chunk.
        let mut out = Vec::with_capacity(data.len() + 512);
        let mut rest = data;
        while !rest.is_empty() {
            let Html::Rewriting { rewriter, pending } = &mut self.html else {
                out.extend_from_slice(rest);
                break;
            };
            let take = if self.stop_after_insertion {
                rest.len().min(SLICE)
            } else {
                rest.len()
            };
            let (slice, after) = rest.split_at(take);
            rest = after;
            pending.extend_from_slice(slice);
            let result = rewriter.write(slice);
            out.extend(collect_output(&self.sink, &self.state, pending));
            if let Err(err) = result {
                let pending = std::mem::take(pending);
                self.html = Html::Passing;
                out.extend(self.give_up(pending, &err.to_string()));
                continue;
            }
            let decided = lock(&self.state).outcome != Outcome::Pending;
            if decided && self.stop_after_insertion {
                out.extend(self.end_rewriting());
            }
        }
        out
    }

    /// Ends the rewriter (the document-end handler inserts if nothing did before) and passes
    /// the rest through.
    fn end_rewriting(&mut self) -> Vec<u8> {
        let Html::Rewriting {
            rewriter,
            mut pending,
        } = std::mem::replace(&mut self.html, Html::Passing)
        else {
            return Vec::new();
        };
        let result = rewriter.end();
        let mut out = collect_output(&self.sink, &self.state, &mut pending);
        if let Err(err) = result {
            out.extend(self.give_up(pending, &err.to_string()));
        }
        out
    }

    /// The rewriter failed: whatever it still held goes out unchanged, and so does the rest.
    fn give_up(&mut self, pending: BytesMut, why: &str) -> Vec<u8> {
        let mut state = lock(&self.state);
        if state.outcome == Outcome::Pending {
            state.outcome = Outcome::RewriteFailed;
        }
        tracing::debug!(
            error = why,
            "the page could not be rewritten; passed unchanged"
        );
        pending.to_vec()
    }
}

impl splice::Rewrite for Transformer {
    fn rewrite(&mut self, plain: &[u8]) -> Vec<u8> {
        self.html(plain)
    }

    fn end(&mut self) -> Vec<u8> {
        self.end_rewriting()
    }

    fn decision(&self) -> splice::Decision {
        let state = lock(&self.state);
        match state.outcome {
            Outcome::Pending => splice::Decision::Pending,
            Outcome::Injected => splice::Decision::Inserted(state.inserted_total),
            _ => splice::Decision::Unchanged,
        }
    }
}

/// Takes what the rewriter wrote and forgets that much of `pending` (inserted bytes aside).
fn collect_output(sink: &Sink, state: &Shared<PageState>, pending: &mut BytesMut) -> Vec<u8> {
    let out = std::mem::take(&mut *lock(&sink.0));
    let inserted = std::mem::take(&mut lock(state).inserted);
    let original = out.len().saturating_sub(inserted).min(pending.len());
    pending.advance(original);
    out
}

/// The handlers: `<meta>` policies; the insertion point for the position; the document end
/// as the last resort (a page without `</head>`, `<body>` or `</body>`).
fn settings(
    snippet: Arc<dyn Snippet>,
    state: &Shared<PageState>,
    head: bool,
    encoding: &'static encoding_rs::Encoding,
) -> Settings<'static, 'static> {
    let insert = {
        let state = state.clone();
        move || -> Option<String> {
            let mut page = lock(&state);
            if page.outcome != Outcome::Pending {
                return None;
            }
            match snippet.markup(&page.policies) {
                Some(markup) => {
                    page.outcome = Outcome::Injected;
                    let bytes = encoding.encode(&markup).0.len();
                    page.inserted += bytes;
                    page.inserted_total += bytes;
                    Some(markup)
                }
                None => {
                    page.outcome = Outcome::BlockedByCsp;
                    None
                }
            }
        }
    };
    let meta_state = state.clone();
    let mut elements = vec![element!("meta[http-equiv]", move |el| {
        let is_csp = el
            .get_attribute("http-equiv")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("content-security-policy"));
        if let (true, Some(policy)) = (is_csp, el.get_attribute("content")) {
            lock(&meta_state).policies.add(&policy);
        }
        Ok(())
    })];
    if head {
        let at_head_end = insert.clone();
        elements.push(element!("head", move |el| {
            let insert = at_head_end.clone();
            el.on_end_tag(before_end_tag(insert))
        }));
        let at_body_start = insert.clone();
        elements.push(element!("body", move |el| {
            if let Some(markup) = at_body_start() {
                el.before(&markup, ContentType::Html);
            }
            Ok(())
        }));
    } else {
        let at_body_end = insert.clone();
        elements.push(element!("body", move |el| {
            let insert = at_body_end.clone();
            el.on_end_tag(before_end_tag(insert))
        }));
    }
    let end_state = state.clone();
    let at_end = insert;
    Settings {
        element_content_handlers: elements,
        document_content_handlers: vec![end!(
            move |end: &mut lol_html::html_content::DocumentEnd<'_>| {
                if lock(&end_state).seen_input {
                    if let Some(markup) = at_end() {
                        end.append(&markup, ContentType::Html);
                    }
                }
                Ok(())
            }
        )],
        encoding: AsciiCompatibleEncoding::new(encoding).expect("checked by the caller"),
        memory_settings: MemorySettings {
            preallocated_parsing_buffer_size: 1024,
            max_allowed_memory_usage: REWRITER_MEMORY,
        },
        strict: false,
        ..Settings::new_send()
    }
}

/// An end-tag handler inserting the markup before the tag.
fn before_end_tag(
    insert: impl FnOnce() -> Option<String> + Send + 'static,
) -> lol_html::send::EndTagHandler<'static> {
    Box::new(move |end| {
        if let Some(markup) = insert() {
            end.before(&markup, ContentType::Html);
        }
        Ok(())
    })
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
