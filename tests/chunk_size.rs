//! The output is identical for every `--chunk-secs`: from less than one frame's span to longer
//! than the bag, over the shipped fixtures and the real bags in ../shared/bags.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;

fn teleop_config() -> String {
    std::fs::read_to_string(fixture("teleop.yaml")).unwrap()
}

/// The fixture converted with one window longer than the bag: the reference.
fn reference() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        convert_with(
            &teleop_config(),
            &[fixture("teleop_lz4.bag")],
            &d.path().join("ref"),
            10_000.0,
        )
        .unwrap();
        d
    });
    Box::leak(dir.path().join("ref").into_boxed_path())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn fixture_output_does_not_depend_on_chunk_size(ms in 1u32..4000) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ds");
        convert_with(&teleop_config(), &[fixture("teleop_lz4.bag")], &out, ms as f64 / 1000.0).unwrap();
        assert_same_dataset(reference(), &out);
    }
}

#[test]
fn extreme_chunk_sizes() {
    // The smallest window allowed (far below one frame period, 0.1 s at 10 fps), exactly one
    // period, and much longer than the bag.
    for secs in [bagstream::convert::MIN_CHUNK_SECS, 0.1, 1e6] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ds");
        convert_with(&teleop_config(), &[fixture("teleop_lz4.bag")], &out, secs).unwrap();
        assert_same_dataset(reference(), &out);
    }
}

fn real_bag_cases(bags: &Path) -> Vec<(PathBuf, String)> {
    vec![
        (
            bags.join("synthetic/ros1_lz4.bag"),
            std::fs::read_to_string(fixture("shared-synthetic.yaml")).unwrap(),
        ),
        (
            bags.join("robot_state_publisher/joint_states_indexed.bag"),
            std::fs::read_to_string(fixture("shared-joint-states.yaml")).unwrap(),
        ),
        (
            bags.join("rosbagjs/example-lz4.bag"),
            ROSBAGJS_CONFIG.to_string(),
        ),
    ]
}

#[test]
fn real_bags_do_not_depend_on_chunk_size() {
    let Some(bags) = shared_bags() else { return };
    for (bag, cfg) in real_bag_cases(&bags) {
        let dir = tempfile::tempdir().unwrap();
        let reference = dir.path().join("ref");
        if let Err(e) = convert_with(&cfg, &[&bag], &reference, 1e6) {
            panic!("{}: {e}", bag.display());
        }
        for secs in [0.003, 0.05, 0.25, 1.0, 7.0] {
            let out = dir.path().join(format!("c{secs}"));
            convert_with(&cfg, &[&bag], &out, secs).unwrap();
            assert_same_dataset(&reference, &out);
        }
    }
}
