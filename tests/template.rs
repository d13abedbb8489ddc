//! `inspect --config-template` gives a config that converts as printed: on every ROS1 bag and
//! every ROS 2 input of `../shared/bags` with a numeric or image topic, and on the teleop
//! fixture; with unique
//! feature names, the cameras enabled, an fps every camera serves, and at most 1% of ticks
//! dropped (docs/configuration.md, "The config template").

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bagstream::config::Config;
use common::*;

fn bagstream(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn is_ros1_bag(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 13];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#ROSBAG V2.0\n"
}

/// The ROS1 bags under `dir` (by their magic, in subfolders too), and how many other inputs
/// (ROS 2 files and bag directories) were left out.
fn ros1_bags(dir: &Path) -> (Vec<PathBuf>, usize, usize) {
    let files = files_under(dir);
    let doc = |p: &Path| {
        p.components().any(|c| c.as_os_str() == "LICENSES")
            || p.extension().is_some_and(|e| e == "md" || e == "txt")
            || p.file_name().is_some_and(|n| n == "metadata.yaml")
    };
    let bags: Vec<PathBuf> = files.iter().filter(|p| is_ros1_bag(p)).cloned().collect();
    let other_files = files.iter().filter(|p| !is_ros1_bag(p) && !doc(p)).count();
    let ros2_dirs = files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "metadata.yaml"))
        .count();
    (bags, other_files, ros2_dirs)
}

/// Every `  key:` and `  # key:` line of the features section: the names the template
/// proposes, enabled or commented out.
fn proposed_names(template: &str) -> Vec<String> {
    template
        .split_once("\nfeatures:")
        .map_or("", |(_, f)| f)
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("  ")?;
            let l = l.strip_prefix("# ").unwrap_or(l);
            let key = l.strip_suffix(':')?;
            (!key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._".contains(c)))
            .then(|| key.to_string())
        })
        .collect()
}

/// Per topic of `inspect --json`: (topic, rate, image facts or error).
fn inspect_json(bag: &Path) -> Vec<serde_json::Value> {
    let o = bagstream(&["inspect".as_ref(), "--json".as_ref(), bag.as_os_str()]);
    assert!(o.status.success(), "{}: {}", bag.display(), text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["topics"].as_array().unwrap().clone()
}

/// A topic with messages that a feature can read: an image, or a type with a numeric field
/// outside its header.
fn has_usable_topic(bag: &Path) -> bool {
    let src = bagstream::bag::open(bag).unwrap();
    let s = src.summary();
    s.connections.iter().zip(&s.stats).any(|(c, st)| {
        st.count > 0
            && (c.datatype.ends_with("/Image")
                || c.datatype.ends_with("/CompressedImage")
                || bagstream::msg::DefinitionStore::default()
                    .schema(&c.datatype, &c.schema_format, &c.definition)
                    .is_ok_and(|schema| {
                        schema
                            .numeric_fields()
                            .iter()
                            .any(|f| !f.starts_with("header."))
                    }))
    })
}

/// What one bag's template gave.
struct Checked {
    frames: u64,
    dropped: u64,
    ticks: u64,
    config: Config,
    template: String,
}

/// Writes the template of `bag`, converts with it exactly as printed, validates the dataset
/// and checks the template's promises; None when the bag has nothing to convert.
fn check_template(bag: &Path, dir: &Path) -> Option<Checked> {
    let name = bag.display().to_string();
    let o = bagstream(&[
        "inspect".as_ref(),
        "--config-template".as_ref(),
        bag.as_os_str(),
    ]);
    assert!(o.status.success(), "{name}: {}", text(&o.stderr));
    let template = text(&o.stdout);
    let names = proposed_names(&template);
    for (i, n) in names.iter().enumerate() {
        assert!(
            !names[..i].contains(n),
            "{name}: feature name {n} proposed twice:\n{template}"
        );
    }
    let config = match Config::parse(&template) {
        Ok(c) => c,
        Err(e) => {
            // Nothing to convert: the template says so, and so does stderr.
            assert!(e.contains("`features` is empty"), "{name}: {e}\n{template}");
            assert!(
                template.contains("No topic of this bag has numeric fields or decodable images"),
                "{name}:\n{template}"
            );
            assert!(text(&o.stderr).contains("the template enables no feature"));
            assert!(
                !has_usable_topic(bag),
                "{name} has a usable topic but the template enables nothing:\n{template}"
            );
            return None;
        }
    };

    // Cameras: every image topic whose first message decodes is read, or its twin is.
    let topics = inspect_json(bag);
    let camera_topics: Vec<&str> = config
        .features
        .iter()
        .filter(|f| f.camera.is_some())
        .map(|f| f.sources[0].topic.as_str())
        .collect();
    let mut slowest_camera = f64::INFINITY;
    for t in &topics {
        let Some(image) = t.get("image") else {
            continue;
        };
        let topic = t["topic"].as_str().unwrap();
        if image.get("error").is_some() {
            continue;
        }
        let twin_on = camera_topics.contains(&format!("{topic}/compressed").as_str())
            || topic
                .strip_suffix("/compressed")
                .is_some_and(|raw| camera_topics.contains(&raw));
        // A camera with a rate (two messages or more); one picture would cut the episode to
        // the frames around it.
        assert!(
            camera_topics.contains(&topic) || twin_on || t["rate_hz"].is_null(),
            "{name}: camera {topic} is not enabled:\n{template}"
        );
        // Its comment gives its rate, encoding and size.
        let rate = t["rate_hz"]
            .as_f64()
            .map_or_else(|| ", no rate".to_string(), |r| format!(" @ {r:.1} Hz"));
        let n = t["messages"].as_u64().unwrap();
        let facts = format!(
            "{n} msg{}{rate}, {} {}x{}",
            if n == 1 { "" } else { "s" },
            image["encoding"].as_str().unwrap(),
            image["width"],
            image["height"]
        );
        assert!(
            template
                .lines()
                .any(|l| l.starts_with(&format!("  # {topic} [")) && l.contains(&facts)),
            "{name}: no comment with `{facts}` for {topic}:\n{template}"
        );
        if camera_topics.contains(&topic) {
            if let Some(r) = t["rate_hz"].as_f64() {
                slowest_camera = slowest_camera.min(r);
            }
        }
    }
    // The relative slack is float error in (n - 1) / span: 90 frames in 2.9667 s is 30 Hz.
    assert!(
        f64::from(config.fps) <= slowest_camera * (1.0 + 1e-6),
        "{name}: fps {} is above the slowest camera's {slowest_camera} Hz",
        config.fps
    );
    // Every topic has its comment line, with its rate when it has one.
    for t in &topics {
        let topic = t["topic"].as_str().unwrap();
        let want = match t["rate_hz"].as_f64() {
            Some(r) => format!(" @ {r:.1} Hz"),
            None if t["messages"] == 0 => " 0 msgs".to_string(),
            None => " no rate".to_string(),
        };
        assert!(
            template
                .lines()
                .any(|l| l.starts_with(&format!("  # {topic} [")) && l.contains(&want)),
            "{name}: no comment with `{want}` for {topic}:\n{template}"
        );
    }

    // As printed: `convert --config T.yaml --out D BAG`, no other option.
    let cfg = dir.join("t.yaml");
    std::fs::write(&cfg, &template).unwrap();
    let out = dir.join("ds");
    let o = bagstream(&[
        "convert".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        bag.as_os_str(),
    ]);
    assert!(
        o.status.success(),
        "{name}: convert failed: {}\n{template}",
        text(&o.stderr)
    );
    let o = bagstream(&["validate".as_ref(), out.as_os_str()]);
    assert!(
        o.status.success(),
        "{name}: validate: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let sync: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta/sync_report.json")).unwrap())
            .unwrap();
    let episode = &sync["episodes"][0];
    let (ticks, dropped, frames) = (
        episode["ticks"].as_u64().unwrap(),
        episode["dropped"].as_u64().unwrap(),
        episode["frames"].as_u64().unwrap(),
    );
    // A dropped tick plays every later frame earlier: the template's fps and tolerances
    // must keep drops under 1%.
    assert!(
        dropped as f64 <= 0.01 * ticks as f64,
        "{name}: {dropped} of {ticks} ticks dropped:\n{template}\n{episode}"
    );
    Some(Checked {
        frames,
        dropped,
        ticks,
        config,
        template,
    })
}

/// [`check_template`] on each of `inputs`, a line per converted one, `each` called on it with
/// its path relative to `shared`: how many converted, and those with nothing to convert.
fn check_templates(
    shared: &Path,
    inputs: &[PathBuf],
    mut each: impl FnMut(&str, &Checked),
) -> (usize, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut converted, mut nothing) = (0, Vec::new());
    for (i, bag) in inputs.iter().enumerate() {
        let d = dir.path().join(i.to_string());
        std::fs::create_dir(&d).unwrap();
        let rel = bag.strip_prefix(shared).unwrap().display().to_string();
        match check_template(bag, &d) {
            None => nothing.push(rel),
            Some(c) => {
                converted += 1;
                eprintln!(
                    "{rel}: fps {}, {} frames, {} of {} ticks dropped, features {}",
                    c.config.fps,
                    c.frames,
                    c.dropped,
                    c.ticks,
                    c.config
                        .features
                        .iter()
                        .map(|f| f.key.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                each(&rel, &c);
            }
        }
    }
    (converted, nothing)
}

#[test]
fn the_template_of_every_shared_ros1_bag_converts_as_printed() {
    let Some(shared) = shared_bags() else { return };
    if !have_ffmpeg() {
        return;
    }
    let (bags, other_files, ros2_dirs) = ros1_bags(&shared);
    let (converted, nothing) = check_templates(&shared, &bags, |rel, c| {
        if rel == "librealsense/single_depth_color_640x480.bag" {
            // Depth (mono16) and colour: two cameras, two names.
            let keys: Vec<&str> = c.config.features.iter().map(|f| f.key.as_str()).collect();
            assert_eq!(
                keys,
                ["observation.images.Depth_0", "observation.images.Color_0"],
                "{}",
                c.template
            );
        }
        if rel == "synthetic/ros1_lz4.bag" {
            // The bag of the issue: 10 Hz cameras, so 10 fps and no dropped tick.
            assert_eq!(c.config.fps, 10);
            assert_eq!((c.dropped, c.ticks), (0, 20));
            let topics: Vec<&str> = c.config.sources().map(|(_, s)| s.topic.as_str()).collect();
            assert_eq!(
                topics,
                [
                    "/joint_states",
                    "/cam_high/image_raw/compressed",
                    "/cam_wrist/image_raw/compressed"
                ]
            );
        }
    });
    eprintln!(
        "{} ROS1 bags: {converted} converted from their template, {} with nothing to convert ({}); skipped {other_files} ROS 2 files and {ros2_dirs} ROS 2 bag directories (their own test below)",
        bags.len(),
        nothing.len(),
        nothing.join(", ")
    );
    assert!(bags.len() >= 25, "only {} ROS1 bags found", bags.len());
    assert!(converted >= 20, "only {converted} templates converted");
}

/// The ROS 2 inputs of `dir`: every rosbag2 directory, and every MCAP or sqlite3 file that is
/// not in one.
fn ros2_inputs(dir: &Path) -> Vec<PathBuf> {
    let files = files_under(dir);
    let dirs: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "metadata.yaml"))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    let mut out: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mcap" || e == "db3"))
        .filter(|p| !dirs.iter().any(|d| p.starts_with(d)))
        .collect();
    out.extend(dirs);
    out.sort();
    out
}

#[test]
fn the_template_of_every_shared_ros2_bag_converts_as_printed() {
    let Some(shared) = shared_bags() else { return };
    if !have_ffmpeg() {
        return;
    }
    let inputs = ros2_inputs(&shared);
    let (converted, nothing) = check_templates(&shared, &inputs, |rel, c| {
        if rel.starts_with("synthetic/ros2_") {
            // The same episode as the ROS1 synthetic bags: the same proposal.
            assert_eq!(c.config.fps, 10, "{rel}");
            assert_eq!((c.dropped, c.ticks), (0, 20), "{rel}");
        }
    });
    eprintln!(
        "{} ROS 2 inputs: {converted} converted from their template, {} with nothing to convert ({})",
        inputs.len(),
        nothing.len(),
        nothing.join(", ")
    );
    assert!(
        inputs.len() >= 20,
        "only {} ROS 2 inputs found",
        inputs.len()
    );
    assert!(converted >= 8, "only {converted} templates converted");
}

#[test]
fn the_teleop_template_proposes_state_action_and_the_compressed_camera() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = check_template(&fixture("teleop_lz4.bag"), dir.path()).unwrap();
    let features: Vec<(&str, Vec<(&str, &str)>)> = c
        .config
        .features
        .iter()
        .map(|f| {
            (
                f.key.as_str(),
                f.sources
                    .iter()
                    .map(|s| (s.topic.as_str(), s.field.as_str()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        features,
        [
            ("observation.state", vec![("/joint_states", "position")]),
            (
                "action",
                vec![("/arm_cmd", "data"), ("/gripper_cmd", "data")]
            ),
            (
                "observation.images.camera",
                vec![("/camera/image_raw/compressed", "")]
            ),
        ],
        "{}",
        c.template
    );
    // Commands hold until the next one: the 10 Hz gripper never drops a 30 fps tick.
    let action = &c.config.features[1].sources;
    assert!(action
        .iter()
        .all(|s| s.matching == bagstream::config::Match::Asof
            && s.on_missing == bagstream::config::OnMissing::Hold));
    assert_eq!(c.config.fps, 30, "the 30 Hz camera is the slowest");
    assert_eq!(c.dropped, 0);
    // The raw twin is offered, commented out, under the same name.
    assert!(
        c.template.contains("    # topic: \"/camera/image_raw\"\n"),
        "{}",
        c.template
    );
}

#[test]
fn inspect_shows_each_camera_topics_encoding_and_size() {
    let bag = fixture("teleop_lz4.bag");
    let o = bagstream(&["inspect".as_ref(), bag.as_os_str()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let line = |topic: &str| {
        out.lines()
            .find(|l| l.contains(&format!("{topic} ")))
            .unwrap_or_else(|| panic!("no line for {topic} in\n{out}"))
            .to_string()
    };
    assert!(line("/camera/image_raw").ends_with(": sensor_msgs/Image [rgb8 96x64]"));
    assert!(line("/camera/image_raw/compressed")
        .ends_with(": sensor_msgs/CompressedImage [rgb8; jpeg compressed bgr8 96x64]"));
    assert!(!line("/joint_states").contains('['));
    let topics = inspect_json(&bag);
    let image = |topic: &str| {
        topics
            .iter()
            .find(|t| t["topic"] == topic)
            .unwrap()
            .get("image")
            .cloned()
    };
    assert_eq!(
        image("/camera/image_raw").unwrap(),
        serde_json::json!({"encoding": "rgb8", "width": 96, "height": 64})
    );
    assert_eq!(image("/joint_states"), None);

    let Some(shared) = shared_bags() else { return };
    let rs = shared.join("librealsense/single_depth_color_640x480.bag");
    let topics = inspect_json(&rs);
    let depth = topics
        .iter()
        .find(|t| t["topic"] == "/device_0/sensor_0/Depth_0/image/data")
        .unwrap();
    assert_eq!(
        depth["image"],
        serde_json::json!({"encoding": "mono16", "width": 640, "height": 480})
    );
}
