//! What identifies the bytes of a stored file: its SHA-256 (recorded at
//! ingest, the content identity every product key is built from) and its
//! size and modification time (cheap to compare on every read, to notice
//! that a file was replaced or rewritten after ingest).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The SHA-256 (lower-case hex) and length of the file at `path`.
pub fn sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// A modification time as nanoseconds since 1970 (what the catalogue
/// stores); `None` when the file system has none.
pub fn mtime_ns(t: Option<SystemTime>) -> Option<i64> {
    let d = t?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// What ingest recorded about a file.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    /// Size in bytes.
    pub size: u64,
    /// Modification time (ns since 1970), when known.
    pub mtime_ns: Option<i64>,
    /// SHA-256, lower-case hex.
    pub checksum: &'a str,
}

/// How a file differs from what ingest recorded.
#[derive(Debug, thiserror::Error)]
pub enum Changed {
    /// Another size: truncated, extended or replaced.
    #[error("it is {found} bytes long where ingest recorded {recorded}")]
    Size {
        /// Bytes now.
        found: u64,
        /// Bytes at ingest.
        recorded: u64,
    },
    /// Same size, other bytes (rewritten in place).
    #[error("its content is not what was ingested (the SHA-256 differs)")]
    Content,
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A hash made of a file: (size, modification time, SHA-256) at the time.
type Hashed = (u64, Option<i64>, String);

/// Checks that files are still what ingest recorded, on every use, at the
/// cost of one `stat` while their size and modification time are the
/// recorded ones. When the time differs (a `touch`, a copy, a restore; or
/// a record from before times were recorded) the content is hashed once
/// and the answer remembered for that size and time, so a file is hashed
/// again only when it changes again.
///
/// Every product key and ETag is built from the recorded SHA-256, so
/// refusing a changed file is what keeps a cached product or a client's
/// `304 Not Modified` from outliving the pixels it was made of.
#[derive(Debug)]
pub struct FreshFiles {
    capacity: usize,
    /// path → the last hash made of it.
    hashed: Mutex<HashMap<PathBuf, Hashed>>,
}

impl FreshFiles {
    /// A checker remembering at most `capacity` hashed files.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            hashed: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the file at `path` is still the one recorded.
    pub fn check(&self, path: &Path, recorded: Recorded<'_>) -> Result<(), Changed> {
        let meta = std::fs::metadata(path)?;
        if meta.len() != recorded.size {
            return Err(Changed::Size {
                found: meta.len(),
                recorded: recorded.size,
            });
        }
        let mtime = mtime_ns(meta.modified().ok());
        if mtime.is_some() && mtime == recorded.mtime_ns {
            return Ok(());
        }
        let known = self
            .lock()
            .get(path)
            .filter(|(size, t, _)| *size == meta.len() && *t == mtime)
            .map(|(_, _, sum)| sum.clone());
        let sum = match known {
            Some(sum) => sum,
            None => {
                let (sum, _) = sha256(path)?;
                let mut hashed = self.lock();
                if hashed.len() >= self.capacity {
                    // Crude but bounded; a refill costs one hash per file.
                    hashed.clear();
                }
                hashed.insert(path.to_path_buf(), (meta.len(), mtime, sum.clone()));
                sum
            }
        };
        if sum == recorded.checksum {
            Ok(())
        } else {
            Err(Changed::Content)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Hashed>> {
        self.hashed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_and_time_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let (sum, len) = sha256(&p).unwrap();
        assert_eq!(len, 3);
        assert_eq!(
            sum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = std::fs::metadata(&p).unwrap().modified().ok();
        assert!(mtime_ns(t).unwrap() > 1_600_000_000_000_000_000);
        assert_eq!(mtime_ns(None), None);
    }

    #[test]
    fn a_file_changed_after_ingest_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abcd").unwrap();
        let (sum, len) = sha256(&p).unwrap();
        let t = mtime_ns(std::fs::metadata(&p).unwrap().modified().ok());
        let rec = Recorded {
            size: len,
            mtime_ns: t,
            checksum: &sum,
        };
        let fresh = FreshFiles::new(8);
        fresh.check(&p, rec).unwrap();
        // Unknown time (an old record): hashed, and the same content passes.
        fresh
            .check(
                &p,
                Recorded {
                    mtime_ns: None,
                    ..rec
                },
            )
            .unwrap();
        // Same size, other bytes, other time: caught by the hash.
        std::fs::write(&p, b"abce").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(matches!(fresh.check(&p, rec), Err(Changed::Content)));
        // Truncated: caught by the size alone.
        std::fs::write(&p, b"ab").unwrap();
        assert!(matches!(
            fresh.check(&p, rec),
            Err(Changed::Size {
                found: 2,
                recorded: 4
            })
        ));
        // Gone: the I/O error, for the caller to call a 404.
        std::fs::remove_file(&p).unwrap();
        assert!(
            matches!(fresh.check(&p, rec), Err(Changed::Io(e)) if e.kind() == std::io::ErrorKind::NotFound)
        );
    }
}
