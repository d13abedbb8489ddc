//! A small MCAP writer for the reader's tests: chunks (uncompressed, zstd, lz4) or messages
//! outside chunks, message indexes, summary with chunk indexes and statistics, each optional.

use std::io::Write;

use super::records::{op, MAGIC};

#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// "", "zstd" or "lz4".
    pub compression: &'static str,
    /// Close a chunk past this many record bytes; 0 writes messages outside chunks.
    pub chunk_size: usize,
    pub message_indexes: bool,
    pub summary: bool,
    pub statistics: bool,
    pub crc: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            compression: "zstd",
            chunk_size: 400,
            message_indexes: true,
            summary: true,
            statistics: true,
            crc: true,
        }
    }
}

pub struct Writer {
    pub out: Vec<u8>,
    o: Opts,
    chunk: Vec<u8>,
    /// (channel, log time, offset in the chunk) of the open chunk's messages.
    chunk_msgs: Vec<(u16, u64, u64)>,
    summary_schemas: Vec<Vec<u8>>,
    summary_channels: Vec<Vec<u8>>,
    chunk_indexes: Vec<Vec<u8>>,
    counts: Vec<(u16, u64)>,
    range: Option<(u64, u64)>,
    chunks: u32,
}

fn record(out: &mut Vec<u8>, op: u8, body: &[u8]) {
    out.push(op);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
}

fn string(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s);
}

impl Writer {
    pub fn new(o: Opts) -> Self {
        let mut out = MAGIC.to_vec();
        let mut h = Vec::new();
        string(&mut h, b"ros2");
        string(&mut h, b"bagstream test writer");
        record(&mut out, op::HEADER, &h);
        Writer {
            out,
            o,
            chunk: Vec::new(),
            chunk_msgs: Vec::new(),
            summary_schemas: Vec::new(),
            summary_channels: Vec::new(),
            chunk_indexes: Vec::new(),
            counts: Vec::new(),
            range: None,
            chunks: 0,
        }
    }

    fn target(&mut self) -> &mut Vec<u8> {
        if self.o.chunk_size == 0 {
            &mut self.out
        } else {
            &mut self.chunk
        }
    }

    pub fn schema(&mut self, id: u16, name: &str, encoding: &str, data: &[u8]) {
        let mut b = id.to_le_bytes().to_vec();
        string(&mut b, name.as_bytes());
        string(&mut b, encoding.as_bytes());
        string(&mut b, data);
        record(self.target(), op::SCHEMA, &b);
        self.summary_schemas.push(b);
    }

    pub fn channel(&mut self, id: u16, schema: u16, topic: &str, enc: &str, meta: &[(&str, &str)]) {
        let mut b = id.to_le_bytes().to_vec();
        b.extend_from_slice(&schema.to_le_bytes());
        string(&mut b, topic.as_bytes());
        string(&mut b, enc.as_bytes());
        let mut m = Vec::new();
        for (k, v) in meta {
            string(&mut m, k.as_bytes());
            string(&mut m, v.as_bytes());
        }
        string(&mut b, &m);
        record(self.target(), op::CHANNEL, &b);
        self.summary_channels.push(b);
    }

    pub fn message(&mut self, channel: u16, log_time: u64, publish: u64, data: &[u8]) {
        let mut b = channel.to_le_bytes().to_vec();
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&log_time.to_le_bytes());
        b.extend_from_slice(&publish.to_le_bytes());
        b.extend_from_slice(data);
        let offset = self.target().len() as u64;
        record(self.target(), op::MESSAGE, &b);
        match self.counts.iter_mut().find(|c| c.0 == channel) {
            Some(c) => c.1 += 1,
            None => self.counts.push((channel, 1)),
        }
        let (lo, hi) = self.range.unwrap_or((log_time, log_time));
        self.range = Some((lo.min(log_time), hi.max(log_time)));
        if self.o.chunk_size > 0 {
            self.chunk_msgs.push((channel, log_time, offset));
            if self.chunk.len() >= self.o.chunk_size {
                self.flush();
            }
        }
    }

    /// Close the open chunk (if it holds anything).
    pub fn flush(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.chunk);
        let msgs = std::mem::take(&mut self.chunk_msgs);
        let compressed = match self.o.compression {
            "" => records.clone(),
            "zstd" => zstd::bulk::compress(&records, 3).unwrap(),
            "lz4" => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(&records).unwrap();
                e.finish().unwrap()
            }
            c => panic!("compression {c}"),
        };
        let start = msgs.iter().map(|m| m.1).min().unwrap_or(0);
        let end = msgs.iter().map(|m| m.1).max().unwrap_or(0);
        let mut b = Vec::new();
        b.extend_from_slice(&start.to_le_bytes());
        b.extend_from_slice(&end.to_le_bytes());
        b.extend_from_slice(&(records.len() as u64).to_le_bytes());
        let crc = if self.o.crc {
            crc32fast::hash(&records)
        } else {
            0
        };
        b.extend_from_slice(&crc.to_le_bytes());
        string(&mut b, self.o.compression.as_bytes());
        b.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
        b.extend_from_slice(&compressed);
        let chunk_pos = self.out.len() as u64;
        record(&mut self.out, op::CHUNK, &b);
        let chunk_len = self.out.len() as u64 - chunk_pos;
        let idx_start = self.out.len() as u64;
        let mut offsets = Vec::new();
        if self.o.message_indexes {
            let mut channels: Vec<u16> = msgs.iter().map(|m| m.0).collect();
            channels.dedup();
            channels.sort();
            channels.dedup();
            for ch in channels {
                offsets.push((ch, self.out.len() as u64));
                let mut e = Vec::new();
                for m in msgs.iter().filter(|m| m.0 == ch) {
                    e.extend_from_slice(&m.1.to_le_bytes());
                    e.extend_from_slice(&m.2.to_le_bytes());
                }
                let mut r = ch.to_le_bytes().to_vec();
                string(&mut r, &e);
                record(&mut self.out, op::MESSAGE_INDEX, &r);
            }
        }
        let idx_len = self.out.len() as u64 - idx_start;
        let mut ci = Vec::new();
        ci.extend_from_slice(&start.to_le_bytes());
        ci.extend_from_slice(&end.to_le_bytes());
        ci.extend_from_slice(&chunk_pos.to_le_bytes());
        ci.extend_from_slice(&chunk_len.to_le_bytes());
        let mut m = Vec::new();
        for (ch, off) in offsets {
            m.extend_from_slice(&ch.to_le_bytes());
            m.extend_from_slice(&off.to_le_bytes());
        }
        string(&mut ci, &m);
        ci.extend_from_slice(&idx_len.to_le_bytes());
        string(&mut ci, self.o.compression.as_bytes());
        ci.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
        ci.extend_from_slice(&(records.len() as u64).to_le_bytes());
        self.chunk_indexes.push(ci);
        self.chunks += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        record(&mut self.out, op::DATA_END, &0u32.to_le_bytes());
        let summary_start = self.out.len() as u64;
        if self.o.summary {
            for s in &self.summary_schemas {
                record(&mut self.out, op::SCHEMA, s);
            }
            for c in &self.summary_channels {
                record(&mut self.out, op::CHANNEL, c);
            }
            for ci in &self.chunk_indexes {
                record(&mut self.out, op::CHUNK_INDEX, ci);
            }
            if self.o.statistics {
                let (lo, hi) = self.range.unwrap_or((0, 0));
                let mut b = Vec::new();
                let n: u64 = self.counts.iter().map(|c| c.1).sum();
                b.extend_from_slice(&n.to_le_bytes());
                b.extend_from_slice(&(self.summary_schemas.len() as u16).to_le_bytes());
                b.extend_from_slice(&(self.summary_channels.len() as u32).to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
                b.extend_from_slice(&self.chunks.to_le_bytes());
                b.extend_from_slice(&lo.to_le_bytes());
                b.extend_from_slice(&hi.to_le_bytes());
                let mut m = Vec::new();
                for (ch, n) in &self.counts {
                    m.extend_from_slice(&ch.to_le_bytes());
                    m.extend_from_slice(&n.to_le_bytes());
                }
                string(&mut b, &m);
                record(&mut self.out, op::STATISTICS, &b);
            }
        }
        let summary_start = if self.o.summary { summary_start } else { 0 };
        let footer_pos = self.out.len();
        let mut f = Vec::new();
        f.extend_from_slice(&summary_start.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes());
        record(&mut self.out, op::FOOTER, &[f.clone(), vec![0; 4]].concat());
        if self.o.crc && summary_start != 0 {
            let crc = crc32fast::hash(&self.out[summary_start as usize..footer_pos + 9 + 16]);
            let n = self.out.len();
            self.out[n - 4..].copy_from_slice(&crc.to_le_bytes());
        }
        self.out.extend_from_slice(MAGIC);
        self.out
    }
}
