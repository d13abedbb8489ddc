//! `--jobs N`: N bags are read, decoded and aligned at once, each by its own pipeline on a
//! worker thread, and their frames are written in input order by the run's one writer.
//!
//! A worker streams its episode through a [`RelayWriter`]: the writer calls (begin, each
//! frame, end) travel over a bounded channel to the thread that owns the real writer, which
//! replays them when the bag's turn comes ([`Relay::replay`]). The dataset is therefore the
//! one `--jobs 1` writes, byte for byte: the same rows, episodes, tasks, stats, data files and
//! video files (each camera's episodes are encoded in one stream, as with one job), and the
//! same commits, `--resume` record and failure handling, which stay in the caller's loop.
//!
//! Memory: each job holds its bag's windows plus the frames waiting in its channel, at most
//! [`JOB_QUEUE_BYTES`] of them; the `--max-rss` estimate counts both for every job. A worker
//! whose bag is not yet being written blocks when its channel is full, so reading runs about
//! one bag ahead of writing per job.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use serde_json::Value;

use super::{Episode, EpisodeRun, Failed};
use crate::dataset::{DatasetError, DatasetSpec, DatasetWriter, EpisodeSummary, Frame};
use crate::pipeline::{JOB_QUEUE_BYTES, JOB_QUEUE_FRAMES};
use crate::plan::EpisodePlan;
use crate::threads::JobThreads;

/// A writer call, or the episode's outcome, on its way to the writer's thread.
enum Call {
    Begin { task: String, frames_hint: u64 },
    Frame(Frame),
    End(Value),
    Done(Box<Episode>),
}

/// One bag's channel, as the worker registers it: its calls, and the writer's answers to
/// `end_episode`.
struct Registered {
    bag: usize,
    calls: Receiver<Call>,
    replies: Sender<EpisodeSummary>,
}

/// The writer a worker's pipeline writes to: every call is passed on to the real writer.
struct RelayWriter {
    calls: Sender<Call>,
    replies: Receiver<EpisodeSummary>,
}

/// The writer's thread has stopped (it failed, or the run was stopped): the episode cannot go
/// on. The run's error is the writer's own, reported there.
fn stopped() -> DatasetError {
    DatasetError::Invalid("the dataset writer stopped".into())
}

impl DatasetWriter for RelayWriter {
    fn begin_episode(&mut self, task: &str, frames_hint: u64) -> Result<(), DatasetError> {
        self.calls
            .send(Call::Begin {
                task: task.to_string(),
                frames_hint,
            })
            .map_err(|_| stopped())
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), DatasetError> {
        // The pipeline's frame goes back to its pool when this returns: a copy travels.
        self.calls
            .send(Call::Frame(frame.clone()))
            .map_err(|_| stopped())
    }

    fn end_episode(&mut self, sync_report: Value) -> Result<EpisodeSummary, DatasetError> {
        self.calls
            .send(Call::End(sync_report))
            .map_err(|_| stopped())?;
        // No answer: the writer failed on this episode and stopped (its error is the run's).
        self.replies.recv().map_err(|_| stopped())
    }

    fn finish(self: Box<Self>) -> Result<crate::dataset::WriterSummary, DatasetError> {
        Err(DatasetError::Invalid(
            "a relayed episode cannot finish the dataset".into(),
        ))
    }
}

/// Frames a channel holds: [`JOB_QUEUE_BYTES`] of `spec`'s frames, at least two.
fn queue_frames(spec: &DatasetSpec) -> usize {
    let values = spec.vector_len() * 4;
    let pictures: usize = spec
        .cameras()
        .filter_map(|f| f.kind.camera_size())
        .map(|(w, h)| w as usize * h as usize * 3)
        .sum();
    (JOB_QUEUE_BYTES / (values + pictures).max(1)).clamp(2, JOB_QUEUE_FRAMES)
}

/// What the workers share with the writer's thread; the caller owns it, outside the scope
/// the workers run in.
pub(super) struct Shared {
    stop: AtomicBool,
    next: AtomicUsize,
    first: Mutex<Option<EpisodePlan>>,
}

impl Shared {
    /// Bag 0 is converted by `first_plan` when given.
    pub(super) fn new(first_plan: Option<EpisodePlan>) -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            first: Mutex::new(first_plan),
        }
    }
}

/// The writer's side: the channels the workers registered that it has not reached yet.
pub(super) struct Relay<'env> {
    registry: Receiver<Registered>,
    waiting: BTreeMap<usize, Registered>,
    shared: &'env Shared,
}

impl Drop for Relay<'_> {
    fn drop(&mut self) {
        // Workers see it before their next bag; those mid-bag see their channel close.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl<'env> Relay<'env> {
    /// Starts `jobs` workers in `scope`, converting the planned bags `paths` in turn.
    pub(super) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        shared: &'env Shared,
        run: EpisodeRun<'env>,
        paths: &'env [&'env std::path::Path],
        jobs: usize,
        threads: JobThreads,
    ) -> Relay<'env> {
        let (register, registry) = unbounded::<Registered>();
        let capacity = queue_frames(run.spec);
        for _ in 0..jobs.min(paths.len()) {
            let register = register.clone();
            scope.spawn(move || {
                let pool = crate::pipeline::FramePool::for_job(run.spec, threads);
                let run = EpisodeRun { pool: &pool, ..run };
                while !shared.stop.load(Ordering::Relaxed) {
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else {
                        break;
                    };
                    let planned = if i == 0 {
                        shared
                            .first
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take()
                    } else {
                        None
                    };
                    let (calls_tx, calls) = bounded(capacity);
                    let (replies, replies_rx) = bounded(1);
                    if register
                        .send(Registered {
                            bag: i,
                            calls,
                            replies,
                        })
                        .is_err()
                    {
                        break;
                    }
                    let mut writer = RelayWriter {
                        calls: calls_tx,
                        replies: replies_rx,
                    };
                    let episode = run.episode(&mut writer, i, i, path, planned);
                    if writer.calls.send(Call::Done(Box::new(episode))).is_err() {
                        break;
                    }
                }
            });
        }
        Relay {
            registry,
            waiting: BTreeMap::new(),
            shared,
        }
    }

    /// Writes planned bag `bag`'s episode into `writer` as its worker produces it, and returns
    /// the episode's outcome as [`EpisodeRun::episode`] would have.
    pub(super) fn replay(&mut self, bag: usize, writer: &mut dyn DatasetWriter) -> Episode {
        let channel = loop {
            if let Some(c) = self.waiting.remove(&bag) {
                break c;
            }
            match self.registry.recv() {
                Ok(c) => {
                    self.waiting.insert(c.bag, c);
                }
                Err(_) => {
                    return Err(Failed::Run(crate::Error::Conversion(format!(
                        "bag {bag}: no job converted it"
                    ))))
                }
            }
        };
        let run_error = |e: DatasetError| Failed::Run(e.into());
        loop {
            let call = channel.calls.recv().map_err(|_| {
                Failed::Run(crate::Error::Conversion(format!(
                    "bag {bag}: its job stopped without an outcome"
                )))
            })?;
            match call {
                Call::Begin { task, frames_hint } => writer
                    .begin_episode(&task, frames_hint)
                    .map_err(run_error)?,
                Call::Frame(frame) => writer.write_frame(&frame).map_err(run_error)?,
                Call::End(report) => {
                    let summary = writer.end_episode(report).map_err(run_error)?;
                    // The worker may have stopped already: its outcome then says why.
                    let _ = channel.replies.send(summary);
                }
                Call::Done(episode) => return *episode,
            }
        }
    }
}
