//! Injecting into a page the app gzipped (a precompressed static page, or an app that ignores
//! `Accept-Encoding: identity`) without compressing it again: the app's deflate stream is
//! decoded only up to the insertion point and one window after it, Tether writes that stretch
//! again with the snippet in it, and the rest of the app's bytes go out as they came, with the
//! gzip trailer corrected arithmetically (`docs/inject.md`, "Splicing a gzipped page").
//!
//! The rewriter still decides where the snippet goes (and whether it goes in at all); the
//! splicer checks that what it made is the page with one run of bytes inserted. Anything else
//! (a page that is not gzip, a corrupt stream, a rewriter that changed more, a page whose
//! insertion point lies beyond `MAX_PAGE`) falls back to decoding and compressing it whole,
//! which is possible because nothing has been sent before the splice is built.

mod bits;
mod encode;
mod gzip;
mod huffman;
mod inflate;
mod join;
mod tables;

use inflate::Inflater;
use join::{join, tail_token, Rest, WINDOW};

/// The most page decoded while looking for the insertion point (memory bound per page; it
/// also keeps bit positions within 32 bits).
const MAX_PAGE: usize = 4 << 20;

/// How much page the rewriter is given at a time while it decides (a head is often shorter:
/// the rewriter then parses no further than it must).
const STEP: usize = 1024;

/// What the splicer needs from the HTML rewriter.
pub trait Rewrite {
    /// Page bytes in, rewritten bytes out.
    fn rewrite(&mut self, plain: &[u8]) -> Vec<u8>;
    /// Ends the rewriting; what the rewriter still held.
    fn end(&mut self) -> Vec<u8>;
    fn decision(&self) -> Decision;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pending,
    /// The snippet went in: this many bytes in all.
    Inserted(usize),
    /// The page stays as it is.
    Unchanged,
}

/// Splicing gave way: everything the app sent so far, what the rewriter made of the first
/// `fed` bytes of the page, for the decode-and-compress path to carry on from.
pub struct Fallback {
    pub input: Vec<u8>,
    pub rewritten: Vec<u8>,
    pub fed: usize,
}

pub struct Splicer {
    /// The app's bytes (all of them until the splice is sent; then the tail).
    input: Vec<u8>,
    deflate_start: Option<usize>,
    inflater: Inflater,
    /// Page bytes given to the rewriter, and what it made of them.
    fed: usize,
    rewritten: Vec<u8>,
    /// Where the rewritten page first differs from the page, and how much was inserted.
    insertion: Option<(usize, usize)>,
    compared: usize,
    phase: Phase,
}

enum Phase {
    /// Nothing sent yet: decoding, rewriting, comparing.
    Head,
    /// The splice is out; the app's bytes follow from `from`, the trailer corrected.
    Tail(Tail),
    /// The app's bytes follow unchanged from `from`.
    Verbatim { from: usize },
}

struct Tail {
    from: usize,
    correction: gzip::Correction,
    scanned: usize,
    suspect: Option<usize>,
}

type Step = Result<Vec<u8>, Box<Fallback>>;

impl Default for Splicer {
    fn default() -> Self {
        Self {
            input: Vec::new(),
            deflate_start: None,
            inflater: Inflater::default(),
            fed: 0,
            rewritten: Vec::new(),
            insertion: None,
            compared: 0,
            phase: Phase::Head,
        }
    }
}

impl Splicer {
    /// A piece of the app's body; what is ready for the client.
    pub fn push(&mut self, data: &[u8], html: &mut dyn Rewrite) -> Step {
        self.input.extend_from_slice(data);
        self.advance(html, false)
    }

    /// The app's body ended.
    pub fn finish(&mut self, html: &mut dyn Rewrite) -> Step {
        self.advance(html, true)
    }

    fn advance(&mut self, html: &mut dyn Rewrite, ended: bool) -> Step {
        match self.phase {
            Phase::Head => self.head(html, ended),
            _ => Ok(self.after_head(ended)),
        }
    }

    /// Once the splice (or the decision to change nothing) is out.
    fn after_head(&mut self, ended: bool) -> Vec<u8> {
        match &mut self.phase {
            Phase::Head => unreachable!("called after the head"),
            Phase::Tail(_) => self.tail(ended),
            Phase::Verbatim { from } => {
                let out = self.input.split_off(*from);
                self.input.clear();
                *from = 0;
                out
            }
        }
    }

    fn fall_back(&mut self) -> Step {
        Err(self.fallback())
    }

    fn fallback(&mut self) -> Box<Fallback> {
        Box::new(Fallback {
            input: std::mem::take(&mut self.input),
            rewritten: std::mem::take(&mut self.rewritten),
            fed: self.fed,
        })
    }

    fn head(&mut self, html: &mut dyn Rewrite, ended: bool) -> Step {
        // Held unsent: bounded, whatever the stream holds (empty blocks make no page).
        if self.input.len() > MAX_PAGE {
            return self.fall_back();
        }
        let start = match self.deflate_start {
            Some(start) => start,
            None => match gzip::header(&self.input) {
                gzip::Header::Complete(start) => *self.deflate_start.insert(start),
                gzip::Header::Incomplete if !ended => return Ok(Vec::new()),
                _ => return self.fall_back(),
            },
        };
        // Decode and rewrite a step at a time until the rewriter decides.
        while html.decision() == Decision::Pending {
            let until = self.inflater.plain.len() + STEP;
            if until > MAX_PAGE || self.inflater.run(&self.input[start..], until).is_err() {
                return self.fall_back();
            }
            let fresh = self.inflater.plain.len() > self.fed;
            if fresh {
                let out = html.rewrite(&self.inflater.plain[self.fed..]);
                self.fed = self.inflater.plain.len();
                self.compare(out, html)?;
            } else if ended {
                let out = html.end();
                self.compare(out, html)?;
                break;
            } else {
                return Ok(Vec::new());
            }
        }
        // Decided: whatever the rewriter still holds (with position = "body" it is still
        // parsing; nothing after the insertion changes).
        let out = html.end();
        self.compare(out, html)?;
        match html.decision() {
            Decision::Inserted(bytes) if bytes > 0 => self.splice(bytes, start, ended),
            _ if self.insertion.is_none() => {
                self.phase = Phase::Verbatim { from: 0 };
                Ok(self.after_head(ended))
            }
            _ => self.fall_back(),
        }
    }

    /// Checks the rewriter's output so far against the page: equal up to one insertion.
    fn compare(&mut self, out: Vec<u8>, html: &dyn Rewrite) -> Result<(), Box<Fallback>> {
        self.rewritten.extend_from_slice(&out);
        let plain = &self.inflater.plain;
        let to = self.rewritten.len();
        if self.insertion.is_none() {
            let from = self.compared;
            let same = self.rewritten[from..]
                .iter()
                .zip(plain.get(from..).unwrap_or(&[]))
                .take_while(|(a, b)| a == b)
                .count();
            self.compared = from + same;
            if self.compared == to {
                return Ok(());
            }
            match html.decision() {
                Decision::Inserted(bytes) => self.insertion = Some((self.compared, bytes)),
                _ => return Err(self.fallback()),
            }
        }
        let (at, bytes) = self.insertion.expect("just found");
        // After the insertion, rewritten[k] is plain[k - bytes].
        let start = self.compared.max(at + bytes);
        if start < to && plain.get(start - bytes..to - bytes) != Some(&self.rewritten[start..to]) {
            return Err(self.fallback());
        }
        self.compared = to;
        Ok(())
    }

    /// Builds and sends the splice once the window after the insertion point is decoded (or
    /// the stream has ended).
    fn splice(&mut self, bytes: usize, start: usize, ended: bool) -> Step {
        let Some((at, _)) = self.insertion else {
            return self.fall_back();
        };
        // The rewriter has ended: all it inserted is out (else it is not one insertion).
        let Some(inserted) = self.rewritten.get(at..at + bytes).map(<[u8]>::to_vec) else {
            return self.fall_back();
        };
        let tail = loop {
            if let Some(tail) = tail_token(&self.inflater, at) {
                break Some(tail);
            }
            if self.inflater.end.is_some() {
                break None;
            }
            let until = self.inflater.plain.len() + 8 * STEP;
            let before = self.inflater.plain.len();
            if until > MAX_PAGE.max(at + 2 * WINDOW)
                || self.inflater.run(&self.input[start..], until).is_err()
            {
                return self.fall_back();
            }
            if self.inflater.plain.len() == before {
                if ended {
                    return self.fall_back();
                }
                return Ok(Vec::new());
            }
        };
        let data = &self.input[start..];
        if tail.is_none() {
            // The whole stream is decoded: its trailer must have arrived too.
            let end = self.inflater.end.expect("ended").div_ceil(8) as usize;
            if data.len() < end + 8 {
                return if ended {
                    self.fall_back()
                } else {
                    Ok(Vec::new())
                };
            }
        }
        let joined = join(
            &self.input[..start],
            data,
            &self.inflater,
            at,
            &inserted,
            tail,
        );
        let mut out = joined.bytes;
        let correction = gzip::Correction::new(&self.inflater.plain[..at], &inserted);
        match joined.rest {
            Rest::Ended => {
                // Tether wrote the final block: the app's trailer follows, corrected.
                let end = start + self.inflater.end.expect("ended").div_ceil(8) as usize;
                let mut trailer = [0u8; 8];
                trailer.copy_from_slice(&self.input[end..end + 8]);
                correction.apply(&mut trailer);
                out.extend_from_slice(&trailer);
                self.phase = Phase::Verbatim { from: end + 8 };
            }
            Rest::Copied { from_byte } => {
                self.phase = Phase::Tail(Tail {
                    from: start + from_byte,
                    correction,
                    scanned: start + from_byte,
                    suspect: None,
                });
            }
        }
        self.rewritten = Vec::new();
        out.extend(self.after_head(ended));
        Ok(out)
    }

    /// The app's bytes after the splice. The last 10 are held back (the trailer to correct),
    /// and so is everything from 8 bytes before a possible second gzip member's magic, until
    /// the end shows where the first member really ended.
    fn tail(&mut self, ended: bool) -> Vec<u8> {
        let Phase::Tail(tail) = &mut self.phase else {
            unreachable!("in the tail");
        };
        if tail.suspect.is_none() {
            let from = tail.scanned.saturating_sub(2).max(tail.from);
            if let Some(found) = memchr::memmem::find(&self.input[from..], &[0x1f, 0x8b, 8]) {
                tail.suspect = Some(from + found);
            }
            tail.scanned = self.input.len();
        }
        // 8 for a trailer, 2 for a magic whose last byte has not arrived.
        let hold = match tail.suspect {
            Some(suspect) => suspect.saturating_sub(8),
            None => self.input.len().saturating_sub(8 + 2),
        };
        if !ended {
            let to = hold.max(tail.from);
            let out = self.input[tail.from..to].to_vec();
            tail.from = to;
            return out;
        }
        let trailer = match tail.suspect {
            None => self.input.len().checked_sub(8),
            Some(_) => {
                // Rare: decode the rest to find where the first member ends.
                let start = self.deflate_start.expect("spliced after the header");
                let data = &self.input[start..];
                match self.inflater.run(data, usize::MAX) {
                    Ok(()) => self
                        .inflater
                        .end
                        .map(|end| start + end.div_ceil(8) as usize),
                    Err(_) => None,
                }
            }
        };
        if let Some(trailer) = trailer.filter(|&t| t >= tail.from && t + 8 <= self.input.len()) {
            tail.correction.apply(&mut self.input[trailer..trailer + 8]);
        }
        let out = self.input[tail.from..].to_vec();
        tail.from = self.input.len();
        out
    }
}

#[cfg(test)]
mod tests;
