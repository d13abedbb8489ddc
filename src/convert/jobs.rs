//! `--jobs N`: N bags convert at once. Each job streams its bag into a dataset of that one
//! episode (a part) in a work directory beside the output; the parts are merged in input
//! order ([`crate::dataset::merge`]) into the dataset at every commit. The merge rewrites data
//! rows with the writer's own rules and links the parts' videos, so the dataset holds what
//! `--jobs 1` writes (the same rows, episodes, tasks and stats; the same decoded frames, each
//! episode's video a file of its own).
//!
//! Memory: each job holds one bag's windows and frames, so the `--max-rss` estimate counts
//! every job's; the merge streams record batches. Disk: the parts waiting for their turn, at
//! most the dataset's own size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{BagFailure, EpisodeResult, EpisodeRun, Failed};
use crate::bag_list::Identity;
use crate::dataset::inputs::{self, InputsFile, ShardId};
use crate::dataset::lerobot::{swap_dirs, LeRobotWriter};
use crate::dataset::merge::{merge, MergeOptions};
use crate::dataset::{DatasetError, DatasetWriter, WriterOptions};
use crate::plan::EpisodePlan;
use crate::resume;
use crate::{Error, Result};

/// One bag converted by a job: its dataset of one episode.
struct Part {
    dir: PathBuf,
    result: EpisodeResult,
    encoder_peaks: Vec<Option<u64>>,
}

/// What the jobs did.
pub(super) struct Outcome {
    pub episodes: Vec<EpisodeResult>,
    pub failures: Vec<BagFailure>,
    pub warnings: Vec<String>,
    /// Per video feature, the largest of its encoders' peaks.
    pub encoder_peaks: Vec<Option<u64>>,
    /// Encoders that ran at once: each job's.
    pub encoders: usize,
    /// Episodes in the dataset at the end.
    pub total_episodes: u64,
}

/// What the jobs share.
pub(super) struct Jobs<'a> {
    pub run: EpisodeRun<'a>,
    pub jobs: usize,
    pub writer: WriterOptions,
    pub threads: crate::threads::JobThreads,
    /// The run's whole input list length and shard, for each part's record.
    pub input_count: Option<u64>,
    pub shard: Option<ShardId>,
    pub position_offset: usize,
    /// A dataset at the output that the parts are merged onto.
    pub existing: bool,
}

/// The work directory `.NAME.bagstream-tmp-PID.jobs` beside the output, removed when done:
/// the name is one that the stale-temporary cleanup of a later run knows.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(out: &Path) -> Result<WorkDir> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into());
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = parent.join(format!(".{name}.bagstream-tmp-{}.jobs", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        std::fs::create_dir_all(dir.join("parts")).map_err(|e| io(&dir, e))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Dataset(DatasetError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

impl Jobs<'_> {
    /// Convert `bags` ((position in the input list, identity when planned), in order), the
    /// first with `first_plan`. Stops at the first bag that fails unless `keep_going`,
    /// committing the episodes before it.
    pub(super) fn run(
        &self,
        bags: &[(usize, Identity)],
        first_plan: Option<EpisodePlan>,
    ) -> Result<Outcome> {
        let opts = self.run.opts;
        let work = WorkDir::create(&opts.out)?;
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first = Mutex::new(first_plan);
        let mut outcome = Outcome {
            episodes: Vec::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
            encoder_peaks: Vec::new(),
            encoders: 0,
            total_episodes: 0,
        };
        let mut existing = self.existing;
        let result = std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = crossbeam_channel::unbounded::<(usize, Result<Part, Failed>)>();
            for _ in 0..self.jobs.min(bags.len()) {
                let tx = tx.clone();
                let (next, stop, first, work) = (&next, &stop, &first, &work.0);
                s.spawn(move || {
                    let pool = crate::pipeline::FramePool::for_job(self.run.spec, self.threads);
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(position, id)) = bags.get(i) else {
                            break;
                        };
                        let planned = if i == 0 {
                            first.lock().unwrap_or_else(|e| e.into_inner()).take()
                        } else {
                            None
                        };
                        let part = self.part(work, &pool, i, position, id, planned);
                        if tx.send((i, part)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Parts in input order: a finished part waits for the ones before it.
            let mut ready: BTreeMap<usize, Result<Part, Failed>> = BTreeMap::new();
            let mut want = 0;
            let mut pending: Vec<Part> = Vec::new();
            let stopped = |e: Error| {
                stop.store(true, Ordering::Relaxed);
                e
            };
            for (i, part) in rx.iter() {
                ready.insert(i, part);
                while let Some(part) = ready.remove(&want) {
                    let path = &opts.bags[bags[want].0];
                    want += 1;
                    match part {
                        Ok(p) => {
                            if let Some(w) = p.result.report.drop_warning() {
                                let w = format!("{}: {w}", path.display());
                                eprintln!("warning: {w}");
                                outcome.warnings.push(w);
                            }
                            pending.push(p);
                        }
                        Err(Failed::Run(e)) => return Err(stopped(e)),
                        Err(Failed::Bag(e)) => {
                            let e = crate::interrupt::or_interrupted(e);
                            if matches!(e, Error::Interrupted(_)) {
                                return Err(stopped(e));
                            }
                            if opts.keep_going {
                                let f = BagFailure::new(path, &e);
                                eprintln!("warning: {}: skipped: {}", path.display(), f.reason);
                                outcome.failures.push(f);
                                continue;
                            }
                            stop.store(true, Ordering::Relaxed);
                            let before = outcome.episodes.len() + pending.len();
                            self.commit(&work.0, &mut pending, &mut existing, &mut outcome)?;
                            let kept = if before == 0 && !existing {
                                format!("nothing written to {}", opts.out.display())
                            } else {
                                format!(
                                    "the dataset at {} holds {} episode{} ({before} converted before this bag)",
                                    opts.out.display(),
                                    outcome.total_episodes,
                                    if outcome.total_episodes == 1 { "" } else { "s" },
                                )
                            };
                            return Err(Error::BagFailed {
                                bag: path.clone(),
                                source: Box::new(e),
                                kept,
                            });
                        }
                    }
                    if opts.commit_every.is_some_and(|n| pending.len() >= n) {
                        self.commit(&work.0, &mut pending, &mut existing, &mut outcome)
                            .map_err(stopped)?;
                    }
                }
            }
            self.commit(&work.0, &mut pending, &mut existing, &mut outcome)
        });
        result?;
        Ok(outcome)
    }

    /// Convert bag `i` into its part: a complete dataset of one episode.
    fn part(
        &self,
        work: &Path,
        pool: &crate::pipeline::FramePool,
        i: usize,
        position: usize,
        id: Identity,
        planned: Option<EpisodePlan>,
    ) -> Result<Part, Failed> {
        let path = &self.run.opts.bags[position];
        let dir = work.join("parts").join(format!("{i:07}"));
        let mut writer = LeRobotWriter::create(
            self.run.spec,
            &WriterOptions {
                out: dir.clone(),
                ..self.writer.clone()
            },
        )
        .map_err(|e| Failed::Run(e.into()))?;
        let run = EpisodeRun { pool, ..self.run };
        let (result, _, digest) = run.episode(&mut writer, i, i, path, planned)?;
        let entry = resume::record(0, self.position_offset + position, path, id, digest);
        let mut record = InputsFile::new(vec![entry]);
        record.input_count = self.input_count;
        writer
            .record_inputs(&record)
            .map_err(|e| Failed::Run(e.into()))?;
        let written = Box::new(writer)
            .finish()
            .map_err(|e| Failed::Run(e.into()))?;
        Ok(Part {
            dir,
            result,
            encoder_peaks: written.encoder_peaks,
        })
    }

    /// Merge the dataset (if any) and the pending parts, in input order, into the output.
    fn commit(
        &self,
        work: &Path,
        pending: &mut Vec<Part>,
        existing: &mut bool,
        outcome: &mut Outcome,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let out = &self.run.opts.out;
        let mut shards = Vec::new();
        if *existing {
            shards.push(out.clone());
        }
        shards.extend(pending.iter().map(|p| p.dir.clone()));
        let staged = work.join("commit");
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(|e| io(&staged, e))?;
        }
        let merged = merge(&MergeOptions::new(shards, &staged))?;
        if let Some(shard) = self.shard {
            // The merge keeps positions and the list length; the shard is this run's.
            if let Some(mut f) = inputs::read(&staged)? {
                f.shard = Some(shard);
                inputs::write(&staged, &f)?;
            }
        }
        if let Some(signal) = crate::interrupt::pending() {
            return Err(Error::Interrupted(signal));
        }
        if *existing {
            // One atomic exchange: at every instant `out` is the old or the new dataset.
            swap_dirs(&staged, out)?;
            if let Err(e) = std::fs::remove_dir_all(&staged) {
                eprintln!(
                    "warning: {}: could not remove the previous dataset: {e}",
                    staged.display()
                );
            }
        } else {
            if out.exists() {
                std::fs::remove_dir(out).map_err(|e| io(out, e))?;
            }
            std::fs::rename(&staged, out).map_err(|e| io(out, e))?;
            *existing = true;
        }
        self.run.memory.checkpoint(&format!(
            "committed after {} episodes",
            outcome.episodes.len() + pending.len()
        ));
        outcome.total_episodes = merged.episodes;
        for p in pending.drain(..) {
            for (k, peak) in p.encoder_peaks.iter().enumerate() {
                if outcome.encoder_peaks.len() <= k {
                    outcome.encoder_peaks.push(None);
                }
                outcome.encoder_peaks[k] = outcome.encoder_peaks[k].max(*peak);
            }
            let _ = std::fs::remove_dir_all(&p.dir);
            outcome.episodes.push(p.result);
        }
        outcome.encoders = outcome.encoder_peaks.len() * self.jobs;
        Ok(())
    }
}
