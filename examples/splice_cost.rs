//! What splicing a tag into a gzipped page costs, against decoding and compressing the page
//! again (Tether's path without splicing): the bench backend's 100 KiB page at gzip level 6,
//! the tag after `<head>`'s last element. Timings per page, median of 15 runs of 200.
//! `cargo run --release --example splice_cost`

use std::io::Write;
use std::time::Instant;
use tether::testing::splice::{Decision, Rewrite, Splicer};

struct AfterHead {
    tag: &'static [u8],
    seen: Vec<u8>,
    done: bool,
}

impl Rewrite for AfterHead {
    fn rewrite(&mut self, plain: &[u8]) -> Vec<u8> {
        if self.done {
            return plain.to_vec();
        }
        let from = self.seen.len().saturating_sub(7);
        self.seen.extend_from_slice(plain);
        match memchr::memmem::find(&self.seen[from..], b"</head>") {
            Some(found) => {
                self.done = true;
                let at = from + found;
                let mut out = self.seen[..at].to_vec();
                out.extend_from_slice(self.tag);
                out.extend_from_slice(&self.seen[at..]);
                self.seen.clear();
                out
            }
            None => Vec::new(),
        }
    }

    fn end(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.seen)
    }

    fn decision(&self) -> Decision {
        if self.done {
            Decision::Inserted(self.tag.len())
        } else {
            Decision::Pending
        }
    }
}

#[path = "support/shop_page.rs"]
mod shop_page;

fn median_micros(mut run: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..200 {
                run();
            }
            start.elapsed().as_secs_f64() * 1e6 / 200.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[7]
}

fn main() {
    let page = shop_page::shop_page().into_bytes();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(&page).unwrap();
    let gz = encoder.finish().unwrap();
    let tag: &'static [u8] = b"<script src=\"/widget.js\"></script>";
    let mut out_len = 0;
    let splice = median_micros(|| {
        let mut html = AfterHead {
            tag,
            seen: Vec::new(),
            done: false,
        };
        let mut splicer = Splicer::default();
        let mut out = splicer.push(&gz, &mut html).ok().expect("spliced");
        out.extend(splicer.finish(&mut html).ok().expect("spliced"));
        out_len = out.len();
    });
    if std::env::args().any(|a| a == "--splice-only") {
        println!("splice: {splice:.1} µs per page");
        return;
    }
    let mut recompressed_len = 0;
    let recompress = median_micros(|| {
        let mut decoder = flate2::write::GzDecoder::new(Vec::new());
        decoder.write_all(&gz).unwrap();
        let plain = decoder.finish().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        encoder.write_all(&plain).unwrap();
        recompressed_len = encoder.finish().unwrap().len();
    });
    println!(
        "page {} bytes, gzip {} bytes\nsplice: {splice:.1} µs per page, {out_len} bytes\ndecode + gzip level 1: {recompress:.1} µs per page, {recompressed_len} bytes",
        page.len(),
        gz.len(),
    );
}
