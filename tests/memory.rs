//! Memory as an output: the memory log survives a SIGKILL with a complete last line, a budget
//! below the estimate is refused before any work, and a budget passed mid-run stops the run
//! cleanly without a dataset.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions};
use bagstream::memory::{parse_line, MemoryOptions};
use bagstream::synth::{write_teleop_bag, TeleopSpec};
use common::*;

/// The fixture config without its camera: numbers only, no ffmpeg.
fn numeric_config() -> String {
    let text = std::fs::read_to_string(fixture("teleop.yaml")).unwrap();
    let cut = text.find("  observation.images.camera:").unwrap();
    text[..cut].to_string()
}

fn options(config: &str, bag: &Path, out: &Path, memory: MemoryOptions) -> ConvertOptions {
    ConvertOptions {
        config: Config::parse(config).unwrap(),
        bags: vec![bag.to_path_buf()],
        out: out.to_path_buf(),
        chunk_secs: 0.5,
        task: None,
        append: false,
        progress: false,
        video: Default::default(),
        memory,
        check_estimate: true,
        keep_going: false,
    }
}

#[test]
fn a_killed_run_leaves_a_complete_last_log_line_and_no_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("long.bag");
    let spec = TeleopSpec {
        seconds: 60.0,
        ..TeleopSpec::default()
    };
    write_teleop_bag(&bag, &spec).unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, numeric_config()).unwrap();
    let out = dir.path().join("ds");
    let log = dir.path().join("mem.log");
    // Millisecond windows: tens of thousands of checkpoints, seconds of work to interrupt.
    let mut child = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--chunk-secs", "0.001", "--memory-log"])
        .arg(&log)
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg(&bag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_log(&mut child, &log, |t| t.lines().count() >= 200);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.ends_with('\n'),
        "the last line is cut: {:?}",
        text.lines().last()
    );
    let last = text.lines().last().unwrap();
    let (level, label, rss) = parse_line(last).unwrap_or_else(|| panic!("{last}"));
    assert_eq!(level, "INFO");
    assert!(
        label.starts_with("episode 0, chunk ") || label.starts_with("sample"),
        "{label}"
    );
    assert!(rss > 0);
    assert!(text.lines().all(|l| parse_line(l).is_some()));
    assert!(!out.exists(), "a killed run left a dataset");
}

#[test]
fn a_budget_under_the_estimate_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--max-rss", "2M", "--config"])
        .arg(fixture("teleop.yaml"))
        .arg("--out")
        .arg(&out)
        .arg(fixture("teleop_lz4.bag"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the estimated peak memory") && err.contains("is over --max-rss 2.1 MB"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.exists());

    // A budget the estimate fits in converts.
    let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--max-rss", "2G", "--config"])
        .arg(fixture("teleop.yaml"))
        .arg("--out")
        .arg(&out)
        .arg(fixture("teleop_lz4.bag"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_estimate_suggests_a_window_that_fits() {
    // A bag of large chunks: the window size decides the estimate.
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("cam.bag");
    let spec = TeleopSpec {
        seconds: 4.0,
        camera_hz: 30.0,
        camera_size: (320, 240),
        chunk_size: 1 << 20,
        ..TeleopSpec::default()
    };
    write_teleop_bag(&bag, &spec).unwrap();
    let config = Config::parse(&numeric_config()).unwrap();
    let plan = bagstream::convert::plan_episode(&config, &bag, &mut |_| {}).unwrap();
    let big = bagstream::convert::estimate_peak(&plan, 2_000_000_000);
    let small = bagstream::convert::estimate_peak(&plan, 100_000_000);
    assert!(big > small + 10_000_000, "{big} vs {small}");
    let budget = (big + small) / 2;
    let out = dir.path().join("ds");
    let mut opts = options(
        &numeric_config(),
        &bag,
        &out,
        MemoryOptions {
            max_rss: Some(budget),
            ..MemoryOptions::default()
        },
    );
    opts.chunk_secs = 2.0;
    let e = convert(&opts).expect_err("over budget");
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(msg.contains("try --chunk-secs "), "{msg}");
    let suggested: f64 = msg
        .rsplit("try --chunk-secs ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(suggested < 2.0);
    opts.chunk_secs = suggested;
    convert(&opts).unwrap();
}

#[test]
fn a_budget_passed_mid_run_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let log = dir.path().join("mem.log");
    let mut opts = options(
        &numeric_config(),
        &fixture("teleop_lz4.bag"),
        &out,
        MemoryOptions {
            log: Some(log.clone()),
            // Below any process: passed at the first checkpoint after the estimate.
            max_rss: Some(1),
            ..MemoryOptions::default()
        },
    );
    opts.check_estimate = false;
    let e = convert(&opts).expect_err("over budget");
    let msg = e.to_string();
    assert!(
        msg.contains("memory budget exceeded") && msg.contains("at `start`"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 1);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the memory log is left"
    );
    assert!(std::fs::read_to_string(&log).unwrap().lines().count() >= 2);
}

#[test]
fn the_memory_plot_marks_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let plot = dir.path().join("mem.svg");
    let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--max-rss", "2G", "--memory-plot"])
        .arg(&plot)
        .arg("--config")
        .arg(fixture("teleop.yaml"))
        .arg("--out")
        .arg(&out)
        .arg(fixture("teleop_lz4.bag"))
        .arg(fixture("teleop_bz2.bag"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("memory: converter peak RSS "), "{stdout}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("bagstream converter RSS (peak "));
    for label in [
        "start",
        "episode 0 started",
        "episode 1 finished",
        "--max-rss",
    ] {
        assert!(svg.contains(label), "the plot does not show `{label}`");
    }
}

/// The peak RSS of each episode of a run, from its memory log: a line counts for the episode
/// its label (or, for a sample, the checkpoint before it) names; lines before the first
/// episode count for none.
fn episode_peaks(log: &str) -> Vec<u64> {
    let mut peaks: Vec<u64> = Vec::new();
    let mut current = None;
    for line in log.lines() {
        let (_, label, rss) = parse_line(line).unwrap_or_else(|| panic!("{line}"));
        if let Some(rest) = label.split("episode ").nth(1) {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            current = n.parse::<usize>().ok();
        }
        if let Some(e) = current {
            if peaks.len() <= e {
                peaks.resize(e + 1, 0);
            }
            peaks[e] = peaks[e].max(rss);
        }
    }
    peaks
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[test]
fn many_episodes_do_not_grow_the_converter() {
    // 24 episodes of the bz2 fixture in one run. Before glibc's mmap threshold was held fixed
    // (src/alloc.rs), each bz2 chunk's 3.6 MB decoder table stayed in one more malloc arena
    // after another: the late episodes peaked 20 MB above the first. The run's own first
    // episode is the reference, so the machine's load and the build do not matter; what is
    // left is the dataset writer's state created at the first episode's end (about 1 MB), the
    // arenas settling (about 1 MB) and the metadata kept per episode (about 16 KB each).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let log = dir.path().join("mem.log");
    let bag = fixture("teleop_bz2.bag");
    let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--memory-log"])
        .arg(&log)
        .arg("--config")
        .arg(fixture("teleop.yaml"))
        .arg("--out")
        .arg(&out)
        .args(std::iter::repeat_n(&bag, 24))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let peaks = episode_peaks(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(peaks.len(), 24);
    let first = peaks[0];
    let late = peaks[16..].iter().copied().max().unwrap();
    let all: Vec<String> = peaks.iter().map(|&p| mb(p)).collect();
    assert!(
        late < first + 6_000_000,
        "episodes 16-23 peak at {} against {} in episode 0; per episode: {}",
        mb(late),
        mb(first),
        all.join(", ")
    );
}

#[test]
fn peak_rss_does_not_grow_with_an_uncompressed_camera_bag() {
    // Uncompressed 1 MiB chunks, a 320x240 raw camera at 30 Hz: 7 MB of bag per second, more
    // chunks in flight than the chunk pool keeps, so chunk buffers are freed and allocated
    // all along. With glibc's mmap threshold free to rise, they came from heaps that grew
    // with the bag: 10 s peaked at 58-61 MB, 40 s at 68-73 MB (1.14-1.25x).
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "fps: 30\ntask: t\nfeatures:\n  observation.state:\n    topic: /joint_states\n    \
         field: position\n  observation.images.camera:\n    topic: /camera/image_raw\n",
    )
    .unwrap();
    let peak = |seconds: f64| -> u64 {
        let bag = dir.path().join(format!("{seconds}.bag"));
        let spec = TeleopSpec {
            seconds,
            compression: bagstream::bag::Compression::None,
            chunk_size: 1 << 20,
            camera_hz: 30.0,
            camera_size: (320, 240),
            ..TeleopSpec::default()
        };
        write_teleop_bag(&bag, &spec).unwrap();
        let out = dir.path().join("ds");
        let summary = dir.path().join("summary.json");
        let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
            .args(["convert", "-q", "--vcodec", "h264", "--summary-json"])
            .arg(&summary)
            .arg("--config")
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .arg(&bag)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::remove_dir_all(&out).unwrap();
        std::fs::remove_file(&bag).unwrap();
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        s["peak_rss"].as_u64().expect("peak_rss in the summary")
    };
    let short = peak(10.0);
    let long = peak(40.0);
    assert!(
        (long as f64) < short as f64 * 1.10,
        "40 s of bag peaked at {}, 10 s at {} ({:.3}x)",
        mb(long),
        mb(short),
        long as f64 / short as f64
    );
}
