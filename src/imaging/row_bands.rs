//! Hot rows of frames kept in memory: a bounded cache of *row bands*
//! ([`BAND_ROWS`] consecutive full rows of an image's stored bytes), shared
//! by every opened image.
//!
//! A small cutout of a plain file is a few hundred `pread`s of a few hundred
//! bytes each, and on a busy server the system-call and page-cache lookup
//! overhead of those reads, not the copying, is most of the work. Frames
//! that are cut again and again (a coadd everybody looks at) are better
//! served from memory: a band, once loaded with a single contiguous read,
//! answers every later cutout that crosses it with plain memory copies.
//!
//! Two rules keep the cache from hurting the cold case:
//! * **Admission on the second touch.** A band is loaded only when a cutout
//!   needs it a second time within a recent window ([`RowBands::lookup`]);
//!   a one-off cutout reads its row segments directly, as without the cache,
//!   and never pays for loading whole rows it does not need.
//! * **Bounded, least recently used out first.** The cache never holds more
//!   than its byte bound; a band bigger than 1/64 of it is never cached.
//!
//! Bands are keyed by the serial number of the opened image, which changes
//! whenever the file is reopened (because it changed on disk), so a band of
//! older bytes is never served; it just ages out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Rows in a band.
pub const BAND_ROWS: usize = 16;

/// Bands remembered as touched once; the set is forgotten when it grows past
/// this, which bounds its memory and makes "recent" mean "within the last
/// few ten thousand band touches".
const DOORKEEPER: usize = 65_536;

/// Which band of which opened image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BandKey {
    /// Serial number of the opened image ([`next_serial`]).
    pub image: u64,
    /// Band index: rows `band * BAND_ROWS ..`.
    pub band: usize,
}

/// What to do about a band a read needs.
#[derive(Debug)]
pub enum Lookup {
    /// It is in memory.
    Hit(Arc<[u8]>),
    /// Load it (second touch) and [`RowBands::insert`] it.
    Load,
    /// Read the needed rows directly.
    Skip,
}

/// A serial number for a newly opened image, unique in this process.
pub fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The band cache; see the module documentation.
#[derive(Debug)]
pub struct RowBands {
    max_bytes: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bands: HashMap<BandKey, (Arc<[u8]>, u64)>,
    lru: BTreeMap<u64, BandKey>,
    bytes: u64,
    tick: u64,
    seen: HashSet<BandKey>,
    hits: u64,
    loads: u64,
}

/// Counters of a [`RowBands`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowBandStats {
    /// Bands held.
    pub bands: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The bound.
    pub max_bytes: u64,
    /// Band reads served from memory.
    pub hits: u64,
    /// Bands loaded.
    pub loads: u64,
}

impl RowBands {
    /// A cache of at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            state: Mutex::new(State::default()),
        }
    }

    /// The band `key` of `band_bytes` bytes: in memory, to be loaded now, or
    /// to be read around.
    pub fn lookup(&self, key: BandKey, band_bytes: usize) -> Lookup {
        if band_bytes as u64 > self.max_bytes / 64 {
            return Lookup::Skip;
        }
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if let Some((bytes, used)) = st.bands.get_mut(&key) {
            let (old, bytes) = (*used, Arc::clone(bytes));
            *used = tick;
            st.lru.remove(&old);
            st.lru.insert(tick, key);
            st.hits += 1;
            return Lookup::Hit(bytes);
        }
        if st.seen.remove(&key) {
            return Lookup::Load;
        }
        if st.seen.len() >= DOORKEEPER {
            st.seen.clear();
        }
        st.seen.insert(key);
        Lookup::Skip
    }

    /// Keeps a loaded band, evicting the least recently used ones to stay
    /// within the bound.
    pub fn insert(&self, key: BandKey, bytes: Arc<[u8]>) {
        let size = bytes.len() as u64;
        if size > self.max_bytes / 64 {
            return;
        }
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if let Some((old, used)) = st.bands.insert(key, (bytes, tick)) {
            st.bytes -= old.len() as u64;
            st.lru.remove(&used);
        }
        st.lru.insert(tick, key);
        st.bytes += size;
        st.loads += 1;
        while st.bytes > self.max_bytes {
            let Some((_, victim)) = st.lru.pop_first() else {
                break;
            };
            if let Some((b, _)) = st.bands.remove(&victim) {
                st.bytes -= b.len() as u64;
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RowBandStats {
        let st = self.lock();
        RowBandStats {
            bands: st.bands.len(),
            bytes: st.bytes,
            max_bytes: self.max_bytes,
            hits: st.hits,
            loads: st.loads,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under the lock, so a poisoned state is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(image: u64, band: usize) -> BandKey {
        BandKey { image, band }
    }

    #[test]
    fn admitted_on_the_second_touch_then_hit() {
        let c = RowBands::new(64 * 100);
        assert!(matches!(c.lookup(key(1, 0), 100), Lookup::Skip));
        assert!(matches!(c.lookup(key(1, 0), 100), Lookup::Load));
        c.insert(key(1, 0), vec![7u8; 100].into());
        match c.lookup(key(1, 0), 100) {
            Lookup::Hit(b) => assert_eq!(&b[..], &[7u8; 100][..]),
            other => panic!("{other:?}"),
        }
        // Another image's band of the same index is a different band.
        assert!(matches!(c.lookup(key(2, 0), 100), Lookup::Skip));
        let s = c.stats();
        assert_eq!((s.bands, s.bytes, s.hits, s.loads), (1, 100, 1, 1));
    }

    #[test]
    fn bounded_least_recently_used_first() {
        // Room for exactly 64 bands of 100 bytes.
        let c = RowBands::new(64 * 100);
        for b in 0..64 {
            c.insert(key(1, b), vec![0u8; 100].into());
        }
        // Band 0 used again, so band 1 is the oldest when another arrives.
        assert!(matches!(c.lookup(key(1, 0), 100), Lookup::Hit(_)));
        c.insert(key(1, 64), vec![0u8; 100].into());
        let s = c.stats();
        assert_eq!((s.bands, s.bytes), (64, 64 * 100));
        assert!(matches!(c.lookup(key(1, 1), 100), Lookup::Skip));
        assert!(matches!(c.lookup(key(1, 2), 100), Lookup::Hit(_)));
        // A band over 1/64 of the bound is never kept.
        assert!(matches!(c.lookup(key(1, 99), 101), Lookup::Skip));
        assert!(matches!(c.lookup(key(1, 99), 101), Lookup::Skip));
        c.insert(key(1, 99), vec![0u8; 101].into());
        assert_eq!(c.stats().bands, 64);
    }
}
