//! The HTTP/1 request follower: however the stream is cut into reads, the same requests.
//! Input format and property: `run_target` in tests/properties/checks.rs.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run_target("request_framing", data));
