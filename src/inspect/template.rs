//! `inspect --config-template`: a config that converts as printed, from the bag's index and
//! the first message of each topic (never more of the bag).
//!
//! What it enables: every camera whose first message decodes (one topic per camera, the
//! compressed twin of a raw topic), `observation.state` (JointState `position`, else a
//! pose/odometry/state-like topic, else, without cameras, the busiest numeric topic), and
//! `action` from command-like topics. The fps is what every enabled camera and the state
//! stream can serve, so that no tick is dropped for want of a message; see
//! docs/configuration.md ("The config template").

use std::fmt::Write;
use std::path::Path;

use super::{first_message, probe_image, topics, ImageFacts, ImageProbe};
use crate::align::Grid;
use crate::bag::{self, BagSource};
use crate::config::{MAX_RESIZE, MAX_TOLERANCE_SECS};
use crate::msg::def::{Arity, FieldType, Primitive};
use crate::msg::{Extractor, FieldPath, Schema};
use crate::video::VideoSettings;
use crate::{Result, Time, NANOS};

/// LeRobot's usual rate: faster streams are sampled down to it.
const MAX_FPS: u32 = 30;
/// The fps when no enabled topic has a rate (each holds one message): one frame either way.
const FALLBACK_FPS: u32 = 10;
/// Most fields of one topic proposed as one feature's sources.
const MAX_FIELDS: usize = 6;
/// Added to computed tolerances, so that a message exactly at the bound is not lost to
/// rounding.
const MARGIN: Time = NANOS / 1000;

/// A template and how many features it enables (0: the bag has nothing to convert).
#[derive(Debug, Clone)]
pub struct Template {
    pub text: String,
    pub enabled: usize,
}

/// The template's text; see [`template`].
pub fn config_template(path: &Path) -> Result<String> {
    Ok(template(path)?.text)
}

/// A starting config for the bag at `path`, which converts as printed when the bag has a
/// numeric or image topic with messages. Without one, every topic is listed commented out
/// and `features` is empty (`enabled` is 0), which `convert` refuses.
pub fn template(path: &Path) -> Result<Template> {
    let mut bag = bag::open(path)?;
    let topics = analyse(bag.as_mut());
    let plan = Plan::new(&topics);
    let text = render(&bag.summary().path.display().to_string(), &topics, &plan);
    Ok(Template {
        text,
        enabled: plan.enabled_features(),
    })
}

/// One topic as the template sees it.
#[derive(Debug, Clone)]
struct Topic {
    name: String,
    datatype: String,
    count: u64,
    rate: Option<f64>,
    first: Option<Time>,
    last: Option<Time>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Camera(ImageProbe),
    /// The fields proposed as one feature's sources, each with the number of values it gives
    /// in the first message; and every numeric field of the type.
    Numeric {
        fields: Vec<(String, usize)>,
        all: Vec<String>,
    },
    /// Why the topic gives no feature.
    Nothing(String),
}

impl Topic {
    fn is_camera_ok(&self) -> bool {
        matches!(self.kind, Kind::Camera(Ok(_)))
    }

    fn facts(&self) -> Option<&ImageFacts> {
        match &self.kind {
            Kind::Camera(Ok(f)) => Some(f),
            _ => None,
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(&self.kind, Kind::Numeric { fields, .. } if !fields.is_empty())
    }

    fn short_type(&self) -> String {
        self.datatype.replace("/msg/", "/")
    }

    /// `/x [pkg/T] 20 msgs @ 10.0 Hz, rgb8 64x48` (or `, position: 7 values`).
    fn describe(&self) -> String {
        let mut s = format!(
            "{} [{}] {} msg{}",
            self.name,
            self.datatype,
            self.count,
            if self.count == 1 { "" } else { "s" }
        );
        match self.rate {
            Some(r) => {
                let _ = write!(s, " @ {r:.1} Hz");
            }
            None if self.count > 0 => s.push_str(", no rate"),
            None => {}
        }
        match &self.kind {
            Kind::Camera(Ok(f)) => {
                let _ = write!(s, ", {f}");
            }
            Kind::Camera(Err(e)) => {
                let _ = write!(s, ": not converted: {e}");
            }
            Kind::Numeric { fields, .. } if !fields.is_empty() => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(f, n)| format!("{f}: {n} value{}", if *n == 1 { "" } else { "s" }))
                    .collect();
                let _ = write!(s, ", {}", parts.join(", "));
            }
            Kind::Numeric { .. } => {
                s.push_str(": no proposed field gives values in the first message");
            }
            Kind::Nothing(why) => {
                let _ = write!(s, ": {why}");
            }
        }
        s
    }
}

/// Per topic: what it is, from the index and its first message.
fn analyse(bag: &mut dyn BagSource) -> Vec<Topic> {
    let mut out: Vec<Topic> = topics(bag.summary())
        .iter()
        .map(|t| Topic {
            name: t.topic.to_string(),
            datatype: t.datatype.to_string(),
            count: t.count,
            rate: t.rate(),
            first: t.first,
            last: t.last,
            kind: Kind::Nothing(String::new()),
        })
        .collect();
    // In time order, so that consecutive first-message reads reuse the reader's chunks.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| out[i].first);
    for i in order {
        out[i].kind = kind_of(bag, &out[i]);
    }
    out
}

fn kind_of(bag: &mut dyn BagSource, t: &Topic) -> Kind {
    if t.count == 0 {
        return Kind::Nothing("no messages".into());
    }
    if super::is_image_type(&t.datatype) {
        return match probe_image(bag, &t.name) {
            Some(p) => Kind::Camera(p),
            None => Kind::Nothing("no messages".into()),
        };
    }
    let conns = bag.summary().connections_on(&t.name);
    let msg = match first_message(bag, &conns) {
        Ok(Some(m)) => m,
        Ok(None) => return Kind::Nothing("no messages".into()),
        Err(e) => return Kind::Nothing(format!("first message unreadable: {e}")),
    };
    let conn = &bag.summary().connections[msg.conn];
    let (schema, wire) = match super::decoding(conn) {
        Ok(d) => d,
        Err(e) => return Kind::Nothing(format!("not converted: {e}")),
    };
    let all: Vec<String> = schema
        .numeric_fields()
        .into_iter()
        .filter(|f| !f.starts_with("header."))
        .collect();
    if all.is_empty() {
        return Kind::Nothing("no numeric field".into());
    }
    let values = |field: &str| -> usize {
        let Ok(path) = FieldPath::parse(field) else {
            return 0;
        };
        let Ok(ex) = Extractor::with_encoding(&schema, &path, None, wire) else {
            return 0;
        };
        let mut v = Vec::new();
        ex.extract(msg.data(), &mut v).map_or(0, |()| v.len())
    };
    let fields = proposed_fields(&conn.datatype, &schema)
        .into_iter()
        .map(|alt| alt.into_iter().map(|f| (values(&f), f)).collect::<Vec<_>>())
        .find(|alt| !alt.is_empty() && alt.iter().all(|(n, _)| *n > 0))
        .map(|alt| alt.into_iter().map(|(n, f)| (f, n)).collect())
        .unwrap_or_default();
    Kind::Numeric { fields, all }
}

/// Field lists to propose for one numeric topic, best first; each list is one feature's
/// sources. The first list whose fields all give values in the first message is used.
fn proposed_fields(datatype: &str, schema: &Schema) -> Vec<Vec<String>> {
    let short = datatype.replace("/msg/", "/");
    if short == "sensor_msgs/JointState" {
        return ["position", "velocity", "effort"]
            .iter()
            .map(|f| vec![f.to_string()])
            .collect();
    }
    if short.ends_with("/JointTrajectory") {
        return vec![vec!["points[0].positions".into()]];
    }
    let compiles = |p: &str| {
        FieldPath::parse(p)
            .ok()
            .is_some_and(|path| Extractor::new(schema, &path, None).is_ok())
    };
    let mut fixed = Vec::new();
    let mut variable = Vec::new();
    for f in &schema.root().fields {
        // Absolute times do not survive float32; a header is a stamp, not a feature.
        if f.name == "header" || f.ty == FieldType::Primitive(Primitive::Time) || !compiles(&f.name)
        {
            continue;
        }
        if f.arity == Arity::Variable {
            // A byte array is a blob (point cloud, occupancy grid), not a vector of values.
            if !matches!(
                f.ty,
                FieldType::Primitive(Primitive::Uint8 | Primitive::Int8)
            ) {
                variable.push(f.name.clone());
            }
            continue;
        }
        // `pose.pose` of a PoseWithCovariance: the value without its covariance matrix.
        let inner = format!("{0}.{0}", f.name);
        fixed.push(if compiles(&inner) {
            inner
        } else {
            f.name.clone()
        });
    }
    let mut out = Vec::new();
    if !fixed.is_empty() {
        let poses: Vec<String> = fixed
            .iter()
            .filter(|f| f.starts_with("pose") || f.starts_with("twist"))
            .cloned()
            .collect();
        out.push(if fixed.len() > MAX_FIELDS && !poses.is_empty() {
            poses
        } else {
            fixed.into_iter().take(MAX_FIELDS).collect()
        });
    }
    out.extend(variable.into_iter().map(|f| vec![f]));
    out
}

/// Names that make a topic a command: its values are what the robot was told to do.
const COMMAND_WORDS: [&str; 7] = [
    "cmd", "command", "action", "target", "goal", "setpoint", "teleop",
];

fn is_command(topic: &str, datatype: &str) -> bool {
    let t = topic.to_lowercase();
    COMMAND_WORDS.iter().any(|w| t.contains(w))
        || datatype.ends_with("/JointTrajectory")
        || datatype.to_lowercase().contains("command")
}

/// Names of topics that describe where the robot is.
const STATE_WORDS: [&str; 5] = ["joint", "pose", "odom", "state", "position"];

fn is_state_like(topic: &str, datatype: &str) -> bool {
    let both = format!("{topic} {datatype}").to_lowercase();
    STATE_WORDS.iter().any(|w| both.contains(w)) && !is_command(topic, datatype)
}

fn is_log(datatype: &str) -> bool {
    datatype.ends_with("/Log") || datatype.to_lowercase().contains("diagnostic")
}

/// Topic segments that name an image stream rather than a camera.
const GENERIC_SEGMENTS: [&str; 12] = [
    "image_raw",
    "image",
    "compressed",
    "data",
    "raw",
    "image_rect",
    "image_rect_raw",
    "image_color",
    "image_rect_color",
    "image_mono",
    "image_rect_mono",
    "color_image",
];

/// `Enable Auto Exposure` -> `Enable_Auto_Exposure`: what a feature name may hold.
fn clean(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let c = c.trim_matches('_').to_string();
    // A feature name is a directory name: keep it well under 255 bytes.
    c.chars().take(200).collect()
}

/// Camera names, one per camera topic, distinct where the topics are: the last segment that
/// names a camera (`/cam_high/image_raw` -> `cam_high`, `/device_0/sensor_0/Depth_0/image/data`
/// -> `Depth_0`), the segments joined where that is not enough (`cam1_color`, `cam2_color`).
/// Names that still collide are told apart by [`unique`].
fn camera_names(topics: &[&str]) -> Vec<String> {
    let segs: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            let all: Vec<String> = t.split('/').map(clean).filter(|s| !s.is_empty()).collect();
            let kept: Vec<String> = all
                .iter()
                .filter(|s| !GENERIC_SEGMENTS.contains(&s.to_lowercase().as_str()))
                .cloned()
                .collect();
            match (kept.is_empty(), all.is_empty()) {
                (false, _) => kept,
                (true, false) => vec![all[0].clone()],
                (true, true) => vec!["camera".to_string()],
            }
        })
        .collect();
    let last: Vec<String> = segs
        .iter()
        .map(|s| s.last().expect("non-empty").clone())
        .collect();
    (0..segs.len())
        .map(|i| {
            if last.iter().filter(|n| **n == last[i]).count() > 1 {
                segs[i].join("_")
            } else {
                last[i].clone()
            }
        })
        .collect()
}

/// `base`, or `base_2`, `base_3`... when taken; the name is then taken.
fn unique(used: &mut Vec<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 2;
    while used.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    used.push(name.clone());
    name
}

/// The fps for streams at `rates` (the enabled cameras and the state stream): the slowest,
/// rounded down, so that each has a message for every tick; at most [`MAX_FPS`], at least 1;
/// [`FALLBACK_FPS`] without rates.
fn choose_fps(rates: &[f64]) -> u32 {
    let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    if !slowest.is_finite() {
        return FALLBACK_FPS;
    }
    (whole(slowest).max(1.0) as u32).min(MAX_FPS)
}

/// `rate` rounded down; the relative epsilon absorbs float error in (n - 1) / span, not real
/// rates under an integer.
fn whole(rate: f64) -> f64 {
    (rate * (1.0 + 1e-9)).floor()
}

/// A size SVT-AV1 (the default codec) accepts for a `width` x `height` camera: None when it
/// takes it as it is; else the smallest even size of about the same aspect with both sides at
/// least 64.
fn av1_size(width: u32, height: u32) -> Option<(u32, u32)> {
    let video = VideoSettings::default();
    if video.check_size(width, height).is_ok() || width == 0 || height == 0 {
        return None;
    }
    let scale = (64.0 / f64::from(width.min(height))).max(1.0);
    let even = |x: u32| -> u32 {
        let n = (f64::from(x) * scale).ceil() as u32;
        (n + n % 2).clamp(64, MAX_RESIZE)
    };
    Some((even(width), even(height)))
}

/// Seconds for a config, rounded up to the millisecond.
fn secs(t: Time) -> String {
    let ms = (t + 999_999).div_euclid(1_000_000);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// What a camera's enabled topic is, and its twin shown commented out.
#[derive(Debug, Clone)]
struct CameraPlan {
    key: String,
    /// Indices into the topics: the one read, and its raw or compressed twin.
    topic: usize,
    twin: Option<usize>,
    enabled: bool,
    /// Why it is commented out.
    off: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    State,
    Action,
    Other,
}

/// A numeric feature: its topics (with their fields) and whether it is enabled.
#[derive(Debug, Clone)]
struct NumericPlan {
    key: String,
    role: Role,
    topics: Vec<usize>,
    enabled: bool,
    off: Option<String>,
}

/// What the template enables and how: fps, the grid, and each source's rule.
#[derive(Debug)]
struct Plan {
    cameras: Vec<CameraPlan>,
    numeric: Vec<NumericPlan>,
    fps: u32,
    fps_why: String,
    /// `timeline.main`, when the enabled topics' ranges do not overlap.
    main: Option<usize>,
    t0: Time,
    end: Time,
}

/// How one enabled source picks messages.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    hold: bool,
    /// None: the default (half a frame period).
    tolerance: Option<Time>,
    why: String,
}

impl Plan {
    fn new(topics: &[Topic]) -> Plan {
        let mut used = Vec::new();
        let cameras = plan_cameras(topics, &mut used);
        let camera_on = cameras.iter().any(|c| c.enabled);
        let mut numeric = plan_numeric(topics, camera_on, &mut used);

        let mut rated: Vec<(f64, usize)> = cameras
            .iter()
            .filter(|c| c.enabled)
            .map(|c| c.topic)
            .chain(
                numeric
                    .iter()
                    .filter(|n| n.enabled && n.role != Role::Action)
                    .flat_map(|n| n.topics.iter().copied()),
            )
            .filter_map(|i| topics[i].rate.map(|r| (r, i)))
            .collect();
        rated.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rates: Vec<f64> = rated.iter().map(|r| r.0).collect();
        let fps = choose_fps(&rates);
        let fps_why = match rated.first() {
            None if cameras.iter().all(|c| !c.enabled) && numeric.iter().all(|n| !n.enabled) => {
                "nothing enabled".to_string()
            }
            None => "no enabled topic has two messages, so no rate to follow: each episode is one frame"
                .to_string(),
            Some(&(r, i)) if whole(r) < 1.0 => format!(
                "the lowest rate; {} runs at {r:.2} Hz and is held between its messages",
                topics[i].name
            ),
            Some(&(r, i)) if fps == MAX_FPS && r >= f64::from(MAX_FPS + 1) => format!(
                "LeRobot's usual rate; the slowest enabled stream, {}, runs at {r:.1} Hz, so up to {} works",
                topics[i].name,
                whole(r)
            ),
            Some(&(r, i)) => format!(
                "{} (the slowest enabled {}) runs at {r:.1} Hz: a higher fps would drop ticks, and each dropped tick plays the rest of the episode earlier",
                topics[i].name,
                if topics[i].is_camera_ok() { "camera" } else { "stream" }
            ),
        };

        // A one-message source squeezes the episode to its time: leave it out when others
        // would give more than twice the frames without it.
        let sources = |cams: &[CameraPlan], nums: &[NumericPlan]| -> Vec<usize> {
            cams.iter()
                .filter(|c| c.enabled)
                .map(|c| c.topic)
                .chain(
                    nums.iter()
                        .filter(|n| n.enabled)
                        .flat_map(|n| n.topics.clone()),
                )
                .collect()
        };
        let mut cameras = cameras;
        let all = sources(&cameras, &numeric);
        let multi: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| topics[i].count > 1)
            .collect();
        if !multi.is_empty() {
            let without = ticks(topics, &multi, fps);
            let off = |i: usize| -> Option<String> {
                if topics[i].count != 1 {
                    return None;
                }
                let mut with = multi.clone();
                with.push(i);
                let n = ticks(topics, &with, fps);
                (n * 2 < without).then(|| {
                    format!(
                        "one message: enabling it cuts each episode to {n} frame{} (from {without})",
                        if n == 1 { "" } else { "s" }
                    )
                })
            };
            for c in cameras.iter_mut().filter(|c| c.enabled) {
                if let Some(why) = off(c.topic) {
                    c.enabled = false;
                    c.off = Some(why);
                }
            }
            for n in numeric.iter_mut().filter(|n| n.enabled) {
                if let Some(why) = n.topics.iter().find_map(|&i| off(i)) {
                    n.enabled = false;
                    n.off = Some(why);
                }
            }
        }
        let on = sources(&cameras, &numeric);
        let (main, t0, end) = grid_range(topics, &on);
        Plan {
            cameras,
            numeric,
            fps,
            fps_why,
            main,
            t0,
            end,
        }
    }

    fn enabled_features(&self) -> usize {
        self.cameras.iter().filter(|c| c.enabled).count()
            + self.numeric.iter().filter(|n| n.enabled).count()
    }

    fn frames(&self) -> u64 {
        Grid {
            t0: self.t0,
            end: self.end,
            fps: self.fps,
        }
        .len()
    }

    /// The rule of topic `t` as a source of a feature with `role`.
    fn rule(&self, t: &Topic, role: Option<Role>) -> Rule {
        let period = NANOS / Time::from(self.fps);
        let rate_period = t.rate.map(|r| (NANOS as f64 / r) as Time);
        let first = t.first.unwrap_or(self.t0);
        let slower = t.rate.is_some_and(|r| whole(r) < f64::from(self.fps));
        if role == Some(Role::Action) || slower {
            // The latest message at or before each tick, held until the next: the command in
            // force, or a slow stream sampled. The tolerance only has to reach the message
            // in force at the first tick.
            let mut tol = period.max(rate_period.map_or(0, |p| p + p / 2));
            tol = tol.max(self.t0 - first);
            let why = if role == Some(Role::Action) {
                "a command holds until the next one"
            } else {
                "slower than fps: its last value is held"
            };
            return Rule {
                hold: true,
                tolerance: Some(cap(tol + MARGIN)),
                why: why.into(),
            };
        }
        let mut tol = None;
        let mut why = String::new();
        if t.count == 1 {
            let need = (first - self.t0).abs() + MARGIN;
            if need > period / 2 {
                tol = Some(cap(need));
                why = "its one message must reach the first tick".into();
            }
        } else if let Some(r) = t.rate {
            if r < 2.0 * f64::from(self.fps) {
                tol = Some(period);
                why = format!(
                    "one frame period: at {r:.1} Hz, about the fps, a message can sit half a period from a tick, plus jitter"
                );
            }
            if first > self.t0 {
                let need = first - self.t0 + rate_period.unwrap_or(0) / 2 + MARGIN;
                if tol.is_none_or(|t| t < need) {
                    tol = Some(cap(need));
                    why = "it starts after the first tick".into();
                }
            }
        }
        Rule {
            hold: false,
            tolerance: tol,
            why,
        }
    }
}

fn cap(t: Time) -> Time {
    t.min((MAX_TOLERANCE_SECS * NANOS as f64) as Time)
}

/// The grid the enabled topics `on` give: from the latest first message to the earliest last
/// one; when that is empty (topics of one message each, at different times),
/// `timeline.main` is the topic that ends first, and the grid its range.
fn grid_range(topics: &[Topic], on: &[usize]) -> (Option<usize>, Time, Time) {
    let first = |i: usize| topics[i].first.unwrap_or(0);
    let last = |i: usize| topics[i].last.unwrap_or(0);
    let t0 = on.iter().map(|&i| first(i)).max().unwrap_or(0);
    let end = on.iter().map(|&i| last(i)).min().unwrap_or(0);
    if t0 <= end {
        return (None, t0, end);
    }
    let main = *on
        .iter()
        .min_by_key(|&&i| last(i))
        .expect("t0 > end needs a topic");
    (Some(main), first(main), end)
}

fn ticks(topics: &[Topic], on: &[usize], fps: u32) -> u64 {
    let (_, t0, end) = grid_range(topics, on);
    Grid { t0, end, fps }.len()
}

/// Cameras: raw topics paired with their `/compressed` twin; the compressed one is read when
/// it decodes (less to read), the raw one otherwise.
fn plan_cameras(topics: &[Topic], used: &mut Vec<String>) -> Vec<CameraPlan> {
    let image = |i: usize| matches!(topics[i].kind, Kind::Camera(_));
    let mut groups: Vec<(usize, Option<usize>)> = Vec::new();
    for i in (0..topics.len()).filter(|&i| image(i)) {
        let compressed = topics[i].short_type() == "sensor_msgs/CompressedImage";
        if compressed {
            let raw = topics[i].name.strip_suffix("/compressed");
            if let Some(r) = raw.and_then(|r| topics.iter().position(|t| t.name == r)) {
                if image(r) && topics[r].short_type() == "sensor_msgs/Image" {
                    continue; // grouped with its raw twin
                }
            }
        }
        let twin = if compressed {
            None
        } else {
            let name = format!("{}/compressed", topics[i].name);
            topics
                .iter()
                .position(|t| t.name == name && t.short_type() == "sensor_msgs/CompressedImage")
        };
        groups.push((i, twin));
    }
    let names: Vec<&str> = groups.iter().map(|g| topics[g.0].name.as_str()).collect();
    let names = camera_names(&names);
    groups
        .iter()
        .zip(names)
        .map(|(&(raw, twin), name)| {
            let key = unique(used, &format!("observation.images.{name}"));
            let (topic, twin) = match twin {
                Some(c) if topics[c].is_camera_ok() || !topics[raw].is_camera_ok() => {
                    (c, Some(raw))
                }
                Some(c) => (raw, Some(c)),
                None => (raw, None),
            };
            let enabled = topics[topic].is_camera_ok();
            CameraPlan {
                key,
                topic,
                twin,
                enabled,
                off: (!enabled).then(|| "its first message does not decode".to_string()),
            }
        })
        .collect()
}

/// `observation.state`, `action` and the other numeric topics (commented out).
fn plan_numeric(topics: &[Topic], camera_on: bool, used: &mut Vec<String>) -> Vec<NumericPlan> {
    let numeric: Vec<usize> = (0..topics.len())
        .filter(|&i| topics[i].is_numeric())
        .collect();
    let command = |i: usize| is_command(&topics[i].name, &topics[i].datatype);
    // State: JointState, then state-like topics, then (without cameras) any numeric topic,
    // logs last; topics with several messages before those with one, then the busiest.
    let tier = |i: usize| {
        let t = &topics[i];
        if t.short_type() == "sensor_msgs/JointState" {
            0
        } else if is_state_like(&t.name, &t.datatype) {
            1
        } else if !is_log(&t.datatype) {
            2
        } else {
            3
        }
    };
    let state = numeric
        .iter()
        .copied()
        .filter(|&i| !command(i))
        .filter(|&i| tier(i) <= 1 || !camera_on)
        .min_by_key(|&i| {
            (
                tier(i),
                topics[i].count < 2,
                std::cmp::Reverse(topics[i].count),
            )
        });
    let state_key = |i: usize| {
        if tier(i) <= 1 {
            "observation.state".to_string()
        } else {
            format!("observation.{}", clean(&topics[i].name))
        }
    };
    // Action: the command topics, in bag order; those in the state's namespace when some are.
    let namespace = |i: usize| -> Option<String> {
        let segs: Vec<&str> = topics[i]
            .name
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        (segs.len() > 1).then(|| segs[0].to_string())
    };
    let commands: Vec<usize> = numeric.iter().copied().filter(|&i| command(i)).collect();
    let ns = state.and_then(namespace);
    let same: Vec<usize> = commands
        .iter()
        .copied()
        .filter(|&i| ns.is_some() && namespace(i) == ns)
        .collect();
    let action = if same.is_empty() { commands } else { same };

    let mut out = Vec::new();
    if let Some(s) = state {
        out.push(NumericPlan {
            key: unique(used, &state_key(s)),
            role: Role::State,
            topics: vec![s],
            enabled: true,
            off: None,
        });
    }
    if !action.is_empty() {
        out.push(NumericPlan {
            key: unique(used, "action"),
            role: Role::Action,
            topics: action.clone(),
            enabled: true,
            off: None,
        });
    }
    for &i in &numeric {
        if Some(i) == state || action.contains(&i) {
            continue;
        }
        out.push(NumericPlan {
            key: unique(used, &format!("observation.{}", clean(&topics[i].name))),
            role: Role::Other,
            topics: vec![i],
            enabled: false,
            off: None,
        });
    }
    out
}

/// `"/x"`: a YAML string that holds anything a topic name holds (spaces included).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// A field path as written: plain when it is only names and dots, quoted when it holds
/// brackets (indicators inside a YAML flow map).
fn yaml_field(f: &str) -> String {
    if f.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        f.to_string()
    } else {
        yaml_str(f)
    }
}

/// `key: value` and an aligned `# comment`.
fn line(text: &str, comment: &str) -> String {
    if comment.is_empty() {
        text.to_string()
    } else {
        format!("{text:<28} # {comment}")
    }
}

/// One feature's lines, written enabled or commented out.
struct Block {
    facts: Vec<String>,
    key: String,
    body: Vec<String>,
    enabled: bool,
}

impl Block {
    fn write(&self, out: &mut String) {
        for f in &self.facts {
            let _ = writeln!(out, "  # {f}");
        }
        let p = if self.enabled { "" } else { "# " };
        let _ = writeln!(out, "  {p}{}:", self.key);
        for b in &self.body {
            let _ = writeln!(out, "  {p}  {b}");
        }
    }
}

fn camera_block(topics: &[Topic], plan: &Plan, c: &CameraPlan) -> Block {
    let t = &topics[c.topic];
    let mut facts = vec![match &c.off {
        Some(why) if t.is_camera_ok() => format!("{}: {why}", t.describe()),
        _ => t.describe(),
    }];
    let mut body = vec![format!("topic: {}", yaml_str(&t.name))];
    if let Some(w) = c.twin.filter(|&w| !topics[w].is_camera_ok()) {
        facts.push(topics[w].describe());
    }
    if let Some(w) = c.twin.filter(|&w| topics[w].is_camera_ok()) {
        let twin = &topics[w];
        let what = if twin.short_type() == "sensor_msgs/Image" {
            "the same camera uncompressed: more bytes to read, nothing to decode"
        } else {
            "the same camera compressed: fewer bytes to read"
        };
        facts.push(format!(
            "{}: {what}; to use it, swap the `topic` lines",
            twin.describe()
        ));
        body.push(format!("# topic: {}", yaml_str(&twin.name)));
    }
    body.push(line(
        "type: video",
        "video | image (lossless PNG in the data parquet)",
    ));
    if let Some(f) = t.facts() {
        if matches!(f.encoding.as_str(), "mono16" | "16UC1") {
            facts.push(
                "16-bit depth: written as 8-bit grey video (each value's high byte; docs/cameras.md)"
                    .into(),
            );
        }
        if let Some((w, h)) = av1_size(f.width, f.height) {
            body.push(line(
                &format!("resize: [{w}, {h}]"),
                &format!(
                    "the default codec (--vcodec av1, SVT-AV1) refuses {}x{}; to keep that size, delete this line and convert with --vcodec h264",
                    f.width, f.height
                ),
            ));
        }
    }
    push_rule(&mut body, &plan.rule(t, None), plan.fps);
    Block {
        facts,
        key: c.key.clone(),
        body,
        enabled: c.enabled,
    }
}

fn push_rule(body: &mut Vec<String>, rule: &Rule, fps: u32) {
    if rule.hold {
        body.push("match: asof".into());
        body.push(line("on_missing: hold", &rule.why));
    }
    if let Some(tol) = rule.tolerance {
        // Written only where it differs from the default, half a frame period.
        if secs(tol) != secs(NANOS / Time::from(fps) / 2) {
            let why = if rule.hold { "" } else { rule.why.as_str() };
            body.push(line(&format!("tolerance: {}", secs(tol)), why));
        }
    }
}

fn numeric_block(topics: &[Topic], plan: &Plan, n: &NumericPlan) -> Block {
    let mut facts: Vec<String> = n.topics.iter().map(|&i| topics[i].describe()).collect();
    if let Some(why) = &n.off {
        facts.push(format!("not enabled: {why}"));
    }
    let sources: Vec<(usize, &str)> = n
        .topics
        .iter()
        .flat_map(|&i| match &topics[i].kind {
            Kind::Numeric { fields, .. } => fields.iter().map(|(f, _)| (i, f.as_str())).collect(),
            _ => Vec::new(),
        })
        .collect();
    let all = |i: usize| match &topics[i].kind {
        Kind::Numeric { all, .. } => all.join(", "),
        _ => String::new(),
    };
    let role = Some(n.role);
    let mut body = Vec::new();
    if let [(i, field)] = sources.as_slice() {
        body.push(format!("topic: {}", yaml_str(&topics[*i].name)));
        body.push(line(
            &format!("field: {}", yaml_field(field)),
            &format!("numeric fields: {}", all(*i)),
        ));
        push_rule(&mut body, &plan.rule(&topics[*i], role), plan.fps);
    } else {
        let rules: Vec<Rule> = sources
            .iter()
            .map(|(i, _)| plan.rule(&topics[*i], role))
            .collect();
        // Shared settings once, beside `sources`; a tolerance per source.
        if rules.iter().all(|r| r.hold) {
            body.push("match: asof".into());
            body.push(line("on_missing: hold", &rules[0].why));
        }
        let mut ts: Vec<usize> = sources.iter().map(|s| s.0).collect();
        ts.dedup();
        let fields: Vec<String> = ts
            .iter()
            .map(|&i| format!("{}: {}", topics[i].name, all(i)))
            .collect();
        body.push(line(
            "sources:",
            &format!("numeric fields of {}", fields.join("; ")),
        ));
        let default = secs(NANOS / Time::from(plan.fps) / 2);
        for ((i, field), rule) in sources.iter().zip(&rules) {
            let mut s = format!(
                "- {{topic: {}, field: {}",
                yaml_str(&topics[*i].name),
                yaml_field(field)
            );
            if rule.hold && !rules.iter().all(|r| r.hold) {
                s.push_str(", match: asof, on_missing: hold");
            }
            if let Some(t) = rule.tolerance.filter(|t| secs(*t) != default) {
                let _ = write!(s, ", tolerance: {}", secs(t));
            }
            s.push('}');
            body.push(format!("  {s}"));
        }
    }
    Block {
        facts,
        key: n.key.clone(),
        body,
        enabled: n.enabled,
    }
}

fn render(bag: &str, topics: &[Topic], plan: &Plan) -> String {
    let start = topics.iter().filter_map(|t| t.first).min().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "# bagstream config for {bag}");
    let _ = writeln!(
        out,
        "# Made by `bagstream inspect --config-template`: it converts as printed. The likely"
    );
    let _ = writeln!(
        out,
        "# features are enabled, the other topics listed commented out. Reference: docs/configuration.md."
    );
    let mut blocks = Vec::new();
    let enabled_first = plan
        .numeric
        .iter()
        .filter(|n| n.enabled && n.role != Role::Other)
        .map(|n| numeric_block(topics, plan, n))
        .chain(
            plan.cameras
                .iter()
                .filter(|c| c.enabled)
                .map(|c| camera_block(topics, plan, c)),
        );
    blocks.extend(enabled_first);
    let enabled: Vec<String> = blocks.iter().map(|b| b.key.clone()).collect();
    if enabled.is_empty() {
        let _ = writeln!(
            out,
            "# No topic of this bag has numeric fields or decodable images with messages, so no"
        );
        let _ = writeln!(
            out,
            "# feature is enabled and `convert` refuses this config (`features` is empty)."
        );
    } else {
        let frames = plan.frames();
        let _ = writeln!(
            out,
            "# Enabled: {}; {frames} frame{} from this bag, from {:.3} s to {:.3} s after its start.",
            enabled.join(", "),
            if frames == 1 { "" } else { "s" },
            (plan.t0 - start) as f64 / 1e9,
            (plan.end - start) as f64 / 1e9,
        );
    }
    let _ = writeln!(
        out,
        "{}",
        line(&format!("fps: {}", plan.fps), &plan.fps_why)
    );
    let _ = writeln!(out, "robot_type: unknown");
    let _ = writeln!(out, "task: \"describe the task here\"");
    let _ = writeln!(out, "timeline:");
    if let Some(m) = plan.main {
        let _ = writeln!(
            out,
            "{}",
            line(
                &format!("  main: {}", yaml_str(&topics[m].name)),
                "the enabled topics do not overlap in time: the grid follows this one"
            )
        );
    }
    let _ = writeln!(out, "{}", line("  stamp: receive", "receive | header"));
    let _ = writeln!(out, "  trim_start: 0.0");
    let _ = writeln!(out, "  trim_end: 0.0");
    let _ = writeln!(
        out,
        "features:{}",
        if enabled.is_empty() { " {}" } else { "" }
    );
    // The rest in bag order: commented-out features, then a line per topic without one.
    let mut shown: Vec<usize> = Vec::new();
    for c in &plan.cameras {
        shown.push(c.topic);
        shown.extend(c.twin);
    }
    for n in &plan.numeric {
        shown.extend(n.topics.iter().copied());
    }
    let mut rest: Vec<(usize, Block)> = Vec::new();
    for c in plan.cameras.iter().filter(|c| !c.enabled) {
        rest.push((c.topic, camera_block(topics, plan, c)));
    }
    for n in plan
        .numeric
        .iter()
        .filter(|n| !n.enabled || n.role == Role::Other)
    {
        if !n.enabled {
            rest.push((n.topics[0], numeric_block(topics, plan, n)));
        }
    }
    rest.sort_by_key(|r| r.0);
    for b in &blocks {
        b.write(&mut out);
    }
    let mut rest = rest.into_iter().peekable();
    for (i, t) in topics.iter().enumerate() {
        while let Some((_, b)) = rest.next_if(|r| r.0 == i) {
            b.write(&mut out);
        }
        if !shown.contains(&i) {
            let _ = writeln!(out, "  # {}", t.describe());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::CameraKind;
    use crate::config::Config;

    #[test]
    fn camera_names_differ_where_the_topics_do() {
        assert_eq!(
            camera_names(&[
                "/device_0/sensor_0/Depth_0/image/data",
                "/device_0/sensor_1/Color_0/image/data"
            ]),
            ["Depth_0", "Color_0"]
        );
        assert_eq!(
            camera_names(&["/cam_high/image_raw", "/cam_wrist/image_raw"]),
            ["cam_high", "cam_wrist"]
        );
        assert_eq!(
            camera_names(&["/camera/color/image_raw", "/camera/depth/image_rect_raw"]),
            ["color", "depth"]
        );
        assert_eq!(
            camera_names(&["/cam1/color/image_raw", "/cam2/color/image_raw", "/image"]),
            ["cam1_color", "cam2_color", "image"]
        );
        // Only generic segments, or spaces: still a name the config accepts.
        assert_eq!(
            camera_names(&["/image_raw", "/my cam/image"]),
            ["image_raw", "my_cam"]
        );
        // Topics that differ only in generic segments collide here; `unique` tells them apart.
        let mut used = Vec::new();
        let names: Vec<String> = camera_names(&["/cam/image_raw", "/cam/image_rect"])
            .iter()
            .map(|n| unique(&mut used, &format!("observation.images.{n}")))
            .collect();
        assert_eq!(
            names,
            ["observation.images.cam", "observation.images.cam_2"]
        );
    }

    #[test]
    fn fps_is_the_slowest_rate_rounded_down_at_most_30() {
        assert_eq!(choose_fps(&[10.0, 50.0]), 10);
        assert_eq!(choose_fps(&[29.97, 30.0]), 29);
        assert_eq!(choose_fps(&[5.95]), 5);
        assert_eq!(choose_fps(&[99.8]), 30);
        assert_eq!(choose_fps(&[0.16]), 1, "never 0");
        assert_eq!(choose_fps(&[]), FALLBACK_FPS);
        // (n - 1) / span in floating point may land just under an exact rate.
        assert_eq!(choose_fps(&[19.0 / 1.9]), 10);
    }

    #[test]
    fn av1_sizes_keep_the_aspect_and_reach_64() {
        assert_eq!(av1_size(640, 480), None);
        assert_eq!(av1_size(64, 64), None);
        assert_eq!(av1_size(64, 48), Some((86, 64)));
        assert_eq!(av1_size(32, 32), Some((64, 64)));
        // Odd sizes: yuv420p needs even sides.
        assert_eq!(av1_size(641, 481), Some((642, 482)));
        for (w, h) in [(3, 2), (1, 1000), (48, 64), (100, 63)] {
            let (nw, nh) = av1_size(w, h).unwrap();
            assert!(
                VideoSettings::default().check_size(nw, nh).is_ok(),
                "{w}x{h} -> {nw}x{nh}"
            );
        }
    }

    #[test]
    fn commands_and_states_are_told_apart() {
        for (topic, ty) in [
            ("/arm_cmd", "std_msgs/Float64MultiArray"),
            ("/turtle1/cmd_vel", "geometry_msgs/Twist"),
            ("/joint_command", "sensor_msgs/JointState"),
            ("/arm/goal_pose", "geometry_msgs/PoseStamped"),
            ("/leader/teleop", "sensor_msgs/JointState"),
            ("/arm_controller/follow", "trajectory_msgs/JointTrajectory"),
        ] {
            assert!(is_command(topic, ty), "{topic}");
            assert!(!is_state_like(topic, ty), "{topic}");
        }
        for (topic, ty) in [
            ("/joint_states", "sensor_msgs/JointState"),
            ("/turtle1/pose", "turtlesim/Pose"),
            ("/base_pose_ground_truth", "nav_msgs/Odometry"),
        ] {
            assert!(!is_command(topic, ty), "{topic}");
            assert!(is_state_like(topic, ty), "{topic}");
        }
        assert!(!is_state_like("/chatter", "std_msgs/Int32"));
        assert!(is_log("rosgraph_msgs/Log"));
    }

    const S: Time = NANOS;

    fn topic(name: &str, datatype: &str, count: u64, span: (Time, Time), kind: Kind) -> Topic {
        let (first, last) = span;
        Topic {
            name: name.into(),
            datatype: datatype.into(),
            count,
            rate: (count > 1 && last > first)
                .then(|| (count - 1) as f64 * NANOS as f64 / (last - first) as f64),
            first: Some(first),
            last: Some(last),
            kind,
        }
    }

    fn camera(name: &str, datatype: &str, count: u64, span: (Time, Time)) -> Topic {
        let kind = if datatype.ends_with("CompressedImage") {
            CameraKind::Compressed
        } else {
            CameraKind::Raw
        };
        let facts = ImageFacts {
            kind,
            encoding: "rgb8".into(),
            width: 640,
            height: 480,
        };
        topic(name, datatype, count, span, Kind::Camera(Ok(facts)))
    }

    fn numeric(name: &str, datatype: &str, count: u64, span: (Time, Time), field: &str) -> Topic {
        let kind = Kind::Numeric {
            fields: vec![(field.into(), 1)],
            all: vec![field.into()],
        };
        topic(name, datatype, count, span, kind)
    }

    fn enabled(plan: &Plan, topics: &[Topic]) -> Vec<(String, Vec<String>)> {
        let cams = plan.cameras.iter().filter(|c| c.enabled);
        let nums = plan.numeric.iter().filter(|n| n.enabled);
        nums.map(|n| {
            let t = n.topics.iter().map(|&i| topics[i].name.clone()).collect();
            (n.key.clone(), t)
        })
        .chain(cams.map(|c| (c.key.clone(), vec![topics[c.topic].name.clone()])))
        .collect()
    }

    #[test]
    fn a_teleop_recording_gets_state_action_cameras_and_the_cameras_fps() {
        let topics = vec![
            numeric(
                "/joint_states",
                "sensor_msgs/JointState",
                1001,
                (0, 10 * S),
                "position",
            ),
            camera("/cam/image_raw", "sensor_msgs/Image", 151, (0, 10 * S)),
            camera(
                "/cam/image_raw/compressed",
                "sensor_msgs/CompressedImage",
                151,
                (0, 10 * S),
            ),
            camera("/wrist/image_raw", "sensor_msgs/Image", 301, (0, 10 * S)),
            numeric(
                "/arm_cmd",
                "std_msgs/Float64MultiArray",
                101,
                (S, 10 * S),
                "data",
            ),
            numeric(
                "/ee_pose",
                "geometry_msgs/PoseStamped",
                301,
                (0, 10 * S),
                "pose",
            ),
            // A snapshot: enabling it would make the episode one frame long.
            camera("/snapshot", "sensor_msgs/Image", 1, (5 * S, 5 * S)),
        ];
        let plan = Plan::new(&topics);
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            enabled(&plan, &topics),
            [
                ("observation.state".to_string(), names(&["/joint_states"])),
                ("action".to_string(), names(&["/arm_cmd"])),
                (
                    "observation.images.cam".to_string(),
                    names(&["/cam/image_raw/compressed"])
                ),
                (
                    "observation.images.wrist".to_string(),
                    names(&["/wrist/image_raw"])
                ),
            ]
        );
        // The 15 Hz camera is the slowest enabled stream.
        assert_eq!(plan.fps, 15);
        assert!(plan
            .fps_why
            .starts_with("/cam/image_raw/compressed (the slowest enabled camera)"));
        let snapshot = plan
            .cameras
            .iter()
            .find(|c| topics[c.topic].name == "/snapshot");
        assert!(snapshot
            .unwrap()
            .off
            .as_ref()
            .unwrap()
            .contains("cuts each episode to 1 frame"));
        // The grid starts at the first command: 9 s at 15 fps.
        assert_eq!((plan.t0, plan.end, plan.frames()), (S, 10 * S, 136));
        // At 15 Hz, the fps: one frame period, not half. The command is held.
        let cam = plan.rule(&topics[2], None);
        assert_eq!((cam.hold, cam.tolerance), (false, Some(S / 15)));
        let cmd = plan.rule(&topics[4], Some(Role::Action));
        assert!(cmd.hold);
        assert_eq!(
            cmd.tolerance,
            Some(135 * S / 1000 + MARGIN),
            "1.5 periods of the 11.1 Hz commands, more than a frame at 15 fps"
        );
        // The 100 Hz joints: the default tolerance.
        assert_eq!(plan.rule(&topics[0], Some(Role::State)).tolerance, None);
    }

    #[test]
    fn single_messages_at_different_times_get_a_main_topic() {
        let topics = vec![
            camera("/image", "sensor_msgs/Image", 1, (0, 0)),
            numeric(
                "/pose",
                "geometry_msgs/Pose",
                1,
                (S / 1000, S / 1000),
                "position",
            ),
        ];
        let plan = Plan::new(&topics);
        assert_eq!(plan.fps, FALLBACK_FPS);
        assert_eq!(plan.main, Some(0), "the topic that ends first");
        assert_eq!(plan.frames(), 1);
        assert_eq!(
            plan.rule(&topics[1], Some(Role::State)).tolerance,
            None,
            "1 ms < 50 ms"
        );
        let text = render("x.bag", &topics, &plan);
        assert!(text.contains("  main: \"/image\""), "{text}");
        Config::parse(&text).expect("the template parses");
    }

    #[test]
    fn without_a_usable_topic_nothing_is_enabled() {
        let topics = vec![topic(
            "/chatter",
            "std_msgs/String",
            2,
            (0, S),
            Kind::Nothing("no numeric field".into()),
        )];
        let plan = Plan::new(&topics);
        assert_eq!(plan.enabled_features(), 0);
        let text = render("x.bag", &topics, &plan);
        assert!(
            text.contains(
                "features: {}\n  # /chatter [std_msgs/String] 2 msgs @ 1.0 Hz: no numeric field\n"
            ),
            "{text}"
        );
        assert!(Config::parse(&text)
            .unwrap_err()
            .contains("`features` is empty"));
    }

    #[test]
    fn tolerances_are_written_rounded_up_to_the_millisecond() {
        assert_eq!(secs(100_000_000), "0.100");
        assert_eq!(secs(33_333_333), "0.034");
        assert_eq!(secs(60 * NANOS), "60.000");
    }
}
