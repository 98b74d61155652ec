//! Any bytes as the app's "gzip" body of a page being injected into: the splicer never panics,
//! and when it says it spliced, the result decodes to the page it decoded with the tag in
//! (checked with flate2, which also checks the corrected trailer). The first byte picks the
//! insertion point (in 256ths of the decoded page) and the piece size the body arrives in.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use tether::testing::splice::{Decision, Rewrite, Splicer};

const TAG: &[u8] = b"<script src=\"/x.js\"></script>";

/// Inserts the tag once it has seen `at` bytes, or at the end.
struct Inserting {
    at: usize,
    seen: Vec<u8>,
    done: bool,
}

impl Rewrite for Inserting {
    fn rewrite(&mut self, plain: &[u8]) -> Vec<u8> {
        let before = self.seen.len();
        self.seen.extend_from_slice(plain);
        if self.done || self.seen.len() < self.at {
            return plain.to_vec();
        }
        self.done = true;
        let split = self.at - before;
        [&plain[..split], TAG, &plain[split..]].concat()
    }

    fn end(&mut self) -> Vec<u8> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        TAG.to_vec()
    }

    fn decision(&self) -> Decision {
        if self.done {
            Decision::Inserted(TAG.len())
        } else {
            Decision::Pending
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let piece = usize::from(control >> 4) * 97 + 1;
    let at = usize::from(control & 15) * 61;
    let mut html = Inserting {
        at,
        seen: Vec::new(),
        done: false,
    };
    let mut splicer = Splicer::default();
    let mut out = Vec::new();
    for chunk in body.chunks(piece) {
        match splicer.push(chunk, &mut html) {
            Ok(bytes) => out.extend(bytes),
            Err(_) => return,
        }
    }
    match splicer.finish(&mut html) {
        Ok(bytes) => out.extend(bytes),
        Err(_) => return,
    }
    // Spliced: if the app's stream was a valid gzip member, so is Tether's, with the tag in.
    let mut original = flate2::write::GzDecoder::new(Vec::new());
    if original.write_all(body).and_then(|_| original.try_finish()).is_err() {
        return;
    }
    let Ok(page) = original.finish() else { return };
    let mut spliced = flate2::write::GzDecoder::new(Vec::new());
    spliced.write_all(&out).expect("the spliced stream is gzip");
    spliced.try_finish().expect("the spliced stream is complete");
    let got = spliced.finish().expect("the spliced stream decodes");
    let at = at.min(page.len());
    assert_eq!(got, [&page[..at], TAG, &page[at..]].concat());
});
