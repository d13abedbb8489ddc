//! Dataset output. The output sits behind [`DatasetWriter`] so that other formats (LeRobot
//! v2.1, HDF5, Zarr) arrive as new modules.

mod frames;
pub mod lerobot;
pub mod meta;
pub mod stats;
pub mod validate;

pub use lerobot::LeRobotWriter;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

/// The shape and meaning of one output feature (besides the five default ones).
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// A float32 vector; `names.len()` is its length.
    Vector { names: Vec<String> },
    /// A camera stored as video (issue 3).
    Video { height: u32, width: u32 },
    /// A camera stored as PNG bytes in the data parquet (issue 3).
    Image { height: u32, width: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// Feature key, e.g. `observation.state`.
    pub key: String,
    pub kind: FeatureKind,
}

/// What every episode of a dataset shares.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    pub fps: u32,
    pub robot_type: Option<String>,
    /// In output order.
    pub features: Vec<FeatureSpec>,
}

impl DatasetSpec {
    /// Total number of f32 values of a frame: the sum of the vector features' lengths.
    pub fn vector_len(&self) -> usize {
        self.features
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Vector { names } => names.len(),
                _ => 0,
            })
            .sum()
    }
}

/// One output frame. The writer derives `timestamp`, `frame_index`, `index`, `episode_index`
/// and `task_index` itself from the row counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// Every vector feature's values, concatenated in `DatasetSpec::features` order.
    pub values: Vec<f32>,
}

/// How to open the output.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub out: PathBuf,
    /// Add episodes to an existing dataset with the same features and fps. Without it, an
    /// existing non-empty `out` is an error.
    pub append: bool,
}

/// What the writer reports when an episode ends.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeSummary {
    pub episode_index: u64,
    pub frames: u64,
}

/// A dataset being written. Nothing becomes visible at `WriterOptions::out` until `finish`;
/// dropping the writer without `finish` removes everything it wrote.
pub trait DatasetWriter {
    fn begin_episode(&mut self, task: &str) -> Result<(), DatasetError>;
    fn write_frame(&mut self, frame: &Frame) -> Result<(), DatasetError>;
    /// `sync_report` is stored for this episode in `meta/sync_report.json`.
    fn end_episode(
        &mut self,
        sync_report: serde_json::Value,
    ) -> Result<EpisodeSummary, DatasetError>;
    /// Write the metadata and move the dataset into place.
    fn finish(self: Box<Self>) -> Result<(), DatasetError>;
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Parquet { path: PathBuf, detail: String },
    /// The output directory is in the way, or `--append` meets a dataset with other features.
    #[error("{path}: {detail}")]
    Refused { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
}
