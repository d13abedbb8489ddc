//! The tables of a rosbag2 `.db3` file, old and new.
//!
//! Every rosbag2 release has `topics(id, name, type, serialization_format, ...)` and
//! `messages(id, topic_id, timestamp, data)`. Later ones add `offered_qos_profiles` (Eloquent),
//! `type_description_hash` and the tables `schema` and `message_definitions` (Iron). Columns
//! are found with `PRAGMA table_info`, so any mix of these opens.

use rusqlite::Connection;

/// One row of `topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub id: i64,
    pub name: String,
    pub datatype: String,
    pub serialization_format: String,
    pub offered_qos_profiles: String,
    pub type_description_hash: String,
}

/// One row of `message_definitions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub topic_type: String,
    /// "ros2msg", "ros2idl", or "unknown" when the recorder found none.
    pub encoding: String,
    pub text: String,
    pub type_description_hash: String,
}

/// What the file's tables hold besides messages.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub topics: Vec<Topic>,
    pub definitions: Vec<Definition>,
    /// `schema.schema_version` and `schema.ros_distro` where the table exists.
    pub schema_version: Option<i64>,
    pub ros_distro: Option<String>,
    /// An index on `messages` whose first column is `timestamp` (rosbag2's `timestamp_idx`).
    pub time_index: bool,
}

/// Why the tables do not make a rosbag2 file.
#[derive(Debug)]
pub enum SchemaError {
    /// A table or column rosbag2 always writes is missing: not a rosbag2 file.
    Missing(String),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(e: rusqlite::Error) -> Self {
        SchemaError::Sql(e)
    }
}

pub fn tables(db: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

pub fn columns(db: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    // PRAGMA arguments cannot be bound; `table` is one of our own constants.
    let mut st = db.prepare(&format!("PRAGMA table_info({table})"))?;
    let rows = st.query_map([], |r| r.get::<_, String>(1))?;
    rows.collect()
}

fn require(have: &[String], table: &str, want: &[&str]) -> Result<(), SchemaError> {
    for w in want {
        if !have.iter().any(|h| h == w) {
            return Err(SchemaError::Missing(format!(
                "table {table} has no column {w} (columns: {})",
                have.join(", ")
            )));
        }
    }
    Ok(())
}

/// Read the topics, the definitions and the facts about indexes.
pub fn read(db: &Connection) -> Result<Schema, SchemaError> {
    let tables = tables(db)?;
    for t in ["topics", "messages"] {
        if !tables.iter().any(|x| x == t) {
            return Err(SchemaError::Missing(format!(
                "no table {t} (tables: {})",
                tables.join(", ")
            )));
        }
    }
    let mcols = columns(db, "messages")?;
    require(&mcols, "messages", &["id", "topic_id", "timestamp", "data"])?;
    let tcols = columns(db, "topics")?;
    require(
        &tcols,
        "topics",
        &["id", "name", "type", "serialization_format"],
    )?;
    let opt = |c: &str| {
        if tcols.iter().any(|x| x == c) {
            c.to_string()
        } else {
            "''".to_string()
        }
    };
    let sql = format!(
        "SELECT id, name, type, serialization_format, {}, {} FROM topics ORDER BY id",
        opt("offered_qos_profiles"),
        opt("type_description_hash")
    );
    let mut st = db.prepare(&sql)?;
    let topics = st
        .query_map([], |r| {
            Ok(Topic {
                id: r.get(0)?,
                name: r.get(1)?,
                datatype: r.get(2)?,
                serialization_format: r.get(3)?,
                offered_qos_profiles: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                type_description_hash: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    drop(st);

    let mut definitions = Vec::new();
    if tables.iter().any(|x| x == "message_definitions") {
        let dcols = columns(db, "message_definitions")?;
        if ["topic_type", "encoding", "encoded_message_definition"]
            .iter()
            .all(|c| dcols.iter().any(|x| x == c))
        {
            let hash = if dcols.iter().any(|x| x == "type_description_hash") {
                "type_description_hash"
            } else {
                "''"
            };
            let mut st = db.prepare(&format!(
                "SELECT topic_type, encoding, encoded_message_definition, {hash} \
                 FROM message_definitions ORDER BY id"
            ))?;
            definitions = st
                .query_map([], |r| {
                    Ok(Definition {
                        topic_type: r.get(0)?,
                        encoding: r.get(1)?,
                        text: r.get(2)?,
                        type_description_hash: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
        }
    }

    let (mut schema_version, mut ros_distro) = (None, None);
    if tables.iter().any(|x| x == "schema") {
        let scols = columns(db, "schema")?;
        if scols.iter().any(|c| c == "schema_version") {
            let distro = if scols.iter().any(|c| c == "ros_distro") {
                "ros_distro"
            } else {
                "NULL"
            };
            let mut st = db.prepare(&format!(
                "SELECT schema_version, {distro} FROM schema ORDER BY schema_version DESC LIMIT 1"
            ))?;
            let mut rows = st.query([])?;
            if let Some(r) = rows.next()? {
                schema_version = r.get(0)?;
                ros_distro = r.get(1)?;
            }
        }
    }

    Ok(Schema {
        topics,
        definitions,
        schema_version,
        ros_distro,
        time_index: has_time_index(db)?,
    })
}

/// True when some index on `messages` starts with `timestamp`: a range query per window
/// then reads only that window's rows.
pub fn has_time_index(db: &Connection) -> rusqlite::Result<bool> {
    let mut st = db.prepare("SELECT name FROM pragma_index_list('messages')")?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for name in names {
        let first: Option<String> = db
            .query_row(
                "SELECT name FROM pragma_index_info(?1) WHERE seqno = 0",
                [&name],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if first.as_deref() == Some("timestamp") {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Schema {
    /// The definition recorded for `datatype`: (schema_format, text), or ("", "") when the file
    /// has none (old files; the recorder found none): the caller resolves it elsewhere.
    pub fn definition_of(&self, datatype: &str, hash: &str) -> (String, String) {
        let mut best: Option<&Definition> = None;
        for d in self.definitions.iter().filter(|d| d.topic_type == datatype) {
            // Prefer the row whose hash matches the topic's (a type recorded in two versions).
            if best.is_none() || (!hash.is_empty() && d.type_description_hash == hash) {
                best = Some(d);
            }
        }
        match best {
            Some(d)
                if !d.text.is_empty() && matches!(d.encoding.as_str(), "ros2msg" | "ros2idl") =>
            {
                (d.encoding.clone(), d.text.clone())
            }
            _ => (String::new(), String::new()),
        }
    }
}
