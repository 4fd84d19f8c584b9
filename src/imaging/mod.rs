//! The imaging core: pixel buffers, FITS I/O through cfitsio, and world
//! coordinate systems.
//!
//! Invariant: nothing here knows about HTTP, SQL or async runtimes. Functions
//! are synchronous and may block on disk; callers on an async executor run
//! them on blocking threads.

pub mod anim;
pub mod color;
pub mod cutout;
pub mod fits;
pub mod pixels;
pub mod raster;
pub mod render;
pub mod resample;
pub mod row_bands;
pub mod sphere;
pub mod stats;
pub mod wcs;
