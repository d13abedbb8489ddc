//! `metadata.yaml` of a rosbag2 directory, versions 4 to 9 (`rosbag2_bagfile_information`).
//!
//! Only what reading needs is required: the version, the storage, the file list (from
//! `relative_file_paths`, or `files` where present). Everything else has rosbag2's defaults,
//! so a hand-trimmed file still opens; a key of the wrong type is an error naming the key and
//! its line (serde_yaml_ng reports both).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Time;

/// The file a rosbag2 directory describes itself in.
pub const METADATA_FILE: &str = "metadata.yaml";

/// Versions whose layout this parser knows (rosbag2 Foxy wrote 4, Jazzy 8 or 9).
pub const VERSIONS: std::ops::RangeInclusive<u32> = 1..=9;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or a key missing or of the wrong type; `offset` is the byte the parser
    /// stopped at (the detail names the key, line and column).
    #[error("{path}: {detail}")]
    Yaml {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// Well-formed, but a version or compression this reader does not know.
    #[error("{path}: {detail}")]
    Unsupported { path: PathBuf, detail: String },
}

/// Why [`Metadata::parse`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Yaml { offset: u64, detail: String },
    Unsupported(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Yaml { detail, .. } => f.write_str(detail),
            ParseError::Unsupported(d) => f.write_str(d),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Root {
    rosbag2_bagfile_information: Metadata,
}

/// The parsed file; names as rosbag2 writes them.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub version: u32,
    pub storage_identifier: String,
    #[serde(default)]
    pub relative_file_paths: Vec<String>,
    #[serde(default)]
    pub duration: Option<Duration>,
    #[serde(default)]
    pub starting_time: Option<StartingTime>,
    #[serde(default)]
    pub message_count: u64,
    #[serde(default)]
    pub topics_with_message_count: Vec<TopicInformation>,
    /// "" or "zstd".
    #[serde(default, deserialize_with = "null_as_default")]
    pub compression_format: String,
    /// "", "FILE" or "MESSAGE" (rosbags writes them lower case).
    #[serde(default, deserialize_with = "null_as_default")]
    pub compression_mode: String,
    /// Version 5 and later: per-file facts.
    #[serde(default)]
    pub files: Vec<FileInformation>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ros_distro: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Duration {
    pub nanoseconds: i64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct StartingTime {
    pub nanoseconds_since_epoch: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TopicInformation {
    pub topic_metadata: TopicMetadata,
    #[serde(default)]
    pub message_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    #[serde(rename = "type")]
    pub datatype: String,
    pub serialization_format: String,
    /// A YAML document in a string up to version 8, a YAML list from version 9: kept as YAML
    /// text either way (it is only shown).
    #[serde(default, deserialize_with = "qos_as_text")]
    pub offered_qos_profiles: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub type_description_hash: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileInformation {
    pub path: String,
    #[serde(default)]
    pub starting_time: Option<StartingTime>,
    #[serde(default)]
    pub duration: Option<Duration>,
    #[serde(default)]
    pub message_count: u64,
}

/// How the storage files are compressed, from `compression_format`/`compression_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// Each storage file is one zstd stream (`x.db3.zstd`).
    ZstdFile,
    /// Each message's data is one zstd frame.
    ZstdMessage,
}

impl Compression {
    pub fn describe(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::ZstdFile => "zstd file",
            Compression::ZstdMessage => "zstd message",
        }
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn qos_as_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Option::<serde_yaml_ng::Value>::deserialize(d)?;
    Ok(match v {
        None | Some(serde_yaml_ng::Value::Null) => String::new(),
        Some(serde_yaml_ng::Value::String(s)) => s,
        Some(serde_yaml_ng::Value::Sequence(s)) if s.is_empty() => String::new(),
        Some(other) => serde_yaml_ng::to_string(&other)
            .map_err(serde::de::Error::custom)?
            .trim_end()
            .to_string(),
    })
}

impl Metadata {
    /// Read and check `dir/metadata.yaml`.
    pub fn read(dir: &Path) -> Result<Metadata, MetadataError> {
        let path = dir.join(METADATA_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| MetadataError::Io {
            path: path.clone(),
            source,
        })?;
        Metadata::parse(&text).map_err(|e| match e {
            ParseError::Yaml { offset, detail } => MetadataError::Yaml {
                path,
                offset,
                detail,
            },
            ParseError::Unsupported(detail) => MetadataError::Unsupported { path, detail },
        })
    }

    /// Parse the text of a metadata.yaml; the error says which key and line.
    pub fn parse(text: &str) -> Result<Metadata, ParseError> {
        let root: Root = serde_yaml_ng::from_str(text).map_err(|e| ParseError::Yaml {
            offset: e.location().map_or(0, |l| l.index() as u64),
            detail: e.to_string(),
        })?;
        let m = root.rosbag2_bagfile_information;
        if !VERSIONS.contains(&m.version) {
            return Err(ParseError::Unsupported(format!(
                "rosbag2_bagfile_information.version: {} is not a version this reader knows ({}..={})",
                m.version,
                VERSIONS.start(),
                VERSIONS.end()
            )));
        }
        m.compression().map_err(ParseError::Unsupported)?;
        Ok(m)
    }

    /// The storage files in order: `relative_file_paths`, else the paths in `files`.
    pub fn file_paths(&self) -> Vec<&str> {
        if !self.relative_file_paths.is_empty() {
            self.relative_file_paths
                .iter()
                .map(|s| s.as_str())
                .collect()
        } else {
            self.files.iter().map(|f| f.path.as_str()).collect()
        }
    }

    pub fn compression(&self) -> Result<Compression, String> {
        let format = self.compression_format.trim();
        let mode = self.compression_mode.trim().to_ascii_uppercase();
        match (format, mode.as_str()) {
            (_, "" | "NONE") => Ok(Compression::None),
            ("" | "none", _) => Ok(Compression::None),
            ("zstd", "FILE") => Ok(Compression::ZstdFile),
            ("zstd", "MESSAGE") => Ok(Compression::ZstdMessage),
            ("zstd", other) => Err(format!(
                "rosbag2_bagfile_information.compression_mode: {other:?} is none of FILE, MESSAGE"
            )),
            (other, _) => Err(format!(
                "rosbag2_bagfile_information.compression_format: {other:?} is not supported (only zstd)"
            )),
        }
    }

    /// Per-file message count as metadata.yaml states it, where it has a `files` list.
    pub fn file_message_count(&self, rel: &str) -> Option<u64> {
        self.files
            .iter()
            .find(|f| f.path == rel)
            .map(|f| f.message_count)
    }

    /// Start and end of the recording as stated (rosbag2 writes i64::MAX for an empty bag).
    pub fn time_range(&self) -> Option<(Time, Time)> {
        let start = self.starting_time?.nanoseconds_since_epoch;
        let d = self.duration.map_or(0, |d| d.nanoseconds);
        Some((start, start.saturating_add(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = r#"rosbag2_bagfile_information:
  version: 4
  storage_identifier: sqlite3
  relative_file_paths:
    - a_0.db3
    - a_1.db3
  duration:
    nanoseconds: 411
  starting_time:
    nanoseconds_since_epoch: 2623
  message_count: 3
  topics_with_message_count:
    - topic_metadata:
        name: /t
        type: std_msgs/msg/String
        serialization_format: cdr
        offered_qos_profiles: "- history: 3\n  depth: 0"
      message_count: 3
  compression_format: ""
  compression_mode: ""
"#;

    #[test]
    fn version_4_parses() {
        let m = Metadata::parse(V4).unwrap();
        assert_eq!(m.version, 4);
        assert_eq!(m.file_paths(), ["a_0.db3", "a_1.db3"]);
        let t = &m.topics_with_message_count[0];
        assert_eq!(t.topic_metadata.datatype, "std_msgs/msg/String");
        assert_eq!(
            t.topic_metadata.offered_qos_profiles,
            "- history: 3\n  depth: 0"
        );
        assert_eq!(t.topic_metadata.type_description_hash, "");
        assert_eq!(m.compression().unwrap(), Compression::None);
        assert_eq!(m.time_range(), Some((2623, 3034)));
    }

    #[test]
    fn version_9_qos_list_files_and_lower_case_mode() {
        let text = r#"rosbag2_bagfile_information:
  compression_format: zstd
  compression_mode: message
  custom_data: null
  files:
  - duration:
      nanoseconds: 10
    message_count: 2
    path: x.db3
    starting_time:
      nanoseconds_since_epoch: 5
  message_count: 2
  relative_file_paths:
  - x.db3
  ros_distro: rosbags
  storage_identifier: sqlite3
  topics_with_message_count:
  - message_count: 2
    topic_metadata:
      name: /j
      offered_qos_profiles:
      - history: keep_last
        depth: 10
      serialization_format: cdr
      type: sensor_msgs/msg/JointState
      type_description_hash:
        RIHS01_a1
  - message_count: 0
    topic_metadata:
      name: /k
      offered_qos_profiles: []
      serialization_format: cdr
      type: std_msgs/msg/Empty
  version: 9
"#;
        let m = Metadata::parse(text).unwrap();
        assert_eq!(m.compression().unwrap(), Compression::ZstdMessage);
        assert_eq!(m.file_message_count("x.db3"), Some(2));
        let j = &m.topics_with_message_count[0].topic_metadata;
        assert!(
            j.offered_qos_profiles.contains("history: keep_last"),
            "{j:?}"
        );
        assert_eq!(j.type_description_hash, "RIHS01_a1");
        assert_eq!(
            m.topics_with_message_count[1]
                .topic_metadata
                .offered_qos_profiles,
            ""
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = Metadata::parse(&V4.replace("name: /t\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("name") && e.contains("line"), "{e}");
        let e = Metadata::parse(&V4.replace(
            "message_count: 3\n  topics",
            "message_count: many\n  topics",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("message_count") && e.contains("line 11"), "{e}");
        let e = Metadata::parse("rosbag2_bagfile_information: [")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line"), "{e}");
        let e = Metadata::parse(&V4.replace("version: 4", "version: 99"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("version"), "{e}");
        let e = Metadata::parse(
            &V4.replace("compression_format: \"\"", "compression_format: lz4")
                .replace("compression_mode: \"\"", "compression_mode: FILE"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("compression_format"), "{e}");
    }
}
