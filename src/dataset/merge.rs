//! `merge`: one LeRobot v3.0 dataset from several that bagstream wrote (the shards of one
//! run), as converting all their bags in one run would have written it.
//!
//! - Episode order: by input position when every shard has `meta/bagstream_inputs.json`
//!   ([`super::inputs`]), else shard by shard in the order given ([`order`]).
//! - Data rows are read in record batches and rewritten, renumbered, into data files with the
//!   writer's batch, row group and file-size rules ([`rows`]): the merged data files hold the
//!   same rows, and the same bytes, as one run's.
//! - Per-episode stats are kept, those of `episode_index`, `index` and `task_index`
//!   recomputed from their new values; the dataset stats fold the episodes' in merged order
//!   with the writer's (lerobot's) aggregation, so they are one run's too.
//! - Video files are hard-linked (copied across filesystems), never re-encoded: each shard's
//!   file stays a file of its own, and the episodes keep their times in it.
//! - Everything is written in a temporary directory beside `out`, renamed into place at the
//!   end ([`Staging`]).
//!
//! Memory: one read batch and one writer batch of rows, one row group of each shard's
//! `meta/episodes`, and per episode a few dozen bytes of order plus its sync report entry.

mod order;
mod rows;
mod shard;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::frames::{data_file_for_episode, DataFile};
use super::inputs::{self, InputsFile};
use super::meta::{
    self, data_schema, episodes_batch, episodes_schema, episodes_writer_props, write_json,
    write_tasks, EpisodeRow, FeatureInfo, Info, EPISODES_DIR, EPISODES_PATH, INFO_PATH, STATS_PATH,
    SYNC_REPORT_PATH, TASKS_PATH,
};
use super::staging::{link_or_copy, Staging};
use super::stats::{aggregate, FeatureStats};
use super::DatasetError;
use order::{Order, ShardInputs};
use rows::{Renumber, RowLayout};
use shard::Shard;

/// What to merge, and where.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The datasets to merge (shards of one run); at least one.
    pub shards: Vec<PathBuf>,
    /// The dataset to write: absent or an empty directory.
    pub out: PathBuf,
    /// Start a new data file once the current one passes this many bytes (default: the
    /// shards' `data_files_size_in_mb`); lets tests see the rollover with small data.
    pub data_file_limit: Option<u64>,
}

impl MergeOptions {
    pub fn new(shards: Vec<PathBuf>, out: impl Into<PathBuf>) -> MergeOptions {
        MergeOptions {
            shards,
            out: out.into(),
            data_file_limit: None,
        }
    }
}

/// What a merge wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    pub shards: usize,
    pub episodes: u64,
    pub frames: u64,
    pub tasks: u64,
    pub data_files: u64,
    /// Video files hard-linked, and copied (where a link could not be made).
    pub videos_linked: u64,
    pub videos_copied: u64,
    /// True when the episodes were ordered by input position (every shard had an inputs
    /// file), false when shard by shard.
    pub by_position: bool,
    /// The run's input count, when the inputs files record it.
    pub input_count: Option<u64>,
    /// Positions below `input_count` that no shard holds (a shard left out, or bags that
    /// failed with `--keep-going`).
    pub missing_positions: Vec<u64>,
}

fn io_err(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn perr(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Parquet {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Merges `opts.shards` into `opts.out`.
pub fn merge(opts: &MergeOptions) -> Result<MergeSummary, DatasetError> {
    if opts.shards.is_empty() {
        return Err(DatasetError::Refused {
            path: opts.out.clone(),
            detail: "no shard datasets to merge".into(),
        });
    }
    check_paths(opts)?;
    let mut shards = opts
        .shards
        .iter()
        .map(|dir| Shard::open(dir))
        .collect::<Result<Vec<_>, _>>()?;
    for s in &shards[1..] {
        check_compatible(&shards[0], s)?;
    }
    let order = order::order(
        &shards
            .iter()
            .map(|s| ShardInputs {
                dir: &s.dir,
                episodes: s.info.total_episodes,
                inputs: s.inputs.as_ref(),
            })
            .collect::<Vec<_>>(),
    )?;
    let (tasks, task_maps) = unify_tasks(&mut shards, &order)?;

    let staging = Staging::create(
        &opts.out,
        "exists and is not empty; merge writes a new dataset",
    )?;
    let limit = opts
        .data_file_limit
        .unwrap_or(shards[0].info.data_files_size_in_mb << 20);
    let mut w = Merged::create(staging.path(), &shards[0], limit)?;
    for (merged_index, src) in order.episodes.iter().enumerate() {
        if let Some(signal) = crate::interrupt::pending() {
            return Err(DatasetError::Interrupted(signal));
        }
        w.episode(
            &mut shards[src.shard],
            src.shard,
            src.episode,
            merged_index as u64,
            &task_maps[src.shard],
        )?;
    }
    let inputs = order.by_position.then(|| {
        let mut f = InputsFile::new(Vec::new());
        f.input_count = order.input_count;
        f
    });
    let summary = w.finish(&shards, &order, &tasks, inputs)?;
    if let Some(signal) = crate::interrupt::pending() {
        return Err(DatasetError::Interrupted(signal));
    }
    staging.commit()?;
    Ok(summary)
}

/// Each shard once, and `out` not inside one of them.
fn check_paths(opts: &MergeOptions) -> Result<(), DatasetError> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen: HashMap<PathBuf, &PathBuf> = HashMap::new();
    for s in &opts.shards {
        if let Some(first) = seen.insert(canonical(s), s) {
            return Err(DatasetError::Refused {
                path: s.clone(),
                detail: format!("is given twice (also as {})", first.display()),
            });
        }
    }
    // `out` itself may not exist yet: place it by its parent.
    let out = match (opts.out.parent(), opts.out.file_name()) {
        (Some(p), Some(name)) if !p.as_os_str().is_empty() => canonical(p).join(name),
        _ => canonical(&opts.out),
    };
    for (dir, given) in &seen {
        if out.starts_with(dir) {
            return Err(DatasetError::Refused {
                path: opts.out.clone(),
                detail: if out == *dir {
                    "is one of the shards".to_string()
                } else {
                    format!("is inside the shard {}", given.display())
                },
            });
        }
    }
    Ok(())
}

/// `other` must have the first shard's fps, robot_type and features (dtype, shape, names,
/// video encoding), in the same order.
fn check_compatible(first: &Shard, other: &Shard) -> Result<(), DatasetError> {
    let mismatch = |detail: String| DatasetError::Mismatch {
        path: other.dir.clone(),
        detail,
    };
    let there = first.dir.display();
    let (a, b) = (&first.info, &other.info);
    if a.fps != b.fps {
        return Err(mismatch(format!("fps is {}, {there} has {}", b.fps, a.fps)));
    }
    if a.robot_type != b.robot_type {
        return Err(mismatch(format!(
            "robot_type is {:?}, {there} has {:?}",
            b.robot_type, a.robot_type
        )));
    }
    for (key, fb) in &b.features.0 {
        match a.features.get(key) {
            None => return Err(mismatch(format!("feature `{key}` is not in {there}"))),
            Some(fa) => {
                if let Some(d) = feature_differs(fa, fb) {
                    return Err(mismatch(format!(
                        "feature `{key}` differs: {d} here, {there} has it otherwise"
                    )));
                }
            }
        }
    }
    if let Some((key, _)) = a
        .features
        .0
        .iter()
        .find(|(k, _)| b.features.get(k).is_none())
    {
        return Err(mismatch(format!(
            "has no feature `{key}`, which {there} has"
        )));
    }
    let keys = |i: &Info| {
        i.features
            .0
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    if keys(a) != keys(b) {
        return Err(mismatch(format!(
            "features are in the order {:?}, {there} has {:?}",
            keys(b),
            keys(a)
        )));
    }
    Ok(())
}

/// How `b` differs from `a`, said of `b`; `None` when they are the same.
fn feature_differs(a: &FeatureInfo, b: &FeatureInfo) -> Option<String> {
    if a.dtype != b.dtype || a.shape != b.shape {
        return Some(format!(
            "{} {:?} (against {} {:?})",
            b.dtype, b.shape, a.dtype, a.shape
        ));
    }
    if a.names != b.names {
        return Some(format!("names {} (against {})", b.names, a.names));
    }
    if a.extra != b.extra {
        let (ia, ib) = (a.extra.get("info"), b.extra.get("info"));
        if let (Some(Value::Object(ia)), Some(Value::Object(ib))) = (ia, ib) {
            let mut keys: Vec<&String> = ia.keys().chain(ib.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if ia.get(k) != ib.get(k) {
                    return Some(format!(
                        "video info `{k}` {} (against {}); video files are linked, not \
                         re-encoded, so every shard must have been encoded alike",
                        ib.get(k).map_or("missing".into(), Value::to_string),
                        ia.get(k).map_or("missing".into(), Value::to_string),
                    ));
                }
            }
        }
        return Some(format!(
            "{} (against {})",
            serde_json::to_string(&b.extra).unwrap_or_default(),
            serde_json::to_string(&a.extra).unwrap_or_default()
        ));
    }
    None
}

/// The merged tasks in order of first appearance over the merged episodes (a shard's tasks
/// no episode uses after them), and per shard its task_index -> the merged one.
fn unify_tasks(
    shards: &mut [Shard],
    order: &Order,
) -> Result<(Vec<String>, Vec<Vec<u64>>), DatasetError> {
    let mut tasks: Vec<String> = Vec::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut add = |t: &str, tasks: &mut Vec<String>| -> u64 {
        *ids.entry(t.to_string()).or_insert_with(|| {
            tasks.push(t.to_string());
            tasks.len() as u64 - 1
        })
    };
    for src in &order.episodes {
        let shard = &mut shards[src.shard];
        let row = shard.episode(src.episode)?;
        for t in &row.tasks {
            if !shard.tasks.contains(t) {
                return Err(DatasetError::Refused {
                    path: shard.dir.clone(),
                    detail: format!(
                        "episode {}: task {t:?} is not in meta/tasks.parquet",
                        src.episode
                    ),
                });
            }
            add(t, &mut tasks);
        }
    }
    let maps = shards
        .iter()
        .map(|s| s.tasks.iter().map(|t| add(t, &mut tasks)).collect())
        .collect();
    Ok((tasks, maps))
}

/// One video feature's files in the merged dataset.
#[derive(Default)]
struct VideoFiles {
    /// (shard, chunk, file) of a shard's file -> (chunk, file) of its link.
    linked: HashMap<(usize, u64, u64), (u64, u64)>,
    /// The next merged file.
    next: (u64, u64),
}

/// The merged dataset being written in the temporary directory.
struct Merged {
    root: PathBuf,
    info: Info,
    layout: RowLayout,
    data_schema: arrow_schema::SchemaRef,
    image_columns: Vec<String>,
    data: Option<DataFile>,
    next_data_file: (u64, u64),
    data_files: u64,
    data_file_limit: u64,
    episodes_schema: arrow_schema::SchemaRef,
    episodes: Option<ArrowWriter<BufWriter<File>>>,
    /// Per video feature, in `video_keys` order.
    videos: Vec<VideoFiles>,
    videos_linked: u64,
    videos_copied: u64,
    /// Indices of `episode_index`, `index`, `task_index` among the stats features.
    renumbered_stats: [usize; 3],
    stats: Option<Vec<FeatureStats>>,
    sync: Vec<Value>,
    inputs: Vec<inputs::InputEntry>,
}

impl Merged {
    fn create(root: &Path, first: &Shard, data_file_limit: u64) -> Result<Merged, DatasetError> {
        // The first shard's info (features as they are, fields lerobot may add), counted
        // from nothing.
        let info = Info {
            total_episodes: 0,
            total_frames: 0,
            total_tasks: 0,
            ..first.info.clone()
        };
        let data_schema = data_schema(&info.features)?;
        let episodes_schema = episodes_schema(first.stat_features(), first.video_keys());
        let dir = root.join(EPISODES_DIR).join("chunk-000");
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let ep_path = root.join(EPISODES_PATH);
        let ep_file = File::create(&ep_path).map_err(|e| io_err(&ep_path, e))?;
        let episodes = ArrowWriter::try_new(
            BufWriter::new(ep_file),
            episodes_schema.clone(),
            Some(episodes_writer_props()),
        )
        .map_err(|e| perr(&ep_path, e))?;
        let stat_index = |key: &str| {
            first
                .stat_features()
                .iter()
                .position(|f| f.key == key)
                .ok_or_else(|| DatasetError::Invalid(format!("no stats feature `{key}`")))
        };
        Ok(Merged {
            root: root.to_path_buf(),
            layout: RowLayout::new(data_schema.clone())?,
            image_columns: info
                .features
                .0
                .iter()
                .filter(|(_, f)| f.dtype == "image")
                .map(|(k, _)| k.clone())
                .collect(),
            data_schema,
            data: None,
            next_data_file: (0, 0),
            data_files: 0,
            data_file_limit,
            episodes_schema,
            episodes: Some(episodes),
            videos: first
                .video_keys()
                .iter()
                .map(|_| VideoFiles::default())
                .collect(),
            videos_linked: 0,
            videos_copied: 0,
            renumbered_stats: [
                stat_index("episode_index")?,
                stat_index("index")?,
                stat_index("task_index")?,
            ],
            stats: None,
            sync: Vec::new(),
            inputs: Vec::new(),
            info,
        })
    }

    /// Appends episode `k` of `shard` (number `shard_index` in the list) as episode
    /// `merged_index`.
    fn episode(
        &mut self,
        shard: &mut Shard,
        shard_index: usize,
        k: u64,
        merged_index: u64,
        task_map: &[u64],
    ) -> Result<(), DatasetError> {
        let row = shard.episode(k)?;
        // The writer's rule, so that the rows land in the files one run writes.
        if data_file_for_episode(
            &mut self.data,
            &mut self.next_data_file,
            self.data_file_limit,
            &self.root,
            &self.data_schema,
            &self.image_columns,
        )? {
            self.data_files += 1;
        }
        let Some(data) = self.data.as_mut() else {
            return Err(DatasetError::Invalid("no data file open".into()));
        };
        let (data_chunk, data_file) = (data.chunk, data.file);
        let from_index = self.info.total_frames;
        let reader = shard.episode_data(&row, &self.data_schema, self.layout.read_rows())?;
        let source = shard
            .dir
            .join(meta::data_file_rel(row.data_chunk, row.data_file));
        let renumber = Renumber {
            episode_index: merged_index,
            from_index,
            tasks: task_map,
        };
        let (frames, renumbered) = self.layout.copy_episode(reader, &renumber, data, &source)?;
        if frames != row.length {
            return Err(DatasetError::Refused {
                path: source,
                detail: format!(
                    "episode {k} has {frames} rows, its meta/episodes row says {}",
                    row.length
                ),
            });
        }

        let mut videos = Vec::with_capacity(row.videos.len());
        for (v, span) in row.videos.iter().enumerate() {
            let (chunk, file) = self.video_file(shard, shard_index, v, span.chunk, span.file)?;
            videos.push(meta::VideoSpan {
                chunk,
                file,
                ..span.clone()
            });
        }
        let mut stats = row.stats;
        let [e, i, t] = self.renumbered_stats;
        stats[e] = renumbered.episode_index;
        stats[i] = renumbered.index;
        stats[t] = renumbered.task_index;
        let out = EpisodeRow {
            episode_index: merged_index,
            tasks: row.tasks,
            length: frames,
            data_chunk,
            data_file,
            from_index,
            to_index: from_index + frames,
            videos,
            stats,
        };
        let batch = episodes_batch(&self.episodes_schema, std::slice::from_ref(&out))?;
        let ep_path = self.root.join(EPISODES_PATH);
        self.episodes
            .as_mut()
            .ok_or_else(|| DatasetError::Invalid("episodes parquet already closed".into()))?
            .write(&batch)
            .map_err(|e| perr(&ep_path, e))?;
        // Folded episode by episode in merged order, as the writer folds a run's.
        self.stats = Some(match self.stats.take() {
            None => out.stats,
            Some(agg) => agg
                .iter()
                .zip(&out.stats)
                .map(|(a, b)| aggregate(a, b))
                .collect(),
        });
        let mut report = match shard.sync.as_ref().and_then(|s| s.get(k as usize)) {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        report.insert("episode_index".into(), Value::from(merged_index));
        self.sync.push(Value::Object(report));
        if let Some(entry) = shard.inputs.as_ref().and_then(|f| f.entry(k)) {
            self.inputs.push(inputs::InputEntry {
                episode_index: merged_index,
                ..entry.clone()
            });
        }
        self.info.total_episodes += 1;
        self.info.total_frames += frames;
        Ok(())
    }

    /// The merged (chunk, file) of video feature `v`'s file `chunk`/`file` in shard
    /// `shard_index`, linked into the merged dataset the first time.
    fn video_file(
        &mut self,
        shard: &Shard,
        shard_index: usize,
        v: usize,
        chunk: u64,
        file: u64,
    ) -> Result<(u64, u64), DatasetError> {
        let key = &shard.video_keys()[v];
        let files = &mut self.videos[v];
        if let Some(&f) = files.linked.get(&(shard_index, chunk, file)) {
            return Ok(f);
        }
        let to = files.next;
        let src = shard.dir.join(meta::video_file_rel(key, chunk, file));
        if !src.is_file() {
            return Err(DatasetError::Refused {
                path: shard.dir.clone(),
                detail: format!("{} is missing", meta::video_file_rel(key, chunk, file)),
            });
        }
        let dst = self.root.join(meta::video_file_rel(key, to.0, to.1));
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        if link_or_copy(&src, &dst)? {
            self.videos_linked += 1;
        } else {
            self.videos_copied += 1;
        }
        let files = &mut self.videos[v];
        files.linked.insert((shard_index, chunk, file), to);
        files.next = meta::next_file(to.0, to.1);
        Ok(to)
    }

    /// Writes the metadata.
    fn finish(
        mut self,
        shards: &[Shard],
        order: &Order,
        tasks: &[String],
        inputs: Option<InputsFile>,
    ) -> Result<MergeSummary, DatasetError> {
        if let Some(d) = self.data.take() {
            d.close()?;
        }
        let ep_path = self.root.join(EPISODES_PATH);
        if let Some(w) = self.episodes.take() {
            w.close().map_err(|e| perr(&ep_path, e))?;
        }
        write_sync_report(&self.root.join(SYNC_REPORT_PATH), &self.sync)?;
        write_tasks(&self.root.join(TASKS_PATH), tasks)?;
        let stats = self.stats.take().unwrap_or_default();
        write_json(
            &self.root.join(STATS_PATH),
            &meta::stats_json(shards[0].stat_features(), &stats),
        )?;
        self.info.total_tasks = tasks.len() as u64;
        self.info.splits = [(
            "train".to_string(),
            format!("0:{}", self.info.total_episodes),
        )]
        .into_iter()
        .collect();
        write_json(&self.root.join(INFO_PATH), &self.info)?;
        if let Some(mut f) = inputs {
            f.inputs = std::mem::take(&mut self.inputs);
            inputs::write(&self.root, &f)?;
        }
        Ok(MergeSummary {
            shards: shards.len(),
            episodes: self.info.total_episodes,
            frames: self.info.total_frames,
            tasks: self.info.total_tasks,
            data_files: self.data_files,
            videos_linked: self.videos_linked,
            videos_copied: self.videos_copied,
            by_position: order.by_position,
            input_count: order.input_count,
            missing_positions: order.missing_positions(),
        })
    }
}

/// `meta/sync_report.json` laid out as the writer streams it: one entry a line.
fn write_sync_report(path: &Path, entries: &[Value]) -> Result<(), DatasetError> {
    let mut text = String::from("{\n    \"episodes\": [");
    for (i, e) in entries.iter().enumerate() {
        text.push_str(if i == 0 { "\n        " } else { ",\n        " });
        text.push_str(&serde_json::to_string(e).map_err(|e| DatasetError::Invalid(e.to_string()))?);
    }
    text.push_str("\n    ]\n}\n");
    std::fs::write(path, text).map_err(|e| io_err(path, e))
}
