//! Reading `meta/episodes` back: the inverse of [`episodes_batch`], so that a dataset's
//! episode rows (their places and per-episode stats) can be rewritten elsewhere.
//!
//! [`episodes_batch`]: super::meta::episodes_batch

use std::path::Path;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray};

use super::meta::{EpisodeRow, StatFeature, VideoSpan};
use super::stats::{FeatureStats, QUANTILES};
use super::DatasetError;

fn bad(path: &Path, detail: String) -> DatasetError {
    DatasetError::Parquet {
        path: path.to_path_buf(),
        detail,
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a ArrayRef, DatasetError> {
    b.column_by_name(name)
        .ok_or_else(|| bad(path, format!("no column `{name}`")))
}

fn ints<'a>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a Int64Array, DatasetError> {
    column(b, name, path)?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| bad(path, format!("column `{name}` is not int64")))
}

fn floats<'a>(
    b: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a Float64Array, DatasetError> {
    column(b, name, path)?
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| bad(path, format!("column `{name}` is not double")))
}

/// A non-negative int64 as u64.
fn unsigned(v: i64, what: &str, path: &Path) -> Result<u64, DatasetError> {
    u64::try_from(v).map_err(|_| bad(path, format!("{what} is {v}")))
}

/// Every number of a (nested) list of doubles or int64, flattened; `None` for other types.
fn flatten(a: &dyn Array) -> Option<Vec<f64>> {
    if let Some(l) = a.as_any().downcast_ref::<ListArray>() {
        let mut out = Vec::new();
        for i in 0..l.len() {
            out.extend(flatten(l.value(i).as_ref())?);
        }
        return Some(out);
    }
    if let Some(f) = a.as_any().downcast_ref::<Float64Array>() {
        return Some(f.values().to_vec());
    }
    a.as_any()
        .downcast_ref::<Int64Array>()
        .map(|v| v.values().iter().map(|x| *x as f64).collect())
}

/// The rows of an episodes batch (read from `path`, named in errors) whose stats columns are
/// those of `stat_features` and video columns those of `video_keys`, in the order of
/// [`super::meta::episodes_schema`]. Other columns are ignored.
pub fn read_rows(
    b: &RecordBatch,
    stat_features: &[StatFeature],
    video_keys: &[String],
    path: &Path,
) -> Result<Vec<EpisodeRow>, DatasetError> {
    let episode = ints(b, "episode_index", path)?;
    let length = ints(b, "length", path)?;
    let chunk = ints(b, "data/chunk_index", path)?;
    let file = ints(b, "data/file_index", path)?;
    let from = ints(b, "dataset_from_index", path)?;
    let to = ints(b, "dataset_to_index", path)?;
    let tasks = column(b, "tasks", path)?
        .as_any()
        .downcast_ref::<ListArray>()
        .ok_or_else(|| bad(path, "column `tasks` is not a list".into()))?;
    let mut videos = Vec::with_capacity(video_keys.len());
    for key in video_keys {
        let c = |s: &str| format!("videos/{key}/{s}");
        videos.push((
            ints(b, &c("chunk_index"), path)?,
            ints(b, &c("file_index"), path)?,
            floats(b, &c("from_timestamp"), path)?,
            floats(b, &c("to_timestamp"), path)?,
        ));
    }
    let stat_names = ["min", "max", "mean", "std", "count"];
    let mut stat_cols = Vec::with_capacity(stat_features.len());
    for f in stat_features {
        let mut cols = Vec::with_capacity(10);
        for s in stat_names.iter().chain(QUANTILES.iter().map(|(_, k)| k)) {
            cols.push(column(b, &format!("stats/{}/{s}", f.key), path)?);
        }
        stat_cols.push(cols);
    }

    let mut rows = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let e = unsigned(episode.value(i), "episode_index", path)?;
        let task_values = tasks.value(i);
        let task_strs = task_values
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| {
                bad(
                    path,
                    format!("episode {e}: `tasks` is not a list of strings"),
                )
            })?;
        let mut spans = Vec::with_capacity(videos.len());
        for (key, (c, f, from, to)) in video_keys.iter().zip(&videos) {
            spans.push(VideoSpan {
                chunk: unsigned(
                    c.value(i),
                    &format!("episode {e}: videos/{key}/chunk_index"),
                    path,
                )?,
                file: unsigned(
                    f.value(i),
                    &format!("episode {e}: videos/{key}/file_index"),
                    path,
                )?,
                from_timestamp: from.value(i),
                to_timestamp: to.value(i),
            });
        }
        let mut stats = Vec::with_capacity(stat_features.len());
        for (f, cols) in stat_features.iter().zip(&stat_cols) {
            let mut values = Vec::with_capacity(cols.len());
            for (s, col) in stat_names
                .iter()
                .chain(QUANTILES.iter().map(|(_, k)| k))
                .zip(cols)
            {
                let want = if *s == "count" { 1 } else { f.dims };
                let list = col
                    .as_any()
                    .downcast_ref::<ListArray>()
                    .ok_or_else(|| bad(path, format!("stats/{}/{s} is not a list", f.key)))?;
                let v = flatten(list.value(i).as_ref())
                    .filter(|v| v.len() == want)
                    .ok_or_else(|| {
                        bad(
                            path,
                            format!(
                                "episode {e}: stats/{}/{s} is not {want} number{}",
                                f.key,
                                if want == 1 { "" } else { "s" }
                            ),
                        )
                    })?;
                values.push(v);
            }
            let mut it = values.into_iter();
            let mut next = || it.next().unwrap_or_default();
            let (min, max, mean, std, count) = (next(), next(), next(), next(), next());
            let count = count.first().copied().unwrap_or(0.0);
            if !(count >= 0.0 && count.fract() == 0.0) {
                return Err(bad(
                    path,
                    format!("episode {e}: stats/{}/count is {count}", f.key),
                ));
            }
            stats.push(FeatureStats {
                min,
                max,
                mean,
                std,
                count: count as u64,
                quantiles: std::array::from_fn(|_| next()),
            });
        }
        rows.push(EpisodeRow {
            episode_index: e,
            tasks: task_strs.iter().flatten().map(str::to_string).collect(),
            length: unsigned(length.value(i), &format!("episode {e}: length"), path)?,
            data_chunk: unsigned(
                chunk.value(i),
                &format!("episode {e}: data/chunk_index"),
                path,
            )?,
            data_file: unsigned(
                file.value(i),
                &format!("episode {e}: data/file_index"),
                path,
            )?,
            from_index: unsigned(
                from.value(i),
                &format!("episode {e}: dataset_from_index"),
                path,
            )?,
            to_index: unsigned(to.value(i), &format!("episode {e}: dataset_to_index"), path)?,
            videos: spans,
            stats,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::meta::{episodes_batch, episodes_schema};

    fn stats(dims: usize, base: f64) -> FeatureStats {
        let v = |k: f64| (0..dims).map(|j| base + k + j as f64).collect::<Vec<_>>();
        FeatureStats {
            min: v(0.0),
            max: v(1.0),
            mean: v(0.5),
            std: v(0.25),
            count: 7,
            quantiles: std::array::from_fn(|q| v(0.1 * q as f64)),
        }
    }

    #[test]
    fn reads_back_what_episodes_batch_writes() {
        let features = vec![
            StatFeature {
                key: "observation.state".into(),
                dims: 4,
                camera: false,
            },
            StatFeature {
                key: "observation.images.cam".into(),
                dims: 3,
                camera: true,
            },
            StatFeature {
                key: "index".into(),
                dims: 1,
                camera: false,
            },
        ];
        let videos = vec!["observation.images.cam".to_string()];
        let schema = episodes_schema(&features, &videos);
        let rows: Vec<EpisodeRow> = (0..3u64)
            .map(|e| EpisodeRow {
                episode_index: e,
                tasks: vec![format!("task {e}")],
                length: 7,
                data_chunk: 0,
                data_file: e,
                from_index: 7 * e,
                to_index: 7 * e + 7,
                videos: vec![VideoSpan {
                    chunk: 1,
                    file: e + 2,
                    from_timestamp: 0.7 * e as f64,
                    to_timestamp: 0.7 * e as f64 + 0.7,
                }],
                stats: features
                    .iter()
                    .map(|f| stats(f.dims, e as f64 * 10.0))
                    .collect(),
            })
            .collect();
        let batch = episodes_batch(&schema, &rows).unwrap();
        let back = read_rows(&batch, &features, &videos, Path::new("x.parquet")).unwrap();
        assert_eq!(back, rows);
        // A feature the batch does not have is named.
        let missing = [StatFeature {
            key: "action".into(),
            dims: 2,
            camera: false,
        }];
        let err = read_rows(&batch, &missing, &videos, Path::new("x.parquet")).unwrap_err();
        assert!(err.to_string().contains("stats/action/min"), "{err}");
    }
}
