//! The aligner: puts the samples of every source on the output frame grid.
//!
//! It is a pure state machine fed with samples in stream order (receive time, then file
//! position): what it emits depends only on that sequence, never on how the sequence was cut
//! into windows, which is what makes the output independent of `--chunk-secs`. The rules are
//! in `docs/alignment.md`; each has a test below with hand-computed values.

use std::collections::VecDeque;

use serde_json::json;

use crate::config::{Match, OnMissing};
use crate::{Time, NANOS};

/// The frame grid: t_k = t0 + round(k * 10^9 / fps) for every t_k <= end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub t0: Time,
    pub end: Time,
    pub fps: u32,
}

impl Grid {
    /// Time of tick k, in exact integer arithmetic (half rounds up).
    pub fn tick(&self, k: u64) -> Time {
        let num = k as i128 * NANOS as i128;
        let fps = self.fps as i128;
        self.t0 + ((2 * num + fps) / (2 * fps)) as Time
    }

    /// Number of ticks (0 when end < t0).
    pub fn len(&self) -> u64 {
        if self.end < self.t0 || self.fps == 0 {
            return 0;
        }
        // Largest k with tick(k) <= end, found from the estimate and then corrected, because
        // the rounding in `tick` may move the boundary by one.
        let span = (self.end - self.t0) as i128;
        let mut k = (span * self.fps as i128 / NANOS as i128) as u64;
        while self.tick(k + 1) <= self.end {
            k += 1;
        }
        while k > 0 && self.tick(k) > self.end {
            k -= 1;
        }
        k + 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How one source picks its messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRule {
    /// Used in reports and errors, e.g. `action <- /gripper_cmd data`.
    pub label: String,
    pub matching: Match,
    pub tolerance: Time,
    pub on_missing: OnMissing,
    /// How long after its stamp a message may be received and still be used: 0 for receive
    /// stamps (the stamp is the receive time), `timeline.max_delay` for header stamps.
    pub max_delay: Time,
    /// The most interior drops this source may cause, as a fraction of the grid's ticks:
    /// above it the episode fails. 1 is no limit.
    pub max_drop_ratio: f64,
    /// The topic's mean message rate over the bag (from its index), for messages.
    pub rate_hz: Option<f64>,
}

/// A tick where a source with `on_missing: fail` had no message within tolerance.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("source {label}: no message within {tolerance_s} s of frame tick {tick} (t = {time_s:.6} s){nearest}")]
pub struct MissingError {
    pub label: String,
    pub tick: u64,
    pub time_s: f64,
    pub tolerance_s: f64,
    pub nearest: String,
}

/// Per-source counts for the sync report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStats {
    /// Ticks where the source had a message within tolerance.
    pub picks: u64,
    /// Ticks where it had none and repeated its previous pick (`on_missing: hold`).
    pub holds: u64,
    /// Ticks dropped because this source had nothing.
    pub drops: u64,
    /// Those of its drops that lie between two emitted frames: they shift the later frames.
    pub drops_interior: u64,
    /// |t - t_k| of every pick, for percentiles.
    dts: DtSketch,
}

impl SourceStats {
    /// The stats as a report keeps them (see [`DtSketch::finished`]).
    fn finished(&self) -> SourceStats {
        SourceStats {
            dts: self.dts.finished(),
            ..self.clone()
        }
    }

    /// Nearest-rank percentile of |dt| over picks, in seconds: exact for up to
    /// [`EXACT_DTS`] picks, within 1/128 (rounded down) beyond; the maximum is always exact.
    /// A report's stats (a run keeps them all) answer any `p` as the next whole percent once
    /// the source has 101 picks or more.
    pub fn dt_percentile(&self, p: f64) -> Option<f64> {
        self.dts.percentile(p).map(|v| v as f64 / NANOS as f64)
    }
}

/// Picks whose |dt| are kept one by one; past this a histogram holds them.
pub const EXACT_DTS: usize = 4096;
/// Histogram buckets per power of two (the relative resolution).
const SUB: usize = 128;

/// |dt| values in fixed memory, so that an hour-long episode does not grow the report: exact
/// while few, then a log-linear histogram (128 buckets per power of two of nanoseconds).
#[derive(Debug, Clone, Default, PartialEq)]
struct DtSketch {
    exact: Vec<u64>,
    hist: Vec<u64>,
    /// Set in a finished report ([`DtSketch::finished`]): the percentile at each whole percent,
    /// 0 to 100, in place of `exact` and `hist`.
    percents: Vec<u64>,
    count: u64,
    max: u64,
}

/// Entries of [`DtSketch::percents`]: whole percents 0 to 100.
const PERCENTS: usize = 101;

impl DtSketch {
    /// What a report keeps: a run holds every episode's report until it ends, and a live
    /// sketch holds up to 64 KB per source (the exact values or the histogram). A finished one
    /// keeps its exact values while they are fewer than [`PERCENTS`], else the exact value at
    /// each whole percent (808 bytes, whatever the episode's length): `percentile` of a whole
    /// percent, p50, p95 and the maximum among them, is the same as before; any other `p` is
    /// rounded up to the next whole percent.
    fn finished(&self) -> DtSketch {
        let mut out = DtSketch {
            count: self.count,
            max: self.max,
            ..DtSketch::default()
        };
        if self.hist.is_empty() && self.exact.len() < PERCENTS {
            out.exact = self.exact.clone();
            out.exact.sort_unstable();
        } else if self.count > 0 {
            let sorted = self.hist.is_empty().then(|| {
                let mut v = self.exact.clone();
                v.sort_unstable();
                v
            });
            out.percents = (0..PERCENTS)
                .filter_map(|p| self.rank_value(self.rank(p as f64), sorted.as_deref()))
                .collect();
            out.percents.shrink_to_fit();
        }
        out
    }

    fn push(&mut self, v: u64) {
        debug_assert!(
            self.percents.is_empty(),
            "a finished sketch takes no values"
        );
        self.count += 1;
        self.max = self.max.max(v);
        if !self.hist.is_empty() {
            self.hist[bucket(v)] += 1;
            return;
        }
        self.exact.push(v);
        if self.exact.len() > EXACT_DTS {
            self.hist = vec![0; bucket(u64::MAX) + 1];
            for x in std::mem::take(&mut self.exact) {
                self.hist[bucket(x)] += 1;
            }
        }
    }

    /// The nearest rank of percentile `p` (1-based).
    fn rank(&self, p: f64) -> u64 {
        (((p / 100.0) * self.count as f64).ceil() as u64).clamp(1, self.count)
    }

    fn percentile(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        if !self.percents.is_empty() {
            let whole = p.clamp(0.0, 100.0).ceil() as usize;
            return self.percents.get(whole).copied();
        }
        if self.hist.is_empty() {
            let mut v = self.exact.clone();
            v.sort_unstable();
            return self.rank_value(self.rank(p), Some(&v));
        }
        self.rank_value(self.rank(p), None)
    }

    /// The value of rank `rank`: from `sorted` (the exact values in order) when given, else
    /// from the histogram.
    fn rank_value(&self, rank: u64, sorted: Option<&[u64]>) -> Option<u64> {
        if rank == self.count {
            return Some(self.max);
        }
        if let Some(v) = sorted {
            return v.get(rank as usize - 1).copied();
        }
        let mut seen = 0;
        for (b, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_low(b));
            }
        }
        Some(self.max)
    }
}

/// Values below SUB have a bucket each; above, SUB buckets per power of two.
fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let shift = (63 - v.leading_zeros()) as usize - 7;
    SUB + shift * SUB + ((v >> shift) as usize - SUB)
}

/// The smallest value of bucket `b`.
fn bucket_low(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let (shift, sub) = ((b - SUB) / SUB, (b - SUB) % SUB);
    ((SUB + sub) as u64) << shift
}

/// Dropped ticks beyond this fraction of an episode's ticks make the run warn.
pub const WARN_DROP_RATIO: f64 = 0.01;

/// Gaps the report lists one by one; past this it only counts them (and keeps the longest),
/// so that an hour-long episode does not grow the report without bound.
pub const MAX_GAPS: usize = 100;

/// A run of consecutive dropped ticks between two emitted frames: the frames after it play
/// `ticks / fps` earlier than their bag time says.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// Its first tick.
    pub tick: u64,
    /// How many ticks it holds.
    pub ticks: u64,
    /// Bag time of its first tick.
    pub time: Time,
    /// The index of the emitted frame just before it.
    pub after_frame: u64,
    /// The sources that dropped at least one of its ticks (indices into the report's
    /// sources), with how many.
    pub sources: Vec<(usize, u64)>,
}

/// The sync report of one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    pub grid: Grid,
    /// Ticks decided.
    pub ticks: u64,
    pub frames: u64,
    /// Every dropped tick: `dropped_leading + dropped_interior + dropped_trailing`.
    pub dropped: u64,
    /// Dropped before the first emitted frame (all of them when no frame was emitted): they
    /// only shorten the episode.
    pub dropped_leading: u64,
    /// Dropped between two emitted frames: each makes every later frame play one period early.
    pub dropped_interior: u64,
    /// Dropped after the last emitted frame: they only shorten the episode.
    pub dropped_trailing: u64,
    /// Ticks of the first and last emitted frames.
    pub first_frame: Option<Time>,
    pub last_frame: Option<Time>,
    /// The episode's limit on `dropped_interior / ticks`.
    pub max_drop_ratio: f64,
    /// The first [`MAX_GAPS`] gaps, in order.
    pub gaps: Vec<Gap>,
    pub gaps_total: u64,
    /// The longest gap (the first of equal length).
    pub longest_gap: Option<Gap>,
    pub sources: Vec<(SourceRule, SourceStats)>,
}

/// Seconds from nanoseconds, for the report's `*_s` fields.
fn secs(ns: Time) -> f64 {
    ns as f64 / NANOS as f64
}

impl SyncReport {
    /// Seconds of bag time that `ticks` grid periods span (`ticks / fps`).
    fn periods(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.grid.fps.max(1))
    }

    fn gap_json(&self, g: &Gap) -> serde_json::Value {
        let sources: Vec<_> = g
            .sources
            .iter()
            .map(|&(s, n)| json!({"source": self.sources[s].0.label, "drops": n}))
            .collect();
        json!({
            "tick": g.tick,
            "ticks": g.ticks,
            "t_ns": g.time,
            "after_frame": g.after_frame,
            "duration_s": self.periods(g.ticks),
            "sources": sources,
        })
    }

    /// The report as in `meta/sync_report.json` (docs/alignment.md): bag times as integer
    /// nanoseconds since the epoch (`*_ns`), durations and differences in seconds (`*_s`).
    pub fn to_json(&self) -> serde_json::Value {
        let sources: Vec<_> = self
            .sources
            .iter()
            .map(|(rule, s)| {
                json!({
                    "source": rule.label,
                    "match": format!("{:?}", rule.matching).to_lowercase(),
                    "tolerance_s": secs(rule.tolerance),
                    "on_missing": format!("{:?}", rule.on_missing).to_lowercase(),
                    "max_drop_ratio": rule.max_drop_ratio,
                    "rate_hz": rule.rate_hz,
                    "picks": s.picks,
                    "holds": s.holds,
                    "drops": s.drops,
                    "drops_interior": s.drops_interior,
                    "dt_p50_s": s.dt_percentile(50.0),
                    "dt_p95_s": s.dt_percentile(95.0),
                    "dt_max_s": s.dt_percentile(100.0),
                })
            })
            .collect();
        let n = self.grid.len();
        json!({
            "fps": self.grid.fps,
            "t0_ns": self.grid.t0,
            "end_ns": self.grid.end,
            "first_tick_ns": (n > 0).then(|| self.grid.tick(0)),
            "last_tick_ns": (n > 0).then(|| self.grid.tick(n - 1)),
            "first_frame_ns": self.first_frame,
            "last_frame_ns": self.last_frame,
            "ticks": self.ticks,
            "frames": self.frames,
            "dropped": self.dropped,
            "dropped_leading": self.dropped_leading,
            "dropped_interior": self.dropped_interior,
            "dropped_trailing": self.dropped_trailing,
            "shift_s": self.periods(self.dropped_interior),
            "max_drop_ratio": self.max_drop_ratio,
            "gaps_total": self.gaps_total,
            "longest_gap": self.longest_gap.as_ref().map(|g| self.gap_json(g)),
            "gaps": self.gaps.iter().map(|g| self.gap_json(g)).collect::<Vec<_>>(),
            "sources": sources,
        })
    }

    /// One line per source (`  action <- /cmd data: picks 0, drops 58 of 58 ticks`), for
    /// messages.
    pub fn source_lines(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|(rule, s)| {
                let holds = if s.holds > 0 || rule.on_missing == OnMissing::Hold {
                    format!(", holds {}", s.holds)
                } else {
                    String::new()
                };
                format!(
                    "  {}: picks {}{holds}, drops {} of {} ticks",
                    rule.label, s.picks, s.drops, self.ticks
                )
            })
            .collect()
    }

    /// The warning for an episode whose interior drops pass [`WARN_DROP_RATIO`] of its ticks,
    /// naming the sources that dropped them.
    pub fn drop_warning(&self) -> Option<String> {
        if (self.dropped_interior as f64) <= WARN_DROP_RATIO * self.ticks as f64 {
            return None;
        }
        let by: Vec<String> = self
            .sources
            .iter()
            .filter(|(_, s)| s.drops_interior > 0)
            .map(|(rule, s)| culprit(&rule.label, s.drops_interior, rule.rate_hz))
            .collect();
        Some(format!(
            "{} of {} ticks ({:.1}%) dropped between frames, so the last frame plays {:.3} s \
             earlier than its bag time; dropped by {}; {ADVICE}",
            self.dropped_interior,
            self.ticks,
            100.0 * self.dropped_interior as f64 / self.ticks.max(1) as f64,
            self.periods(self.dropped_interior),
            by.join(", "),
        ))
    }
}

/// What to do about drops, in every message about them.
pub const ADVICE: &str = "lower `fps` (to at most the slowest source's rate), set \
     `on_missing: hold` for the source, or give it a larger `tolerance`";

/// `LABEL N (its topic runs at R Hz)`.
fn culprit(label: &str, drops: u64, rate_hz: Option<f64>) -> String {
    match rate_hz {
        Some(r) => format!("{label} {drops} (its topic runs at {r:.1} Hz)"),
        None => format!("{label} {drops}"),
    }
}

/// Interior drops over a `max_drop_ratio`: the frames would play faster than recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct DropLimitError {
    /// The grid's ticks.
    pub ticks: u64,
    /// The tick whose frame closed the gap that passed the limit.
    pub tick: u64,
    pub fps: u32,
    /// The episode's interior drops so far and its limit, when that is the limit passed.
    pub episode: Option<(u64, f64)>,
    /// The sources over their own limit; when none is (the episode's limit was passed),
    /// every source with interior drops.
    pub sources: Vec<DropCulprit>,
}

/// A source's part in [`DropLimitError`].
#[derive(Debug, Clone, PartialEq)]
pub struct DropCulprit {
    pub label: String,
    /// Its interior drops so far.
    pub drops: u64,
    pub max_drop_ratio: f64,
    /// Its topic's message rate in the bag.
    pub rate_hz: Option<f64>,
}

impl std::fmt::Display for DropLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |n: u64| 100.0 * n as f64 / self.ticks.max(1) as f64;
        let rate = |c: &DropCulprit| {
            c.rate_hz
                .map_or_else(String::new, |r| format!("; its topic runs at {r:.1} Hz"))
        };
        write!(
            f,
            "too many ticks dropped between frames by tick {} of {}: ",
            self.tick, self.ticks
        )?;
        let each: Vec<String> = match self.episode {
            Some((n, limit)) => {
                write!(
                    f,
                    "{n} ({:.1}%, over the episode's max_drop_ratio {limit}), by ",
                    pct(n)
                )?;
                self.sources
                    .iter()
                    .map(|c| culprit(&c.label, c.drops, c.rate_hz))
                    .collect()
            }
            None => self
                .sources
                .iter()
                .map(|c| {
                    format!(
                        "{} dropped {} ({:.1}%, over its max_drop_ratio {}{})",
                        c.label,
                        c.drops,
                        pct(c.drops),
                        c.max_drop_ratio,
                        rate(c)
                    )
                })
                .collect(),
        };
        write!(
            f,
            "{}; at fps {} every frame after a dropped tick would play one period earlier than \
             recorded; {ADVICE}",
            each.join(", "),
            self.fps
        )
    }
}

impl std::error::Error for DropLimitError {}

struct Entry<T> {
    stamp: Time,
    /// Receive time: decides which ticks the sample arrived in time for.
    recv: Time,
    value: T,
}

/// One emitted frame: the grid tick and each source's chosen value.
pub struct Aligned<'a, T> {
    /// Index of the emitted frame in the episode (0, 1, ...: dropped ticks leave no gap).
    pub frame: u64,
    pub tick: u64,
    pub time: Time,
    pub values: &'a [&'a T],
}

/// Samples buffered beyond this many in all sources mean the stamps are hopelessly out of step
/// (e.g. a header clock hours off); stop with an error rather than grow without bound.
pub const MAX_BUFFERED: usize = 2_000_000;

pub struct Aligner<T> {
    grid: Grid,
    n_ticks: u64,
    rules: Vec<SourceRule>,
    next_tick: u64,
    buffers: Vec<VecDeque<Entry<T>>>,
    /// Receive time of the latest sample: the stream comes in receive-time order, so no later
    /// sample was received before it.
    watermark: Option<Time>,
    last_pick: Vec<Option<T>>,
    stats: Vec<SourceStats>,
    frames: u64,
    ended: bool,
    /// The episode's limit on interior drops per tick of the grid.
    max_drop_ratio: f64,
    /// The dropped ticks since the last emitted frame (or the start): leading, interior or
    /// trailing is known only when the next frame is emitted or the grid ends.
    run: DropRun,
    dropped_leading: u64,
    dropped_interior: u64,
    first_frame: Option<Time>,
    last_frame: Option<Time>,
    gaps: Vec<Gap>,
    gaps_total: u64,
    longest_gap: Option<Gap>,
}

/// Consecutive dropped ticks not yet classified.
#[derive(Debug, Clone, Default)]
struct DropRun {
    start: u64,
    len: u64,
    /// Per source: how many of the run's ticks it dropped.
    by_source: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    #[error(transparent)]
    Missing(#[from] MissingError),
    #[error("more than {MAX_BUFFERED} messages wait for alignment, most of them from {fullest}: its header stamps run far ahead of its receive times (a clock jump?); try `stamp: receive` for it")]
    Overflow { fullest: String },
    #[error(transparent)]
    TooManyDrops(#[from] DropLimitError),
}

impl<T: Clone> Aligner<T> {
    pub fn new(grid: Grid, rules: Vec<SourceRule>) -> Self {
        let n = rules.len();
        Aligner {
            n_ticks: grid.len(),
            grid,
            rules,
            next_tick: 0,
            buffers: (0..n).map(|_| VecDeque::new()).collect(),
            watermark: None,
            last_pick: vec![None; n],
            stats: vec![SourceStats::default(); n],
            frames: 0,
            ended: false,
            max_drop_ratio: 1.0,
            run: DropRun {
                by_source: vec![0; n],
                ..DropRun::default()
            },
            dropped_leading: 0,
            dropped_interior: 0,
            first_frame: None,
            last_frame: None,
            gaps: Vec::new(),
            gaps_total: 0,
            longest_gap: None,
        }
    }

    /// The episode fails once its interior drops pass `ratio` of the grid's ticks (1, the
    /// default here, never).
    pub fn with_max_drop_ratio(mut self, ratio: f64) -> Self {
        self.max_drop_ratio = ratio;
        self
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Ticks decided so far (emitted or dropped).
    pub fn ticks_done(&self) -> u64 {
        self.next_tick
    }

    /// Samples waiting in the buffers.
    pub fn buffered(&self) -> usize {
        self.buffers.iter().map(|b| b.len()).sum()
    }

    /// True once every tick of the grid is decided: later samples cannot change anything.
    pub fn is_done(&self) -> bool {
        self.next_tick >= self.n_ticks
    }

    /// Feed the next sample of the stream (in receive-time order) and emit every frame it
    /// completes. `stamp` places it on the timeline, `recv` is its receive time.
    pub fn push<F>(
        &mut self,
        source: usize,
        stamp: Time,
        recv: Time,
        value: T,
        emit: &mut F,
    ) -> Result<(), AlignError>
    where
        F: FnMut(Aligned<'_, T>),
    {
        if self.is_done() {
            return Ok(());
        }
        self.watermark = Some(self.watermark.map_or(recv, |w| w.max(recv)));
        // A sample older than the pending tick's tolerance can never be picked.
        let pending = self.grid.tick(self.next_tick);
        if stamp >= pending - self.rules[source].tolerance {
            self.buffers[source].push_back(Entry { stamp, recv, value });
            let total: usize = self.buffers.iter().map(|b| b.len()).sum();
            if total > MAX_BUFFERED {
                let fullest = (0..self.rules.len())
                    .max_by_key(|&s| self.buffers[s].len())
                    .map_or_else(String::new, |s| self.rules[s].label.clone());
                return Err(AlignError::Overflow { fullest });
            }
        }
        self.drain(emit)
    }

    /// The stream has ended: decide every remaining tick and return the report.
    pub fn finish<F>(&mut self, emit: &mut F) -> Result<SyncReport, AlignError>
    where
        F: FnMut(Aligned<'_, T>),
    {
        self.ended = true;
        self.drain(emit)?;
        Ok(self.report())
    }

    pub fn report(&self) -> SyncReport {
        // The run still open: before the first frame it is leading, after it trailing.
        let (leading, trailing) = if self.frames == 0 {
            (self.run.len, 0)
        } else {
            (self.dropped_leading, self.run.len)
        };
        SyncReport {
            grid: self.grid,
            ticks: self.next_tick,
            frames: self.frames,
            dropped: self.next_tick - self.frames,
            dropped_leading: leading,
            dropped_interior: self.dropped_interior,
            dropped_trailing: trailing,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            max_drop_ratio: self.max_drop_ratio,
            gaps: self.gaps.clone(),
            gaps_total: self.gaps_total,
            longest_gap: self.longest_gap.clone(),
            sources: self
                .rules
                .iter()
                .cloned()
                .zip(self.stats.iter().map(SourceStats::finished))
                .collect(),
        }
    }

    /// Whether no later sample of `source` can be a candidate for a tick at `t`: every later
    /// sample is received after `t + tolerance + max_delay`.
    fn passed(&self, source: usize, t: Time) -> bool {
        let rule = &self.rules[source];
        self.ended
            || self
                .watermark
                .is_some_and(|w| w > t + rule.tolerance + rule.max_delay)
    }

    fn drain<F>(&mut self, emit: &mut F) -> Result<(), AlignError>
    where
        F: FnMut(Aligned<'_, T>),
    {
        while self.next_tick < self.n_ticks {
            let t = self.grid.tick(self.next_tick);
            if !(0..self.rules.len()).all(|s| self.passed(s, t)) {
                break;
            }
            self.decide(t, emit)?;
            self.next_tick += 1;
            if self.next_tick < self.n_ticks {
                let next = self.grid.tick(self.next_tick);
                for (buf, rule) in self.buffers.iter_mut().zip(&self.rules) {
                    buf.retain(|e| e.stamp >= next - rule.tolerance);
                }
            }
        }
        Ok(())
    }

    /// The index in `buffers[s]` of the sample source `s` picks for a tick at `t`.
    fn pick(&self, s: usize, t: Time) -> Option<usize> {
        let rule = &self.rules[s];
        let horizon = t + rule.tolerance + rule.max_delay;
        let mut best: Option<(usize, Time)> = None;
        for (i, e) in self.buffers[s].iter().enumerate() {
            if e.recv > horizon {
                // Received after the source passed the tick: too late for it, whatever the
                // chunk boundaries.
                continue;
            }
            let dt = e.stamp - t;
            match rule.matching {
                Match::Nearest => {
                    if dt.abs() > rule.tolerance {
                        continue;
                    }
                    let better = match best {
                        None => true,
                        Some((_, bs)) => {
                            let (a, b) = ((e.stamp - t).abs(), (bs - t).abs());
                            // Ties go to the earlier message; equal stamps to the first seen.
                            a < b || (a == b && e.stamp < bs)
                        }
                    };
                    if better {
                        best = Some((i, e.stamp));
                    }
                }
                Match::Asof => {
                    if dt > 0 || -dt > rule.tolerance {
                        continue;
                    }
                    // The latest message; equal stamps go to the last seen.
                    if best.is_none_or(|(_, bs)| e.stamp >= bs) {
                        best = Some((i, e.stamp));
                    }
                }
            }
        }
        best.map(|(i, _)| i)
    }

    fn decide<F>(&mut self, t: Time, emit: &mut F) -> Result<(), AlignError>
    where
        F: FnMut(Aligned<'_, T>),
    {
        let n = self.rules.len();
        let mut picks: Vec<Option<usize>> = Vec::with_capacity(n);
        let mut dropped = false;
        for s in 0..n {
            let p = self.pick(s, t);
            match p {
                Some(i) => {
                    let e = &self.buffers[s][i];
                    self.stats[s].picks += 1;
                    self.stats[s].dts.push((e.stamp - t).unsigned_abs());
                    self.last_pick[s] = Some(e.value.clone());
                }
                None => match self.rules[s].on_missing {
                    OnMissing::Hold if self.last_pick[s].is_some() => self.stats[s].holds += 1,
                    // A hold without a previous pick drops the tick.
                    OnMissing::Drop | OnMissing::Hold => {
                        self.stats[s].drops += 1;
                        self.run.by_source[s] += 1;
                        dropped = true;
                    }
                    OnMissing::Fail => return Err(self.missing(s, t).into()),
                },
            }
            picks.push(p);
        }
        if dropped {
            if self.run.len == 0 {
                self.run.start = self.next_tick;
            }
            self.run.len += 1;
            return Ok(());
        }
        self.close_run(t)?;
        let values: Vec<&T> = picks
            .iter()
            .enumerate()
            .map(|(s, p)| match p {
                Some(i) => &self.buffers[s][*i].value,
                // Checked above: a hold without a previous pick drops the frame.
                None => self.last_pick[s]
                    .as_ref()
                    .expect("hold has a previous pick"),
            })
            .collect();
        emit(Aligned {
            frame: self.frames,
            tick: self.next_tick,
            time: t,
            values: &values,
        });
        self.frames += 1;
        Ok(())
    }

    /// A frame is emitted at tick time `t`: the run of dropped ticks before it is leading
    /// (no frame yet) or a gap, whose drops count against the limits at once, so that an fps
    /// the sources cannot serve fails on the first ticks that show it.
    fn close_run(&mut self, t: Time) -> Result<(), AlignError> {
        self.first_frame.get_or_insert(t);
        self.last_frame = Some(t);
        let run = std::mem::replace(
            &mut self.run,
            DropRun {
                by_source: vec![0; self.rules.len()],
                ..DropRun::default()
            },
        );
        if run.len == 0 {
            return Ok(());
        }
        if self.frames == 0 {
            self.dropped_leading = run.len;
            return Ok(());
        }
        self.dropped_interior += run.len;
        for (s, n) in run.by_source.iter().enumerate() {
            self.stats[s].drops_interior += n;
        }
        let gap = Gap {
            tick: run.start,
            ticks: run.len,
            time: self.grid.tick(run.start),
            after_frame: self.frames - 1,
            sources: run
                .by_source
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s, *n))
                .collect(),
        };
        self.gaps_total += 1;
        if self
            .longest_gap
            .as_ref()
            .is_none_or(|g| gap.ticks > g.ticks)
        {
            self.longest_gap = Some(gap.clone());
        }
        if self.gaps.len() < MAX_GAPS {
            self.gaps.push(gap);
        }
        self.check_drops()
    }

    /// Fails when the interior drops so far pass a source's or the episode's limit: they can
    /// only grow, and the grid's length is known from the start.
    fn check_drops(&self) -> Result<(), AlignError> {
        let ticks = self.n_ticks;
        let over = |dropped: u64, ratio: f64| dropped as f64 > ratio * ticks as f64;
        let culprits = |pick: &dyn Fn(usize) -> bool| -> Vec<DropCulprit> {
            let mut by: Vec<usize> = (0..self.rules.len()).filter(|&s| pick(s)).collect();
            by.sort_by_key(|&s| std::cmp::Reverse(self.stats[s].drops_interior));
            by.iter()
                .map(|&s| DropCulprit {
                    label: self.rules[s].label.clone(),
                    drops: self.stats[s].drops_interior,
                    max_drop_ratio: self.rules[s].max_drop_ratio,
                    rate_hz: self.rules[s].rate_hz,
                })
                .collect()
        };
        let error = |episode, sources| DropLimitError {
            ticks,
            tick: self.next_tick,
            fps: self.grid.fps,
            episode,
            sources,
        };
        let sources =
            culprits(&|s| over(self.stats[s].drops_interior, self.rules[s].max_drop_ratio));
        if !sources.is_empty() {
            return Err(error(None, sources).into());
        }
        if over(self.dropped_interior, self.max_drop_ratio) {
            let sources = culprits(&|s| self.stats[s].drops_interior > 0);
            let episode = Some((self.dropped_interior, self.max_drop_ratio));
            return Err(error(episode, sources).into());
        }
        Ok(())
    }

    fn missing(&self, s: usize, t: Time) -> MissingError {
        let rule = &self.rules[s];
        let nearest = self.buffers[s]
            .iter()
            .map(|e| e.stamp - t)
            .min_by_key(|dt| dt.abs())
            .map_or_else(String::new, |dt| {
                format!(
                    "; nearest buffered message is {:+.6} s away",
                    dt as f64 / 1e9
                )
            });
        MissingError {
            label: rule.label.clone(),
            tick: self.next_tick,
            time_s: t as f64 / NANOS as f64,
            tolerance_s: rule.tolerance as f64 / NANOS as f64,
            nearest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dt_buckets_cover_every_value_in_order() {
        for v in (0..5000u64).chain([1 << 20, 123_456_789, u64::MAX / 3, u64::MAX]) {
            let b = bucket(v);
            assert!(bucket_low(b) <= v, "{v}");
            // Within 1/128 below the value.
            assert!(v - bucket_low(b) <= v / SUB as u64, "{v}");
            assert!(bucket(v.saturating_add(1)) >= b);
        }
    }

    #[test]
    fn dt_percentiles_stay_close_in_fixed_memory_past_the_exact_count() {
        let mut s = DtSketch::default();
        let n = EXACT_DTS as u64 * 10;
        for i in 0..n {
            s.push((i * 7919) % n * 1000); // a permutation of 0, 1000, ..., (n-1)*1000
        }
        assert!(s.exact.is_empty() && s.exact.capacity() == 0);
        assert_eq!(s.percentile(100.0), Some((n - 1) * 1000));
        let p50 = s.percentile(50.0).unwrap() as f64;
        let want = (n / 2 - 1) as f64 * 1000.0;
        assert!(
            (p50 - want).abs() <= want / 128.0 + 1000.0,
            "{p50} vs {want}"
        );
        let mut few = DtSketch::default();
        for v in [5, 1, 4, 2, 3] {
            few.push(v);
        }
        assert_eq!(few.percentile(50.0), Some(3));
        assert_eq!(few.percentile(100.0), Some(5));
    }

    #[test]
    fn a_finished_sketch_keeps_the_whole_percents_in_fixed_memory() {
        let bytes =
            |d: &DtSketch| 8 * (d.exact.capacity() + d.hist.capacity() + d.percents.capacity());
        // Past the exact count (a histogram) and below it (exact values).
        for n in [EXACT_DTS as u64 * 3, 3000] {
            let mut s = DtSketch::default();
            for i in 0..n {
                s.push(2_000_000 + (i * 7919 % n) * 1000);
            }
            let f = s.finished();
            for p in 0..=100 {
                let p = f64::from(p);
                assert_eq!(f.percentile(p), s.percentile(p), "n {n}, p{p}");
            }
            // Between whole percents: rounded up.
            assert_eq!(f.percentile(94.2), s.percentile(95.0));
            assert!(bytes(&s) >= 24 << 10, "{}", bytes(&s));
            assert!(bytes(&f) <= 8 * PERCENTS, "{}", bytes(&f));
        }
        // Few values stay as they are.
        let mut few = DtSketch::default();
        for v in [5, 1, 4, 2, 3] {
            few.push(v);
        }
        let f = few.finished();
        assert_eq!(f.exact, vec![1, 2, 3, 4, 5]);
        assert_eq!(f.percentile(50.0), Some(3));
        assert_eq!(f.percentile(37.5), few.percentile(37.5));
        assert_eq!(DtSketch::default().finished().percentile(50.0), None);
    }

    const MS: Time = 1_000_000;

    fn rule(matching: Match, tol_ms: i64, on_missing: OnMissing) -> SourceRule {
        SourceRule {
            label: "s".into(),
            matching,
            tolerance: tol_ms * MS,
            on_missing,
            max_delay: 0,
            max_drop_ratio: 1.0,
            rate_hz: None,
        }
    }

    /// Run the aligner over (source, stamp_ms, value) samples in stream order; return
    /// (tick, values) per emitted frame and the report.
    fn run(
        grid: Grid,
        rules: Vec<SourceRule>,
        samples: &[(usize, i64, i32)],
    ) -> (Vec<(u64, Vec<i32>)>, SyncReport) {
        let mut a = Aligner::new(grid, rules);
        let mut out = Vec::new();
        let mut emit =
            |f: Aligned<'_, i32>| out.push((f.tick, f.values.iter().map(|v| **v).collect()));
        for &(s, t, v) in samples {
            a.push(s, t * MS, t * MS, v, &mut emit).unwrap();
        }
        let r = a.finish(&mut emit).unwrap();
        (out, r)
    }

    #[test]
    fn grid_ticks_are_exact_and_need_not_divide_the_rate() {
        let g = Grid {
            t0: 1_000,
            end: 1_000 + NANOS,
            fps: 3,
        };
        // 10^9/3 = 333333333.33 -> 333333333; 2*10^9/3 = 666666666.67 -> 666666667.
        assert_eq!(g.tick(0), 1_000);
        assert_eq!(g.tick(1), 1_000 + 333_333_333);
        assert_eq!(g.tick(2), 1_000 + 666_666_667);
        assert_eq!(g.tick(3), 1_000 + NANOS);
        assert_eq!(g.len(), 4, "the tick at exactly `end` is included");
        let g7 = Grid {
            t0: 0,
            end: NANOS - 1,
            fps: 7,
        };
        assert_eq!(g7.len(), 7);
        assert_eq!(g7.tick(1), 142_857_143); // 142857142.857 rounds up
        assert_eq!(
            Grid {
                t0: 5,
                end: 4,
                fps: 10
            }
            .len(),
            0
        );
        assert_eq!(
            Grid {
                t0: 5,
                end: 5,
                fps: 10
            }
            .len(),
            1
        );
    }

    #[test]
    fn nearest_picks_the_smallest_distance_and_ties_go_earlier() {
        // 10 fps grid at 0, 100, 200 ms; tolerance 50 ms.
        let g = Grid {
            t0: 0,
            end: 200 * MS,
            fps: 10,
        };
        let samples = [
            (0, 0, 0),
            (0, 60, 1),
            (0, 140, 2),
            (0, 150, 3),
            (0, 190, 4),
            (0, 210, 5),
        ];
        let (frames, r) = run(g, vec![rule(Match::Nearest, 50, OnMissing::Drop)], &samples);
        // t=0 -> 0 (dt 0); t=100 -> 60 (dt 40) beats 140 (dt 40)? tie: earlier wins -> 1;
        // t=200 -> 190 and 210 tie at 10 ms -> earlier, 4.
        assert_eq!(frames, vec![(0, vec![0]), (1, vec![1]), (2, vec![4])]);
        assert_eq!(r.sources[0].1.picks, 3);
        assert_eq!(r.sources[0].1.dt_percentile(100.0), Some(0.040));
        assert_eq!(r.sources[0].1.dt_percentile(50.0), Some(0.010));
    }

    #[test]
    fn asof_never_looks_ahead() {
        let g = Grid {
            t0: 0,
            end: 200 * MS,
            fps: 10,
        };
        let samples = [(0, 0, 0), (0, 99, 1), (0, 101, 2), (0, 200, 3)];
        let (frames, _) = run(g, vec![rule(Match::Asof, 50, OnMissing::Drop)], &samples);
        // t=100 takes 99 (dt 1 ms), not the closer-in-future 101.
        assert_eq!(frames, vec![(0, vec![0]), (1, vec![1]), (2, vec![3])]);
    }

    #[test]
    fn tolerance_bounds_are_inclusive_and_misses_drop() {
        let g = Grid {
            t0: 0,
            end: 300 * MS,
            fps: 10,
        };
        // Tick 100 has 150 at exactly 50 ms: picked. Tick 200 has nothing within 50 ms. Tick 300: 300.
        let samples = [(0, 0, 0), (0, 150, 1), (0, 251, 9), (0, 300, 2)];
        let (frames, r) = run(g, vec![rule(Match::Nearest, 50, OnMissing::Drop)], &samples);
        // Tick 200: 150 is 50 ms away (inclusive) and earlier than 251 (51 ms): picked.
        assert_eq!(
            frames,
            vec![(0, vec![0]), (1, vec![1]), (2, vec![1]), (3, vec![2])]
        );
        let (frames, r2) = run(g, vec![rule(Match::Nearest, 49, OnMissing::Drop)], &samples);
        assert_eq!(frames, vec![(0, vec![0]), (3, vec![2])]);
        assert_eq!((r2.frames, r2.dropped, r2.sources[0].1.drops), (2, 2, 2));
        assert_eq!(r.dropped, 0);
    }

    #[test]
    fn hold_repeats_the_previous_pick_and_drops_until_there_is_one() {
        let g = Grid {
            t0: 0,
            end: 400 * MS,
            fps: 10,
        };
        // Source 0 every 100 ms; source 1 (hold) only at 100 and 400.
        let samples = [
            (0, 0, 0),
            (0, 100, 1),
            (1, 100, 10),
            (0, 200, 2),
            (0, 300, 3),
            (0, 400, 4),
            (1, 400, 40),
        ];
        let rules = vec![
            rule(Match::Nearest, 20, OnMissing::Drop),
            rule(Match::Nearest, 20, OnMissing::Hold),
        ];
        let (frames, r) = run(g, rules, &samples);
        assert_eq!(
            frames,
            vec![
                (1, vec![1, 10]),
                (2, vec![2, 10]),
                (3, vec![3, 10]),
                (4, vec![4, 40])
            ]
        );
        let s1 = &r.sources[1].1;
        assert_eq!(
            (s1.picks, s1.holds, s1.drops),
            (2, 2, 1),
            "tick 0 dropped: nothing to hold yet"
        );
        assert_eq!((r.frames, r.dropped, r.ticks), (4, 1, 5));
        assert_eq!(
            (r.dropped_leading, r.dropped_interior, r.dropped_trailing),
            (1, 0, 0),
            "a hold fills what would be a gap; only the tick before any pick is dropped"
        );
        assert_eq!((r.gaps_total, r.sources[1].1.drops_interior), (0, 0));
    }

    #[test]
    fn fail_stops_the_episode_naming_the_tick() {
        let g = Grid {
            t0: 0,
            end: 200 * MS,
            fps: 10,
        };
        let mut a = Aligner::new(
            g,
            vec![SourceRule {
                label: "action <- /cmd data".into(),
                ..rule(Match::Nearest, 20, OnMissing::Fail)
            }],
        );
        let mut emit = |_: Aligned<'_, i32>| {};
        a.push(0, 0, 0, 0, &mut emit).unwrap();
        let err = a.push(0, 190 * MS, 190 * MS, 1, &mut emit).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("action <- /cmd data") && text.contains("tick 1"),
            "{text}"
        );
        assert!(text.contains("0.100000 s"), "{text}");
    }

    #[test]
    fn output_does_not_depend_on_when_the_stream_ends_being_fed() {
        // Finalising early (a sample far ahead) or at finish gives the same frames.
        let g = Grid {
            t0: 0,
            end: 100 * MS,
            fps: 10,
        };
        let (a, _) = run(
            g,
            vec![rule(Match::Nearest, 50, OnMissing::Drop)],
            &[(0, 0, 0), (0, 90, 1)],
        );
        let (b, _) = run(
            g,
            vec![rule(Match::Nearest, 50, OnMissing::Drop)],
            &[(0, 0, 0), (0, 90, 1), (0, 10_000, 2)],
        );
        assert_eq!(a, b);
    }

    /// Like `run`, with explicit receive times: (source, stamp_ms, recv_ms, value).
    fn run_recv(
        grid: Grid,
        rules: Vec<SourceRule>,
        samples: &[(usize, i64, i64, i32)],
    ) -> Vec<(u64, Vec<i32>)> {
        let mut a = Aligner::new(grid, rules);
        let mut out = Vec::new();
        let mut emit =
            |f: Aligned<'_, i32>| out.push((f.tick, f.values.iter().map(|v| **v).collect()));
        for &(s, t, r, v) in samples {
            a.push(s, t * MS, r * MS, v, &mut emit).unwrap();
        }
        a.finish(&mut emit).unwrap();
        out
    }

    #[test]
    fn header_stamps_are_used_when_received_within_max_delay() {
        let g = Grid {
            t0: 0,
            end: 100 * MS,
            fps: 10,
        };
        let mut r = rule(Match::Nearest, 50, OnMissing::Drop);
        r.max_delay = 100 * MS;
        // Stamp 95 comes after stamp 120 in stream order, received 130: within tick 100's
        // horizon (100 + 50 + 100 = 250), so it is the nearest.
        let frames = run_recv(
            g,
            vec![r.clone()],
            &[
                (0, 0, 0, 0),
                (0, 120, 125, 1),
                (0, 95, 130, 2),
                (0, 400, 405, 3),
            ],
        );
        assert_eq!(frames, vec![(0, vec![0]), (1, vec![2])]);
        // Received at 300, past the horizon: too late, whatever the chunking; 120 is picked.
        let frames = run_recv(
            g,
            vec![r],
            &[
                (0, 0, 0, 0),
                (0, 120, 125, 1),
                (0, 99, 300, 2),
                (0, 400, 405, 3),
            ],
        );
        assert_eq!(frames, vec![(0, vec![0]), (1, vec![1])]);
    }

    #[test]
    fn a_silent_source_does_not_make_the_others_pile_up() {
        // Source 1 publishes once (on change) and holds; source 0 streams at 100 Hz for 100 s.
        let g = Grid {
            t0: 0,
            end: 100_000 * MS,
            fps: 10,
        };
        let rules = vec![
            rule(Match::Nearest, 50, OnMissing::Drop),
            rule(Match::Asof, 50, OnMissing::Hold),
        ];
        let mut a = Aligner::new(g, rules);
        let mut frames = 0u64;
        let mut emit = |_: Aligned<'_, i32>| frames += 1;
        a.push(1, 0, 0, 7, &mut emit).unwrap();
        let mut most = 0;
        for i in 0..10_000i64 {
            a.push(0, i * 10 * MS, i * 10 * MS, 0, &mut emit).unwrap();
            most = most.max(a.buffered());
        }
        let r = a.finish(&mut emit).unwrap();
        assert!(most <= 12, "{most} samples buffered at most");
        assert_eq!((r.frames, r.sources[1].1.holds), (1001, 1000));
    }

    /// Two sources on a 10 fps grid of 12 ticks (0..1100 ms): source 0 only at 200, 300, 600,
    /// 700, 900 ms; source 1 at every tick but 600 ms.
    fn two_gaps() -> (Vec<(u64, Vec<i32>)>, SyncReport) {
        let g = Grid {
            t0: 0,
            end: 1100 * MS,
            fps: 10,
        };
        let mut samples = Vec::new();
        for k in 0..12i64 {
            let t = k * 100;
            if [200, 300, 600, 700, 900].contains(&t) {
                samples.push((0, t, t as i32));
            }
            if t != 600 {
                samples.push((1, t, t as i32));
            }
        }
        let rules = vec![
            SourceRule {
                label: "a <- /a data".into(),
                ..rule(Match::Nearest, 20, OnMissing::Drop)
            },
            SourceRule {
                label: "b <- /b data".into(),
                ..rule(Match::Nearest, 20, OnMissing::Drop)
            },
        ];
        run(g, rules, &samples)
    }

    #[test]
    fn drops_are_leading_interior_or_trailing_and_gaps_are_listed() {
        let (frames, r) = two_gaps();
        // Tick: 0 1 2 3 4 5 6 7 8 9 10 11
        // a:    - - x x - - x x - x -  -
        // b:    x x x x x x - x x x x  x
        // Frames at ticks 2, 3, 7, 9; 0-1 before the first, 4-6 and 8 between, 10-11 after.
        let ticks: Vec<u64> = frames.iter().map(|f| f.0).collect();
        assert_eq!(ticks, [2, 3, 7, 9]);
        assert_eq!((r.ticks, r.frames, r.dropped), (12, 4, 8));
        assert_eq!(
            (r.dropped_leading, r.dropped_interior, r.dropped_trailing),
            (2, 4, 2)
        );
        assert_eq!(
            (r.first_frame, r.last_frame),
            (Some(200 * MS), Some(900 * MS))
        );
        let (a, b) = (&r.sources[0].1, &r.sources[1].1);
        assert_eq!((a.drops, a.drops_interior), (7, 3)); // ticks 0 1 4 5 8 10 11; 4 5 8
        assert_eq!((b.drops, b.drops_interior), (1, 1)); // tick 6
        assert_eq!(
            r.gaps,
            [
                Gap {
                    tick: 4,
                    ticks: 3,
                    time: 400 * MS,
                    after_frame: 1,
                    sources: vec![(0, 2), (1, 1)],
                },
                Gap {
                    tick: 8,
                    ticks: 1,
                    time: 800 * MS,
                    after_frame: 2,
                    sources: vec![(0, 1)],
                },
            ]
        );
        assert_eq!(r.gaps_total, 2);
        assert_eq!(r.longest_gap.as_ref(), Some(&r.gaps[0]));
    }

    #[test]
    fn the_report_json_gives_bag_times_in_ns_and_durations_in_s() {
        let (_, r) = two_gaps();
        let j = r.to_json();
        assert_eq!(j["fps"], 10);
        assert_eq!(j["t0_ns"], 0);
        assert_eq!(j["end_ns"], 1_100_000_000i64);
        assert_eq!(j["first_tick_ns"], 0);
        assert_eq!(j["last_tick_ns"], 1_100_000_000i64);
        assert_eq!(j["first_frame_ns"], 200_000_000);
        assert_eq!(j["last_frame_ns"], 900_000_000);
        assert_eq!(
            (
                &j["dropped"],
                &j["dropped_leading"],
                &j["dropped_interior"],
                &j["dropped_trailing"]
            ),
            (&json!(8), &json!(2), &json!(4), &json!(2))
        );
        assert_eq!(j["shift_s"], 0.4, "4 interior drops at 10 fps");
        assert_eq!(j["gaps_total"], 2);
        assert_eq!(
            j["gaps"][0],
            json!({"tick": 4, "ticks": 3, "t_ns": 400_000_000, "after_frame": 1,
                   "duration_s": 0.3, "sources": [{"source": "a <- /a data", "drops": 2},
                                                 {"source": "b <- /b data", "drops": 1}]})
        );
        assert_eq!(j["longest_gap"], j["gaps"][0]);
        assert_eq!(j["sources"][0]["drops"], 7);
        assert_eq!(j["sources"][0]["drops_interior"], 3);
        // Every key says its unit: `_ns` bag times are integers, `_s` durations are seconds.
        for (k, v) in j.as_object().unwrap() {
            if k.ends_with("_ns") {
                assert!(v.is_i64(), "{k}: {v}");
            }
        }
        let lines = r.source_lines();
        assert_eq!(
            lines,
            [
                "  a <- /a data: picks 5, drops 7 of 12 ticks",
                "  b <- /b data: picks 11, drops 1 of 12 ticks"
            ]
        );
        let w = r.drop_warning().expect("4 of 12 ticks is over 1%");
        assert!(
            w.starts_with("4 of 12 ticks (33.3%) dropped between frames")
                && w.contains("0.400 s earlier")
                && w.contains("a <- /a data 3, b <- /b data 1")
                && w.contains("lower `fps`"),
            "{w}"
        );
    }

    #[test]
    fn the_gap_list_is_bounded_and_keeps_the_longest() {
        // 501 ticks at 10 fps; a message at every even tick but 300: the odd ticks are 1-tick
        // gaps, except 299..301, one gap of 3 (the 150th).
        let g = Grid {
            t0: 0,
            end: 50_000 * MS,
            fps: 10,
        };
        let samples: Vec<(usize, i64, i32)> = (0..=500i64)
            .filter(|k| k % 2 == 0 && *k != 300)
            .map(|k| (0, k * 100, 0))
            .collect();
        let (frames, r) = run(g, vec![rule(Match::Nearest, 20, OnMissing::Drop)], &samples);
        assert_eq!(frames.len(), 250);
        assert_eq!(r.gaps_total, 249);
        assert_eq!(r.gaps.len(), MAX_GAPS);
        assert_eq!((r.gaps[0].tick, r.gaps[99].tick), (1, 199));
        assert_eq!(
            r.longest_gap,
            Some(Gap {
                tick: 299,
                ticks: 3,
                time: 29_900 * MS,
                after_frame: 149,
                sources: vec![(0, 3)],
            })
        );
        assert_eq!(
            (r.dropped_leading, r.dropped_interior, r.dropped_trailing),
            (0, 251, 0)
        );
        assert_eq!(r.to_json()["gaps"].as_array().unwrap().len(), MAX_GAPS);
    }

    /// 20 ticks at 10 fps (0..1900 ms), one source at every tick but 300, 700 and 800 ms
    /// (gaps at tick 3 and 7-8, closed by the frames at ticks 4 and 9). Returns the frames
    /// emitted and the error, if any.
    fn limited(episode: f64, source: f64) -> (Vec<u64>, Option<AlignError>) {
        let g = Grid {
            t0: 0,
            end: 1900 * MS,
            fps: 10,
        };
        let rules = vec![SourceRule {
            label: "cam <- /cam".into(),
            max_drop_ratio: source,
            rate_hz: Some(8.5),
            ..rule(Match::Nearest, 20, OnMissing::Drop)
        }];
        let mut a = Aligner::new(g, rules).with_max_drop_ratio(episode);
        let mut ticks = Vec::new();
        let mut emit = |f: Aligned<'_, i32>| ticks.push(f.tick);
        for k in (0..20i64).filter(|k| ![3, 7, 8].contains(k)) {
            if let Err(e) = a.push(0, k * 100 * MS, k * 100 * MS, 0, &mut emit) {
                return (ticks, Some(e));
            }
        }
        let err = a.finish(&mut emit).err();
        (ticks, err)
    }

    #[test]
    fn interior_drops_over_the_limit_stop_the_episode_at_once() {
        // 0.1 of 20 ticks allows 2: the third interior drop, known at tick 9, fails.
        let (ticks, err) = limited(0.1, 1.0);
        assert_eq!(ticks, [0, 1, 2, 4, 5, 6], "nothing after the failing tick");
        let Some(AlignError::TooManyDrops(e)) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (e.ticks, e.tick, e.fps, e.episode),
            (20, 9, 10, Some((3, 0.1)))
        );
        let cam = DropCulprit {
            label: "cam <- /cam".into(),
            drops: 3,
            max_drop_ratio: 1.0,
            rate_hz: Some(8.5),
        };
        assert_eq!(e.sources, std::slice::from_ref(&cam));
        let text = e.to_string();
        assert_eq!(
            text,
            "too many ticks dropped between frames by tick 9 of 20: 3 (15.0%, over the \
             episode's max_drop_ratio 0.1), by cam <- /cam 3 (its topic runs at 8.5 Hz); at fps \
             10 every frame after a dropped tick would play one period earlier than recorded; \
             lower `fps` (to at most the slowest source's rate), set `on_missing: hold` for the \
             source, or give it a larger `tolerance`"
        );
        // The same limit on the source names it.
        let (_, err) = limited(1.0, 0.1);
        let Some(AlignError::TooManyDrops(e)) = err else {
            panic!("{err:?}")
        };
        assert_eq!((e.tick, e.episode), (9, None));
        assert_eq!(
            e.sources,
            [DropCulprit {
                max_drop_ratio: 0.1,
                ..cam
            }]
        );
        assert!(
            e.to_string().contains(
                ": cam <- /cam dropped 3 (15.0%, over its max_drop_ratio 0.1; its topic runs at 8.5 Hz); at fps 10"
            ),
            "{e}"
        );
        // 0 allows none: the first gap fails when tick 4 shows it.
        let (ticks, err) = limited(0.0, 1.0);
        assert_eq!(ticks, [0, 1, 2]);
        let Some(AlignError::TooManyDrops(e)) = err else {
            panic!("{err:?}")
        };
        assert_eq!((e.tick, e.episode), (4, Some((1, 0.0))));
        // At the limit (3 of 20 = 0.15) it passes; 1 never fails.
        for ratio in [0.15, 1.0] {
            let (ticks, err) = limited(ratio, ratio);
            assert!(err.is_none(), "{ratio}: {err:?}");
            assert_eq!(ticks.len(), 17);
        }
    }

    #[test]
    fn leading_and_trailing_drops_never_count_against_the_limit() {
        // Ticks 0..19; the source only covers ticks 5..14: 5 leading and 5 trailing drops.
        let g = Grid {
            t0: 0,
            end: 1900 * MS,
            fps: 10,
        };
        let mut samples: Vec<(usize, i64, i32)> =
            (5..15i64).map(|k| (0, k * 100, k as i32)).collect();
        // A second source that runs the whole episode, so the grid spans it.
        samples.extend((0..20i64).map(|k| (1, k * 100, 0)));
        samples.sort_by_key(|s| s.1);
        let rules = vec![
            SourceRule {
                max_drop_ratio: 0.0,
                ..rule(Match::Nearest, 20, OnMissing::Drop)
            },
            rule(Match::Nearest, 20, OnMissing::Drop),
        ];
        let mut a = Aligner::new(g, rules).with_max_drop_ratio(0.0);
        let mut n = 0;
        let mut emit = |_: Aligned<'_, i32>| n += 1;
        for &(s, t, v) in &samples {
            a.push(s, t * MS, t * MS, v, &mut emit).unwrap();
        }
        let r = a.finish(&mut emit).unwrap();
        assert_eq!(n, 10);
        assert_eq!(
            (r.dropped_leading, r.dropped_interior, r.dropped_trailing),
            (5, 0, 5)
        );
        assert_eq!(r.drop_warning(), None);
    }

    #[test]
    fn with_no_frame_every_drop_is_leading() {
        let g = Grid {
            t0: 0,
            end: 300 * MS,
            fps: 10,
        };
        let (frames, r) = run(
            g,
            vec![rule(Match::Nearest, 10, OnMissing::Drop)],
            &[(0, 50, 0), (0, 250, 1)],
        );
        assert!(frames.is_empty());
        assert_eq!(
            (r.dropped_leading, r.dropped_interior, r.dropped_trailing),
            (4, 0, 0)
        );
        assert_eq!((r.first_frame, r.last_frame), (None, None));
        assert_eq!(r.source_lines(), ["  s: picks 0, drops 4 of 4 ticks"]);
    }
}
