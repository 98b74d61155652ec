//! How a call to LiveChat's accounts server failed, as the endpoints report it. Below both the
//! accounts client and the agent-token keeper, which share it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountsError {
    /// Network failure, timeout, 5xx, 429 or a temporary exception, after the retries: 503.
    Unavailable(String),
    /// A definite refusal (bad client, bad grant, missing scope): 502, no retry.
    Rejected(String),
    /// The accounts server does not know the customer Tether has on record for this user.
    UnknownCustomer(String),
}

impl std::fmt::Display for AccountsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "LiveChat accounts unavailable: {why}"),
            Self::Rejected(why) => write!(f, "LiveChat accounts refused: {why}"),
            Self::UnknownCustomer(why) => {
                write!(f, "LiveChat does not know the recorded customer: {why}")
            }
        }
    }
}
