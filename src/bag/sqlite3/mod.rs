//! rosbag2's sqlite3 storage: one `.db3` file, opened read-only.
//!
//! The file is opened with `SQLITE_OPEN_READ_ONLY` and the `immutable=1` URI parameter: SQLite
//! then takes no locks and creates no journal, WAL or shm file next to the bag (bags often
//! sit on read-only media). A `-wal` file left by a recorder that crashed is therefore not
//! read; that is warned.
//!
//! Windows are read by one of three plans ([`scan::Plan`]), decided once at open:
//! - an index on `timestamp` (rosbag2 writes `timestamp_idx`): one range query per window;
//! - no index, rows in time order by rowid (rosbag2 writes in receive order): a forward walk
//!   by rowid, resumed where the previous window stopped, or from the last checkpoint (every
//!   megabyte of rows) before the window: linear overall, rows read once;
//! - no index, rows out of order: a (timestamp, rowid) list of every row, 16 bytes a message,
//!   sorted once at open; each window looks its rows up by rowid.

mod ids;
mod pack;
pub mod scan;
pub mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::bag::buffer::BufferPool;
use crate::bag::{
    BagError, BagSource, BagSummary, Connection as BagConnection, ConnectionExtra, FileInfo,
    RawMessage, StorageInfo,
};
use crate::Time;
use ids::TopicIds;
use pack::Packer;
use scan::{Plan, Scan};

/// The first 16 bytes of every SQLite database file.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// What metadata.yaml says about one file that the file itself does not.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Each message's data is a zstd frame (compression_mode MESSAGE).
    pub message_zstd: bool,
    /// The name errors and the summary give the file (the `.db3.zstd` a temporary copy was
    /// decompressed from); None: the path opened.
    pub shown_as: Option<PathBuf>,
}

pub struct Sqlite3Bag {
    db: Connection,
    st: State,
}

/// Everything but the connection, so that a statement borrowing the connection and the
/// state taking its rows are disjoint borrows.
struct State {
    /// As shown in errors.
    path: PathBuf,
    summary: BagSummary,
    /// sqlite topic id -> connection index.
    topic_ids: TopicIds,
    first_last: Vec<scan::FirstLast>,
    plan: Plan,
    /// Sorted plan: (end of the last window, rowid of the first row at or after it).
    resume: Option<(Time, i64)>,
    message_zstd: bool,
    packer: Packer,
    /// Rows stepped over by window reads (for tests: the walk is linear).
    rows_visited: u64,
}

/// A SQLite error as a bag error naming the file (and what was being read).
fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> BagError {
    use rusqlite::ffi::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::NotADatabase => {
            BagError::NotABag {
                path: path.to_path_buf(),
                detail: format!("sqlite3: {e}"),
            }
        }
        _ => BagError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail: format!("sqlite3 {what}: {e}"),
        },
    }
}

/// `file:` URI of `path`, percent-encoding what a URI would read otherwise.
fn file_uri(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut s = String::from("file:");
    for &b in abs.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str("?mode=ro&immutable=1");
    s
}

impl Sqlite3Bag {
    /// Open `path`, a `.db3` file, and scan it.
    pub fn open(path: &Path, pool: BufferPool, fopts: &FileOptions) -> Result<Self, BagError> {
        let shown = fopts.shown_as.clone().unwrap_or_else(|| path.to_path_buf());
        let io = |source| BagError::Io {
            path: shown.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        let mut head = [0u8; 16];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(io)?;
            let n = f.read(&mut head).map_err(io)?;
            if n < 16 || &head != MAGIC {
                return Err(BagError::NotABag {
                    path: shown,
                    detail: "no SQLite header".into(),
                });
            }
        }
        let mut warnings = Vec::new();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            warnings.push(format!(
                "{}: its write-ahead log {} is not read (the bag is opened read-only as it is)",
                shown.display(),
                Path::new(&wal).display()
            ));
        }
        let db = Connection::open_with_flags(
            file_uri(path),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(&shown, "open", e))?;
        let sch = schema::read(&db).map_err(|e| match e {
            schema::SchemaError::Missing(detail) => BagError::NotABag {
                path: shown.clone(),
                detail: format!("not a rosbag2 sqlite3 file: {detail}"),
            },
            schema::SchemaError::Sql(e) => sql_error(&shown, "tables", e),
        })?;

        let mut connections = Vec::with_capacity(sch.topics.len());
        let mut topic_ids = TopicIds::default();
        for t in &sch.topics {
            let Ok(id) = u32::try_from(t.id) else {
                return Err(BagError::Corrupt {
                    path: shown,
                    offset: 0,
                    detail: format!("topic {}: id {} out of range", t.name, t.id),
                });
            };
            if !topic_ids.insert(t.id, connections.len()) {
                return Err(BagError::Corrupt {
                    path: shown,
                    offset: 0,
                    detail: format!("topic id {} twice", t.id),
                });
            }
            let (schema_format, definition) =
                sch.definition_of(&t.datatype, &t.type_description_hash);
            connections.push(BagConnection {
                id,
                topic: t.name.clone(),
                datatype: t.datatype.clone(),
                encoding: t.serialization_format.clone(),
                schema_format,
                definition,
                extra: ConnectionExtra::Rosbag2 {
                    offered_qos_profiles: t.offered_qos_profiles.clone(),
                    type_description_hash: t.type_description_hash.clone(),
                },
            });
        }

        // Per-message zstd is a fact of metadata.yaml, which a bare .db3 lacks: data that begin
        // with zstd's frame magic are frames whatever was said (CDR data begin with 0x00).
        let mut message_zstd = fopts.message_zstd;
        if !message_zstd {
            let head: Option<Vec<u8>> = db
                .query_row(
                    "SELECT substr(data, 1, 4) FROM messages ORDER BY id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(|e| sql_error(&shown, "messages", e))?;
            if head.as_deref() == Some(&ZSTD_MAGIC[..]) {
                message_zstd = true;
                warnings.push(format!(
                    "{}: message data are zstd frames though no per-message compression was \
                     declared (no metadata.yaml?): decompressed",
                    shown.display()
                ));
            }
        }

        let Scan {
            stats,
            first_last,
            blocks,
            plan,
            sorted,
            orphan_rows,
            stored_bytes: _,
        } = scan::scan(
            &db,
            &topic_ids,
            connections.len(),
            size,
            message_zstd,
            sch.time_index,
        )
        .map_err(|e| sql_error(&shown, "messages", e))?;
        if orphan_rows > 0 {
            warnings.push(format!(
                "{}: {orphan_rows} messages name a topic id the topics table lacks; skipped",
                shown.display()
            ));
        }
        let read_plan = match &plan {
            Plan::TimeIndex => "timestamp index",
            Plan::Sorted { .. } => "rowid order (no timestamp index, rows in time order)",
            Plan::RowIndex(_) => "sorted row list (no timestamp index, rows out of time order)",
        };
        if !sch.time_index {
            warnings.push(format!(
                "{}: no index on timestamp; windows are read in {read_plan}",
                shown.display()
            ));
        }
        let mut details = vec![(
            "compression".to_string(),
            if message_zstd { "zstd message" } else { "none" }.to_string(),
        )];
        if let Some(v) = sch.schema_version {
            details.push(("schema version".into(), v.to_string()));
        }
        if let Some(d) = sch.ros_distro.as_ref().filter(|d| !d.is_empty()) {
            details.push(("ros distro".into(), d.clone()));
        }
        details.push(("read".into(), read_plan.to_string()));
        details.push(("rows in time order".into(), sorted.to_string()));

        let summary = BagSummary {
            path: shown.clone(),
            storage: StorageInfo {
                id: "sqlite3",
                version: sch
                    .schema_version
                    .map_or_else(|| "schema 1".to_string(), |v| format!("schema {v}")),
                details,
            },
            files: vec![FileInfo {
                path: shown.clone(),
                size,
            }],
            file_size: size,
            indexed: true,
            connections,
            stats,
            blocks,
            warnings,
            notes: Vec::new(),
        };
        Ok(Sqlite3Bag {
            db,
            st: State {
                path: shown,
                summary,
                topic_ids,
                first_last,
                plan,
                resume: None,
                message_zstd,
                packer: Packer::new(pool),
                rows_visited: 0,
            },
        })
    }
}

impl Sqlite3Bag {
    /// Rows window reads have stepped over so far, taken or not.
    pub fn rows_visited(&self) -> u64 {
        self.st.rows_visited
    }
}

impl State {
    fn corrupt(&self, detail: String) -> BagError {
        BagError::Corrupt {
            path: self.path.clone(),
            offset: 0,
            detail,
        }
    }

    fn sql(&self, what: &str, e: rusqlite::Error) -> BagError {
        sql_error(&self.path, what, e)
    }

    /// The data column of a window query: `data` for the wanted topics' rows, NULL for the
    /// others. SQLite materialises every result column when it steps to a row, so selecting
    /// `data` itself would read each unwanted payload's overflow pages (the camera pictures
    /// of a tabular conversion: most of the file) only for the row to be skipped; on the 1 GB
    /// bench copy the conversion fell from 0.27 s to 0.12 s (docs/bag-reader.md).
    fn wanted_data(&self, wanted: &[bool]) -> String {
        let ids: Vec<String> = self
            .summary
            .connections
            .iter()
            .zip(wanted)
            .filter(|(_, &w)| w)
            .map(|(c, _)| c.id.to_string())
            .collect();
        if ids.is_empty() {
            "NULL".to_string()
        } else {
            format!("CASE WHEN topic_id IN ({}) THEN data END", ids.join(","))
        }
    }

    /// Put one row into the window, decompressing it when the bag compresses messages.
    fn take(
        &mut self,
        conn: usize,
        time: Time,
        id: i64,
        data: &[u8],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        let order = (0, id as u64);
        if self.message_zstd {
            self.packer
                .push_zstd(conn, time, order, data, out)
                .map_err(|detail| BagError::Corrupt {
                    path: self.path.clone(),
                    offset: 0,
                    detail: format!(
                        "message row {id} on {}: {detail}",
                        self.summary.connections[conn].topic
                    ),
                })
        } else {
            self.packer.push(conn, time, order, data, out);
            Ok(())
        }
    }

    /// One row of `SELECT id, topic_id, timestamp, data` (data NULL for topics not wanted, see
    /// [`wanted_data`]): taken when its topic is wanted and `keep(time)`. Returns the row's
    /// (id, time).
    fn row(
        &mut self,
        r: &rusqlite::Row<'_>,
        wanted: &[bool],
        keep: impl Fn(Time) -> bool,
        out: &mut Vec<RawMessage>,
    ) -> Result<(i64, Time), BagError> {
        let get = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, i64, Time)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        };
        let (id, topic, t) = get(r).map_err(|e| self.sql("messages", e))?;
        self.rows_visited += 1;
        let Some(conn) = self.topic_ids.get(topic) else {
            return Ok((id, t));
        };
        if !keep(t) || !wanted.get(conn).copied().unwrap_or(false) {
            return Ok((id, t));
        }
        let data = match r.get_ref(3).map(|v| v.as_blob_or_null()) {
            Ok(Ok(d)) => d.unwrap_or(&[]),
            Ok(Err(_)) => return Err(self.corrupt(format!("message row {id}: data is not a blob"))),
            Err(e) => return Err(self.sql("messages", e)),
        };
        self.take(conn, t, id, data, out)?;
        Ok((id, t))
    }

    fn window_time_index(
        &mut self,
        db: &Connection,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        let sql = format!(
            "SELECT id, topic_id, timestamp, {} FROM messages \
             WHERE timestamp >= ?1 AND timestamp < ?2 ORDER BY timestamp, id",
            self.wanted_data(wanted)
        );
        let mut st = db.prepare(&sql).map_err(|e| self.sql("messages", e))?;
        let mut rows = st
            .query([start, end])
            .map_err(|e| self.sql("messages", e))?;
        while let Some(r) = rows.next().map_err(|e| self.sql("messages", e))? {
            self.row(r, wanted, |_| true, out)?;
        }
        Ok(())
    }

    /// Rows in time order by rowid: walk forward from where the last window stopped (when
    /// this one starts at or after its end) or from the last checkpoint before `start`, and
    /// stop at the first row at or after `end`.
    fn window_sorted(
        &mut self,
        db: &Connection,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        let Plan::Sorted { checkpoints } = &self.plan else {
            unreachable!("window_sorted on another plan")
        };
        // The last checkpoint strictly before `start`: rows equal to `start` may begin in the
        // run before one whose first row is `start`.
        let k = checkpoints.partition_point(|&(t, _)| t < start);
        let mut from = if k == 0 {
            i64::MIN
        } else {
            checkpoints[k - 1].1
        };
        if let Some((last_end, next)) = self.resume {
            if start >= last_end {
                from = from.max(next);
            }
        }
        let sql = format!(
            "SELECT id, topic_id, timestamp, {} FROM messages WHERE id >= ?1 ORDER BY id",
            self.wanted_data(wanted)
        );
        let mut st = db.prepare(&sql).map_err(|e| self.sql("messages", e))?;
        let mut rows = st.query([from]).map_err(|e| self.sql("messages", e))?;
        let mut next = i64::MAX;
        while let Some(r) = rows.next().map_err(|e| self.sql("messages", e))? {
            // The time first, so that the row that ends the window is not taken.
            let t: Time = r.get(2).map_err(|e| self.sql("messages", e))?;
            if t >= end {
                self.rows_visited += 1;
                next = r.get(0).map_err(|e| self.sql("messages", e))?;
                break;
            }
            self.row(r, wanted, |t| t >= start, out)?;
        }
        self.resume = Some((end, next));
        Ok(())
    }

    /// Rows out of order: the window's slice of the sorted (time, rowid) list, each row looked
    /// up by rowid.
    fn window_row_index(
        &mut self,
        db: &Connection,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        let Plan::RowIndex(index) = &self.plan else {
            unreachable!("window_row_index on another plan")
        };
        let a = index.partition_point(|&(t, _)| t < start);
        let b = index.partition_point(|&(t, _)| t < end);
        let sql = format!(
            "SELECT id, topic_id, timestamp, {} FROM messages WHERE id = ?1",
            self.wanted_data(wanted)
        );
        let mut st = db.prepare(&sql).map_err(|e| self.sql("messages", e))?;
        for i in a..b {
            let Plan::RowIndex(index) = &self.plan else {
                unreachable!()
            };
            let id = index[i].1;
            let mut rows = st.query([id]).map_err(|e| self.sql("messages", e))?;
            match rows.next().map_err(|e| self.sql("messages", e))? {
                Some(r) => {
                    self.row(r, wanted, |_| true, out)?;
                }
                None => return Err(self.corrupt(format!("message row {id} vanished"))),
            }
        }
        Ok(())
    }

    fn message_by_id(
        &mut self,
        db: &Connection,
        conn: usize,
        id: i64,
    ) -> Result<RawMessage, BagError> {
        let mut st = db
            .prepare("SELECT id, topic_id, timestamp, data FROM messages WHERE id = ?1")
            .map_err(|e| self.sql("messages", e))?;
        let mut rows = st.query([id]).map_err(|e| self.sql("messages", e))?;
        let mut out = Vec::with_capacity(1);
        let mut wanted = vec![false; self.summary.connections.len()];
        wanted[conn] = true;
        match rows.next().map_err(|e| self.sql("messages", e))? {
            Some(r) => {
                self.row(r, &wanted, |_| true, &mut out)?;
            }
            None => return Err(self.corrupt(format!("message row {id} vanished"))),
        }
        self.packer.seal(&mut out);
        out.pop()
            .ok_or_else(|| self.corrupt(format!("message row {id} changed topic")))
    }
}

impl BagSource for Sqlite3Bag {
    fn summary(&self) -> &BagSummary {
        &self.st.summary
    }

    fn read_window(
        &mut self,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        if start >= end {
            return Ok(());
        }
        let from = out.len();
        let r = match self.st.plan {
            Plan::TimeIndex => self.st.window_time_index(&self.db, start, end, wanted, out),
            Plan::Sorted { .. } => self.st.window_sorted(&self.db, start, end, wanted, out),
            Plan::RowIndex(_) => self.st.window_row_index(&self.db, start, end, wanted, out),
        };
        self.st.packer.seal(out);
        if r.is_err() {
            out.truncate(from);
        }
        r?;
        // Each plan yields (time, rowid) order already; a stable sort of a sorted run is one
        // linear check, and it keeps the contract if SQLite picks another plan.
        out[from..].sort_by_key(|m| (m.time, m.order));
        Ok(())
    }

    fn first_and_last(
        &mut self,
        conn: usize,
    ) -> Result<Option<(RawMessage, RawMessage)>, BagError> {
        let Some(Some(((_, a), (_, b)))) = self.st.first_last.get(conn).copied() else {
            return Ok(None);
        };
        let first = self.st.message_by_id(&self.db, conn, a)?;
        let last = self.st.message_by_id(&self.db, conn, b)?;
        Ok(Some((first, last)))
    }
}

#[cfg(test)]
mod tests;
