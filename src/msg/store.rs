//! The definition store: where a connection's message definition comes from.
//!
//! In order: (a) the storage's own definition (MCAP schema, rosbag2 `message_definitions`,
//! the ROS1 connection header); (b) the `--msg-path` directories, searched for
//! `pkg/msg/Type.msg` as a ROS package path is; (c) the definitions bagstream ships
//! (`shipped.rs`). A ROS 2 definition's dependencies that its text lacks are looked up in
//! (b) then (c) too, so a custom `.msg` file needs only its own fields. A type found nowhere
//! is [`MsgError::Missing`], naming the type and every place looked (the caller adds the
//! topic).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::def::{normalize_type, Schema, SchemaFormat, TypeSource};
use super::{shipped, MsgError};

/// A `.msg` file larger than this is not a message definition.
const MAX_FILE: u64 = 1 << 20;

/// Where a resolved definition came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The bag's own definition.
    Storage,
    /// A file found through `--msg-path`.
    File(PathBuf),
    /// bagstream's shipped definitions.
    Shipped,
}

/// A parsed definition and where its main type came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub schema: Schema,
    pub origin: Origin,
}

/// Resolves message types to schemas: see the module documentation for the order.
#[derive(Debug, Clone, Default)]
pub struct DefinitionStore {
    dirs: Vec<PathBuf>,
}

impl DefinitionStore {
    /// A store searching `dirs` (the `--msg-path` directories, in order) before the shipped set.
    pub fn new(dirs: Vec<PathBuf>) -> DefinitionStore {
        DefinitionStore { dirs }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The types whose definitions bagstream ships, as `pkg/Type`.
    pub fn shipped_types() -> impl Iterator<Item = &'static str> {
        shipped::DEFINITIONS.iter().map(|(name, _)| *name)
    }

    /// The schema of `datatype` (`pkg/Type` or `pkg/msg/Type`). `format` and `text` are the
    /// storage's definition as it names them (`ros1msg`, `ros2msg`, `ros2idl`; empty, or
    /// `unknown` as rosbag2 writes it, when the storage has none).
    ///
    /// The storage's definition wins when it is usable. ROS1 text is complete by itself and
    /// stays so (ROS 2 definitions differ: a ROS1 `Header` has `seq`). A storage definition
    /// that is there but does not parse is the bag's error, not a reason to substitute another.
    pub fn resolve(&self, datatype: &str, format: &str, text: &str) -> Result<Resolved, MsgError> {
        let storage = |schema| {
            Ok(Resolved {
                schema,
                origin: Origin::Storage,
            })
        };
        let empty = text.trim().is_empty() && normalize_type(datatype) != "std_msgs/Empty";
        let why_not = match (SchemaFormat::from_name(format), empty) {
            (Some(SchemaFormat::Ros1Msg), _) => return storage(Schema::parse(datatype, text)?),
            (Some(SchemaFormat::Ros2Msg), false) => {
                return storage(Schema::parse_ros2_with(datatype, text, self)?)
            }
            (Some(SchemaFormat::Ros2Msg), true) => "the bag's definition is empty".to_string(),
            (Some(SchemaFormat::Ros2Idl), _) => {
                "the bag's definition is OMG IDL (ros2idl), which bagstream does not parse"
                    .to_string()
            }
            (None, _) if format.is_empty() || format == "unknown" => {
                "the bag has no definition".to_string()
            }
            (None, _) => format!(
                "the bag's definition is in `{format}`, not a ROS message definition language"
            ),
        };
        if let Some((text, path)) = self.find_file(datatype)? {
            return Ok(Resolved {
                schema: Schema::parse_ros2_with(datatype, &text, self)?,
                origin: Origin::File(path),
            });
        }
        if let Some(text) = shipped::find(datatype) {
            return Ok(Resolved {
                schema: Schema::parse_ros2_with(datatype, text, self)?,
                origin: Origin::Shipped,
            });
        }
        let name = normalize_type(datatype);
        Err(MsgError::Missing {
            datatype: datatype.to_string(),
            missing: name.clone(),
            detail: format!(
                "no definition found: {why_not}, {}",
                self.looked_for(&name, true)
            ),
        })
    }

    /// [`DefinitionStore::resolve`] without the origin.
    pub fn schema(&self, datatype: &str, format: &str, text: &str) -> Result<Schema, MsgError> {
        self.resolve(datatype, format, text).map(|r| r.schema)
    }

    /// The `.msg` files a type may be in under one directory: `DIR/pkg/msg/T.msg` (DIR a
    /// `share/` or source directory), `DIR/share/pkg/msg/T.msg` (an install prefix),
    /// `DIR/pkg/share/pkg/msg/T.msg` (colcon's per-package install), `DIR/msg/T.msg` (DIR the
    /// package itself). A service's `_Event` type is looked for as its `.srv` file.
    fn candidates(dir: &Path, datatype: &str) -> Vec<PathBuf> {
        let parts: Vec<&str> = datatype.split('/').collect();
        let (pkg, kind, file) = match parts[..] {
            [pkg, "srv", ty] => match ty.strip_suffix("_Event") {
                Some(srv) => (pkg, "srv", format!("{srv}.srv")),
                None => return Vec::new(),
            },
            [pkg, "msg", ty] | [pkg, ty] => (pkg, "msg", format!("{ty}.msg")),
            _ => return Vec::new(),
        };
        let mut out = vec![
            dir.join(pkg).join(kind).join(&file),
            dir.join("share").join(pkg).join(kind).join(&file),
            dir.join(pkg).join("share").join(pkg).join(kind).join(&file),
        ];
        if dir.file_name().is_some_and(|n| n == pkg) {
            out.push(dir.join(kind).join(&file));
        }
        out
    }

    /// The first `--msg-path` file holding `datatype`, with its text.
    fn find_file(&self, datatype: &str) -> Result<Option<(String, PathBuf)>, MsgError> {
        for dir in &self.dirs {
            for path in Self::candidates(dir, datatype) {
                if let Some(text) = read_definition(&path, datatype)? {
                    return Ok(Some((text, path)));
                }
            }
        }
        Ok(None)
    }

    /// `not in --msg-path ... , not among the shipped definitions`.
    fn looked_for(&self, name: &str, shipped_too: bool) -> String {
        let pkg = name.split('/').next().unwrap_or_default();
        let ty = name.rsplit('/').next().unwrap_or_default();
        let dirs = if self.dirs.is_empty() {
            "no --msg-path given".to_string()
        } else {
            let list: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "not in --msg-path {} (looked for {pkg}/msg/{ty}.msg, share/{pkg}/msg/{ty}.msg, \
                 {pkg}/share/{pkg}/msg/{ty}.msg, and msg/{ty}.msg in a directory named {pkg})",
                list.join(", ")
            )
        };
        if shipped_too {
            format!("{dirs}, not among the shipped definitions")
        } else {
            dirs
        }
    }
}

impl TypeSource for DefinitionStore {
    fn find(&self, name: &str) -> Result<Option<String>, MsgError> {
        if let Some((text, _)) = self.find_file(name)? {
            return Ok(Some(text));
        }
        Ok(shipped::find(name).map(str::to_string))
    }

    fn looked(&self, name: &str) -> String {
        self.looked_for(name, true)
    }
}

/// The text of a definition file, None when there is no such file.
fn read_definition(path: &Path, datatype: &str) -> Result<Option<String>, MsgError> {
    let err = |detail: String| MsgError::Definition {
        datatype: datatype.to_string(),
        detail,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("{}: {e}", path.display()))),
    };
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(err(format!(
            "{}: larger than {MAX_FILE} bytes, not a message definition",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| err(format!("{}: not UTF-8 text", path.display())))
}
