//! The shipped fixtures: every frame's values equal the values the fixture writer put in the
//! picked messages, and the four containers (none, bz2, lz4, unindexed) give one dataset.

mod common;

use bagstream::synth;
use bagstream::{Time, NANOS};
use common::*;

fn teleop_config() -> String {
    std::fs::read_to_string(fixture("teleop.yaml")).unwrap()
}

#[test]
fn every_value_is_the_picked_message_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let s = convert_with(&teleop_config(), &[fixture("teleop_lz4.bag")], &out, 0.3).unwrap();
    let start = synth::fixture_spec(bagstream::bag::ros1::Compression::Lz4, true).start;
    let b = read_parquet(&data_file(&out));
    let state = f32_rows(&b, "observation.state");
    let velocity = f32_rows(&b, "observation.velocity");
    let pose = f32_rows(&b, "observation.ee_pose");
    let action = f32_rows(&b, "action");
    // The grid starts at the first /joint_states message (timeline.main) and ends at the last
    // /gripper_cmd message (2.9 s, the earliest last message): 30 ticks, all kept.
    assert_eq!(state.len(), 30);
    assert_eq!(s.episodes[0].report.dropped, 0);
    for k in 0..30 {
        let tick: Time = start + k as i64 * NANOS / 10;
        // Every tick falls on a /joint_states, /arm_cmd and /gripper_cmd message; /ee_pose is
        // header-stamped 3 ms before its receive time, so the message received at the tick wins.
        let t = synth::secs_since(start, tick);
        let want_state: Vec<f32> = (0..6).map(|j| synth::joint_position(j, t) as f32).collect();
        assert_eq!(state[k], want_state, "state at frame {k}");
        let want_vel: Vec<f32> = (0..3).map(|j| synth::joint_velocity(j, t) as f32).collect();
        assert_eq!(velocity[k], want_vel, "velocity at frame {k}");
        let p = synth::ee_position(t);
        let q = synth::ee_orientation(t);
        let want_pose: Vec<f32> = p.iter().chain(q.iter()).map(|v| *v as f32).collect();
        assert_eq!(pose[k], want_pose, "pose at frame {k}");
        let mut want_action: Vec<f32> = (0..6).map(|j| synth::arm_command(j, t) as f32).collect();
        want_action.push(synth::gripper_command(t) as f32);
        assert_eq!(action[k], want_action, "action at frame {k}");
    }
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta/info.json")).unwrap()).unwrap();
    assert_eq!(
        info["features"]["observation.velocity"]["names"],
        serde_json::json!(["joint1", "joint2", "joint3"])
    );
    assert_eq!(
        info["features"]["observation.state"]["shape"],
        serde_json::json!([6])
    );
    assert_eq!(
        info["features"]["observation.ee_pose"]["names"][0],
        "pose.position.x"
    );
    assert_eq!(info["features"]["action"]["names"][6], "data");
    let report = &s.episodes[0].report;
    let pose_src = &report.sources[2].1;
    assert_eq!(
        pose_src.dt_percentile(100.0),
        Some(0.003),
        "header stamps are 3 ms early"
    );
}

#[test]
fn all_containers_give_one_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "teleop_none.bag",
        "teleop_bz2.bag",
        "teleop_lz4.bag",
        "teleop_unindexed.bag",
    ];
    let outs: Vec<_> = names
        .iter()
        .map(|n| {
            let out = dir.path().join(n);
            let s = convert_with(&teleop_config(), &[fixture(n)], &out, 1.0).unwrap();
            let warned = s.warnings.iter().any(|w| w.contains("index"));
            assert_eq!(
                warned,
                *n == "teleop_unindexed.bag",
                "{n}: {:?}",
                s.warnings
            );
            out
        })
        .collect();
    for o in &outs[1..] {
        assert_same_dataset(&outs[0], o);
    }
}

#[test]
fn fixtures_are_what_the_fixture_writer_makes() {
    // `make fixtures` must reproduce the committed files byte for byte.
    let dir = tempfile::tempdir().unwrap();
    for (name, compression, write_index) in synth::FIXTURES {
        let path = dir.path().join(name);
        synth::write_teleop_bag(&path, &synth::fixture_spec(compression, write_index)).unwrap();
        assert!(
            std::fs::read(&path).unwrap() == std::fs::read(fixture(name)).unwrap(),
            "{name} differs from what examples/make_fixtures.rs writes: run `make fixtures`"
        );
    }
}
