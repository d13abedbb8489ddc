//! Peak resident memory of reading every message of a bag, with our reader or the `rosbag`
//! crate, and a maker for large synthetic bags to measure it on.
//!
//! ```text
//! reader_rss --reader ours|rosbag [--window SECS] BAG
//! reader_rss --make BAG [--seconds S] [--compression none|bz2|lz4] [--no-index]
//! ```
//!
//! Prints messages read, payload bytes, elapsed time and VmHWM / VmRSS from /proc/self/status.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bagstream::bag::{self, ros1::Compression};
use bagstream::synth::{write_teleop_bag, TeleopSpec};
use bagstream::{Time, NANOS};

fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn read_ours(path: &Path, window: Time) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let mut b = bag::open(path)?;
    let summary = b.summary().clone();
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    let Some((first, last)) = summary.time_range() else {
        return Ok((0, 0));
    };
    let wanted = vec![true; summary.connections.len()];
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut t = first;
    let mut out = Vec::new();
    while t <= last {
        out.clear();
        b.read_window(t, t + window, &wanted, &mut out)?;
        n += out.len() as u64;
        bytes += out.iter().map(|m| m.data().len() as u64).sum::<u64>();
        t += window;
    }
    Ok((n, bytes))
}

fn read_rosbag(path: &Path) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let bag = rosbag::RosBag::new(path)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for rec in bag.chunk_records() {
        if let rosbag::ChunkRecord::Chunk(chunk) = rec? {
            for m in chunk.messages() {
                if let rosbag::MessageRecord::MessageData(d) = m? {
                    n += 1;
                    bytes += d.data.len() as u64;
                }
            }
        }
    }
    Ok((n, bytes))
}

fn make(path: &Path, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let mut spec = TeleopSpec {
        seconds: 8.0,
        camera_hz: 30.0,
        camera_size: (640, 480),
        chunk_size: 4 << 20,
        ..TeleopSpec::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => spec.seconds = it.next().ok_or("--seconds needs a value")?.parse()?,
            "--compression" => {
                spec.compression = match it.next().map(String::as_str) {
                    Some("none") => Compression::None,
                    Some("bz2") => Compression::Bz2,
                    Some("lz4") => Compression::Lz4,
                    other => return Err(format!("bad compression {other:?}").into()),
                }
            }
            "--no-index" => spec.write_index = false,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let n = write_teleop_bag(path, &spec)?;
    let size = std::fs::metadata(path)?.len();
    println!("{}: {n} messages, {size} bytes", path.display());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--make") {
        let path = args.get(1).ok_or("--make needs a path")?;
        return make(Path::new(path), &args[2..]);
    }
    let mut reader = "ours".to_string();
    let mut window = NANOS;
    let mut path: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reader" => reader = it.next().ok_or("--reader needs a value")?.clone(),
            "--window" => {
                let s: f64 = it.next().ok_or("--window needs a value")?.parse()?;
                window = (s * NANOS as f64) as Time;
            }
            p => path = Some(PathBuf::from(p)),
        }
    }
    let path = path.ok_or("usage: reader_rss --reader ours|rosbag [--window SECS] BAG")?;
    let size = std::fs::metadata(&path)?.len();
    let t0 = Instant::now();
    let result = match reader.as_str() {
        "ours" => read_ours(&path, window),
        "rosbag" => read_rosbag(&path),
        other => return Err(format!("unknown reader {other}").into()),
    };
    let (n, bytes) = result?;
    println!(
        "reader={reader} file={} file_mb={:.1} messages={n} payload_mb={:.1} secs={:.2} \
         vmhwm_mb={:.1} vmrss_mb={:.1}",
        path.display(),
        size as f64 / 1e6,
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64(),
        status_kb("VmHWM:") as f64 / 1024.0,
        status_kb("VmRSS:") as f64 / 1024.0,
    );
    Ok(())
}
