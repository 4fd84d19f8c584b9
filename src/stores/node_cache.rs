//! One cache directory, several server processes: each process claims a
//! directory of its own with a lock file, so two `wisecut serve` on one host
//! never write the same product cache, sidecars or job results.
//!
//! The first process takes the cache directory itself (its layout is what a
//! single server always had); a process that finds it locked takes
//! `<cache>/nodes/1`, then `2`, … and says so in its log. Locks are advisory
//! `flock`s held for the life of the process (released by the kernel when it
//! dies, even by `kill -9`), so a restarted server gets its directory back.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Most processes that may share one cache directory.
pub const MAX_NODES: usize = 64;

/// A claimed cache directory; the claim lasts while this value lives.
#[derive(Debug)]
pub struct CacheClaim {
    /// The directory this process uses.
    pub dir: PathBuf,
    /// 0 for the cache directory itself, n for `<cache>/nodes/<n>`.
    pub node: usize,
    _lock: File,
}

/// Claims `cache` or, when another process holds it, the first free
/// `<cache>/nodes/<n>`.
pub fn claim(cache: &Path) -> std::io::Result<CacheClaim> {
    for node in 0..=MAX_NODES {
        let dir = if node == 0 {
            cache.to_path_buf()
        } else {
            cache.join("nodes").join(node.to_string())
        };
        std::fs::create_dir_all(&dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        match lock.try_lock() {
            Ok(()) => {
                if node > 0 {
                    tracing::info!(
                        "cache directory {} is in use by another wisecut process; \
                         this one uses {} (products, sidecars and job results of its own)",
                        cache.display(),
                        dir.display()
                    );
                }
                return Ok(CacheClaim {
                    dir,
                    node,
                    _lock: lock,
                });
            }
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "cache directory {}: all {MAX_NODES} node directories are in use by other processes; \
         give this one another --cache",
        cache.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_gets_its_own_directory_and_the_first_comes_back_after_release() {
        let root = tempfile::tempdir().unwrap();
        let a = claim(root.path()).unwrap();
        assert_eq!((a.node, a.dir.as_path()), (0, root.path()));
        let b = claim(root.path()).unwrap();
        assert_eq!(b.node, 1);
        assert_eq!(b.dir, root.path().join("nodes/1"));
        drop(a);
        let c = claim(root.path()).unwrap();
        assert_eq!(c.node, 0, "a released directory is claimed again");
    }
}
