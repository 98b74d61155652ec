//! The reserved-prefix classifier: no path an app could read as the prefix is forwarded.
//! Input format and property: `run_target` in tests/properties/checks.rs.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run_target("reserved_prefix", data));
