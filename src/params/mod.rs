//! The one vocabulary of request parameters, shared by every front end
//! (HTTP, command line, batch CSV, VO).

pub mod id_ranges;
