//! The streaming pipeline under failure: whichever stage fails (writer, decode worker,
//! aligner), the episode stops with that stage's error and never hangs; frames reach the
//! writer in order however the decode workers interleave.

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use bagstream::config::Config;
use bagstream::convert::plan_episode;
use bagstream::dataset::{DatasetError, DatasetWriter, EpisodeSummary, Frame, WriterSummary};
use bagstream::pipeline::run_episode;
use bagstream::progress::Progress;
use common::camera_bag;

/// A writer that records each frame's first pixel byte, optionally slowly, and fails at a
/// given frame.
#[derive(Default)]
struct Probe {
    fail_at: Option<u64>,
    sleep: Duration,
    firsts: Vec<u8>,
}

impl DatasetWriter for Probe {
    fn begin_episode(&mut self, _: &str, _: u64) -> Result<(), DatasetError> {
        Ok(())
    }
    fn write_frame(&mut self, f: &Frame) -> Result<(), DatasetError> {
        if Some(self.firsts.len() as u64) == self.fail_at {
            return Err(DatasetError::Invalid("the probe writer fails".into()));
        }
        std::thread::sleep(self.sleep);
        self.firsts
            .push(f.images.first().map_or(0, |i| i.rgb.data[0]));
        Ok(())
    }
    fn end_episode(&mut self, _: serde_json::Value) -> Result<EpisodeSummary, DatasetError> {
        unreachable!("run_episode does not end episodes")
    }
    fn finish(self: Box<Self>) -> Result<WriterSummary, DatasetError> {
        unreachable!("run_episode does not finish datasets")
    }
}

/// `n` pictures on `/cam` at 30 Hz, message i of value i % 256; `skip(i)` leaves it out and
/// `size(i)` gives its size.
fn bag(path: &Path, n: u32, skip: impl Fn(u32) -> bool, size: impl Fn(u32) -> (u32, u32)) {
    camera_bag(path, n, 30, "rgb8", skip, size, |i| (i % 256) as u8);
}

/// Runs one episode with 0.1 s windows on another thread; a minute without an answer is a
/// hang.
fn run(config: &str, bag: &Path, mut probe: Probe) -> (bagstream::Result<u64>, Vec<u8>) {
    let (tx, rx) = mpsc::channel();
    let config = Config::parse(config).unwrap();
    let bag = bag.to_path_buf();
    std::thread::spawn(move || {
        let plan = plan_episode(&config, &bag, &mut |_| {}).unwrap();
        let progress = Progress::new(false, 1);
        let memory = bagstream::memory::MemoryMonitor::quiet();
        let pool = bagstream::pipeline::FramePool::for_spec(&plan.spec);
        let r = run_episode(plan, 100_000_000, &mut probe, &progress, &memory, 0, &pool)
            .map(|(r, _)| r.frames);
        let _ = tx.send((r, probe.firsts));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the pipeline hung")
}

const CONFIG: &str = "fps: 30\ntask: t\nfeatures:\n  cam: {topic: /cam, type: image}\n";

fn probe(fail_at: Option<u64>, sleep_ms: u64) -> Probe {
    Probe {
        fail_at,
        sleep: Duration::from_millis(sleep_ms),
        ..Probe::default()
    }
}

#[test]
fn frames_arrive_in_order_with_any_writer_speed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.bag");
    bag(&p, 400, |_| false, |_| (64, 48));
    for sleep_ms in [0, 2] {
        let (r, firsts) = run(CONFIG, &p, probe(None, sleep_ms));
        assert_eq!(r.unwrap(), 400);
        for (k, v) in firsts.iter().enumerate() {
            assert_eq!(
                *v,
                (k % 256) as u8,
                "frame {k} (writer sleeping {sleep_ms} ms)"
            );
        }
    }
}

#[test]
fn a_failing_writer_stops_the_episode_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.bag");
    bag(&p, 400, |_| false, |_| (64, 48));
    for at in [0, 1, 5, 100, 390] {
        let (r, firsts) = run(CONFIG, &p, probe(Some(at), 0));
        let e = r.expect_err("the writer fails");
        assert!(
            e.to_string().contains("the probe writer fails"),
            "at {at}: {e}"
        );
        assert_eq!(firsts.len() as u64, at);
    }
}

#[test]
fn a_failing_decode_stops_the_episode_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.bag");
    for bad in [1, 7, 300, 399] {
        bag(
            &p,
            400,
            |_| false,
            |i| if i == bad { (32, 24) } else { (64, 48) },
        );
        for sleep_ms in [0, 1] {
            let (r, firsts) = run(CONFIG, &p, probe(None, sleep_ms));
            let e = r.expect_err("decode fails").to_string();
            assert!(
                e.contains("topic /cam") && e.contains("set `resize`"),
                "{e}"
            );
            assert!(
                firsts.len() <= bad as usize,
                "frames past the bad one were written"
            );
        }
    }
}

#[test]
fn a_failing_alignment_stops_the_episode_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.bag");
    bag(&p, 400, |i| (200..220).contains(&i), |_| (64, 48));
    let config = CONFIG.replace("type: image}", "type: image, on_missing: fail}");
    let (r, firsts) = run(&config, &p, probe(None, 0));
    let e = r.expect_err("a gap with on_missing: fail").to_string();
    assert!(e.contains("cam <- /cam"), "{e}");
    assert!(firsts.len() <= 200, "{}", firsts.len());
}

#[test]
fn an_aligner_done_early_still_writes_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.bag");
    bag(&p, 600, |_| false, |_| (64, 48));
    // The grid ends 10 s before the bag: the reader stops early, the workers drain.
    let config = CONFIG.replace("task: t\n", "task: t\ntimeline: {trim_end: 10}\n");
    let (r, firsts) = run(&config, &p, probe(None, 1));
    let n = r.unwrap();
    assert_eq!(n as usize, firsts.len());
    assert!((290..=300).contains(&n), "{n}");
    for (k, v) in firsts.iter().enumerate() {
        assert_eq!(*v, (k % 256) as u8, "frame {k}");
    }
}
