//! The data parquet files: frames are gathered into column buffers, turned into arrow batches
//! of [`BATCH_ROWS`] rows and handed to a parquet `ArrowWriter` whose row group is flushed at
//! each episode end and whenever it grows past [`ROW_GROUP_BYTES`], so memory stays bounded
//! whatever the episode length.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray, StructArray,
};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;

use super::meta::{data_file_rel, writer_props_for};
use super::DatasetError;

/// Rows per arrow batch handed to the parquet writer.
pub const BATCH_ROWS: usize = 1024;

/// A batch is handed over earlier once its image bytes pass this: PNG frames are large.
pub const BATCH_IMAGE_BYTES: usize = 8 << 20;

/// What a feature column of the data parquet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// float32 values, this many per row.
    Vector(usize),
    /// PNG bytes in `struct<bytes, path>`.
    Image,
    /// The frame's int64 bag time.
    Time,
}

enum Column {
    Vector(usize, Vec<f32>),
    Image(BinaryBuilder),
    Time(Vec<i64>),
}

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
    /// Per feature column, in schema order: vectors row-major, images as PNG bytes.
    columns: Vec<Column>,
    image_bytes: usize,
    timestamp: Vec<f32>,
    frame_index: Vec<i64>,
    episode_index: Vec<i64>,
    index: Vec<i64>,
    task_index: Vec<i64>,
}

impl FrameBuffer {
    /// `kinds`: the feature columns (all but the five defaults), in schema order.
    pub fn new(schema: SchemaRef, kinds: &[ColumnKind]) -> FrameBuffer {
        FrameBuffer {
            schema,
            columns: kinds
                .iter()
                .map(|k| match *k {
                    ColumnKind::Vector(n) => Column::Vector(n, Vec::with_capacity(n * BATCH_ROWS)),
                    ColumnKind::Image => Column::Image(BinaryBuilder::new()),
                    ColumnKind::Time => Column::Time(Vec::with_capacity(BATCH_ROWS)),
                })
                .collect(),
            image_bytes: 0,
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

    /// Whether the buffered rows should be handed over now.
    pub fn is_full(&self) -> bool {
        self.len() >= BATCH_ROWS || self.image_bytes >= BATCH_IMAGE_BYTES
    }

    /// `values`: every vector feature's values concatenated (already length-checked);
    /// `images`: every image column's PNG bytes, in order; `time`: the time columns' value.
    pub fn push(
        &mut self,
        values: &[f32],
        images: &[&[u8]],
        time: i64,
        fps: u32,
        at: FrameIndices,
    ) {
        let mut rest = values;
        let mut pngs = images.iter();
        for col in &mut self.columns {
            match col {
                Column::Vector(n, buf) => {
                    let (mine, tail) = rest.split_at((*n).min(rest.len()));
                    buf.extend_from_slice(mine);
                    rest = tail;
                }
                Column::Image(b) => {
                    let png = pngs.next().copied().unwrap_or_default();
                    self.image_bytes += png.len();
                    b.append_value(png);
                }
                Column::Time(buf) => buf.push(time),
            }
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
        let rows = self.len();
        let bad = |field: &arrow_schema::Field, e: &dyn std::fmt::Display| {
            DatasetError::Invalid(format!("column {}: {e}", field.name()))
        };
        for (field, col) in self.schema.fields().iter().zip(&mut self.columns) {
            let col: ArrayRef = match (col, field.data_type()) {
                (Column::Vector(n, buf), DataType::FixedSizeList(item, _)) => {
                    let values = Float32Array::from(std::mem::take(buf));
                    Arc::new(
                        FixedSizeListArray::try_new(
                            item.clone(),
                            *n as i32,
                            Arc::new(values),
                            None,
                        )
                        .map_err(|e| bad(field, &e))?,
                    )
                }
                (Column::Vector(_, buf), _) => Arc::new(Float32Array::from(std::mem::take(buf))),
                (Column::Image(b), DataType::Struct(fields)) => {
                    let bytes: ArrayRef = Arc::new(b.finish());
                    // Embedded images have no path, as lerobot writes them.
                    let path: ArrayRef = Arc::new(StringArray::new_null(rows));
                    Arc::new(
                        StructArray::try_new(fields.clone(), vec![bytes, path], None)
                            .map_err(|e| bad(field, &e))?,
                    )
                }
                (Column::Image(_), other) => {
                    return Err(bad(field, &format!("image column of type {other}")))
                }
                (Column::Time(buf), _) => Arc::new(Int64Array::from(std::mem::take(buf))),
            };
            cols.push(col);
        }
        self.image_bytes = 0;
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
    schema: SchemaRef,
    image_columns: Vec<String>,
}

/// Rows per batch when a file's first row groups are copied (see [`DataFile::truncate`]);
/// fewer when rows hold pictures.
const COPY_ROWS: usize = BATCH_ROWS;
const COPY_IMAGE_ROWS: usize = 32;

/// The data file an episode beginning now writes to, in `data`: a new file only at an episode
/// boundary, once the current one holds `limit` bytes (lerobot's `data_files_size_in_mb`),
/// numbered from `next`. The writer and `merge` both follow this rule, so that a merge lays
/// rows out as one run does. True when a file was opened.
pub fn data_file_for_episode(
    data: &mut Option<DataFile>,
    next: &mut (u64, u64),
    limit: u64,
    root: &Path,
    schema: &SchemaRef,
    image_columns: &[String],
) -> Result<bool, DatasetError> {
    if let Some(d) = data.as_ref().filter(|d| d.size() >= limit) {
        *next = super::meta::next_file(d.chunk, d.file);
        if let Some(d) = data.take() {
            d.close()?;
        }
    }
    if data.is_some() {
        return Ok(false);
    }
    let (chunk, file) = *next;
    *data = Some(DataFile::create(
        root,
        chunk,
        file,
        schema.clone(),
        image_columns,
    )?);
    Ok(true)
}

impl DataFile {
    /// `image_columns`: the schema's image features (see [`writer_props_for`]).
    pub fn create(
        root: &Path,
        chunk: u64,
        file: u64,
        schema: SchemaRef,
        image_columns: &[String],
    ) -> Result<DataFile, DatasetError> {
        let path = root.join(data_file_rel(chunk, file));
        Self::create_at(path, chunk, file, schema, image_columns)
    }

    fn create_at(
        path: PathBuf,
        chunk: u64,
        file: u64,
        schema: SchemaRef,
        image_columns: &[String],
    ) -> Result<DataFile, DatasetError> {
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
        let writer = ArrowWriter::try_new(
            BufWriter::new(f),
            schema.clone(),
            Some(writer_props_for(image_columns)),
        )
        .map_err(|e| perr(&path, e))?;
        Ok(DataFile {
            chunk,
            file,
            path,
            writer,
            schema,
            image_columns: image_columns.to_vec(),
        })
    }

    /// Row groups written to the file so far (the one in progress not counted).
    pub fn row_groups(&self) -> usize {
        self.writer.flushed_row_groups().len()
    }

    /// Removes the file: its rows are all thrown away.
    pub fn discard(self) -> Result<(), DatasetError> {
        let path = self.path.clone();
        drop(self.writer);
        std::fs::remove_file(&path).map_err(|source| DatasetError::Io { path, source })
    }

    /// Keeps only the first `row_groups` row groups (the row group in progress and the later
    /// ones are dropped): the file is closed, set aside, its first row groups copied into a
    /// new file of the same name in bounded batches, one row group each as before, and the
    /// new file returned open for more rows.
    pub fn truncate(self, row_groups: usize) -> Result<DataFile, DatasetError> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let (chunk, file, path) = (self.chunk, self.file, self.path.clone());
        let (schema, image_columns) = (self.schema.clone(), self.image_columns.clone());
        self.close()?;
        let mut aside = path.clone().into_os_string();
        aside.push(".aborted");
        let aside = PathBuf::from(aside);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DatasetError::Io { path, source }
        };
        std::fs::rename(&path, &aside).map_err(io(&path))?;
        let mut out = Self::create_at(path, chunk, file, schema, &image_columns)?;
        let rows = if image_columns.is_empty() {
            COPY_ROWS
        } else {
            COPY_IMAGE_ROWS
        };
        for rg in 0..row_groups {
            let f = File::open(&aside).map_err(io(&aside))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.with_row_groups(vec![rg]).with_batch_size(rows).build())
                .map_err(|e| perr(&aside, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| perr(&aside, e))?;
                out.writer.write(&batch).map_err(|e| perr(&out.path, e))?;
                if out.writer.in_progress_size() > ROW_GROUP_BYTES {
                    out.end_row_group()?;
                }
            }
            out.end_row_group()?;
        }
        std::fs::remove_file(&aside).map_err(io(&aside))?;
        Ok(out)
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
    let detail = e.to_string();
    DatasetError::Parquet {
        path: path.to_path_buf(),
        // An I/O error (a full disk) reaches us as parquet's `External`: say only the reason.
        detail: detail
            .strip_prefix("External: ")
            .unwrap_or(&detail)
            .to_string(),
    }
}
