//! `bagstream inspect`: what `rosbag info` prints, as text or JSON, with each camera topic's
//! encoding and size; and a starting config ([`template`]).

mod template;

use std::fmt::Write;
use std::path::Path;

use serde_json::json;

use crate::bag::{self, BagError, BagSource, BagSummary, Connection, RawMessage};
use crate::camera::{CameraKind, ImageDecoder, RgbImage};
use crate::msg::{DefinitionStore, Encoding, FieldPath, Schema, StringReader};
use crate::{Result, Time, NANOS};

pub use template::{config_template, template, Template};

/// Per-topic facts, merged over the topic's connections.
struct TopicInfo<'a> {
    topic: &'a str,
    datatype: &'a str,
    count: u64,
    first: Option<Time>,
    last: Option<Time>,
    connections: usize,
}

impl TopicInfo<'_> {
    /// Messages per second over the topic's own span, as `rosbag info` computes it.
    fn rate(&self) -> Option<f64> {
        let (f, l) = (self.first?, self.last?);
        (self.count > 1 && l > f).then(|| (self.count - 1) as f64 * NANOS as f64 / (l - f) as f64)
    }
}

impl TopicInfo<'_> {
    fn is_image(&self) -> bool {
        is_image_type(self.datatype)
    }
}

fn is_image_type(datatype: &str) -> bool {
    matches!(
        datatype.replace("/msg/", "/").as_str(),
        "sensor_msgs/Image" | "sensor_msgs/CompressedImage"
    )
}

fn topics(s: &BagSummary) -> Vec<TopicInfo<'_>> {
    s.topics()
        .into_iter()
        .map(|topic| {
            let idx = s.connections_on(topic);
            let stats: Vec<_> = idx.iter().map(|&i| s.stats[i]).collect();
            TopicInfo {
                topic,
                datatype: &s.connections[idx[0]].datatype,
                count: stats.iter().map(|x| x.count).sum(),
                first: stats.iter().filter_map(|x| x.first).min(),
                last: stats.iter().filter_map(|x| x.last).max(),
                connections: idx.len(),
            }
        })
        .collect()
}

fn compression(s: &BagSummary) -> String {
    if s.blocks.is_empty() {
        return "none".into();
    }
    let kinds: Vec<String> = s
        .compression_counts()
        .iter()
        .map(|(k, n)| format!("{k} [{n}/{} chunks]", s.blocks.len()))
        .collect();
    let packed: u64 = s.blocks.iter().map(|b| b.stored_bytes).sum();
    let raw: u64 = s.blocks.iter().map(|b| b.raw_bytes).sum();
    let ratio = if raw > 0 {
        100.0 * packed as f64 / raw as f64
    } else {
        100.0
    };
    format!("{}; {ratio:.1}%", kinds.join(", "))
}

/// `Jan 02 2024 03:04:05.06 (1704164645.06)`, in UTC.
fn format_time(t: Time) -> String {
    let secs = t.div_euclid(NANOS);
    let centis = t.rem_euclid(NANOS) / 10_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {d:02} {y} {:02}:{:02}:{:02}.{centis:02} UTC ({secs}.{centis:02})",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// `12.3s`, or `2:52s (172s)` past a minute, as `rosbag info` prints it.
fn format_duration(d: Time) -> String {
    let secs = d as f64 / NANOS as f64;
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let whole = secs.round() as i64;
    if whole < 3600 {
        format!("{}:{:02}s ({whole}s)", whole / 60, whole % 60)
    } else {
        format!(
            "{}:{:02}:{:02}s ({whole}s)",
            whole / 3600,
            whole % 3600 / 60,
            whole % 60
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn human_size(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / 1024.0 / 1024.0 / 1024.0)
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// What an image topic's first message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub kind: CameraKind,
    /// `encoding` of a raw image; `format` of a compressed one (or what its data's magic
    /// bytes say when `format` is empty).
    pub encoding: String,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Display for ImageFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}x{}", self.encoding, self.width, self.height)
    }
}

/// The facts of an image topic, or why its first message does not decode.
pub type ImageProbe = std::result::Result<ImageFacts, String>;

/// The first message (in `(time, order)` order) on `conns`: one window a nanosecond long at
/// the earliest first time the index gives, so only the chunk holding it is read.
fn first_message(
    bag: &mut dyn BagSource,
    conns: &[usize],
) -> std::result::Result<Option<RawMessage>, BagError> {
    let s = bag.summary();
    let Some(t) = conns.iter().filter_map(|&c| s.stats[c].first).min() else {
        return Ok(None);
    };
    let mut wanted = vec![false; s.connections.len()];
    for &c in conns {
        wanted[c] = true;
    }
    let mut out = Vec::new();
    bag.read_window(t, t.saturating_add(1), &wanted, &mut out)?;
    Ok(out.into_iter().next())
}

/// Decodes an image topic's first message, as planning a camera feature does, so that what
/// inspect reports is what a conversion meets. None when the topic has no message.
fn probe_image(bag: &mut dyn BagSource, topic: &str) -> Option<ImageProbe> {
    let conns = bag.summary().connections_on(topic);
    let msg = match first_message(bag, &conns) {
        Ok(m) => m?,
        Err(e) => return Some(Err(format!("first message unreadable: {e}"))),
    };
    let conn = &bag.summary().connections[msg.conn];
    Some(image_facts(conn, msg.data()))
}

/// How a connection's messages decode: its schema (the bag's definition, else a shipped one)
/// and wire format, as planning finds them; or why not, as one line.
fn decoding(conn: &Connection) -> std::result::Result<(Schema, Encoding), String> {
    let encoding = Encoding::from_name(&conn.encoding)
        .ok_or_else(|| format!("messages encoded as `{}`, not ros1 or cdr", conn.encoding))?;
    let schema = DefinitionStore::default()
        .schema(&conn.datatype, &conn.schema_format, &conn.definition)
        .map_err(|e| e.to_string())?;
    Ok((schema, encoding))
}

fn image_facts(conn: &Connection, msg: &[u8]) -> ImageProbe {
    let datatype = conn.datatype.as_str();
    let (schema, wire) = decoding(conn)?;
    let decoder =
        ImageDecoder::with_encoding(datatype, &schema, wire).map_err(|e| e.to_string())?;
    let kind = decoder.kind();
    let text_field = if kind == CameraKind::Raw {
        "encoding"
    } else {
        "format"
    };
    let mut encoding = FieldPath::parse(text_field)
        .ok()
        .and_then(|p| StringReader::with_encoding(&schema, &p, wire).ok())
        .and_then(|r| {
            r.read(msg)
                .ok()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
        })
        .unwrap_or_default();
    let mut img = RgbImage::new();
    let decoded = decoder.decode(msg, &mut img);
    if encoding.is_empty() && kind == CameraKind::Compressed {
        encoding = compressed_magic(msg)
            .unwrap_or("unknown format")
            .to_string();
    }
    match decoded {
        Ok(()) => Ok(ImageFacts {
            kind,
            encoding,
            width: img.width,
            height: img.height,
        }),
        Err(e) => Err(match decoder.header(msg) {
            Some((w, h)) => format!("{encoding} {w}x{h}: first message does not decode: {e}"),
            None => format!("first message does not decode: {e}"),
        }),
    }
}

/// `png` or `jpeg` from the magic bytes somewhere in a compressed image message (its data
/// follows the header and format string).
fn compressed_magic(msg: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = &[0xff, 0xd8, 0xff];
    if msg.windows(PNG.len()).any(|w| w == PNG) {
        Some("png")
    } else if msg.windows(JPEG.len()).any(|w| w == JPEG) {
        Some("jpeg")
    } else {
        None
    }
}

/// Every image topic with messages and what its first message says, in topic order.
fn probe_images(bag: &mut dyn BagSource) -> Vec<(String, ImageProbe)> {
    let s = bag.summary();
    let mut image_topics: Vec<(Time, String)> = topics(s)
        .iter()
        .filter(|t| t.is_image() && t.count > 0)
        .map(|t| (t.first.unwrap_or(0), t.topic.to_string()))
        .collect();
    // In time order, so that consecutive reads reuse the reader's cached chunks.
    image_topics.sort();
    let mut out: Vec<(String, ImageProbe)> = image_topics
        .into_iter()
        .filter_map(|(_, t)| probe_image(bag, &t).map(|p| (t, p)))
        .collect();
    let order = bag.summary().topics();
    out.sort_by_key(|(t, _)| order.iter().position(|o| o == t));
    out
}

/// The `rosbag info` style report.
pub fn text(path: &Path) -> Result<String> {
    let mut bag = bag::open(path)?;
    let images = probe_images(bag.as_mut());
    Ok(report_text(bag.summary(), &images))
}

/// [`text`] from the index alone (no image facts).
pub fn summary_text(s: &BagSummary) -> String {
    report_text(s, &[])
}

fn report_text(s: &BagSummary, images: &[(String, ImageProbe)]) -> String {
    if s.storage.id != "ros1" {
        return report_text_ros2(s, images);
    }
    let mut out = String::new();
    let topics = topics(s);
    let _ = writeln!(out, "path:        {}", s.path.display());
    let _ = writeln!(out, "version:     {}", s.storage.version);
    match s.time_range() {
        Some((start, end)) => {
            let _ = writeln!(out, "duration:    {}", format_duration(end - start));
            let _ = writeln!(out, "start:       {}", format_time(start));
            let _ = writeln!(out, "end:         {}", format_time(end));
        }
        None => {
            let _ = writeln!(out, "duration:    0s (no messages)");
        }
    }
    let _ = writeln!(out, "size:        {}", human_size(s.file_size));
    let _ = writeln!(out, "messages:    {}", s.message_count());
    let _ = writeln!(out, "compression: {}", compression(s));
    let _ = writeln!(out, "chunks:      {}", s.blocks.len());
    if !s.indexed {
        let _ = writeln!(out, "index:       missing (read by a sequential scan)");
    }
    let mut types: Vec<(&str, &str)> = s
        .connections
        .iter()
        .map(|c| (c.datatype.as_str(), c.md5sum().unwrap_or("")))
        .collect();
    types.sort();
    types.dedup();
    for (i, (t, md5)) in types.iter().enumerate() {
        let label = if i == 0 { "types:" } else { "" };
        let _ = writeln!(out, "{label:<13}{t} [{md5}]");
    }
    let width = topics.iter().map(|t| t.topic.len()).max().unwrap_or(0);
    for (i, t) in topics.iter().enumerate() {
        let label = if i == 0 { "topics:" } else { "" };
        let rate = t
            .rate()
            .map_or_else(String::new, |r| format!(" @ {r:.1} Hz"));
        let conns = if t.connections > 1 {
            format!(" ({} connections)", t.connections)
        } else {
            String::new()
        };
        let image = match images.iter().find(|(name, _)| name == t.topic) {
            Some((_, Ok(facts))) => format!(" [{facts}]"),
            Some((_, Err(e))) => format!(" [{e}]"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{label:<13}{:<width$} {:>7} msgs{rate} : {}{conns}{image}",
            t.topic, t.count, t.datatype
        );
    }
    for w in &s.warnings {
        let _ = writeln!(out, "warning:     {w}");
    }
    out
}

/// What `ros2 bag info` prints, with each topic's rate and camera facts added, and the
/// storage's details and warnings.
fn report_text_ros2(s: &BagSummary, images: &[(String, ImageProbe)]) -> String {
    let mut out = String::new();
    const W: usize = 19;
    for (i, f) in s.files.iter().enumerate() {
        let label = if i == 0 { "Files:" } else { "" };
        let name = f.path.file_name().map_or_else(
            || f.path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let _ = writeln!(out, "{label:<W$}{name}");
    }
    let _ = writeln!(out, "{:<W$}{}", "Bag size:", human_size(s.file_size));
    let _ = writeln!(out, "{:<W$}{}", "Storage id:", s.storage.id);
    if !s.storage.version.is_empty() {
        let _ = writeln!(out, "{:<W$}{}", "Version:", s.storage.version);
    }
    for (k, v) in &s.storage.details {
        let _ = writeln!(out, "{:<W$}{v}", format!("{k}: "));
    }
    match s.time_range() {
        Some((start, end)) => {
            let _ = writeln!(
                out,
                "{:<W$}{:.3}s",
                "Duration:",
                (end - start) as f64 / NANOS as f64
            );
            let _ = writeln!(out, "{:<W$}{}", "Start:", format_time(start));
            let _ = writeln!(out, "{:<W$}{}", "End:", format_time(end));
        }
        None => {
            let _ = writeln!(out, "{:<W$}0s (no messages)", "Duration:");
        }
    }
    let _ = writeln!(out, "{:<W$}{}", "Messages:", s.message_count());
    if !s.indexed {
        let _ = writeln!(out, "{:<W$}missing (read by a linear scan)", "Index:");
    }
    for (i, t) in topics(s).iter().enumerate() {
        let label = if i == 0 { "Topic information:" } else { "" };
        let format = s
            .connections_on(t.topic)
            .first()
            .map_or("", |&c| s.connections[c].encoding.as_str());
        let rate = t
            .rate()
            .map_or_else(String::new, |r| format!(" | Rate: {r:.1} Hz"));
        let image = match images.iter().find(|(name, _)| name == t.topic) {
            Some((_, Ok(facts))) => format!(" | Image: {facts}"),
            Some((_, Err(e))) => format!(" | Image: {e}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{label:<W$}Topic: {} | Type: {} | Count: {} | Serialization Format: {format}{rate}{image}",
            t.topic, t.datatype, t.count
        );
    }
    for w in &s.warnings {
        let _ = writeln!(out, "{:<W$}{w}", "Warning:");
    }
    out
}

/// The same facts as JSON; an image topic has an `image` object (`encoding`, `width`,
/// `height`, or `error`).
pub fn json(path: &Path) -> Result<String> {
    let mut bag = bag::open(path)?;
    let images = probe_images(bag.as_mut());
    Ok(serde_json::to_string_pretty(&report_json(bag.summary(), &images)).expect("json") + "\n")
}

/// [`json`] from the index alone (no image facts).
pub fn summary_json(s: &BagSummary) -> serde_json::Value {
    report_json(s, &[])
}

fn report_json(s: &BagSummary, images: &[(String, ImageProbe)]) -> serde_json::Value {
    let range = s.time_range();
    let topics: Vec<_> = topics(s)
        .iter()
        .map(|t| {
            let mut v = json!({
                "topic": t.topic,
                "type": t.datatype,
                "messages": t.count,
                "connections": t.connections,
                "serialization_format": s
                    .connections_on(t.topic)
                    .first()
                    .map(|&c| s.connections[c].encoding.as_str()),
                "rate_hz": t.rate(),
                "start": t.first.map(|x| x as f64 / 1e9),
                "end": t.last.map(|x| x as f64 / 1e9),
            });
            match images.iter().find(|(name, _)| name == t.topic) {
                Some((_, Ok(f))) => {
                    v["image"] =
                        json!({"encoding": f.encoding, "width": f.width, "height": f.height});
                }
                Some((_, Err(e))) => v["image"] = json!({ "error": e }),
                None => {}
            }
            v
        })
        .collect();
    let by_compression: serde_json::Map<String, serde_json::Value> = s
        .compression_counts()
        .into_iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    json!({
        "path": s.path.display().to_string(),
        "storage": s.storage.id,
        "version": s.storage.version,
        "files": s.files.iter().map(|f| json!({"path": f.path.display().to_string(), "size_bytes": f.size})).collect::<Vec<_>>(),
        "indexed": s.indexed,
        "size_bytes": s.file_size,
        "messages": s.message_count(),
        "start": range.map(|r| r.0 as f64 / 1e9),
        "end": range.map(|r| r.1 as f64 / 1e9),
        "duration_s": range.map(|r| (r.1 - r.0) as f64 / 1e9),
        "chunks": s.blocks.len(),
        "compressed_bytes": s.blocks.iter().map(|b| b.stored_bytes).sum::<u64>(),
        "uncompressed_bytes": s.blocks.iter().map(|b| b.raw_bytes).sum::<u64>(),
        "compression": by_compression,
        "topics": topics,
        "warnings": s.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        // 2024-01-02 03:04:05.06 UTC
        assert_eq!(
            format_time(1_704_164_645_060_000_000),
            "Jan 02 2024 03:04:05.06 UTC (1704164645.06)"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(format_duration(2_990_000_000), "3.0s");
        assert_eq!(format_duration(172_400_000_000), "2:52s (172s)");
        assert_eq!(format_duration(3_723_000_000_000), "1:02:03s (3723s)");
    }
}
