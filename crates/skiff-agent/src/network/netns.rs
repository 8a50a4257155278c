//! Network namespaces: created by `unshare(CLONE_NEWNET)` on a short-lived dedicated thread (never a tokio
//! worker, whose namespace must not change), which also opens a netlink connection from inside the new
//! namespace — a netlink socket stays bound to the namespace it was created in, so the connection can then
//! be driven from any thread. A namespace lives as long as an fd to it is open or it is bind-mounted on a
//! file under the netns directory (as `ip netns add` does), which is what names it for the OCI runtime.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use rtnetlink::{LinkUnspec, RouteMessageBuilder};
use std::net::Ipv4Addr;

use super::error::{netlink_errno, NetworkError, Result};
use super::links::{link_index, EEXIST};

/// The loopback device's index in every network namespace (LOOPBACK_IFINDEX).
const LOOPBACK_IFINDEX: u32 = 1;

/// A network namespace held by an fd, with a netlink connection inside it.
pub struct Namespace {
    pub fd: OwnedFd,
    pub handle: rtnetlink::Handle,
}

/// Creates a namespace with its loopback up.
pub async fn create() -> Result<Namespace> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("skiff-netns".into())
        .spawn(move || {
            let created = (|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetworkError::sys("unshare(CLONE_NEWNET)", e))?;
                let fd: OwnedFd = File::open("/proc/thread-self/ns/net")
                    .map_err(|e| NetworkError::io("open", "/proc/thread-self/ns/net", e))?
                    .into();
                // The socket is created here, inside the new namespace; the runtime only drives it.
                let _entered = runtime.enter();
                let (connection, handle, _) =
                    rtnetlink::new_connection().map_err(|e| NetworkError::sys("open netlink socket in netns", e))?;
                tokio::spawn(connection);
                Ok(Namespace { fd, handle })
            })();
            // The thread ends here, so its changed namespace never runs anything else.
            let _ = tx.send(created);
        })
        .map_err(|e| NetworkError::sys("spawn netns thread", e))?;
    let namespace = rx.await.map_err(|_| NetworkError::sys("netns thread", std::io::Error::other("thread died")))??;
    let lo = LinkUnspec::new_with_index(LOOPBACK_IFINDEX).up().build();
    namespace.handle.link().set(lo).execute().await.map_err(|e| NetworkError::netlink("set up", "lo", e))?;
    Ok(namespace)
}

/// Inside the namespace: brings `eth0` up and returns its index.
pub async fn bring_up_eth0(handle: &rtnetlink::Handle) -> Result<u32> {
    let Some(index) = link_index(handle, "eth0").await? else {
        return Err(NetworkError::sys("find eth0 in netns", std::io::Error::from(ErrorKind::NotFound)));
    };
    let up = LinkUnspec::new_with_index(index).up().build();
    handle.link().set(up).execute().await.map_err(|e| NetworkError::netlink("set up", "eth0 in netns", e))?;
    Ok(index)
}

/// Inside the namespace: `eth0` (index `eth0`) gets `ip/prefix_len` and the default route goes via `gateway`.
pub async fn address_eth0(
    handle: &rtnetlink::Handle,
    eth0: u32,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<()> {
    if let Err(e) = handle.address().add(eth0, ip.into(), prefix_len).execute().await {
        if netlink_errno(&e) != Some(EEXIST) {
            return Err(NetworkError::netlink("add address", format!("{ip}/{prefix_len} on eth0"), e));
        }
    }
    let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).output_interface(eth0).build();
    if let Err(e) = handle.route().add(route).execute().await {
        if netlink_errno(&e) != Some(EEXIST) {
            return Err(NetworkError::netlink("add default route", format!("via {gateway}"), e));
        }
    }
    Ok(())
}

/// Names the namespace: bind-mounts it on `path` (created empty), like `ip netns add`. Blocking.
pub fn bind(fd: &OwnedFd, path: &Path) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| NetworkError::io("create netns file", path, e))?;
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::mount::mount(Some(source.as_str()), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| NetworkError::io("bind-mount netns on", path, e.into()))
}

/// Unmounts and removes a namespace file; a file that is not mounted or not there is fine. Blocking.
pub fn unbind(path: &Path) -> Result<()> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(NetworkError::io("unmount netns", path, e.into())),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io("remove netns file", path, e)),
    }
}
