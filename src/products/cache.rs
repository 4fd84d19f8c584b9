//! Content-addressed on-disk cache for derived products ("make it on demand,
//! if not already present").
//!
//! Rendered images, cutouts of compressed frames, GIFs and similar products
//! are expensive to make and cheap to keep. [`DiskCache::get_or_make`] returns
//! the stored bytes for a [`CacheKey`] or runs the caller's maker once and
//! stores the result.
//!
//! Guarantees:
//!
//! * **Bounded.** The total size of stored entries never exceeds `max_bytes`
//!   after a store completes, and [`DiskCache::open`] evicts down to the bound,
//!   so lowering the configured size takes effect at the next start.
//!   Least-recently-used entries go first.
//! * **Atomic, verified on read.** Entries are written to
//!   `dir/tmp/<unique>.part` and renamed into place, so a reader never sees
//!   a file being written. They are *not* synced to the device: products
//!   can always be made again, so instead of paying an `fsync` on every
//!   store, every entry carries its length and a CRC-32 of its bytes in a
//!   16-byte header, and a read that finds a torn or altered file (after a
//!   crash, or a hand edit) drops the entry and makes the product anew.
//!   Leftover `.part` files are deleted at open.
//! * **Single-flight.** Concurrent requests for the same key wait for the one
//!   production in progress instead of repeating it. If that production fails,
//!   every waiter gets the error (errors are not cached); if it is cancelled
//!   (the request future is dropped), the waiters retry and one of them makes
//!   the product.
//! * **Storing is best effort.** A failure to store (disk full, permissions)
//!   does not fail the request: the bytes are returned, the failure is logged
//!   and counted in [`CacheStats::store_errors`].
//!
//! Layout on disk:
//!
//! ```text
//! dir/.lock                 held (flock) while a DiskCache is open on dir
//! dir/tmp/<unique>.part     entries being written
//! dir/ab/abcdef….bin        entry with key hex "abcdef…" (64 hex chars):
//!                           "WCC1", u32 CRC-32, u64 length (LE), the bytes
//! ```
//!
//! Files of any other name are *ignored*: they are neither indexed, counted
//! nor deleted, so pointing the cache at the wrong directory cannot destroy
//! unrelated data (apart from `*.part` files in its `tmp/` and `*.bin` files
//! with a well-formed key name in a matching two-hex-char directory).
//!
//! The in-memory index is the truth for eviction. Recency survives restarts
//! through the files' modification times, which a hit updates.
//!
//! One `DiskCache` per directory: the index lives in memory, so two instances
//! on one directory would each think they own the whole budget. `open` takes
//! an exclusive lock on `dir/.lock` and fails with [`CacheError::Locked`] if
//! another instance (in this or another process) holds it.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// A content address: SHA-256 of a canonical description of the product.
///
/// Include everything the product depends on in the parts (source file
/// identity, parameters, and a version tag of the code that makes it), so that
/// a change of any of them yields a different key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Hashes `parts` into a key. Each part is prefixed by its length (as a
    /// little-endian `u64`) so that part boundaries matter:
    /// `of(&[b"ab", b"c"]) != of(&[b"a", b"bc"])`.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        CacheKey(hasher.finalize().into())
    }

    /// Wraps raw digest bytes (e.g. a key received from elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CacheKey(bytes)
    }

    /// The raw 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters; also the entry's file stem on disk.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lower-case hex characters, the form [`CacheKey::hex`]
    /// produces. Upper case is rejected so that each key has exactly one
    /// file name on disk.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(CacheKey(out))
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// How [`DiskCache::get_or_make`] obtained the bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Read from the cache.
    Hit,
    /// This call ran the maker.
    Made,
    /// Another concurrent call ran the maker; this one waited for it.
    Joined,
}

/// Errors of opening or maintaining the cache. Requests never fail with
/// these: store failures are logged and counted instead.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file system operation on the cache directory failed.
    #[error("cache I/O error on {path}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another `DiskCache` (in this or another process) has the directory
    /// open.
    #[error("cache directory {0} is in use by another DiskCache")]
    Locked(PathBuf),
}

/// A snapshot of the cache's counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CacheStats {
    /// Entries stored.
    pub entries: usize,
    /// Total size of stored entries in bytes (always `<= max_bytes`).
    pub bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// Requests served from disk.
    pub hits: u64,
    /// Requests that ran the maker.
    pub misses: u64,
    /// Requests that waited for another request's maker and got its bytes.
    pub joined: u64,
    /// Entries deleted to stay within the bound (including at open).
    pub evictions: u64,
    /// Products that could not be stored (they were still returned).
    pub store_errors: u64,
}

/// A bounded, content-addressed, single-flight on-disk cache.
///
/// Cloning is cheap (an `Arc`); clones share the same index and directory.
#[derive(Clone, Debug)]
pub struct DiskCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    /// Index and in-flight map. Held only for short in-memory updates, never
    /// across an `.await` or file I/O, so the async hit path never waits on
    /// the disk while holding it.
    state: Mutex<State>,
    /// Serialises renames into and unlinks out of the entry files, always
    /// together with the matching index update. Without it an eviction could
    /// unlink a file that a concurrent store of the same key had just renamed
    /// into place, leaving an index entry without a file. Taken only on
    /// blocking threads (and at open), never on the executor.
    disk: Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
    joined: AtomicU64,
    evictions: AtomicU64,
    store_errors: AtomicU64,
    /// Source of unique temp-file names and flight ids.
    seq: AtomicU64,
    /// Requests that have started waiting for another's production; lets
    /// tests release a maker only once all waiters are queued, instead of
    /// relying on timing.
    #[cfg(test)]
    waits: AtomicU64,
    /// Exclusive flock on `dir/.lock`, released when the last clone is
    /// dropped.
    _lock: File,
}

#[derive(Debug, Default)]
struct State {
    index: HashMap<CacheKey, Entry>,
    /// Recency order: tick → key; the first entry is least recently used.
    lru: BTreeMap<u64, CacheKey>,
    total: u64,
    tick: u64,
    inflight: HashMap<CacheKey, Flight>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    size: u64,
    /// Position in `lru`; changes on every touch.
    tick: u64,
    /// Identifies this stored version, so that invalidating a stale lookup
    /// cannot remove a newer version of the same key.
    generation: u64,
}

#[derive(Debug)]
struct Flight {
    id: u64,
    rx: watch::Receiver<FlightState>,
}

/// What waiters of a production see. Errors are type-erased because the
/// in-flight map is shared by callers with different error types.
#[derive(Clone)]
enum FlightState {
    Pending,
    Done(Bytes),
    Failed(Arc<dyn Any + Send + Sync>),
}

impl std::fmt::Debug for FlightState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlightState::Pending => f.write_str("Pending"),
            FlightState::Done(b) => write!(f, "Done({} bytes)", b.len()),
            FlightState::Failed(_) => f.write_str("Failed"),
        }
    }
}

/// Owned by the caller that makes a product. Dropping it (on completion,
/// error, panic or cancellation) removes the in-flight entry and closes the
/// channel, so waiters never hang: if no result was published they retry.
struct FlightGuard {
    inner: Arc<Inner>,
    key: CacheKey,
    id: u64,
    tx: watch::Sender<FlightState>,
}

impl FlightGuard {
    fn publish(&self, state: FlightState) {
        // send_replace stores the value even when nobody is subscribed yet;
        // callers that subscribe later (before the flight is removed) see it.
        self.tx.send_replace(state);
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut st = self.inner.state();
        // Only remove our own flight: after removal a new one may have begun.
        if st.inflight.get(&self.key).is_some_and(|f| f.id == self.id) {
            st.inflight.remove(&self.key);
        }
    }
}

/// What [`DiskCache::claim_now`] found.
#[derive(Debug)]
pub enum Claim {
    /// The stored bytes.
    Ready(Bytes),
    /// Another caller is making them.
    Busy,
    /// Nobody has them: make them and finish the production.
    Make(Production),
}

/// The right and duty to make one product (see [`DiskCache::claim_now`]).
pub struct Production {
    inner: Arc<Inner>,
    guard: FlightGuard,
}

impl std::fmt::Debug for Production {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Production")
            .field("key", &self.guard.key)
            .finish()
    }
}

impl Production {
    /// Hands the bytes to any waiters and stores them (on this thread,
    /// which must be allowed to block).
    pub fn finish(self, bytes: Bytes) {
        self.guard.publish(FlightState::Done(bytes.clone()));
        self.inner.store_now(self.guard, bytes);
    }

    /// Tells the waiters the production failed with `error`; nothing is
    /// stored, so a later request tries again.
    pub fn fail<E: Clone + Send + Sync + 'static>(self, error: &E) {
        self.guard
            .publish(FlightState::Failed(Arc::new(error.clone())));
    }
}

/// What [`DiskCache::find_or_claim`] found.
enum Found {
    /// The bytes, from disk or from another request's production.
    Ready(Bytes, Outcome),
    /// Nobody has them: the caller makes them.
    Claimed(FlightGuard),
}

enum Action {
    Read { generation: u64, size: u64 },
    Wait(watch::Receiver<FlightState>),
    Make(FlightGuard),
}

impl DiskCache {
    /// Opens the cache in `dir` (creating it), bounded to `max_bytes`.
    ///
    /// Deletes leftover `tmp/*.part` files from a crash, indexes existing
    /// entries by last access (file modification time) and evicts the least
    /// recently used ones until the total is within `max_bytes`.
    ///
    /// This does blocking file I/O proportional to the number of entries:
    /// call it at startup or inside `spawn_blocking`.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, CacheError> {
        let dir = dir.into();
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(CacheError::Locked(dir)),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }

        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        // Nobody else can be writing here (we hold the lock), so every .part
        // is debris of a crashed or killed writer.
        for item in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let item = item.map_err(io_err(&tmp))?;
            let path = item.path();
            if path.extension().is_some_and(|e| e == "part")
                && let Err(e) = fs::remove_file(&path)
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove temp file");
            }
        }

        let mut found = scan_entries(&dir)?;
        // Oldest first; ties broken by key so the order is deterministic.
        found.sort_by_key(|&(key, _, mtime)| (mtime, key));

        let inner = Inner {
            dir,
            max_bytes,
            state: Mutex::new(State::default()),
            disk: Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            #[cfg(test)]
            waits: AtomicU64::new(0),
            _lock: lock,
        };
        let victims = {
            let mut st = inner.state();
            for (key, size, _) in found {
                let generation = inner.next_seq();
                st.insert(key, size, generation);
            }
            st.evict_to(max_bytes)
        };
        for (key, _) in &victims {
            inner.unlink_entry(key);
        }
        inner
            .evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        let cache = DiskCache {
            inner: Arc::new(inner),
        };
        let s = cache.stats();
        tracing::info!(
            dir = %cache.inner.dir.display(),
            entries = s.entries,
            bytes = s.bytes,
            max_bytes,
            evicted = victims.len(),
            "disk cache opened"
        );
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where the entry for `key` is stored (whether or not it exists).
    pub fn path_of(&self, key: &CacheKey) -> PathBuf {
        self.inner.entry_path(key)
    }

    /// Returns the cached bytes for `key`, or makes them.
    ///
    /// On a miss, `make` runs exactly once among all concurrent callers with
    /// the same key; the others wait and get its result ([`Outcome::Joined`]).
    /// The product is stored atomically and least-recently-used entries are
    /// evicted until the total is within `max_bytes`; a product larger than
    /// `max_bytes` is returned but not stored. Store failures are logged and
    /// counted, never returned.
    ///
    /// If `make` fails, every waiter gets a clone of the error and nothing is
    /// cached, so a later call tries again. The error type must therefore be
    /// `Clone` (wrap non-`Clone` errors in an `Arc`). A waiter whose error type
    /// differs from the maker's makes the product itself instead.
    ///
    /// `make` runs on the caller's task: if this future is dropped while
    /// making (e.g. the client disconnected), the production is abandoned and
    /// the waiters retry, one of them becoming the new maker.
    pub async fn get_or_make<F, Fut, B, E>(
        &self,
        key: CacheKey,
        make: F,
    ) -> Result<(Bytes, Outcome), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<B, E>>,
        B: Into<Bytes>,
        E: Clone + Send + Sync + 'static,
    {
        let guard = match self.find_or_claim::<E>(key).await? {
            Found::Ready(bytes, outcome) => return Ok((bytes, outcome)),
            Found::Claimed(guard) => guard,
        };
        match make().await {
            Ok(made) => {
                let bytes: Bytes = made.into();
                // Waiters get the bytes now rather than after the store.
                guard.publish(FlightState::Done(bytes.clone()));
                self.store(guard, bytes.clone()).await;
                Ok((bytes, Outcome::Made))
            }
            Err(e) => {
                guard.publish(FlightState::Failed(Arc::new(e.clone())));
                drop(guard);
                Err(e)
            }
        }
    }

    /// [`DiskCache::get_or_make`] for a maker that runs on a blocking
    /// thread: `admit` runs first, on the caller's task (to wait for a
    /// permit to use a core, say), and its value is held while `make` runs;
    /// the product is stored on the same blocking thread. A miss then costs
    /// one hand-off to a blocking thread instead of two, and a client that
    /// goes away no longer abandons a product half made: it is finished and
    /// stored for the next requester.
    pub async fn get_or_make_blocking<A, AF, P, M, B, E>(
        &self,
        key: CacheKey,
        admit: A,
        make: M,
    ) -> Result<(Bytes, Outcome), E>
    where
        A: FnOnce() -> AF,
        AF: Future<Output = Result<P, E>>,
        P: Send + 'static,
        M: FnOnce() -> Result<B, E> + Send + 'static,
        B: Into<Bytes>,
        E: Clone + Send + Sync + From<tokio::task::JoinError> + 'static,
    {
        let guard = match self.find_or_claim::<E>(key).await? {
            Found::Ready(bytes, outcome) => return Ok((bytes, outcome)),
            Found::Claimed(guard) => guard,
        };
        let admitted = match admit().await {
            Ok(a) => a,
            Err(e) => {
                guard.publish(FlightState::Failed(Arc::new(e.clone())));
                return Err(e);
            }
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _admitted = admitted;
            match make() {
                Ok(made) => {
                    let bytes: Bytes = made.into();
                    guard.publish(FlightState::Done(bytes.clone()));
                    inner.store_now(guard, bytes.clone());
                    Ok((bytes, Outcome::Made))
                }
                Err(e) => {
                    guard.publish(FlightState::Failed(Arc::new(e.clone())));
                    Err(e)
                }
            }
        })
        .await?
    }

    /// Reads `key`'s entry, or waits for its production in flight, or
    /// claims the production for the caller.
    async fn find_or_claim<E: Clone + 'static>(&self, key: CacheKey) -> Result<Found, E> {
        loop {
            match self.inner.lookup(key) {
                Action::Read { generation, size } => {
                    if let Some(bytes) = self.read(key, generation, size).await {
                        self.inner.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(Found::Ready(bytes, Outcome::Hit));
                    }
                    // The entry vanished or was bad (and is now dropped from
                    // the index): look again, which makes or joins.
                }
                Action::Wait(mut rx) => {
                    #[cfg(test)]
                    self.inner.waits.fetch_add(1, Ordering::SeqCst);
                    // Err means the maker dropped its guard without
                    // publishing: cancelled or panicked. Retry.
                    let state = rx
                        .wait_for(|s| !matches!(s, FlightState::Pending))
                        .await
                        .map(|s| s.clone());
                    match state {
                        Ok(FlightState::Done(bytes)) => {
                            self.inner.joined.fetch_add(1, Ordering::Relaxed);
                            return Ok(Found::Ready(bytes, Outcome::Joined));
                        }
                        Ok(FlightState::Failed(err)) => {
                            if let Some(e) = err.downcast_ref::<E>() {
                                return Err(e.clone());
                            }
                            // Different error type: we cannot report it, so
                            // wait for the flight to go and make it ourselves.
                            wait_flight_gone(rx).await;
                        }
                        Ok(FlightState::Pending) | Err(_) => {}
                    }
                }
                Action::Make(guard) => {
                    self.inner.misses.fetch_add(1, Ordering::Relaxed);
                    return Ok(Found::Claimed(guard));
                }
            }
        }
    }

    /// Returns the cached bytes for `key` if present, without making them
    /// and without waiting for a production in flight. Counts a hit when
    /// found; a miss here does not count (nothing is made).
    pub async fn get(&self, key: CacheKey) -> Option<Bytes> {
        let entry = self.inner.state().touch(&key)?;
        let bytes = self.read(key, entry.generation, entry.size).await?;
        self.inner.hits.fetch_add(1, Ordering::Relaxed);
        Some(bytes)
    }

    /// Whether `key` is stored (does not update recency).
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.inner.state().index.contains_key(key)
    }

    /// Removes `key`'s entry; returns whether it was stored. A production of
    /// `key` in flight is not affected and stores its result when done.
    pub async fn remove(&self, key: CacheKey) -> bool {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _disk = inner.disk();
            let removed = inner.state().remove(&key).is_some();
            if removed {
                inner.unlink_entry(&key);
            }
            removed
        })
        .await
        .unwrap_or(false)
    }

    /// Removes every stored entry. Productions in flight are not affected.
    pub async fn clear(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _disk = inner.disk();
            let keys: Vec<CacheKey> = {
                let mut st = inner.state();
                let keys = st.index.keys().copied().collect();
                st.index.clear();
                st.lru.clear();
                st.total = 0;
                keys
            };
            for key in &keys {
                inner.unlink_entry(key);
            }
        })
        .await;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = {
            let st = self.inner.state();
            (st.index.len(), st.total)
        };
        let i = &self.inner;
        CacheStats {
            entries,
            bytes,
            max_bytes: i.max_bytes,
            hits: i.hits.load(Ordering::Relaxed),
            misses: i.misses.load(Ordering::Relaxed),
            joined: i.joined.load(Ordering::Relaxed),
            evictions: i.evictions.load(Ordering::Relaxed),
            store_errors: i.store_errors.load(Ordering::Relaxed),
        }
    }

    /// Reads an indexed entry off the executor. Returns `None`, after
    /// dropping the entry from the index, if the file is missing (e.g. a
    /// concurrent eviction unlinked it), unreadable or of the wrong size.
    async fn read(&self, key: CacheKey, generation: u64, size: u64) -> Option<Bytes> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.read_now(key, generation, size))
            .await
            .ok()
            .flatten()
    }

    /// For code already on a blocking thread (which holds whatever it needs
    /// to make the product): the stored bytes of `key`, or the production
    /// of them claimed for the caller, or word that another caller is making
    /// them. The caller that gets a [`Production`] must make the product
    /// and [`Production::finish`] it (or [`Production::fail`]); dropping it
    /// unfinished lets waiters make it themselves. Waiting for someone
    /// else's production is async: use [`DiskCache::get_or_make_blocking`]
    /// for [`Claim::Busy`].
    pub fn claim_now(&self, key: CacheKey) -> Claim {
        loop {
            match self.inner.lookup(key) {
                Action::Read { generation, size } => {
                    if let Some(bytes) = self.inner.read_now(key, generation, size) {
                        self.inner.hits.fetch_add(1, Ordering::Relaxed);
                        return Claim::Ready(bytes);
                    }
                }
                Action::Wait(_) => return Claim::Busy,
                Action::Make(guard) => {
                    self.inner.misses.fetch_add(1, Ordering::Relaxed);
                    return Claim::Make(Production {
                        inner: self.inner.clone(),
                        guard,
                    });
                }
            }
        }
    }

    /// Writes, renames into place and indexes the product, evicting as
    /// needed. Runs entirely on a blocking thread, which also finishes if
    /// this future is dropped, so a cancelled request can neither leave a
    /// stray file nor a file missing from the index. The guard is dropped
    /// there too, after the entry is indexed: there is no window in which a
    /// new request finds neither the entry nor the flight.
    async fn store(&self, guard: FlightGuard, bytes: Bytes) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.store_now(guard, bytes)).await;
    }
}

impl Inner {
    /// Reads an indexed entry. Returns `None`, after dropping the entry from
    /// the index, if the file is missing (e.g. a concurrent eviction
    /// unlinked it), unreadable or fails its check. Blocks.
    fn read_now(&self, key: CacheKey, generation: u64, size: u64) -> Option<Bytes> {
        let path = self.entry_path(&key);
        match read_entry(&path, size) {
            Ok(data) => Some(data),
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "dropping unreadable cache entry");
                }
                self.invalidate(&key, generation);
                None
            }
        }
    }

    /// Writes, renames into place and indexes a product, evicting as
    /// needed; the flight ends (its guard is dropped) once the entry is
    /// indexed. Called on a blocking thread.
    fn store_now(&self, guard: FlightGuard, bytes: Bytes) {
        let inner = self;
        let key = guard.key;
        let size = stored_size(bytes.len());
        if size > inner.max_bytes {
            tracing::debug!(%key, size, max = inner.max_bytes, "product larger than cache, not stored");
            return;
        }
        let tmp = inner
            .dir
            .join("tmp")
            .join(format!("{}-{}.part", key.hex(), inner.next_seq()));
        let dest = inner.entry_path(&key);
        if let Err(e) = write_file(&tmp, &bytes) {
            let _ = fs::remove_file(&tmp);
            inner.store_failed(&key, &e);
            return;
        }
        let victims = {
            let disk_guard = inner.disk();
            let renamed = fs::create_dir_all(dest.parent().expect("entry path has a parent"))
                .and_then(|()| fs::rename(&tmp, &dest));
            if let Err(e) = renamed {
                drop(disk_guard);
                let _ = fs::remove_file(&tmp);
                inner.store_failed(&key, &e);
                return;
            }
            let victims = {
                let mut st = inner.state();
                let generation = inner.next_seq();
                st.insert(key, size, generation);
                // Remove the flight in the same critical section as the
                // insert (the guard's drop then finds nothing to do).
                if st.inflight.get(&key).is_some_and(|f| f.id == guard.id) {
                    st.inflight.remove(&key);
                }
                st.evict_to(inner.max_bytes)
            };
            for (victim, _) in &victims {
                inner.unlink_entry(victim);
            }
            victims
        };
        if !victims.is_empty() {
            inner
                .evictions
                .fetch_add(victims.len() as u64, Ordering::Relaxed);
            let freed: u64 = victims.iter().map(|(_, s)| s).sum();
            tracing::debug!(count = victims.len(), freed, "evicted cache entries");
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock (no user code runs under
        // it), so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn disk(&self) -> MutexGuard<'_, ()> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        let hex = key.hex();
        self.dir.join(&hex[..2]).join(format!("{hex}.bin"))
    }

    /// Finds `key` in the index (touching it), or joins its flight, or starts
    /// a flight owned by the caller.
    fn lookup(self: &Arc<Self>, key: CacheKey) -> Action {
        let mut st = self.state();
        if let Some(entry) = st.touch(&key) {
            return Action::Read {
                generation: entry.generation,
                size: entry.size,
            };
        }
        if let Some(flight) = st.inflight.get(&key) {
            return Action::Wait(flight.rx.clone());
        }
        let id = self.next_seq();
        let (tx, rx) = watch::channel(FlightState::Pending);
        st.inflight.insert(key, Flight { id, rx });
        Action::Make(FlightGuard {
            inner: self.clone(),
            key,
            id,
            tx,
        })
    }

    /// Drops `key` from the index if it is still the version `generation`,
    /// deleting its file. Called on a blocking thread.
    fn invalidate(&self, key: &CacheKey, generation: u64) {
        let _disk = self.disk();
        let removed = {
            let mut st = self.state();
            if st
                .index
                .get(key)
                .is_some_and(|e| e.generation == generation)
            {
                st.remove(key);
                true
            } else {
                false
            }
        };
        if removed {
            self.unlink_entry(key);
        }
    }

    /// Deletes `key`'s file; missing is fine. Caller holds `disk` (or is
    /// `open`, before the cache is shared).
    fn unlink_entry(&self, key: &CacheKey) {
        let path = self.entry_path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete cache entry")
            }
        }
    }

    fn store_failed(&self, key: &CacheKey, e: &io::Error) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%key, dir = %self.dir.display(), error = %e, "cannot store cache entry; returning it uncached");
    }
}

impl State {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Marks `key` most recently used and returns its entry.
    fn touch(&mut self, key: &CacheKey) -> Option<Entry> {
        let old = self.index.get(key)?.tick;
        let tick = self.next_tick();
        self.lru.remove(&old);
        self.lru.insert(tick, *key);
        let entry = self.index.get_mut(key)?;
        entry.tick = tick;
        Some(*entry)
    }

    /// Indexes `key` as most recently used, replacing any previous version.
    fn insert(&mut self, key: CacheKey, size: u64, generation: u64) {
        self.remove(&key);
        let tick = self.next_tick();
        self.lru.insert(tick, key);
        self.index.insert(
            key,
            Entry {
                size,
                tick,
                generation,
            },
        );
        self.total += size;
    }

    fn remove(&mut self, key: &CacheKey) -> Option<Entry> {
        let entry = self.index.remove(key)?;
        self.lru.remove(&entry.tick);
        self.total -= entry.size;
        Some(entry)
    }

    /// Drops least-recently-used entries from the index until the total is
    /// within `max`; returns them (key, size) for the caller to unlink.
    fn evict_to(&mut self, max: u64) -> Vec<(CacheKey, u64)> {
        let mut victims = Vec::new();
        while self.total > max {
            let Some((_, key)) = self.lru.pop_first() else {
                break;
            };
            if let Some(entry) = self.index.remove(&key) {
                self.total -= entry.size;
                victims.push((key, entry.size));
            }
        }
        victims
    }
}

/// Waits until the flight `rx` belongs to is closed (its guard dropped), so
/// that a retry does not find the same failed flight again. The guard removes
/// the map entry before its sender is dropped, so once the channel is closed
/// the entry is gone.
async fn wait_flight_gone(mut rx: watch::Receiver<FlightState>) {
    while rx.changed().await.is_ok() {}
}

/// Lists well-formed entries `dir/ab/ab….bin` as (key, size, mtime).
/// Anything else is left alone (see the module docs).
fn scan_entries(dir: &Path) -> Result<Vec<(CacheKey, u64, SystemTime)>, CacheError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    let mut found = Vec::new();
    for sub in fs::read_dir(dir).map_err(io_err(dir))? {
        let sub = sub.map_err(io_err(dir))?;
        let sub_name = sub.file_name();
        let Some(prefix) = sub_name.to_str() else {
            continue;
        };
        let is_fanout = prefix.len() == 2
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && sub.file_type().is_ok_and(|t| t.is_dir());
        if !is_fanout {
            continue;
        }
        let sub_path = sub.path();
        for item in fs::read_dir(&sub_path).map_err(io_err(&sub_path))? {
            let item = item.map_err(io_err(&sub_path))?;
            let name = item.file_name();
            let key = name
                .to_str()
                .and_then(|n| n.strip_suffix(".bin"))
                .filter(|stem| stem.starts_with(prefix))
                .and_then(CacheKey::from_hex);
            // A file that vanished or cannot be stat'ed is skipped rather
            // than failing the whole open.
            let meta = item.metadata();
            match (key, meta) {
                (Some(key), Ok(meta)) if meta.is_file() => {
                    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    found.push((key, meta.len(), mtime));
                }
                _ => {
                    tracing::warn!(path = %item.path().display(), "ignoring foreign file in cache directory");
                }
            }
        }
    }
    Ok(found)
}

/// The first bytes of every entry file.
const MAGIC: &[u8; 4] = b"WCC1";

/// Size of the entry header: magic, CRC-32, length.
const HEADER: usize = 16;

/// Size on disk of an entry holding `len` bytes.
fn stored_size(len: usize) -> u64 {
    (HEADER + len) as u64
}

/// Writes `data` with its header to a new file at `path`. No `fsync`: a
/// torn file is caught by [`read_entry`]'s check, and the product is made
/// again.
fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(MAGIC);
    header[4..8].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
    header[8..].copy_from_slice(&(data.len() as u64).to_le_bytes());
    f.write_all(&header)?;
    f.write_all(data)
}

/// Reads an entry of the indexed on-disk `size` and returns its bytes. A
/// size, length or checksum mismatch means the file is torn or was altered
/// behind our back: treat it as invalid rather than serve it. Bumps the
/// mtime (best effort) so recency survives a restart.
fn read_entry(path: &Path, size: u64) -> io::Result<Bytes> {
    let mut f = File::open(path)?;
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.read_to_end(&mut buf)?;
    let bad = |what: String| Err(io::Error::new(io::ErrorKind::InvalidData, what));
    if buf.len() as u64 != size || buf.len() < HEADER || &buf[..4] != MAGIC {
        return bad(format!(
            "size {} != indexed {size}, or no header",
            buf.len()
        ));
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
    if len != (buf.len() - HEADER) as u64 || crc32fast::hash(&buf[HEADER..]) != crc {
        return bad("length or checksum mismatch".into());
    }
    let _ = f.set_modified(SystemTime::now());
    Ok(Bytes::from(buf).slice(HEADER..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;
    use tokio::time::timeout;

    /// Generous upper bound for anything that should finish promptly; only
    /// there so that a bug fails the test instead of hanging it.
    const LIMIT: Duration = Duration::from_secs(10);

    fn key(name: &str) -> CacheKey {
        CacheKey::of(&[b"test", name.as_bytes()])
    }

    fn data(name: &str, len: usize) -> Vec<u8> {
        name.bytes().cycle().take(len).collect()
    }

    /// Stores `len` bytes under `name` and checks the bound afterwards.
    async fn put(cache: &DiskCache, name: &str, len: usize) -> Outcome {
        let made = cache.get_or_make(
            key(name),
            || async move { Ok::<_, String>(data(name, len)) },
        );
        let (bytes, outcome) = timeout(LIMIT, made).await.expect("hung").unwrap();
        assert_eq!(bytes.len(), len);
        assert_bound(cache);
        outcome
    }

    /// The index total equals what is on disk and is within the bound.
    fn assert_bound(cache: &DiskCache) {
        let s = cache.stats();
        assert!(s.bytes <= s.max_bytes, "{s:?}");
        assert_eq!(s.bytes, disk_bytes(cache.dir()), "{s:?}");
    }

    /// Bytes in well-formed entry files under `dir`.
    fn disk_bytes(dir: &Path) -> u64 {
        scan_entries(dir).unwrap().iter().map(|e| e.1).sum()
    }

    /// Waits (bounded) until `n` requests have started waiting on a flight.
    async fn until_waiting(cache: &DiskCache, n: u64) {
        timeout(LIMIT, async {
            while cache.inner.waits.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("waiters did not queue up");
    }

    fn set_mtime(path: &Path, secs: u64) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn key_parts_are_length_prefixed() {
        assert_ne!(CacheKey::of(&[b"ab", b"c"]), CacheKey::of(&[b"a", b"bc"]));
        assert_ne!(CacheKey::of(&[b"abc"]), CacheKey::of(&[b"ab", b"c"]));
        assert_ne!(CacheKey::of(&[b""]), CacheKey::of(&[]));
        assert_eq!(CacheKey::of(&[b"x", b"y"]), CacheKey::of(&[b"x", b"y"]));
    }

    #[test]
    fn key_hex_round_trips() {
        let k = key("a");
        let h = k.hex();
        assert_eq!(h.len(), 64);
        assert_eq!(k.to_string(), h);
        assert_eq!(CacheKey::from_hex(&h), Some(k));
        assert_eq!(CacheKey::from_hex(&h.to_uppercase()), None);
        assert_eq!(CacheKey::from_hex(&h[..63]), None);
        assert_eq!(CacheKey::from_bytes(*k.as_bytes()), k);
    }

    #[test]
    fn get_or_make_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 100).unwrap();
        assert_send(cache.get_or_make(key("a"), || async { Ok::<_, String>(vec![1]) }));
        assert_send(cache.get(key("a")));
    }

    #[tokio::test]
    async fn second_call_is_a_hit_with_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let calls = AtomicUsize::new(0);
        let make = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(data("a", 1000))
        };
        let (first, o1) = cache.get_or_make(key("a"), make).await.unwrap();
        let (second, o2) = cache.get_or_make(key("a"), make).await.unwrap();
        assert_eq!((o1, o2), (Outcome::Made, Outcome::Hit));
        assert_eq!(first, second);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cache.path_of(&key("a")).is_file());
        assert_eq!(cache.get(key("a")).await, Some(first));
        assert_eq!(timeout(LIMIT, cache.get(key("b"))).await.unwrap(), None);
        let s = cache.stats();
        assert_eq!(
            (s.entries, s.bytes, s.hits, s.misses),
            (1, stored_size(1000), 2, 1)
        );
        assert_bound(&cache);
    }

    /// Errors of the blocking maker: a string, or a task that failed.
    #[derive(Debug, Clone, PartialEq)]
    struct TaskError(String);

    impl From<tokio::task::JoinError> for TaskError {
        fn from(e: tokio::task::JoinError) -> Self {
            TaskError(e.to_string())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_maker_is_admitted_made_once_stored_and_then_hit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let admitted = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, calls, admitted) = (cache.clone(), calls.clone(), admitted.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_make_blocking(
                        key("b"),
                        || async move {
                            admitted.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, TaskError>("permit")
                        },
                        move || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            Ok::<_, TaskError>(data("b", 500))
                        },
                    )
                    .await
            }));
        }
        let mut made = 0;
        for t in tasks {
            let (bytes, outcome) = timeout(LIMIT, t).await.unwrap().unwrap().unwrap();
            assert_eq!(bytes.to_vec(), data("b", 500));
            made += usize::from(outcome == Outcome::Made);
        }
        assert_eq!(made, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(admitted.load(Ordering::SeqCst), 1);
        // Stored by the maker's own thread before it returned.
        let (_, outcome) = cache
            .get_or_make_blocking(
                key("b"),
                || async { Ok::<_, TaskError>(()) },
                || Err::<Vec<u8>, _>(TaskError("not called".into())),
            )
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Hit);
        assert_bound(&cache);
        // A failing maker's error reaches the caller and nothing is kept.
        let failed = cache
            .get_or_make_blocking(
                key("c"),
                || async { Ok::<_, TaskError>(()) },
                || Err::<Vec<u8>, _>(TaskError("broken".into())),
            )
            .await;
        assert_eq!(failed.unwrap_err(), TaskError("broken".into()));
        assert!(!cache.contains(&key("c")));
        assert!(cache.inner.state().inflight.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_same_key_makes_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                let c = cache.clone();
                cache
                    .get_or_make(key("same"), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // Release only once every other request is waiting,
                        // so none of them can arrive late and get a Hit.
                        until_waiting(&c, 49).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, String>(data("same", 4096))
                    })
                    .await
            }));
        }
        let mut made = 0;
        let mut joined = 0;
        for t in tasks {
            let (bytes, outcome) = timeout(LIMIT, t).await.unwrap().unwrap().unwrap();
            assert_eq!(bytes, data("same", 4096));
            match outcome {
                Outcome::Made => made += 1,
                Outcome::Joined => joined += 1,
                Outcome::Hit => panic!("unexpected hit"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!((made, joined), (1, 49));
        let s = cache.stats();
        assert_eq!((s.misses, s.joined, s.entries), (1, 49, 1));
        assert!(cache.inner.state().inflight.is_empty());
        assert_bound(&cache);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn different_keys_are_made_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        // Each maker waits for the other to have started: if the cache
        // serialised them, the barrier would time out and the makers fail.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let spawn = |name: &'static str| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            tokio::spawn(async move {
                cache
                    .get_or_make(key(name), || async move {
                        timeout(LIMIT, barrier.wait())
                            .await
                            .map_err(|_| "makers were serialised".to_string())?;
                        Ok::<_, String>(data(name, 10))
                    })
                    .await
            })
        };
        let (a, b) = (spawn("a"), spawn("b"));
        assert_eq!(a.await.unwrap().unwrap().1, Outcome::Made);
        assert_eq!(b.await.unwrap().unwrap().1, Outcome::Made);
        assert_eq!(cache.stats().entries, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn maker_error_reaches_all_waiters_and_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                let c = cache.clone();
                cache
                    .get_or_make(key("bad"), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        until_waiting(&c, 4).await;
                        Err::<Vec<u8>, _>("boom".to_string())
                    })
                    .await
            }));
        }
        for t in tasks {
            let r = timeout(LIMIT, t).await.unwrap().unwrap();
            assert_eq!(r, Err("boom".to_string()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().entries, 0);
        assert!(!cache.path_of(&key("bad")).exists());

        let (bytes, outcome) = cache
            .get_or_make(key("bad"), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(b"fixed".to_vec())
            })
            .await
            .unwrap();
        assert_eq!((&bytes[..], outcome), (&b"fixed"[..], Outcome::Made));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiter_with_other_error_type_makes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let c = cache.clone();
        let maker = tokio::spawn(async move {
            let c2 = c.clone();
            c.get_or_make(key("k"), || async move {
                let _ = started_tx.send(());
                until_waiting(&c2, 1).await;
                Err::<Vec<u8>, _>(42u32)
            })
            .await
        });
        timeout(LIMIT, started_rx).await.unwrap().unwrap();
        // Joins the failing flight, cannot take a u32 error, makes instead.
        let waiter = cache.get_or_make(key("k"), || async { Ok::<_, String>(b"ok".to_vec()) });
        let (bytes, outcome) = timeout(LIMIT, waiter).await.unwrap().unwrap();
        assert_eq!((&bytes[..], outcome), (&b"ok"[..], Outcome::Made));
        assert_eq!(maker.await.unwrap(), Err(42));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborted_maker_lets_waiter_make() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let c = cache.clone();
        let stuck = tokio::spawn(async move {
            c.get_or_make(key("k"), || async move {
                let _ = started_tx.send(());
                std::future::pending::<Result<Vec<u8>, String>>().await
            })
            .await
        });
        timeout(LIMIT, started_rx).await.unwrap().unwrap();
        let c = cache.clone();
        let waiter = tokio::spawn(async move {
            c.get_or_make(key("k"), || async { Ok::<_, String>(b"v".to_vec()) })
                .await
        });
        until_waiting(&cache, 1).await;
        stuck.abort();
        assert!(stuck.await.unwrap_err().is_cancelled());
        let (bytes, outcome) = timeout(LIMIT, waiter).await.unwrap().unwrap().unwrap();
        assert_eq!((&bytes[..], outcome), (&b"v"[..], Outcome::Made));
        let (_, outcome) = put_hit(&cache, "k").await;
        assert_eq!(outcome, Outcome::Hit);
        assert!(cache.inner.state().inflight.is_empty());
    }

    async fn put_hit(cache: &DiskCache, name: &str) -> (Bytes, Outcome) {
        let hit = cache.get_or_make(key(name), || async {
            Err::<Vec<u8>, _>("should have been a hit".to_string())
        });
        timeout(LIMIT, hit).await.expect("hung").unwrap()
    }

    #[tokio::test]
    async fn dropped_maker_future_does_not_block_later_calls() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let never = cache.get_or_make(key("k"), || {
            std::future::pending::<Result<Vec<u8>, String>>()
        });
        // The timeout drops the future mid-make.
        assert!(
            timeout(Duration::from_millis(20), never).await.is_err(),
            "pending maker cannot finish"
        );
        let again = cache.get_or_make(key("k"), || async { Ok::<_, String>(b"v".to_vec()) });
        let (_, outcome) = timeout(LIMIT, again).await.unwrap().unwrap();
        assert_eq!(outcome, Outcome::Made);
    }

    #[tokio::test]
    async fn lru_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        // Room for three 100-byte products with their headers.
        let s100 = stored_size(100);
        let cache = DiskCache::open(dir.path(), 3 * s100).unwrap();
        for name in ["a", "b", "c"] {
            assert_eq!(put(&cache, name, 100).await, Outcome::Made);
        }
        assert_eq!(put(&cache, "a", 100).await, Outcome::Hit);
        assert_eq!(put(&cache, "d", 100).await, Outcome::Made);

        assert!(!cache.contains(&key("b")));
        assert!(!cache.path_of(&key("b")).exists(), "evicted file remains");
        for name in ["a", "c", "d"] {
            assert!(cache.contains(&key(name)), "{name} evicted");
            assert!(cache.path_of(&key(name)).is_file());
        }
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (3, 3 * s100, 1));

        // A big entry evicts several; the bound holds throughout.
        assert_eq!(put(&cache, "e", 250).await, Outcome::Made);
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (1, stored_size(250), 4));
        assert_bound(&cache);
    }

    #[tokio::test]
    async fn oversized_entry_is_returned_but_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 100).unwrap();
        put(&cache, "small", 60).await;
        assert_eq!(put(&cache, "big", 101).await, Outcome::Made);
        assert_eq!(put(&cache, "big", 101).await, Outcome::Made);
        assert!(!cache.path_of(&key("big")).exists());
        // Did not displace what was there.
        assert!(cache.contains(&key("small")));
        assert_eq!(cache.stats().bytes, stored_size(60));
        assert!(cache.inner.state().inflight.is_empty());
        let tmp_files = fs::read_dir(dir.path().join("tmp")).unwrap().count();
        assert_eq!(tmp_files, 0);
    }

    #[tokio::test]
    async fn restart_keeps_entries_and_lru_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = DiskCache::open(dir.path(), 1000).unwrap();
            for name in ["a", "b", "c"] {
                put(&cache, name, 100).await;
            }
        }
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        let s = cache.stats();
        let s100 = stored_size(100);
        assert_eq!((s.entries, s.bytes), (3, 3 * s100));
        for name in ["a", "b", "c"] {
            let (bytes, outcome) = put_hit(&cache, name).await;
            assert_eq!((bytes.to_vec(), outcome), (data(name, 100), Outcome::Hit));
        }
        drop(cache);

        // Last access as the file times say: b oldest, then c, then a.
        let path = |n: &str| {
            let h = key(n).hex();
            dir.path().join(&h[..2]).join(format!("{h}.bin"))
        };
        set_mtime(&path("b"), 1_000);
        set_mtime(&path("c"), 2_000);
        set_mtime(&path("a"), 3_000);

        // Lowered budget: evicts down to it at open, oldest first.
        let cache = DiskCache::open(dir.path(), 2 * s100 + 50).unwrap();
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (2, 2 * s100, 1));
        assert!(!path("b").exists());
        assert!(cache.contains(&key("a")) && cache.contains(&key("c")));
        assert_bound(&cache);
        drop(cache);

        let cache = DiskCache::open(dir.path(), 0).unwrap();
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(disk_bytes(dir.path()), 0);
    }

    #[tokio::test]
    async fn hit_refreshes_file_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        put(&cache, "a", 10).await;
        let path = cache.path_of(&key("a"));
        set_mtime(&path, 1_000);
        put_hit(&cache, "a").await;
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        assert!(mtime > SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
    }

    #[tokio::test]
    async fn open_cleans_temp_files_and_ignores_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("tmp")).unwrap();
        fs::write(d.join("tmp/x.part"), b"half-written").unwrap();
        fs::write(d.join("tmp/notes.txt"), b"not ours").unwrap();
        fs::create_dir_all(d.join("ab")).unwrap();
        let foreign = [
            d.join("ab/readme.txt"),
            d.join("ab/xyz.bin"),
            // Well-formed key, wrong fan-out directory.
            d.join(format!("ab/{}.bin", "cd".repeat(32))),
            d.join("top-level.bin"),
        ];
        for f in &foreign {
            fs::write(f, vec![0u8; 500]).unwrap();
        }
        // A genuine entry left by an earlier run.
        let k = key("old");
        fs::create_dir_all(d.join(&k.hex()[..2])).unwrap();
        write_file(
            &d.join(&k.hex()[..2]).join(format!("{}.bin", k.hex())),
            b"old",
        )
        .unwrap();

        let cache = DiskCache::open(d, 100).unwrap();
        assert!(!d.join("tmp/x.part").exists());
        assert!(d.join("tmp/notes.txt").exists());
        for f in &foreign {
            assert!(f.exists(), "{} was deleted", f.display());
        }
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes), (1, stored_size(3)));
        assert_eq!(put_hit(&cache, "old").await.0, Bytes::from_static(b"old"));
    }

    #[tokio::test]
    async fn second_instance_on_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 100).unwrap();
        assert!(matches!(
            DiskCache::open(dir.path(), 100),
            Err(CacheError::Locked(_))
        ));
        drop(cache);
        DiskCache::open(dir.path(), 100).unwrap();
    }

    #[tokio::test]
    async fn store_failure_still_returns_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        // Replacing tmp/ by a file makes creating the temp file fail even as
        // root (where permission bits would not).
        fs::remove_dir(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp"), b"").unwrap();
        let (bytes, outcome) = cache
            .get_or_make(key("a"), || async { Ok::<_, String>(data("a", 10)) })
            .await
            .unwrap();
        assert_eq!((bytes.to_vec(), outcome), (data("a", 10), Outcome::Made));
        let s = cache.stats();
        assert_eq!((s.store_errors, s.entries, s.bytes), (1, 0, 0));
        assert!(cache.inner.state().inflight.is_empty());
    }

    #[tokio::test]
    async fn vanished_or_altered_file_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        put(&cache, "a", 10).await;
        put(&cache, "b", 10).await;
        // As if a concurrent eviction unlinked it between lookup and read.
        fs::remove_file(cache.path_of(&key("a"))).unwrap();
        assert_eq!(put(&cache, "a", 10).await, Outcome::Made);
        // Truncated behind our back: must not be served.
        fs::write(cache.path_of(&key("b")), b"short").unwrap();
        assert_eq!(timeout(LIMIT, cache.get(key("b"))).await.unwrap(), None);
        assert!(!cache.path_of(&key("b")).exists());
        assert_eq!(put(&cache, "b", 10).await, Outcome::Made);
        assert_eq!(put(&cache, "b", 10).await, Outcome::Hit);
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes), (2, 2 * stored_size(10)));
        // A flipped byte (same length) is caught by the checksum.
        let path = cache.path_of(&key("a"));
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, bytes).unwrap();
        assert_eq!(timeout(LIMIT, cache.get(key("a"))).await.unwrap(), None);
        assert_eq!(put(&cache, "a", 10).await, Outcome::Made);
    }

    #[tokio::test]
    async fn remove_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        for name in ["a", "b", "c"] {
            put(&cache, name, 10).await;
        }
        assert!(cache.remove(key("a")).await);
        assert!(!cache.remove(key("a")).await);
        assert!(!cache.path_of(&key("a")).exists());
        assert_eq!(cache.stats().bytes, 2 * stored_size(10));
        assert_bound(&cache);
        cache.clear().await;
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes), (0, 0));
        assert_eq!(disk_bytes(dir.path()), 0);
        assert_eq!(put(&cache, "b", 10).await, Outcome::Made);
    }

    /// Many requests over few keys with a tight budget: evictions race with
    /// reads and stores; nothing may fail and the bound must hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn churn_keeps_bound_and_never_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..60 {
                    let k = (i * 7 + t * 3) % 13;
                    let name = format!("k{k}");
                    // Sizes differ per key so eviction frees uneven amounts.
                    let len = 80 + k * 17;
                    let want = data(&name, len);
                    let (bytes, _) = cache
                        .get_or_make(
                            key(&name),
                            || async move { Ok::<_, String>(data(&name, len)) },
                        )
                        .await
                        .unwrap();
                    assert_eq!(bytes.to_vec(), want);
                    let s = cache.stats();
                    assert!(s.bytes <= s.max_bytes, "{s:?}");
                }
            }));
        }
        for t in tasks {
            timeout(LIMIT, t).await.unwrap().unwrap();
        }
        assert_bound(&cache);
        let s = cache.stats();
        assert!(s.evictions > 0, "{s:?}");
        assert_eq!(s.store_errors, 0);
    }
}
