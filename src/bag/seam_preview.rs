//! TEMPORARY: the seam's shapes from SEAM.md, until the lead's seam lands on main.
#![allow(dead_code)]
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

pub use super::buffer;
use crate::Time;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: u32,
    pub topic: String,
    pub datatype: String,
    pub encoding: String,
    pub schema_format: String,
    pub definition: String,
    pub extra: ConnectionExtra,
}
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionStats {
    pub count: u64,
    pub first: Option<Time>,
    pub last: Option<Time>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub start: Time,
    pub end: Time,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
    pub compression: &'static str,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    pub id: &'static str,
    pub version: String,
    pub details: Vec<(String, String)>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub size: u64,
}
#[derive(Debug, Clone)]
pub struct BagSummary {
    pub path: PathBuf,
    pub storage: StorageInfo,
    pub files: Vec<FileInfo>,
    pub file_size: u64,
    pub indexed: bool,
    pub connections: Vec<Connection>,
    pub stats: Vec<ConnectionStats>,
    pub blocks: Vec<Block>,
    pub warnings: Vec<String>,
}
impl BagSummary {
    pub fn message_count(&self) -> u64 {
        self.stats.iter().map(|s| s.count).sum()
    }
}
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub conn: usize,
    pub time: Time,
    pub publish: Option<Time>,
    pub order: (u64, u64),
    pub buf: Arc<buffer::ChunkBuf>,
    pub range: Range<usize>,
}
impl RawMessage {
    pub fn data(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}
pub trait BagSource: Send {
    fn summary(&self) -> &BagSummary;
    fn read_window(
        &mut self,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError>;
    fn first_and_last(&mut self, conn: usize)
        -> Result<Option<(RawMessage, RawMessage)>, BagError>;
}
#[derive(Clone, Default)]
pub struct OpenOptions {
    pub pool: buffer::BufferPool,
    pub tmp_dir: Option<PathBuf>,
}
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
    #[error("{path}: {detail}")]
    NoBag { path: PathBuf, detail: String },
    #[error("{path}: at offset {offset}: {detail}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("{path}: {detail}")]
    Unsupported { path: PathBuf, detail: String },
}
