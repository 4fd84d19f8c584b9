//! Run-time configuration: one validated struct built from command-line flags
//! and environment, printed at start-up.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the embedded sample survey lives, relative to the working directory.
pub const SAMPLE_DIR: &str = "sample_db";

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL (`sqlite://…` or `postgres://…`).
    pub db_url: String,
    /// Root of the `local` data store.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Directory of the on-demand product cache and of decompressed sidecars.
    pub cache_dir: PathBuf,
    /// Bound of the product cache (rendered images, cutouts of compressed
    /// frames) in bytes.
    pub cache_bytes: u64,
    /// Bound of the sidecar store (decompressed copies of row-tiled frames)
    /// in bytes.
    pub sidecar_bytes: u64,
    /// Bound of the hot rows of frames kept in memory, in bytes (0: none).
    pub row_cache_bytes: u64,
    /// Largest cutout side in pixels; larger requests get a 400.
    pub max_cutout_px: usize,
    /// The URL under which users reach this server (written into cutout
    /// provenance); `http://<bind>` when not given.
    pub public_url: String,
    /// Whether `public_url` was given (`--public-url`). When not, VO answers,
    /// which must carry absolute URLs, take the host from each request.
    pub public_url_fixed: bool,
    /// A local copy of Aladin Lite (the `dist/` directory of the npm package
    /// `aladin-lite`), served at `/static/aladin/`.
    pub aladin_dir: Option<PathBuf>,
    /// Where pages load Aladin Lite from when there is no local copy.
    pub aladin_url: String,
    /// Directory of job results (dependency cutouts, RGB images, batches).
    pub jobs_dir: PathBuf,
    /// Bound of all job results together, in bytes; the oldest go first.
    pub jobs_bytes: u64,
    /// Bound of one job's result files, in bytes, enforced as they are
    /// written (a job passing it fails and leaves nothing behind).
    pub job_bytes: u64,
    /// Age in days after which a job's result files are removed.
    pub jobs_days: u64,
    /// Where job results are shared with the other servers
    /// (`--shared-store`), if anywhere.
    pub shared_store: Option<String>,
    /// Dependency-cutout requests with at most this many sources are
    /// answered at once; larger ones run as queued jobs.
    pub inline_sources: usize,
    /// Memory the server may use, in bytes: caches, requests and jobs
    /// together. Work that would not fit waits or is refused.
    pub memory_bytes: u64,
    /// What one client may ask of the server, and how long it may take to
    /// ask.
    pub limits: ClientLimits,
    /// Remote stores: timeouts of their clients.
    pub stores: crate::stores::StoreSettings,
    /// Bound of the local block cache of remote frames, in bytes.
    pub block_cache_bytes: u64,
}

/// Admission limits per client and time limits per request.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientLimits {
    /// Expensive requests in progress at once.
    pub concurrency: usize,
    /// Expensive requests started per second, on average.
    pub rate_per_s: f64,
    /// Expensive requests started in a burst.
    pub burst: u32,
    /// Jobs submitted per minute.
    pub jobs_per_minute: u32,
    /// Time to send the request headers.
    pub header_timeout: std::time::Duration,
    /// Time to send the request body.
    pub body_timeout: std::time::Duration,
    /// Time to answer a request.
    pub request_timeout: std::time::Duration,
    /// How long a request may wait for memory before it is answered 503.
    pub memory_wait: std::time::Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            concurrency: defaults::CLIENT_CONCURRENCY,
            rate_per_s: defaults::CLIENT_RATE,
            burst: defaults::CLIENT_BURST,
            jobs_per_minute: defaults::CLIENT_JOBS_PER_MINUTE,
            header_timeout: std::time::Duration::from_secs(defaults::HEADER_TIMEOUT_S),
            body_timeout: std::time::Duration::from_secs(defaults::BODY_TIMEOUT_S),
            request_timeout: std::time::Duration::from_secs(defaults::REQUEST_TIMEOUT_S),
            memory_wait: std::time::Duration::from_secs(defaults::MEMORY_WAIT_S),
        }
    }
}

/// The default memory budget: 40% of the machine's memory (from
/// `/proc/meminfo`), or 2 GiB where that cannot be read.
pub fn default_memory_bytes() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    });
    match total_kib {
        Some(kib) => kib * 1024 / 5 * 2,
        None => 2 << 30,
    }
}

/// Defaults of the tunable limits, shared by the CLI and tests.
pub mod defaults {
    /// CDS's copy of Aladin Lite 3, for servers without a local one.
    pub const ALADIN_URL: &str = "https://aladin.cds.unistra.fr/AladinLite/api/v3/latest/aladin.js";
    /// Product cache bound: 2 GiB.
    pub const CACHE_BYTES: u64 = 2 << 30;
    /// Sidecar store bound: 8 GiB.
    pub const SIDECAR_BYTES: u64 = 8 << 30;
    /// Hot rows of frames in memory: 256 MiB.
    pub const ROW_CACHE_BYTES: u64 = 256 << 20;
    /// Largest cutout side.
    pub const MAX_CUTOUT_PX: usize = 6000;
    /// Job results bound: 2 GiB.
    pub const JOBS_BYTES: u64 = 2 << 30;
    /// `--job-mib`: one job's results.
    pub const JOB_BYTES: u64 = 512 << 20;
    /// Job results are kept a week.
    pub const JOBS_DAYS: u64 = 7;
    /// Requests of up to this many sources are answered inline.
    pub const INLINE_SOURCES: usize = 24;
    /// Expensive requests one client may have in progress.
    pub const CLIENT_CONCURRENCY: usize = 8;
    /// Expensive requests one client may start per second.
    pub const CLIENT_RATE: f64 = 50.0;
    /// Expensive requests one client may start in a burst.
    pub const CLIENT_BURST: u32 = 100;
    /// Jobs one client may submit per minute.
    pub const CLIENT_JOBS_PER_MINUTE: u32 = 20;
    /// Seconds to send request headers.
    pub const HEADER_TIMEOUT_S: u64 = 10;
    /// Seconds to send a request body.
    pub const BODY_TIMEOUT_S: u64 = 30;
    /// Seconds to answer a request.
    pub const REQUEST_TIMEOUT_S: u64 = 60;
    /// Seconds a request may wait for memory.
    pub const MEMORY_WAIT_S: u64 = 10;
}

impl Config {
    /// The SQLite URL of a database file, created if absent.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    /// The sample survey's database file inside `dir`.
    pub fn sample_db_file(dir: &Path) -> PathBuf {
        dir.join("wisecut.db")
    }

    /// The sample survey's data directory inside `dir`.
    pub fn sample_data_dir(dir: &Path) -> PathBuf {
        dir.join("data")
    }

    /// A configuration with default limits for the given store, cache
    /// directory and address.
    pub fn new(db_url: String, data_dir: PathBuf, cache_dir: PathBuf, bind: SocketAddr) -> Self {
        Self {
            db_url,
            data_dir,
            bind,
            cache_dir: cache_dir.clone(),
            cache_bytes: defaults::CACHE_BYTES,
            sidecar_bytes: defaults::SIDECAR_BYTES,
            row_cache_bytes: defaults::ROW_CACHE_BYTES,
            max_cutout_px: defaults::MAX_CUTOUT_PX,
            public_url: format!("http://{bind}"),
            public_url_fixed: false,
            aladin_dir: None,
            aladin_url: defaults::ALADIN_URL.to_owned(),
            jobs_dir: cache_dir.join("jobs"),
            jobs_bytes: defaults::JOBS_BYTES,
            job_bytes: defaults::JOB_BYTES,
            jobs_days: defaults::JOBS_DAYS,
            shared_store: None,
            inline_sources: defaults::INLINE_SOURCES,
            memory_bytes: default_memory_bytes(),
            limits: ClientLimits::default(),
            stores: crate::stores::StoreSettings::default(),
            block_cache_bytes: crate::stores::DEFAULT_BLOCK_CACHE_BYTES,
        }
    }

    /// Checks what can be checked before anything runs.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.db_url.starts_with("sqlite:")
            || self.db_url.starts_with("postgres://")
            || self.db_url.starts_with("postgresql://"))
        {
            return Err(format!(
                "--db {:?}: expected a sqlite://… or postgres://… URL",
                self.db_url
            ));
        }
        if !self.data_dir.is_dir() {
            return Err(format!(
                "--data {}: not a directory",
                self.data_dir.display()
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password that may be part of a PostgreSQL URL.
        let db = match self.db_url.split_once('@') {
            Some((head, tail)) if head.contains("://") => {
                let scheme = head.split("://").next().unwrap_or("postgres");
                format!("{scheme}://…@{tail}")
            }
            _ => self.db_url.clone(),
        };
        write!(
            f,
            "database: {db}\ndata:     {}\ncache:    {} ({} MiB products, {} MiB sidecars)\nmemory:   {} MiB in all, {} MiB of it for hot frame rows\njobs:     {} (results up to {} MiB, one job up to {} MiB, kept {} days)\nlimits:   cutouts up to {} px a side; per client {} expensive requests at once, {}/s (bursts of {}), {} jobs a minute\ntimeouts: headers {} s, body {} s, request {} s, waiting for memory {} s\nlisten:   http://{}",
            self.data_dir.display(),
            self.cache_dir.display(),
            self.cache_bytes >> 20,
            self.sidecar_bytes >> 20,
            self.memory_bytes >> 20,
            self.row_cache_bytes >> 20,
            self.jobs_dir.display(),
            self.jobs_bytes >> 20,
            self.job_bytes >> 20,
            self.jobs_days,
            self.max_cutout_px,
            self.limits.concurrency,
            self.limits.rate_per_s,
            self.limits.burst,
            self.limits.jobs_per_minute,
            self.limits.header_timeout.as_secs(),
            self.limits.body_timeout.as_secs(),
            self.limits.request_timeout.as_secs(),
            self.limits.memory_wait.as_secs(),
            self.bind
        )
    }
}
