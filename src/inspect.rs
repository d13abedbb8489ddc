//! `bagstream inspect`: what `rosbag info` prints, as text or JSON, and a starting config.

use std::fmt::Write;
use std::path::Path;

use serde_json::json;

use crate::bag::{self, BagSummary};
use crate::msg::Schema;
use crate::{Result, Time, NANOS};

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
    if s.chunks.is_empty() {
        return "none".into();
    }
    let kinds: Vec<String> = s
        .compression_counts()
        .iter()
        .map(|(k, n)| format!("{} [{n}/{} chunks]", k.as_str(), s.chunks.len()))
        .collect();
    let packed: u64 = s.chunks.iter().map(|c| c.data_len).sum();
    let raw: u64 = s.chunks.iter().map(|c| c.uncompressed_size).sum();
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

/// The `rosbag info` style report.
pub fn text(path: &Path) -> Result<String> {
    let bag = bag::open(path)?;
    Ok(summary_text(bag.summary()))
}

pub fn summary_text(s: &BagSummary) -> String {
    let mut out = String::new();
    let topics = topics(s);
    let _ = writeln!(out, "path:        {}", s.path.display());
    let _ = writeln!(out, "version:     {}", s.version);
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
    let _ = writeln!(out, "chunks:      {}", s.chunks.len());
    if !s.indexed {
        let _ = writeln!(out, "index:       missing (read by a sequential scan)");
    }
    let mut types: Vec<(&str, &str)> = s
        .connections
        .iter()
        .map(|c| (c.datatype.as_str(), c.md5sum.as_str()))
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
        let _ = writeln!(
            out,
            "{label:<13}{:<width$} {:>7} msgs{rate} : {}{conns}",
            t.topic, t.count, t.datatype
        );
    }
    for w in &s.warnings {
        let _ = writeln!(out, "warning:     {w}");
    }
    out
}

/// The same facts as JSON.
pub fn json(path: &Path) -> Result<String> {
    let bag = bag::open(path)?;
    Ok(serde_json::to_string_pretty(&summary_json(bag.summary())).expect("json") + "\n")
}

pub fn summary_json(s: &BagSummary) -> serde_json::Value {
    let range = s.time_range();
    let topics: Vec<_> = topics(s)
        .iter()
        .map(|t| {
            json!({
                "topic": t.topic,
                "type": t.datatype,
                "messages": t.count,
                "connections": t.connections,
                "rate_hz": t.rate(),
                "start": t.first.map(|x| x as f64 / 1e9),
                "end": t.last.map(|x| x as f64 / 1e9),
            })
        })
        .collect();
    let by_compression: serde_json::Map<String, serde_json::Value> = s
        .compression_counts()
        .into_iter()
        .map(|(k, n)| (k.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "path": s.path.display().to_string(),
        "version": s.version,
        "indexed": s.indexed,
        "size_bytes": s.file_size,
        "messages": s.message_count(),
        "start": range.map(|r| r.0 as f64 / 1e9),
        "end": range.map(|r| r.1 as f64 / 1e9),
        "duration_s": range.map(|r| (r.1 - r.0) as f64 / 1e9),
        "chunks": s.chunks.len(),
        "compressed_bytes": s.chunks.iter().map(|c| c.data_len).sum::<u64>(),
        "uncompressed_bytes": s.chunks.iter().map(|c| c.uncompressed_size).sum::<u64>(),
        "compression": by_compression,
        "topics": topics,
        "warnings": s.warnings,
    })
}

/// A starting config: every topic with numeric fields is listed, the likely ones enabled.
pub fn config_template(path: &Path) -> Result<String> {
    let bag = bag::open(path)?;
    let s = bag.summary();
    let topics = topics(s);
    let fastest = topics
        .iter()
        .filter_map(|t| t.rate())
        .fold(0.0f64, f64::max);
    let fps = if fastest >= 30.0 { 30 } else { 10 };
    let mut out = String::new();
    let _ = writeln!(out, "# bagstream config for {}", s.path.display());
    let _ = writeln!(
        out,
        "# Reference: docs/configuration.md. Uncomment and edit the features you want."
    );
    let _ = writeln!(out, "fps: {fps}");
    let _ = writeln!(out, "robot_type: unknown");
    let _ = writeln!(out, "task: \"describe the task here\"");
    let _ = writeln!(out, "timeline:");
    let _ = writeln!(out, "  stamp: receive        # receive | header");
    let _ = writeln!(out, "  trim_start: 0.0");
    let _ = writeln!(out, "  trim_end: 0.0");
    let _ = writeln!(out, "features:");
    let mut enabled = 0;
    for t in &topics {
        let conn = &s.connections[s.connections_on(t.topic)[0]];
        let fields = Schema::parse(&conn.datatype, &conn.message_definition)
            .map(|schema| schema.numeric_fields())
            .unwrap_or_default();
        let rate = t
            .rate()
            .map_or_else(String::new, |r| format!(" @ {r:.1} Hz"));
        let _ = writeln!(
            out,
            "  # {} [{}] {} msgs{rate}",
            t.topic, t.datatype, t.count
        );
        let short = t.datatype.replace("/msg/", "/");
        if t.count > 0 && (short == "sensor_msgs/Image" || short == "sensor_msgs/CompressedImage") {
            let _ = writeln!(out, "  # {}:", camera_key(t.topic));
            let _ = writeln!(out, "  #   topic: {}", yaml_str(t.topic));
            let _ = writeln!(
                out,
                "  #   type: video          # video | image (lossless PNG); optional resize: [width, height]"
            );
            continue;
        }
        if fields.is_empty() || t.count == 0 {
            continue;
        }
        let key = feature_key(t.topic, t.datatype);
        let enable = enabled == 0
            && t.datatype.ends_with("JointState")
            && fields.iter().any(|f| f == "position");
        let prefix = if enable { "" } else { "# " };
        let field = if fields.iter().any(|f| f == "position") {
            "position".to_string()
        } else {
            fields[0].clone()
        };
        let _ = writeln!(out, "  {prefix}{key}:");
        let _ = writeln!(out, "  {prefix}  topic: {}", yaml_str(t.topic));
        let _ = writeln!(
            out,
            "  {prefix}  field: {field}          # numeric fields: {}",
            fields.join(", ")
        );
        if enable {
            enabled += 1;
        }
    }
    if enabled == 0 {
        let _ = writeln!(
            out,
            "  # (no feature enabled: uncomment at least one above)"
        );
    }
    Ok(out)
}

/// `/cam_high/image_raw/compressed` -> `observation.images.cam_high`: the first topic segment
/// names the camera in most drivers' layouts.
fn camera_key(topic: &str) -> String {
    let name = topic
        .trim_matches('/')
        .split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("camera");
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("observation.images.{clean}")
}

fn feature_key(topic: &str, datatype: &str) -> String {
    if datatype.ends_with("JointState") {
        return "observation.state".into();
    }
    let clean: String = topic
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("observation.{clean}")
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
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

    #[test]
    fn camera_keys_come_from_the_first_topic_segment() {
        assert_eq!(
            camera_key("/cam_high/image_raw/compressed"),
            "observation.images.cam_high"
        );
        assert_eq!(camera_key("/image"), "observation.images.image");
        assert_eq!(
            camera_key("/device_0/sensor_1/Color_0/image/data"),
            "observation.images.device_0"
        );
    }
}
