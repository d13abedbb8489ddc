//! One pass over `messages` at open: per-topic counts and time ranges, blocks of about a
//! megabyte by receive time, and how windows will be read.
//!
//! The pass reads `(id, topic_id, timestamp, length(data))` in rowid order: SQLite gets a
//! blob's length from the record header, so large payloads' overflow pages are not read.
//! (Per-message zstd bags also read the first bytes of each blob for the frame's content
//! size, which reads the blobs once.)

use rusqlite::Connection;

use super::ids::TopicIds;
use crate::bag::{Block, ConnectionStats};
use crate::Time;

/// Target stored bytes of one block (planning, progress and the memory estimate's unit).
pub const BLOCK_BYTES: u64 = 1 << 20;
/// At most this many blocks (a 64 GiB file still has blocks of about a megabyte).
const MAX_BLOCKS: u64 = 1 << 16;

/// How a window finds its rows.
#[derive(Debug)]
pub enum Plan {
    /// An index on timestamp: one range query per window.
    TimeIndex,
    /// No index, rows in timestamp order by rowid (how rosbag2 writes): a forward walk by
    /// rowid from a checkpoint, resumed where the previous window stopped.
    Sorted {
        /// (timestamp, rowid) of the first row of every run of about [`BLOCK_BYTES`].
        checkpoints: Vec<(Time, i64)>,
    },
    /// No index and rows out of timestamp order: (timestamp, rowid) of every row, sorted.
    /// 16 bytes per message, built once at open.
    RowIndex(Vec<(Time, i64)>),
}

/// A row's place in (time, rowid) order.
pub type RowKey = (Time, i64);
/// A topic's first and last row in (time, rowid) order; None without messages.
pub type FirstLast = Option<(RowKey, RowKey)>;

#[derive(Debug)]
pub struct Scan {
    /// Indexed like the topics given to [`scan`].
    pub stats: Vec<ConnectionStats>,
    /// Per topic: the first and last message's (timestamp, rowid) in (time, rowid) order.
    pub first_last: Vec<FirstLast>,
    pub blocks: Vec<Block>,
    pub plan: Plan,
    /// Rows in rowid order were in timestamp order.
    pub sorted: bool,
    /// Rows whose topic_id names no topic (skipped by reads).
    pub orphan_rows: u64,
    pub stored_bytes: u64,
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    count: u64,
    start: Time,
    end: Time,
    stored: u64,
    raw: u64,
}

/// Scan the messages of topics whose ids are `topic_ids` (index = connection index).
/// `file_size` sizes the time buckets; `message_zstd` asks for decompressed sizes.
pub fn scan(
    db: &Connection,
    topic_ids: &TopicIds,
    n_topics: usize,
    file_size: u64,
    message_zstd: bool,
    time_index: bool,
) -> rusqlite::Result<Scan> {
    // With an index, SQLite answers a lone MIN or MAX from one end of it, but a query with
    // both scans the table: two queries. Without one, one scan gives both.
    let (t0, t1): (Option<Time>, Option<Time>) = if time_index {
        (
            db.query_row("SELECT MIN(timestamp) FROM messages", [], |r| r.get(0))?,
            db.query_row("SELECT MAX(timestamp) FROM messages", [], |r| r.get(0))?,
        )
    } else {
        db.query_row(
            "SELECT MIN(timestamp), MAX(timestamp) FROM messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
    };
    let mut stats = vec![ConnectionStats::default(); n_topics];
    let mut first_last: Vec<FirstLast> = vec![None; n_topics];
    let (t0, t1) = match (t0, t1) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            return Ok(Scan {
                stats,
                first_last,
                blocks: Vec::new(),
                plan: if time_index {
                    Plan::TimeIndex
                } else {
                    Plan::Sorted {
                        checkpoints: Vec::new(),
                    }
                },
                sorted: true,
                orphan_rows: 0,
                stored_bytes: 0,
            })
        }
    };
    // Equal-width time buckets, as many as the file has megabytes: their sums are the blocks
    // (sizes over time, whatever the rowid order).
    let n_buckets = (file_size / BLOCK_BYTES).clamp(1, MAX_BLOCKS);
    // Buckets of one width, so that a row's bucket is one 64-bit division (a 128-bit one per
    // row was a visible part of the scan).
    let span = (t1 as i128 - t0 as i128 + 1) as u128;
    let width = span.div_ceil(n_buckets as u128).min(u64::MAX as u128) as u64;
    let bucket_of = |t: Time| -> usize {
        let off = (t as i128 - t0 as i128).max(0) as u64;
        (off / width).min(n_buckets - 1) as usize
    };
    let mut buckets = vec![Bucket::default(); n_buckets as usize];

    let sql = if message_zstd {
        "SELECT id, topic_id, timestamp, length(data), substr(data, 1, 18) FROM messages ORDER BY id"
    } else {
        "SELECT id, topic_id, timestamp, length(data) FROM messages ORDER BY id"
    };
    let mut st = db.prepare(sql)?;
    let mut rows = st.query([])?;
    let mut sorted = true;
    let mut prev = Time::MIN;
    let mut orphan_rows = 0u64;
    let mut checkpoints = Vec::new();
    let mut run = BLOCK_BYTES; // start a checkpoint at the first row
    let mut stored_bytes = 0u64;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let topic: i64 = r.get(1)?;
        let t: Time = r.get(2)?;
        let len = r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64;
        if t < prev {
            sorted = false;
        }
        prev = t;
        if run >= BLOCK_BYTES {
            checkpoints.push((t, id));
            run = 0;
        }
        run += len + 16;
        stored_bytes += len;
        let Some(conn) = topic_ids.get(topic) else {
            orphan_rows += 1;
            continue;
        };
        let raw = if message_zstd {
            let head = r
                .get_ref(4)?
                .as_blob_or_null()
                .ok()
                .flatten()
                .unwrap_or(&[]);
            match zstd::zstd_safe::get_frame_content_size(head) {
                Ok(Some(n)) => n,
                // Unknown: the stored size stands in (read windows grow as data arrives).
                _ => len,
            }
        } else {
            len
        };
        let s = &mut stats[conn];
        s.count += 1;
        s.first = Some(s.first.map_or(t, |f| f.min(t)));
        s.last = Some(s.last.map_or(t, |l| l.max(t)));
        let fl = &mut first_last[conn];
        *fl = Some(match *fl {
            None => ((t, id), (t, id)),
            Some((a, b)) => (a.min((t, id)), b.max((t, id))),
        });
        let b = &mut buckets[bucket_of(t)];
        if b.count == 0 {
            b.start = t;
            b.end = t;
        }
        b.count += 1;
        b.start = b.start.min(t);
        b.end = b.end.max(t);
        b.stored += len;
        b.raw += raw;
    }
    drop(rows);
    drop(st);

    let compression = if message_zstd { "zstd" } else { "none" };
    let blocks = buckets
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| Block {
            start: b.start,
            end: b.end,
            stored_bytes: b.stored,
            raw_bytes: b.raw,
            compression,
        })
        .collect();

    let plan = if time_index {
        Plan::TimeIndex
    } else if sorted {
        Plan::Sorted { checkpoints }
    } else {
        Plan::RowIndex(row_index(db)?)
    };
    Ok(Scan {
        stats,
        first_last,
        blocks,
        plan,
        sorted,
        orphan_rows,
        stored_bytes,
    })
}

/// (timestamp, rowid) of every row, sorted: 16 bytes per message, for a file whose rows are
/// neither indexed by time nor in time order.
fn row_index(db: &Connection) -> rusqlite::Result<Vec<(Time, i64)>> {
    let n: i64 = db.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    let mut st = db.prepare("SELECT timestamp, id FROM messages ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        out.push((r.get(0)?, r.get(1)?));
    }
    out.sort_unstable();
    Ok(out)
}
