//! Many bags: `--bags-from`, commits every N episodes, `--resume` after a SIGKILL, `--shard`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bagstream::bag_list::Shard;
use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions};
use bagstream::dataset::inputs;
use bagstream::synth::{write_teleop_bag, TeleopSpec};
use bagstream::NANOS;
use common::*;

/// The teleop fixtures' config without the camera: numbers only, quick to convert.
const TABULAR: &str = r#"
fps: 10
robot_type: teleop_arm
task: "pick up the cube"
timeline:
  main: /joint_states
features:
  observation.state:
    topic: /joint_states
    field: position
  action:
    sources:
      - {topic: /arm_cmd, field: "data[0:6]"}
      - {topic: /gripper_cmd, field: data, match: asof, tolerance: 0.2, on_missing: hold}
"#;

/// `n` teleop bags of `seconds` each, told apart by their start times and lengths.
fn write_bags(dir: &Path, n: usize, seconds: f64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("run{i:02}.bag"));
            write_teleop_bag(
                &path,
                &TeleopSpec {
                    seconds: seconds + i as f64 * 0.3,
                    start: (1_700_000_000 + 1000 * i as i64) * NANOS,
                    ..TeleopSpec::default()
                },
            )
            .unwrap();
            path
        })
        .collect()
}

fn options(bags: &[PathBuf], out: &Path) -> ConvertOptions {
    ConvertOptions::new(Config::parse(TABULAR).unwrap(), bags.to_vec(), out)
}

fn bagstream(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("tabular.yaml");
    std::fs::write(&path, TABULAR).unwrap();
    path
}

fn record(ds: &Path) -> inputs::InputsFile {
    inputs::read(ds)
        .unwrap()
        .expect("the dataset records its inputs")
}

#[test]
fn commits_every_n_episodes_hold_what_one_commit_holds() {
    let dir = tempfile::tempdir().unwrap();
    let bags = write_bags(dir.path(), 5, 3.0);
    let (once, parts) = (dir.path().join("once"), dir.path().join("parts"));
    convert(&options(&bags, &once)).unwrap();
    let s = convert(&ConvertOptions {
        commit_every: Some(2),
        ..options(&bags, &parts)
    })
    .unwrap();
    assert_eq!(s.episodes.len(), 5);
    assert_same_content(&once, &parts);
    assert!(bagstream::dataset::validate::validate(&parts)
        .unwrap()
        .is_empty());
    // Every episode is recorded, in order, with its place in the list and its bag's identity.
    let r = record(&parts);
    assert_eq!(r.input_count, Some(5));
    for (i, rec) in r.inputs.iter().enumerate() {
        assert_eq!((rec.episode_index, rec.position), (i as u64, i as u64));
        assert_eq!(rec.path, bags[i]);
        assert_eq!(rec.size, Some(std::fs::metadata(&bags[i]).unwrap().len()));
        let digest = rec.index_digest.as_deref().unwrap_or_default();
        assert!(digest.starts_with("xxh3-128:"), "{digest}");
    }
    assert_eq!(record(&once).inputs, r.inputs);
}

#[test]
fn a_killed_run_resumes_into_the_same_dataset() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough that the run is still going when the first commit is seen.
    let bags = write_bags(dir.path(), 12, 60.0);
    let config = config_file(dir.path());
    let reference = dir.path().join("reference");
    convert(&options(&bags, &reference)).unwrap();

    let out = dir.path().join("ds");
    let log = dir.path().join("memory.log");
    let mut args: Vec<std::ffi::OsString> = vec![
        "convert".into(),
        "-q".into(),
        "--config".into(),
        config.clone().into(),
        "--out".into(),
        out.clone().into(),
        "--commit-every".into(),
        "2".into(),
        "--memory-log".into(),
        log.clone().into(),
    ];
    args.extend(bags.iter().map(|b| b.clone().into()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL as soon as the memory log says a commit happened: no handler runs.
    let started = Instant::now();
    loop {
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        if log_text.contains("committed after") {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first commit was seen"
        );
        assert!(started.elapsed() < Duration::from_secs(300), "no commit");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // What a killed run leaves is a complete dataset of the committed episodes.
    let kept = record(&out).inputs.len();
    assert!((2..12).contains(&kept), "{kept} episodes committed");
    assert!(bagstream::dataset::validate::validate(&out)
        .unwrap()
        .is_empty());

    // The same command with --resume converts the rest.
    args.push("--resume".into());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let o = bagstream(&refs);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with(&format!("episodes {}, ", 12 - kept)),
        "{}",
        text(&o.stdout)
    );
    assert_same_content(&reference, &out);
    assert_eq!(record(&out).inputs, record(&reference).inputs);

    // Once more: complete, nothing to do, nothing touched.
    let before = dataset_files(&out);
    let o = bagstream(&refs);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("nothing to do"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(before, dataset_files(&out));
}

#[test]
fn resume_names_a_bag_that_changed_and_accepts_one_only_touched() {
    let dir = tempfile::tempdir().unwrap();
    let bags = write_bags(dir.path(), 3, 2.0);
    let out = dir.path().join("ds");
    convert(&options(&bags[..2], &out)).unwrap();
    let resume = |bags: &[PathBuf]| {
        convert(&ConvertOptions {
            resume: true,
            ..options(bags, &out)
        })
    };

    // Copied over itself (same bytes, a new modification time): the same recording.
    std::thread::sleep(Duration::from_millis(20));
    let bytes = std::fs::read(&bags[1]).unwrap();
    std::fs::File::create(&bags[1])
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let s = resume(&bags).unwrap();
    assert_eq!((s.episodes.len(), s.already_done), (1, 2));
    assert_eq!(record(&out).inputs.len(), 3);

    // Re-recorded: another bag under the same name is refused, by name, with exit status 2.
    write_teleop_bag(
        &bags[0],
        &TeleopSpec {
            seconds: 4.0,
            ..TeleopSpec::default()
        },
    )
    .unwrap();
    let e = resume(&bags).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(
        msg.contains(&bags[0].display().to_string())
            && msg.contains("changed since it was converted as episode 0"),
        "{msg}"
    );
}

#[test]
fn shards_split_the_list_once_and_a_complete_shard_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let bags = write_bags(dir.path(), 7, 1.5);
    let mut seen = Vec::new();
    for i in 0..3 {
        let out = dir.path().join(format!("shard-{i}"));
        let shard = Some(Shard { index: i, count: 3 });
        let s = convert(&ConvertOptions {
            shard,
            ..options(&bags, &out)
        })
        .unwrap();
        let r = record(&out);
        assert_eq!(r.input_count, Some(7));
        assert_eq!(r.shard.map(|s| (s.index, s.count)), Some((i as u64, 3)));
        let positions: Vec<u64> = r.inputs.iter().map(|x| x.position).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert_eq!(s.episodes.len(), positions.len());
        seen.extend(positions);
        // Run again (a resubmitted task): complete, skipped.
        let again = convert(&ConvertOptions {
            shard,
            ..options(&bags, &out)
        })
        .unwrap();
        assert_eq!(
            (again.episodes.len(), again.already_done),
            (0, r.inputs.len())
        );
        // Another shard's task pointed at this output is refused.
        let other = Shard {
            index: (i + 1) % 3,
            count: 3,
        };
        let e = convert(&ConvertOptions {
            shard: Some(other),
            ..options(&bags, &out)
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("give each shard its own --out"),
            "{e}"
        );
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..7).collect::<Vec<u64>>(),
        "every bag in exactly one shard"
    );
}

#[test]
fn bags_from_lists_add_to_the_positional_bags() {
    let dir = tempfile::tempdir().unwrap();
    let bags = write_bags(dir.path(), 3, 1.5);
    let config = config_file(dir.path());
    let list = dir.path().join("bags.txt");
    std::fs::write(
        &list,
        format!(
            "# the second day\n{}\n\n  {}  \n",
            bags[1].display(),
            bags[2].display()
        ),
    )
    .unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    convert(&options(&bags, &a)).unwrap();
    let o = bagstream(&[
        "convert".as_ref(),
        "-q".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        b.as_os_str(),
        "--bags-from".as_ref(),
        list.as_os_str(),
        bags[0].as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(dataset_files(&a), dataset_files(&b));

    // An empty list and no bag: exit 2, saying so.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let o = bagstream(&[
        "convert".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        dir.path().join("c").as_os_str(),
        "--bags-from".as_ref(),
        empty.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("the --bags-from lists hold no path"),
        "{}",
        text(&o.stderr)
    );
}
