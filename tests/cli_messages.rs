//! What the command line says: `-q` prints the summary line alone, options that would be
//! ignored are refused, a path that is no bag is a usage error (a rosbag2 directory is named as
//! one), and skipped tests are recorded.

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
fn quiet_prints_the_summary_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture("teleop.yaml");
    let bags = [fixture("teleop_lz4.bag"), fixture("teleop_bz2.bag")];
    let run = |out: &Path, quiet: bool| {
        let mut args = vec!["convert", "--config", p(&config), "--out", p(out)];
        if quiet {
            args.push("-q");
        }
        args.extend(bags.iter().map(|b| p(b)));
        let o = bagstream(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let out = dir.path().join("quiet");
    let stdout = run(&out, true);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("episodes 2, frames "), "{stdout}");
    assert!(
        lines[0].ends_with(&format!(" -> {}", out.display())),
        "{stdout}"
    );
    // Without -q, the details come before that same line.
    let out = dir.path().join("loud");
    let stdout = run(&out, false);
    assert!(stdout.lines().count() > 5, "{stdout}");
    assert!(stdout.contains("teleop_lz4.bag: "), "{stdout}");
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .starts_with("episodes 2, frames "));
}

#[test]
fn sweep_refuses_the_options_of_one_conversion() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--memory-plot", "--summary-json"] {
        let file = dir.path().join("x");
        let o = bagstream(&[
            "sweep",
            "--config",
            p(&fixture("teleop.yaml")),
            "--chunk-secs",
            "1",
            flag,
            p(&file),
            p(&fixture("teleop_lz4.bag")),
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(flag), "{flag}: {err}");
        assert!(!file.exists(), "{flag}");
    }
    // convert still takes them.
    let o = bagstream(&["convert", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("--memory-plot") && help.contains("--summary-json"));
    let o = bagstream(&["sweep", "--help"]);
    let help = text(&o.stdout);
    assert!(!help.contains("--memory-plot") && !help.contains("--summary-json"));
}

#[test]
fn a_path_that_is_no_bag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("recordings");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("run1.bag"), b"").unwrap();
    let rosbag2 = dir.path().join("rosbag2_run");
    std::fs::create_dir(&rosbag2).unwrap();
    std::fs::write(
        rosbag2.join("metadata.yaml"),
        b"rosbag2_bagfile_information: {}\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.bag");
    let cases: [(&Path, i32, &[&str]); 3] = [
        (&missing, 2, &["No such file"]),
        (
            &plain,
            2,
            &["is a directory, not a bag file: give the bag files in it (1 .bag file)"],
        ),
        (&rosbag2, 1, &["metadata.yaml", "missing field `version`"]),
    ];
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "fps: 10\ntask: t\nfeatures:\n  a: {topic: /a, field: data}\n",
    )
    .unwrap();
    let out = dir.path().join("ds");
    for (path, code, wants) in cases {
        for args in [
            vec!["inspect", p(path)],
            vec![
                "convert",
                "-q",
                "--config",
                p(&cfg),
                "--out",
                p(&out),
                p(path),
            ],
        ] {
            let o = bagstream(&args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(p(path)), "{args:?}: {err}");
            assert!(!err.contains("ROS 2 bag?"), "{args:?}: {err}");
            for want in wants {
                assert!(err.contains(want), "{args:?}: {want:?} missing in {err}");
            }
            assert!(!out.exists());
        }
    }
}

/// Asks for the shared bags and nothing else: run alone by the next test, with the shared
/// directory pointed somewhere absent.
#[test]
fn probe_needs_shared_bags() {
    let _ = shared_bags();
}

#[test]
fn a_test_that_skips_is_recorded_for_make_test_to_count() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("no-shared");
    let records = dir.path().join("skipped");
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "probe_needs_shared_bags", "--test-threads", "1"])
        .env("BAGSTREAM_SHARED", &absent)
        .env("BAGSTREAM_SKIPPED", &records)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stdout));
    // cargo's summary calls it passed ...
    assert!(text(&o.stdout).contains("1 passed"), "{}", text(&o.stdout));
    // ... and the record says it was skipped, and why.
    let files: Vec<_> = std::fs::read_dir(&records)
        .unwrap_or_else(|e| panic!("{}: {e}", records.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let line = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(
        line,
        format!(
            "cli_messages::probe_needs_shared_bags: {} is absent\n",
            absent.join("bags").display()
        )
    );
}
