//! The library entry point: plan every episode from the bags' indexes, then stream each one
//! through the pipeline into one dataset.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::align::{Grid, SourceRule, SyncReport};
use crate::bag::buffer::BufferPool;
use crate::bag::{self, BagSource, RawMessage};
use crate::camera::{ImageDecoder, RgbImage};
use crate::config::{CameraOutput, Config, Stamp};
use crate::dataset::lerobot::LeRobotWriter;
use crate::dataset::{
    DatasetError, DatasetSpec, DatasetWriter, FeatureKind, FeatureSpec, WriterOptions,
};
use crate::estimate::RunEstimator;
use crate::memory::{MemoryMonitor, MemoryOptions, MemoryReport};
use crate::msg::{Extractor, FieldPath, Schema, StampReader};
use crate::pipeline;
use crate::progress::Progress;
use crate::video::VideoOptions;
use crate::{rss, Error, Result, Time, NANOS};

/// Windows shorter than this only cost time (each window visits the chunk list).
pub const MIN_CHUNK_SECS: f64 = 0.001;

/// What `bagstream convert` does, as a library call.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub config: Config,
    pub bags: Vec<PathBuf>,
    pub out: PathBuf,
    /// Length of the time window read at once, in seconds.
    pub chunk_secs: f64,
    /// Overrides the config's task.
    pub task: Option<String>,
    pub append: bool,
    /// Show progress on stderr.
    pub progress: bool,
    /// How video features are encoded: what is not given is lerobot's default for a new
    /// dataset, and with `append` the dataset's own; a given setting that differs from the
    /// dataset's is refused.
    pub video: VideoOptions,
    /// Memory checkpoints, log, levels and budget.
    pub memory: MemoryOptions,
    /// With `memory.max_rss`: refuse before starting when the estimated peak is over it.
    pub check_estimate: bool,
    /// Skip the bags that fail (rolled back) and convert the rest; the failures are in
    /// [`ConvertSummary::failures`]. Without it the run stops at the first failing bag.
    pub keep_going: bool,
}

/// A bag skipped by `--keep-going`, and why.
#[derive(Debug, Clone)]
pub struct BagFailure {
    pub bag: PathBuf,
    pub reason: String,
}

impl BagFailure {
    /// `reason` without the bag's name in front, which most errors start with.
    fn new(bag: &Path, e: &Error) -> BagFailure {
        let text = e.to_string();
        let prefix = format!("{}: ", bag.display());
        BagFailure {
            bag: bag.to_path_buf(),
            reason: text.strip_prefix(&prefix).unwrap_or(&text).to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EpisodeResult {
    pub bag: PathBuf,
    pub frames: u64,
    pub report: SyncReport,
    /// One per camera feature: how many of its messages were read and decoded.
    pub cameras: Vec<CameraCount>,
}

/// What one camera source cost in an episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraCount {
    pub feature: String,
    pub topic: String,
    /// Messages of the topic read from the bag (the read range holds a few beyond the grid).
    pub messages: u64,
    /// Messages decoded: only those an output frame picks.
    pub decoded: u64,
}

#[derive(Debug, Clone)]
pub struct ConvertSummary {
    pub episodes: Vec<EpisodeResult>,
    pub seconds: f64,
    /// Peak resident set of this process (VmHWM), in bytes.
    pub peak_rss: Option<u64>,
    /// The ffmpeg encoders' peak RSS: the sum of each encoder's own peak, as the kernel
    /// reports it when the encoder exits (see [`crate::dataset::WriterSummary::encoders_peak_rss`]).
    pub encoders_peak_rss: Option<u64>,
    /// Per video feature: its encoder's peak RSS (the kernel's, at the encoder's exit).
    pub encoder_peaks: Vec<Option<u64>>,
    /// How many encoders ran side by side (one per video feature).
    pub encoders: usize,
    pub warnings: Vec<String>,
    pub memory: MemoryReport,
    /// With `keep_going`: the bags that failed and were left out.
    pub failures: Vec<BagFailure>,
}

impl ConvertSummary {
    pub fn frames(&self) -> u64 {
        self.episodes.iter().map(|e| e.frames).sum()
    }

    pub fn dropped(&self) -> u64 {
        self.episodes.iter().map(|e| e.report.dropped).sum()
    }

    /// The one summary line the CLI prints.
    pub fn line(&self) -> String {
        let mut line = format!(
            "episodes {}, frames {}, frames dropped {}, {:.2} s, peak RSS {}",
            self.episodes.len(),
            self.frames(),
            self.dropped(),
            self.seconds,
            self.peak_rss
                .map_or_else(|| "unknown".to_string(), rss::format_bytes),
        );
        if self.encoders > 0 {
            // Separate processes: their memory is not in the converter's peak.
            line.push_str(&format!(" (+ {})", self.encoders_figure()));
        }
        line
    }

    /// `2 ffmpeg encoders, peak RSS 150.2 MB summed`: the one way the encoders' memory is
    /// said, in the summary line and the memory line.
    fn encoders_figure(&self) -> String {
        format!(
            "{} ffmpeg encoder{}, peak RSS {}{}",
            self.encoders,
            if self.encoders == 1 { "" } else { "s" },
            self.encoders_peak_rss
                .map_or_else(|| "unknown".to_string(), rss::format_bytes),
            if self.encoders == 1 { "" } else { " summed" },
        )
    }

    /// The memory line the CLI prints, each figure named by its source: the kernel's peak
    /// (VmHWM) and the end figures of the converter, and the encoders' peaks.
    pub fn memory_line(&self) -> String {
        let m = &self.memory;
        let mut line = format!(
            "memory: converter peak RSS {} (VmHWM)",
            m.peak_rss
                .map_or_else(|| "unknown".into(), rss::format_bytes),
        );
        if let Some(end) = m.end {
            line.push_str(&format!(
                ", at the end RSS {} of which anonymous {} (RssAnon)",
                rss::format_bytes(end.rss),
                rss::format_bytes(end.anon)
            ));
        }
        if self.encoders > 0 {
            line.push_str(&format!(
                "; {} (each encoder's VmHWM at its exit)",
                self.encoders_figure()
            ));
        }
        line
    }
}

/// A camera source's decoding, resolved against one bag.
pub struct CameraPlan {
    pub output: CameraOutput,
    /// Per connection index of the bag: the decoder for that connection, when it is on this
    /// source's topic. Shared by the decode workers.
    pub decoders: Vec<Option<ImageDecoder>>,
    /// The size of the topic's first frame.
    pub first_size: (u32, u32),
    /// The feature's size: `resize`, or the first frame's.
    pub size: (u32, u32),
    /// Frames of another size are resized (set when the config gives `resize`).
    pub resize: bool,
}

impl CameraPlan {
    /// Decode calls so far over all connections.
    pub fn decoded(&self) -> u64 {
        self.decoders.iter().flatten().map(|d| d.decoded()).sum()
    }
}

/// One configured source, resolved against one bag.
pub struct SourcePlan {
    pub feature: usize,
    pub topic: String,
    pub field: String,
    /// Per connection index of the bag: the extractor for that connection, when it is on
    /// this source's topic.
    pub extractors: Vec<Option<Extractor>>,
    /// Per connection, when the source uses header stamps.
    pub stamps: Vec<Option<StampReader>>,
    /// Number of values each message gives.
    pub len: usize,
    pub names: Vec<String>,
    pub rule: SourceRule,
    /// Stamps of the first and last message.
    pub first: Time,
    pub last: Time,
    /// How far the first message's stamp runs ahead of its receive time (0 for receive
    /// stamps): header-stamped messages for the first tick may be received that much earlier.
    pub lead: Time,
    /// Set for a camera source, whose messages are kept whole and decoded only when picked.
    pub camera: Option<CameraPlan>,
}

/// Everything needed to stream one bag into one episode, found from the index and the first
/// and last message of each source.
pub struct EpisodePlan {
    pub path: PathBuf,
    pub bag: Box<dyn BagSource>,
    pub sources: Vec<SourcePlan>,
    pub grid: Grid,
    /// Receive-time range to read: every message that can be picked lies in it.
    pub read_start: Time,
    pub read_end: Time,
    pub spec: DatasetSpec,
    /// The episode's limit on interior drops per tick (`timeline.max_drop_ratio`).
    pub max_drop_ratio: f64,
}

impl EpisodePlan {
    /// For each connection of the bag, the sources it feeds.
    pub fn sources_by_connection(&self) -> Vec<Vec<usize>> {
        let n = self.bag.summary().connections.len();
        (0..n)
            .map(|c| {
                (0..self.sources.len())
                    .filter(|&s| self.sources[s].reads_connection(c))
                    .collect()
            })
            .collect()
    }

    /// Bytes of chunk data overlapping the read range (for progress).
    pub fn bytes_to_read(&self) -> u64 {
        self.bag
            .summary()
            .chunks
            .iter()
            .filter(|c| c.end >= self.read_start && c.start < self.read_end)
            .map(|c| c.data_len)
            .sum()
    }
}

impl SourcePlan {
    pub fn reads_connection(&self, conn: usize) -> bool {
        match &self.camera {
            Some(c) => c.decoders.get(conn).is_some_and(Option::is_some),
            None => self.extractors.get(conn).is_some_and(Option::is_some),
        }
    }
}

/// Convert every bag into one episode of the dataset at `opts.out`.
///
/// A bag that fails mid-run (damaged data, a decode error, no frame surviving alignment) has
/// its episode rolled back: with `keep_going` it is skipped, else the run stops there and the
/// dataset is finished with the episodes before it ([`Error::BagFailed`]). Anything else (a
/// signal, a full disk, a writer error) leaves the output as it was before the run.
pub fn convert(opts: &ConvertOptions) -> Result<ConvertSummary> {
    convert_bags(opts).map_err(crate::interrupt::or_interrupted)
}

fn convert_bags(opts: &ConvertOptions) -> Result<ConvertSummary> {
    let started = Instant::now();
    if opts.bags.is_empty() {
        return Err(Error::Usage("no bag given".into()));
    }
    if !(opts.chunk_secs.is_finite() && (MIN_CHUNK_SECS..=1e6).contains(&opts.chunk_secs)) {
        return Err(Error::Usage(format!(
            "--chunk-secs {}: give a number of seconds from {MIN_CHUNK_SECS} to 1000000",
            opts.chunk_secs
        )));
    }
    let chunk = ((opts.chunk_secs * NANOS as f64).round() as Time).max(1);
    let memory = MemoryMonitor::new(opts.memory.clone())?;
    memory.checkpoint("start");
    let task = opts
        .task
        .clone()
        .or_else(|| opts.config.task.clone())
        .ok_or_else(|| Error::Usage("no task: give `task:` in the config or --task".into()))?;
    if task.trim().is_empty() {
        return Err(Error::Usage("the task text is empty".into()));
    }

    // Plan every bag before writing anything, so that config errors surface before any work;
    // keep only the dataset spec, so that open files and indexes do not pile up with the
    // number of bags (each bag is planned again when its turn comes).
    let mut warnings = Vec::new();
    let mut failures = Vec::new();
    // One pool of chunk buffers for the whole run: each bag taking fresh ones faults in a few
    // megabytes per episode.
    let chunk_pool = BufferPool::new();
    let mut spec: Option<(PathBuf, DatasetSpec)> = None;
    let mut bags = Vec::new();
    let mut estimator = RunEstimator::new(chunk, (MIN_CHUNK_SECS * NANOS as f64) as Time);
    for path in &opts.bags {
        crate::interrupt::check()?;
        let planned = (|| -> Result<DatasetSpec> {
            let plan = plan_episode_with_pool(&opts.config, path, chunk_pool.clone(), &mut |w| {
                eprintln!("warning: {w}");
                warnings.push(w.to_string());
            })?;
            if let Some((first, s)) = &spec {
                check_same_features(first, s, path, &plan.spec)?;
            }
            estimator.add(&plan);
            Ok(plan.spec)
        })();
        match planned {
            Ok(s) => {
                spec.get_or_insert_with(|| (path.clone(), s));
                bags.push(path.clone());
            }
            Err(e) if opts.keep_going && !matches!(e, Error::Interrupted(_)) => {
                let f = BagFailure::new(path, &e);
                eprintln!("warning: {}: skipped: {}", path.display(), f.reason);
                failures.push(f);
            }
            Err(e) => return Err(e),
        }
        memory.detail(|| format!("scan done: {}", path.display()));
    }
    let Some((first_bag, spec)) = spec else {
        return Err(all_failed(&failures));
    };
    let video = crate::dataset::lerobot::encoder_settings(&opts.out, opts.append, &opts.video)?;
    for f in &spec.features {
        if let FeatureKind::Video { height, width } = f.kind {
            // Found now, not when the first encoder starts, and with the feature named.
            video
                .check_size(width, height)
                .map_err(|e| Error::Usage(format!("features.{}: {e}", f.key)))?;
        }
    }
    if let (Some(budget), true) = (opts.memory.max_rss, opts.check_estimate) {
        // After planning every bag, so that what planning keeps is in the figure the estimate
        // starts from; before the dataset is begun, so that a refusal leaves nothing.
        let now = rss::current_rss().unwrap_or(0);
        estimator.check(budget, now).map_err(Error::Usage)?;
    }
    let mut writer: Box<dyn DatasetWriter> = Box::new(
        LeRobotWriter::create(
            &spec,
            &WriterOptions {
                out: opts.out.clone(),
                append: opts.append,
                video,
                ffmpeg: None,
            },
        )
        .map_err(|e| match e {
            // The run's shapes are its first bag's (the others were checked against it above).
            DatasetError::Mismatch { path, detail } => Error::Usage(format!(
                "{}: {detail} (from {}); the episodes of one dataset must have the same features",
                path.display(),
                first_bag.display()
            )),
            e => e.into(),
        })?,
    );
    let progress = Progress::new(opts.progress, bags.len());
    let _sampler = memory.start_sampler();
    let pool = pipeline::FramePool::for_spec(&spec);
    let mut episodes = Vec::new();
    for (i, path) in bags.iter().enumerate() {
        crate::interrupt::check()?;
        let run = EpisodeRun {
            opts,
            spec: &spec,
            task: &task,
            chunk,
            progress: &progress,
            memory: &memory,
            pool: &pool,
            chunk_pool: &chunk_pool,
        };
        let e = match run.episode(writer.as_mut(), i, episodes.len(), path) {
            Ok(result) => {
                if let Some(w) = result.report.drop_warning() {
                    let w = format!("{}: {w}", path.display());
                    eprintln!("warning: {w}");
                    warnings.push(w);
                }
                episodes.push(result);
                continue;
            }
            Err(Failed::Run(e)) => return Err(e),
            Err(Failed::Bag(e)) => crate::interrupt::or_interrupted(e),
        };
        if matches!(e, Error::Interrupted(_)) {
            return Err(e);
        }
        writer.abort_episode()?;
        if opts.keep_going {
            let f = BagFailure::new(path, &e);
            eprintln!("warning: {}: skipped: {}", path.display(), f.reason);
            failures.push(f);
            continue;
        }
        // Stop here, keeping the episodes converted before this bag.
        let kept = if episodes.is_empty() {
            drop(writer);
            if opts.append {
                format!("{} is as it was", opts.out.display())
            } else {
                format!("nothing written to {}", opts.out.display())
            }
        } else {
            let written = writer.finish()?;
            format!(
                "the dataset at {} holds {} episode{} ({} converted before this bag)",
                opts.out.display(),
                written.episodes,
                if written.episodes == 1 { "" } else { "s" },
                episodes.len()
            )
        };
        return Err(Error::BagFailed {
            bag: path.clone(),
            source: Box::new(e),
            kept,
        });
    }
    // In the order the bags were given, whether they failed in planning or later.
    failures.sort_by_key(|f| opts.bags.iter().position(|b| *b == f.bag));
    if episodes.is_empty() {
        return Err(all_failed(&failures));
    }
    let written = writer.finish()?;
    memory.checkpoint("videos finalised, dataset in place");
    progress.done();
    Ok(ConvertSummary {
        episodes,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss: rss::peak_rss(),
        encoders_peak_rss: written.encoders_peak_rss(),
        encoder_peaks: written.encoder_peaks.clone(),
        encoders: written.encoders,
        warnings,
        memory: memory.report(),
        failures,
    })
}

/// Every bag failed (with `keep_going`): one line per bag.
fn all_failed(failures: &[BagFailure]) -> Error {
    let mut text = format!(
        "no bag could be converted, nothing written ({} failed):",
        failures.len()
    );
    for f in failures {
        // A multi-line reason (one line per source) goes under its bag.
        let reason = f.reason.replace('\n', "\n  ");
        text.push_str(&format!("\n  {}: {reason}", f.bag.display()));
    }
    Error::Conversion(text)
}

/// Why an episode failed: the bag's fault (rolled back, the run may go on) or the run's (a
/// signal, the writer, the disk, the memory budget: the run stops, nothing written).
enum Failed {
    Bag(Error),
    Run(Error),
}

impl Failed {
    /// Pipeline errors: those from reading, decoding and aligning the bag are the bag's.
    fn classify(e: Error) -> Failed {
        match e {
            Error::Bag(_) | Error::Decode { .. } | Error::Align { .. } => Failed::Bag(e),
            e => Failed::Run(e),
        }
    }
}

/// What every episode of a run shares.
struct EpisodeRun<'a> {
    opts: &'a ConvertOptions,
    spec: &'a DatasetSpec,
    task: &'a str,
    chunk: Time,
    progress: &'a Progress,
    memory: &'a MemoryMonitor,
    pool: &'a pipeline::FramePool,
    chunk_pool: &'a BufferPool,
}

impl EpisodeRun<'_> {
    /// Stream bag `path` (the `i`th planned bag) into episode `episode` of this run.
    fn episode(
        &self,
        writer: &mut dyn DatasetWriter,
        i: usize,
        episode: usize,
        path: &Path,
    ) -> Result<EpisodeResult, Failed> {
        let plan = plan_episode_with_pool(
            &self.opts.config,
            path,
            self.chunk_pool.clone(),
            &mut |_| {},
        )
        .map_err(Failed::Bag)?;
        if plan.spec != *self.spec {
            return Err(Failed::Bag(Error::Conversion(format!(
                "{}: the bag changed while converting",
                path.display()
            ))));
        }
        let path = path.to_path_buf();
        self.progress
            .start_bag(i, &path, plan.grid.len(), plan.bytes_to_read());
        writer
            .begin_episode(self.task, plan.grid.len())
            .map_err(|e| Failed::Run(e.into()))?;
        self.memory
            .checkpoint(&format!("episode {episode} started"));
        let (report, cameras) = pipeline::run_episode(
            plan,
            self.chunk,
            writer,
            self.progress,
            self.memory,
            episode,
            self.pool,
        )
        .map_err(Failed::classify)?;
        if report.frames == 0 {
            // Multi-line by design, like `all_failed`: one line per source.
            return Err(Failed::Bag(Error::Align {
                bag: path.display().to_string(),
                detail: format!(
                    "no frame survived alignment: all {} ticks dropped\n{}",
                    report.ticks,
                    report.source_lines().join("\n")
                ),
            }));
        }
        let mut json = report.to_json();
        json["bag"] = serde_json::Value::String(path.display().to_string());
        writer
            .end_episode(json)
            .map_err(|e| Failed::Run(e.into()))?;
        crate::alloc::release_free_memory();
        self.memory
            .checkpoint(&format!("episode {episode} finished"));
        self.memory.check_budget().map_err(Failed::Run)?;
        self.progress.finish_bag(&report);
        Ok(EpisodeResult {
            bag: path,
            frames: report.frames,
            report,
            cameras,
        })
    }
}

/// Resolve the config against one bag: topics, connections, extractors, shapes and the grid.
pub fn plan_episode(
    config: &Config,
    path: &Path,
    warn: &mut dyn FnMut(&str),
) -> Result<EpisodePlan> {
    plan_episode_with_pool(config, path, BufferPool::new(), warn)
}

/// [`plan_episode`], the bag reading its chunks into buffers of `pool`: a run plans and reads
/// all its bags with one pool.
pub fn plan_episode_with_pool(
    config: &Config,
    path: &Path,
    pool: BufferPool,
    warn: &mut dyn FnMut(&str),
) -> Result<EpisodePlan> {
    let mut bag = bag::open_with_pool(path, pool)?;
    for w in &bag.summary().warnings {
        warn(w);
    }
    let bag_name = path.display().to_string();
    let missing = missing_topics(config, bag.as_ref());
    if !missing.is_empty() {
        return Err(unknown_topics(bag.as_ref(), &bag_name, &missing));
    }
    let mut sources = Vec::new();
    for (fi, feature) in config.features.iter().enumerate() {
        for src in &feature.sources {
            let at = format!("features.{}", feature.key);
            sources.push(plan_source(
                bag.as_mut(),
                &bag_name,
                fi,
                &at,
                src,
                feature.camera.as_ref(),
                config.timeline.max_delay,
            )?);
        }
    }

    let t0 = match &config.timeline.main {
        Some(main) => {
            let (first, _) = topic_range(bag.as_mut(), &bag_name, main, config.timeline.stamp)?;
            first
        }
        None => sources.iter().map(|s| s.first).max().unwrap_or(0),
    } + config.timeline.trim_start;
    let end = sources.iter().map(|s| s.last).min().unwrap_or(0) - config.timeline.trim_end;
    let grid = Grid {
        t0,
        end,
        fps: config.fps,
    };
    if grid.is_empty() {
        let ranges: Vec<String> = sources
            .iter()
            .map(|s| {
                format!(
                    "{} {:.3}..{:.3} s",
                    s.topic,
                    s.first as f64 / 1e9,
                    s.last as f64 / 1e9
                )
            })
            .collect();
        return Err(Error::Conversion(format!(
            "{bag_name}: no frame fits: the grid would start at {:.3} s and end at {:.3} s (after trims); the sources' time ranges are: {}",
            t0 as f64 / 1e9,
            end as f64 / 1e9,
            ranges.join(", ")
        )));
    }
    let margin = sources
        .iter()
        .map(|s| s.rule.tolerance + s.rule.max_delay)
        .max()
        .unwrap_or(0);
    let last_tick = grid.tick(grid.len() - 1);
    let lead = sources.iter().map(|s| s.lead).max().unwrap_or(0);

    let mut features = Vec::new();
    for (fi, feature) in config.features.iter().enumerate() {
        if let Some(cam) = sources
            .iter()
            .find(|s| s.feature == fi)
            .and_then(|s| s.camera.as_ref())
        {
            let (width, height) = cam.size;
            features.push(FeatureSpec {
                key: feature.key.clone(),
                kind: match cam.output {
                    CameraOutput::Video => FeatureKind::Video { height, width },
                    CameraOutput::Image => FeatureKind::Image { height, width },
                },
            });
            continue;
        }
        let names: Vec<String> = sources
            .iter()
            .filter(|s| s.feature == fi)
            .flat_map(|s| s.names.iter().cloned())
            .collect();
        features.push(FeatureSpec {
            key: feature.key.clone(),
            kind: FeatureKind::Vector {
                names: dedup_names(names),
            },
        });
    }
    if config.timeline.record_time {
        features.push(FeatureSpec {
            key: crate::config::RECORD_TIME_FEATURE.to_string(),
            kind: FeatureKind::Time,
        });
    }
    Ok(EpisodePlan {
        path: path.to_path_buf(),
        bag,
        sources,
        grid,
        read_start: t0 - margin - lead - 1,
        read_end: last_tick + margin + 1,
        spec: DatasetSpec {
            fps: config.fps,
            robot_type: config.robot_type.clone(),
            features,
        },
        max_drop_ratio: config.timeline.max_drop_ratio,
    })
}

/// Names in info.json must be unique for pandas; concatenated sources may repeat a name.
fn dedup_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        let mut candidate = n.clone();
        let mut k = 1;
        while out.contains(&candidate) {
            candidate = format!("{n}_{k}");
            k += 1;
        }
        out.push(candidate);
    }
    out
}

/// Every topic the config names that the bag lacks, with what names it (`features.KEY`,
/// `timeline.main`), in config order: one error can then list them all.
fn missing_topics(config: &Config, bag: &dyn BagSource) -> Vec<(String, String)> {
    let summary = bag.summary();
    let sources = config.features.iter().flat_map(|f| {
        f.sources
            .iter()
            .map(move |s| (format!("features.{}", f.key), s.topic.clone()))
    });
    let main = config
        .timeline
        .main
        .iter()
        .map(|m| ("timeline.main".to_string(), m.clone()));
    sources
        .chain(main)
        .filter(|(_, topic)| summary.connections_on(topic).is_empty())
        .collect()
}

/// The error for topics (`missing`: what names each, and the topic) that the bag lacks.
fn unknown_topics(bag: &dyn BagSource, bag_name: &str, missing: &[(String, String)]) -> Error {
    let summary = bag.summary();
    let named: Vec<String> = missing
        .iter()
        .map(|(at, topic)| format!("{at}: topic `{topic}`"))
        .collect();
    if summary.connections.is_empty() && summary.chunks.is_empty() {
        // Nothing the config could name: the bag is the problem, not the config.
        return Error::Conversion(format!(
            "{bag_name}: the bag is empty (no connections, no messages{}): nothing to read \
             for {}",
            if summary.warnings.is_empty() {
                String::new()
            } else {
                format!("; {}", summary.warnings.join("; "))
            },
            named.join(", ")
        ));
    }
    let topics = summary.topics().join(", ");
    let what = match named.as_slice() {
        [one] => format!("{one} is not in the bag"),
        many => format!(
            "{} topics are not in the bag: {}",
            many.len(),
            many.join("; ")
        ),
    };
    let text = format!(
        "{bag_name}: {what}; its topics are: {}",
        if topics.is_empty() { "(none)" } else { &topics }
    );
    // In a damaged bag the topic may be in the part that was lost: not the config's fault.
    if summary.warnings.is_empty() {
        Error::Usage(text)
    } else {
        Error::Conversion(format!(
            "{text} (the bag is damaged: {})",
            summary.warnings.join("; ")
        ))
    }
}

fn plan_source(
    bag: &mut dyn BagSource,
    bag_name: &str,
    feature: usize,
    at: &str,
    src: &crate::config::Source,
    camera: Option<&crate::config::Camera>,
    max_delay: Time,
) -> Result<SourcePlan> {
    let conns = bag.summary().connections_on(&src.topic);
    if conns.is_empty() {
        return Err(unknown_topics(
            bag,
            bag_name,
            &[(at.to_string(), src.topic.clone())],
        ));
    }
    if let Some(camera) = camera {
        return plan_camera(bag, bag_name, feature, at, src, camera, &conns, max_delay);
    }
    let path =
        FieldPath::parse(&src.field).map_err(|e| Error::Usage(format!("{bag_name}: {at}: {e}")))?;
    let n = bag.summary().connections.len();
    let mut extractors: Vec<Option<Extractor>> = (0..n).map(|_| None).collect();
    let mut stamps: Vec<Option<StampReader>> = (0..n).map(|_| None).collect();
    for &c in &conns {
        let conn = &bag.summary().connections[c];
        let context = |e: &dyn std::fmt::Display| {
            Error::Usage(format!(
                "{bag_name}: {at}: topic {} ({}): {e}",
                src.topic, conn.datatype
            ))
        };
        // A definition that does not parse is the bag's fault, whatever the config says.
        let schema = Schema::parse(&conn.datatype, &conn.message_definition).map_err(|e| {
            Error::Conversion(format!(
                "{bag_name}: {at}: topic {} ({}), field `{}`: {e}",
                src.topic, conn.datatype, src.field
            ))
        })?;
        extractors[c] =
            Some(Extractor::new(&schema, &path, src.joints.as_deref()).map_err(|e| context(&e))?);
        if src.stamp == Stamp::Header {
            stamps[c] = Some(StampReader::new(&schema).map_err(|e| context(&e))?);
        }
    }
    let (first_msg, last_msg) = first_and_last(bag, &conns)?.ok_or_else(|| {
        Error::Conversion(format!(
            "{bag_name}: {at}: topic {} has no messages",
            src.topic
        ))
    })?;
    let decode_err = |e: crate::msg::DecodeError| Error::Decode {
        bag: bag_name.to_string(),
        topic: src.topic.clone(),
        field: src.field.clone(),
        detail: e.to_string(),
    };
    let ex = extractors[first_msg.conn]
        .as_ref()
        .expect("first message is on one of the source's connections");
    // The first message settles the feature's shape; a path it cannot serve (a slice past
    // the array, a joint that is not there) is a config error, found before any work. A
    // message shorter than its definition is the bag's fault, as it would be later on.
    let shape_err = |e: crate::msg::DecodeError| match e {
        crate::msg::DecodeError::Truncated { .. } => Error::Decode {
            bag: bag_name.to_string(),
            topic: src.topic.clone(),
            field: src.field.clone(),
            detail: format!(
                "first message, at {:.9} s: {e}",
                first_msg.time as f64 / 1e9
            ),
        },
        e => Error::Usage(format!(
            "{bag_name}: {at}: field `{}` of topic {} in its first message: {e}",
            src.field, src.topic
        )),
    };
    let mut values = Vec::new();
    ex.extract(first_msg.data(), &mut values)
        .map_err(shape_err)?;
    let names = ex.names(first_msg.data()).map_err(shape_err)?;
    if values.is_empty() {
        return Err(Error::Usage(format!(
            "{bag_name}: {at}: field `{}` of topic {} gives no values in its first message",
            src.field, src.topic
        )));
    }
    let stamp_of = |m: &RawMessage| -> Result<Time> {
        match &stamps[m.conn] {
            Some(r) => r.read(m.data()).map_err(decode_err),
            None => Ok(m.time),
        }
    };
    let (first, last) = (stamp_of(&first_msg)?, stamp_of(&last_msg)?);
    let lead = (first - first_msg.time).max(0);
    Ok(SourcePlan {
        feature,
        topic: src.topic.clone(),
        field: src.field.clone(),
        len: values.len(),
        names,
        rule: source_rule(at, src, max_delay, topic_rate(bag.summary(), &conns)),
        extractors,
        stamps,
        first,
        last,
        lead,
        camera: None,
    })
}

/// Messages per second of the topic on `conns` over its own span, from the index (as
/// `inspect` and `rosbag info` give it).
fn topic_rate(summary: &bag::BagSummary, conns: &[usize]) -> Option<f64> {
    let stats = conns.iter().filter_map(|&c| summary.stats.get(c));
    let count: u64 = stats.clone().map(|s| s.count).sum();
    let first = stats.clone().filter_map(|s| s.first).min()?;
    let last = stats.filter_map(|s| s.last).max()?;
    (count > 1 && last > first).then(|| (count - 1) as f64 * NANOS as f64 / (last - first) as f64)
}

/// The alignment rule of a source; its label names the feature, topic and field.
fn source_rule(
    at: &str,
    src: &crate::config::Source,
    max_delay: Time,
    rate_hz: Option<f64>,
) -> SourceRule {
    let feature = at.trim_start_matches("features.");
    SourceRule {
        label: if src.field.is_empty() {
            format!("{feature} <- {}", src.topic)
        } else {
            format!("{feature} <- {} {}", src.topic, src.field)
        },
        matching: src.matching,
        tolerance: src.tolerance,
        on_missing: src.on_missing,
        // A receive stamp is the receive time: no delay to allow for.
        max_delay: if src.stamp == Stamp::Header {
            max_delay
        } else {
            0
        },
        max_drop_ratio: src.max_drop_ratio,
        rate_hz,
    }
}

/// A camera source: decoders instead of extractors, and the frame size from the first
/// message, which is decoded once here so that an unsupported encoding is found before any
/// work.
#[allow(clippy::too_many_arguments)]
fn plan_camera(
    bag: &mut dyn BagSource,
    bag_name: &str,
    feature: usize,
    at: &str,
    src: &crate::config::Source,
    camera: &crate::config::Camera,
    conns: &[usize],
    max_delay: Time,
) -> Result<SourcePlan> {
    let n = bag.summary().connections.len();
    let mut decoders: Vec<Option<ImageDecoder>> = (0..n).map(|_| None).collect();
    let mut stamps: Vec<Option<StampReader>> = (0..n).map(|_| None).collect();
    for &c in conns {
        let conn = &bag.summary().connections[c];
        let context = |e: &dyn std::fmt::Display| {
            Error::Usage(format!(
                "{bag_name}: {at}: topic {} ({}): {e}",
                src.topic, conn.datatype
            ))
        };
        let schema = Schema::parse(&conn.datatype, &conn.message_definition).map_err(|e| {
            Error::Conversion(format!(
                "{bag_name}: {at}: topic {} ({}): {e}",
                src.topic, conn.datatype
            ))
        })?;
        let decoder = ImageDecoder::new(&conn.datatype, &schema).map_err(|e| match e {
            crate::camera::CameraError::NotImage(_) => context(&format!(
                "{e}; a feature without `field` is a camera: give `field:` to read numbers from it"
            )),
            e => context(&e),
        })?;
        decoders[c] = Some(decoder);
        if src.stamp == Stamp::Header {
            stamps[c] = Some(StampReader::new(&schema).map_err(|e| context(&e))?);
        }
    }
    let (first_msg, last_msg) = first_and_last(bag, conns)?.ok_or_else(|| {
        Error::Conversion(format!(
            "{bag_name}: {at}: topic {} has no messages",
            src.topic
        ))
    })?;
    // A decoder of its own, so that the pipeline's decode counts hold only picked messages.
    let conn = &bag.summary().connections[first_msg.conn];
    let probe = Schema::parse(&conn.datatype, &conn.message_definition)
        .ok()
        .and_then(|schema| ImageDecoder::new(&conn.datatype, &schema).ok())
        .expect("the connection's decoder was built above");
    let mut first_image = RgbImage::new();
    probe
        .decode(first_msg.data(), &mut first_image)
        .map_err(|e| match e {
            // What the config asks is not possible: a usage error, found before any work.
            crate::camera::CameraError::Encoding(_) => Error::Usage(format!(
                "{bag_name}: {at}: topic {} in its first message: {e}",
                src.topic
            )),
            // A damaged message is the bag's fault, as it would be later in the episode.
            e => Error::Decode {
                bag: bag_name.to_string(),
                topic: src.topic.clone(),
                field: "(image)".into(),
                detail: format!(
                    "first message, at {:.9} s: {e}",
                    first_msg.time as f64 / 1e9
                ),
            },
        })?;
    let first_size = (first_image.width, first_image.height);
    let size = camera.resize.unwrap_or(first_size);
    let stamp_of = |m: &RawMessage| -> Result<Time> {
        match &stamps[m.conn] {
            Some(r) => r.read(m.data()).map_err(|e| Error::Decode {
                bag: bag_name.to_string(),
                topic: src.topic.clone(),
                field: "header.stamp".into(),
                detail: e.to_string(),
            }),
            None => Ok(m.time),
        }
    };
    let (first, last) = (stamp_of(&first_msg)?, stamp_of(&last_msg)?);
    Ok(SourcePlan {
        feature,
        topic: src.topic.clone(),
        field: String::new(),
        extractors: (0..n).map(|_| None).collect(),
        stamps,
        len: 0,
        names: Vec::new(),
        rule: source_rule(at, src, max_delay, topic_rate(bag.summary(), conns)),
        first,
        last,
        lead: (first - first_msg.time).max(0),
        camera: Some(CameraPlan {
            output: camera.output,
            decoders,
            first_size,
            size,
            resize: camera.resize.is_some(),
        }),
    })
}

/// The first and last message over several connections, in stream order.
fn first_and_last(
    bag: &mut dyn BagSource,
    conns: &[usize],
) -> Result<Option<(RawMessage, RawMessage)>> {
    let mut best: Option<(RawMessage, RawMessage)> = None;
    for &c in conns {
        if let Some((f, l)) = bag.first_and_last(c)? {
            best = Some(match best {
                None => (f, l),
                Some((bf, bl)) => (
                    if (f.time, f.order) < (bf.time, bf.order) {
                        f
                    } else {
                        bf
                    },
                    if (l.time, l.order) > (bl.time, bl.order) {
                        l
                    } else {
                        bl
                    },
                ),
            });
        }
    }
    Ok(best)
}

/// First and last time of a topic (for `timeline.main`).
fn topic_range(
    bag: &mut dyn BagSource,
    bag_name: &str,
    topic: &str,
    stamp: Stamp,
) -> Result<(Time, Time)> {
    let conns = bag.summary().connections_on(topic);
    if conns.is_empty() {
        return Err(unknown_topics(
            bag,
            bag_name,
            &[("timeline.main".to_string(), topic.to_string())],
        ));
    }
    let (f, l) = first_and_last(bag, &conns)?.ok_or_else(|| {
        Error::Conversion(format!(
            "{bag_name}: timeline.main: topic {topic} has no messages"
        ))
    })?;
    if stamp == Stamp::Receive {
        return Ok((f.time, l.time));
    }
    let read = |m: &RawMessage| -> Result<Time> {
        let conn = &bag.summary().connections[m.conn];
        let schema = Schema::parse(&conn.datatype, &conn.message_definition)
            .map_err(|e| Error::Conversion(format!("{bag_name}: timeline.main: {topic}: {e}")))?;
        let r = StampReader::new(&schema)
            .map_err(|e| Error::Usage(format!("{bag_name}: timeline.main: {topic}: {e}")))?;
        r.read(m.data()).map_err(|e| Error::Decode {
            bag: bag_name.to_string(),
            topic: topic.to_string(),
            field: "header.stamp".into(),
            detail: e.to_string(),
        })
    };
    Ok((read(&f)?, read(&l)?))
}

/// Bags of one dataset must give the same features (shapes and names).
fn check_same_features(
    first: &Path,
    first_spec: &DatasetSpec,
    other: &Path,
    other_spec: &DatasetSpec,
) -> Result<()> {
    for (a, b) in first_spec.features.iter().zip(&other_spec.features) {
        if a != b {
            let verb = match b.kind {
                FeatureKind::Vector { .. } => "has",
                _ => "is",
            };
            return Err(Error::Usage(format!(
                "{}: feature `{}` {verb} {} but in {} it {verb} {}; the episodes of one dataset must have the same features",
                other.display(),
                b.key,
                b.kind,
                first.display(),
                a.kind
            )));
        }
    }
    Ok(())
}
