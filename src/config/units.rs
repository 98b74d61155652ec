//! Human units used by the configuration: durations ("250ms", "30s", "5m", "8h", "1h30m") and
//! byte sizes ("64KiB", "10MiB", "0"). Parsing happens during deserialisation so that a bad value
//! is reported at its own line and column.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses "250ms", "30s", "5m", "8h", "2d" or a sum such as "1h30m".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = || {
        format!("expected a duration such as \"250ms\", \"30s\", \"5m\" or \"8h\", found {text:?}")
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(expected());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            return Err(expected());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| expected())?;
        let part = match &rest[digits..digits + unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86400)),
            _ => return Err(expected()),
        };
        total = total.saturating_add(part);
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// Parses "64KiB", "10MiB", "1GiB", "512B", "100KB" (decimal) or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let expected =
        || format!("expected a size such as \"64KiB\", \"10MiB\" or \"0\", found {text:?}");
    let trimmed = text.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(expected());
    }
    let number: u64 = trimmed[..digits].parse().map_err(|_| expected())?;
    let multiplier: u64 = match trimmed[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(expected()),
    };
    number.checked_mul(multiplier).ok_or_else(expected)
}

/// A size written either as a string with a unit or as a bare integer.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Text(String),
    Number(u64),
}

pub fn de_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub fn de_size<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    match SizeRepr::deserialize(de) {
        Ok(SizeRepr::Number(n)) => Ok(n),
        Ok(SizeRepr::Text(text)) => parse_size(&text).map_err(serde::de::Error::custom),
        Err(_) => Err(serde::de::Error::custom(
            "expected a size such as \"64KiB\", \"10MiB\" or \"0\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("65m"), Ok(Duration::from_secs(3900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "30", "s", "3 s", "3x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("100KB"), Ok(100_000));
        for bad in ["", "KiB", "10 XB", "99999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
