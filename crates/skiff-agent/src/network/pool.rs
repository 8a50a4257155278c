//! A pool of ready network namespaces (loopback up, a netlink connection open inside), so an attach only
//! creates a veth pair and sets an address and a route. Taking one starts a background refill up to the
//! target set by [`NamespacePool::warm`]. Pooled namespaces are held by fds only: they vanish with the
//! agent and leave nothing on the host to clean up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::Result;
use super::netns::{self, Namespace};

#[derive(Default)]
pub struct NamespacePool {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    ready: Mutex<Vec<Namespace>>,
    target: AtomicUsize,
    refilling: AtomicBool,
}

impl Inner {
    fn ready(&self) -> MutexGuard<'_, Vec<Namespace>> {
        self.ready.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates namespaces until the target is met; returns how many are ready.
    async fn fill(&self) -> Result<usize> {
        loop {
            let target = self.target.load(Ordering::Acquire);
            if self.ready().len() >= target {
                let mut ready = self.ready();
                ready.truncate(target);
                return Ok(ready.len());
            }
            let namespace = netns::create().await?;
            let mut ready = self.ready();
            if ready.len() < self.target.load(Ordering::Acquire) {
                ready.push(namespace);
            }
        }
    }
}

impl NamespacePool {
    /// Sets how many namespaces to keep ready and creates (or drops) namespaces until that many are.
    pub async fn warm(&self, target: usize) -> Result<usize> {
        self.inner.target.store(target, Ordering::Release);
        self.inner.fill().await
    }

    /// How many namespaces are ready now.
    pub fn ready(&self) -> usize {
        self.inner.ready().len()
    }

    /// A ready namespace, if any; starts refilling in the background.
    pub fn take(&self) -> Option<Namespace> {
        let taken = self.inner.ready().pop();
        if self.inner.target.load(Ordering::Acquire) > 0 && !self.inner.refilling.swap(true, Ordering::AcqRel) {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                if let Err(e) = inner.fill().await {
                    tracing::warn!(error = %e, "refilling the namespace pool failed");
                }
                inner.refilling.store(false, Ordering::Release);
            });
        }
        taken
    }
}
