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
            "database: {db}\ndata:     {}\nlisten:   http://{}",
            self.data_dir.display(),
            self.bind
        )
    }
}
