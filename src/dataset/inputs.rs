//! `meta/bagstream_inputs.json`: which input of a run became which episode of a dataset.
//!
//! lerobot ignores the file. `convert` writes it (one entry per episode); `merge` orders the
//! episodes of several shards of one run by each entry's `position`, the bag's index in the
//! run's full input list, so that the merged dataset has the input order whatever the shard
//! assignment, and writes the merged dataset's own file (episodes renumbered, positions kept).
//!
//! ```json
//! {"version": 1,
//!  "input_count": 10,
//!  "shard": {"index": 0, "count": 4},
//!  "inputs": [{"episode_index": 0, "position": 3, "path": "/data/run3.bag",
//!              "size": 123456, "mtime_ns": 1700000000000000000, "index_digest": "hex"}]}
//! ```
//! `input_count` and `shard` are optional, as are an entry's `size`, `mtime_ns` and
//! `index_digest` (what the writer knew of the input); `merge` reads only `episode_index`
//! and `position`. Unknown fields are ignored, so a later version can add some.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::meta::write_json;
use super::DatasetError;

/// Where the file lives in a dataset.
pub const INPUTS_PATH: &str = "meta/bagstream_inputs.json";

/// The format version this module reads and writes.
pub const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputsFile {
    pub version: u32,
    /// Length of the run's full input list (all shards together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_count: Option<u64>,
    /// Which `--shard I/N` wrote the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardId>,
    /// One per episode.
    pub inputs: Vec<InputEntry>,
}

/// `--shard I/N`: `index` is 0-based, below `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardId {
    pub index: u64,
    pub count: u64,
}

/// The input one episode came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputEntry {
    pub episode_index: u64,
    /// The input's index in the run's full input list.
    pub position: u64,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
}

impl InputsFile {
    /// A version-1 file of these entries.
    pub fn new(inputs: Vec<InputEntry>) -> InputsFile {
        InputsFile {
            version: VERSION,
            input_count: None,
            shard: None,
            inputs,
        }
    }

    /// Checks the file against a dataset of `episodes` episodes: one entry per episode
    /// (`episode_index` 0..episodes, each once), positions distinct and below `input_count`,
    /// the shard index below its count. The message says what is wrong.
    pub fn check(&self, episodes: u64) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "version {} (this bagstream reads version {VERSION})",
                self.version
            ));
        }
        if let Some(s) = self.shard {
            if s.count == 0 || s.index >= s.count {
                return Err(format!("shard {} of {} is not a shard", s.index, s.count));
            }
        }
        if self.inputs.len() as u64 != episodes {
            return Err(format!(
                "{} entries for {episodes} episodes",
                self.inputs.len()
            ));
        }
        let mut seen_episode = vec![false; self.inputs.len()];
        let mut seen_position = HashSet::new();
        for e in &self.inputs {
            match seen_episode.get_mut(e.episode_index as usize) {
                Some(seen) if !*seen => *seen = true,
                Some(_) => return Err(format!("episode {} is listed twice", e.episode_index)),
                None => {
                    return Err(format!(
                        "episode_index {} is not an episode (the dataset has {episodes})",
                        e.episode_index
                    ))
                }
            }
            if !seen_position.insert(e.position) {
                return Err(format!("position {} is listed twice", e.position));
            }
            if let Some(n) = self.input_count {
                if e.position >= n {
                    return Err(format!(
                        "position {} is not below input_count {n}",
                        e.position
                    ));
                }
            }
        }
        Ok(())
    }

    /// The entry of episode `episode_index`.
    pub fn entry(&self, episode_index: u64) -> Option<&InputEntry> {
        self.inputs
            .iter()
            .find(|e| e.episode_index == episode_index)
    }
}

/// The dataset's inputs file; `None` when it has none.
pub fn read(dataset_dir: &Path) -> Result<Option<InputsFile>, DatasetError> {
    let path = dataset_dir.join(INPUTS_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DatasetError::Io { path, source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DatasetError::Refused {
            path,
            detail: format!("not a bagstream inputs file: {e}"),
        })
}

/// Writes the dataset's inputs file through a temporary file renamed into place, so a reader
/// never sees half a file.
pub fn write(dataset_dir: &Path, file: &InputsFile) -> Result<(), DatasetError> {
    let path = dataset_dir.join(INPUTS_PATH);
    let tmp = dataset_dir.join(format!("{INPUTS_PATH}.tmp-{}", std::process::id()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DatasetError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if let Err(e) = write_json(&tmp, file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        DatasetError::Io { path, source }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(episode_index: u64, position: u64) -> InputEntry {
        InputEntry {
            episode_index,
            position,
            path: PathBuf::from(format!("/data/run{position}.bag")),
            size: Some(123456),
            mtime_ns: Some(1_700_000_000_000_000_000),
            index_digest: Some("ab12".into()),
        }
    }

    #[test]
    fn round_trips_and_reads_the_documented_example() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let mut f = InputsFile::new(vec![entry(0, 3), entry(1, 7)]);
        f.input_count = Some(10);
        f.shard = Some(ShardId { index: 0, count: 4 });
        write(dir.path(), &f).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(f.clone()));
        // No temporary file left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("meta"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["bagstream_inputs.json"]);

        let text = r#"{"version": 1, "input_count": 10, "shard": {"index": 0, "count": 4},
            "inputs": [{"episode_index": 0, "position": 3, "path": "/data/run3.bag",
                        "size": 123456, "mtime_ns": 1700000000000000000, "index_digest": "ab12"},
                       {"episode_index": 1, "position": 7, "path": "/data/run7.bag",
                        "size": 123456, "mtime_ns": 1700000000000000000, "index_digest": "ab12",
                        "a_later_field": true}]}"#;
        std::fs::write(dir.path().join(INPUTS_PATH), text).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(f));

        // Only episode_index, position and path are needed.
        let bare =
            r#"{"version": 1, "inputs": [{"episode_index": 0, "position": 0, "path": "a.bag"}]}"#;
        std::fs::write(dir.path().join(INPUTS_PATH), bare).unwrap();
        let f = read(dir.path()).unwrap().unwrap();
        assert_eq!(
            (f.input_count, f.shard, f.inputs[0].size),
            (None, None, None)
        );
        assert!(f.check(1).is_ok());

        std::fs::write(dir.path().join(INPUTS_PATH), "{").unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(DatasetError::Refused { .. })
        ));
    }

    #[test]
    fn check_says_what_is_wrong() {
        let f = |entries: Vec<InputEntry>| InputsFile::new(entries);
        assert!(f(vec![entry(0, 5), entry(1, 2)]).check(2).is_ok());
        let err = |file: InputsFile, n| file.check(n).unwrap_err();
        assert_eq!(err(f(vec![entry(0, 5)]), 2), "1 entries for 2 episodes");
        assert_eq!(
            err(f(vec![entry(0, 5), entry(0, 6)]), 2),
            "episode 0 is listed twice"
        );
        assert_eq!(
            err(f(vec![entry(0, 5), entry(2, 6)]), 2),
            "episode_index 2 is not an episode (the dataset has 2)"
        );
        assert_eq!(
            err(f(vec![entry(0, 5), entry(1, 5)]), 2),
            "position 5 is listed twice"
        );
        let mut counted = f(vec![entry(0, 10)]);
        counted.input_count = Some(10);
        assert_eq!(err(counted, 1), "position 10 is not below input_count 10");
        let mut sharded = f(vec![entry(0, 1)]);
        sharded.shard = Some(ShardId { index: 4, count: 4 });
        assert_eq!(err(sharded, 1), "shard 4 of 4 is not a shard");
        let mut v2 = f(vec![entry(0, 1)]);
        v2.version = 2;
        assert_eq!(err(v2, 1), "version 2 (this bagstream reads version 1)");
    }
}
