//! Outbound NAT and forwarding for the prepared subnets: one nftables table owned by the agent, rewritten
//! whole in a single atomic `nft -f -` transaction each time a subnet is prepared or torn down (never per task).

use std::io::Write;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use super::error::{NetworkError, Result};

/// A prepared subnet as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSubnet {
    pub bridge: String,
    pub cidr: Ipv4Net,
}

/// The whole table: traffic from a subnet leaving through any interface but its bridge is masqueraded;
/// forwarding to and from the bridges is accepted. An empty list deletes the table. The leading
/// `table …` + `delete table …` makes the batch succeed whether or not the table exists.
pub fn render(table: &str, subnets: &[NatSubnet]) -> String {
    let mut out = format!("table ip {table} {{}}\ndelete table ip {table}\n");
    if subnets.is_empty() {
        return out;
    }
    out.push_str(&format!("table ip {table} {{\n"));
    out.push_str("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    for s in subnets {
        out.push_str(&format!("\t\tip saddr {} oifname != \"{}\" masquerade\n", s.cidr, s.bridge));
    }
    out.push_str("\t}\n");
    out.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    for s in subnets {
        out.push_str(&format!("\t\tiifname \"{}\" accept\n", s.bridge));
        out.push_str(&format!("\t\toifname \"{}\" accept\n", s.bridge));
    }
    out.push_str("\t}\n}\n");
    out
}

/// Runs `nft -f -` with `script` (blocking: call from `spawn_blocking`).
pub fn apply(table: &str, script: &str) -> Result<()> {
    let failed = |stderr: String| NetworkError::Nft { table: table.to_string(), stderr };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run nft (is the nftables package installed?): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| failed(format!("writing the batch: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| failed(format!("waiting for nft: {e}")))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_masquerade_and_forward_rules_per_subnet() {
        let subnets = [
            NatSubnet { bridge: "skb1a2b3c4d".into(), cidr: "172.31.0.0/20".parse().unwrap() },
            NatSubnet { bridge: "skb5e6f7a8b".into(), cidr: "172.31.16.0/20".parse().unwrap() },
        ];
        let script = render("skiff", &subnets);
        assert!(script.starts_with("table ip skiff {}\ndelete table ip skiff\ntable ip skiff {\n"));
        assert!(script.contains("ip saddr 172.31.0.0/20 oifname != \"skb1a2b3c4d\" masquerade\n"));
        assert!(script.contains("ip saddr 172.31.16.0/20 oifname != \"skb5e6f7a8b\" masquerade\n"));
        assert!(script.contains("iifname \"skb5e6f7a8b\" accept\n"));
        assert!(script.contains("oifname \"skb1a2b3c4d\" accept\n"));
        assert_eq!(render("skiff", &[]), "table ip skiff {}\ndelete table ip skiff\n");
    }
}
