//! An inflater that remembers where things are: each block's bit position and kind, and each
//! token's bit position and place in the page. `splice` needs them to cut the app's stream at
//! a token and to carry on with the rest unchanged. Input arrives in pieces: `run` decodes
//! whole tokens only, and picks up where it stopped when given more.

use super::bits::BitReader;
use super::huffman::{canonical_codes, Decoder, InvalidCode};
use super::tables::{CODE_LENGTH_ORDER, DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_EXTRA};

/// One unit of the app's stream: a literal (`dist` 0, `len` 1), a stored block's bytes (`dist`
/// 0, any `len`), or a match (`dist` >= 1).
#[derive(Debug, Clone, Copy)]
pub struct Token {
    /// Where its code starts in the deflate stream (for a stored block: its first byte).
    /// 32 bits: the splicer decodes at most a few MiB.
    pub bit: u32,
    /// Where its bytes start in the page.
    pub pos: u32,
    pub len: u16,
    pub dist: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stored,
    Fixed,
    Dynamic,
}

#[derive(Debug, Clone)]
pub struct Block {
    /// Its header's first bit (BFINAL).
    pub start: u64,
    /// Its first token's bit (after the header and its code tables).
    pub body: u64,
    pub kind: Kind,
    pub last: bool,
    /// Its first token's index in `Inflater::tokens`.
    pub first_token: usize,
    /// Where its bytes start in the page.
    pub pos: usize,
    /// Its end-of-block code, bit-reversed, and that code's length (Huffman blocks).
    pub end_code: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

impl From<InvalidCode> for Corrupt {
    fn from(_: InvalidCode) -> Self {
        Corrupt("invalid Huffman code")
    }
}

enum State {
    BlockStart,
    Huffman(Box<(Decoder, Decoder)>),
    Stored { remaining: usize },
    Done,
}

/// The longest token in bits: a 15-bit length code, 5 extra bits, a 15-bit distance code and
/// 13 extra bits. With fewer bits left, a failed decode may only mean "not arrived yet".
const LONGEST_TOKEN: u64 = 48;

pub struct Inflater {
    /// The page so far.
    pub plain: Vec<u8>,
    pub tokens: Vec<Token>,
    pub blocks: Vec<Block>,
    /// The bit after the final block, once decoded.
    pub end: Option<u64>,
    at: u64,
    state: State,
}

impl Default for Inflater {
    /// Room for the usual splice (a head and one window) without growing.
    fn default() -> Self {
        Self {
            plain: Vec::with_capacity(48 * 1024),
            tokens: Vec::with_capacity(4096),
            blocks: Vec::new(),
            end: None,
            at: 0,
            state: State::BlockStart,
        }
    }
}

impl Inflater {
    /// Decodes as much of `data` (the deflate stream from its first byte, as far as it has
    /// arrived) as it holds, until the page has at least `until` bytes.
    pub fn run(&mut self, data: &[u8], until: usize) -> Result<(), Corrupt> {
        let reader = BitReader::new(data);
        while self.plain.len() < until {
            let progressed = match &self.state {
                State::Done => return Ok(()),
                State::BlockStart => self.block_header(&reader)?,
                State::Stored { remaining } => self.stored(data, *remaining, until),
                State::Huffman(_) => self.huffman(&reader, until)?,
            };
            if !progressed {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads a block's header and tables; false when they have not all arrived.
    fn block_header(&mut self, reader: &BitReader<'_>) -> Result<bool, Corrupt> {
        let start = self.at;
        if start + 3 > reader.len_bits() {
            return Ok(false);
        }
        let last = reader.peek(start, 1) == 1;
        let header = match reader.peek(start + 1, 2) {
            0 => stored_header(reader, start + 3)?,
            1 => Some(Header::fixed(start + 3)),
            2 => dynamic_header(reader, start + 3)?,
            _ => return Err(Corrupt("invalid block type")),
        };
        let Some(header) = header else {
            return Ok(false);
        };
        let end_code = match &header.tables {
            Some((lengths, _)) => (canonical_codes(lengths)[256], u32::from(lengths[256])),
            None => (0, 0),
        };
        self.blocks.push(Block {
            start,
            body: header.body,
            kind: header.kind,
            last,
            first_token: self.tokens.len(),
            pos: self.plain.len(),
            end_code,
        });
        self.at = header.body;
        self.state = match header.tables {
            Some((_, decoders)) => State::Huffman(decoders),
            None => {
                self.tokens.push(Token {
                    bit: header.body as u32,
                    pos: self.plain.len() as u32,
                    len: header.stored_len as u16,
                    dist: 0,
                });
                State::Stored {
                    remaining: header.stored_len,
                }
            }
        };
        if header.kind == Kind::Stored && header.stored_len == 0 {
            self.end_block(last);
        }
        Ok(true)
    }

    fn end_block(&mut self, last: bool) {
        if last {
            self.end = Some(self.at);
            self.state = State::Done;
        } else {
            self.state = State::BlockStart;
        }
    }

    /// Copies a stored block's bytes as they arrive.
    fn stored(&mut self, data: &[u8], remaining: usize, until: usize) -> bool {
        let from = (self.at / 8) as usize;
        let take = remaining
            .min(data.len().saturating_sub(from))
            .min(until.saturating_sub(self.plain.len()).max(1));
        if take == 0 {
            return false;
        }
        self.plain.extend_from_slice(&data[from..from + take]);
        self.at += take as u64 * 8;
        if take == remaining {
            let last = self.blocks.last().is_some_and(|b| b.last);
            self.end_block(last);
        } else {
            self.state = State::Stored {
                remaining: remaining - take,
            };
        }
        true
    }

    /// Decodes tokens until the block ends, the input runs out or the page is long enough.
    fn huffman(&mut self, reader: &BitReader<'_>, until: usize) -> Result<bool, Corrupt> {
        let State::Huffman(decoders) = &self.state else {
            unreachable!("called in a Huffman block");
        };
        let (lit, dist) = &**decoders;
        let total = reader.len_bits();
        let start = self.at;
        while self.plain.len() < until {
            let at = self.at;
            let maybe_short = at + LONGEST_TOKEN > total;
            let Some(token) = next_token(reader, lit, dist, at) else {
                if maybe_short {
                    break;
                }
                return Err(Corrupt("invalid code"));
            };
            if token.next > total {
                break;
            }
            match token.symbol {
                Symbol::Literal(byte) => {
                    self.tokens.push(Token {
                        bit: at as u32,
                        pos: self.plain.len() as u32,
                        len: 1,
                        dist: 0,
                    });
                    self.plain.push(byte);
                }
                Symbol::End => {
                    self.at = token.next;
                    let last = self.blocks.last().is_some_and(|b| b.last);
                    self.end_block(last);
                    return Ok(true);
                }
                Symbol::Match(len, distance) => {
                    let from = self
                        .plain
                        .len()
                        .checked_sub(usize::from(distance))
                        .ok_or(Corrupt("distance before the page's start"))?;
                    self.tokens.push(Token {
                        bit: at as u32,
                        pos: self.plain.len() as u32,
                        len,
                        dist: distance,
                    });
                    copy_match(&mut self.plain, from, usize::from(len));
                }
            }
            self.at = token.next;
        }
        Ok(self.at > start)
    }
}

/// Appends `len` bytes copied from `from` (which may overlap what is being written).
fn copy_match(plain: &mut Vec<u8>, from: usize, len: usize) {
    let distance = plain.len() - from;
    if distance >= len {
        plain.extend_from_within(from..from + len);
    } else {
        plain.reserve(len);
        for k in 0..len {
            plain.push(plain[from + k]);
        }
    }
}

enum Symbol {
    Literal(u8),
    End,
    Match(u16, u16),
}

struct Decoded {
    symbol: Symbol,
    next: u64,
}

fn next_token(reader: &BitReader<'_>, lit: &Decoder, dist: &Decoder, at: u64) -> Option<Decoded> {
    let (symbol, length) = lit.decode(reader, at)?;
    let mut next = at + u64::from(length);
    let symbol = match symbol {
        0..=255 => Symbol::Literal(symbol as u8),
        256 => Symbol::End,
        257..=285 => {
            let index = usize::from(symbol - 257);
            let extra = u32::from(LEN_EXTRA[index]);
            let len = LEN_BASE[index] + reader.peek(next, extra) as u16;
            next += u64::from(extra);
            let (code, code_length) = dist.decode(reader, next)?;
            next += u64::from(code_length);
            let code = usize::from(code);
            if code >= 30 {
                return None;
            }
            let extra = u32::from(DIST_EXTRA[code]);
            let distance = DIST_BASE[code] + reader.peek(next, extra) as u16;
            next += u64::from(extra);
            Symbol::Match(len, distance)
        }
        _ => return None,
    };
    Some(Decoded { symbol, next })
}

struct Header {
    kind: Kind,
    body: u64,
    stored_len: usize,
    /// The literal/length code's lengths and the two decoders (Huffman blocks).
    tables: Option<Tables>,
}

type Tables = (Vec<u8>, Box<(Decoder, Decoder)>);

impl Header {
    fn fixed(body: u64) -> Self {
        let lengths = fixed_lengths();
        let decoders = (
            Decoder::new(&lengths[..288]).expect("the fixed code"),
            Decoder::new(&[5; 32]).expect("the fixed code"),
        );
        Header {
            kind: Kind::Fixed,
            body,
            stored_len: 0,
            tables: Some((lengths[..288].to_vec(), Box::new(decoders))),
        }
    }
}

/// The fixed literal/length code's lengths (RFC 1951 3.2.6).
pub fn fixed_lengths() -> [u8; 288] {
    let mut lengths = [8u8; 288];
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    lengths
}

fn stored_header(reader: &BitReader<'_>, after_type: u64) -> Result<Option<Header>, Corrupt> {
    let aligned = after_type.div_ceil(8) * 8;
    if aligned + 32 > reader.len_bits() {
        return Ok(None);
    }
    let len = reader.peek(aligned, 16);
    let nlen = reader.peek(aligned + 16, 16);
    if len != !nlen & 0xFFFF {
        return Err(Corrupt("stored block length and its complement disagree"));
    }
    Ok(Some(Header {
        kind: Kind::Stored,
        body: aligned + 32,
        stored_len: len as usize,
        tables: None,
    }))
}

/// A dynamic block's code tables (RFC 1951 3.2.7); None when they have not all arrived.
fn dynamic_header(reader: &BitReader<'_>, mut at: u64) -> Result<Option<Header>, Corrupt> {
    let total = reader.len_bits();
    if at + 14 > total {
        return Ok(None);
    }
    let literals = 257 + reader.peek(at, 5) as usize;
    let distances = 1 + reader.peek(at + 5, 5) as usize;
    let code_lengths = 4 + reader.peek(at + 10, 4) as usize;
    at += 14;
    if literals > 286 || distances > 30 {
        return Err(Corrupt("too many codes"));
    }
    if at + 3 * code_lengths as u64 > total {
        return Ok(None);
    }
    let mut cl_lengths = [0u8; 19];
    for &symbol in &CODE_LENGTH_ORDER[..code_lengths] {
        cl_lengths[symbol] = reader.peek(at, 3) as u8;
        at += 3;
    }
    let cl = Decoder::new(&cl_lengths)?;
    let mut lengths = Vec::with_capacity(literals + distances);
    while lengths.len() < literals + distances {
        if at + 7 + 7 > total {
            return Ok(None);
        }
        let (symbol, used) = cl
            .decode(reader, at)
            .ok_or(Corrupt("invalid code length"))?;
        at += u64::from(used);
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let previous = *lengths
                    .last()
                    .ok_or(Corrupt("repeat with nothing before"))?;
                let repeat = 3 + reader.peek(at, 2) as usize;
                at += 2;
                (previous, repeat)
            }
            17 => {
                let repeat = 3 + reader.peek(at, 3) as usize;
                at += 3;
                (0, repeat)
            }
            _ => {
                let repeat = 11 + reader.peek(at, 7) as usize;
                at += 7;
                (0, repeat)
            }
        };
        if lengths.len() + repeat > literals + distances {
            return Err(Corrupt("code lengths overrun"));
        }
        lengths.extend(std::iter::repeat_n(value, repeat));
    }
    if lengths[256] == 0 {
        return Err(Corrupt("no end-of-block code"));
    }
    let decoders = (
        Decoder::new(&lengths[..literals])?,
        Decoder::new(&lengths[literals..])?,
    );
    let mut literal_lengths = lengths;
    literal_lengths.truncate(literals);
    Ok(Some(Header {
        kind: Kind::Dynamic,
        body: at,
        stored_len: 0,
        tables: Some((literal_lengths, Box::new(decoders))),
    }))
}
