//! Shared storage of job results (`--shared-store LOCATION`): where every
//! server of a deployment puts a finished job's result directory, so that any
//! of them answers the job's pages, files and ZIP.
//!
//! A location is a directory every server mounts (NFS, a shared volume) or an
//! object store: `s3://bucket/prefix`, optionally with `?endpoint=URL` for an
//! S3-compatible service other than AWS (MinIO, Ceph, moto) and `&region=…`;
//! credentials come from the usual environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`), never from the URL.
//!
//! Layout: `jobs/<public id>/<relative path>` for each file, then
//! `jobs/<public id>/.complete`, a JSON list of the files and their sizes,
//! written last. A result counts as stored only once its `.complete` is there,
//! so a server that died mid-upload never leaves a half result that looks
//! finished (the job is rebuilt by whoever recovers it). The runner uploads
//! before it marks the job done; a server asked for a job it lacks fetches
//! the files one by one into a temporary directory of its own cache, in
//! bounded chunks (at most [`CHUNK`] bytes in memory per file), and renames
//! it into place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};

use super::{Remote, StoreError, StoreSettings};

/// Largest piece of a file held in memory while it is copied to or from an
/// object store.
pub const CHUNK: usize = 8 << 20;

/// Name of the object that marks a stored result complete.
const COMPLETE: &str = ".complete";

/// One file of a stored result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    /// Path relative to the result directory, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Where shared results live.
#[derive(Clone)]
enum Backend {
    Dir(PathBuf),
    Object {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

/// The shared store of a deployment.
#[derive(Clone)]
pub struct SharedStore {
    /// The location as configured (no credentials).
    pub location: String,
    backend: Backend,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("location", &self.location)
            .finish()
    }
}

/// Errors of the shared store, each naming it.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The store could not be reached or answered an error.
    #[error("shared store {location}: {message}")]
    Store {
        /// The store.
        location: String,
        /// What failed.
        message: String,
    },
    /// Local files could not be read or written.
    #[error("local cache: {0}")]
    Io(#[from] std::io::Error),
}

impl SharedStore {
    /// The store at `location`: a directory, `file:///dir`, or
    /// `s3://bucket/prefix[?endpoint=URL][&region=R]`.
    pub fn open(location: &str, settings: &StoreSettings) -> Result<Self, StoreError> {
        let loc = location.trim();
        let bad = |m: String| StoreError::Config(format!("--shared-store {loc}: {m}"));
        if let Some(rest) = loc.strip_prefix("s3://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let mut endpoint = None;
            let mut region = None;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("endpoint", v)) => endpoint = Some(v.to_owned()),
                    Some(("region", v)) => region = Some(v.to_owned()),
                    _ => {
                        return Err(bad(format!(
                            "unknown parameter {pair:?}; allowed: endpoint, region"
                        )));
                    }
                }
            }
            let url = format!("s3://{path}");
            let backend = if endpoint.is_none() && region.is_none() {
                let r = Remote::open(&url, settings)?;
                Backend::Object {
                    store: r.store,
                    prefix: r.prefix,
                }
            } else {
                let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
                if bucket.is_empty() {
                    return Err(bad("no bucket name; write s3://BUCKET/PREFIX".into()));
                }
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_client_options(
                        object_store::ClientOptions::new()
                            .with_timeout(settings.timeout)
                            .with_connect_timeout(settings.connect_timeout)
                            .with_allow_http(true),
                    )
                    .with_retry(object_store::RetryConfig {
                        max_retries: settings.retries,
                        retry_timeout: settings.timeout * (settings.retries as u32 + 1),
                        ..Default::default()
                    });
                if let Some(e) = endpoint {
                    // Path-style requests: S3-compatible services rarely
                    // have a DNS name per bucket.
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                if let Some(r) = region {
                    b = b.with_region(r);
                }
                let store = b.build().map_err(|e| bad(e.to_string()))?;
                Backend::Object {
                    store: Arc::new(store),
                    prefix: ObjectPath::from(prefix.trim_matches('/')),
                }
            };
            return Ok(Self {
                location: loc.to_owned(),
                backend,
            });
        }
        let dir = match loc.split_once("://") {
            None => PathBuf::from(loc),
            Some(("file", p)) => PathBuf::from(p),
            Some((scheme, _)) => {
                return Err(bad(format!(
                    "unknown scheme {scheme:?}; use a directory or s3://BUCKET/PREFIX"
                )));
            }
        };
        std::fs::create_dir_all(dir.join("jobs"))
            .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self {
            location: loc.to_owned(),
            backend: Backend::Dir(dir),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> SharedError {
        SharedError::Store {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    fn key(prefix: &ObjectPath, job: &str, rel: &str) -> ObjectPath {
        let mut k = prefix.clone().join("jobs").join(job);
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            k = k.join(part);
        }
        k
    }

    /// Stores the result directory `local` of job `job` (its public id):
    /// every file, then the mark that makes it complete. Returns the bytes
    /// stored.
    pub async fn upload(&self, job: &str, local: &Path) -> Result<u64, SharedError> {
        let files = {
            let local = local.to_path_buf();
            tokio::task::spawn_blocking(move || list_files(&local))
                .await
                .map_err(std::io::Error::other)??
        };
        let total = files.iter().map(|f| f.bytes).sum();
        let index = serde_json::to_vec(&files).map_err(|e| self.err(e))?;
        match &self.backend {
            Backend::Dir(root) => {
                let (root, local, job) = (root.clone(), local.to_path_buf(), job.to_owned());
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let jobs = root.join("jobs");
                    let tmp = jobs.join(format!(".{job}.{}", rand::random::<u64>()));
                    for f in &files {
                        let to = tmp.join(&f.path);
                        if let Some(p) = to.parent() {
                            std::fs::create_dir_all(p)?;
                        }
                        std::fs::copy(local.join(&f.path), &to)?;
                    }
                    std::fs::create_dir_all(&tmp)?;
                    std::fs::write(tmp.join(COMPLETE), &index)?;
                    let dest = jobs.join(&job);
                    // A rerun after a lost lease replaces what was there.
                    if dest.exists() {
                        std::fs::remove_dir_all(&dest)?;
                    }
                    std::fs::rename(&tmp, &dest)
                })
                .await
                .map_err(std::io::Error::other)??;
            }
            Backend::Object { store, prefix } => {
                // A rerun after a lost lease: the old mark goes first, so
                // the result is never complete with a mix of files.
                let mark = Self::key(prefix, job, COMPLETE);
                let _ = store.delete(&mark).await;
                for f in &files {
                    let key = Self::key(prefix, job, &f.path);
                    self.put_file(store, &key, &local.join(&f.path), f.bytes)
                        .await?;
                }
                store
                    .put(&mark, PutPayload::from(index))
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(total)
    }

    async fn put_file(
        &self,
        store: &Arc<dyn ObjectStore>,
        key: &ObjectPath,
        path: &Path,
        bytes: u64,
    ) -> Result<(), SharedError> {
        use tokio::io::AsyncReadExt;
        if bytes <= CHUNK as u64 {
            let data = tokio::fs::read(path).await?;
            store
                .put(key, PutPayload::from(data))
                .await
                .map_err(|e| self.err(e))?;
            return Ok(());
        }
        let upload = store.put_multipart(key).await.map_err(|e| self.err(e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut file = tokio::fs::File::open(path).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            // At most two parts in flight (and one being filled).
            w.wait_for_capacity(2).await.map_err(|e| self.err(e))?;
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The files of job `job`'s stored result, or `None` when there is no
    /// complete result.
    pub async fn index(&self, job: &str) -> Result<Option<Vec<StoredFile>>, SharedError> {
        let bytes = match &self.backend {
            Backend::Dir(root) => {
                match tokio::fs::read(root.join("jobs").join(job).join(COMPLETE)).await {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(self.err(e)),
                }
            }
            Backend::Object { store, prefix } => {
                match store.get(&Self::key(prefix, job, COMPLETE)).await {
                    Ok(r) => r.bytes().await.map_err(|e| self.err(e))?.to_vec(),
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(self.err(e)),
                }
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.err(format!("result index of job {job} unreadable: {e}")))
    }

    /// Copies job `job`'s stored result into `dest` (which must not exist;
    /// `scratch` is a directory on the same filesystem for the temporary
    /// copy). False when the store has no complete result of it.
    pub async fn fetch(&self, job: &str, dest: &Path, scratch: &Path) -> Result<bool, SharedError> {
        let Some(files) = self.index(job).await? else {
            return Ok(false);
        };
        for f in &files {
            if f.path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(self.err(format!("job {job}: unsafe path {:?} in index", f.path)));
            }
        }
        let tmp = scratch.join(format!(".{job}.fetch.{}", rand::random::<u64>()));
        let result = self.fetch_into(job, &files, &tmp).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
        // Another request may have fetched it meanwhile: theirs is as good.
        if tokio::fs::rename(&tmp, dest).await.is_err() {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            if !dest.is_dir() {
                return Err(SharedError::Io(std::io::Error::other(format!(
                    "cannot move the fetched result into {}",
                    dest.display()
                ))));
            }
        }
        Ok(true)
    }

    async fn fetch_into(
        &self,
        job: &str,
        files: &[StoredFile],
        tmp: &Path,
    ) -> Result<(), SharedError> {
        use tokio::io::AsyncWriteExt;
        tokio::fs::create_dir_all(tmp).await?;
        for f in files {
            let to = tmp.join(&f.path);
            if let Some(p) = to.parent() {
                tokio::fs::create_dir_all(p).await?;
            }
            match &self.backend {
                Backend::Dir(root) => {
                    tokio::fs::copy(root.join("jobs").join(job).join(&f.path), &to)
                        .await
                        .map_err(|e| self.err(format!("{}: {e}", f.path)))?;
                }
                Backend::Object { store, prefix } => {
                    let key = Self::key(prefix, job, &f.path);
                    let mut out = tokio::fs::File::create(&to).await?;
                    // Ranged reads: never more than one chunk in memory.
                    let mut at = 0u64;
                    while at < f.bytes {
                        let end = (at + CHUNK as u64).min(f.bytes);
                        let data = store
                            .get_range(&key, at..end)
                            .await
                            .map_err(|e| self.err(format!("{}: {e}", f.path)))?;
                        out.write_all(&data).await?;
                        at = end;
                    }
                    out.flush().await?;
                }
            }
            let got = tokio::fs::metadata(&to).await?.len();
            if got != f.bytes {
                return Err(self.err(format!(
                    "{}: {got} bytes fetched, {} recorded",
                    f.path, f.bytes
                )));
            }
        }
        Ok(())
    }

    /// Removes job `job`'s stored result (retention, UWS `DELETE`).
    pub async fn remove(&self, job: &str) -> Result<(), SharedError> {
        match &self.backend {
            Backend::Dir(root) => {
                let d = root.join("jobs").join(job);
                match tokio::fs::remove_dir_all(&d).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(self.err(e)),
                }
            }
            Backend::Object { store, prefix } => {
                // The mark first: from then on the result is not there.
                let mark = Self::key(prefix, job, COMPLETE);
                let files = self.index(job).await?.unwrap_or_default();
                let _ = store.delete(&mark).await;
                for f in files {
                    let _ = store.delete(&Self::key(prefix, job, &f.path)).await;
                }
                Ok(())
            }
        }
    }
}

/// Every file under `dir`, sorted by relative path.
fn list_files(dir: &Path) -> std::io::Result<Vec<StoredFile>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .map_err(std::io::Error::other)?
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(StoredFile {
                    path: rel,
                    bytes: e.metadata()?.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_store_round_trips_a_result_and_knows_incomplete_ones() {
        let root = tempfile::tempdir().unwrap();
        let store = SharedStore::open(
            root.path().join("shared").to_str().unwrap(),
            &StoreSettings::default(),
        )
        .unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a")).unwrap();
        std::fs::write(src.path().join("a/x.fits"), vec![7u8; 3000]).unwrap();
        std::fs::write(src.path().join("manifest.json"), b"{}").unwrap();
        assert_eq!(store.index("j1").await.unwrap(), None);
        assert_eq!(store.upload("j1", src.path()).await.unwrap(), 3002);
        let cache = tempfile::tempdir().unwrap();
        let dest = cache.path().join("1");
        assert!(store.fetch("j1", &dest, cache.path()).await.unwrap());
        assert_eq!(
            std::fs::read(dest.join("a/x.fits")).unwrap(),
            vec![7u8; 3000]
        );
        assert!(
            !store
                .fetch("j2", &cache.path().join("2"), cache.path())
                .await
                .unwrap()
        );
        store.remove("j1").await.unwrap();
        assert_eq!(store.index("j1").await.unwrap(), None);
    }

    #[test]
    fn locations_are_checked() {
        let e = SharedStore::open("ftp://x/y", &StoreSettings::default()).unwrap_err();
        assert!(e.to_string().contains("--shared-store"), "{e}");
        let e = SharedStore::open("s3://b/p?bogus=1", &StoreSettings::default()).unwrap_err();
        assert!(e.to_string().contains("unknown parameter"), "{e}");
        assert!(
            SharedStore::open(
                "s3://b/p?endpoint=http://127.0.0.1:9&region=us-east-1",
                &StoreSettings::default()
            )
            .is_ok()
        );
    }
}
