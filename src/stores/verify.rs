//! `wisecut root verify NAME`: every frame file of a data root read whole
//! and compared (size and SHA-256) with what ingest recorded.
//!
//! A server reading a remote frame fetches only the blocks a cutout needs,
//! so it can check the object's size on every open but never its SHA-256.
//! This command does the one full read: for a remote root it records, per
//! frame, the ETag of the object it found the ingest SHA-256 in
//! (`frame.store_etag`); servers then refuse the object whenever the store
//! names another ETag, so a replacement of the same size is noticed on the
//! next HEAD without reading the file again; a file found to differ is
//! marked ([`DIFFERS`]) and refused until it is fixed and verified again.
//! Run it after copying a root to
//! a store (`wisecut root set` clears what it recorded). For a directory it
//! checks the files and records nothing (servers compare local files'
//! size and time on every read, and hash them when those change).
//!
//! Memory is bounded: objects are read in [`CHUNK`] ranges, each with
//! `If-Match` on the ETag the HEAD gave, so one object's bytes are one
//! version's.

use std::time::Duration;

use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use super::blocks::{FaultKind, StoreFault, fault};
use super::{Location, Remote, StoreSettings};
use crate::catalog::{Catalog, CatalogError};

/// What `frame.store_etag` holds for a frame whose file was read and found
/// to differ from its ingest record: no ETag equals it, so servers refuse
/// the object until it is replaced by the right bytes and verified again.
pub const DIFFERS: &str = "!differs";

/// Bytes of one range request.
pub const CHUNK: u64 = 8 << 20;

/// Frames read from the catalogue per query.
const PAGE: u64 = 1000;

/// What a verification found.
#[derive(Debug, Default)]
pub struct Report {
    /// Frames whose files were read.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Frames whose object's ETag was recorded.
    pub recorded: u64,
    /// One line per frame whose file is not what ingest recorded (or could
    /// not be read), naming the frame and the difference.
    pub problems: Vec<String>,
}

/// Errors that stop a verification (a single bad file does not).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No such root.
    #[error("{0}")]
    Usage(String),
    /// The catalogue failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The store cannot be used.
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

/// Verifies every frame file of data root `name`; `progress` is called
/// after each file with the frames checked so far.
pub async fn verify_root(
    catalog: &Catalog,
    name: &str,
    settings: &StoreSettings,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Report, VerifyError> {
    let roots = catalog.data_roots();
    let Some(at) = roots.get(name) else {
        let mut names: Vec<&String> = roots.keys().collect();
        names.sort();
        return Err(VerifyError::Usage(format!(
            "root {name:?}: no such data root; the roots are: {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    };
    let location = Location::parse(&at.to_string_lossy())?;
    let remote = match &location {
        Location::Url(url) => Some(Remote::open(url, settings)?),
        Location::Dir(_) => None,
    };
    let mut report = Report::default();
    let mut after = 0;
    loop {
        let page = catalog.frame_files_in_root(name, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (id, rel, size, sum) in page {
            let size = u64::try_from(size).unwrap_or(0);
            let found = match (&remote, &location) {
                (Some(r), _) => read_remote(r, &rel, size).await,
                (None, Location::Dir(dir)) => read_local(&dir.join(&rel)).await,
                (None, Location::Url(_)) => unreachable!("a URL location has a remote"),
            };
            report.checked += 1;
            match found {
                Ok((got_size, got_sum, etag)) => {
                    report.bytes += got_size;
                    if got_size != size {
                        report.problems.push(format!(
                            "frame {id} ({rel}): {got_size} bytes where ingest recorded {size}"
                        ));
                        if remote.is_some() {
                            catalog.set_store_etag(id, Some(DIFFERS)).await?;
                        }
                    } else if got_sum != sum {
                        report.problems.push(format!(
                            "frame {id} ({rel}): the SHA-256 is not the one recorded at ingest"
                        ));
                        if remote.is_some() {
                            catalog.set_store_etag(id, Some(DIFFERS)).await?;
                        }
                    } else if remote.is_some() {
                        catalog.set_store_etag(id, etag.as_deref()).await?;
                        if etag.is_some() {
                            report.recorded += 1;
                        }
                    }
                }
                // Unreadable (store down, object missing): what was
                // recorded before stays.
                Err(e) => report.problems.push(format!("frame {id} ({rel}): {e}")),
            }
            progress(report.checked);
        }
    }
    Ok(report)
}

/// Size, SHA-256 and ETag of the object at `rel`, read in ranges that all
/// name the ETag of the first answer.
async fn read_remote(
    remote: &Remote,
    rel: &str,
    recorded: u64,
) -> Result<(u64, String, Option<String>), String> {
    let key = remote.key(rel);
    let show = |f: StoreFault| f.message;
    let meta = remote
        .store
        .head(&key)
        .await
        .map_err(|e| show(fault(&remote.url, &key, e)))?;
    if meta.size != recorded {
        // Not worth reading: the size already differs.
        return Ok((meta.size, String::new(), meta.e_tag));
    }
    let mut hasher = Sha256::new();
    let mut at = 0;
    while at < meta.size {
        let end = (at + CHUNK).min(meta.size);
        let opts = GetOptions {
            range: Some(GetRange::Bounded(at..end)),
            if_match: meta.e_tag.clone(),
            ..Default::default()
        };
        let bytes = tokio::time::timeout(Duration::from_secs(600), async {
            remote.store.get_opts(&key, opts).await?.bytes().await
        })
        .await
        .map_err(|_| format!("{key} in data store {}: timed out", remote.url))?
        .map_err(|e| show(fault(&remote.url, &key, e)))?;
        if bytes.len() as u64 != end - at {
            return Err(show(StoreFault {
                kind: FaultKind::Changed,
                message: format!(
                    "data store {} answered {} bytes for a range of {} of {key}",
                    remote.url,
                    bytes.len(),
                    end - at
                ),
            }));
        }
        hasher.update(&bytes);
        at = end;
    }
    Ok((meta.size, hex::encode(hasher.finalize()), meta.e_tag))
}

/// Size and SHA-256 of a local file (hashed off the async threads).
async fn read_local(path: &std::path::Path) -> Result<(u64, String, Option<String>), String> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::file_identity::sha256(&p))
        .await
        .map_err(|e| e.to_string())?
        .map(|(sum, size)| (size, sum, None))
        .map_err(|e| format!("{}: {e}", path.display()))
}
