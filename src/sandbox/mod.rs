//! Stand-ins for the vendors' servers, faithful to `shared/spec` and no more, for tests and
//! `tether demo`. Nobody can reach the real vendors from a test; these imitate their contracts.

pub mod livechat;
pub mod widgets;
