//! Dataset output. The output sits behind [`DatasetWriter`] so that other formats (LeRobot
//! v2.1, HDF5, Zarr) arrive as new modules.

mod episode_rows;
mod frames;
pub mod inputs;
pub mod lerobot;
pub mod merge;
pub mod meta;
mod staging;
pub mod stats;
pub mod validate;

pub use frames::{BATCH_IMAGE_BYTES, BATCH_ROWS, ROW_GROUP_BYTES};
pub use lerobot::LeRobotWriter;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::camera::RgbImage;
use crate::video::{EncodedVideo, VideoError, VideoSettings};

/// The shape and meaning of one output feature (besides the five default ones).
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// A float32 vector; `names.len()` is its length.
    Vector { names: Vec<String> },
    /// A camera stored as video: one MP4 per camera, episodes concatenated.
    Video { height: u32, width: u32 },
    /// A camera stored as PNG bytes in the data parquet.
    Image { height: u32, width: u32 },
    /// An int64 scalar: the frame's bag time in nanoseconds since the epoch ([`Frame::time`]).
    Time,
}

impl FeatureKind {
    /// (width, height) of a camera feature.
    pub fn camera_size(&self) -> Option<(u32, u32)> {
        match self {
            FeatureKind::Vector { .. } | FeatureKind::Time => None,
            FeatureKind::Video { height, width } | FeatureKind::Image { height, width } => {
                Some((*width, *height))
            }
        }
    }
}

/// For messages: "6 values [joint1, ...]", "video 96x64", "image 96x64", "an int64 bag time".
impl std::fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeatureKind::Vector { names } => write!(
                f,
                "{} value{} [{}]",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            FeatureKind::Video { height, width } => write!(f, "video {width}x{height}"),
            FeatureKind::Image { height, width } => write!(f, "image {width}x{height}"),
            FeatureKind::Time => write!(f, "an int64 bag time"),
        }
    }
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

    /// The camera features (video and image), in output order.
    pub fn cameras(&self) -> impl Iterator<Item = &FeatureSpec> {
        self.features
            .iter()
            .filter(|f| f.kind.camera_size().is_some())
    }

    pub fn has_video(&self) -> bool {
        self.features
            .iter()
            .any(|f| matches!(f.kind, FeatureKind::Video { .. }))
    }
}

/// One output frame. The writer derives `timestamp`, `frame_index`, `index`, `episode_index`
/// and `task_index` itself from the row counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// Every vector feature's values, concatenated in `DatasetSpec::features` order.
    pub values: Vec<f32>,
    /// One per camera feature, in `DatasetSpec::features` order.
    pub images: Vec<FrameImage>,
    /// The bag time of the frame's grid tick, in nanoseconds since the epoch: the value of a
    /// [`FeatureKind::Time`] feature.
    pub time: i64,
}

/// One camera's picture in a frame. Buffers are recycled from frame to frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameImage {
    /// The picture at the feature's size.
    pub rgb: RgbImage,
    /// PNG bytes of `rgb`, for image features (encoded before the writer, in parallel);
    /// empty for video features.
    pub png: Vec<u8>,
}

/// How to open the output.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub out: PathBuf,
    /// Add episodes to an existing dataset with the same features and fps. Without it, an
    /// existing non-empty `out` is an error.
    pub append: bool,
    /// How video features are encoded.
    pub video: VideoSettings,
    /// The ffmpeg binary; `None` finds it (`BAGSTREAM_FFMPEG`, then `PATH`) when the dataset
    /// has a video feature.
    pub ffmpeg: Option<PathBuf>,
    /// Threads of each ffmpeg encoder; None: ffmpeg's choice (all cores each).
    pub encoder_threads: Option<usize>,
}

impl WriterOptions {
    /// Default video settings (lerobot's), ffmpeg found when needed.
    pub fn new(out: impl Into<PathBuf>, append: bool) -> WriterOptions {
        WriterOptions {
            out: out.into(),
            append,
            video: VideoSettings::default(),
            ffmpeg: None,
            encoder_threads: None,
        }
    }
}

/// What the writer reports when an episode ends.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeSummary {
    pub episode_index: u64,
    pub frames: u64,
}

/// A dataset being written. Nothing becomes visible at `WriterOptions::out` until `finish`;
/// dropping the writer without `finish` removes everything it wrote.
/// What the writer reports when the dataset is finished.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterSummary {
    /// Every video file written by this run, in the order they were finished.
    pub videos: Vec<EncodedVideo>,
    /// Number of encoders that ran at the same time (one per video feature).
    pub encoders: usize,
    /// Per video feature: the peak RSS of its encoder (the largest, when the feature's video
    /// was split over several files, whose encoders ran one after the other), as the kernel
    /// reports it when the encoder exits.
    pub encoder_peaks: Vec<Option<u64>>,
    /// Episodes in the dataset, earlier ones (with `append`) included.
    pub episodes: u64,
}

impl WriterSummary {
    /// The encoders' peak RSS: the sum of each one's own peak (the encoders run side by side
    /// for the whole run), so at least what they held together at any moment. None when no
    /// encoder ran or a peak is not known.
    pub fn encoders_peak_rss(&self) -> Option<u64> {
        if self.encoder_peaks.is_empty() {
            return None;
        }
        self.encoder_peaks.iter().copied().sum()
    }
}

pub trait DatasetWriter {
    /// `frames_hint`: how many frames the episode will have at most (the grid length); camera
    /// stats plan their sample of frames from it.
    fn begin_episode(&mut self, task: &str, frames_hint: u64) -> Result<(), DatasetError>;
    fn write_frame(&mut self, frame: &Frame) -> Result<(), DatasetError>;
    /// `sync_report` is stored for this episode in `meta/sync_report.json`.
    fn end_episode(
        &mut self,
        sync_report: serde_json::Value,
    ) -> Result<EpisodeSummary, DatasetError>;
    /// Throw away the episode begun and not ended (its rows, frames, stats and new task), as
    /// if it had never begun: the next episode takes its index. Nothing to do outside an
    /// episode. Writers that cannot roll back refuse.
    fn abort_episode(&mut self) -> Result<(), DatasetError> {
        Err(DatasetError::Invalid(
            "this dataset writer cannot roll back an episode".into(),
        ))
    }
    /// Keep `inputs` (which input became which episode) with the dataset when it is next
    /// finished, in the same commit as the episodes it names. Writers that cannot keep it
    /// refuse.
    fn record_inputs(&mut self, inputs: &inputs::InputsFile) -> Result<(), DatasetError> {
        let _ = inputs;
        Err(DatasetError::Invalid(
            "this dataset writer cannot record its inputs".into(),
        ))
    }
    /// Write the metadata and move the dataset into place.
    fn finish(self: Box<Self>) -> Result<WriterSummary, DatasetError>;
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
    /// `--append` meets a dataset whose feature has another shape or other names than this
    /// run's bags give (the caller names the bag).
    #[error("{path}: {detail}")]
    Mismatch { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
    #[error("interrupted by {}", crate::interrupt::signal_name(*.0))]
    Interrupted(i32),
    #[error(transparent)]
    Video(#[from] VideoError),
}
