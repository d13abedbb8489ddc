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
