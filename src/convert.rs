//! The library entry point: plan every episode from the bags' indexes, then stream each one
//! through the pipeline into one dataset.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::align::SyncReport;
use crate::bag::OpenOptions;
use crate::bag_list::Shard;
use crate::config::Config;
use crate::dataset::lerobot::LeRobotWriter;
use crate::dataset::{DatasetError, DatasetSpec, DatasetWriter, FeatureKind, WriterOptions};
use crate::estimate::RunEstimator;
use crate::memory::{MemoryMonitor, MemoryOptions, MemoryReport};
use crate::pipeline;
pub use crate::pipeline::CameraCount;
use crate::plan::plan_episode_with;
pub use crate::plan::{plan_episode, EpisodePlan};
use crate::progress::Progress;
use crate::resume;
use crate::threads::JobThreads;
use crate::video::VideoOptions;
use crate::{rss, Error, Result, Time, NANOS};

mod jobs;

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
    /// Where a bag stored as one compressed file (rosbag2 `.zstd`) is decompressed before it
    /// is read; default: beside the output.
    pub tmp_dir: Option<PathBuf>,
    /// Convert only this part of `bags` ([`crate::bag_list::assign_shards`]); implies
    /// `resume`, so a task run again skips a shard that is complete.
    pub shard: Option<Shard>,
    /// Convert only the inputs that the dataset at `out` does not hold yet (by its
    /// `meta/bagstream_inputs.json`); a bag that changed since it was converted is refused.
    /// Without a dataset at `out`, a new one is written.
    pub resume: bool,
    /// Commit the dataset (rename it into place, complete and loadable) after every this many
    /// episodes, and at the end; None: only at the end.
    pub commit_every: Option<usize>,
    /// Cap on the threads of the run (readers, decode workers, encoders; see
    /// [`crate::threads`]); 0: the machine's cores.
    pub threads: usize,
    /// Bags converted at once ([`jobs`]); 0 or 1: one after the other.
    pub jobs: usize,
}

impl ConvertOptions {
    /// `bags` into `out` by `config`, with the command line's defaults: 1 s windows, the
    /// config's task, a new dataset, no progress, lerobot's video settings, no memory budget,
    /// one job with the machine's threads, one commit at the end.
    pub fn new(config: Config, bags: Vec<PathBuf>, out: impl Into<PathBuf>) -> ConvertOptions {
        ConvertOptions {
            config,
            bags,
            out: out.into(),
            chunk_secs: 1.0,
            task: None,
            append: false,
            progress: false,
            video: VideoOptions::default(),
            memory: MemoryOptions::default(),
            check_estimate: true,
            keep_going: false,
            tmp_dir: None,
            shard: None,
            resume: false,
            commit_every: None,
            threads: 0,
            jobs: 1,
        }
    }
}

/// The default of `--commit-every`: a killed run loses at most this many episodes, and a
/// long run makes a new data and video file this often.
pub const DEFAULT_COMMIT_EVERY: usize = 10;

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

#[derive(Debug, Clone)]
pub struct ConvertSummary {
    /// The episodes this run converted.
    pub episodes: Vec<EpisodeResult>,
    /// With `resume`: inputs of this run that the dataset held already (not converted again).
    pub already_done: usize,
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
    if opts.commit_every == Some(0) {
        return Err(Error::Usage(
            "--commit-every 0: give a number of episodes, 1 or more".into(),
        ));
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
    // One pool of chunk buffers for the whole run: each bag taking fresh ones faults in a few
    // megabytes per episode.
    let jobs = opts.jobs.max(1);
    let threads = JobThreads::new(opts.threads, jobs);
    let open = OpenOptions {
        pool: Default::default(),
        parallel_reads: Some(threads.parallel_reads()),
        // Beside the output: its file system has room for the dataset, the system's /tmp
        // often has not (a RAM disk on clusters).
        tmp_dir: Some(opts.tmp_dir.clone().unwrap_or_else(|| {
            opts.out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf()
        })),
    };
    let resume = opts.resume || opts.shard.is_some();
    let selection = resume::select(&opts.bags, opts.shard, &opts.out, resume, &open)?;
    if selection.todo.is_empty() {
        // A shard or a resumed run that is complete: nothing to write.
        return Ok(ConvertSummary {
            episodes: Vec::new(),
            already_done: selection.done,
            seconds: started.elapsed().as_secs_f64(),
            peak_rss: rss::peak_rss(),
            encoders_peak_rss: None,
            encoder_peaks: Vec::new(),
            encoders: 0,
            warnings: Vec::new(),
            memory: memory.report(),
            failures: Vec::new(),
        });
    }
    let append = opts.append || selection.existing;

    // Plan every bag before writing anything, so that config errors surface before any work;
    // keep only the dataset spec, so that open files and indexes do not pile up with the
    // number of bags (each bag is planned again when its turn comes), except for the first
    // bag's plan: it is the next one run, and keeping it saves a second open and scan (on a
    // sqlite3 bag without a summary that is a pass over every row, a fifth of a one-bag run).
    let mut warnings = Vec::new();
    let mut failures = Vec::new();
    let mut spec: Option<(PathBuf, DatasetSpec)> = None;
    // (position in the input list, identity when planned)
    let mut bags: Vec<(usize, crate::bag_list::Identity)> = Vec::new();
    let mut estimator = RunEstimator::new(chunk, (MIN_CHUNK_SECS * NANOS as f64) as Time);
    estimator.set_jobs(jobs.min(selection.todo.len()));
    let mut first_plan: Option<EpisodePlan> = None;
    // --jobs bags are opened and scanned at once, one thread each, and taken in order.
    for batch in selection.todo.chunks(jobs) {
        crate::interrupt::check()?;
        for (&position, (id, planned, plan_warnings)) in
            batch.iter().zip(plan_batch(opts, &open, batch))
        {
            let path = &opts.bags[position];
            for w in plan_warnings {
                eprintln!("warning: {w}");
                warnings.push(w);
            }
            let planned = planned.and_then(|plan| {
                if let Some((first, s)) = &spec {
                    check_same_features(first, s, path, &plan.spec)?;
                }
                estimator.add(&plan);
                Ok(plan)
            });
            match planned {
                Ok(plan) => {
                    if spec.is_none() {
                        spec = Some((path.clone(), plan.spec.clone()));
                        first_plan = Some(plan);
                    }
                    bags.push((position, id));
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
    }
    let Some((first_bag, spec)) = spec else {
        return Err(all_failed(&failures));
    };
    let video = crate::dataset::lerobot::encoder_settings(&opts.out, append, &opts.video)?;
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
    let open_writer = |append: bool| -> Result<Box<dyn DatasetWriter>> {
        let w = LeRobotWriter::create(
            &spec,
            &WriterOptions {
                out: opts.out.clone(),
                append,
                video: video.clone(),
                ffmpeg: None,
                // One writer, one set of encoders, whatever the jobs: they get the whole cap
                // (and so the same settings, and bytes, as with one job).
                encoder_threads: Some(
                    JobThreads::new(opts.threads, 1).encoder_threads(video_features(&spec)),
                ),
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
        })?;
        Ok(Box::new(w))
    };
    // A plain --append carries the dataset's record on; a dataset without one (another tool,
    // an older bagstream) gets none, as it would not name the earlier episodes.
    let mut record = Some(selection.record);
    // Positions of an --append's bags come after the dataset's, so that they stay in order.
    let mut position_offset = 0;
    if append && !selection.existing && opts.out.join(crate::dataset::meta::INFO_PATH).is_file() {
        record = crate::dataset::inputs::read(&opts.out)?.map(|mut r| {
            r.input_count = None;
            r.shard = None;
            position_offset = r
                .inputs
                .iter()
                .map(|i| i.position as usize + 1)
                .max()
                .unwrap_or(0);
            r
        });
    }
    let progress = Progress::new(opts.progress, bags.len());
    let _sampler = memory.start_sampler();
    let pool = pipeline::FramePool::for_job(&spec, threads);
    let run = EpisodeRun {
        opts,
        spec: &spec,
        task: &task,
        chunk,
        progress: &progress,
        memory: &memory,
        pool: &pool,
        open: &open,
    };
    // --jobs: the bags' pipelines run on worker threads, their frames written here, in order.
    let paths: Vec<&Path> = bags.iter().map(|&(p, _)| opts.bags[p].as_path()).collect();
    let relayed = jobs > 1 && bags.len() > 1;
    let shared = jobs::Shared::new(if relayed { first_plan.take() } else { None });
    std::thread::scope(|scope| -> Result<ConvertSummary> {
        let mut relay =
            relayed.then(|| jobs::Relay::start(scope, &shared, run, &paths, jobs, threads));
        let mut writer = open_writer(append)?;
        let mut episodes = Vec::new();
        // Episodes written since the last commit.
        let mut uncommitted = 0usize;
        for (i, &(position, id)) in bags.iter().enumerate() {
            crate::interrupt::check()?;
            let path = &opts.bags[position];
            if opts.commit_every.is_some_and(|n| uncommitted >= n) {
                // Renamed into place as a complete dataset, then reopened to append to.
                if let Some(r) = &record {
                    writer.record_inputs(r)?;
                }
                writer.finish()?;
                memory.checkpoint(&format!("committed after {} episodes", episodes.len()));
                uncommitted = 0;
                writer = open_writer(true)?;
            }
            let episode = match relay.as_mut() {
                Some(relay) => relay.replay(i, writer.as_mut()),
                None => run.episode(writer.as_mut(), i, episodes.len(), path, first_plan.take()),
            };
            let e = match episode {
                Ok((result, episode_index, digest)) => {
                    if let Some(w) = result.report.drop_warning() {
                        let w = format!("{}: {w}", path.display());
                        eprintln!("warning: {w}");
                        warnings.push(w);
                    }
                    if let Some(r) = &mut record {
                        r.inputs.push(resume::record(
                            episode_index,
                            position_offset + position,
                            path,
                            id,
                            digest,
                        ));
                    }
                    episodes.push(result);
                    uncommitted += 1;
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
            let kept = if uncommitted == 0 {
                drop(writer);
                match (episodes.len(), append) {
                    (0, true) => format!("{} is as it was", opts.out.display()),
                    (0, false) => format!("nothing written to {}", opts.out.display()),
                    (n, _) => format!(
                        "the dataset at {} holds the {n} episode{} converted before this bag",
                        opts.out.display(),
                        if n == 1 { "" } else { "s" }
                    ),
                }
            } else {
                if let Some(r) = &record {
                    writer.record_inputs(r)?;
                }
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
        if let Some(r) = &record {
            writer.record_inputs(r)?;
        }
        let written = writer.finish()?;
        memory.checkpoint("videos finalised, dataset in place");
        progress.done();
        Ok(ConvertSummary {
            episodes,
            already_done: selection.done,
            seconds: started.elapsed().as_secs_f64(),
            peak_rss: rss::peak_rss(),
            encoders_peak_rss: written.encoders_peak_rss(),
            encoder_peaks: written.encoder_peaks.clone(),
            encoders: written.encoders,
            warnings,
            memory: memory.report(),
            failures,
        })
    })
}

/// A bag planned in the up-front pass: its identity, plan, and the warnings planning gave.
type Planned = (crate::bag_list::Identity, Result<EpisodePlan>, Vec<String>);

/// Plans the bags at `positions`, each on a thread of its own when there are several.
fn plan_batch(opts: &ConvertOptions, open: &OpenOptions, positions: &[usize]) -> Vec<Planned> {
    let plan_one = |position: usize| -> Planned {
        let path = &opts.bags[position];
        // Before opening: a bag rewritten while it is read is then recorded as changed.
        let id = crate::bag_list::identity(path);
        let mut warnings = Vec::new();
        let plan = plan_episode_with(&opts.config, path, open, &mut |w| {
            warnings.push(w.to_string())
        });
        (id, plan, warnings)
    };
    if let [one] = positions {
        return vec![plan_one(*one)];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = positions
            .iter()
            .map(|&p| s.spawn(move || plan_one(p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
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

/// What one episode's run gives: its result, episode index and index digest, or why it failed.
type Episode = std::result::Result<(EpisodeResult, u64, String), Failed>;

/// What every episode of a run shares.
#[derive(Clone, Copy)]
struct EpisodeRun<'a> {
    opts: &'a ConvertOptions,
    spec: &'a DatasetSpec,
    task: &'a str,
    chunk: Time,
    progress: &'a Progress,
    memory: &'a MemoryMonitor,
    pool: &'a pipeline::FramePool,
    open: &'a OpenOptions,
}

impl EpisodeRun<'_> {
    /// Stream bag `path` (the `i`th planned bag) into episode `episode` of this run, by
    /// `planned` when the planning pass kept its plan, else planning it again.
    fn episode(
        &self,
        writer: &mut dyn DatasetWriter,
        i: usize,
        episode: usize,
        path: &Path,
        planned: Option<EpisodePlan>,
    ) -> Episode {
        let plan = match planned {
            Some(plan) => plan,
            None => plan_episode_with(&self.opts.config, path, self.open, &mut |_| {})
                .map_err(Failed::Bag)?,
        };
        if plan.spec != *self.spec {
            return Err(Failed::Bag(Error::Conversion(format!(
                "{}: the bag changed while converting",
                path.display()
            ))));
        }
        let path = path.to_path_buf();
        let digest = plan.bag.summary().index_digest();
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
        let ended = writer
            .end_episode(json)
            .map_err(|e| Failed::Run(e.into()))?;
        crate::alloc::release_free_memory();
        self.memory
            .checkpoint(&format!("episode {episode} finished"));
        self.memory.check_budget().map_err(Failed::Run)?;
        self.progress.finish_bag(&report);
        let result = EpisodeResult {
            bag: path,
            frames: report.frames,
            report,
            cameras,
        };
        Ok((result, ended.episode_index, digest))
    }
}

/// How many features are videos (an ffmpeg encoder each).
fn video_features(spec: &DatasetSpec) -> usize {
    spec.features
        .iter()
        .filter(|f| matches!(f.kind, FeatureKind::Video { .. }))
        .count()
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
