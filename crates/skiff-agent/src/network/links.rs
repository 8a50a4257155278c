//! Links on the host (and lookups in any namespace): the per-subnet bridge with the gateway address, and the
//! task's veth pair, created in one netlink request with its peer already inside the task's namespace as
//! `eth0` (stable MAC) and its host end enslaved to the bridge and up.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::error::{netlink_errno, NetworkError, Result};

pub const EEXIST: i32 = nix::errno::Errno::EEXIST as i32;
const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;

/// Creates (if missing) the bridge `name`, brings it up and gives it `gateway/prefix_len`. Returns its index.
pub async fn ensure_bridge(handle: &rtnetlink::Handle, name: &str, gateway: Ipv4Addr, prefix_len: u8) -> Result<u32> {
    if link_index(handle, name).await?.is_none() {
        if let Err(e) = handle.link().add(LinkBridge::new(name).build()).execute().await {
            if netlink_errno(&e) != Some(EEXIST) {
                return Err(NetworkError::netlink("create bridge", name, e));
            }
        }
    }
    let Some(index) = link_index(handle, name).await? else {
        return Err(NetworkError::sys("find bridge", std::io::Error::other(format!("bridge {name} vanished"))));
    };
    let up = LinkUnspec::new_with_index(index).up().build();
    handle.link().set(up).execute().await.map_err(|e| NetworkError::netlink("set up", name, e))?;
    if let Err(e) = handle.address().add(index, gateway.into(), prefix_len).execute().await {
        if netlink_errno(&e) != Some(EEXIST) {
            return Err(NetworkError::netlink("add address", format!("{gateway}/{prefix_len} on {name}"), e));
        }
    }
    Ok(index)
}

/// Creates the veth pair `host_name` (on bridge `bridge_index`, up) ⇄ `eth0` (MAC `mac`, down: the kernel
/// refuses to open a peer before its other end exists) inside the namespace `netns`.
pub async fn create_veth(
    handle: &rtnetlink::Handle,
    host_name: &str,
    bridge_index: u32,
    mac: [u8; 6],
    netns: &OwnedFd,
) -> Result<()> {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name("eth0")
        .address(mac.to_vec())
        .setns_by_fd(netns.as_raw_fd())
        .build();
    let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(bridge_index)
        .up()
        .build();
    handle.link().add(message).execute().await.map_err(|e| NetworkError::netlink("create veth", host_name, e))
}

/// Deletes the link `name` if it exists (a veth's peer goes with it). Returns whether it existed.
pub async fn delete_link(handle: &rtnetlink::Handle, name: &str) -> Result<bool> {
    let Some(index) = link_index(handle, name).await? else { return Ok(false) };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if netlink_errno(&e) == Some(ENODEV) => Ok(false),
        Err(e) => Err(NetworkError::netlink("delete link", name, e)),
    }
}

/// The interface index of the link named `name` in the namespace `handle` talks to, if it exists.
pub async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if netlink_errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(NetworkError::netlink("look up link", name, e)),
    }
}

/// The names of every link whose controller (bridge) is `bridge_index`.
pub async fn ports_of(handle: &rtnetlink::Handle, bridge_index: u32) -> Result<Vec<String>> {
    let mut links = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(link) = links.try_next().await.map_err(|e| NetworkError::netlink("dump", "links", e))? {
        let attrs = &link.attributes;
        if attrs.iter().any(|a| matches!(a, LinkAttribute::Controller(i) if *i == bridge_index)) {
            if let Some(name) = attrs.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            }) {
                out.push(name);
            }
        }
    }
    Ok(out)
}
