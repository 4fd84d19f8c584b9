//! wisecut: a lineage-aware astronomical image database and on-demand cutout
//! server.
//!
//! Layers, each depending only on those before it:
//! - [`imaging`]: the pure imaging core (pixels, FITS through cfitsio, WCS);
//!   it knows nothing of HTTP or SQL.
//! - [`catalog`]: the database of frames, catalogs and their lineage
//!   (sea-orm over SQLite or PostgreSQL).
//! - [`sample`]: the simulated survey that ships as the embedded default.
//! - [`web`]: the axum application; [`cli`]: the command line.
//!
//! See `ARCHITECTURE.md` for the data flow and the invariants.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod file_identity;
pub mod ids;
pub mod imaging;
pub mod jobs;
pub mod markup;
pub mod model;
pub mod params;
pub mod products;
pub mod sample;
pub mod stores;
pub mod vo;
pub mod web;

/// The version string written into FITS provenance keywords and shown in the UI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
