//! Locating an MCAP file's schemas, channels and blocks: from the summary section and the
//! message indexes (no chunk decompressed), or by a linear scan of the data section when the
//! summary is missing (a recording that was killed), damaged or does not index every message.

use std::collections::HashMap;

use super::block::{chunk_head_len, messages, read_block, BlockMeta, Kind};
use super::chunk::Codec;
use super::file::McapFile;
use super::records::{
    self, op, Channel, ChunkIndex, Footer, Header, Statistics, FOOTER_RECORD, MAGIC,
    MESSAGE_FIELDS, RECORD_HEADER,
};
use crate::bag::buffer::BufferPool;
use crate::bag::BagError;
use crate::Time;

/// A run of messages outside chunks becomes one block of at most about this many bytes, so
/// that reading one costs what reading a chunk does.
pub const RUN_BYTES: u64 = 4 << 20;

/// The linear scan reads the file through a buffer of this size.
const PEEK_BYTES: u64 = 256 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRec {
    pub id: u16,
    pub name: String,
    pub encoding: String,
    pub data: Vec<u8>,
}

/// A message's place in (log time, stream order) order, and the block holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub time: Time,
    pub pos: u64,
    pub offset: u64,
    pub block: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChanStats {
    pub count: u64,
    pub first: Option<Place>,
    pub last: Option<Place>,
}

impl ChanStats {
    fn add(&mut self, n: u64, first: Place, last: Place) {
        self.count += n;
        if self.first.is_none_or(|f| first < f) {
            self.first = Some(first);
        }
        if self.last.is_none_or(|l| last > l) {
            self.last = Some(last);
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub header: Option<Header>,
    pub schemas: Vec<SchemaRec>,
    /// In the order the summary (or the data section) gives them.
    pub channels: Vec<Channel>,
    /// Channel id to index in `channels`.
    pub index: HashMap<u16, usize>,
    /// Indexed like `channels`.
    pub stats: Vec<ChanStats>,
    /// In file order; blocks without messages are left out.
    pub blocks: Vec<BlockMeta>,
    pub indexed: bool,
    pub statistics: Option<Statistics>,
    /// Chunks decompressed at open because they had no message indexes.
    pub chunks_read: usize,
    pub warnings: Vec<String>,
}

impl Scan {
    fn add_schema(&mut self, s: records::Schema<'_>) {
        // Id 0 is invalid (no schema); a repeated id must be identical and is ignored.
        if s.id != 0 && !self.schemas.iter().any(|x| x.id == s.id) {
            self.schemas.push(SchemaRec {
                id: s.id,
                name: s.name.to_string(),
                encoding: s.encoding.to_string(),
                data: s.data.to_vec(),
            });
        }
    }

    fn add_channel(&mut self, c: Channel) {
        if !self.index.contains_key(&c.id) {
            self.index.insert(c.id, self.channels.len());
            self.channels.push(c);
            self.stats.push(ChanStats::default());
        }
    }

    fn warn_unknown(&mut self, file: &McapFile, channel: u16, at: u64, warned: &mut Vec<u16>) {
        if !warned.contains(&channel) {
            warned.push(channel);
            self.warnings.push(format!(
                "{}: messages of channel {channel} (first at offset {at}) have no channel \
                 record: skipped",
                file.path().display()
            ));
        }
    }
}

/// Scan `file`: its header, then the summary when there is a usable one, else the data
/// section record by record.
pub fn scan(file: &McapFile, pool: &BufferPool) -> Result<Scan, BagError> {
    let not_mcap = |detail: String| BagError::NotABag {
        path: file.path().to_path_buf(),
        detail,
    };
    let len = file.len();
    let min = (MAGIC.len() + RECORD_HEADER) as u64;
    if len < min {
        return Err(not_mcap(format!("{len} bytes, too short for an MCAP file")));
    }
    let mut head = [0u8; MAGIC.len() + RECORD_HEADER];
    file.read_into(0, &mut head, "magic")?;
    if &head[..8] != MAGIC {
        return Err(not_mcap("no MCAP magic at the start".into()));
    }
    let (opcode, hlen) = records::frame(&head[8..]).unwrap_or((0, 0));
    if opcode != op::HEADER {
        return Err(not_mcap(format!(
            "the first record is a {}, not a header",
            records::op_name(opcode)
        )));
    }
    let mut body = Vec::new();
    file.read_vec(min, hlen, &mut body, "header record")?;
    let header = records::header(&body).map_err(|e| file.corrupt(8, e))?;
    let data_start = min + hlen;

    let footer = read_footer(file)?;
    let footer_pos = len.saturating_sub((MAGIC.len() + FOOTER_RECORD) as u64);
    let mut warnings = Vec::new();
    let path = file.path().display().to_string();
    let (mut scan, why_linear, data_end) = match footer {
        None => (
            None,
            Some(format!(
                "{path}: no footer at the end (the recording was cut short?)"
            )),
            len,
        ),
        Some(f) if f.summary_start == 0 => (
            None,
            Some(format!("{path}: no summary section")),
            footer_pos,
        ),
        Some(f) if f.summary_start < data_start || f.summary_start > footer_pos => (
            None,
            Some(format!(
                "{path}: the footer's summary_start {} lies outside the file's records",
                f.summary_start
            )),
            footer_pos,
        ),
        Some(f) => match from_summary(file, &f, footer_pos, data_start, pool) {
            Ok(Ok(s)) => (Some(s), None, f.summary_start),
            Ok(Err(why)) => (None, Some(format!("{path}: {why}")), f.summary_start),
            Err(BagError::Corrupt { offset, detail, .. }) => (
                None,
                Some(format!(
                    "{path}: summary unusable: at offset {offset}: {detail}"
                )),
                f.summary_start,
            ),
            Err(e) => return Err(e),
        },
    };
    if let Some(why) = why_linear {
        warnings.push(format!("{why}: read by a linear scan"));
        scan = Some(linear(file, data_start, data_end, pool)?);
    }
    let mut scan = scan.unwrap_or_default();
    scan.header = Some(header);
    warnings.append(&mut scan.warnings);
    scan.warnings = warnings;
    Ok(scan)
}

/// The footer, when the file ends in one and the trailing magic.
fn read_footer(file: &McapFile) -> Result<Option<Footer>, BagError> {
    let n = (FOOTER_RECORD + MAGIC.len()) as u64;
    if file.len() < n + (MAGIC.len() + RECORD_HEADER) as u64 {
        return Ok(None);
    }
    let mut b = [0u8; FOOTER_RECORD + MAGIC.len()];
    file.read_into(file.len() - n, &mut b, "footer")?;
    if &b[FOOTER_RECORD..] != MAGIC || records::frame(&b) != Some((op::FOOTER, 20)) {
        return Ok(None);
    }
    Ok(records::footer(&b[RECORD_HEADER..FOOTER_RECORD]).ok())
}

/// The scan from the summary section; Ok(Err(why)) when the summary does not index every
/// message and the data section must be scanned instead.
fn from_summary(
    file: &McapFile,
    f: &Footer,
    footer_pos: u64,
    data_start: u64,
    pool: &BufferPool,
) -> Result<Result<Scan, String>, BagError> {
    let start = f.summary_start;
    let end = if f.summary_offset_start >= start && f.summary_offset_start <= footer_pos {
        if f.summary_offset_start == 0 {
            footer_pos
        } else {
            f.summary_offset_start
        }
    } else {
        footer_pos
    };
    let mut summary = Vec::new();
    if f.summary_crc != 0 {
        // Through the footer's summary_offset_start field.
        let crc_end = footer_pos + (RECORD_HEADER + 16) as u64;
        file.read_vec(start, crc_end - start, &mut summary, "summary")?;
        let got = crc32fast::hash(&summary);
        if got != f.summary_crc {
            return Ok(Err(format!(
                "summary CRC mismatch (computed {got:#010x}, the footer says {:#010x})",
                f.summary_crc
            )));
        }
        summary.truncate((end - start) as usize);
    } else {
        file.read_vec(start, end - start, &mut summary, "summary")?;
    }
    let mut scan = Scan {
        indexed: true,
        ..Scan::default()
    };
    let mut chunk_indexes = Vec::new();
    records::walk(&summary, |r| {
        let b = &summary[r.body.clone()];
        match r.op {
            op::SCHEMA => scan.add_schema(records::schema(b)?),
            op::CHANNEL => scan.add_channel(records::channel(b)?),
            op::CHUNK_INDEX => chunk_indexes.push(records::chunk_index(b)?),
            op::STATISTICS => scan.statistics = Some(records::statistics(b)?),
            _ => {}
        }
        Ok(())
    })
    .map_err(|(at, e)| file.corrupt(start + at as u64, e))?;

    chunk_indexes.sort_by_key(|c| c.chunk_start_offset);
    let mut warned = Vec::new();
    let mut prev_end = data_start;
    for ci in &chunk_indexes {
        let at = ci.chunk_start_offset;
        if at < prev_end
            || ci
                .chunk_length
                .checked_add(at)
                .is_none_or(|e| e > f.summary_start)
        {
            return Err(file.corrupt(
                at,
                format!(
                    "chunk index places a chunk of {} bytes here, outside the data section or \
                     over the previous chunk",
                    ci.chunk_length
                ),
            ));
        }
        prev_end = at + ci.chunk_length;
        index_chunk(file, ci, f.summary_start, pool, &mut scan, &mut warned)?;
    }

    let total: u64 = scan.stats.iter().map(|s| s.count).sum();
    match &scan.statistics {
        Some(st) if st.message_count != total => {
            return Ok(Err(format!(
                "the statistics count {} messages, the chunk indexes {total} (messages outside \
                 chunks?)",
                st.message_count
            )))
        }
        None if chunk_indexes.is_empty() => {
            return Ok(Err(
                "the summary has neither chunk indexes nor statistics".to_string()
            ))
        }
        _ => {}
    }
    Ok(Ok(scan))
}

/// One chunk from its index: per-channel counts and times from its message indexes, or by
/// reading the chunk when it has none.
fn index_chunk(
    file: &McapFile,
    ci: &ChunkIndex,
    data_end: u64,
    pool: &BufferPool,
    scan: &mut Scan,
    warned: &mut Vec<u16>,
) -> Result<(), BagError> {
    let at = ci.chunk_start_offset;
    let codec = Codec::parse(&ci.compression).ok_or_else(|| {
        file.corrupt(
            at,
            format!(
                "chunk compression {:?} is not supported (MCAP's are \"\", \"zstd\" and \"lz4\")",
                ci.compression
            ),
        )
    })?;
    let head = chunk_head_len(ci.compression.len());
    let records_at = at.saturating_add(head);
    if head.saturating_add(ci.compressed_size) > ci.chunk_length {
        return Err(file.corrupt(
            at,
            format!(
                "chunk index: {} compressed bytes do not fit in a chunk record of {}",
                ci.compressed_size, ci.chunk_length
            ),
        ));
    }
    let mut block = BlockMeta {
        pos: at,
        len: ci.chunk_length,
        kind: Kind::Chunk {
            codec,
            records_at,
            compressed: ci.compressed_size,
            uncompressed: ci.uncompressed_size,
        },
        start: ci.start,
        end: ci.end,
        counts: Vec::new(),
    };
    let b = scan.blocks.len();
    if ci.message_index_offsets.is_empty() || ci.message_index_length == 0 {
        // No message indexes: the chunk itself says what it holds.
        scan.chunks_read += 1;
        let buf = read_block(file, &block, pool, &mut Vec::new())?;
        let msgs = messages(&buf, &scan.index)
            .map_err(|(o, e)| file.corrupt(at, format!("in the chunk, at byte {o}: {e}")))?;
        return add_block(scan, block, msgs.iter().map(|m| (m.conn, m.time, m.offset)));
    }
    let idx_start = at + ci.chunk_length;
    let idx_end = idx_start
        .checked_add(ci.message_index_length)
        .filter(|&e| e <= data_end)
        .ok_or_else(|| {
            file.corrupt(
                idx_start,
                "message indexes run past the data section".to_string(),
            )
        })?;
    let mut idx = Vec::new();
    file.read_vec(idx_start, idx_end - idx_start, &mut idx, "message indexes")?;
    let mut entries: Vec<(usize, u64, Place, Place)> = Vec::new();
    for &(channel, off) in &ci.message_index_offsets {
        let rel = off
            .checked_sub(idx_start)
            .filter(|&r| r < idx.len() as u64)
            .ok_or_else(|| {
                file.corrupt(
                    off,
                    format!("the chunk index places the message index of channel {channel} outside the message indexes after its chunk"),
                )
            })?;
        let r = records::next_record(&idx, rel as usize)
            .map_err(|e| file.corrupt(off, e))?
            .filter(|r| r.op == op::MESSAGE_INDEX)
            .ok_or_else(|| file.corrupt(off, "no message index record here"))?;
        let mi = records::message_index(&idx[r.body]).map_err(|e| file.corrupt(off, e))?;
        if mi.channel_id != channel {
            return Err(file.corrupt(
                off,
                format!(
                    "message index of channel {} where the chunk index expects channel {channel}",
                    mi.channel_id
                ),
            ));
        }
        if mi.is_empty() {
            continue;
        }
        let Some(&conn) = scan.index.get(&channel) else {
            scan.warn_unknown(file, channel, at, warned);
            continue;
        };
        let mut lo: Option<(Time, u64)> = None;
        let mut hi: Option<(Time, u64)> = None;
        for (t, o) in mi.entries() {
            let t = Time::try_from(t)
                .ok()
                .filter(|t| (ci.start..=ci.end).contains(t))
                .ok_or_else(|| {
                    file.corrupt(
                        off,
                        format!(
                            "message index of channel {channel} lists a message at {t} ns, \
                             outside its chunk's range {}..={} ns",
                            ci.start, ci.end
                        ),
                    )
                })?;
            if lo.is_none_or(|l| (t, o) < l) {
                lo = Some((t, o));
            }
            if hi.is_none_or(|h| (t, o) > h) {
                hi = Some((t, o));
            }
        }
        let (Some(lo), Some(hi)) = (lo, hi) else {
            continue;
        };
        let place = |(time, offset)| Place {
            time,
            pos: at,
            offset,
            block: b,
        };
        entries.push((conn, mi.len() as u64, place(lo), place(hi)));
    }
    for (conn, n, lo, hi) in entries {
        scan.stats[conn].add(n, lo, hi);
        block.counts.push((conn, n));
    }
    if !block.counts.is_empty() {
        scan.blocks.push(block);
    }
    Ok(())
}

/// Add a block whose messages are `msgs` (connection, time, offset): its counts, its time
/// range from the messages themselves, the channels' first and last.
fn add_block(
    scan: &mut Scan,
    mut block: BlockMeta,
    msgs: impl Iterator<Item = (usize, Time, u64)>,
) -> Result<(), BagError> {
    let b = scan.blocks.len();
    let mut per: Vec<(usize, u64, Place, Place)> = Vec::new();
    let (mut start, mut end) = (Time::MAX, Time::MIN);
    for (conn, time, offset) in msgs {
        let p = Place {
            time,
            pos: block.pos,
            offset,
            block: b,
        };
        start = start.min(time);
        end = end.max(time);
        match per.iter_mut().find(|e| e.0 == conn) {
            Some(e) => {
                e.1 += 1;
                e.2 = e.2.min(p);
                e.3 = e.3.max(p);
            }
            None => per.push((conn, 1, p, p)),
        }
    }
    if per.is_empty() {
        return Ok(());
    }
    for &(conn, n, lo, hi) in &per {
        scan.stats[conn].add(n, lo, hi);
        block.counts.push((conn, n));
    }
    block.start = start;
    block.end = end;
    scan.blocks.push(block);
    Ok(())
}

/// Reads the file through one buffer, so that a scan over many small records does not cost a
/// read call for each.
struct Peek {
    buf: Vec<u8>,
    at: u64,
}

impl Peek {
    fn get(&mut self, file: &McapFile, pos: u64, n: u64, what: &str) -> Result<&[u8], BagError> {
        let have = pos >= self.at && pos + n <= self.at + self.buf.len() as u64;
        if !have {
            file.check(pos, n, what)?;
            let len = n.max(PEEK_BYTES).min(file.len() - pos);
            file.read_vec(pos, len, &mut self.buf, what)?;
            self.at = pos;
        }
        let s = (pos - self.at) as usize;
        Ok(&self.buf[s..s + n as usize])
    }
}

/// A run of top-level messages being gathered.
struct Run {
    pos: u64,
    end: u64,
    msgs: Vec<(usize, Time, u64)>,
}

/// Scan the data section `[data_start, data_end)` record by record, stopping at the first
/// record that is not complete (a warning says where).
fn linear(
    file: &McapFile,
    data_start: u64,
    data_end: u64,
    pool: &BufferPool,
) -> Result<Scan, BagError> {
    let mut scan = Scan::default();
    let mut peek = Peek {
        buf: Vec::new(),
        at: 0,
    };
    let mut raw = Vec::new();
    let mut run: Option<Run> = None;
    let mut warned = Vec::new();
    let path = file.path().display().to_string();
    let mut pos = data_start;
    let close = |scan: &mut Scan, run: &mut Option<Run>| -> Result<(), BagError> {
        let Some(r) = run.take() else { return Ok(()) };
        let block = BlockMeta {
            pos: r.pos,
            len: r.end - r.pos,
            kind: Kind::Run,
            start: 0,
            end: 0,
            counts: Vec::new(),
        };
        add_block(scan, block, r.msgs.into_iter())
    };
    let stop = loop {
        if pos >= data_end {
            break None;
        }
        if data_end - pos < RECORD_HEADER as u64 {
            break Some(format!(
                "{} bytes at the end, too few for a record",
                data_end - pos
            ));
        }
        let (opcode, len) =
            records::frame(peek.get(file, pos, RECORD_HEADER as u64, "record")?).unwrap_or((0, 0));
        if opcode == 0 {
            break Some("opcode 0 (zeroed bytes?)".to_string());
        }
        let body = pos + RECORD_HEADER as u64;
        let Some(end) = body.checked_add(len).filter(|&e| e <= data_end) else {
            break Some(format!(
                "{} of {len} bytes runs past the end of the file",
                records::op_name(opcode)
            ));
        };
        let corrupt = |e: String| file.corrupt(pos, e);
        match opcode {
            op::MESSAGE => {
                let n = len.min(MESSAGE_FIELDS as u64);
                let m = records::message(peek.get(file, body, n, "message")?).map_err(corrupt)?;
                match scan.index.get(&m.channel_id) {
                    Some(&conn) => {
                        let r = run.get_or_insert_with(|| Run {
                            pos,
                            end: pos,
                            msgs: Vec::new(),
                        });
                        r.msgs.push((conn, m.log_time, pos - r.pos));
                    }
                    None => scan.warn_unknown(file, m.channel_id, pos, &mut warned),
                }
            }
            op::SCHEMA => {
                let s = records::schema(peek.get(file, body, len, "schema")?).map_err(corrupt)?;
                scan.add_schema(s);
            }
            op::CHANNEL => {
                let c = records::channel(peek.get(file, body, len, "channel")?).map_err(corrupt)?;
                scan.add_channel(c);
            }
            op::CHUNK => {
                close(&mut scan, &mut run)?;
                linear_chunk(
                    file,
                    pos,
                    len,
                    &mut peek,
                    pool,
                    &mut raw,
                    &mut scan,
                    &mut warned,
                )?;
            }
            op::DATA_END | op::FOOTER => break None,
            _ => close(&mut scan, &mut run)?,
        }
        if let Some(r) = run.as_mut() {
            r.end = end;
            if r.end - r.pos >= RUN_BYTES {
                close(&mut scan, &mut run)?;
            }
        }
        pos = end;
    };
    close(&mut scan, &mut run)?;
    if let Some(why) = stop {
        scan.warnings.push(format!(
            "{path}: the linear scan stopped at offset {pos} of {}: {why}; anything after it is \
             not read",
            file.len()
        ));
    }
    Ok(scan)
}

/// A chunk met by the linear scan: decompressed, its schemas and channels registered, its
/// messages counted.
#[allow(clippy::too_many_arguments)]
fn linear_chunk(
    file: &McapFile,
    pos: u64,
    len: u64,
    peek: &mut Peek,
    pool: &BufferPool,
    raw: &mut Vec<u8>,
    scan: &mut Scan,
    warned: &mut Vec<u16>,
) -> Result<(), BagError> {
    let body = pos + RECORD_HEADER as u64;
    // Fixed fields, the compression string's length and the string itself (bounded by the
    // record), then the records' length.
    let fixed = records::CHUNK_FIXED as u64 + 4;
    let b = peek.get(file, body, len.min(fixed), "chunk header")?;
    let n = b
        .get(records::CHUNK_FIXED..)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| file.corrupt(pos, "chunk record too short for its header"))?;
    let head = (fixed + n as u64 + 8).min(len);
    let h = records::chunk_header(peek.get(file, body, head, "chunk header")?)
        .map_err(|e| file.corrupt(pos, e))?;
    let codec = Codec::parse(&h.compression).ok_or_else(|| {
        file.corrupt(
            pos,
            format!(
                "chunk compression {:?} is not supported (MCAP's are \"\", \"zstd\" and \"lz4\")",
                h.compression
            ),
        )
    })?;
    let records_at = body + h.records_at as u64;
    if h.records_len > len - h.records_at as u64 {
        return Err(file.corrupt(pos, "chunk records run past the chunk record"));
    }
    let block = BlockMeta {
        pos,
        len: len + RECORD_HEADER as u64,
        kind: Kind::Chunk {
            codec,
            records_at,
            compressed: h.records_len,
            uncompressed: h.uncompressed_size,
        },
        start: h.start,
        end: h.end,
        counts: Vec::new(),
    };
    scan.chunks_read += 1;
    let buf = read_block(file, &block, pool, raw)?;
    let mut msgs = Vec::new();
    records::walk(&buf, |r| {
        let b = &buf[r.body.clone()];
        match r.op {
            op::SCHEMA => scan.add_schema(records::schema(b)?),
            op::CHANNEL => scan.add_channel(records::channel(b)?),
            op::MESSAGE => {
                let m = records::message(b)?;
                match scan.index.get(&m.channel_id) {
                    Some(&conn) => msgs.push((conn, m.log_time, r.pos as u64)),
                    None => scan.warn_unknown(file, m.channel_id, pos, warned),
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|(o, e)| file.corrupt(pos, format!("in the chunk, at byte {o}: {e}")))?;
    add_block(scan, block, msgs.into_iter())
}
