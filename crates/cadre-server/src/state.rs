//! What every handler can reach.

use std::sync::Arc;
use std::time::Instant;

use cadre_runtime::Supervisor;
use cadre_store::Store;
use uuid::Uuid;

/// Shared application state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    supervisor: Supervisor,
    started: Instant,
    instance_id: Uuid,
}

impl AppState {
    pub fn new(store: Store, supervisor: Supervisor, instance_id: Uuid) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                supervisor,
                started: Instant::now(),
                instance_id,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.inner.supervisor
    }

    /// Seconds since this process started serving.
    pub fn uptime_seconds(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// This process's id in the instance registry.
    pub fn instance_id(&self) -> Uuid {
        self.inner.instance_id
    }
}
