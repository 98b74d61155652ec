//! The configuration loader with ${VAR} substitution: errors located inside the text.
//! Input format and property: `run_target` in tests/properties/checks.rs.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run_target("config_load", data));
