//! [`LeRobotWriter`]: writes a LeRobot v3.0 dataset (see `shared/docs/lerobot-v3.md`).
//!
//! Everything is written into a temporary directory beside the output and renamed into place
//! by `finish`, so a failed or killed run never leaves something that looks like a dataset.
//! With `append`, the existing files are hard-linked into the temporary directory (never
//! modified), the new episodes go to a new data file, and the metadata is rewritten.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::frames::{ColumnKind, DataFile, FrameBuffer, FrameIndices};
use super::meta::{
    self, data_schema, episodes_batch, episodes_schema, episodes_writer_props, read_parquet,
    read_tasks, write_json, write_tasks, EpisodeRow, Info, OrderedMap, StatFeature, VideoSpan,
    EPISODES_DIR, EPISODES_PATH, INFO_PATH, STATS_PATH, SYNC_REPORT_PATH, TASKS_PATH,
};
use super::staging::{
    check_parent_is_directory, dir_is_empty, link_or_copy, temp_dir_for, unwritable,
};
use super::stats::{aggregate, BatchedStats, FeatureStats};
use super::{
    DatasetError, DatasetSpec, DatasetWriter, EpisodeSummary, FeatureKind, Frame, WriterOptions,
    WriterSummary,
};
use crate::camera::encode_png;
use crate::video::{
    find_ffmpeg, image_stats_from_json, EncodedVideo, ImageStats, VideoEncoder, VideoOptions,
    VideoSettings,
};

fn io_err(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io {
        path: path.to_path_buf(),
        source,
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

/// The episode being written.
struct Episode {
    index: u64,
    task: String,
    task_index: u64,
    frames: u64,
    from_index: u64,
    /// The vector features' then the five defaults' stats.
    stats: Vec<BatchedStats>,
    /// One per camera feature.
    camera_stats: Vec<ImageStats>,
    /// One per video feature: its file and the episode's start time in it.
    videos: Vec<(u64, u64, f64)>,
    data_chunk: u64,
    data_file: u64,
    /// Row groups of the data file before this episode: 0 when the episode started the file.
    data_row_groups: usize,
    /// Per video feature: frames in its file before this episode (0: the episode started it).
    video_frames: Vec<u64>,
    /// The episode brought a task the dataset did not have.
    new_task: bool,
}

/// Where a stats feature's episode stats come from.
#[derive(Debug, Clone, Copy)]
enum StatSource {
    /// `Episode::stats[i]`.
    Values(usize),
    /// `Episode::camera_stats[i]`.
    Camera(usize),
}

/// What feeds one of `Episode::stats` before the five defaults', in spec order.
#[derive(Debug, Clone, Copy)]
enum StatInput {
    /// The next `n` of `Frame::values`.
    Vector(usize),
    /// `Frame::time`.
    Time,
}

/// A camera feature, in spec order (`Frame::images` order).
#[derive(Debug, Clone)]
struct CameraColumn {
    key: String,
    width: u32,
    height: u32,
    video: bool,
}

/// The video file a video feature is writing.
struct VideoOut {
    key: String,
    /// Index into the cameras (and `Frame::images`).
    camera: usize,
    encoder: Option<VideoEncoder>,
    chunk: u64,
    file: u64,
    /// Where the next episode starts in the current file, summed as lerobot sums it.
    time_in_file: f64,
    /// The file the next encoder writes.
    next: (u64, u64),
    /// The largest peak RSS of this feature's encoders so far (one runs at a time).
    peak_rss: Option<u64>,
}

impl VideoOut {
    fn finished(&mut self, done: EncodedVideo, into: &mut Vec<EncodedVideo>) {
        self.peak_rss = self.peak_rss.max(done.peak_rss);
        into.push(done);
    }
}

/// What an existing dataset brings to an append.
struct Existing {
    info: Info,
    tasks: Vec<String>,
    stats: Vec<FeatureStats>,
    sync_reports: Vec<Value>,
    next_data_file: (u64, u64),
    /// Per video feature of the dataset: the file its new episodes go to.
    next_video_files: Vec<(String, (u64, u64))>,
}

pub struct LeRobotWriter {
    out: PathBuf,
    tmp: PathBuf,
    append: bool,
    info: Info,
    schema: SchemaRef,
    vector_lens: Vec<usize>,
    stat_inputs: Vec<StatInput>,
    cameras: Vec<CameraColumn>,
    /// The image features, which have data columns.
    image_columns: Vec<String>,
    /// Features with stats, info.json order, and where their stats come from.
    stat_features: Vec<StatFeature>,
    stat_sources: Vec<StatSource>,
    buffer: FrameBuffer,
    videos: Vec<VideoOut>,
    video_settings: VideoSettings,
    /// Each encoder's threads (`--threads`); None: the encoder's own choice.
    encoder_threads: Option<usize>,
    ffmpeg: Option<PathBuf>,
    video_file_limit: u64,
    finished_videos: Vec<EncodedVideo>,
    png_scratch: Vec<u8>,
    data: Option<DataFile>,
    next_data_file: (u64, u64),
    data_file_limit: u64,
    episode: Option<Episode>,
    tasks: Vec<String>,
    task_ids: HashMap<String, u64>,
    stats: Option<Vec<FeatureStats>>,
    episodes_schema: SchemaRef,
    episodes: Option<ArrowWriter<BufWriter<File>>>,
    sync: BufWriter<File>,
    sync_entries: u64,
    new_episodes: u64,
    /// Written by `finish` (meta/bagstream_inputs.json).
    inputs: Option<super::inputs::InputsFile>,
    finished: bool,
}

impl LeRobotWriter {
    pub fn create(spec: &DatasetSpec, opts: &WriterOptions) -> Result<LeRobotWriter, DatasetError> {
        if spec.fps == 0 {
            return Err(DatasetError::Invalid("fps must be positive".into()));
        }
        let mut info = Info::new(spec, &opts.video)?;
        // Before anything is created: a missing ffmpeg must leave nothing behind.
        let ffmpeg = match (&opts.ffmpeg, spec.has_video()) {
            (Some(p), _) => Some(p.clone()),
            (None, true) => Some(find_ffmpeg()?),
            (None, false) => None,
        };
        let out = opts.out.clone();
        check_parent_is_directory(&out)?;
        let existing = if dir_is_empty(&out)? {
            None
        } else if !opts.append {
            return Err(DatasetError::Refused {
                path: out,
                detail: "exists and is not empty; use --append to add episodes".into(),
            });
        } else {
            Some(read_existing(&out, &info, &opts.video)?)
        };

        let (parent, tmp) = temp_dir_for(&out)?;
        let schema = data_schema(&info.features)?;
        let vector_lens: Vec<usize> = spec
            .features
            .iter()
            .filter_map(|f| match &f.kind {
                FeatureKind::Vector { names } => Some(names.len()),
                _ => None,
            })
            .collect();
        let cameras: Vec<CameraColumn> = spec
            .features
            .iter()
            .filter_map(|f| {
                let (width, height) = f.kind.camera_size()?;
                Some(CameraColumn {
                    key: f.key.clone(),
                    width,
                    height,
                    video: matches!(f.kind, FeatureKind::Video { .. }),
                })
            })
            .collect();
        let column_kinds: Vec<ColumnKind> = spec
            .features
            .iter()
            .filter_map(|f| match &f.kind {
                FeatureKind::Vector { names } => Some(ColumnKind::Vector(names.len())),
                FeatureKind::Image { .. } => Some(ColumnKind::Image),
                FeatureKind::Time => Some(ColumnKind::Time),
                FeatureKind::Video { .. } => None,
            })
            .collect();
        let image_columns: Vec<String> = cameras
            .iter()
            .filter(|c| !c.video)
            .map(|c| c.key.clone())
            .collect();
        // Stats for every feature in info.json order: the spec's, then the five defaults.
        let mut stat_features = Vec::new();
        let mut stat_sources = Vec::new();
        let mut stat_inputs = Vec::new();
        let (mut n_values, mut n_cameras) = (0, 0);
        for f in &spec.features {
            match &f.kind {
                FeatureKind::Vector { .. } | FeatureKind::Time => {
                    let (dims, input) = match &f.kind {
                        FeatureKind::Vector { names } => {
                            (names.len(), StatInput::Vector(names.len()))
                        }
                        _ => (1, StatInput::Time),
                    };
                    stat_features.push(StatFeature {
                        key: f.key.clone(),
                        dims,
                        camera: false,
                    });
                    stat_sources.push(StatSource::Values(n_values));
                    stat_inputs.push(input);
                    n_values += 1;
                }
                _ => {
                    stat_features.push(StatFeature {
                        key: f.key.clone(),
                        dims: 3,
                        camera: true,
                    });
                    stat_sources.push(StatSource::Camera(n_cameras));
                    n_cameras += 1;
                }
            }
        }
        for (key, _) in meta::DEFAULT_FEATURES {
            stat_features.push(StatFeature {
                key: key.to_string(),
                dims: 1,
                camera: false,
            });
            stat_sources.push(StatSource::Values(n_values));
            n_values += 1;
        }
        let video_keys: Vec<String> = cameras
            .iter()
            .filter(|c| c.video)
            .map(|c| c.key.clone())
            .collect();
        let episodes_schema = episodes_schema(&stat_features, &video_keys);
        let videos: Vec<VideoOut> = cameras
            .iter()
            .enumerate()
            .filter(|(_, c)| c.video)
            .map(|(i, c)| VideoOut {
                key: c.key.clone(),
                camera: i,
                encoder: None,
                chunk: 0,
                file: 0,
                time_in_file: 0.0,
                next: existing
                    .as_ref()
                    .and_then(|e| e.next_video_files.iter().find(|(k, _)| *k == c.key))
                    .map_or((0, 0), |(_, n)| *n),
                peak_rss: None,
            })
            .collect();

        // The temporary directory is made last: until `w` exists (and its drop cleans up), an
        // error must leave nothing behind.
        let sync_path = tmp.join(SYNC_REPORT_PATH);
        let sync_file = std::fs::create_dir_all(tmp.join(EPISODES_DIR).join("chunk-000"))
            .and_then(|_| File::create(&sync_path))
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&tmp);
                unwritable(&out, &parent, e)
            })?;
        let mut w = LeRobotWriter {
            out: out.clone(),
            tmp: tmp.clone(),
            append: existing.is_some(),
            schema: schema.clone(),
            buffer: FrameBuffer::new(schema, &column_kinds),
            vector_lens,
            stat_inputs,
            cameras,
            image_columns,
            stat_features,
            stat_sources,
            videos,
            video_settings: opts.video.clone(),
            encoder_threads: opts.encoder_threads,
            ffmpeg,
            video_file_limit: meta::VIDEO_FILES_SIZE_IN_MB << 20,
            finished_videos: Vec::new(),
            png_scratch: Vec::new(),
            data: None,
            next_data_file: (0, 0),
            data_file_limit: meta::DATA_FILES_SIZE_IN_MB << 20,
            episode: None,
            tasks: Vec::new(),
            task_ids: HashMap::new(),
            stats: None,
            episodes_schema,
            episodes: None,
            sync: BufWriter::new(sync_file),
            sync_entries: 0,
            new_episodes: 0,
            inputs: None,
            finished: false,
            info: info.clone(),
        };
        w.sync
            .write_all(b"{\n    \"episodes\": [")
            .map_err(|e| io_err(&sync_path, e))?;
        // From here on, an error drops `w`, which removes the temporary directory.
        let ep_path = tmp.join(EPISODES_PATH);
        let ep_file = File::create(&ep_path).map_err(|e| io_err(&ep_path, e))?;
        w.episodes = Some(
            ArrowWriter::try_new(
                BufWriter::new(ep_file),
                w.episodes_schema.clone(),
                Some(episodes_writer_props()),
            )
            .map_err(|e| perr(&ep_path, e))?,
        );
        if let Some(old) = existing {
            link_tree(&out, &tmp, Path::new(""))?;
            w.copy_old_episodes(&out, old.info.total_episodes, old.info.total_frames)?;
            for r in &old.sync_reports {
                w.push_sync(r)?;
            }
            // The features' blocks as they were: the old files' encoder settings (which this
            // run's match, see `features_differ`) and anything lerobot added that we do not
            // write.
            info.features = old.info.features;
            info.total_episodes = old.info.total_episodes;
            info.total_frames = old.info.total_frames;
            info.robot_type = info.robot_type.or(old.info.robot_type);
            info.extra = old.info.extra;
            w.info = info;
            w.task_ids = old
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i as u64))
                .collect();
            w.tasks = old.tasks;
            w.stats = Some(old.stats);
            w.next_data_file = old.next_data_file;
        }
        Ok(w)
    }

    /// Starts a new data file once the current one passes this many bytes (default
    /// `data_files_size_in_mb`, 100 MB); lets tests see file rollover with small data.
    pub fn set_data_file_limit(&mut self, bytes: u64) {
        self.data_file_limit = bytes;
    }

    /// Starts a new video file at an episode start once the current one passes this many
    /// bytes (default `video_files_size_in_mb`, 200 MB); 0 gives one file per episode. The
    /// size is what ffmpeg has written so far, which trails the frames sent by the encoder's
    /// lookahead, so a file can end one episode later than an exact count would say.
    pub fn set_video_file_limit(&mut self, bytes: u64) {
        self.video_file_limit = bytes;
    }

    /// Finish the current video files that are full and open the ones missing, at an
    /// episode boundary.
    fn prepare_videos(&mut self) -> Result<(), DatasetError> {
        let fps = self.info.fps;
        for v in &mut self.videos {
            if v.encoder
                .as_ref()
                .is_some_and(|e| e.bytes_so_far() >= self.video_file_limit)
            {
                if let Some(e) = v.encoder.take() {
                    v.finished(e.finish()?, &mut self.finished_videos);
                }
                v.next = meta::next_file(v.chunk, v.file);
            }
            if v.encoder.is_none() {
                let cam = &self.cameras[v.camera];
                let (chunk, file) = v.next;
                let path = self.tmp.join(meta::video_file_rel(&v.key, chunk, file));
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
                }
                let ffmpeg = self.ffmpeg.as_deref().ok_or_else(|| {
                    DatasetError::Invalid("no ffmpeg for the video features".into())
                })?;
                v.encoder = Some(VideoEncoder::spawn(
                    ffmpeg,
                    &path,
                    cam.width,
                    cam.height,
                    fps,
                    &self.video_settings,
                    self.encoder_threads,
                )?);
                v.chunk = chunk;
                v.file = file;
                v.time_in_file = 0.0;
            }
        }
        Ok(())
    }

    /// The old episodes rows go first into the new episodes parquet.
    fn copy_old_episodes(
        &mut self,
        out: &Path,
        episodes: u64,
        frames: u64,
    ) -> Result<(), DatasetError> {
        let mut files = Vec::new();
        collect_parquet(&out.join(EPISODES_DIR), &mut files)?;
        files.sort();
        let mut next_episode = 0i64;
        let mut next_from = 0i64;
        for path in &files {
            let (_, batches, _) = read_parquet(path)?;
            for b in &batches {
                for [ep, from, to, len] in meta::episode_positions(b, path)? {
                    if ep != next_episode || from != next_from || to.checked_sub(from) != Some(len)
                    {
                        return Err(DatasetError::Refused {
                            path: path.clone(),
                            detail: format!(
                                "episode rows are not contiguous at episode {ep} \
                                 (expected episode {next_episode} from index {next_from})"
                            ),
                        });
                    }
                    next_episode += 1;
                    next_from = to;
                }
                let conformed = meta::conform_episodes(b, &self.episodes_schema, path)?;
                self.episodes_writer()?
                    .write(&conformed)
                    .map_err(|e| perr(path, e))?;
            }
        }
        if next_episode as u64 != episodes || next_from as u64 != frames {
            return Err(DatasetError::Refused {
                path: out.join(EPISODES_DIR),
                detail: format!(
                    "episodes parquet holds {next_episode} episodes / {next_from} frames, \
                     info.json says {episodes} / {frames}"
                ),
            });
        }
        Ok(())
    }

    fn episodes_writer(&mut self) -> Result<&mut ArrowWriter<BufWriter<File>>, DatasetError> {
        self.episodes
            .as_mut()
            .ok_or_else(|| DatasetError::Invalid("episodes parquet already closed".into()))
    }

    fn push_sync(&mut self, entry: &Value) -> Result<(), DatasetError> {
        let path = self.tmp.join(SYNC_REPORT_PATH);
        let text =
            serde_json::to_string(entry).map_err(|e| DatasetError::Invalid(e.to_string()))?;
        let sep = if self.sync_entries == 0 {
            "\n        "
        } else {
            ",\n        "
        };
        self.sync
            .write_all(sep.as_bytes())
            .and_then(|_| self.sync.write_all(text.as_bytes()))
            .map_err(|e| io_err(&path, e))?;
        self.sync_entries += 1;
        Ok(())
    }

    fn write_buffered(&mut self) -> Result<(), DatasetError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = self.buffer.take_batch()?;
        match self.data.as_mut() {
            Some(d) => d.write(&batch),
            None => Err(DatasetError::Invalid("no data file open".into())),
        }
    }

    fn total_frames(&self) -> u64 {
        self.info.total_frames
    }
}

impl DatasetWriter for LeRobotWriter {
    fn begin_episode(&mut self, task: &str, frames_hint: u64) -> Result<(), DatasetError> {
        if let Some(ep) = &self.episode {
            return Err(DatasetError::Invalid(format!(
                "begin_episode: episode {} was not ended",
                ep.index
            )));
        }
        super::frames::data_file_for_episode(
            &mut self.data,
            &mut self.next_data_file,
            self.data_file_limit,
            &self.tmp,
            &self.schema,
            &self.image_columns,
        )?;
        self.prepare_videos()?;
        let new_task = !self.task_ids.contains_key(task);
        let task_index = match self.task_ids.get(task) {
            Some(&i) => i,
            None => {
                let i = self.tasks.len() as u64;
                self.tasks.push(task.to_string());
                self.task_ids.insert(task.to_string(), i);
                i
            }
        };
        let (data_chunk, data_file) = self
            .data
            .as_ref()
            .map(|d| (d.chunk, d.file))
            .unwrap_or_default();
        self.episode = Some(Episode {
            index: self.info.total_episodes,
            task: task.to_string(),
            task_index,
            frames: 0,
            from_index: self.total_frames(),
            stats: self
                .stat_features
                .iter()
                .zip(&self.stat_sources)
                .filter(|(_, s)| matches!(s, StatSource::Values(_)))
                .map(|(f, _)| BatchedStats::new(f.dims))
                .collect(),
            camera_stats: self
                .cameras
                .iter()
                .map(|c| ImageStats::new(c.width, c.height, frames_hint))
                .collect(),
            videos: self
                .videos
                .iter()
                .map(|v| (v.chunk, v.file, v.time_in_file))
                .collect(),
            data_chunk,
            data_file,
            data_row_groups: self.data.as_ref().map_or(0, DataFile::row_groups),
            video_frames: self
                .videos
                .iter()
                .map(|v| v.encoder.as_ref().map_or(0, VideoEncoder::frames_written))
                .collect(),
            new_task,
        });
        Ok(())
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), DatasetError> {
        let fps = self.info.fps;
        let want: usize = self.vector_lens.iter().sum();
        let ep = self
            .episode
            .as_mut()
            .ok_or_else(|| DatasetError::Invalid("write_frame outside an episode".into()))?;
        if frame.values.len() != want {
            return Err(DatasetError::Invalid(format!(
                "episode {}, frame {}: {} values, the features need {want}",
                ep.index,
                ep.frames,
                frame.values.len()
            )));
        }
        if frame.images.len() != self.cameras.len() {
            return Err(DatasetError::Invalid(format!(
                "episode {}, frame {}: {} images, the features need {}",
                ep.index,
                ep.frames,
                frame.images.len(),
                self.cameras.len()
            )));
        }
        for (cam, img) in self.cameras.iter().zip(&frame.images) {
            let rgb = &img.rgb;
            if (rgb.width, rgb.height) != (cam.width, cam.height)
                || rgb.data.len() != cam.width as usize * cam.height as usize * 3
            {
                return Err(DatasetError::Invalid(format!(
                    "episode {}, frame {}: `{}` is {}x{} ({} bytes), the feature is {}x{} rgb",
                    ep.index,
                    ep.frames,
                    cam.key,
                    rgb.width,
                    rgb.height,
                    rgb.data.len(),
                    cam.width,
                    cam.height
                )));
            }
        }
        let at = FrameIndices {
            frame_index: ep.frames,
            episode_index: ep.index,
            index: ep.from_index + ep.frames,
            task_index: ep.task_index,
        };
        // Stats features are the vectors and the bag time (in spec order), then the five
        // defaults.
        let mut rest = frame.values.as_slice();
        let n_inputs = self.stat_inputs.len();
        for (s, input) in ep.stats.iter_mut().zip(&self.stat_inputs) {
            match *input {
                StatInput::Vector(n) => {
                    let (mine, tail) = rest.split_at(n);
                    s.push(mine.iter().map(|v| f64::from(*v)));
                    rest = tail;
                }
                StatInput::Time => s.push([frame.time as f64]),
            }
        }
        let defaults = [
            // lerobot's timestamp stats are over the float64 division, not the stored f32.
            at.frame_index as f64 / f64::from(fps),
            at.frame_index as f64,
            at.episode_index as f64,
            at.index as f64,
            at.task_index as f64,
        ];
        for (s, v) in ep.stats[n_inputs..].iter_mut().zip(defaults) {
            s.push([v]);
        }
        for (s, img) in ep.camera_stats.iter_mut().zip(&frame.images) {
            if s.wants_next() {
                s.push(&img.rgb.data)?;
            } else {
                s.skip();
            }
        }
        for v in &mut self.videos {
            let enc = v.encoder.as_mut().ok_or_else(|| {
                DatasetError::Invalid(format!("no video file open for `{}`", v.key))
            })?;
            enc.write_frame(&frame.images[v.camera].rgb.data)?;
        }
        ep.frames += 1;
        // Image features: PNG bytes, encoded here when the caller did not.
        let mut pngs: Vec<&[u8]> = Vec::with_capacity(self.image_columns.len());
        let missing = self
            .cameras
            .iter()
            .zip(&frame.images)
            .find(|(c, img)| !c.video && img.png.is_empty());
        if let Some((_, img)) = missing {
            self.png_scratch.clear();
            encode_png(&img.rgb, &mut self.png_scratch)
                .map_err(|e| DatasetError::Invalid(e.to_string()))?;
        }
        let mut scratch_used = false;
        for (c, img) in self.cameras.iter().zip(&frame.images) {
            if c.video {
                continue;
            }
            if img.png.is_empty() && !scratch_used {
                pngs.push(&self.png_scratch);
                scratch_used = true;
            } else if img.png.is_empty() {
                return Err(DatasetError::Invalid(format!(
                    "frame {}: more than one image feature without PNG bytes",
                    at.frame_index
                )));
            } else {
                pngs.push(&img.png);
            }
        }
        self.buffer.push(&frame.values, &pngs, frame.time, fps, at);
        if self.buffer.is_full() {
            self.write_buffered()?;
        }
        Ok(())
    }

    fn end_episode(&mut self, sync_report: Value) -> Result<EpisodeSummary, DatasetError> {
        let ep = self
            .episode
            .take()
            .ok_or_else(|| DatasetError::Invalid("end_episode outside an episode".into()))?;
        if ep.frames == 0 {
            return Err(DatasetError::Invalid(format!(
                "episode {} has no frames (lerobot refuses empty episodes)",
                ep.index
            )));
        }
        self.write_buffered()?;
        if let Some(d) = self.data.as_mut() {
            d.end_row_group()?;
        }
        let mut values: Vec<Option<FeatureStats>> =
            ep.stats.into_iter().map(|s| s.finish()).collect();
        let stats: Vec<FeatureStats> = self
            .stat_sources
            .iter()
            .map(|s| match *s {
                StatSource::Values(i) => values.get_mut(i).and_then(Option::take),
                StatSource::Camera(i) => ep.camera_stats.get(i).and_then(ImageStats::finish),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| DatasetError::Invalid(format!("episode {}: no stats", ep.index)))?;
        let fps = f64::from(self.info.fps);
        let mut videos = Vec::with_capacity(self.videos.len());
        for (v, &(chunk, file, from)) in self.videos.iter_mut().zip(&ep.videos) {
            // lerobot adds the episode's duration to the previous end time.
            let to = from + ep.frames as f64 / fps;
            v.time_in_file = to;
            videos.push(VideoSpan {
                chunk,
                file,
                from_timestamp: from,
                to_timestamp: to,
            });
        }
        let row = EpisodeRow {
            episode_index: ep.index,
            tasks: vec![ep.task],
            length: ep.frames,
            data_chunk: ep.data_chunk,
            data_file: ep.data_file,
            from_index: ep.from_index,
            to_index: ep.from_index + ep.frames,
            videos,
            stats,
        };
        let batch = episodes_batch(&self.episodes_schema, std::slice::from_ref(&row))?;
        let ep_path = self.tmp.join(EPISODES_PATH);
        self.episodes_writer()?
            .write(&batch)
            .map_err(|e| perr(&ep_path, e))?;
        self.stats = Some(match self.stats.take() {
            None => row.stats,
            Some(agg) => agg
                .iter()
                .zip(&row.stats)
                .map(|(a, b)| aggregate(a, b))
                .collect(),
        });
        let mut report = match sync_report {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("report".into(), other);
                m
            }
        };
        report.insert("episode_index".into(), Value::from(ep.index));
        self.push_sync(&Value::Object(report))?;

        self.info.total_episodes += 1;
        self.info.total_frames += ep.frames;
        self.new_episodes += 1;
        Ok(EpisodeSummary {
            episode_index: ep.index,
            frames: ep.frames,
        })
    }

    fn abort_episode(&mut self) -> Result<(), DatasetError> {
        let Some(ep) = self.episode.take() else {
            return Ok(());
        };
        // Its rows not yet handed to the parquet writer.
        if !self.buffer.is_empty() {
            self.buffer.take_batch()?;
        }
        // Its rows in the data file: the row group in progress and those flushed since the
        // episode began (every episode ends its row group, so they are a suffix).
        if let Some(d) = self.data.take() {
            if ep.data_row_groups == 0 {
                self.next_data_file = (d.chunk, d.file);
                d.discard()?;
            } else {
                self.data = Some(d.truncate(ep.data_row_groups)?);
            }
        }
        // Its frames in each camera's video: the file's last frames. An MP4 cannot be
        // appended to once finished, so a file the earlier episodes share is cut at their end
        // and the next episode starts a new file.
        for (v, &before) in self.videos.iter_mut().zip(&ep.video_frames) {
            let Some(enc) = v.encoder.take() else {
                continue;
            };
            if before == 0 {
                // Dropping the encoder stops ffmpeg and removes the partial file.
                drop(enc);
                v.next = (v.chunk, v.file);
                continue;
            }
            let mut done = enc.finish()?;
            let ffmpeg = self
                .ffmpeg
                .as_deref()
                .ok_or_else(|| DatasetError::Invalid("no ffmpeg for the video features".into()))?;
            done.bytes = crate::video::keep_first_frames(ffmpeg, &done.path, before)?;
            done.frames = before;
            v.finished(done, &mut self.finished_videos);
            v.next = meta::next_file(v.chunk, v.file);
        }
        if ep.new_task {
            self.tasks.pop();
            self.task_ids.remove(&ep.task);
        }
        Ok(())
    }

    fn record_inputs(&mut self, inputs: &super::inputs::InputsFile) -> Result<(), DatasetError> {
        // Unrecorded, an append drops the old record (it is not linked): a record that missed
        // episodes would have --resume convert them again.
        self.inputs = Some(inputs.clone());
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<WriterSummary, DatasetError> {
        if let Some(ep) = &self.episode {
            return Err(DatasetError::Invalid(format!(
                "finish: episode {} was not ended",
                ep.index
            )));
        }
        if self.new_episodes == 0 {
            return Err(DatasetError::Invalid("no episodes were written".into()));
        }
        if let Some(d) = self.data.take() {
            d.close()?;
        }
        let encoders = self.videos.len();
        for v in &mut self.videos {
            if let Some(e) = v.encoder.take() {
                v.finished(e.finish()?, &mut self.finished_videos);
            }
        }
        let ep_path = self.tmp.join(EPISODES_PATH);
        if let Some(w) = self.episodes.take() {
            w.close().map_err(|e| perr(&ep_path, e))?;
        }
        let sync_path = self.tmp.join(SYNC_REPORT_PATH);
        self.sync
            .write_all(b"\n    ]\n}\n")
            .and_then(|_| self.sync.flush())
            .map_err(|e| io_err(&sync_path, e))?;

        write_tasks(&self.tmp.join(TASKS_PATH), &self.tasks)?;
        let stats = self.stats.take().unwrap_or_default();
        write_json(
            &self.tmp.join(STATS_PATH),
            &meta::stats_json(&self.stat_features, &stats),
        )?;
        self.info.total_tasks = self.tasks.len() as u64;
        self.info.splits = [(
            "train".to_string(),
            format!("0:{}", self.info.total_episodes),
        )]
        .into_iter()
        .collect();
        write_json(&self.tmp.join(INFO_PATH), &self.info)?;
        if let Some(inputs) = &self.inputs {
            super::inputs::write(&self.tmp, inputs)?;
        }

        // Last moment to stop: after this, the run is complete and stays.
        if let Some(signal) = crate::interrupt::pending() {
            return Err(DatasetError::Interrupted(signal));
        }
        if self.append {
            // One atomic exchange: at every instant `out` is the old or the new dataset.
            swap_dirs(&self.tmp, &self.out)?;
            self.finished = true;
            // `tmp` now holds the old dataset; failing to delete it loses nothing.
            if let Err(e) = std::fs::remove_dir_all(&self.tmp) {
                eprintln!(
                    "warning: {}: could not remove the previous dataset: {e}",
                    self.tmp.display()
                );
            }
        } else {
            if self.out.exists() {
                // Checked empty at create; remove_dir refuses if something appeared since.
                std::fs::remove_dir(&self.out).map_err(|e| io_err(&self.out, e))?;
            }
            std::fs::rename(&self.tmp, &self.out).map_err(|e| io_err(&self.out, e))?;
            self.finished = true;
        }
        // The files were written under the temporary directory; name them where they are now.
        let videos = std::mem::take(&mut self.finished_videos)
            .into_iter()
            .map(|mut v| {
                if let Ok(rel) = v.path.strip_prefix(&self.tmp) {
                    v.path = self.out.join(rel);
                }
                v
            })
            .collect();
        Ok(WriterSummary {
            videos,
            encoder_peaks: self.videos.iter().map(|v| v.peak_rss).collect(),
            encoders,
            episodes: self.info.total_episodes,
        })
    }
}

/// Exchange two directories atomically (Linux `renameat2(RENAME_EXCHANGE)`); where the
/// filesystem cannot, fall back to two renames with the old one set aside in between.
pub(crate) fn swap_dirs(new: &Path, out: &Path) -> Result<(), DatasetError> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    if let (Some(a), Some(b)) = (c(new), c(out)) {
        // SAFETY: both are valid NUL-terminated paths; the call only reads them.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Err(io_err(out, err));
        }
    }
    let aside = new.with_extension("old");
    std::fs::rename(out, &aside).map_err(|e| io_err(out, e))?;
    if let Err(e) = std::fs::rename(new, out) {
        let _ = std::fs::rename(&aside, out);
        return Err(io_err(out, e));
    }
    std::fs::rename(&aside, new).map_err(|e| io_err(&aside, e))
}

impl Drop for LeRobotWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// The encoder settings of a run writing to `out`: for a new dataset, the options' (lerobot's
/// defaults where not given); with `append` onto a dataset, those its video features were
/// encoded with, as their one info block describes every file of a camera, new ones too.
pub fn encoder_settings(
    out: &Path,
    append: bool,
    asked: &VideoOptions,
) -> Result<VideoSettings, DatasetError> {
    if !append || !out.join(INFO_PATH).is_file() {
        return Ok(asked.for_new_dataset()?);
    }
    let refused = |detail: String| DatasetError::Refused {
        path: out.to_path_buf(),
        detail,
    };
    let info = Info::read(out)?;
    let mut found: Option<(&str, VideoSettings)> = None;
    for (key, f) in info.features.0.iter().filter(|(_, f)| f.dtype == "video") {
        let block = f.extra.get("info").unwrap_or(&Value::Null);
        let s = asked.for_dataset(key, block).map_err(refused)?;
        match &found {
            Some((first, settings)) if *settings != s => {
                return Err(refused(format!(
                    "video features `{first}` and `{key}` were encoded with different settings; \
                     bagstream encodes every camera of a run alike"
                )))
            }
            Some(_) => {}
            None => found = Some((key, s)),
        }
    }
    match found {
        Some((_, s)) => Ok(s),
        None => Ok(asked.for_new_dataset()?),
    }
}

/// Checks that `out` is a dataset this run can append to and reads what the append needs.
fn read_existing(out: &Path, new: &Info, video: &VideoSettings) -> Result<Existing, DatasetError> {
    let refused = |detail: String| DatasetError::Refused {
        path: out.to_path_buf(),
        detail,
    };
    if !out.join(INFO_PATH).is_file() {
        return Err(refused(
            "is not a LeRobot dataset (no meta/info.json)".into(),
        ));
    }
    let info = Info::read(out)?;
    if !info.codebase_version.starts_with("v3.") {
        return Err(refused(format!(
            "codebase_version {} is not v3.x",
            info.codebase_version
        )));
    }
    if info.fps != new.fps {
        return Err(refused(format!(
            "fps differs: the dataset has {}, this run writes {}",
            info.fps, new.fps
        )));
    }
    match features_differ(&info.features, &new.features, video) {
        Some(Differ::Shape(detail)) => {
            return Err(DatasetError::Mismatch {
                path: out.to_path_buf(),
                detail,
            })
        }
        Some(Differ::Config(detail)) => return Err(refused(detail)),
        None => {}
    }
    let tasks = read_tasks(&out.join(TASKS_PATH))?;
    if tasks.len() as u64 != info.total_tasks {
        return Err(refused(format!(
            "tasks.parquet holds {} tasks, info.json says {}",
            tasks.len(),
            info.total_tasks
        )));
    }
    let stats_path = out.join(STATS_PATH);
    let text = std::fs::read_to_string(&stats_path).map_err(|e| io_err(&stats_path, e))?;
    let stats_json: OrderedMap<Value> =
        serde_json::from_str(&text).map_err(|e| refused(format!("meta/stats.json: {e}")))?;
    let mut stats = Vec::new();
    for (key, f) in &new.features.0 {
        let v = stats_json
            .get(key)
            .ok_or_else(|| refused(format!("meta/stats.json has no stats for `{key}`")))?;
        let parsed = if f.dtype == "video" || f.dtype == "image" {
            image_stats_from_json(v)
        } else {
            FeatureStats::from_json(v, f.shape.iter().product::<u64>() as usize)
        };
        stats.push(parsed.map_err(|e| refused(format!("meta/stats.json, `{key}`: {e}")))?);
    }
    let sync_path = out.join(SYNC_REPORT_PATH);
    let sync_reports = match std::fs::read_to_string(&sync_path) {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("episodes").and_then(Value::as_array).cloned())
            .ok_or_else(|| refused("meta/sync_report.json has no `episodes` list".into()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(&sync_path, e)),
    };
    let mut data_files = Vec::new();
    collect_parquet(&out.join("data"), &mut data_files)?;
    let last = data_files
        .iter()
        .filter_map(|p| parse_chunk_file(&p.strip_prefix(out).ok()?.to_string_lossy(), "parquet"))
        .max();
    let next_data_file = last.map_or((0, 0), |(c, f)| meta::next_file(c, f));
    // New episodes of a camera start a new video file after the dataset's last one.
    let mut next_video_files = Vec::new();
    for (key, f) in &new.features.0 {
        if f.dtype != "video" {
            continue;
        }
        let mut files = Vec::new();
        collect_files(&out.join("videos").join(key), "mp4", &mut files)?;
        let last = files
            .iter()
            .filter_map(|p| {
                let rel = p.strip_prefix(out.join("videos")).ok()?;
                parse_chunk_file(&rel.to_string_lossy(), "mp4")
            })
            .max();
        next_video_files.push((
            key.clone(),
            last.map_or((0, 0), |(c, f)| meta::next_file(c, f)),
        ));
    }
    Ok(Existing {
        info,
        tasks,
        stats,
        sync_reports,
        next_data_file,
        next_video_files,
    })
}

/// How an existing dataset's features differ from this run's.
enum Differ {
    /// A feature's dtype, shape or names: what the bags give.
    Shape(String),
    /// Which features there are, their order, or the video codec: what the config and options
    /// give.
    Config(String),
}

/// The first difference between the dataset's features and this run's (its videos encoded
/// with `video`), if any.
fn features_differ(
    old: &OrderedMap<meta::FeatureInfo>,
    new: &OrderedMap<meta::FeatureInfo>,
    video: &VideoSettings,
) -> Option<Differ> {
    let describe = |f: &meta::FeatureInfo| format!("{} {:?} names {}", f.dtype, f.shape, f.names);
    for (key, nf) in &new.0 {
        match old.get(key) {
            None => {
                return Some(Differ::Config(format!(
                    "feature `{key}` is not in the dataset"
                )))
            }
            Some(of) if of.dtype != nf.dtype || of.shape != nf.shape || of.names != nf.names => {
                return Some(Differ::Shape(format!(
                    "feature `{key}` differs: the dataset has {}, this run writes {}",
                    describe(of),
                    describe(nf)
                )))
            }
            // One info block describes every file of a camera: new files must match it.
            Some(of) if of.dtype == "video" => {
                if let Some(d) = video.differs_from(of.extra.get("info").unwrap_or(&Value::Null)) {
                    return Some(Differ::Config(format!(
                        "video feature `{key}` was encoded with {d}"
                    )));
                }
            }
            _ => {}
        }
    }
    if let Some((key, _)) = old.0.iter().find(|(k, _)| new.get(k).is_none()) {
        return Some(Differ::Config(format!(
            "the dataset has feature `{key}`, which this run does not write"
        )));
    }
    let old_keys: Vec<&String> = old.0.iter().map(|(k, _)| k).collect();
    let new_keys: Vec<&String> = new.0.iter().map(|(k, _)| k).collect();
    if old_keys != new_keys {
        return Some(Differ::Config(format!(
            "feature order differs: the dataset has {old_keys:?}, this run writes {new_keys:?}"
        )));
    }
    None
}

/// `(chunk, file)` of `TOP/chunk-CCC/file-FFF.EXT`.
pub(crate) fn parse_chunk_file(rel: &str, ext: &str) -> Option<(u64, u64)> {
    let mut parts = rel.split('/');
    let _top = parts.next()?;
    let chunk = parts.next()?.strip_prefix("chunk-")?.parse().ok()?;
    let file = parts
        .next()?
        .strip_prefix("file-")?
        .strip_suffix(ext)?
        .strip_suffix('.')?
        .parse()
        .ok()?;
    parts.next().is_none().then_some((chunk, file))
}

/// Every `*.parquet` under `dir` (recursively); nothing if `dir` is absent.
pub(crate) fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DatasetError> {
    collect_files(dir, "parquet", out)
}

/// Every `*.EXT` under `dir` (recursively); nothing if `dir` is absent.
fn collect_files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> Result<(), DatasetError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| io_err(&path, e))?;
        if ft.is_dir() {
            collect_files(&path, ext, out)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(())
}

/// The metadata files an append rewrites: everything else is linked as it is.
fn is_rewritten(rel: &Path) -> bool {
    [
        INFO_PATH,
        STATS_PATH,
        TASKS_PATH,
        SYNC_REPORT_PATH,
        super::inputs::INPUTS_PATH,
    ]
    .iter()
    .any(|p| rel == Path::new(p))
        || rel.starts_with(EPISODES_DIR)
}

/// Hard-links every file of `src/rel` into `dst/rel` (copying across filesystems), except the
/// metadata that is rewritten.
fn link_tree(src: &Path, dst: &Path, rel: &Path) -> Result<(), DatasetError> {
    let dir = src.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(&dir, e))?;
        let rel = rel.join(entry.file_name());
        if is_rewritten(&rel) {
            continue;
        }
        let (from, to) = (src.join(&rel), dst.join(&rel));
        let ft = entry.file_type().map_err(|e| io_err(&from, e))?;
        if ft.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| io_err(&to, e))?;
            link_tree(src, dst, &rel)?;
        } else {
            link_or_copy(&from, &to)?;
        }
    }
    Ok(())
}
