//! The data parquet files: frames are gathered into column buffers, turned into arrow batches
//! of [`BATCH_ROWS`] rows and handed to a parquet `ArrowWriter` whose row group is flushed at
//! each episode end and whenever it grows past [`ROW_GROUP_BYTES`], so memory stays bounded
//! whatever the episode length.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;

use super::meta::{data_file_rel, writer_props};
use super::DatasetError;

/// Rows per arrow batch handed to the parquet writer.
pub const BATCH_ROWS: usize = 1024;

/// A row group in progress is flushed once its buffered size passes this.
pub const ROW_GROUP_BYTES: usize = 4 << 20;

/// Where one frame's derived columns come from.
#[derive(Debug, Clone, Copy)]
pub struct FrameIndices {
    pub frame_index: u64,
    pub episode_index: u64,
    pub index: u64,
    pub task_index: u64,
}

/// Column buffers for the rows not yet handed to the parquet writer.
pub struct FrameBuffer {
    schema: SchemaRef,
    /// Per vector feature: its length and its values, row-major.
    vectors: Vec<(usize, Vec<f32>)>,
    timestamp: Vec<f32>,
    frame_index: Vec<i64>,
    episode_index: Vec<i64>,
    index: Vec<i64>,
    task_index: Vec<i64>,
}

impl FrameBuffer {
    /// `lens`: the vector features' lengths, in schema order.
    pub fn new(schema: SchemaRef, lens: &[usize]) -> FrameBuffer {
        FrameBuffer {
            schema,
            vectors: lens
                .iter()
                .map(|&n| (n, Vec::with_capacity(n * BATCH_ROWS)))
                .collect(),
            timestamp: Vec::with_capacity(BATCH_ROWS),
            frame_index: Vec::with_capacity(BATCH_ROWS),
            episode_index: Vec::with_capacity(BATCH_ROWS),
            index: Vec::with_capacity(BATCH_ROWS),
            task_index: Vec::with_capacity(BATCH_ROWS),
        }
    }

    pub fn len(&self) -> usize {
        self.frame_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frame_index.is_empty()
    }

    /// `values`: every vector feature's values concatenated (already length-checked).
    pub fn push(&mut self, values: &[f32], fps: u32, at: FrameIndices) {
        let mut rest = values;
        for (n, buf) in &mut self.vectors {
            let (mine, tail) = rest.split_at((*n).min(rest.len()));
            buf.extend_from_slice(mine);
            rest = tail;
        }
        self.timestamp.push(timestamp(at.frame_index, fps));
        self.frame_index.push(at.frame_index as i64);
        self.episode_index.push(at.episode_index as i64);
        self.index.push(at.index as i64);
        self.task_index.push(at.task_index as i64);
    }

    /// The buffered rows as one batch; the buffers are left empty.
    pub fn take_batch(&mut self) -> Result<RecordBatch, DatasetError> {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (field, (n, buf)) in self.schema.fields().iter().zip(&mut self.vectors) {
            let values = Float32Array::from(std::mem::take(buf));
            let col: ArrayRef = match field.data_type() {
                DataType::FixedSizeList(item, _) => Arc::new(
                    FixedSizeListArray::try_new(item.clone(), *n as i32, Arc::new(values), None)
                        .map_err(|e| {
                            DatasetError::Invalid(format!("column {}: {e}", field.name()))
                        })?,
                ),
                _ => Arc::new(values),
            };
            cols.push(col);
        }
        cols.push(Arc::new(Float32Array::from(std::mem::take(
            &mut self.timestamp,
        ))));
        for v in [
            &mut self.frame_index,
            &mut self.episode_index,
            &mut self.index,
            &mut self.task_index,
        ] {
            cols.push(Arc::new(Int64Array::from(std::mem::take(v))));
        }
        RecordBatch::try_new(self.schema.clone(), cols)
            .map_err(|e| DatasetError::Invalid(format!("data batch: {e}")))
    }
}

/// `frame_index / fps` as f32 of the exact division (what lerobot stores).
pub fn timestamp(frame_index: u64, fps: u32) -> f32 {
    (frame_index as f64 / f64::from(fps)) as f32
}

/// One open data parquet file.
pub struct DataFile {
    pub chunk: u64,
    pub file: u64,
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
}

impl DataFile {
    pub fn create(
        root: &Path,
        chunk: u64,
        file: u64,
        schema: SchemaRef,
    ) -> Result<DataFile, DatasetError> {
        let path = root.join(data_file_rel(chunk, file));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| DatasetError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let f = File::create(&path).map_err(|source| DatasetError::Io {
            path: path.clone(),
            source,
        })?;
        let writer = ArrowWriter::try_new(BufWriter::new(f), schema, Some(writer_props()))
            .map_err(|e| perr(&path, e))?;
        Ok(DataFile {
            chunk,
            file,
            path,
            writer,
        })
    }

    /// Writes a batch, flushing the row group if it grew past [`ROW_GROUP_BYTES`].
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DatasetError> {
        self.writer.write(batch).map_err(|e| perr(&self.path, e))?;
        let buffered = self
            .writer
            .memory_size()
            .max(self.writer.in_progress_size());
        if buffered > ROW_GROUP_BYTES {
            self.end_row_group()?;
        }
        Ok(())
    }

    pub fn end_row_group(&mut self) -> Result<(), DatasetError> {
        self.writer.flush().map_err(|e| perr(&self.path, e))
    }

    /// Bytes in the file so far, the row group in progress included.
    pub fn size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    pub fn close(self) -> Result<(), DatasetError> {
        let path = self.path;
        let inner = self.writer.into_inner().map_err(|e| perr(&path, e))?;
        let f = inner.into_inner().map_err(|e| DatasetError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        f.sync_all()
            .map_err(|source| DatasetError::Io { path, source })
    }
}

fn perr(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Parquet {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}
