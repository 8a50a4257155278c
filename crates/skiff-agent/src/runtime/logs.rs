//! Container logs as conmon writes them: the Kubernetes CRI "k8s-file" format, one record per line,
//! `<RFC 3339 nano timestamp> <stdout|stderr> <P|F> <text>` (`P` = partial: the line continues in the next
//! record). conmon fsyncs the file when the container exits and rotates it (starts a new, empty file) when it
//! would pass `--log-size-max`, so a reader follows by inode and offset.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// RFC 3339 with nanoseconds, as conmon wrote it (`2026-11-28T09:15:00.123456789+00:00`).
    pub timestamp: String,
    pub stream: LogStream,
    pub line: String,
}

/// Parse one k8s-file record: (timestamp, stream, partial, text).
pub fn parse_record(record: &str) -> Option<(&str, LogStream, bool, &str)> {
    let mut parts = record.splitn(4, ' ');
    let ts = parts.next()?;
    let stream = match parts.next()? {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        "P" => true,
        "F" => false,
        _ => return None,
    };
    Some((ts, stream, partial, parts.next().unwrap_or("")))
}

/// Reads a container's log from the start, then follows it.
pub struct LogReader {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
    buf: Vec<u8>,
    partial: HashMap<LogStream, String>,
    last_ts: String,
}

impl LogReader {
    /// A reader at the beginning of the log at `path` (which may not exist yet).
    pub fn open(path: impl AsRef<Path>) -> LogReader {
        LogReader {
            path: path.as_ref().to_path_buf(),
            file: None,
            inode: 0,
            offset: 0,
            buf: vec![],
            partial: HashMap::new(),
            last_ts: String::new(),
        }
    }

    /// Every complete line written since the last call (empty when none).
    pub fn read_available(&mut self) -> io::Result<Vec<LogEntry>> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        if self.file.is_none() || meta.ino() != self.inode || meta.len() < self.offset {
            // First open, or rotated: what the old file still held after our offset is gone with it.
            self.file = Some(File::open(&self.path)?);
            self.inode = meta.ino();
            self.offset = 0;
            self.buf.clear();
        }
        let Some(f) = self.file.as_mut() else { return Ok(vec![]) };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut chunk = Vec::new();
        let n = f.take(8 << 20).read_to_end(&mut chunk)?;
        self.offset += n as u64;
        self.buf.extend_from_slice(&chunk);
        let mut out = vec![];
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let rec: Vec<u8> = self.buf.drain(..=pos).collect();
            let rec = String::from_utf8_lossy(&rec[..rec.len() - 1]).into_owned();
            if let Some((ts, stream, partial, text)) = parse_record(&rec) {
                self.last_ts = ts.to_string();
                let acc = self.partial.entry(stream).or_default();
                acc.push_str(text);
                if !partial {
                    out.push(LogEntry { timestamp: ts.to_string(), stream, line: std::mem::take(acc) });
                }
            }
        }
        Ok(out)
    }

    /// Like [`LogReader::read_available`], then also the unterminated last line of each stream (conmon
    /// records output without a final newline as partial): for a container that has exited.
    pub fn read_to_end(&mut self) -> io::Result<Vec<LogEntry>> {
        let mut out = self.read_available()?;
        let mut rest: Vec<(LogStream, String)> =
            self.partial.iter_mut().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, std::mem::take(v))).collect();
        rest.sort_by_key(|(k, _)| *k == LogStream::Stderr);
        out.extend(rest.into_iter().map(|(stream, line)| LogEntry { timestamp: self.last_ts.clone(), stream, line }));
        Ok(out)
    }

    /// Wait (polling every `interval`) until at least one new line is there, tail -f style.
    pub async fn follow(&mut self, interval: Duration) -> io::Result<Vec<LogEntry>> {
        loop {
            let got = self.read_available()?;
            if !got.is_empty() {
                return Ok(got);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins_partials() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("c.log");
        std::fs::write(
            &p,
            "2026-01-01T00:00:00.000000001+00:00 stdout F hello\n\
             2026-01-01T00:00:00.000000002+00:00 stderr P par\n\
             2026-01-01T00:00:00.000000003+00:00 stdout F \n\
             2026-01-01T00:00:00.000000004+00:00 stderr F tial\n\
             2026-01-01T00:00:00.000000005+00:00 stdout F inc",
        )
        .expect("write");
        let mut r = LogReader::open(&p);
        let got = r.read_available().expect("read");
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            LogEntry {
                timestamp: "2026-01-01T00:00:00.000000001+00:00".into(),
                stream: LogStream::Stdout,
                line: "hello".into()
            }
        );
        assert_eq!(got[1].line, "");
        assert_eq!((got[2].stream, got[2].line.as_str()), (LogStream::Stderr, "partial"));
        // The incomplete record completes later.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).expect("open");
        std::io::Write::write_all(&mut f, b"omplete\n").expect("append");
        let got = r.read_available().expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, "incomplete");
        // Rotation: a new file starts over.
        std::fs::remove_file(&p).expect("rm");
        std::fs::write(&p, "2026-01-01T00:00:01.000000000+00:00 stdout F after\n").expect("write");
        assert_eq!(r.read_available().expect("read")[0].line, "after");
        assert!(parse_record("garbage").is_none());
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).expect("open");
        std::io::Write::write_all(&mut f, b"2026-01-01T00:00:02.000000000+00:00 stdout P tail\n").expect("append");
        assert!(r.read_available().expect("read").is_empty());
        let end = r.read_to_end().expect("end");
        assert_eq!((end[0].line.as_str(), end[0].timestamp.as_str()), ("tail", "2026-01-01T00:00:02.000000000+00:00"));
    }
}
