//! The files a job leaves in its result directory: one way to write a file
//! and record it, and `manifest.json`, which lists every file with its size,
//! kind and a sentence saying what it shows. The job pages, the JSON answers
//! and the ZIP are all built from the manifest, so a file that is not in it
//! is not part of the result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

/// The disk allowances of the directories jobs are filling: directory →
/// bytes it may still take.
///
/// Every file of every job goes through [`write_file`], which charges the
/// allowance of the directory it writes into; the job runner opens the
/// allowance for its `<id>.part/` directory ([`allow`]) and drops it when
/// the job ends. Keyed by directory rather than passed down, because the
/// makers (dependency cutouts, RGB, batches) only share that one function,
/// and the allowance belongs to the directory being filled.
fn allowances() -> &'static Mutex<HashMap<PathBuf, Open>> {
    static ALLOWANCES: OnceLock<Mutex<HashMap<PathBuf, Open>>> = OnceLock::new();
    ALLOWANCES.get_or_init(Default::default)
}

/// An open allowance: (bytes allowed in all, bytes left).
type Open = (u64, Arc<AtomicU64>);

/// An open allowance; closed on drop.
#[derive(Debug)]
pub struct Allowance {
    dir: PathBuf,
}

impl Drop for Allowance {
    fn drop(&mut self) {
        allowances()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.dir);
    }
}

/// Lets the files written into `dir` take at most `bytes` together: a
/// write past it fails (and with it the job, whose part directory is then
/// removed), instead of the bound being noticed after the disk filled.
pub fn allow(dir: &Path, bytes: u64) -> Allowance {
    allowances()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_path_buf(), (bytes, Arc::new(AtomicU64::new(bytes))));
    Allowance {
        dir: dir.to_path_buf(),
    }
}

/// Charges `n` bytes to the allowance of `dir`, if it has one.
fn charge(dir: &Path, n: u64) -> std::io::Result<()> {
    let left = allowances()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(dir)
        .cloned();
    let Some((cap, left)) = left else {
        return Ok(());
    };
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(n))
        .map(|_| ())
        .map_err(|_| {
            std::io::Error::other(format!(
                "the results would pass the {:.1} MiB one job may take (--job-mib); \
                 ask for fewer sources, fewer classes or a smaller size",
                cap as f64 / (1 << 20) as f64
            ))
        })
}

/// One file of a result directory, as `manifest.json` lists it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ManifestFile {
    /// Path relative to the result directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// `fits`, `png`, `gif`, `csv`, `json`, `log`.
    pub kind: String,
    /// What it shows.
    pub description: String,
}

/// Writes `bytes` to `dir/rel`, creating parents, and records it.
pub fn write_file(
    dir: &Path,
    rel: &str,
    bytes: &[u8],
    kind: &str,
    description: String,
    files: &mut Vec<ManifestFile>,
) -> std::io::Result<()> {
    charge(dir, bytes.len() as u64)?;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, bytes)?;
    files.push(ManifestFile {
        path: rel.to_owned(),
        bytes: bytes.len() as u64,
        kind: kind.to_owned(),
        description,
    });
    Ok(())
}

/// Writes `manifest.json` listing `files` (and itself not), returning its
/// path.
pub fn write_manifest(
    dir: &Path,
    header: serde_json::Value,
    files: &[ManifestFile],
) -> std::io::Result<PathBuf> {
    let mut doc = header;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "files".into(),
            serde_json::to_value(files).map_err(std::io::Error::other)?,
        );
    }
    let path = dir.join("manifest.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?,
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_an_allowance_takes_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        {
            let _open = allow(dir.path(), 10);
            write_file(dir.path(), "a", b"123456", "txt", "a".into(), &mut files).unwrap();
            let e =
                write_file(dir.path(), "b", b"12345", "txt", "b".into(), &mut files).unwrap_err();
            assert!(e.to_string().contains("--job-mib"), "{e}");
            assert!(!dir.path().join("b").exists(), "nothing half-written");
            write_file(dir.path(), "c", b"1234", "txt", "c".into(), &mut files).unwrap();
        }
        // Closed: no limit any more.
        write_file(dir.path(), "d", &[0; 100], "txt", "d".into(), &mut files).unwrap();
        assert_eq!(files.len(), 3);
    }
}
