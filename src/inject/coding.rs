//! Content codings around the rewriter. Tether asks the app for navigations uncompressed (the
//! loopback hop gains nothing from compression, and the app saves the work), rewrites, then
//! compresses for the client itself: gzip at a fast level when the client takes gzip, brotli
//! otherwise. An app that compresses anyway is decoded (gzip, deflate, br).

use std::io::Write;

/// The codings Tether writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCoding {
    Gzip,
    Brotli,
    Identity,
}

impl OutputCoding {
    /// The best coding the client accepts: gzip (4x cheaper than brotli for the same page, see
    /// the README), then br, else none. `q=0` refuses a coding.
    pub fn for_client(accept_encoding: &[&str]) -> Self {
        let mut gzip = false;
        let mut brotli = false;
        for item in accept_encoding.iter().flat_map(|value| value.split(',')) {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|param| {
                let param = param.trim().to_ascii_lowercase();
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = true,
                "br" => brotli = true,
                "*" => gzip = true,
                _ => {}
            }
        }
        match (gzip, brotli) {
            (true, _) => Self::Gzip,
            (false, true) => Self::Brotli,
            _ => Self::Identity,
        }
    }

    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Self::Gzip => Some("gzip"),
            Self::Brotli => Some("br"),
            Self::Identity => None,
        }
    }
}

/// The app's `Content-Encoding`, when Tether can undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputCoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

impl InputCoding {
    /// None for codings Tether cannot decode (zstd, stacked codings): such pages pass unchanged.
    pub fn parse(content_encoding: Option<&str>) -> Option<Self> {
        let Some(value) = content_encoding else {
            return Some(Self::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Deflate),
            "br" => Some(Self::Brotli),
            _ => None,
        }
    }
}

/// A streaming encoder writing into a buffer that `take` empties.
pub enum Encoder {
    Gzip(Box<flate2::write::GzEncoder<Vec<u8>>>),
    /// Brotli writes its last block only when the writer is consumed: None after `finish`, with
    /// the final bytes kept beside it.
    Brotli(Option<Box<brotli::CompressorWriter<Vec<u8>>>>, Vec<u8>),
}

impl Encoder {
    pub fn new(coding: OutputCoding, gzip_level: u32) -> Option<Self> {
        match coding {
            OutputCoding::Gzip => Some(Self::Gzip(Box::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(gzip_level),
            )))),
            // Quality 3: brotli's fastest levels cost about the same and 3 compresses better.
            OutputCoding::Brotli => Some(Self::Brotli(
                Some(Box::new(brotli::CompressorWriter::new(
                    Vec::new(),
                    16 * 1024,
                    3,
                    22,
                ))),
                Vec::new(),
            )),
            OutputCoding::Identity => None,
        }
    }

    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.write_all(data),
            Self::Brotli(Some(encoder), _) => encoder.write_all(data),
            Self::Brotli(None, _) => Err(std::io::Error::other("brotli stream already finished")),
        }
    }

    /// Pushes what is buffered out, so the client sees the page so far (a sync flush).
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.flush(),
            Self::Brotli(Some(encoder), _) => encoder.flush(),
            Self::Brotli(None, _) => Ok(()),
        }
    }

    /// Ends the stream (trailer, checksum) into the buffer.
    pub fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.try_finish(),
            Self::Brotli(encoder, last) => {
                if let Some(encoder) = encoder.take() {
                    last.extend_from_slice(&encoder.into_inner());
                }
                Ok(())
            }
        }
    }

    pub fn take(&mut self) -> Vec<u8> {
        match self {
            Self::Gzip(encoder) => std::mem::take(encoder.get_mut()),
            Self::Brotli(Some(encoder), _) => std::mem::take(encoder.get_mut()),
            Self::Brotli(None, last) => std::mem::take(last),
        }
    }
}

/// A streaming decoder of the app's coding, writing into a buffer that `take` empties.
pub enum Decoder {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl Decoder {
    pub fn new(coding: InputCoding) -> Option<Self> {
        match coding {
            InputCoding::Identity => None,
            InputCoding::Gzip => Some(Self::Gzip(flate2::write::MultiGzDecoder::new(Vec::new()))),
            InputCoding::Deflate => {
                Some(Self::Deflate(flate2::write::ZlibDecoder::new(Vec::new())))
            }
            InputCoding::Brotli => Some(Self::Brotli(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                16 * 1024,
            )))),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Gzip(decoder) => decoder.write_all(data),
            Self::Deflate(decoder) => decoder.write_all(data),
            Self::Brotli(decoder) => decoder.write_all(data),
        }
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Self::Gzip(decoder) => decoder.try_finish(),
            Self::Deflate(decoder) => decoder.try_finish(),
            Self::Brotli(decoder) => decoder.flush(),
        }
    }

    pub fn take(&mut self) -> Vec<u8> {
        match self {
            Self::Gzip(decoder) => std::mem::take(decoder.get_mut()),
            Self::Deflate(decoder) => std::mem::take(decoder.get_mut()),
            Self::Brotli(decoder) => std::mem::take(decoder.get_mut()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_coding() {
        use OutputCoding::*;
        assert_eq!(OutputCoding::for_client(&["gzip, deflate, br, zstd"]), Gzip);
        assert_eq!(OutputCoding::for_client(&["br"]), Brotli);
        assert_eq!(OutputCoding::for_client(&["gzip;q=0, br;q=0.5"]), Brotli);
        assert_eq!(OutputCoding::for_client(&["identity"]), Identity);
        assert_eq!(OutputCoding::for_client(&[]), Identity);
        assert_eq!(OutputCoding::for_client(&["*"]), Gzip);
    }

    #[test]
    fn round_trips() {
        let page = b"<html><head></head><body>".repeat(1000);
        for coding in [OutputCoding::Gzip, OutputCoding::Brotli] {
            let mut encoder = Encoder::new(coding, 1).unwrap();
            let mut wire = Vec::new();
            for chunk in page.chunks(1000) {
                encoder.write(chunk).unwrap();
                encoder.flush().unwrap();
                wire.extend(encoder.take());
            }
            encoder.finish().unwrap();
            wire.extend(encoder.take());
            let input = match coding {
                OutputCoding::Gzip => InputCoding::Gzip,
                _ => InputCoding::Brotli,
            };
            let mut decoder = Decoder::new(input).unwrap();
            let mut plain = Vec::new();
            for chunk in wire.chunks(7) {
                decoder.write(chunk).unwrap();
                plain.extend(decoder.take());
            }
            decoder.finish().unwrap();
            plain.extend(decoder.take());
            assert_eq!(plain, page, "{coding:?}");
        }
    }
}
