//! Broken configs: every case is exit status 2 with one line on stderr that names what is wrong
//! (feature, topic, field path, value), found while planning, before the writer exists: no
//! dataset and no `.NAME.bagstream-tmp-*` directory is left at the output path.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bagstream::synth::{self, TeleopSpec};
use common::*;

/// What one `bagstream convert` run left behind.
struct Run {
    code: Option<i32>,
    stderr: String,
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `bagstream convert -q --config CONFIG --out OUT EXTRA.. BAGS..`, with `env` set.
fn convert_cli(
    config: &Path,
    out: &Path,
    bags: &[&Path],
    extra: &[&str],
    env: &[(&str, &Path)],
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bagstream"));
    cmd.args(["convert", "-q", "--config", p(config), "--out", p(out)])
        .args(extra)
        .args(bags.iter().map(|b| p(b)));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    Run {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Exit status 2, one line `bagstream: error: ...` holding every `want`, no panic.
fn assert_one_line(what: &str, run: &Run, wants: &[&str]) {
    let err = &run.stderr;
    assert_eq!(run.code, Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err}");
    assert!(err.starts_with("bagstream: error: "), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    for want in wants {
        assert!(err.contains(want), "{what}: {want:?} missing in {err}");
    }
}

/// Writes `config` and converts `bags` into `DIR/out/ds`, which must not exist afterwards: its
/// parent is not even created when the run is refused in planning.
fn refused(dir: &Path, name: &str, config: &str, bags: &[&Path], wants: &[&str]) {
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(&cfg, config).unwrap();
    let parent = dir.join(format!("out-{name}"));
    let run = convert_cli(&cfg, &parent.join("ds"), bags, &[], &[]);
    assert_one_line(&format!("{name}: {config}"), &run, wants);
    assert!(
        !parent.exists(),
        "{name}: {} was created (dataset or temporary)",
        parent.display()
    );
}

/// A 1 s teleop bag (joint states, commands, pose; 10 Hz camera of `camera` size, if any).
fn teleop_bag(path: &Path, joints: usize, camera: Option<(u32, u32)>) -> PathBuf {
    synth::write_teleop_bag(
        path,
        &TeleopSpec {
            seconds: 1.0,
            joints,
            camera_hz: if camera.is_some() { 10.0 } else { 0.0 },
            camera_size: camera.unwrap_or((96, 64)),
            ..TeleopSpec::default()
        },
    )
    .unwrap();
    path.to_path_buf()
}

const HEAD: &str = "fps: 10\ntask: t\nfeatures:\n";

fn feature(line: &str) -> String {
    format!("{HEAD}  {line}\n")
}

#[test]
fn an_unknown_topic_lists_the_bags_topics() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    let topics = "its topics are: /joint_states, /arm_cmd, /gripper_cmd, /ee_pose, /camera/image_raw, /camera/image_raw/compressed";
    refused(
        dir.path(),
        "feature",
        &feature("a: {topic: /nope, field: data}"),
        &[&bag],
        &[
            p(&bag),
            "features.a: topic `/nope` is not in the bag",
            topics,
        ],
    );
    refused(
        dir.path(),
        "source",
        &feature("a: {sources: [{topic: /arm_cmd, field: data}, {topic: /gripper, field: data}]}"),
        &[&bag],
        &["features.a: topic `/gripper` is not in the bag", topics],
    );
    refused(
        dir.path(),
        "camera",
        &feature("cam: {topic: /cam_high/image_raw}"),
        &[&bag],
        &[
            "features.cam: topic `/cam_high/image_raw` is not in the bag",
            topics,
        ],
    );
    refused(
        dir.path(),
        "main",
        "fps: 10\ntask: t\ntimeline: {main: /clock}\nfeatures:\n  a: {topic: /arm_cmd, field: data}\n",
        &[&bag],
        &["timeline.main: topic `/clock` is not in the bag", topics],
    );
    // Several: one error lists every one, with what names it, in config order.
    refused(
        dir.path(),
        "several",
        "fps: 10\ntask: t\ntimeline: {main: /clock}\nfeatures:\n  a: {topic: /nope, field: data}\n  b: {sources: [{topic: /arm_cmd, field: data}, {topic: /gripper, field: data}]}\n  cam: {topic: /cam_high/image_raw}\n",
        &[&bag],
        &[
            "4 topics are not in the bag: features.a: topic `/nope`; features.b: topic \
             `/gripper`; features.cam: topic `/cam_high/image_raw`; timeline.main: topic `/clock`; ",
            topics,
        ],
    );
}

#[test]
fn a_field_path_that_does_not_exist_names_the_fields_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "top",
        &feature("a: {topic: /joint_states, field: positon}"),
        &[&bag],
        &[
            "features.a: topic /joint_states (sensor_msgs/JointState): field path `positon`: no field `positon` in sensor_msgs/JointState; its fields: header (Header), name (string[]), position (float64[]), velocity (float64[]), effort (float64[]) (in sensor_msgs/JointState)",
        ],
    );
    refused(
        dir.path(),
        "nested",
        &feature("a: {topic: /ee_pose, field: pose.positon.x}"),
        &[&bag],
        &[
            "features.a: topic /ee_pose (geometry_msgs/PoseStamped): field path `pose.positon.x`: no field `positon` in geometry_msgs/Pose (at `pose`); its fields: position (Point), orientation (Quaternion)",
        ],
    );
    refused(
        dir.path(),
        "through a number",
        &feature("a: {topic: /gripper_cmd, field: data.x}"),
        &[&bag],
        &["field path `data.x`: `data` is a float64, it has no fields"],
    );
}

#[test]
fn a_field_that_is_not_numeric_says_which_leaf_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "string array",
        &feature("a: {topic: /joint_states, field: name}"),
        &[&bag],
        &[
            "features.a: topic /joint_states",
            "`name` is a string[], not a number",
        ],
    );
    refused(
        dir.path(),
        "string",
        &feature("a: {topic: /ee_pose, field: header.frame_id}"),
        &[&bag],
        &[
            "features.a: topic /ee_pose",
            "`header.frame_id` is a string, not a number",
        ],
    );
    refused(
        dir.path(),
        "sub-message",
        &feature("a: {topic: /ee_pose, field: header}"),
        &[&bag],
        &["`header` (Header) is not all numbers: `header.frame_id (string)` is not numeric (in geometry_msgs/PoseStamped)"],
    );
}

#[test]
fn a_slice_out_of_range_gives_the_arrays_length() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "slice",
        &feature("a: {topic: /joint_states, field: \"position[3:99]\"}"),
        &[&bag],
        &[
            "features.a: field `position[3:99]` of topic /joint_states in its first message",
            "field `position` has 6 elements, position[3:99] is past its end",
        ],
    );
    refused(
        dir.path(),
        "index",
        &feature("a: {topic: /arm_cmd, field: \"data[6]\"}"),
        &[&bag],
        &["`data` has 6 elements, data[6] is past its end"],
    );
    // A fixed-size array is checked against its definition.
    refused(
        dir.path(),
        "fixed",
        &feature("a: {topic: /ee_pose, field: \"pose.orientation.w[0]\"}"),
        &[&bag],
        &["`pose.orientation.w` is not an array (float64)"],
    );
}

#[test]
fn missing_joints_are_named_with_the_names_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "joints",
        &feature(
            "a: {topic: /joint_states, field: position, joints: [joint2, elbow, joint3, wrist]}",
        ),
        &[&bag],
        &[
            "features.a: field `position` of topic /joint_states in its first message",
            "joints `elbow`, `wrist` are not in this message's name[]",
            "names present: [joint1, joint2, joint3, joint4, joint5, joint6]",
        ],
    );
    refused(
        dir.path(),
        "no name array",
        &feature("a: {topic: /arm_cmd, field: data, joints: [joint1]}"),
        &[&bag],
        &["`joints` needs a numeric array with a sibling `name` string array"],
    );
}

#[test]
fn fps_must_be_a_positive_integer() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    for (i, (fps, want)) in [
        ("0", "fps: 0 is out of range"),
        ("-5", "fps: -5 is out of range"),
        (
            "100001",
            "fps: 100001 is out of range: give a positive integer up to 10000",
        ),
        ("1e30", "fps: 1e30 is not a positive integer"),
        (".nan", "fps: .nan is not a positive integer"),
        ("2.5", "fps: 2.5 is not a positive integer"),
        ("ten", "fps: ten is not a positive integer"),
    ]
    .into_iter()
    .enumerate()
    {
        refused(
            dir.path(),
            &format!("fps{i}"),
            &format!("fps: {fps}\ntask: t\nfeatures:\n  a: {{topic: /arm_cmd, field: data}}\n"),
            &[&bag],
            &[want],
        );
    }
}

#[test]
fn feature_names_must_be_safe_path_components() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    let long = "c".repeat(256);
    for (i, (name, want)) in [
        ("\"a/b\"", "feature name `a/b` may not contain `/`"),
        ("\"/cam\"", "feature name `/cam` may not contain `/`"),
        ("\"..\"", "feature name `..` may not contain"),
        ("\"cam..x\"", "feature name `cam..x` may not contain"),
        ("\"a\\\\b\"", "feature name `a\\b` may not contain"),
        ("\".\"", "feature name `.` is not a directory name"),
        ("\"\"", "feature name \"\" is empty"),
        (
            "\" cam\"",
            "feature name \" cam\" is empty or has surrounding spaces",
        ),
        (
            "\"a\\tb\"",
            "feature name \"a\\tb\" has a control character",
        ),
        (
            "\"a\\nb\"",
            "feature name \"a\\nb\" has a control character",
        ),
        (
            long.as_str(),
            "is 256 bytes long; a file name takes at most 255",
        ),
        ("7", "feature name 7 is not a string"),
        ("index", "feature name `index` is reserved"),
    ]
    .into_iter()
    .enumerate()
    {
        refused(
            dir.path(),
            &format!("name{i}"),
            &feature(&format!(
                "{name}: {{topic: /camera/image_raw, type: image}}"
            )),
            &[&bag],
            &[want],
        );
    }
}

#[test]
fn a_camera_on_a_topic_that_is_not_an_image_names_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "video",
        &feature("cam: {topic: /joint_states}"),
        &[&bag],
        &[
            "features.cam: topic /joint_states (sensor_msgs/JointState): topic type sensor_msgs/JointState is not an image type",
            "a feature without `field` is a camera",
        ],
    );
    refused(
        dir.path(),
        "image",
        &feature("cam: {topic: /arm_cmd, type: image}"),
        &[&bag],
        &["features.cam: topic /arm_cmd (std_msgs/Float64MultiArray): topic type std_msgs/Float64MultiArray is not an image type"],
    );
}

#[test]
fn yaml_errors_give_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "syntax",
        "fps: 10\ntask: t\nfeatures:\n  a: {topic: /arm_cmd, field: data\n",
        &[&bag],
        &["syntax.yaml: ", "line 5 column 1"],
    );
    refused(
        dir.path(),
        "tab",
        "fps: 10\ntask: t\nfeatures:\n\ta: {topic: /arm_cmd, field: data}\n",
        &[&bag],
        &["tab.yaml: ", "line 4 column 1"],
    );
    refused(dir.path(), "empty", "", &[&bag], &["empty.yaml: "]);
    refused(
        dir.path(),
        "list",
        "- fps: 10\n",
        &[&bag],
        &["list.yaml: ", "expected struct RawConfig"],
    );
}

#[test]
fn unknown_and_repeated_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    refused(
        dir.path(),
        "top",
        "fps: 10\ntask: t\nfetaures: {}\nfeatures:\n  a: {topic: /arm_cmd, field: data}\n",
        &[&bag],
        &["unknown field `fetaures`", "line 3 column 1"],
    );
    refused(
        dir.path(),
        "timeline",
        "fps: 10\ntask: t\ntimeline: {mian: /arm_cmd}\nfeatures:\n  a: {topic: /arm_cmd, field: data}\n",
        &[&bag],
        &["timeline: unknown field `mian`", "line 3"],
    );
    refused(
        dir.path(),
        "feature",
        &feature("a: {topic: /arm_cmd, field: data, tolerence: 0.1}"),
        &[&bag],
        &["features.a: unknown field `tolerence`"],
    );
    refused(
        dir.path(),
        "source",
        &feature("a: {sources: [{topic: /arm_cmd, field: data, on_mising: hold}]}"),
        &[&bag],
        &["features.a: unknown field `on_mising`"],
    );
    refused(
        dir.path(),
        "twice",
        &format!(
            "{HEAD}  a: {{topic: /arm_cmd, field: data}}\n  b: {{topic: /gripper_cmd, field: data}}\n  a: {{topic: /joint_states, field: position}}\n"
        ),
        &[&bag],
        &["twice.yaml: features: duplicate entry with key \"a\" at line 4"],
    );
    refused(
        dir.path(),
        "topic twice",
        &feature("a: {topic: /arm_cmd, field: data, topic: /gripper_cmd}"),
        &[&bag],
        &["duplicate entry with key \"topic\""],
    );
    refused(
        dir.path(),
        "fps twice",
        "fps: 10\ntask: t\nfps: 30\nfeatures:\n  a: {topic: /arm_cmd, field: data}\n",
        &[&bag],
        &["duplicate field `fps`"],
    );
}

#[test]
fn durations_must_be_seconds_zero_or_more() {
    let dir = tempfile::tempdir().unwrap();
    let bag = fixture("teleop_lz4.bag");
    let cases = [
        (
            feature("a: {topic: /arm_cmd, field: data, tolerance: -0.1}"),
            "features.a.tolerance: -0.1 is not a duration in seconds",
        ),
        (
            feature("a: {sources: [{topic: /arm_cmd, field: data}, {topic: /gripper_cmd, field: data, tolerance: -1}]}"),
            "features.a.sources[1].tolerance: -1 is not a duration in seconds",
        ),
        (
            feature("a: {tolerance: -1, sources: [{topic: /arm_cmd, field: data}]}"),
            "features.a.sources[0].tolerance: -1 is not a duration",
        ),
        (
            feature("a: {topic: /arm_cmd, field: data, tolerance: .nan}"),
            "features.a.tolerance: NaN is not a duration",
        ),
        (
            feature("a: {topic: /arm_cmd, field: data, tolerance: 3600}"),
            "features.a.tolerance: 3600 s is more than 60 s",
        ),
        (
            "fps: 10\ntask: t\ntimeline: {trim_start: -1}\nfeatures:\n  a: {topic: /arm_cmd, field: data}\n".to_string(),
            "timeline.trim_start: -1 is not a duration",
        ),
        (
            "fps: 10\ntask: t\ntimeline: {max_delay: -0.5}\nfeatures:\n  a: {topic: /arm_cmd, field: data}\n".to_string(),
            "timeline.max_delay: -0.5 is not a duration",
        ),
    ];
    for (i, (config, want)) in cases.iter().enumerate() {
        refused(dir.path(), &format!("d{i}"), config, &[&bag], &[want]);
    }
}

const STATE: &str =
    "fps: 10\ntask: t\nfeatures:\n  observation.state: {topic: /joint_states, field: position}\n";
const STATE_AND_CAMERA: &str = "fps: 10\ntask: t\nfeatures:\n  observation.state: {topic: /joint_states, field: position}\n  cam: {topic: /camera/image_raw, type: image}\n";

#[test]
fn shapes_that_change_between_the_bags_of_one_run_name_both_and_the_bag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let six = teleop_bag(&d.join("six.bag"), 6, Some((96, 64)));
    let seven = teleop_bag(&d.join("seven.bag"), 7, Some((96, 64)));
    let small = teleop_bag(&d.join("small.bag"), 6, Some((64, 48)));
    refused(
        d,
        "joints",
        STATE,
        &[&six, &six, &seven],
        &[&format!(
            "{}: feature `observation.state` has 7 values [joint1, joint2, joint3, joint4, joint5, joint6, joint7] but in {} it has 6 values [joint1, joint2, joint3, joint4, joint5, joint6]",
            seven.display(),
            six.display()
        )],
    );
    refused(
        d,
        "camera",
        STATE_AND_CAMERA,
        &[&six, &small],
        &[&format!(
            "{}: feature `cam` is image 64x48 but in {} it is image 96x64",
            small.display(),
            six.display()
        )],
    );
}

#[test]
fn append_with_other_shapes_names_the_feature_both_shapes_and_the_bag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let six = teleop_bag(&d.join("six.bag"), 6, Some((96, 64)));
    let seven = teleop_bag(&d.join("seven.bag"), 7, Some((96, 64)));
    let small = teleop_bag(&d.join("small.bag"), 6, Some((64, 48)));
    let parent = d.join("out");
    let out = parent.join("ds");
    for (config, bag, want) in [
        (
            STATE,
            &seven,
            "feature `observation.state` differs: the dataset has float32 [6] names [\"joint1\",\"joint2\",\"joint3\",\"joint4\",\"joint5\",\"joint6\"], this run writes float32 [7] names [\"joint1\",\"joint2\",\"joint3\",\"joint4\",\"joint5\",\"joint6\",\"joint7\"]",
        ),
        (
            STATE_AND_CAMERA,
            &small,
            "feature `cam` differs: the dataset has image [64, 96, 3] names [\"height\",\"width\",\"channels\"], this run writes image [48, 64, 3]",
        ),
    ] {
        let _ = std::fs::remove_dir_all(&parent);
        let cfg = d.join("c.yaml");
        std::fs::write(&cfg, config).unwrap();
        let first = convert_cli(&cfg, &out, &[&six], &[], &[]);
        assert_eq!(first.code, Some(0), "{}", first.stderr);
        let before = dataset_files(&out);
        // The run's shapes are those of its first bag (the others must agree with it).
        let run = convert_cli(&cfg, &out, &[bag, bag], &["--append"], &[]);
        assert_one_line(
            "append",
            &run,
            &[
                &format!("{}: {want}", out.display()),
                &format!("(from {})", bag.display()),
            ],
        );
        assert_eq!(dataset_files(&out), before, "the dataset changed");
        let names: Vec<_> = std::fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ds"], "a temporary was left beside the dataset");
    }
    // Another fps is the config's doing, not the bag's.
    let before = dataset_files(&out);
    let cfg = d.join("fps.yaml");
    std::fs::write(&cfg, STATE_AND_CAMERA.replace("fps: 10", "fps: 5")).unwrap();
    let run = convert_cli(&cfg, &out, &[&six], &["--append"], &[]);
    assert_one_line(
        "append fps",
        &run,
        &[&format!(
            "{}: fps differs: the dataset has 10, this run writes 5",
            out.display()
        )],
    );
    assert_eq!(dataset_files(&out), before, "the dataset changed");
    assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 1);
}

/// A fake ffmpeg that records that it was started and fails.
fn fake_ffmpeg(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let marker = dir.join("ffmpeg-started");
    let script = dir.join("ffmpeg");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, marker)
}

#[test]
fn errors_in_the_last_bag_are_found_before_any_window_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = teleop_bag(&d.join("good.bag"), 6, Some((96, 64)));
    let seven = teleop_bag(&d.join("seven.bag"), 7, Some((96, 64)));
    let five = teleop_bag(&d.join("five.bag"), 5, Some((96, 64)));
    let no_camera = teleop_bag(&d.join("no_camera.bag"), 6, None);
    let config = |name: &str, state: &str| {
        let path = d.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("fps: 10\ntask: t\nfeatures:\n  observation.state: {{topic: /joint_states, {state}}}\n  cam: {{topic: /camera/image_raw}}\n"),
        )
        .unwrap();
        path
    };
    let all = config("all", "field: position");
    let slice = config("slice", "field: \"position[0:6]\"");
    let joints = config("joints", "field: position, joints: [joint1, joint6]");
    let (ffmpeg, started) = fake_ffmpeg(d);
    for (config, bad, want) in [
        (&all, &seven, "feature `observation.state` has 7 values"),
        (
            &all,
            &no_camera,
            "features.cam: topic `/camera/image_raw` is not in the bag",
        ),
        (
            &slice,
            &five,
            "field `position` has 5 elements, position[0:6] is past its end",
        ),
        (
            &joints,
            &five,
            "joint `joint6` is not in this message's name[]",
        ),
    ] {
        let parent = d.join("out");
        let log = d.join("mem.log");
        let _ = std::fs::remove_file(&log);
        let run = convert_cli(
            config,
            &parent.join("ds"),
            &[&good, &good, bad],
            &["--memory-log", p(&log)],
            &[("BAGSTREAM_FFMPEG", &ffmpeg)],
        );
        assert_one_line("last bag", &run, &[p(bad), want]);
        assert!(!parent.exists(), "the writer's directory was created");
        assert!(!started.exists(), "an encoder was started");
        // Both good bags were planned; no window was read and no episode began.
        let log = std::fs::read_to_string(&log).unwrap();
        let labels: Vec<&str> = log.lines().filter_map(|l| l.split("  ").nth(1)).collect();
        assert_eq!(
            labels
                .iter()
                .filter(|l| l.starts_with("scan done: "))
                .count(),
            2,
            "{log}"
        );
        assert!(
            !log.contains("chunk") && !log.contains("episode"),
            "work started before the error: {log}"
        );
    }
    // The control: with good bags only, the fake encoder does start (and fails the run).
    let run = convert_cli(
        &all,
        &d.join("out").join("ds"),
        &[&good],
        &[],
        &[("BAGSTREAM_FFMPEG", &ffmpeg)],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(started.exists(), "the fake ffmpeg was not used");
}
