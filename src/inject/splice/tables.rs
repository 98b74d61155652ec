//! Deflate's fixed tables (RFC 1951 3.2.5 and 3.2.7).

/// Length codes 257..285: the smallest length of each, and how many extra bits follow.
pub const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
pub const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// Distance codes 0..29: the smallest distance of each, and how many extra bits follow.
pub const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
pub const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The order in which a dynamic block gives the code-length code's lengths.
pub const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The length code (0-based, add 257) for a match length of 3..=258.
#[inline]
pub fn length_code(len: u16) -> usize {
    usize::from(LENGTH_CODES[usize::from(len - 3)])
}

/// The distance code for a distance of 1..=32768 (zlib's split table: distances up to 256
/// directly, longer ones by their value over 128).
#[inline]
pub fn distance_code(dist: u16) -> usize {
    let d = usize::from(dist - 1);
    usize::from(if d < 256 {
        DISTANCE_CODES[d]
    } else {
        DISTANCE_CODES[256 + (d >> 7)]
    })
}

const LENGTH_CODES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut len = 3;
    while len <= 258 {
        let mut code = 0;
        while code + 1 < LEN_BASE.len() && LEN_BASE[code + 1] as usize <= len {
            code += 1;
        }
        table[len - 3] = code as u8;
        len += 1;
    }
    table
};

const fn distance_code_of(dist: usize) -> u8 {
    let mut code = 0;
    while code + 1 < DIST_BASE.len() && DIST_BASE[code + 1] as usize <= dist {
        code += 1;
    }
    code as u8
}

const DISTANCE_CODES: [u8; 512] = {
    let mut table = [0u8; 512];
    let mut d = 0;
    while d < 256 {
        table[d] = distance_code_of(d + 1);
        table[256 + d] = distance_code_of((d << 7) + 1);
        d += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_cover_their_ranges() {
        assert_eq!(length_code(3), 0);
        assert_eq!(length_code(10), 7);
        assert_eq!(length_code(11), 8);
        assert_eq!(length_code(257), 27);
        assert_eq!(length_code(258), 28);
        assert_eq!(distance_code(1), 0);
        assert_eq!(distance_code(5), 4);
        assert_eq!(distance_code(32768), 29);
        for len in 3..=258u16 {
            let code = length_code(len);
            let next = LEN_BASE.get(code + 1).map_or(259, |&b| b);
            assert!(len >= LEN_BASE[code] && len < next, "{len}");
            assert!(len - LEN_BASE[code] < 1 << LEN_EXTRA[code].max(1), "{len}");
        }
        for dist in 1..=32768u16 {
            let code = distance_code(dist);
            let next = DIST_BASE.get(code + 1).map_or(32769, |&b| u32::from(b));
            assert!(dist >= DIST_BASE[code] && u32::from(dist) < next, "{dist}");
        }
    }
}
