//! The HTTP/1 request follower: the first byte says how many cut points follow (one byte each),
//! the rest is the client's stream; however it is cut, the same requests are found.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (cuts, stream) = rest.split_at(count);
    let cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c)).collect();
    checks::check_framing(stream, &cuts);
});
