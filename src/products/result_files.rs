//! The files a job leaves in its result directory: one way to write a file
//! and record it, and `manifest.json`, which lists every file with its size,
//! kind and a sentence saying what it shows. The job pages, the JSON answers
//! and the ZIP are all built from the manifest, so a file that is not in it
//! is not part of the result.

use std::path::{Path, PathBuf};

use serde::Serialize;

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
