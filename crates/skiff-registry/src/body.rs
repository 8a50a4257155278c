//! Request bodies: small ones (manifests) read into memory under a limit, large ones (blobs) streamed to a
//! file by a blocking writer that hashes as it writes, so the network read, the hash and the disk write
//! overlap and no blob is ever held in memory.

use crate::digest::Hasher;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use std::io::{self, Seek as _, Write as _};
use std::path::PathBuf;

/// Bytes buffered before a `write(2)`.
const WRITE_BUFFER: usize = 1 << 20;
/// Frames are handed to the writer in batches of about this many bytes (a frame is often only 8–32 KiB;
/// waking the writer for each would cost more than the copy).
const BATCH: usize = 512 * 1024;
/// Batches queued between the network reader and the writer.
const QUEUE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client's body failed (connection dropped, malformed chunking, …).
    #[error("reading the request body failed: {0}")]
    Client(String),
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    /// Writing the body to disk failed.
    #[error("{0}")]
    Io(io::Error),
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Client(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// What a completed write appended.
pub struct Appended {
    pub hasher: Option<Hasher>,
    pub len: u64,
}

enum Chunk {
    Data(Vec<Bytes>),
    /// The body ended normally; anything else (the sender dropped) aborts the write.
    End,
}

/// Streams `body` into the existing file `path` at `offset` (truncating anything beyond it first), feeding
/// `hasher` on the way. If the body fails or the write is dropped midway, the file is cut back to `offset`,
/// so a failed append leaves the file as it was.
pub async fn append_to_file<B>(
    body: B,
    path: PathBuf,
    offset: u64,
    hasher: Option<Hasher>,
) -> Result<Appended, BodyError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(QUEUE);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<Option<Appended>> {
        let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
        // Bytes past the offset are the remains of a failed append: cut them off (only then, since a
        // truncation also makes ext4 flush the file on close).
        if file.metadata()?.len() != offset {
            file.set_len(offset)?;
        }
        file.seek(io::SeekFrom::Start(offset))?;
        let mut hasher = hasher;
        let mut len = 0u64;
        let mut out = io::BufWriter::with_capacity(WRITE_BUFFER, &mut file);
        let completed = loop {
            match rx.blocking_recv() {
                Some(Chunk::Data(batch)) => {
                    for data in batch {
                        if let Some(h) = hasher.as_mut() {
                            h.update(&data);
                        }
                        out.write_all(&data)?;
                        len += data.len() as u64;
                    }
                }
                Some(Chunk::End) => break true,
                None => break false,
            }
        };
        if completed {
            out.flush()?;
            drop(out);
            Ok(Some(Appended { hasher, len }))
        } else {
            // Discard what the buffer holds and cut the file back: the append never happened.
            let (_, _) = out.into_parts();
            file.set_len(offset)?;
            Ok(None)
        }
    });

    let mut body = std::pin::pin!(body);
    let mut client_error = None;
    let mut batch = Vec::new();
    let mut batched = 0;
    let mut writer_gone = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    batched += data.len();
                    batch.push(data);
                    if batched >= BATCH {
                        batched = 0;
                        // A send fails only when the writer stopped on an I/O error, reported below.
                        if tx.send(Chunk::Data(std::mem::take(&mut batch))).await.is_err() {
                            writer_gone = true;
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                client_error = Some(e.to_string());
                break;
            }
        }
    }
    if client_error.is_none() && !writer_gone {
        if !batch.is_empty() {
            let _ = tx.send(Chunk::Data(batch)).await;
        }
        let _ = tx.send(Chunk::End).await;
    }
    drop(tx);
    let written = writer.await.map_err(|e| BodyError::Io(io::Error::other(e)))?.map_err(BodyError::Io)?;
    match (client_error, written) {
        (Some(e), _) => Err(BodyError::Client(e)),
        (None, Some(appended)) => Ok(appended),
        (None, None) => Err(BodyError::Io(io::Error::other("the blob writer stopped before the body ended"))),
    }
}
