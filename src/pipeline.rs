//! The streaming pipeline of one episode, each stage on its own thread:
//!
//! ```text
//! chunk reader --(windows of samples)--> aligner --(frames to decode)--> decode workers (N)
//!      ^                                    ^                                   |
//!      +-------- (stop flag)                |              (decoded frames, any order)
//!                                           |                                   v
//!                                           +---(frame buffers, recycled)--- writer (in order)
//! ```
//!
//! The reader reads one `--chunk-secs` window at a time and decodes only the configured
//! numeric fields; camera messages travel as slices of their chunk and are decoded by the
//! workers only when a frame picks them. Every channel is bounded, so a slow writer (or
//! encoder) holds the reader back and memory stays at a few windows and a few frames,
//! whatever the bag's length. Without cameras the aligner hands frames straight to the writer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::align::{AlignError, Aligned, Aligner, SyncReport};
use crate::bag::RawMessage;
use crate::camera::{encode_png, resize_into, RgbImage};
use crate::config::CameraOutput;
use crate::dataset::{DatasetWriter, Frame};
use crate::memory::MemoryMonitor;
use crate::plan::{EpisodePlan, SourcePlan};
use crate::progress::Progress;
use crate::threads::JobThreads;
use crate::{interrupt, Error, Result, Time};

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

/// Windows in flight between reader and aligner.
const WINDOWS_IN_FLIGHT: usize = 2;
/// Frames in flight between aligner and writer, at most.
const FRAMES_IN_FLIGHT: usize = 64;
/// Bytes of decoded pictures per channel between the aligner and the writer: with large
/// cameras fewer frames are in flight (at least 2).
const IMAGE_BYTES_IN_FLIGHT: usize = 4 << 20;
/// Decode workers at most (fewer on machines with fewer cores).
pub const MAX_DECODE_WORKERS: usize = 4;
/// How often a stage blocked on the frame pool looks whether a later stage failed.
const HALT_POLL: Duration = Duration::from_millis(50);

/// What one source takes from one message: numbers now, or the whole camera message, decoded
/// later if a frame picks it.
#[derive(Debug, Clone)]
enum Value {
    Numbers(Vec<f32>),
    Image(RawMessage),
}

struct Sample {
    source: usize,
    stamp: Time,
    recv: Time,
    value: Value,
}

enum Batch {
    Samples {
        samples: Vec<Sample>,
        bytes: u64,
    },
    /// The reader got through the whole read range.
    End,
}

/// An aligned frame whose camera messages (one per camera, in camera order) are not decoded
/// yet; `frame` holds its values and recycled picture buffers.
struct Pending {
    seq: u64,
    /// The window whose samples completed the frame.
    window: u64,
    frame: Frame,
    raws: Vec<RawMessage>,
}

/// A frame ready for the writer.
struct Done {
    seq: u64,
    window: u64,
    frame: Frame,
}

/// Frames in flight per channel for frames of `image_bytes` bytes of pictures.
pub fn frames_in_flight(image_bytes: usize) -> usize {
    IMAGE_BYTES_IN_FLIGHT
        .checked_div(image_bytes)
        .map_or(FRAMES_IN_FLIGHT, |n| n.clamp(2, FRAMES_IN_FLIGHT))
}

/// Decode worker threads for frames of `image_bytes` bytes of pictures (none without cameras).
/// with the whole machine (the memory estimate's figure: at least what a job of a run with
/// `--threads` or `--jobs` uses).
pub fn decode_workers(image_bytes: usize) -> usize {
    decode_workers_for(image_bytes, JobThreads::default())
}

/// Decode worker threads of a job with `threads` (none without cameras).
pub fn decode_workers_for(image_bytes: usize, threads: JobThreads) -> usize {
    if image_bytes == 0 {
        0
    } else {
        threads.decode_workers(MAX_DECODE_WORKERS)
    }
}

/// Frame buffers in the pool for frames of `image_bytes` bytes of pictures: the frames that can
/// exist at once anywhere in the pipeline.
pub fn frame_pool_size(image_bytes: usize) -> usize {
    2 * frames_in_flight(image_bytes) + decode_workers(image_bytes) + 2
}

/// With `--jobs`, the frames a job's channel to the writer holds at most, in bytes of values
/// and pictures (and at least two frames): enough for a short tabular bag to be read whole
/// ahead of its turn, a few frames of a camera bag.
pub const JOB_QUEUE_BYTES: usize = 16 << 20;
/// And at most this many frames.
pub const JOB_QUEUE_FRAMES: usize = 4096;

/// The frame buffers of a run: a fixed number, reused from frame to frame and from episode
/// to episode.
///
/// A stack, not a queue: the frame given back last is taken first, so only as many buffers
/// as are ever in flight at once get pictures. A queue cycles through every buffer of the
/// pool, and each one's pictures are allocated on its first turn: the fixture's camera
/// (96x64, a pool of 132 frames) went on allocating for 4 episodes, 2.4 MB in all.
pub struct FramePool {
    free: Mutex<Vec<Frame>>,
    returned: Condvar,
    size: usize,
    /// The camera decode workers of the episodes run with this pool (sized for them).
    workers: usize,
}

impl FramePool {
    /// A pool for the frames of `spec`, with the whole machine's threads.
    pub fn for_spec(spec: &crate::dataset::DatasetSpec) -> FramePool {
        FramePool::for_job(spec, JobThreads::default())
    }

    /// A pool for the frames of `spec` in a job with `threads`.
    pub fn for_job(spec: &crate::dataset::DatasetSpec, threads: JobThreads) -> FramePool {
        let image_bytes = spec
            .cameras()
            .filter_map(|f| f.kind.camera_size())
            .map(|(w, h)| w as usize * h as usize * 3)
            .sum();
        let workers = decode_workers_for(image_bytes, threads);
        let size = 2 * frames_in_flight(image_bytes) + workers + 2;
        let pool = FramePool {
            free: Mutex::new(Vec::with_capacity(size)),
            returned: Condvar::new(),
            size,
            workers,
        };
        pool.fill();
        pool
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Frame>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts back the frames a failed episode lost.
    fn fill(&self) {
        let mut free = self.lock();
        let missing = self.size.saturating_sub(free.len());
        free.extend((0..missing).map(|_| Frame::default()));
    }

    /// The most recently returned frame, waiting at most `timeout` for one.
    fn take(&self, timeout: Duration) -> Option<Frame> {
        let free = self.lock();
        let (mut free, _) = self
            .returned
            .wait_timeout_while(free, timeout, |f| f.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        free.pop()
    }

    fn give(&self, frame: Frame) {
        let mut free = self.lock();
        // Never full: the pool's capacity is every frame there is.
        if free.len() < self.size {
            free.push(frame);
        }
        drop(free);
        self.returned.notify_one();
    }

    /// Frames waiting in the pool (for tests).
    pub fn free_count(&self) -> usize {
        self.lock().len()
    }
}

/// Stream one planned bag into the writer's current episode (episode `episode` of the run);
/// returns the sync report and each camera's read and decode counts.
#[allow(clippy::too_many_arguments)]
pub fn run_episode(
    plan: EpisodePlan,
    chunk: Time,
    writer: &mut dyn DatasetWriter,
    progress: &Progress,
    memory: &MemoryMonitor,
    episode: usize,
    pool: &FramePool,
) -> Result<(SyncReport, Vec<CameraCount>)> {
    let by_conn = plan.sources_by_connection();
    let feature_keys: Vec<String> = plan.spec.features.iter().map(|f| f.key.clone()).collect();
    let EpisodePlan {
        path,
        mut bag,
        sources,
        grid,
        read_start,
        read_end,
        spec,
        max_drop_ratio,
    } = plan;
    let bag_name = &path.display().to_string();
    let wanted: Vec<bool> = by_conn.iter().map(|s| !s.is_empty()).collect();
    let frame_len = spec.vector_len();
    let rules = sources.iter().map(|s| s.rule.clone()).collect();
    // Camera sources in feature order, which is `Frame::images` order.
    let camera_sources: Vec<usize> = (0..sources.len())
        .filter(|&s| sources[s].camera.is_some())
        .collect();
    let cameras = &camera_sources;
    let image_bytes: usize = cameras
        .iter()
        .filter_map(|&s| sources[s].camera.as_ref())
        .map(|c| c.size.0 as usize * c.size.1 as usize * 3)
        .sum();
    let in_flight = frames_in_flight(image_bytes);
    let workers = if image_bytes == 0 {
        0
    } else {
        pool.workers.max(1)
    };

    let stop_flag = AtomicBool::new(false);
    let stop = &stop_flag;
    let halt_flag = AtomicBool::new(false);
    // Set when a later stage (a worker or the writer) failed or went away.
    let halted = &halt_flag;
    let sources = &sources;

    let (batch_tx, batch_rx) = bounded::<Batch>(WINDOWS_IN_FLIGHT);
    let (work_tx, work_rx) = bounded::<Pending>(in_flight);
    let (done_tx, done_rx) = bounded::<Done>(in_flight);
    // A fixed pool of frame buffers: the aligner takes one per frame and the writer gives it
    // back, so the frames anywhere between them (queued, decoding, waiting for their turn in
    // the writer's reorder buffer) never number more than the pool.
    pool.fill();

    std::thread::scope(|scope| {
        let reader = scope.spawn(|| -> Result<Vec<u64>> {
            // Owned here, so that the channel closes however this thread ends.
            let batch_tx = batch_tx;
            let mut counts = vec![0u64; sources.len()];
            let mut raw: Vec<RawMessage> = Vec::new();
            let mut start = read_start;
            let mut window = 0u64;
            while start < read_end && !stop.load(Ordering::Relaxed) {
                interrupt::check()?;
                let end = start.saturating_add(chunk).min(read_end);
                raw.clear();
                bag.read_window(start, end, &wanted, &mut raw)?;
                memory.detail(|| format!("episode {episode}, chunk {window} read"));
                window += 1;
                let bytes = raw.iter().map(|m| m.range.len() as u64).sum();
                let mut samples = Vec::with_capacity(raw.len());
                for m in &raw {
                    for &s in &by_conn[m.conn] {
                        counts[s] += 1;
                        samples.push(sample(bag_name, s, &sources[s], m)?);
                    }
                }
                // Let go of this window's chunks before the next window reads its own (camera
                // samples keep theirs until the aligner is done with them).
                raw.clear();
                // A closed channel means a later stage stopped; its error is the one reported.
                if batch_tx.send(Batch::Samples { samples, bytes }).is_err() {
                    return Ok(counts);
                }
                // Skip stretches without any chunk: they hold no message.
                start = bag
                    .summary()
                    .next_data_time(end)
                    .map_or(read_end, |t| t.max(end));
            }
            // `End` only for a range read to its end: after a stop, the aligner must not
            // decide the remaining ticks as if the bag ended there.
            if start >= read_end {
                let _ = batch_tx.send(Batch::End);
            }
            Ok(counts)
        });

        let aligner_done = done_tx.clone();
        let aligner = scope.spawn(move || -> Result<Option<SyncReport>> {
            let (work_tx, done_tx) = (work_tx, aligner_done);
            let mut aligner: Aligner<Value> =
                Aligner::new(grid, rules).with_max_drop_ratio(max_drop_ratio);
            let mut closed = false;
            // The window whose samples are being pushed: frames carry it to the writer.
            let mut window = 0u64;
            let mut emit = |f: Aligned<'_, Value>, window: u64| {
                if closed || halted.load(Ordering::Relaxed) {
                    closed = true;
                    return;
                }
                let mut frame = loop {
                    match pool.take(HALT_POLL) {
                        Some(f) => break f,
                        None if !halted.load(Ordering::Relaxed) => {}
                        None => {
                            closed = true;
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                };
                frame.time = f.time;
                frame.values.clear();
                frame.values.reserve(frame_len);
                let mut raws = Vec::new();
                for v in f.values {
                    match v {
                        Value::Numbers(n) => frame.values.extend_from_slice(n),
                        Value::Image(m) => raws.push(m.clone()),
                    }
                }
                let sent = if cameras.is_empty() {
                    frame.images.clear();
                    done_tx
                        .send(Done {
                            seq: f.frame,
                            window,
                            frame,
                        })
                        .is_ok()
                } else {
                    work_tx
                        .send(Pending {
                            seq: f.frame,
                            window,
                            frame,
                            raws,
                        })
                        .is_ok()
                };
                if !sent {
                    // Every later stage hung up (one failed): stop the reader too; that
                    // stage's error is the one reported.
                    closed = true;
                    halted.store(true, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                }
            };

            for batch in batch_rx.iter() {
                match batch {
                    Batch::Samples { samples, bytes } => {
                        let mut at_window = |f: Aligned<'_, Value>| emit(f, window);
                        for s in samples {
                            aligner
                                .push(s.source, s.stamp, s.recv, s.value, &mut at_window)
                                .map_err(|e| align_error(bag_name, e))?;
                        }
                        memory.detail(|| format!("episode {episode}, chunk {window} aligned"));
                        window += 1;
                        progress.bytes(bytes);
                        if halted.load(Ordering::Relaxed) {
                            stop.store(true, Ordering::Relaxed);
                            return Ok(None);
                        }
                        if aligner.is_done() {
                            // Every tick is decided: the rest of the range cannot matter.
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    Batch::End => {
                        let last = window.saturating_sub(1);
                        let report = aligner
                            .finish(&mut |f| emit(f, last))
                            .map_err(|e| align_error(bag_name, e))?;
                        return Ok(Some(report));
                    }
                }
            }
            if aligner.is_done() {
                let last = window.saturating_sub(1);
                return Ok(Some(
                    aligner
                        .finish(&mut |f| emit(f, last))
                        .map_err(|e| align_error(bag_name, e))?,
                ));
            }
            Ok(None)
        });

        let decoders: Vec<_> = (0..workers)
            .map(|_| {
                let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
                scope.spawn(move || -> Result<()> {
                    // A panic (a bug) stops the pipeline as an error does.
                    let guard = HaltOnDrop { halted, stop };
                    let r = decode_worker(bag_name, sources, cameras, &work_rx, &done_tx);
                    if r.is_ok() {
                        std::mem::forget(guard);
                    }
                    r
                })
            })
            .collect();
        // The stages hold their own ends: the channels close when those stages end.
        drop((work_rx, done_tx));

        let write_result = write_in_order(&done_rx, writer, progress, pool, memory, episode);
        if write_result.is_err() {
            halted.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        }
        // Unblock the other stages if the writer stopped early.
        drop(done_rx);
        let decoded: Vec<Result<()>> = decoders
            .into_iter()
            .map(|d| d.join().expect("decode worker panicked"))
            .collect();
        let aligned = aligner.join().expect("aligner thread panicked");
        let read = reader.join().expect("reader thread panicked");
        let counts = read?;
        for d in decoded {
            d?;
        }
        // A failed writer stops the aligner, not the other way round: its error comes first.
        write_result?;
        let report = aligned?;
        let report = report
            .ok_or_else(|| Error::Conversion(format!("{bag_name}: the reader stopped early")))?;
        let cameras = cameras
            .iter()
            .filter_map(|&s| {
                let src = &sources[s];
                Some(CameraCount {
                    feature: feature_keys.get(src.feature)?.clone(),
                    topic: src.topic.clone(),
                    messages: counts[s],
                    decoded: src.camera.as_ref()?.decoded(),
                })
            })
            .collect();
        Ok((report, cameras))
    })
}

/// Sets the halt and stop flags when dropped: on a worker's error or panic.
struct HaltOnDrop<'a> {
    halted: &'a AtomicBool,
    stop: &'a AtomicBool,
}

impl Drop for HaltOnDrop<'_> {
    fn drop(&mut self) {
        self.halted.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What source `s` takes from message `m`.
fn sample(bag_name: &str, s: usize, src: &SourcePlan, m: &RawMessage) -> Result<Sample> {
    let field = if src.camera.is_some() {
        "header.stamp"
    } else {
        &src.field
    };
    let decode_err = |e: crate::msg::DecodeError| Error::Decode {
        bag: bag_name.to_string(),
        topic: src.topic.clone(),
        field: field.to_string(),
        detail: format!("message at {:.9} s: {e}", m.time as f64 / 1e9),
    };
    let stamp = match &src.stamps[m.conn] {
        Some(r) => r.read(m.data()).map_err(decode_err)?,
        None => crate::plan::message_stamp(m, src.publish),
    };
    let value = if src.camera.is_some() {
        Value::Image(m.clone())
    } else {
        let ex = src.extractors[m.conn].as_ref().expect("wanted connection");
        let mut values = Vec::with_capacity(src.len);
        ex.extract(m.data(), &mut values).map_err(decode_err)?;
        if values.len() != src.len {
            return Err(Error::Decode {
                bag: bag_name.to_string(),
                topic: src.topic.clone(),
                field: src.field.clone(),
                detail: format!(
                    "message at {:.9} s has {} values but the first message had {}",
                    m.time as f64 / 1e9,
                    values.len(),
                    src.len
                ),
            });
        }
        Value::Numbers(values)
    };
    Ok(Sample {
        source: s,
        stamp,
        recv: m.time,
        value,
    })
}

/// Decodes the pictures of pending frames until the aligner is done (or the writer gone).
fn decode_worker(
    bag_name: &str,
    sources: &[SourcePlan],
    cameras: &[usize],
    work: &Receiver<Pending>,
    done: &Sender<Done>,
) -> Result<()> {
    let mut scratch = RgbImage::new();
    for mut p in work.iter() {
        p.frame.images.resize_with(cameras.len(), Default::default);
        for ((&s, m), img) in cameras.iter().zip(&p.raws).zip(&mut p.frame.images) {
            let src = &sources[s];
            let cam = src.camera.as_ref().expect("camera source");
            let err = |detail: String| Error::Decode {
                bag: bag_name.to_string(),
                topic: src.topic.clone(),
                field: "(image)".into(),
                detail: format!("message at {:.9} s: {detail}", m.time as f64 / 1e9),
            };
            let decoder = cam.decoders[m.conn].as_ref().expect("camera connection");
            let data = m.data();
            let direct = !cam.resize || decoder.header(data) == Some(cam.size);
            if direct {
                decoder
                    .decode(data, &mut img.rgb)
                    .map_err(|e| err(e.to_string()))?;
                if (img.rgb.width, img.rgb.height) != cam.size {
                    return Err(err(format!(
                        "the image is {}x{}, but the topic's first image was {}x{}; set `resize` to convert images of any size",
                        img.rgb.width, img.rgb.height, cam.first_size.0, cam.first_size.1
                    )));
                }
            } else {
                decoder
                    .decode(data, &mut scratch)
                    .map_err(|e| err(e.to_string()))?;
                resize_into(&scratch, cam.size.0, cam.size.1, &mut img.rgb)
                    .map_err(|e| err(e.to_string()))?;
            }
            img.png.clear();
            if cam.output == CameraOutput::Image {
                encode_png(&img.rgb, &mut img.png).map_err(|e| err(e.to_string()))?;
            }
        }
        // Let go of the chunks as soon as the pictures are out of them.
        drop(p.raws);
        let ready = Done {
            seq: p.seq,
            window: p.window,
            frame: p.frame,
        };
        if done.send(ready).is_err() {
            // The writer stopped; its error is the one reported.
            return Ok(());
        }
    }
    Ok(())
}

/// Writes frames in sequence order (workers finish them in any order); hands each frame's
/// buffers back for reuse.
fn write_in_order(
    done: &Receiver<Done>,
    writer: &mut dyn DatasetWriter,
    progress: &Progress,
    pool: &FramePool,
    memory: &MemoryMonitor,
    episode: usize,
) -> Result<()> {
    let mut next = 0u64;
    // Bounded by the frame pool: a frame parked here was taken from it.
    let mut parked: BTreeMap<u64, Done> = BTreeMap::new();
    let mut window: Option<u64> = None;
    loop {
        // Not a plain blocking receive: a signal must stop the run while the queue is empty.
        let d = match done.recv_timeout(interrupt::POLL) {
            Ok(d) => d,
            Err(RecvTimeoutError::Timeout) => {
                interrupt::check()?;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        interrupt::check()?;
        parked.insert(d.seq, d);
        while let Some(d) = parked.remove(&next) {
            if let Some(w) = window.filter(|w| *w < d.window) {
                memory.detail(|| format!("episode {episode}, chunk {w} written"));
            }
            window = Some(d.window);
            writer.write_frame(&d.frame)?;
            progress.frame();
            next += 1;
            pool.give(d.frame);
            // Over budget: stop after this frame; the dataset is dropped, nothing is left.
            memory.check_budget()?;
        }
    }
    if let Some(w) = window {
        memory.detail(|| format!("episode {episode}, chunk {w} written"));
    }
    if let Some(seq) = parked.keys().next() {
        return Err(Error::Conversion(format!(
            "internal: frame {next} never arrived (frame {seq} did)"
        )));
    }
    Ok(())
}

fn align_error(bag: &str, e: AlignError) -> Error {
    Error::Align {
        bag: bag.to_string(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(size: usize) -> FramePool {
        let pool = FramePool {
            free: Mutex::new(Vec::new()),
            returned: Condvar::new(),
            size,
            workers: 1,
        };
        pool.fill();
        pool
    }

    #[test]
    fn the_frame_given_back_last_is_taken_first() {
        // A queue would hand out every frame of the pool in turn, each getting its own
        // picture buffers; a stack reuses the few in flight.
        let pool = pool(8);
        let wait = Duration::from_millis(1);
        for round in 0..20 {
            let mut a = pool.take(wait).unwrap();
            let mut b = pool.take(wait).unwrap();
            if round == 0 {
                a.values.push(1.0);
                b.values.push(2.0);
            }
            assert_eq!(
                (a.values.as_slice(), b.values.as_slice()),
                (&[1.0][..], &[2.0][..])
            );
            pool.give(b);
            pool.give(a);
        }
        assert_eq!(pool.free_count(), 8);
        let untouched = (0..8)
            .filter_map(|_| pool.take(wait))
            .filter(|f| f.values.is_empty())
            .count();
        assert_eq!(untouched, 6, "only the two frames in flight were used");
        assert!(
            pool.take(wait).is_none(),
            "an empty pool waits, then gives nothing"
        );
        pool.fill();
        assert_eq!(pool.free_count(), 8, "fill puts back the frames lost");
    }
}
