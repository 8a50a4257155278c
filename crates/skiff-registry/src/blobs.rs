//! The content-addressed blob files: `ROOT/blobs/<algorithm>/<first two hex>/<hex>`. A file appears there
//! only by `rename` of a complete, fsynced file whose digest was checked, followed by an fsync of the
//! directory, so a blob file is always whole; records naming it are written only after that.

use crate::digest::{Algorithm, Digest};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Size of the reads that feed a blob download.
const READ_CHUNK: u64 = 256 * 1024;
/// Chunks read ahead of the socket per download.
const READ_AHEAD: usize = 4;

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

/// A blob file found by a directory walk.
#[derive(Debug)]
pub struct BlobFile {
    pub digest: Digest,
    pub path: PathBuf,
    pub len: u64,
    pub modified: std::time::SystemTime,
}

impl BlobStore {
    /// Creates the per-algorithm directories; the fan-out directories below them appear with their first
    /// blob.
    pub fn open(dir: PathBuf) -> io::Result<BlobStore> {
        let mut created = false;
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let alg_dir = dir.join(algorithm.name());
            if !alg_dir.is_dir() {
                std::fs::create_dir_all(&alg_dir)?;
                created = true;
            }
        }
        if created {
            sync_dir(&dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(BlobStore { dir })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir.join(digest.algorithm().name()).join(&hex[..2]).join(hex)
    }

    /// Moves the verified file at `src` into place as `digest` (blocking). If an identical blob is already
    /// there, `src` is removed instead. Returns whether a new file was placed.
    pub fn commit(&self, src: &Path, digest: &Digest) -> io::Result<bool> {
        let dst = self.path(digest);
        let src_len = std::fs::metadata(src)?.len();
        if std::fs::metadata(&dst).is_ok_and(|m| m.len() == src_len) {
            // Same digest, same length: the same bytes, already durable (every placed file was synced).
            std::fs::remove_file(src)?;
            return Ok(false);
        }
        std::fs::File::open(src)?.sync_all()?;
        let fan = dst.parent().ok_or_else(|| io::Error::other("blob path has no parent"))?;
        if !fan.is_dir() {
            match std::fs::create_dir(fan) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            if let Some(alg_dir) = fan.parent() {
                sync_dir(alg_dir)?;
            }
        }
        // Concurrent commits of the same digest rename identical files over each other: harmless.
        std::fs::rename(src, &dst)?;
        sync_dir(fan)?;
        Ok(true)
    }

    /// Writes `bytes` as the blob `digest` through a temporary file in `tmp_dir` (blocking).
    pub fn write_bytes(&self, tmp_dir: &Path, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let dst = self.path(digest);
        if std::fs::metadata(&dst).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        let tmp = tmp_dir.join(format!("manifest-{}", uuid::Uuid::new_v4()));
        let result = std::fs::write(&tmp, bytes).and_then(|()| self.commit(&tmp, digest));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|_| ())
    }

    /// The length of the blob file, or `None` when it is absent.
    pub async fn len(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn read(&self, digest: &Digest) -> io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(digest)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the blob for reading: the file and its length, or `None` when it is absent.
    pub async fn open_file(&self, digest: &Digest) -> io::Result<Option<(std::fs::File, u64)>> {
        let path = self.path(digest);
        tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
            Ok(file) => {
                let len = file.metadata()?.len();
                Ok(Some((file, len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Every blob file (blocking). Files whose names are not digests are skipped.
    pub fn list(&self) -> io::Result<Vec<BlobFile>> {
        let mut out = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let alg_dir = self.dir.join(algorithm.name());
            let fans = match std::fs::read_dir(&alg_dir) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for fan in fans {
                let fan = fan?;
                if !fan.file_type()?.is_dir() {
                    continue;
                }
                for entry in std::fs::read_dir(fan.path())? {
                    let entry = entry?;
                    let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
                    let Ok(digest) = Digest::parse(&format!("{}:{name}", algorithm.name())) else { continue };
                    let meta = match entry.metadata() {
                        Ok(m) => m,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    out.push(BlobFile { digest, path: entry.path(), len: meta.len(), modified: meta.modified()? });
                }
            }
        }
        Ok(out)
    }
}

/// fsyncs a directory, making the renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A response body streaming `len` bytes of a file from `offset`: a blocking reader fills 256 KiB chunks a
/// few chunks ahead of the socket, and stops when the client goes away.
pub struct FileBody {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl FileBody {
    pub fn new(file: std::fs::File, offset: u64, len: u64) -> FileBody {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        if len > 0 {
            tokio::task::spawn_blocking(move || {
                let mut pos = offset;
                let end = offset + len;
                while pos < end {
                    let n = (end - pos).min(READ_CHUNK) as usize;
                    // One read per chunk; zeroing 256 KiB costs less than the copy out of the page cache.
                    let mut buf = vec![0u8; n];
                    let chunk = file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf));
                    pos += n as u64;
                    let failed = chunk.is_err();
                    if tx.blocking_send(chunk).is_err() || failed {
                        return;
                    }
                }
            });
        }
        FileBody { rx, remaining: len }
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob reader stopped early"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
