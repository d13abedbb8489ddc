//! Real bags written by other tools (../shared/bags): the same episode in different containers
//! gives the same dataset, and everything in the folder (ROS1 bags, ROS 2 MCAP and sqlite3
//! files and directories, licenses) converts or fails with one clear line naming the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn convert_all_same(bags: &[PathBuf], config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for (i, bag) in bags.iter().enumerate() {
        let out = dir.path().join(format!("ds{i}"));
        let s = convert_with(config, &[&bag], &out, 1.0)
            .unwrap_or_else(|e| panic!("{}: {e}", bag.display()));
        assert!(
            s.frames() > 5,
            "{}: only {} frames",
            bag.display(),
            s.frames()
        );
        outs.push(out);
    }
    for o in &outs[1..] {
        assert_same_dataset(&outs[0], o);
    }
}

#[test]
fn rosbagjs_examples_give_identical_datasets_whatever_the_compression() {
    let Some(bags) = shared_bags() else { return };
    let list: Vec<PathBuf> = ["example.bag", "example-bz2.bag", "example-lz4.bag"]
        .iter()
        .map(|b| bags.join("rosbagjs").join(b))
        .collect();
    convert_all_same(&list, ROSBAGJS_CONFIG);
}

fn shared_list(bags: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|b| bags.join(b)).collect()
}

#[test]
fn synthetic_ros1_bags_give_identical_datasets_whatever_the_compression() {
    let Some(bags) = shared_bags() else { return };
    let cfg = std::fs::read_to_string(fixture("shared-synthetic.yaml")).unwrap();
    let rosbags_written = [
        "synthetic/ros1_none.bag",
        "synthetic/ros1_bz2.bag",
        "synthetic/ros1_lz4.bag",
    ];
    convert_all_same(&shared_list(&bags, &rosbags_written), &cfg);
    let ros_written = [
        "synthetic_official/official_none.bag",
        "synthetic_official/official_bz2.bag",
        "synthetic_official/official_lz4_multiframe.bag",
    ];
    convert_all_same(&shared_list(&bags, &ros_written), &cfg);
}

#[test]
fn the_same_episode_from_two_writers_gives_the_same_frames() {
    // The two writers disagree on times by a few ns to us: `rosbags` adds 1-3 us to the
    // record times of later topics, ROS's `rosbag` rounds 1.9 s to 1.899999999 s. With header
    // stamps and the last tick trimmed away, the frames must be the same; only the sync
    // report's |dt| may differ (by those few ns).
    let Some(bags) = shared_bags() else { return };
    let cfg = std::fs::read_to_string(fixture("shared-synthetic.yaml"))
        .unwrap()
        .replace(
            "features:",
            "timeline: {stamp: header, trim_end: 0.05}\nfeatures:",
        );
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    convert_with(&cfg, &[bags.join("synthetic/ros1_lz4.bag")], &a, 1.0).unwrap();
    convert_with(
        &cfg,
        &[bags.join("synthetic_official/official_lz4_multiframe.bag")],
        &b,
        1.0,
    )
    .unwrap();
    // The pose differs in the sources themselves (z is 0.4 in one, 0 in the other), so only
    // the joint columns are compared.
    let (ra, rb) = (read_parquet(&data_file(&a)), read_parquet(&data_file(&b)));
    for col in ["observation.state", "observation.velocity", "timestamp"] {
        assert_eq!(f32_rows(&ra, col), f32_rows(&rb, col), "{col}");
    }
    assert_eq!(
        f32_rows(&read_parquet(&data_file(&a)), "observation.state").len(),
        19
    );
}

#[test]
fn pr2_joint_states_with_old_roslib_header() {
    let Some(bags) = shared_bags() else { return };
    let bag = bags.join("robot_state_publisher/joint_states_indexed.bag");
    let cfg = std::fs::read_to_string(fixture("shared-joint-states.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let s = convert_with(&cfg, &[bag], &out, 1.0).unwrap();
    // 1598 messages at 100 Hz over ~16 s of simulated time, sampled at 30 fps.
    assert!(s.frames() > 400, "{}", s.frames());
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta/info.json")).unwrap()).unwrap();
    let state = &info["features"]["observation.state"];
    assert_eq!(state["shape"][0], 42);
    assert_eq!(state["names"].as_array().unwrap().len(), 42);
    assert_eq!(
        info["features"]["observation.arm"]["names"],
        serde_json::json!([
            "r_shoulder_pan_joint",
            "r_shoulder_lift_joint",
            "r_elbow_flex_joint"
        ])
    );
    // The picked joints equal the same joints' columns of the full state.
    let b = read_parquet(&data_file(&out));
    let names: Vec<String> = state["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let cols: Vec<usize> = [
        "r_shoulder_pan_joint",
        "r_shoulder_lift_joint",
        "r_elbow_flex_joint",
    ]
    .iter()
    .map(|j| names.iter().position(|n| n == j).unwrap())
    .collect();
    for (full, arm) in f32_rows(&b, "observation.state")
        .iter()
        .zip(f32_rows(&b, "observation.arm"))
    {
        let picked: Vec<f32> = cols.iter().map(|&c| full[c]).collect();
        assert_eq!(picked, arm);
    }
}

/// What an input of ../shared/bags is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// A ROS1 bag (format 2.0).
    Ros1,
    /// ROS 2 storage: a rosbag2 directory, an MCAP or sqlite3 file, a whole-file zstd one.
    Ros2,
    /// Anything else (licenses, READMEs, metadata.yaml itself).
    Other,
}

fn input_kind(path: &Path) -> Input {
    use std::io::Read;
    if path.is_dir() || path.extension().is_some_and(|e| e == "zstd") {
        return Input::Ros2;
    }
    let mut head = Vec::new();
    let _ = std::fs::File::open(path).map(|f| f.take(16).read_to_end(&mut head));
    if head.starts_with(b"#ROSBAG V2.0\n") {
        Input::Ros1
    } else if head.starts_with(b"\x89MCAP0\r\n") || head.starts_with(b"SQLite format 3\0") {
        Input::Ros2
    } else {
        Input::Other
    }
}

/// Everything a user could hand to `bagstream convert` from `dir`: every file, and every
/// directory that is a ROS 2 bag (holds a metadata.yaml).
fn everything(dir: &Path) -> Vec<PathBuf> {
    let mut out = files_under(dir);
    let dirs: Vec<PathBuf> = out
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "metadata.yaml"))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    out.extend(dirs);
    out.sort();
    out
}

/// The one `bagstream: error:` line of a failed run; it names `input`.
fn one_error_line(input: &Path, what: &str, stderr: &str) -> String {
    assert!(
        !stderr.contains("panicked"),
        "{}: {what} panicked: {stderr}",
        input.display()
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("bagstream: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{}: {what}: {stderr}", input.display());
    assert!(
        lines[0].contains(&input.display().to_string()),
        "{}: {what}: the error does not name the file: {}",
        input.display(),
        lines[0]
    );
    lines[0].to_string()
}

/// A config naming up to three numeric topics of the bag (the busiest ones, the first
/// numeric field of each that is not a byte blob); a topic with a broken definition is named
/// too, so that its clear error is what the test sees.
fn numeric_config(bag: &Path) -> Option<String> {
    use bagstream::msg::def::{Arity, FieldType, Primitive};
    let src = bagstream::bag::open(bag).ok()?;
    let s = src.summary();
    let mut topics: Vec<(u64, &str)> = s
        .topics()
        .into_iter()
        .map(|t| {
            (
                s.connections_on(t).iter().map(|&c| s.stats[c].count).sum(),
                t,
            )
        })
        .filter(|(n, _)| *n >= 2)
        .collect();
    topics.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut features = String::new();
    for (n, (_, topic)) in topics.iter().enumerate() {
        let c = &s.connections[s.connections_on(topic)[0]];
        let field = match bagstream::msg::DefinitionStore::default().schema(
            &c.datatype,
            &c.schema_format,
            &c.definition,
        ) {
            Err(_) => "data".to_string(),
            Ok(schema) => {
                let blob = |name: &str| {
                    schema.root().field(name).is_some_and(|(_, f)| {
                        f.arity == Arity::Variable
                            && matches!(
                                f.ty,
                                FieldType::Primitive(Primitive::Uint8 | Primitive::Int8)
                            )
                    })
                };
                let Some(f) = schema.numeric_fields().into_iter().find(|f| !blob(f)) else {
                    continue;
                };
                f
            }
        };
        features.push_str(&format!(
            "  f{n}: {{topic: {}, field: \"{field}\", on_missing: hold, tolerance: 1.0}}\n",
            serde_json::to_string(topic).unwrap()
        ));
        if features.lines().count() == 3 {
            break;
        }
    }
    (!features.is_empty()).then(|| format!("fps: 10\ntask: any\nfeatures:\n{features}"))
}

#[test]
fn every_file_of_shared_bags_converts_or_fails_cleanly() {
    let Some(bags) = shared_bags() else { return };
    let bin = env!("CARGO_BIN_EXE_bagstream");
    let dir = tempfile::tempdir().unwrap();
    let (mut ros1, mut ros2, mut others) = (0, 0, 0);
    let (mut ros1_converted, mut ros2_converted) = (0, 0);
    for (i, input) in everything(&bags).iter().enumerate() {
        let kind = input_kind(input);
        let inspect = Command::new(bin)
            .arg("inspect")
            .arg(input)
            .output()
            .unwrap();
        let code = inspect.status.code();
        let stderr = String::from_utf8_lossy(&inspect.stderr);
        match kind {
            Input::Ros1 => {
                ros1 += 1;
                assert!(
                    matches!(code, Some(0..=2)),
                    "{}: inspect exited {code:?}: {stderr}",
                    input.display()
                );
                if code != Some(0) {
                    one_error_line(input, "inspect", &stderr);
                }
            }
            // Every ROS 2 input answers inspect.
            Input::Ros2 => {
                ros2 += 1;
                assert_eq!(code, Some(0), "{}: inspect: {stderr}", input.display());
            }
            Input::Other => {
                others += 1;
                assert_eq!(code, Some(1), "{}: inspect: {stderr}", input.display());
                let line = one_error_line(input, "inspect", &stderr);
                assert!(line.contains("not a bag"), "{line}");
            }
        }
        let cfg = if kind == Input::Other {
            None
        } else {
            numeric_config(input)
        }
        .unwrap_or_else(|| {
            "fps: 10\ntask: any\nfeatures:\n  x: {topic: /none, field: data}\n".into()
        });
        let cfg_path = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(&cfg_path, &cfg).unwrap();
        let out = dir.path().join(format!("ds{i}"));
        let run = Command::new(bin)
            .args(["convert", "-q", "--config"])
            .arg(&cfg_path)
            .arg("--out")
            .arg(&out)
            .arg(input)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        match run.status.code() {
            Some(0) => {
                assert!(
                    kind != Input::Other,
                    "{}: converted but is not a bag",
                    input.display()
                );
                if kind == Input::Ros1 {
                    ros1_converted += 1;
                } else {
                    ros2_converted += 1;
                }
                assert!(out.join("meta/info.json").is_file());
            }
            Some(code @ (1 | 2)) => {
                let line = one_error_line(input, "convert", &stderr);
                if kind == Input::Other {
                    assert_eq!(code, 1, "{line}");
                    assert!(line.contains("not a bag"), "{line}");
                }
                assert!(
                    !out.exists(),
                    "{}: failed run left {}",
                    input.display(),
                    out.display()
                );
                eprintln!("{}: {}", input.display(), line);
            }
            other => panic!(
                "{}: convert exited {other:?}: {stderr}\nconfig:\n{cfg}",
                input.display()
            ),
        }
    }
    eprintln!(
        "{ros1} ROS1 bags, {ros1_converted} converted; {ros2} ROS 2 inputs, {ros2_converted} \
         converted; {others} other files refused"
    );
    assert!(ros1 >= 25, "only {ros1} ROS1 bags found");
    assert!(
        ros1_converted >= 10,
        "only {ros1_converted} ROS1 bags converted"
    );
    assert!(ros2 >= 40, "only {ros2} ROS 2 inputs found");
    assert!(
        ros2_converted >= 20,
        "only {ros2_converted} ROS 2 inputs converted"
    );
}

/// The split bags are one recording each: every file's messages counted once.
#[test]
fn split_bags_count_every_message_once() {
    let Some(bags) = shared_bags() else { return };
    for name in ["rosbag2/sqlite3_wbag_split", "rosbag2/mcap_wbag_split"] {
        let bag = bagstream::bag::open(&bags.join(name)).unwrap();
        let s = bag.summary();
        assert_eq!(s.message_count(), 6074, "{name}");
        assert_eq!(s.files.len(), 5, "{name}");
        let text = bagstream::inspect::summary_text(s);
        assert!(text.contains("Messages:          6074"), "{name}: {text}");
    }
}
