//! What identifies the bytes of a stored file: its SHA-256 (recorded at
//! ingest, the content identity every product key is built from) and its
//! size and modification time (cheap to compare on every read, to notice
//! that a file was replaced or rewritten after ingest).

use std::io::Read;
use std::path::Path;
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
}
