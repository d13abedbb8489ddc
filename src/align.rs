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

/// The sync report of one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    pub ticks: u64,
    pub frames: u64,
    pub dropped: u64,
    pub sources: Vec<(SourceRule, SourceStats)>,
}

impl SyncReport {
    pub fn to_json(&self) -> serde_json::Value {
        let sources: Vec<_> = self
            .sources
            .iter()
            .map(|(rule, s)| {
                json!({
                    "source": rule.label,
                    "match": format!("{:?}", rule.matching).to_lowercase(),
                    "tolerance_s": rule.tolerance as f64 / NANOS as f64,
                    "on_missing": format!("{:?}", rule.on_missing).to_lowercase(),
                    "picks": s.picks,
                    "holds": s.holds,
                    "drops": s.drops,
                    "dt_p50_s": s.dt_percentile(50.0),
                    "dt_p95_s": s.dt_percentile(95.0),
                    "dt_max_s": s.dt_percentile(100.0),
                })
            })
            .collect();
        json!({
            "ticks": self.ticks,
            "frames": self.frames,
            "dropped": self.dropped,
            "sources": sources,
        })
    }
}

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
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    #[error(transparent)]
    Missing(#[from] MissingError),
    #[error("more than {MAX_BUFFERED} messages wait for alignment, most of them from {fullest}: its header stamps run far ahead of its receive times (a clock jump?); try `stamp: receive` for it")]
    Overflow { fullest: String },
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
        }
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
        SyncReport {
            ticks: self.next_tick,
            frames: self.frames,
            dropped: self.next_tick - self.frames,
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
                    OnMissing::Drop => {
                        self.stats[s].drops += 1;
                        dropped = true;
                    }
                    OnMissing::Hold => {
                        if self.last_pick[s].is_some() {
                            self.stats[s].holds += 1;
                        } else {
                            self.stats[s].drops += 1;
                            dropped = true;
                        }
                    }
                    OnMissing::Fail => return Err(self.missing(s, t).into()),
                },
            }
            picks.push(p);
        }
        if dropped {
            return Ok(());
        }
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
}
