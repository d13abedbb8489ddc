//! `merge`: the shards of a run merge into the dataset one run over all their bags writes.
//! Shards are converted from subsets of the bags (their `meta/bagstream_inputs.json` written
//! here with `inputs::write`, as `convert --shard` will), merged, and compared with one run:
//! every file, or where videos are linked instead of re-encoded, every data value, every
//! episode column but the video file locations, the tasks, info and stats. Then the refusals,
//! the data-file rollover, the stats aggregation and the command line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::{Array, Float64Array, Int64Array, ListArray, RecordBatch};
use serde_json::Value;

use bagstream::bag::ros1::Compression;
use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions, ConvertSummary};
use bagstream::dataset::inputs::{self, InputEntry, InputsFile, ShardId, INPUTS_PATH};
use bagstream::dataset::merge::{merge, MergeOptions, MergeSummary};
use bagstream::dataset::{
    DatasetError, DatasetSpec, DatasetWriter, FeatureKind, FeatureSpec, Frame, FrameImage,
    LeRobotWriter, WriterOptions,
};
use bagstream::synth::{write_teleop_bag, TeleopSpec};
use bagstream::video::{Codec, VideoOptions, VideoSettings};

/// The fixture config's numeric features, with the bag time of each frame (which tells the
/// bags apart: they start 1000 s apart).
const TABULAR: &str = r#"
fps: 10
robot_type: teleop_arm
task: "pick up the cube"
timeline:
  main: /joint_states
  stamp: receive
  record_time: true
features:
  observation.state: {topic: /joint_states, field: position}
  observation.velocity: {topic: /joint_states, field: velocity, joints: [joint1, joint2, joint3]}
  observation.ee_pose: {topic: /ee_pose, field: pose, stamp: header}
  action:
    sources:
      - {topic: /arm_cmd, field: "data[0:6]"}
      - {topic: /gripper_cmd, field: data, match: asof, tolerance: 0.2, on_missing: hold}
"#;

/// [`TABULAR`] and the camera as video.
fn cameras_config() -> String {
    format!("{TABULAR}  observation.images.camera: {{topic: /camera/image_raw}}\n")
}

fn h264() -> VideoSettings {
    VideoSettings::for_codec(Codec::H264)
}

/// `n` teleop bags, bag i 2 + 0.4 i seconds long (so episodes differ in length) and starting
/// 1000 i seconds later, compressed in turn none / lz4 / bz2.
fn make_bags(dir: &Path, n: usize, camera: bool) -> Vec<PathBuf> {
    let compressions = [Compression::None, Compression::Lz4, Compression::Bz2];
    (0..n)
        .map(|i| {
            let path = dir.join(format!("run{i}.bag"));
            let spec = TeleopSpec {
                seconds: 2.0 + 0.4 * i as f64,
                start: (1_700_000_000 + 1000 * i as i64) * bagstream::NANOS,
                compression: compressions[i % 3],
                camera_hz: if camera { 30.0 } else { 0.0 },
                camera_size: (96, 64),
                ..TeleopSpec::default()
            };
            write_teleop_bag(&path, &spec).unwrap();
            path
        })
        .collect()
}

fn run(
    config: &str,
    bags: &[PathBuf],
    out: &Path,
    task: Option<&str>,
    append: bool,
) -> ConvertSummary {
    let summary = convert(&ConvertOptions {
        task: task.map(str::to_string),
        append,
        video: VideoOptions::given(&h264()),
        ..ConvertOptions::new(
            Config::parse(config).expect("test config parses"),
            bags.to_vec(),
            out,
        )
    })
    .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    // Shards here say for themselves whether they record their inputs.
    let _ = std::fs::remove_file(out.join(INPUTS_PATH));
    summary
}

/// Converts `bags[p]` for each p of `positions`, in that order, into `out`, and records them
/// as inputs `positions` of a run of `bags.len()` inputs when `shard` is given.
fn shard(
    config: &str,
    bags: &[PathBuf],
    positions: &[usize],
    shard: Option<(u64, u64)>,
    out: &Path,
) -> PathBuf {
    let mine: Vec<PathBuf> = positions.iter().map(|&p| bags[p].clone()).collect();
    run(config, &mine, out, None, false);
    if let Some((index, count)) = shard {
        write_inputs(out, bags, positions, Some(ShardId { index, count }));
    }
    out.to_path_buf()
}

fn write_inputs(out: &Path, bags: &[PathBuf], positions: &[usize], shard: Option<ShardId>) {
    let mut f = InputsFile::new(
        positions
            .iter()
            .enumerate()
            .map(|(e, &p)| InputEntry {
                episode_index: e as u64,
                position: p as u64,
                path: bags[p].clone(),
                size: Some(std::fs::metadata(&bags[p]).unwrap().len()),
                mtime_ns: None,
                index_digest: None,
            })
            .collect(),
    );
    f.input_count = Some(bags.len() as u64);
    f.shard = shard;
    inputs::write(out, &f).unwrap();
}

fn do_merge(shards: &[PathBuf], out: &Path) -> MergeSummary {
    merge(&MergeOptions::new(shards.to_vec(), out)).unwrap_or_else(|e| panic!("merge: {e}"))
}

fn merge_err(shards: &[PathBuf], out: &Path) -> DatasetError {
    match merge(&MergeOptions::new(shards.to_vec(), out)) {
        Ok(_) => panic!("the merge into {} should fail", out.display()),
        Err(e) => e,
    }
}

fn exit_code(e: DatasetError) -> i32 {
    bagstream::Error::from(e).exit_code()
}

fn assert_valid(ds: &Path) {
    let problems = bagstream::dataset::validate::validate(ds).unwrap();
    assert!(problems.is_empty(), "{}: {problems:#?}", ds.display());
}

/// Every data row of the dataset, in order, as one batch.
fn data_rows(ds: &Path) -> RecordBatch {
    let batches: Vec<RecordBatch> = common::files_under(&ds.join("data"))
        .iter()
        .flat_map(|f| common::read_parquet(f))
        .collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn episodes(ds: &Path) -> RecordBatch {
    let batches = common::read_parquet(&ds.join("meta/episodes/chunk-000/file-000.parquet"));
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// The episodes of `a` and `b` have the same columns, and the same values in every column
/// but those `skip` names.
fn assert_same_episodes(a: &Path, b: &Path, skip: impl Fn(&str) -> bool) {
    let (ea, eb) = (episodes(a), episodes(b));
    let names = |e: &RecordBatch| -> Vec<String> {
        e.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    assert_eq!(names(&ea), names(&eb));
    for name in names(&ea).iter().filter(|n| !skip(n)) {
        assert_eq!(
            ea.column_by_name(name).unwrap().as_ref(),
            eb.column_by_name(name).unwrap().as_ref(),
            "meta/episodes column {name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn is_video_location(col: &str) -> bool {
    col.starts_with("videos/")
}

fn json(ds: &Path, rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(ds.join(rel)).unwrap()).unwrap()
}

/// Every file of `a` and `b` the same, byte for byte, but `skip`.
fn assert_same_files(a: &Path, b: &Path, skip: &[&str]) {
    let keep = |m: std::collections::BTreeMap<String, Vec<u8>>| {
        m.into_iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (fa, fb) = (
        keep(common::dataset_files(a)),
        keep(common::dataset_files(b)),
    );
    common::assert_same_files(&fa, &fb, a, b);
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<i64> {
    b.column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

fn f64s(b: &RecordBatch, col: &str) -> Vec<f64> {
    b.column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn shards_merge_into_the_dataset_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 4, false);
    let shards = vec![
        shard(TABULAR, &bags, &[0, 1], None, &tmp.path().join("s0")),
        shard(TABULAR, &bags, &[2], None, &tmp.path().join("s1")),
        shard(TABULAR, &bags, &[3], None, &tmp.path().join("s2")),
    ];
    let one = tmp.path().join("one");
    let whole = run(TABULAR, &bags, &one, None, false);
    let merged = tmp.path().join("merged");
    let s = do_merge(&shards, &merged);
    assert_eq!(
        (s.shards, s.episodes, s.frames, s.tasks, s.data_files),
        (3, 4, whole.frames(), 1, 1)
    );
    assert!(!s.by_position);
    assert_valid(&merged);
    // Every column value, then every byte of every file: the data file's row groups, the
    // episodes with their stats, stats.json, info, tasks and sync reports are one run's.
    assert_eq!(data_rows(&merged), data_rows(&one));
    assert_same_files(&merged, &one, &[]);
    // Nothing beside the output.
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

#[test]
fn inputs_files_order_episodes_by_position_whatever_the_shard_order() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 5, false);
    // Round-robin shards 0/2 and 1/2, given last shard first.
    let s0 = shard(
        TABULAR,
        &bags,
        &[0, 2, 4],
        Some((0, 2)),
        &tmp.path().join("s0"),
    );
    let s1 = shard(
        TABULAR,
        &bags,
        &[1, 3],
        Some((1, 2)),
        &tmp.path().join("s1"),
    );
    let one = tmp.path().join("one");
    run(TABULAR, &bags, &one, None, false);
    let merged = tmp.path().join("merged");
    let s = do_merge(&[s1.clone(), s0.clone()], &merged);
    assert!(s.by_position);
    assert_eq!((s.episodes, s.input_count), (5, Some(5)));
    assert!(s.missing_positions.is_empty());
    assert_valid(&merged);
    assert_eq!(data_rows(&merged), data_rows(&one));
    assert_same_files(&merged, &one, &[INPUTS_PATH]);
    // Episode lengths grow with the input position.
    let lengths = i64s(&episodes(&merged), "length");
    assert!(lengths.windows(2).all(|w| w[0] < w[1]), "{lengths:?}");
    // The merged dataset records its own inputs: renumbered, positions kept.
    let f = inputs::read(&merged).unwrap().unwrap();
    assert_eq!((f.input_count, f.shard), (Some(5), None));
    let got: Vec<(u64, u64, PathBuf)> = f
        .inputs
        .iter()
        .map(|e| (e.episode_index, e.position, e.path.clone()))
        .collect();
    let want: Vec<(u64, u64, PathBuf)> = (0..5).map(|i| (i, i, bags[i as usize].clone())).collect();
    assert_eq!(got, want);

    // Without the inputs files, the shards follow each other as given.
    for s in [&s0, &s1] {
        std::fs::remove_file(s.join(INPUTS_PATH)).unwrap();
    }
    let as_given = tmp.path().join("as-given");
    assert!(!do_merge(&[s1, s0], &as_given).by_position);
    let lengths: Vec<i64> = i64s(&episodes(&as_given), "length");
    let one_lengths = i64s(&episodes(&one), "length");
    let want: Vec<i64> = [1, 3, 0, 2, 4].iter().map(|&i| one_lengths[i]).collect();
    assert_eq!(lengths, want);
    assert_valid(&as_given);

    // A shard left out: the merge goes ahead and says which inputs are missing.
    let s0 = shard(
        TABULAR,
        &bags,
        &[0, 2, 4],
        Some((0, 2)),
        &tmp.path().join("s0-again"),
    );
    let part = do_merge(&[s0], &tmp.path().join("part"));
    assert_eq!(part.missing_positions, [1, 3]);
}

#[test]
fn cameras_merge_by_linking_the_videos() {
    if !common::have_ffmpeg() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = cameras_config();
    let bags = make_bags(tmp.path(), 3, true);
    let a = shard(&cfg, &bags, &[1], Some((1, 2)), &tmp.path().join("a"));
    let b = shard(&cfg, &bags, &[0, 2], Some((0, 2)), &tmp.path().join("b"));
    let one = tmp.path().join("one");
    run(&cfg, &bags, &one, None, false);
    let merged = tmp.path().join("merged");
    let s = do_merge(&[a.clone(), b.clone()], &merged);
    assert_eq!((s.episodes, s.videos_linked, s.videos_copied), (3, 2, 0));
    assert_valid(&merged);

    // The camera is a video: the data, the stats (of the pictures the encoder was given) and
    // everything in the episodes but where the videos are, are one run's.
    assert_eq!(data_rows(&merged), data_rows(&one));
    assert_same_episodes(&merged, &one, is_video_location);
    for rel in [
        "data/chunk-000/file-000.parquet",
        "meta/stats.json",
        "meta/info.json",
        "meta/tasks.parquet",
    ] {
        assert!(
            std::fs::read(merged.join(rel)).unwrap() == std::fs::read(one.join(rel)).unwrap(),
            "{rel} differs"
        );
    }

    // Episode 0 (input 0) is b's first, so b's file is file-000, a's file-001; episode 2 is
    // b's second, after the first in the same file.
    let key = "observation.images.camera";
    let e = episodes(&merged);
    let col = |s: &str| format!("videos/{key}/{s}");
    assert_eq!(i64s(&e, &col("chunk_index")), [0, 0, 0]);
    assert_eq!(i64s(&e, &col("file_index")), [0, 1, 0]);
    let lengths = i64s(&e, "length");
    let from = f64s(&e, &col("from_timestamp"));
    let to = f64s(&e, &col("to_timestamp"));
    let b_e = episodes(&b);
    let a_e = episodes(&a);
    assert_eq!(
        [from[0], to[0], from[1], to[1], from[2], to[2]],
        [
            f64s(&b_e, &col("from_timestamp"))[0],
            f64s(&b_e, &col("to_timestamp"))[0],
            f64s(&a_e, &col("from_timestamp"))[0],
            f64s(&a_e, &col("to_timestamp"))[0],
            f64s(&b_e, &col("from_timestamp"))[1],
            f64s(&b_e, &col("to_timestamp"))[1],
        ]
    );
    assert_eq!(from[2], lengths[0] as f64 / 10.0);
    let video =
        |ds: &Path, file: u32| ds.join(format!("videos/{key}/chunk-000/file-{file:03}.mp4"));
    // Linked, not re-encoded.
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(video(&merged, 0)), ino(video(&b, 0)));
    assert_eq!(ino(video(&merged, 1)), ino(video(&a, 0)));

    // Each episode's frames: as many as its rows, and the pictures one run's encoder gave
    // (the same input; a file of its own starts the encoder afresh, so not the same bits).
    let frames0 = common::decode_video(&video(&merged, 0), 96, 64);
    let frames1 = common::decode_video(&video(&merged, 1), 96, 64);
    assert_eq!(frames0.len() as i64, lengths[0] + lengths[2]);
    assert_eq!(frames1.len() as i64, lengths[1]);
    let whole = common::decode_video(&video(&one, 0), 96, 64);
    assert_eq!(whole.len() as i64, lengths.iter().sum::<i64>());
    let merged_frames: Vec<&Vec<u8>> = frames0[..lengths[0] as usize]
        .iter()
        .chain(&frames1)
        .chain(&frames0[lengths[0] as usize..])
        .collect();
    for (i, (m, w)) in merged_frames.iter().zip(&whole).enumerate() {
        let d = common::mean_abs_diff(m, w);
        assert!(d < 2.0, "frame {i}: mean abs difference {d}");
    }

    // A shard whose videos were encoded otherwise is refused: its files cannot be linked
    // under the one info block of the feature.
    let other = tmp.path().join("crf23");
    convert(&ConvertOptions {
        video: VideoOptions {
            codec: Some(Codec::H264),
            crf: Some(23),
        },
        ..ConvertOptions::new(Config::parse(&cfg).unwrap(), vec![bags[0].clone()], &other)
    })
    .unwrap();
    let _ = std::fs::remove_file(other.join(INPUTS_PATH));
    std::fs::remove_file(a.join(INPUTS_PATH)).unwrap();
    let err = merge_err(&[a.clone(), other.clone()], &tmp.path().join("no"));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: feature `{key}` differs: video info `video.crf` 23",
            other.display()
        )),
        "{text}"
    );
    assert_eq!(exit_code(err), 2);
}

#[test]
fn tasks_unify_by_text_in_merged_order() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 3, false);
    let tasks = ["pick", "place", "pick"];
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| {
            let out = tmp.path().join(format!("s{i}"));
            run(TABULAR, &bags[i..=i], &out, Some(tasks[i]), false);
            out
        })
        .collect();
    // The same episodes and tasks by --append.
    let appended = tmp.path().join("appended");
    for i in 0..3 {
        run(TABULAR, &bags[i..=i], &appended, Some(tasks[i]), i > 0);
    }
    let merged = tmp.path().join("merged");
    let s = do_merge(&shards, &merged);
    assert_eq!(s.tasks, 2);
    assert_valid(&merged);
    let read_tasks = |ds: &Path| {
        let b = common::read_parquet(&ds.join("meta/tasks.parquet"));
        let t = b[0]
            .column_by_name("task")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect::<Vec<_>>();
        (i64s(&b[0], "task_index"), t)
    };
    assert_eq!(
        read_tasks(&merged),
        (vec![0, 1], vec!["pick".into(), "place".into()])
    );
    assert_eq!(read_tasks(&merged), read_tasks(&appended));
    // Each episode's rows hold its task's merged index; episode 2 (shard 2's only one, task
    // index 0 there too) and episode 1 (task index 0 in its shard, 1 merged).
    let rows = data_rows(&merged);
    assert_eq!(rows, data_rows(&appended));
    let (ep, task) = (i64s(&rows, "episode_index"), i64s(&rows, "task_index"));
    for (e, t) in ep.iter().zip(&task) {
        assert_eq!(*t, [0, 1, 0][*e as usize]);
    }
    // The appended dataset keeps a data file per run; everything else is the same, the
    // per-episode stats of task_index included.
    assert_same_episodes(&merged, &appended, |c| c.starts_with("data/"));
    assert_eq!(i64s(&episodes(&appended), "data/file_index"), [0, 1, 2]);
    assert_eq!(i64s(&episodes(&merged), "data/file_index"), [0, 0, 0]);
    assert_eq!(
        json(&merged, "meta/stats.json"),
        json(&appended, "meta/stats.json")
    );
    assert_eq!(
        json(&merged, "meta/info.json"),
        json(&appended, "meta/info.json")
    );
}

#[test]
fn mismatched_shards_are_refused_naming_shard_and_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 2, false);
    let a = shard(TABULAR, &bags, &[0], None, &tmp.path().join("a"));
    let variant = |name: &str, from: &str, to: &str| {
        assert!(TABULAR.contains(from));
        shard(
            &TABULAR.replace(from, to),
            &bags,
            &[1],
            None,
            &tmp.path().join(name),
        )
    };
    let joints = variant(
        "joints",
        "joints: [joint1, joint2, joint3]",
        "joints: [joint1, joint2]",
    );
    let names = variant(
        "names",
        "joints: [joint1, joint2, joint3]",
        "joints: [joint1, joint3, joint2]",
    );
    let fps = variant("fps", "fps: 10", "fps: 20");
    let robot = variant("robot", "robot_type: teleop_arm", "robot_type: other_arm");
    let fewer = variant("fewer", "  record_time: true\n", "");
    let out = tmp.path().join("out");
    let cases = [
        (
            &joints,
            "feature `observation.velocity` differs: float32 [2]",
        ),
        (
            &names,
            "feature `observation.velocity` differs: names [\"joint1\",\"joint3\",\"joint2\"]",
        ),
        (&fps, "fps is 20, "),
        (&robot, "robot_type is Some(\"other_arm\"), "),
        (&fewer, "has no feature `bag_time_ns`, which "),
    ];
    for (shard, want) in cases {
        let err = merge_err(&[a.clone(), shard.clone()], &out);
        assert!(matches!(err, DatasetError::Mismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}: {want}", shard.display())),
            "{text}"
        );
        assert!(text.contains(&a.display().to_string()), "{text}");
        assert_eq!(exit_code(err), 2);
        assert!(!out.exists());
    }
    // Nothing is left beside the output either.
    assert!(std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
}

#[test]
fn duplicate_positions_are_refused_naming_both_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 3, false);
    let a = shard(TABULAR, &bags, &[0, 1], None, &tmp.path().join("a"));
    let b = shard(TABULAR, &bags, &[2], None, &tmp.path().join("b"));
    write_inputs(&a, &bags, &[0, 1], None);
    // b's bag recorded as input 1, which a already holds.
    write_inputs(&b, &bags, &[1], None);
    let err = merge_err(&[a.clone(), b.clone()], &tmp.path().join("out"));
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "{}: episode 0 comes from input position 1 ({}), as does episode 1 of {} ({})",
            b.display(),
            bags[1].display(),
            a.display(),
            bags[1].display()
        )
    );
    assert_eq!(exit_code(err), 2);

    // A shard with the file and one without.
    std::fs::remove_file(b.join(INPUTS_PATH)).unwrap();
    let err = merge_err(&[a.clone(), b.clone()], &tmp.path().join("out"));
    assert!(
        err.to_string().starts_with(&format!(
            "{}: has no meta/bagstream_inputs.json, but {} has one",
            b.display(),
            a.display()
        )),
        "{err}"
    );
    assert_eq!(exit_code(err), 2);

    // An inputs file that does not fit its dataset.
    write_inputs(&b, &bags, &[1, 2], None);
    let err = merge_err(&[a.clone(), b.clone()], &tmp.path().join("out"));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: meta/bagstream_inputs.json: 2 entries for 1 episodes",
            b.display()
        )
    );
    assert_eq!(exit_code(err), 2);
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn what_is_not_a_shard_list_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 1, false);
    let a = shard(TABULAR, &bags, &[0], None, &tmp.path().join("a"));
    let out = tmp.path().join("out");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = tmp.path().join("missing");
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("notes.txt"), "mine").unwrap();
    let cases: Vec<(Vec<PathBuf>, PathBuf, String)> = vec![
        (
            vec![],
            out.clone(),
            format!("{}: no shard datasets to merge", out.display()),
        ),
        (
            vec![a.clone(), empty.clone()],
            out.clone(),
            format!(
                "{}: is not a LeRobot dataset (no meta/info.json)",
                empty.display()
            ),
        ),
        (
            vec![missing.clone()],
            out.clone(),
            format!("{}: does not exist", missing.display()),
        ),
        (
            vec![bags[0].clone()],
            out.clone(),
            format!("{}: is not a directory", bags[0].display()),
        ),
        (
            vec![a.clone(), a.join(".")],
            out.clone(),
            format!(
                "{}: is given twice (also as {})",
                a.join(".").display(),
                a.display()
            ),
        ),
        (
            vec![a.clone()],
            full.clone(),
            format!(
                "{}: exists and is not empty; merge writes a new dataset",
                full.display()
            ),
        ),
        (
            vec![a.clone()],
            a.clone(),
            format!("{}: is one of the shards", a.display()),
        ),
        (
            vec![a.clone()],
            a.join("meta/merged"),
            format!(
                "{}: is inside the shard {}",
                a.join("meta/merged").display(),
                a.display()
            ),
        ),
    ];
    for (shards, out, want) in cases {
        let err = merge_err(&shards, &out);
        assert_eq!(err.to_string(), want);
        assert_eq!(exit_code(err), 2, "{want}");
    }
    // An empty directory is a fine output, as it is for convert.
    std::fs::create_dir(&out).unwrap();
    assert_eq!(do_merge(&[a], &out).episodes, 1);
    assert_valid(&out);
}

/// A dataset of `lengths` episodes written by the writer itself, with numbers, a picture in
/// the data (PNG) and the bag time, and a small data-file limit: several data files.
fn write_direct(out: &Path, lengths: &[(u64, u64)], limit: u64) {
    let spec = DatasetSpec {
        fps: 10,
        robot_type: Some("direct".into()),
        features: vec![
            FeatureSpec {
                key: "observation.state".into(),
                kind: FeatureKind::Vector {
                    names: (0..3).map(|j| format!("j{j}")).collect(),
                },
            },
            FeatureSpec {
                key: "observation.images.wrist".into(),
                kind: FeatureKind::Image {
                    height: 96,
                    width: 96,
                },
            },
            FeatureSpec {
                key: "bag_time_ns".into(),
                kind: FeatureKind::Time,
            },
        ],
    };
    let mut w = LeRobotWriter::create(&spec, &WriterOptions::new(out, false)).unwrap();
    w.set_data_file_limit(limit);
    let mut w: Box<dyn DatasetWriter> = Box::new(w);
    // (episode seed, frames): the frames of an episode depend only on its seed.
    for &(seed, n) in lengths {
        w.begin_episode(&format!("task {}", seed % 2), n).unwrap();
        let mut rng = Rng(seed * 7919 + 1);
        for i in 0..n {
            let rgb: Vec<u8> = (0..96 * 96 * 3).map(|_| rng.next() as u8).collect();
            w.write_frame(&Frame {
                values: (0..3)
                    .map(|j| (rng.unit() * 10.0 + j as f64) as f32)
                    .collect(),
                images: vec![FrameImage {
                    rgb: bagstream::camera::RgbImage {
                        width: 96,
                        height: 96,
                        data: rgb,
                    },
                    png: Vec::new(),
                }],
                time: seed as i64 * 1_000_000_000_000 + i as i64 * 100_000_000,
            })
            .unwrap();
        }
        w.end_episode(serde_json::json!({"seed": seed})).unwrap();
    }
    w.finish().unwrap();
}

/// xorshift64*: reproducible numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn data_files_roll_over_as_the_writer_rolls_them() {
    // Noise pictures of 96x96 are about 27 KB of PNG: an episode of 320 frames passes the
    // writer's 8 MB batch of pictures (so its batches are cut by bytes, not rows) and the
    // 4 MB row group, and a 5 MB data-file limit starts new files between episodes.
    let tmp = tempfile::tempdir().unwrap();
    let eps = [(1, 320), (2, 20), (3, 200), (4, 3), (5, 60)];
    let limit = 5 << 20;
    write_direct(&tmp.path().join("one"), &eps, limit);
    write_direct(&tmp.path().join("a"), &eps[..2], limit);
    write_direct(&tmp.path().join("b"), &eps[2..], limit);
    let merged = tmp.path().join("merged");
    let s = merge(&MergeOptions {
        data_file_limit: Some(limit),
        ..MergeOptions::new(vec![tmp.path().join("a"), tmp.path().join("b")], &merged)
    })
    .unwrap();
    let one = tmp.path().join("one");
    let files = common::files_under(&one.join("data")).len() as u64;
    assert!(files >= 3, "{files} data files");
    assert_eq!(s.data_files, files);
    assert_valid(&merged);
    assert_eq!(data_rows(&merged), data_rows(&one));
    assert_same_files(&merged, &one, &[]);
}

/// Mean, population variance, min and max of each dimension of `rows`, computed directly.
fn direct_stats(rows: &[Vec<f64>]) -> Vec<(f64, f64, f64, f64)> {
    let n = rows.len() as f64;
    (0..rows[0].len())
        .map(|j| {
            let col = rows.iter().map(|r| r[j]);
            let mean = col.clone().sum::<f64>() / n;
            let var = col.clone().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            let min = col.clone().fold(f64::INFINITY, f64::min);
            let max = col.fold(f64::NEG_INFINITY, f64::max);
            (mean, var, min, max)
        })
        .collect()
}

fn list(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn merged_stats_are_those_of_the_concatenation() {
    // Random shards of random episodes (lengths 1 to 5000, beyond the stats' 4096-row batch;
    // each dimension its own offset and spread): mean, variance, min and max of the merged
    // stats.json are those of all rows (within 1e-9 relative; min and max exact), the
    // quantiles the count-weighted mean of the episodes' (lerobot 0.6.1's aggregation), and
    // all of it is what one writer of every episode writes.
    for case in 0..6u64 {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = Rng(case * 104_729 + 17);
        let n_eps = 2 + (rng.next() % 5) as usize;
        let lengths: Vec<u64> = (0..n_eps)
            .map(|_| match rng.next() % 4 {
                0 => 1,
                1 => 1 + rng.next() % 20,
                2 => 4000 + rng.next() % 1000,
                _ => 1 + rng.next() % 500,
            })
            .collect();
        let scales = [1e-3, 1.0, 250.0, 1e5];
        let spec = DatasetSpec {
            fps: 30,
            robot_type: None,
            features: vec![FeatureSpec {
                key: "observation.state".into(),
                kind: FeatureKind::Vector {
                    names: (0..4).map(|j| format!("d{j}")).collect(),
                },
            }],
        };
        let episode_rows: Vec<Vec<Vec<f32>>> = lengths
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        scales
                            .iter()
                            .map(|s| (s * (3.0 + 2.0 * rng.unit() - 1.0)) as f32)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let write = |out: &Path, eps: &[Vec<Vec<f32>>]| {
            let mut w: Box<dyn DatasetWriter> =
                Box::new(LeRobotWriter::create(&spec, &WriterOptions::new(out, false)).unwrap());
            for rows in eps {
                w.begin_episode("t", rows.len() as u64).unwrap();
                for r in rows {
                    w.write_frame(&Frame {
                        values: r.clone(),
                        ..Frame::default()
                    })
                    .unwrap();
                }
                w.end_episode(Value::Null).unwrap();
            }
            w.finish().unwrap();
        };
        // Cut the episodes into 1 to 3 shards.
        let mut cuts: Vec<usize> = (0..(rng.next() % 3) as usize)
            .map(|_| 1 + (rng.next() as usize) % (n_eps - 1))
            .collect();
        cuts.extend([0, n_eps]);
        cuts.sort();
        cuts.dedup();
        let shards: Vec<PathBuf> = cuts
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let out = tmp.path().join(format!("s{i}"));
                write(&out, &episode_rows[w[0]..w[1]]);
                out
            })
            .collect();
        let one = tmp.path().join("one");
        write(&one, &episode_rows);
        let merged = tmp.path().join("merged");
        do_merge(&shards, &merged);
        let stats = json(&merged, "meta/stats.json");
        assert_eq!(stats, json(&one, "meta/stats.json"), "case {case}");
        let state = &stats["observation.state"];
        let all: Vec<Vec<f64>> = episode_rows
            .iter()
            .flatten()
            .map(|r| r.iter().map(|x| f64::from(*x)).collect())
            .collect();
        assert_eq!(state["count"][0].as_u64(), Some(all.len() as u64));
        let (mean, std, min, max) = (
            list(&state["mean"]),
            list(&state["std"]),
            list(&state["min"]),
            list(&state["max"]),
        );
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
        for (j, (m, v, lo, hi)) in direct_stats(&all).into_iter().enumerate() {
            assert!(
                rel(mean[j], m) < 1e-9,
                "case {case} dim {j}: mean {} vs {m}",
                mean[j]
            );
            assert!(
                rel(std[j] * std[j], v) < 1e-9,
                "case {case} dim {j}: var {} vs {v}",
                std[j] * std[j]
            );
            assert_eq!((min[j], max[j]), (lo, hi), "case {case} dim {j}");
        }
        // Quantiles: the count-weighted mean of the episodes'.
        let e = episodes(&merged);
        let counts = i64s(&e, "length");
        for q in ["q01", "q10", "q50", "q90", "q99"] {
            let per_ep = e
                .column_by_name(&format!("stats/observation.state/{q}"))
                .unwrap()
                .as_any()
                .downcast_ref::<ListArray>()
                .unwrap()
                .clone();
            let got = list(&state[q]);
            for (j, g) in got.iter().enumerate() {
                let total: f64 = counts.iter().map(|c| *c as f64).sum();
                let want: f64 = (0..per_ep.len())
                    .map(|i| {
                        let v = per_ep.value(i);
                        let v = v.as_any().downcast_ref::<Float64Array>().unwrap().value(j);
                        v * counts[i] as f64
                    })
                    .sum::<f64>()
                    / total;
                assert!(
                    rel(*g, want) < 1e-9,
                    "case {case} {q} dim {j}: {g} vs {want}"
                );
            }
        }
    }
}

fn bagstream(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_line_merges_and_maps_errors_to_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let bags = make_bags(tmp.path(), 2, false);
    let a = shard(TABULAR, &bags, &[0], Some((0, 2)), &tmp.path().join("a"));
    let b = shard(TABULAR, &bags, &[1], Some((1, 2)), &tmp.path().join("b"));
    let out = tmp.path().join("out");
    let os = |p: &Path| p.as_os_str().to_owned();
    let o = bagstream(&[
        "merge".as_ref(),
        "--out".as_ref(),
        &os(&out),
        &os(&b),
        &os(&a),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("episodes ordered by input position"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!(
            "merged 2 shards: 2 episodes, {} frames, 1 task -> {}\n",
            i64s(&episodes(&out), "length").iter().sum::<i64>(),
            out.display()
        )),
        "{stdout}"
    );
    let o = bagstream(&["validate".as_ref(), &os(&out)]);
    assert!(o.status.success());

    // Refusals are usage errors (2), naming what is refused.
    let again = bagstream(&[
        "merge".as_ref(),
        "-q".as_ref(),
        "--out".as_ref(),
        &os(&out),
        &os(&a),
    ]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("{}: exists and is not empty", out.display())),
        "{stderr}"
    );
    let missing = tmp.path().join("nope");
    let o = bagstream(&[
        "merge".as_ref(),
        "--out".as_ref(),
        &os(&tmp.path().join("x")),
        &os(&missing),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains(&format!("{}: does not exist", missing.display())));
    let o = bagstream(&[
        "merge".as_ref(),
        "--out".as_ref(),
        &os(&tmp.path().join("x")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // A shard's file that cannot be read is a failure (1), named.
    let data = b.join("data/chunk-000/file-000.parquet");
    std::fs::write(&data, b"not parquet").unwrap();
    let o = bagstream(&[
        "merge".as_ref(),
        "--out".as_ref(),
        &os(&tmp.path().join("x")),
        &os(&a),
        &os(&b),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
    assert!(!tmp.path().join("x").exists());
    let help = bagstream(&["merge".as_ref(), "--help".as_ref()]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:\n  bagstream merge --out"));
}
