//! The configuration loader with `${VAR}` substitution: TOML text, then a NUL byte, then the
//! environment as `NAME=value` lines.
#![no_main]
#[path = "../../properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (toml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    checks::check_config(toml, &env);
    if let Some((_, value)) = env.first() {
        checks::check_substitution(value);
    }
});
