//! The conversion config (YAML): output rate, timeline and features. See
//! `docs/configuration.md` for the reference.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result, Time, NANOS};

/// Which time of a message places it on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Stamp {
    /// The time the recorder wrote the message into the bag.
    #[default]
    Receive,
    /// The message's `header.stamp`.
    Header,
    /// The time the publisher sent it, where the storage records one (MCAP `publish_time`).
    Publish,
}

/// How a source picks its message for a frame tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// Smallest |t - t_k|; ties go to the earlier message.
    #[default]
    Nearest,
    /// Latest message with t <= t_k: never looks into the future.
    Asof,
}

/// What a tick does when a source has no message within tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnMissing {
    #[default]
    Drop,
    Hold,
    Fail,
}

/// How a camera feature is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CameraOutput {
    /// Frames go to an MP4 file per camera, encoded by ffmpeg.
    #[default]
    Video,
    /// Frames are stored losslessly as PNG bytes in the data parquet.
    Image,
}

/// What makes a feature a camera: the topic is an image topic and its frames are pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Camera {
    pub output: CameraOutput,
    /// Output (width, height); frames of any size are resized to it.
    pub resize: Option<(u32, u32)>,
}

/// Largest width or height `resize` accepts.
pub const MAX_RESIZE: u32 = 8192;

/// The file as written; turned into [`Config`] by [`Config::parse`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    fps: serde_yaml_ng::Value,
    #[serde(default)]
    robot_type: Option<String>,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    timeline: RawTimeline,
    features: serde_yaml_ng::Mapping,
    #[serde(default)]
    msg_path: Vec<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeline {
    main: Option<String>,
    #[serde(default)]
    stamp: Stamp,
    #[serde(default)]
    trim_start: f64,
    #[serde(default)]
    trim_end: f64,
    max_delay: Option<f64>,
    max_drop_ratio: Option<f64>,
    #[serde(default)]
    record_time: bool,
}

/// A source's settings, as written either directly under a feature or in its `sources` list.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawSource {
    topic: Option<String>,
    field: Option<String>,
    joints: Option<Vec<String>>,
    #[serde(rename = "match")]
    matching: Option<Match>,
    tolerance: Option<f64>,
    on_missing: Option<OnMissing>,
    stamp: Option<Stamp>,
    max_drop_ratio: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFeature {
    // The single-source form's keys; serde's `flatten` would lose `deny_unknown_fields`.
    topic: Option<String>,
    field: Option<String>,
    joints: Option<Vec<String>>,
    #[serde(rename = "match")]
    matching: Option<Match>,
    tolerance: Option<f64>,
    on_missing: Option<OnMissing>,
    stamp: Option<Stamp>,
    max_drop_ratio: Option<f64>,
    sources: Option<Vec<RawSource>>,
    #[serde(rename = "type")]
    kind: Option<CameraOutput>,
    resize: Option<Vec<u32>>,
}

/// The timeline: where the frame grid starts and ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub main: Option<String>,
    pub stamp: Stamp,
    pub trim_start: Time,
    pub trim_end: Time,
    /// How far back a header-stamped topic's stamps may go, in bag order, and still be used.
    pub max_delay: Time,
    /// The most interior drops an episode may have, as a fraction of its ticks (0 to 1; 1 is
    /// no limit); also every source's default.
    pub max_drop_ratio: f64,
    /// Write each frame's tick time as the int64 column [`RECORD_TIME_FEATURE`].
    pub record_time: bool,
}

/// One input stream of a feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub topic: String,
    /// The numeric field to read; empty for a camera, which reads the whole image message.
    pub field: String,
    pub joints: Option<Vec<String>>,
    pub matching: Match,
    /// Nanoseconds.
    pub tolerance: Time,
    pub on_missing: OnMissing,
    pub stamp: Stamp,
    /// The most interior drops this source may cause, as a fraction of the ticks.
    pub max_drop_ratio: f64,
}

/// One output feature: its sources' values concatenated in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub key: String,
    pub sources: Vec<Source>,
    /// Set for camera features, which have exactly one source.
    pub camera: Option<Camera>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub fps: u32,
    pub robot_type: Option<String>,
    pub task: Option<String>,
    pub timeline: Timeline,
    pub features: Vec<Feature>,
    /// Directories searched for `pkg/msg/Type.msg` when a bag holds no definition of a type
    /// (`msg_path:` in the file, relative to it; `--msg-path` adds to it).
    pub msg_path: Vec<PathBuf>,
}

/// Names the dataset writer adds to every frame; a feature may not reuse them.
pub const RESERVED_FEATURES: [&str; 5] = [
    "timestamp",
    "frame_index",
    "episode_index",
    "index",
    "task_index",
];

const DEFAULT_MAX_DELAY: f64 = 0.5;

/// Default `max_drop_ratio`: a wrong fps drops far more (a 10 Hz camera at 30 fps drops two
/// ticks in three), jitter around a served rate far less.
pub const DEFAULT_MAX_DROP_RATIO: f64 = 0.05;

/// The column `timeline.record_time: true` adds: the frame's tick time, in nanoseconds of bag
/// time since the epoch.
pub const RECORD_TIME_FEATURE: &str = "bag_time_ns";

/// Longest feature name: a camera's is a directory name, and file systems take 255 bytes.
pub const MAX_FEATURE_NAME: usize = 255;

/// Every message within tolerance of a pending tick is kept in memory: a tolerance of hours
/// would make memory follow the bag, not the chunk.
pub const MAX_TOLERANCE_SECS: f64 = 60.0;

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        let mut config =
            Config::parse(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        // As with other paths in a file, relative to the file, not to where the command runs.
        let base = path.parent().unwrap_or(Path::new(""));
        for dir in &mut config.msg_path {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(config)
    }

    /// Parse and check a config; the error text is one line without the file name.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let fps = parse_fps(&raw.fps)?;
        let period = NANOS as f64 / fps as f64;
        let t = raw.timeline;
        let timeline = Timeline {
            main: t.main,
            stamp: t.stamp,
            trim_start: seconds("timeline.trim_start", t.trim_start)?,
            trim_end: seconds("timeline.trim_end", t.trim_end)?,
            max_delay: seconds(
                "timeline.max_delay",
                t.max_delay.unwrap_or(DEFAULT_MAX_DELAY),
            )?,
            max_drop_ratio: ratio(
                "timeline.max_drop_ratio",
                t.max_drop_ratio.unwrap_or(DEFAULT_MAX_DROP_RATIO),
            )?,
            record_time: t.record_time,
        };
        if raw.features.is_empty() {
            return Err("`features` is empty: name at least one feature".into());
        }
        let mut features = Vec::new();
        for (key, value) in raw.features {
            let key = match key {
                serde_yaml_ng::Value::String(s) => s,
                other => {
                    return Err(format!(
                        "feature name {} is not a string: quote it",
                        yaml_text(&other)
                    ))
                }
            };
            check_feature_name(&key)?;
            if timeline.record_time && key == RECORD_TIME_FEATURE {
                return Err(format!(
                    "feature name `{key}` is the column `timeline.record_time: true` adds: rename the feature"
                ));
            }
            let rf: RawFeature =
                serde_yaml_ng::from_value(value).map_err(|e| format!("features.{key}: {e}"))?;
            // A feature without `field` reads whole messages: a camera (video unless `type`
            // says image). Which topics are image topics is checked against the bag.
            let camera = if rf.kind.is_some() || (rf.field.is_none() && rf.sources.is_none()) {
                Some(camera_options(&key, &rf)?)
            } else {
                if rf.resize.is_some() {
                    return Err(format!(
                        "features.{key}: `resize` applies to camera features (`type: video` or `type: image`, no `field`)"
                    ));
                }
                None
            };
            let own = RawSource {
                topic: rf.topic,
                field: rf.field,
                joints: rf.joints,
                matching: rf.matching,
                tolerance: rf.tolerance,
                on_missing: rf.on_missing,
                stamp: rf.stamp,
                max_drop_ratio: rf.max_drop_ratio,
            };
            let single = rf.sources.is_none();
            let raw_sources = match rf.sources {
                Some(list) => {
                    if own.topic.is_some() || own.field.is_some() {
                        return Err(format!(
                            "features.{key}: give either `topic`/`field` or `sources`, not both"
                        ));
                    }
                    if list.is_empty() {
                        return Err(format!("features.{key}: `sources` is empty"));
                    }
                    // Settings written beside `sources` are defaults for each source.
                    list.into_iter().map(|s| merge(s, &own)).collect::<Vec<_>>()
                }
                None => vec![own],
            };
            let mut sources = Vec::new();
            for (i, s) in raw_sources.into_iter().enumerate() {
                let at = if single {
                    format!("features.{key}")
                } else {
                    format!("features.{key}.sources[{i}]")
                };
                sources.push(make_source(&at, s, &timeline, period, camera.is_some())?);
            }
            features.push(Feature {
                key,
                sources,
                camera,
            });
        }
        for (i, f) in features.iter().enumerate() {
            if features[..i].iter().any(|g| g.key == f.key) {
                return Err(format!("feature `{}` is given twice", f.key));
            }
        }
        Ok(Config {
            fps,
            robot_type: raw.robot_type,
            task: raw.task,
            timeline,
            features,
            msg_path: raw.msg_path,
        })
    }

    /// Every source of every feature, in output order.
    pub fn sources(&self) -> impl Iterator<Item = (&Feature, &Source)> {
        self.features
            .iter()
            .flat_map(|f| f.sources.iter().map(move |s| (f, s)))
    }
}

/// A YAML value as the user wrote it (`1e30`, `.nan`, `ten`), for messages.
fn yaml_text(v: &serde_yaml_ng::Value) -> String {
    match serde_yaml_ng::to_string(v) {
        Ok(s) => s.trim_end().replace('\n', " "),
        Err(_) => format!("{v:?}"),
    }
}

fn parse_fps(v: &serde_yaml_ng::Value) -> std::result::Result<u32, String> {
    let bad = || {
        format!(
            "fps: {} is not a positive integer (frames per second)",
            yaml_text(v)
        )
    };
    let n = v.as_i64().ok_or_else(bad)?;
    if n <= 0 || n > 10_000 {
        return Err(format!(
            "fps: {n} is out of range: give a positive integer up to 10000"
        ));
    }
    Ok(n as u32)
}

fn seconds(what: &str, s: f64) -> std::result::Result<Time, String> {
    if !s.is_finite() || !(0.0..=1e6).contains(&s) {
        return Err(format!(
            "{what}: {s} is not a duration in seconds (0 or more)"
        ));
    }
    Ok((s * NANOS as f64).round() as Time)
}

fn ratio(what: &str, r: f64) -> std::result::Result<f64, String> {
    if !r.is_finite() || !(0.0..=1.0).contains(&r) {
        return Err(format!(
            "{what}: {r} is not a fraction from 0 to 1 (0.05: at most 5% of the ticks; 0: none; 1: no limit)"
        ));
    }
    Ok(r)
}

fn check_feature_name(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() || key.trim() != key {
        return Err(format!(
            "feature name {key:?} is empty or has surrounding spaces"
        ));
    }
    // A camera's key becomes a directory name (videos/KEY/chunk-000/...).
    if key.contains('/') || key.contains("..") || key.contains('\\') {
        return Err(format!(
            "feature name `{key}` may not contain `/`, `\\` or `..` (LeRobot uses it in paths)"
        ));
    }
    if key == "." {
        return Err(format!(
            "feature name `{key}` is not a directory name (LeRobot uses it in paths)"
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(format!(
            "feature name {key:?} has a control character (LeRobot uses it in paths)"
        ));
    }
    if key.len() > MAX_FEATURE_NAME {
        return Err(format!(
            "feature name `{}...` is {} bytes long; a file name takes at most {MAX_FEATURE_NAME} (LeRobot uses it in paths)",
            key.chars().take(20).collect::<String>(),
            key.len()
        ));
    }
    if RESERVED_FEATURES.contains(&key) {
        return Err(format!(
            "feature name `{key}` is reserved: the dataset writer adds it to every frame"
        ));
    }
    Ok(())
}

fn camera_options(key: &str, rf: &RawFeature) -> std::result::Result<Camera, String> {
    let at = format!("features.{key}");
    if rf.sources.is_some() {
        return Err(format!(
            "{at}: a camera feature reads one topic: give `topic`, not `sources`"
        ));
    }
    if let Some(field) = &rf.field {
        return Err(format!(
            "{at}: `field: {field}` with `type`: a camera feature reads the whole image message; remove `field` (or `type` for a numeric feature)"
        ));
    }
    if rf.joints.is_some() {
        return Err(format!(
            "{at}: `joints` applies to numeric features, not cameras"
        ));
    }
    let resize = match rf.resize.as_deref() {
        None => None,
        Some(&[w, h]) if (1..=MAX_RESIZE).contains(&w) && (1..=MAX_RESIZE).contains(&h) => {
            Some((w, h))
        }
        Some(other) => {
            return Err(format!(
                "{at}.resize: {other:?}: give [width, height], each from 1 to {MAX_RESIZE}"
            ))
        }
    };
    Ok(Camera {
        output: rf.kind.unwrap_or_default(),
        resize,
    })
}

fn merge(mut s: RawSource, defaults: &RawSource) -> RawSource {
    s.joints = s.joints.or_else(|| defaults.joints.clone());
    s.matching = s.matching.or(defaults.matching);
    s.tolerance = s.tolerance.or(defaults.tolerance);
    s.on_missing = s.on_missing.or(defaults.on_missing);
    s.stamp = s.stamp.or(defaults.stamp);
    s.max_drop_ratio = s.max_drop_ratio.or(defaults.max_drop_ratio);
    s
}

fn make_source(
    at: &str,
    s: RawSource,
    timeline: &Timeline,
    period: f64,
    camera: bool,
) -> std::result::Result<Source, String> {
    let topic = s.topic.ok_or_else(|| format!("{at}: `topic` is missing"))?;
    let field = match s.field {
        Some(f) => f,
        None if camera => String::new(),
        None => {
            return Err(format!(
                "{at}: `field` is missing (the numeric field to read)"
            ))
        }
    };
    // Default tolerance: half a frame period, so that with `nearest` every message is usable by
    // exactly one tick.
    let tolerance = match s.tolerance {
        Some(t) if t > MAX_TOLERANCE_SECS => {
            return Err(format!(
                "{at}.tolerance: {t} s is more than {MAX_TOLERANCE_SECS} s; for a topic that publishes only on change use `match: asof` with `on_missing: hold`"
            ))
        }
        Some(t) => seconds(&format!("{at}.tolerance"), t)?,
        None => (period / 2.0).round() as Time,
    };
    if let Some(j) = &s.joints {
        if j.is_empty() {
            return Err(format!("{at}.joints: the list is empty"));
        }
        for (i, name) in j.iter().enumerate() {
            if j[..i].contains(name) {
                return Err(format!("{at}.joints: `{name}` is listed twice"));
            }
        }
    }
    let max_drop_ratio = match s.max_drop_ratio {
        Some(r) => ratio(&format!("{at}.max_drop_ratio"), r)?,
        None => timeline.max_drop_ratio,
    };
    Ok(Source {
        topic,
        field,
        joints: s.joints,
        matching: s.matching.unwrap_or_default(),
        tolerance,
        on_missing: s.on_missing.unwrap_or_default(),
        stamp: s.stamp.unwrap_or(timeline.stamp),
        max_drop_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
fps: 10
robot_type: teleop_arm
task: "pick up the cube"
timeline:
  main: /cam_high/image_raw
  stamp: receive
  trim_start: 0.5
  trim_end: 0.25
features:
  observation.state:
    topic: /joint_states
    field: position
    joints: [joint1, joint2]
  action:
    sources:
      - {topic: /arm_cmd, field: "data[0:6]"}
      - {topic: /gripper_cmd, field: data, match: asof, tolerance: 0.2}
"#;

    #[test]
    fn parses_the_documented_example() {
        let c = Config::parse(FULL).unwrap();
        assert_eq!(c.fps, 10);
        assert_eq!(c.robot_type.as_deref(), Some("teleop_arm"));
        assert_eq!(c.timeline.trim_start, 500_000_000);
        assert_eq!(c.timeline.trim_end, 250_000_000);
        assert_eq!(c.timeline.max_delay, 500_000_000);
        let keys: Vec<_> = c.features.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["observation.state", "action"]);
        let state = &c.features[0].sources[0];
        assert_eq!(state.joints.as_deref().unwrap(), ["joint1", "joint2"]);
        assert_eq!(state.tolerance, 50_000_000, "half a frame period at 10 fps");
        assert_eq!(state.matching, Match::Nearest);
        assert_eq!(state.on_missing, OnMissing::Drop);
        let grip = &c.features[1].sources[1];
        assert_eq!(grip.matching, Match::Asof);
        assert_eq!(grip.tolerance, 200_000_000);
        assert_eq!(grip.field, "data");
    }

    #[test]
    fn feature_level_settings_are_defaults_for_sources() {
        let c = Config::parse(
            "fps: 30\nfeatures:\n  a:\n    on_missing: hold\n    stamp: header\n    sources:\n      - {topic: /x, field: data}\n      - {topic: /y, field: data, on_missing: fail}\n",
        )
        .unwrap();
        let s = &c.features[0].sources;
        assert_eq!(s[0].on_missing, OnMissing::Hold);
        assert_eq!(s[1].on_missing, OnMissing::Fail);
        assert_eq!(s[0].stamp, Stamp::Header);
        assert_eq!(s[0].tolerance, 16_666_667);
    }

    #[test]
    fn max_drop_ratio_comes_from_the_source_the_feature_or_the_timeline() {
        let c = Config::parse(
            "fps: 10\ntimeline: {max_drop_ratio: 0.1, record_time: true}\nfeatures:\n  a: {topic: /a, field: data}\n  b:\n    max_drop_ratio: 0.2\n    sources:\n      - {topic: /x, field: data}\n      - {topic: /y, field: data, max_drop_ratio: 0}\n",
        )
        .unwrap();
        assert_eq!(c.timeline.max_drop_ratio, 0.1);
        assert!(c.timeline.record_time);
        let ratios: Vec<f64> = c.sources().map(|(_, s)| s.max_drop_ratio).collect();
        assert_eq!(ratios, [0.1, 0.2, 0.0]);
        let d = Config::parse("fps: 10\nfeatures:\n  a: {topic: /a, field: data}\n").unwrap();
        assert_eq!(d.timeline.max_drop_ratio, DEFAULT_MAX_DROP_RATIO);
        assert_eq!(d.features[0].sources[0].max_drop_ratio, 0.05);
        assert!(!d.timeline.record_time);
    }

    #[test]
    fn a_feature_without_field_is_a_camera() {
        let c = Config::parse(
            "fps: 10\nfeatures:\n  cam: {topic: /cam/image_raw, stamp: header}\n  still: {topic: /c2, type: image, resize: [320, 240], on_missing: hold}\n",
        )
        .unwrap();
        assert_eq!(
            c.features[0].camera,
            Some(Camera {
                output: CameraOutput::Video,
                resize: None
            })
        );
        assert_eq!(c.features[0].sources[0].field, "");
        assert_eq!(c.features[0].sources[0].stamp, Stamp::Header);
        assert_eq!(
            c.features[1].camera,
            Some(Camera {
                output: CameraOutput::Image,
                resize: Some((320, 240))
            })
        );
        assert_eq!(c.features[1].sources[0].on_missing, OnMissing::Hold);
    }

    /// Errors of the config's shape; fps, names, durations and unknown keys are checked through
    /// the command line in tests/hostile_config.rs.
    #[test]
    fn rejects_bad_configs_with_a_clear_line() {
        let cases = [
            (
                "fps: 10\nfeatures: {a: {field: d}}",
                "features.a: `topic` is missing",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, field: d, match: best}}",
                "unknown variant `best`",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, field: d, joints: [j, j]}}",
                "listed twice",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, field: d, type: video}}",
                "remove `field`",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, type: movie}}",
                "unknown variant `movie`",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, resize: [320]}}",
                "give [width, height]",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, resize: [0, 240]}}",
                "give [width, height]",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, field: d, resize: [32, 32]}}",
                "`resize` applies to camera features",
            ),
            (
                "fps: 10\nfeatures: {a: {type: image, sources: [{topic: /x}]}}",
                "give `topic`, not `sources`",
            ),
            ("fps: 10\nfeatures: {}", "`features` is empty"),
            (
                "fps: 10\nfeatures: {a: {sources: []}}",
                "`sources` is empty",
            ),
            (
                "fps: 10\nfeatures: {a: {topic: /x, field: d, sources: [{topic: /y, field: e}]}}",
                "not both",
            ),
        ];
        for (text, want) in cases {
            let err = Config::parse(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }
}
