//! Planning: the config resolved against one bag, from its index and the first and last
//! message of each source, before any window is read. What a plan holds is all the pipeline
//! needs to stream the bag into one episode.

use std::path::{Path, PathBuf};

use crate::align::{Grid, SourceRule};
use crate::bag::{self, BagSource, Connection, OpenOptions, RawMessage};
use crate::camera::{ImageDecoder, RgbImage};
use crate::config::{CameraOutput, Config, Stamp};
use crate::dataset::{DatasetSpec, FeatureKind, FeatureSpec};
use crate::msg::{DefinitionStore, Encoding, Extractor, FieldPath, Schema, StampReader};
use crate::{Error, Result, Time, NANOS};

/// A camera source's decoding, resolved against one bag.
pub struct CameraPlan {
    pub output: CameraOutput,
    /// Per connection index of the bag: the decoder for that connection, when it is on this
    /// source's topic. Shared by the decode workers.
    pub decoders: Vec<Option<ImageDecoder>>,
    /// The size of the topic's first frame.
    pub first_size: (u32, u32),
    /// The feature's size: `resize`, or the first frame's.
    pub size: (u32, u32),
    /// Frames of another size are resized (set when the config gives `resize`).
    pub resize: bool,
}

impl CameraPlan {
    /// Decode calls so far over all connections.
    pub fn decoded(&self) -> u64 {
        self.decoders.iter().flatten().map(|d| d.decoded()).sum()
    }
}

/// One configured source, resolved against one bag.
pub struct SourcePlan {
    pub feature: usize,
    pub topic: String,
    pub field: String,
    /// Per connection index of the bag: the extractor for that connection, when it is on
    /// this source's topic.
    pub extractors: Vec<Option<Extractor>>,
    /// Per connection, when the source uses header stamps.
    pub stamps: Vec<Option<StampReader>>,
    /// Stamps are the storage's publish times (`stamp: publish`).
    pub publish: bool,
    /// Number of values each message gives.
    pub len: usize,
    pub names: Vec<String>,
    pub rule: SourceRule,
    /// Stamps of the first and last message.
    pub first: Time,
    pub last: Time,
    /// How far the first message's stamp runs ahead of its receive time (0 for receive
    /// stamps): header-stamped messages for the first tick may be received that much earlier.
    pub lead: Time,
    /// Set for a camera source, whose messages are kept whole and decoded only when picked.
    pub camera: Option<CameraPlan>,
}

/// Everything needed to stream one bag into one episode, found from the index and the first
/// and last message of each source.
pub struct EpisodePlan {
    pub path: PathBuf,
    pub bag: Box<dyn BagSource>,
    pub sources: Vec<SourcePlan>,
    pub grid: Grid,
    /// Receive-time range to read: every message that can be picked lies in it.
    pub read_start: Time,
    pub read_end: Time,
    pub spec: DatasetSpec,
    /// The episode's limit on interior drops per tick (`timeline.max_drop_ratio`).
    pub max_drop_ratio: f64,
}

impl EpisodePlan {
    /// For each connection of the bag, the sources it feeds.
    pub fn sources_by_connection(&self) -> Vec<Vec<usize>> {
        let n = self.bag.summary().connections.len();
        (0..n)
            .map(|c| {
                (0..self.sources.len())
                    .filter(|&s| self.sources[s].reads_connection(c))
                    .collect()
            })
            .collect()
    }

    /// Bytes of the bag that the read range reads (for progress).
    pub fn bytes_to_read(&self) -> u64 {
        self.bag
            .summary()
            .bytes_between(self.read_start, self.read_end)
    }
}

impl SourcePlan {
    pub fn reads_connection(&self, conn: usize) -> bool {
        match &self.camera {
            Some(c) => c.decoders.get(conn).is_some_and(Option::is_some),
            None => self.extractors.get(conn).is_some_and(Option::is_some),
        }
    }
}

/// Resolve the config against one bag: topics, connections, extractors, shapes and the grid.
pub fn plan_episode(
    config: &Config,
    path: &Path,
    warn: &mut dyn FnMut(&str),
) -> Result<EpisodePlan> {
    plan_episode_with(config, path, &OpenOptions::default(), warn)
}

/// [`plan_episode`], the bag opened with `open` (a run reads all its bags with one buffer
/// pool).
pub fn plan_episode_with(
    config: &Config,
    path: &Path,
    open: &OpenOptions,
    warn: &mut dyn FnMut(&str),
) -> Result<EpisodePlan> {
    let mut bag = bag::open_with(path, open)?;
    for w in &bag.summary().warnings {
        warn(w);
    }
    let bag_name = path.display().to_string();
    let store = DefinitionStore::new(config.msg_path.clone());
    let cx = BagCtx {
        name: &bag_name,
        store: &store,
    };
    let missing = missing_topics(config, bag.as_ref());
    if !missing.is_empty() {
        return Err(unknown_topics(bag.as_ref(), &bag_name, &missing));
    }
    let mut sources = Vec::new();
    for (fi, feature) in config.features.iter().enumerate() {
        for src in &feature.sources {
            let at = format!("features.{}", feature.key);
            sources.push(plan_source(
                bag.as_mut(),
                &cx,
                fi,
                &at,
                src,
                feature.camera.as_ref(),
                config.timeline.max_delay,
            )?);
        }
    }

    let t0 = match &config.timeline.main {
        Some(main) => {
            let (first, _) = topic_range(bag.as_mut(), &cx, main, config.timeline.stamp)?;
            first
        }
        None => sources.iter().map(|s| s.first).max().unwrap_or(0),
    } + config.timeline.trim_start;
    let end = sources.iter().map(|s| s.last).min().unwrap_or(0) - config.timeline.trim_end;
    let grid = Grid {
        t0,
        end,
        fps: config.fps,
    };
    if grid.is_empty() {
        let ranges: Vec<String> = sources
            .iter()
            .map(|s| {
                format!(
                    "{} {:.3}..{:.3} s",
                    s.topic,
                    s.first as f64 / 1e9,
                    s.last as f64 / 1e9
                )
            })
            .collect();
        return Err(Error::Conversion(format!(
            "{bag_name}: no frame fits: the grid would start at {:.3} s and end at {:.3} s (after trims); the sources' time ranges are: {}",
            t0 as f64 / 1e9,
            end as f64 / 1e9,
            ranges.join(", ")
        )));
    }
    let margin = sources
        .iter()
        .map(|s| s.rule.tolerance + s.rule.max_delay)
        .max()
        .unwrap_or(0);
    let last_tick = grid.tick(grid.len() - 1);
    let lead = sources.iter().map(|s| s.lead).max().unwrap_or(0);

    let mut features = Vec::new();
    for (fi, feature) in config.features.iter().enumerate() {
        if let Some(cam) = sources
            .iter()
            .find(|s| s.feature == fi)
            .and_then(|s| s.camera.as_ref())
        {
            let (width, height) = cam.size;
            features.push(FeatureSpec {
                key: feature.key.clone(),
                kind: match cam.output {
                    CameraOutput::Video => FeatureKind::Video { height, width },
                    CameraOutput::Image => FeatureKind::Image { height, width },
                },
            });
            continue;
        }
        let names: Vec<String> = sources
            .iter()
            .filter(|s| s.feature == fi)
            .flat_map(|s| s.names.iter().cloned())
            .collect();
        features.push(FeatureSpec {
            key: feature.key.clone(),
            kind: FeatureKind::Vector {
                names: dedup_names(names),
            },
        });
    }
    if config.timeline.record_time {
        features.push(FeatureSpec {
            key: crate::config::RECORD_TIME_FEATURE.to_string(),
            kind: FeatureKind::Time,
        });
    }
    Ok(EpisodePlan {
        path: path.to_path_buf(),
        bag,
        sources,
        grid,
        read_start: t0 - margin - lead - 1,
        read_end: last_tick + margin + 1,
        spec: DatasetSpec {
            fps: config.fps,
            robot_type: config.robot_type.clone(),
            features,
        },
        max_drop_ratio: config.timeline.max_drop_ratio,
    })
}

/// Names in info.json must be unique for pandas; concatenated sources may repeat a name.
fn dedup_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        let mut candidate = n.clone();
        let mut k = 1;
        while out.contains(&candidate) {
            candidate = format!("{n}_{k}");
            k += 1;
        }
        out.push(candidate);
    }
    out
}

/// Every topic the config names that the bag lacks, with what names it (`features.KEY`,
/// `timeline.main`), in config order: one error can then list them all.
fn missing_topics(config: &Config, bag: &dyn BagSource) -> Vec<(String, String)> {
    let summary = bag.summary();
    let sources = config.features.iter().flat_map(|f| {
        f.sources
            .iter()
            .map(move |s| (format!("features.{}", f.key), s.topic.clone()))
    });
    let main = config
        .timeline
        .main
        .iter()
        .map(|m| ("timeline.main".to_string(), m.clone()));
    sources
        .chain(main)
        .filter(|(_, topic)| summary.connections_on(topic).is_empty())
        .collect()
}

/// The error for topics (`missing`: what names each, and the topic) that the bag lacks.
fn unknown_topics(bag: &dyn BagSource, bag_name: &str, missing: &[(String, String)]) -> Error {
    let summary = bag.summary();
    let named: Vec<String> = missing
        .iter()
        .map(|(at, topic)| format!("{at}: topic `{topic}`"))
        .collect();
    if summary.connections.is_empty() && summary.blocks.is_empty() {
        // Nothing the config could name: the bag is the problem, not the config.
        return Error::Conversion(format!(
            "{bag_name}: the bag is empty (no connections, no messages{}): nothing to read \
             for {}",
            if summary.warnings.is_empty() {
                String::new()
            } else {
                format!("; {}", summary.warnings.join("; "))
            },
            named.join(", ")
        ));
    }
    let topics = summary.topics().join(", ");
    let what = match named.as_slice() {
        [one] => format!("{one} is not in the bag"),
        many => format!(
            "{} topics are not in the bag: {}",
            many.len(),
            many.join("; ")
        ),
    };
    let text = format!(
        "{bag_name}: {what}; its topics are: {}",
        if topics.is_empty() { "(none)" } else { &topics }
    );
    // In a damaged bag the topic may be in the part that was lost: not the config's fault.
    if summary.warnings.is_empty() {
        Error::Usage(text)
    } else {
        Error::Conversion(format!(
            "{text} (the bag is damaged: {})",
            summary.warnings.join("; ")
        ))
    }
}

/// The stamp of a message that has no header stamp reader: its publish time (when asked and
/// recorded) or its receive time.
pub fn message_stamp(m: &RawMessage, publish: bool) -> Time {
    match m.publish {
        Some(t) if publish => t,
        _ => m.time,
    }
}

/// Whether the source stamps its messages with the storage's publish time; an error when it
/// asks for them and the storage has none.
fn uses_publish(
    cx: &BagCtx,
    at: &str,
    src: &crate::config::Source,
    first: &RawMessage,
) -> Result<bool> {
    if src.stamp != Stamp::Publish {
        return Ok(false);
    }
    if first.publish.is_none() {
        return Err(Error::Usage(format!(
            "{}: {at}: `stamp: publish`, but this storage records no publish time: use `receive` or `header`",
            cx.name
        )));
    }
    Ok(true)
}

fn no_publish_time(cx: &BagCtx, at: &str, bag: &dyn BagSource) -> Error {
    Error::Usage(format!(
        "{}: {at}: `stamp: publish`, but this storage ({}) records no publish time: use `receive` or `header`",
        cx.name,
        bag.summary().storage.id
    ))
}

/// What planning needs besides the bag: its name for messages and where definitions come from.
struct BagCtx<'a> {
    name: &'a str,
    store: &'a DefinitionStore,
}

/// The schema and wire format of one connection's messages. `what` says what wanted them
/// (`features.KEY: topic T (TYPE)`), for the error.
fn schema_of(cx: &BagCtx, what: &str, conn: &Connection) -> Result<(Schema, Encoding)> {
    let bag_name = cx.name;
    let encoding = Encoding::from_name(&conn.encoding).ok_or_else(|| {
        Error::Usage(format!(
            "{bag_name}: {what}: messages are encoded as `{}`; bagstream reads `ros1` and `cdr`",
            conn.encoding
        ))
    })?;
    let schema = cx
        .store
        .schema(&conn.datatype, &conn.schema_format, &conn.definition)
        .map_err(|e| {
            let text = format!("{bag_name}: {what}: {e}");
            // Found nowhere: the user must say where (`--msg-path`). Found but broken: the
            // bag's fault, whatever the config says.
            if e.is_missing_definition() {
                Error::Usage(text)
            } else {
                Error::Conversion(text)
            }
        })?;
    Ok((schema, encoding))
}

fn plan_source(
    bag: &mut dyn BagSource,
    cx: &BagCtx,
    feature: usize,
    at: &str,
    src: &crate::config::Source,
    camera: Option<&crate::config::Camera>,
    max_delay: Time,
) -> Result<SourcePlan> {
    let bag_name = cx.name;
    let conns = bag.summary().connections_on(&src.topic);
    if conns.is_empty() {
        return Err(unknown_topics(
            bag,
            bag_name,
            &[(at.to_string(), src.topic.clone())],
        ));
    }
    if let Some(camera) = camera {
        return plan_camera(bag, cx, feature, at, src, camera, &conns, max_delay);
    }
    let path =
        FieldPath::parse(&src.field).map_err(|e| Error::Usage(format!("{bag_name}: {at}: {e}")))?;
    let n = bag.summary().connections.len();
    let mut extractors: Vec<Option<Extractor>> = (0..n).map(|_| None).collect();
    let mut stamps: Vec<Option<StampReader>> = (0..n).map(|_| None).collect();
    for &c in &conns {
        let conn = &bag.summary().connections[c];
        let context = |e: &dyn std::fmt::Display| {
            Error::Usage(format!(
                "{bag_name}: {at}: topic {} ({}): {e}",
                src.topic, conn.datatype
            ))
        };
        let what = format!(
            "{at}: topic {} ({}), field `{}`",
            src.topic, conn.datatype, src.field
        );
        let (schema, encoding) = schema_of(cx, &what, conn)?;
        extractors[c] = Some(
            Extractor::with_encoding(&schema, &path, src.joints.as_deref(), encoding)
                .map_err(|e| context(&e))?,
        );
        if src.stamp == Stamp::Header {
            stamps[c] =
                Some(StampReader::with_encoding(&schema, encoding).map_err(|e| context(&e))?);
        }
    }
    let (first_msg, last_msg) = first_and_last(bag, &conns)?.ok_or_else(|| {
        Error::Conversion(format!(
            "{bag_name}: {at}: topic {} has no messages",
            src.topic
        ))
    })?;
    let decode_err = |e: crate::msg::DecodeError| Error::Decode {
        bag: bag_name.to_string(),
        topic: src.topic.clone(),
        field: src.field.clone(),
        detail: e.to_string(),
    };
    let ex = extractors[first_msg.conn]
        .as_ref()
        .expect("first message is on one of the source's connections");
    // The first message settles the feature's shape; a path it cannot serve (a slice past
    // the array, a joint that is not there) is a config error, found before any work. A
    // message shorter than its definition is the bag's fault, as it would be later on.
    let shape_err = |e: crate::msg::DecodeError| match e {
        crate::msg::DecodeError::Truncated { .. } => Error::Decode {
            bag: bag_name.to_string(),
            topic: src.topic.clone(),
            field: src.field.clone(),
            detail: format!(
                "first message, at {:.9} s: {e}",
                first_msg.time as f64 / 1e9
            ),
        },
        e => Error::Usage(format!(
            "{bag_name}: {at}: field `{}` of topic {} in its first message: {e}",
            src.field, src.topic
        )),
    };
    let mut values = Vec::new();
    ex.extract(first_msg.data(), &mut values)
        .map_err(shape_err)?;
    let names = ex.names(first_msg.data()).map_err(shape_err)?;
    if values.is_empty() {
        return Err(Error::Usage(format!(
            "{bag_name}: {at}: field `{}` of topic {} gives no values in its first message",
            src.field, src.topic
        )));
    }
    let publish = uses_publish(cx, at, src, &first_msg)?;
    let stamp_of = |m: &RawMessage| -> Result<Time> {
        match &stamps[m.conn] {
            Some(r) => r.read(m.data()).map_err(decode_err),
            None => Ok(message_stamp(m, publish)),
        }
    };
    let (first, last) = (stamp_of(&first_msg)?, stamp_of(&last_msg)?);
    let lead = (first - first_msg.time).max(0);
    Ok(SourcePlan {
        feature,
        topic: src.topic.clone(),
        field: src.field.clone(),
        len: values.len(),
        names,
        rule: source_rule(at, src, max_delay, topic_rate(bag.summary(), &conns)),
        extractors,
        stamps,
        publish,
        first,
        last,
        lead,
        camera: None,
    })
}

/// Messages per second of the topic on `conns` over its own span, from the index (as
/// `inspect` and `rosbag info` give it).
fn topic_rate(summary: &bag::BagSummary, conns: &[usize]) -> Option<f64> {
    let stats = conns.iter().filter_map(|&c| summary.stats.get(c));
    let count: u64 = stats.clone().map(|s| s.count).sum();
    let first = stats.clone().filter_map(|s| s.first).min()?;
    let last = stats.filter_map(|s| s.last).max()?;
    (count > 1 && last > first).then(|| (count - 1) as f64 * NANOS as f64 / (last - first) as f64)
}

/// The alignment rule of a source; its label names the feature, topic and field.
fn source_rule(
    at: &str,
    src: &crate::config::Source,
    max_delay: Time,
    rate_hz: Option<f64>,
) -> SourceRule {
    let feature = at.trim_start_matches("features.");
    SourceRule {
        label: if src.field.is_empty() {
            format!("{feature} <- {}", src.topic)
        } else {
            format!("{feature} <- {} {}", src.topic, src.field)
        },
        matching: src.matching,
        tolerance: src.tolerance,
        on_missing: src.on_missing,
        // A receive stamp is the receive time: no delay to allow for.
        max_delay: if src.stamp != Stamp::Receive {
            max_delay
        } else {
            0
        },
        max_drop_ratio: src.max_drop_ratio,
        rate_hz,
    }
}

/// A camera source: decoders instead of extractors, and the frame size from the first
/// message, which is decoded once here so that an unsupported encoding is found before any
/// work.
#[allow(clippy::too_many_arguments)]
fn plan_camera(
    bag: &mut dyn BagSource,
    cx: &BagCtx,
    feature: usize,
    at: &str,
    src: &crate::config::Source,
    camera: &crate::config::Camera,
    conns: &[usize],
    max_delay: Time,
) -> Result<SourcePlan> {
    let bag_name = cx.name;
    let n = bag.summary().connections.len();
    let mut decoders: Vec<Option<ImageDecoder>> = (0..n).map(|_| None).collect();
    let mut stamps: Vec<Option<StampReader>> = (0..n).map(|_| None).collect();
    for &c in conns {
        let conn = &bag.summary().connections[c];
        let context = |e: &dyn std::fmt::Display| {
            Error::Usage(format!(
                "{bag_name}: {at}: topic {} ({}): {e}",
                src.topic, conn.datatype
            ))
        };
        let what = format!("{at}: topic {} ({})", src.topic, conn.datatype);
        let (schema, encoding) = schema_of(cx, &what, conn)?;
        let decoder = ImageDecoder::with_encoding(&conn.datatype, &schema, encoding).map_err(
            |e| match e {
                crate::camera::CameraError::NotImage(_) => context(&format!(
                "{e}; a feature without `field` is a camera: give `field:` to read numbers from it"
            )),
                e => context(&e),
            },
        )?;
        decoders[c] = Some(decoder);
        if src.stamp == Stamp::Header {
            stamps[c] =
                Some(StampReader::with_encoding(&schema, encoding).map_err(|e| context(&e))?);
        }
    }
    let (first_msg, last_msg) = first_and_last(bag, conns)?.ok_or_else(|| {
        Error::Conversion(format!(
            "{bag_name}: {at}: topic {} has no messages",
            src.topic
        ))
    })?;
    // A decoder of its own, so that the pipeline's decode counts hold only picked messages.
    let conn = &bag.summary().connections[first_msg.conn];
    let probe = schema_of(cx, "", conn)
        .ok()
        .and_then(|(schema, encoding)| {
            ImageDecoder::with_encoding(&conn.datatype, &schema, encoding).ok()
        })
        .expect("the connection's decoder was built above");
    let mut first_image = RgbImage::new();
    probe
        .decode(first_msg.data(), &mut first_image)
        .map_err(|e| match e {
            // What the config asks is not possible: a usage error, found before any work.
            crate::camera::CameraError::Encoding(_) => Error::Usage(format!(
                "{bag_name}: {at}: topic {} in its first message: {e}",
                src.topic
            )),
            // A damaged message is the bag's fault, as it would be later in the episode.
            e => Error::Decode {
                bag: bag_name.to_string(),
                topic: src.topic.clone(),
                field: "(image)".into(),
                detail: format!(
                    "first message, at {:.9} s: {e}",
                    first_msg.time as f64 / 1e9
                ),
            },
        })?;
    let first_size = (first_image.width, first_image.height);
    let size = camera.resize.unwrap_or(first_size);
    let publish = uses_publish(cx, at, src, &first_msg)?;
    let stamp_of = |m: &RawMessage| -> Result<Time> {
        match &stamps[m.conn] {
            Some(r) => r.read(m.data()).map_err(|e| Error::Decode {
                bag: bag_name.to_string(),
                topic: src.topic.clone(),
                field: "header.stamp".into(),
                detail: e.to_string(),
            }),
            None => Ok(message_stamp(m, publish)),
        }
    };
    let (first, last) = (stamp_of(&first_msg)?, stamp_of(&last_msg)?);
    Ok(SourcePlan {
        feature,
        topic: src.topic.clone(),
        field: String::new(),
        extractors: (0..n).map(|_| None).collect(),
        stamps,
        publish,
        len: 0,
        names: Vec::new(),
        rule: source_rule(at, src, max_delay, topic_rate(bag.summary(), conns)),
        first,
        last,
        lead: (first - first_msg.time).max(0),
        camera: Some(CameraPlan {
            output: camera.output,
            decoders,
            first_size,
            size,
            resize: camera.resize.is_some(),
        }),
    })
}

/// The first and last message over several connections, in stream order.
fn first_and_last(
    bag: &mut dyn BagSource,
    conns: &[usize],
) -> Result<Option<(RawMessage, RawMessage)>> {
    let mut best: Option<(RawMessage, RawMessage)> = None;
    for &c in conns {
        if let Some((f, l)) = bag.first_and_last(c)? {
            best = Some(match best {
                None => (f, l),
                Some((bf, bl)) => (
                    if (f.time, f.order) < (bf.time, bf.order) {
                        f
                    } else {
                        bf
                    },
                    if (l.time, l.order) > (bl.time, bl.order) {
                        l
                    } else {
                        bl
                    },
                ),
            });
        }
    }
    Ok(best)
}

/// First and last time of a topic (for `timeline.main`).
fn topic_range(
    bag: &mut dyn BagSource,
    cx: &BagCtx,
    topic: &str,
    stamp: Stamp,
) -> Result<(Time, Time)> {
    let bag_name = cx.name;
    let conns = bag.summary().connections_on(topic);
    if conns.is_empty() {
        return Err(unknown_topics(
            bag,
            bag_name,
            &[("timeline.main".to_string(), topic.to_string())],
        ));
    }
    let (f, l) = first_and_last(bag, &conns)?.ok_or_else(|| {
        Error::Conversion(format!(
            "{bag_name}: timeline.main: topic {topic} has no messages"
        ))
    })?;
    match stamp {
        Stamp::Receive => return Ok((f.time, l.time)),
        Stamp::Publish => {
            return match (f.publish, l.publish) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => Err(no_publish_time(cx, "timeline", bag)),
            }
        }
        Stamp::Header => {}
    }
    let read = |m: &RawMessage| -> Result<Time> {
        let conn = &bag.summary().connections[m.conn];
        let what = format!("timeline.main: topic {topic} ({})", conn.datatype);
        let (schema, encoding) = schema_of(cx, &what, conn)?;
        let r = StampReader::with_encoding(&schema, encoding)
            .map_err(|e| Error::Usage(format!("{bag_name}: timeline.main: {topic}: {e}")))?;
        r.read(m.data()).map_err(|e| Error::Decode {
            bag: bag_name.to_string(),
            topic: topic.to_string(),
            field: "header.stamp".into(),
            detail: e.to_string(),
        })
    };
    Ok((read(&f)?, read(&l)?))
}
