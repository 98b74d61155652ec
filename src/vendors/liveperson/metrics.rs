//! LivePerson's families (`tether_liveperson_...`).

use crate::metrics::{counter, Counter, Registry};

pub struct Counters {
    pub tokens_signed: Counter,
    pub tokens_cached: Counter,
    pub codes_issued: Counter,
    pub codes_redeemed: Counter,
    pub code_replays: Counter,
    pub exchanges_refused: Counter,
    pub client_auth_failures: Counter,
    pub client_auth_throttled: Counter,
}

impl Counters {
    pub fn register(registry: &mut Registry) -> Self {
        let mut counter = |name, help| counter(registry, name, help);
        Self {
            tokens_signed: counter("tokens_signed", "id_tokens signed."),
            tokens_cached: counter("tokens_cached", "JWT requests answered from the cache."),
            codes_issued: counter("codes_issued", "Code Flow codes issued."),
            codes_redeemed: counter("codes_redeemed", "Codes exchanged for an id_token."),
            code_replays: counter("code_replays", "Exchanges of a code already used."),
            exchanges_refused: counter(
                "exchanges_refused",
                "Code exchanges refused (invalid_grant).",
            ),
            client_auth_failures: counter(
                "client_auth_failures",
                "Token endpoint calls with bad client credentials.",
            ),
            client_auth_throttled: counter(
                "client_auth_throttled",
                "Token endpoint calls refused with 429 after too many failed authentications.",
            ),
        }
    }
}
