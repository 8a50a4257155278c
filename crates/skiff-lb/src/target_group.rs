//! Target groups at run time: registered targets with their health and in-flight counts, the routable set
//! the proxy picks from, registration changes and draining.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

use crate::config::{self, Algorithm};
use crate::health;

/// A target's state as DescribeTargetHealth reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Draining => "draining",
            TargetState::Unused => "unused",
        }
    }
}

/// DescribeTargetHealth's reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    RegistrationInProgress,
    InitialHealthChecking,
    ResponseCodeMismatch,
    Timeout,
    FailedHealthChecks,
    DeregistrationInProgress,
    NotInUse,
    NotRegistered,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::RegistrationInProgress => "Elb.RegistrationInProgress",
            ReasonCode::InitialHealthChecking => "Elb.InitialHealthChecking",
            ReasonCode::ResponseCodeMismatch => "Target.ResponseCodeMismatch",
            ReasonCode::Timeout => "Target.Timeout",
            ReasonCode::FailedHealthChecks => "Target.FailedHealthChecks",
            ReasonCode::DeregistrationInProgress => "Target.DeregistrationInProgress",
            ReasonCode::NotInUse => "Target.NotInUse",
            ReasonCode::NotRegistered => "Target.NotRegistered",
        }
    }

    /// AWS's description for the code.
    pub fn description(self) -> &'static str {
        match self {
            ReasonCode::RegistrationInProgress => "Target registration is in progress",
            ReasonCode::InitialHealthChecking => "Initial health checks in progress",
            ReasonCode::ResponseCodeMismatch => "Health checks failed with these codes",
            ReasonCode::Timeout => "Request timed out",
            ReasonCode::FailedHealthChecks => "Health checks failed",
            ReasonCode::DeregistrationInProgress => "Target deregistration is in progress",
            ReasonCode::NotInUse => "Target group is not configured to receive traffic from the load balancer",
            ReasonCode::NotRegistered => "Target is not registered to the target group",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub state: TargetState,
    pub reason: Option<ReasonCode>,
    pub description: Option<String>,
}

impl TargetHealth {
    pub(crate) fn new(state: TargetState, reason: Option<ReasonCode>) -> Self {
        TargetHealth { state, reason, description: reason.map(|r| r.description().to_string()) }
    }
}

/// Every target's health, keyed by (target group id, target), with a version bumped on each change.
pub(crate) struct HealthBoard {
    map: Mutex<BTreeMap<(String, SocketAddr), TargetHealth>>,
    version: watch::Sender<u64>,
}

impl HealthBoard {
    pub fn new() -> Self {
        HealthBoard { map: Mutex::new(BTreeMap::new()), version: watch::channel(0).0 }
    }

    fn set(&self, tg: &str, addr: SocketAddr, health: TargetHealth) {
        let mut map = lock(&self.map);
        let key = (tg.to_string(), addr);
        if map.get(&key) == Some(&health) {
            return;
        }
        map.insert(key, health);
        drop(map);
        self.version.send_modify(|v| *v += 1);
    }

    fn remove(&self, tg: &str, addr: SocketAddr) {
        if lock(&self.map).remove(&(tg.to_string(), addr)).is_some() {
            self.version.send_modify(|v| *v += 1);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<(String, SocketAddr), TargetHealth> {
        lock(&self.map).clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T: Clone>(m: &RwLock<T>) -> T {
    m.read().unwrap_or_else(|e| e.into_inner()).clone()
}

pub(crate) fn write<T>(m: &RwLock<T>, value: T) {
    *m.write().unwrap_or_else(|e| e.into_inner()) = value;
}

/// Health-check bookkeeping of one target.
#[derive(Debug)]
pub(crate) struct HealthCounters {
    pub health: TargetHealth,
    pub successes: u32,
    pub failures: u32,
}

pub struct Target {
    pub addr: SocketAddr,
    outstanding: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
    pub(crate) counters: Mutex<HealthCounters>,
    tasks: Mutex<TargetTasks>,
    /// Idle keep-alive connections to this target, one pool per worker (a connection's task runs on the
    /// worker that opened it), most recently used last. Only its worker locks a pool: never contended.
    idle_conns: Box<[Mutex<Vec<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>>>]>,
}

/// At most this many idle upstream connections are kept per target.
const MAX_IDLE_CONNS: usize = 1024;

#[derive(Default)]
struct TargetTasks {
    checker: Option<AbortHandle>,
    drainer: Option<AbortHandle>,
}

impl Target {
    fn new(addr: SocketAddr, pools: usize) -> Arc<Self> {
        Arc::new(Target {
            addr,
            outstanding: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            counters: Mutex::new(HealthCounters {
                health: TargetHealth::new(TargetState::Initial, Some(ReasonCode::RegistrationInProgress)),
                successes: 0,
                failures: 0,
            }),
            tasks: Mutex::new(TargetTasks::default()),
            idle_conns: (0..pools.max(1)).map(|_| Mutex::new(Vec::new())).collect(),
        })
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Counts a request (or TCP connection) until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.clone().into_in_flight()
    }

    /// [`Self::begin`] for a reference the caller no longer needs (one reference count change less on a
    /// line every worker touches).
    pub fn into_in_flight(self: Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// An idle pooled connection ready for a request, if any.
    pub(crate) fn checkout(&self) -> Option<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>> {
        let mut idle = lock(self.pool());
        while let Some(conn) = idle.pop() {
            // Not yet ready is fine: its connection task may not have seen the last body end yet.
            if !conn.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection whose response was read to the end.
    pub(crate) fn checkin(&self, conn: hyper::client::conn::http1::SendRequest<hyper::body::Incoming>) {
        if conn.is_closed() || self.draining.load(Ordering::Relaxed) {
            return;
        }
        let mut idle = lock(self.pool());
        if idle.len() < MAX_IDLE_CONNS {
            idle.push(conn);
        }
    }

    /// The calling worker's pool.
    fn pool(&self) -> &Mutex<Vec<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>>> {
        &self.idle_conns[crate::worker::current_index() % self.idle_conns.len()]
    }

    fn abort_tasks(&self) {
        let mut tasks = lock(&self.tasks);
        if let Some(h) = tasks.checker.take() {
            h.abort();
        }
        if let Some(h) = tasks.drainer.take() {
            h.abort();
        }
    }
}

/// One in-flight request or connection on a target.
pub struct InFlight(Arc<Target>);

impl InFlight {
    pub fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 && self.0.draining.load(Ordering::Acquire) {
            self.0.idle.notify_waiters();
        }
    }
}

/// Settings of a target group the proxy and the checkers read; replaced whole on apply.
#[derive(Debug)]
pub(crate) struct Settings {
    pub health_check: config::HealthCheck,
    pub matcher: Vec<(u16, u16)>,
    pub deregistration_delay: std::time::Duration,
    pub algorithm: Algorithm,
}

/// The targets a target group routes to, in address order.
pub type RoutableSet = Arc<[Arc<Target>]>;

pub struct TargetGroup {
    pub id: String,
    pub(crate) settings: RwLock<Arc<Settings>>,
    /// What the proxy picks from: healthy targets, or every unhealthy one when none is healthy (fail open).
    /// A copy per worker, so reading it touches no other core's cache line.
    routable: Box<[RwLock<RoutableSet>]>,
    rr: AtomicUsize,
    least_outstanding: AtomicBool,
    /// Registered and draining targets.
    targets: Mutex<HashMap<SocketAddr, Arc<Target>>>,
    in_use: AtomicBool,
    board: Arc<HealthBoard>,
    /// Upstream connection pools per target: one per worker.
    pools: usize,
}

impl TargetGroup {
    pub(crate) fn new(id: String, settings: Settings, board: Arc<HealthBoard>, pools: usize) -> Arc<Self> {
        Arc::new(TargetGroup {
            least_outstanding: AtomicBool::new(settings.algorithm == Algorithm::LeastOutstandingRequests),
            id,
            settings: RwLock::new(Arc::new(settings)),
            routable: (0..pools.max(1)).map(|_| RwLock::new(Arc::from(Vec::new()))).collect(),
            rr: AtomicUsize::new(0),
            targets: Mutex::new(HashMap::new()),
            in_use: AtomicBool::new(false),
            board,
            pools,
        })
    }

    pub(crate) fn settings(&self) -> Arc<Settings> {
        read(&self.settings)
    }

    /// The calling worker's copy of the routable set.
    fn routable_here(&self) -> RoutableSet {
        read(&self.routable[crate::worker::current_index() % self.routable.len()])
    }

    /// Picks a target for a new request; `None` when nothing is routable (503).
    pub fn pick(&self) -> Option<Arc<Target>> {
        let routable = self.routable_here();
        match routable.len() {
            0 => None,
            1 => Some(routable[0].clone()),
            n => {
                let start = self.rr.fetch_add(1, Ordering::Relaxed) % n;
                if self.least_outstanding.load(Ordering::Relaxed) {
                    let mut best = &routable[start];
                    for i in 1..n {
                        let t = &routable[(start + i) % n];
                        if t.outstanding() < best.outstanding() {
                            best = t;
                        }
                    }
                    Some(best.clone())
                } else {
                    Some(routable[start].clone())
                }
            }
        }
    }

    /// The routable target at `addr`, for stickiness.
    pub fn routable_target(&self, addr: SocketAddr) -> Option<Arc<Target>> {
        self.routable_here().iter().find(|t| t.addr == addr).cloned()
    }

    /// Every routable target (the TCP proxy tries the next one when a connect fails).
    pub fn routable(&self) -> Arc<[Arc<Target>]> {
        self.routable_here()
    }

    pub(crate) fn recompute_routable(&self) {
        let targets = lock(&self.targets);
        let mut healthy = Vec::new();
        let mut unhealthy = Vec::new();
        for t in targets.values() {
            if t.draining.load(Ordering::Acquire) {
                continue;
            }
            match lock(&t.counters).health.state {
                TargetState::Healthy => healthy.push(t.clone()),
                TargetState::Unhealthy => unhealthy.push(t.clone()),
                _ => {}
            }
        }
        let mut set = if healthy.is_empty() { unhealthy } else { healthy };
        set.sort_by_key(|t| t.addr);
        // Still under the targets lock: concurrent recomputations write their copies one after the other.
        for copy in self.routable.iter() {
            write(copy, Arc::from(set.as_slice()));
        }
        drop(targets);
    }

    /// Sets a target's health, recomputes the routable set when the state changed, then publishes it (so a
    /// watcher that sees the new health also sees the traffic follow it).
    pub(crate) fn set_health(&self, target: &Target, health: TargetHealth) {
        let changed = {
            let mut c = lock(&target.counters);
            let changed = c.health.state != health.state;
            c.health = health.clone();
            changed
        };
        if changed {
            self.recompute_routable();
        }
        self.board.set(&self.id, target.addr, health);
    }

    pub(crate) fn update_settings(self: &Arc<Self>, settings: Settings) {
        let checks_changed = {
            let old = self.settings();
            old.health_check.enabled != settings.health_check.enabled
        };
        self.least_outstanding.store(settings.algorithm == Algorithm::LeastOutstandingRequests, Ordering::Relaxed);
        write(&self.settings, Arc::new(settings));
        if checks_changed && self.in_use.load(Ordering::Acquire) {
            let targets: Vec<_> = lock(&self.targets).values().cloned().collect();
            for t in targets.iter().filter(|t| !t.draining.load(Ordering::Acquire)) {
                self.start_checking(t);
            }
        }
    }

    /// Marks the group used (by some listener) or not; targets of an unused group are `unused` and unchecked.
    pub(crate) fn set_in_use(self: &Arc<Self>, in_use: bool) {
        if self.in_use.swap(in_use, Ordering::AcqRel) == in_use {
            return;
        }
        let targets: Vec<_> = lock(&self.targets).values().cloned().collect();
        for t in targets.iter().filter(|t| !t.draining.load(Ordering::Acquire)) {
            if in_use {
                self.start_checking(t);
            } else {
                if let Some(h) = lock(&t.tasks).checker.take() {
                    h.abort();
                }
                self.reset_counters(t);
                self.set_health(t, TargetHealth::new(TargetState::Unused, Some(ReasonCode::NotInUse)));
            }
        }
    }

    fn reset_counters(&self, t: &Target) {
        let mut c = lock(&t.counters);
        c.successes = 0;
        c.failures = 0;
    }

    /// (Re)starts a target's health checks from `initial`, or makes it healthy when checks are disabled.
    fn start_checking(self: &Arc<Self>, t: &Arc<Target>) {
        if let Some(h) = lock(&t.tasks).checker.take() {
            h.abort();
        }
        self.reset_counters(t);
        if !self.settings().health_check.enabled {
            self.set_health(t, TargetHealth::new(TargetState::Healthy, None));
            return;
        }
        self.set_health(t, TargetHealth::new(TargetState::Initial, Some(ReasonCode::RegistrationInProgress)));
        let handle = tokio::spawn(health::run(self.clone(), t.clone())).abort_handle();
        lock(&t.tasks).checker = Some(handle);
    }

    /// Registers the targets in `wanted`, deregisters (drains) the others.
    pub(crate) fn sync_targets(self: &Arc<Self>, wanted: &[SocketAddr]) {
        let in_use = self.in_use.load(Ordering::Acquire);
        let mut added = Vec::new();
        let mut removed = Vec::new();
        {
            let mut targets = lock(&self.targets);
            for addr in wanted {
                match targets.get(addr) {
                    Some(t) if t.draining.load(Ordering::Acquire) => {
                        // Registered again while draining: back in service after fresh checks.
                        if let Some(h) = lock(&t.tasks).drainer.take() {
                            h.abort();
                        }
                        t.draining.store(false, Ordering::Release);
                        added.push(t.clone());
                    }
                    Some(_) => {}
                    None => {
                        let t = Target::new(*addr, self.pools);
                        targets.insert(*addr, t.clone());
                        added.push(t);
                    }
                }
            }
            for (addr, t) in targets.iter() {
                if !wanted.contains(addr) && !t.draining.load(Ordering::Acquire) {
                    removed.push(t.clone());
                }
            }
        }
        for t in &added {
            if in_use {
                self.start_checking(t);
            } else {
                self.set_health(t, TargetHealth::new(TargetState::Unused, Some(ReasonCode::NotInUse)));
            }
        }
        for t in &removed {
            self.deregister(t);
        }
        if !added.is_empty() || !removed.is_empty() {
            self.recompute_routable();
        }
    }

    /// Deregisters every target (the group left the configuration).
    pub(crate) fn remove_all(self: &Arc<Self>) {
        self.sync_targets(&[]);
    }

    fn deregister(self: &Arc<Self>, t: &Arc<Target>) {
        if let Some(h) = lock(&t.tasks).checker.take() {
            h.abort();
        }
        t.draining.store(true, Ordering::Release);
        self.set_health(t, TargetHealth::new(TargetState::Draining, Some(ReasonCode::DeregistrationInProgress)));
        let delay = self.settings().deregistration_delay;
        let tg = self.clone();
        let target = t.clone();
        let handle = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + delay;
            loop {
                let idle = target.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if target.outstanding() == 0 {
                    break;
                }
                tokio::select! {
                    _ = idle => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            tg.finish_deregistration(&target);
        })
        .abort_handle();
        lock(&t.tasks).drainer = Some(handle);
    }

    fn finish_deregistration(&self, t: &Arc<Target>) {
        let mut targets = lock(&self.targets);
        let still_draining =
            targets.get(&t.addr).is_some_and(|cur| Arc::ptr_eq(cur, t) && t.draining.load(Ordering::Acquire));
        if still_draining {
            targets.remove(&t.addr);
            drop(targets);
            self.board.remove(&self.id, t.addr);
        }
    }
}

impl Drop for TargetGroup {
    fn drop(&mut self) {
        for t in lock(&self.targets).values() {
            t.abort_tasks();
        }
    }
}
