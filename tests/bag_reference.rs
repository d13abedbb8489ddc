//! Our ROS1 reader against the `rosbag` crate on every real bag in ../shared/bags and on the
//! repository's fixtures: the same (topic, time, payload) for every message, in the same order,
//! whether read in one window or in many small ones.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use bagstream::bag;
use bagstream::Time;
use common::rosbag_crate_messages;

type Msg = (String, Time, Vec<u8>);

fn bags_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            bags_under(&p, out);
        } else if p.extension().is_some_and(|e| e == "bag") {
            out.push(p);
        }
    }
}

/// Read every message with windows of `step` ns (one window covering everything when None).
fn ours(path: &Path, step: Option<Time>) -> Result<Vec<Msg>, String> {
    let mut b = bag::open(path).map_err(|e| e.to_string())?;
    let summary = b.summary().clone();
    let Some((first, last)) = summary.time_range() else {
        return Ok(Vec::new());
    };
    let wanted = vec![true; summary.connections.len()];
    let step = step.unwrap_or(last - first + 1);
    let mut msgs = Vec::new();
    let mut t = first;
    while t <= last {
        let mut out = Vec::new();
        b.read_window(t, t + step, &wanted, &mut out)
            .map_err(|e| e.to_string())?;
        msgs.extend(out.into_iter().map(|m| {
            (
                summary.connections[m.conn].topic.clone(),
                m.time,
                m.data().to_vec(),
            )
        }));
        t += step;
    }
    Ok(msgs)
}

fn reference(path: &Path) -> Result<Vec<Msg>, String> {
    rosbag_crate_messages(path)
}

fn first_difference(a: &[Msg], b: &[Msg]) -> String {
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        return format!(
            "message {i}: ours ({}, {}, {} bytes) vs ({}, {}, {} bytes)",
            a[i].0,
            a[i].1,
            a[i].2.len(),
            b[i].0,
            b[i].1,
            b[i].2.len()
        );
    }
    format!("{} messages vs {}", a.len(), b.len())
}

fn check_bag(path: &Path, report: &mut Vec<String>, failures: &mut Vec<String>) {
    let name = path.display();
    let full = match ours(path, None) {
        Ok(m) => m,
        Err(e) => {
            failures.push(format!("{name}: our reader failed: {e}"));
            return;
        }
    };
    let summary = bag::open(path).unwrap().summary().clone();
    if full.len() as u64 != summary.message_count() {
        failures.push(format!(
            "{name}: read {} messages, the scan counted {}",
            full.len(),
            summary.message_count()
        ));
    }
    if let Some((first, last)) = summary.time_range() {
        // About a hundred windows whatever the bag's duration.
        let step = (last - first) / 97 + 1;
        match ours(path, Some(step)) {
            Ok(stepped) if stepped == full => {}
            Ok(stepped) => failures.push(format!(
                "{name}: windows of {step} ns differ from one window: {}",
                first_difference(&stepped, &full)
            )),
            Err(e) => failures.push(format!("{name}: stepped read failed: {e}")),
        }
    }
    match catch_unwind(AssertUnwindSafe(|| reference(path))) {
        Ok(Ok(refm)) => {
            if refm == full {
                report.push(format!(
                    "{name}: {} messages, same as rosbag crate",
                    full.len()
                ));
            } else {
                failures.push(format!(
                    "{name}: differs from the rosbag crate: {}",
                    first_difference(&full, &refm)
                ));
            }
        }
        Ok(Err(e)) => report.push(format!(
            "{name}: {} messages; reference cannot read: {e}",
            full.len()
        )),
        Err(_) => report.push(format!(
            "{name}: {} messages; reference cannot read: it panicked",
            full.len()
        )),
    }
}

#[test]
fn every_bag_matches_the_reference() {
    let mut paths = Vec::new();
    match common::shared_bags() {
        Some(shared) => bags_under(&shared, &mut paths),
        // Recorded as skipped: the fixtures alone are not what this test is for.
        None => eprintln!("checking fixtures only"),
    }
    bags_under(Path::new("fixtures"), &mut paths);
    let (mut report, mut failures) = (Vec::new(), Vec::new());
    for p in &paths {
        check_bag(p, &mut report, &mut failures);
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn counts_match_the_inventory() {
    let Some(shared) = common::shared_bags() else {
        return;
    };
    for (bag, count) in [
        ("rosbagjs/example.bag", 8647),
        ("rosbagjs/example-bz2.bag", 8647),
        ("rosbagjs/example-lz4.bag", 8647),
        ("robot_state_publisher/joint_states_indexed.bag", 1598),
        ("rosbagjs/example-unsorted-chunks.bag", 3),
        ("webviz/bag-with-empty-message-definition.bag", 14),
        ("synthetic_official/official_lz4_multiframe.bag", 220),
        ("rosbagjs/no-messages.bag", 0),
    ] {
        let path = shared.join(bag);
        let msgs = ours(&path, None).unwrap();
        assert_eq!(msgs.len(), count, "{bag}");
    }
    let example = bag::open(&shared.join("rosbagjs/example.bag")).unwrap();
    let tf = example.summary().connections_on("/tf");
    assert_eq!(tf.len(), 2);
    assert!(tf
        .iter()
        .all(|&c| example.summary().connections[c].datatype == "tf/tfMessage"));
}

#[test]
fn unindexed_fixture_reads_like_the_indexed_one() {
    let a = ours(Path::new("fixtures/teleop_lz4.bag"), None).unwrap();
    let b = ours(Path::new("fixtures/teleop_unindexed.bag"), None).unwrap();
    assert_eq!(a.len(), 750);
    assert_eq!(a, b);
    let s = bag::open(Path::new("fixtures/teleop_unindexed.bag")).unwrap();
    assert!(!s.summary().indexed);
    assert!(s.summary().warnings[0].contains("teleop_unindexed.bag"));
}
