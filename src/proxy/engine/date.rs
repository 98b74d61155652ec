//! The `Date` field for responses that lack one (as hyper adds it), formatted once a second per
//! serving thread.

use std::cell::RefCell;

thread_local! {
    static CACHED: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends IMF-fixdate (RFC 9110 section 5.6.7) for now to `out` (no allocation per response).
pub fn write_now(out: &mut Vec<u8>) {
    let second = crate::clock::now_secs();
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let format = time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            );
            let formatted = time::OffsetDateTime::from_unix_timestamp(second as i64)
                .ok()
                .and_then(|at| at.format(&format).ok())
                .unwrap_or_default();
            *cached = (second, formatted.into_bytes());
        }
        out.extend_from_slice(&cached.1);
    })
}
