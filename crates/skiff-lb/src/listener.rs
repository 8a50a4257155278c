//! Listeners at run time: the compiled snapshot of a listener's rules and actions (swapped whole on apply),
//! the accept loop, and the TCP (NLB) splice.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::HeaderValue;

use crate::config::{self, ListenerProtocol, RedirectStatus};
use crate::http::HttpShared;
use crate::matching::CompiledCondition;
use crate::target_group::{read, TargetGroup};

/// One listener's configuration, compiled: what a request reads, once, through an `Arc`. Each worker has its
/// own copy (clones share the weighted-forward counters), so reading it touches no other core's cache line.
#[derive(Clone)]
pub(crate) struct ListenerRuntime {
    pub protocol: ListenerProtocol,
    pub port: u16,
    pub port_header: HeaderValue,
    pub idle_timeout: Duration,
    pub rules: Vec<CompiledRule>,
    pub default_action: CompiledAction,
}

#[derive(Clone)]
pub(crate) struct CompiledRule {
    pub conditions: Vec<CompiledCondition>,
    pub action: CompiledAction,
}

#[derive(Clone)]
pub(crate) enum CompiledAction {
    Forward(ForwardAction),
    Fixed(FixedAction),
    Redirect(config::Redirect),
}

#[derive(Clone)]
pub(crate) struct ForwardAction {
    /// (group, cumulative weight) with the total last; a single group skips the weighting.
    pub groups: Vec<(Arc<TargetGroup>, u64)>,
    pub total_weight: u64,
    pub counter: Arc<AtomicUsize>,
    pub stickiness: Option<Duration>,
}

impl ForwardAction {
    /// Picks a group by weight: a deterministic weighted round robin over the total weight.
    pub fn pick_group(&self) -> Option<&Arc<TargetGroup>> {
        if self.groups.len() == 1 {
            return self.groups.first().map(|(g, _)| g);
        }
        if self.total_weight == 0 {
            return None;
        }
        let n = (self.counter.fetch_add(1, Ordering::Relaxed) as u64) % self.total_weight;
        self.groups.iter().find(|(_, cum)| n < *cum).map(|(g, _)| g)
    }
}

#[derive(Clone)]
pub(crate) struct FixedAction {
    pub status: http::StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

impl RedirectStatus {
    pub fn code(self) -> http::StatusCode {
        match self {
            RedirectStatus::Http301 => http::StatusCode::MOVED_PERMANENTLY,
            RedirectStatus::Http302 => http::StatusCode::FOUND,
        }
    }
}

impl ListenerRuntime {
    pub fn route(&self, req: &Parts, peer: IpAddr) -> &CompiledAction {
        for rule in &self.rules {
            if rule.conditions.iter().all(|c| c.matches(req, peer)) {
                return &rule.action;
            }
        }
        &self.default_action
    }
}

/// The swappable snapshot of one listener: a copy per worker.
pub(crate) struct ListenerSlot {
    per_worker: Box<[RwLock<Arc<ListenerRuntime>>]>,
}

impl ListenerSlot {
    pub fn new(rt: ListenerRuntime, workers: usize) -> Arc<Self> {
        Arc::new(ListenerSlot { per_worker: (0..workers.max(1)).map(|_| RwLock::new(Arc::new(rt.clone()))).collect() })
    }

    /// The calling worker's copy.
    pub fn load(&self) -> Arc<ListenerRuntime> {
        read(&self.per_worker[crate::worker::current_index() % self.per_worker.len()])
    }

    pub fn store(&self, rt: ListenerRuntime) {
        for slot in self.per_worker.iter() {
            crate::target_group::write(slot, Arc::new(rt.clone()));
        }
    }
}

/// Accepts connections until aborted; each connection is served by the protocol of the current snapshot.
pub(crate) async fn accept_loop(listener: std::net::TcpListener, slot: Arc<ListenerSlot>, shared: Arc<HttpShared>) {
    // Registered with the reactor of the worker running this loop.
    let Ok(listener) = listener.set_nonblocking(true).and_then(|()| tokio::net::TcpListener::from_std(listener)) else {
        return;
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let rt = slot.load();
        match rt.protocol {
            ListenerProtocol::Http => {
                tokio::spawn(crate::http::serve_connection(stream, peer, slot.clone(), shared.clone()));
            }
            ListenerProtocol::Tcp => {
                tokio::spawn(splice(stream, rt));
            }
        }
    }
}

/// NLB: connects to a routable target of the default forward action and copies bytes both ways.
async fn splice(mut client: tokio::net::TcpStream, rt: Arc<ListenerRuntime>) {
    let CompiledAction::Forward(fwd) = &rt.default_action else { return };
    let Some(tg) = fwd.pick_group() else { return };
    let Some(first) = tg.pick() else { return };
    let routable = tg.routable();
    let start = routable.iter().position(|t| Arc::ptr_eq(t, &first)).unwrap_or(0);
    for i in 0..routable.len().max(1) {
        let target = if routable.is_empty() { first.clone() } else { routable[(start + i) % routable.len()].clone() };
        let connect = tokio::net::TcpStream::connect(target.addr);
        let Ok(Ok(mut upstream)) = tokio::time::timeout(Duration::from_secs(10), connect).await else {
            continue;
        };
        let _ = upstream.set_nodelay(true);
        let _inflight = target.begin();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
}
