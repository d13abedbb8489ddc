//! The storage-neutral view of a scanned MCAP file: connections, per-connection statistics,
//! blocks and storage facts, as planning and inspect see every storage.

use std::sync::Arc;

use super::block::Msg;
use super::file::McapFile;
use super::scan::Scan;
use crate::bag::buffer::ChunkBuf;
use crate::bag::{
    BagError, BagSummary, ChunkInfo, Compression, Connection, ConnectionStats, RawMessage,
};

pub fn build(file: &McapFile, scan: &Scan) -> Result<BagSummary, BagError> {
    let mut connections = Vec::with_capacity(scan.channels.len());
    for c in &scan.channels {
        let schema = match c.schema_id {
            0 => None,
            id => Some(scan.schemas.iter().find(|s| s.id == id).ok_or_else(|| {
                file.corrupt(
                    0,
                    format!(
                        "channel {} ({}) refers to schema {id}, which the file does not hold",
                        c.id, c.topic
                    ),
                )
            })?),
        };
        let definition = match schema {
            Some(s) => String::from_utf8(s.data.clone()).map_err(|_| {
                file.corrupt(
                    0,
                    format!(
                        "the schema ({}) of channel {} ({}) is not UTF-8 text",
                        s.name, c.id, c.topic
                    ),
                )
            })?,
            None => String::new(),
        };
        connections.push(Connection {
            id: c.id as u32,
            topic: c.topic.clone(),
            datatype: schema.map(|s| s.name.clone()).unwrap_or_default(),
            md5sum: String::new(),
            message_definition: definition,
            callerid: None,
            latching: false,
        });
    }
    let stats = scan
        .stats
        .iter()
        .map(|s| ConnectionStats {
            count: s.count,
            first: s.first.map(|p| p.time),
            last: s.last.map(|p| p.time),
        })
        .collect();
    let chunks = scan
        .blocks
        .iter()
        .map(|b| ChunkInfo {
            pos: b.pos,
            data_pos: b.pos,
            data_len: b.stored(),
            compression: match b.codec() {
                super::chunk::Codec::Lz4 => Compression::Lz4,
                _ => Compression::None,
            },
            uncompressed_size: b.raw(),
            start: b.start,
            end: b.end,
            counts: b
                .counts
                .iter()
                .map(|&(c, n)| (scan.channels[c].id as u32, n))
                .collect(),
        })
        .collect();
    let version = match &scan.header {
        Some(h) => format!("{} ({})", h.profile, h.library),
        None => String::new(),
    };
    Ok(BagSummary {
        path: file.path().to_path_buf(),
        file_size: file.len(),
        version,
        indexed: scan.indexed,
        connections,
        stats,
        chunks,
        warnings: scan.warnings.clone(),
    })
}

pub fn raw_message(m: &Msg, order: (u64, u64), buf: Arc<ChunkBuf>) -> RawMessage {
    RawMessage {
        conn: m.conn,
        time: m.time,
        order,
        buf,
        range: m.data.clone(),
    }
}
