//! The same synthetic episode stored in every container of `../shared/bags/synthetic/` (ROS1
//! none/bz2/lz4, rosbag2 MCAP plain and zstd, rosbag2 sqlite3 plain and with zstd per
//! message, all written by the independent `rosbags` package) converts to the same dataset,
//! byte for byte (the sync report's bag paths aside): with numeric features, and with both
//! cameras as video.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_same_dataset, convert_video, have_ffmpeg};

const CONTAINERS: [&str; 7] = [
    "ros1_none.bag",
    "ros1_bz2.bag",
    "ros1_lz4.bag",
    "ros2_mcap",
    "ros2_mcap_zstd",
    "ros2_sqlite3",
    "ros2_sqlite3_msgzstd",
];

fn synthetic() -> Option<PathBuf> {
    common::shared_bags().map(|b| b.join("synthetic"))
}

fn config(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .unwrap()
}

/// Converts the episode from every container with `config` and compares each dataset with
/// the first's.
fn same_in_every_container(config: &str, tag: &str) {
    let Some(dir) = synthetic() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut first: Option<PathBuf> = None;
    for name in CONTAINERS {
        let out = tmp.path().join(format!("{tag}-{name}"));
        let summary = convert_video(
            config,
            &[dir.join(name)],
            &out,
            1.0,
            bagstream::video::VideoSettings::for_codec(bagstream::video::Codec::H264),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(summary.frames() > 10, "{name}: {} frames", summary.frames());
        match &first {
            None => first = Some(out),
            Some(a) => assert_same_dataset(a, &out),
        }
    }
}

#[test]
fn numeric_features_are_the_same_from_every_container() {
    same_in_every_container(&config("shared-synthetic.yaml"), "numeric");
}

#[test]
fn cameras_are_the_same_from_every_container() {
    if !have_ffmpeg() {
        return;
    }
    same_in_every_container(&config("shared-synthetic-cameras.yaml"), "cameras");
}

/// The window size changes nothing, in ROS 2 storage as in ROS1 bags.
#[test]
fn every_chunk_size_gives_the_same_dataset_from_ros2_storage() {
    let Some(dir) = synthetic() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config("shared-synthetic.yaml");
    for name in [
        "ros2_mcap",
        "ros2_mcap_zstd",
        "ros2_sqlite3",
        "ros2_sqlite3_msgzstd",
    ] {
        let mut first: Option<PathBuf> = None;
        for chunk in [0.013, 0.25, 1.0, 30.0] {
            let out = tmp.path().join(format!("{name}-{chunk}"));
            common::convert_with(&cfg, &[dir.join(name)], &out, chunk)
                .unwrap_or_else(|e| panic!("{name} at {chunk} s: {e}"));
            match &first {
                None => first = Some(out),
                Some(a) => assert_same_dataset(a, &out),
            }
        }
    }
}

/// ROS1 and ROS 2 bags mix in one run, and a ROS 2 bag appends to a dataset of ROS1 bags: each
/// episode holds what that bag alone gives.
#[test]
fn ros1_and_ros2_bags_mix_in_one_run_and_by_append() {
    let Some(dir) = synthetic() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config("shared-synthetic.yaml");
    let bags = [
        dir.join("ros1_lz4.bag"),
        dir.join("ros2_mcap"),
        dir.join("ros2_sqlite3"),
    ];
    let mixed = tmp.path().join("mixed");
    let s = common::convert_with(&cfg, &bags, &mixed, 1.0).unwrap();
    assert_eq!(s.episodes.len(), 3);
    // Every data file in order (an append writes new files).
    let state = |ds: &Path| {
        common::files_under(&ds.join("data"))
            .iter()
            .flat_map(|f| common::f32_rows(&common::read_parquet(f), "observation.state"))
            .collect::<Vec<_>>()
    };
    let all = state(&mixed);
    let one = state(&{
        let out = tmp.path().join("one");
        common::convert_with(&cfg, &[&bags[0]], &out, 1.0).unwrap();
        out
    });
    assert_eq!(all.len(), 3 * one.len());
    for k in 0..3 {
        assert_eq!(
            all[k * one.len()..(k + 1) * one.len()],
            one[..],
            "episode {k}"
        );
    }

    // --append a ROS 2 bag to a ROS1 dataset.
    let appended = tmp.path().join("appended");
    common::convert_with(&cfg, &[&bags[0]], &appended, 1.0).unwrap();
    bagstream::convert::convert(&bagstream::convert::ConvertOptions {
        append: true,
        ..bagstream::convert::ConvertOptions::new(
            bagstream::config::Config::parse(&cfg).unwrap(),
            vec![bags[1].clone()],
            &appended,
        )
    })
    .unwrap();
    let rows = state(&appended);
    assert_eq!(rows.len(), 2 * one.len());
    assert_eq!(rows[one.len()..], one[..]);
}
