//! The two HTTP/1.1 engines side by side: the same client bytes and app answer to a Tether on
//! each, the same requests at the app and responses at the client (`differential.rs`).
//! Input: the first byte picks the app's answer from `REPLIES`, the rest is the client's stream.
#![no_main]
#[path = "../../properties/differential.rs"]
mod differential;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, client)) = data.split_first() else {
        return;
    };
    let (reply, close) = differential::REPLIES[usize::from(pick) % differential::REPLIES.len()];
    differential::check_engines_agree(client, reply, close);
});
