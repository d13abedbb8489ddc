//! Checks a LeRobot v3.0 dataset against the rules of `shared/docs/lerobot-v3.md` that can be
//! checked without decoding video (video files are only probed for their frame count, when
//! ffprobe is there). Each broken rule is reported once, by its first instance, so one bad
//! detail does not bury the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float32Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde_json::Value;

use super::lerobot::{collect_parquet, parse_chunk_file};
use super::meta::{
    column_type, read_parquet, FeatureInfo, OrderedMap, DATA_PATH, DEFAULT_FEATURES, EPISODES_DIR,
    INFO_PATH, STATS_PATH, TASKS_PATH, VIDEO_PATH,
};
use super::stats::STAT_KEYS;
use super::DatasetError;

/// Problems found, one line per broken rule; empty when the dataset is valid.
struct Problems {
    list: Vec<String>,
    seen: HashSet<&'static str>,
}

impl Problems {
    /// Records `msg` unless rule `rule` already has a problem.
    fn add(&mut self, rule: &'static str, msg: impl Into<String>) {
        if self.seen.insert(rule) {
            self.list.push(msg.into());
        }
    }
}

/// What the data files say about one episode.
#[derive(Debug, Clone, Default)]
struct SeenEpisode {
    from: i64,
    rows: i64,
    file: Option<(u64, u64)>,
}

/// Validates the dataset at `dir`. `Err` only when `dir` itself cannot be read.
pub fn validate(dir: &Path) -> Result<Vec<String>, DatasetError> {
    std::fs::read_dir(dir).map_err(|source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut p = Problems {
        list: Vec::new(),
        seen: HashSet::new(),
    };
    let Some((info, features)) = check_info(dir, &mut p) else {
        return Ok(p.list);
    };
    let tasks = check_tasks(dir, &info, &mut p);
    let seen = check_data(dir, &info, &features, tasks.as_ref().map(Vec::len), &mut p);
    check_episodes(
        dir,
        &info,
        &features,
        tasks.as_deref(),
        seen.as_deref(),
        &mut p,
    );
    check_stats(dir, &features, &mut p);
    check_videos(dir, &info, &features, &mut p);
    Ok(p.list)
}

/// One episode's place in one camera's video file.
struct VideoRow {
    episode: i64,
    file: (i64, i64),
    from: f64,
    to: f64,
    length: i64,
}

/// lerobot's tolerance between a frame's time and the time it asks the video for.
const VIDEO_TOLERANCE_S: f64 = 1e-4;

/// Per video feature: the files the episodes name exist; in each file the episodes follow
/// each other from 0 (`from_timestamp` = the previous `to_timestamp`), each spans
/// `length / fps`; and the file holds as many frames as its episodes' rows (by ffprobe).
fn check_videos(dir: &Path, info: &Value, features: &OrderedMap<Value>, p: &mut Problems) {
    let fps = info.get("fps").and_then(Value::as_f64).unwrap_or(0.0);
    let keys: Vec<&String> = features
        .0
        .iter()
        .filter(|(_, f)| f.get("dtype").and_then(Value::as_str) == Some("video"))
        .map(|(k, _)| k)
        .collect();
    if keys.is_empty() || fps <= 0.0 {
        return;
    }
    let mut files = Vec::new();
    let _ = collect_parquet(&dir.join(EPISODES_DIR), &mut files);
    files.sort();
    let mut batches = Vec::new();
    for path in &files {
        if let Ok((_, b, _)) = read_parquet(path) {
            batches.extend(b);
        }
    }
    let ffmpeg = crate::video::find_ffmpeg().ok();
    for key in keys {
        let col =
            |b: &RecordBatch, s: &str| b.column_by_name(&format!("videos/{key}/{s}")).cloned();
        let mut rows = Vec::new();
        for b in &batches {
            let ints =
                |n: &str| col(b, n).and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned());
            let floats = |n: &str| {
                col(b, n).and_then(|c| {
                    c.as_any()
                        .downcast_ref::<arrow_array::Float64Array>()
                        .cloned()
                })
            };
            let (Some(chunk), Some(file), Some(from), Some(to)) = (
                ints("chunk_index"),
                ints("file_index"),
                floats("from_timestamp"),
                floats("to_timestamp"),
            ) else {
                p.add(
                    "video-columns",
                    format!("meta/episodes: videos/{key}/* columns missing or not int64/double"),
                );
                return;
            };
            let ep = b
                .column_by_name("episode_index")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned());
            let len = b
                .column_by_name("length")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned());
            let (Some(ep), Some(len)) = (ep, len) else {
                return;
            };
            for i in 0..b.num_rows() {
                rows.push(VideoRow {
                    episode: ep.value(i),
                    file: (chunk.value(i), file.value(i)),
                    from: from.value(i),
                    to: to.value(i),
                    length: len.value(i),
                });
            }
        }
        let mut per_file: BTreeMap<(i64, i64), Vec<&VideoRow>> = BTreeMap::new();
        for r in &rows {
            per_file.entry(r.file).or_default().push(r);
        }
        for ((c, f), eps) in per_file {
            let rel = format!("videos/{key}/chunk-{c:03}/file-{f:03}.mp4");
            let path = dir.join(&rel);
            if !path.is_file() {
                p.add(
                    "video-file",
                    format!("{rel} (episode {}) is missing", eps[0].episode),
                );
                continue;
            }
            let mut expect_from = 0.0;
            for r in &eps {
                if (r.from - expect_from).abs() > VIDEO_TOLERANCE_S {
                    p.add(
                        "video-timestamps",
                        format!(
                            "{rel}: episode {} starts at {} s, expected {expect_from} s (the end of the one before in this file)",
                            r.episode, r.from
                        ),
                    );
                }
                let span = r.length as f64 / fps;
                if (r.to - r.from - span).abs() > VIDEO_TOLERANCE_S {
                    p.add(
                        "video-timestamps",
                        format!(
                            "{rel}: episode {} spans {}..{} s, but {} frames at {fps} fps take {span} s",
                            r.episode, r.from, r.to, r.length
                        ),
                    );
                }
                expect_from = r.to;
            }
            let rows_in_file: i64 = eps.iter().map(|r| r.length).sum();
            if let Some(ffmpeg) = &ffmpeg {
                match crate::video::count_frames(ffmpeg, &path) {
                    Ok(n) if n as i64 == rows_in_file => {}
                    Ok(n) => p.add(
                        "video-frames",
                        format!("{rel} holds {n} frames, its episodes have {rows_in_file} rows"),
                    ),
                    Err(e) => p.add("video-frames", format!("{rel}: {e}")),
                }
            }
        }
    }
}

/// A JSON value as a problem line shows it: as JSON (strings quoted), or `missing`.
fn shown(v: Option<&Value>) -> String {
    v.map_or_else(|| "missing".into(), Value::to_string)
}

fn int_field(info: &Value, key: &str, p: &mut Problems) -> Option<u64> {
    match info.get(key) {
        Some(v) if v.as_u64().is_some() => v.as_u64(),
        Some(v) => {
            p.add(
                "info-fields",
                format!("meta/info.json: `{key}` is {v}, not a non-negative integer"),
            );
            None
        }
        None => {
            p.add("info-fields", format!("meta/info.json: `{key}` is missing"));
            None
        }
    }
}

/// info.json fields and features; `None` when it cannot be read at all.
fn check_info(dir: &Path, p: &mut Problems) -> Option<(Value, OrderedMap<Value>)> {
    let path = dir.join(INFO_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            p.add("layout", format!("meta/info.json cannot be read: {e}"));
            return None;
        }
    };
    let info: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            p.add("info-json", format!("meta/info.json is not JSON: {e}"));
            return None;
        }
    };
    #[derive(serde::Deserialize)]
    struct Features {
        features: OrderedMap<Value>,
    }
    let Ok(Features { features }) = serde_json::from_str::<Features>(&text) else {
        p.add(
            "info-features",
            "meta/info.json: `features` is missing or not an object",
        );
        return None;
    };

    match info.get("codebase_version").and_then(Value::as_str) {
        Some(v) => {
            let major = v
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            if major != Some(3) {
                p.add(
                    "info-version",
                    format!("meta/info.json: codebase_version {v:?} is not v3.x"),
                );
            }
        }
        None => p.add(
            "info-version",
            "meta/info.json: codebase_version is missing",
        ),
    }
    if int_field(&info, "fps", p) == Some(0) {
        p.add("info-fps", "meta/info.json: fps is 0");
    }
    for key in [
        "total_episodes",
        "total_frames",
        "total_tasks",
        "chunks_size",
        "data_files_size_in_mb",
        "video_files_size_in_mb",
    ] {
        if int_field(&info, key, p) == Some(0) && !key.starts_with("total_") {
            p.add("info-sizes", format!("meta/info.json: `{key}` is 0"));
        }
    }
    if info.get("data_path").and_then(Value::as_str) != Some(DATA_PATH) {
        p.add(
            "info-data-path",
            format!(
                "meta/info.json: data_path is {}, expected \"{DATA_PATH}\"",
                shown(info.get("data_path"))
            ),
        );
    }
    let has_video = features
        .0
        .iter()
        .any(|(_, f)| f.get("dtype").and_then(Value::as_str) == Some("video"));
    match (has_video, info.get("video_path")) {
        (false, Some(Value::Null)) => {}
        (true, Some(Value::String(s))) if s == VIDEO_PATH => {}
        (_, v) => p.add(
            "info-video-path",
            format!(
                "meta/info.json: video_path is {}, expected {}",
                shown(v),
                if has_video {
                    format!("\"{VIDEO_PATH}\"")
                } else {
                    "null (no video feature)".into()
                }
            ),
        ),
    }
    if info.get("robot_type").is_none() {
        p.add("info-fields", "meta/info.json: `robot_type` is missing");
    }
    let total_episodes = info.get("total_episodes").and_then(Value::as_u64);
    let want_split = total_episodes.map(|n| format!("0:{n}"));
    let split = info
        .get("splits")
        .and_then(|s| s.get("train"))
        .and_then(Value::as_str);
    if split.is_none() || split.map(str::to_string) != want_split {
        p.add(
            "info-splits",
            format!(
                "meta/info.json: splits.train is {}, expected {}",
                split.map_or_else(|| "missing".into(), |s| format!("\"{s}\"")),
                want_split.map_or_else(
                    || "\"0:N\" with N = total_episodes".into(),
                    |s| format!("\"{s}\"")
                )
            ),
        );
    }

    for (key, dtype) in DEFAULT_FEATURES {
        match features.get(key) {
            None => p.add(
                "features-defaults",
                format!("feature `{key}` is not declared in info.json"),
            ),
            Some(f) => {
                let ok = f.get("dtype").and_then(Value::as_str) == Some(dtype)
                    && f.get("shape") == Some(&serde_json::json!([1]));
                if !ok {
                    p.add(
                        "features-defaults",
                        format!("feature `{key}` must be {dtype} shape [1], info.json has {f}"),
                    );
                }
            }
        }
    }
    for (key, f) in &features.0 {
        if key.contains('/') {
            p.add(
                "features-slash",
                format!("feature `{key}`: names must not contain '/'"),
            );
        }
        let dtype = f.get("dtype").and_then(Value::as_str);
        let shape: Option<Vec<u64>> = f
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(dtype), Some(shape)) = (dtype, shape) else {
            p.add(
                "features-entry",
                format!("feature `{key}`: dtype or shape missing or malformed"),
            );
            continue;
        };
        let Some(names) = f.get("names") else {
            p.add(
                "features-names",
                format!("feature `{key}`: `names` is missing (null is allowed)"),
            );
            continue;
        };
        match dtype {
            "video" | "image" => {
                if shape.len() != 3 {
                    p.add(
                        "features-shape",
                        format!("feature `{key}`: camera shape {shape:?} is not [H, W, 3]"),
                    );
                }
                if names != &serde_json::json!(["height", "width", "channels"]) {
                    p.add(
                        "features-names",
                        format!("feature `{key}`: camera names must be [\"height\", \"width\", \"channels\"], got {names}"),
                    );
                }
                if dtype == "video" {
                    check_video_info(key, f, p);
                }
            }
            _ => {
                if let (Some(list), [n]) = (names.as_array(), shape.as_slice()) {
                    if list.len() as u64 != *n {
                        p.add(
                            "features-names",
                            format!("feature `{key}`: {} names for shape [{n}]", list.len()),
                        );
                    }
                }
            }
        }
    }
    Some((info, features))
}

fn check_video_info(key: &str, f: &Value, p: &mut Problems) {
    let Some(info) = f.get("info").and_then(Value::as_object) else {
        p.add(
            "features-video-info",
            format!("video feature `{key}` has no `info`"),
        );
        return;
    };
    for k in [
        "video.height",
        "video.width",
        "video.codec",
        "video.pix_fmt",
        "video.fps",
        "video.channels",
        "has_audio",
    ] {
        if !info.contains_key(k) {
            p.add(
                "features-video-info",
                format!("video feature `{key}`: info has no `{k}`"),
            );
        }
    }
}

/// The tasks, position = task_index; `None` when tasks.parquet is unusable.
fn check_tasks(dir: &Path, info: &Value, p: &mut Problems) -> Option<Vec<String>> {
    let path = dir.join(TASKS_PATH);
    if !path.is_file() {
        p.add("layout", "meta/tasks.parquet is missing");
        return None;
    }
    let (schema, batches, kv) = match read_parquet(&path) {
        Ok(r) => r,
        Err(e) => {
            p.add(
                "tasks-read",
                format!("meta/tasks.parquet cannot be read: {e}"),
            );
            return None;
        }
    };
    let types_ok = schema
        .field_with_name("task_index")
        .map(|f| f.data_type().clone())
        .ok()
        == Some(DataType::Int64)
        && schema
            .field_with_name("task")
            .map(|f| f.data_type().clone())
            .ok()
            == Some(DataType::Utf8);
    if !types_ok {
        p.add(
            "tasks-columns",
            format!("meta/tasks.parquet must have columns task_index int64 and task string, has {schema}"),
        );
        return None;
    }
    let index_columns = kv
        .get("pandas")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.get("index_columns").cloned());
    if index_columns != Some(serde_json::json!(["task"])) {
        p.add(
            "tasks-pandas",
            "meta/tasks.parquet: pandas metadata does not mark `task` as the index \
             (lerobot would read every task as 0)",
        );
    }
    let mut pairs = Vec::new();
    for b in &batches {
        let (Some(idx), Some(task)) = (
            b.column_by_name("task_index")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>()),
            b.column_by_name("task")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            pairs.push((idx.value(i), task.value(i).to_string()));
        }
    }
    pairs.sort();
    if pairs.iter().enumerate().any(|(i, (t, _))| *t != i as i64) {
        p.add(
            "tasks-index",
            "meta/tasks.parquet: task_index is not 0..n-1",
        );
    }
    let tasks: Vec<String> = pairs.into_iter().map(|(_, t)| t).collect();
    let unique: HashSet<&String> = tasks.iter().collect();
    if unique.len() != tasks.len() {
        p.add("tasks-index", "meta/tasks.parquet: a task appears twice");
    }
    if info.get("total_tasks").and_then(Value::as_u64) != Some(tasks.len() as u64) {
        p.add(
            "info-totals",
            format!(
                "meta/info.json: total_tasks is {}, tasks.parquet holds {}",
                shown(info.get("total_tasks")),
                tasks.len()
            ),
        );
    }
    Some(tasks)
}

/// The arrow type a column must have, compared without list item names or nullability
/// (pyarrow names the item `element`, we name it `item`; lerobot reads both).
fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::FixedSizeList(x, n), DataType::FixedSizeList(y, m)) => {
            n == m && same_type(x.data_type(), y.data_type())
        }
        (DataType::List(x), DataType::List(y))
        | (DataType::LargeList(x), DataType::LargeList(y)) => {
            same_type(x.data_type(), y.data_type())
        }
        (DataType::Struct(x), DataType::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(f, g)| f.name() == g.name() && same_type(f.data_type(), g.data_type()))
        }
        _ => a == b,
    }
}

/// Checks every data file; returns what each episode looked like in the data (`None` when
/// the data could not be read well enough to say).
fn check_data(
    dir: &Path,
    info: &Value,
    features: &OrderedMap<Value>,
    n_tasks: Option<usize>,
    p: &mut Problems,
) -> Option<Vec<SeenEpisode>> {
    let data_dir = dir.join("data");
    let mut files = Vec::new();
    if collect_parquet(&data_dir, &mut files).is_err() || files.is_empty() {
        p.add("layout", "data/ holds no parquet file");
        return None;
    }
    files.sort();
    let mut located: Vec<(PathBuf, (u64, u64))> = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(dir)
            .unwrap_or(&f)
            .to_string_lossy()
            .into_owned();
        match parse_chunk_file(&rel, "parquet") {
            Some(cf) => located.push((f, cf)),
            None => p.add(
                "data-stray",
                format!(
                    "{rel}: stray parquet under data/ (the loader reads every data/*/*.parquet)"
                ),
            ),
        }
    }
    let fps = info.get("fps").and_then(Value::as_u64).filter(|f| *f > 0)?;
    // Expected columns: non-video features with their types.
    let mut expected: Vec<(String, Option<DataType>)> = Vec::new();
    for (key, f) in &features.0 {
        let Ok(fi) = serde_json::from_value::<FeatureInfo>(f.clone()) else {
            continue;
        };
        if fi.dtype != "video" {
            expected.push((key.clone(), column_type(&fi)));
        }
    }

    let mut episodes: Vec<SeenEpisode> = Vec::new();
    let mut row: i64 = 0;
    let mut last_frame: i64 = -1;
    let mut values_ok = true;
    for (path, cf) in &located {
        let rel = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                p.add("data-read", format!("{rel}: {e}"));
                return None;
            }
        };
        let builder = match ParquetRecordBatchReaderBuilder::try_new(file) {
            Ok(b) => b,
            Err(e) => {
                p.add("data-read", format!("{rel}: not a parquet file: {e}"));
                return None;
            }
        };
        let schema: SchemaRef = builder.schema().clone();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for (key, dt) in &expected {
            match schema.field_with_name(key) {
                Err(_) => p.add("data-columns", format!("{rel}: column `{key}` is missing")),
                Ok(field) => {
                    if let Some(dt) = dt {
                        if !same_type(field.data_type(), dt) {
                            p.add(
                                "data-types",
                                format!(
                                    "{rel}: column `{key}` is {}, info.json needs {dt}",
                                    field.data_type()
                                ),
                            );
                        }
                    }
                }
            }
        }
        for n in &names {
            if !expected.iter().any(|(k, _)| k == n) {
                p.add(
                    "data-columns",
                    format!("{rel}: column `{n}` is not a non-video feature of info.json"),
                );
            }
        }
        let wanted = [
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        ];
        let idx: Vec<usize> = wanted
            .iter()
            .filter_map(|w| names.iter().position(|n| n == w))
            .collect();
        if idx.len() != wanted.len() {
            values_ok = false;
            continue;
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
        let reader = match builder.with_projection(mask).build() {
            Ok(r) => r,
            Err(e) => {
                p.add("data-read", format!("{rel}: {e}"));
                return None;
            }
        };
        for batch in reader {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    p.add("data-read", format!("{rel}: {e}"));
                    return None;
                }
            };
            let Some(cols) = default_columns(&batch) else {
                values_ok = false;
                break;
            };
            let (ts, fi, ei, ix, ti) = cols;
            for i in 0..batch.num_rows() {
                let (ts, fi, ei, ix, ti) = (
                    ts.value(i),
                    fi.value(i),
                    ei.value(i),
                    ix.value(i),
                    ti.value(i),
                );
                if ix != row {
                    p.add(
                        "data-index",
                        format!("{rel}: row {row} (over files sorted by path) has index {ix}"),
                    );
                }
                let cur = episodes.len() as i64 - 1;
                if ei != cur {
                    if ei != cur + 1 {
                        p.add(
                            "data-episode-index",
                            format!(
                                "{rel}: index {row}: episode_index {ei} follows {cur} \
                                 (must be contiguous from 0, rows of an episode together)"
                            ),
                        );
                    }
                    if ei == cur + 1 || episodes.is_empty() {
                        episodes.push(SeenEpisode {
                            from: row,
                            rows: 0,
                            file: Some(*cf),
                        });
                    }
                    last_frame = -1;
                }
                if let Some(ep) = episodes.last_mut() {
                    ep.rows += 1;
                    if ep.file != Some(*cf) {
                        p.add(
                            "data-episode-file",
                            format!("{rel}: episode {ei} is split across data files"),
                        );
                    }
                }
                if Some(fi) != last_frame.checked_add(1) {
                    p.add(
                        "data-frame-index",
                        format!(
                            "{rel}: index {row}: frame_index {fi}, expected {} (0..len-1 per episode)",
                            last_frame.saturating_add(1)
                        ),
                    );
                }
                last_frame = fi;
                let want = fi as f64 / fps as f64;
                if (f64::from(ts) - want).abs() > 1e-4 {
                    p.add(
                        "data-timestamp",
                        format!(
                            "{rel}: index {row}: timestamp {ts}, expected frame_index/fps = {want}"
                        ),
                    );
                }
                if let Some(n) = n_tasks {
                    if ti < 0 || ti as usize >= n {
                        p.add(
                            "data-task-index",
                            format!("{rel}: index {row}: task_index {ti} is not in tasks.parquet (0..{n})"),
                        );
                    }
                }
                row += 1;
            }
        }
    }
    if !values_ok {
        return None;
    }
    if info.get("total_frames").and_then(Value::as_i64) != Some(row) {
        p.add(
            "info-totals",
            format!(
                "meta/info.json: total_frames is {}, the data holds {row} rows",
                shown(info.get("total_frames"))
            ),
        );
    }
    if info.get("total_episodes").and_then(Value::as_u64) != Some(episodes.len() as u64) {
        p.add(
            "info-totals",
            format!(
                "meta/info.json: total_episodes is {}, the data holds {} episodes",
                shown(info.get("total_episodes")),
                episodes.len()
            ),
        );
    }
    Some(episodes)
}

type DefaultCols<'a> = (
    &'a Float32Array,
    &'a Int64Array,
    &'a Int64Array,
    &'a Int64Array,
    &'a Int64Array,
);

fn default_columns(b: &RecordBatch) -> Option<DefaultCols<'_>> {
    let int = |n: &str| b.column_by_name(n)?.as_any().downcast_ref::<Int64Array>();
    Some((
        b.column_by_name("timestamp")?
            .as_any()
            .downcast_ref::<Float32Array>()?,
        int("frame_index")?,
        int("episode_index")?,
        int("index")?,
        int("task_index")?,
    ))
}

fn check_episodes(
    dir: &Path,
    info: &Value,
    features: &OrderedMap<Value>,
    tasks: Option<&[String]>,
    seen: Option<&[SeenEpisode]>,
    p: &mut Problems,
) {
    let mut files = Vec::new();
    let _ = collect_parquet(&dir.join(EPISODES_DIR), &mut files);
    if files.is_empty() {
        p.add("layout", "meta/episodes/ holds no parquet file");
        return;
    }
    files.sort();
    let mut required: Vec<String> = [
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (key, f) in &features.0 {
        if f.get("dtype").and_then(Value::as_str) == Some("video") {
            for s in [
                "chunk_index",
                "file_index",
                "from_timestamp",
                "to_timestamp",
            ] {
                required.push(format!("videos/{key}/{s}"));
            }
        }
        for s in STAT_KEYS {
            required.push(format!("stats/{key}/{s}"));
        }
    }
    let task_set: Option<HashSet<&str>> = tasks.map(|t| t.iter().map(String::as_str).collect());
    let mut n_rows = 0usize;
    for path in &files {
        let rel = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let (schema, batches, _) = match read_parquet(path) {
            Ok(r) => r,
            Err(e) => {
                p.add("episodes-read", format!("{rel} cannot be read: {e}"));
                return;
            }
        };
        for r in &required {
            if schema.field_with_name(r).is_err() {
                p.add(
                    "episodes-columns",
                    format!("{rel}: required column `{r}` is missing"),
                );
            }
        }
        for b in &batches {
            let int = |n: &str| {
                b.column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            };
            let cols = (
                int("episode_index"),
                int("dataset_from_index"),
                int("dataset_to_index"),
                int("length"),
                int("data/chunk_index"),
                int("data/file_index"),
            );
            let (Some(ep), Some(from), Some(to), len, chunk, file) = cols else {
                p.add(
                    "episodes-columns",
                    format!("{rel}: episode_index, dataset_from_index and dataset_to_index must be int64"),
                );
                return;
            };
            let task_lists = b
                .column_by_name("tasks")
                .and_then(|c| c.as_any().downcast_ref::<ListArray>());
            for i in 0..b.num_rows() {
                let e = ep.value(i);
                if e != n_rows as i64 {
                    p.add(
                        "episodes-order",
                        format!("{rel}: row {n_rows} holds episode_index {e}"),
                    );
                }
                let (f, t) = (from.value(i), to.value(i));
                if let Some(len) = len {
                    if Some(len.value(i)) != t.checked_sub(f) {
                        p.add(
                            "episodes-length",
                            format!(
                                "{rel}: episode {e}: length {} != to - from = {}",
                                len.value(i),
                                t.saturating_sub(f)
                            ),
                        );
                    }
                }
                if let Some(s) = seen.and_then(|s| s.get(n_rows)) {
                    if f != s.from || t != s.from + s.rows {
                        p.add(
                            "episodes-range",
                            format!(
                                "{rel}: episode {e}: dataset_from/to_index {f}..{t}, the data holds it at {}..{}",
                                s.from,
                                s.from + s.rows
                            ),
                        );
                    }
                    if let (Some(c), Some(fl), Some(sf)) = (chunk, file, s.file) {
                        if (c.value(i) as u64, fl.value(i) as u64) != sf {
                            p.add(
                                "episodes-file",
                                format!(
                                    "{rel}: episode {e}: data/chunk_index, data/file_index {},{} but its rows are in chunk {} file {}",
                                    c.value(i),
                                    fl.value(i),
                                    sf.0,
                                    sf.1
                                ),
                            );
                        }
                    }
                }
                if let (Some(lists), Some(set)) = (task_lists, &task_set) {
                    let v = lists.value(i);
                    if let Some(strs) = v.as_any().downcast_ref::<StringArray>() {
                        for t in strs.iter().flatten() {
                            if !set.contains(t) {
                                p.add(
                                    "episodes-tasks",
                                    format!(
                                        "{rel}: episode {e}: task {t:?} is not in tasks.parquet"
                                    ),
                                );
                            }
                        }
                    }
                }
                n_rows += 1;
            }
        }
    }
    let total = info.get("total_episodes").and_then(Value::as_u64);
    if total != Some(n_rows as u64) {
        p.add(
            "episodes-count",
            format!(
                "meta/episodes holds {n_rows} rows, info.json total_episodes is {}",
                shown(info.get("total_episodes"))
            ),
        );
    }
    if let Some(s) = seen {
        if s.len() != n_rows {
            p.add(
                "episodes-count",
                format!(
                    "meta/episodes holds {n_rows} rows, the data holds {} episodes",
                    s.len()
                ),
            );
        }
    }
}

fn check_stats(dir: &Path, features: &OrderedMap<Value>, p: &mut Problems) {
    let path = dir.join(STATS_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => {
            p.add(
                "layout",
                "meta/stats.json is missing (lerobot-train needs it)",
            );
            return;
        }
    };
    let stats: BTreeMap<String, Value> = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            p.add(
                "stats-json",
                format!("meta/stats.json is not a JSON object: {e}"),
            );
            return;
        }
    };
    let mut dims: HashMap<&str, Vec<u64>> = HashMap::new();
    for (key, f) in &features.0 {
        let dtype = f.get("dtype").and_then(Value::as_str).unwrap_or("");
        if dtype == "string" {
            continue;
        }
        let shape: Vec<u64> = f
            .get("shape")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let want = if dtype == "video" || dtype == "image" {
            vec![3, 1, 1]
        } else {
            vec![shape
                .iter()
                .try_fold(1u64, |a, b| a.checked_mul(*b))
                .unwrap_or(u64::MAX)]
        };
        dims.insert(key.as_str(), want);
    }
    for (key, want) in &dims {
        let Some(s) = stats.get(*key) else {
            p.add(
                "stats-keys",
                format!("meta/stats.json has no stats for `{key}`"),
            );
            continue;
        };
        for stat in STAT_KEYS {
            let Some(v) = s.get(stat) else {
                p.add(
                    "stats-keys",
                    format!("meta/stats.json: `{key}` has no `{stat}`"),
                );
                continue;
            };
            let got = shape_of(v);
            let ok = if stat == "count" {
                got.as_deref() == Some(&[1][..]) && v[0].as_u64().is_some()
            } else {
                got.as_ref() == Some(want)
            };
            if !ok {
                p.add(
                    "stats-shapes",
                    format!(
                        "meta/stats.json: `{key}`/{stat} has shape {}, expected {:?}",
                        got.as_ref().map_or_else(
                            || "none (not an array of numbers)".into(),
                            |g| format!("{g:?}")
                        ),
                        if stat == "count" {
                            vec![1]
                        } else {
                            want.clone()
                        }
                    ),
                );
            }
        }
    }
}

/// The shape of a nested JSON list of numbers; `None` if ragged or not numbers.
fn shape_of(v: &Value) -> Option<Vec<u64>> {
    match v {
        Value::Number(_) => Some(Vec::new()),
        Value::Array(a) => {
            let first = shape_of(a.first()?)?;
            for x in &a[1..] {
                if shape_of(x)? != first {
                    return None;
                }
            }
            let mut s = vec![a.len() as u64];
            s.extend(first);
            Some(s)
        }
        _ => None,
    }
}
