//! LiveChat Custom Identity Provider: everything LiveChat-specific lives here.
//! - `accounts`: the accounts server client (customer tokens, the agent OAuth token).
//! - `answers`: reading the accounts server's answers (error bodies, token bodies, retries).
//! - `accounts_error`: how an accounts call failed (shared by `accounts` and `agent`).
//! - `agent`: the agent OAuth token, refreshed by one replica at a time and shared.
//! - `tokens`: the user -> customer mapping and the customer token cache.
//! - `endpoints`: the widget's token endpoints and `identity-provider.js`.
//! - `profile`: the customer's name and email kept in step with the app.

pub mod accounts;
mod accounts_error;
mod agent;
pub mod answers;
pub mod endpoints;
pub mod profile;
pub mod tokens;
