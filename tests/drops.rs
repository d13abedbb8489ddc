//! Dropped ticks must not change time silently (docs/alignment.md, "Dropped ticks and time"):
//! the `max_drop_ratio` limit fails the episode with advice, drops over 1% warn, the sync
//! report lists leading, interior and trailing drops and every gap, the same for every
//! `--chunk-secs`, and `timeline.record_time` gives every frame its tick's bag time.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bagstream::bag::ros1::write::{BagWriter, WriteOptions};
use bagstream::bag::ros1::Compression;
use bagstream::NANOS;
use common::*;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000 * NANOS;
const MS: i64 = 1_000_000;

/// A bag where each topic is a std_msgs/Float64 whose value is the message's time in ms.
fn float_bag(path: &Path, topics: &[(&str, Vec<i64>)]) -> PathBuf {
    let f = bagstream::synth::FLOAT64;
    let mut w = BagWriter::create(
        path,
        WriteOptions {
            compression: Compression::None,
            chunk_size: 512,
            write_index: true,
        },
    )
    .unwrap();
    let conns: Vec<u32> = topics
        .iter()
        .map(|(t, _)| w.add_connection(t, f.datatype, f.md5sum, f.definition, None, false))
        .collect();
    let mut all: Vec<(i64, usize)> = topics
        .iter()
        .enumerate()
        .flat_map(|(i, (_, ts))| ts.iter().map(move |&t| (t, i)))
        .collect();
    all.sort();
    for (t, i) in all {
        w.write(conns[i], T0 + t * MS, &(t as f64).to_le_bytes())
            .unwrap();
    }
    w.finish().unwrap();
    path.to_path_buf()
}

/// Every 100 ms from 0 to `last` ms, except the ticks in `missing` (tick k is at k * 100 ms).
fn every_tick(last: i64, missing: &[i64]) -> Vec<i64> {
    (0..=last / 100)
        .filter(|k| !missing.contains(k))
        .map(|k| k * 100)
        .collect()
}

/// `/ref` at every tick of a 10 fps grid of `ticks` ticks, `/s` at every tick but `missing`
/// and once more 90 ms after the last tick (too far for it, so the last ticks can drop while
/// the grid still ends at `/ref`'s last message).
fn gap_bag(dir: &Path, name: &str, ticks: i64, missing: &[i64]) -> PathBuf {
    let last = (ticks - 1) * 100;
    let mut s = every_tick(last, missing);
    s.push(last + 90);
    float_bag(
        &dir.join(name),
        &[("/ref", every_tick(last, &[])), ("/s", s)],
    )
}

fn config(timeline: &str, s_extra: &str) -> String {
    format!(
        "fps: 10\ntask: t\ntimeline: {{{timeline}}}\nfeatures:\n  r: {{topic: /ref, field: data}}\n  s: {{topic: /s, field: data{s_extra}}}\n"
    )
}

fn bagstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(args)
        .output()
        .unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `bagstream convert -q --config (config written to DIR/NAME.yaml) --out OUT EXTRA.. BAGS..`.
fn convert_cli(
    dir: &Path,
    name: &str,
    cfg: &str,
    out: &Path,
    extra: &[&str],
    bags: &[&Path],
) -> Output {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, cfg).unwrap();
    let mut args = vec!["convert", "-q", "--config", p(&path), "--out", p(out)];
    args.extend_from_slice(extra);
    args.extend(bags.iter().map(|b| p(b)));
    bagstream(&args)
}

/// Nothing but `keep` in `dir`: no dataset, no temporary directory.
fn only_left(dir: &Path, keep: &[&str]) {
    let left: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".yaml") && !n.ends_with(".bag"))
        .collect();
    let keep: BTreeSet<String> = keep.iter().map(|s| s.to_string()).collect();
    assert_eq!(left, keep, "left in {}", dir.display());
}

fn sync_report(ds: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(ds.join("meta/sync_report.json")).unwrap()).unwrap()
}

#[test]
fn a_10hz_camera_at_fps_30_fails_with_the_advice_and_at_fps_10_converts() {
    let Some(bags) = shared_bags() else { return };
    if !have_ffmpeg() {
        return;
    }
    let bag = bags.join("synthetic/ros1_lz4.bag");
    let dir = tempfile::tempdir().unwrap();
    let at10 = std::fs::read_to_string(fixture("shared-synthetic-cameras.yaml")).unwrap();
    let at30 = at10.replace("\nfps: 10\n", "\nfps: 30\n");
    assert_ne!(at10, at30);
    let out = dir.path().join("ds30");
    let o = convert_cli(
        dir.path(),
        "c30",
        &at30,
        &out,
        &["--vcodec", "h264"],
        &[&bag],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for want in [
        "ros1_lz4.bag: too many ticks dropped between frames by tick ",
        "observation.images.cam_high <- /cam_high/image_raw dropped ",
        "observation.images.cam_wrist <- /cam_wrist/image_raw/compressed dropped ",
        "over its max_drop_ratio 0.05; its topic runs at 10.0 Hz",
        "at fps 30 every frame after a dropped tick would play one period earlier",
        "lower `fps`",
        "`on_missing: hold`",
        "a larger `tolerance`",
        "nothing written to",
    ] {
        assert!(err.contains(want), "{want:?} missing in {err}");
    }
    only_left(dir.path(), &[]);

    let out = dir.path().join("ds10");
    let o = convert_cli(
        dir.path(),
        "c10",
        &at10,
        &out,
        &["--vcodec", "h264"],
        &[&bag],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    let r = &sync_report(&out)["episodes"][0];
    assert_eq!(
        (r["dropped"].as_u64(), r["frames"].as_u64()),
        (Some(0), Some(19))
    );
    let o = bagstream(&["validate", p(&out)]);
    assert!(o.status.success(), "{}", text(&o.stdout));
}

#[test]
fn a_bag_over_the_limit_is_rolled_back_and_skipped_with_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let good = gap_bag(dir.path(), "good.bag", 40, &[]);
    // 3 interior drops of 40 ticks: 7.5%, over the default 5%.
    let bad = gap_bag(dir.path(), "bad.bag", 40, &[10, 20, 21]);
    let cfg = config("", "");
    let out = dir.path().join("ds");
    let o = convert_cli(
        dir.path(),
        "c",
        &cfg,
        &out,
        &["--keep-going"],
        &[&good, &bad, &good],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.bag: skipped: too many ticks dropped between frames by tick 22 of 40: s <- /s data dropped 3 (7.5%, over its max_drop_ratio 0.05; its topic runs at"),
        "{err}"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta/info.json")).unwrap()).unwrap();
    assert_eq!(
        (
            info["total_episodes"].as_u64(),
            info["total_frames"].as_u64()
        ),
        (Some(2), Some(80))
    );
    let report = sync_report(&out);
    let bags: Vec<&str> = report["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["bag"].as_str().unwrap())
        .collect();
    assert_eq!(bags, [p(&good), p(&good)]);
    let o = bagstream(&["validate", p(&out)]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    only_left(dir.path(), &["ds"]);

    // Without --keep-going the run stops at the bag, keeping the episode before it.
    let out2 = dir.path().join("ds2");
    let o = convert_cli(dir.path(), "c", &cfg, &out2, &[], &[&good, &bad]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("holds 1 episode"), "{err}");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("meta/info.json")).unwrap()).unwrap();
    assert_eq!(info["total_frames"].as_u64(), Some(40));
}

#[test]
fn interior_drops_over_one_percent_warn_naming_the_bag_and_the_source() {
    let dir = tempfile::tempdir().unwrap();
    // 100 ticks: 2 interior drops (2%) warn; 1 (exactly 1%) does not; leading and trailing
    // ones never do.
    let two = gap_bag(dir.path(), "two.bag", 100, &[30, 31]);
    let one = gap_bag(dir.path(), "one.bag", 100, &[50]);
    let ends = gap_bag(dir.path(), "ends.bag", 100, &[0, 1, 2, 98, 99]);
    let cfg = config("", "");
    let o = convert_cli(dir.path(), "c", &cfg, &dir.path().join("a"), &[], &[&two]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let warning = format!(
        "warning: {}: 2 of 100 ticks (2.0%) dropped between frames, so the last frame plays 0.200 s earlier than its bag time; dropped by s <- /s data 2 (its topic runs at ",
        p(&two)
    );
    assert!(err.contains(&warning), "{warning:?} missing in {err}");
    assert!(err.contains("lower `fps`"), "{err}");
    for (name, bag) in [("b", &one), ("c", &ends)] {
        let o = convert_cli(dir.path(), "c", &cfg, &dir.path().join(name), &[], &[bag]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    }
    // The library hands the warning over too.
    let s = convert_with(&cfg, &[&two], &dir.path().join("lib"), 1.0).unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0].contains("dropped by s <- /s data 2"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn max_drop_ratio_is_set_for_the_timeline_and_per_source() {
    let dir = tempfile::tempdir().unwrap();
    // 10 interior drops of 100 ticks (10%).
    let missing: Vec<i64> = (0..10).map(|i| 10 + 8 * i).collect();
    let bag = gap_bag(dir.path(), "g.bag", 100, &missing);
    let run = |name: &str, cfg: &str| {
        let out = dir.path().join(name);
        let o = convert_cli(dir.path(), name, cfg, &out, &[], &[&bag]);
        (o.status.code(), text(&o.stderr))
    };
    // Default 5%: fails at the 6th drop (6 > 5), the frame at tick 51.
    let (code, err) = run("default", &config("", ""));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "by tick 51 of 100: s <- /s data dropped 6 (6.0%, over its max_drop_ratio 0.05"
        ),
        "{err}"
    );
    // Looser for the episode (and so every source): converts, with the warning.
    let (code, err) = run("loose", &config("max_drop_ratio: 0.1", ""));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("10 of 100 ticks (10.0%) dropped between frames"),
        "{err}"
    );
    // A source may be stricter than the episode ...
    let (code, err) = run(
        "strict",
        &config("max_drop_ratio: 0.1", ", max_drop_ratio: 0.02"),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "by tick 27 of 100: s <- /s data dropped 3 (3.0%, over its max_drop_ratio 0.02"
        ),
        "{err}"
    );
    // ... and the episode's limit holds whatever the source allows.
    let (code, err) = run(
        "episode",
        &config("max_drop_ratio: 0.04", ", max_drop_ratio: 1"),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("by tick 43 of 100: 5 (5.0%, over the episode's max_drop_ratio 0.04), by s <- /s data 5"),
        "{err}"
    );
    // 0 allows no drop; 1 turns the check off (no warning either way when nothing drops).
    let (code, err) = run("zero", &config("max_drop_ratio: 0", ""));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("by tick 11 of 100"), "{err}");
    let (code, err) = run("off", &config("max_drop_ratio: 1", ""));
    assert_eq!(code, Some(0), "{err}");
    // `on_missing: hold` fills the gaps: nothing dropped, nothing to warn about.
    let (code, err) = run("hold", &config("", ", on_missing: hold"));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn max_drop_ratio_must_be_a_fraction_from_0_to_1() {
    let dir = tempfile::tempdir().unwrap();
    let bag = gap_bag(dir.path(), "g.bag", 10, &[]);
    let cases = [
        (config("max_drop_ratio: 1.5", ""), "timeline.max_drop_ratio: 1.5 is not a fraction from 0 to 1"),
        (config("max_drop_ratio: -0.1", ""), "timeline.max_drop_ratio: -0.1 is not a fraction from 0 to 1"),
        (config("max_drop_ratio: .nan", ""), "timeline.max_drop_ratio: NaN is not a fraction"),
        (config("", ", max_drop_ratio: 2"), "features.s.max_drop_ratio: 2 is not a fraction from 0 to 1"),
        (
            "fps: 10\ntask: t\nfeatures:\n  s: {max_drop_ratio: 7, sources: [{topic: /s, field: data}]}\n".into(),
            "features.s.sources[0].max_drop_ratio: 7 is not a fraction",
        ),
        (config("max_drop_ratio: lots", ""), "timeline.max_drop_ratio: invalid type: string \"lots\""),
        (
            config("record_time: true", "").replace("  s: {", "  bag_time_ns: {"),
            "feature name `bag_time_ns` is the column `timeline.record_time: true` adds",
        ),
    ];
    for (i, (cfg, want)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("o{i}"));
        let o = convert_cli(dir.path(), &format!("c{i}"), cfg, &out, &[], &[&bag]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cfg}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{want:?} missing in {err}");
        assert!(!out.exists());
    }
}

#[test]
fn no_frame_surviving_names_each_source_on_a_line() {
    let dir = tempfile::tempdir().unwrap();
    // /b is always 50 ms off the ticks, outside its 10 ms tolerance.
    let bag = float_bag(
        &dir.path().join("off.bag"),
        &[
            ("/a", vec![0, 100, 200, 300, 400, 500]),
            ("/b", vec![50, 150, 250, 350, 450, 550]),
        ],
    );
    let cfg = "fps: 10\ntask: t\ntimeline: {main: /a}\nfeatures:\n  a: {topic: /a, field: data}\n  b: {topic: /b, field: data, tolerance: 0.01}\n";
    let out = dir.path().join("ds");
    let o = convert_cli(dir.path(), "c", cfg, &out, &[], &[&bag]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "bagstream: error: {}: no frame survived alignment: all 6 ticks dropped; stopped at {}: nothing written to {}",
                p(&bag),
                p(&bag),
                p(&out)
            )
            .as_str(),
            "  a <- /a data: picks 6, drops 0 of 6 ticks",
            "  b <- /b data: picks 0, drops 6 of 6 ticks",
        ]
    );
    only_left(dir.path(), &[]);
}

#[test]
fn the_sync_report_gives_the_grid_drops_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    // Ticks 0..12 (0..1200 ms, /ref's span); /s (tolerance 10 ms) at ticks 2 3 4 6 9 and at
    // 1230 ms, too far from tick 12: ticks 0-1 lead, 5 and 7-8 are gaps, 10-12 trail.
    let bag = float_bag(
        &dir.path().join("g.bag"),
        &[
            ("/ref", every_tick(1200, &[])),
            ("/s", vec![200, 300, 400, 600, 900, 1230]),
        ],
    );
    let cfg = "fps: 10\ntask: t\ntimeline: {main: /ref, max_drop_ratio: 1}\nfeatures:\n  r: {topic: /ref, field: data}\n  s: {topic: /s, field: data, tolerance: 0.01}\n";
    let out = dir.path().join("ds");
    convert_with(cfg, &[&bag], &out, 0.05).unwrap();
    let report = sync_report(&out);
    let r = &report["episodes"][0];
    assert_eq!(r["bag"], p(&bag));
    assert_eq!(r["episode_index"], 0);
    // The grid: t0 = /ref's first message, end = the earliest last message (/ref's).
    assert_eq!(r["fps"], 10);
    assert_eq!(r["t0_ns"], T0);
    assert_eq!(r["end_ns"], T0 + 1200 * MS);
    assert_eq!(r["first_tick_ns"], T0);
    assert_eq!(r["last_tick_ns"], T0 + 1200 * MS);
    assert_eq!(r["first_frame_ns"], T0 + 200 * MS);
    assert_eq!(r["last_frame_ns"], T0 + 900 * MS);
    let counts: Vec<u64> = [
        "ticks",
        "frames",
        "dropped",
        "dropped_leading",
        "dropped_interior",
        "dropped_trailing",
    ]
    .iter()
    .map(|k| r[*k].as_u64().unwrap())
    .collect();
    assert_eq!(counts, [13, 5, 8, 2, 3, 3]);
    assert_eq!(r["shift_s"], 0.3);
    assert_eq!(r["max_drop_ratio"], 1.0);
    assert_eq!(r["gaps_total"], 2);
    // Frames at ticks 2 3 4 6 9 (indices 0..4): the gap at tick 5 follows frame 2, the one
    // at 7-8 frame 3.
    assert_eq!(
        r["gaps"],
        serde_json::json!([
            {"tick": 5, "ticks": 1, "t_ns": T0 + 500 * MS, "after_frame": 2, "duration_s": 0.1,
             "sources": [{"source": "s <- /s data", "drops": 1}]},
            {"tick": 7, "ticks": 2, "t_ns": T0 + 700 * MS, "after_frame": 3, "duration_s": 0.2,
             "sources": [{"source": "s <- /s data", "drops": 2}]},
        ])
    );
    assert_eq!(r["longest_gap"], r["gaps"][1]);
    let s = &r["sources"][1];
    assert_eq!(
        (s["drops"].as_u64(), s["drops_interior"].as_u64()),
        (Some(8), Some(3))
    );
    assert_eq!(
        (&s["max_drop_ratio"], &s["tolerance_s"]),
        (&serde_json::json!(1.0), &serde_json::json!(0.01))
    );
    // 6 messages over 1030 ms.
    let rate = s["rate_hz"].as_f64().unwrap();
    assert!((rate - 5.0 / 1.03).abs() < 1e-9, "{rate}");
    assert_eq!(r["sources"][0]["drops_interior"], 0);
    assert_eq!(r["sources"][0]["rate_hz"], 10.0);
    // One consistent format: bag times are integers in `_ns` keys.
    for (k, v) in r.as_object().unwrap() {
        if k.ends_with("_ns") {
            assert!(v.is_i64(), "{k}: {v}");
        }
    }
}

#[test]
fn record_time_gives_each_frame_its_tick_time_for_every_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    // 3 fps: ticks at round(k * 10^9 / 3) ns (333333333, 666666667, ...); a message every
    // 10 ms for 2 s, except around 1 s (tick 3 dropped: its frame's time is not there).
    let times: Vec<i64> = (0..=200)
        .map(|i| i * 10)
        .filter(|t| !(900..=1100).contains(t))
        .collect();
    let bag = float_bag(&dir.path().join("t.bag"), &[("/a", times)]);
    let cfg = "fps: 3\ntask: t\ntimeline: {record_time: true, max_drop_ratio: 1}\nfeatures:\n  a: {topic: /a, field: data, tolerance: 0.02}\n";
    let reference = dir.path().join("ref");
    convert_with(cfg, &[&bag], &reference, 1e6).unwrap();
    let batches = read_parquet(&data_file(&reference));
    let want: Vec<i64> = [0i64, 1, 2, 4, 5, 6]
        .iter()
        .map(|k| T0 + (2 * k * NANOS + 3) / 6)
        .collect();
    assert_eq!(want[1] - T0, 333_333_333);
    assert_eq!(want[2] - T0, 666_666_667);
    assert_eq!(i64_column(&batches, "bag_time_ns"), want);
    // The picked values agree with the ticks: the nearest 10 ms message to each.
    let a: Vec<f32> = f32_rows(&batches, "a").into_iter().map(|v| v[0]).collect();
    assert_eq!(a, [0.0, 330.0, 670.0, 1330.0, 1670.0, 2000.0]);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference.join("meta/info.json")).unwrap()).unwrap();
    assert_eq!(
        info["features"]["bag_time_ns"],
        serde_json::json!({"dtype": "int64", "shape": [1], "names": null})
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference.join("meta/stats.json")).unwrap()).unwrap();
    let st = &stats["bag_time_ns"];
    assert_eq!(st["count"], serde_json::json!([6]));
    assert_eq!(st["min"][0].as_f64(), Some(want[0] as f64));
    assert_eq!(st["max"][0].as_f64(), Some(want[5] as f64));
    let o = bagstream(&["validate", p(&reference)]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    for secs in [0.001, 0.05, 0.4, 3.0] {
        let out = dir.path().join(format!("c{secs}"));
        convert_with(cfg, &[&bag], &out, secs).unwrap();
        assert_same_dataset(&reference, &out);
    }
    // Without the key there is no such column.
    let plain = dir.path().join("plain");
    convert_with(
        &cfg.replace("record_time: true, ", ""),
        &[&bag],
        &plain,
        1.0,
    )
    .unwrap();
    let cols: Vec<String> = read_parquet(&data_file(&plain))[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        cols,
        [
            "a",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index"
        ]
    );
}

/// What docs/alignment.md says of drops, computed from which ticks of `/s` are missing (on a
/// grid that `/ref` spans, every tick of `/s` within 100 ms of the ticks, tolerance 50 ms).
fn expected(ticks: u64, missing: &BTreeSet<u64>) -> (u64, u64, u64, Vec<(u64, u64, u64)>) {
    let kept: Vec<u64> = (0..ticks).filter(|k| !missing.contains(k)).collect();
    let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else {
        return (ticks, 0, 0, Vec::new());
    };
    let mut gaps = Vec::new();
    for (i, w) in kept.windows(2).enumerate() {
        if w[1] > w[0] + 1 {
            gaps.push((w[0] + 1, w[1] - w[0] - 1, i as u64));
        }
    }
    let interior = gaps.iter().map(|g| g.1).sum();
    (first, interior, ticks - 1 - last, gaps)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn drop_counts_and_gaps_follow_the_rules_for_every_chunk_size(
        missing in proptest::collection::btree_set(0u64..60, 0..30),
        ms in 1u32..3000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let miss: Vec<i64> = missing.iter().map(|&k| k as i64).collect();
        let bag = gap_bag(dir.path(), "p.bag", 60, &miss);
        // /s may start late or end early: `main` and /s's extra last message keep the grid
        // on /ref's span, 60 ticks.
        let cfg = "fps: 10\ntask: t\ntimeline: {main: /ref, max_drop_ratio: 1}\nfeatures:\n  r: {topic: /ref, field: data}\n  s: {topic: /s, field: data}\n";
        let reference = dir.path().join("ref");
        let out = dir.path().join("ds");
        let (Ok(_), Ok(_)) = (
            convert_with(cfg, &[&bag], &reference, 1e6),
            convert_with(cfg, &[&bag], &out, f64::from(ms) / 1000.0),
        ) else {
            // Every tick of /s missing: no grid or no frame, the same error either way.
            prop_assert!(missing.len() >= 59);
            return Ok(());
        };
        assert_same_dataset(&reference, &out);
        let r = &sync_report(&out)["episodes"][0];
        let ticks = r["ticks"].as_u64().unwrap();
        prop_assert_eq!(ticks, 60);
        let (lead, interior, trail, gaps) = expected(ticks, &missing);
        prop_assert_eq!(r["dropped_leading"].as_u64(), Some(lead));
        prop_assert_eq!(r["dropped_interior"].as_u64(), Some(interior));
        prop_assert_eq!(r["dropped_trailing"].as_u64(), Some(trail));
        prop_assert_eq!(r["sources"][1]["drops_interior"].as_u64(), Some(interior));
        let got: Vec<(u64, u64, u64)> = r["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["tick"].as_u64().unwrap(), g["ticks"].as_u64().unwrap(), g["after_frame"].as_u64().unwrap()))
            .collect();
        prop_assert_eq!(&got, &gaps);
        prop_assert_eq!(r["gaps_total"].as_u64(), Some(gaps.len() as u64));
    }
}
