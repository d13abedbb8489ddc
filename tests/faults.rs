//! Faults while running: SIGINT / SIGTERM midway (quick exit, nothing left, the dataset as it
//! was), a disk that fills and an output that cannot be written (in a private tmpfs when the
//! test can make one), and one bad bag among good ones (with and without `--keep-going`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use bagstream::synth::{write_teleop_bag, TeleopSpec};
use common::*;

fn bagstream() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
}

/// A teleop bag with the 96x64 camera of the fixtures, `seconds` long.
fn teleop_camera_bag(path: &Path, seconds: f64) {
    let spec = TeleopSpec {
        seconds,
        camera_hz: 30.0,
        camera_size: (96, 64),
        ..TeleopSpec::default()
    };
    write_teleop_bag(path, &spec).unwrap();
}

/// The fixture config: numeric features and the camera as video.
fn video_config(dir: &Path) -> PathBuf {
    let p = dir.join("video.yaml");
    std::fs::write(&p, std::fs::read_to_string(fixture("teleop.yaml")).unwrap()).unwrap();
    p
}

/// The fixture config with the camera stored as PNG in the data parquet (no video).
fn image_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture("teleop.yaml")).unwrap();
    let p = dir.join("image.yaml");
    std::fs::write(&p, format!("{text}    type: image\n")).unwrap();
    p
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

/// Names in `dir` (recursively) that are temporaries of a run.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .chain(std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains("bagstream-tmp")
                || name.ends_with(".partial")
                || name.contains(".aborted")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Signals

/// `(pid, parent pid, command name, state)` of every process.
fn processes() -> Vec<(u32, u32, String, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, comm, state));
    }
    out
}

/// The children of `pid` that run `comm`.
fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, ppid, c, _)| *ppid == pid && c == comm)
        .map(|(p, ..)| p)
        .collect()
}

/// Running (not gone, not a zombie) processes among `pids`.
fn still_running(pids: &[u32]) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(p, _, _, state)| pids.contains(p) && !matches!(state, 'Z' | 'X'))
        .map(|(p, ..)| p)
        .collect()
}

struct Signalled {
    code: Option<i32>,
    stderr: String,
    seconds: f64,
    ffmpeg: Vec<u32>,
}

/// Starts a conversion of `bag` into `out`, sends `signal` once it is midway (to the whole
/// process group, as a terminal's Ctrl-C does, when `group`) and waits for it to end.
fn convert_and_signal(
    dir: &Path,
    bag: &Path,
    out: &Path,
    append: bool,
    signal: i32,
    group: bool,
) -> Signalled {
    use std::os::unix::process::CommandExt;
    let log = dir.join(format!("mem-{signal}-{append}.log"));
    let _ = std::fs::remove_file(&log);
    let mut cmd = bagstream();
    cmd.args(["convert", "-q", "--chunk-secs", "0.2", "--memory-log"])
        .arg(&log)
        .arg("--config")
        .arg(video_config(dir))
        .arg("--out")
        .arg(out)
        .arg(bag)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if append {
        cmd.arg("--append");
    }
    if group {
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().unwrap();
    wait_for_log(&mut child, &log, |t| {
        t.lines().any(|l| l.contains(", chunk "))
    });
    let ffmpeg = children_named(child.id(), "ffmpeg");
    let target = if group {
        -(child.id() as i32)
    } else {
        child.id() as i32
    };
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child (or its process group).
    assert_eq!(unsafe { libc::kill(target, signal) }, 0);
    let out = child.wait_with_output().unwrap();
    let seconds = sent.elapsed().as_secs_f64();
    Signalled {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        seconds,
        ffmpeg,
    }
}

fn check_signalled(s: &Signalled, signal: &str, code: i32, dir: &Path) {
    eprintln!(
        "{signal}: exit {:?} after {:.3} s, ffmpeg children {:?}: {}",
        s.code,
        s.seconds,
        s.ffmpeg,
        s.stderr.trim()
    );
    assert_eq!(s.code, Some(code), "{}", s.stderr);
    assert!(s.seconds < 5.0, "took {:.3} s to stop", s.seconds);
    assert_eq!(s.stderr.lines().count(), 1, "{}", s.stderr);
    assert!(
        s.stderr.contains(&format!("interrupted by {signal}")),
        "{}",
        s.stderr
    );
    assert!(!s.ffmpeg.is_empty(), "no ffmpeg child was running");
    assert_eq!(
        still_running(&s.ffmpeg),
        Vec::<u32>::new(),
        "ffmpeg left running"
    );
    assert_eq!(leftovers(dir), Vec::<PathBuf>::new());
}

#[test]
fn sigterm_midway_exits_quickly_and_leaves_nothing() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("long.bag");
    teleop_camera_bag(&bag, 60.0);
    let out = dir.path().join("ds");
    let s = convert_and_signal(dir.path(), &bag, &out, false, libc::SIGTERM, false);
    check_signalled(&s, "SIGTERM", 143, dir.path());
    assert!(
        s.stderr
            .contains(&format!("nothing written to {}", out.display())),
        "{}",
        s.stderr
    );
    assert!(!out.exists(), "an interrupted run left a dataset");
}

#[test]
fn ctrl_c_to_the_process_group_is_an_interruption_not_an_encoder_failure() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("long.bag");
    teleop_camera_bag(&bag, 60.0);
    let out = dir.path().join("ds");
    // ffmpeg gets the SIGINT too and stops reading: still reported as the interruption.
    let s = convert_and_signal(dir.path(), &bag, &out, false, libc::SIGINT, true);
    check_signalled(&s, "SIGINT", 130, dir.path());
    assert!(!s.stderr.contains("ffmpeg"), "{}", s.stderr);
    assert!(!out.exists(), "an interrupted run left a dataset");
}

#[test]
fn sigterm_during_append_keeps_the_old_dataset_byte_identical() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let o = run_convert(
        &[],
        &video_config(dir.path()),
        &out,
        &[&fixture("teleop_lz4.bag")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = snapshot(&out);
    let bag = dir.path().join("long.bag");
    teleop_camera_bag(&bag, 60.0);
    let s = convert_and_signal(dir.path(), &bag, &out, true, libc::SIGTERM, false);
    check_signalled(&s, "SIGTERM", 143, dir.path());
    assert!(
        s.stderr
            .contains(&format!("{} is as it was", out.display())),
        "{}",
        s.stderr
    );
    assert!(snapshot(&out) == before, "the old dataset changed");
}

// ---------------------------------------------------------------------------------------------
// Disk full, unwritable output

/// Runs `script` (sh) in a private mount namespace, or None (with a message) when this test
/// cannot make one (not root, no unshare).
fn in_private_mounts(script: &str) -> Option<Output> {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipped: cannot mount a tmpfs in a private mount namespace (needs root and unshare)"
        );
        return None;
    }
    Some(
        Command::new("unshare")
            .args(["-m", "sh", "-c", script])
            .output()
            .unwrap(),
    )
}

/// `(exit status of bagstream, its stderr, what the script printed after it)`.
fn tmpfs_run(size: &str, setup: &str, args: &str, after: &str) -> Option<(i32, String, String)> {
    let exe = env!("CARGO_BIN_EXE_bagstream");
    let script = format!(
        "set -e; mount -t tmpfs -o size={size} tmpfs /mnt; {setup}\n\
         set +e; {exe} convert -q {args} 2>/tmp/.bagstream-faults-stderr-$$; rc=$?\n\
         echo \"rc=$rc\"; echo '--- stderr'; cat /tmp/.bagstream-faults-stderr-$$; \
         rm -f /tmp/.bagstream-faults-stderr-$$; echo '--- after'; {after}"
    );
    let o = in_private_mounts(&script)?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let rc = text
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .unwrap_or_else(|| panic!("{text}\n{}", String::from_utf8_lossy(&o.stderr)))
        .parse()
        .unwrap();
    let stderr = text
        .split("--- stderr\n")
        .nth(1)
        .and_then(|t| t.split("--- after\n").next())
        .unwrap_or("")
        .to_string();
    let after = text.split("--- after\n").nth(1).unwrap_or("").to_string();
    Some((rc, stderr, after))
}

#[test]
fn a_full_disk_while_writing_parquet_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("cam.bag");
    teleop_camera_bag(&bag, 20.0);
    let config = image_config(dir.path());
    // PNG frames in the data parquet: more than the 256 kB disk.
    let args = format!(
        "--config {} --out /mnt/ds {}",
        config.display(),
        bag.display()
    );
    let Some((rc, err, after)) = tmpfs_run("256k", "", &args, "ls -A /mnt") else {
        return;
    };
    eprintln!("disk full (parquet): exit {rc}: {}", err.trim());
    assert_eq!(rc, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!err.contains("External"), "{err}");
    assert!(err.contains("/mnt/"), "{err}");
    assert_eq!(after.trim(), "", "left on the disk: {after}");
}

#[test]
fn a_full_disk_while_writing_video_quotes_ffmpeg_and_leaves_nothing() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("cam.bag");
    let spec = TeleopSpec {
        seconds: 10.0,
        camera_hz: 30.0,
        camera_size: (160, 120),
        ..TeleopSpec::default()
    };
    write_teleop_bag(&bag, &spec).unwrap();
    let args = format!(
        "--vcodec h264 --crf 0 --config {} --out /mnt/ds {}",
        video_config(dir.path()).display(),
        bag.display()
    );
    let Some((rc, err, after)) = tmpfs_run("256k", "", &args, "ls -A /mnt") else {
        return;
    };
    eprintln!("disk full (video): exit {rc}: {}", err.trim());
    assert_eq!(rc, 1, "{err}");
    let first = err.lines().next().unwrap_or("");
    assert!(first.contains("ffmpeg"), "{err}");
    assert!(first.contains("/mnt/"), "{err}");
    assert!(first.contains("No space left on device"), "{err}");
    assert_eq!(after.trim(), "", "left on the disk: {after}");
}

#[test]
fn append_onto_a_disk_that_fills_keeps_the_old_dataset() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    let o = run_convert(
        &[],
        &image_config(dir.path()),
        &old,
        &[&fixture("teleop_lz4.bag")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bag = dir.path().join("cam.bag");
    teleop_camera_bag(&bag, 20.0);
    let sums = "cd /mnt/ds && find . -type f | sort | xargs sha256sum";
    let setup = format!(
        "cp -a {} /mnt/ds; ({sums}) > /tmp/.bagstream-faults-sums-$$",
        old.display()
    );
    let args = format!(
        "--append --config {} --out /mnt/ds {}",
        image_config(dir.path()).display(),
        bag.display()
    );
    let after = format!(
        "ls -A /mnt; ({sums}) | cmp - /tmp/.bagstream-faults-sums-$$ && echo SAME; rm -f /tmp/.bagstream-faults-sums-$$"
    );
    // The old dataset takes 160 kB, the new episode more than the rest.
    let Some((rc, err, after)) = tmpfs_run("400k", &setup, &args, &after) else {
        return;
    };
    eprintln!("disk full (append): exit {rc}: {}", err.trim());
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(after.lines().next(), Some("ds"), "{after}");
    assert!(after.contains("SAME"), "the old dataset changed: {after}");
}

#[test]
fn an_unwritable_output_is_a_usage_error_found_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "not a directory").unwrap();
    let out = file.join("ds");
    let o = run_convert(
        &[],
        &image_config(dir.path()),
        &out,
        &[&fixture("teleop_lz4.bag")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{} is not a directory", file.display())),
        "{err}"
    );

    // A read-only filesystem (root ignores permission bits).
    let args = format!(
        "--config {} --out /mnt/ds {}",
        image_config(dir.path()).display(),
        fixture("teleop_lz4.bag").display()
    );
    let Some((rc, err, after)) = tmpfs_run("1m", "mount -o remount,ro /mnt", &args, "ls -A /mnt")
    else {
        return;
    };
    eprintln!("read-only: exit {rc}: {}", err.trim());
    assert_eq!(rc, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/mnt/ds"), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(after.trim(), "");
}

// ---------------------------------------------------------------------------------------------
// One bad bag among many

/// A camera bag whose middle chunk is overwritten with 0xFF: its first record's header length
/// runs past the chunk, found only when the reader gets there.
fn bad_bag(path: &Path) {
    teleop_camera_bag(path, 6.0);
    let chunks = bagstream::bag::ros1::scan::scan(path).unwrap().chunks;
    assert!(chunks.len() > 4, "{} chunks", chunks.len());
    let c = &chunks[chunks.len() / 2];
    let mut bytes = std::fs::read(path).unwrap();
    let at = c.data_pos as usize;
    bytes[at..at + 64].fill(0xFF);
    std::fs::write(path, bytes).unwrap();
}

fn run_convert(args: &[&str], config: &Path, out: &Path, bags: &[&Path]) -> Output {
    bagstream()
        .args(["convert", "-q"])
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(bags)
        .output()
        .unwrap()
}

fn validate(ds: &Path) {
    let o = bagstream().arg("validate").arg(ds).output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every data column of a dataset, over all its data files in order, as text per row.
fn data_values(ds: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files: Vec<PathBuf> = files_under(&ds.join("data"));
    files.sort();
    let batches: Vec<_> = files.iter().flat_map(|f| read_parquet(f)).collect();
    let mut out = BTreeMap::new();
    let schema = batches[0].schema();
    for field in schema.fields() {
        let name = field.name().as_str();
        let rows: Vec<String> = match field.data_type() {
            arrow_schema::DataType::Int64 => i64_column(&batches, name)
                .iter()
                .map(|v| v.to_string())
                .collect(),
            arrow_schema::DataType::Struct(_) => image_column(&batches, name)
                .iter()
                .map(|(w, h, px)| format!("{w}x{h} {:?}", &px[..16]))
                .collect(),
            _ => f32_rows(&batches, name)
                .iter()
                .map(|v| format!("{v:?}"))
                .collect(),
        };
        out.insert(name.to_string(), rows);
    }
    out
}

/// Episode lengths, and for each episode the frames its video span covers in its own file
/// (checked against the file's real frame count when the episode is the file's last).
fn episode_lengths(ds: &Path) -> Vec<i64> {
    let eps = read_parquet(&ds.join("meta/episodes/chunk-000/file-000.parquet"));
    i64_column(&eps, "length")
}

/// Frames in each video file of the camera.
fn video_frames(ds: &Path) -> u64 {
    files_under(&ds.join("videos"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .map(|p| bagstream::video::count_frames(Path::new("ffmpeg"), p).unwrap())
        .sum()
}

#[test]
fn a_bad_bag_stops_the_run_keeping_the_episodes_before_it() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, bad, c) = (d.join("a.bag"), d.join("bad.bag"), d.join("c.bag"));
    teleop_camera_bag(&a, 3.0);
    bad_bag(&bad);
    teleop_camera_bag(&c, 4.0);
    let config = video_config(d);

    let reference = d.join("ref");
    let o = run_convert(&[], &config, &reference, &[&a]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let out = d.join("ds");
    let o = run_convert(&[], &config, &out, &[&a, &bad, &c]);
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{}", err.trim());
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("stopped at {}", bad.display())),
        "{err}"
    );
    assert!(
        err.contains("holds 1 episode (1 converted before this bag)"),
        "{err}"
    );
    validate(&out);
    assert_eq!(episode_lengths(&out), episode_lengths(&reference));
    assert_eq!(data_values(&out), data_values(&reference));
    assert_eq!(video_frames(&out), video_frames(&reference));
    assert_eq!(leftovers(d), Vec::<PathBuf>::new());

    // The bad bag first: nothing before it to keep.
    let out2 = d.join("ds2");
    let o = run_convert(&[], &config, &out2, &[&bad, &a]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("nothing written to {}", out2.display())),
        "{err}"
    );
    assert!(!out2.exists());

    // With --append: the old episodes and the ones before the bad bag.
    let o = run_convert(&["--append"], &config, &out, &[&c, &bad, &a]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("holds 2 episodes (1 converted before this bag)"),
        "{err}"
    );
    validate(&out);
    let lengths = episode_lengths(&out);
    assert_eq!(lengths.len(), 2);
    assert_eq!(lengths[0], episode_lengths(&reference)[0]);
}

#[test]
fn keep_going_skips_the_bad_bags_and_lists_them() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, bad, c) = (d.join("a.bag"), d.join("bad.bag"), d.join("c.bag"));
    teleop_camera_bag(&a, 3.0);
    bad_bag(&bad);
    teleop_camera_bag(&c, 4.0);
    let not_a_bag = d.join("notes.txt");
    std::fs::write(&not_a_bag, "not a bag at all").unwrap();
    let config = video_config(d);

    let reference = d.join("ref");
    let o = run_convert(&[], &config, &reference, &[&a, &c]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let out = d.join("ds");
    let o = run_convert(
        &["--keep-going"],
        &config,
        &out,
        &[&a, &bad, &not_a_bag, &c],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{}", err.trim());
    assert_eq!(o.status.code(), Some(1), "{err}");
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    assert!(tail[2].contains("2 of 4 bags failed"), "{err}");
    assert!(
        tail[1].starts_with(&format!("  {}: ", bad.display())),
        "{err}"
    );
    assert!(
        tail[1].contains("offset"),
        "the reason names the offset: {err}"
    );
    assert!(
        tail[0].starts_with(&format!("  {}: ", not_a_bag.display())),
        "{err}"
    );
    validate(&out);
    assert_eq!(episode_lengths(&out), episode_lengths(&reference));
    assert_eq!(data_values(&out), data_values(&reference));
    assert_eq!(video_frames(&out), video_frames(&reference));
    assert_eq!(leftovers(d), Vec::<PathBuf>::new());

    // Every bag bad: the failures, and no dataset.
    let none = d.join("none");
    let o = run_convert(&["--keep-going"], &config, &none, &[&bad, &not_a_bag]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no bag could be converted"), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(!none.exists());
}

#[test]
fn keep_going_with_image_features_rolls_back_rows_in_a_shared_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, bad, c) = (d.join("a.bag"), d.join("bad.bag"), d.join("c.bag"));
    teleop_camera_bag(&a, 3.0);
    bad_bag(&bad);
    teleop_camera_bag(&c, 4.0);
    let config = image_config(d);
    let reference = d.join("ref");
    let o = run_convert(&[], &config, &reference, &[&a, &c]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = d.join("ds");
    let o = run_convert(&["--keep-going"], &config, &out, &[&a, &bad, &c]);
    assert_eq!(o.status.code(), Some(1));
    validate(&out);
    assert_eq!(episode_lengths(&out), episode_lengths(&reference));
    assert_eq!(data_values(&out), data_values(&reference));
    assert_eq!(
        std::fs::read(out.join("meta/stats.json")).unwrap(),
        std::fs::read(reference.join("meta/stats.json")).unwrap(),
        "the failed episode's stats reached the dataset"
    );
}
