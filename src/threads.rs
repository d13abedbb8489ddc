//! `--threads N`: one cap on the threads of a whole run, split among its concurrent jobs and,
//! within a job, among its stages, so that `--jobs` times the stages' threads does not
//! oversubscribe the CPU (docs/scale.md, "Threads").
//!
//! Per job, of its share `t = max(1, threads / jobs)`:
//! - the bag reader decompresses the next block on a second thread when `t >= 2`;
//! - camera decode workers: `t`, at most [`crate::pipeline::MAX_DECODE_WORKERS`] (they and the
//!   encoders take turns: a frame is decoded, then encoded);
//! - each ffmpeg encoder: `max(1, t / encoders)` threads (x264/x265 `-threads`, SVT-AV1 `lp`),
//!   with `t` the whole cap: the run has one writer, so one set of encoders, whatever the jobs.
//!
//! The pipeline's reader, aligner and writer threads mostly wait on each other and are not
//! counted. Thread counts do not change the output: the aligner is one thread, decode workers
//! return frames in order, and SVT-AV1 and x264 give the same pictures for any thread count
//! (checked for lp/threads 1, 2 and 4).

/// How many threads each stage of one job gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobThreads {
    /// This job's share of the cap.
    pub share: usize,
}

impl JobThreads {
    /// The share of one of `jobs` jobs under a cap of `threads` (0: the machine's cores).
    pub fn new(threads: usize, jobs: usize) -> JobThreads {
        let threads = if threads == 0 {
            machine_cores()
        } else {
            threads
        };
        JobThreads {
            share: (threads / jobs.max(1)).max(1),
        }
    }

    /// Read the next block on a second thread.
    pub fn parallel_reads(&self) -> bool {
        self.share >= 2
    }

    /// Camera decode workers (with cameras).
    pub fn decode_workers(&self, max: usize) -> usize {
        self.share.clamp(1, max.max(1))
    }

    /// Threads of each of `encoders` ffmpeg encoders.
    pub fn encoder_threads(&self, encoders: usize) -> usize {
        (self.share / encoders.max(1)).max(1)
    }
}

impl Default for JobThreads {
    /// One job with the whole machine.
    fn default() -> JobThreads {
        JobThreads::new(0, 1)
    }
}

/// The machine's cores as the process may use them (cgroup and affinity limits included).
pub fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_split_the_cap_and_never_get_zero() {
        let t = JobThreads::new(8, 2);
        assert_eq!(t.share, 4);
        assert!(t.parallel_reads());
        assert_eq!(t.decode_workers(8), 4);
        assert_eq!(t.decode_workers(2), 2);
        assert_eq!(t.encoder_threads(3), 1);
        assert_eq!(t.encoder_threads(2), 2);
        let one = JobThreads::new(2, 4);
        assert_eq!(one.share, 1);
        assert!(!one.parallel_reads());
        assert_eq!(one.decode_workers(8), 1);
        assert_eq!(one.encoder_threads(3), 1);
        // Never more than the cap in total over the stages that compute.
        for threads in 1..=16 {
            for jobs in 1..=8 {
                let t = JobThreads::new(threads, jobs);
                assert!(t.share * jobs <= threads.max(jobs));
            }
        }
    }
}
