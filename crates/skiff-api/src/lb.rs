//! The load balancer controller: serves the ELBv2 records with the data plane (`skiff_lb`).
//!
//! Each pass reads every load balancer, listener, rule, target group and target record, translates them
//! into one `skiff_lb::Config` (a listener binds on its load balancer's own address, `127.200.x.y:PORT`)
//! and applies it when it changed. The data plane keeps connections across applies, health-checks the
//! targets and drains deregistered ones; DescribeTargetHealth reads its health back. Passes run when an
//! ELBv2 handler or the service controller wakes the controller, and every few seconds.

use crate::context::AppState;
use crate::records::load_all;
use skiff_lb as data;
use skiff_model::elbv2::{
    keys, Action, Condition, ListenerRecord, LoadBalancerRecord, RuleRecord, TargetGroupRecord, TargetRecord,
};
use skiff_proto::ApiError;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How often the records are read again without being woken.
const RESYNC: Duration = Duration::from_secs(2);
/// An NLB's TCP idle timeout (AWS: 350 s).
const NLB_IDLE_TIMEOUT: Duration = Duration::from_secs(350);

/// Everything the ELBv2 records say, as read in one pass.
#[derive(Debug, Default)]
pub struct Records {
    pub load_balancers: Vec<LoadBalancerRecord>,
    pub listeners: Vec<ListenerRecord>,
    pub rules: Vec<RuleRecord>,
    pub target_groups: Vec<TargetGroupRecord>,
    pub targets: Vec<TargetRecord>,
}

impl Records {
    pub async fn load(state: &AppState) -> Result<Records, ApiError> {
        async fn all<T: serde::de::DeserializeOwned>(state: &AppState, prefix: &str) -> Result<Vec<T>, ApiError> {
            Ok(load_all::<T>(state.store.as_ref(), prefix).await?.into_iter().map(|(_, r)| r).collect())
        }
        Ok(Records {
            load_balancers: all(state, keys::LOAD_BALANCERS).await?,
            listeners: all(state, keys::LISTENERS).await?,
            rules: all(state, keys::RULES).await?,
            target_groups: all(state, keys::TARGET_GROUPS).await?,
            targets: all(state, keys::TARGETS).await?,
        })
    }
}

fn seconds(attrs: &BTreeMap<String, String>, key: &str, default: u64) -> Duration {
    Duration::from_secs(attrs.get(key).and_then(|v| v.parse().ok()).unwrap_or(default))
}

fn target_protocol(protocol: &str) -> Option<data::TargetProtocol> {
    match protocol {
        "HTTP" => Some(data::TargetProtocol::Http),
        "TCP" => Some(data::TargetProtocol::Tcp),
        _ => None,
    }
}

fn target_group(tg: &TargetGroupRecord, targets: &[TargetRecord]) -> Option<data::TargetGroup> {
    let protocol = target_protocol(&tg.protocol)?;
    let hc = &tg.health_check;
    let health_check = data::HealthCheck {
        enabled: hc.enabled,
        protocol: target_protocol(&hc.protocol).unwrap_or(protocol),
        path: hc.path.clone().unwrap_or_else(|| "/".into()),
        port: match hc.port.parse() {
            Ok(p) => data::HealthCheckPort::Port(p),
            Err(_) => data::HealthCheckPort::TrafficPort,
        },
        interval: Duration::from_secs(hc.interval_seconds.max(1) as u64),
        timeout: Duration::from_secs(hc.timeout_seconds.max(1) as u64),
        healthy_threshold: hc.healthy_threshold_count.max(1) as u32,
        unhealthy_threshold: hc.unhealthy_threshold_count.max(1) as u32,
        matcher: hc.matcher.as_ref().and_then(|m| m.http_code.clone()).unwrap_or_else(|| "200".into()),
    };
    let algorithm = match tg.attributes.get("load_balancing.algorithm.type").map(String::as_str) {
        Some("least_outstanding_requests") => data::Algorithm::LeastOutstandingRequests,
        _ => data::Algorithm::RoundRobin,
    };
    Some(data::TargetGroup {
        id: tg.id.clone(),
        protocol,
        targets: targets
            .iter()
            .filter(|t| t.target_group_arn == tg.target_group_arn)
            .filter_map(|t| Some(SocketAddr::new(t.id.parse::<IpAddr>().ok()?, t.port)))
            .collect(),
        health_check,
        deregistration_delay: seconds(&tg.attributes, "deregistration_delay.timeout_seconds", 300),
        algorithm,
    })
}

/// The target group stickiness of a forward to a single group: its `stickiness.*` attributes (lb_cookie).
fn group_stickiness(tg: &TargetGroupRecord) -> Option<Duration> {
    let on = tg.attributes.get("stickiness.enabled").map(String::as_str) == Some("true");
    let lb_cookie = tg.attributes.get("stickiness.type").is_none_or(|t| t == "lb_cookie");
    (on && lb_cookie).then(|| seconds(&tg.attributes, "stickiness.lb_cookie.duration_seconds", 86_400))
}

fn action(a: &Action, groups: &HashMap<&str, &TargetGroupRecord>) -> Option<data::Action> {
    Some(match a {
        Action::Forward { config, .. } => {
            let target_groups: Vec<data::WeightedTargetGroup> = config
                .target_groups
                .iter()
                .filter_map(|t| {
                    let tg = groups.get(t.target_group_arn.as_str())?;
                    Some(data::WeightedTargetGroup { id: tg.id.clone(), weight: t.weight.max(0) as u32 })
                })
                .collect();
            let stickiness = if config.stickiness_enabled {
                Some(Duration::from_secs(config.stickiness_duration_seconds.unwrap_or(3600).max(1) as u64))
            } else if let [only] = config.target_groups.as_slice() {
                groups.get(only.target_group_arn.as_str()).and_then(|tg| group_stickiness(tg))
            } else {
                None
            };
            data::Action::Forward(data::Forward { target_groups, stickiness })
        }
        Action::FixedResponse { config, .. } => data::Action::FixedResponse(data::FixedResponse {
            status: config.status_code.parse().ok()?,
            content_type: config.content_type.clone(),
            body: config.message_body.clone().unwrap_or_default(),
        }),
        Action::Redirect { config, .. } => data::Action::Redirect(data::Redirect {
            protocol: config.protocol.clone(),
            host: config.host.clone(),
            port: config.port.clone(),
            path: config.path.clone(),
            query: config.query.clone(),
            status: if config.status_code == "HTTP_301" {
                data::RedirectStatus::Http301
            } else {
                data::RedirectStatus::Http302
            },
        }),
    })
}

fn actions(list: &[Action], groups: &HashMap<&str, &TargetGroupRecord>) -> Vec<data::Action> {
    let mut sorted: Vec<&Action> = list.iter().collect();
    sorted.sort_by_key(|a| a.order());
    sorted.into_iter().filter_map(|a| action(a, groups)).collect()
}

fn condition(c: &Condition) -> Option<data::Condition> {
    Some(match c.field.as_str() {
        "path-pattern" => data::Condition::PathPattern(c.values.clone()),
        "host-header" => data::Condition::HostHeader(c.values.clone()),
        "http-header" => data::Condition::HttpHeader { name: c.header_name.clone()?, values: c.values.clone() },
        "http-request-method" => data::Condition::HttpRequestMethod(c.values.clone()),
        "query-string" => data::Condition::QueryString(
            c.query_pairs.iter().map(|(k, v)| data::QueryPair { key: k.clone(), value: v.clone() }).collect(),
        ),
        "source-ip" => data::Condition::SourceIp(c.values.iter().filter_map(|v| v.parse().ok()).collect()),
        _ => return None,
    })
}

/// The data plane's configuration for all of the records.
pub fn config(r: &Records) -> data::Config {
    let groups: HashMap<&str, &TargetGroupRecord> =
        r.target_groups.iter().map(|tg| (tg.target_group_arn.as_str(), tg)).collect();
    let mut listeners = Vec::new();
    for l in &r.listeners {
        let Some(lb) = r.load_balancers.iter().find(|lb| lb.load_balancer_arn == l.load_balancer_arn) else {
            continue;
        };
        let Ok(ip) = lb.address.parse::<IpAddr>() else { continue };
        let (protocol, idle_timeout) = match l.protocol.as_str() {
            "HTTP" => (data::ListenerProtocol::Http, seconds(&lb.attributes, "idle_timeout.timeout_seconds", 60)),
            "TCP" => (data::ListenerProtocol::Tcp, NLB_IDLE_TIMEOUT),
            _ => continue,
        };
        let mut rules: Vec<data::Rule> = r
            .rules
            .iter()
            .filter(|rule| rule.listener_arn == l.listener_arn)
            .map(|rule| data::Rule {
                priority: rule.priority.max(0) as u32,
                conditions: rule.conditions.iter().filter_map(condition).collect(),
                actions: actions(&rule.actions, &groups),
            })
            .collect();
        rules.sort_by_key(|rule| rule.priority);
        listeners.push(data::Listener {
            bind: SocketAddr::new(ip, l.port),
            protocol,
            idle_timeout,
            default_actions: actions(&l.default_actions, &groups),
            rules,
        });
    }
    let target_groups = r.target_groups.iter().filter_map(|tg| target_group(tg, &r.targets)).collect();
    data::Config { listeners, target_groups }
}

/// Runs the passes for ever.
pub struct LbController {
    state: Arc<AppState>,
}

impl LbController {
    pub fn new(state: Arc<AppState>) -> LbController {
        LbController { state }
    }

    pub async fn run(self) {
        let mut applied = String::new();
        loop {
            match Records::load(&self.state).await {
                Ok(records) => {
                    let config = config(&records);
                    let text = format!("{config:?}");
                    // Applied again at the next pass when a listener could not listen.
                    if text != applied && self.apply(config) {
                        applied = text;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "load balancer records unreadable"),
            }
            tokio::select! {
                () = self.state.lb_wake.notified() => {}
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    }
}

impl LbController {
    /// Applies `config`; a listener whose address cannot be bound (another process holds it) is left out,
    /// so that it does not hold up every other load balancer. Says whether all of `config` is served.
    fn apply(&self, mut config: data::Config) -> bool {
        let mut complete = true;
        loop {
            match self.state.lb.apply(config.clone()) {
                Ok(_) => return complete,
                Err(data::ApplyError::Bind { bind, source }) => {
                    tracing::warn!(listener = %bind, error = %source, "a load balancer listener cannot listen; the others are served");
                    config.listeners.retain(|l| l.bind != bind);
                    complete = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "load balancer configuration not applied");
                    return false;
                }
            }
        }
    }
}

/// The health of the targets of target group `tg` as the data plane sees them (targets it drains
/// included), by address.
pub fn health_of(state: &AppState, tg: &TargetGroupRecord) -> BTreeMap<SocketAddr, data::TargetHealth> {
    state.lb.target_health().into_iter().filter(|((id, _), _)| *id == tg.id).map(|((_, t), h)| (t, h)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_model::elbv2::{FixedResponseConfig, ForwardConfig, TargetGroupTuple};

    fn tg(name: &str, id: &str) -> TargetGroupRecord {
        TargetGroupRecord {
            target_group_arn: format!("arn:tg/{name}"),
            target_group_name: name.into(),
            id: id.into(),
            protocol: "HTTP".into(),
            port: 8080,
            health_check: skiff_model::elbv2::new_health_check("HTTP", None, &Default::default()).unwrap(),
            attributes: skiff_model::elbv2::target_group_attribute_defaults("HTTP"),
            ..Default::default()
        }
    }

    #[test]
    fn records_become_a_data_plane_config() {
        let lb = LoadBalancerRecord {
            load_balancer_arn: "arn:lb".into(),
            address: "127.200.0.3".into(),
            attributes: skiff_model::elbv2::load_balancer_attribute_defaults("application"),
            ..Default::default()
        };
        let forward = |arn: &str| Action::Forward {
            order: 1,
            config: ForwardConfig {
                target_groups: vec![TargetGroupTuple { target_group_arn: arn.into(), weight: 1 }],
                ..Default::default()
            },
        };
        let listener = ListenerRecord {
            listener_arn: "arn:l".into(),
            load_balancer_arn: "arn:lb".into(),
            port: 80,
            protocol: "HTTP".into(),
            default_actions: vec![forward("arn:tg/web")],
            ..Default::default()
        };
        let rule = RuleRecord {
            listener_arn: "arn:l".into(),
            priority: 10,
            conditions: vec![Condition {
                field: "path-pattern".into(),
                values: vec!["/api/*".into()],
                header_name: None,
                query_pairs: vec![],
                legacy_values: false,
            }],
            actions: vec![Action::FixedResponse {
                order: 1,
                config: FixedResponseConfig { status_code: "418".into(), content_type: None, message_body: None },
            }],
            ..Default::default()
        };
        let target = TargetRecord {
            target_group_arn: "arn:tg/web".into(),
            id: "10.0.0.5".into(),
            port: 8080,
            availability_zone: None,
            registered_by: None,
        };
        let records = Records {
            load_balancers: vec![lb],
            listeners: vec![listener],
            rules: vec![rule],
            target_groups: vec![tg("web", "abc")],
            targets: vec![target],
        };
        let c = config(&records);
        assert_eq!(c.listeners.len(), 1);
        let l = &c.listeners[0];
        assert_eq!(l.bind, "127.200.0.3:80".parse().unwrap());
        assert_eq!(l.idle_timeout, Duration::from_secs(60));
        assert!(matches!(&l.default_actions[0], data::Action::Forward(f) if f.target_groups[0].id == "abc"));
        assert_eq!(l.rules[0].priority, 10);
        assert!(matches!(&l.rules[0].conditions[0], data::Condition::PathPattern(p) if p == &["/api/*"]));
        assert_eq!(c.target_groups[0].targets, ["10.0.0.5:8080".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.target_groups[0].deregistration_delay, Duration::from_secs(300));
    }
}
