//! base64url without padding (RFC 7515 section 2), as every JOSE field is written. Below the
//! key handling and the JOSE code, which both need it.

use base64::Engine;

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
