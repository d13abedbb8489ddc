//! Every rosbag2 bag of ../shared/bags (sqlite3 and MCAP storage) read by bagstream against the independent `rosbags`
//! package (tests/reference/rosbag2_reference.json, made by make_rosbag2_reference.py):
//! topics, counts, first/last receive times and a sha256 over each topic's (timestamp, data)
//! sequence, read whole and in consecutive windows of several sizes. Then damaged copies:
//! broken metadata.yaml, a split bag missing a file, a corrupt sqlite page.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use bagstream::bag::rosbag2 as rb2;
use bagstream::bag::sqlite3::FileOptions;
use bagstream::bag::{BagError, BagSource, OpenOptions};

fn reference() -> serde_json::Value {
    let text = include_str!("reference/rosbag2_reference.json");
    serde_json::from_str(text).expect("reference parses")
}

fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn BagSource>, BagError> {
    if path.is_dir() {
        rb2::open(path, opts)
    } else {
        rb2::open_file(path, opts, &FileOptions::default())
    }
}

type Key = (String, String, String);

#[derive(Default, Debug, PartialEq)]
struct Topic {
    count: u64,
    first: Option<i64>,
    last: Option<i64>,
    sha256: String,
}

/// Per topic: what the reference computes, from messages read in windows of `w` ns.
fn read_topics(bag: &mut dyn BagSource, w: Option<i64>) -> BTreeMap<Key, Topic> {
    let s = bag.summary();
    let keys: Vec<Key> = s
        .connections
        .iter()
        .map(|c| (c.topic.clone(), c.datatype.clone(), c.encoding.clone()))
        .collect();
    let wanted = vec![true; keys.len()];
    let mut hashes: BTreeMap<Key, (Sha256, Topic)> = BTreeMap::new();
    for k in &keys {
        hashes.entry(k.clone()).or_default();
    }
    let Some((t0, t1)) = s
        .stats
        .iter()
        .filter_map(|x| x.first)
        .min()
        .zip(s.stats.iter().filter_map(|x| x.last).max())
    else {
        return hashes
            .into_iter()
            .map(|(k, (h, t))| {
                (
                    k,
                    Topic {
                        sha256: hex(h),
                        ..t
                    },
                )
            })
            .collect();
    };
    let w = w.unwrap_or(t1 - t0 + 1).max(1);
    let mut t = t0;
    let mut prev = (i64::MIN, (0u64, 0u64));
    while t <= t1 {
        let mut out = Vec::new();
        bag.read_window(t, t.saturating_add(w), &wanted, &mut out)
            .expect("window reads");
        for m in &out {
            assert!(
                m.time >= t && m.time < t.saturating_add(w),
                "message outside its window"
            );
            assert!(
                (m.time, m.order) > prev,
                "not in (time, order) order, or order not unique"
            );
            prev = (m.time, m.order);
            let (h, top) = hashes.get_mut(&keys[m.conn]).expect("key");
            h.update(m.time.to_le_bytes());
            h.update(m.data());
            top.count += 1;
            top.first.get_or_insert(m.time);
            top.last = Some(m.time);
        }
        t = t.saturating_add(w);
    }
    hashes
        .into_iter()
        .map(|(k, (h, t))| {
            (
                k,
                Topic {
                    sha256: hex(h),
                    ..t
                },
            )
        })
        .collect()
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_rosbag2_bag_matches_rosbags() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let reference = reference();
    let entries = reference.as_object().expect("object");
    let tmp = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        tmp_dir: Some(tmp.path().to_path_buf()),
        ..Default::default()
    };
    let mut checked = 0;
    for (rel, want) in entries {
        let path = bags.join(rel);
        if want.get("error").is_some() {
            eprintln!("{rel}: rosbags could not read it; not compared");
            continue;
        }
        let mut bag = open(&path, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let s = bag.summary();
        assert_eq!(
            s.message_count(),
            want["message_count"].as_u64().unwrap(),
            "{rel}: message count"
        );
        assert!(
            !s.files.is_empty() && s.files.iter().all(|f| f.size > 0),
            "{rel}: files"
        );
        assert_eq!(s.file_size, s.files.iter().map(|f| f.size).sum::<u64>());
        assert_eq!(s.blocks.is_empty(), s.message_count() == 0, "{rel}: blocks");
        let in_blocks: u64 = s.blocks.iter().map(|b| b.stored_bytes).sum();
        assert!(
            in_blocks > 0 || s.message_count() == 0,
            "{rel}: block sizes"
        );
        let span = s
            .stats
            .iter()
            .filter_map(|x| x.first)
            .min()
            .zip(s.stats.iter().filter_map(|x| x.last).max())
            .map_or(1, |(a, b)| b - a + 1);
        let whole = read_topics(bag.as_mut(), None);
        let mut want_topics = BTreeMap::new();
        for t in want["topics"].as_array().unwrap() {
            let key = (
                t["name"].as_str().unwrap().to_string(),
                t["type"].as_str().unwrap().to_string(),
                t["serialization_format"].as_str().unwrap().to_string(),
            );
            want_topics.insert(
                key,
                Topic {
                    count: t["count"].as_u64().unwrap(),
                    first: t["first"].as_i64(),
                    last: t["last"].as_i64(),
                    sha256: t["sha256"].as_str().unwrap().to_string(),
                },
            );
        }
        assert_eq!(whole, want_topics, "{rel}: topics read whole");
        // Summary stats agree with what was read.
        let s = bag.summary();
        for (c, st) in s.connections.iter().zip(&s.stats) {
            let t = &whole[&(c.topic.clone(), c.datatype.clone(), c.encoding.clone())];
            assert_eq!(
                (st.count, st.first, st.last),
                (t.count, t.first, t.last),
                "{rel}: {}",
                c.topic
            );
        }
        for parts in [3, 17, 200] {
            let w = (span / parts).max(1);
            assert_eq!(
                read_topics(bag.as_mut(), Some(w)),
                want_topics,
                "{rel}: windows of {w} ns"
            );
        }
        // first_and_last agrees with the stats.
        for c in 0..bag.summary().connections.len() {
            let st = bag.summary().stats[c];
            match bag.first_and_last(c).unwrap() {
                Some((a, b)) => assert_eq!((Some(a.time), Some(b.time)), (st.first, st.last)),
                None => assert_eq!(st.count, 0),
            }
        }
        drop(bag);
        checked += 1;
    }
    let readable = entries
        .values()
        .filter(|v| v.get("error").is_none())
        .count();
    assert!(readable >= 18, "the reference has {readable} bags");
    assert_eq!(checked, readable);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temporary copies of whole-file zstd bags are removed"
    );
}

#[test]
fn the_reference_covers_every_rosbag2_bag() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let reference = reference();
    let mut found = Vec::new();
    let mut stack = vec![bags.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.join("metadata.yaml").is_file() {
                    found.push(p);
                } else {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "db3") {
                found.push(p);
            }
        }
    }
    for p in found {
        let rel = p
            .strip_prefix(&bags)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            reference.get(&rel).is_some(),
            "{rel} is not in rosbag2_reference.json"
        );
    }
}

fn copy_dir(src: &Path, dst: &Path, skip: &[&str]) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !skip.contains(&name.as_str()) {
            let to = dst.join(&name);
            std::fs::copy(e.path(), &to).unwrap();
            // The shared copies are read-only; the tests change theirs.
            let mut p = std::fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            p.set_readonly(false);
            std::fs::set_permissions(&to, p).unwrap();
        }
    }
}

fn shared(rel: &str) -> Option<PathBuf> {
    common::shared_bags().map(|b| b.join(rel))
}

#[test]
fn the_split_sqlite3_bag_is_one_recording() {
    let Some(dir) = shared("rosbag2/sqlite3_wbag_split") else {
        return;
    };
    let bag = rb2::open(&dir, &OpenOptions::default()).unwrap();
    let s = bag.summary();
    assert_eq!(s.message_count(), 6074);
    assert_eq!(s.files.len(), 5);
    assert_eq!(s.storage.id, "sqlite3");
    assert_eq!(s.storage.version, "4");
    assert_eq!(s.connections.len(), 8, "merged by topic, type and format");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn a_directory_without_metadata_is_read_from_its_files() {
    let Some(src) = shared("rosbag2/sqlite3_wbag_split") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&src, tmp.path(), &["metadata.yaml"]);
    let bag = rb2::open(tmp.path(), &OpenOptions::default()).unwrap();
    assert_eq!(bag.summary().message_count(), 6074);
    assert!(
        bag.summary()
            .warnings
            .iter()
            .any(|w| w.contains("no metadata.yaml")),
        "{:?}",
        bag.summary().warnings
    );
    let empty = tempfile::tempdir().unwrap();
    let e = rb2::open(empty.path(), &OpenOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, BagError::NoBag { .. }), "{e}");
}

#[test]
fn a_broken_metadata_yaml_names_the_file_and_line() {
    let Some(src) = shared("rosbag2/sqlite3_talker") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&src, tmp.path(), &[]);
    let meta = tmp.path().join("metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    for (broken, expect) in [
        (
            text.replace("message_count: 20", "message_count: [20"),
            "line",
        ),
        (text.replace("        name: /topic\n", ""), "name"),
        (text.replace("version: 4", "version: 42"), "version"),
        (
            text.replace(
                "storage_identifier: sqlite3",
                "storage_identifier: rosbag_v2",
            ),
            "storage_identifier",
        ),
    ] {
        std::fs::write(&meta, &broken).unwrap();
        let e = rb2::open(tmp.path(), &OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("metadata.yaml") && e.contains(expect), "{e}");
    }
    // Counts that disagree are warnings, not errors.
    std::fs::write(
        &meta,
        text.replace("message_count: 10", "message_count: 11"),
    )
    .unwrap();
    let bag = rb2::open(tmp.path(), &OpenOptions::default()).unwrap();
    assert!(
        bag.summary()
            .warnings
            .iter()
            .any(|w| w.contains("message_count 11")),
        "{:?}",
        bag.summary().warnings
    );
}

#[test]
fn a_split_bag_missing_a_file_names_it() {
    let Some(src) = shared("rosbag2/sqlite3_wbag_split") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&src, tmp.path(), &["wbag_2.db3"]);
    let e = rb2::open(tmp.path(), &OpenOptions::default())
        .err()
        .unwrap();
    let s = e.to_string();
    assert!(s.contains("wbag_2.db3") && s.contains("missing"), "{s}");
}

#[test]
fn a_corrupt_sqlite_page_is_an_error_naming_the_file() {
    let Some(src) = shared("rosbag2/sqlite3_wbag_split") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&src, tmp.path(), &[]);
    let victim = tmp.path().join("wbag_3.db3");
    let mut bytes = std::fs::read(&victim).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    // Every page after the first (the schema) overwritten in turn: each must fail cleanly
    // or read (a page SQLite does not need); never panic.
    let pristine = bytes.clone();
    let mut errors = 0;
    for k in 1..bytes.len() / page {
        bytes.copy_from_slice(&pristine);
        for (i, b) in bytes[k * page..(k + 1) * page].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151) ^ 0x5a;
        }
        std::fs::write(&victim, &bytes).unwrap();
        let r = rb2::open(tmp.path(), &OpenOptions::default()).and_then(|mut bag| {
            let n = bag.summary().connections.len();
            let mut out = Vec::new();
            bag.read_window(i64::MIN, i64::MAX, &vec![true; n], &mut out)?;
            Ok(out.len())
        });
        if let Err(e) = r {
            errors += 1;
            assert!(e.to_string().contains("wbag_3.db3"), "page {k}: {e}");
        }
    }
    assert!(errors > 0);
    // The header itself.
    bytes.copy_from_slice(&pristine);
    bytes[..16].copy_from_slice(b"not sqlite at al");
    std::fs::write(&victim, &bytes).unwrap();
    let e = rb2::open(tmp.path(), &OpenOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("wbag_3.db3"), "{e}");
}

#[test]
fn whole_file_zstd_copies_go_away_and_say_where_they_were() {
    let Some(dir) = shared("rosbag2/file_compression") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        tmp_dir: Some(tmp.path().to_path_buf()),
        ..Default::default()
    };
    let bag = rb2::open(&dir, &opts).unwrap();
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 4);
    let s = bag.summary();
    assert_eq!(s.message_count(), 775);
    assert!(s
        .files
        .iter()
        .all(|f| f.path.to_string_lossy().ends_with(".db3.zstd")));
    // Not damage: a note, which conversion prints and inspect shows.
    assert!(s
        .notes
        .iter()
        .any(|w| w.contains("temporary file") && w.contains(&tmp.path().display().to_string())));
    assert!(s.warnings.iter().all(|w| !w.contains("temporary file")));
    drop(bag);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // A failure half way (a corrupt second file) removes the first file's copy too.
    let broken = tempfile::tempdir().unwrap();
    copy_dir(&dir, broken.path(), &[]);
    let f1 = broken.path().join("file_compression_1.db3.zstd");
    let b = std::fs::read(&f1).unwrap();
    std::fs::write(&f1, &b[..b.len() / 2]).unwrap();
    let e = rb2::open(broken.path(), &opts).err().unwrap();
    assert!(e.to_string().contains("file_compression_1.db3.zstd"), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
