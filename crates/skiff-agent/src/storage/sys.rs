//! The kernel interfaces task storage uses, as ioctls (no `btrfs`, `losetup` or `mount` processes): btrfs
//! subvolumes and quota groups (`linux/btrfs.h`), loop devices (`linux/loop.h`), and `/proc/self/mountinfo`.
//!
//! Every struct mirrors its kernel definition byte for byte; the size assertions below keep them honest.

#![allow(unsafe_code)]

use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{self, opcode, Ioctl, IoctlOutput, NoArg, Opcode, Setter, Updater};
use std::ffi::c_void;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------------------
// btrfs

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
/// `BTRFS_PATH_NAME_MAX + 1`.
const VOL_NAME_LEN: usize = 4088;
/// `BTRFS_SUBVOL_NAME_MAX + 1`.
const SUBVOL_NAME_LEN: usize = 4040;

/// The root directory of every subvolume has this inode number (`BTRFS_FIRST_FREE_OBJECTID`).
pub(crate) const SUBVOL_ROOT_INO: u64 = 256;
/// `statfs(2)`'s `f_type` of btrfs.
pub(crate) const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;

const BTRFS_SUBVOL_QGROUP_INHERIT: u64 = 1 << 2;
const BTRFS_QGROUP_INHERIT_SET_LIMITS: u64 = 1 << 0;
const BTRFS_QGROUP_LIMIT_MAX_RFER: u64 = 1 << 0;
const BTRFS_QGROUP_LIMIT_MAX_EXCL: u64 = 1 << 1;
const BTRFS_QUOTA_CTL_ENABLE: u64 = 1;
const BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA: u64 = 4;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; VOL_NAME_LEN],
}

/// `struct btrfs_qgroup_limit`.
#[repr(C)]
#[derive(Default)]
struct QgroupLimit {
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

/// `struct btrfs_qgroup_inherit` without qgroups to join (`num_qgroups` 0).
#[repr(C)]
#[derive(Default)]
struct QgroupInherit {
    flags: u64,
    num_qgroups: u64,
    num_ref_copies: u64,
    num_excl_copies: u64,
    lim: QgroupLimit,
}

/// `struct btrfs_ioctl_vol_args_v2`: the first union is `{ size, qgroup_inherit }` padded to 4 u64s, the
/// second `name`.
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    size: u64,
    qgroup_inherit: u64,
    unused: [u64; 2],
    name: [u8; SUBVOL_NAME_LEN],
}

/// `struct btrfs_ioctl_quota_ctl_args`.
#[repr(C)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

const _: () = assert!(std::mem::size_of::<VolArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<VolArgsV2>() == 4096);
const _: () = assert!(std::mem::size_of::<QgroupLimit>() == 40);
const _: () = assert!(std::mem::size_of::<QgroupInherit>() == 72);
const _: () = assert!(std::mem::size_of::<QuotaCtlArgs>() == 16);

const BTRFS_IOC_RESIZE: Opcode = opcode::write::<VolArgs>(BTRFS_IOCTL_MAGIC, 3);
const BTRFS_IOC_SNAP_DESTROY: Opcode = opcode::write::<VolArgs>(BTRFS_IOCTL_MAGIC, 15);
const BTRFS_IOC_SUBVOL_CREATE_V2: Opcode = opcode::write::<VolArgsV2>(BTRFS_IOCTL_MAGIC, 24);
const BTRFS_IOC_QUOTA_CTL: Opcode = opcode::read_write::<QuotaCtlArgs>(BTRFS_IOCTL_MAGIC, 40);

fn copy_name<const N: usize>(name: &str) -> Result<[u8; N], Errno> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= N || bytes.contains(&0) || bytes.contains(&b'/') {
        return Err(Errno::INVAL);
    }
    let mut out = [0u8; N];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// Creates subvolume `name` in the directory `parent` with its own quota group limited to `limit` bytes
/// (referenced and exclusive alike): one ioctl, one transaction, so the subvolume never exists without its
/// limit.
pub(crate) fn subvolume_create_limited(parent: BorrowedFd<'_>, name: &str, limit: u64) -> Result<(), Errno> {
    let inherit = QgroupInherit {
        flags: BTRFS_QGROUP_INHERIT_SET_LIMITS,
        lim: QgroupLimit {
            flags: BTRFS_QGROUP_LIMIT_MAX_RFER | BTRFS_QGROUP_LIMIT_MAX_EXCL,
            max_rfer: limit,
            max_excl: limit,
            ..QgroupLimit::default()
        },
        ..QgroupInherit::default()
    };
    let args = VolArgsV2 {
        fd: 0,
        transid: 0,
        flags: BTRFS_SUBVOL_QGROUP_INHERIT,
        size: std::mem::size_of::<QgroupInherit>() as u64,
        qgroup_inherit: std::ptr::addr_of!(inherit) as u64,
        unused: [0; 2],
        name: copy_name(name)?,
    };
    // SAFETY: the opcode is BTRFS_IOC_SUBVOL_CREATE_V2, whose argument is `struct btrfs_ioctl_vol_args_v2`
    // (mirrored above, size asserted); `qgroup_inherit` points at `inherit`, alive until the call returns,
    // and `size` is its length.
    unsafe { ioctl::ioctl(parent, Setter::<BTRFS_IOC_SUBVOL_CREATE_V2, VolArgsV2>::new(args)) }
}

/// Deletes subvolume `name` in the directory `parent` (the kernel's cleaner frees its extents later and
/// removes its quota group when they are gone). `ENOTEMPTY`: it holds other subvolumes.
pub(crate) fn subvolume_destroy(parent: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    let args = VolArgs { fd: 0, name: copy_name(name)? };
    // SAFETY: BTRFS_IOC_SNAP_DESTROY takes `struct btrfs_ioctl_vol_args` (mirrored above, size asserted).
    unsafe { ioctl::ioctl(parent, Setter::<BTRFS_IOC_SNAP_DESTROY, VolArgs>::new(args)) }
}

/// Enables quota groups on the filesystem of `fd`: simple quotas (Linux ≥ 6.7: usage is charged to the
/// subvolume that allocated an extent, no back-reference walks at commit) when the kernel has them, full
/// qgroups otherwise. A no-op when quotas are already on (in either mode).
pub(crate) fn quota_enable(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let ctl = |cmd| {
        let mut args = QuotaCtlArgs { cmd, status: 0 };
        // SAFETY: BTRFS_IOC_QUOTA_CTL takes `struct btrfs_ioctl_quota_ctl_args` (mirrored, size asserted).
        unsafe { ioctl::ioctl(fd, Updater::<BTRFS_IOC_QUOTA_CTL, QuotaCtlArgs>::new(&mut args)) }
    };
    match ctl(BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA) {
        Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => ctl(BTRFS_QUOTA_CTL_ENABLE),
        other => other,
    }
}

/// Grows the (single-device) filesystem of `fd` to its device's size.
pub(crate) fn resize_max(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let args = VolArgs { fd: 0, name: copy_name("max")? };
    // SAFETY: BTRFS_IOC_RESIZE takes `struct btrfs_ioctl_vol_args` (mirrored above, size asserted).
    unsafe { ioctl::ioctl(fd, Setter::<BTRFS_IOC_RESIZE, VolArgs>::new(args)) }
}

// ---------------------------------------------------------------------------------------------------------
// loop devices

const LOOP_CLR_FD: Opcode = 0x4C01;
const LOOP_SET_CAPACITY: Opcode = 0x4C07;
const LOOP_CONFIGURE: Opcode = 0x4C0A;
const LOOP_CTL_GET_FREE: Opcode = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

/// An ioctl without argument whose result is the syscall's return value.
struct ReturnsInt<const OPCODE: Opcode>;

// SAFETY: passes no pointer (null) and reads only the return value.
unsafe impl<const OPCODE: Opcode> Ioctl for ReturnsInt<OPCODE> {
    type Output = i32;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> Opcode {
        OPCODE
    }
    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::null_mut()
    }
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<i32> {
        Ok(out)
    }
}

/// A loop device bound to a file. The device stays bound (and must stay open) until something else holds
/// it — a mount; it detaches itself (`LO_FLAGS_AUTOCLEAR`) when its last user closes it, so a crash before
/// the mount leaves nothing behind.
pub(crate) struct LoopDevice {
    pub(crate) path: PathBuf,
    pub(crate) fd: OwnedFd,
}

fn open_path(path: &Path, flags: OFlags) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty())?)
}

/// Binds a free loop device to `backing` (4 KiB blocks; direct I/O when the backing filesystem allows it,
/// so the image's pages are not cached twice).
pub(crate) fn loop_attach(backing: &Path) -> std::io::Result<LoopDevice> {
    let file = open_path(backing, OFlags::RDWR)?;
    let control = open_path(Path::new("/dev/loop-control"), OFlags::RDWR)?;
    let mut last = Errno::BUSY;
    for _ in 0..64 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let n = unsafe { ioctl::ioctl(&control, ReturnsInt::<LOOP_CTL_GET_FREE>) }?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let dev = open_path(&path, OFlags::RDWR)?;
        let mut flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
        loop {
            let config = LoopConfig {
                fd: file.as_raw_fd() as u32,
                block_size: 4096,
                info: LoopInfo64 {
                    lo_device: 0,
                    lo_inode: 0,
                    lo_rdevice: 0,
                    lo_offset: 0,
                    lo_sizelimit: 0,
                    lo_number: 0,
                    lo_encrypt_type: 0,
                    lo_encrypt_key_size: 0,
                    lo_flags: flags,
                    lo_file_name: file_name_field(backing),
                    lo_crypt_name: [0; 64],
                    lo_encrypt_key: [0; 32],
                    lo_init: [0; 2],
                },
                reserved: [0; 8],
            };
            // SAFETY: LOOP_CONFIGURE takes `struct loop_config` (mirrored above, size asserted); `fd` is open.
            match unsafe { ioctl::ioctl(&dev, Setter::<LOOP_CONFIGURE, LoopConfig>::new(config)) } {
                Ok(()) => return Ok(LoopDevice { path, fd: dev }),
                // The backing filesystem cannot do direct I/O: buffered then.
                Err(Errno::INVAL) if flags & LO_FLAGS_DIRECT_IO != 0 => flags &= !LO_FLAGS_DIRECT_IO,
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        // Another process took this device between GET_FREE and CONFIGURE: ask again.
        if last != Errno::BUSY {
            return Err(last.into());
        }
    }
    Err(last.into())
}

fn file_name_field(path: &Path) -> [u8; 64] {
    use std::os::unix::ffi::OsStrExt;
    let mut out = [0u8; 64];
    let bytes = path.as_os_str().as_bytes();
    let n = bytes.len().min(63);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Tells a bound loop device that its backing file grew.
pub(crate) fn loop_set_capacity(dev: &Path) -> std::io::Result<()> {
    let fd = open_path(dev, OFlags::RDONLY)?;
    // SAFETY: LOOP_SET_CAPACITY takes no argument.
    unsafe { ioctl::ioctl(&fd, NoArg::<LOOP_SET_CAPACITY>::new()) }?;
    Ok(())
}

/// Unbinds a loop device (or, while it is in use, marks it to unbind when its last user closes it).
pub(crate) fn loop_detach(dev: &Path) -> std::io::Result<()> {
    let fd = open_path(dev, OFlags::RDONLY)?;
    // SAFETY: LOOP_CLR_FD takes no argument.
    match unsafe { ioctl::ioctl(&fd, NoArg::<LOOP_CLR_FD>::new()) } {
        Ok(()) | Err(Errno::NXIO) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The loop devices (`/dev/loopN`) currently bound to `backing` (compared by path, as sysfs reports it).
pub(crate) fn loops_backed_by(backing: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return out };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(file) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else { continue };
        if Path::new(file.trim_end_matches('\n')) == backing {
            out.push(PathBuf::from(format!("/dev/{name}")));
        }
    }
    out.sort();
    out
}

/// The size of block device `dev` (`/dev/loopN`) from sysfs.
pub(crate) fn block_device_bytes(dev: &Path) -> Option<u64> {
    let name = dev.file_name()?.to_str()?;
    let sectors: u64 = std::fs::read_to_string(format!("/sys/block/{name}/size")).ok()?.trim().parse().ok()?;
    Some(sectors * 512)
}

/// Whether the block device `dev` (`/dev/loopN`) is a loop device bound to `backing`.
pub(crate) fn loop_backed_by(dev: &str, backing: &Path) -> bool {
    loop_backing_file(dev).is_some_and(|f| Path::new(&f) == backing)
}

/// Whether loop device `dev` is backed by `backing` after that file was deleted (the kernel shows the
/// path with " (deleted)" appended).
pub(crate) fn loop_backed_by_deleted(dev: &str, backing: &Path) -> bool {
    loop_backing_file(dev).is_some_and(|f| f == format!("{} (deleted)", backing.display()))
}

fn loop_backing_file(dev: &str) -> Option<String> {
    let name = dev.strip_prefix("/dev/")?;
    let f = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(f.trim_end_matches('\n').to_string())
}

// ---------------------------------------------------------------------------------------------------------
// mounts

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub(crate) struct MountEntry {
    pub(crate) mount_point: PathBuf,
    pub(crate) fstype: String,
    pub(crate) source: String,
}

/// This process's mounts, in mount order (a later entry on the same point is on top).
pub(crate) fn mounts() -> std::io::Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut rest = after.split(' ');
    let fstype = rest.next()?;
    let source = rest.next()?;
    Some(MountEntry {
        mount_point: PathBuf::from(unescape(mount_point)),
        fstype: unescape(fstype),
        source: unescape(source),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::ffi::OsString::from_vec(out).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_and_unescape() {
        let line = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - btrfs /dev/loop3 rw,space_cache=v2";
        let e = parse_mountinfo_line(line).unwrap();
        assert_eq!(e.mount_point, Path::new("/mnt/a b"));
        assert_eq!(e.fstype, "btrfs");
        assert_eq!(e.source, "/dev/loop3");
        assert!(parse_mountinfo_line("garbage").is_none());
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
    }

    #[test]
    fn names_are_checked_before_the_kernel_sees_them() {
        assert!(copy_name::<16>("").is_err());
        assert!(copy_name::<16>("a/b").is_err());
        assert!(copy_name::<4>("abcd").is_err());
        assert_eq!(&copy_name::<4>("abc").unwrap(), b"abc\0");
    }
}
