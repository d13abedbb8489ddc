//! `bagstream sweep`: the same conversion once per chunk size, each in a fresh child process
//! (so that one run's peak does not hide in another's), compared on peak memory and speed;
//! every output must be the same dataset.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::convert::ConvertSummary;
use crate::rss::format_bytes;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The bagstream executable to run `convert` with.
    pub exe: PathBuf,
    /// Options passed to every `convert` (config, codec, ...), without `--out`,
    /// `--chunk-secs` and the bags.
    pub args: Vec<OsString>,
    pub bags: Vec<PathBuf>,
    pub chunk_secs: Vec<f64>,
}

/// One conversion of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    pub chunk_secs: f64,
    /// The converter's VmHWM.
    pub peak_rss: u64,
    /// The converter's RssAnon at the end of the run.
    pub end_anon: u64,
    /// The sum of the ffmpeg encoders' own peaks (VmHWM at exit); 0 without video.
    pub encoders_peak: u64,
    /// Wall time of the child process.
    pub seconds: f64,
    pub frames: u64,
    pub bag_bytes: u64,
}

impl SweepRun {
    pub fn frames_per_second(&self) -> f64 {
        self.frames as f64 / self.seconds.max(1e-9)
    }

    pub fn bag_mib_per_second(&self) -> f64 {
        self.bag_bytes as f64 / crate::rss::MIB / self.seconds.max(1e-9)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepReport {
    pub runs: Vec<SweepRun>,
    /// How the outputs differ from the first run's, if they do.
    pub differences: Vec<String>,
}

impl SweepReport {
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }

    /// The table `bagstream sweep` prints.
    pub fn table(&self) -> String {
        let mut t = format!(
            "{:>10}  {:>12}  {:>12}  {:>12}  {:>8}  {:>9}  {:>9}\n",
            "chunk s", "peak RSS", "end anon", "encoders", "wall s", "frames/s", "bag MiB/s"
        );
        for r in &self.runs {
            t.push_str(&format!(
                "{:>10}  {:>12}  {:>12}  {:>12}  {:>8.2}  {:>9.1}  {:>9.1}\n",
                r.chunk_secs,
                format_bytes(r.peak_rss),
                format_bytes(r.end_anon),
                format_bytes(r.encoders_peak),
                r.seconds,
                r.frames_per_second(),
                r.bag_mib_per_second(),
            ));
        }
        t.push_str(TABLE_LEGEND);
        t
    }
}

/// What the table's memory columns are.
pub const TABLE_LEGEND: &str = "peak RSS: the converter's VmHWM; end anon: its RssAnon at the end; encoders: the sum of each ffmpeg encoder's VmHWM at its exit\n";

/// The figures `convert --summary-json` writes, which the sweep reads back.
pub fn summary_json(s: &ConvertSummary, bags: &[PathBuf]) -> Value {
    let bag_bytes: u64 = bags
        .iter()
        .filter_map(|b| std::fs::metadata(b).ok())
        .map(|m| m.len())
        .sum();
    let m = &s.memory;
    // Each key says what it is: docs/memory.md, "The figures".
    json!({
        "episodes": s.episodes.len(),
        "frames": s.frames(),
        "dropped": s.dropped(),
        "seconds": s.seconds,
        "peak_rss": m.peak_rss,
        "end_rss": m.end.map(|e| e.rss),
        "end_anon": m.end.map(|e| e.anon),
        "sampled_anon_max": m.sampled_anon_max,
        "readings": m.readings,
        "encoders": s.encoders,
        "encoders_peak_rss": s.encoders_peak_rss,
        "bag_bytes": bag_bytes,
    })
}

/// A scratch directory removed however the sweep ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn sweep(opts: &SweepOptions) -> Result<SweepReport> {
    if opts.chunk_secs.is_empty() {
        return Err(Error::Usage("--chunk-secs: give at least one size".into()));
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("bagstream-sweep-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)
        .map_err(|e| Error::Conversion(format!("{}: {e}", scratch.0.display())))?;
    let mut runs = Vec::new();
    let mut outputs = Vec::new();
    for (i, &c) in opts.chunk_secs.iter().enumerate() {
        let out = scratch.0.join(format!("run-{i}"));
        let summary = scratch.0.join(format!("run-{i}.json"));
        let started = Instant::now();
        let o = Command::new(&opts.exe)
            .args(["convert", "-q", "--chunk-secs"])
            .arg(c.to_string())
            .arg("--out")
            .arg(&out)
            .arg("--summary-json")
            .arg(&summary)
            .args(&opts.args)
            .args(&opts.bags)
            .output()
            .map_err(|e| Error::Conversion(format!("{}: {e}", opts.exe.display())))?;
        let seconds = started.elapsed().as_secs_f64();
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            let line = err
                .lines()
                .rev()
                .find(|l| l.starts_with("bagstream: error:"))
                .unwrap_or("(no error line)");
            let msg = format!("--chunk-secs {c}: the conversion failed: {line}");
            return Err(if o.status.code() == Some(2) {
                Error::Usage(msg)
            } else {
                Error::Conversion(msg)
            });
        }
        let v: Value = std::fs::read(&summary)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                Error::Conversion(format!("--chunk-secs {c}: no summary was written"))
            })?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        runs.push(SweepRun {
            chunk_secs: c,
            peak_rss: n("peak_rss"),
            end_anon: n("end_anon"),
            encoders_peak: n("encoders_peak_rss"),
            seconds,
            frames: n("frames"),
            bag_bytes: n("bag_bytes"),
        });
        outputs.push(out);
    }
    let mut differences = Vec::new();
    for (run, out) in runs.iter().zip(&outputs).skip(1) {
        if let Some(d) = first_difference(&outputs[0], out) {
            differences.push(format!(
                "--chunk-secs {} and {}: {d}",
                runs[0].chunk_secs, run.chunk_secs
            ));
        }
    }
    Ok(SweepReport { runs, differences })
}

/// The first file that differs between two datasets, or None when they are the same.
pub fn first_difference(a: &Path, b: &Path) -> Option<String> {
    let (fa, fb) = (files(a), files(b));
    if fa != fb {
        let only = fa
            .iter()
            .find(|f| !fb.contains(f))
            .or_else(|| fb.iter().find(|f| !fa.contains(f)));
        return Some(format!(
            "different files ({} in one only)",
            only.map_or("?".into(), |p| p.display().to_string())
        ));
    }
    fa.into_iter()
        .find(|rel| std::fs::read(a.join(rel)).ok() != std::fs::read(b.join(rel)).ok())
        .map(|rel| format!("{} differs", rel.display()))
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in entries.flatten() {
            let r = rel.join(e.file_name());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(r);
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    out
}
