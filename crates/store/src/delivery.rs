//! Group commit for deliveries: concurrent SMTP transactions hand their deliveries to one
//! task, which stores everything that is waiting in a single database transaction, so
//! many messages share one commit (one fsync) instead of paying one each.
//!
//! Each caller gets its own result. If a combined commit fails, the requests are retried
//! one by one, so one bad request cannot fail the others.

use tokio::sync::{mpsc, oneshot};

use crate::messages::{Delivery, Placed};
use crate::{Store, StoreError};

/// Most deliveries in one transaction.
const MAX_BATCH: usize = 256;

struct Request {
    deliveries: Vec<Delivery>,
    reply: oneshot::Sender<Result<Vec<Placed>, StoreError>>,
}

/// Hands deliveries to the committing task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeliveryBatcher {
    requests: mpsc::Sender<Request>,
    store: Store,
}

impl DeliveryBatcher {
    /// Starts the committing task; it ends when the last batcher clone is dropped.
    pub fn start(store: Store) -> Self {
        let (requests, rx) = mpsc::channel(4096);
        tokio::spawn(commit_loop(store.clone(), rx));
        Self { requests, store }
    }

    /// The store it commits to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores the deliveries durably; returns where each landed, in order.
    pub async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<Vec<Placed>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { deliveries, reply })
            .await
            .map_err(|_| StoreError::Conflict("the delivery service is shutting down".into()))?;
        answer.await.map_err(|_| StoreError::Conflict("the delivery service stopped".into()))?
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("deliveries", &self.deliveries.len()).finish()
    }
}

async fn commit_loop(store: Store, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut count = batch[0].deliveries.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    count += more.deliveries.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        if batch.len() == 1 {
            let request = batch.remove(0);
            let result = store.deliver(&request.deliveries).await;
            let _ = request.reply.send(result);
            continue;
        }
        let all: Vec<Delivery> = batch.iter().flat_map(|r| r.deliveries.iter().cloned()).collect();
        match store.deliver(&all).await {
            Ok(placed) => {
                let mut placed = placed.into_iter();
                for request in batch {
                    let mine = placed.by_ref().take(request.deliveries.len()).collect();
                    let _ = request.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, requests = batch.len(), "combined delivery commit failed; retrying one by one");
                for request in batch {
                    let result = store.deliver(&request.deliveries).await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}
