//! MCAP records over byte slices (no I/O): framing, and the fields of every record the reader
//! uses, per the MCAP specification (major version 0).
//!
//! Every length read from the bytes is checked against the slice it claims to lie in before
//! anything is sliced or allocated; errors are strings naming the record and field, the caller
//! adds file and offset.

use std::ops::Range;

use crate::Time;

/// The leading and trailing magic: `\x89MCAP`, major version `0`, `\r\n`.
pub const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";

/// Opcode (1 byte) and content length (u64).
pub const RECORD_HEADER: usize = 9;

/// A footer record with its framing: opcode, length, 8 + 8 + 4 bytes of content.
pub const FOOTER_RECORD: usize = RECORD_HEADER + 20;

pub mod op {
    pub const HEADER: u8 = 0x01;
    pub const FOOTER: u8 = 0x02;
    pub const SCHEMA: u8 = 0x03;
    pub const CHANNEL: u8 = 0x04;
    pub const MESSAGE: u8 = 0x05;
    pub const CHUNK: u8 = 0x06;
    pub const MESSAGE_INDEX: u8 = 0x07;
    pub const CHUNK_INDEX: u8 = 0x08;
    pub const ATTACHMENT: u8 = 0x09;
    pub const ATTACHMENT_INDEX: u8 = 0x0A;
    pub const STATISTICS: u8 = 0x0B;
    pub const METADATA: u8 = 0x0C;
    pub const METADATA_INDEX: u8 = 0x0D;
    pub const SUMMARY_OFFSET: u8 = 0x0E;
    pub const DATA_END: u8 = 0x0F;
}

/// The record's name for messages.
pub fn op_name(code: u8) -> String {
    match code {
        op::HEADER => "header".into(),
        op::FOOTER => "footer".into(),
        op::SCHEMA => "schema".into(),
        op::CHANNEL => "channel".into(),
        op::MESSAGE => "message".into(),
        op::CHUNK => "chunk".into(),
        op::MESSAGE_INDEX => "message index".into(),
        op::CHUNK_INDEX => "chunk index".into(),
        op::ATTACHMENT => "attachment".into(),
        op::ATTACHMENT_INDEX => "attachment index".into(),
        op::STATISTICS => "statistics".into(),
        op::METADATA => "metadata".into(),
        op::METADATA_INDEX => "metadata index".into(),
        op::SUMMARY_OFFSET => "summary offset".into(),
        op::DATA_END => "data end".into(),
        c => format!("record with opcode {c:#04x}"),
    }
}

/// Opcode and content length of a record whose framing is `b` (at least 9 bytes).
pub fn frame(b: &[u8]) -> Option<(u8, u64)> {
    let len = u64::from_le_bytes(b.get(1..RECORD_HEADER)?.try_into().ok()?);
    Some((b[0], len))
}

/// One record located in a slice: its opcode, where it starts and its content's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub op: u8,
    pub pos: usize,
    pub body: Range<usize>,
}

/// The record at `pos` of `buf`: None at the end of `buf`, an error when its framing or its
/// content runs past the end.
pub fn next_record(buf: &[u8], pos: usize) -> Result<Option<Rec>, String> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let (op, len) = buf
        .get(pos..)
        .and_then(frame)
        .ok_or_else(|| format!("record framing cut short ({} bytes left)", buf.len() - pos))?;
    let start = pos + RECORD_HEADER;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| {
            format!(
                "{} of {len} bytes runs past the end ({} bytes left)",
                op_name(op),
                buf.len() - start
            )
        })?;
    Ok(Some(Rec {
        op,
        pos,
        body: start..end,
    }))
}

/// Visit every record of `buf` (a chunk's records or a run of top-level records) in order.
/// An error gives the offset in `buf` of the record at fault.
pub fn walk(
    buf: &[u8],
    mut f: impl FnMut(&Rec) -> Result<(), String>,
) -> Result<(), (usize, String)> {
    let mut pos = 0;
    while let Some(r) = next_record(buf, pos).map_err(|e| (pos, e))? {
        f(&r).map_err(|e| (r.pos, e))?;
        pos = r.body.end;
    }
    Ok(())
}

/// Little-endian fields of one record, each checked against the record's end.
pub struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Cursor { b, p: 0, what }
    }

    pub fn pos(&self) -> usize {
        self.p
    }

    fn short(&self, field: &str, n: u64) -> String {
        format!(
            "{} record: {field} ({n} bytes at byte {}) runs past the record's {} bytes",
            self.what,
            self.p,
            self.b.len()
        )
    }

    pub fn bytes(&mut self, n: u64, field: &str) -> Result<&'a [u8], String> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.p.checked_add(n))
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| self.short(field, n))?;
        let s = &self.b[self.p..end];
        self.p = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], String> {
        let b = self.bytes(N as u64, field)?;
        let mut a = [0; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn u8(&mut self, field: &str) -> Result<u8, String> {
        Ok(self.array::<1>(field)?[0])
    }
    pub fn u16(&mut self, field: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub fn u64(&mut self, field: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A timestamp: u64 nanoseconds, which must fit bagstream's signed time.
    pub fn time(&mut self, field: &str) -> Result<Time, String> {
        let t = self.u64(field)?;
        Time::try_from(t).map_err(|_| {
            format!(
                "{} record: {field} {t} ns is past the year 2262 (2^63 ns)",
                self.what
            )
        })
    }

    /// `uint32` length-prefixed bytes.
    pub fn prefixed(&mut self, field: &str) -> Result<&'a [u8], String> {
        let n = self.u32(field)?;
        self.bytes(n as u64, field)
    }

    /// A `uint32` length-prefixed UTF-8 string.
    pub fn str(&mut self, field: &str) -> Result<&'a str, String> {
        let b = self.prefixed(field)?;
        std::str::from_utf8(b)
            .map_err(|e| format!("{} record: {field} is not UTF-8 ({e})", self.what))
    }

    /// The rest of the record.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.p..];
        self.p = self.b.len();
        s
    }

    /// A `Map<string, string>`.
    pub fn string_map(&mut self, field: &str) -> Result<Vec<(String, String)>, String> {
        let b = self.prefixed(field)?;
        let mut c = Cursor::new(b, self.what);
        let mut out = Vec::new();
        while c.p < b.len() {
            let k = c.str(field)?;
            let v = c.str(field)?;
            out.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    }

    /// A `Map<uint16, uint64>`.
    pub fn id_map(&mut self, field: &str) -> Result<Vec<(u16, u64)>, String> {
        let b = self.prefixed(field)?;
        if b.len() % 10 != 0 {
            return Err(format!(
                "{} record: {field} of {} bytes is not a whole number of 10-byte entries",
                self.what,
                b.len()
            ));
        }
        let mut c = Cursor::new(b, self.what);
        let mut out = Vec::with_capacity(b.len() / 10);
        while c.p < b.len() {
            out.push((c.u16(field)?, c.u64(field)?));
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub profile: String,
    pub library: String,
}

pub fn header(b: &[u8]) -> Result<Header, String> {
    let mut c = Cursor::new(b, "header");
    Ok(Header {
        profile: c.str("profile")?.to_string(),
        library: c.str("library")?.to_string(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub summary_start: u64,
    pub summary_offset_start: u64,
    pub summary_crc: u32,
}

pub fn footer(b: &[u8]) -> Result<Footer, String> {
    let mut c = Cursor::new(b, "footer");
    Ok(Footer {
        summary_start: c.u64("summary_start")?,
        summary_offset_start: c.u64("summary_offset_start")?,
        summary_crc: c.u32("summary_crc")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema<'a> {
    pub id: u16,
    pub name: &'a str,
    pub encoding: &'a str,
    pub data: &'a [u8],
}

pub fn schema(b: &[u8]) -> Result<Schema<'_>, String> {
    let mut c = Cursor::new(b, "schema");
    Ok(Schema {
        id: c.u16("id")?,
        name: c.str("name")?,
        encoding: c.str("encoding")?,
        data: c.prefixed("data")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: u16,
    pub schema_id: u16,
    pub topic: String,
    pub message_encoding: String,
    pub metadata: Vec<(String, String)>,
}

pub fn channel(b: &[u8]) -> Result<Channel, String> {
    let mut c = Cursor::new(b, "channel");
    Ok(Channel {
        id: c.u16("id")?,
        schema_id: c.u16("schema_id")?,
        topic: c.str("topic")?.to_string(),
        message_encoding: c.str("message_encoding")?.to_string(),
        metadata: c.string_map("metadata")?,
    })
}

/// Channel id, sequence, log time and publish time: the bytes before a message's data.
pub const MESSAGE_FIELDS: usize = 2 + 4 + 8 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub channel_id: u16,
    pub sequence: u32,
    pub log_time: Time,
    pub publish_time: Time,
}

/// The fields of a message record (its content, or at least its first [`MESSAGE_FIELDS`]
/// bytes); the data is the rest of the content.
pub fn message(b: &[u8]) -> Result<Message, String> {
    let mut c = Cursor::new(b, "message");
    Ok(Message {
        channel_id: c.u16("channel_id")?,
        sequence: c.u32("sequence")?,
        log_time: c.time("log_time")?,
        publish_time: c.time("publish_time")?,
    })
}

/// The fixed fields of a chunk record, before the compression string.
pub const CHUNK_FIXED: usize = 8 + 8 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHeader {
    pub start: Time,
    pub end: Time,
    pub uncompressed_size: u64,
    pub uncompressed_crc: u32,
    pub compression: String,
    pub records_len: u64,
    /// Offset of the records inside the chunk's content.
    pub records_at: usize,
}

/// The fields of a chunk record before its records; `b` may stop anywhere after them.
pub fn chunk_header(b: &[u8]) -> Result<ChunkHeader, String> {
    let mut c = Cursor::new(b, "chunk");
    let start = c.time("message_start_time")?;
    let end = c.time("message_end_time")?;
    let uncompressed_size = c.u64("uncompressed_size")?;
    let uncompressed_crc = c.u32("uncompressed_crc")?;
    let compression = c.str("compression")?.to_string();
    let records_len = c.u64("records length")?;
    Ok(ChunkHeader {
        start,
        end,
        uncompressed_size,
        uncompressed_crc,
        compression,
        records_len,
        records_at: c.pos(),
    })
}

/// A message index: one channel's (log time, record offset inside the uncompressed chunk)
/// pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIndex<'a> {
    pub channel_id: u16,
    entries: &'a [u8],
}

impl MessageIndex<'_> {
    pub fn len(&self) -> usize {
        self.entries.len() / 16
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (log time as stored, offset) pairs.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries.chunks_exact(16).map(|e| {
            let (t, o) = e.split_at(8);
            (
                u64::from_le_bytes(t.try_into().unwrap_or_default()),
                u64::from_le_bytes(o.try_into().unwrap_or_default()),
            )
        })
    }
}

pub fn message_index(b: &[u8]) -> Result<MessageIndex<'_>, String> {
    let mut c = Cursor::new(b, "message index");
    let channel_id = c.u16("channel_id")?;
    let entries = c.prefixed("records")?;
    if entries.len() % 16 != 0 {
        return Err(format!(
            "message index record: records of {} bytes is not a whole number of 16-byte entries",
            entries.len()
        ));
    }
    Ok(MessageIndex {
        channel_id,
        entries,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkIndex {
    pub start: Time,
    pub end: Time,
    pub chunk_start_offset: u64,
    pub chunk_length: u64,
    pub message_index_offsets: Vec<(u16, u64)>,
    pub message_index_length: u64,
    pub compression: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
}

pub fn chunk_index(b: &[u8]) -> Result<ChunkIndex, String> {
    let mut c = Cursor::new(b, "chunk index");
    Ok(ChunkIndex {
        start: c.time("message_start_time")?,
        end: c.time("message_end_time")?,
        chunk_start_offset: c.u64("chunk_start_offset")?,
        chunk_length: c.u64("chunk_length")?,
        message_index_offsets: c.id_map("message_index_offsets")?,
        message_index_length: c.u64("message_index_length")?,
        compression: c.str("compression")?.to_string(),
        compressed_size: c.u64("compressed_size")?,
        uncompressed_size: c.u64("uncompressed_size")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    pub message_count: u64,
    pub schema_count: u16,
    pub channel_count: u32,
    pub attachment_count: u32,
    pub metadata_count: u32,
    pub chunk_count: u32,
    pub start: Time,
    pub end: Time,
    pub channel_message_counts: Vec<(u16, u64)>,
}

pub fn statistics(b: &[u8]) -> Result<Statistics, String> {
    let mut c = Cursor::new(b, "statistics");
    Ok(Statistics {
        message_count: c.u64("message_count")?,
        schema_count: c.u16("schema_count")?,
        channel_count: c.u32("channel_count")?,
        attachment_count: c.u32("attachment_count")?,
        metadata_count: c.u32("metadata_count")?,
        chunk_count: c.u32("chunk_count")?,
        start: c.time("message_start_time")?,
        end: c.time("message_end_time")?,
        channel_message_counts: c.id_map("channel_message_counts")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_checked_against_the_slice() {
        let mut b = vec![op::MESSAGE];
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(b"abc");
        assert_eq!(
            next_record(&b, 0).unwrap(),
            Some(Rec {
                op: op::MESSAGE,
                pos: 0,
                body: 9..12
            })
        );
        assert_eq!(next_record(&b, 12).unwrap(), None);
        assert!(next_record(&b[..11], 0).unwrap_err().contains("runs past"));
        assert!(next_record(&b[..5], 0).unwrap_err().contains("cut short"));
        let mut huge = b.clone();
        huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(next_record(&huge, 0).is_err());
    }

    #[test]
    fn strings_and_maps_never_read_past_their_record() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(schema(&b).unwrap_err().contains("runs past"));
        let mut m = Vec::new();
        m.extend_from_slice(&7u32.to_le_bytes());
        m.extend_from_slice(&[0; 7]);
        assert!(Cursor::new(&m, "x")
            .id_map("m")
            .unwrap_err()
            .contains("10-byte"));
        let bad = [2u8, 0, 0, 0, 0xFF, 0xFE];
        assert!(Cursor::new(&bad, "x")
            .str("s")
            .unwrap_err()
            .contains("UTF-8"));
    }

    #[test]
    fn times_past_i64_are_errors() {
        let mut b = vec![0u8; 6];
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        assert!(message(&b).unwrap_err().contains("2^63"));
    }
}
