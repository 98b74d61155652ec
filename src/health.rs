//! What `/readyz` asks of every part that can be unready: the app, the store, each vendor's
//! credentials. Below the vendors, which provide checks, and the admin listener, which runs them.

use crate::io::BoxFuture;

/// One condition /readyz checks.
pub trait ReadinessCheck: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Ok, or a short reason (never a secret).
    fn check(&self) -> BoxFuture<Result<(), String>>;
    /// An advisory check reports under `warnings` and never fails readiness.
    fn advisory(&self) -> bool {
        false
    }
}
