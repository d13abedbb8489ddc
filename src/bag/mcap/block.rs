//! One block of an MCAP file read into memory: a chunk (decompressed, CRC checked) or a run of
//! top-level records (messages written outside chunks), and the messages located in it.

use std::collections::HashMap;
use std::ops::Range;

use super::chunk::{check_crc, decompress, Codec};
use super::file::McapFile;
use super::records::{self, op, CHUNK_FIXED, MESSAGE_FIELDS, RECORD_HEADER};
use crate::bag::buffer::{BufferPool, ChunkBuf};
use crate::bag::BagError;
use crate::Time;

/// What a block is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A chunk record; its records start at `records_at` (file offset).
    Chunk {
        codec: Codec,
        records_at: u64,
        compressed: u64,
        uncompressed: u64,
    },
    /// Consecutive top-level records, `len` bytes from the block's `pos`.
    Run,
}

/// A block as the scan located it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    /// File offset of the chunk record, or of the run's first record.
    pub pos: u64,
    /// Bytes of the chunk record (framing included), or of the run.
    pub len: u64,
    pub kind: Kind,
    /// Log-time range of its messages, inclusive.
    pub start: Time,
    pub end: Time,
    /// Messages per connection index, as the scan counted them.
    pub counts: Vec<(usize, u64)>,
}

impl BlockMeta {
    pub fn codec(&self) -> Codec {
        match self.kind {
            Kind::Chunk { codec, .. } => codec,
            Kind::Run => Codec::None,
        }
    }

    /// Bytes in the file: the chunk's compressed records, or the run.
    pub fn stored(&self) -> u64 {
        match self.kind {
            Kind::Chunk { compressed, .. } => compressed,
            Kind::Run => self.len,
        }
    }

    /// Bytes in memory once read.
    pub fn raw(&self) -> u64 {
        match self.kind {
            Kind::Chunk { uncompressed, .. } => uncompressed,
            Kind::Run => self.len,
        }
    }
}

/// Bytes of a chunk record before its records, for a compression string of `n` bytes.
pub fn chunk_head_len(n: usize) -> u64 {
    (RECORD_HEADER + CHUNK_FIXED + 4 + n + 8) as u64
}

/// Read block `b` into a buffer of `pool`: a chunk's records decompressed and checked against
/// its CRC, or a run's bytes. `raw` holds compressed bytes (reused between calls).
pub fn read_block(
    file: &McapFile,
    b: &BlockMeta,
    pool: &BufferPool,
    raw: &mut Vec<u8>,
) -> Result<ChunkBuf, BagError> {
    let Kind::Chunk {
        codec,
        records_at,
        compressed,
        uncompressed,
    } = b.kind
    else {
        file.check(b.pos, b.len, "run of records")?;
        let mut buf = pool.take(b.len as usize);
        file.read_into(b.pos, buf.as_mut_slice(), "run of records")?;
        return Ok(buf);
    };
    // The chunk's own header: the index gave where the records are, the chunk says what they
    // hash to; both must agree on the rest.
    let head_len = records_at.saturating_sub(b.pos);
    file.check(b.pos, b.len, "chunk")?;
    if head_len > b.len {
        return Err(file.corrupt(b.pos, "chunk header runs past the chunk"));
    }
    let mut head = Vec::new();
    file.read_vec(b.pos, head_len, &mut head, "chunk header")?;
    let (opcode, len) = records::frame(&head).unwrap_or((0, 0));
    if opcode != op::CHUNK || len.checked_add(RECORD_HEADER as u64) != Some(b.len) {
        return Err(file.corrupt(
            b.pos,
            format!(
                "the index places a chunk of {} bytes here, the file has a {} of {} bytes",
                b.len,
                records::op_name(opcode),
                len.saturating_add(RECORD_HEADER as u64)
            ),
        ));
    }
    let h = records::chunk_header(&head[RECORD_HEADER..]).map_err(|e| file.corrupt(b.pos, e))?;
    if Codec::parse(&h.compression) != Some(codec)
        || h.records_len != compressed
        || h.uncompressed_size != uncompressed
        || b.pos + (RECORD_HEADER + h.records_at) as u64 != records_at
    {
        return Err(file.corrupt(
            b.pos,
            format!(
                "the chunk ({:?}, {} bytes, {} uncompressed) disagrees with its index ({}, {} \
                 bytes, {} uncompressed)",
                h.compression,
                h.records_len,
                h.uncompressed_size,
                codec.as_str(),
                compressed,
                uncompressed
            ),
        ));
    }
    if records_at + compressed > b.pos + b.len {
        return Err(file.corrupt(b.pos, "chunk records run past the chunk record"));
    }
    let corrupt = |e: String| file.corrupt(b.pos, e);
    if codec == Codec::None {
        if compressed != uncompressed {
            return Err(corrupt(format!(
                "uncompressed chunk holds {compressed} bytes but declares {uncompressed}"
            )));
        }
        // Straight from the file into the chunk buffer: one copy.
        let mut buf = pool.take(compressed as usize);
        file.read_into(records_at, buf.as_mut_slice(), "chunk records")?;
        check_crc(&buf, h.uncompressed_crc).map_err(corrupt)?;
        return Ok(buf);
    }
    file.read_vec(records_at, compressed, raw, "chunk records")?;
    decompress(codec, raw, uncompressed, h.uncompressed_crc, pool).map_err(corrupt)
}

/// A message located in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub conn: usize,
    pub time: Time,
    pub publish: Time,
    /// Offset of the message record in the block.
    pub offset: u64,
    pub data: Range<usize>,
}

/// The messages of a block's bytes on known channels, in block order. Other records are
/// skipped (schemas and channels were registered by the scan).
pub fn messages(buf: &[u8], channels: &HashMap<u16, usize>) -> Result<Vec<Msg>, (usize, String)> {
    let mut out = Vec::new();
    records::walk(buf, |r| {
        if r.op == op::MESSAGE {
            let m = records::message(&buf[r.body.clone()])?;
            if let Some(&conn) = channels.get(&m.channel_id) {
                out.push(Msg {
                    conn,
                    time: m.log_time,
                    publish: m.publish_time,
                    offset: r.pos as u64,
                    data: r.body.start + MESSAGE_FIELDS..r.body.end,
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
}
