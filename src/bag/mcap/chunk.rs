//! MCAP chunk decompression (none, zstd, lz4 frames) into pooled buffers, bounded by the
//! chunk's declared uncompressed size, and the chunk CRC.

use crate::bag::buffer::{BufferPool, ChunkBuf};
use crate::bag::ros1::chunk::decompress as ros1_decompress;
use crate::bag::ros1::Compression;

/// A zstd buffer starts no larger than this, nor than this many times the compressed bytes:
/// it grows as output arrives, so a lying size field cannot reserve gigabytes up front.
const ZSTD_INITIAL_CAPACITY: usize = 64 << 20;
const ZSTD_INITIAL_RATIO: usize = 64;

/// A chunk's compression as MCAP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Zstd,
    Lz4,
}

impl Codec {
    /// The chunk's `compression` string: "" (none), "zstd", "lz4"; None for anything else.
    pub fn parse(s: &str) -> Option<Codec> {
        match s {
            "" | "none" => Some(Codec::None),
            "zstd" => Some(Codec::Zstd),
            "lz4" => Some(Codec::Lz4),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }
}

/// Decompress chunk records that should expand to exactly `size` bytes, into a buffer from
/// `pool`, and check them against `crc` (when nonzero). The error says what went wrong; the
/// caller adds file and offset.
pub fn decompress(
    codec: Codec,
    data: &[u8],
    size: u64,
    crc: u32,
    pool: &BufferPool,
) -> Result<ChunkBuf, String> {
    let buf = match codec {
        // The ROS1 reader's: the same bounds (LZ4's largest ratio) and the frame decoder of
        // src/bag/lz4.rs, which is the format MCAP's lz4 chunks use.
        Codec::None => ros1_decompress(Compression::None, data, size, pool)?,
        Codec::Lz4 => ros1_decompress(Compression::Lz4, data, size, pool)?,
        Codec::Zstd => zstd(data, size, pool)?,
    };
    check_crc(&buf, crc)?;
    Ok(buf)
}

fn zstd(data: &[u8], size: u64, pool: &BufferPool) -> Result<ChunkBuf, String> {
    let size_usize =
        usize::try_from(size).map_err(|_| format!("uncompressed size {size} too large"))?;
    let decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|e| format!("zstd chunk: {e}"))?;
    let mut buf = pool.take_empty();
    let expect = size_usize
        .min(ZSTD_INITIAL_CAPACITY)
        .min(data.len().saturating_mul(ZSTD_INITIAL_RATIO));
    // One byte past the declared size is enough to know the chunk lies.
    buf.fill_from(decoder, size.saturating_add(1), expect)
        .map_err(|e| format!("zstd chunk: {e}"))?;
    if buf.len() > size_usize {
        return Err(format!(
            "zstd chunk expands past its declared size of {size} bytes (decompression stopped \
             there)"
        ));
    }
    if buf.len() != size_usize {
        return Err(format!(
            "zstd chunk expands to {} bytes but declares {size}",
            buf.len()
        ));
    }
    Ok(buf)
}

/// The chunk's `uncompressed_crc`: CRC-32 (ISO-HDLC) of the records, 0 when not computed.
pub fn check_crc(records: &[u8], crc: u32) -> Result<(), String> {
    if crc == 0 {
        return Ok(());
    }
    let got = crc32fast::hash(records);
    if got != crc {
        return Err(format!(
            "chunk CRC mismatch: the records hash to {got:#010x}, the chunk declares {crc:#010x}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i / 5) % 241) as u8).collect()
    }

    #[test]
    fn zstd_round_trip_and_size_checks() {
        let pool = BufferPool::new();
        let data = sample(300_000);
        let z = zstd::bulk::compress(&data, 3).unwrap();
        let crc = crc32fast::hash(&data);
        let buf = decompress(Codec::Zstd, &z, data.len() as u64, crc, &pool).unwrap();
        assert_eq!(&buf[..], &data[..]);
        let e = decompress(Codec::Zstd, &z, 1000, 0, &pool).unwrap_err();
        assert!(e.contains("past its declared size"), "{e}");
        let e = decompress(Codec::Zstd, &z, data.len() as u64 + 1, 0, &pool).unwrap_err();
        assert!(e.contains("but declares"), "{e}");
        let e = decompress(Codec::Zstd, &z, data.len() as u64, crc ^ 1, &pool).unwrap_err();
        assert!(e.contains("CRC mismatch"), "{e}");
        assert!(decompress(Codec::Zstd, &z[..z.len() / 2], data.len() as u64, 0, &pool).is_err());
        // A lie of a terabyte costs nothing up front.
        assert!(decompress(Codec::Zstd, &z[..10], 1 << 40, 0, &pool).is_err());
    }

    #[test]
    fn concatenated_zstd_frames_decode_whole() {
        let pool = BufferPool::new();
        let (a, b) = (sample(1000), sample(77));
        let mut z = zstd::bulk::compress(&a, 1).unwrap();
        z.extend(zstd::bulk::compress(&b, 1).unwrap());
        let buf = decompress(Codec::Zstd, &z, 1077, 0, &pool).unwrap();
        assert_eq!(&buf[..1000], &a[..]);
        assert_eq!(&buf[1000..], &b[..]);
    }

    #[test]
    fn codec_names() {
        assert_eq!(Codec::parse(""), Some(Codec::None));
        assert_eq!(Codec::parse("zstd"), Some(Codec::Zstd));
        assert_eq!(Codec::parse("lz4"), Some(Codec::Lz4));
        assert_eq!(Codec::parse("bz2"), None);
    }
}
