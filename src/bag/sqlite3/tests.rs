//! Small .db3 files written here, in each schema and row layout rosbag2 has had.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;

use super::*;

const OLD: &str = "CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, \
    serialization_format TEXT NOT NULL);
    CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, timestamp INTEGER NOT NULL, \
    data BLOB NOT NULL);";
const NEW: &str = "CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
    INSERT INTO schema VALUES (4, 'jazzy');
    CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, \
    serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL, type_description_hash TEXT NOT NULL);
    CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT NULL, encoding TEXT NOT NULL, \
    encoded_message_definition TEXT NOT NULL, type_description_hash TEXT NOT NULL);
    INSERT INTO message_definitions VALUES (1, 'std_msgs/msg/String', 'ros2msg', 'string data', 'RIHS01_aa');
    INSERT INTO message_definitions VALUES (2, 'std_msgs/msg/Empty', 'unknown', '', '');
    CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, timestamp INTEGER NOT NULL, \
    data BLOB NOT NULL);";
const INDEX: &str = "CREATE INDEX timestamp_idx ON messages (timestamp ASC);";

/// (topic id, timestamp, data) in rowid order.
type Row = (i64, i64, Vec<u8>);

fn rows(n: i64, shuffle: bool) -> Vec<Row> {
    let mut out: Vec<Row> = (0..n)
        .map(|i| {
            let topic = 1 + i % 2;
            // Two messages share each timestamp: ties are ordered by rowid.
            let t = 1_000 + (i / 2) * 10;
            let len = if i % 7 == 0 {
                3000
            } else {
                20 + (i % 5) as usize
            };
            (
                topic,
                t,
                (0..len).map(|k| (k as i64 * 31 + i) as u8).collect(),
            )
        })
        .collect();
    if shuffle {
        // A fixed permutation: receive order is not rowid order.
        let m = out.len();
        let mut p: Vec<usize> = (0..m).collect();
        p.sort_by_key(|&i| (i * 7919) % m.max(1));
        out = p.into_iter().map(|i| out[i].clone()).collect();
    }
    out
}

fn write_db(path: &Path, schema: &str, index: bool, rows: &[Row], zstd_level: Option<i32>) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(schema).unwrap();
    if schema.contains("offered_qos_profiles") {
        db.execute_batch(
            "INSERT INTO topics VALUES (1, '/a', 'std_msgs/msg/String', 'cdr', '- history: 3', 'RIHS01_aa');
             INSERT INTO topics VALUES (2, '/b', 'std_msgs/msg/Empty', 'cdr', '', '');",
        )
        .unwrap();
    } else {
        db.execute_batch(
            "INSERT INTO topics VALUES (1, '/a', 'std_msgs/msg/String', 'cdr');
             INSERT INTO topics VALUES (2, '/b', 'std_msgs/msg/Empty', 'cdr');",
        )
        .unwrap();
    }
    if index {
        db.execute_batch(INDEX).unwrap();
    }
    let mut st = db
        .prepare("INSERT INTO messages (topic_id, timestamp, data) VALUES (?1, ?2, ?3)")
        .unwrap();
    for (topic, t, data) in rows {
        let data = match zstd_level {
            Some(l) => zstd::bulk::compress(data, l).unwrap(),
            None => data.clone(),
        };
        st.execute(rusqlite::params![topic, t, data]).unwrap();
    }
}

fn open(path: &Path, message_zstd: bool) -> Sqlite3Bag {
    let fopts = FileOptions {
        message_zstd,
        shown_as: None,
    };
    Sqlite3Bag::open(path, BufferPool::new(), &fopts).unwrap()
}

/// Every message read in consecutive windows of `w`, as (time, conn, rowid, data).
fn read_all(bag: &mut Sqlite3Bag, w: i64) -> Vec<(Time, usize, u64, Vec<u8>)> {
    let (t0, t1) = (
        bag.summary()
            .stats
            .iter()
            .filter_map(|s| s.first)
            .min()
            .unwrap(),
        bag.summary()
            .stats
            .iter()
            .filter_map(|s| s.last)
            .max()
            .unwrap(),
    );
    let wanted = vec![true; bag.summary().connections.len()];
    let mut got = Vec::new();
    let mut t = t0 - 3;
    while t <= t1 {
        let mut out = Vec::new();
        bag.read_window(t, t + w, &wanted, &mut out).unwrap();
        for m in &out {
            assert!(m.time >= t && m.time < t + w);
        }
        got.extend(
            out.iter()
                .map(|m| (m.time, m.conn, m.order.1, m.data().to_vec())),
        );
        t += w;
    }
    got
}

/// What a reader must give for `rows`: sorted by (time, rowid), rowids from 1.
fn expected(rows: &[Row]) -> Vec<(Time, usize, u64, Vec<u8>)> {
    let mut e: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, (topic, t, d))| (*t, (*topic - 1) as usize, i as u64 + 1, d.clone()))
        .collect();
    e.sort_by_key(|x| (x.0, x.2));
    e
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Write a file, check its plan and reads; returns the directory (removed when dropped) and
/// the file.
fn check_plan(
    schema: &str,
    index: bool,
    shuffle: bool,
    plan: &str,
) -> (tempfile::TempDir, PathBuf) {
    let d = dir();
    let path = d.path().join("x.db3");
    let rs = rows(400, shuffle);
    write_db(&path, schema, index, &rs, None);
    let mut bag = open(&path, false);
    let read = &bag.summary().storage.details;
    assert!(
        read.iter().any(|(k, v)| k == "read" && v.starts_with(plan)),
        "{read:?}"
    );
    let s = bag.summary();
    assert_eq!(s.message_count(), 400);
    assert_eq!(s.stats[0].count, 200);
    assert_eq!(s.stats[0].first, Some(1000));
    assert_eq!(s.stats[1].last, Some(1000 + 199 * 10));
    let stored: u64 = s.blocks.iter().map(|b| b.stored_bytes).sum();
    assert_eq!(stored, rs.iter().map(|r| r.2.len() as u64).sum::<u64>());
    for w in [1, 7, 10, 25, 333, 100_000] {
        assert_eq!(read_all(&mut bag, w), expected(&rs), "windows of {w}");
    }
    // Windows asked again, out of order, still hold the same messages.
    let wanted = [true, false];
    let mut out = Vec::new();
    bag.read_window(1500, 1600, &wanted, &mut out).unwrap();
    bag.read_window(1000, 1100, &wanted, &mut out).unwrap();
    assert_eq!(out.len(), 10 + 10);
    assert!(out.iter().all(|m| m.conn == 0));
    // First and last of a topic in (time, rowid) order.
    let (a, b) = bag.first_and_last(1).unwrap().unwrap();
    let e = expected(&rs);
    let on1: Vec<_> = e.iter().filter(|x| x.1 == 1).collect();
    assert_eq!(
        (a.time, a.order.1, a.data()),
        (on1[0].0, on1[0].2, &on1[0].3[..])
    );
    let z = on1.last().unwrap();
    assert_eq!((b.time, b.order.1, b.data()), (z.0, z.2, &z.3[..]));
    (d, path)
}

#[test]
fn old_schema_with_time_index() {
    let (_d, p) = check_plan(OLD, true, false, "timestamp index");
    let bag = open(&p, false);
    let c = &bag.summary().connections[0];
    assert_eq!((c.schema_format.as_str(), c.definition.as_str()), ("", ""));
    assert_eq!(bag.summary().storage.version, "schema 1");
    assert!(
        bag.summary().warnings.is_empty(),
        "{:?}",
        bag.summary().warnings
    );
}

#[test]
fn new_schema_definitions_and_extras() {
    let (_d, p) = check_plan(NEW, true, true, "timestamp index");
    let bag = open(&p, false);
    let s = bag.summary();
    let a = &s.connections[0];
    assert_eq!((a.topic.as_str(), a.encoding.as_str()), ("/a", "cdr"));
    assert_eq!(
        (a.schema_format.as_str(), a.definition.as_str()),
        ("ros2msg", "string data")
    );
    assert_eq!(
        a.extra,
        ConnectionExtra::Rosbag2 {
            offered_qos_profiles: "- history: 3".into(),
            type_description_hash: "RIHS01_aa".into()
        }
    );
    // "unknown" encoding: no definition; the caller resolves it.
    assert_eq!(s.connections[1].schema_format, "");
    assert_eq!(s.storage.version, "schema 4");
    assert!(s
        .storage
        .details
        .contains(&("ros distro".into(), "jazzy".into())));
}

#[test]
fn no_time_index_rows_in_order_walk_by_rowid() {
    let (_d, p) = check_plan(OLD, false, false, "rowid order");
    let bag = open(&p, false);
    assert!(bag
        .summary()
        .warnings
        .iter()
        .any(|w| w.contains("no index on timestamp")));
}

#[test]
fn no_time_index_rows_out_of_order_use_a_sorted_row_list() {
    let _ = check_plan(NEW, false, true, "sorted row list");
}

#[test]
fn sorted_walk_resumes_where_the_last_window_stopped() {
    // Many megabytes, so that there are several checkpoints, read in windows.
    let d = dir();
    let path = d.path().join("big.db3");
    let rs: Vec<Row> = (0..600)
        .map(|i| (1, i * 5, vec![i as u8; 10_000]))
        .collect();
    write_db(&path, OLD, false, &rs, None);
    let mut bag = open(&path, false);
    let Plan::Sorted { checkpoints } = &bag.st.plan else {
        panic!("plan")
    };
    assert!(checkpoints.len() >= 5, "{}", checkpoints.len());
    assert!(bag.summary().blocks.len() >= 5);
    let wanted = [true, true];
    let mut n = 0;
    for k in 0..30 {
        let mut out = Vec::new();
        bag.read_window(k * 100, (k + 1) * 100, &wanted, &mut out)
            .unwrap();
        n += out.len();
        // Each row once, plus the one that ends each window.
        assert!(
            bag.rows_visited() <= n as u64 + k as u64 + 1,
            "{} rows for {n}",
            bag.rows_visited()
        );
        // Several messages per pooled buffer.
        if out.len() > 1 {
            assert!(Arc::ptr_eq(&out[0].buf, &out[1].buf));
        }
    }
    assert_eq!(n, 600);
    // A window far ahead starts at the checkpoint before it, not at the beginning.
    let before = bag.rows_visited();
    let mut out = Vec::new();
    bag.read_window(2500, 2510, &wanted, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    let run = 1 + (1 << 20) / 10_016;
    assert!(
        bag.rows_visited() - before <= run as u64 + 3,
        "{}",
        bag.rows_visited() - before
    );
}

#[test]
fn message_zstd_is_decompressed() {
    let d = dir();
    let path = d.path().join("z.db3");
    let rs = rows(100, false);
    write_db(&path, NEW, true, &rs, Some(3));
    let mut bag = open(&path, true);
    assert_eq!(read_all(&mut bag, 50), expected(&rs));
    let raw: u64 = bag.summary().blocks.iter().map(|b| b.raw_bytes).sum();
    assert_eq!(raw, rs.iter().map(|r| r.2.len() as u64).sum::<u64>());
    assert!(bag.summary().blocks.iter().all(|b| b.compression == "zstd"));
    // Opened without being told (a bare .db3), the frames are recognised and decompressed.
    let mut bare = open(&path, false);
    assert!(bare
        .summary()
        .warnings
        .iter()
        .any(|w| w.contains("zstd frames")));
    assert_eq!(read_all(&mut bare, 50), expected(&rs));
}

#[test]
fn a_bad_zstd_frame_is_an_error_naming_the_row() {
    let d = dir();
    let path = d.path().join("z.db3");
    write_db(&path, OLD, true, &rows(10, false), None);
    let mut bag = open(&path, true);
    let mut out = Vec::new();
    let e = bag
        .read_window(0, i64::MAX, &[true, true], &mut out)
        .unwrap_err();
    assert!(
        e.to_string().contains("z.db3") && e.to_string().contains("message row 1"),
        "{e}"
    );
    assert!(out.is_empty());
}

#[test]
fn empty_and_odd_files() {
    let d = dir();
    let path = d.path().join("e.db3");
    write_db(&path, NEW, true, &[], None);
    let mut bag = open(&path, false);
    assert_eq!(bag.summary().message_count(), 0);
    assert!(bag.summary().blocks.is_empty());
    assert!(bag.first_and_last(0).unwrap().is_none());
    let mut out = Vec::new();
    bag.read_window(0, 10, &[true, true], &mut out).unwrap();
    assert!(out.is_empty());

    // A SQLite file without rosbag2's tables.
    let other = d.path().join("other.db3");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let e = Sqlite3Bag::open(&other, BufferPool::new(), &FileOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, BagError::NotABag { .. }), "{e}");
    assert!(e.to_string().contains("no table topics"), "{e}");

    // Not SQLite at all.
    let txt = d.path().join("t.db3");
    std::fs::write(&txt, b"hello").unwrap();
    let e = Sqlite3Bag::open(&txt, BufferPool::new(), &FileOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, BagError::NotABag { .. }), "{e}");
}

#[test]
fn truncated_and_corrupt_files_are_errors_not_panics() {
    let d = dir();
    let path = d.path().join("c.db3");
    let rs: Vec<Row> = (0..300)
        .map(|i| (1 + i % 2, i, vec![i as u8; 700]))
        .collect();
    write_db(&path, NEW, true, &rs, None);
    let bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let mut failures = 0;
    // Truncated at several page boundaries and inside pages.
    for cut in [100, page, 2 * page + 17, bytes.len() / 2, bytes.len() - 10] {
        let p = d.path().join(format!("cut{cut}.db3"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        failures += usize::from(read_everything(&p).is_err());
    }
    // Garbage over single pages (the header page excepted: that one is "not a bag").
    for k in 1..bytes.len() / page {
        let mut b = bytes.clone();
        for (i, x) in b[k * page..(k + 1) * page].iter_mut().enumerate() {
            *x = (i * 37 + k) as u8;
        }
        let p = d.path().join(format!("page{k}.db3"));
        std::fs::write(&p, &b).unwrap();
        // A page of the free list or unused space need not be noticed.
        if let Err(e) = read_everything(&p) {
            failures += 1;
            assert!(e.to_string().contains(&format!("page{k}.db3")), "{e}");
        }
    }
    assert!(failures > 3, "{failures}");
}

fn read_everything(p: &Path) -> Result<usize, BagError> {
    let mut bag = Sqlite3Bag::open(p, BufferPool::new(), &FileOptions::default())?;
    let n = bag.summary().connections.len();
    let mut out = Vec::new();
    bag.read_window(i64::MIN, i64::MAX, &vec![true; n], &mut out)?;
    for c in 0..n {
        bag.first_and_last(c)?;
    }
    Ok(out.len())
}

#[test]
fn opening_creates_nothing_beside_the_file() {
    let d = dir();
    let path = d.path().join("ro.db3");
    write_db(&path, NEW, true, &rows(50, false), None);
    let before: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&path, perm).unwrap();
    let mut bag = open(&path, false);
    read_all(&mut bag, 100);
    drop(bag);
    let after: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn uri_escapes_odd_names() {
    let d = dir();
    let path = d.path().join("a ?#%é.db3");
    write_db(&path, OLD, true, &rows(10, false), None);
    assert_eq!(open(&path, false).summary().message_count(), 10);
}
