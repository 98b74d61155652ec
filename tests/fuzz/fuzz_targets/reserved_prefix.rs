//! The reserved-prefix classifier: no path an app could read as the prefix is forwarded.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = format!("/{}", String::from_utf8_lossy(data));
    checks::check_reserved(&path);
});
