//! Canonical Huffman codes (RFC 1951 3.2.2): decoding tables for the app's blocks, and
//! length-limited codes for the blocks Tether writes.

use super::bits::{reverse, BitReader};

/// Codes up to this many bits are decoded by one table lookup; longer ones bit by bit.
const FAST_BITS: u32 = 10;
pub const MAX_BITS: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCode;

/// Decodes one alphabet's codes.
#[derive(Clone)]
pub struct Decoder {
    /// Indexed by the next FAST_BITS bits: symbol << 4 | length, or 0 for a longer code.
    fast: Box<[u16]>,
    /// Codes of each length, and the symbols in canonical order (for the long codes).
    counts: [u16; MAX_BITS + 1],
    symbols: Vec<u16>,
}

impl Decoder {
    /// A decoder for the code with these lengths (0: the symbol is unused). Like zlib, refuses
    /// an over-subscribed code, and an incomplete one unless it is a single code of one bit.
    pub fn new(lengths: &[u8]) -> Result<Self, InvalidCode> {
        let mut counts = [0u16; MAX_BITS + 1];
        for &length in lengths {
            counts[usize::from(length)] += 1;
        }
        counts[0] = 0;
        let mut left: i32 = 1;
        for &count in &counts[1..] {
            left = (left << 1) - i32::from(count);
            if left < 0 {
                return Err(InvalidCode);
            }
        }
        let used: u16 = counts.iter().sum();
        if left > 0 && used > 0 && !(used == 1 && counts[1] == 1) {
            return Err(InvalidCode);
        }
        let mut offsets = [0u16; MAX_BITS + 2];
        for length in 1..=MAX_BITS {
            offsets[length + 1] = offsets[length] + counts[length];
        }
        let mut symbols = vec![0u16; usize::from(used)];
        for (symbol, &length) in lengths.iter().enumerate() {
            if length > 0 {
                let slot = &mut offsets[usize::from(length)];
                symbols[usize::from(*slot)] = symbol as u16;
                *slot += 1;
            }
        }
        let mut fast = vec![0u16; 1 << FAST_BITS].into_boxed_slice();
        for (symbol, code) in canonical_codes(lengths).into_iter().enumerate() {
            let length = u32::from(lengths[symbol]);
            if length == 0 || length > FAST_BITS {
                continue;
            }
            let entry = (symbol as u16) << 4 | length as u16;
            let mut index = code as usize;
            while index < fast.len() {
                fast[index] = entry;
                index += 1 << length;
            }
        }
        Ok(Self {
            fast,
            counts,
            symbols,
        })
    }

    /// The symbol whose code starts at bit `at`, and its length; None for no valid code.
    #[inline]
    pub fn decode(&self, reader: &BitReader<'_>, at: u64) -> Option<(u16, u32)> {
        let entry = self.fast[reader.peek(at, FAST_BITS) as usize];
        if entry != 0 {
            return Some((entry >> 4, u32::from(entry & 15)));
        }
        self.decode_slowly(reader, at)
    }

    /// Bit by bit through the canonical order (codes longer than the table).
    fn decode_slowly(&self, reader: &BitReader<'_>, at: u64) -> Option<(u16, u32)> {
        let bits = reader.peek(at, MAX_BITS as u32);
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for length in 1..=MAX_BITS {
            code |= ((bits >> (length - 1)) & 1) as i32;
            let count = i32::from(self.counts[length]);
            if code - first < count {
                let symbol = self.symbols[(index + code - first) as usize];
                return Some((symbol, length as u32));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        None
    }
}

/// Each symbol's code, bit-reversed for writing (0 for unused symbols).
pub fn canonical_codes(lengths: &[u8]) -> Vec<u32> {
    let mut counts = [0u32; MAX_BITS + 1];
    for &length in lengths {
        counts[usize::from(length)] += 1;
    }
    counts[0] = 0;
    let mut next = [0u32; MAX_BITS + 1];
    for length in 1..=MAX_BITS {
        next[length] = (next[length - 1] + counts[length - 1]) << 1;
    }
    lengths
        .iter()
        .map(|&length| {
            if length == 0 {
                return 0;
            }
            let code = next[usize::from(length)];
            next[usize::from(length)] += 1;
            reverse(code, u32::from(length))
        })
        .collect()
}

/// Code lengths of at most `limit` bits for symbols with these frequencies: a Huffman code,
/// its deepest levels folded up when it is too deep. At least two symbols get codes (so every
/// code is complete: decoders treat a lone code differently).
pub fn code_lengths(frequencies: &[u32], limit: usize) -> Vec<u8> {
    let mut used: Vec<(u32, usize)> = frequencies
        .iter()
        .enumerate()
        .filter(|(_, &f)| f > 0)
        .map(|(symbol, &f)| (f, symbol))
        .collect();
    let unused: Vec<usize> = frequencies
        .iter()
        .enumerate()
        .filter(|(_, &f)| f == 0)
        .map(|(symbol, _)| symbol)
        .take(2usize.saturating_sub(used.len()))
        .collect();
    used.extend(unused.into_iter().map(|symbol| (1, symbol)));
    used.sort_unstable();
    let depths = huffman_depths(&used.iter().map(|&(f, _)| f).collect::<Vec<_>>());
    // Codes per length, limited: over-deep codes go to the limit, then codes move down a
    // level (one code at level l becomes two at l + 1) until the lengths fit a prefix code.
    let mut per_length = vec![0u32; limit + 1];
    for &depth in &depths {
        per_length[depth.min(limit)] += 1;
    }
    let capacity = 1u64 << limit;
    let mut total: u64 = (1..=limit)
        .map(|l| u64::from(per_length[l]) << (limit - l))
        .sum();
    while total > capacity {
        per_length[limit] -= 1;
        let from = (1..limit)
            .rev()
            .find(|&l| per_length[l] > 0)
            .expect("a shallower code");
        per_length[from] -= 1;
        per_length[from + 1] += 2;
        total -= 1;
    }
    // The rarest symbols (first in `used`) take the longest codes.
    let mut lengths = vec![0u8; frequencies.len()];
    let mut symbols = used.iter().map(|&(_, symbol)| symbol);
    for length in (1..=limit).rev() {
        for _ in 0..per_length[length] {
            lengths[symbols.next().expect("as many codes as symbols")] = length as u8;
        }
    }
    lengths
}

/// The depth of each leaf of a Huffman tree over these ascending weights (two queues: the
/// leaves in order, and the merged nodes, which come out in order too).
fn huffman_depths(weights: &[u32]) -> Vec<usize> {
    let leaves = weights.len();
    let nodes = 2 * leaves - 1;
    let mut weight: Vec<u64> = weights.iter().map(|&w| u64::from(w)).collect();
    weight.resize(nodes, 0);
    let mut parent = vec![0usize; nodes];
    let (mut next_leaf, mut next_merged) = (0, leaves);
    for node in leaves..nodes {
        let mut pick = || {
            let take_leaf = next_leaf < leaves
                && (next_merged >= node || weight[next_leaf] <= weight[next_merged]);
            if take_leaf {
                next_leaf += 1;
                next_leaf - 1
            } else {
                next_merged += 1;
                next_merged - 1
            }
        };
        let (a, b) = (pick(), pick());
        weight[node] = weight[a] + weight[b];
        parent[a] = node;
        parent[b] = node;
    }
    let mut depth = vec![0usize; nodes];
    for node in (0..nodes - 1).rev() {
        depth[node] = depth[parent[node]] + 1;
    }
    depth.truncate(leaves);
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lengths: &[u8]) -> f64 {
        lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 0.5f64.powi(i32::from(l)))
            .sum()
    }

    #[test]
    fn codes_are_complete_and_limited() {
        // Fibonacci frequencies make the deepest unlimited trees.
        let mut fib = vec![1u32, 1];
        while fib.len() < 30 {
            fib.push(fib[fib.len() - 1] + fib[fib.len() - 2]);
        }
        for limit in [7, 15] {
            let lengths = code_lengths(&fib, limit);
            assert!(lengths.iter().all(|&l| l > 0 && usize::from(l) <= limit));
            assert!((kraft(&lengths) - 1.0).abs() < 1e-12, "{lengths:?}");
        }
        let lone = code_lengths(&[0, 5, 0], 15);
        assert_eq!(lone.iter().filter(|&&l| l > 0).count(), 2);
        assert!((kraft(&lone) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn decodes_what_the_codes_say() {
        let frequencies: Vec<u32> = (0..40u32).map(|s| (s * 7919) % 97 + 1).collect();
        let lengths = code_lengths(&frequencies, 15);
        let codes = canonical_codes(&lengths);
        let decoder = Decoder::new(&lengths).unwrap();
        let mut writer = super::super::bits::BitWriter::default();
        for symbol in 0..40 {
            writer.write(codes[symbol], u32::from(lengths[symbol]));
        }
        let bytes = writer.finish();
        let reader = BitReader::new(&bytes);
        let mut at = 0;
        for symbol in 0..40u16 {
            let (decoded, length) = decoder.decode(&reader, at).unwrap();
            assert_eq!(decoded, symbol);
            at += u64::from(length);
        }
    }

    #[test]
    fn refuses_what_zlib_refuses() {
        assert!(Decoder::new(&[1, 1, 1]).is_err(), "over-subscribed");
        assert!(Decoder::new(&[2, 2, 2]).is_err(), "incomplete");
        assert!(Decoder::new(&[0, 1, 0]).is_ok(), "one code of one bit");
        assert!(Decoder::new(&[0, 0]).is_ok(), "no codes at all");
    }
}
