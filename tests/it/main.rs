//! The integration-test binary: one binary, one module per area, sharing the
//! fixtures in `common`.

mod access;
mod access_auth;
mod access_jobs;
mod access_views;
mod access_vo;
mod api;
mod associate;
mod bad_input;
mod batch;
mod browse;
mod catalog_formats;
mod cli;
mod common;
mod crash;
mod deps;
mod e2e;
mod image;
mod ingest;
mod ingest_paths;
mod ingest_pipeline;
mod jobs;
mod lineage;
mod migrations;
mod object;
mod peer;
mod rgb;
mod robustness;
mod sample;
mod science_quality;
mod scs;
mod tap;
mod tap_service;
mod vo;
mod vo_fixes;
mod web;
