//! The server's memory as a budget: every cutout, render and job step says
//! how much memory it will need before it starts, and starts only when that
//! fits.
//!
//! Memory that grows with the request is how a server goes down: sixteen
//! 6000² cutouts at once, or a job that keeps every cutout until the end.
//! So work estimates its peak (pixels × bytes × copies, see the `*_cost`
//! functions) and reserves it here. A reservation that fits is granted at
//! once; one that does not waits in a short, bounded queue; when the queue
//! is full or the wait too long the request is refused with a 503 and
//! `Retry-After` — the client can come back, the server stays up. A request
//! that could never fit, whatever else runs, is a 4xx saying how much it
//! needs and what the budget is. The grant is held until the product has
//! been sent, so a slow client's bytes count too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ProductError;

/// The granularity of reservations.
const UNIT: u64 = 64 * 1024;

/// Bytes per MiB, for messages.
const MIB: u64 = 1 << 20;

/// The memory budget of one server process.
#[derive(Debug)]
pub struct MemoryBudget {
    units: u32,
    semaphore: Arc<Semaphore>,
    /// The most units ever reserved at once (for tests and `/status`).
    peak: std::sync::atomic::AtomicU64,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// A granted reservation; the memory is given back when it is dropped.
#[derive(Debug)]
pub struct MemoryGrant {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl MemoryGrant {
    /// The bytes reserved.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A grant of nothing, for work that needs no reservation.
    pub fn none() -> Self {
        Self {
            _permit: None,
            bytes: 0,
        }
    }

    /// Gives back all but `bytes` (once the work is done and only its
    /// product is still held).
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = bytes.div_ceil(UNIT).max(1) as usize;
        if let Some(p) = &mut self._permit
            && p.num_permits() > keep
        {
            let excess = p.num_permits() - keep;
            drop(p.split(excess));
            self.bytes = bytes.min(self.bytes);
        }
    }
}

impl MemoryBudget {
    /// A budget of `bytes` for work, with at most `max_waiting` requests
    /// queued for at most `max_wait` each.
    pub fn new(bytes: u64, max_waiting: usize, max_wait: Duration) -> Self {
        let units = u32::try_from((bytes / UNIT).max(1)).unwrap_or(u32::MAX >> 4);
        Self {
            units,
            semaphore: Arc::new(Semaphore::new(units as usize)),
            peak: std::sync::atomic::AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// The whole budget in bytes.
    pub fn total(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT
    }

    /// The most bytes ever reserved at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) * UNIT
    }

    fn granted(&self, permit: OwnedSemaphorePermit, bytes: u64) -> MemoryGrant {
        let now = u64::from(self.units) - self.semaphore.available_permits() as u64;
        self.peak.fetch_max(now, Ordering::Relaxed);
        MemoryGrant {
            _permit: Some(permit),
            bytes,
        }
    }

    fn units_for(&self, bytes: u64, what: &str) -> Result<u32, ProductError> {
        let units = bytes.div_ceil(UNIT).max(1);
        if units > u64::from(self.units) {
            return Err(ProductError::Invalid(format!(
                "{what} needs about {} MiB of memory, more than the {} MiB this server has for \
                 work; ask for a smaller area or a coarser binning",
                bytes.div_ceil(MIB),
                self.total() / MIB
            )));
        }
        Ok(units as u32)
    }

    /// Reserves `bytes` now if they are free; `None` if not (the caller may
    /// then wait with [`MemoryBudget::reserve`]). An impossible reservation
    /// is an error.
    pub fn try_reserve(&self, bytes: u64, what: &str) -> Result<Option<MemoryGrant>, ProductError> {
        let units = self.units_for(bytes, what)?;
        Ok(Arc::clone(&self.semaphore)
            .try_acquire_many_owned(units)
            .ok()
            .map(|p| self.granted(p, bytes)))
    }

    /// Reserves `bytes`, waiting in the queue if need be; a full queue or a
    /// long wait is [`ProductError::Busy`].
    pub async fn reserve(&self, bytes: u64, what: &str) -> Result<MemoryGrant, ProductError> {
        if let Some(g) = self.try_reserve(bytes, what)? {
            return Ok(g);
        }
        let units = self.units_for(bytes, what)?;
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(self.busy(what));
        }
        let acquired = tokio::time::timeout(
            self.max_wait,
            Arc::clone(&self.semaphore).acquire_many_owned(units),
        )
        .await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match acquired {
            Ok(Ok(p)) => Ok(self.granted(p, bytes)),
            _ => Err(self.busy(what)),
        }
    }

    /// Reserves `bytes` for a job, waiting as long as it takes: jobs run in
    /// the background, so they queue for memory rather than fail (only an
    /// impossible reservation is an error).
    pub async fn reserve_patiently(
        &self,
        bytes: u64,
        what: &str,
    ) -> Result<MemoryGrant, ProductError> {
        let units = self.units_for(bytes, what)?;
        let permit = Arc::clone(&self.semaphore)
            .acquire_many_owned(units)
            .await
            .map_err(|_| ProductError::Internal("the memory budget is closed".into()))?;
        Ok(self.granted(permit, bytes))
    }

    fn busy(&self, what: &str) -> ProductError {
        ProductError::Busy {
            message: format!(
                "the server's memory for work ({} MiB) is taken by other requests; {what} \
                 has to wait — retry shortly",
                self.total() / MIB
            ),
            retry_after: 2,
        }
    }
}

/// Peak memory of a FITS cutout of `width` × `height` pixels of `bpp`
/// bytes: the output file, plus the decoded copies when the general path
/// runs.
pub fn fits_cost(width: usize, height: usize, bpp: usize) -> u64 {
    let px = (width * height) as u64;
    // Output bytes, and for the general path the raw read, the decoded
    // values and the placed output (at most 8 bytes each).
    px * bpp as u64 + px * 24 + 64 * 1024
}

/// Peak memory of a FITS cutout copied from a plain file without decoding
/// (`imaging::cutout::fits_passes_through`): the output file.
pub fn fits_pass_through_cost(width: usize, height: usize, bpp: usize) -> u64 {
    (width * height * bpp) as u64 + 64 * 1024
}

/// Peak memory of a rendered cutout: the FITS cost of the region, its f32
/// image, and the normalised, resampled and encoded picture.
pub fn image_cost(width: usize, height: usize, bpp: usize, out: (usize, usize)) -> u64 {
    let px = (width * height) as u64;
    let out_px = (out.0 * out.1) as u64;
    fits_cost(width, height, bpp) + px * 8 + out_px * 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_fit_wait_and_return() {
        let b = MemoryBudget::new(10 * UNIT, 1, Duration::from_millis(200));
        let g1 = b.reserve(6 * UNIT, "a").await.unwrap();
        assert_eq!(b.available(), 4 * UNIT);
        assert!(b.try_reserve(5 * UNIT, "b").unwrap().is_none());
        // A waiter is granted once the first grant is dropped.
        let waiter = {
            let b = &b;
            async move { b.reserve(5 * UNIT, "b").await }
        };
        let (granted, ()) = tokio::join!(waiter, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(g1);
        });
        let g2 = granted.unwrap();
        assert_eq!(g2.bytes(), 5 * UNIT);
        assert_eq!(b.available(), 5 * UNIT);
        // A wait past the limit is a 503-style error.
        let late = b.reserve(8 * UNIT, "c").await.unwrap_err();
        assert!(matches!(late, ProductError::Busy { .. }), "{late:?}");
        // More than the whole budget can never be granted.
        let e = b.reserve(11 * UNIT, "a 6000² cutout").await.unwrap_err();
        assert!(
            matches!(&e, ProductError::Invalid(m) if m.contains("a 6000² cutout") && m.contains("MiB")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let b = Arc::new(MemoryBudget::new(4 * UNIT, 1, Duration::from_secs(5)));
        let _all = b.reserve(4 * UNIT, "a").await.unwrap();
        let queued = tokio::spawn({
            let b = Arc::clone(&b);
            async move { b.reserve(UNIT, "b").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = std::time::Instant::now();
        let e = b.reserve(UNIT, "c").await.unwrap_err();
        assert!(matches!(e, ProductError::Busy { retry_after: 2, .. }));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "refused without waiting"
        );
        queued.abort();
    }

    #[tokio::test]
    async fn a_grant_shrinks_to_what_is_kept() {
        let b = MemoryBudget::new(10 * UNIT, 1, Duration::from_millis(10));
        let mut g = b.reserve(8 * UNIT, "a").await.unwrap();
        g.shrink_to(UNIT + 1);
        assert_eq!(b.available(), 8 * UNIT);
        drop(g);
        assert_eq!(b.available(), 10 * UNIT);
    }

    #[test]
    fn costs_grow_with_area() {
        assert!(fits_cost(6000, 6000, 4) > 144 * MIB);
        assert!(image_cost(240, 240, 4, (240, 240)) < 8 * MIB);
        assert!(image_cost(1000, 1000, 4, (100, 100)) > fits_cost(1000, 1000, 4));
    }
}
