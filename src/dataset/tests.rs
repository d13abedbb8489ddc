//! Writer + validator tests: datasets are written to temp dirs and read back with the parquet
//! crate's arrow reader.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, ListArray,
    RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::{json, Value};

use super::meta::read_parquet;
use super::validate::validate;
use super::*;

/// Stats of this very dataset as lerobot 0.6.1 wrote them (LeRobotDataset.create +
/// add_frame + save_episode, fps 10, same features, frames and tasks as [`write_two`]).
const LEROBOT_STATS: &str = r#"{"index":{"min":[0.0],"max":[19.0],"mean":[9.5],"std":[5.766281297335398],"count":[20],"q01":[4.9999999999],"q10":[4.9999999999],"q50":[9.00139999998892],"q90":[13.0010000000778],"q99":[13.999820000099993]},"observation.state":{"min":[1.0,2.0,-9.0],"max":[10.0,20.0,0.0],"mean":[5.5,11.0,-4.5],"std":[2.8722813232690143,5.744562646538029,2.8722813232690143],"count":[20],"q01":[1.0,2.0,-9.0],"q10":[1.0,2.0,-9.0],"q50":[5.001399993896484,10.002799987792969,-4.998600006103516],"q90":[9.000999450683594,18.001998901367188,-0.9990005493164062],"q99":[9.999819946289062,19.999639892578124,-0.00018005360616370962]},"frame_index":{"min":[0.0],"max":[9.0],"mean":[4.5],"std":[2.8722813232690143],"count":[20],"q01":[-1e-10],"q10":[-1e-10],"q50":[4.00139999998892],"q90":[8.0010000000778],"q99":[8.999820000099996]},"timestamp":{"min":[0.0],"max":[0.9],"mean":[0.45],"std":[0.2872281323269015],"count":[20],"q01":[-1e-10],"q10":[-1e-10],"q50":[0.40013999998892],"q90":[0.8001000000777999],"q99":[0.8999820000999961]},"action":{"min":[1.0],"max":[10.0],"mean":[5.5],"std":[2.8722813232690143],"count":[20],"q01":[1.0],"q10":[1.0],"q50":[5.001399993896484],"q90":[9.000999450683594],"q99":[9.999819946289062]},"episode_index":{"min":[0.0],"max":[1.0],"mean":[0.5],"std":[0.5],"count":[20],"q01":[0.5000000000000003],"q10":[0.500000000000004],"q50":[0.50000000000002],"q90":[0.500000000000036],"q99":[0.5000000000000395]},"task_index":{"min":[0.0],"max":[1.0],"mean":[0.5],"std":[0.5],"count":[20],"q01":[0.5000000000000003],"q10":[0.500000000000004],"q50":[0.50000000000002],"q90":[0.500000000000036],"q99":[0.5000000000000395]}}"#;

fn spec() -> DatasetSpec {
    DatasetSpec {
        fps: 10,
        robot_type: Some("test".into()),
        features: vec![
            FeatureSpec {
                key: "observation.state".into(),
                kind: FeatureKind::Vector {
                    names: vec!["a".into(), "b".into(), "c".into()],
                },
            },
            FeatureSpec {
                key: "action".into(),
                kind: FeatureKind::Vector {
                    names: vec!["g".into()],
                },
            },
        ],
    }
}

/// Frame i of every episode: state [i+1, 2(i+1), -i], action [i+1].
fn frame(i: usize) -> Frame {
    let x = (i + 1) as f32;
    Frame {
        values: vec![x, 2.0 * x, -(i as f32), x],
        ..Frame::default()
    }
}

fn open(out: &Path, spec: &DatasetSpec, append: bool) -> Result<LeRobotWriter, DatasetError> {
    LeRobotWriter::create(spec, &WriterOptions::new(out, append))
}

fn write_episodes(w: &mut LeRobotWriter, tasks: &[&str], frames: usize) {
    for task in tasks {
        w.begin_episode(task, 0).unwrap();
        for i in 0..frames {
            w.write_frame(&frame(i)).unwrap();
        }
        let s = w.end_episode(json!({"task": task})).unwrap();
        assert_eq!(s.frames, frames as u64);
    }
}

fn write_two(out: &Path) {
    let mut w = open(out, &spec(), false).unwrap();
    write_episodes(&mut w, &["pick", "place"], 10);
    Box::new(w).finish().unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn batches(path: &Path) -> (Arc<Schema>, Vec<RecordBatch>) {
    let (schema, b, _) = read_parquet(path).unwrap();
    (schema, b)
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| {
            panic!(
                "column {name} has type {}",
                b.column_by_name(name).unwrap().data_type()
            )
        })
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn writes_data_parquet_as_lerobot_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    write_two(&out);

    let path = out.join("data/chunk-000/file-000.parquet");
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(meta.num_row_groups(), 2, "one row group per episode");
    assert_eq!(
        meta.row_group(0).column(0).compression(),
        parquet::basic::Compression::SNAPPY
    );
    let (schema, bs) = batches(&path);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "observation.state",
            "action",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index"
        ]
    );
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    assert_eq!(
        schema.field(0).data_type(),
        &DataType::FixedSizeList(item, 3)
    );
    assert_eq!(schema.field(1).data_type(), &DataType::Float32);
    assert_eq!(schema.field(2).data_type(), &DataType::Float32);
    for f in &schema.fields()[3..] {
        assert_eq!(f.data_type(), &DataType::Int64);
    }
    let b = arrow_select_concat(&bs);
    assert_eq!(b.num_rows(), 20);
    let state = col::<FixedSizeListArray>(&b, "observation.state");
    let action = col::<Float32Array>(&b, "action");
    let ts = col::<Float32Array>(&b, "timestamp");
    for r in 0..20 {
        let i = r % 10;
        let v = state.value(r);
        let v = v.as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(v.values().to_vec(), frame(i).values[..3].to_vec());
        assert_eq!(action.value(r), (i + 1) as f32);
        assert_eq!(ts.value(r), (i as f64 / 10.0) as f32);
        assert_eq!(col::<Int64Array>(&b, "frame_index").value(r), i as i64);
        assert_eq!(
            col::<Int64Array>(&b, "episode_index").value(r),
            (r / 10) as i64
        );
        assert_eq!(col::<Int64Array>(&b, "index").value(r), r as i64);
        assert_eq!(
            col::<Int64Array>(&b, "task_index").value(r),
            (r / 10) as i64
        );
    }
    assert_eq!(validate(&out).unwrap(), Vec::<String>::new());
}

/// The one batch of a small file (the reader batches across row groups).
fn arrow_select_concat(bs: &[RecordBatch]) -> RecordBatch {
    assert_eq!(bs.len(), 1, "small test files read as one batch");
    bs[0].clone()
}

#[test]
fn writes_metadata_like_lerobot() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    write_two(&out);

    let info = read_json(&out.join("meta/info.json"));
    assert_eq!(info["codebase_version"], "v3.0");
    assert_eq!(info["fps"], 10);
    assert_eq!(info["total_episodes"], 2);
    assert_eq!(info["total_frames"], 20);
    assert_eq!(info["total_tasks"], 2);
    assert_eq!(info["chunks_size"], 1000);
    assert_eq!(info["data_files_size_in_mb"], 100);
    assert_eq!(info["video_files_size_in_mb"], 200);
    assert_eq!(
        info["data_path"],
        "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    );
    assert_eq!(info["video_path"], Value::Null);
    assert_eq!(info["robot_type"], "test");
    assert_eq!(info["splits"], json!({"train": "0:2"}));
    assert_eq!(
        info["features"]["observation.state"],
        json!({"dtype": "float32", "shape": [3], "names": ["a", "b", "c"]})
    );
    assert_eq!(
        info["features"]["action"],
        json!({"dtype": "float32", "shape": [1], "names": ["g"]})
    );
    assert_eq!(
        info["features"]["index"],
        json!({"dtype": "int64", "shape": [1], "names": null})
    );
    assert_eq!(
        info["features"]["timestamp"],
        json!({"dtype": "float32", "shape": [1], "names": null})
    );
    // Key order: the features in column order.
    let text = std::fs::read_to_string(out.join("meta/info.json")).unwrap();
    let pos = |k: &str| text.find(&format!("\"{k}\": {{")).unwrap();
    assert!(pos("observation.state") < pos("action") && pos("action") < pos("timestamp"));
    assert!(pos("timestamp") < pos("frame_index") && pos("index") < pos("task_index"));

    // tasks.parquet with the pandas index metadata.
    let (schema, bs, kv) = read_parquet(&out.join("meta/tasks.parquet")).unwrap();
    assert_eq!(schema.field(0).name(), "task_index");
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(schema.field(1).name(), "task");
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    let pandas: Value = serde_json::from_str(&kv["pandas"]).unwrap();
    assert_eq!(pandas["index_columns"], json!(["task"]));
    assert_eq!(pandas["columns"][1]["name"], "task");
    let tasks: Vec<&str> = col::<StringArray>(&bs[0], "task")
        .iter()
        .flatten()
        .collect();
    assert_eq!(tasks, ["pick", "place"]);
    assert_eq!(
        col::<Int64Array>(&bs[0], "task_index").values().to_vec(),
        [0, 1]
    );

    // Episodes parquet: lerobot's columns, in its order, with its types.
    let (schema, bs) = batches(&out.join("meta/episodes/chunk-000/file-000.parquet"));
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        &names[..7],
        [
            "episode_index",
            "tasks",
            "length",
            "data/chunk_index",
            "data/file_index",
            "dataset_from_index",
            "dataset_to_index"
        ]
    );
    assert_eq!(
        &names[names.len() - 2..],
        ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    );
    assert_eq!(names.len(), 9 + 7 * 10);
    assert_eq!(names[7], "stats/observation.state/min");
    assert_eq!(names[7 + 10 * 2], "stats/timestamp/min");
    let list = |dt| DataType::List(Arc::new(Field::new_list_field(dt, true)));
    assert_eq!(
        schema.field_with_name("tasks").unwrap().data_type(),
        &list(DataType::Utf8)
    );
    assert_eq!(
        schema
            .field_with_name("stats/action/mean")
            .unwrap()
            .data_type(),
        &list(DataType::Float64)
    );
    assert_eq!(
        schema
            .field_with_name("stats/index/count")
            .unwrap()
            .data_type(),
        &list(DataType::Int64)
    );
    let b = arrow_select_concat(&bs);
    assert_eq!(
        col::<Int64Array>(&b, "episode_index").values().to_vec(),
        [0, 1]
    );
    assert_eq!(col::<Int64Array>(&b, "length").values().to_vec(), [10, 10]);
    assert_eq!(
        col::<Int64Array>(&b, "dataset_from_index")
            .values()
            .to_vec(),
        [0, 10]
    );
    assert_eq!(
        col::<Int64Array>(&b, "dataset_to_index").values().to_vec(),
        [10, 20]
    );
    let t = col::<ListArray>(&b, "tasks").value(1);
    assert_eq!(
        t.as_any().downcast_ref::<StringArray>().unwrap().value(0),
        "place"
    );
    let mean = col::<ListArray>(&b, "stats/observation.state/mean").value(0);
    let mean = mean.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(mean.values().to_vec(), [5.5, 11.0, -4.5]);
    // Episode 0's std of 1..=10: population, as lerobot (2.8722813232690143).
    let std = col::<ListArray>(&b, "stats/action/std").value(0);
    let std = std
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .value(0);
    assert!((std - 2.8722813232690143).abs() < 1e-12);

    // sync_report.json: the given values with episode_index.
    let sync = read_json(&out.join("meta/sync_report.json"));
    assert_eq!(
        sync,
        json!({"episodes": [{"task": "pick", "episode_index": 0}, {"task": "place", "episode_index": 1}]})
    );
}

#[test]
fn stats_match_lerobot() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    write_two(&out);
    let ours = read_json(&out.join("meta/stats.json"));
    let theirs: Value = serde_json::from_str(LEROBOT_STATS).unwrap();
    let ours_map = ours.as_object().unwrap();
    assert_eq!(ours_map.len(), theirs.as_object().unwrap().len());
    for (feature, stats) in theirs.as_object().unwrap() {
        for (stat, vals) in stats.as_object().unwrap() {
            let got = &ours[feature][stat];
            let (want, got) = (
                vals.as_array().unwrap(),
                got.as_array().unwrap_or_else(|| panic!("{feature}/{stat}")),
            );
            assert_eq!(want.len(), got.len(), "{feature}/{stat}");
            for (w, g) in want.iter().zip(got) {
                // lerobot computes float32 features in float32; the rest in float64.
                let tol = if feature == "observation.state" || feature == "action" {
                    1e-6
                } else {
                    1e-12
                };
                assert!(
                    close(w.as_f64().unwrap(), g.as_f64().unwrap(), tol),
                    "{feature}/{stat}: lerobot {w}, ours {g}"
                );
            }
        }
    }
    assert_eq!(ours["action"]["count"], json!([20]));
}

#[test]
fn refuses_existing_output_without_append() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    std::fs::create_dir_all(&out).unwrap();
    // An empty directory is fine.
    write_two(&out);
    match open(&out, &spec(), false) {
        Err(DatasetError::Refused { detail, .. }) => {
            assert!(detail.contains("--append"), "{detail}")
        }
        other => panic!("expected Refused, got {:?}", other.err()),
    }
}

#[test]
fn drop_without_finish_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    {
        let mut w = open(&out, &spec(), false).unwrap();
        w.begin_episode("pick", 0).unwrap();
        for i in 0..5 {
            w.write_frame(&frame(i)).unwrap();
        }
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().count() == 1,
            "temp dir while writing"
        );
    }
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temp dir left behind"
    );
}

#[test]
fn rejects_bad_frames_and_empty_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut w = open(&out, &spec(), false).unwrap();
    assert!(matches!(
        w.write_frame(&frame(0)),
        Err(DatasetError::Invalid(_))
    ));
    w.begin_episode("pick", 0).unwrap();
    let short = Frame {
        values: vec![1.0],
        ..Frame::default()
    };
    match w.write_frame(&short) {
        Err(DatasetError::Invalid(m)) => assert!(m.contains("episode 0, frame 0"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.end_episode(Value::Null),
        Err(DatasetError::Invalid(_))
    ));
    assert!(Box::new(w).finish().is_err());
    assert!(!out.exists());
    let mut cam = spec();
    cam.features.push(FeatureSpec {
        key: "observation.images.front".into(),
        kind: FeatureKind::Video {
            height: 0,
            width: 64,
        },
    });
    assert!(matches!(
        open(&out, &cam, false),
        Err(DatasetError::Invalid(_))
    ));
    let mut slash = spec();
    slash.features[1].key = "act/ion".into();
    assert!(matches!(
        open(&out, &slash, false),
        Err(DatasetError::Invalid(_))
    ));
}

#[cfg(unix)]
fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

#[test]
fn append_continues_indices_and_keeps_old_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut w = open(&out, &spec(), false).unwrap();
    write_episodes(&mut w, &["pick"], 10);
    Box::new(w).finish().unwrap();
    let old_file = out.join("data/chunk-000/file-000.parquet");
    let old_bytes = std::fs::read(&old_file).unwrap();
    let old_inode = inode(&old_file);

    let mut w = open(&out, &spec(), true).unwrap();
    write_episodes(&mut w, &["place"], 10);
    Box::new(w).finish().unwrap();

    assert_eq!(std::fs::read(&old_file).unwrap(), old_bytes);
    assert_eq!(
        inode(&old_file),
        old_inode,
        "old data file hard-linked, not rewritten"
    );
    let (_, bs) = batches(&out.join("data/chunk-000/file-001.parquet"));
    let b = arrow_select_concat(&bs);
    assert_eq!(
        col::<Int64Array>(&b, "index").values().to_vec(),
        (10..20).collect::<Vec<i64>>()
    );
    assert!(col::<Int64Array>(&b, "episode_index")
        .values()
        .iter()
        .all(|e| *e == 1));
    assert!(col::<Int64Array>(&b, "task_index")
        .values()
        .iter()
        .all(|e| *e == 1));
    assert_eq!(
        col::<Int64Array>(&b, "frame_index").values().to_vec(),
        (0..10).collect::<Vec<i64>>()
    );

    let info = read_json(&out.join("meta/info.json"));
    assert_eq!(
        (info["total_episodes"].clone(), info["total_frames"].clone()),
        (json!(2), json!(20))
    );
    assert_eq!(info["total_tasks"], 2);
    assert_eq!(info["splits"], json!({"train": "0:2"}));
    let (_, bs, _) = read_parquet(&out.join("meta/tasks.parquet")).unwrap();
    let tasks: Vec<&str> = col::<StringArray>(&bs[0], "task")
        .iter()
        .flatten()
        .collect();
    assert_eq!(tasks, ["pick", "place"]);
    let (_, bs) = batches(&out.join("meta/episodes/chunk-000/file-000.parquet"));
    let b = arrow_select_concat(&bs);
    assert_eq!(
        col::<Int64Array>(&b, "data/file_index").values().to_vec(),
        [0, 1]
    );
    assert_eq!(
        col::<Int64Array>(&b, "dataset_from_index")
            .values()
            .to_vec(),
        [0, 10]
    );

    // Stats aggregated over old + new: the same as writing both episodes at once.
    let one_go = tmp.path().join("one-go");
    write_two(&one_go);
    assert_eq!(
        read_json(&out.join("meta/stats.json")),
        read_json(&one_go.join("meta/stats.json"))
    );
    let sync = read_json(&out.join("meta/sync_report.json"));
    assert_eq!(sync["episodes"][1]["episode_index"], 1);
    assert_eq!(sync["episodes"].as_array().unwrap().len(), 2);
    assert_eq!(validate(&out).unwrap(), Vec::<String>::new());
    // Nothing but the dataset and the one-go copy beside it.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
}

#[test]
fn append_refuses_other_features_or_fps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    write_two(&out);
    let before = std::fs::read(out.join("meta/info.json")).unwrap();

    let mut other = spec();
    other.features[0].kind = FeatureKind::Vector {
        names: vec!["a".into(), "b".into(), "x".into()],
    };
    // A shape the bags give: the caller names the bag.
    match open(&out, &other, true) {
        Err(DatasetError::Mismatch { detail, .. }) => {
            assert!(detail.contains("feature `observation.state` differs: the dataset has float32 [3] names [\"a\",\"b\",\"c\"], this run writes float32 [3] names [\"a\",\"b\",\"x\"]"), "{detail}")
        }
        r => panic!("expected Mismatch, got {:?}", r.err()),
    }
    let mut more = spec();
    more.features.push(FeatureSpec {
        key: "effort".into(),
        kind: FeatureKind::Vector {
            names: vec!["e".into()],
        },
    });
    match open(&out, &more, true) {
        Err(DatasetError::Refused { detail, .. }) => assert!(detail.contains("effort"), "{detail}"),
        r => panic!("expected Refused, got {:?}", r.err()),
    }
    let mut fps = spec();
    fps.fps = 30;
    match open(&out, &fps, true) {
        Err(DatasetError::Refused { detail, .. }) => assert!(detail.contains("fps"), "{detail}"),
        r => panic!("expected Refused, got {:?}", r.err()),
    }
    assert_eq!(std::fs::read(out.join("meta/info.json")).unwrap(), before);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn new_data_file_when_full() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut w = open(&out, &spec(), false).unwrap();
    w.set_data_file_limit(1);
    write_episodes(&mut w, &["pick", "place", "pick"], 10);
    Box::new(w).finish().unwrap();
    for f in 0..3 {
        assert!(out
            .join(format!("data/chunk-000/file-{f:03}.parquet"))
            .is_file());
    }
    let (_, bs) = batches(&out.join("meta/episodes/chunk-000/file-000.parquet"));
    let b = arrow_select_concat(&bs);
    assert_eq!(
        col::<Int64Array>(&b, "data/file_index").values().to_vec(),
        [0, 1, 2]
    );
    assert_eq!(validate(&out).unwrap(), Vec::<String>::new());
}

#[test]
fn long_episode_flushes_row_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let names: Vec<String> = (0..64).map(|i| format!("j{i}")).collect();
    let spec = DatasetSpec {
        fps: 30,
        robot_type: None,
        features: vec![FeatureSpec {
            key: "observation.state".into(),
            kind: FeatureKind::Vector { names },
        }],
    };
    let mut w = open(&out, &spec, false).unwrap();
    w.begin_episode("long", 0).unwrap();
    let mut x = 1u32;
    for _ in 0..40_000 {
        let values = (0..64)
            .map(|_| {
                // xorshift: values that do not compress away.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as f32
            })
            .collect();
        w.write_frame(&Frame {
            values,
            ..Frame::default()
        })
        .unwrap();
    }
    w.end_episode(Value::Null).unwrap();
    Box::new(w).finish().unwrap();
    let meta = ParquetRecordBatchReaderBuilder::try_new(
        File::open(out.join("data/chunk-000/file-000.parquet")).unwrap(),
    )
    .unwrap()
    .metadata()
    .clone();
    assert!(meta.num_row_groups() > 1, "row group bounded by size");
    for rg in meta.row_groups() {
        assert!(rg.total_byte_size() < 3 * super::frames::ROW_GROUP_BYTES as i64);
    }
    assert_eq!(validate(&out).unwrap(), Vec::<String>::new());
    let stats = read_json(&out.join("meta/stats.json"));
    assert_eq!(stats["observation.state"]["count"], json!([40000]));
    assert_eq!(stats["index"]["max"], json!([39999.0]));
}

// ---- validator: break one rule at a time ----

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v = read_json(path);
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Rewrites a parquet file, replacing column `name` by `f(old column)`.
fn edit_column(path: &Path, name: &str, f: impl Fn(&ArrayRef) -> ArrayRef, keep_metadata: bool) {
    let (schema, bs) = batches(path);
    let i = schema.index_of(name).unwrap();
    let new_bs: Vec<RecordBatch> = bs
        .iter()
        .map(|b| {
            let mut cols = b.columns().to_vec();
            cols[i] = f(&cols[i]);
            cols
        })
        .map(|cols| {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields[i] = Field::new(name, cols[i].data_type().clone(), true);
            let md = if keep_metadata {
                schema.metadata().clone()
            } else {
                Default::default()
            };
            RecordBatch::try_new(Arc::new(Schema::new(fields).with_metadata(md)), cols).unwrap()
        })
        .collect();
    write_batches(path, &new_bs);
}

fn write_batches(path: &Path, bs: &[RecordBatch]) {
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), bs[0].schema(), None).unwrap();
    for b in bs {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn drop_column(path: &Path, name: &str) {
    let (schema, bs) = batches(path);
    let i = schema.index_of(name).unwrap();
    let new_bs: Vec<RecordBatch> = bs
        .iter()
        .map(|b| {
            let mut b = b.clone();
            b.remove_column(i);
            b
        })
        .collect();
    write_batches(path, &new_bs);
}

fn map_i64(a: &ArrayRef, f: impl Fn(i64) -> i64) -> ArrayRef {
    let a = a.as_any().downcast_ref::<Int64Array>().unwrap();
    Arc::new(Int64Array::from_iter_values(
        a.values().iter().map(|v| f(*v)),
    ))
}

#[test]
fn validator_names_each_broken_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    write_two(&good);
    let data = "data/chunk-000/file-000.parquet";
    let episodes = "meta/episodes/chunk-000/file-000.parquet";

    type Breaker = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "no info",
            Box::new(|d: &Path| std::fs::remove_file(d.join("meta/info.json")).unwrap()),
            "info.json",
        ),
        (
            "names missing",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["features"]["action"]
                        .as_object_mut()
                        .unwrap()
                        .remove("names");
                })
            }),
            "`names` is missing",
        ),
        (
            "names length",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["features"]["observation.state"]["names"] = json!(["a", "b"]);
                })
            }),
            "2 names for shape [3]",
        ),
        (
            "default feature missing",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["features"].as_object_mut().unwrap().remove("frame_index");
                })
            }),
            "`frame_index` is not declared",
        ),
        (
            "slash in name",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    let f = v["features"].as_object_mut().unwrap();
                    let a = f.remove("action").unwrap();
                    f.insert("act/ion".into(), a);
                })
            }),
            "must not contain '/'",
        ),
        (
            "total_frames",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| v["total_frames"] = json!(21))
            }),
            "total_frames",
        ),
        (
            "old version",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["codebase_version"] = json!("v2.1")
                })
            }),
            "codebase_version",
        ),
        (
            "splits",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["splits"] = json!({"train": "0:1"})
                })
            }),
            "splits",
        ),
        (
            "video_path",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["video_path"] = json!("videos/x.mp4")
                })
            }),
            "video_path",
        ),
        (
            "stray parquet",
            Box::new(move |d: &Path| {
                std::fs::copy(d.join(data), d.join("data/chunk-000/extra.parquet")).unwrap();
            }),
            "stray parquet",
        ),
        (
            "extra column",
            Box::new(move |d: &Path| {
                let (schema, bs) = batches(&d.join(data));
                let mut fields: Vec<Field> =
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new("extra", DataType::Int64, true));
                let schema = Arc::new(Schema::new(fields));
                let bs: Vec<RecordBatch> = bs
                    .iter()
                    .map(|b| {
                        let mut cols = b.columns().to_vec();
                        cols.push(Arc::new(Int64Array::from(vec![0; b.num_rows()])));
                        RecordBatch::try_new(schema.clone(), cols).unwrap()
                    })
                    .collect();
                write_batches(&d.join(data), &bs);
            }),
            "column `extra`",
        ),
        (
            "missing column",
            Box::new(move |d: &Path| drop_column(&d.join(data), "action")),
            "column `action` is missing",
        ),
        (
            "wrong type",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(data),
                    "action",
                    |a| {
                        let a = a.as_any().downcast_ref::<Float32Array>().unwrap();
                        Arc::new(Float64Array::from_iter_values(
                            a.values().iter().map(|v| f64::from(*v)),
                        ))
                    },
                    true,
                )
            }),
            "column `action` is Float64",
        ),
        (
            "index gap",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(data),
                    "index",
                    |a| map_i64(a, |v| if v >= 5 { v + 1 } else { v }),
                    true,
                )
            }),
            "has index 6",
        ),
        (
            "episode gap",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(data),
                    "episode_index",
                    |a| map_i64(a, |v| v * 2),
                    true,
                )
            }),
            "episode_index 2 follows 0",
        ),
        (
            "frame_index",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(data),
                    "frame_index",
                    |a| map_i64(a, |v| v + 1),
                    true,
                )
            }),
            "frame_index 1, expected 0",
        ),
        (
            "timestamp",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(data),
                    "timestamp",
                    |a| {
                        let a = a.as_any().downcast_ref::<Float32Array>().unwrap();
                        Arc::new(Float32Array::from_iter_values(
                            a.values().iter().map(|v| v * 2.0),
                        ))
                    },
                    true,
                )
            }),
            "timestamp",
        ),
        (
            "task_index",
            Box::new(move |d: &Path| {
                edit_column(&d.join(data), "task_index", |a| map_i64(a, |v| v + 5), true)
            }),
            "task_index 5 is not in tasks.parquet",
        ),
        (
            "pandas metadata",
            Box::new(|d: &Path| {
                edit_column(
                    &d.join("meta/tasks.parquet"),
                    "task_index",
                    |a| a.clone(),
                    false,
                )
            }),
            "pandas metadata",
        ),
        (
            "tasks columns",
            Box::new(|d: &Path| drop_column(&d.join("meta/tasks.parquet"), "task")),
            "task string",
        ),
        (
            "episodes column",
            Box::new(move |d: &Path| drop_column(&d.join(episodes), "stats/action/q99")),
            "`stats/action/q99` is missing",
        ),
        (
            "episodes range",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(episodes),
                    "dataset_to_index",
                    |a| map_i64(a, |v| v - 1),
                    true,
                )
            }),
            "dataset_from/to_index",
        ),
        (
            "stats feature",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/stats.json"), |v| {
                    v.as_object_mut().unwrap().remove("timestamp");
                })
            }),
            "no stats for `timestamp`",
        ),
        (
            "stats shape",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/stats.json"), |v| {
                    v["observation.state"]["q50"] = json!([1.0, 2.0]);
                })
            }),
            "`observation.state`/q50 has shape",
        ),
        (
            "hostile frame_index",
            Box::new(move |d: &Path| {
                edit_column(
                    &d.join(data),
                    "frame_index",
                    |a| map_i64(a, |_| i64::MAX),
                    true,
                )
            }),
            "frame_index 9223372036854775807",
        ),
        (
            "hostile shape",
            Box::new(|d: &Path| {
                edit_json(&d.join("meta/info.json"), |v| {
                    v["features"]["action"]["shape"] = json!([1u64 << 40, 1u64 << 40]);
                })
            }),
            "`action`/min has shape",
        ),
        (
            "no stats",
            Box::new(|d: &Path| std::fs::remove_file(d.join("meta/stats.json")).unwrap()),
            "meta/stats.json is missing",
        ),
    ];
    for (i, (what, breaker, expect)) in cases.iter().enumerate() {
        let dir: PathBuf = tmp.path().join(format!("case{i}"));
        copy_tree(&good, &dir);
        assert_eq!(
            validate(&dir).unwrap(),
            Vec::<String>::new(),
            "{what}: copy is valid"
        );
        breaker(&dir);
        let problems = validate(&dir).unwrap();
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{what}: expected a problem containing {expect:?}, got {problems:#?}"
        );
    }
}

#[test]
fn validator_problems_show_plain_values() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    write_two(&good);
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &[&str]); 7] = [
        (
            "total_frames",
            |v| v["total_frames"] = json!(40),
            &["meta/info.json: total_frames is 40, the data holds 20 rows"],
        ),
        (
            "no total_frames",
            |v| {
                v.as_object_mut().unwrap().remove("total_frames");
            },
            &["meta/info.json: total_frames is missing, the data holds 20 rows"],
        ),
        (
            "total_episodes",
            |v| v["total_episodes"] = json!(3),
            &[
                "meta/info.json: total_episodes is 3, the data holds 2 episodes",
                "meta/episodes holds 2 rows, info.json total_episodes is 3",
            ],
        ),
        (
            "total_tasks",
            |v| v["total_tasks"] = json!("two"),
            &["meta/info.json: total_tasks is \"two\", tasks.parquet holds 2"],
        ),
        (
            "data_path",
            |v| v["data_path"] = json!("data/x.parquet"),
            &["meta/info.json: data_path is \"data/x.parquet\", expected \"data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet\""],
        ),
        (
            "video_path",
            |v| v["video_path"] = json!("v.mp4"),
            &["meta/info.json: video_path is \"v.mp4\", expected null (no video feature)"],
        ),
        (
            "splits",
            |v| v["splits"] = json!({"train": "0:9"}),
            &["meta/info.json: splits.train is \"0:9\", expected \"0:2\""],
        ),
    ];
    for (i, (what, edit, wants)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        copy_tree(&good, &dir);
        edit_json(&dir.join("meta/info.json"), edit);
        let problems = validate(&dir).unwrap();
        for want in *wants {
            assert!(
                problems.iter().any(|p| p == want),
                "{what}: expected {want:?}, got {problems:#?}"
            );
        }
        for p in &problems {
            for debug in ["Some(", "None", "Number(", "String("] {
                assert!(!p.contains(debug), "{what}: Rust debug text in {p:?}");
            }
        }
    }
}

/// A dataset with a video camera (64x64) and an image camera (8x6) beside a vector.
fn camera_spec() -> DatasetSpec {
    let mut s = spec();
    s.features.insert(
        1,
        FeatureSpec {
            key: "observation.images.front".into(),
            kind: FeatureKind::Video {
                height: 64,
                width: 64,
            },
        },
    );
    s.features.push(FeatureSpec {
        key: "observation.images.still".into(),
        kind: FeatureKind::Image {
            height: 6,
            width: 8,
        },
    });
    s
}

/// Frame i: both pictures one flat colour, red = 10 * i (PNG left to the writer).
fn camera_frame(i: usize) -> Frame {
    let mut f = frame(i);
    for (w, h) in [(64, 64), (8, 6)] {
        let mut rgb = crate::camera::RgbImage::new();
        rgb.set_size(w, h);
        for px in rgb.data.chunks_mut(3) {
            px.copy_from_slice(&[(10 * i) as u8, 128, 200]);
        }
        f.images.push(FrameImage {
            rgb,
            png: Vec::new(),
        });
    }
    f
}

fn camera_writer(out: &Path, append: bool) -> Option<LeRobotWriter> {
    if crate::video::find_ffmpeg().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI installs ffmpeg");
        crate::test_skip::skip("ffmpeg is needed");
        return None;
    }
    let opts = WriterOptions {
        video: crate::video::VideoSettings::for_codec(crate::video::Codec::H264),
        ..WriterOptions::new(out, append)
    };
    Some(LeRobotWriter::create(&camera_spec(), &opts).unwrap())
}

fn write_camera_episodes(w: &mut LeRobotWriter, lens: &[usize]) {
    for &n in lens {
        w.begin_episode("look", n as u64).unwrap();
        for i in 0..n {
            w.write_frame(&camera_frame(i)).unwrap();
        }
        w.end_episode(Value::Null).unwrap();
    }
}

/// (chunk, file, from, to) of the front camera, per episode.
fn video_spans(ds: &Path) -> Vec<(i64, i64, f64, f64)> {
    let (_, bs) = batches(&ds.join("meta/episodes/chunk-000/file-000.parquet"));
    let k = "videos/observation.images.front";
    let mut out = Vec::new();
    for b in &bs {
        let c = col::<Int64Array>(b, &format!("{k}/chunk_index"));
        let f = col::<Int64Array>(b, &format!("{k}/file_index"));
        let from = col::<Float64Array>(b, &format!("{k}/from_timestamp"));
        let to = col::<Float64Array>(b, &format!("{k}/to_timestamp"));
        for i in 0..b.num_rows() {
            out.push((c.value(i), f.value(i), from.value(i), to.value(i)));
        }
    }
    out
}

fn video_frames(path: &Path) -> u64 {
    let ffmpeg = crate::video::find_ffmpeg().unwrap();
    crate::video::count_frames(&ffmpeg, path).unwrap()
}

#[test]
fn cameras_write_videos_images_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let Some(mut w) = camera_writer(&out, false) else {
        return;
    };
    write_camera_episodes(&mut w, &[5, 3, 4]);
    let summary = Box::new(w).finish().unwrap();
    assert_eq!(summary.encoders, 1);
    assert_eq!(summary.videos.len(), 1);
    let video = out.join("videos/observation.images.front/chunk-000/file-000.mp4");
    assert_eq!(summary.videos[0].path, video);
    assert_eq!(
        video_frames(&video),
        12,
        "episodes concatenated in one file"
    );
    let spans = video_spans(&out);
    assert_eq!(spans.len(), 3);
    for (got, want) in spans.iter().zip([(0.0, 0.5), (0.5, 0.8), (0.8, 1.2)]) {
        assert_eq!((got.0, got.1), (0, 0));
        assert!(
            close(got.2, want.0, 1e-12) && close(got.3, want.1, 1e-12),
            "{got:?}"
        );
    }
    let info = read_json(&out.join("meta/info.json"));
    let front = &info["features"]["observation.images.front"];
    assert_eq!(front["dtype"], "video");
    assert_eq!(front["shape"], json!([64, 64, 3]));
    assert_eq!(front["names"], json!(["height", "width", "channels"]));
    assert_eq!(front["info"]["video.codec"], "h264");
    assert_eq!(
        info["features"]["observation.images.still"]["dtype"],
        "image"
    );
    assert!(info["video_path"].is_string());
    // Camera stats per channel on pixel/255, shaped (3, 1, 1); red is 10*i/255.
    let stats = read_json(&out.join("meta/stats.json"));
    let front = &stats["observation.images.front"];
    assert_eq!(front["max"][0], json!([[40.0 / 255.0]]));
    assert_eq!(front["min"][2], json!([[200.0 / 255.0]]));
    assert_eq!(front["count"], json!([12]));
    // The image column holds PNG bytes of the exact pixels.
    let (schema, bs) = batches(&out.join("data/chunk-000/file-000.parquet"));
    assert!(schema.field_with_name("observation.images.front").is_err());
    let st = col::<arrow_array::StructArray>(&bs[0], "observation.images.still");
    let bytes = st
        .column_by_name("bytes")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::BinaryArray>()
        .unwrap();
    let img = image::load_from_memory(bytes.value(4)).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (8, 6));
    assert_eq!(img.get_pixel(7, 5).0, [40, 128, 200]);
    // The episodes parquet's camera stats are nested lists, as lerobot writes (3, 1, 1).
    let (eps, _) = batches(&out.join("meta/episodes/chunk-000/file-000.parquet"));
    let mean = eps
        .field_with_name("stats/observation.images.front/mean")
        .unwrap();
    assert_eq!(
        mean.data_type().to_string(),
        "List(List(List(Float64)))",
        "{:?}",
        mean.data_type()
    );
    assert_eq!(validate(&out).unwrap(), Vec::<String>::new());
}

#[test]
fn video_files_roll_over_at_the_size_limit_and_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let Some(mut w) = camera_writer(&out, false) else {
        return;
    };
    // 0: every episode starts a new file (any other limit is met when ffmpeg has written that
    // much, which lags the frames sent by its lookahead).
    w.set_video_file_limit(0);
    write_camera_episodes(&mut w, &[2, 3]);
    Box::new(w).finish().unwrap();
    let spans = video_spans(&out);
    assert_eq!(spans, vec![(0, 0, 0.0, 0.2), (0, 1, 0.0, 0.3)]);
    let dir_v = out.join("videos/observation.images.front/chunk-000");
    assert_eq!(video_frames(&dir_v.join("file-000.mp4")), 2);
    assert_eq!(video_frames(&dir_v.join("file-001.mp4")), 3);

    // An append starts a new file after the last one and keeps the old files as they were.
    let mut w = camera_writer(&out, true).unwrap();
    write_camera_episodes(&mut w, &[4]);
    Box::new(w).finish().unwrap();
    let spans = video_spans(&out);
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[2], (0, 2, 0.0, 0.4));
    assert_eq!(video_frames(&dir_v.join("file-002.mp4")), 4);
    assert_eq!(video_frames(&dir_v.join("file-000.mp4")), 2);
    let stats = read_json(&out.join("meta/stats.json"));
    assert_eq!(stats["observation.images.front"]["count"], json!([9]));
    assert_eq!(validate(&out).unwrap(), Vec::<String>::new());

    // Another codec cannot join the dataset's videos.
    let opts = WriterOptions {
        video: crate::video::VideoSettings::for_codec(crate::video::Codec::Av1),
        ..WriterOptions::new(&out, true)
    };
    match LeRobotWriter::create(&camera_spec(), &opts) {
        Err(DatasetError::Refused { detail, .. }) => {
            assert!(detail.contains("--vcodec h264"), "{detail}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("appended av1 to h264 videos"),
    }
    // Nor another crf: the one info block describes the new files too.
    let opts = WriterOptions {
        video: crate::video::VideoSettings {
            crf: 20,
            ..crate::video::VideoSettings::for_codec(crate::video::Codec::H264)
        },
        ..WriterOptions::new(&out, true)
    };
    match LeRobotWriter::create(&camera_spec(), &opts) {
        Err(DatasetError::Refused { detail, .. }) => assert!(
            detail.contains("was encoded with crf 30, this run writes crf 20: pass --crf 30"),
            "{detail}"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("appended crf 20 to crf 30 videos"),
    }
}

#[test]
fn a_failed_run_leaves_no_video_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let Some(mut w) = camera_writer(&out, false) else {
        return;
    };
    w.begin_episode("look", 3).unwrap();
    w.write_frame(&camera_frame(0)).unwrap();
    let mut wrong = camera_frame(1);
    wrong.images[0].rgb.set_size(32, 32);
    match w.write_frame(&wrong) {
        Err(DatasetError::Invalid(m)) => assert!(m.contains("observation.images.front"), "{m}"),
        other => panic!("{other:?}"),
    }
    drop(w);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary left"
    );
}

#[test]
fn validator_checks_video_files_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let Some(mut w) = camera_writer(&good, false) else {
        return;
    };
    write_camera_episodes(&mut w, &[4, 3]);
    Box::new(w).finish().unwrap();
    assert_eq!(validate(&good).unwrap(), Vec::<String>::new());
    let check = |name: &str, breakage: &dyn Fn(&Path), want: &str| {
        let bad = dir.path().join(name);
        copy_tree(&good, &bad);
        breakage(&bad);
        let problems = validate(&bad).unwrap();
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{name}: {problems:?}"
        );
    };
    let episodes = |d: &Path| d.join("meta/episodes/chunk-000/file-000.parquet");
    check(
        "late-start",
        &|d| {
            edit_column(
                &episodes(d),
                "videos/observation.images.front/from_timestamp",
                |a: &ArrayRef| -> ArrayRef {
                    let v = a.as_any().downcast_ref::<Float64Array>().unwrap();
                    Arc::new(Float64Array::from_iter_values(
                        v.values().iter().map(|x| x + 0.5),
                    ))
                },
                false,
            )
        },
        "expected 0 s",
    );
    check(
        "no-video",
        &|d| {
            std::fs::remove_file(d.join("videos/observation.images.front/chunk-000/file-000.mp4"))
                .unwrap()
        },
        "file-000.mp4 (episode 0) is missing",
    );
    check(
        "long-episode",
        &|d| {
            edit_column(
                &episodes(d),
                "length",
                |a: &ArrayRef| map_i64(a, |x| x + 1),
                false,
            )
        },
        "frames at 10 fps take",
    );
}

/// Every file of a dataset by relative path, with its bytes.
fn tree(ds: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![ds.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(ds).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Begins an episode of `task`, writes `n` frames and rolls it back.
fn aborted_episode(w: &mut LeRobotWriter, task: &str, n: usize, frame: fn(usize) -> Frame) {
    w.begin_episode(task, n as u64).unwrap();
    for i in 0..n {
        w.write_frame(&frame(i)).unwrap();
    }
    w.abort_episode().unwrap();
}

#[test]
fn an_aborted_episode_leaves_the_dataset_as_if_it_never_began() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref");
    let mut w = open(&reference, &spec(), false).unwrap();
    write_episodes(&mut w, &["pick", "pick"], 10);
    Box::new(w).finish().unwrap();

    // Aborted first (it started the data file), in the middle (the data file holds an
    // episode; the rows span flushed batches and the buffer) and with a task of its own.
    let out = dir.path().join("ds");
    let mut w = open(&out, &spec(), false).unwrap();
    aborted_episode(&mut w, "drop", 3, frame);
    write_episodes(&mut w, &["pick"], 10);
    aborted_episode(&mut w, "place", 2500, frame);
    assert!(
        w.abort_episode().is_ok(),
        "outside an episode: nothing to do"
    );
    write_episodes(&mut w, &["pick"], 10);
    let summary = Box::new(w).finish().unwrap();
    assert_eq!(summary.episodes, 2);
    assert!(validate(&out).unwrap().is_empty());
    let (a, b) = (tree(&reference), tree(&out));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(v == &b[k], "{} differs", k.display());
    }
}

#[test]
fn an_aborted_episode_in_a_new_data_file_gives_its_index_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let mut w = open(&out, &spec(), false).unwrap();
    // Every episode starts a data file: the aborted one's file goes, its name is reused.
    w.set_data_file_limit(1);
    write_episodes(&mut w, &["pick"], 10);
    aborted_episode(&mut w, "pick", 4, frame);
    write_episodes(&mut w, &["pick"], 10);
    Box::new(w).finish().unwrap();
    assert!(validate(&out).unwrap().is_empty());
    let files: Vec<PathBuf> = tree(&out)
        .into_keys()
        .filter(|p| p.starts_with("data"))
        .collect();
    assert_eq!(
        files,
        [
            PathBuf::from("data/chunk-000/file-000.parquet"),
            PathBuf::from("data/chunk-000/file-001.parquet")
        ]
    );
}

#[test]
fn an_aborted_episode_is_cut_from_the_video_file_it_shares() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let Some(mut w) = camera_writer(&out, false) else {
        return;
    };
    aborted_episode(&mut w, "look", 2, camera_frame);
    write_camera_episodes(&mut w, &[5]);
    aborted_episode(&mut w, "look", 3, camera_frame);
    write_camera_episodes(&mut w, &[4]);
    Box::new(w).finish().unwrap();
    assert!(validate(&out).unwrap().is_empty(), "{:?}", validate(&out));
    let dir = out.join("videos/observation.images.front/chunk-000");
    assert_eq!(video_frames(&dir.join("file-000.mp4")), 5);
    assert_eq!(video_frames(&dir.join("file-001.mp4")), 4);
    assert_eq!(
        video_spans(&out),
        [(0, 0, 0.0, 0.5), (0, 1, 0.0, 0.4)],
        "each episode from the start of its file"
    );
    let (_, bs) = batches(&out.join("meta/episodes/chunk-000/file-000.parquet"));
    let ep = col::<Int64Array>(&bs[0], "episode_index");
    assert_eq!(ep.values().to_vec(), [0, 1]);
}
