//! Building the spliced stream around the insertion point (`docs/inject.md`, "Splicing a
//! gzipped page"):
//!
//! 1. the app's bits up to the token that reaches the insertion point, copied, and that
//!    block closed early with its own end-of-block code;
//! 2. one block of Tether's: the rest of that token, the inserted bytes, and every token of
//!    the next 32 KiB (the window a later match can reach back over), with the distances that
//!    crossed the insertion point lengthened (or spelled out as literals past 32 KiB);
//! 3. the block that held the first token past that window: its header copied, then the
//!    app's bytes from that token on, unchanged. Empty blocks first bring Tether's bit
//!    position level with the app's, so the rest is a plain byte copy (stored blocks included).

use super::bits::{BitReader, BitWriter};
use super::encode::{pad_to, write_block, Out};
use super::inflate::{Block, Inflater, Kind, Token};

/// How far back a deflate match may reach.
pub const WINDOW: usize = 32 * 1024;

/// The spliced stream up to where the app's bytes carry on.
pub struct Joined {
    pub bytes: Vec<u8>,
    pub rest: Rest,
}

pub enum Rest {
    /// The app's deflate stream carries on from this byte (of the deflate stream).
    Copied { from_byte: usize },
    /// The stream ended within the window: Tether wrote the final block.
    Ended,
}

/// The token where the copied rest starts: the first of a Huffman block at least a window
/// past the insertion point. None until the inflater has reached one.
pub fn tail_token(inflater: &Inflater, at: usize) -> Option<(usize, usize)> {
    let blocks = &inflater.blocks;
    let first = blocks.iter().rposition(|b| b.pos <= at).unwrap_or(0);
    for (index, block) in blocks.iter().enumerate().skip(first) {
        if block.kind == Kind::Stored {
            continue;
        }
        let tokens = token_range(inflater, index);
        let found =
            inflater.tokens[tokens.clone()].partition_point(|t| (t.pos as usize) < at + WINDOW);
        if tokens.start + found < tokens.end {
            return Some((index, tokens.start + found));
        }
    }
    None
}

fn token_range(inflater: &Inflater, block: usize) -> std::ops::Range<usize> {
    let start = inflater.blocks[block].first_token;
    let end = inflater
        .blocks
        .get(block + 1)
        .map_or(inflater.tokens.len(), |next| next.first_token);
    start..end
}

/// Joins the copied head, Tether's block and (when `tail` is some) the copied tail's start.
/// `head` is what precedes the deflate stream (the gzip header), `data` the deflate stream.
pub fn join(
    head: &[u8],
    data: &[u8],
    inflater: &Inflater,
    at: usize,
    inserted: &[u8],
    tail: Option<(usize, usize)>,
) -> Joined {
    let reader = BitReader::new(data);
    let mut writer = BitWriter::with_bytes(head.to_vec());
    let cut = cut_before(inflater, at);
    let block = &inflater.blocks[cut.block];
    // Every bit before the cut; the block being cut is no longer the final one.
    writer.copy_bits(&reader, 0, block.start);
    if let Some(token) = cut.token {
        writer.write(0, 1);
        writer.copy_bits(
            &reader,
            block.start + 1,
            u64::from(inflater.tokens[token].bit),
        );
        writer.write(block.end_code.0, block.end_code.1);
    }
    let first_token = cut.token.unwrap_or(block.first_token);
    let last_token = tail.map_or(inflater.tokens.len(), |(_, token)| token);
    let tokens = retarget(
        &inflater.tokens[first_token..last_token],
        &inflater.plain,
        at,
        inserted,
    );
    write_block(&mut writer, &tokens, tail.is_none());
    let Some((tail_block, tail_token)) = tail else {
        return Joined {
            bytes: writer.finish(),
            rest: Rest::Ended,
        };
    };
    let block = &inflater.blocks[tail_block];
    let token = inflater.tokens[tail_token];
    let token_bit = u64::from(token.bit);
    let header_bits = block.body - block.start;
    pad_to(
        &mut writer,
        ((token_bit + 8 * 8 - header_bits % 8) % 8) as u32,
    );
    writer.copy_bits(&reader, block.start, block.body);
    let byte = (token_bit / 8) as usize;
    writer.append_aligned(&data[byte..byte + 1], token_bit);
    Joined {
        bytes: writer.bytes,
        rest: Rest::Copied {
            from_byte: byte + 1,
        },
    }
}

struct Cut {
    block: usize,
    /// The first token Tether writes again, when the cut is inside a Huffman block (else the
    /// whole block is written again).
    token: Option<usize>,
}

/// Where the app's bits stop: at the token that reaches the insertion point (or the last one
/// before it), or at the start of a stored or empty block.
fn cut_before(inflater: &Inflater, at: usize) -> Cut {
    let block = inflater
        .blocks
        .iter()
        .rposition(|b: &Block| b.pos <= at)
        .unwrap_or(0);
    let tokens = token_range(inflater, block);
    if inflater.blocks[block].kind == Kind::Stored || tokens.is_empty() {
        return Cut { block, token: None };
    }
    let reaching = inflater.tokens[tokens.clone()]
        .partition_point(|t| t.pos as usize + usize::from(t.len) <= at)
        .min(tokens.len() - 1);
    Cut {
        block,
        token: Some(tokens.start + reaching),
    }
}

/// The app's tokens from the cut to the tail, re-aimed for the bytes inserted at `at`.
fn retarget(tokens: &[Token], plain: &[u8], at: usize, inserted: &[u8]) -> Vec<Out> {
    let mut out = Vec::with_capacity(tokens.len() + inserted.len());
    let literals = |out: &mut Vec<Out>, range: std::ops::Range<usize>| {
        out.extend(plain[range].iter().map(|&b| Out::literal(b)));
    };
    let shift = inserted.len();
    let mut placed = false;
    for token in tokens {
        let (pos, len, dist) = (
            token.pos as usize,
            usize::from(token.len),
            usize::from(token.dist),
        );
        let end = pos + len;
        if !placed && end > at {
            // This token reaches the insertion point: its bytes before it, the insertion,
            // then its bytes after it, all as literals.
            literals(&mut out, pos.min(at)..at);
            out.extend(inserted.iter().map(|&b| Out::literal(b)));
            placed = true;
            literals(&mut out, at.max(pos)..end);
            continue;
        }
        if dist == 0 {
            literals(&mut out, pos..end);
        } else if !placed || pos - dist >= at {
            out.push(Out::matched(len as u16, dist as u16));
        } else if pos - dist + len <= at && dist + shift <= WINDOW {
            out.push(Out::matched(len as u16, (dist + shift) as u16));
        } else {
            literals(&mut out, pos..end);
        }
    }
    if !placed {
        out.extend(inserted.iter().map(|&b| Out::literal(b)));
    }
    out
}
