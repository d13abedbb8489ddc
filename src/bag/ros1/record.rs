//! Record framing of the ROS bag 2.0 format: `u32 header_len, header, u32 data_len, data`,
//! where a header is a run of `u32 field_len, name=value` fields.
//!
//! Parsing works on byte slices (a decompressed chunk, a header read from the file) and reports
//! offsets relative to the slice; callers add the file or chunk position when they turn a
//! [`RecordError`] into a [`BagError`].

use std::path::{Path, PathBuf};

use crate::bag::source::{FileSource, ReadAt};
use crate::bag::BagError;
use crate::{Time, NANOS};

/// The version line every ROS1 bag starts with.
pub const MAGIC: &[u8] = b"#ROSBAG V2.0\n";

/// Record op codes (`op` header field).
pub mod op {
    pub const MESSAGE_DATA: u8 = 0x02;
    pub const BAG_HEADER: u8 = 0x03;
    pub const INDEX_DATA: u8 = 0x04;
    pub const CHUNK: u8 = 0x05;
    pub const CHUNK_INFO: u8 = 0x06;
    pub const CONNECTION: u8 = 0x07;
}

/// What an error says about a record whose op code is not one of the format's.
/// `place` says where it was met, e.g. "inside a chunk".
pub fn unknown_op(code: u8, place: &str) -> String {
    let known = match code {
        op::MESSAGE_DATA => "a message record",
        op::BAG_HEADER => "a bag header",
        op::INDEX_DATA => "an index data record",
        op::CHUNK => "a chunk",
        op::CHUNK_INFO => "a chunk info record",
        op::CONNECTION => "a connection record",
        _ => {
            return format!(
                "record {place} with unknown op code {code:#04x} (ROS bag 2.0 uses 0x02 to 0x07)"
            )
        }
    };
    format!("unexpected record {place}: {known} (op {code:#04x})")
}

/// A framing or field error at `offset` bytes into the parsed slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub offset: u64,
    pub detail: String,
}

impl RecordError {
    pub fn new(offset: u64, detail: impl Into<String>) -> Self {
        RecordError {
            offset,
            detail: detail.into(),
        }
    }

    /// Turn into a [`BagError`], `base` being the file offset of the parsed slice.
    pub fn at(self, path: &Path, base: u64) -> BagError {
        BagError::Corrupt {
            path: path.to_path_buf(),
            offset: base + self.offset,
            detail: self.detail,
        }
    }
}

fn read_u32(buf: &[u8], pos: usize) -> Option<u32> {
    let b = buf.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The fields of one record header, borrowed from the buffer they were parsed from.
#[derive(Debug, Clone, Default)]
pub struct Header<'a> {
    fields: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Header<'a> {
    /// Parse a header (the bytes between `header_len` and `data_len`).
    pub fn parse(buf: &'a [u8]) -> Result<Self, RecordError> {
        let mut fields = Vec::new();
        let mut pos = 0usize;
        while pos < buf.len() {
            let len = read_u32(buf, pos).ok_or_else(|| {
                RecordError::new(pos as u64, "header field length cut off by the header end")
            })? as usize;
            let start = pos + 4;
            if len > buf.len() - start {
                return Err(RecordError::new(
                    pos as u64,
                    format!(
                        "header field of {len} bytes runs past the header end ({} bytes left)",
                        buf.len() - start
                    ),
                ));
            }
            let field = &buf[start..start + len];
            let eq = field.iter().position(|&b| b == b'=').ok_or_else(|| {
                RecordError::new(pos as u64, "header field without `=`".to_string())
            })?;
            fields.push((&field[..eq], &field[eq + 1..]));
            pos = start + len;
        }
        Ok(Header { fields })
    }

    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.fields.iter().copied()
    }

    fn require(&self, name: &str) -> Result<&'a [u8], RecordError> {
        self.get(name)
            .ok_or_else(|| RecordError::new(0, format!("header has no `{name}` field")))
    }

    fn fixed<const N: usize>(&self, name: &str) -> Result<[u8; N], RecordError> {
        let v = self.require(name)?;
        v.try_into().map_err(|_| {
            RecordError::new(
                0,
                format!("field `{name}` has {} bytes, expected {N}", v.len()),
            )
        })
    }

    pub fn op(&self) -> Result<u8, RecordError> {
        Ok(self.fixed::<1>("op")?[0])
    }

    pub fn u32(&self, name: &str) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.fixed(name)?))
    }

    pub fn u64(&self, name: &str) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.fixed(name)?))
    }

    pub fn time(&self, name: &str) -> Result<Time, RecordError> {
        Ok(time_from_bytes(self.fixed(name)?))
    }

    /// A text field; invalid UTF-8 is replaced rather than refused, since topic names are only
    /// shown and compared.
    pub fn string(&self, name: &str) -> Result<String, RecordError> {
        Ok(String::from_utf8_lossy(self.require(name)?).into_owned())
    }

    pub fn opt_string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// ROS `time` (u32 sec, u32 nsec) to nanoseconds.
pub fn time_from_bytes(b: [u8; 8]) -> Time {
    let sec = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64;
    let nsec = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as i64;
    sec * NANOS + nsec
}

/// Nanoseconds to ROS `time` bytes; None when the time does not fit (before 1970 or past 2106).
pub fn time_to_bytes(t: Time) -> Option<[u8; 8]> {
    let sec = u32::try_from(t.div_euclid(NANOS)).ok()?;
    let nsec = t.rem_euclid(NANOS) as u32;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&sec.to_le_bytes());
    out[4..].copy_from_slice(&nsec.to_le_bytes());
    Some(out)
}

/// One record inside a buffer.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Offset of the record (its `header_len`) in the buffer.
    pub pos: usize,
    pub header: Header<'a>,
    /// Offset of the data in the buffer.
    pub data_pos: usize,
    pub data: &'a [u8],
    /// Offset just past the record.
    pub end: usize,
}

/// Parse the record starting at `pos` in `buf`; None at the end of the buffer.
pub fn next_record(buf: &[u8], pos: usize) -> Result<Option<Record<'_>>, RecordError> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let cut = |what: &str, at: usize| RecordError::new(at as u64, format!("{what} cut off"));
    let header_len = read_u32(buf, pos).ok_or_else(|| cut("record header length", pos))? as usize;
    let header_start = pos + 4;
    if header_len > buf.len() - header_start {
        return Err(RecordError::new(
            pos as u64,
            format!(
                "record header of {header_len} bytes runs past the end ({} bytes left)",
                buf.len() - header_start
            ),
        ));
    }
    let header_end = header_start + header_len;
    let header = Header::parse(&buf[header_start..header_end])
        .map_err(|e| RecordError::new(header_start as u64 + e.offset, e.detail))?;
    let data_len =
        read_u32(buf, header_end).ok_or_else(|| cut("record data length", header_end))? as usize;
    let data_pos = header_end + 4;
    if data_len > buf.len() - data_pos {
        return Err(RecordError::new(
            header_end as u64,
            format!(
                "record data of {data_len} bytes runs past the end ({} bytes left)",
                buf.len() - data_pos
            ),
        ));
    }
    Ok(Some(Record {
        pos,
        header,
        data_pos,
        data: &buf[data_pos..data_pos + data_len],
        end: data_pos + data_len,
    }))
}

/// A bag file read with positioned reads only: every read is checked against the file size
/// first, so a length field cannot make us allocate more than the file holds.
pub struct BagFile {
    src: Box<dyn ReadAt>,
    path: PathBuf,
    size: u64,
}

/// A record whose header was read from the file; its data is located but not read.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub pos: u64,
    /// Raw header bytes; parse with [`Header::parse`].
    pub header: Vec<u8>,
    pub data_pos: u64,
    pub data_len: u64,
}

impl FileRecord {
    pub fn end(&self) -> u64 {
        self.data_pos + self.data_len
    }

    pub fn parse_header(&self, path: &Path) -> Result<Header<'_>, BagError> {
        Header::parse(&self.header).map_err(|e| e.at(path, self.pos + 4))
    }
}

impl BagFile {
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let io = |source| BagError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(crate::bag::directory_error(path));
        }
        Ok(Self::from_source(
            path.to_path_buf(),
            Box::new(FileSource::new(file).map_err(io)?),
        ))
    }

    /// A bag read from `src` (a file, or bytes in memory), named `path` in errors.
    pub fn from_source(path: PathBuf, src: Box<dyn ReadAt>) -> Self {
        let size = src.len();
        BagFile { src, path, size }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn corrupt(&self, offset: u64, detail: impl Into<String>) -> BagError {
        BagError::Corrupt {
            path: self.path.clone(),
            offset,
            detail: detail.into(),
        }
    }

    /// An error naming `what` unless `len` bytes at `pos` are all in the file: checked before
    /// any buffer of that size is made.
    fn check_span(&self, pos: u64, len: u64, what: &str) -> Result<(), BagError> {
        if pos > self.size || len > self.size - pos {
            return Err(self.corrupt(
                pos,
                format!(
                    "{what} of {len} bytes runs past the end of the file ({} bytes)",
                    self.size
                ),
            ));
        }
        Ok(())
    }

    /// Read `len` bytes at `pos`; an error naming `what` when they are not all in the file.
    pub fn read_at(&self, pos: u64, len: u64, what: &str) -> Result<Vec<u8>, BagError> {
        self.check_span(pos, len, what)?;
        let mut buf = vec![0u8; len as usize];
        self.read_into(pos, &mut buf, what)?;
        Ok(buf)
    }

    /// Fill `buf` from `pos`; an error naming `what` when the bytes are not all in the file.
    pub fn read_into(&self, pos: u64, buf: &mut [u8], what: &str) -> Result<(), BagError> {
        let len = buf.len() as u64;
        self.check_span(pos, len, what)?;
        self.src
            .read_exact_at(buf, pos)
            .map_err(|source| BagError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// [`Self::read_into`] a reused vector, which keeps its allocation (and so is zeroed only
    /// when it grows) from call to call.
    pub fn read_into_vec(
        &self,
        pos: u64,
        len: u64,
        buf: &mut Vec<u8>,
        what: &str,
    ) -> Result<(), BagError> {
        self.check_span(pos, len, what)?;
        buf.resize(len as usize, 0);
        self.read_into(pos, buf, what)
    }

    fn read_u32_at(&self, pos: u64, what: &str) -> Result<u32, BagError> {
        let b = self.read_at(pos, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Read the record header at `pos` and locate its data.
    pub fn record_at(&self, pos: u64) -> Result<FileRecord, BagError> {
        let header_len = self.read_u32_at(pos, "record header length")? as u64;
        let header = self.read_at(pos + 4, header_len, "record header")?;
        let len_pos = pos + 4 + header_len;
        let data_len = self.read_u32_at(len_pos, "record data length")? as u64;
        let data_pos = len_pos + 4;
        if data_len > self.size - data_pos {
            return Err(self.corrupt(
                len_pos,
                format!(
                    "record data of {data_len} bytes runs past the end of the file ({} bytes)",
                    self.size
                ),
            ));
        }
        Ok(FileRecord {
            pos,
            header,
            data_pos,
            data_len,
        })
    }

    pub fn read_data(&self, rec: &FileRecord) -> Result<Vec<u8>, BagError> {
        self.read_at(rec.data_pos, rec.data_len, "record data")
    }

    /// Check the version line; returns the offset of the first record.
    pub fn check_magic(&self) -> Result<u64, BagError> {
        let not_a_bag = |detail: String| BagError::NotABag {
            path: self.path.clone(),
            detail,
        };
        let head = self.read_at(0, self.size.min(MAGIC.len() as u64), "version line")?;
        if head == MAGIC {
            return Ok(MAGIC.len() as u64);
        }
        if let Some(kind) = known_format(&head) {
            return Err(not_a_bag(format!("it is {kind}")));
        }
        if head.len() < MAGIC.len() && MAGIC.starts_with(&head) {
            return Err(not_a_bag(format!(
                "a ROS1 bag file of only {} bytes, cut inside the version line",
                self.size
            )));
        }
        Err(not_a_bag(format!(
            "starts with {:?}, which is neither a ROS1 bag ({:?}), an MCAP file nor an SQLite \
             database (rosbag2 .db3)",
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(MAGIC)
        )))
    }
}

/// Formats people hand to a ROS1 converter by mistake, by their first bytes.
fn known_format(head: &[u8]) -> Option<&'static str> {
    const KINDS: [(&[u8], &str); 5] = [
        (b"\x89MCAP", "an MCAP file (ROS 2)"),
        (b"SQLite format", "an SQLite database (a ROS 2 .db3 bag?)"),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data (a compressed ROS 2 bag file?)",
        ),
        (
            b"#ROSBAG V1",
            "a ROS bag of format 1.x (bagstream reads 2.0)",
        ),
        (
            b"#ROSBAG V",
            "a ROS bag of another format version (bagstream reads 2.0)",
        ),
    ];
    KINDS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, kind)| *kind)
}

/// Append a header field `name=value` with its length prefix.
pub fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(&((name.len() + 1 + value.len()) as u32).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}

/// Append a whole record: header fields then data, each with its length prefix.
pub fn push_record(out: &mut Vec<u8>, header: &[u8], data: &[u8]) {
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

/// Offset in `buf` of the value of header field `name` of the record at `pos` (for tests that
/// damage one field of a generated bag).
#[cfg(test)]
pub(crate) fn field_value_offset(buf: &[u8], pos: usize, name: &str) -> Option<usize> {
    let end = pos + 4 + read_u32(buf, pos)? as usize;
    let mut p = pos + 4;
    while p < end {
        let len = read_u32(buf, p)? as usize;
        let field = buf.get(p + 4..p + 4 + len)?;
        if field.starts_with(name.as_bytes()) && field.get(name.len()) == Some(&b'=') {
            return Some(p + 4 + name.len() + 1);
        }
        p += 4 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fields: &[(&str, &[u8])]) -> Vec<u8> {
        let mut h = Vec::new();
        for (n, v) in fields {
            push_field(&mut h, n, v);
        }
        h
    }

    #[test]
    fn parses_fields_and_values() {
        let h = header(&[
            ("op", &[op::MESSAGE_DATA]),
            ("conn", &7u32.to_le_bytes()),
            ("time", &[1, 0, 0, 0, 5, 0, 0, 0]),
            ("topic", b"/a=b"),
        ]);
        let p = Header::parse(&h).unwrap();
        assert_eq!(p.op().unwrap(), op::MESSAGE_DATA);
        assert_eq!(p.u32("conn").unwrap(), 7);
        assert_eq!(p.time("time").unwrap(), NANOS + 5);
        // Only the first `=` separates name from value.
        assert_eq!(p.string("topic").unwrap(), "/a=b");
        assert!(p.u64("conn").is_err());
        assert!(p.get("missing").is_none());
    }

    #[test]
    fn field_length_past_header_is_an_error_with_offset() {
        let mut h = header(&[("op", &[2])]);
        let at = h.len();
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        h.extend_from_slice(b"x=1");
        let e = Header::parse(&h).unwrap_err();
        assert_eq!(e.offset, at as u64);
        assert!(e.detail.contains("past the header end"), "{}", e.detail);

        // A length prefix cut in half.
        let e = Header::parse(&[5, 0]).unwrap_err();
        assert_eq!(e.offset, 0);
        // No `=`.
        let e = Header::parse(&header(&[])[..]).map(|_| ());
        assert!(e.is_ok());
        let mut bad = Vec::new();
        bad.extend_from_slice(&2u32.to_le_bytes());
        bad.extend_from_slice(b"ab");
        assert!(Header::parse(&bad).unwrap_err().detail.contains('='));
    }

    #[test]
    fn records_in_a_buffer_and_bounds() {
        let mut buf = Vec::new();
        push_record(&mut buf, &header(&[("op", &[2])]), b"hello");
        let second = buf.len();
        push_record(&mut buf, &header(&[("op", &[7])]), b"");
        let r = next_record(&buf, 0).unwrap().unwrap();
        assert_eq!(r.data, b"hello");
        assert_eq!(r.end, second);
        let r2 = next_record(&buf, r.end).unwrap().unwrap();
        assert_eq!(r2.header.op().unwrap(), 7);
        assert!(next_record(&buf, r2.end).unwrap().is_none());

        // Data length larger than what remains: error at the data length field.
        let mut bad = Vec::new();
        let h = header(&[("op", &[2])]);
        bad.extend_from_slice(&(h.len() as u32).to_le_bytes());
        bad.extend_from_slice(&h);
        let len_at = bad.len();
        bad.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bad.extend_from_slice(b"abc");
        let e = next_record(&bad, 0).unwrap_err();
        assert_eq!(e.offset, len_at as u64);

        // Header length larger than what remains.
        let e = next_record(&[0xFF, 0xFF, 0xFF, 0x7F, 1, 2], 0).unwrap_err();
        assert_eq!(e.offset, 0);
        // Truncated length prefix.
        assert!(next_record(&[1, 0], 0).is_err());
    }

    #[test]
    fn time_round_trip() {
        let t = 1_700_000_000 * NANOS + 123_456_789;
        assert_eq!(time_from_bytes(time_to_bytes(t).unwrap()), t);
        assert!(time_to_bytes(-1).is_none());
        assert!(time_to_bytes((u32::MAX as i64 + 1) * NANOS).is_none());
    }

    #[test]
    fn file_reads_are_bounded_by_the_file_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bag");
        let mut buf = MAGIC.to_vec();
        let h = header(&[("op", &[3])]);
        buf.extend_from_slice(&(h.len() as u32).to_le_bytes());
        buf.extend_from_slice(&h);
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &buf).unwrap();
        let f = BagFile::open(&path).unwrap();
        assert_eq!(f.check_magic().unwrap(), 13);
        match f.record_at(13).unwrap_err() {
            BagError::Corrupt { offset, detail, .. } => {
                assert_eq!(offset, 13 + 4 + h.len() as u64);
                assert!(detail.contains("past the end"), "{detail}");
            }
            e => panic!("unexpected {e}"),
        }
        assert!(f.read_at(10, u64::MAX, "x").is_err());
        std::fs::write(&path, b"#ROSBAG V1.2\n").unwrap();
        let f = BagFile::open(&path).unwrap();
        assert!(matches!(f.check_magic(), Err(BagError::NotABag { .. })));
    }
}
