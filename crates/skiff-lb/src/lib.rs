//! Skiff's load balancer data plane. It owns listening sockets and forwards what arrives on them: HTTP/1.1
//! listeners behave as an Application Load Balancer's (rules, forward / fixed-response / redirect actions,
//! X-Forwarded-* and X-Amzn-Trace-Id, ALB's error pages and fail-open routing), TCP listeners as a Network
//! Load Balancer's (bytes spliced to a target). Target groups are health-checked actively and deregistered
//! targets drain. It serves a [`Config`] handed to [`LoadBalancer::apply`] and reports [`TargetHealth`].
//!
//! It must never know about the store, the ELBv2 API or any AWS wire format: the API layer translates its
//! records into a [`Config`] and reads health back. The request path never takes a lock for writing, never
//! allocates configuration and never logs.

pub mod config;
mod health;
mod http;
mod idle_timeout;
mod listener;
mod matching;
mod target_group;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ::http::HeaderValue;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub use config::*;
pub use matching::wildcard_match;
pub use target_group::{ReasonCode, TargetHealth, TargetState};

use crate::http::HttpShared;
use crate::listener::{CompiledAction, CompiledRule, FixedAction, ForwardAction, ListenerRuntime, ListenerSlot};
use crate::matching::CompiledCondition;
use crate::target_group::{lock, HealthBoard, Settings};
use crate::worker::Workers;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot bind listener {bind}: {source}")]
    Bind { bind: SocketAddr, source: std::io::Error },
    #[error("listener {bind}: {message}")]
    Listener { bind: SocketAddr, message: String },
    #[error("target group {id}: {message}")]
    TargetGroup { id: String, message: String },
}

/// What [`LoadBalancer::apply`] did: the address each listener of the config is bound to, in order (useful
/// when a listener binds port 0).
#[derive(Debug, Clone)]
pub struct Applied {
    pub listeners: Vec<SocketAddr>,
}

/// A load balancer: its listeners are served by worker threads of its own (one current-thread runtime per
/// worker, each with its own socket of every listener and its own upstream connections); health checks and
/// draining run on the first worker. Dropping it closes its listeners and connections.
pub struct LoadBalancer {
    state: Mutex<State>,
    board: Arc<HealthBoard>,
    shared: Arc<HttpShared>,
    workers: Workers,
}

#[derive(Default)]
struct State {
    listeners: HashMap<SocketAddr, RunningListener>,
    target_groups: HashMap<String, Arc<target_group::TargetGroup>>,
}

struct RunningListener {
    local: SocketAddr,
    slot: Arc<ListenerSlot>,
    /// One accept loop per worker, each on its own socket.
    accepts: Vec<AbortHandle>,
}

impl RunningListener {
    fn close(&self) {
        for a in &self.accepts {
            a.abort();
        }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _rt = self.workers.enter();
        let mut state = lock(&self.state);
        for (_, l) in state.listeners.drain() {
            l.close();
        }
        for (_, tg) in state.target_groups.drain() {
            tg.set_in_use(false);
            tg.remove_all();
        }
    }
}

impl LoadBalancer {
    /// A load balancer with one worker per available core.
    pub fn new() -> Arc<Self> {
        Self::with_workers(0)
    }

    /// A load balancer with `workers` worker threads (0: one per available core).
    pub fn with_workers(workers: usize) -> Arc<Self> {
        Arc::new(LoadBalancer {
            state: Mutex::new(State::default()),
            board: Arc::new(HealthBoard::new()),
            shared: Arc::new(HttpShared::new()),
            workers: Workers::start(workers),
        })
    }

    /// Replaces the whole configuration. New listeners are bound (all or none: a bind error changes
    /// nothing), removed ones stop accepting, and everything else is swapped in place: established
    /// connections and in-flight requests continue. Needs no runtime of the caller's (it uses the first
    /// worker's), except when no worker thread could be started.
    pub fn apply(&self, config: Config) -> Result<Applied, ApplyError> {
        let _rt = self.workers.enter();
        let mut state = lock(&self.state);
        let board = &self.board;

        // Validate and prepare target group settings first: nothing changes on error.
        let mut settings = Vec::with_capacity(config.target_groups.len());
        let mut seen = HashSet::new();
        for tg in &config.target_groups {
            if !seen.insert(tg.id.as_str()) {
                return Err(ApplyError::TargetGroup { id: tg.id.clone(), message: "duplicate id".into() });
            }
            let matcher = health::parse_matcher(&tg.health_check.matcher)
                .map_err(|message| ApplyError::TargetGroup { id: tg.id.clone(), message })?;
            settings.push(Settings {
                health_check: tg.health_check.clone(),
                matcher,
                deregistration_delay: tg.deregistration_delay,
                algorithm: tg.algorithm,
            });
        }
        let wanted: HashSet<&str> = config.target_groups.iter().map(|t| t.id.as_str()).collect();
        for l in &config.listeners {
            let actions = l.default_actions.iter().chain(l.rules.iter().flat_map(|r| r.actions.iter()));
            for a in actions {
                if let Action::Forward(f) = a {
                    if f.target_groups.is_empty() {
                        return Err(listener_err(l, "forward action without target groups".into()));
                    }
                    if let Some(tg) = f.target_groups.iter().find(|t| !wanted.contains(t.id.as_str())) {
                        return Err(listener_err(l, format!("unknown target group {}", tg.id)));
                    }
                }
            }
            if l.default_actions.is_empty() {
                return Err(listener_err(l, "no default action".into()));
            }
            if l.rules.iter().any(|r| r.actions.is_empty()) {
                return Err(listener_err(l, "rule without actions".into()));
            }
            if l.protocol == ListenerProtocol::Tcp && !matches!(l.default_actions[0], Action::Forward(_)) {
                return Err(listener_err(l, "a TCP listener only forwards".into()));
            }
        }
        // Compile conditions (may fail) before binding anything.
        let mut compiled_conditions = Vec::new();
        for l in &config.listeners {
            let mut per_rule = Vec::new();
            for r in &l.rules {
                let conds: Result<Vec<_>, _> = r.conditions.iter().map(CompiledCondition::compile).collect();
                per_rule.push(conds.map_err(|m| listener_err(l, m))?);
            }
            compiled_conditions.push(per_rule);
        }

        // Bind new listeners.
        let mut bound = HashMap::new();
        for l in &config.listeners {
            if state.listeners.contains_key(&l.bind) || bound.contains_key(&l.bind) {
                continue;
            }
            let sockets = worker::bind_listener(l.bind, self.workers.sockets_per_listener())
                .map_err(|source| ApplyError::Bind { bind: l.bind, source })?;
            bound.insert(l.bind, sockets);
        }

        // Target groups: update, create, remove.
        for (tg, s) in config.target_groups.iter().zip(settings) {
            let rt = match state.target_groups.get(&tg.id) {
                Some(rt) => {
                    rt.update_settings(s);
                    rt.clone()
                }
                None => {
                    let rt = target_group::TargetGroup::new(tg.id.clone(), s, board.clone(), self.workers.slots());
                    state.target_groups.insert(tg.id.clone(), rt.clone());
                    rt
                }
            };
            rt.sync_targets(&tg.targets);
        }
        let gone: Vec<String> =
            state.target_groups.keys().filter(|id| !wanted.contains(id.as_str())).cloned().collect();
        for id in gone {
            if let Some(tg) = state.target_groups.remove(&id) {
                tg.remove_all();
            }
        }
        let used: HashSet<&str> = config
            .listeners
            .iter()
            .flat_map(|l| l.default_actions.iter().take(1).chain(l.rules.iter().flat_map(|r| r.actions.iter().take(1))))
            .filter_map(|a| match a {
                Action::Forward(f) => Some(f.target_groups.iter().map(|t| t.id.as_str())),
                _ => None,
            })
            .flatten()
            .collect();
        for (id, tg) in &state.target_groups {
            tg.set_in_use(used.contains(id.as_str()));
        }

        // Listeners: swap snapshots, start new ones, stop removed ones.
        let mut addrs = Vec::with_capacity(config.listeners.len());
        let mut keep = HashSet::new();
        for (l, conds) in config.listeners.iter().zip(compiled_conditions) {
            keep.insert(l.bind);
            if let Some(running) = state.listeners.get(&l.bind) {
                running.slot.store(compile_listener(l, running.local.port(), conds, &state.target_groups));
                addrs.push(running.local);
                continue;
            }
            let Some(sockets) = bound.remove(&l.bind) else {
                continue;
            };
            let local = sockets.first().and_then(|s| s.local_addr().ok()).unwrap_or(l.bind);
            let slot =
                ListenerSlot::new(compile_listener(l, local.port(), conds, &state.target_groups), self.workers.slots());
            let accepts = sockets
                .into_iter()
                .enumerate()
                .map(|(i, sock)| {
                    self.workers.spawn_on(i, listener::accept_loop(sock, slot.clone(), self.shared.clone()))
                })
                .collect();
            state.listeners.insert(l.bind, RunningListener { local, slot, accepts });
            addrs.push(local);
        }
        state.listeners.retain(|bind, l| {
            let k = keep.contains(bind);
            if !k {
                l.close();
            }
            k
        });
        Ok(Applied { listeners: addrs })
    }

    /// Every registered or draining target's health, keyed by (target group id, target).
    pub fn target_health(&self) -> BTreeMap<(String, SocketAddr), TargetHealth> {
        self.board.snapshot()
    }

    /// A receiver that changes whenever any target's health does; read [`Self::target_health`] then.
    pub fn watch_health(&self) -> watch::Receiver<u64> {
        self.board.subscribe()
    }
}

fn listener_err(l: &Listener, message: String) -> ApplyError {
    ApplyError::Listener { bind: l.bind, message }
}

fn compile_listener(
    l: &Listener,
    port: u16,
    conditions: Vec<Vec<CompiledCondition>>,
    tgs: &HashMap<String, Arc<target_group::TargetGroup>>,
) -> ListenerRuntime {
    let mut rules: Vec<(u32, CompiledRule)> = l
        .rules
        .iter()
        .zip(conditions)
        .map(|(r, conditions)| (r.priority, CompiledRule { conditions, action: compile_action(&r.actions[0], tgs) }))
        .collect();
    rules.sort_by_key(|(p, _)| *p);
    ListenerRuntime {
        protocol: l.protocol,
        port,
        port_header: HeaderValue::from(port),
        idle_timeout: l.idle_timeout,
        rules: rules.into_iter().map(|(_, r)| r).collect(),
        default_action: compile_action(&l.default_actions[0], tgs),
    }
}

fn compile_action(a: &Action, tgs: &HashMap<String, Arc<target_group::TargetGroup>>) -> CompiledAction {
    match a {
        Action::Forward(f) => {
            let mut cum = 0u64;
            let mut groups = Vec::new();
            for w in &f.target_groups {
                if let Some(tg) = tgs.get(&w.id) {
                    cum += u64::from(w.weight);
                    groups.push((tg.clone(), cum));
                }
            }
            CompiledAction::Forward(ForwardAction {
                groups,
                total_weight: cum,
                counter: Arc::default(),
                stickiness: f.stickiness,
            })
        }
        Action::FixedResponse(f) => CompiledAction::Fixed(FixedAction {
            status: ::http::StatusCode::from_u16(f.status).unwrap_or(::http::StatusCode::OK),
            content_type: f.content_type.as_deref().and_then(|c| HeaderValue::try_from(c).ok()),
            body: Bytes::from(f.body.clone()),
        }),
        Action::Redirect(r) => CompiledAction::Redirect(r.clone()),
    }
}
