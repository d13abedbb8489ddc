//! The streaming pipeline of one episode, each stage on its own thread:
//!
//! ```text
//! chunk reader --(windows of samples, bounded)--> aligner --(frames, bounded)--> writer
//!      ^                                                                           |
//!      +-------- (stop flag)                   aligner <--(frame buffers, recycled)-+
//! ```
//!
//! The reader reads one `--chunk-secs` window at a time and decodes only the configured
//! fields; the bounded channels make a slow writer hold the reader back, so memory stays at a
//! few windows whatever the bag's length.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::bounded;

use crate::align::{AlignError, Aligned, Aligner, SyncReport};
use crate::bag::RawMessage;
use crate::convert::EpisodePlan;
use crate::dataset::{DatasetWriter, Frame};
use crate::progress::Progress;
use crate::{Error, Result, Time};

/// Windows in flight between reader and aligner.
const WINDOWS_IN_FLIGHT: usize = 2;
/// Frames in flight between aligner and writer.
const FRAMES_IN_FLIGHT: usize = 64;

/// A decoded sample: the values one source takes from one message.
struct Sample {
    source: usize,
    stamp: Time,
    recv: Time,
    values: Vec<f32>,
}

enum Batch {
    Samples {
        samples: Vec<Sample>,
        bytes: u64,
    },
    /// The reader got through the whole read range.
    End,
}

/// Stream one planned bag into the writer's current episode; returns the sync report.
pub fn run_episode(
    plan: EpisodePlan,
    chunk: Time,
    writer: &mut dyn DatasetWriter,
    progress: &Progress,
) -> Result<SyncReport> {
    let by_conn = plan.sources_by_connection();
    let EpisodePlan {
        path,
        mut bag,
        sources,
        grid,
        read_start,
        read_end,
        spec,
    } = plan;
    let bag_name = &path.display().to_string();
    let wanted: Vec<bool> = by_conn.iter().map(|s| !s.is_empty()).collect();
    let frame_len = spec.vector_len();
    let rules = sources.iter().map(|s| s.rule.clone()).collect();
    let stop_flag = AtomicBool::new(false);
    let stop = &stop_flag;
    let writer_gone_flag = AtomicBool::new(false);
    let writer_gone = &writer_gone_flag;

    let (batch_tx, batch_rx) = bounded::<Batch>(WINDOWS_IN_FLIGHT);
    let (frame_tx, frame_rx) = bounded::<Frame>(FRAMES_IN_FLIGHT);
    let (recycle_tx, recycle_rx) = bounded::<Vec<f32>>(FRAMES_IN_FLIGHT + 2);

    std::thread::scope(|scope| {
        let reader = scope.spawn(|| -> Result<()> {
            // Owned here, so that the channel closes however this thread ends.
            let batch_tx = batch_tx;
            let mut raw: Vec<RawMessage> = Vec::new();
            let mut start = read_start;
            while start < read_end && !stop.load(Ordering::Relaxed) {
                let end = start.saturating_add(chunk).min(read_end);
                raw.clear();
                bag.read_window(start, end, &wanted, &mut raw)?;
                let bytes = raw.iter().map(|m| m.range.len() as u64).sum();
                let mut samples = Vec::with_capacity(raw.len());
                for m in &raw {
                    for &s in &by_conn[m.conn] {
                        let src = &sources[s];
                        let decode_err = |e: crate::msg::DecodeError| Error::Decode {
                            bag: bag_name.to_string(),
                            topic: src.topic.clone(),
                            field: src.field.clone(),
                            detail: format!("message at {:.9} s: {e}", m.time as f64 / 1e9),
                        };
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
                        let stamp = match &src.stamps[m.conn] {
                            Some(r) => r.read(m.data()).map_err(decode_err)?,
                            None => m.time,
                        };
                        samples.push(Sample {
                            source: s,
                            stamp,
                            recv: m.time,
                            values,
                        });
                    }
                }
                // Let go of this window's chunks before the next window reads its own.
                raw.clear();
                // A closed channel means a later stage stopped; its error is the one reported.
                if batch_tx.send(Batch::Samples { samples, bytes }).is_err() {
                    return Ok(());
                }
                // Skip stretches without any chunk: they hold no message.
                start = bag
                    .summary()
                    .next_data_time(end)
                    .map_or(read_end, |t| t.max(end));
            }
            let _ = batch_tx.send(Batch::End);
            Ok(())
        });

        let aligner = scope.spawn(move || -> Result<Option<SyncReport>> {
            let mut aligner: Aligner<Vec<f32>> = Aligner::new(grid, rules);
            let mut closed = false;
            let mut emit = |f: Aligned<'_, Vec<f32>>| {
                if closed {
                    return;
                }
                let mut values = recycle_rx.try_recv().unwrap_or_default();
                values.clear();
                values.reserve(frame_len);
                for v in f.values {
                    values.extend_from_slice(v);
                }
                if frame_tx.send(Frame { values }).is_err() {
                    // The writer hung up (it failed): stop the reader too; the writer's error
                    // is the one reported.
                    closed = true;
                    writer_gone.store(true, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                }
            };

            for batch in batch_rx.iter() {
                match batch {
                    Batch::Samples { samples, bytes } => {
                        for s in samples {
                            aligner
                                .push(s.source, s.stamp, s.recv, s.values, &mut emit)
                                .map_err(|e| align_error(bag_name, e))?;
                        }
                        progress.bytes(bytes);
                        if writer_gone.load(Ordering::Relaxed) {
                            return Ok(None);
                        }
                        if aligner.is_done() {
                            // Every tick is decided: the rest of the range cannot matter.
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    Batch::End => {
                        let report = aligner
                            .finish(&mut emit)
                            .map_err(|e| align_error(bag_name, e))?;
                        return Ok(Some(report));
                    }
                }
            }
            if aligner.is_done() {
                return Ok(Some(
                    aligner
                        .finish(&mut emit)
                        .map_err(|e| align_error(bag_name, e))?,
                ));
            }
            Ok(None)
        });

        let mut write_result: Result<()> = Ok(());
        for frame in frame_rx.iter() {
            if let Err(e) = writer.write_frame(&frame) {
                write_result = Err(e.into());
                break;
            }
            progress.frame();
            let _ = recycle_tx.try_send(frame.values);
        }
        // Unblock the aligner and reader if the writer stopped early.
        drop(frame_rx);
        let aligned = aligner.join().expect("aligner thread panicked");
        let read = reader.join().expect("reader thread panicked");
        read?;
        let report = aligned?;
        write_result?;
        report.ok_or_else(|| Error::Conversion(format!("{bag_name}: the reader stopped early")))
    })
}

fn align_error(bag: &str, e: AlignError) -> Error {
    Error::Conversion(format!("{bag}: {e}"))
}
