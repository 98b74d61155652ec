//! Leases in the store let replicas take turns without a coordinator: one refreshes the agent
//! token while the others wait for its result, one creates a new user's LiveChat customer while
//! the others wait for the mapping. A lease expires on its own, so a replica that dies holding
//! one delays the others by its time-to-live at most.

use super::{Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first and the longest pause between looks while another replica holds the lease.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// A lease this replica holds. Release it when done; dropping it releases it in the background.
pub struct Lease {
    store: Arc<dyn Store>,
    name: String,
    holder: String,
    held: bool,
}

/// Whose turn it is.
pub enum Turn<T> {
    /// This replica holds the lease and does the work.
    Mine(Lease),
    /// Another replica did the work meanwhile: its result.
    Done(T),
}

impl Lease {
    /// Takes the lease if nobody holds it.
    pub async fn try_take(
        store: &Arc<dyn Store>,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let holder = format!("{:032x}", u128::from_be_bytes(crate::random::bytes()));
        if !store.try_lease(name, &holder, ttl).await? {
            return Ok(None);
        }
        Ok(Some(Lease {
            store: store.clone(),
            name: name.to_string(),
            holder,
            held: true,
        }))
    }

    /// Waits for this replica's turn at `name`, or for `finished` to report that the holder did
    /// the work (then its result). `finished` is also asked right after the lease is taken: the
    /// previous holder may have finished just before releasing. Gives up after `wait`.
    pub async fn turn<T, F, Fut>(
        store: &Arc<dyn Store>,
        name: &str,
        ttl: Duration,
        wait: Duration,
        mut finished: F,
    ) -> Result<Turn<T>, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        let deadline = Instant::now() + wait;
        let mut pause = FIRST_PAUSE;
        loop {
            if let Some(lease) = Self::try_take(store, name, ttl).await? {
                return match finished().await? {
                    Some(result) => {
                        lease.release().await;
                        Ok(Turn::Done(result))
                    }
                    None => Ok(Turn::Mine(lease)),
                };
            }
            if Instant::now() + pause > deadline {
                return Err(StoreError::other(format!(
                    "waited {wait:?} for another replica holding {name}"
                )));
            }
            tokio::time::sleep(pause).await;
            if let Some(result) = finished().await? {
                return Ok(Turn::Done(result));
            }
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }

    /// Gives the lease up. A failure is only logged: the lease expires anyway.
    pub async fn release(mut self) {
        self.held = false;
        if let Err(err) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = %self.name, error = %err, "could not release a lease; it will expire");
        }
    }
}

impl Drop for Lease {
    /// A request cancelled while holding a lease (its client went away) still gives it up.
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let (store, name, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.release_lease(&name, &holder).await;
            });
        }
    }
}
