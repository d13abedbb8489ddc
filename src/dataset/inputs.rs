//! `meta/bagstream_inputs.json`: which input became which episode. lerobot ignores the file;
//! `--resume` reads it to convert only what is missing (and to name a bag that changed since),
//! and `merge` to put the episodes of shards back in the order of the original input list.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DatasetError;

/// Where the record sits in a dataset.
pub const INPUTS_PATH: &str = "meta/bagstream_inputs.json";

/// The one version this build writes and reads.
pub const INPUTS_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputsFile {
    pub version: u32,
    /// Length of the run's whole input list (all shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_count: Option<u64>,
    /// Which `--shard I/N` wrote the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// One per episode, in episode order.
    pub inputs: Vec<InputRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    pub episode_index: u64,
    /// The bag's place in the run's whole input list.
    pub position: u64,
    /// As given on the command line or in the list.
    pub path: String,
    /// Bytes (of every file directly in a rosbag2 directory).
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (the newest file's, for a directory).
    pub mtime_ns: i128,
    /// A digest of what the bag's index says (connections, counts, times, blocks): equal
    /// digests, same recording, whatever the file's times say.
    pub index_digest: String,
}

impl InputsFile {
    pub fn new() -> InputsFile {
        InputsFile {
            version: INPUTS_VERSION,
            input_count: None,
            shard: None,
            inputs: Vec::new(),
        }
    }
}

impl Default for InputsFile {
    fn default() -> Self {
        InputsFile::new()
    }
}

/// The record of the dataset at `dir`; None when it has none (written by another tool, or by
/// a bagstream before the record existed).
pub fn read(dir: &Path) -> Result<Option<InputsFile>, DatasetError> {
    let path = dir.join(INPUTS_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DatasetError::Io { path, source }),
    };
    let file: InputsFile = serde_json::from_str(&text).map_err(|e| DatasetError::Refused {
        path: path.clone(),
        detail: format!("not a bagstream inputs record: {e}"),
    })?;
    if file.version != INPUTS_VERSION {
        return Err(DatasetError::Refused {
            path,
            detail: format!(
                "inputs record version {} (this bagstream reads {INPUTS_VERSION})",
                file.version
            ),
        });
    }
    Ok(Some(file))
}

/// Write the record into the dataset (or temporary dataset) at `dir`: through a new file
/// renamed over the old, as the old may be a hard link into the previous dataset.
pub fn write(dir: &Path, file: &InputsFile) -> Result<(), DatasetError> {
    let path = dir.join(INPUTS_PATH);
    let tmp = dir.join(format!("{INPUTS_PATH}.tmp"));
    let text =
        serde_json::to_string_pretty(file).map_err(|e| DatasetError::Invalid(e.to_string()))?;
    let io = |p: &Path, source| DatasetError::Io {
        path: p.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    std::fs::write(&tmp, text + "\n").map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
}
