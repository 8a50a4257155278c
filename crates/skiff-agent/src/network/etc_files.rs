//! The task's /etc/hosts and /etc/resolv.conf, rendered from the task's address and the host's resolver
//! configuration (loopback nameservers such as a local stub resolver are unreachable from the task).

use std::net::{IpAddr, Ipv4Addr};

/// `/etc/hosts`: localhost for IPv4 and IPv6, and the task's hostname on its own address.
pub fn render_hosts(hostname: &str, ip: Ipv4Addr) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !hostname.is_empty() {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// `/etc/resolv.conf` from the host's: its nameservers except loopback ones, plus its `search` and
/// `options` lines. With no usable nameserver the file has none (the resolver then fails fast).
pub fn render_resolv_conf(host: &str) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let Some(addr) = words.next() else { continue };
                // Zone-scoped IPv6 (fe80::1%eth0) does not parse and is not reachable from the task either.
                match addr.parse::<IpAddr>() {
                    Ok(ip) if !ip.is_loopback() => out.push_str(&format!("nameserver {ip}\n")),
                    _ => {}
                }
            }
            Some("search") | Some("options") | Some("domain") => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_task() {
        assert_eq!(
            render_hosts("ip-10-0-0-5", Ipv4Addr::new(10, 0, 0, 5)),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tip-10-0-0-5\n"
        );
        assert!(!render_hosts("", Ipv4Addr::new(10, 0, 0, 5)).contains("10.0.0.5"));
    }

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\n\
                    nameserver 2001:db8::53\nsearch example.internal\noptions edns0 trust-ad\nnameserver\n";
        assert_eq!(
            render_resolv_conf(host),
            "nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.internal\noptions edns0 trust-ad\n"
        );
        assert_eq!(render_resolv_conf("nameserver 127.0.0.1\n"), "");
        assert_eq!(render_resolv_conf(""), "");
    }
}
