//! Memory as an output of a conversion: checkpoints at every stage boundary (resident set, its
//! anonymous part, the change since the start and since the previous line), an optional log
//! file flushed line by line so that the last line of a killed run says where it was, a
//! background sampler between checkpoints, warning levels, a budget that stops the run
//! cleanly, and the report printed at the end.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use crate::rss::{self, Status};
use crate::{Error, Result};

/// Checkpoints kept for the end-of-run report: those with the largest growth.
pub const TOP_CHECKPOINTS: usize = 10;

/// Points of the RSS curve kept for the plot; past this the curve is thinned (every other
/// point dropped, half as many kept from then on), so it stays this size however long the
/// run.
pub const CURVE_POINTS: usize = 4096;

/// What to record and what to enforce.
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// Append one line per checkpoint and sample to this file.
    pub log: Option<PathBuf>,
    /// Interval of the background sampler's `sample` lines (with a log or a budget).
    pub sample_every: Duration,
    /// Lines at or above these sizes are WARNING / CRITICAL, and the terminal is told once.
    pub warn: Option<u64>,
    pub critical: Option<u64>,
    /// Stop the run cleanly once the converter's RSS passes this.
    pub max_rss: Option<u64>,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            log: None,
            sample_every: Duration::from_millis(500),
            warn: None,
            critical: None,
            max_rss: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
        }
    }
}

/// One checkpoint as the report keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub label: String,
    /// Since the monitor started.
    pub at: Duration,
    pub rss: u64,
    pub anon: u64,
    /// RSS change since the line before, in bytes.
    pub growth: i64,
}

/// RSS over time, thinned to at most [`CURVE_POINTS`] points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curve {
    /// (seconds since start, RSS bytes)
    pub points: Vec<(f64, u64)>,
    stride: usize,
    skipped: usize,
}

impl Curve {
    fn push(&mut self, at: f64, rss: u64) {
        self.stride = self.stride.max(1);
        self.skipped += 1;
        if self.skipped < self.stride {
            return;
        }
        self.skipped = 0;
        self.points.push((at, rss));
        if self.points.len() >= CURVE_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
        }
    }
}

/// The memory figures of a finished run. Each says where it comes from: the kernel keeps the
/// peak of the resident set (VmHWM) but no peak of its anonymous part, so that one is only
/// known at the readings taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryReport {
    /// The converter's peak resident set: the kernel's VmHWM, exact.
    pub peak_rss: Option<u64>,
    /// The converter's VmRSS and RssAnon when the report is made (the end of the run).
    pub end: Option<Status>,
    /// The largest RssAnon among the readings (checkpoints and samples): a lower bound of its
    /// peak, which may fall between readings.
    pub sampled_anon_max: u64,
    /// Readings taken: checkpoints and samples.
    pub readings: u64,
    /// The checkpoints with the largest growth, largest first.
    pub top: Vec<Checkpoint>,
    /// RSS over the run (checkpoints and samples).
    pub curve: Curve,
    /// The coarse checkpoints (run, bag and episode boundaries): marked on the plot.
    pub marks: Vec<Checkpoint>,
}

struct State {
    log: Option<File>,
    log_failed: bool,
    prev_rss: u64,
    last_label: String,
    top: Vec<Checkpoint>,
    sampled_anon_max: u64,
    readings: u64,
    told: Level,
    curve: Curve,
    marks: Vec<Checkpoint>,
}

pub struct MemoryMonitor {
    opts: MemoryOptions,
    log_path: Option<PathBuf>,
    started: Instant,
    base: Status,
    state: Mutex<State>,
    exceeded: AtomicBool,
    exceeded_at: Mutex<Option<String>>,
}

impl MemoryMonitor {
    /// Opens the log (appending) and takes the baseline.
    pub fn new(opts: MemoryOptions) -> Result<Arc<MemoryMonitor>> {
        let log = match &opts.log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::Usage(format!("--memory-log {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let base = rss::status().unwrap_or_default();
        Ok(Arc::new(MemoryMonitor {
            log_path: opts.log.clone(),
            opts,
            started: Instant::now(),
            base,
            state: Mutex::new(State {
                log,
                log_failed: false,
                prev_rss: base.rss,
                last_label: "start".into(),
                top: Vec::new(),
                sampled_anon_max: base.anon,
                readings: 1,
                told: Level::Info,
                curve: Curve::default(),
                marks: Vec::new(),
            }),
            exceeded: AtomicBool::new(false),
            exceeded_at: Mutex::new(None),
        }))
    }

    /// A monitor that logs nothing and enforces nothing (for library callers and tests).
    pub fn quiet() -> Arc<MemoryMonitor> {
        MemoryMonitor::new(MemoryOptions::default()).expect("no log file to open")
    }

    /// Whether fine-grained checkpoints (per window) are wanted: with a log or a budget.
    /// Without them only the coarse ones are taken, so that tiny windows cost nothing.
    pub fn detailed(&self) -> bool {
        self.opts.log.is_some() || self.opts.max_rss.is_some()
    }

    /// Records a stage boundary, marked on the memory plot.
    pub fn checkpoint(&self, label: &str) {
        if let Some(cp) = self.record(label, true) {
            if let Ok(mut st) = self.state.lock() {
                st.marks.push(cp);
            }
        }
    }

    /// [`MemoryMonitor::checkpoint`] for fine-grained stages: the label is only built when
    /// [`MemoryMonitor::detailed`].
    pub fn detail(&self, label: impl FnOnce() -> String) {
        if self.detailed() {
            self.record(&label(), true);
        }
    }

    /// Set once the budget was passed; the message names the checkpoint.
    pub fn exceeded(&self) -> Option<String> {
        if !self.exceeded.load(Ordering::Relaxed) {
            return None;
        }
        self.exceeded_at.lock().ok().and_then(|m| m.clone())
    }

    /// The memory error the run stops with once [`MemoryMonitor::exceeded`].
    pub fn check_budget(&self) -> Result<()> {
        match self.exceeded() {
            Some(msg) => Err(Error::Conversion(msg)),
            None => Ok(()),
        }
    }

    /// Takes one reading; returns it as a checkpoint.
    fn record(&self, label: &str, checkpoint: bool) -> Option<Checkpoint> {
        let now = rss::status()?;
        let enc: u64 = crate::video::running_encoders()
            .into_iter()
            .filter_map(rss::pid_rss)
            .sum();
        let level = match (self.opts.critical, self.opts.warn) {
            (Some(c), _) if now.rss >= c => Level::Critical,
            (_, Some(w)) if now.rss >= w => Level::Warning,
            _ => Level::Info,
        };
        let at = self.started.elapsed();
        let Ok(mut st) = self.state.lock() else {
            return None;
        };
        st.curve.push(at.as_secs_f64(), now.rss);
        let growth = now.rss as i64 - st.prev_rss as i64;
        st.prev_rss = now.rss;
        st.sampled_anon_max = st.sampled_anon_max.max(now.anon);
        st.readings += 1;
        let what = if checkpoint {
            st.last_label = label.to_string();
            label.to_string()
        } else {
            format!("sample (after {})", st.last_label)
        };
        let cp = Checkpoint {
            label: label.to_string(),
            at,
            rss: now.rss,
            anon: now.anon,
            growth,
        };
        if checkpoint {
            let pos = st.top.partition_point(|c| c.growth >= growth);
            if pos < TOP_CHECKPOINTS {
                st.top.insert(pos, cp.clone());
                st.top.truncate(TOP_CHECKPOINTS);
            }
        }
        if let Some(f) = st.log.as_mut() {
            let line = format_line(
                SystemTime::now(),
                level,
                &what,
                now,
                self.base.rss,
                growth,
                enc,
            );
            // One write per line, unbuffered: a killed run's last line is complete.
            if f.write_all(line.as_bytes()).is_err() && !st.log_failed {
                st.log_failed = true;
                eprintln!(
                    "warning: --memory-log {}: cannot write; memory lines are lost",
                    self.log_path
                        .as_deref()
                        .unwrap_or(std::path::Path::new("?"))
                        .display()
                );
            }
        }
        if level > st.told {
            st.told = level;
            let (flag, limit) = match level {
                Level::Critical => ("--critical-rss", self.opts.critical),
                _ => ("--warn-rss", self.opts.warn),
            };
            eprintln!(
                "{}: converter RSS {} reached {flag} {} at {what}",
                level.name().to_ascii_lowercase(),
                rss::format_bytes(now.rss),
                limit.map_or_else(String::new, rss::format_bytes),
            );
        }
        if let Some(max) = self.opts.max_rss {
            let peak = self.run_peak(now);
            if peak > max && !self.exceeded.load(Ordering::Relaxed) {
                if let Ok(mut m) = self.exceeded_at.lock() {
                    *m = Some(format!(
                        "memory budget exceeded: converter peak RSS {} passed --max-rss {} at `{what}`; nothing was written (try a smaller --chunk-secs)",
                        rss::format_bytes(peak),
                        rss::format_bytes(max),
                    ));
                }
                self.exceeded.store(true, Ordering::Relaxed);
            }
        }
        checkpoint.then_some(cp)
    }

    /// The run's peak RSS as far as `now` tells: the kernel's VmHWM once it rose during the
    /// run, which also catches a peak between two readings; before that (a library caller
    /// whose process peaked earlier) the resident set now.
    fn run_peak(&self, now: Status) -> u64 {
        if now.hwm > self.base.hwm {
            now.hwm
        } else {
            now.rss
        }
    }

    /// Starts the background sampler (only with a log or a budget); it stops when the
    /// returned guard is dropped.
    pub fn start_sampler(self: &Arc<Self>) -> Sampler {
        if !self.detailed() {
            return Sampler {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = bounded::<()>(0);
        let me = Arc::clone(self);
        let every = self.opts.sample_every.max(Duration::from_millis(10));
        let thread = std::thread::spawn(move || loop {
            match rx.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => {
                    me.record("", false);
                }
                _ => return,
            }
        });
        Sampler {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn report(&self) -> MemoryReport {
        let end = rss::status();
        let st = self.state.lock().ok();
        MemoryReport {
            peak_rss: end.map(|e| e.hwm),
            end,
            sampled_anon_max: st.as_ref().map_or(0, |s| s.sampled_anon_max),
            readings: st.as_ref().map_or(0, |s| s.readings),
            top: st.as_ref().map(|s| s.top.clone()).unwrap_or_default(),
            curve: st.as_ref().map(|s| s.curve.clone()).unwrap_or_default(),
            marks: st.map(|s| s.marks.clone()).unwrap_or_default(),
        }
    }
}

/// Stops the sampler thread when dropped.
pub struct Sampler {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / rss::MIB
}

fn signed_mib(bytes: i64) -> String {
    format!("{:+.1}MiB", bytes as f64 / rss::MIB)
}

/// `2026-11-23T10:30:45.120Z INFO  chunk 37 written  rss=212.4MiB anon=180.2MiB (Δstart +150.1MiB, Δprev +2.2MiB)`
fn format_line(
    when: SystemTime,
    level: Level,
    what: &str,
    now: Status,
    base: u64,
    growth: i64,
    encoders: u64,
) -> String {
    let mut line = format!(
        "{} {:<5} {what}  rss={:.1}MiB anon={:.1}MiB (Δstart {}, Δprev {})",
        utc_timestamp(when),
        level.name(),
        mib(now.rss),
        mib(now.anon),
        signed_mib(now.rss as i64 - base as i64),
        signed_mib(growth),
    );
    if encoders > 0 {
        line.push_str(&format!(" encoders={:.1}MiB", mib(encoders)));
    }
    line.push('\n');
    line
}

/// ISO 8601 UTC with milliseconds.
fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = crate::inspect::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Parses one log line back: (level, label, rss bytes); None when the line is not complete.
pub fn parse_line(line: &str) -> Option<(String, String, u64)> {
    let (ts, rest) = line.split_once(' ')?;
    if !(ts.len() == 24 && ts.ends_with('Z')) {
        return None;
    }
    let (level, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (label, figures) = rest.split_once("  rss=")?;
    let (rss_mib, tail) = figures.split_once("MiB anon=")?;
    if !tail.contains("Δprev") || !tail.contains(')') {
        return None;
    }
    let rss = (rss_mib.parse::<f64>().ok()? * rss::MIB) as u64;
    Some((level.to_string(), label.to_string(), rss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_as_documented_and_parse_back() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_429_845_120);
        // Tenths of a MiB, as the line prints them.
        let tenths = |t: u64| (t << 20) / 10;
        let now = Status {
            rss: tenths(2124),
            anon: tenths(1802),
            hwm: tenths(2200),
        };
        let line = format_line(
            when,
            Level::Info,
            "chunk 37 written",
            now,
            tenths(623),
            tenths(22) as i64,
            0,
        );
        assert_eq!(
            line,
            "2026-11-23T10:30:45.120Z INFO  chunk 37 written  rss=212.4MiB anon=180.2MiB (Δstart +150.1MiB, Δprev +2.2MiB)\n"
        );
        let (level, label, rss) = parse_line(line.trim_end()).unwrap();
        assert_eq!(
            (level.as_str(), label.as_str(), rss),
            ("INFO", "chunk 37 written", tenths(2124))
        );
        // The figure a line prints is the size `--max-rss` reads from it.
        assert_eq!(crate::rss::parse_size("212.4MiB"), Ok(tenths(2124)));
        let warn = format_line(
            when,
            Level::Critical,
            "sample (after x)",
            now,
            0,
            -5,
            1 << 20,
        );
        assert!(
            warn.contains(" CRITICAL sample (after x)  rss=")
                && warn.ends_with("encoders=1.0MiB\n"),
            "{warn}"
        );
        assert!(parse_line("2026-11-23T10:30:45.120Z INFO  chunk 37 writ").is_none());
    }

    #[test]
    fn keeps_the_largest_growths_and_marks_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mem.log");
        let m = MemoryMonitor::new(MemoryOptions {
            log: Some(log.clone()),
            max_rss: Some(1),
            ..MemoryOptions::default()
        })
        .unwrap();
        let mut hold = Vec::new();
        for i in 0..15 {
            // Touch memory so that some checkpoints grow.
            hold.push(vec![i as u8; (i % 4) * 1_000_000]);
            m.checkpoint(&format!("step {i}"));
        }
        let r = m.report();
        assert_eq!(r.top.len(), TOP_CHECKPOINTS);
        assert!(r.top.windows(2).all(|w| w[0].growth >= w[1].growth));
        let msg = m.exceeded().expect("1 byte is exceeded at once");
        assert!(
            msg.contains("--max-rss") && msg.contains("`step 0`"),
            "{msg}"
        );
        assert!(m.check_budget().is_err());
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 15);
        assert!(text.lines().all(|l| parse_line(l).is_some()), "{text}");
        drop(hold);
    }

    #[test]
    fn the_peak_is_the_kernels_and_the_budget_sees_a_peak_between_readings() {
        let st = rss::status().unwrap();
        let m = MemoryMonitor::new(MemoryOptions {
            max_rss: Some(st.hwm + (32 << 20)),
            ..MemoryOptions::default()
        })
        .unwrap();
        m.checkpoint("before");
        // Enough to lift this process past its earlier peak, whatever other tests did, freed
        // before the next reading.
        let spike = vec![1u8; (st.hwm - st.rss.min(st.hwm)) as usize + (64 << 20)];
        std::hint::black_box(&spike);
        drop(spike);
        assert!(m.exceeded().is_none(), "no reading since the spike");
        m.checkpoint("after");
        let r = m.report();
        let peak = r.peak_rss.unwrap();
        assert!(peak >= st.hwm + (32 << 20), "VmHWM {peak} missed the spike");
        // No reading saw it: the sampled figure is only a lower bound, and named so.
        assert!(r.sampled_anon_max + (32 << 20) < peak, "{r:?}");
        assert_eq!(r.readings, 3);
        let end = r.end.unwrap();
        assert!(end.rss < peak && end.anon <= end.rss);
        let msg = m
            .exceeded()
            .expect("the budget saw the peak between readings");
        assert!(
            msg.contains("converter peak RSS") && msg.contains("at `after`"),
            "{msg}"
        );
    }

    #[test]
    fn the_curve_stays_bounded() {
        let mut c = Curve::default();
        for i in 0..100_000u64 {
            c.push(i as f64, i);
        }
        assert!(c.points.len() < CURVE_POINTS && c.points.len() > CURVE_POINTS / 4);
        assert!(c.points.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(c.points[0], (0.0, 0));
    }

    #[test]
    fn the_sampler_writes_between_checkpoints_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mem.log");
        let m = MemoryMonitor::new(MemoryOptions {
            log: Some(log.clone()),
            sample_every: Duration::from_millis(10),
            warn: Some(1),
            ..MemoryOptions::default()
        })
        .unwrap();
        m.checkpoint("begin");
        let s = m.start_sampler();
        std::thread::sleep(Duration::from_millis(80));
        drop(s);
        let n = std::fs::read_to_string(&log).unwrap().lines().count();
        std::thread::sleep(Duration::from_millis(40));
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), n, "the sampler stopped");
        assert!(text.contains("WARNING sample (after begin)"), "{text}");
    }
}
