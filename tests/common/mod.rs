//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions, ConvertSummary};
use bagstream::video::{VideoOptions, VideoSettings};

#[path = "../../src/test_skip.rs"]
mod test_skip;
/// `../shared/bags` (or `$BAGSTREAM_SHARED/bags`), or None when it is absent, the test
/// recorded as skipped for `make test` to count.
#[allow(unused_imports)]
pub use test_skip::{shared_bags, skip};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn convert_with(
    config: &str,
    bags: &[impl AsRef<Path>],
    out: &Path,
    chunk_secs: f64,
) -> bagstream::Result<ConvertSummary> {
    convert_video(config, bags, out, chunk_secs, VideoSettings::default())
}

/// [`convert_with`] with video settings.
pub fn convert_video(
    config: &str,
    bags: &[impl AsRef<Path>],
    out: &Path,
    chunk_secs: f64,
    video: VideoSettings,
) -> bagstream::Result<ConvertSummary> {
    convert(&ConvertOptions {
        chunk_secs,
        video: VideoOptions::given(&video),
        ..ConvertOptions::new(
            Config::parse(config).expect("test config parses"),
            bags.iter().map(|b| b.as_ref().to_path_buf()).collect(),
            out,
        )
    })
}

/// True when ffmpeg and ffprobe are there; otherwise says the test is skipped. In CI (which
/// installs them) their absence fails the test instead.
pub fn have_ffmpeg() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|t| {
        std::process::Command::new(t)
            .arg("-version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg and ffprobe are needed in CI (.ci/run installs them)"
        );
        skip("ffmpeg and ffprobe are needed (apt-get install ffmpeg)");
    }
    ok
}

/// Every frame of a video as `width * height * 3` rgb24 bytes, decoded by ffmpeg.
pub fn decode_video(path: &Path, width: u32, height: u32) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let n = width as usize * height as usize * 3;
    assert_eq!(
        out.stdout.len() % n,
        0,
        "{} is not {width}x{height}",
        path.display()
    );
    out.stdout.chunks(n).map(|c| c.to_vec()).collect()
}

/// The PNG (or JPEG) bytes of an image column (`struct<bytes, path>`), decoded to rgb24.
pub fn image_column(batches: &[RecordBatch], column: &str) -> Vec<(u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"));
        let st = col
            .as_any()
            .downcast_ref::<arrow_array::StructArray>()
            .expect("struct column");
        let bytes = st
            .column_by_name("bytes")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::BinaryArray>()
            .expect("binary bytes");
        for i in 0..bytes.len() {
            let img = image::load_from_memory(bytes.value(i))
                .expect("image bytes decode")
                .to_rgb8();
            out.push((img.width(), img.height(), img.into_raw()));
        }
    }
    out
}

/// Mean absolute difference of two equally long byte pictures.
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len().max(1) as f64
}

/// Every file of a dataset by relative path, with `meta/sync_report.json` stripped of the bag
/// paths (the only place where the input's name appears).
pub fn dataset_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for p in files_under(dir) {
        let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let mut bytes = std::fs::read(&p).unwrap();
        if rel == "meta/sync_report.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for ep in v["episodes"].as_array_mut().unwrap() {
                ep.as_object_mut().unwrap().remove("bag");
            }
            bytes = serde_json::to_vec_pretty(&v).unwrap();
        }
        if rel == "meta/bagstream_inputs.json" {
            // Which input became which episode stays; what names and identifies each bag
            // differs from container to container.
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for input in v["inputs"].as_array_mut().unwrap() {
                let m = input.as_object_mut().unwrap();
                m.retain(|k, _| k == "episode_index" || k == "position");
            }
            bytes = serde_json::to_vec_pretty(&v).unwrap();
        }
        out.insert(rel, bytes);
    }
    out
}

/// Every file below `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn assert_same_dataset(a: &Path, b: &Path) {
    assert_same_files(&dataset_files(a), &dataset_files(b), a, b);
}

/// The same files with the same bytes, as [`dataset_files`] of the datasets `a` and `b` gives
/// them (or a selection of them).
pub fn assert_same_files(
    fa: &BTreeMap<String, Vec<u8>>,
    fb: &BTreeMap<String, Vec<u8>>,
    a: &Path,
    b: &Path,
) {
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "{} and {} hold different files",
        a.display(),
        b.display()
    );
    for (k, v) in fa {
        assert!(
            v == &fb[k],
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// All record batches of one parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// A vector (fixed_size_list<float>) or scalar float column as rows of values.
pub fn f32_rows(batches: &[RecordBatch], column: &str) -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"));
        if let Some(list) = col.as_any().downcast_ref::<FixedSizeListArray>() {
            for i in 0..list.len() {
                let v = list.value(i);
                let v = v.as_any().downcast_ref::<Float32Array>().unwrap();
                rows.push(v.values().to_vec());
            }
        } else {
            let v = col.as_any().downcast_ref::<Float32Array>().unwrap();
            rows.extend(v.values().iter().map(|x| vec![*x]));
        }
    }
    rows
}

pub fn i64_column(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

pub fn data_file(ds: &Path) -> PathBuf {
    ds.join("data/chunk-000/file-000.parquet")
}

/// A config for ../shared/bags/rosbagjs/example*.bag (turtlesim).
pub const ROSBAGJS_CONFIG: &str = r#"
fps: 15
task: turtles
features:
  observation.turtle1:
    sources:
      - {topic: /turtle1/pose, field: x}
      - {topic: /turtle1/pose, field: y}
      - {topic: /turtle1/pose, field: theta}
  observation.turtle2: {topic: /turtle2/pose, field: linear_velocity}
  observation.color:
    topic: /turtle1/color_sensor
    field: r
    match: asof
    tolerance: 0.1
    on_missing: hold
"#;

/// Read every message with the `rosbag` crate, in file order, then sorted by time (stable, so
/// file order breaks ties as it does for us).
pub fn rosbag_crate_messages(
    path: &Path,
) -> Result<Vec<(String, bagstream::Time, Vec<u8>)>, String> {
    let bag = rosbag::RosBag::new(path).map_err(|e| e.to_string())?;
    let mut topics: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    for rec in bag.index_records() {
        if let rosbag::IndexRecord::Connection(c) = rec.map_err(|e| e.to_string())? {
            topics.insert(c.id, c.storage_topic.to_string());
        }
    }
    let mut msgs = Vec::new();
    for rec in bag.chunk_records() {
        if let rosbag::ChunkRecord::Chunk(chunk) = rec.map_err(|e| e.to_string())? {
            for m in chunk.messages() {
                match m.map_err(|e| e.to_string())? {
                    rosbag::MessageRecord::Connection(c) => {
                        topics.insert(c.id, c.storage_topic.to_string());
                    }
                    rosbag::MessageRecord::MessageData(d) => {
                        let topic = topics
                            .get(&d.conn_id)
                            .cloned()
                            .ok_or_else(|| format!("unknown connection {}", d.conn_id))?;
                        msgs.push((topic, d.time as bagstream::Time, d.data.to_vec()));
                    }
                }
            }
        }
    }
    msgs.sort_by_key(|m| m.1);
    Ok(msgs)
}

/// A serialized sensor_msgs/Image of one flat colour.
pub fn flat_image(
    width: u32,
    height: u32,
    encoding: &str,
    value: u8,
    stamp: bagstream::Time,
) -> Vec<u8> {
    let channels = if encoding.starts_with("mono") { 1 } else { 3 };
    let step = width * channels;
    let mut s = bagstream::synth::Ser::default();
    s.header(0, stamp, "cam")
        .u32(height)
        .u32(width)
        .string(encoding)
        .u8(0)
        .u32(step)
        .u32(step * height);
    s.0.extend(std::iter::repeat_n(value, (step * height) as usize));
    s.0
}

/// A bag with `n` sensor_msgs/Image messages on `/cam` at `hz` from t = 1000 s, message i a
/// flat picture of value `value(i)` and size `size(i)` (header stamp = receive time);
/// `skip(i)` leaves message i out.
pub fn camera_bag(
    path: &Path,
    n: u32,
    hz: u32,
    encoding: &str,
    skip: impl Fn(u32) -> bool,
    size: impl Fn(u32) -> (u32, u32),
    value: impl Fn(u32) -> u8,
) {
    use bagstream::bag::ros1::write::{BagWriter, WriteOptions};
    let image = bagstream::synth::IMAGE;
    let mut w = BagWriter::create(path, WriteOptions::default()).unwrap();
    let c = w.add_connection(
        "/cam",
        image.datatype,
        image.md5sum,
        image.definition,
        None,
        false,
    );
    for i in (0..n).filter(|i| !skip(*i)) {
        let t = 1_000_000_000_000 + i64::from(i) * 1_000_000_000 / i64::from(hz);
        let (wd, ht) = size(i);
        w.write(c, t, &flat_image(wd, ht, encoding, value(i), t))
            .unwrap();
    }
    w.finish().unwrap();
}

/// Waits until the text of `log` satisfies `ready` (a run that has got far enough to be
/// interrupted); fails if `child` ends first or a minute passes.
pub fn wait_for_log(child: &mut std::process::Child, log: &Path, ready: impl Fn(&str) -> bool) {
    let started = std::time::Instant::now();
    loop {
        if ready(&std::fs::read_to_string(log).unwrap_or_default()) {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{} never got far enough",
            log.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A bag with one std_msgs/Float64 topic `/a` holding `msgs` (time, value) in the order given.
pub fn float64_bag(
    path: &Path,
    opts: bagstream::bag::ros1::write::WriteOptions,
    msgs: &[(bagstream::Time, f64)],
) {
    use bagstream::bag::ros1::write::BagWriter;
    let f = bagstream::synth::FLOAT64;
    let mut w = BagWriter::create(path, opts).unwrap();
    let a = w.add_connection("/a", f.datatype, f.md5sum, f.definition, None, false);
    for &(t, v) in msgs {
        w.write(a, t, &v.to_le_bytes()).unwrap();
    }
    w.finish().unwrap();
}

/// The bag bytes with the data of `chunk` replaced by `data` (its declared uncompressed size
/// kept). Only for bags without an index: nothing may point past the chunk.
pub fn replace_chunk_data(
    bytes: &[u8],
    chunk: &bagstream::bag::ros1::ChunkInfo,
    data: &[u8],
) -> Vec<u8> {
    let len_at = chunk.data_pos as usize - 4;
    let mut out = bytes[..len_at].to_vec();
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&bytes[(chunk.data_pos + chunk.data_len) as usize..]);
    out
}

/// LZ4 frames back to back that expand to `total` bytes of zeros (4 MiB per frame, about
/// 16 KiB compressed each).
pub fn lz4_bomb(total: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&vec![0u8; 4 << 20]).unwrap();
    enc.finish().unwrap().repeat(total / (4 << 20))
}

/// bz2 streams back to back that expand to `total` bytes of zeros (16 MiB per stream).
pub fn bz2_bomb(total: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    enc.write_all(&vec![0u8; 16 << 20]).unwrap();
    enc.finish().unwrap().repeat(total / (16 << 20))
}

/// What a dataset holds, whatever its file layout: every data column's values in row order
/// (data files in path order), every episode metadata column but the file locations, tasks,
/// info.json, stats.json, and the sync report without bag paths. Equal for the same episodes
/// whether they were written in one run, resumed, committed in parts or converted by jobs.
#[derive(Debug, PartialEq)]
pub struct DatasetContent {
    pub data: BTreeMap<String, Vec<String>>,
    pub episodes: BTreeMap<String, Vec<String>>,
    pub tasks: BTreeMap<String, Vec<String>>,
    pub info: serde_json::Value,
    pub stats: serde_json::Value,
    pub sync: serde_json::Value,
}

/// Column name -> each row's value as text, over `files` in order.
fn columns_of(files: &[PathBuf], skip: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in files {
        for b in read_parquet(f) {
            for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                if skip(field.name()) {
                    continue;
                }
                let rows = out.entry(field.name().clone()).or_default();
                for r in 0..col.len() {
                    rows.push(format!("{:?}", col.slice(r, 1)));
                }
            }
        }
    }
    out
}

pub fn dataset_content(dir: &Path) -> DatasetContent {
    let under = |sub: &str| -> Vec<PathBuf> {
        let d = dir.join(sub);
        if !d.exists() {
            return Vec::new();
        }
        files_under(&d)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect()
    };
    let json = |rel: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap()).unwrap()
    };
    let mut sync = json("meta/sync_report.json");
    for ep in sync["episodes"].as_array_mut().unwrap() {
        ep.as_object_mut().unwrap().remove("bag");
    }
    DatasetContent {
        data: columns_of(&under("data"), |_| false),
        episodes: columns_of(&under("meta/episodes"), |name| {
            name.starts_with("data/")
                || name.starts_with("meta/episodes/")
                || (name.starts_with("videos/") && !name.ends_with("_timestamp"))
                || name.ends_with("from_timestamp")
                || name.ends_with("to_timestamp")
        }),
        tasks: columns_of(&[dir.join("meta/tasks.parquet")], |_| false),
        info: json("meta/info.json"),
        stats: json("meta/stats.json"),
        sync,
    }
}

/// The two datasets hold the same (see [`DatasetContent`]); names the first part that differs.
pub fn assert_same_content(a: &Path, b: &Path) {
    let (ca, cb) = (dataset_content(a), dataset_content(b));
    for (what, x, y) in [
        ("data", &ca.data, &cb.data),
        ("meta/episodes", &ca.episodes, &cb.episodes),
        ("meta/tasks", &ca.tasks, &cb.tasks),
    ] {
        assert_eq!(
            x.keys().collect::<Vec<_>>(),
            y.keys().collect::<Vec<_>>(),
            "{what}: other columns in {} and {}",
            a.display(),
            b.display()
        );
        for (k, v) in x {
            let w = &y[k];
            assert_eq!(
                v.len(),
                w.len(),
                "{what}: column {k}: {} rows against {}",
                v.len(),
                w.len()
            );
            if let Some(i) = (0..v.len()).find(|&i| v[i] != w[i]) {
                panic!("{what}: column {k} row {i}: {} against {}", v[i], w[i]);
            }
        }
    }
    assert_eq!(ca.info, cb.info, "meta/info.json differs");
    assert_eq!(ca.stats, cb.stats, "meta/stats.json differs");
    assert_eq!(ca.sync, cb.sync, "meta/sync_report.json differs");
}
