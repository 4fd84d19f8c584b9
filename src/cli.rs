//! Command-line interface: flags parsed into validated values before anything
//! runs. The binary in `main.rs` dispatches on [`Command`].

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// wisecut: a lineage-aware astronomical image database and cutout server.
///
/// With no command, serves the embedded sample survey (building it first if
/// `sample_db/` has none).
#[derive(Debug, Parser)]
#[command(name = "wisecut", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Generate the simulated sample survey and ingest it.
    Sample(SampleArgs),
    /// Print the dependency tree of an object.
    Lineage(LineageArgs),
    /// Ingest FITS files described by a lineage manifest.
    Ingest(IngestArgs),
    /// Match SourceLists by position into a new AssociateList.
    Associate(AssociateArgs),
    /// Cut a rectangle out of a FITS file (no catalogue needed).
    Cutout(CutoutArgs),
    /// Users: add, set a password, API tokens.
    #[command(subcommand)]
    User(UserCommand),
    /// Projects: add, members.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Set the privileges of objects (by id, or those a table query finds).
    Privileges(PrivilegesArgs),
    /// Data roots: register or move one (directory or remote store).
    #[command(subcommand)]
    Root(crate::stores::RootCommand),
}

/// How a command gets a password: never as a plain argument (it would be
/// in the shell history and in `ps`).
#[derive(Debug, Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input (else
    /// `WISECUT_PASSWORD`, else a prompt on the terminal).
    #[arg(long)]
    pub password_stdin: bool,
}

/// `wisecut user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// The user name (letters, digits, '_', '-', '.').
        name: String,
        /// The user sees and may change everything.
        #[arg(long)]
        superuser: bool,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordArgs,
        /// Catalogue.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a user's password (their browser sessions end).
    Passwd {
        /// The user name.
        name: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordArgs,
        /// Catalogue.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make an API token for a user (printed once), list or revoke tokens.
    Token {
        /// The user name.
        name: String,
        /// What the new token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Revoke token number ID instead of making one.
        #[arg(long, value_name = "ID", conflicts_with = "list")]
        revoke: Option<i64>,
        /// List the user's tokens (never their secrets) instead.
        #[arg(long)]
        list: bool,
        /// Catalogue.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `wisecut project …`.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Add a project.
    Add {
        /// The project name (letters, digits, '_', '-', '.').
        name: String,
        /// What the project is.
        #[arg(long, default_value = "")]
        description: String,
        /// Catalogue.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add a user to a project, change their role, or remove them.
    Member {
        /// The project.
        project: String,
        /// The user.
        user: String,
        /// The role: member, or admin (may change the privileges of the
        /// project's objects).
        #[arg(long, default_value = "member", value_parser = ["member", "admin"])]
        role: String,
        /// Remove the user from the project instead.
        #[arg(long, conflicts_with = "role")]
        remove: bool,
        /// Catalogue.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `wisecut privileges`.
#[derive(Debug, Args, Clone)]
pub struct PrivilegesArgs {
    /// The object ids, then the level: 1 or private (the creator working
    /// in the object's project), 2 or project (its members working in it),
    /// 3 or users (every signed-in user), 4 or public. With --query, the
    /// level only.
    #[arg(required = true, value_name = "OBJECT_ID… LEVEL")]
    pub args: Vec<String>,
    /// A condition of the browse table (as on its web page, e.g.
    /// `filter = r` or `mjd_obs > 60000`) choosing the objects instead of
    /// ids; with --table.
    #[arg(long, requires = "table")]
    pub query: Vec<String>,
    /// The table --query runs on: a frame class (e.g. ReducedScienceFrame)
    /// or SourceList.
    #[arg(long)]
    pub table: Option<String>,
    /// Act as this user (who must be each object's creator or an admin of
    /// its project) instead of as the database's owner.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// Catalogue.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `wisecut cutout`: the cutout engine on a file, as the API uses it.
#[derive(Debug, Args, Clone)]
pub struct CutoutArgs {
    /// The FITS file.
    pub file: PathBuf,
    /// Zero-based HDU (default: the first image HDU).
    #[arg(long)]
    pub hdu: Option<usize>,
    /// Centre RA (degrees or sexagesimal hours).
    #[arg(long, allow_hyphen_values = true)]
    pub ra: Option<String>,
    /// Centre Dec (degrees or sexagesimal).
    #[arg(long, allow_hyphen_values = true)]
    pub dec: Option<String>,
    /// Centre column, FITS 1-based.
    #[arg(long, allow_hyphen_values = true)]
    pub x: Option<f64>,
    /// Centre row, FITS 1-based.
    #[arg(long, allow_hyphen_values = true)]
    pub y: Option<f64>,
    /// Square size (in --unit).
    #[arg(long)]
    pub size: Option<f64>,
    /// Width (in --unit).
    #[arg(long)]
    pub width: Option<f64>,
    /// Height (in --unit).
    #[arg(long)]
    pub height: Option<f64>,
    /// Unit of the size: px, arcsec, arcmin or deg.
    #[arg(long, default_value = "px")]
    pub unit: String,
    /// Keep asinh-compressed (BSOFTEN/BOFFSET) values as stored.
    #[arg(long)]
    pub raw: bool,
    /// Output format: fits, png, png16 or jpg.
    #[arg(long, default_value = "fits")]
    pub format: String,
    /// Stretch for images: linear, sqrt, log, asinh or histeq.
    #[arg(long, default_value = "linear")]
    pub stretch: String,
    /// Interval for images: minmax, percentile[:P], zscale or manual (with
    /// --min/--max).
    #[arg(long, default_value = "percentile")]
    pub interval: String,
    /// Data value shown black (interval manual).
    #[arg(long, allow_hyphen_values = true)]
    pub min: Option<f64>,
    /// Data value shown white (interval manual).
    #[arg(long, allow_hyphen_values = true)]
    pub max: Option<f64>,
    /// Output file (must not exist).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Where the catalogue and the data are.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// Database URL (sqlite://FILE?mode=rwc or postgres://…); defaults to the
    /// sample survey's `sample_db/wisecut.db`.
    #[arg(long, env = "WISECUT_DB")]
    pub db: Option<String>,
    /// Root directory of the local data store; defaults to `sample_db/data`.
    #[arg(long, env = "WISECUT_DATA")]
    pub data: Option<PathBuf>,
}

impl StoreArgs {
    /// True when neither the database nor the data directory was given, so
    /// the embedded sample survey is meant.
    pub fn is_sample(&self) -> bool {
        self.db.is_none() && self.data.is_none()
    }
}

/// `wisecut serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Catalogue and data.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "WISECUT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory for the on-demand cache; defaults to `sample_db/cache` for
    /// the sample survey and `wisecut-cache` in the working directory
    /// otherwise.
    #[arg(long, env = "WISECUT_CACHE")]
    pub cache: Option<PathBuf>,
    /// Bound of the product cache in MiB.
    #[arg(long, env = "WISECUT_CACHE_MIB", default_value_t = crate::config::defaults::CACHE_BYTES >> 20)]
    pub cache_mib: u64,
    /// Bound of the decompressed-sidecar store in MiB.
    #[arg(long, env = "WISECUT_SIDECAR_MIB", default_value_t = crate::config::defaults::SIDECAR_BYTES >> 20)]
    pub sidecar_mib: u64,
    /// Memory for hot rows of frames in MiB (0: none): frames cut again and
    /// again are then served from memory.
    #[arg(long, env = "WISECUT_ROW_CACHE_MIB", default_value_t = crate::config::defaults::ROW_CACHE_BYTES >> 20)]
    pub row_cache_mib: u64,
    /// Largest cutout side in pixels.
    #[arg(long, env = "WISECUT_MAX_CUTOUT", default_value_t = crate::config::defaults::MAX_CUTOUT_PX)]
    pub max_cutout: usize,
    /// Public base URL of this server (for links written into files).
    #[arg(long, env = "WISECUT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A local Aladin Lite (the `dist/` directory of the npm package
    /// `aladin-lite`); default: `node_modules/aladin-lite/dist` when present.
    #[arg(long, env = "WISECUT_ALADIN_DIR")]
    pub aladin_dir: Option<PathBuf>,
    /// Where pages load Aladin Lite from when there is no local copy.
    #[arg(long, env = "WISECUT_ALADIN_URL", default_value = crate::config::defaults::ALADIN_URL)]
    pub aladin_url: String,
    /// Directory of job results (default: `jobs` inside the cache).
    #[arg(long, env = "WISECUT_JOBS_DIR")]
    pub jobs_dir: Option<PathBuf>,
    /// Bound of all job results together in MiB (oldest removed first).
    #[arg(long, env = "WISECUT_JOBS_MIB", default_value_t = crate::config::defaults::JOBS_BYTES >> 20)]
    pub jobs_mib: u64,
    /// Bound of one job's result files in MiB, enforced while they are
    /// written.
    #[arg(long, env = "WISECUT_JOB_MIB", default_value_t = crate::config::defaults::JOB_BYTES >> 20)]
    pub job_mib: u64,
    /// Days a job's result files are kept.
    #[arg(long, env = "WISECUT_JOBS_DAYS", default_value_t = crate::config::defaults::JOBS_DAYS)]
    pub jobs_days: u64,
    /// Where finished job results are stored for every server of a
    /// deployment: a shared directory or `s3://bucket/prefix[?endpoint=URL]`
    /// (credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "WISECUT_SHARED_STORE")]
    pub shared_store: Option<String>,
    /// Dependency-cutout requests of up to this many sources are answered
    /// at once; larger ones become queued jobs.
    #[arg(long, env = "WISECUT_INLINE_SOURCES", default_value_t = crate::config::defaults::INLINE_SOURCES)]
    pub inline_sources: usize,
    /// Memory the server may use in MiB (caches, requests and jobs
    /// together); default: 40% of the machine's memory.
    #[arg(long, env = "WISECUT_MEMORY_MIB")]
    pub memory_mib: Option<u64>,
    /// Expensive requests (cutouts, renders, exports, jobs) one client may
    /// have in progress at once.
    #[arg(long, env = "WISECUT_CLIENT_CONCURRENCY", default_value_t = crate::config::defaults::CLIENT_CONCURRENCY)]
    pub client_concurrency: usize,
    /// Expensive requests one client may start per second, on average.
    #[arg(long, env = "WISECUT_CLIENT_RATE", default_value_t = crate::config::defaults::CLIENT_RATE)]
    pub client_rate: f64,
    /// Expensive requests one client may start in a burst.
    #[arg(long, env = "WISECUT_CLIENT_BURST", default_value_t = crate::config::defaults::CLIENT_BURST)]
    pub client_burst: u32,
    /// New jobs one client may submit per minute.
    #[arg(long, env = "WISECUT_CLIENT_JOBS_PER_MINUTE", default_value_t = crate::config::defaults::CLIENT_JOBS_PER_MINUTE)]
    pub client_jobs_per_minute: u32,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "WISECUT_HEADER_TIMEOUT", default_value_t = crate::config::defaults::HEADER_TIMEOUT_S)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "WISECUT_BODY_TIMEOUT", default_value_t = crate::config::defaults::BODY_TIMEOUT_S)]
    pub body_timeout: u64,
    /// Seconds after which a request is answered 503 whatever it was doing
    /// (work that takes longer belongs in a job).
    #[arg(long, env = "WISECUT_REQUEST_TIMEOUT", default_value_t = crate::config::defaults::REQUEST_TIMEOUT_S)]
    pub request_timeout: u64,
    /// Seconds a request may wait for memory before it is answered 503.
    #[arg(long, env = "WISECUT_MEMORY_WAIT", default_value_t = crate::config::defaults::MEMORY_WAIT_S)]
    pub memory_wait: u64,
    /// Remote stores: block cache and timeouts.
    #[command(flatten)]
    pub remote: crate::stores::RemoteArgs,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            store: StoreArgs::default(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cache: None,
            cache_mib: crate::config::defaults::CACHE_BYTES >> 20,
            sidecar_mib: crate::config::defaults::SIDECAR_BYTES >> 20,
            row_cache_mib: crate::config::defaults::ROW_CACHE_BYTES >> 20,
            memory_mib: None,
            client_concurrency: crate::config::defaults::CLIENT_CONCURRENCY,
            client_rate: crate::config::defaults::CLIENT_RATE,
            client_burst: crate::config::defaults::CLIENT_BURST,
            client_jobs_per_minute: crate::config::defaults::CLIENT_JOBS_PER_MINUTE,
            header_timeout: crate::config::defaults::HEADER_TIMEOUT_S,
            body_timeout: crate::config::defaults::BODY_TIMEOUT_S,
            request_timeout: crate::config::defaults::REQUEST_TIMEOUT_S,
            memory_wait: crate::config::defaults::MEMORY_WAIT_S,
            remote: crate::stores::RemoteArgs::default(),
            max_cutout: crate::config::defaults::MAX_CUTOUT_PX,
            public_url: None,
            aladin_dir: None,
            aladin_url: crate::config::defaults::ALADIN_URL.to_owned(),
            jobs_dir: None,
            jobs_mib: crate::config::defaults::JOBS_BYTES >> 20,
            jobs_days: crate::config::defaults::JOBS_DAYS,
            shared_store: None,
            job_mib: crate::config::defaults::JOB_BYTES >> 20,
            inline_sources: crate::config::defaults::INLINE_SOURCES,
        }
    }
}

/// `wisecut sample`.
#[derive(Debug, Args, Clone)]
pub struct SampleArgs {
    /// Directory to build the survey in (gets `data/` and `wisecut.db`).
    #[arg(long, default_value = crate::config::SAMPLE_DIR)]
    pub out: PathBuf,
    /// Survey size: `small` (4 × 512² chips, the default), `bench` (4 × 2048²),
    /// `tiny` (for tests) or `large` (a million frames sharing a few pixel
    /// files, into `--db`).
    #[arg(long, default_value = "small", value_parser = ["small", "bench", "tiny", "large"])]
    pub size: String,
    /// `--size large`: the catalogue to load (must be empty).
    #[arg(long, env = "WISECUT_DB")]
    pub db: Option<String>,
    /// `--size large`: at least this many frames (default 1,000,000 on
    /// PostgreSQL, 20,000 on SQLite).
    #[arg(long)]
    pub frames: Option<u64>,
    /// `--size large`: about this many sources (default 100,000,000 on
    /// PostgreSQL, 1,000,000 on SQLite).
    #[arg(long)]
    pub sources: Option<u64>,
    /// `--size large`: distinct sky fields (pointings).
    #[arg(long, default_value_t = 200)]
    pub fields: usize,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = crate::sample::DEFAULT_SEED)]
    pub seed: u64,
    /// Write only the FITS files and manifest into OUT, without ingesting.
    #[arg(long)]
    pub files_only: bool,
}

/// `wisecut lineage`.
#[derive(Debug, Args, Clone)]
pub struct LineageArgs {
    /// Object id to start from.
    pub object_id: i64,
    /// Walk downward (what was made from it) instead of upward.
    #[arg(long)]
    pub down: bool,
    /// Maximum number of levels (default: all).
    #[arg(long)]
    pub depth: Option<u32>,
    /// Print JSON instead of a tree.
    #[arg(long)]
    pub json: bool,
    /// Catalogue and data.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `wisecut ingest`.
#[derive(Debug, Args, Clone)]
pub struct IngestArgs {
    /// Files, directories (walked recursively) and glob patterns of a
    /// pipeline's products; or one lineage manifest (`.json`/`.toml`) whose
    /// paths are relative to its directory.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// A manifest (JSON or TOML) that overrides or completes what the
    /// headers say (classes and dependencies by file).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Print, per file, the class, metadata and each inferred edge with the
    /// rule that found it, and the unresolved references; write nothing.
    #[arg(long, alias = "dry-run")]
    pub explain: bool,
    /// Ingest what can be ingested and list the failures at the end (the
    /// exit status is still non-zero).
    #[arg(long)]
    pub keep_going: bool,
    /// Copy the files into the store (`--data`) instead of recording them
    /// in place.
    #[arg(long)]
    pub copy: bool,
    /// Register a named data root, NAME=DIR; files under it are recorded by
    /// their path relative to it.
    #[arg(long = "root", value_name = "NAME=DIR")]
    pub roots: Vec<String>,
    /// Accept files outside every data root by registering their common
    /// directory as the root NAME.
    #[arg(long, value_name = "NAME")]
    pub allow_outside: Option<String>,
    /// Catalog column mapping for tables that do not use SExtractor's names,
    /// e.g. `RA=ra_deg,DEC=dec_deg,MAG_AUTO=gmag`.
    #[arg(long)]
    pub columns: Option<String>,
    /// Creator of the new products.
    #[arg(long)]
    pub creator: Option<String>,
    /// Project of the new products.
    #[arg(long)]
    pub project: Option<String>,
    /// Privileges of the new products: 1 private, 2 project, 3 every
    /// signed-in user, 4 public (the default).
    #[arg(long)]
    pub privileges: Option<i32>,
    /// Catalogue and data.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `wisecut associate`.
#[derive(Debug, Args, Clone)]
pub struct AssociateArgs {
    /// How the lists are matched: `chain` (each list with the next),
    /// `master` (every list with the first) or `matched` (master
    /// associations with a member in every list).
    #[arg(long = "type", value_parser = ["chain", "master", "matched"])]
    pub kind: String,
    /// Search radius in arcsec (greater than 0, at most 3600).
    #[arg(long)]
    pub radius: f64,
    /// Name of the new AssociateList (default: the rule, the lists and the
    /// radius).
    #[arg(long)]
    pub name: Option<String>,
    /// The member SourceLists' SLIDs, as `1:5,20` (ascending; the first is
    /// the master).
    pub slids: String,
    /// Catalogue and data.
    #[command(flatten)]
    pub store: StoreArgs,
}
