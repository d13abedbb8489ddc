//! A tabular conversion of a sqlite3 camera bag reads the camera rows' keys, not their
//! pictures: window reads leave the payloads of topics not wanted in the file.
//!
//! Counted with the process's `rchar` (bytes read by read and pread, page cache or not), so
//! this binary holds this one test: nothing else reads while it counts.

mod common;

use std::path::Path;

use bagstream::bag::rosbag2 as rb2;
use bagstream::bag::sqlite3::FileOptions;
use bagstream::bag::OpenOptions;
use rusqlite::Connection;

fn bytes_read() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
}

const PICTURE: usize = 64 << 10;

/// 120 pictures of 64 KiB on /cam, one joint row between each two.
fn write_db(path: &Path, index: bool, reverse: bool) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, \
         serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);
         INSERT INTO topics VALUES (1, '/joints', 'std_msgs/msg/String', 'cdr', '');
         INSERT INTO topics VALUES (2, '/cam', 'std_msgs/msg/String', 'cdr', '');
         CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, \
         timestamp INTEGER NOT NULL, data BLOB NOT NULL);",
    )
    .unwrap();
    if index {
        db.execute_batch("CREATE INDEX timestamp_idx ON messages (timestamp ASC);")
            .unwrap();
    }
    let mut rows: Vec<i64> = (0..240).collect();
    if reverse {
        rows.reverse();
    }
    let mut st = db
        .prepare("INSERT INTO messages (topic_id, timestamp, data) VALUES (?1, ?2, ?3)")
        .unwrap();
    for i in rows {
        let len = if i % 2 == 0 { 40 } else { PICTURE };
        st.execute(rusqlite::params![
            1 + i % 2,
            1_000 + i * 10,
            vec![i as u8; len]
        ])
        .unwrap();
    }
}

#[test]
fn payloads_of_topics_not_wanted_are_not_read() {
    if bytes_read().is_none() {
        common::skip("no /proc/self/io to count the bytes read");
        return;
    }
    let pictures = 120 * PICTURE as u64;
    // The three read plans: timestamp index, rowid walk, sorted row list.
    for (index, reverse) in [(true, false), (false, false), (false, true)] {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.db3");
        write_db(&path, index, reverse);
        let mut bag =
            rb2::open_file(&path, &OpenOptions::default(), &FileOptions::default()).unwrap();
        let plan = format!("index {index}, rows reversed {reverse}");

        let before = bytes_read().unwrap();
        let mut joints = Vec::new();
        for k in 0..24 {
            let t = 1_000 + k * 100;
            bag.read_window(t, t + 100, &[true, false], &mut joints)
                .unwrap();
        }
        let read = bytes_read().unwrap() - before;
        assert_eq!(joints.len(), 120, "{plan}");
        assert!(
            joints.iter().all(|m| m.conn == 0 && m.data().len() == 40),
            "{plan}"
        );
        assert!(
            read < pictures / 4,
            "{plan}: {read} bytes read for joints beside {pictures} bytes of pictures"
        );

        // Wanted, the pictures are read: the count sees them.
        let before = bytes_read().unwrap();
        let mut all = Vec::new();
        bag.read_window(1_000, 4_000, &[true, true], &mut all)
            .unwrap();
        let read_all = bytes_read().unwrap() - before;
        assert_eq!(all.len(), 240, "{plan}");
        assert!(read_all >= pictures / 2, "{plan}: {read_all} bytes for all");
    }
}
