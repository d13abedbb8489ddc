//! The converter's peak resident memory over a whole run, estimated before any work from the
//! bags' indexes and the dataset's features, so that `--max-rss` can refuse a run that would
//! not fit and name a `--chunk-secs` that does. Every term is in docs/memory.md with what it
//! stands for and how it was measured.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::dataset::{DatasetSpec, FeatureKind, BATCH_IMAGE_BYTES, BATCH_ROWS, ROW_GROUP_BYTES};
use crate::pipeline;
use crate::plan::EpisodePlan;
use crate::rss::format_bytes;
use crate::{Time, NANOS};

/// Windows in memory at once: the one being read, two in the channel to the aligner and the
/// one being aligned (camera messages are slices of their chunk until decoded).
const WINDOWS_RESIDENT: u64 = 4;
/// Chunks the reader keeps for later windows.
const CACHED_CHUNKS: u64 = 4;
/// The parquet writers' own state (schemas, column writers, page buffers) beside the rows
/// they hold.
const WRITER_STATE: u64 = 2 << 20;
/// Bytes of a data row besides its vector values: timestamp, frame_index, episode_index,
/// index and task_index, and arrow's offsets.
const ROW_OVERHEAD: u64 = 40;
/// Per thread of the run: its stack as far as it is touched, its malloc arena's bookkeeping
/// and thread cache.
const THREAD_BYTES: u64 = 1 << 20;
/// One bz2 decompressor: libbzip2's fast mode for 900 kB blocks (`BZh9`) holds 3.6 MB of
/// block sort array and 64 KiB of tables.
const BZ2_STATE: u64 = 3_700_000;
/// Per episode, kept until the dataset is finished: its row of `meta/episodes` (lengths,
/// files, per-feature stats) buffered by the parquet writer, and small bookkeeping. Measured
/// at 20-30 KB per episode over 50 to 200 episodes; twice that is allowed.
const EPISODE_BYTES: u64 = 64 << 10;
/// The least an episode's threads leave behind in the allocator's arenas, measured: the first
/// episodes of a run grow the converter by up to 1 MB each (also with one malloc arena,
/// `MALLOC_ARENA_MAX=1`), before it levels off.
const RETAINED_FLOOR: u64 = 1 << 20;
/// Copies of one episode's windows and frames that the allocator may keep for later
/// episodes (see [`RunEstimator::estimate_at`]).
const KEPT_COPIES: u64 = 2;
/// What a suggested window leaves under the budget: VmRSS after planning (`now`) varies by
/// about half a megabyte from run to run (measured 7.6 to 8.1 MB over 8 runs of one input).
const SUGGESTION_HEADROOM: u64 = 1 << 20;
/// glibc raises its mmap threshold up to this (64-bit `DEFAULT_MMAP_THRESHOLD_MAX`).
const MMAP_THRESHOLD_MAX: u64 = 32 << 20;

/// The run's estimated peak, term by term (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// VmRSS when the estimate is made: the program, its libraries, what planning kept.
    pub now: u64,
    /// Threads, the writer's row group and batch, the decoders' working memory.
    pub pipeline: u64,
    /// The largest windows of any bag, with the reader's chunk cache.
    pub windows: u64,
    /// The frame buffers in flight.
    pub frames: u64,
    /// What grows with the episodes: their metadata, and the freed memory the allocator
    /// keeps in the arenas that later episodes' threads leave behind.
    pub episodes: u64,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.now + self.pipeline + self.windows + self.frames + self.episodes
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (now {} + pipeline {} + windows {} + frames {} + episodes {})",
            format_bytes(self.total()),
            format_bytes(self.now),
            format_bytes(self.pipeline),
            format_bytes(self.windows),
            format_bytes(self.frames),
            format_bytes(self.episodes),
        )
    }
}

/// The figures of a run's bags that the estimate needs, gathered bag by bag while planning
/// (so that the plans themselves need not be kept).
#[derive(Debug, Clone)]
pub struct RunEstimator {
    /// The window lengths a refusal may suggest: the run's, then halved down to the least
    /// allowed.
    candidates: Vec<Time>,
    /// Per candidate: the largest window term over the bags, and that bag.
    windows: Vec<(u64, Option<PathBuf>)>,
    largest_chunk: u64,
    bz2: bool,
    bags: usize,
    /// The most frames of one episode (grid ticks).
    frames_max: u64,
    /// Bytes of one data row of the parquet file.
    row_bytes: u64,
    /// Bytes of one frame's pictures, and of its largest camera's.
    frame_bytes: u64,
    largest_camera: u64,
    cameras: u64,
    videos: usize,
    /// The largest, over the bags, of the chunks that frames waiting for a decoder hold.
    undecoded: u64,
    /// Bags converted at once (`--jobs`): each holds its own pipeline, windows and frames.
    jobs: u64,
}

impl RunEstimator {
    /// For a run with `chunk`-long windows; suggestions go down to `min_chunk`.
    pub fn new(chunk: Time, min_chunk: Time) -> RunEstimator {
        let mut candidates = vec![chunk];
        let mut c = chunk / 2;
        while c >= min_chunk.max(1) {
            candidates.push(c);
            c /= 2;
        }
        RunEstimator {
            windows: vec![(0, None); candidates.len()],
            candidates,
            largest_chunk: 0,
            bz2: false,
            bags: 0,
            frames_max: 0,
            row_bytes: 0,
            frame_bytes: 0,
            largest_camera: 0,
            cameras: 0,
            videos: 0,
            undecoded: 0,
            jobs: 1,
        }
    }

    /// For a run converting `jobs` bags at once.
    pub fn set_jobs(&mut self, jobs: usize) {
        self.jobs = jobs.max(1) as u64;
    }

    /// Adds one planned bag (one episode).
    pub fn add(&mut self, plan: &EpisodePlan) {
        let s = plan.bag.summary();
        let mut chunks: Vec<(Time, u64)> = s
            .blocks_between(plan.read_start, plan.read_end)
            .map(|b| (b.start, b.raw_bytes))
            .collect();
        chunks.sort_unstable();
        let largest = chunks.iter().map(|c| c.1).max().unwrap_or(0);
        self.largest_chunk = self.largest_chunk.max(largest);
        self.bz2 |= s.blocks.iter().any(|b| b.compression == "bz2");
        for (i, &chunk) in self.candidates.iter().enumerate() {
            let w = window_bytes(&chunks, chunk, largest);
            if w > self.windows[i].0 || self.windows[i].1.is_none() {
                self.windows[i] = (w.max(self.windows[i].0), Some(plan.path.clone()));
            }
        }
        self.set_spec(&plan.spec);
        self.undecoded = self
            .undecoded
            .max(self.undecoded_bytes(&chunks, largest, plan.spec.fps));
        self.frames_max = self.frames_max.max(plan.grid.len());
        self.bags += 1;
    }

    fn set_spec(&mut self, spec: &DatasetSpec) {
        let sizes: Vec<u64> = spec
            .features
            .iter()
            .filter_map(|f| f.kind.camera_size())
            .map(|(w, h)| u64::from(w) * u64::from(h) * 3)
            .collect();
        self.frame_bytes = sizes.iter().sum();
        // Image features are PNGs in the data file: at most about the raw picture.
        let pngs: u64 = spec
            .features
            .iter()
            .filter(|f| matches!(f.kind, FeatureKind::Image { .. }))
            .filter_map(|f| f.kind.camera_size())
            .map(|(w, h)| u64::from(w) * u64::from(h) * 3 + 1024)
            .sum();
        self.row_bytes = 4 * spec.vector_len() as u64 + ROW_OVERHEAD + pngs;
        self.largest_camera = sizes.iter().copied().max().unwrap_or(0);
        self.cameras = sizes.len() as u64;
        self.videos = spec
            .features
            .iter()
            .filter(|f| matches!(f.kind, FeatureKind::Video { .. }))
            .count();
    }

    /// The run's peak with the `i`th candidate window and `jobs` jobs, `now` being the current
    /// VmRSS: every job's part as if each held the largest bag's windows at the same moment.
    fn estimate_jobs(&self, i: usize, now: u64, jobs: u64) -> Estimate {
        let one = self.estimate_at(i, now);
        // With jobs, each also holds the frames waiting in its channel to the writer.
        let queued = if jobs > 1 {
            let frame = self.frame_bytes + self.row_bytes;
            jobs * (pipeline::JOB_QUEUE_BYTES as u64)
                .min(pipeline::JOB_QUEUE_FRAMES as u64 * frame)
                .max(2 * frame)
        } else {
            0
        };
        Estimate {
            now,
            pipeline: one.pipeline * jobs,
            windows: one.windows * jobs,
            frames: one.frames * jobs + queued,
            episodes: one.episodes * jobs,
        }
    }

    /// One job's peak with the `i`th candidate window, `now` being the current VmRSS.
    fn estimate_at(&self, i: usize, now: u64) -> Estimate {
        let workers = pipeline::decode_workers(self.frame_bytes as usize) as u64;
        // main, the memory sampler, reader, aligner, decode workers, one stderr reader per
        // ffmpeg encoder.
        let threads = 4 + workers + self.videos as u64;
        let bz2 = if self.bz2 { BZ2_STATE } else { 0 };
        // A worker decodes a picture, and with `resize` scales it, outside the frame buffers.
        let decode = workers * 2 * self.largest_camera;
        let pipeline = threads * THREAD_BYTES + self.writer_bytes() + bz2 + decode;
        let frames = pipeline::frame_pool_size(self.frame_bytes as usize) as u64 * self.frame_bytes
            + self.undecoded;
        // glibc keeps freed memory in the arena it came from, up to its trim threshold, which
        // it raises to twice the largest block freed so far (a bz2 state, a chunk buffer, a
        // picture). Each episode starts new threads, which may take other arenas than the
        // last episode's: up to one more arena's worth per episode, until every thread's
        // arena holds one.
        let freed = bz2
            .max(self.largest_chunk)
            .max(self.largest_camera)
            .min(MMAP_THRESHOLD_MAX);
        let arenas = (self.bags as u64).min(threads);
        let windows = self.windows[i].0;
        // Past that raised threshold, chunk buffers and samples come from the arenas instead
        // of their own mappings, and what an episode freed there may stay while later ones
        // allocate their windows elsewhere: measured up to 0.6 of one episode's windows and
        // frames more by the third episode and 1.0 by the tenth, where it levels off. One
        // copy is allowed from the second episode, two from the third.
        let copies = (self.bags as u64).saturating_sub(1).min(KEPT_COPIES);
        let kept = copies * (windows + frames);
        let episodes =
            self.bags as u64 * EPISODE_BYTES + arenas * (2 * freed).max(RETAINED_FLOOR) + kept;
        Estimate {
            now,
            pipeline,
            windows,
            frames,
            episodes,
        }
    }

    /// The chunks held by frames waiting for a decoder (a camera message each), which may be
    /// older than the windows in memory: at most one chunk per picture, and at most the chunks
    /// of the stretch of recording those frames span.
    fn undecoded_bytes(&self, chunks: &[(Time, u64)], largest: u64, fps: u32) -> u64 {
        if self.cameras == 0 || fps == 0 {
            return 0;
        }
        let image_bytes = self.frame_bytes as usize;
        let workers = pipeline::decode_workers(image_bytes) as u64;
        let waiting = pipeline::frames_in_flight(image_bytes) as u64 + workers;
        let span = (waiting as i64).saturating_mul(NANOS) / i64::from(fps);
        let by_count = waiting * self.cameras * largest;
        let by_span = largest_window(chunks, span, largest);
        by_count.min(by_span)
    }

    /// The data file's row group in progress (flushed at each episode's end and past
    /// [`ROW_GROUP_BYTES`]) and the batch of rows being built, of the longest episode; the row
    /// group twice, for its encoded and compressed pages at the flush.
    fn writer_bytes(&self) -> u64 {
        let rows = self.frames_max * self.row_bytes;
        let batch = rows
            .min(BATCH_ROWS as u64 * self.row_bytes)
            .min(BATCH_IMAGE_BYTES as u64 + self.row_bytes);
        let row_group = rows.min(ROW_GROUP_BYTES as u64 + batch);
        WRITER_STATE + 2 * row_group + batch
    }

    /// The estimate with the run's own window.
    pub fn estimate(&self, now: u64) -> Estimate {
        self.estimate_jobs(0, now, self.jobs)
    }

    /// The bag whose windows are the largest with the run's window.
    pub fn largest_bag(&self) -> Option<&Path> {
        self.windows.first().and_then(|w| w.1.as_deref())
    }

    /// Ok when the estimate fits `budget`; else the refusal: the estimate term by term and
    /// the longest halved window that fits, or that none does.
    pub fn check(&self, budget: u64, now: u64) -> Result<(), String> {
        let est = self.estimate(now);
        if est.total() <= budget {
            return Ok(());
        }
        // With headroom: `now` differs from run to run, and a suggestion followed must not
        // be refused in turn.
        let room = budget.saturating_sub(SUGGESTION_HEADROOM);
        let fits = (1..self.candidates.len())
            .find(|&i| self.estimate_jobs(i, now, self.jobs).total() <= room)
            .map(|i| self.candidates[i]);
        // Fewer jobs with the same window.
        let jobs_fit = (1..self.jobs)
            .rev()
            .find(|&j| self.estimate_jobs(0, now, j).total() <= room);
        let mut tries = Vec::new();
        if let Some(c) = fits {
            tries.push(format!("--chunk-secs {}", c as f64 / NANOS as f64));
        }
        if let Some(j) = jobs_fit {
            tries.push(format!("--jobs {j}"));
        }
        let what = if tries.is_empty() {
            let least = self.estimate_jobs(self.candidates.len() - 1, now, 1);
            format!(
                "no --chunk-secs fits it{}: with the least window{} it is still {} (a \
                 suggestion keeps {} to spare)",
                if self.jobs > 1 {
                    " nor fewer --jobs"
                } else {
                    ""
                },
                if self.jobs > 1 { " and one job" } else { "" },
                format_bytes(least.total()),
                format_bytes(SUGGESTION_HEADROOM)
            )
        } else {
            format!("try {}", tries.join(", or "))
        };
        let bags = match self.bags {
            1 => self
                .largest_bag()
                .map_or_else(|| "1 bag".into(), |p| p.display().to_string()),
            n => format!("{n} bags"),
        };
        let jobs = if self.jobs > 1 {
            format!(" and --jobs {}", self.jobs)
        } else {
            String::new()
        };
        Err(format!(
            "{bags}: the estimated peak memory {est} is over --max-rss {} with --chunk-secs {}{jobs}; {what}",
            format_bytes(budget),
            self.candidates[0] as f64 / NANOS as f64
        ))
    }
}

/// Largest sum of the sizes of chunks starting within `chunk` of each other, plus one that
/// straddles into the window. `chunks` is sorted by start.
fn largest_window(chunks: &[(Time, u64)], chunk: Time, largest: u64) -> u64 {
    let mut window = 0u64;
    let (mut j, mut sum) = (0usize, 0u64);
    for i in 0..chunks.len() {
        while j < chunks.len() && chunks[j].0 < chunks[i].0.saturating_add(chunk) {
            sum += chunks[j].1;
            j += 1;
        }
        window = window.max(sum);
        sum -= chunks[i].1;
    }
    window + largest
}

/// The windows resident at once and the reader's cache.
fn window_bytes(chunks: &[(Time, u64)], chunk: Time, largest: u64) -> u64 {
    WINDOWS_RESIDENT * largest_window(chunks, chunk, largest) + CACHED_CHUNKS * largest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_sum_the_chunks_starting_in_one_window() {
        let s = NANOS;
        // Three 10-byte chunks in the first second, one of 50 bytes at 5 s.
        let chunks = [(0, 10), (s / 4, 10), (s / 2, 10), (5 * s, 50)];
        assert_eq!(window_bytes(&chunks, s, 50), 4 * (50 + 50) + 4 * 50);
        assert_eq!(window_bytes(&chunks[..3], s, 10), 4 * (30 + 10) + 4 * 10);
        assert_eq!(
            window_bytes(&chunks[..3], s / 4, 10),
            4 * (10 + 10) + 4 * 10
        );
        assert_eq!(window_bytes(&[], s, 0), 0);
    }

    #[test]
    fn jobs_multiply_what_each_job_holds_and_the_refusal_names_fewer_jobs() {
        let mut e = RunEstimator::new(NANOS, NANOS / 1000);
        for (i, w) in e.windows.iter_mut().enumerate() {
            *w = ((64 << 20) >> i, Some(PathBuf::from("a.bag")));
        }
        e.bags = 1;
        let now = 10 << 20;
        let one = e.estimate(now);
        e.set_jobs(3);
        let three = e.estimate(now);
        assert_eq!(three.now, now);
        assert_eq!(three.total() - now, 3 * (one.total() - now));
        // Room for two jobs' windows, not three: fewer jobs, or smaller windows, fit.
        let budget = now + 2 * (one.total() - now) + (2 << 20);
        let msg = e.check(budget, now).unwrap_err();
        assert!(msg.contains("with --chunk-secs 1 and --jobs 3"), "{msg}");
        assert!(msg.contains("try --chunk-secs 0.5, or --jobs 2"), "{msg}");
        assert!(e.check(three.total(), now).is_ok());
    }

    #[test]
    fn candidates_halve_down_to_the_least_window() {
        let e = RunEstimator::new(NANOS, NANOS / 1000);
        assert_eq!(e.candidates[0], NANOS);
        assert_eq!(e.candidates[1], NANOS / 2);
        assert!(*e.candidates.last().unwrap() >= NANOS / 1000);
        assert_eq!(e.candidates.len(), 10);
    }
}
