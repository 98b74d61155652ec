//! How a call to LiveChat's accounts server failed, as the endpoints report it. Below both the
//! accounts client and the agent-token keeper, which share it.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    /// Network failure, timeout, 5xx, 429 or a temporary exception, after the retries: 503.
    #[error("LiveChat accounts unavailable: {0}")]
    Unavailable(String),
    /// A definite refusal (bad client, bad grant, missing scope): 502, no retry.
    #[error("LiveChat accounts refused: {0}")]
    Rejected(String),
    /// No agent refresh token: none configured, none kept in the store by `tether livechat
    /// authorize`. 503 like an outage (proxying goes on); /readyz and `tether doctor` say why.
    #[error("LiveChat is not connected: no agent refresh token in livechat.refresh_token or the store; run `tether livechat authorize --config PATH`")]
    NotAuthorized,
    /// The accounts server does not know the customer Tether has on record for this user.
    #[error("LiveChat does not know the recorded customer: {0}")]
    UnknownCustomer(String),
}
