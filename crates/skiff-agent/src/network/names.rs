//! Names derived from task and subnet ids: bridges, host veth ends, MAC addresses. Derivations are pure and
//! stable, so an agent restarted without its records still finds what an earlier run created.

use sha2::{Digest, Sha256};

use super::error::{NetworkError, Result};

/// Linux's limit for interface names (IFNAMSIZ − 1).
pub const MAX_IFNAME: usize = 15;
/// A bridge name is the prefix plus 8 hex digits of the subnet id's hash.
pub const MAX_BRIDGE_PREFIX: usize = MAX_IFNAME - 8;

/// Task and subnet ids become file names: only `[A-Za-z0-9_.-]`, not starting with a dot, ≤ 128 bytes.
pub fn validate_id(what: &'static str, value: &str) -> Result<()> {
    let invalid = |reason| NetworkError::Invalid { what, value: value.to_string(), reason };
    if value.is_empty() || value.len() > 128 {
        return Err(invalid("must be 1 to 128 characters"));
    }
    if value.starts_with('.') {
        return Err(invalid("must not start with a dot"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return Err(invalid("only letters, digits, '-', '_' and '.' are allowed"));
    }
    Ok(())
}

/// A hostname goes into /etc/hosts: no whitespace or control characters, ≤ 253 bytes (empty means none).
pub fn validate_hostname(value: &str) -> Result<()> {
    if value.len() > 253 || value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'#') {
        return Err(NetworkError::Invalid {
            what: "hostname",
            value: value.to_string(),
            reason: "must be at most 253 characters without whitespace, control characters or '#'",
        });
    }
    Ok(())
}

pub fn validate_bridge_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() || prefix.len() > MAX_BRIDGE_PREFIX || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(NetworkError::Invalid {
            what: "bridge prefix",
            value: prefix.to_string(),
            reason: "must be 1 to 7 letters or digits",
        });
    }
    Ok(())
}

pub fn validate_nft_table(table: &str) -> Result<()> {
    let ok = !table.is_empty()
        && table.len() <= 64
        && table.as_bytes()[0].is_ascii_alphabetic()
        && table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(NetworkError::Invalid {
            what: "nft table",
            value: table.to_string(),
            reason: "must start with a letter and hold only letters, digits and '_' (≤ 64)",
        });
    }
    Ok(())
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

/// The subnet's bridge: `prefix` + 8 hex digits of the subnet id's hash (≤ 15 characters).
pub fn bridge_name(prefix: &str, subnet_id: &str) -> String {
    format!("{prefix}{}", &hex::encode(digest(&["bridge", subnet_id]))[..8])
}

/// The host end of a task's veth pair: `sk` + 13 hex digits of the hash of the bridge prefix and the task id
/// (so two agents with different prefixes never collide on one host).
pub fn host_veth_name(prefix: &str, task_id: &str) -> String {
    format!("sk{}", &hex::encode(digest(&["veth", prefix, task_id]))[..13])
}

/// The task's eth0 MAC: locally administered unicast (`0a:` first octet) and stable for a task id.
pub fn task_mac(task_id: &str) -> [u8; 6] {
    let d = digest(&["mac", task_id]);
    [0x0a, d[0], d[1], d[2], d[3], d[4]]
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_are_stable() {
        let bridge = bridge_name("skb", "subnet-0123456789abcdef0");
        assert_eq!(bridge.len(), 11);
        assert_eq!(bridge, bridge_name("skb", "subnet-0123456789abcdef0"));
        assert_ne!(bridge, bridge_name("skb", "subnet-other"));
        assert!(bridge_name("abcdefg", "s").len() <= MAX_IFNAME);
        let veth = host_veth_name("skb", "0f3c9b1a2d4e4c0f8a7b6c5d4e3f2a1b");
        assert_eq!(veth.len(), MAX_IFNAME);
        assert_ne!(veth, host_veth_name("tb1", "0f3c9b1a2d4e4c0f8a7b6c5d4e3f2a1b"));
    }

    #[test]
    fn mac_is_locally_administered_unicast() {
        let mac = task_mac("task-1");
        assert_eq!(mac[0], 0x0a);
        assert_eq!(mac, task_mac("task-1"));
        assert_ne!(mac, task_mac("task-2"));
        assert!(format_mac(&mac).starts_with("0a:"));
        assert_eq!(format_mac(&mac).len(), 17);
    }

    #[test]
    fn ids_that_could_escape_a_directory_are_refused() {
        for bad in ["", "..", ".hidden", "a/b", "a b", "x\n", &"a".repeat(129)] {
            assert!(validate_id("task id", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["0f3c9b1a", "subnet-0a1b", "task_1.2"] {
            validate_id("task id", good).unwrap();
        }
        assert!(validate_hostname("ip-10-0-0-5.ec2.internal").is_ok());
        assert!(validate_hostname("bad host").is_err());
        assert!(validate_bridge_prefix("skb").is_ok());
        assert!(validate_bridge_prefix("toolong12").is_err());
        assert!(validate_nft_table("skiff").is_ok());
        assert!(validate_nft_table("1bad").is_err());
    }
}
