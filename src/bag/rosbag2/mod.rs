//! rosbag2 directories: `metadata.yaml` plus one or more storage files (sqlite3 `.db3` or
//! `.mcap`, each possibly whole-file zstd `.zstd`), read as one recording.
//!
//! - [`metadata`]: the YAML file, versions 1 to 9.
//! - [`split`]: several per-file sources as one.
//! - [`file_zstd`]: whole-file zstd decompressed to a temporary file, removed on drop.
//!
//! A directory without metadata.yaml but with storage files is read from the files, sorted by
//! name, with a warning. A file metadata.yaml lists that is missing is an error naming it;
//! counts that disagree with the files are warnings.

pub mod file_zstd;
pub mod metadata;
pub mod split;

use std::path::{Path, PathBuf};

use crate::bag::sqlite3::{FileOptions, Sqlite3Bag};
use crate::bag::Format;
use crate::bag::{
    BagError, BagSource, BagSummary, ConnectionExtra, OpenOptions, RawMessage, StorageInfo,
};
use crate::Time;
use file_zstd::TempCopy;
use metadata::{Compression, Metadata, MetadataError, METADATA_FILE};
use split::SplitBag;

/// Open the rosbag2 directory `dir`.
pub fn open(dir: &Path, opts: &OpenOptions) -> Result<Box<dyn BagSource>, BagError> {
    Ok(Box::new(open_dir(dir, opts)?))
}

/// The storage a file holds, by its first bytes (after whole-file zstd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Sqlite3,
    Mcap,
}

impl Storage {
    pub fn id(self) -> &'static str {
        match self {
            Storage::Sqlite3 => "sqlite3",
            Storage::Mcap => "mcap",
        }
    }

    /// The storage a file name says (`.db3`, `.mcap`, either with `.zstd`).
    pub(crate) fn of_name(name: &str) -> Option<Storage> {
        let name = name.strip_suffix(".zstd").unwrap_or(name);
        if name.ends_with(".db3") {
            Some(Storage::Sqlite3)
        } else if name.ends_with(".mcap") {
            Some(Storage::Mcap)
        } else {
            None
        }
    }
}

fn sniff(path: &Path) -> Result<Option<Storage>, BagError> {
    let head = crate::bag::read_head(path)?;
    Ok(match Format::sniff(&head) {
        Some(Format::Sqlite3) => Some(Storage::Sqlite3),
        Some(Format::Mcap) => Some(Storage::Mcap),
        Some(Format::Ros1) | None => None,
    })
}

/// One storage file as a source: `.zstd` names are decompressed to a temporary file first
/// (in `opts.tmp_dir`, else the system's), which lives as long as the source.
pub fn open_file(
    path: &Path,
    opts: &OpenOptions,
    fopts: &FileOptions,
) -> Result<Box<dyn BagSource>, BagError> {
    if path.extension().is_some_and(|e| e == "zstd") {
        let tmp_dir = opts.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let needed = file_zstd::declared_size(path);
        if let (Some(need), Some(free)) = (needed, free_space(&tmp_dir)) {
            if need > free {
                return Err(BagError::Io {
                    path: tmp_dir,
                    source: std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        format!(
                            "decompressing {} needs {need} bytes here, {free} are free",
                            path.display()
                        ),
                    ),
                });
            }
        }
        let copy = TempCopy::decompress(path, Some(&tmp_dir))?;
        let inner_opts = FileOptions {
            shown_as: Some(path.to_path_buf()),
            ..fopts.clone()
        };
        let inner = open_plain(copy.path(), path, opts, &inner_opts)?;
        let note = format!(
            "{}: whole-file zstd, decompressed into a temporary file in {} ({} bytes; removed when the bag is closed)",
            path.display(),
            tmp_dir.display(),
            copy.size()
        );
        return Ok(Box::new(WithTemp::new(inner, copy, path, note)));
    }
    open_plain(path, path, opts, fopts)
}

/// A file that is not `.zstd`, by its first bytes; `shown` names it in errors.
fn open_plain(
    path: &Path,
    shown: &Path,
    opts: &OpenOptions,
    fopts: &FileOptions,
) -> Result<Box<dyn BagSource>, BagError> {
    match sniff(path).map_err(|e| rename(e, path, shown))? {
        Some(Storage::Sqlite3) => Ok(Box::new(Sqlite3Bag::open(path, opts.pool.clone(), fopts)?)),
        Some(Storage::Mcap) => {
            let file = std::fs::File::open(path)
                .and_then(crate::bag::source::FileSource::new)
                .map_err(|source| BagError::Io {
                    path: shown.to_path_buf(),
                    source,
                })?;
            Ok(Box::new(crate::bag::mcap::McapBag::from_source(
                shown.to_path_buf(),
                Box::new(file),
                opts.pool.clone(),
            )?))
        }
        None => Err(BagError::NotABag {
            path: shown.to_path_buf(),
            detail: "neither a SQLite (.db3) nor an MCAP file".into(),
        }),
    }
}

/// `e` with `from` (a temporary copy's path) replaced by `to` (the file the user has).
fn rename(e: BagError, from: &Path, to: &Path) -> BagError {
    let fix = |p: PathBuf| if p == from { to.to_path_buf() } else { p };
    match e {
        BagError::Io { path, source } => BagError::Io {
            path: fix(path),
            source,
        },
        BagError::NotABag { path, detail } => BagError::NotABag {
            path: fix(path),
            detail,
        },
        BagError::NoBag { path, detail } => BagError::NoBag {
            path: fix(path),
            detail,
        },
        BagError::Corrupt {
            path,
            offset,
            detail,
        } => BagError::Corrupt {
            path: fix(path),
            offset,
            detail,
        },
        BagError::Unsupported { path, detail } => BagError::Unsupported {
            path: fix(path),
            detail,
        },
    }
}

/// Free bytes for an unprivileged writer on the file system of `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a valid statvfs to fill.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (r == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// A source reading a temporary decompressed copy; the copy goes when this is dropped (the
/// reader first: fields drop in order).
struct WithTemp {
    inner: Box<dyn BagSource>,
    summary: BagSummary,
    copy: TempCopy,
    shown: PathBuf,
}

impl WithTemp {
    fn new(inner: Box<dyn BagSource>, copy: TempCopy, shown: &Path, note: String) -> WithTemp {
        let mut summary = inner.summary().clone();
        let size = std::fs::metadata(shown).map_or(0, |m| m.len());
        summary.path = shown.to_path_buf();
        summary.files = vec![crate::bag::FileInfo {
            path: shown.to_path_buf(),
            size,
        }];
        summary.file_size = size;
        summary.notes.push(note);
        for (k, v) in summary.storage.details.iter_mut() {
            if k == "compression" {
                *v = "zstd file".into();
            }
        }
        WithTemp {
            inner,
            summary,
            copy,
            shown: shown.to_path_buf(),
        }
    }
}

impl BagSource for WithTemp {
    fn set_parallel_reads(&mut self, on: bool) {
        self.inner.set_parallel_reads(on);
    }

    fn summary(&self) -> &BagSummary {
        &self.summary
    }
    fn read_window(
        &mut self,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        self.inner
            .read_window(start, end, wanted, out)
            .map_err(|e| rename(e, self.copy.path(), &self.shown))
    }
    fn first_and_last(
        &mut self,
        conn: usize,
    ) -> Result<Option<(RawMessage, RawMessage)>, BagError> {
        self.inner
            .first_and_last(conn)
            .map_err(|e| rename(e, self.copy.path(), &self.shown))
    }
}

fn metadata_error(e: MetadataError) -> BagError {
    match e {
        MetadataError::Io { path, source } => BagError::Io { path, source },
        MetadataError::Yaml {
            path,
            offset,
            detail,
        } => BagError::Corrupt {
            path,
            offset,
            detail,
        },
        MetadataError::Unsupported { path, detail } => BagError::Unsupported { path, detail },
    }
}

/// The file `rel` (as metadata.yaml lists it) in `dir`. Reindexed bags list paths with the
/// directory's own name in front ("file_compression/x.db3.zstd"): the file's name alone is
/// tried next, as rosbag2's reader and rosbags do.
fn resolve(dir: &Path, rel: &str) -> Option<PathBuf> {
    let direct = dir.join(rel);
    if direct.is_file() {
        return Some(direct);
    }
    let base = dir.join(Path::new(rel).file_name()?);
    base.is_file().then_some(base)
}

/// Storage files in `dir` by name, for a directory without metadata.yaml.
fn list_storage_files(dir: &Path) -> Result<Vec<PathBuf>, BagError> {
    let rd = std::fs::read_dir(dir).map_err(|source| BagError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| BagError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_file() && Storage::of_name(&name).is_some() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// [`open`], as the concrete type.
pub fn open_dir(dir: &Path, opts: &OpenOptions) -> Result<SplitBag, BagError> {
    let meta_path = dir.join(METADATA_FILE);
    let mut warnings = Vec::new();
    let meta = if meta_path.exists() {
        Some(Metadata::read(dir).map_err(metadata_error)?)
    } else {
        None
    };

    let (paths, storage, compression) = match &meta {
        Some(m) => {
            let mut paths = Vec::new();
            let mut missing = Vec::new();
            for rel in m.file_paths() {
                match resolve(dir, rel) {
                    Some(p) => paths.push(p),
                    None => missing.push(dir.join(rel)),
                }
            }
            if let Some(first) = missing.first() {
                let all: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
                return Err(BagError::Io {
                    path: first.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "listed in {} but missing ({} of {} files missing: {})",
                            meta_path.display(),
                            missing.len(),
                            m.file_paths().len(),
                            all.join(", ")
                        ),
                    ),
                });
            }
            if paths.is_empty() {
                return Err(BagError::NoBag {
                    path: meta_path,
                    detail: "lists no storage files".into(),
                });
            }
            let storage = match m.storage_identifier.as_str() {
                "sqlite3" => Storage::Sqlite3,
                "mcap" => Storage::Mcap,
                other => {
                    return Err(BagError::Unsupported {
                        path: meta_path,
                        detail: format!(
                            "rosbag2_bagfile_information.storage_identifier: {other:?} is neither sqlite3 nor mcap"
                        ),
                    })
                }
            };
            let compression = m.compression().map_err(|detail| BagError::Unsupported {
                path: meta_path.clone(),
                detail,
            })?;
            (paths, storage, compression)
        }
        None => {
            let paths = list_storage_files(dir)?;
            let Some(first) = paths.first() else {
                return Err(BagError::NoBag {
                    path: dir.to_path_buf(),
                    detail: "a directory with neither metadata.yaml nor .db3/.mcap files".into(),
                });
            };
            let name = first.file_name().unwrap_or_default().to_string_lossy();
            let storage = Storage::of_name(&name).unwrap_or(Storage::Sqlite3);
            let compression = if name.ends_with(".zstd") {
                Compression::ZstdFile
            } else {
                Compression::None
            };
            let names: Vec<String> = paths
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            warnings.push(format!(
                "{}: no {METADATA_FILE}; read the storage files found, by name: {}",
                dir.display(),
                names.join(", ")
            ));
            (paths, storage, compression)
        }
    };

    let fopts = FileOptions {
        message_zstd: compression == Compression::ZstdMessage,
        shown_as: None,
    };
    if storage == Storage::Mcap && fopts.message_zstd {
        return Err(BagError::Unsupported {
            path: meta_path,
            detail: "per-message zstd in MCAP storage is not supported".into(),
        });
    }
    // Every whole-file zstd file is decompressed at open: the space for all of them is
    // checked first, so that a split bag does not fail on its last file.
    let zstd_paths: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zstd"))
        .collect();
    if zstd_paths.len() > 1 {
        let tmp_dir = opts.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let need: u64 = zstd_paths
            .iter()
            .filter_map(|p| file_zstd::declared_size(p))
            .sum();
        if let Some(free) = free_space(&tmp_dir).filter(|&free| need > free) {
            return Err(BagError::Io {
                path: tmp_dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "decompressing the {} whole-file zstd files of {} needs {need} bytes here, {free} are free",
                        zstd_paths.len(),
                        dir.display()
                    ),
                ),
            });
        }
        warnings.push(format!(
            "{}: {} whole-file zstd files take {need} bytes decompressed in {} while the bag is open",
            dir.display(),
            zstd_paths.len(),
            tmp_dir.display()
        ));
    }
    let mut files = Vec::with_capacity(paths.len());
    for p in &paths {
        files.push(open_file(p, opts, &fopts)?);
    }

    let mut details = vec![
        (
            "compression".to_string(),
            compression.describe().to_string(),
        ),
        ("files".to_string(), paths.len().to_string()),
    ];
    if let Some(d) = meta
        .as_ref()
        .map(|m| m.ros_distro.as_str())
        .filter(|d| !d.is_empty())
    {
        details.push(("ros distro".into(), d.to_string()));
    }
    let info = StorageInfo {
        id: storage.id(),
        version: meta
            .as_ref()
            .map_or_else(|| "no metadata.yaml".to_string(), |m| m.version.to_string()),
        details,
    };
    let mut bag = SplitBag::new(dir.to_path_buf(), info, files, warnings);
    if let Some(m) = &meta {
        check_counts(m, &meta_path, &paths, &mut bag);
        fill_from_metadata(m, bag.summary_mut());
    }
    Ok(bag)
}

/// Warnings where metadata.yaml's counts disagree with what the files hold (the files win).
fn check_counts(m: &Metadata, meta_path: &Path, paths: &[PathBuf], bag: &mut SplitBag) {
    let mut warnings = Vec::new();
    let s = bag.summary();
    let total = s.message_count();
    if m.message_count != total {
        warnings.push(format!(
            "{}: message_count is {}, the files hold {total} messages",
            meta_path.display(),
            m.message_count
        ));
    }
    for t in &m.topics_with_message_count {
        let name = &t.topic_metadata.name;
        let have: u64 = s
            .connections
            .iter()
            .zip(&s.stats)
            .filter(|(c, _)| &c.topic == name)
            .map(|(_, st)| st.count)
            .sum();
        if have != t.message_count {
            warnings.push(format!(
                "{}: topic {name} has message_count {}, the files hold {have}",
                meta_path.display(),
                t.message_count
            ));
        }
    }
    let rels = m.file_paths();
    for ((rel, p), fs) in rels.iter().zip(paths).zip(bag.file_summaries()) {
        if let Some(n) = m.file_message_count(rel) {
            let have = fs.message_count();
            if n != have {
                warnings.push(format!(
                    "{}: file {rel} has message_count {n}, {} holds {have}",
                    meta_path.display(),
                    p.display()
                ));
            }
        }
    }
    bag.summary_mut().warnings.extend(warnings);
}

/// QoS profiles and type hashes the files lack (older sqlite schemas) from metadata.yaml.
fn fill_from_metadata(m: &Metadata, s: &mut BagSummary) {
    for c in &mut s.connections {
        let Some(t) = m
            .topics_with_message_count
            .iter()
            .map(|t| &t.topic_metadata)
            .find(|t| t.name == c.topic && t.datatype == c.datatype)
        else {
            continue;
        };
        if let ConnectionExtra::Rosbag2 {
            offered_qos_profiles,
            type_description_hash,
        } = &mut c.extra
        {
            if offered_qos_profiles.is_empty() {
                offered_qos_profiles.clone_from(&t.offered_qos_profiles);
            }
            if type_description_hash.is_empty() {
                type_description_hash.clone_from(&t.type_description_hash);
            }
        }
    }
}
