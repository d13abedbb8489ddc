//! Per-feature statistics as lerobot 0.6.1 computes them (`compute_stats.py`).
//!
//! An episode's stats come from lerobot's `RunningQuantileStats`: running mean and mean of
//! squares, min/max, and a 5000-bin histogram per dimension for the quantiles. lerobot feeds a
//! whole episode in one update; we feed it in batches of [`STATS_BATCH_ROWS`] rows so memory
//! does not grow with the episode length. For episodes up to that length the result is
//! lerobot's; longer ones go through lerobot's own histogram re-binning, the estimator lerobot
//! uses when it is fed in batches. Everything is computed in f64 and in a fixed order, so the
//! same frames give the same bits.

use serde_json::{Map, Value};

/// The quantiles lerobot stores, with their keys.
pub const QUANTILES: [(f64, &str); 5] = [
    (0.01, "q01"),
    (0.10, "q10"),
    (0.50, "q50"),
    (0.90, "q90"),
    (0.99, "q99"),
];

/// Every stat key, in the order lerobot writes them.
pub const STAT_KEYS: [&str; 10] = [
    "min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99",
];

/// lerobot's `num_quantile_bins`.
const NUM_BINS: usize = 5000;

/// Rows buffered before they are folded into the running stats: large enough that most
/// episodes are one update (exactly lerobot's numbers), small enough to bound memory.
pub const STATS_BATCH_ROWS: usize = 4096;

/// The stats of one feature, per dimension (`count` is the number of frames).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub count: u64,
    /// In [`QUANTILES`] order.
    pub quantiles: [Vec<f64>; 5],
}

impl FeatureStats {
    pub fn dims(&self) -> usize {
        self.mean.len()
    }

    /// The per-dimension values of a stat key other than `count`.
    pub fn values(&self, key: &str) -> Option<&[f64]> {
        match key {
            "min" => Some(&self.min),
            "max" => Some(&self.max),
            "mean" => Some(&self.mean),
            "std" => Some(&self.std),
            _ => QUANTILES
                .iter()
                .position(|(_, k)| *k == key)
                .map(|i| self.quantiles[i].as_slice()),
        }
    }

    /// `{"min": [..], ..., "count": [N], ...}` as in `meta/stats.json`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for key in STAT_KEYS {
            let v = match self.values(key) {
                Some(vals) => Value::from(vals.to_vec()),
                None => Value::from(vec![self.count]),
            };
            m.insert(key.to_string(), v);
        }
        Value::Object(m)
    }

    /// Reads what [`FeatureStats::to_json`] writes; `dims` is the feature's length.
    pub fn from_json(v: &Value, dims: usize) -> Result<FeatureStats, String> {
        let obj = v.as_object().ok_or("not an object")?;
        let list = |key: &str| -> Result<Vec<f64>, String> {
            let arr = obj
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("`{key}` missing or not a list"))?;
            if arr.len() != dims {
                return Err(format!("`{key}` has {} values, expected {dims}", arr.len()));
            }
            arr.iter()
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| format!("`{key}` holds a non-number"))
                })
                .collect()
        };
        let count = obj
            .get("count")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 1)
            .and_then(|a| a[0].as_u64())
            .ok_or("`count` missing or not [N]")?;
        Ok(FeatureStats {
            min: list("min")?,
            max: list("max")?,
            mean: list("mean")?,
            std: list("std")?,
            count,
            quantiles: [
                list("q01")?,
                list("q10")?,
                list("q50")?,
                list("q90")?,
                list("q99")?,
            ],
        })
    }
}

/// lerobot's `aggregate_feature_stats` for two stats (it folds episodes in one at a time:
/// `aggregate_stats([self.stats, episode_stats])`): min/max element-wise, count-weighted mean
/// and quantiles, pooled population variance.
pub fn aggregate(a: &FeatureStats, b: &FeatureStats) -> FeatureStats {
    let total = (a.count + b.count) as f64;
    let (ca, cb) = (a.count as f64, b.count as f64);
    let n = a.dims().min(b.dims());
    let weighted = |x: &[f64], y: &[f64]| -> Vec<f64> {
        (0..n).map(|i| (x[i] * ca + y[i] * cb) / total).collect()
    };
    let mean = weighted(&a.mean, &b.mean);
    let std = (0..n)
        .map(|i| {
            let da = a.mean[i] - mean[i];
            let db = b.mean[i] - mean[i];
            let var = ((a.std[i] * a.std[i] + da * da) * ca + (b.std[i] * b.std[i] + db * db) * cb)
                / total;
            var.sqrt()
        })
        .collect();
    FeatureStats {
        min: (0..n).map(|i| a.min[i].min(b.min[i])).collect(),
        max: (0..n).map(|i| a.max[i].max(b.max[i])).collect(),
        mean,
        std,
        count: a.count + b.count,
        quantiles: std::array::from_fn(|q| weighted(&a.quantiles[q], &b.quantiles[q])),
    }
}

/// `np.linspace(lo, hi, NUM_BINS + 1)`, computed the way numpy does.
fn linspace(lo: f64, hi: f64) -> Vec<f64> {
    let div = NUM_BINS as f64;
    let delta = hi - lo;
    let step = delta / div;
    let mut edges: Vec<f64> = if step == 0.0 {
        (0..=NUM_BINS)
            .map(|i| i as f64 / div * delta + lo)
            .collect()
    } else {
        (0..=NUM_BINS).map(|i| i as f64 * step + lo).collect()
    };
    edges[NUM_BINS] = hi;
    edges
}

/// The bin `np.histogram(x, bins=edges)` counts `x` in: `edges[i] <= x < edges[i+1]`, the last
/// bin closed on the right; `None` outside the range (and for NaN).
fn bin_of(edges: &[f64], x: f64) -> Option<usize> {
    let last = *edges.last()?;
    if x.is_nan() || x < edges[0] || x > last {
        return None;
    }
    let above = edges.partition_point(|e| *e <= x);
    Some(above.saturating_sub(1).min(NUM_BINS - 1))
}

/// lerobot's `RunningQuantileStats` for one feature of `dims` dimensions.
#[derive(Debug, Clone)]
pub struct RunningStats {
    dims: usize,
    count: u64,
    mean: Vec<f64>,
    mean_sq: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    hist: Vec<Vec<f64>>,
    edges: Vec<Vec<f64>>,
}

impl RunningStats {
    pub fn new(dims: usize) -> RunningStats {
        RunningStats {
            dims,
            count: 0,
            mean: Vec::new(),
            mean_sq: Vec::new(),
            min: Vec::new(),
            max: Vec::new(),
            hist: Vec::new(),
            edges: Vec::new(),
        }
    }

    /// Folds in `rows` rows of `dims` values each, row-major.
    pub fn update(&mut self, batch: &[f64]) {
        let d = self.dims;
        if d == 0 || batch.len() < d {
            return;
        }
        let rows = batch.len() / d;
        let batch = &batch[..rows * d];
        let col = |j: usize| batch.iter().skip(j).step_by(d).copied();
        let col_min: Vec<f64> = (0..d)
            .map(|j| col(j).fold(f64::INFINITY, f64::min))
            .collect();
        let col_max: Vec<f64> = (0..d)
            .map(|j| col(j).fold(f64::NEG_INFINITY, f64::max))
            .collect();
        let batch_mean: Vec<f64> = (0..d).map(|j| col(j).sum::<f64>() / rows as f64).collect();
        let batch_mean_sq: Vec<f64> = (0..d)
            .map(|j| col(j).map(|x| x * x).sum::<f64>() / rows as f64)
            .collect();

        if self.count == 0 {
            self.mean = batch_mean.clone();
            self.mean_sq = batch_mean_sq.clone();
            self.min = col_min;
            self.max = col_max;
            self.hist = vec![vec![0.0; NUM_BINS]; d];
            self.edges = (0..d)
                .map(|j| linspace(self.min[j] - 1e-10, self.max[j] + 1e-10))
                .collect();
        } else {
            let max_changed = (0..d).any(|j| col_max[j] > self.max[j]);
            let min_changed = (0..d).any(|j| col_min[j] < self.min[j]);
            for j in 0..d {
                self.max[j] = self.max[j].max(col_max[j]);
                self.min[j] = self.min[j].min(col_min[j]);
            }
            if max_changed || min_changed {
                self.adjust_histograms();
            }
        }

        self.count += rows as u64;
        let w = rows as f64 / self.count as f64;
        for j in 0..d {
            self.mean[j] += (batch_mean[j] - self.mean[j]) * w;
            self.mean_sq[j] += (batch_mean_sq[j] - self.mean_sq[j]) * w;
        }
        for j in 0..d {
            for x in col(j) {
                if let Some(b) = bin_of(&self.edges[j], x) {
                    self.hist[j][b] += 1.0;
                }
            }
        }
    }

    /// Re-bins every dimension onto edges spanning the new min/max, moving each old bin's
    /// count to the new bin holding the old bin's centre (lerobot's `_adjust_histograms`).
    fn adjust_histograms(&mut self) {
        for j in 0..self.dims {
            let padding = (self.max[j] - self.min[j]) * 1e-10;
            let new_edges = linspace(self.min[j] - padding, self.max[j] + padding);
            let mut new_hist = vec![0.0; NUM_BINS];
            let old = &self.edges[j];
            for (b, &count) in self.hist[j].iter().enumerate() {
                if count > 0.0 {
                    let centre = (old[b] + old[b + 1]) / 2.0;
                    // searchsorted(side="left") - 1, clamped.
                    let idx = new_edges.partition_point(|e| *e < centre);
                    let idx = idx.saturating_sub(1).min(NUM_BINS - 1);
                    new_hist[idx] += count;
                }
            }
            self.hist[j] = new_hist;
            self.edges[j] = new_edges;
        }
    }

    /// Dimension `j`'s value at each of `targets` (counts of rows below it), as lerobot's
    /// `_compute_single_quantile` finds it in the cumulative histogram: the cumulative sum is
    /// made once for all the targets (once per target was a fifth of a many-bag run).
    fn quantiles_of(&self, j: usize, targets: &[f64; QUANTILES.len()]) -> [f64; QUANTILES.len()] {
        let (hist, edges) = (&self.hist[j], &self.edges[j]);
        let mut cumsum = Vec::with_capacity(NUM_BINS);
        let mut acc = 0.0;
        for h in hist {
            acc += h;
            cumsum.push(acc);
        }
        targets.map(|target| {
            let idx = cumsum.partition_point(|c| *c < target);
            if idx == 0 {
                return edges[0];
            }
            if idx >= cumsum.len() {
                return edges[NUM_BINS];
            }
            let before = cumsum[idx - 1];
            let in_bin = cumsum[idx] - before;
            if in_bin == 0.0 {
                return edges[idx];
            }
            edges[idx] + (target - before) / in_bin * (edges[idx + 1] - edges[idx])
        })
    }

    /// The stats so far; `None` before the first row. A single row gives lerobot's
    /// `_compute_basic_stats` (std 0, quantiles = mean).
    pub fn finish(&self) -> Option<FeatureStats> {
        if self.count == 0 {
            return None;
        }
        if self.count < 2 {
            return Some(FeatureStats {
                min: self.min.clone(),
                max: self.max.clone(),
                mean: self.mean.clone(),
                std: vec![0.0; self.dims],
                count: self.count,
                quantiles: std::array::from_fn(|_| self.mean.clone()),
            });
        }
        let std = (0..self.dims)
            .map(|j| {
                (self.mean_sq[j] - self.mean[j] * self.mean[j])
                    .max(0.0)
                    .sqrt()
            })
            .collect();
        let targets = QUANTILES.map(|(q, _)| q * self.count as f64);
        let per_dim: Vec<_> = (0..self.dims)
            .map(|j| self.quantiles_of(j, &targets))
            .collect();
        let quantiles = std::array::from_fn(|q| per_dim.iter().map(|d| d[q]).collect());
        Some(FeatureStats {
            min: self.min.clone(),
            max: self.max.clone(),
            mean: self.mean.clone(),
            std,
            count: self.count,
            quantiles,
        })
    }
}

/// What one [`RunningStats::update`] gives for a batch in which dimension `j` holds `count`
/// copies of each `(value, count)` of `columns[j]`, without materialising the batch. Camera
/// pixels take this path: millions of rows, but only 256 distinct values per channel.
/// `None` when there are no rows or the dimensions disagree on the number of rows.
pub fn from_value_counts(columns: &[Vec<(f64, u64)>]) -> Option<FeatureStats> {
    let total = |col: &Vec<(f64, u64)>| col.iter().map(|(_, c)| *c).sum::<u64>();
    let rows = total(columns.first()?);
    if rows == 0 || columns.iter().any(|col| total(col) != rows) {
        return None;
    }
    let mut s = RunningStats::new(columns.len());
    s.count = rows;
    for col in columns {
        let present = || col.iter().filter(|(_, c)| *c > 0);
        let min = present().map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
        let max = present().map(|(v, _)| *v).fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = present().map(|(v, c)| v * *c as f64).sum();
        let sum_sq: f64 = present().map(|(v, c)| v * v * *c as f64).sum();
        let edges = linspace(min - 1e-10, max + 1e-10);
        let mut hist = vec![0.0; NUM_BINS];
        for (v, c) in present() {
            if let Some(b) = bin_of(&edges, *v) {
                hist[b] += *c as f64;
            }
        }
        s.mean.push(sum / rows as f64);
        s.mean_sq.push(sum_sq / rows as f64);
        s.min.push(min);
        s.max.push(max);
        s.hist.push(hist);
        s.edges.push(edges);
    }
    s.finish()
}

/// [`RunningStats`] fed one row at a time, folding rows in every [`STATS_BATCH_ROWS`].
#[derive(Debug, Clone)]
pub struct BatchedStats {
    stats: RunningStats,
    buf: Vec<f64>,
    dims: usize,
}

impl BatchedStats {
    pub fn new(dims: usize) -> BatchedStats {
        BatchedStats {
            stats: RunningStats::new(dims),
            buf: Vec::new(),
            dims,
        }
    }

    pub fn push(&mut self, row: impl IntoIterator<Item = f64>) {
        self.buf.extend(row);
        if self.buf.len() >= STATS_BATCH_ROWS * self.dims.max(1) {
            self.stats.update(&self.buf);
            self.buf.clear();
        }
    }

    pub fn finish(mut self) -> Option<FeatureStats> {
        if !self.buf.is_empty() {
            self.stats.update(&self.buf);
        }
        self.stats.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(values: &[f64]) -> FeatureStats {
        let mut s = RunningStats::new(1);
        s.update(values);
        s.finish().unwrap()
    }

    #[test]
    fn matches_lerobot_for_frame_index_0_to_9() {
        // lerobot 0.6.1 stats of frame_index over a 10-frame episode (int64 -> float64).
        let s = episode(&(0..10).map(f64::from).collect::<Vec<_>>());
        assert_eq!(s.min, [0.0]);
        assert_eq!(s.max, [9.0]);
        assert_eq!(s.mean, [4.5]);
        assert!((s.std[0] - 2.8722813232690143).abs() < 1e-12);
        assert_eq!(s.count, 10);
        let want = [
            -1e-10,
            -1e-10,
            4.00139999998892,
            8.0010000000778,
            8.999820000099996,
        ];
        for (q, w) in want.iter().enumerate() {
            assert!(
                (s.quantiles[q][0] - w).abs() < 1e-9,
                "{q}: {:?}",
                s.quantiles[q]
            );
        }
    }

    #[test]
    fn constant_column_matches_lerobot() {
        // episode_index 0 over 10 frames, as lerobot 0.6.1 writes it.
        let s = episode(&[0.0; 10]);
        assert_eq!(s.std, [0.0]);
        let want = [4e-16, 4e-15, 2e-14, 3.6e-14, 3.96e-14];
        for (q, w) in want.iter().enumerate() {
            assert!(
                (s.quantiles[q][0] - w).abs() < 1e-17,
                "{q}: {:?}",
                s.quantiles[q]
            );
        }
    }

    #[test]
    fn single_frame_is_basic_stats() {
        let s = episode(&[3.0]);
        assert_eq!(s.std, [0.0]);
        assert_eq!(s.count, 1);
        for q in &s.quantiles {
            assert_eq!(q, &vec![3.0]);
        }
    }

    #[test]
    fn aggregate_is_pooled() {
        let a = episode(&(1..=10).map(f64::from).collect::<Vec<_>>());
        let b = episode(&(11..=20).map(f64::from).collect::<Vec<_>>());
        let all = episode(&(1..=20).map(f64::from).collect::<Vec<_>>());
        let agg = aggregate(&a, &b);
        assert_eq!(agg.count, 20);
        assert_eq!(agg.min, [1.0]);
        assert_eq!(agg.max, [20.0]);
        assert!((agg.mean[0] - 10.5).abs() < 1e-12);
        assert!((agg.std[0] - all.std[0]).abs() < 1e-12);
        let q50 = (a.quantiles[2][0] + b.quantiles[2][0]) / 2.0;
        assert!((agg.quantiles[2][0] - q50).abs() < 1e-12);
    }

    #[test]
    fn batches_rebin_and_stay_close() {
        let values: Vec<f64> = (0..10_000).map(|i| f64::from(i % 977) * 0.5).collect();
        let mut batched = BatchedStats::new(1);
        for v in &values {
            batched.push([*v]);
        }
        let b = batched.finish().unwrap();
        let whole = episode(&values);
        assert_eq!(b.count, whole.count);
        assert_eq!(b.min, whole.min);
        assert_eq!(b.max, whole.max);
        assert!((b.mean[0] - whole.mean[0]).abs() < 1e-9);
        for q in 0..5 {
            assert!((b.quantiles[q][0] - whole.quantiles[q][0]).abs() < 1.0);
        }
        // Deterministic: same input, same bits.
        let mut again = BatchedStats::new(1);
        for v in &values {
            again.push([*v]);
        }
        assert_eq!(again.finish().unwrap(), b);
    }

    #[test]
    fn value_counts_equal_the_expanded_batch() {
        // Two dimensions, 7 rows: the same stats as feeding the rows themselves.
        let a = [3.0, 3.0, 0.0, 255.0, 17.0, 3.0, 0.0];
        let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let rows: Vec<f64> = a.iter().zip(&b).flat_map(|(x, y)| [*x, *y]).collect();
        let mut whole = RunningStats::new(2);
        whole.update(&rows);
        let counts = |col: &[f64]| -> Vec<(f64, u64)> {
            let mut v: Vec<(f64, u64)> = Vec::new();
            for x in col {
                match v.iter_mut().find(|(y, _)| y == x) {
                    Some(e) => e.1 += 1,
                    None => v.push((*x, 1)),
                }
            }
            v
        };
        let from_counts = from_value_counts(&[counts(&a), counts(&b)]).unwrap();
        let whole = whole.finish().unwrap();
        assert_eq!(from_counts.count, 7);
        assert_eq!(from_counts.min, whole.min);
        assert_eq!(from_counts.max, whole.max);
        for j in 0..2 {
            assert!((from_counts.mean[j] - whole.mean[j]).abs() < 1e-12);
            assert!((from_counts.std[j] - whole.std[j]).abs() < 1e-9);
            for q in 0..5 {
                assert_eq!(from_counts.quantiles[q][j], whole.quantiles[q][j]);
            }
        }
        assert!(from_value_counts(&[vec![(1.0, 2)], vec![(1.0, 3)]]).is_none());
        assert!(from_value_counts(&[vec![(1.0, 0)]]).is_none());
    }

    #[test]
    fn json_round_trip() {
        let s = episode(&[1.0, 2.0, 4.0]);
        let back = FeatureStats::from_json(&s.to_json(), 1).unwrap();
        assert_eq!(back, s);
        assert!(FeatureStats::from_json(&s.to_json(), 2).is_err());
    }
}
