//! The layer extractor: a tar stream (optionally gzip or zstd compressed) → one directory, by the OCI layer
//! rules (image-spec `layer.md`), in the on-disk form overlayfs reads as a lower layer.
//!
//! Safety rules, each enforced here and nowhere else:
//! - Every path is resolved relative to the target directory's file descriptor: parents with
//!   `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` (or, where
//!   openat2 is missing, one `openat(O_NOFOLLOW | O_DIRECTORY)` per component), final components with the
//!   `*at` calls that never follow a symlink (`O_CREAT | O_EXCL | O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `linkat`
//!   without `AT_SYMLINK_FOLLOW`). A path through a symlink the layer placed is refused, not followed.
//! - Names with a `..` component and absolute names are refused; so are hardlink targets outside the layer.
//! - Block and character devices are refused (fifos are kept); only `user.*` and `security.capability`
//!   xattrs are applied (never `trusted.*`, which overlayfs reads as its own metadata).
//! - Ownership, modes (setuid included), xattrs and times are applied through the new file's own descriptor,
//!   so nothing outside the target is ever chowned or chmodded.
//! - Entry count, file bytes and per-entry tar metadata (PAX and GNU long-name records) are capped, a file
//!   shorter than its header claims fails, and so does a corrupt or truncated compressed stream.
//!
//! Whiteouts become what overlayfs reads: `.wh.NAME` is a 0/0 character device named NAME, `.wh..wh..opq`
//! sets `trusted.overlay.opaque=y` on its directory. Both only ever mask lower layers: a whiteout for a name
//! this same layer also writes leaves the layer's own entry (a directory becomes opaque instead).

use super::media::Compression;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Caps on one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Tar entries per layer (every header counts: files, directories, links, whiteouts).
    pub max_entries: u64,
    /// File bytes per layer, uncompressed (the sum of regular files' sizes).
    pub max_bytes: u64,
}

impl Default for UnpackLimits {
    /// 500,000 entries (the largest real layers hold a few hundred thousand files) and 20 GiB.
    fn default() -> UnpackLimits {
        UnpackLimits { max_entries: 500_000, max_bytes: 20 << 30 }
    }
}

/// What an unpack wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries read (every kind, whiteouts included).
    pub entries: u64,
    /// Regular files' bytes written.
    pub bytes: u64,
    /// Whiteouts and opaque markers turned into overlayfs form.
    pub whiteouts: u64,
    /// `sha256:` of the whole uncompressed tar stream (the layer's diff_id).
    pub diff_id: String,
    /// `sha256:` of the compressed stream and its length, when the input was compressed (or hashed).
    pub compressed_digest: Option<String>,
    pub compressed_size: Option<u64>,
}

/// Why a layer could not be unpacked. The text is the reason only; a pull adds the image and the layer
/// (`CannotPullContainerError: failed to extract layer sha256:… of IMAGE: <this>`).
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("path {path:?} escapes the root")]
    Escapes { path: String },
    #[error("path {path:?} is absolute")]
    Absolute { path: String },
    #[error("path {path:?} goes through a symlink")]
    ThroughSymlink { path: String },
    #[error("path {path:?} goes through a non-directory")]
    ThroughNonDirectory { path: String },
    #[error("hardlink {path:?} to {target:?}: {reason}")]
    Hardlink { path: String, target: String, reason: String },
    #[error("device node {path:?} ({kind}) is not allowed in a layer")]
    DeviceNode { path: String, kind: &'static str },
    #[error("whiteout {path:?} names no valid entry")]
    BadWhiteout { path: String },
    #[error("entry {path:?} of type {kind} is not supported")]
    UnsupportedEntry { path: String, kind: String },
    #[error("entry {path:?} names the root but is not a directory")]
    RootNotDirectory { path: String },
    #[error("more than {limit} entries in one layer")]
    TooManyEntries { limit: u64 },
    #[error("more than {limit} bytes of files in one layer (entry {path:?})")]
    TooLarge { limit: u64, path: String },
    #[error("tar metadata (PAX or long-name records) of one entry exceeds {limit} bytes")]
    MetadataTooLarge { limit: u64 },
    #[error("entry {path:?} claims {expected} bytes but the stream ends after {got}")]
    Truncated { path: String, expected: u64, got: u64 },
    #[error("more than {limit} bytes after the end of the tar archive")]
    TrailingData { limit: u64 },
    #[error("malformed tar stream: {0}")]
    Tar(String),
    #[error("{format} stream is corrupt or truncated: {reason}")]
    Decompress { format: &'static str, reason: String },
    #[error("layer stream failed: {0}")]
    Stream(String),
    #[error("unsupported layer media type {0:?}")]
    MediaType(String),
    #[error("cannot {op} {path:?}: {source}")]
    Io { op: &'static str, path: String, source: io::Error },
}

/// Bytes of PAX / GNU long-name records (plus header blocks and padding) allowed before one entry.
pub const MAX_ENTRY_METADATA: u64 = 1 << 20;
/// Bytes allowed after the tar end-of-archive marker (padding to a record size; GNU tar pads to 10 KiB).
pub const MAX_TRAILING_BYTES: u64 = 16 << 20;
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const COPY_BUFFER: usize = 256 * 1024;

/// Unpacks an uncompressed tar stream into `target` (created if missing; it should be empty). Blocking.
pub fn unpack_layer(reader: impl Read, target: &Path, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
    unpack_stream(reader, Compression::None, target, limits, false)
}

/// Unpacks a layer blob of the given OCI or Docker layer media type (tar, tar+gzip, tar+zstd) into
/// `target`; also hashes the compressed stream. Blocking.
pub fn unpack_compressed_layer(
    reader: impl Read,
    media_type: &str,
    target: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let compression = match super::media::layer_kind(media_type) {
        super::media::LayerKind::Tar(c) => c,
        _ => return Err(UnpackError::MediaType(media_type.to_string())),
    };
    unpack_stream(reader, compression, target, limits, true)
}

/// The whole pipeline on the calling thread: [hash compressed] → decompress → hash (diff_id) → tar → files.
pub(crate) fn unpack_stream(
    reader: impl Read,
    compression: Compression,
    target: &Path,
    limits: &UnpackLimits,
    hash_compressed: bool,
) -> Result<UnpackStats, UnpackError> {
    let compressed = Rc::new(RefCell::new(HashState::default()));
    let input = HashingReader { inner: reader, state: hash_compressed.then(|| compressed.clone()) };
    let mut stats = match compression {
        Compression::None => extract(input, target, limits)?,
        Compression::Gzip => {
            extract(Decoded { inner: flate2::read::MultiGzDecoder::new(input), format: "gzip" }, target, limits)?
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(input)
                .map_err(|e| UnpackError::Decompress { format: "zstd", reason: e.to_string() })?;
            extract(Decoded { inner: decoder, format: "zstd" }, target, limits)?
        }
    };
    if hash_compressed {
        let state = compressed.borrow();
        stats.compressed_digest = Some(state.digest());
        stats.compressed_size = Some(state.bytes);
    }
    Ok(stats)
}

fn extract(decoded: impl Read, target: &Path, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
    match std::fs::create_dir(target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", target.display().to_string(), e)),
    }
    let root =
        rfs::open(target, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| io_err("open", target.display().to_string(), e.into()))?;
    let diff = Rc::new(RefCell::new(HashState::default()));
    let budget = Rc::new(Cell::new(u64::MAX));
    let hashed = HashingReader { inner: decoded, state: Some(diff.clone()) };
    let mut archive = tar::Archive::new(Budgeted { inner: hashed, remaining: budget.clone() });
    let mut x = Extractor::new(root, limits.clone());
    {
        let mut entries = archive.entries().map_err(classify)?;
        loop {
            budget.set(MAX_ENTRY_METADATA);
            let next = entries.next();
            budget.set(u64::MAX);
            let Some(entry) = next else { break };
            let mut entry = entry.map_err(classify)?;
            x.entry(&mut entry)?;
        }
    }
    x.finish();
    // The diff_id covers the whole uncompressed stream, including what follows the end-of-archive marker.
    let mut rest = archive.into_inner();
    rest.remaining.set(MAX_TRAILING_BYTES + 1);
    let drained = io::copy(&mut rest, &mut io::sink());
    match drained {
        Ok(_) => {}
        Err(e) if is_budget_error(&e) => return Err(UnpackError::TrailingData { limit: MAX_TRAILING_BYTES }),
        Err(e) => return Err(classify(e)),
    }
    let mut stats = x.stats;
    stats.diff_id = diff.borrow().digest();
    Ok(stats)
}

// -------------------------------------------------------------------------------------------------------
// readers

#[derive(Default)]
struct HashState {
    hasher: Sha256,
    bytes: u64,
}

impl HashState {
    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

/// Hashes and counts what passes through.
struct HashingReader<R> {
    inner: R,
    state: Option<Rc<RefCell<HashState>>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(state) = &self.state {
            let mut s = state.borrow_mut();
            s.hasher.update(&buf[..n]);
            s.bytes += n as u64;
        }
        Ok(n)
    }
}

/// Tags a decompressor's errors so they are reported as such and not as tar errors.
struct Decoded<D> {
    inner: D,
    format: &'static str,
}

#[derive(Debug)]
struct DecompressFailure {
    format: &'static str,
    reason: String,
}
impl std::fmt::Display for DecompressFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} stream: {}", self.format, self.reason)
    }
}
impl std::error::Error for DecompressFailure {}

impl<D: Read> Read for Decoded<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            // A failure of the input itself (the network) passes through as is.
            if e.get_ref().is_some_and(|inner| inner.is::<StreamFailure>()) {
                return e;
            }
            let reason = if e.kind() == io::ErrorKind::UnexpectedEof {
                "unexpected end of stream".into()
            } else {
                e.to_string()
            };
            io::Error::new(e.kind(), DecompressFailure { format: self.format, reason })
        })
    }
}

/// An input stream that failed (a download cut off, a registry error): what [`crate::images`]' pipeline
/// feeds to the extractor as an `io::Error` payload.
#[derive(Debug)]
pub(crate) struct StreamFailure(pub String);
impl std::fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for StreamFailure {}

/// Caps the bytes the tar reader may consume while looking for the next entry (skipping padding, reading
/// PAX and GNU long-name records, which the `tar` crate would otherwise buffer whole in memory).
struct Budgeted<R> {
    inner: R,
    remaining: Rc<Cell<u64>>,
}

#[derive(Debug)]
struct BudgetExceeded;
impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tar metadata budget exceeded")
    }
}
impl std::error::Error for BudgetExceeded {}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.remaining.get();
        if remaining == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, BudgetExceeded));
        }
        let max = buf.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining.set(remaining - n as u64);
        Ok(n)
    }
}

fn find_payload<T: std::error::Error + 'static>(e: &io::Error) -> Option<&T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                cur = Some(inner as _);
                continue;
            }
        }
        cur = err.source();
    }
    None
}

fn is_budget_error(e: &io::Error) -> bool {
    find_payload::<BudgetExceeded>(e).is_some()
}

/// Maps an error that came out of the tar reader to what really failed.
fn classify(e: io::Error) -> UnpackError {
    if let Some(f) = find_payload::<StreamFailure>(&e) {
        return UnpackError::Stream(f.0.clone());
    }
    if let Some(d) = find_payload::<DecompressFailure>(&e) {
        return UnpackError::Decompress { format: d.format, reason: d.reason.clone() };
    }
    if is_budget_error(&e) {
        return UnpackError::MetadataTooLarge { limit: MAX_ENTRY_METADATA };
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return UnpackError::Tar("unexpected end of stream inside a header".into());
    }
    UnpackError::Tar(e.to_string())
}

fn io_err(op: &'static str, path: impl Into<String>, source: io::Error) -> UnpackError {
    UnpackError::Io { op, path: path.into(), source }
}

// -------------------------------------------------------------------------------------------------------
// names

/// What a path in a layer is, split into components: `.` and empty components dropped, `..` and absolute
/// names refused. An empty result names the layer root (`./`).
pub(crate) fn entry_components(raw: &[u8]) -> Result<Vec<&[u8]>, NameProblem> {
    if raw.first() == Some(&b'/') {
        return Err(NameProblem::Absolute);
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(NameProblem::Escapes),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    Absolute,
    Escapes,
}

impl NameProblem {
    fn error(self, path: String) -> UnpackError {
        match self {
            NameProblem::Absolute => UnpackError::Absolute { path },
            NameProblem::Escapes => UnpackError::Escapes { path },
        }
    }
}

/// What a base name means under the whiteout rules.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary name.
    No,
    /// `.wh..wh..opq`: the directory hides everything lower layers put in it.
    Opaque,
    /// `.wh.NAME`: NAME of the lower layers is deleted.
    Remove(&'a [u8]),
    /// Other `.wh..wh.` names (AUFS bookkeeping such as `.wh..wh.plnk`): ignored, as Docker does.
    AufsMeta,
    /// `.wh.`, `.wh..`, `.wh...`: names nothing or escapes.
    Invalid,
}

pub(crate) fn whiteout_kind(name: &[u8]) -> Whiteout<'_> {
    if name == b".wh..wh..opq" {
        return Whiteout::Opaque;
    }
    if name.starts_with(b".wh..wh.") {
        return Whiteout::AufsMeta;
    }
    match name.strip_prefix(b".wh.") {
        None => Whiteout::No,
        Some(b"" | b"." | b"..") => Whiteout::Invalid,
        Some(rest) => Whiteout::Remove(rest),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// -------------------------------------------------------------------------------------------------------
// the extractor

/// Set once openat2 turned out to be unavailable (old kernel, seccomp): resolve component by component.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

struct Extractor {
    root: Rc<OwnedFd>,
    limits: UnpackLimits,
    stats: UnpackStats,
    /// The last parent directory opened, by its joined path: tars list a directory's entries together.
    parent_cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Directory times, applied once every entry is written (writing into a directory changes its mtime).
    dir_times: Vec<(Vec<u8>, Timestamps)>,
    buf: Vec<u8>,
}

/// Metadata of one entry, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Extractor {
    fn new(root: OwnedFd, limits: UnpackLimits) -> Extractor {
        Extractor {
            root: Rc::new(root),
            limits,
            stats: UnpackStats::default(),
            parent_cache: None,
            dir_times: Vec::new(),
            buf: vec![0; COPY_BUFFER],
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries { limit: self.limits.max_entries });
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let path = lossy(&raw_path);
        let comps = entry_components(&raw_path).map_err(|p| p.error(path.clone()))?;
        let meta = read_meta(entry, &path)?;

        let Some((name, parent)) = comps.split_last() else {
            if !kind.is_dir() {
                return Err(UnpackError::RootNotDirectory { path });
            }
            let root = self.root.clone();
            self.apply_meta(&root, &meta, &path, true)?;
            self.dir_times.push((Vec::new(), times(meta.mtime)));
            return Ok(());
        };
        let name: &[u8] = name;
        match whiteout_kind(name) {
            Whiteout::No => {}
            Whiteout::AufsMeta => return Ok(()),
            Whiteout::Invalid => return Err(UnpackError::BadWhiteout { path }),
            Whiteout::Opaque => {
                let dir = self.dir(parent, &path)?;
                set_opaque(&dir).map_err(|e| io_err("mark opaque", path.clone(), e))?;
                self.stats.whiteouts += 1;
                return Ok(());
            }
            Whiteout::Remove(target) => {
                let dir = self.dir(parent, &path)?;
                self.whiteout(&dir, target, &path)?;
                self.stats.whiteouts += 1;
                return Ok(());
            }
        }
        let dir = self.dir(parent, &path)?;
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => self.file(entry, &dir, name, &meta, &path),
            T::Directory => self.directory(&dir, name, &comps, &meta, &path),
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::Tar(format!("symlink {path:?} has no target")))?;
                self.symlink(&dir, name, &target, &meta, &path)
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::Tar(format!("hardlink {path:?} has no target")))?
                    .into_owned();
                self.hardlink(&dir, name, &comps, &target, &path)
            }
            T::Fifo => self.fifo(&dir, name, &meta, &path),
            T::Char => Err(UnpackError::DeviceNode { path, kind: "character device" }),
            T::Block => Err(UnpackError::DeviceNode { path, kind: "block device" }),
            other => Err(UnpackError::UnsupportedEntry { path, kind: format!("{:?}", other.as_byte() as char) }),
        }
    }

    /// Opens the directory `comps` (creating missing ones, mode 0755, owned by root, as Docker does),
    /// never through a symlink.
    fn dir(&mut self, comps: &[&[u8]], path: &str) -> Result<Rc<OwnedFd>, UnpackError> {
        if comps.is_empty() {
            return Ok(self.root.clone());
        }
        let key = comps.join(&b'/');
        if let Some((k, fd)) = &self.parent_cache {
            if *k == key {
                return Ok(fd.clone());
            }
        }
        let fd = match self.open_dir_fast(&key) {
            Some(Ok(fd)) => fd,
            // Missing, or openat2 unavailable, or something in the way: walk, creating, and say what is wrong.
            _ => self.walk(comps, path, true)?,
        };
        let fd = Rc::new(fd);
        self.parent_cache = Some((key, fd.clone()));
        Ok(fd)
    }

    fn open_dir_fast(&self, joined: &[u8]) -> Option<rustix::io::Result<OwnedFd>> {
        if NO_OPENAT2.load(Ordering::Relaxed) {
            return None;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let resolve =
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
        for _ in 0..4 {
            match rfs::openat2(&*self.root, joined, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) | Err(Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    return None;
                }
                r => return Some(r),
            }
        }
        None
    }

    /// One component at a time with `O_NOFOLLOW | O_DIRECTORY`, creating what is missing when asked.
    fn walk(&self, comps: &[&[u8]], path: &str, create: bool) -> Result<OwnedFd, UnpackError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut cur: Option<OwnedFd> = None;
        for c in comps {
            let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(self.root.as_fd());
            let opened = match rfs::openat(at, *c, flags, Mode::empty()) {
                Err(Errno::NOENT) if create => match rfs::mkdirat(at, *c, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => rfs::openat(at, *c, flags, Mode::empty()),
                    Err(e) => Err(e),
                },
                r => r,
            };
            let fd = match opened {
                Ok(fd) => fd,
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let is_link = rfs::statat(at, *c, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                    return Err(if is_link {
                        UnpackError::ThroughSymlink { path: path.to_string() }
                    } else {
                        UnpackError::ThroughNonDirectory { path: path.to_string() }
                    });
                }
                Err(e) => return Err(io_err("open the parent directory of", path, e.into())),
            };
            cur = Some(fd);
        }
        match cur {
            Some(fd) => Ok(fd),
            None => rustix::io::fcntl_dupfd_cloexec(&*self.root, 0).map_err(|e| io_err("open", path, e.into())),
        }
    }

    /// Makes room for a new entry `name`: removes what is there (a whole directory tree included).
    /// Returns what was there.
    fn clear(&mut self, dir: &OwnedFd, name: &[u8], path: &str) -> Result<Option<Existing>, UnpackError> {
        let existing = existing(dir, name).map_err(|e| io_err("inspect", path, e.into()))?;
        match existing {
            None => {}
            Some(Existing::Dir) => {
                self.parent_cache = None;
                super::remove::remove_tree_at(dir, name).map_err(|e| io_err("replace", path, e.into()))?;
            }
            Some(_) => {
                rfs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| io_err("replace", path, e.into()))?;
            }
        }
        Ok(existing)
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        path: &str,
    ) -> Result<(), UnpackError> {
        let size = entry.size();
        let total = self.stats.bytes.saturating_add(size);
        if total > self.limits.max_bytes {
            return Err(UnpackError::TooLarge { limit: self.limits.max_bytes, path: path.to_string() });
        }
        self.clear(dir, name, path)?;
        let fd = rfs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err("create", path, e.into()))?;
        let mut file = std::fs::File::from(fd);
        let mut got: u64 = 0;
        while got < size {
            let want = (size - got).min(self.buf.len() as u64) as usize;
            let n = match entry.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let err = classify(e);
                    return Err(match err {
                        UnpackError::Tar(_) => UnpackError::Truncated { path: path.to_string(), expected: size, got },
                        other => other,
                    });
                }
            };
            file.write_all(&self.buf[..n]).map_err(|e| io_err("write", path, e))?;
            got += n as u64;
        }
        if got != size {
            return Err(UnpackError::Truncated { path: path.to_string(), expected: size, got });
        }
        self.stats.bytes = total;
        let fd = OwnedFd::from(file);
        self.apply_meta(&fd, meta, path, false)?;
        rfs::futimens(&fd, &times(meta.mtime)).map_err(|e| io_err("set the times of", path, e.into()))?;
        Ok(())
    }

    fn directory(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        comps: &[&[u8]],
        meta: &Meta,
        path: &str,
    ) -> Result<(), UnpackError> {
        let existing = existing(dir, name).map_err(|e| io_err("inspect", path, e.into()))?;
        let mut opaque = false;
        match existing {
            Some(Existing::Dir) => {}
            None => {}
            Some(other) => {
                // A directory replacing this layer's whiteout of the same name replaces the lower one wholly.
                opaque = other == Existing::Whiteout;
                rfs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| io_err("replace", path, e.into()))?;
            }
        }
        if existing != Some(Existing::Dir) {
            match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io_err("create", path, e.into())),
            }
        }
        let fd = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open", path, e.into()))?;
        self.apply_meta(&fd, meta, path, true)?;
        if opaque {
            set_opaque(&fd).map_err(|e| io_err("mark opaque", path, e))?;
        }
        self.dir_times.push((comps.join(&b'/'), times(meta.mtime)));
        Ok(())
    }

    fn symlink(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        target: &[u8],
        meta: &Meta,
        path: &str,
    ) -> Result<(), UnpackError> {
        self.clear(dir, name, path)?;
        rfs::symlinkat(target, dir, name).map_err(|e| io_err("create the symlink", path, e.into()))?;
        rfs::chownat(dir, name, Some(uid(meta.uid)), Some(gid(meta.gid)), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("chown", path, e.into()))?;
        rfs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("set the times of", path, e.into()))?;
        Ok(())
    }

    fn hardlink(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        comps: &[&[u8]],
        target: &[u8],
        path: &str,
    ) -> Result<(), UnpackError> {
        let target_s = lossy(target);
        let fail = |reason: &str| UnpackError::Hardlink {
            path: path.to_string(),
            target: target_s.clone(),
            reason: reason.into(),
        };
        let tcomps = entry_components(target).map_err(|p| match p {
            NameProblem::Absolute => fail("the target is an absolute path"),
            NameProblem::Escapes => fail("the target escapes the root"),
        })?;
        let Some((tname, tparent)) = tcomps.split_last() else { return Err(fail("the target is the root")) };
        if tcomps == comps {
            return Err(fail("the link names itself"));
        }
        let tdir = match self.walk(tparent, path, false) {
            Ok(fd) => fd,
            Err(UnpackError::ThroughSymlink { .. }) => return Err(fail("the target goes through a symlink")),
            Err(UnpackError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(fail("the target is not in this layer"))
            }
            Err(e) => return Err(e),
        };
        match existing(&tdir, tname) {
            Ok(None) => return Err(fail("the target is not in this layer")),
            Ok(Some(Existing::Dir)) => return Err(fail("the target is a directory")),
            Ok(Some(_)) => {}
            Err(e) => return Err(io_err("inspect", target_s.clone(), e.into())),
        }
        self.clear(dir, name, path)?;
        rfs::linkat(&tdir, *tname, dir, name, AtFlags::empty())
            .map_err(|e| io_err("create the hardlink", path, e.into()))?;
        Ok(())
    }

    fn fifo(&mut self, dir: &OwnedFd, name: &[u8], meta: &Meta, path: &str) -> Result<(), UnpackError> {
        self.clear(dir, name, path)?;
        rfs::mknodat(dir, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| io_err("create the fifo", path, e.into()))?;
        // Opening a fifo would block; it was just created in a directory only this extractor writes, so
        // chmodat (which cannot refuse symlinks before fchmodat2) reaches the fifo itself.
        rfs::chownat(dir, name, Some(uid(meta.uid)), Some(gid(meta.gid)), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("chown", path, e.into()))?;
        rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(|e| io_err("chmod", path, e.into()))?;
        rfs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("set the times of", path, e.into()))?;
        Ok(())
    }

    /// `.wh.NAME`: a 0/0 character device for overlayfs, unless this layer wrote NAME itself.
    fn whiteout(&mut self, dir: &OwnedFd, name: &[u8], path: &str) -> Result<(), UnpackError> {
        match existing(dir, name).map_err(|e| io_err("inspect", path, e.into()))? {
            None => rfs::mknodat(dir, name, FileType::CharacterDevice, Mode::empty(), rfs::makedev(0, 0))
                .map_err(|e| io_err("create the whiteout", path, e.into())),
            Some(Existing::Dir) => {
                let fd = rfs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err("open", path, e.into()))?;
                set_opaque(&fd).map_err(|e| io_err("mark opaque", path, e))
            }
            Some(_) => Ok(()),
        }
    }

    /// Owner, mode (after chown, which clears setuid bits) and safe xattrs (after chown, which clears
    /// file capabilities), all through the entry's own descriptor.
    fn apply_meta(&self, fd: &OwnedFd, meta: &Meta, path: &str, is_dir: bool) -> Result<(), UnpackError> {
        rfs::fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid))).map_err(|e| io_err("chown", path, e.into()))?;
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| io_err("chmod", path, e.into()))?;
        for (name, value) in &meta.xattrs {
            if is_dir && name == "security.capability" {
                continue;
            }
            match rfs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                // A filesystem without user xattrs, or a capability blob the kernel rejects: not fatal.
                Err(Errno::OPNOTSUPP | Errno::INVAL | Errno::PERM) => {
                    tracing::debug!(path, xattr = %name, "xattr not applied");
                }
                Err(e) => return Err(io_err("set an xattr on", path, e.into())),
            }
        }
        Ok(())
    }

    /// Directory times last (children change them), deepest first; errors ignored (a later entry may have
    /// replaced the directory).
    fn finish(&mut self) {
        self.parent_cache = None;
        let entries = std::mem::take(&mut self.dir_times);
        for (joined, ts) in entries.iter().rev() {
            let fd = if joined.is_empty() {
                Ok(self.root.clone())
            } else {
                let comps: Vec<&[u8]> = joined.split(|&b| b == b'/').collect();
                self.walk(&comps, "", false).map(Rc::new)
            };
            if let Ok(fd) = fd {
                let _ = rfs::futimens(&*fd, ts);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Dir,
    Whiteout,
    Other,
}

fn existing(dir: &OwnedFd, name: &[u8]) -> rustix::io::Result<Option<Existing>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Existing::Dir,
            FileType::CharacterDevice if st.st_rdev == 0 => Existing::Whiteout,
            _ => Existing::Other,
        })),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn set_opaque(fd: &OwnedFd) -> io::Result<()> {
    rfs::fsetxattr(fd, OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(io::Error::from)
}

fn uid(u: u32) -> rfs::Uid {
    rfs::Uid::from_raw(u)
}
fn gid(g: u32) -> rfs::Gid {
    rfs::Gid::from_raw(g)
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps { last_access: mtime, last_modification: mtime }
}

/// Mode, owner, mtime (PAX `mtime` with its fraction wins over the header's) and the xattrs worth keeping.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta, UnpackError> {
    let header = entry.header();
    let old = header.as_old();
    // An empty numeric field (all NUL or spaces) reads as 0, as Go's archive/tar (Docker's) reads it.
    let num = |what: &str, r: io::Result<u64>, raw: &[u8]| -> Result<u64, UnpackError> {
        match r {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(e) => Err(UnpackError::Tar(format!("entry {path:?} has an invalid {what}: {e}"))),
        }
    };
    let beyond = |what: &str| UnpackError::Tar(format!("entry {path:?} has a {what} beyond 32 bits"));
    let mode = (num("mode", header.mode().map(u64::from), &old.mode)? & 0o7777) as u32;
    let uid = u32::try_from(num("uid", header.uid(), &old.uid)?).map_err(|_| beyond("uid"))?;
    let gid = u32::try_from(num("gid", header.gid(), &old.gid)?).map_err(|_| beyond("gid"))?;
    let mtime = num("mtime", header.mtime(), &old.mtime)?;
    let mut mtime = Timespec { tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX), tv_nsec: 0 };
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(classify)? {
        for ext in exts {
            let ext = ext.map_err(classify)?;
            let Ok(key) = ext.key() else { continue };
            if key == "mtime" {
                if let Some(t) = std::str::from_utf8(ext.value_bytes()).ok().and_then(parse_pax_time) {
                    mtime = t;
                }
            } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if name.starts_with("user.") || name == "security.capability" {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(Meta { mode, uid, gid, mtime, xattrs })
}

/// A PAX time: decimal seconds with an optional fraction (`1700000000.123456789`, `-1.5`).
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    let digits: Vec<u8> = frac.bytes().take(9).collect();
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    for i in 0..9 {
        nanos = nanos * 10 + digits.get(i).map(|d| i64::from(d - b'0')).unwrap_or(0);
    }
    Some(if neg {
        if nanos == 0 {
            Timespec { tv_sec: -secs, tv_nsec: 0 }
        } else {
            Timespec { tv_sec: -secs - 1, tv_nsec: (1_000_000_000 - nanos) as _ }
        }
    } else {
        Timespec { tv_sec: secs, tv_nsec: nanos as _ }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok: &[(&str, &[&str])] = &[
            ("a/b/c", &["a", "b", "c"]),
            ("./a//b/", &["a", "b"]),
            ("./", &[]),
            (".", &[]),
            ("a/./b", &["a", "b"]),
            ("..a/b..", &["..a", "b.."]),
        ];
        for (raw, want) in ok {
            let got: Vec<&[u8]> = entry_components(raw.as_bytes()).unwrap();
            let want: Vec<&[u8]> = want.iter().map(|s| s.as_bytes()).collect();
            assert_eq!(got, want, "{raw}");
        }
        for (raw, want) in [
            ("/etc/passwd", NameProblem::Absolute),
            ("//x", NameProblem::Absolute),
            ("../x", NameProblem::Escapes),
            ("a/../../x", NameProblem::Escapes),
            ("a/..", NameProblem::Escapes),
        ] {
            assert_eq!(entry_components(raw.as_bytes()), Err(want), "{raw}");
        }
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(whiteout_kind(b"file"), Whiteout::No);
        assert_eq!(whiteout_kind(b".whatever"), Whiteout::No);
        assert_eq!(whiteout_kind(b".wh.file"), Whiteout::Remove(b"file"));
        assert_eq!(whiteout_kind(b".wh..hidden"), Whiteout::Remove(b".hidden"));
        assert_eq!(whiteout_kind(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(whiteout_kind(b".wh..wh.plnk"), Whiteout::AufsMeta);
        assert_eq!(whiteout_kind(b".wh."), Whiteout::Invalid);
        assert_eq!(whiteout_kind(b".wh.."), Whiteout::Invalid);
        assert_eq!(whiteout_kind(b".wh..."), Whiteout::Invalid);
    }

    fn one_file_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let data = vec![7u8; 300_000];
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "f", &data[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn truncated_compressed_streams_fail_as_such() {
        use std::io::Write as _;
        let tar = one_file_tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        for (mt, blob, format) in [
            ("application/vnd.oci.image.layer.v1.tar+gzip", gz, "gzip"),
            ("application/vnd.oci.image.layer.v1.tar+zstd", zst, "zstd"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let whole =
                unpack_compressed_layer(&blob[..], mt, &dir.path().join("ok"), &UnpackLimits::default()).unwrap();
            assert_eq!(whole.diff_id, format!("sha256:{}", hex::encode(Sha256::digest(&tar))));
            assert_eq!(whole.compressed_size, Some(blob.len() as u64));
            let cut = &blob[..blob.len() - 10];
            match unpack_compressed_layer(cut, mt, &dir.path().join("cut"), &UnpackLimits::default()) {
                Err(UnpackError::Decompress { format: f, .. }) => assert_eq!(f, format),
                other => panic!("{format}: truncated stream gave {other:?}"),
            }
        }
        let e = unpack_compressed_layer(
            &b""[..],
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            Path::new("/nonexistent"),
            &UnpackLimits::default(),
        );
        assert!(matches!(e, Err(UnpackError::MediaType(_))));
    }

    #[test]
    fn caps() {
        let tar = one_file_tar();
        let dir = tempfile::tempdir().unwrap();
        let small = UnpackLimits { max_entries: 10, max_bytes: 1000 };
        let e = unpack_layer(&tar[..], &dir.path().join("a"), &small).unwrap_err();
        assert_eq!(e.to_string(), "more than 1000 bytes of files in one layer (entry \"f\")");
        let one = UnpackLimits { max_entries: 0, max_bytes: 1 << 30 };
        let e = unpack_layer(&tar[..], &dir.path().join("b"), &one).unwrap_err();
        assert_eq!(e.to_string(), "more than 0 entries in one layer");
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("1700000000"), Some(Timespec { tv_sec: 1_700_000_000, tv_nsec: 0 }));
        assert_eq!(parse_pax_time("1.5"), Some(Timespec { tv_sec: 1, tv_nsec: 500_000_000 }));
        assert_eq!(parse_pax_time("1.123456789123"), Some(Timespec { tv_sec: 1, tv_nsec: 123_456_789 }));
        assert_eq!(parse_pax_time("-1.5"), Some(Timespec { tv_sec: -2, tv_nsec: 500_000_000 }));
        assert_eq!(parse_pax_time("x"), None);
        assert_eq!(parse_pax_time("1.x"), None);
    }
}
