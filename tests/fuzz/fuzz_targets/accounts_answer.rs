//! LiveChat accounts answers and Set-Cookie secrets: read safely, no token in an error.
//! Input format and property: `run_target` in tests/properties/checks.rs.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run_target("accounts_answer", data));
