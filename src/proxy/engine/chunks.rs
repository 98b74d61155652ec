//! Chunked bodies (RFC 9112 section 7.1): where one ends, and the same body written again with
//! its chunk extensions and trailer fields left out, as the hyper path forwards it. Trailers
//! never pass: a field there escapes the identity-header strip that applies to the head.

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    /// Spaces or tabs after the size, before `;` or the line's end.
    SizeSpace,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    LineStart,
    /// A trailer field's name, then its value: parsed as strictly as hyper parses them, so a
    /// line hyper refuses (a bare LF, a control character) is refused here too and no
    /// pipelined request can hide inside what one reads as trailers.
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

/// Follows a chunked body byte by byte.
#[derive(Debug)]
pub struct ChunkScanner {
    state: State,
    size: u64,
    digits: usize,
    line: usize,
}

impl Default for ChunkScanner {
    fn default() -> Self {
        Self {
            state: State::Size,
            size: 0,
            digits: 0,
            line: 0,
        }
    }
}

impl ChunkScanner {
    /// Reads `bytes`: Ok(Some(n)) when the body ends after its first `n` bytes, Ok(None) when
    /// it goes on, Err when it is not a chunked body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, ()> {
        self.scan(bytes, None, false)
    }

    /// As `feed`, writing the body to `out` as it is to be forwarded: each chunk's size in hex,
    /// its data, and a last chunk with no trailer fields.
    pub fn rewrite(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, ()> {
        self.scan(bytes, Some(out), true)
    }

    /// As `feed`, appending the chunks' data alone to `out` (the body as its reader sees it).
    pub fn decode(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, ()> {
        self.scan(bytes, Some(out), false)
    }

    /// `out` gets the data; with `reframe`, the chunk framing around it too.
    fn scan(
        &mut self,
        bytes: &[u8],
        mut out: Option<&mut Vec<u8>>,
        reframe: bool,
    ) -> Result<Option<usize>, ()> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Data {
                let take = (self.size.min((bytes.len() - i) as u64)) as usize;
                if let Some(out) = out.as_deref_mut() {
                    out.extend_from_slice(&bytes[i..i + take]);
                }
                self.size -= take as u64;
                i += take;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let byte = bytes[i];
            i += 1;
            self.line += 1;
            if self.line > MAX_LINE {
                return Err(());
            }
            self.state = match (self.state, byte) {
                (State::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    let digit = (byte as char).to_digit(16).expect("a hex digit") as u64;
                    self.size = self.size.checked_mul(16).ok_or(())? + digit;
                    self.digits += 1;
                    if self.digits > 16 {
                        return Err(());
                    }
                    State::Size
                }
                (State::Size, b';') if self.digits > 0 => State::Extension,
                (State::Size, b' ' | b'\t') if self.digits > 0 => State::SizeSpace,
                (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
                (State::SizeSpace, b' ' | b'\t') => State::SizeSpace,
                (State::SizeSpace, b';') => State::Extension,
                (State::SizeSpace, b'\r') => State::SizeLf,
                (State::Extension, b'\r') => State::SizeLf,
                (State::Extension, b'\n') => return Err(()),
                (State::Extension, _) => State::Extension,
                (State::SizeLf, b'\n') => {
                    self.line = 0;
                    self.digits = 0;
                    if self.size == 0 {
                        State::LineStart
                    } else {
                        if let Some(out) = out.as_deref_mut().filter(|_| reframe) {
                            size_line(out, self.size);
                        }
                        State::Data
                    }
                }
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => {
                    self.line = 0;
                    if let Some(out) = out.as_deref_mut().filter(|_| reframe) {
                        out.extend_from_slice(b"\r\n");
                    }
                    State::Size
                }
                (State::LineStart, b'\r') => State::FinalLf,
                (State::LineStart | State::TrailerName, byte) if is_tchar(byte) => {
                    State::TrailerName
                }
                (State::TrailerName, b':') => State::TrailerValue,
                (State::TrailerValue, b'\r') => State::TrailerLf,
                (State::TrailerValue, b'\t' | b' '..=b'~' | 0x80..=0xff) => State::TrailerValue,
                (State::TrailerLf, b'\n') => {
                    self.line = 0;
                    State::LineStart
                }
                (State::FinalLf, b'\n') => {
                    self.state = State::Done;
                    if let Some(out) = out.as_deref_mut().filter(|_| reframe) {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    return Ok(Some(i));
                }
                _ => return Err(()),
            };
        }
        Ok(None)
    }
}

/// A chunk's size line, upper-case hex as hyper writes it (into the buffer, no string).
pub fn size_line(out: &mut Vec<u8>, size: u64) {
    use std::io::Write;
    let _ = write!(out, "{size:X}\r\n");
}

/// A byte of a field name (RFC 9110 5.6.2 `tchar`).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(body: &[u8]) -> Result<Option<usize>, ()> {
        ChunkScanner::default().feed(body)
    }

    #[test]
    fn finds_the_end_byte_by_byte_and_at_once() {
        let body = b"5;ext=1\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        assert_eq!(end_of(body), Ok(Some(end)));
        let mut scanner = ChunkScanner::default();
        for (i, byte) in body.iter().enumerate().take(end) {
            let found = scanner.feed(std::slice::from_ref(byte)).unwrap();
            assert_eq!(found.is_some(), i == end - 1, "byte {i}");
        }
        assert_eq!(end_of(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(end_of(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(Some(20)));
    }

    #[test]
    fn rewrites_without_extensions_or_trailers_however_cut() {
        let body = b"5;ext=1\r\nhello\r\n1A \t;x\r\nabcdefghijklmnopqrstuvwxyz\r\n0;e\r\nT: 1\r\nU: 2\r\n\r\nNEXT";
        let want = b"5\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        for cut in 0..body.len() - 4 {
            let mut scanner = ChunkScanner::default();
            let mut out = Vec::new();
            assert_eq!(
                scanner.rewrite(&body[..cut], &mut out),
                Ok(None),
                "cut {cut}"
            );
            let end = scanner.rewrite(&body[cut..], &mut out).unwrap();
            assert_eq!(end, Some(body.len() - 4 - cut), "cut {cut}");
            assert_eq!(out, want, "cut {cut}");
        }
    }

    #[test]
    fn refuses_what_is_not_chunked() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\nhello",
            b"11111111111111111\r\n",
            b"0\r\n\n",
            b"5 x\r\nhello\r\n",
            b"0\r\nT: 1\r\n\x1d\nGET / HTTP/1.1\r\n\r\n",
            b"0\r\nT 1\r\n\r\n",
            b"0\r\n: 1\r\n\r\n",
            b"0\r\nT: \x01\r\n\r\n",
            b"0\r\nT: 1\n\r\n",
        ] {
            assert_eq!(end_of(bad), Err(()), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(end_of(b"5\r\nhel"), Ok(None));
    }
}
