//! The command line contract: subcommands, outputs, exit statuses and one-line errors.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn bagstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn inspect_prints_what_rosbag_info_prints() {
    let bag = fixture("teleop_lz4.bag");
    let o = bagstream(&["inspect", p(&bag)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for want in [
        "version:     2.0",
        "duration:",
        "start:",
        "end:",
        "size:",
        "compression: lz4",
        "chunks:",
        "/joint_states",
        "sensor_msgs/JointState",
        "@ 100.0 Hz",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let o = bagstream(&["inspect", "--json", p(&bag)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let joint = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "/joint_states")
        .unwrap();
    assert_eq!(joint["type"], "sensor_msgs/JointState");
    assert_eq!(joint["messages"], 300);
    assert!((joint["rate_hz"].as_f64().unwrap() - 100.0).abs() < 0.01);
    assert_eq!(v["compression"]["lz4"], v["chunks"]);
}

#[test]
fn config_template_is_a_config_that_converts() {
    let bag = fixture("teleop_lz4.bag");
    let o = bagstream(&["inspect", "--config-template", p(&bag)]);
    assert!(o.status.success());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.yaml");
    std::fs::write(&cfg, &o.stdout).unwrap();
    let out = dir.path().join("ds");
    let o = bagstream(&[
        "convert",
        "-q",
        "--config",
        p(&cfg),
        "--out",
        p(&out),
        p(&bag),
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stderr),
        text(&std::fs::read(&cfg).unwrap())
    );
}

#[test]
fn convert_prints_one_summary_line_and_validate_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    // Without -q: the details, then the summary line (-q: tests/cli_messages.rs).
    let o = bagstream(&[
        "convert",
        "--config",
        p(&fixture("teleop.yaml")),
        "--out",
        p(&out),
        p(&fixture("teleop_lz4.bag")),
        p(&fixture("teleop_bz2.bag")),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("episodes 2, frames "), "{last}");
    assert!(
        last.contains("frames dropped") && last.contains("peak RSS"),
        "{last}"
    );
    // The fixture config has a camera: its encoder's memory is reported on its own.
    assert!(last.contains("(+ 1 ffmpeg encoder, peak RSS "), "{last}");
    assert!(
        stdout.contains("observation.images.camera <- /camera/image_raw: decoded 30 of "),
        "{stdout}"
    );
    let o = bagstream(&["validate", p(&out)]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    // An existing dataset without --append: usage error; with --append: two more episodes.
    let o = bagstream(&[
        "convert",
        "-q",
        "--config",
        p(&fixture("teleop.yaml")),
        "--out",
        p(&out),
        p(&fixture("teleop_lz4.bag")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--append"));
    let o = bagstream(&[
        "convert",
        "-q",
        "--append",
        "--task",
        "another task",
        "--config",
        p(&fixture("teleop.yaml")),
        "--out",
        p(&out),
        p(&fixture("teleop_none.bag")),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta/info.json")).unwrap()).unwrap();
    assert_eq!(info["total_episodes"], 3);
    assert_eq!(info["total_tasks"], 2);
    let o = bagstream(&["validate", p(&out)]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    // Nothing but the dataset is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ds"]);
}

#[test]
fn temporaries_of_killed_runs_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    // A pid far above any pid_max: that process is gone.
    let stale = dir.path().join(".ds.bagstream-tmp-2000000000");
    std::fs::create_dir_all(stale.join("meta")).unwrap();
    let o = bagstream(&[
        "convert",
        "-q",
        "--config",
        p(&fixture("teleop.yaml")),
        "--out",
        p(&out),
        p(&fixture("teleop_lz4.bag")),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!stale.exists());
}

#[test]
fn usage_and_config_errors_exit_2_with_one_line() {
    // Config errors, each checked for its message and for what is left behind, are in
    // tests/hostile_config.rs; here, what the command line adds.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let bag = fixture("teleop_lz4.bag");
    let cases: Vec<(&str, &str)> = vec![(
        "fps: 10\nfeatures:\n  a: {topic: /joint_states, field: position}\n",
        "no task: give `task:` in the config or --task",
    )];
    for (i, (cfg, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&path, cfg).unwrap();
        let o = bagstream(&[
            "convert",
            "-q",
            "--config",
            p(&path),
            "--out",
            p(&out),
            p(&bag),
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cfg}: {err}");
        assert_eq!(err.lines().count(), 1, "{cfg}: {err}");
        assert!(
            err.starts_with("bagstream: error: ") && err.contains(want),
            "{cfg}: {err}"
        );
        assert!(!out.exists());
    }
    // Command-line misuse is also status 2.
    assert_eq!(bagstream(&["convert", "--out", "x"]).status.code(), Some(2));
    assert_eq!(bagstream(&["frobnicate"]).status.code(), Some(2));
    let o = bagstream(&[
        "convert",
        "--config",
        p(&fixture("teleop.yaml")),
        "--out",
        p(&out),
        "--chunk-secs",
        "0",
        p(&bag),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_missing_or_broken_bag_is_a_conversion_failure_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bag");
    std::fs::write(&junk, b"this is not a bag at all").unwrap();
    for (bag, code) in [(junk.as_path(), 1), (Path::new("/nonexistent/x.bag"), 2)] {
        let o = bagstream(&["inspect", p(bag)]);
        assert_eq!(o.status.code(), Some(code));
        assert!(text(&o.stderr).contains(p(bag)), "{}", text(&o.stderr));
    }
}

#[test]
fn help_has_examples() {
    let o = bagstream(&["--help"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("Examples:"));
    let o = bagstream(&["convert", "--help"]);
    assert!(text(&o.stdout).contains("--chunk-secs") && text(&o.stdout).contains("Examples:"));
}

#[test]
fn video_options_and_a_missing_ffmpeg_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let config = fixture("teleop.yaml");
    let base = ["convert", "-q", "--config", p(&config), "--out", p(&out)];
    let run = |extra: &[&str], ffmpeg: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bagstream"));
        cmd.args(base)
            .args(extra)
            .arg(p(&fixture("teleop_lz4.bag")));
        if let Some(f) = ffmpeg {
            cmd.env("BAGSTREAM_FFMPEG", f);
        }
        cmd.output().unwrap()
    };
    for (extra, ffmpeg, want) in [
        (&["--vcodec", "vp9"][..], None, "invalid value 'vp9'"),
        (
            &["--vcodec", "h264", "--crf", "60"][..],
            None,
            "--crf 60: h264 takes 0 to 51",
        ),
        (
            &[][..],
            Some("/nonexistent/ffmpeg"),
            "BAGSTREAM_FFMPEG=/nonexistent/ffmpeg is not an executable file",
        ),
    ] {
        let o = run(extra, ffmpeg);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} left {}", out.display());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary left"
    );
}

#[test]
fn sweep_compares_chunk_sizes_and_finds_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("sweep.svg");
    let o = bagstream(&[
        "sweep",
        "--config",
        p(&fixture("teleop.yaml")),
        "--chunk-secs",
        "0.05,0.5,4",
        "--plot",
        p(&plot),
        p(&fixture("teleop_lz4.bag")),
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("chunk s") && lines[0].contains("peak RSS"),
        "{out}"
    );
    assert!(
        lines[0].contains("frames/s") && lines[0].contains("bag MiB/s"),
        "{out}"
    );
    for (line, c) in lines[1..4].iter().zip(["0.05", "0.5", "4"]) {
        assert_eq!(line.split_whitespace().next(), Some(c), "{out}");
        assert!(line.contains(" MiB"), "{line}");
    }
    // What each memory column is, under the table.
    assert_eq!(
        lines[4],
        "peak RSS: the converter's VmHWM; end anon: its RssAnon at the end; encoders: the sum of each ffmpeg encoder's VmHWM at its exit",
        "{out}"
    );
    assert_eq!(lines[5], "outputs: identical for every chunk size", "{out}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("peak memory against chunk size"));
    assert!(svg.contains("throughput against chunk size"));
    // A config error is found once, before any child runs.
    let o = bagstream(&[
        "sweep",
        "--config",
        "/nonexistent.yaml",
        p(&fixture("teleop_lz4.bag")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent.yaml"));
}
