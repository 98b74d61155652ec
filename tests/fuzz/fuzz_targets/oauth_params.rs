//! The token and code endpoints' parameters, as a form and as JSON.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_params(data);
});
