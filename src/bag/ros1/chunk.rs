//! Chunk decompression (none, bz2, lz4), bounded by the uncompressed size the chunk declares.

use std::ops::Range;

use super::record::{next_record, op, unknown_op, Header, RecordError};
use super::Compression;
use crate::bag::buffer::{BufferPool, ChunkBuf};
use crate::bag::lz4::{self, Lz4Error};
use crate::bag::{Connection, ConnectionExtra};
use crate::Time;

/// Buffers start no larger than this even when a chunk declares more; they grow as real bytes
/// arrive, so a lying size field cannot reserve gigabytes up front.
const MAX_INITIAL_CAPACITY: usize = 64 << 20;

/// Nor larger than this many times the compressed data (typical ratios are 2 to 10).
const INITIAL_RATIO: usize = 8;

/// Slack over `lz4::MAX_RATIO` times the data for the frames' own overhead.
const LZ4_SLACK: u64 = 64 << 10;

/// Map the chunk header's `compression` value.
pub fn parse_compression(value: &[u8]) -> Option<Compression> {
    match value {
        b"none" => Some(Compression::None),
        b"bz2" => Some(Compression::Bz2),
        b"lz4" => Some(Compression::Lz4),
        _ => None,
    }
}

/// Decompress chunk data that should expand to exactly `size` bytes, into a buffer from `pool`.
/// The error string says what went wrong; the caller adds file and offset.
pub fn decompress(
    compression: Compression,
    data: &[u8],
    size: u64,
    pool: &BufferPool,
) -> Result<ChunkBuf, String> {
    let size_usize =
        usize::try_from(size).map_err(|_| format!("uncompressed size {size} too large"))?;
    match compression {
        Compression::None => {
            if data.len() as u64 != size {
                return Err(format!(
                    "uncompressed chunk holds {} bytes but declares {size}",
                    data.len()
                ));
            }
            let mut buf = pool.take(size_usize);
            buf.as_mut_slice().copy_from_slice(data);
            Ok(buf)
        }
        Compression::Bz2 => {
            // Into a pooled buffer: a fresh megabyte per chunk would be faulted in each time.
            let mut buf = pool.take_empty();
            buf.fill_from(
                bzip2::read::MultiBzDecoder::new(data),
                size + 1,
                initial_capacity(size_usize, data.len()),
            )
            .map_err(|e| format!("bz2 chunk: {e}"))?;
            if buf.len() > size_usize {
                return Err(past_declared(compression, size));
            }
            if buf.len() != size_usize {
                return Err(format!(
                    "bz2 chunk expands to {} bytes but declares {size}",
                    buf.len()
                ));
            }
            Ok(buf)
        }
        Compression::Lz4 => {
            // LZ4 cannot expand more than MAX_RATIO times: a larger size is a lie, refused
            // before a buffer of that size exists.
            let most = (data.len() as u64)
                .saturating_mul(lz4::MAX_RATIO)
                .saturating_add(LZ4_SLACK);
            if size > most {
                return Err(format!(
                    "lz4 chunk of {} bytes declares {size} bytes uncompressed, more than LZ4 \
                     can expand to",
                    data.len()
                ));
            }
            let mut buf = pool.take(size_usize);
            match lz4::decode_frames(data, buf.as_mut_slice()) {
                Ok(n) if n == size_usize => Ok(buf),
                Ok(n) => Err(format!(
                    "lz4 chunk expands to {n} bytes but declares {size}"
                )),
                Err(Lz4Error::TooLong) => Err(past_declared(compression, size)),
                Err(Lz4Error::Bad(e)) => Err(e),
            }
        }
    }
}

/// Decompression stopped at the declared size: how far it would have gone is not known, and
/// not worth the memory to find out.
fn past_declared(compression: Compression, size: u64) -> String {
    format!(
        "{} chunk expands past its declared size of {size} bytes (decompression stopped there)",
        compression.as_str()
    )
}

fn initial_capacity(size: usize, compressed: usize) -> usize {
    size.min(MAX_INITIAL_CAPACITY)
        .min(compressed.saturating_mul(INITIAL_RATIO))
}

/// A record found while walking a decompressed chunk.
#[derive(Debug, Clone)]
pub enum ChunkEntry {
    Connection(Connection),
    Message {
        /// Connection id as stored in the bag.
        conn_id: u32,
        time: Time,
        /// Offset of the message record in the chunk (what index data records point at).
        offset: usize,
        /// The message payload's bytes in the chunk.
        data: Range<usize>,
    },
}

/// Walk every record of a decompressed chunk. A chunk holds only messages and connections;
/// any other op code means the chunk is not what it claims to be, and is an error.
pub fn walk_chunk(
    buf: &[u8],
    mut f: impl FnMut(ChunkEntry) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    let mut pos = 0;
    while let Some(rec) = next_record(buf, pos)? {
        let at = |e: RecordError| RecordError::new(rec.pos as u64 + e.offset, e.detail);
        match rec.header.op().map_err(at)? {
            op::MESSAGE_DATA => f(ChunkEntry::Message {
                conn_id: rec.header.u32("conn").map_err(at)?,
                time: rec.header.time("time").map_err(at)?,
                offset: rec.pos,
                data: rec.data_pos..rec.end,
            })?,
            op::CONNECTION => f(ChunkEntry::Connection(
                parse_connection(&rec.header, rec.data).map_err(at)?,
            ))?,
            other => {
                return Err(RecordError::new(
                    rec.pos as u64,
                    unknown_op(other, "inside a chunk"),
                ))
            }
        }
        pos = rec.end;
    }
    Ok(())
}

/// A connection record: `conn` and `topic` in the header, the connection header (type, md5sum,
/// definition, ...) as fields in the data.
pub fn parse_connection(header: &Header<'_>, data: &[u8]) -> Result<Connection, RecordError> {
    let id = header.u32("conn")?;
    let fields = Header::parse(data)
        .map_err(|e| RecordError::new(0, format!("connection {id} data: {}", e.detail)))?;
    let topic = match header.opt_string("topic") {
        Some(t) => t,
        None => fields.string("topic")?,
    };
    let datatype = fields
        .string("type")
        .map_err(|e| RecordError::new(0, format!("connection {id} ({topic}): {}", e.detail)))?;
    Ok(Connection {
        id,
        topic,
        datatype,
        encoding: "ros1".to_string(),
        schema_format: "ros1msg".to_string(),
        definition: fields.opt_string("message_definition").unwrap_or_default(),
        extra: ConnectionExtra::Ros1 {
            md5sum: fields.opt_string("md5sum").unwrap_or_default(),
            callerid: fields.opt_string("callerid"),
            latching: fields.get("latching") == Some(b"1"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decompress(c: Compression, data: &[u8], size: u64) -> Result<Vec<u8>, String> {
        super::decompress(c, data, size, &BufferPool::new()).map(|b| b.to_vec())
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn lz4(data: &[u8]) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn bz2(data: &[u8]) -> Vec<u8> {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trips_all_compressions() {
        let data = sample(100_000);
        let n = data.len() as u64;
        assert_eq!(decompress(Compression::None, &data, n).unwrap(), data);
        assert_eq!(decompress(Compression::Lz4, &lz4(&data), n).unwrap(), data);
        assert_eq!(decompress(Compression::Bz2, &bz2(&data), n).unwrap(), data);
    }

    #[test]
    fn bz2_chunks_reuse_the_pool_buffers() {
        // A fresh buffer per bz2 chunk is faulted in for every chunk of the bag.
        let pool = BufferPool::new();
        let data = sample(100_000);
        let packed = bz2(&data);
        let n = data.len() as u64;
        let first = super::decompress(Compression::Bz2, &packed, n, &pool).unwrap();
        assert_eq!(&first[..], &data[..]);
        let ptr = first.as_ptr();
        drop(first);
        let second = super::decompress(Compression::Bz2, &packed, n, &pool).unwrap();
        assert_eq!(&second[..], &data[..]);
        assert_eq!(second.as_ptr(), ptr, "the same allocation");
    }

    #[test]
    fn lz4_multiple_frames_are_all_decoded() {
        let data = sample(50_000);
        let mut framed = Vec::new();
        for part in data.chunks(7_000) {
            framed.extend(lz4(part));
        }
        let out = decompress(Compression::Lz4, &framed, data.len() as u64).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn expansion_beyond_declared_size_is_an_error() {
        let data = sample(10_000);
        for (c, packed) in [
            (Compression::Lz4, lz4(&data)),
            (Compression::Bz2, bz2(&data)),
            (Compression::None, data.clone()),
        ] {
            let e = decompress(c, &packed, 100).unwrap_err();
            assert!(
                e.contains("declares 100") || e.contains("size of 100 "),
                "{c:?}: {e}"
            );
            let e = decompress(c, &packed, 20_000).unwrap_err();
            assert!(e.contains("declares 20000"), "{c:?}: {e}");
        }
    }

    #[test]
    fn lying_size_does_not_allocate_it() {
        // Declares 4 GiB; the data is tiny. Must fail on the size, not on allocation.
        let e = decompress(Compression::Lz4, &lz4(b"abc"), u32::MAX as u64).unwrap_err();
        assert!(e.contains("more than LZ4 can expand to"), "{e}");
        let e = decompress(Compression::Lz4, &lz4(&sample(100)), 5000).unwrap_err();
        assert!(e.contains("expands to 100 bytes but declares 5000"), "{e}");
        let e = decompress(Compression::Bz2, &bz2(b"abc"), u32::MAX as u64).unwrap_err();
        assert!(e.contains("expands to 3 bytes"), "{e}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decompress(Compression::Lz4, b"not lz4 at all", 10).is_err());
        assert!(decompress(Compression::Bz2, b"not bz2 at all", 10).is_err());
        let mut packed = lz4(&sample(1000));
        packed.truncate(packed.len() / 2);
        assert!(decompress(Compression::Lz4, &packed, 1000).is_err());
    }

    #[test]
    fn parses_compression_names() {
        assert_eq!(parse_compression(b"lz4"), Some(Compression::Lz4));
        assert_eq!(parse_compression(b"bz2"), Some(Compression::Bz2));
        assert_eq!(parse_compression(b"none"), Some(Compression::None));
        assert_eq!(parse_compression(b"zstd"), None);
    }
}
