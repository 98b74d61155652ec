//! The token and code endpoints' parameters, as a form and as JSON.
//! Input format and property: `run_target` in tests/properties/checks.rs.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run_target("oauth_params", data));
