//! `--jobs N` writes what `--jobs 1` writes, byte for byte: the same rows, episodes, tasks,
//! stats, data and video files (so the same decoded frames), commits and failures.

mod common;

use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array};
use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions};
use bagstream::synth::{write_teleop_bag, TeleopSpec};
use bagstream::video::{Codec, VideoOptions, VideoSettings};
use bagstream::NANOS;
use common::*;

const CAMERA: &str = "observation.images.camera";

fn write_bags(dir: &Path, n: usize, camera: bool) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("run{i:02}.bag"));
            write_teleop_bag(
                &path,
                &TeleopSpec {
                    seconds: 1.5 + i as f64 * 0.4,
                    start: (1_700_000_000 + 1000 * i as i64) * NANOS,
                    camera_hz: if camera { 30.0 } else { 0.0 },
                    camera_size: (96, 64),
                    ..TeleopSpec::default()
                },
            )
            .unwrap();
            path
        })
        .collect()
}

fn config(camera: bool) -> Config {
    let text = std::fs::read_to_string(fixture("teleop.yaml")).unwrap();
    let text = if camera {
        text
    } else {
        // Everything before the camera feature.
        text[..text.find("  observation.images.camera").unwrap()].to_string()
    };
    Config::parse(&text).unwrap()
}

fn options(config: Config, bags: &[PathBuf], out: &Path, jobs: usize) -> ConvertOptions {
    ConvertOptions {
        chunk_secs: 0.5,
        video: VideoOptions::given(&VideoSettings::for_codec(Codec::H264)),
        commit_every: Some(2),
        jobs,
        ..ConvertOptions::new(config, bags.to_vec(), out)
    }
}

/// Each episode's decoded frames of `key`, from the file and time span its metadata names.
fn episode_frames(ds: &Path, key: &str, fps: u32) -> Vec<Vec<Vec<u8>>> {
    let files = files_under(&ds.join("meta/episodes"));
    let batches: Vec<_> = files.iter().flat_map(|f| read_parquet(f)).collect();
    let chunks = i64_column(&batches, &format!("videos/{key}/chunk_index"));
    let file_ix = i64_column(&batches, &format!("videos/{key}/file_index"));
    let f64s = |name: &str| -> Vec<f64> {
        batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name(name).unwrap();
                let a = c.as_any().downcast_ref::<Float64Array>().unwrap();
                (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
            })
            .collect()
    };
    let (from, to) = (
        f64s(&format!("videos/{key}/from_timestamp")),
        f64s(&format!("videos/{key}/to_timestamp")),
    );
    (0..chunks.len())
        .map(|e| {
            let path = ds.join(format!(
                "videos/{key}/chunk-{:03}/file-{:03}.mp4",
                chunks[e], file_ix[e]
            ));
            let frames = decode_video(&path, 96, 64);
            let (a, b) = (
                (from[e] * fps as f64).round() as usize,
                (to[e] * fps as f64).round() as usize,
            );
            frames[a..b].to_vec()
        })
        .collect()
}

#[test]
fn jobs_write_the_dataset_that_one_job_writes() {
    let dir = tempfile::tempdir().unwrap();
    let bags = write_bags(dir.path(), 7, false);
    let one = dir.path().join("one");
    let three = dir.path().join("three");
    convert(&options(config(false), &bags, &one, 1)).unwrap();
    let s = convert(&options(config(false), &bags, &three, 3)).unwrap();
    assert_eq!(s.episodes.len(), 7);
    let order: Vec<_> = s.episodes.iter().map(|e| e.bag.clone()).collect();
    assert_eq!(order, bags, "episodes in the order of the inputs");
    assert_same_dataset(&one, &three);
    assert!(bagstream::dataset::validate::validate(&three)
        .unwrap()
        .is_empty());
    // No work directory left beside the output.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("bagstream-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn jobs_give_the_same_decoded_frames_per_episode() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bags = write_bags(dir.path(), 4, true);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    convert(&options(config(true), &bags, &one, 1)).unwrap();
    convert(&options(config(true), &bags, &two, 2)).unwrap();
    assert_same_dataset(&one, &two);
    let (a, b) = (
        episode_frames(&one, CAMERA, 10),
        episode_frames(&two, CAMERA, 10),
    );
    assert_eq!(a.len(), 4);
    for (e, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(!x.is_empty(), "episode {e}: no frames");
        assert_eq!(x, y, "episode {e}: the decoded frames differ");
    }
}

/// A copy of `src` whose chunk `k` (of its data, not its index) is garbage: it plans, and
/// fails when its windows reach that chunk.
fn with_bad_chunk(src: &Path, dst: &Path, k: usize) {
    let mut bytes = std::fs::read(src).unwrap();
    let chunks = bagstream::bag::ros1::scan::scan(src).unwrap().chunks;
    let c = &chunks[k.min(chunks.len() - 1)];
    let (a, b) = (c.data_pos as usize, (c.data_pos + c.data_len) as usize);
    bytes[a + (b - a) / 4..b].fill(0xA5);
    std::fs::write(dst, bytes).unwrap();
}

#[test]
fn a_bag_that_fails_midway_stops_the_run_as_with_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut bags = write_bags(dir.path(), 6, false);
    let bad = dir.path().join("bad.bag");
    with_bad_chunk(&bags[3], &bad, 2);
    bags[3] = bad.clone();
    let mut outs = Vec::new();
    for jobs in [1, 2, 3] {
        let out = dir.path().join(format!("jobs{jobs}"));
        let e = convert(&options(config(false), &bags, &out, jobs)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("bad.bag"), "{text}");
        match &e {
            bagstream::Error::BagFailed { bag, kept, .. } => {
                assert_eq!(*bag, bad);
                assert!(kept.contains("3 episodes"), "{kept}");
            }
            other => panic!("--jobs {jobs}: {other}"),
        }
        outs.push(out);
    }
    for out in &outs[1..] {
        assert_same_dataset(&outs[0], out);
    }
    // With --keep-going the bad bag is rolled back mid-episode and the run goes on.
    let (one, two) = (dir.path().join("kg1"), dir.path().join("kg2"));
    for (out, jobs) in [(&one, 1), (&two, 2)] {
        let s = convert(&ConvertOptions {
            keep_going: true,
            ..options(config(false), &bags, out, jobs)
        })
        .unwrap();
        assert_eq!(s.episodes.len(), 5);
        assert_eq!(s.failures.len(), 1);
        assert_eq!(s.failures[0].bag, bad);
    }
    assert_same_dataset(&one, &two);
}

#[test]
fn with_keep_going_a_bad_bag_is_skipped_and_the_rest_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut bags = write_bags(dir.path(), 5, false);
    let bad = dir.path().join("bad.bag");
    std::fs::write(&bad, b"#ROSBAG V2.0\nnot a bag at all").unwrap();
    bags.insert(2, bad.clone());
    let out = dir.path().join("ds");
    let s = convert(&ConvertOptions {
        keep_going: true,
        ..options(config(false), &bags, &out, 2)
    })
    .unwrap();
    assert_eq!(s.failures.len(), 1);
    assert_eq!(s.failures[0].bag, bad);
    let good: Vec<_> = bags.iter().filter(|b| **b != bad).cloned().collect();
    let reference = dir.path().join("reference");
    convert(&options(config(false), &good, &reference, 1)).unwrap();
    // The inputs record differs (the bad bag holds a position); the rest is the same.
    let (x, y) = (dataset_content(&out), dataset_content(&reference));
    assert_eq!(x.data, y.data);
    assert_eq!(x.episodes, y.episodes);
    assert_eq!(x.stats, y.stats);
}
