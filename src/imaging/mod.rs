//! The imaging core: pixel buffers, FITS I/O through cfitsio, and world
//! coordinate systems.
//!
//! Invariant: nothing here knows about HTTP, SQL or async runtimes. Functions
//! are synchronous and may block on disk; callers on an async executor run
//! them on blocking threads.

pub mod anim;
pub mod cutout;
pub mod fits;
pub mod image;
pub mod pixels;
pub mod render;
pub mod rgb;
pub mod stats;
pub mod wcs;
