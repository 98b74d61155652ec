//! Stand-ins for the chat vendors, faithful to the contracts Tether implements (`docs/vendors/`)
//! and no more: nobody can reach the real vendors from a test, so these imitate what the real
//! servers and page scripts do, including what makes an integration fail.
//!
//! - `livechat`: LiveChat's accounts server (customer tokens, the agent's OAuth token, the
//!   authorization-code grant) and Chat API `update_customer`, with fault injection.
//! - `widgets`: the vendors' page scripts (LiveChat's widget, LivePerson's tag), served by the
//!   sandbox at `/sandbox/widget/...`.

pub mod livechat;
pub mod widgets;

/// Random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}
