//! A small ROS bag 2.0 writer for fixtures, tests and benchmarks.
//!
//! It lays the file out the way ROS's own recorder does: each chunk record is followed by its
//! index data records, and the index section (connections, then chunk infos) closes the file.
//! Messages are kept in the order given, so tests can build bags whose times go backwards.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{op, push_field, push_record, time_to_bytes, MAGIC};
use super::Compression;
use crate::bag::BagError;
use crate::Time;

/// The bag header record is padded to this size so it can be rewritten in place at the end.
const BAG_HEADER_LEN: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Uncompressed bytes per chunk: a chunk is closed once it reaches this size.
    pub chunk_size: usize,
    /// False writes what a killed recorder leaves: no index section, `index_pos` 0.
    pub write_index: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::None,
            chunk_size: 768 * 1024,
            write_index: true,
        }
    }
}

struct WConn {
    topic: String,
    /// The connection header fields, as stored in the record's data.
    fields: Vec<u8>,
}

struct WChunkInfo {
    pos: u64,
    start: Time,
    end: Time,
    counts: Vec<(u32, u32)>,
}

pub struct BagWriter {
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    opts: WriteOptions,
    conns: Vec<WConn>,
    /// Connections whose record was already written into a chunk.
    announced: Vec<bool>,
    chunk: Vec<u8>,
    /// Per connection in the open chunk: (time, offset) of each message.
    index: BTreeMap<u32, Vec<(Time, u32)>>,
    chunk_start: Time,
    chunk_end: Time,
    chunk_infos: Vec<WChunkInfo>,
}

impl BagWriter {
    pub fn create(path: &Path, opts: WriteOptions) -> Result<Self, BagError> {
        let file = File::create(path).map_err(|source| BagError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut w = BagWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            pos: 0,
            opts,
            conns: Vec::new(),
            announced: Vec::new(),
            chunk: Vec::new(),
            index: BTreeMap::new(),
            chunk_start: Time::MAX,
            chunk_end: Time::MIN,
            chunk_infos: Vec::new(),
        };
        w.put(MAGIC)?;
        let header = bag_header(0, 0, 0);
        w.put(&header)?;
        Ok(w)
    }

    fn io(&self, source: std::io::Error) -> BagError {
        BagError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), BagError> {
        self.out.write_all(bytes).map_err(|e| self.io(e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Bytes handed to the file so far (the open chunk is not counted until it is closed).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Register a connection; returns its id for [`BagWriter::write`].
    pub fn add_connection(
        &mut self,
        topic: &str,
        datatype: &str,
        md5sum: &str,
        definition: &str,
        callerid: Option<&str>,
        latching: bool,
    ) -> u32 {
        let mut fields = Vec::new();
        push_field(&mut fields, "topic", topic.as_bytes());
        push_field(&mut fields, "type", datatype.as_bytes());
        push_field(&mut fields, "md5sum", md5sum.as_bytes());
        push_field(&mut fields, "message_definition", definition.as_bytes());
        if let Some(c) = callerid {
            push_field(&mut fields, "callerid", c.as_bytes());
        }
        if latching {
            push_field(&mut fields, "latching", b"1");
        }
        self.conns.push(WConn {
            topic: topic.to_string(),
            fields,
        });
        self.announced.push(false);
        (self.conns.len() - 1) as u32
    }

    fn connection_record(&self, id: u32, out: &mut Vec<u8>) {
        let c = &self.conns[id as usize];
        let mut h = Vec::new();
        push_field(&mut h, "op", &[op::CONNECTION]);
        push_field(&mut h, "conn", &id.to_le_bytes());
        push_field(&mut h, "topic", c.topic.as_bytes());
        push_record(out, &h, &c.fields);
    }

    /// Append one message with receive time `time` on connection `conn`.
    pub fn write(&mut self, conn: u32, time: Time, data: &[u8]) -> Result<(), BagError> {
        let bad = |detail: String| BagError::Corrupt {
            path: self.path.clone(),
            offset: self.pos,
            detail,
        };
        if conn as usize >= self.conns.len() {
            return Err(bad(format!("write on unknown connection {conn}")));
        }
        let stamp =
            time_to_bytes(time).ok_or_else(|| bad(format!("time {time} ns out of range")))?;
        if !self.announced[conn as usize] {
            let mut rec = Vec::new();
            self.connection_record(conn, &mut rec);
            self.chunk.extend_from_slice(&rec);
            self.announced[conn as usize] = true;
        }
        let offset = u32::try_from(self.chunk.len())
            .map_err(|_| bad("chunk larger than 4 GiB".to_string()))?;
        let mut h = Vec::new();
        push_field(&mut h, "op", &[op::MESSAGE_DATA]);
        push_field(&mut h, "conn", &conn.to_le_bytes());
        push_field(&mut h, "time", &stamp);
        push_record(&mut self.chunk, &h, data);
        self.index.entry(conn).or_default().push((time, offset));
        self.chunk_start = self.chunk_start.min(time);
        self.chunk_end = self.chunk_end.max(time);
        if self.chunk.len() >= self.opts.chunk_size {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), BagError> {
        if self.index.is_empty() {
            return Ok(());
        }
        let size = self.chunk.len() as u32;
        let data = compress(self.opts.compression, &self.chunk).map_err(|e| self.io(e))?;
        let chunk_pos = self.pos;
        let mut rec = Vec::with_capacity(data.len() + 64);
        let mut h = Vec::new();
        push_field(&mut h, "op", &[op::CHUNK]);
        push_field(
            &mut h,
            "compression",
            self.opts.compression.as_str().as_bytes(),
        );
        push_field(&mut h, "size", &size.to_le_bytes());
        push_record(&mut rec, &h, &data);
        let mut counts = Vec::new();
        for (&conn, entries) in &self.index {
            let mut h = Vec::new();
            push_field(&mut h, "op", &[op::INDEX_DATA]);
            push_field(&mut h, "ver", &1u32.to_le_bytes());
            push_field(&mut h, "conn", &conn.to_le_bytes());
            push_field(&mut h, "count", &(entries.len() as u32).to_le_bytes());
            let mut d = Vec::with_capacity(entries.len() * 12);
            for &(t, off) in entries {
                // Times were range-checked in `write`.
                d.extend_from_slice(&time_to_bytes(t).unwrap_or_default());
                d.extend_from_slice(&off.to_le_bytes());
            }
            push_record(&mut rec, &h, &d);
            counts.push((conn, entries.len() as u32));
        }
        self.put(&rec)?;
        self.chunk_infos.push(WChunkInfo {
            pos: chunk_pos,
            start: self.chunk_start,
            end: self.chunk_end,
            counts,
        });
        self.chunk.clear();
        self.index.clear();
        self.chunk_start = Time::MAX;
        self.chunk_end = Time::MIN;
        Ok(())
    }

    /// Close the last chunk, write the index (unless disabled) and the final bag header.
    pub fn finish(mut self) -> Result<(), BagError> {
        self.flush_chunk()?;
        if self.opts.write_index {
            let index_pos = self.pos;
            let mut rec = Vec::new();
            for id in 0..self.conns.len() as u32 {
                self.connection_record(id, &mut rec);
            }
            for ci in &self.chunk_infos {
                let mut h = Vec::new();
                push_field(&mut h, "op", &[op::CHUNK_INFO]);
                push_field(&mut h, "ver", &1u32.to_le_bytes());
                push_field(&mut h, "chunk_pos", &ci.pos.to_le_bytes());
                push_field(
                    &mut h,
                    "start_time",
                    &time_to_bytes(ci.start).unwrap_or_default(),
                );
                push_field(
                    &mut h,
                    "end_time",
                    &time_to_bytes(ci.end).unwrap_or_default(),
                );
                push_field(&mut h, "count", &(ci.counts.len() as u32).to_le_bytes());
                let mut d = Vec::new();
                for &(conn, n) in &ci.counts {
                    d.extend_from_slice(&conn.to_le_bytes());
                    d.extend_from_slice(&n.to_le_bytes());
                }
                push_record(&mut rec, &h, &d);
            }
            self.put(&rec)?;
            let header = bag_header(
                index_pos,
                self.conns.len() as u32,
                self.chunk_infos.len() as u32,
            );
            self.out
                .seek(SeekFrom::Start(MAGIC.len() as u64))
                .map_err(|e| self.io(e))?;
            self.out.write_all(&header).map_err(|e| self.io(e))?;
        }
        self.out.flush().map_err(|e| self.io(e))?;
        Ok(())
    }
}

/// The bag header record, padded with spaces (as ROS does) to [`BAG_HEADER_LEN`] bytes.
fn bag_header(index_pos: u64, conn_count: u32, chunk_count: u32) -> Vec<u8> {
    let mut h = Vec::new();
    push_field(&mut h, "op", &[op::BAG_HEADER]);
    push_field(&mut h, "index_pos", &index_pos.to_le_bytes());
    push_field(&mut h, "conn_count", &conn_count.to_le_bytes());
    push_field(&mut h, "chunk_count", &chunk_count.to_le_bytes());
    let pad = vec![b' '; BAG_HEADER_LEN - 8 - h.len()];
    let mut rec = Vec::with_capacity(BAG_HEADER_LEN);
    push_record(&mut rec, &h, &pad);
    rec
}

fn compress(c: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Bz2 => {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            enc.write_all(data)?;
            enc.finish()
        }
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data)?;
            enc.finish().map_err(std::io::Error::other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NANOS;

    #[test]
    fn header_is_padded_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        let mut w = BagWriter::create(&p, WriteOptions::default()).unwrap();
        let c = w.add_connection(
            "/x",
            "std_msgs/Float64",
            "fdb28210bfa9d7c91146260178d9a584",
            "float64 data\n",
            None,
            false,
        );
        w.write(c, NANOS, &1f64.to_le_bytes()).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..13], MAGIC);
        // Chunk record starts right after the padded header.
        let hl = u32::from_le_bytes(bytes[13 + 4096..13 + 4100].try_into().unwrap()) as usize;
        let h = super::super::record::Header::parse(&bytes[13 + 4100..13 + 4100 + hl]).unwrap();
        assert_eq!(h.op().unwrap(), op::CHUNK);
        let bh_len = u32::from_le_bytes(bytes[13..17].try_into().unwrap()) as usize;
        let bh = super::super::record::Header::parse(&bytes[17..17 + bh_len]).unwrap();
        assert!(bh.u64("index_pos").unwrap() > 4096);
        assert_eq!(bh.u32("conn_count").unwrap(), 1);
        assert_eq!(bh.u32("chunk_count").unwrap(), 1);
    }

    #[test]
    fn rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        let mut w = BagWriter::create(&p, WriteOptions::default()).unwrap();
        assert!(w.write(3, NANOS, b"").is_err());
        let c = w.add_connection("/x", "t/T", "0", "", None, false);
        assert!(w.write(c, -5, b"").is_err());
    }
}
