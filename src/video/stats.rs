//! Per-channel camera stats, as lerobot 0.6.1's `compute_episode_stats` makes them for image
//! and video features: a sample of the episode's frames (`sample_indices`), each
//! downsampled (`auto_downsample_height_width`), all their pixels fed to one
//! `RunningQuantileStats` update per channel, every stat but `count` divided by 255, and
//! `count` the number of sampled frames.
//!
//! Pixel values are 0..=255, so a 256-bin count per channel holds everything that update
//! needs: memory is constant whatever the episode length, and no frame is kept. Everything is
//! computed in f64; lerobot sums in float32, so its means can differ from these in the third
//! decimal on large frames, while the quantiles agree to 1e-6.

use serde_json::{Map, Value};

use super::VideoError;
use crate::dataset::stats::{from_value_counts, FeatureStats, STAT_KEYS};

/// lerobot's `estimate_num_samples(len)`: every frame up to 100, then `len^0.75`, at most
/// 10 000.
fn num_samples(len: u64) -> u64 {
    let min = len.min(100);
    let grown = (len as f64).powf(0.75) as u64;
    min.max(grown.min(10_000))
}

/// lerobot's `sample_indices(len)`: `round(linspace(0, len - 1, n))`, rounding half to even
/// as numpy does. Sorted; empty for an empty episode.
pub fn sample_indices(len: u64) -> Vec<u64> {
    let n = num_samples(len);
    match n {
        0 => Vec::new(),
        1 => vec![0],
        _ => {
            let step = (len - 1) as f64 / (n - 1) as f64;
            let mut v: Vec<u64> = (0..n)
                .map(|i| (i as f64 * step).round_ties_even() as u64)
                .collect();
            // numpy sets the last point to `stop` exactly.
            v[n as usize - 1] = len - 1;
            v
        }
    }
}

/// lerobot's `auto_downsample_height_width`: frames under 300 px on both sides are kept
/// whole; larger ones keep every k-th row and column, k = longer side / 150 (rounded down).
pub fn downsample_step(width: u32, height: u32) -> usize {
    if width.max(height) < 300 {
        return 1;
    }
    let longer = if width > height { width } else { height };
    (longer / 150).max(1) as usize
}

/// Camera stats of one episode, fed every frame in order.
#[derive(Debug, Clone)]
pub struct ImageStats {
    width: usize,
    height: usize,
    step: usize,
    plan: Vec<u64>,
    next: usize,
    seen: u64,
    sampled: u64,
    counts: Box<[[u64; 256]; 3]>,
}

impl ImageStats {
    /// Stats for an episode of `episode_len` frames of `width`x`height`. The sample is
    /// planned from `episode_len`, as lerobot plans it from the episode's frames: pass the
    /// number of frames the episode will have (an upper bound, such as the grid length, only
    /// thins the sample if frames are dropped).
    pub fn new(width: u32, height: u32, episode_len: u64) -> ImageStats {
        ImageStats {
            width: width as usize,
            height: height as usize,
            step: downsample_step(width, height),
            plan: sample_indices(episode_len),
            next: 0,
            seen: 0,
            sampled: 0,
            counts: Box::new([[0; 256]; 3]),
        }
    }

    /// Whether the next frame is in the sample: a caller may skip converting frames that
    /// are not (but must still [`ImageStats::skip`] them).
    pub fn wants_next(&self) -> bool {
        self.plan.get(self.next) == Some(&self.seen)
    }

    /// Counts a frame that is not in the sample without looking at it.
    pub fn skip(&mut self) {
        self.take_weight();
    }

    /// Feeds the next frame: `width * height * 3` bytes of rgb24.
    pub fn push(&mut self, rgb: &[u8]) -> Result<(), VideoError> {
        let expected = self.width * self.height * 3;
        if rgb.len() != expected {
            return Err(VideoError::FrameSize {
                path: "camera stats".into(),
                frame: self.seen,
                got: rgb.len(),
                expected,
                width: self.width as u32,
                height: self.height as u32,
            });
        }
        let weight = self.take_weight();
        if weight == 0 {
            return Ok(());
        }
        self.sampled += weight;
        for y in (0..self.height).step_by(self.step) {
            let row = &rgb[y * self.width * 3..(y + 1) * self.width * 3];
            for px in row.chunks_exact(3).step_by(self.step) {
                for (c, v) in px.iter().enumerate() {
                    self.counts[c][*v as usize] += weight;
                }
            }
        }
        Ok(())
    }

    /// Advances past the current frame; how many times the sample holds it.
    fn take_weight(&mut self) -> u64 {
        let mut weight = 0;
        while self.plan.get(self.next) == Some(&self.seen) {
            weight += 1;
            self.next += 1;
        }
        self.seen += 1;
        weight
    }

    /// Frames fed so far.
    pub fn frames_seen(&self) -> u64 {
        self.seen
    }

    /// The episode's stats, 3 dimensions (R, G, B) on pixel/255, `count` the sampled
    /// frames; `None` if no frame was sampled.
    pub fn finish(&self) -> Option<FeatureStats> {
        let columns: Vec<Vec<(f64, u64)>> = self
            .counts
            .iter()
            .map(|ch| ch.iter().enumerate().map(|(v, n)| (v as f64, *n)).collect())
            .collect();
        let pixels = from_value_counts(&columns)?;
        let scale = |v: &Vec<f64>| v.iter().map(|x| x / 255.0).collect::<Vec<f64>>();
        Some(FeatureStats {
            min: scale(&pixels.min),
            max: scale(&pixels.max),
            mean: scale(&pixels.mean),
            std: scale(&pixels.std),
            count: self.sampled,
            quantiles: std::array::from_fn(|q| scale(&pixels.quantiles[q])),
        })
    }
}

/// A camera's stats as `meta/stats.json` and the episodes parquet hold them: each
/// per-channel stat shaped (3, 1, 1), `[[[r]], [[g]], [[b]]]`; `count` is `[N]`.
pub fn image_stats_json(stats: &FeatureStats) -> Value {
    let Value::Object(flat) = stats.to_json() else {
        return Value::Null;
    };
    let mut m = Map::new();
    for key in STAT_KEYS {
        let v = flat.get(key).cloned().unwrap_or(Value::Null);
        let v = match (key, v) {
            ("count", v) => v,
            (_, Value::Array(vals)) => Value::Array(
                vals.into_iter()
                    .map(|x| Value::Array(vec![Value::Array(vec![x])]))
                    .collect(),
            ),
            (_, v) => v,
        };
        m.insert(key.to_string(), v);
    }
    Value::Object(m)
}

/// Reads what [`image_stats_json`] writes (for `--append`).
pub fn image_stats_from_json(v: &Value) -> Result<FeatureStats, String> {
    let obj = v.as_object().ok_or("not an object")?;
    let mut flat = Map::new();
    for (key, val) in obj {
        let val = if key == "count" {
            val.clone()
        } else {
            let outer = val
                .as_array()
                .ok_or_else(|| format!("`{key}` is not a list"))?;
            let inner: Result<Vec<Value>, String> = outer
                .iter()
                .map(|x| match x.as_array().map(Vec::as_slice) {
                    Some([row]) => match row.as_array().map(Vec::as_slice) {
                        Some([v]) => Ok(v.clone()),
                        _ => Err(format!("`{key}` is not shaped (3, 1, 1)")),
                    },
                    _ => Err(format!("`{key}` is not shaped (3, 1, 1)")),
                })
                .collect();
            Value::Array(inner?)
        };
        flat.insert(key.clone(), val);
    }
    FeatureStats::from_json(&Value::Object(flat), 3)
}
