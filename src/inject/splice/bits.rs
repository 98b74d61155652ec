//! Bit-level reading and writing in deflate's order (RFC 1951 3.1.1): bits fill each byte from
//! its least significant end; Huffman codes go most significant bit first, so they are written
//! reversed.

/// Reads bits anywhere in a byte slice, by absolute bit position.
pub struct BitReader<'a> {
    data: &'a [u8],
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn len_bits(&self) -> u64 {
        self.data.len() as u64 * 8
    }

    /// Up to 57 bits from `at` (zeros past the end: callers check `len_bits` first).
    #[inline]
    pub fn peek(&self, at: u64, count: u32) -> u64 {
        debug_assert!(count <= 57);
        let byte = (at / 8) as usize;
        let word = match self.data.get(byte..byte + 8) {
            Some(bytes) => u64::from_le_bytes(bytes.try_into().expect("eight bytes")),
            None => {
                let mut bytes = [0u8; 8];
                let tail = self.data.get(byte..).unwrap_or(&[]);
                bytes[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(bytes)
            }
        };
        (word >> (at % 8)) & ((1u64 << count) - 1)
    }
}

/// Writes bits after each other into a byte vector.
#[derive(Default)]
pub struct BitWriter {
    pub bytes: Vec<u8>,
    /// Bits waiting for a whole byte, from bit 0.
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    pub fn with_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            pending: 0,
            pending_bits: 0,
        }
    }

    /// How many bits have been written.
    pub fn position(&self) -> u64 {
        self.bytes.len() as u64 * 8 + u64::from(self.pending_bits)
    }

    /// The low `count` bits of `value` (count <= 32). Whole bytes go out 4 at a time.
    #[inline]
    pub fn write(&mut self, value: u32, count: u32) {
        debug_assert!(count <= 32 && (count == 32 || value >> count == 0));
        self.pending |= u64::from(value) << self.pending_bits;
        self.pending_bits += count;
        if self.pending_bits >= 32 {
            self.bytes
                .extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.pending_bits -= 32;
        }
    }

    /// Moves the whole bytes of `pending` out (fewer than 8 bits stay).
    fn flush_bytes(&mut self) {
        while self.pending_bits >= 8 {
            self.bytes.push(self.pending as u8);
            self.pending >>= 8;
            self.pending_bits -= 8;
        }
    }

    /// Copies the bits [from, to) of `source`.
    pub fn copy_bits(&mut self, source: &BitReader<'_>, from: u64, to: u64) {
        let mut at = from;
        while at < to {
            let count = (to - at).min(32) as u32;
            self.write(source.peek(at, count) as u32, count);
            at += u64::from(count);
        }
    }

    /// Appends bytes that continue the stream at bit `source_bit % 8` of their first byte:
    /// the writer must stand at the same bit offset within its byte. The first byte's low bits
    /// are the writer's own; the rest are copied as they are.
    pub fn append_aligned(&mut self, source: &[u8], source_bit: u64) {
        self.flush_bytes();
        debug_assert_eq!(u64::from(self.pending_bits), source_bit % 8);
        let Some((&first, rest)) = source.split_first() else {
            return;
        };
        let low = (1u16 << self.pending_bits) - 1;
        let merged = (self.pending as u16 & low) | (u16::from(first) & !low);
        self.bytes.push(merged as u8);
        self.pending = 0;
        self.pending_bits = 0;
        self.bytes.extend_from_slice(rest);
    }

    /// Pads to a whole byte with zeros (the end of a deflate stream).
    pub fn finish(mut self) -> Vec<u8> {
        self.flush_bytes();
        if self.pending_bits > 0 {
            self.bytes.push(self.pending as u8);
        }
        self.bytes
    }
}

/// `code` with its low `length` bits in the opposite order.
pub fn reverse(code: u32, length: u32) -> u32 {
    code.reverse_bits() >> (32 - length.max(1)) & ((1u32 << length) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let mut writer = BitWriter::default();
        writer.write(0b101, 3);
        writer.write(0x1234, 16);
        writer.write(1, 1);
        let bytes = writer.finish();
        let reader = BitReader::new(&bytes);
        assert_eq!(reader.peek(0, 3), 0b101);
        assert_eq!(reader.peek(3, 16), 0x1234);
        assert_eq!(reader.peek(19, 1), 1);
    }

    #[test]
    fn copies_at_any_offset() {
        let source: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37)).collect();
        let reader = BitReader::new(&source);
        for shift in 0..8 {
            let mut writer = BitWriter::default();
            writer.write(0, shift);
            writer.copy_bits(&reader, 5, 400);
            let out = writer.finish();
            let back = BitReader::new(&out);
            for bit in 5..400u64 {
                assert_eq!(
                    back.peek(bit - 5 + u64::from(shift), 1),
                    reader.peek(bit, 1)
                );
            }
        }
    }

    #[test]
    fn reverses() {
        assert_eq!(reverse(0b0011, 4), 0b1100);
        assert_eq!(reverse(1, 1), 1);
        assert_eq!(reverse(0b10, 7), 0b0100000);
    }
}
