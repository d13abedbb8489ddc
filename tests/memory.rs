//! Memory as an output: the memory log survives a SIGKILL with a complete last line, a budget
//! below the estimate is refused before any work with a window that then fits the whole run,
//! a budget passed mid-run stops the run cleanly without a dataset, and every figure the run
//! reports says what it is.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bagstream::bag::ros1::Compression;
use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions};
use bagstream::estimate::RunEstimator;
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
        chunk_secs: 0.5,
        memory,
        ..ConvertOptions::new(Config::parse(config).unwrap(), vec![bag.to_path_buf()], out)
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
        err.contains("the estimated peak memory") && err.contains("is over --max-rss 2.0 MiB"),
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
fn the_refusal_names_the_estimate_and_the_longest_window_that_fits() {
    // A bag of large chunks: the window size decides the estimate.
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("cam.bag");
    write_teleop_bag(&bag, &big_chunk_spec()).unwrap();
    let config = Config::parse(&numeric_config()).unwrap();
    let plan = bagstream::convert::plan_episode(&config, &bag, &mut |_| {}).unwrap();
    let run = |chunk: i64| {
        let mut e = RunEstimator::new(chunk, 1_000_000);
        e.add(&plan);
        e.add(&plan);
        e
    };
    let now = 10_000_000;
    let (big, small) = (
        run(2_000_000_000).estimate(now),
        run(100_000_000).estimate(now),
    );
    assert!(big.total() > small.total() + 10_000_000, "{big} vs {small}");
    assert_eq!(big.now, now);
    assert!(big.windows > small.windows && big.pipeline == small.pipeline);
    // Two episodes: the second may find the first one's windows kept by the allocator.
    assert!(big.episodes > big.windows, "{big}");

    let budget = (big.total() + small.total()) / 2;
    let msg = run(2_000_000_000).check(budget, now).unwrap_err();
    assert!(
        msg.starts_with("2 bags: the estimated peak memory ")
            && msg.contains(&format!("{big} is over --max-rss "))
            && msg.contains("with --chunk-secs 2; try --chunk-secs "),
        "{msg}"
    );
    let suggested: f64 = msg
        .rsplit("try --chunk-secs ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let c = (suggested * 1e9).round() as i64;
    // With 1 MiB to spare, so that a run whose figure `now` is a little higher fits too.
    let room = budget - (1 << 20);
    assert!(run(c).estimate(now).total() <= room, "{msg}");
    assert!(
        run(2 * c).estimate(now).total() > room,
        "not the longest: {msg}"
    );
    assert!(run(2_000_000_000).check(big.total(), now).is_ok());
    let msg = run(2_000_000_000).check(now, now).unwrap_err();
    assert!(msg.contains("no --chunk-secs fits it"), "{msg}");
}

/// A 4 s episode with a 320x240 raw camera at 30 Hz in 1 MiB chunks: windows of megabytes.
fn big_chunk_spec() -> TeleopSpec {
    TeleopSpec {
        seconds: 4.0,
        camera_hz: 30.0,
        camera_size: (320, 240),
        chunk_size: 1 << 20,
        compression: Compression::Lz4,
        ..TeleopSpec::default()
    }
}

/// `bagstream convert -q ARGS`.
fn bagstream_convert(args: &[OsString]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q"])
        .args(args)
        .output()
        .unwrap()
}

/// The figure of `the estimated peak memory 23.9 MiB (...)`, in bytes.
fn estimate_in(stderr: &str) -> Option<u64> {
    let rest = stderr.split("the estimated peak memory ").nth(1)?;
    let mut words = rest.split_whitespace();
    let n: f64 = words.next()?.parse().ok()?;
    // Printed as format_bytes prints: binary units, one decimal.
    let unit = match words.next()? {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * unit) as u64)
}

/// The converter's peak RSS from `--summary-json`.
fn peak_in(summary: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    v["peak_rss"].as_u64().unwrap()
}

/// One run's input: the config (and codec options) and its bags.
struct Input {
    name: &'static str,
    args: Vec<OsString>,
    bags: Vec<PathBuf>,
    /// The bags hold several blocks, so a smaller window lowers the estimate; else the only
    /// honest answer just under the estimate is that no window fits.
    windowed: bool,
}

#[test]
fn the_estimate_and_its_suggested_window_hold_for_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let numeric = dir.path().join("numeric.yaml");
    std::fs::write(&numeric, numeric_config()).unwrap();
    let config = |c: &Path, codec: Option<&str>| {
        let mut a: Vec<OsString> = vec!["--config".into(), c.into()];
        if let Some(codec) = codec {
            a.extend(["--vcodec".into(), codec.into()]);
        }
        a
    };
    let (lz4, bz2) = (fixture("teleop_lz4.bag"), fixture("teleop_bz2.bag"));
    let mut inputs = vec![
        Input {
            name: "1 lz4 bag, numbers",
            args: config(&numeric, None),
            windowed: true,
            bags: vec![lz4.clone()],
        },
        Input {
            name: "5 bz2 bags, numbers",
            args: config(&numeric, None),
            windowed: true,
            bags: vec![bz2.clone(); 5],
        },
    ];
    if have_ffmpeg() {
        let big = dir.path().join("big.bag");
        write_teleop_bag(&big, &big_chunk_spec()).unwrap();
        inputs.extend([
            Input {
                name: "1 lz4 bag, camera",
                args: config(&fixture("teleop.yaml"), Some("h264")),
                windowed: true,
                bags: vec![lz4.clone()],
            },
            // The run of the issue: its suggestion failed at episode 1.
            Input {
                name: "5 bz2 and lz4 bags, camera (AV1)",
                args: config(&fixture("teleop.yaml"), None),
                windowed: true,
                bags: vec![
                    bz2.clone(),
                    lz4.clone(),
                    bz2.clone(),
                    lz4.clone(),
                    bz2.clone(),
                ],
            },
            Input {
                name: "3 bags of 1 MiB chunks, 320x240 camera",
                args: config(&fixture("teleop.yaml"), Some("h264")),
                windowed: true,
                bags: vec![big; 3],
            },
        ]);
        if let Some(shared) = shared_bags() {
            let s = shared.join("synthetic");
            inputs.push(Input {
                name: "synthetic bz2, lz4 and none, 2 cameras",
                args: config(&fixture("shared-synthetic-cameras.yaml"), Some("h264")),
                windowed: true,
                bags: vec![
                    s.join("ros1_bz2.bag"),
                    s.join("ros1_lz4.bag"),
                    s.join("ros1_none.bag"),
                ],
            });
            // ROS 2 storage: the estimate from MCAP chunk indexes and sqlite3 row sizes.
            inputs.push(Input {
                name: "synthetic MCAP, MCAP zstd, sqlite3 and sqlite3 zstd, 2 cameras",
                args: config(&fixture("shared-synthetic-cameras.yaml"), Some("h264")),
                // Each file is one chunk (MCAP) or one 1 MiB block (sqlite3).
                windowed: false,
                bags: vec![
                    s.join("ros2_mcap"),
                    s.join("ros2_mcap_zstd"),
                    s.join("ros2_sqlite3"),
                    s.join("ros2_sqlite3_msgzstd"),
                ],
            });
        }
    }
    for (i, input) in inputs.iter().enumerate() {
        let name = input.name;
        let run = |extra: &[OsString], out: &str| {
            let mut a: Vec<OsString> = extra.to_vec();
            a.extend(["--out".into(), dir.path().join(format!("{i}-{out}")).into()]);
            a.extend(input.args.iter().cloned());
            a.extend(input.bags.iter().map(OsString::from));
            bagstream_convert(&a)
        };
        let budget = |b: u64| vec![OsString::from("--max-rss"), b.to_string().into()];
        // A budget of one byte: refused, quoting the estimate.
        let o = run(&budget(1), "refused");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        let est = estimate_in(&err).unwrap_or_else(|| panic!("{name}: {err}"));

        // The estimate as the budget: the run fits it, and its peak is under the estimate.
        let summary = dir.path().join(format!("{i}-fits.json"));
        let mut a = budget(est + 1_000_000);
        a.extend(["--summary-json".into(), summary.clone().into()]);
        let o = run(&a, "fits");
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let peak = peak_in(&summary);
        assert!(
            peak < est,
            "{name}: peak RSS {peak} over the estimate {est}"
        );

        // Just under the estimate: refused, with a window that, followed, converts the whole
        // run within the same budget.
        let under = est - 1_000_000;
        let o = run(&budget(under), "under");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        if !input.windowed {
            assert!(err.contains("no --chunk-secs fits it"), "{name}: {err}");
            continue;
        }
        let suggested = err
            .split("try --chunk-secs ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name}: no suggestion: {err}"))
            .to_string();
        let summary = dir.path().join(format!("{i}-suggested.json"));
        let mut a = budget(under);
        a.extend([
            "--chunk-secs".into(),
            suggested.clone().into(),
            "--summary-json".into(),
            summary.clone().into(),
        ]);
        let o = run(&a, "suggested");
        assert!(
            o.status.success(),
            "{name}: --chunk-secs {suggested} under --max-rss {under}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let peak_then = peak_in(&summary);
        assert!(
            peak_then <= under,
            "{name}: peak RSS {peak_then} over the budget {under}"
        );
        eprintln!(
            "{name}: estimate {est}, peak {peak}; under --max-rss {under}: --chunk-secs {suggested}, peak {peak_then}"
        );
    }
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
        .args(["convert", "--max-rss", "2G", "--memory-plot"])
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
    bagstream::rss::format_bytes(bytes)
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
            compression: bagstream::bag::ros1::Compression::None,
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

#[test]
fn every_memory_figure_says_what_it_is_and_the_encoders_have_one_figure() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Two video features: two encoders side by side.
    let config = std::fs::read_to_string(fixture("teleop.yaml")).unwrap()
        + "  observation.images.jpeg:\n    topic: /camera/image_raw/compressed\n";
    let config_path = dir.path().join("two.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let summary = dir.path().join("summary.json");
    let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        // Not -q: it prints the summary line only, and the memory line is checked too.
        .args(["convert", "--vcodec", "h264", "--summary-json"])
        .arg(&summary)
        .arg("--config")
        .arg(&config_path)
        .arg("--out")
        .arg(dir.path().join("ds"))
        .arg(fixture("teleop_lz4.bag"))
        .arg(fixture("teleop_bz2.bag"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {v}"));
    let mb = |k: &str| bagstream::rss::format_bytes(n(k));
    // The kernel's figures, named by their source; nothing sampled is called a peak.
    for gone in ["peak_anon", "encoders_peak", "encoder_peak_rss"] {
        assert!(v.get(gone).is_none(), "`{gone}` is still in {v}");
    }
    assert!(
        n("end_rss") <= n("peak_rss") && n("end_anon") <= n("end_rss"),
        "{v}"
    );
    assert!(n("sampled_anon_max") <= n("peak_rss"), "{v}");
    // start, each episode's start and end, the dataset in place, and the baseline.
    assert!(n("readings") >= 6, "{v}");
    assert_eq!(n("encoders"), 2);
    let memory = stdout.lines().find(|l| l.starts_with("memory: ")).unwrap();
    assert_eq!(
        memory,
        format!(
            "memory: converter peak RSS {} (VmHWM), at the end RSS {} of which anonymous {} (RssAnon); \
             2 ffmpeg encoders, peak RSS {} summed (each encoder's VmHWM at its exit)",
            mb("peak_rss"),
            mb("end_rss"),
            mb("end_anon"),
            mb("encoders_peak_rss")
        )
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.contains(&format!(
            "peak RSS {} (+ 2 ffmpeg encoders, peak RSS {} summed)",
            mb("peak_rss"),
            mb("encoders_peak_rss")
        )),
        "{last}"
    );
    assert!(
        !stdout.contains("peak anonymous") && !stdout.contains("together"),
        "{stdout}"
    );

    // The same figure in the library's summary: the sum of each encoder's own peak.
    let s = convert_video(
        &config,
        &[fixture("teleop_lz4.bag")],
        &dir.path().join("lib"),
        1.0,
        bagstream::video::VideoSettings::for_codec(bagstream::video::Codec::H264),
    )
    .unwrap();
    assert_eq!(s.encoder_peaks.len(), 2);
    let each: Vec<u64> = s.encoder_peaks.iter().map(|p| p.unwrap()).collect();
    assert!(each.iter().all(|&p| p > 1_000_000), "{each:?}");
    assert_eq!(s.encoders_peak_rss, Some(each.iter().sum()));
}
