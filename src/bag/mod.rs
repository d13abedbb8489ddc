//! ROS1 bag (format 2.0) container: scanning, window reads and (for fixtures) writing.
//!
//! The container sits behind [`BagSource`] so that ROS 2 storage can arrive as another module.

pub mod buffer;
pub mod chunk;
pub mod lz4;
pub mod record;
pub mod ros1;
pub mod rosbag2;
pub mod scan;
pub mod seam_preview;
pub mod sqlite3;
pub mod write;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Time;

/// Chunk compression as named in the bag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Bz2,
    Lz4,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Bz2 => "bz2",
            Compression::Lz4 => "lz4",
        }
    }
}

/// One connection record: a topic as published by one publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Connection id as stored in the bag.
    pub id: u32,
    pub topic: String,
    /// Message type, e.g. `sensor_msgs/JointState`.
    pub datatype: String,
    pub md5sum: String,
    /// Full message definition text (may be empty in broken bags).
    pub message_definition: String,
    pub callerid: Option<String>,
    pub latching: bool,
}

/// What the scanner learnt about one connection from the index, without decompressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionStats {
    pub count: u64,
    /// Receive (record) time of the first and last message; None when count is 0.
    pub first: Option<Time>,
    pub last: Option<Time>,
}

/// One chunk of the bag as located by the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    /// File offset of the chunk record (its header length field).
    pub pos: u64,
    /// File offset and length of the (possibly compressed) chunk data.
    pub data_pos: u64,
    pub data_len: u64,
    pub compression: Compression,
    /// Uncompressed size declared in the chunk header.
    pub uncompressed_size: u64,
    /// Earliest and latest receive time of the messages in the chunk.
    pub start: Time,
    pub end: Time,
    /// Message count per connection id in this chunk.
    pub counts: Vec<(u32, u64)>,
}

/// Everything known about a bag after the scan: enough for `inspect`, planning and window reads.
#[derive(Debug, Clone)]
pub struct BagSummary {
    pub path: PathBuf,
    pub file_size: u64,
    /// "2.0".
    pub version: String,
    /// False when the bag had no usable index and was read by a sequential scan.
    pub indexed: bool,
    pub connections: Vec<Connection>,
    /// Indexed like `connections`.
    pub stats: Vec<ConnectionStats>,
    /// In file order.
    pub chunks: Vec<ChunkInfo>,
    /// Warnings met while scanning (e.g. "no index: read by a sequential scan").
    pub warnings: Vec<String>,
}

impl BagSummary {
    /// Receive time of the first and last message in the bag.
    pub fn time_range(&self) -> Option<(Time, Time)> {
        let first = self.stats.iter().filter_map(|s| s.first).min()?;
        let last = self.stats.iter().filter_map(|s| s.last).max()?;
        Some((first, last))
    }

    pub fn message_count(&self) -> u64 {
        self.stats.iter().map(|s| s.count).sum()
    }

    /// Indices into `connections` of every connection on `topic`.
    pub fn connections_on(&self, topic: &str) -> Vec<usize> {
        (0..self.connections.len())
            .filter(|&i| self.connections[i].topic == topic)
            .collect()
    }

    /// Number of chunks per compression, in the order first met in the file.
    pub fn compression_counts(&self) -> Vec<(Compression, usize)> {
        let mut out: Vec<(Compression, usize)> = Vec::new();
        for c in &self.chunks {
            match out.iter_mut().find(|(k, _)| *k == c.compression) {
                Some((_, n)) => *n += 1,
                None => out.push((c.compression, 1)),
            }
        }
        out
    }

    /// The earliest receive time at or after `t` that some chunk covers: `t` itself when a
    /// chunk spans it, else the next chunk's start; None when no chunk ends at or after `t`.
    pub fn next_data_time(&self, t: Time) -> Option<Time> {
        self.chunks
            .iter()
            .filter(|c| c.end >= t)
            .map(|c| c.start.max(t))
            .min()
    }

    /// Largest declared uncompressed chunk size: what one chunk in memory costs.
    pub fn largest_chunk(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| c.uncompressed_size)
            .max()
            .unwrap_or(0)
    }

    /// Topic names in first-seen order, without duplicates.
    pub fn topics(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.connections {
            if !out.contains(&c.topic.as_str()) {
                out.push(&c.topic);
            }
        }
        out
    }
}

/// A message as read from a chunk: its bytes are a range of the shared decompressed chunk, so
/// reading a window copies no payloads.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// Index into `BagSummary::connections` (not the bag's connection id).
    pub conn: usize,
    /// Receive (record) time.
    pub time: Time,
    /// Position of the message in the file, used to order messages with equal times:
    /// (chunk record offset, offset of the message record inside the uncompressed chunk).
    pub order: (u64, u64),
    pub buf: Arc<buffer::ChunkBuf>,
    pub range: Range<usize>,
}

impl RawMessage {
    pub fn data(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

/// A bag container that can be scanned and read one time window at a time.
pub trait BagSource: Send {
    fn summary(&self) -> &BagSummary;

    /// Append to `out` every message with `start <= time < end` on a connection whose index
    /// `wanted[conn]` is true, sorted by `(time, order)`. Reads only the chunks that overlap
    /// the window, with positioned reads.
    fn read_window(
        &mut self,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError>;

    /// The first and the last message (in `(time, order)` order) of connection `conn`.
    fn first_and_last(&mut self, conn: usize)
        -> Result<Option<(RawMessage, RawMessage)>, BagError>;
}

/// Open a bag file, picking the container by its magic bytes.
pub fn open(path: &Path) -> Result<Box<dyn BagSource>, BagError> {
    open_with_pool(path, buffer::BufferPool::new())
}

/// [`open`], decompressing into buffers of `pool`: a run shares one pool across its bags, so
/// that each bag does not allocate (and fault in) its chunk buffers afresh.
pub fn open_with_pool(
    path: &Path,
    pool: buffer::BufferPool,
) -> Result<Box<dyn BagSource>, BagError> {
    Ok(Box::new(ros1::Ros1Bag::open_with_pool(path, pool)?))
}

/// Errors of the container layer; each names the file and, where known, the offset.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a ROS1 bag (format 2.0): {detail}")]
    NotABag { path: PathBuf, detail: String },
    /// The path names no bag at all (a directory that is not a ROS 2 bag): the command line's
    /// fault, like a path that does not exist.
    #[error("{path}: {detail}")]
    NoBag { path: PathBuf, detail: String },
    #[error("{path}: at offset {offset}: {detail}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
}
