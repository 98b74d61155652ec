//! LiveChat accounts answers: two bytes of status, then the body; the body's lines are also read
//! as `Set-Cookie` fields for the cookie grant's secret.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    checks::check_accounts_answer(status, body);
    let fields: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    checks::check_cookie_secret(&fields);
});
