//! The LeRobot v3.0 metadata: `meta/info.json`, the arrow schemas of the data and episodes
//! parquet, `meta/tasks.parquet` and `meta/episodes/...parquet`. This is the one place that
//! maps a [`FeatureKind`] to its info.json entry and its arrow type, so camera kinds slot in
//! here.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, ListBuilder, StringBuilder};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::stats::{FeatureStats, STAT_KEYS};
use super::{DatasetError, DatasetSpec, FeatureKind};
use crate::video::VideoSettings;

pub const CODEBASE_VERSION: &str = "v3.0";
pub const CHUNKS_SIZE: u64 = 1000;
pub const DATA_FILES_SIZE_IN_MB: u64 = 100;
pub const VIDEO_FILES_SIZE_IN_MB: u64 = 200;
pub const DATA_PATH: &str = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet";
pub const VIDEO_PATH: &str = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4";
pub const INFO_PATH: &str = "meta/info.json";
pub const STATS_PATH: &str = "meta/stats.json";
pub const TASKS_PATH: &str = "meta/tasks.parquet";
pub const EPISODES_DIR: &str = "meta/episodes";
pub const EPISODES_PATH: &str = "meta/episodes/chunk-000/file-000.parquet";
pub const SYNC_REPORT_PATH: &str = "meta/sync_report.json";

/// The five features lerobot adds to every dataset, in its order, with their dtypes.
pub const DEFAULT_FEATURES: [(&str, &str); 5] = [
    ("timestamp", "float32"),
    ("frame_index", "int64"),
    ("episode_index", "int64"),
    ("index", "int64"),
    ("task_index", "int64"),
];

/// `data/chunk-CCC/file-FFF.parquet`.
pub fn data_file_rel(chunk: u64, file: u64) -> String {
    format!("data/chunk-{chunk:03}/file-{file:03}.parquet")
}

/// `videos/KEY/chunk-CCC/file-FFF.mp4`.
pub fn video_file_rel(key: &str, chunk: u64, file: u64) -> String {
    format!("videos/{key}/chunk-{chunk:03}/file-{file:03}.mp4")
}

/// lerobot's `update_chunk_file_indices`.
pub fn next_file(chunk: u64, file: u64) -> (u64, u64) {
    if file + 1 >= CHUNKS_SIZE {
        (chunk + 1, 0)
    } else {
        (chunk, file + 1)
    }
}

/// A JSON object whose key order is kept (info.json's `features` order is the data column
/// order), without switching serde_json's `preserve_order` on for the whole crate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> OrderedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

/// One entry of info.json's `features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    pub dtype: String,
    pub shape: Vec<u64>,
    /// null, a list of names, or (in some lerobot datasets) an object of lists.
    #[serde(default)]
    pub names: Value,
    /// Anything else (e.g. a video feature's `info`), kept as it was.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `meta/info.json`, fields in lerobot's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub codebase_version: String,
    pub fps: u32,
    pub features: OrderedMap<FeatureInfo>,
    pub total_episodes: u64,
    pub total_frames: u64,
    pub total_tasks: u64,
    pub chunks_size: u64,
    pub data_files_size_in_mb: u64,
    pub video_files_size_in_mb: u64,
    pub data_path: String,
    pub video_path: Option<String>,
    pub robot_type: Option<String>,
    pub splits: BTreeMap<String, String>,
    /// Fields lerobot may add that we do not interpret; kept on append.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Info {
    /// The info of an empty dataset of `spec`, its videos encoded with `video`.
    pub fn new(spec: &DatasetSpec, video: &VideoSettings) -> Result<Info, DatasetError> {
        let has_video = spec.has_video();
        Ok(Info {
            codebase_version: CODEBASE_VERSION.to_string(),
            fps: spec.fps,
            features: feature_infos(spec, video)?,
            total_episodes: 0,
            total_frames: 0,
            total_tasks: 0,
            chunks_size: CHUNKS_SIZE,
            data_files_size_in_mb: DATA_FILES_SIZE_IN_MB,
            video_files_size_in_mb: VIDEO_FILES_SIZE_IN_MB,
            data_path: DATA_PATH.to_string(),
            video_path: has_video.then(|| VIDEO_PATH.to_string()),
            robot_type: spec.robot_type.clone(),
            splits: BTreeMap::new(),
            extra: Map::new(),
        })
    }

    pub fn read(root: &Path) -> Result<Info, DatasetError> {
        let path = root.join(INFO_PATH);
        let text = std::fs::read_to_string(&path).map_err(|source| DatasetError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| DatasetError::Refused {
            path,
            detail: format!("not a LeRobot v3.0 info.json: {e}"),
        })
    }
}

/// The info.json `features`: the spec's features in order, then the five defaults.
pub fn feature_infos(
    spec: &DatasetSpec,
    video: &VideoSettings,
) -> Result<OrderedMap<FeatureInfo>, DatasetError> {
    let mut out = Vec::new();
    for f in &spec.features {
        if f.key.contains('/') {
            return Err(DatasetError::Invalid(format!(
                "feature `{}`: names must not contain '/'",
                f.key
            )));
        }
        if DEFAULT_FEATURES.iter().any(|(k, _)| *k == f.key) || out.iter().any(|(k, _)| k == &f.key)
        {
            return Err(DatasetError::Invalid(format!(
                "feature `{}` is declared twice",
                f.key
            )));
        }
        let info = match &f.kind {
            FeatureKind::Vector { names } => {
                if names.is_empty() {
                    return Err(DatasetError::Invalid(format!(
                        "feature `{}` has no names (length 0)",
                        f.key
                    )));
                }
                FeatureInfo {
                    dtype: "float32".into(),
                    shape: vec![names.len() as u64],
                    names: Value::from(names.clone()),
                    extra: BTreeMap::new(),
                }
            }
            FeatureKind::Video { height, width } | FeatureKind::Image { height, width } => {
                if *height == 0 || *width == 0 {
                    return Err(DatasetError::Invalid(format!(
                        "feature `{}`: camera of {width}x{height}",
                        f.key
                    )));
                }
                let is_video = matches!(f.kind, FeatureKind::Video { .. });
                let mut extra = BTreeMap::new();
                if is_video {
                    extra.insert(
                        "info".to_string(),
                        video.info_json(*width, *height, spec.fps),
                    );
                }
                FeatureInfo {
                    dtype: if is_video { "video" } else { "image" }.into(),
                    shape: vec![u64::from(*height), u64::from(*width), 3],
                    names: Value::from(vec!["height", "width", "channels"]),
                    extra,
                }
            }
            // Declared like lerobot's own int64 scalars (`index`, `frame_index`).
            FeatureKind::Time => FeatureInfo {
                dtype: "int64".into(),
                shape: vec![1],
                names: Value::Null,
                extra: BTreeMap::new(),
            },
        };
        out.push((f.key.clone(), info));
    }
    for (key, dtype) in DEFAULT_FEATURES {
        out.push((
            key.to_string(),
            FeatureInfo {
                dtype: dtype.into(),
                shape: vec![1],
                names: Value::Null,
                extra: BTreeMap::new(),
            },
        ));
    }
    Ok(OrderedMap(out))
}

/// The arrow type of a data column holding a non-video feature, from its info.json entry.
/// `None` for video features (not stored in the data parquet) and unknown dtypes.
pub fn column_type(info: &FeatureInfo) -> Option<DataType> {
    let scalar = match info.dtype.as_str() {
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "int64" => DataType::Int64,
        "int32" => DataType::Int32,
        "int16" => DataType::Int16,
        "int8" => DataType::Int8,
        "uint8" => DataType::UInt8,
        "bool" => DataType::Boolean,
        "string" => DataType::Utf8,
        "image" => {
            return Some(DataType::Struct(
                vec![
                    Field::new("bytes", DataType::Binary, true),
                    Field::new("path", DataType::Utf8, true),
                ]
                .into(),
            ))
        }
        _ => return None,
    };
    match info.shape.as_slice() {
        [1] => Some(scalar),
        [n] => Some(DataType::FixedSizeList(
            Arc::new(Field::new("item", scalar, true)),
            i32::try_from(*n).ok()?,
        )),
        _ => None,
    }
}

/// The data parquet schema: every non-video feature of `features`, in order.
pub fn data_schema(features: &OrderedMap<FeatureInfo>) -> Result<SchemaRef, DatasetError> {
    let mut fields = Vec::new();
    for (key, info) in &features.0 {
        if info.dtype == "video" {
            continue;
        }
        let dt = column_type(info).ok_or_else(|| {
            DatasetError::Invalid(format!(
                "feature `{key}`: no column type for dtype {} shape {:?}",
                info.dtype, info.shape
            ))
        })?;
        fields.push(Field::new(key.clone(), dt, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

pub fn writer_props() -> WriterProperties {
    writer_props_for(&[])
}

/// Episodes per row group of `meta/episodes`: the row group in progress is held in memory
/// (about 15 KB an episode with a few features), so a long run flushes it every this many
/// episodes; each flushed row group leaves its column metadata (a few hundred bytes a column)
/// for the footer.
pub const EPISODES_PER_ROW_GROUP: usize = 64;

/// Properties of `meta/episodes`: one row per episode, nearly every value distinct (stats,
/// indexes, timestamps), so a dictionary saves nothing, and each of its few hundred columns
/// would hold a dictionary encoder's 4096-slot hash table for the whole run, touched a page
/// more with each episode (measured: 3 MB of RSS over 20 episodes of the fixture).
pub fn episodes_writer_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(EPISODES_PER_ROW_GROUP))
        .build()
}

/// [`writer_props`] for a data file with these image columns: their PNG bytes get neither a
/// dictionary (they never repeat) nor min/max statistics (each would copy a whole image into
/// the page header and footer).
pub fn writer_props_for(image_columns: &[String]) -> WriterProperties {
    let mut b = WriterProperties::builder().set_compression(Compression::SNAPPY);
    for key in image_columns {
        for part in ["bytes", "path"] {
            let col = parquet::schema::types::ColumnPath::new(vec![key.clone(), part.into()]);
            b = b
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_statistics_enabled(
                    col,
                    parquet::file::properties::EnabledStatistics::None,
                );
        }
    }
    b.build()
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Parquet {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes JSON indented by 4 like lerobot's `write_json`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DatasetError> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    value
        .serialize(&mut ser)
        .map_err(|e| DatasetError::Invalid(format!("{}: {e}", path.display())))?;
    buf.push(b'\n');
    std::fs::write(path, buf).map_err(|e| io_err(path, e))
}

/// A whole parquet file: its arrow schema, its batches and its key-value metadata.
pub type ParquetContents = (SchemaRef, Vec<RecordBatch>, HashMap<String, String>);

/// Reads a whole parquet file (only for metadata-sized files).
pub fn read_parquet(path: &Path) -> Result<ParquetContents, DatasetError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(path, e))?;
    let kv: HashMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
                .collect()
        })
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| parquet_err(path, e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parquet_err(path, e))?;
    Ok((schema, batches, kv))
}

/// The pandas metadata `DataFrame.to_parquet` writes for a frame indexed by `task` with one
/// column `task_index`; without it lerobot reads every item's task as 0.
fn tasks_pandas_metadata() -> String {
    serde_json::json!({
        "index_columns": ["task"],
        "column_indexes": [{
            "name": null, "field_name": null, "pandas_type": "unicode",
            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}
        }],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": null},
            {"name": "task", "field_name": "task", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": null}
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": "26.0.1"},
        "pandas_version": "2.3.3"
    })
    .to_string()
}

/// `meta/tasks.parquet`: task i has task_index i.
pub fn write_tasks(path: &Path, tasks: &[String]) -> Result<(), DatasetError> {
    let mut md = HashMap::new();
    md.insert("pandas".to_string(), tasks_pandas_metadata());
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("task_index", DataType::Int64, true),
            Field::new("task", DataType::Utf8, true),
        ])
        .with_metadata(md),
    );
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..tasks.len() as i64)) as ArrayRef,
            Arc::new(StringArray::from_iter_values(tasks)) as ArrayRef,
        ],
    )
    .map_err(|e| parquet_err(path, e))?;
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(writer_props()))
        .map_err(|e| parquet_err(path, e))?;
    // The arrow schema's metadata only travels inside ARROW:schema; pandas reads the
    // file's own key-value metadata.
    w.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
        "pandas".to_string(),
        tasks_pandas_metadata(),
    ));
    w.write(&batch).map_err(|e| parquet_err(path, e))?;
    w.close().map_err(|e| parquet_err(path, e))?;
    Ok(())
}

/// The tasks of `meta/tasks.parquet`, position = task_index.
pub fn read_tasks(path: &Path) -> Result<Vec<String>, DatasetError> {
    let (_, batches, _) = read_parquet(path)?;
    let mut pairs = Vec::new();
    for b in &batches {
        let idx = b
            .column_by_name("task_index")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| parquet_err(path, "no int64 column task_index"))?;
        let task = b
            .column_by_name("task")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| parquet_err(path, "no string column task"))?;
        for i in 0..b.num_rows() {
            pairs.push((idx.value(i), task.value(i).to_string()));
        }
    }
    pairs.sort();
    for (want, (got, task)) in pairs.iter().enumerate() {
        if *got != want as i64 {
            return Err(parquet_err(
                path,
                format!("task {task:?} has task_index {got}, expected {want}"),
            ));
        }
    }
    Ok(pairs.into_iter().map(|(_, t)| t).collect())
}

/// One row of the episodes parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeRow {
    pub episode_index: u64,
    pub tasks: Vec<String>,
    pub length: u64,
    pub data_chunk: u64,
    pub data_file: u64,
    pub from_index: u64,
    pub to_index: u64,
    /// One per video feature, in [`episodes_schema`] order.
    pub videos: Vec<VideoSpan>,
    /// One per stats feature, in [`episodes_schema`] order.
    pub stats: Vec<FeatureStats>,
}

/// Where one episode of one camera lies in its video file.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSpan {
    pub chunk: u64,
    pub file: u64,
    pub from_timestamp: f64,
    pub to_timestamp: f64,
}

/// A feature that gets stats in the episodes parquet and stats.json.
#[derive(Debug, Clone, PartialEq)]
pub struct StatFeature {
    pub key: String,
    /// Values per stat: the vector length, or 3 channels for a camera.
    pub dims: usize,
    /// Camera stats are stored shaped (3, 1, 1).
    pub camera: bool,
}

/// `meta/stats.json`: each feature's stats (cameras shaped (3, 1, 1)), in `features` order.
pub fn stats_json(features: &[StatFeature], stats: &[FeatureStats]) -> OrderedMap<Value> {
    OrderedMap(
        features
            .iter()
            .zip(stats)
            .map(|(f, s)| {
                let json = if f.camera {
                    crate::video::image_stats_json(s)
                } else {
                    s.to_json()
                };
                (f.key.clone(), json)
            })
            .collect(),
    )
}

/// The features that get stats, from info.json's `features` (every feature, in order):
/// vectors and scalars with their length, cameras with their 3 channels.
pub fn stat_features(features: &OrderedMap<FeatureInfo>) -> Vec<StatFeature> {
    features
        .0
        .iter()
        .map(|(key, f)| {
            let camera = f.dtype == "video" || f.dtype == "image";
            StatFeature {
                key: key.clone(),
                dims: if camera {
                    3
                } else {
                    f.shape.iter().product::<u64>() as usize
                },
                camera,
            }
        })
        .collect()
}

fn list_of(dt: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(dt, true)))
}

/// The episodes parquet schema, with lerobot's column order and types;
/// `stat_features` are the features that get stats (every feature), in info.json order;
/// `video_keys` the video features, in the same order.
pub fn episodes_schema(stat_features: &[StatFeature], video_keys: &[String]) -> SchemaRef {
    let int = |name: &str| Field::new(name, DataType::Int64, true);
    let mut fields = vec![
        int("episode_index"),
        Field::new("tasks", list_of(DataType::Utf8), true),
        int("length"),
        int("data/chunk_index"),
        int("data/file_index"),
        int("dataset_from_index"),
        int("dataset_to_index"),
    ];
    for key in video_keys {
        fields.push(int(&format!("videos/{key}/chunk_index")));
        fields.push(int(&format!("videos/{key}/file_index")));
        for t in ["from_timestamp", "to_timestamp"] {
            fields.push(Field::new(
                format!("videos/{key}/{t}"),
                DataType::Float64,
                true,
            ));
        }
    }
    for f in stat_features {
        for stat in STAT_KEYS {
            let item = if stat == "count" {
                list_of(DataType::Int64)
            } else if f.camera {
                list_of(list_of(list_of(DataType::Float64)))
            } else {
                list_of(DataType::Float64)
            };
            fields.push(Field::new(format!("stats/{}/{stat}", f.key), item, true));
        }
    }
    fields.push(int("meta/episodes/chunk_index"));
    fields.push(int("meta/episodes/file_index"));
    Arc::new(Schema::new(fields))
}

/// The rows as one batch of `schema` (from [`episodes_schema`]); all rows go to
/// `meta/episodes/chunk-000/file-000.parquet`.
pub fn episodes_batch(
    schema: &SchemaRef,
    rows: &[EpisodeRow],
) -> Result<RecordBatch, DatasetError> {
    let ints = |f: &dyn Fn(&EpisodeRow) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| f(r) as i64),
        ))
    };
    let mut cols: Vec<ArrayRef> = vec![ints(&|r| r.episode_index)];
    let mut tasks = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for t in &r.tasks {
            tasks.values().append_value(t);
        }
        tasks.append(true);
    }
    cols.push(Arc::new(tasks.finish()));
    cols.push(ints(&|r| r.length));
    cols.push(ints(&|r| r.data_chunk));
    cols.push(ints(&|r| r.data_file));
    cols.push(ints(&|r| r.from_index));
    cols.push(ints(&|r| r.to_index));
    let fields = schema.fields();
    let n_videos = fields
        .iter()
        .filter(|f| f.name().starts_with("videos/") && f.name().ends_with("/chunk_index"))
        .count();
    for v in 0..n_videos {
        let span = |r: &EpisodeRow| {
            r.videos.get(v).cloned().ok_or_else(|| {
                DatasetError::Invalid(format!("episode {}: missing video span", r.episode_index))
            })
        };
        let spans: Vec<VideoSpan> = rows.iter().map(span).collect::<Result<_, _>>()?;
        cols.push(Arc::new(Int64Array::from_iter_values(
            spans.iter().map(|s| s.chunk as i64),
        )));
        cols.push(Arc::new(Int64Array::from_iter_values(
            spans.iter().map(|s| s.file as i64),
        )));
        cols.push(Arc::new(arrow_array::Float64Array::from_iter_values(
            spans.iter().map(|s| s.from_timestamp),
        )));
        cols.push(Arc::new(arrow_array::Float64Array::from_iter_values(
            spans.iter().map(|s| s.to_timestamp),
        )));
    }
    // 7 leading, 4 per video and 2 trailing columns around the stats.
    let stat_fields = &fields[7 + 4 * n_videos..fields.len().saturating_sub(2)];
    for (f, group) in stat_fields.chunks(STAT_KEYS.len()).enumerate() {
        let stats: Vec<&FeatureStats> = rows
            .iter()
            .map(|r| {
                r.stats.get(f).ok_or_else(|| {
                    DatasetError::Invalid(format!("episode {}: missing stats", r.episode_index))
                })
            })
            .collect::<Result<_, _>>()?;
        // A camera's float stats are list<list<list<double>>>, shaped (3, 1, 1).
        let camera = group.iter().any(|field| match field.data_type() {
            DataType::List(item) => matches!(item.data_type(), DataType::List(_)),
            _ => false,
        });
        for stat in STAT_KEYS {
            if stat == "count" {
                let mut b = ListBuilder::new(Int64Builder::new());
                for s in &stats {
                    b.values().append_value(s.count as i64);
                    b.append(true);
                }
                cols.push(Arc::new(b.finish()));
            } else if camera {
                let mut b =
                    ListBuilder::new(ListBuilder::new(ListBuilder::new(Float64Builder::new())));
                for s in &stats {
                    for v in s.values(stat).unwrap_or_default() {
                        b.values().values().values().append_value(*v);
                        b.values().values().append(true);
                        b.values().append(true);
                    }
                    b.append(true);
                }
                cols.push(Arc::new(b.finish()));
            } else {
                let mut b = ListBuilder::new(Float64Builder::new());
                for s in &stats {
                    b.values().append_slice(s.values(stat).unwrap_or_default());
                    b.append(true);
                }
                cols.push(Arc::new(b.finish()));
            }
        }
    }
    cols.push(ints(&|_| 0));
    cols.push(ints(&|_| 0));
    RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| DatasetError::Invalid(format!("episodes parquet: {e}")))
}

/// `batch` (an episodes parquet batch read back, possibly written by lerobot) as a batch of
/// `schema`: columns picked by name, list columns relabelled to our item field (pyarrow names
/// it `element`), and the `meta/episodes/*` indices set to 0 since every row now lives in
/// `meta/episodes/chunk-000/file-000.parquet`.
pub fn conform_episodes(
    batch: &RecordBatch,
    schema: &SchemaRef,
    path: &Path,
) -> Result<RecordBatch, DatasetError> {
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name();
        if name.starts_with("meta/episodes/") {
            cols.push(Arc::new(Int64Array::from(vec![0i64; batch.num_rows()])));
            continue;
        }
        let col = batch
            .column_by_name(name)
            .ok_or_else(|| parquet_err(path, format!("no column `{name}`")))?;
        if col.data_type() == field.data_type() {
            cols.push(col.clone());
            continue;
        }
        let relabelled = relabel(col, field.data_type());
        match relabelled {
            Some(a) => cols.push(a),
            _ => {
                return Err(parquet_err(
                    path,
                    format!(
                        "column `{name}` is {}, expected {}",
                        col.data_type(),
                        field.data_type()
                    ),
                ))
            }
        }
    }
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| parquet_err(path, e))
}

/// `col` with its (nested) list item fields renamed to those of `target`, when the two types
/// differ only in those names; pyarrow names list items `element`, arrow-rs `item`.
fn relabel(col: &ArrayRef, target: &DataType) -> Option<ArrayRef> {
    if col.data_type() == target {
        return Some(col.clone());
    }
    let DataType::List(new) = target else {
        return None;
    };
    let list = col.as_any().downcast_ref::<arrow_array::ListArray>()?;
    let (_, offsets, values, nulls) = list.clone().into_parts();
    let values = relabel(&values, new.data_type())?;
    let out = arrow_array::ListArray::try_new(new.clone(), offsets, values, nulls).ok()?;
    Some(Arc::new(out))
}

/// The `(data/chunk_index, data/file_index, dataset_to_index)` of every row of an episodes
/// batch, for the append checks.
pub fn episode_positions(batch: &RecordBatch, path: &Path) -> Result<Vec<[i64; 4]>, DatasetError> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| parquet_err(path, format!("no int64 column `{name}`")))
    };
    let (ep, from, to, len) = (
        col("episode_index")?,
        col("dataset_from_index")?,
        col("dataset_to_index")?,
        col("length")?,
    );
    Ok((0..batch.num_rows())
        .map(|i| [ep.value(i), from.value(i), to.value(i), len.value(i)])
        .collect())
}
