//! The storage-neutral view of a scanned MCAP file: connections, per-connection statistics,
//! blocks and storage facts, as planning and inspect see every storage.

use std::sync::Arc;

use super::block::{Kind, Msg};
use super::file::McapFile;
use super::scan::Scan;
use crate::bag::buffer::ChunkBuf;
use crate::bag::{
    BagError, BagSummary, Block, Connection, ConnectionExtra, ConnectionStats, FileInfo,
    RawMessage, StorageInfo,
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
                        "the schema {} ({}) of channel {} ({}) is not UTF-8 text",
                        s.id, s.name, c.id, c.topic
                    ),
                )
            })?,
            None => String::new(),
        };
        connections.push(Connection {
            id: c.id as u32,
            topic: c.topic.clone(),
            datatype: schema.map(|s| s.name.clone()).unwrap_or_default(),
            encoding: c.message_encoding.clone(),
            schema_format: schema.map(|s| s.encoding.clone()).unwrap_or_default(),
            definition,
            extra: ConnectionExtra::Mcap {
                schema_id: c.schema_id,
                metadata: c.metadata.clone(),
            },
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
    let blocks = scan
        .blocks
        .iter()
        .map(|b| Block {
            start: b.start,
            end: b.end,
            stored_bytes: b.stored(),
            raw_bytes: b.raw(),
            compression: b.codec().as_str(),
        })
        .collect();
    let (profile, library) = scan
        .header
        .as_ref()
        .map(|h| (h.profile.as_str(), h.library.as_str()))
        .unwrap_or_default();
    Ok(BagSummary {
        path: file.path().to_path_buf(),
        storage: StorageInfo {
            id: "mcap",
            version: format!("{profile} ({library})"),
            details: details(scan, profile, library),
        },
        files: vec![FileInfo {
            path: file.path().to_path_buf(),
            size: file.len(),
        }],
        file_size: file.len(),
        indexed: scan.indexed,
        connections,
        stats,
        blocks,
        warnings: scan.warnings.clone(),
    })
}

/// What `inspect` shows of the file beyond the neutral summary.
fn details(scan: &Scan, profile: &str, library: &str) -> Vec<(String, String)> {
    let mut out = vec![
        ("profile".to_string(), profile.to_string()),
        ("library".to_string(), library.to_string()),
    ];
    let mut per: Vec<(&str, usize)> = Vec::new();
    let mut runs = 0;
    for b in &scan.blocks {
        match b.kind {
            Kind::Run => runs += 1,
            Kind::Chunk { codec, .. } => match per.iter_mut().find(|p| p.0 == codec.as_str()) {
                Some(p) => p.1 += 1,
                None => per.push((codec.as_str(), 1)),
            },
        }
    }
    let chunks: usize = per.iter().map(|p| p.1).sum();
    let by: Vec<String> = per.iter().map(|(c, n)| format!("{c} {n}")).collect();
    out.push((
        "chunks".to_string(),
        if by.is_empty() {
            "0".to_string()
        } else {
            format!("{chunks} ({})", by.join(", "))
        },
    ));
    if runs > 0 {
        out.push((
            "messages outside chunks".to_string(),
            format!("{runs} run(s) of records"),
        ));
    }
    out.push((
        "read from".to_string(),
        if !scan.indexed {
            "a linear scan of the data section".to_string()
        } else if scan.chunks_read > 0 {
            format!(
                "the summary; {} chunk(s) without message indexes read at open",
                scan.chunks_read
            )
        } else {
            "the summary and message indexes".to_string()
        },
    ));
    out.push(("schemas".to_string(), scan.schemas.len().to_string()));
    if let Some(st) = &scan.statistics {
        if st.attachment_count > 0 || st.metadata_count > 0 {
            out.push((
                "attachments, metadata".to_string(),
                format!("{}, {} (not read)", st.attachment_count, st.metadata_count),
            ));
        }
    }
    out
}

pub fn raw_message(m: &Msg, order: (u64, u64), buf: Arc<ChunkBuf>) -> RawMessage {
    RawMessage {
        conn: m.conn,
        time: m.time,
        publish: Some(m.publish),
        order,
        buf,
        range: m.data.clone(),
    }
}
