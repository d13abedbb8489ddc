//! One input dataset of a merge: its metadata, checked when opened, and positioned reads of
//! its episode rows and of one episode's data rows (neither reads a whole file).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use serde_json::Value;

use crate::dataset::episode_rows::read_rows;
use crate::dataset::inputs::{self, InputsFile, INPUTS_PATH};
use crate::dataset::lerobot::{collect_parquet, parse_chunk_file};
use crate::dataset::meta::{
    self, read_tasks, EpisodeRow, Info, StatFeature, DATA_PATH, EPISODES_DIR, SYNC_REPORT_PATH,
    TASKS_PATH, VIDEO_PATH,
};
use crate::dataset::DatasetError;

fn refused(dir: &Path, detail: impl Into<String>) -> DatasetError {
    DatasetError::Refused {
        path: dir.to_path_buf(),
        detail: detail.into(),
    }
}

fn perr(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Parquet {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn open_metadata(path: &Path) -> Result<(File, ArrowReaderMetadata), DatasetError> {
    let f = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let m = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|e| perr(path, e))?;
    Ok((f, m))
}

/// A parquet file split into row groups, with the first row of each (counted from the start
/// of the file).
struct Parts {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    file: File,
    /// Row group i holds rows `starts[i]..starts[i + 1]`; the last entry is the row count.
    starts: Vec<u64>,
}

impl Parts {
    fn open(path: &Path) -> Result<Parts, DatasetError> {
        let (file, meta) = open_metadata(path)?;
        let mut starts = vec![0u64];
        for rg in meta.metadata().row_groups() {
            let last = *starts.last().unwrap_or(&0);
            starts.push(last + rg.num_rows().max(0) as u64);
        }
        Ok(Parts {
            path: path.to_path_buf(),
            meta,
            file,
            starts,
        })
    }

    fn rows(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// A reader of rows `lo..hi` of the file in batches of `batch` rows, reading only the
    /// row groups that hold them.
    fn read(
        &self,
        lo: u64,
        hi: u64,
        batch: usize,
    ) -> Result<ParquetRecordBatchReader, DatasetError> {
        let groups: Vec<usize> = (0..self.starts.len() - 1)
            .filter(|&g| self.starts[g] < hi && self.starts[g + 1] > lo)
            .collect();
        let (Some(&first), Some(&last)) = (groups.first(), groups.last()) else {
            return Err(perr(&self.path, format!("no rows {lo}..{hi}")));
        };
        let (from, to) = (self.starts[first], self.starts[last + 1]);
        let selection = RowSelection::from(vec![
            RowSelector::skip((lo - from) as usize),
            RowSelector::select((hi - lo) as usize),
            RowSelector::skip((to - hi) as usize),
        ]);
        let file = self.file.try_clone().map_err(|source| DatasetError::Io {
            path: self.path.clone(),
            source,
        })?;
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
            .with_row_groups(groups)
            .with_row_selection(selection)
            .with_batch_size(batch)
            .build()
            .map_err(|e| perr(&self.path, e))
    }
}

/// A data file of the shard: `data/chunk-C/file-F.parquet` holding rows
/// `start..start + rows` of the dataset.
struct DataEntry {
    chunk: u64,
    file: u64,
    path: PathBuf,
    start: u64,
    rows: u64,
}

/// The shard's episode rows, read a row group at a time (64 episodes as bagstream writes
/// them), the last one kept for the next look-up.
struct Episodes {
    files: Vec<Parts>,
    /// Episode index of each file's first row.
    firsts: Vec<u64>,
    cached: Option<(usize, usize, Vec<EpisodeRow>)>,
}

pub(super) struct Shard {
    pub dir: PathBuf,
    pub info: Info,
    pub tasks: Vec<String>,
    pub inputs: Option<InputsFile>,
    /// `meta/sync_report.json`'s entries, one per episode, when the shard has the file.
    pub sync: Option<Vec<Value>>,
    stat_features: Vec<StatFeature>,
    video_keys: Vec<String>,
    episodes: Episodes,
    data: Vec<DataEntry>,
    /// The data file read last.
    open_data: Option<(usize, Parts)>,
}

impl Shard {
    /// Opens the dataset at `dir`, refusing one that is not a LeRobot v3 dataset whose
    /// metadata agree with its files.
    pub fn open(dir: &Path) -> Result<Shard, DatasetError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refused(dir, "is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refused(dir, "does not exist"))
            }
            Err(source) => {
                return Err(DatasetError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
        if !dir.join(meta::INFO_PATH).is_file() {
            return Err(refused(dir, "is not a LeRobot dataset (no meta/info.json)"));
        }
        let info = Info::read(dir)?;
        if !info.codebase_version.starts_with("v3.") {
            return Err(refused(
                dir,
                format!("codebase_version {} is not v3.x", info.codebase_version),
            ));
        }
        if info.data_path != DATA_PATH {
            return Err(refused(
                dir,
                format!(
                    "data_path is {:?}, merge reads {DATA_PATH:?}",
                    info.data_path
                ),
            ));
        }
        let video_keys: Vec<String> = info
            .features
            .0
            .iter()
            .filter(|(_, f)| f.dtype == "video")
            .map(|(k, _)| k.clone())
            .collect();
        if !video_keys.is_empty() && info.video_path.as_deref() != Some(VIDEO_PATH) {
            return Err(refused(
                dir,
                format!(
                    "video_path is {:?}, merge reads {VIDEO_PATH:?}",
                    info.video_path
                ),
            ));
        }
        let tasks = read_tasks(&dir.join(TASKS_PATH))?;
        if tasks.len() as u64 != info.total_tasks {
            return Err(refused(
                dir,
                format!(
                    "tasks.parquet holds {} tasks, info.json says {}",
                    tasks.len(),
                    info.total_tasks
                ),
            ));
        }
        let inputs = inputs::read(dir)?;
        if let Some(f) = &inputs {
            f.check(info.total_episodes)
                .map_err(|e| refused(dir, format!("{INPUTS_PATH}: {e}")))?;
        }
        let sync = read_sync(dir, info.total_episodes)?;
        let episodes = Episodes::open(dir)?;
        let n_episodes = episodes.len();
        if n_episodes != info.total_episodes {
            return Err(refused(
                dir,
                format!(
                    "meta/episodes holds {n_episodes} episodes, info.json says {}",
                    info.total_episodes
                ),
            ));
        }
        let data = data_files(dir)?;
        let rows: u64 = data.iter().map(|d| d.rows).sum();
        if rows != info.total_frames {
            return Err(refused(
                dir,
                format!(
                    "the data files hold {rows} rows, info.json says total_frames {}",
                    info.total_frames
                ),
            ));
        }
        Ok(Shard {
            dir: dir.to_path_buf(),
            stat_features: meta::stat_features(&info.features),
            video_keys,
            info,
            tasks,
            inputs,
            sync,
            episodes,
            data,
            open_data: None,
        })
    }

    pub fn video_keys(&self) -> &[String] {
        &self.video_keys
    }

    pub fn stat_features(&self) -> &[StatFeature] {
        &self.stat_features
    }

    /// Episode `k`'s row of `meta/episodes`.
    pub fn episode(&mut self, k: u64) -> Result<EpisodeRow, DatasetError> {
        let row = self
            .episodes
            .get(k, &self.stat_features, &self.video_keys)?;
        if row.episode_index != k {
            return Err(refused(
                &self.dir,
                format!(
                    "row {k} of meta/episodes holds episode {}",
                    row.episode_index
                ),
            ));
        }
        Ok(row)
    }

    /// A reader of the data rows of `row` (an episode of this shard), checked against the
    /// file it names, in batches of `batch` rows; the data file's schema must be `schema`.
    pub fn episode_data(
        &mut self,
        row: &EpisodeRow,
        schema: &SchemaRef,
        batch: usize,
    ) -> Result<ParquetRecordBatchReader, DatasetError> {
        let e = row.episode_index;
        let Some(i) = self
            .data
            .iter()
            .position(|d| (d.chunk, d.file) == (row.data_chunk, row.data_file))
        else {
            return Err(refused(
                &self.dir,
                format!(
                    "episode {e} names data file {}, which is not there",
                    meta::data_file_rel(row.data_chunk, row.data_file)
                ),
            ));
        };
        let d = &self.data[i];
        if row.from_index < d.start
            || row.to_index > d.start + d.rows
            || row.to_index < row.from_index
            || row.to_index - row.from_index != row.length
        {
            return Err(refused(
                &self.dir,
                format!(
                    "episode {e}: rows {}..{} (length {}) are not in {}, which holds rows {}..{}",
                    row.from_index,
                    row.to_index,
                    row.length,
                    meta::data_file_rel(d.chunk, d.file),
                    d.start,
                    d.start + d.rows
                ),
            ));
        }
        if self.open_data.as_ref().map(|(j, _)| *j) != Some(i) {
            let parts = Parts::open(&d.path)?;
            check_schema(&d.path, parts.meta.schema(), schema)?;
            self.open_data = Some((i, parts));
        }
        let (lo, hi) = (row.from_index - d.start, row.to_index - d.start);
        match &self.open_data {
            Some((_, parts)) => parts.read(lo, hi, batch),
            None => Err(perr(&d.path, "not open")),
        }
    }
}

/// The data file's columns must be the dataset's: same names, order and types.
fn check_schema(path: &Path, got: &SchemaRef, want: &SchemaRef) -> Result<(), DatasetError> {
    let describe = |s: &SchemaRef| {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
    };
    let (g, w) = (describe(got), describe(want));
    if g != w {
        return Err(DatasetError::Mismatch {
            path: path.to_path_buf(),
            detail: format!("columns {g:?} differ from those info.json declares, {w:?}"),
        });
    }
    Ok(())
}

impl Episodes {
    fn open(dir: &Path) -> Result<Episodes, DatasetError> {
        let mut paths = Vec::new();
        collect_parquet(&dir.join(EPISODES_DIR), &mut paths)?;
        paths.sort();
        if paths.is_empty() {
            return Err(refused(dir, "meta/episodes holds no parquet file"));
        }
        let mut files = Vec::new();
        let mut firsts = Vec::new();
        let mut n = 0;
        for p in &paths {
            let parts = Parts::open(p)?;
            firsts.push(n);
            n += parts.rows();
            files.push(parts);
        }
        firsts.push(n);
        Ok(Episodes {
            files,
            firsts,
            cached: None,
        })
    }

    fn len(&self) -> u64 {
        *self.firsts.last().unwrap_or(&0)
    }

    fn get(
        &mut self,
        k: u64,
        stat_features: &[StatFeature],
        video_keys: &[String],
    ) -> Result<EpisodeRow, DatasetError> {
        let f = self.firsts.partition_point(|&s| s <= k).saturating_sub(1);
        let parts = self
            .files
            .get(f)
            .filter(|_| k < self.len())
            .ok_or_else(|| DatasetError::Invalid(format!("episode {k} is not in meta/episodes")))?;
        let local = k - self.firsts[f];
        let g = parts
            .starts
            .partition_point(|&s| s <= local)
            .saturating_sub(1);
        let cached = matches!(&self.cached, Some((cf, cg, _)) if (*cf, *cg) == (f, g));
        if !cached {
            let (lo, hi) = (parts.starts[g], parts.starts[g + 1]);
            let mut rows = Vec::with_capacity((hi - lo) as usize);
            for batch in parts.read(lo, hi, (hi - lo).max(1) as usize)? {
                let batch = batch.map_err(|e| perr(&parts.path, e))?;
                rows.extend(read_rows(&batch, stat_features, video_keys, &parts.path)?);
            }
            self.cached = Some((f, g, rows));
        }
        let start = parts.starts[g];
        match &self.cached {
            Some((_, _, rows)) => rows
                .get((local - start) as usize)
                .cloned()
                .ok_or_else(|| perr(&parts.path, format!("row {local} is missing"))),
            None => Err(perr(&parts.path, "not read")),
        }
    }
}

/// The data files, sorted by path (lerobot's order), with the rows each holds.
fn data_files(dir: &Path) -> Result<Vec<DataEntry>, DatasetError> {
    let mut paths = Vec::new();
    collect_parquet(&dir.join("data"), &mut paths)?;
    paths.sort();
    let mut out = Vec::new();
    let mut start = 0;
    for path in paths {
        let rel = path
            .strip_prefix(dir)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (chunk, file) = parse_chunk_file(&rel, "parquet").ok_or_else(|| {
            refused(
                dir,
                format!("{rel} is not named data/chunk-CCC/file-FFF.parquet"),
            )
        })?;
        let (_, meta) = open_metadata(&path)?;
        let rows = meta.metadata().file_metadata().num_rows().max(0) as u64;
        out.push(DataEntry {
            chunk,
            file,
            path,
            start,
            rows,
        });
        start += rows;
    }
    Ok(out)
}

/// The entries of `meta/sync_report.json` (one per episode), if the shard has the file.
fn read_sync(dir: &Path, episodes: u64) -> Result<Option<Vec<Value>>, DatasetError> {
    let path = dir.join(SYNC_REPORT_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DatasetError::Io { path, source }),
    };
    let entries = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("episodes").and_then(Value::as_array).cloned())
        .ok_or_else(|| refused(dir, "meta/sync_report.json has no `episodes` list"))?;
    if entries.len() as u64 != episodes {
        return Err(refused(
            dir,
            format!(
                "meta/sync_report.json holds {} entries for {episodes} episodes",
                entries.len()
            ),
        ));
    }
    Ok(Some(entries))
}
