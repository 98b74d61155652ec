//! The blocks Tether writes into a spliced stream: its own tokens under a code made for them
//! (or the fixed code when that is shorter), and empty blocks that only move the bit position.

use super::bits::BitWriter;
use super::huffman::{canonical_codes, code_lengths, MAX_BITS};
use super::inflate::fixed_lengths;
use super::tables::{
    distance_code, length_code, CODE_LENGTH_ORDER, DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_EXTRA,
};

/// A literal (`dist` 0) or a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Out {
    pub len: u16,
    pub dist: u16,
    pub byte: u8,
}

impl Out {
    pub fn literal(byte: u8) -> Self {
        Self {
            len: 1,
            dist: 0,
            byte,
        }
    }

    pub fn matched(len: u16, dist: u16) -> Self {
        Self { len, dist, byte: 0 }
    }
}

const END_OF_BLOCK: usize = 256;

/// One block holding `tokens`, final or not.
pub fn write_block(writer: &mut BitWriter, tokens: &[Out], last: bool) {
    let mut lit_freq = [0u32; 286];
    let mut dist_freq = [0u32; 30];
    for token in tokens {
        if token.dist == 0 {
            lit_freq[usize::from(token.byte)] += 1;
        } else {
            lit_freq[257 + length_code(token.len)] += 1;
            dist_freq[distance_code(token.dist)] += 1;
        }
    }
    lit_freq[END_OF_BLOCK] += 1;
    let dynamic = DynamicHeader::new(&lit_freq, &dist_freq);
    let fixed_lit = fixed_lengths();
    let fixed_cost = 3 + cost(&lit_freq, &fixed_lit) + cost(&dist_freq, &[5; 30]);
    let dynamic_cost =
        3 + dynamic.bits() + cost(&lit_freq, &dynamic.lit) + cost(&dist_freq, &dynamic.dist);
    writer.write(u32::from(last), 1);
    let (lit, dist) = if dynamic_cost < fixed_cost {
        writer.write(2, 2);
        dynamic.write(writer);
        (dynamic.lit, dynamic.dist)
    } else {
        writer.write(1, 2);
        (fixed_lit[..286].to_vec(), vec![5; 30])
    };
    write_tokens(writer, tokens, &lit, &dist);
}

fn write_tokens(writer: &mut BitWriter, tokens: &[Out], lit: &[u8], dist: &[u8]) {
    let lit_codes = canonical_codes(lit);
    let dist_codes = canonical_codes(dist);
    let put = |writer: &mut BitWriter, codes: &[u32], lengths: &[u8], symbol: usize| {
        writer.write(codes[symbol], u32::from(lengths[symbol]));
    };
    for token in tokens {
        if token.dist == 0 {
            put(writer, &lit_codes, lit, usize::from(token.byte));
            continue;
        }
        let code = length_code(token.len);
        put(writer, &lit_codes, lit, 257 + code);
        writer.write(
            u32::from(token.len - LEN_BASE[code]),
            u32::from(LEN_EXTRA[code]),
        );
        let code = distance_code(token.dist);
        put(writer, &dist_codes, dist, code);
        writer.write(
            u32::from(token.dist - DIST_BASE[code]),
            u32::from(DIST_EXTRA[code]),
        );
    }
    put(writer, &lit_codes, lit, END_OF_BLOCK);
}

/// The bits the symbols take under these lengths, extra bits aside (the same for both codes).
fn cost(frequencies: &[u32], lengths: &[u8]) -> u64 {
    frequencies
        .iter()
        .zip(lengths)
        .map(|(&f, &l)| u64::from(f) * u64::from(l))
        .sum()
}

/// A dynamic block's code tables, run-length coded (RFC 1951 3.2.7).
struct DynamicHeader {
    lit: Vec<u8>,
    dist: Vec<u8>,
    /// (code-length symbol, its extra bits' value).
    runs: Vec<(u8, u8)>,
    cl_lengths: Vec<u8>,
    cl_count: usize,
}

impl DynamicHeader {
    fn new(lit_freq: &[u32], dist_freq: &[u32]) -> Self {
        let mut lit = code_lengths(lit_freq, MAX_BITS);
        let mut dist = code_lengths(dist_freq, MAX_BITS);
        let used = |lengths: &[u8], least: usize| {
            lengths
                .iter()
                .rposition(|&l| l > 0)
                .map_or(least, |last| (last + 1).max(least))
        };
        lit.truncate(used(&lit, 257));
        dist.truncate(used(&dist, 1));
        let all: Vec<u8> = lit.iter().chain(&dist).copied().collect();
        let runs = run_lengths(&all);
        let mut cl_freq = [0u32; 19];
        for &(symbol, _) in &runs {
            cl_freq[usize::from(symbol)] += 1;
        }
        let cl_lengths = code_lengths(&cl_freq, 7);
        let cl_count = CODE_LENGTH_ORDER
            .iter()
            .rposition(|&s| cl_lengths[s] > 0)
            .map_or(4, |last| (last + 1).max(4));
        Self {
            lit,
            dist,
            runs,
            cl_lengths,
            cl_count,
        }
    }

    fn bits(&self) -> u64 {
        let runs: u64 = self
            .runs
            .iter()
            .map(|&(s, _)| u64::from(self.cl_lengths[usize::from(s)]) + extra_bits(s))
            .sum();
        14 + 3 * self.cl_count as u64 + runs
    }

    fn write(&self, writer: &mut BitWriter) {
        writer.write((self.lit.len() - 257) as u32, 5);
        writer.write((self.dist.len() - 1) as u32, 5);
        writer.write((self.cl_count - 4) as u32, 4);
        for &symbol in &CODE_LENGTH_ORDER[..self.cl_count] {
            writer.write(u32::from(self.cl_lengths[symbol]), 3);
        }
        let codes = canonical_codes(&self.cl_lengths);
        for &(symbol, extra) in &self.runs {
            let s = usize::from(symbol);
            writer.write(codes[s], u32::from(self.cl_lengths[s]));
            writer.write(u32::from(extra), extra_bits(symbol) as u32);
        }
    }
}

fn extra_bits(symbol: u8) -> u64 {
    match symbol {
        16 => 2,
        17 => 3,
        18 => 7,
        _ => 0,
    }
}

/// Code lengths as code-length symbols: 16 repeats the previous length 3-6 times, 17 and 18
/// give 3-10 and 11-138 zeros.
fn run_lengths(lengths: &[u8]) -> Vec<(u8, u8)> {
    let mut runs = Vec::new();
    let mut at = 0;
    while at < lengths.len() {
        let value = lengths[at];
        let same = lengths[at..].iter().take_while(|&&l| l == value).count();
        let mut left = same;
        if value == 0 {
            while left >= 11 {
                let n = left.min(138);
                runs.push((18, (n - 11) as u8));
                left -= n;
            }
            if left >= 3 {
                runs.push((17, (left - 3) as u8));
                left = 0;
            }
        } else {
            runs.push((value, 0));
            left -= 1;
            while left >= 3 {
                let n = left.min(6);
                runs.push((16, (n - 3) as u8));
                left -= n;
            }
        }
        runs.extend(std::iter::repeat_n((value, 0), left));
        at += same;
    }
    runs
}

/// Empty blocks that advance the writer until its position is `residue` modulo 8: a fixed
/// empty block takes 10 bits (2 mod 8), the dynamic one below 95 (7 mod 8).
pub fn pad_to(writer: &mut BitWriter, residue: u32) {
    let mut need = (residue + 8 - (writer.position() % 8) as u32) % 8;
    if need % 2 == 1 {
        empty_dynamic_block(writer);
        need = (need + 1) % 8;
    }
    for _ in 0..need / 2 {
        writer.write(0b010, 3); // not last, fixed codes
        writer.write(0, 7); // end of block: the fixed code 0000000
    }
}

/// A 95-bit empty block with complete codes: literal 0 and end-of-block one bit each, two
/// one-bit distance codes, described by a code-length code of two one-bit symbols (1 and 18).
fn empty_dynamic_block(writer: &mut BitWriter) {
    writer.write(0b100, 3); // not last, dynamic codes
    writer.write(0, 5); // 257 literal/length codes
    writer.write(1, 5); // 2 distance codes
    writer.write(15, 4); // 19 code-length code lengths
    for &symbol in &CODE_LENGTH_ORDER {
        writer.write(u32::from(symbol == 1 || symbol == 18), 3);
    }
    // Code-length codes: symbol 1 is `0`, symbol 18 is `1`.
    writer.write(0, 1); // literal 0: length 1
    writer.write(1, 1); // 138 zeros
    writer.write(127, 7);
    writer.write(1, 1); // 117 zeros (literals 139-255)
    writer.write(106, 7);
    writer.write(0, 1); // end of block: length 1
    writer.write(0, 1); // distance 0: length 1
    writer.write(0, 1); // distance 1: length 1
    writer.write(1, 1); // end of block (literal 0 is `0`, end of block `1`)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut decoder = flate2::write::DeflateDecoder::new(&mut out);
        std::io::Write::write_all(&mut decoder, raw).unwrap();
        decoder.finish().unwrap();
        out
    }

    #[test]
    fn padding_reaches_every_residue_and_decodes() {
        for start in 0..8 {
            for residue in 0..8 {
                let mut writer = BitWriter::default();
                writer.write(0, start);
                let before = writer.position();
                pad_to(&mut writer, residue);
                assert_eq!(writer.position() % 8, u64::from(residue));
                assert!(writer.position() - before < 8 * 20);
            }
        }
        for residue in 0..8 {
            let mut writer = BitWriter::default();
            pad_to(&mut writer, residue);
            write_block(&mut writer, &[Out::literal(b'x')], true);
            assert_eq!(inflate(&writer.finish()), b"x");
        }
    }

    #[test]
    fn blocks_decode_to_their_tokens() {
        let mut tokens: Vec<Out> = b"abcabc".iter().map(|&b| Out::literal(b)).collect();
        tokens.push(Out::matched(258, 3));
        tokens.push(Out::literal(b'!'));
        let mut writer = BitWriter::default();
        write_block(&mut writer, &tokens, false);
        write_block(&mut writer, &[Out::literal(b'.')], true);
        let mut expected = b"abcabc".to_vec();
        for _ in 0..258 {
            expected.push(expected[expected.len() - 3]);
        }
        expected.extend(b"!.");
        assert_eq!(inflate(&writer.finish()), expected);
    }

    #[test]
    fn run_lengths_expand_back() {
        let lengths: Vec<u8> =
            [vec![0; 150], vec![5; 9], vec![0; 4], vec![7, 7], vec![0; 2]].concat();
        let mut back = Vec::new();
        for (symbol, extra) in run_lengths(&lengths) {
            match symbol {
                16 => {
                    let last = *back.last().unwrap();
                    back.extend(std::iter::repeat_n(last, 3 + usize::from(extra)));
                }
                17 => back.extend(std::iter::repeat_n(0, 3 + usize::from(extra))),
                18 => back.extend(std::iter::repeat_n(0, 11 + usize::from(extra))),
                value => back.push(value),
            }
        }
        assert_eq!(back, lengths);
    }
}
