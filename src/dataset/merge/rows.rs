//! Copying one episode's data rows into the merged data file, renumbered: `episode_index`
//! and `index` take their merged values, `task_index` the merged task's; every other column
//! is passed through as read. Rows are read in record batches and handed to the parquet
//! writer cut exactly where the writer cuts a run's rows ([`BATCH_ROWS`] rows, or earlier
//! once the rows' image bytes reach [`BATCH_IMAGE_BYTES`]), with the episode ending its row
//! group, so the merged file holds the same row groups, and so the same bytes, as a run
//! converting the same bags in that order.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, Int64Array, RecordBatch, StructArray};
use arrow_schema::{ArrowError, DataType, SchemaRef};

use crate::dataset::frames::DataFile;
use crate::dataset::stats::{BatchedStats, FeatureStats};
use crate::dataset::{DatasetError, BATCH_IMAGE_BYTES, BATCH_ROWS};

/// Rows read at once: a run's batch for numbers, a few rows when rows hold pictures (the
/// cutting below gathers them into the writer's batches).
pub const READ_ROWS: usize = BATCH_ROWS;
pub const READ_IMAGE_ROWS: usize = 32;

/// What is rewritten in an episode's rows.
pub struct Renumber<'a> {
    pub episode_index: u64,
    /// `index` of the episode's first row.
    pub from_index: u64,
    /// The shard's task_index -> the merged one.
    pub tasks: &'a [u64],
}

/// The stats of the three renumbered columns over the episode, computed as the writer
/// computes them.
pub struct RenumberedStats {
    pub episode_index: FeatureStats,
    pub index: FeatureStats,
    pub task_index: FeatureStats,
}

/// The data schema's layout for the copy.
pub struct RowLayout {
    schema: SchemaRef,
    episode_col: usize,
    index_col: usize,
    task_col: usize,
    /// Image columns (`struct<bytes, path>`), whose bytes count toward a batch's size.
    image_cols: Vec<usize>,
}

fn invalid(path: &Path, detail: impl Into<String>) -> DatasetError {
    DatasetError::Parquet {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

impl RowLayout {
    pub fn new(schema: SchemaRef) -> Result<RowLayout, DatasetError> {
        let col = |name: &str| {
            schema
                .index_of(name)
                .map_err(|_| DatasetError::Invalid(format!("the data schema has no `{name}`")))
        };
        let (episode_col, index_col, task_col) =
            (col("episode_index")?, col("index")?, col("task_index")?);
        let image_cols = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f.data_type(), DataType::Struct(_)))
            .map(|(i, _)| i)
            .collect();
        Ok(RowLayout {
            schema,
            episode_col,
            index_col,
            task_col,
            image_cols,
        })
    }

    pub fn read_rows(&self) -> usize {
        if self.image_cols.is_empty() {
            READ_ROWS
        } else {
            READ_IMAGE_ROWS
        }
    }

    /// Image bytes of each row of `b`.
    fn image_bytes(&self, b: &RecordBatch) -> Vec<usize> {
        let mut out = vec![0usize; b.num_rows()];
        for &c in &self.image_cols {
            let bytes = b
                .column(c)
                .as_any()
                .downcast_ref::<StructArray>()
                .and_then(|s| s.column_by_name("bytes"))
                .and_then(|a| a.as_any().downcast_ref::<BinaryArray>());
            if let Some(bytes) = bytes {
                for (i, n) in out.iter_mut().enumerate() {
                    *n += bytes.value_length(i) as usize;
                }
            }
        }
        out
    }

    /// Copies the rows `batches` yields (one episode of a shard, read from `path`) into
    /// `out`, renumbered, ending the row group; returns the rows copied and the renumbered
    /// columns' stats.
    pub fn copy_episode(
        &self,
        batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
        renumber: &Renumber,
        out: &mut DataFile,
        path: &Path,
    ) -> Result<(u64, RenumberedStats), DatasetError> {
        let mut stats = [
            BatchedStats::new(1),
            BatchedStats::new(1),
            BatchedStats::new(1),
        ];
        let mut pending: Vec<RecordBatch> = Vec::new();
        let (mut pending_rows, mut pending_bytes) = (0usize, 0usize);
        let mut rows = 0u64;
        for batch in batches {
            let batch = batch.map_err(|e| invalid(path, e.to_string()))?;
            let batch = self.renumber(&batch, renumber, rows, &mut stats, path)?;
            rows += batch.num_rows() as u64;
            let sizes = self.image_bytes(&batch);
            let mut start = 0;
            for (i, size) in sizes.iter().enumerate() {
                pending_rows += 1;
                pending_bytes += size;
                // The writer's FrameBuffer::is_full, checked after each row.
                if pending_rows >= BATCH_ROWS || pending_bytes >= BATCH_IMAGE_BYTES {
                    pending.push(batch.slice(start, i + 1 - start));
                    start = i + 1;
                    self.hand_over(&mut pending, out)?;
                    (pending_rows, pending_bytes) = (0, 0);
                }
            }
            if start < batch.num_rows() {
                pending.push(batch.slice(start, batch.num_rows() - start));
            }
        }
        self.hand_over(&mut pending, out)?;
        out.end_row_group()?;
        let [episode_index, index, task_index] = stats.map(BatchedStats::finish);
        match (episode_index, index, task_index) {
            (Some(episode_index), Some(index), Some(task_index)) => Ok((
                rows,
                RenumberedStats {
                    episode_index,
                    index,
                    task_index,
                },
            )),
            _ => Err(invalid(
                path,
                format!("episode {} has no rows", renumber.episode_index),
            )),
        }
    }

    /// Writes the gathered rows as one batch.
    fn hand_over(
        &self,
        pending: &mut Vec<RecordBatch>,
        out: &mut DataFile,
    ) -> Result<(), DatasetError> {
        if pending.is_empty() {
            return Ok(());
        }
        let batch = if pending.len() == 1 {
            pending
                .pop()
                .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()))
        } else {
            let b = arrow_select::concat::concat_batches(&self.schema, pending.iter())
                .map_err(|e| DatasetError::Invalid(format!("data batch: {e}")))?;
            pending.clear();
            b
        };
        out.write(&batch)
    }

    /// `b` with the renumbered columns, as a batch of the merged schema; `done` rows of the
    /// episode came before it. Feeds the renumbered values to `stats` as the writer does.
    fn renumber(
        &self,
        b: &RecordBatch,
        r: &Renumber,
        done: u64,
        stats: &mut [BatchedStats; 3],
        path: &Path,
    ) -> Result<RecordBatch, DatasetError> {
        let n = b.num_rows();
        let old_tasks = b
            .column(self.task_col)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| invalid(path, "task_index is not int64"))?;
        let mut tasks = Vec::with_capacity(n);
        for t in old_tasks.iter() {
            let new = t
                .and_then(|t| usize::try_from(t).ok())
                .and_then(|t| r.tasks.get(t))
                .ok_or_else(|| {
                    invalid(
                        path,
                        format!(
                            "episode rows hold task_index {t:?}, which tasks.parquet does not have"
                        ),
                    )
                })?;
            tasks.push(*new as i64);
        }
        let first = (r.from_index + done) as i64;
        let index: Vec<i64> = (first..first + n as i64).collect();
        for i in 0..n {
            stats[0].push([r.episode_index as f64]);
            stats[1].push([index[i] as f64]);
            stats[2].push([tasks[i] as f64]);
        }
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        cols[self.episode_col] = Arc::new(Int64Array::from(vec![r.episode_index as i64; n]));
        cols[self.index_col] = Arc::new(Int64Array::from(index));
        cols[self.task_col] = Arc::new(Int64Array::from(tasks));
        RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| invalid(path, e.to_string()))
    }
}
