//! Splices checked by two independent inflaters (zlib-rs through flate2, which also checks
//! the gzip trailer, and miniz_oxide on the raw deflate stream), over pages compressed every
//! way zlib writes them: stored, fixed and dynamic blocks, flushes between blocks, one or two
//! gzip members, delivered in pieces of any size.

use super::*;
use proptest::prelude::*;
use std::io::Write;

/// A rewriter that inserts `markup` once it has seen `at` bytes (and holds nothing back), or
/// at the end of the page when `at` is past it.
struct Inserting {
    at: usize,
    markup: Vec<u8>,
    seen: usize,
    done: bool,
    change_more: bool,
}

impl Inserting {
    fn new(at: usize, markup: &[u8]) -> Self {
        Self {
            at,
            markup: markup.to_vec(),
            seen: 0,
            done: false,
            change_more: false,
        }
    }
}

impl Rewrite for Inserting {
    fn rewrite(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let before = self.seen;
        self.seen += plain.len();
        if !self.done && self.seen >= self.at {
            let split = self.at - before;
            out.extend_from_slice(&plain[..split]);
            out.extend_from_slice(&self.markup);
            out.extend_from_slice(&plain[split..]);
            self.done = true;
        } else {
            out.extend_from_slice(plain);
        }
        if self.change_more && self.done {
            if let Some(last) = out.last_mut() {
                *last ^= 1;
            }
        }
        out
    }

    fn end(&mut self) -> Vec<u8> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        self.markup.clone()
    }

    fn decision(&self) -> Decision {
        if self.done {
            Decision::Inserted(self.markup.len())
        } else {
            Decision::Pending
        }
    }
}

fn gzip(page: &[u8], level: u32, flush_every: Option<usize>) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    match flush_every {
        Some(every) => {
            for piece in page.chunks(every.max(1)) {
                encoder.write_all(piece).unwrap();
                encoder.flush().unwrap();
            }
        }
        None => encoder.write_all(page).unwrap(),
    }
    encoder.finish().unwrap()
}

/// Runs the splicer over `gz` in pieces; None when it fell back.
fn splice(gz: &[u8], html: &mut Inserting, piece: usize) -> Option<Vec<u8>> {
    let mut splicer = Splicer::default();
    let mut out = Vec::new();
    for chunk in gz.chunks(piece.max(1)) {
        out.extend(splicer.push(chunk, html).ok()?);
    }
    out.extend(splicer.finish(html).ok()?);
    Some(out)
}

fn gunzip_all(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut decoder = flate2::write::MultiGzDecoder::new(&mut out);
    decoder.write_all(gz).expect("a valid gzip stream");
    decoder.finish().expect("a valid gzip stream");
    out
}

/// The first member's deflate stream through miniz_oxide.
fn miniz_inflate(gz: &[u8]) -> Vec<u8> {
    let gzip::Header::Complete(start) = gzip::header(gz) else {
        panic!("a gzip header");
    };
    miniz_oxide::inflate::decompress_to_vec(&gz[start..]).expect("miniz_oxide inflates it")
}

fn page(seed: u64, len: usize) -> Vec<u8> {
    // HTML-like text with repeats near and far, so matches cross any insertion point.
    let words: [&[u8]; 8] = [
        b"<div class=\"item\">",
        b"</div>\n",
        b"<a href=\"/shop/",
        b"\">",
        b"</a>",
        b"lorem ipsum ",
        b"<span>",
        b"</span>",
    ];
    let mut state = seed | 1;
    let mut out = b"<!doctype html><html><head><title>t</title>".to_vec();
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 10 {
            0..=7 => out.extend_from_slice(words[(state >> 8) as usize % 8]),
            8 => out.extend((0..(state >> 12) % 40).map(|k| b'a' + ((state >> k) % 26) as u8)),
            _ => out.extend_from_slice(format!("{}", state >> 40).as_bytes()),
        }
    }
    out.truncate(len);
    out
}

fn expected(page: &[u8], at: usize, markup: &[u8]) -> Vec<u8> {
    let at = at.min(page.len());
    [&page[..at], markup, &page[at..]].concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn spliced_pages_decode_to_the_page_with_the_insertion(
        seed in any::<u64>(),
        len in 0usize..200_000,
        at_fraction in 0.0f64..1.1,
        markup_len in 0usize..2000,
        level in 0u32..=9,
        flush in prop_oneof![Just(None), (1usize..70_000).prop_map(Some)],
        piece in prop_oneof![Just(usize::MAX), 1usize..5000],
    ) {
        let page = page(seed, len);
        let at = (len as f64 * at_fraction) as usize;
        let markup: Vec<u8> = (0..markup_len).map(|k| b"<script>x</script>"[k % 18]).collect();
        let gz = gzip(&page, level, flush);
        let mut html = Inserting::new(at, &markup);
        let out = splice(&gz, &mut html, piece).expect("spliced, not fallen back");
        let want = expected(&page, at, &markup);
        prop_assert_eq!(gunzip_all(&out), want.clone());
        prop_assert_eq!(miniz_inflate(&out), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A damaged stream never panics the splicer: it splices what it can read, falls back, or
    /// passes the damage on (the client's inflater finds it, as it would have).
    #[test]
    fn damaged_streams_are_survived(
        seed in any::<u64>(),
        len in 0usize..60_000,
        level in 0u32..=9,
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        piece in 1usize..3000,
    ) {
        let mut gz = gzip(&page(seed, len), level, None);
        for (index, byte) in damage {
            let i = index.index(gz.len());
            gz[i] ^= byte | 1;
        }
        if seed % 3 == 0 {
            gz.truncate(cut.index(gz.len() + 1));
        }
        let mut html = Inserting::new(len / 3, b"<script src=/x.js></script>");
        let _ = splice(&gz, &mut html, piece);
    }
}

#[test]
fn the_tail_is_the_apps_own_bytes() {
    let page = page(7, 150_000);
    for level in [1, 6, 9] {
        let gz = gzip(&page, level, None);
        let mut html = Inserting::new(300, b"<script src=/x.js></script>");
        let out = splice(&gz, &mut html, usize::MAX).unwrap();
        assert_eq!(
            gunzip_all(&out),
            expected(&page, 300, b"<script src=/x.js></script>")
        );
        // Everything but the last few KiB of the app's stream is copied: the end of both
        // streams (the trailer aside) is the same bytes.
        let copied = gz.len() / 2;
        assert_eq!(
            &out[out.len() - copied..out.len() - 8],
            &gz[gz.len() - copied..gz.len() - 8],
            "level {level}"
        );
        assert!(
            out.len() < gz.len() + 2048,
            "level {level}: {} vs {}",
            out.len(),
            gz.len()
        );
    }
}

#[test]
fn a_second_member_is_copied_and_the_first_ones_trailer_corrected() {
    let first = page(3, 120_000);
    let second = page(4, 50_000);
    let gz = [gzip(&first, 6, None), gzip(&second, 6, None)].concat();
    for piece in [usize::MAX, 1000, 7] {
        let mut html = Inserting::new(500, b"<b>inserted</b>");
        let out = splice(&gz, &mut html, piece).unwrap();
        let want = [expected(&first, 500, b"<b>inserted</b>"), second.clone()].concat();
        assert_eq!(gunzip_all(&out), want, "pieces of {piece}");
    }
}

#[test]
fn anything_but_one_insertion_falls_back() {
    let page = page(5, 40_000);
    let gz = gzip(&page, 6, None);
    let mut html = Inserting::new(100, b"<i>x</i>");
    html.change_more = true;
    assert!(splice(&gz, &mut html, usize::MAX).is_none());
    let mut html = Inserting::new(100, b"<i>x</i>");
    assert!(splice(b"not gzip at all", &mut html, usize::MAX).is_none());
    let mut corrupt = gz.clone();
    corrupt[20] ^= 0xFF;
    corrupt[21] ^= 0xFF;
    let mut html = Inserting::new(100, b"<i>x</i>");
    if let Some(out) = splice(&corrupt, &mut html, usize::MAX) {
        // A corruption the inflater cannot see is the app's own: passed on, never "fixed".
        let mut decoder = flate2::write::GzDecoder::new(Vec::new());
        let decoded = decoder.write_all(&out).and_then(|_| decoder.try_finish());
        let sink = decoder.finish().unwrap_or_default();
        assert!(decoded.is_err() || sink != expected(&page, 100, b"<i>x</i>"));
    }
}
