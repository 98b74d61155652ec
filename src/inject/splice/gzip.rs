//! The gzip wrapper around the deflate stream (RFC 1952): the header Tether copies as it is,
//! and the trailer (CRC-32 and length of the page) it corrects for the inserted bytes.

use zlib_rs::crc32::{crc32, crc32_combine};

#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// The header's length: the deflate stream starts there.
    Complete(usize),
    Incomplete,
    NotGzip,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

pub fn header(data: &[u8]) -> Header {
    if data.len() >= 4 && (data[..3] != [0x1f, 0x8b, 8] || data[3] & 0xE0 != 0) {
        return Header::NotGzip;
    }
    let Some(&flags) = data.get(3) else {
        return Header::Incomplete;
    };
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(len) = data.get(at..at + 2) else {
            return Header::Incomplete;
        };
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match data.get(at..).and_then(|rest| memchr::memchr(0, rest)) {
                Some(nul) => at += nul + 1,
                None => return Header::Incomplete,
            }
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if data.len() < at {
        return Header::Incomplete;
    }
    Header::Complete(at)
}

/// What the trailer needs once its original values are known: the CRC-32 of the page before
/// the insertion point, without and with the inserted bytes, and their lengths.
#[derive(Debug, Clone, Copy)]
pub struct Correction {
    before_crc: u32,
    with_insertion_crc: u32,
    before_len: usize,
    inserted: usize,
}

impl Correction {
    /// `before`: the page up to the insertion point.
    pub fn new(before: &[u8], inserted: &[u8]) -> Self {
        let before_crc = crc32(0, before);
        Self {
            before_crc,
            with_insertion_crc: crc32(before_crc, inserted),
            before_len: before.len(),
            inserted: inserted.len(),
        }
    }

    /// The new trailer from the original one. The CRC-32 of the page after the insertion point
    /// follows from the whole page's CRC and the part before it (CRC-32 is linear: crc(a ++ b)
    /// is crc(a) moved past |b| bytes, xor crc(b)), so that part is never read.
    pub fn apply(&self, trailer: &mut [u8]) {
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("four bytes"));
        let size = u32::from_le_bytes(trailer[4..8].try_into().expect("four bytes"));
        let after_len = u64::from(size.wrapping_sub(self.before_len as u32));
        let after_crc = crc ^ crc32_combine(self.before_crc, 0, after_len);
        let new_crc = crc32_combine(self.with_insertion_crc, after_crc, after_len);
        let new_size = size.wrapping_add(self.inserted as u32);
        trailer[..4].copy_from_slice(&new_crc.to_le_bytes());
        trailer[4..8].copy_from_slice(&new_size.to_le_bytes());
    }
}

#[cfg(test)]
fn trailer(page: &[&[u8]]) -> [u8; 8] {
    let mut crc = 0;
    let mut size = 0u32;
    for part in page {
        crc = crc32(crc, part);
        size = size.wrapping_add(part.len() as u32);
    }
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out[4..].copy_from_slice(&size.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            header(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
            Header::Complete(10)
        );
        assert_eq!(header(&[0x1f, 0x8b]), Header::Incomplete);
        let named = [
            &[0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 3][..],
            b"page.html\0",
        ]
        .concat();
        assert_eq!(header(&named), Header::Complete(20));
        assert_eq!(header(&named[..15]), Header::Incomplete);
        assert_eq!(header(&[0x1f, 0x8b, 8, 0x20, 0, 0]), Header::NotGzip);
        assert_eq!(header(b"<html>"), Header::NotGzip);
    }

    #[test]
    fn the_corrected_trailer_is_the_new_pages() {
        let page: Vec<u8> = (0..5000u32).map(|n| (n * 31 % 251) as u8).collect();
        let inserted = b"<script src=/x.js></script>";
        for at in [0, 100, 4999, 5000] {
            let mut original = trailer(&[&page]);
            Correction::new(&page[..at], inserted).apply(&mut original);
            let expected = trailer(&[&page[..at], inserted, &page[at..]]);
            assert_eq!(original, expected, "at {at}");
        }
    }
}
