//! bagstream: stream ROS bags into LeRobot datasets with memory bounded by one chunk.
//!
//! The flow, top to bottom: [`bag`] scans and reads the container one time window at a time,
//! [`msg`] decodes the configured fields of each message, [`align`] puts them on the output
//! frame grid, and [`dataset`] writes the frames. [`pipeline`] runs those stages on their own
//! threads; [`convert`] is the library entry point that the CLI calls.

pub mod align;
pub mod alloc;
pub mod bag;
pub mod bag_list;
pub mod camera;
pub mod config;
pub mod convert;
pub mod dataset;
pub mod error;
pub mod estimate;
pub mod inspect;
pub mod interrupt;
pub mod memory;
pub mod msg;
pub mod pipeline;
pub mod plan;
pub mod plot;
pub mod progress;
pub mod resume;
pub mod rss;
pub mod sweep;
/// Fixture generators for tests and examples (the `testkit` feature): not part of what the
/// library supports.
#[cfg(any(test, feature = "testkit"))]
pub mod synth;
#[cfg(test)]
mod test_skip;
pub mod threads;
pub mod video;

pub use error::{Error, Result};

/// A point in time: nanoseconds since the Unix epoch (ROS `time` is sec + nsec).
pub type Time = i64;

/// Nanoseconds per second.
pub const NANOS: i64 = 1_000_000_000;
