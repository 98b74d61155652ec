//! The internals the integration tests, benchmarks and fuzz targets drive directly, below the
//! product's API (feature `testing`, which `cargo test` turns on). Nothing here is a promise to
//! embedders; it exists so a test can check one parser or one store without a whole Tether.

/// Signing keys and JOSE (key files for tests, the RS256 benchmark).
pub mod signing {
    pub use crate::signing::base64url::b64;
    pub use crate::signing::jose;
    pub use crate::signing::keys::{generate_pem, load_signing_key, SigningKey};
}

/// The stores, opened directly (moving, backups, load generators).
pub mod store {
    pub use crate::store::{CustomerRecord, FileStore, RedisStore, Row, Store, POLL_INTERVAL};
}

/// Certificate files.
pub mod tls {
    pub use crate::tls::{ensure_self_signed, load_pair};
}

/// The parsers the property tests and fuzz targets check, one entry point each.
pub mod parsers {
    pub use crate::proxy::framing::{AmbiguousRequests, Follower};
    pub use crate::proxy::headers::{strip_hop_by_hop, IdentityHeaders};
    pub use crate::proxy::reserved::{classify, Route};
    pub use crate::vendors::livechat::answers::{
        cookie_secret, is_cookie_octet, read_customer_token_answer,
    };
    pub use crate::vendors::liveperson::codes::PkceMethod;
    pub use crate::vendors::liveperson::params::{from_form, from_json};
}

/// Splicing a snippet into a gzipped page (its cost example).
pub mod splice {
    pub use crate::inject::splice::{Decision, Rewrite, Splicer};
}
