//! The integration-test binary: one binary, one module per area, sharing the
//! fixtures in `common`.

mod api;
mod browse;
mod cli;
mod common;
mod e2e;
mod image;
mod ingest;
mod lineage;
mod migrations;
mod object;
mod peer;
mod sample;
mod web;
