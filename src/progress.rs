//! Progress on stderr: bars (bags, frames, bytes with rates and ETA) on a terminal, plain
//! periodic lines otherwise (logs of batch jobs), nothing when disabled.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::align::SyncReport;

/// How often the plain mode prints a line.
const LINE_EVERY: Duration = Duration::from_secs(5);

struct Bars {
    _multi: MultiProgress,
    bags: ProgressBar,
    frames: ProgressBar,
    bytes: ProgressBar,
}

struct Lines {
    last: Mutex<Instant>,
    started: Instant,
}

enum Mode {
    Off,
    Bars(Bars),
    Lines(Lines),
}

pub struct Progress {
    mode: Mode,
    bags_total: usize,
    frames: AtomicU64,
    frames_total: AtomicU64,
    bytes: AtomicU64,
    bytes_total: AtomicU64,
    bag: Mutex<String>,
}

impl Progress {
    pub fn new(enabled: bool, bags_total: usize) -> Progress {
        let mode = if !enabled {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = |t: &str| ProgressStyle::with_template(t).expect("valid template");
            let bags = multi.add(ProgressBar::new(bags_total as u64));
            bags.set_style(style("bags   {bar:30} {pos}/{len} {wide_msg}"));
            let frames = multi.add(ProgressBar::new(0));
            frames.set_style(style("frames {bar:30} {pos}/{len} {per_sec} eta {eta}"));
            let bytes = multi.add(ProgressBar::new(0));
            bytes.set_style(style(
                "bytes  {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ));
            Mode::Bars(Bars {
                _multi: multi,
                bags,
                frames,
                bytes,
            })
        } else {
            Mode::Lines(Lines {
                last: Mutex::new(Instant::now()),
                started: Instant::now(),
            })
        };
        Progress {
            mode,
            bags_total,
            frames: AtomicU64::new(0),
            frames_total: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            bag: Mutex::new(String::new()),
        }
    }

    pub fn start_bag(&self, index: usize, path: &Path, ticks: u64, bytes: u64) {
        self.frames.store(0, Ordering::Relaxed);
        self.frames_total.store(ticks, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        let name = format!("[{}/{}] {}", index + 1, self.bags_total, path.display());
        match &self.mode {
            Mode::Off => {}
            Mode::Bars(b) => {
                b.bags.set_position(index as u64);
                b.bags.set_message(path.display().to_string());
                b.frames.reset();
                b.frames.set_length(ticks);
                b.bytes.reset();
                b.bytes.set_length(bytes);
            }
            Mode::Lines(_) => eprintln!("{name}: up to {ticks} frames, {bytes} bytes of chunks"),
        }
        if let Ok(mut b) = self.bag.lock() {
            *b = name;
        }
    }

    /// One frame written.
    pub fn frame(&self) {
        let n = self.frames.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.mode {
            Mode::Off => {}
            Mode::Bars(b) => b.frames.inc(1),
            Mode::Lines(l) => {
                if n % 64 == 0 {
                    self.maybe_line(l);
                }
            }
        }
    }

    /// Bytes of messages read.
    pub fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Mode::Bars(b) = &self.mode {
            b.bytes.inc(n);
        }
    }

    fn maybe_line(&self, l: &Lines) {
        let Ok(mut last) = l.last.lock() else { return };
        if last.elapsed() < LINE_EVERY {
            return;
        }
        *last = Instant::now();
        let secs = l.started.elapsed().as_secs_f64();
        let bag = self.bag.lock().map(|b| b.clone()).unwrap_or_default();
        eprintln!(
            "{bag}: frame {}/{} ({:.0} s elapsed)",
            self.frames.load(Ordering::Relaxed),
            self.frames_total.load(Ordering::Relaxed),
            secs
        );
    }

    pub fn finish_bag(&self, report: &SyncReport) {
        let bag = self.bag.lock().map(|b| b.clone()).unwrap_or_default();
        match &self.mode {
            Mode::Off => {}
            Mode::Bars(b) => {
                b.bags.inc(1);
                b.frames.set_position(b.frames.length().unwrap_or(0));
                b.bytes.set_position(b.bytes.length().unwrap_or(0));
                b.bags.println(format!(
                    "{bag}: {} frames, {} dropped",
                    report.frames, report.dropped
                ));
            }
            Mode::Lines(_) => {
                eprintln!(
                    "{bag}: {} frames, {} dropped",
                    report.frames, report.dropped
                )
            }
        }
    }

    pub fn done(&self) {
        if let Mode::Bars(b) = &self.mode {
            b.bags.finish_and_clear();
            b.frames.finish_and_clear();
            b.bytes.finish_and_clear();
        }
    }
}
