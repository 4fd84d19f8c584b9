//! The product service: what the server makes on demand from stored frames
//! (cutouts, dependency cutouts, RGB pictures, batches), between the HTTP
//! edge and the imaging core.

pub mod cache;
pub mod dependency_cutouts;
