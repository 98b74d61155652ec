//! LiveChat Custom Identity Provider: everything LiveChat-specific lives here.
//! - `accounts`: the accounts server client (customer tokens, the agent OAuth token).

pub mod accounts;
pub mod endpoints;
pub mod profile;
pub mod tokens;
