//! Where frame files live: pixel stores behind one interface.
//!
//! A frame records its store: `local` (the `--data` directory) or the name of
//! a data root (`data_root`). A data root's location is a directory, an
//! `http(s)://` URL of a data server that answers byte-range requests (nginx,
//! Astro-WISE's data servers) or an `s3://bucket/prefix` URL of S3-compatible
//! object storage. Remote locations are reached through the `object_store`
//! crate, one client type for both; this module parses locations and builds
//! the clients with bounded timeouts, so a store that is down or slow fails a
//! request within a known time instead of holding it.
//!
//! S3 settings come from the usual environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for a non-AWS
//! service, `AWS_ALLOW_HTTP=true` for a plain-HTTP one).

pub mod blocks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod node_cache;
pub mod shared;
pub mod verify;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

/// Where a data root's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine.
    Dir(PathBuf),
    /// A remote store, by URL (`http://…`, `https://…`, `s3://…`).
    Url(String),
}

impl Location {
    /// Parses a data root's recorded location: a URL with a known scheme, or
    /// else a directory.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let t = text.trim();
        match t.split_once("://") {
            Some(("http" | "https" | "s3", rest)) if !rest.is_empty() => {
                Ok(Self::Url(t.to_owned()))
            }
            Some((scheme, _)) if scheme != "file" => Err(StoreError::Config(format!(
                "location {t:?}: unknown scheme {scheme:?}; use a directory, http://, https:// or s3://"
            ))),
            Some((_, path)) => Ok(Self::Dir(PathBuf::from(path))),
            None => Ok(Self::Dir(PathBuf::from(t))),
        }
    }
}

/// Client settings for remote stores.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Longest time one request (connect to last byte) may take.
    pub timeout: Duration,
    /// Longest time to establish a connection.
    pub connect_timeout: Duration,
    /// Retries of a failed idempotent request (each within `timeout`).
    pub retries: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retries: 1,
        }
    }
}

/// The `serve` flags of remote stores (flattened into `ServeArgs`).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Bound of the local block cache of remote frames, in MiB.
    #[arg(long, env = "WISECUT_BLOCK_CACHE_MIB", default_value_t = DEFAULT_BLOCK_CACHE_BYTES >> 20)]
    pub block_cache_mib: u64,
    /// Seconds one request to a remote store may take.
    #[arg(long, env = "WISECUT_STORE_TIMEOUT", default_value_t = 10)]
    pub store_timeout: u64,
    /// Seconds to connect to a remote store.
    #[arg(long, env = "WISECUT_STORE_CONNECT_TIMEOUT", default_value_t = 3)]
    pub store_connect_timeout: u64,
}

impl Default for RemoteArgs {
    fn default() -> Self {
        Self {
            block_cache_mib: DEFAULT_BLOCK_CACHE_BYTES >> 20,
            store_timeout: 10,
            store_connect_timeout: 3,
        }
    }
}

impl RemoteArgs {
    /// The client settings these flags give.
    pub fn settings(&self) -> StoreSettings {
        StoreSettings {
            timeout: Duration::from_secs(self.store_timeout.max(1)),
            connect_timeout: Duration::from_secs(self.store_connect_timeout.max(1)),
            ..StoreSettings::default()
        }
    }
}

/// Default bound of the block cache: 1 GiB.
pub const DEFAULT_BLOCK_CACHE_BYTES: u64 = 1 << 30;

/// `wisecut root …`: data roots.
#[derive(Debug, clap::Subcommand)]
pub enum RootCommand {
    /// Register a data root or move it: to a directory, an http(s):// data
    /// server or an s3://bucket/prefix store holding the same relative
    /// paths.
    Set {
        /// The root's name.
        name: String,
        /// Directory or URL.
        location: String,
        /// Catalogue.
        #[command(flatten)]
        store: crate::cli::StoreArgs,
    },
    /// Read every frame file of a data root whole and compare its size and
    /// SHA-256 with the ingest record; for a remote root, record each good
    /// object's ETag, so servers refuse any other object in its place.
    /// Exits non-zero when a file differs.
    Verify {
        /// The root's name.
        name: String,
        /// Catalogue.
        #[command(flatten)]
        store: crate::cli::StoreArgs,
        /// Remote store settings.
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List the data roots.
    List {
        /// Catalogue.
        #[command(flatten)]
        store: crate::cli::StoreArgs,
    },
}

/// Errors of stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A location or setting that cannot be used.
    #[error("{0}")]
    Config(String),
}

/// A remote store: the client and the key prefix under which a data root's
/// relative paths live.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The URL it was built from (without credentials).
    pub url: String,
    /// The client.
    pub store: Arc<dyn ObjectStore>,
    /// Prefix of every key.
    pub prefix: ObjectPath,
}

impl Remote {
    /// The client for a remote location `url` (`http(s)://host/dir` or
    /// `s3://bucket/prefix`).
    pub fn open(url: &str, settings: &StoreSettings) -> Result<Self, StoreError> {
        let bad = |e: &dyn std::fmt::Display| StoreError::Config(format!("store {url}: {e}"));
        let client = object_store::ClientOptions::new()
            .with_timeout(settings.timeout)
            .with_connect_timeout(settings.connect_timeout)
            .with_allow_http(true);
        let retry = object_store::RetryConfig {
            max_retries: settings.retries,
            retry_timeout: settings.timeout * (settings.retries as u32 + 1),
            ..Default::default()
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            // Settings that are not secrets may ride in the URL, so that
            // roots on two S3 services can coexist:
            // `s3://bucket/prefix?endpoint=http://host:port&region=…`.
            let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(&"no bucket name; write s3://BUCKET/PREFIX"));
            }
            let mut builder = object_store::aws::AmazonS3Builder::from_env();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
                let key: object_store::aws::AmazonS3ConfigKey = k
                    .parse()
                    .map_err(|e| bad(&format!("URL setting {k:?}: {e}")))?;
                use object_store::aws::AmazonS3ConfigKey as K;
                if matches!(key, K::AccessKeyId | K::SecretAccessKey | K::Token) {
                    return Err(bad(&format!(
                        "{k} in the URL: credentials come from the environment (AWS_ACCESS_KEY_ID, …), never from a recorded location"
                    )));
                }
                builder = builder.with_config(key, v);
            }
            let store = builder
                .with_bucket_name(bucket)
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(&e))?;
            return Ok(Self {
                // Messages name the store without its settings.
                url: url.split('?').next().unwrap_or(url).to_owned(),
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix.trim_matches('/')),
            });
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            // The key prefix is the URL's path: the client is built for the
            // server's root so that keys stay relative paths.
            let store = object_store::http::HttpBuilder::new()
                .with_url(url.trim_end_matches('/'))
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(&e))?;
            return Ok(Self {
                url: url.to_owned(),
                store: Arc::new(store),
                prefix: ObjectPath::default(),
            });
        }
        Err(bad(&"not an http://, https:// or s3:// URL"))
    }

    /// The key of a file recorded under this store at relative `path`.
    pub fn key(&self, path: &str) -> ObjectPath {
        let mut key = self.prefix.clone();
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            key = key.join(part);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_by_scheme() {
        assert_eq!(
            Location::parse("/data/night").unwrap(),
            Location::Dir("/data/night".into())
        );
        assert_eq!(
            Location::parse("s3://bucket/survey").unwrap(),
            Location::Url("s3://bucket/survey".into())
        );
        assert!(matches!(
            Location::parse("http://127.0.0.1:8080/d"),
            Ok(Location::Url(_))
        ));
        let e = Location::parse("ftp://x/y").unwrap_err().to_string();
        assert!(e.contains("unknown scheme \"ftp\""), "{e}");
    }

    #[test]
    fn keys_join_the_prefix_and_the_relative_path() {
        let r = Remote::open("s3://bucket/survey/night1", &StoreSettings::default()).unwrap();
        assert_eq!(r.key("a/b.fits").as_ref(), "survey/night1/a/b.fits");
        let h = Remote::open("http://127.0.0.1:9/data", &StoreSettings::default()).unwrap();
        assert_eq!(h.key("a/b.fits").as_ref(), "a/b.fits");
    }
}
