//! The alignment rules end to end: small bags with hand-placed messages, converted, and the
//! dataset's values compared with values computed by hand from docs/alignment.md.

mod common;

use std::path::{Path, PathBuf};

use bagstream::bag::ros1::write::{BagWriter, WriteOptions};
use bagstream::bag::ros1::Compression;
use bagstream::NANOS;
use common::*;

const FLOAT64_MD5: &str = "fdb28210bfa9d7c91146260178d9a584";
const T0: i64 = 1_700_000_000 * NANOS;
const MS: i64 = 1_000_000;

/// A bag where each topic is a std_msgs/Float64 whose value is the message's own time in ms
/// (so a frame's value says which message was picked).
fn float_bag(dir: &Path, topics: &[(&str, &[i64])]) -> PathBuf {
    let path = dir.join("hand.bag");
    let mut w = BagWriter::create(
        &path,
        WriteOptions {
            compression: Compression::None,
            chunk_size: 256,
            write_index: true,
        },
    )
    .unwrap();
    let conns: Vec<u32> = topics
        .iter()
        .map(|(t, _)| {
            w.add_connection(
                t,
                "std_msgs/Float64",
                FLOAT64_MD5,
                "float64 data\n",
                None,
                false,
            )
        })
        .collect();
    // Interleave in time order, as a recorder would.
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
    path
}

fn values(ds: &Path, col: &str) -> Vec<Vec<f32>> {
    f32_rows(&read_parquet(&data_file(ds)), col)
}

#[test]
fn nearest_with_ties_to_the_earlier_message_and_asof() {
    let dir = tempfile::tempdir().unwrap();
    // /a every 100 ms from 0; /b at odd times. Grid: 10 fps from t0 = max first = 0.
    let bag = float_bag(
        dir.path(),
        &[
            ("/a", &[0, 100, 200, 300, 400]),
            ("/b", &[0, 40, 150, 160, 250, 390, 400]),
            ("/c", &[0, 50, 150, 250, 350, 450]),
        ],
    );
    let cfg = "fps: 10\ntask: t\nfeatures:\n  a: {topic: /a, field: data}\n  near: {topic: /b, field: data}\n  asof: {topic: /b, field: data, match: asof, tolerance: 0.08}\n  tie: {topic: /c, field: data}\n";
    let out = dir.path().join("ds");
    let s = convert_with(cfg, &[bag], &out, 1.0).unwrap();
    // Ticks 0,100,200,300,400 ms (end = min last = 400).
    // near (tol 50): 0->0; 100->150 (dt 50, inclusive; 40 is 60 away); 200->160 (dt 40);
    //   300->250 (dt 50; 390 is 90 away); 400->400.
    // asof (tol 80): 0->0; 100->40 (dt 60); 200->160; 300->250; 400->400.
    assert_eq!(values(&out, "a"), [[0.], [100.], [200.], [300.], [400.]]);
    assert_eq!(values(&out, "near"), [[0.], [150.], [160.], [250.], [400.]]);
    assert_eq!(values(&out, "asof"), [[0.], [40.], [160.], [250.], [400.]]);
    // Every tick of /c has one message 50 ms before and one 50 ms after: the earlier wins.
    assert_eq!(values(&out, "tie"), [[0.], [50.], [150.], [250.], [350.]]);
    let r = &s.episodes[0].report;
    assert_eq!((r.ticks, r.frames, r.dropped), (5, 5, 0));
    let near = &r.sources[1].1;
    assert_eq!(near.picks, 5);
    // |dt| over picks: 0, 50, 40, 50, 0 ms -> sorted 0 0 40 50 50: p50 = 40 ms, max 50 ms.
    assert_eq!(near.dt_percentile(50.0), Some(0.04));
    assert_eq!(near.dt_percentile(100.0), Some(0.05));
}

#[test]
fn drop_and_hold_and_the_sync_report() {
    let dir = tempfile::tempdir().unwrap();
    let bag = float_bag(
        dir.path(),
        &[
            ("/a", &[0, 100, 200, 300, 400, 500]),
            ("/sparse", &[0, 310, 500]),
        ],
    );
    let out = dir.path().join("drop");
    // About drops: half the ticks drop, far over the default max_drop_ratio.
    let cfg = "fps: 10\ntask: t\ntimeline: {max_drop_ratio: 1}\nfeatures:\n  a: {topic: /a, field: data}\n  s: {topic: /sparse, field: data, tolerance: 0.02}\n";
    let s = convert_with(cfg, &[&bag], &out, 0.05).unwrap();
    // Ticks 0..500 ms. /sparse within 20 ms: 0 (0), 300 (310), 500 (500); 100, 200, 400 dropped.
    assert_eq!(values(&out, "a"), [[0.], [300.], [500.]]);
    assert_eq!(values(&out, "s"), [[0.], [310.], [500.]]);
    let r = &s.episodes[0].report;
    assert_eq!((r.ticks, r.frames, r.dropped), (6, 3, 3));
    assert_eq!((r.sources[1].1.picks, r.sources[1].1.drops), (3, 3));
    // The timestamps are frame_index / fps: no gaps for dropped ticks.
    let b = read_parquet(&data_file(&out));
    assert_eq!(f32_rows(&b, "timestamp"), [[0.0], [0.1], [0.2]]);
    assert_eq!(i64_column(&b, "frame_index"), [0, 1, 2]);

    let out = dir.path().join("hold");
    let cfg = cfg.replace("tolerance: 0.02}", "tolerance: 0.02, on_missing: hold}");
    let s = convert_with(&cfg, &[bag], &out, 0.05).unwrap();
    assert_eq!(
        values(&out, "s"),
        [[0.], [0.], [0.], [310.], [310.], [500.]]
    );
    let r = &s.episodes[0].report;
    assert_eq!((r.frames, r.dropped), (6, 0));
    assert_eq!((r.sources[1].1.picks, r.sources[1].1.holds), (3, 3));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta/sync_report.json")).unwrap()).unwrap();
    let src = &report["episodes"][0]["sources"][1];
    assert_eq!(src["holds"], 3);
    assert_eq!(src["picks"], 3);
    assert_eq!(src["dt_max_s"], 0.01);
}

#[test]
fn fail_stops_with_the_tick_and_leaves_no_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let bag = float_bag(
        dir.path(),
        &[("/a", &[0, 100, 200, 300]), ("/b", &[0, 100, 300])],
    );
    let out = dir.path().join("ds");
    let cfg = "fps: 10\ntask: t\nfeatures:\n  a: {topic: /a, field: data}\n  b: {topic: /b, field: data, on_missing: fail}\n";
    let err = convert_with(cfg, &[bag], &out, 1.0).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/b") && msg.contains("tick 2"), "{msg}");
    assert_eq!(err.exit_code(), 1);
    assert!(!out.exists(), "a failed conversion leaves no dataset");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "only the bag is left: {leftovers:?}");
}

#[test]
fn grid_start_end_trims_and_main() {
    let dir = tempfile::tempdir().unwrap();
    let bag = float_bag(
        dir.path(),
        &[
            ("/a", &[0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]),
            ("/late", &[120, 220, 320, 420]),
        ],
    );
    // Without main: t0 = latest first = 120, end = earliest last = 420: ticks 120..420.
    let out = dir.path().join("1");
    let cfg = "fps: 10\ntask: t\nfeatures:\n  a: {topic: /a, field: data, tolerance: 0.05}\n  l: {topic: /late, field: data}\n";
    convert_with(cfg, &[&bag], &out, 1.0).unwrap();
    // nearest with tolerance 50: 120 -> 100 (dt 20) vs 150 (dt 30): 100.
    assert_eq!(values(&out, "a"), [[100.], [200.], [300.], [400.]]);
    assert_eq!(values(&out, "l"), [[120.], [220.], [320.], [420.]]);
    // main = /a starts the grid at 0 (ticks before /late starts are dropped); trims cut 100 ms
    // off the start and 150 ms off the end: ticks 100..270 -> 100, 200.
    let out = dir.path().join("2");
    let cfg2 = format!(
        "fps: 10\ntask: t\ntimeline: {{main: /a, trim_start: 0.1, trim_end: 0.15}}\n{}",
        &cfg["fps: 10\ntask: t\n".len()..]
    );
    let s = convert_with(&cfg2, &[&bag], &out, 1.0).unwrap();
    assert_eq!(values(&out, "a"), [[100.], [200.]]);
    assert_eq!(values(&out, "l"), [[120.], [220.]]);
    assert_eq!(s.episodes[0].report.ticks, 2);
    // Trims longer than the overlap: a clear error.
    let cfg3 = cfg2.replace("trim_end: 0.15", "trim_end: 5");
    let err = convert_with(&cfg3, &[bag], &dir.path().join("3"), 1.0).unwrap_err();
    assert!(err.to_string().contains("no frame fits"), "{err}");
}

#[test]
fn fps_need_not_divide_the_source_rate() {
    let dir = tempfile::tempdir().unwrap();
    // 100 Hz source, 7 fps output: ticks at round(k * 10^9 / 7) ns.
    let times: Vec<i64> = (0..=100).map(|i| i * 10).collect();
    let bag = float_bag(dir.path(), &[("/a", &times)]);
    let out = dir.path().join("ds");
    convert_with(
        "fps: 7\ntask: t\nfeatures:\n  a: {topic: /a, field: data}\n",
        &[bag],
        &out,
        0.3,
    )
    .unwrap();
    // Tick k at 142.857k ms: the nearest 10 ms message (ties impossible here).
    let want: Vec<Vec<f32>> = (0..=7)
        .map(|k| {
            let t = (k as f64 * 1000.0 / 7.0 / 10.0).round() * 10.0;
            vec![t as f32]
        })
        .collect();
    assert_eq!(values(&out, "a"), want);
}
