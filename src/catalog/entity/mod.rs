//! sea-orm entities, one per table of the foundation migration.
//!
//! They stay private to the catalogue layer: nothing above `catalog` sees a
//! `Model`; the catalogue converts them into [`crate::model`] types.

pub mod associate_list;
pub mod association;
pub mod data_root;
pub mod dependency;
pub mod frame;
pub mod frame_cell;
pub mod job;
pub mod process_target;
pub mod source;
pub mod source_list;
