//! ROS1 bag (format 2.0) container: scanning, window reads and (for fixtures) writing.
//!
//! The container sits behind [`BagSource`] so that ROS 2 storage can arrive as another module.

//! Bag containers behind one interface: each storage is a module that scans its files into a
//! storage-neutral [`BagSummary`] and reads one time window at a time ([`BagSource`]); [`open`]
//! picks the storage. Nothing here knows of configs, alignment or outputs.
//!
//! What only one storage has (ROS1 md5sums and callerids, MCAP channel metadata, rosbag2 QoS
//! profiles) sits in [`ConnectionExtra`], which `inspect` shows and the pipeline never reads.

pub mod buffer;
pub mod load;
pub mod lz4;
pub mod mcap;
pub mod ros1;
pub mod rosbag2;
pub mod source;
pub mod sqlite3;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use source::{ReadAt, SliceSource};

use crate::Time;

/// One connection: a topic as one publisher (ROS1), one channel (MCAP) or one topic row
/// (rosbag2) gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The storage's id (ROS1 connection id, MCAP channel id, rosbag2 topic id).
    pub id: u32,
    pub topic: String,
    /// Message type as the storage names it: `sensor_msgs/JointState` (ROS1) or
    /// `sensor_msgs/msg/JointState` (ROS 2).
    pub datatype: String,
    /// How messages are serialized, as the storage names it: `ros1`, `cdr`, ...
    pub encoding: String,
    /// The language of `definition`: `ros1msg`, `ros2msg`, `ros2idl`, or empty when the
    /// storage holds no definition.
    pub schema_format: String,
    /// The definition text as stored (may be empty).
    pub definition: String,
    /// What only this storage records about the connection.
    pub extra: ConnectionExtra,
}

impl Connection {
    /// The ROS1 md5sum of the type, for ROS1 connections.
    pub fn md5sum(&self) -> Option<&str> {
        match &self.extra {
            ConnectionExtra::Ros1 { md5sum, .. } => Some(md5sum),
            _ => None,
        }
    }

    /// The ROS1 publishing node, where the bag records it.
    pub fn callerid(&self) -> Option<&str> {
        match &self.extra {
            ConnectionExtra::Ros1 { callerid, .. } => callerid.as_deref(),
            _ => None,
        }
    }
}

/// Storage-specific facts about a connection: shown by `inspect`, never read by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionExtra {
    Ros1 {
        md5sum: String,
        callerid: Option<String>,
        latching: bool,
    },
    Mcap {
        schema_id: u16,
        metadata: Vec<(String, String)>,
    },
    Rosbag2 {
        offered_qos_profiles: String,
        type_description_hash: String,
    },
}

/// What the scanner learnt about one connection from the index, without decompressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionStats {
    pub count: u64,
    /// Receive (record) time of the first and last message; None when count is 0.
    pub first: Option<Time>,
    pub last: Option<Time>,
}

/// One unit a storage reads at once (a ROS1 or MCAP chunk, a run of sqlite3 rows), as
/// planning, progress and the memory estimate see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Earliest and latest receive time of its messages.
    pub start: Time,
    pub end: Time,
    /// Bytes it takes in the file.
    pub stored_bytes: u64,
    /// Bytes it takes in memory once read (decompressed).
    pub raw_bytes: u64,
    /// `none`, `bz2`, `lz4`, `zstd`.
    pub compression: &'static str,
}

/// Which storage a bag is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    /// `ros1`, `mcap`, `sqlite3`.
    pub id: &'static str,
    /// ROS1: the format version (`2.0`); MCAP: the profile and writing library; rosbag2: the
    /// metadata.yaml version.
    pub version: String,
    /// Further facts for `inspect`, as (label, value).
    pub details: Vec<(String, String)>,
}

/// One file of a bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub size: u64,
}

/// Everything known about a bag after the scan: enough for `inspect`, planning and window reads.
#[derive(Debug, Clone)]
pub struct BagSummary {
    /// What was opened: a file, or a rosbag2 directory.
    pub path: PathBuf,
    pub storage: StorageInfo,
    /// The files read: one for a bare file, each file of a split bag in order.
    pub files: Vec<FileInfo>,
    /// Bytes of all `files`.
    pub file_size: u64,
    /// False when the bag had no usable index and was read by a sequential scan.
    pub indexed: bool,
    pub connections: Vec<Connection>,
    /// Indexed like `connections`.
    pub stats: Vec<ConnectionStats>,
    /// The storage's read units, in file order.
    pub blocks: Vec<Block>,
    /// Warnings met while scanning (e.g. "no index: read by a sequential scan"): the bag is
    /// damaged or disagrees with itself.
    pub warnings: Vec<String>,
    /// What the user should know that is not damage (e.g. a temporary decompressed copy and
    /// the disk space it takes).
    pub notes: Vec<String>,
}

impl BagSummary {
    /// Receive time of the first and last message in the bag.
    /// A digest of what the index says: storage, size, each connection (topic, type, encoding,
    /// definition, count, first and last time) and each block (times, bytes). A rewritten or
    /// re-recorded bag gets another; copying it or touching its times does not. `--resume`
    /// compares it when a bag's size or modification time differs from the record's.
    pub fn index_digest(&self) -> String {
        let mut bytes = Vec::new();
        let mut put = |b: &[u8]| {
            bytes.extend_from_slice(&(b.len() as u64).to_le_bytes());
            bytes.extend_from_slice(b);
        };
        put(self.storage.id.as_bytes());
        put(&self.file_size.to_le_bytes());
        for (c, s) in self.connections.iter().zip(&self.stats) {
            for text in [&c.topic, &c.datatype, &c.encoding, &c.definition] {
                put(text.as_bytes());
            }
            put(&s.count.to_le_bytes());
            for t in [s.first, s.last] {
                put(&t.unwrap_or(Time::MIN).to_le_bytes());
            }
        }
        for b in &self.blocks {
            put(&b.start.to_le_bytes());
            put(&b.end.to_le_bytes());
            put(&b.stored_bytes.to_le_bytes());
            put(&b.raw_bytes.to_le_bytes());
        }
        format!("xxh3-128:{:032x}", twox_hash::XxHash3_128::oneshot(&bytes))
    }

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

    /// Number of blocks per compression, in the order first met in the file.
    pub fn compression_counts(&self) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for b in &self.blocks {
            match out.iter_mut().find(|(k, _)| *k == b.compression) {
                Some((_, n)) => *n += 1,
                None => out.push((b.compression, 1)),
            }
        }
        out
    }

    /// The earliest receive time at or after `t` that some block covers: `t` itself when a
    /// block spans it, else the next block's start; None when no block ends at or after `t`.
    pub fn next_data_time(&self, t: Time) -> Option<Time> {
        self.blocks
            .iter()
            .filter(|b| b.end >= t)
            .map(|b| b.start.max(t))
            .min()
    }

    /// Largest block in memory: what one read unit costs.
    pub fn largest_block(&self) -> u64 {
        self.blocks.iter().map(|b| b.raw_bytes).max().unwrap_or(0)
    }

    /// The blocks a read of receive times `start..end` touches.
    pub fn blocks_between(&self, start: Time, end: Time) -> impl Iterator<Item = &Block> {
        self.blocks
            .iter()
            .filter(move |b| b.end >= start && b.start < end)
    }

    /// Bytes of the file a read of receive times `start..end` reads (for progress).
    pub fn bytes_between(&self, start: Time, end: Time) -> u64 {
        self.blocks_between(start, end)
            .map(|b| b.stored_bytes)
            .sum()
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
    /// Publish time, where the storage records one (MCAP); else None.
    pub publish: Option<Time>,
    /// Position of the message in the bag, used to order messages with equal times: unique
    /// per message and increasing in stream order (ROS1: chunk record offset, offset of the
    /// message record inside the uncompressed chunk).
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

    /// Whether a read may decompress the next block on a second thread (`--threads`); the
    /// storages that read block by block use it, the others have nothing to do.
    fn set_parallel_reads(&mut self, on: bool) {
        let _ = on;
    }
}

/// How to open a bag.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Decompressed blocks come from this pool: a run shares one across its bags, so that each
    /// bag does not allocate (and fault in) its buffers afresh.
    pub pool: buffer::BufferPool,
    /// Where storages that must decompress a whole file first put it (default: the system's
    /// temporary directory).
    pub tmp_dir: Option<PathBuf>,
    /// Decompress the next block on a second thread; None: when the machine has 2 cores or
    /// more (`--threads` decides it per job).
    pub parallel_reads: Option<bool>,
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ros1,
    Mcap,
    Sqlite3,
}

impl Format {
    /// The storage whose magic bytes `head` starts with.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"#ROSBAG V2.0") {
            Some(Format::Ros1)
        } else if head.starts_with(b"\x89MCAP0\r\n") {
            Some(Format::Mcap)
        } else if head.starts_with(b"SQLite format 3\0") {
            Some(Format::Sqlite3)
        } else {
            None
        }
    }
}

/// Open a bag with default options, picking the storage (see [`open_with`]).
pub fn open(path: &Path) -> Result<Box<dyn BagSource>, BagError> {
    open_with(path, &OpenOptions::default())
}

/// Open a bag, picking the storage: a directory holding `metadata.yaml` is a rosbag2 bag; a
/// file is told by its magic bytes.
pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Box<dyn BagSource>, BagError> {
    let mut bag = open_storage(path, opts)?;
    if let Some(on) = opts.parallel_reads {
        bag.set_parallel_reads(on);
    }
    Ok(bag)
}

fn open_storage(path: &Path, opts: &OpenOptions) -> Result<Box<dyn BagSource>, BagError> {
    if path.is_dir() {
        if path.join(rosbag2::metadata::METADATA_FILE).is_file() || has_storage_files(path) {
            return rosbag2::open(path, opts);
        }
        return Err(directory_error(path));
    }
    // A whole-file zstd storage file (`x.db3.zstd`, `x.mcap.zstd`) given by itself.
    if path.extension().is_some_and(|e| e == "zstd") {
        return rosbag2::open_file(path, opts, &Default::default());
    }
    let head = read_head(path)?;
    match Format::sniff(&head) {
        Some(Format::Ros1) | None => Ok(Box::new(ros1::Ros1Bag::open_with_pool(
            path,
            opts.pool.clone(),
        )?)),
        Some(Format::Mcap) => Ok(Box::new(mcap::McapBag::open(path, opts.pool.clone())?)),
        // A bare .db3 (as some tools leave it, without metadata.yaml).
        Some(Format::Sqlite3) => rosbag2::open_file(path, opts, &Default::default()),
    }
}

/// Whether a directory holds rosbag2 storage files (`.db3`, `.mcap`, possibly `.zstd`).
fn has_storage_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| rosbag2::Storage::of_name(&e.file_name().to_string_lossy()).is_some())
    })
}

/// Why a directory is not a bag: it is neither a rosbag2 directory nor holds storage files,
/// so it is the wrong path, as a missing file is.
pub(crate) fn directory_error(path: &Path) -> BagError {
    let bags = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "bag"))
                .count()
        })
        .unwrap_or(0);
    BagError::NoBag {
        path: path.to_path_buf(),
        detail: match bags {
            0 => "is a directory, not a bag file (and holds no .bag file)".to_string(),
            n => format!(
                "is a directory, not a bag file: give the bag files in it ({n} .bag file{})",
                if n == 1 { "" } else { "s" }
            ),
        },
    }
}

/// The first bytes of a file (fewer when it is shorter).
pub(crate) fn read_head(path: &Path) -> Result<Vec<u8>, BagError> {
    use std::io::Read;
    let io = |source| BagError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .map_err(io)?
        .take(16)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(head)
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
    #[error("{path}: not a bag: {detail}")]
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
    /// A well-formed bag in a version, storage or compression this build does not read.
    #[error("{path}: {detail}")]
    Unsupported { path: PathBuf, detail: String },
}
