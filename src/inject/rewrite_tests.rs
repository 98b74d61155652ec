use super::*;
use crate::inject::coding::{InputCoding, OutputCoding};
use crate::inject::csp::{Origin, ScriptUrl, Verdict};

const MARKUP: &str = "<script src=\"/.tether/inject/loader.js\"></script>";

struct Loader;

impl Snippet for Loader {
    fn markup(&self, policies: &Policies) -> Option<String> {
        let page = Origin::new("https", "example.com");
        let script = ScriptUrl::resolve("/.tether/inject/loader.js", &page).unwrap();
        match policies.verdict(&[script], &page) {
            Verdict::Allowed { .. } => Some(MARKUP.to_string()),
            Verdict::Blocked => None,
        }
    }
}

fn transformer(head: bool) -> Transformer {
    Transformer::new(
        Arc::new(Loader),
        Policies::default(),
        head,
        AsciiCompatibleEncoding::new(encoding_rs::UTF_8).unwrap(),
        None,
        None,
    )
}

/// Streams `page` in chunks of `size`, pausing (flush) after each.
fn run(mut t: Transformer, page: &[u8], size: usize) -> (Vec<u8>, Outcome) {
    let mut out = Vec::new();
    for chunk in page.chunks(size.max(1)) {
        out.extend(t.push(chunk).unwrap());
        out.extend(t.flush().unwrap());
    }
    out.extend(t.finish().unwrap());
    (out, t.outcome())
}

fn inserted_at(page: &str, at: usize) -> String {
    format!("{}{MARKUP}{}", &page[..at], &page[at..])
}

#[test]
fn the_snippet_goes_before_the_head_end_tag_whatever_the_chunking() {
    let page = "<!doctype html><html><head><title>x</title><!-- </head> --><script>let s = \"</head>\";</script></head><body><p>hi</p></body></html>";
    let at = page.rfind("</head>").unwrap();
    for size in [1, 2, 3, 7, 16, 1000] {
        let (out, outcome) = run(transformer(true), page.as_bytes(), size);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            inserted_at(page, at),
            "chunks of {size}"
        );
        assert_eq!(outcome, Outcome::Injected);
    }
}

#[test]
fn without_a_head_end_tag_before_body_then_at_the_end() {
    let page = "<html><head><title>x</title><body>text</body></html>";
    let (out, _) = run(transformer(true), page.as_bytes(), 5);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        inserted_at(page, page.find("<body>").unwrap())
    );
    let fragment = "just some text, no tags";
    let (out, outcome) = run(transformer(true), fragment.as_bytes(), 4);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{fragment}{MARKUP}")
    );
    assert_eq!(outcome, Outcome::Injected);
    let (out, outcome) = run(transformer(true), b"", 4);
    assert!(out.is_empty());
    assert_eq!(outcome, Outcome::Pending);
}

#[test]
fn body_position() {
    let page = "<html><head></head><body><p>a</p></body></html>";
    let (out, _) = run(transformer(false), page.as_bytes(), 3);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        inserted_at(page, page.find("</body>").unwrap())
    );
    let unclosed = "<html><body><p>a";
    let (out, _) = run(transformer(false), unclosed.as_bytes(), 3);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{unclosed}{MARKUP}")
    );
}

#[test]
fn a_meta_policy_that_blocks_leaves_the_page_unchanged() {
    let page = "<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\"></head><body></body></html>";
    let (out, outcome) = run(transformer(true), page.as_bytes(), 9);
    assert_eq!(out, page.as_bytes());
    assert_eq!(outcome, Outcome::BlockedByCsp);
}

#[test]
fn malformed_markup_passes_byte_for_byte_around_the_snippet() {
    let page = "<html><head><title>unclosed <b attr='x\"></div></span><<>>&&&\u{fffd}\u{e9}<!-- not closed";
    for head in [true, false] {
        let (out, _) = run(transformer(head), page.as_bytes(), 4);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.replacen(MARKUP, "", 1), page, "head={head}");
        assert_eq!(out.matches(MARKUP).count(), 1);
    }
}

#[test]
fn a_tag_too_large_for_the_rewriter_passes_unchanged() {
    let mut page = b"<html><head><meta content=\"".to_vec();
    page.extend(std::iter::repeat_n(b'a', 3 << 20));
    page.extend(b"\"></head><body></body></html>");
    let (out, outcome) = run(transformer(true), &page, 64 * 1024);
    assert_eq!(outcome, Outcome::RewriteFailed);
    assert!(out == page, "the page changed");
}

#[test]
fn utf16_pages_pass_unchanged() {
    let page: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<html><head></head></html>"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        )
        .collect();
    let (out, outcome) = run(transformer(true), &page, 5);
    assert_eq!(out, page);
    assert_eq!(outcome, Outcome::NotAsciiCompatible);
}

#[test]
fn once_inserted_the_rest_is_copied() {
    let page = format!(
        "<html><head></head><body>{}</body></html>",
        "<p>x</p>".repeat(10_000)
    );
    let mut t = transformer(true);
    let mut out = t.push(&page.as_bytes()[..30]).unwrap();
    assert!(
        matches!(t.html, Html::Passing),
        "the rewriter should have stopped"
    );
    out.extend(t.push(&page.as_bytes()[30..]).unwrap());
    out.extend(t.finish().unwrap());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        inserted_at(&page, page.find("</head>").unwrap())
    );
}

#[test]
fn compressed_in_compressed_out() {
    let page = format!(
        "<html><head></head><body>{}</body></html>",
        "<p>hello</p>".repeat(5000)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, page.as_bytes()).unwrap();
    let wire = gz.finish().unwrap();
    let t = Transformer::new(
        Arc::new(Loader),
        Policies::default(),
        true,
        AsciiCompatibleEncoding::new(encoding_rs::UTF_8).unwrap(),
        Decoder::new(InputCoding::Gzip),
        Encoder::new(OutputCoding::Brotli, 1),
    );
    let (out, outcome) = run(t, &wire, 1000);
    assert_eq!(outcome, Outcome::Injected);
    let mut plain = Vec::new();
    brotli::BrotliDecompress(&mut &out[..], &mut plain).unwrap();
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        inserted_at(&page, page.find("</head>").unwrap())
    );
}

#[test]
fn pages_in_other_ascii_compatible_encodings_keep_their_bytes() {
    let latin1 = encoding_rs::WINDOWS_1252;
    let t = Transformer::new(
        Arc::new(Loader),
        Policies::default(),
        true,
        AsciiCompatibleEncoding::new(latin1).unwrap(),
        None,
        None,
    );
    let page = b"<html><head><title>caf\xe9</title></head><body></body></html>";
    let (out, _) = run(t, page, 3);
    let at = page.windows(7).position(|w| w == b"</head>").unwrap();
    assert_eq!(&page[at..at + 7], b"</head>");
    let mut expected = page[..at].to_vec();
    expected.extend(MARKUP.as_bytes());
    expected.extend(&page[at..]);
    assert_eq!(out, expected);
}
