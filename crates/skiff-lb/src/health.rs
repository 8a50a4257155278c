//! Active health checks: one task per registered target of a used target group, a GET of the check path
//! (matched against the group's matcher) or a TCP connect, every interval, with ALB's thresholds.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use crate::config::{HealthCheckPort, TargetProtocol};
use crate::target_group::{lock, ReasonCode, Target, TargetGroup, TargetHealth, TargetState};

/// Parses a matcher: `"200"`, `"200,302"`, `"200-299"` (ranges and lists may mix).
pub(crate) fn parse_matcher(matcher: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut ranges = Vec::new();
    for part in matcher.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("invalid health check matcher {matcher:?}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("invalid health check matcher {matcher:?}"));
        }
        ranges.push((lo, hi));
    }
    Ok(ranges)
}

/// Checks `target` until the task is aborted (deregistration, group unused or removed).
pub(crate) async fn run(tg: Arc<TargetGroup>, target: Arc<Target>) {
    loop {
        let settings = tg.settings();
        {
            let starting = lock(&target.counters).health.reason == Some(ReasonCode::RegistrationInProgress);
            if starting {
                tg.set_health(
                    &target,
                    TargetHealth::new(TargetState::Initial, Some(ReasonCode::InitialHealthChecking)),
                );
            }
        }
        let hc = &settings.health_check;
        let port = match hc.port {
            HealthCheckPort::TrafficPort => target.addr.port(),
            HealthCheckPort::Port(p) => p,
        };
        let addr = SocketAddr::new(target.addr.ip(), port);
        let result = match tokio::time::timeout(hc.timeout, check(addr, hc.protocol, &hc.path, &settings.matcher)).await
        {
            Ok(r) => r,
            Err(_) => Err(ReasonCode::Timeout),
        };
        record(&tg, &target, result, hc.healthy_threshold.max(1), hc.unhealthy_threshold.max(1));
        tokio::time::sleep(hc.interval).await;
    }
}

fn record(tg: &TargetGroup, target: &Target, result: Result<(), ReasonCode>, healthy: u32, unhealthy: u32) {
    let next = {
        let mut c = lock(&target.counters);
        match result {
            Ok(()) => {
                c.successes = c.successes.saturating_add(1);
                c.failures = 0;
                (c.health.state != TargetState::Healthy && c.successes >= healthy)
                    .then(|| TargetHealth::new(TargetState::Healthy, None))
            }
            Err(reason) => {
                c.failures = c.failures.saturating_add(1);
                c.successes = 0;
                let turn = c.failures >= unhealthy;
                match c.health.state {
                    TargetState::Unhealthy => (c.health.reason != Some(reason))
                        .then(|| TargetHealth::new(TargetState::Unhealthy, Some(reason))),
                    _ if turn => Some(TargetHealth::new(TargetState::Unhealthy, Some(reason))),
                    _ => None,
                }
            }
        }
    };
    if let Some(health) = next {
        tg.set_health(target, health);
    }
}

async fn check(
    addr: SocketAddr,
    protocol: TargetProtocol,
    path: &str,
    matcher: &[(u16, u16)],
) -> Result<(), ReasonCode> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|_| ReasonCode::FailedHealthChecks)?;
    if protocol == TargetProtocol::Tcp {
        return Ok(());
    }
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ReasonCode::FailedHealthChecks)?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| ReasonCode::FailedHealthChecks)?;
    let resp = sender.send_request(req).await;
    conn.abort();
    let status = resp.map_err(|_| ReasonCode::FailedHealthChecks)?.status().as_u16();
    if matcher.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)) {
        Ok(())
    } else {
        Err(ReasonCode::ResponseCodeMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert_eq!(parse_matcher("200").unwrap(), vec![(200, 200)]);
        assert_eq!(parse_matcher("200,302").unwrap(), vec![(200, 200), (302, 302)]);
        assert_eq!(parse_matcher("200-299").unwrap(), vec![(200, 299)]);
        assert!(parse_matcher("abc").is_err());
        assert!(parse_matcher("299-200").is_err());
    }
}
