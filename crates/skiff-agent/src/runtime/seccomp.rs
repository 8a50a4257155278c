//! Skiff's default seccomp profile: the syscalls Docker's default profile refuses, as a deny list.
//!
//! Docker's profile (moby `profiles/seccomp/default.json`) is an allow list of ~350 syscalls with a default of
//! `SCMP_ACT_ERRNO`; almost everything it leaves out is a syscall that needs a capability containers do not
//! get, or one that is dangerous even with it. This profile states the same policy the other way round — allow
//! by default, refuse the listed syscalls with EPERM — which is short enough to read and review, and
//! unaffected by new harmless syscalls. Like Docker, a group is allowed again when the container is given the
//! capability that guards it (e.g. `SYS_PTRACE` allows `process_vm_readv`, `kcmp`). `clone` with namespace
//! flags is refused unless `SYS_ADMIN`; `clone3` returns ENOSYS so libcs fall back to `clone` (as Docker).
//! `ptrace` itself stays allowed (Docker allows it on kernels ≥ 4.8).

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::SpecError;

const EPERM: u32 = 1;

/// btrfs ioctls that create subvolumes and snapshots (`_IOW(0x94, 1|14|23|24, …)`): any user may call them,
/// and a subvolume made inside a task's scratch volume would escape the task's ephemeral-storage quota
/// (crates/skiff-agent/src/storage). Refused with EPERM whatever the capabilities.
pub const BTRFS_SUBVOLUME_IOCTLS: [u64; 4] = [
    0x5000_9401, // BTRFS_IOC_SNAP_CREATE
    0x5000_940e, // BTRFS_IOC_SUBVOL_CREATE
    0x5000_9417, // BTRFS_IOC_SNAP_CREATE_V2
    0x5000_9418, // BTRFS_IOC_SUBVOL_CREATE_V2
];
const ENOSYS: u32 = 38;

/// (capability that re-allows the group, or `None` for never; syscalls). Names valid on x86_64 and aarch64.
pub const DENIED_SYSCALLS: &[(Option<&str>, &[&str])] = &[
    // Kernel modules, kexec, reboot, swap, accounting.
    (Some("SYS_MODULE"), &["init_module", "finit_module", "delete_module"]),
    (Some("SYS_BOOT"), &["kexec_load", "kexec_file_load", "reboot"]),
    (Some("SYS_PACCT"), &["acct"]),
    (Some("SYS_ADMIN"), &["swapon", "swapoff"]),
    // Mounts and namespaces: a container must not remount or escape its own.
    (
        Some("SYS_ADMIN"),
        &[
            "mount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "quotactl",
            "lookup_dcookie",
            "fanotify_init",
            "sethostname",
            "setdomainname",
            "bpf",
            "perf_event_open",
        ],
    ),
    // Clocks.
    (Some("SYS_TIME"), &["settimeofday", "clock_settime", "clock_adjtime"]),
    // Kernel keyring: not namespaced.
    (None, &["add_key", "request_key", "keyctl"]),
    // Raw I/O and NUMA placement.
    (Some("SYS_NICE"), &["get_mempolicy", "set_mempolicy", "mbind", "move_pages"]),
    // Cross-process memory and handle-based opens (the "shocker" escape).
    (Some("SYS_PTRACE"), &["process_vm_readv", "process_vm_writev", "kcmp"]),
    (Some("DAC_READ_SEARCH"), &["open_by_handle_at"]),
    (Some("SYS_ADMIN"), &["name_to_handle_at"]),
    (Some("SYSLOG"), &["syslog"]),
    (Some("SYS_TTY_CONFIG"), &["vhangup"]),
    // userfaultfd widens kernel race windows; Docker refuses it without SYS_PTRACE.
    (Some("SYS_PTRACE"), &["userfaultfd"]),
];

/// x86_64-only legacy syscalls (absent on aarch64).
#[cfg(target_arch = "x86_64")]
pub const DENIED_SYSCALLS_X86_64: &[&str] = &[
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "uselib",
    "ustat",
    "_sysctl",
    "sysfs",
    "ioperm",
    "iopl",
];
#[cfg(not(target_arch = "x86_64"))]
pub const DENIED_SYSCALLS_X86_64: &[&str] = &[];

/// `clone` flags that create namespaces: NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
pub const CLONE_NAMESPACE_FLAGS: &[u64] =
    &[0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000];

fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![]
    }
}

/// The profile for a container holding `caps`.
pub fn default_profile(caps: &HashSet<Capability>) -> Result<LinuxSeccomp, SpecError> {
    let has = |c: &str| super::bundle::parse_capability(c).map(|c| caps.contains(&c)).unwrap_or(false);
    let mut denied: Vec<String> = DENIED_SYSCALLS
        .iter()
        .filter(|(cap, _)| cap.is_none_or(|c| !has(c)))
        .flat_map(|(_, names)| names.iter().map(|n| n.to_string()))
        .collect();
    if !has("SYS_RAWIO") {
        denied.extend(DENIED_SYSCALLS_X86_64.iter().map(|s| s.to_string()));
    }
    denied.sort();
    denied.dedup();
    let mut syscalls: Vec<LinuxSyscall> = vec![LinuxSyscallBuilder::default()
        .names(denied)
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()?];
    for request in BTRFS_SUBVOLUME_IOCTLS {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["ioctl".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .args(vec![LinuxSeccompArgBuilder::default()
                    .index(1usize)
                    .value(request)
                    .op(LinuxSeccompOperator::ScmpCmpEq)
                    .build()?])
                .build()?,
        );
    }
    if !has("SYS_ADMIN") {
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(
                LinuxSyscallBuilder::default()
                    .names(vec!["clone".to_string()])
                    .action(LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(EPERM)
                    .args(vec![LinuxSeccompArgBuilder::default()
                        .index(0usize)
                        .value(*flag)
                        .value_two(*flag)
                        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                        .build()?])
                    .build()?,
            );
        }
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()?,
        );
    }
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls().as_ref().map(|s| s[0].names().clone()).unwrap_or_default()
    }

    #[test]
    fn default_caps_block_dangerous_syscalls() {
        let caps = super::super::bundle::effective_capabilities(&[], &[]).expect("caps");
        let p = default_profile(&caps).expect("profile");
        let n = names(&p);
        for s in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "kexec_load",
            "init_module",
            "bpf",
            "open_by_handle_at",
            "process_vm_readv",
        ] {
            assert!(n.iter().any(|x| x == s), "{s} should be denied");
        }
        assert!(!n.iter().any(|x| x == "ptrace"));
        assert!(p.syscalls().as_ref().expect("rules").iter().any(|r| r.names() == &vec!["clone3".to_string()]));
    }

    #[test]
    fn capabilities_reallow_their_group() {
        let caps = super::super::bundle::effective_capabilities(&["SYS_PTRACE".into()], &[]).expect("caps");
        let n = names(&default_profile(&caps).expect("profile"));
        assert!(!n.iter().any(|x| x == "process_vm_readv" || x == "kcmp"));
        assert!(n.iter().any(|x| x == "mount"));
        let caps = super::super::bundle::effective_capabilities(&["SYS_ADMIN".into()], &[]).expect("caps");
        let p = default_profile(&caps).expect("profile");
        assert!(!names(&p).iter().any(|x| x == "mount"));
        let rules = p.syscalls().as_ref().expect("rules");
        assert!(!rules.iter().any(|r| r.names() == &vec!["clone".to_string()]), "no clone rules with SYS_ADMIN");
        assert_eq!(
            rules.iter().filter(|r| r.names() == &vec!["ioctl".to_string()]).count(),
            4,
            "btrfs ioctls stay refused"
        );
    }
}
