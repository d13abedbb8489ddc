//! LZ4 frames decoded straight into a caller's buffer.
//!
//! `lz4_flex`'s `FrameDecoder` is a `Read`: it decompresses each block into a buffer of its own
//! (zeroing up to 4 MB of it for every frame) and then copies the bytes out. For the chunk
//! reader that is two passes over memory more than needed, and it was most of the time of a
//! tabular conversion (docs/benchmarks.md). Here the frame format (lz4 frame format 1.6.x) is
//! parsed by hand and each block is decompressed by `lz4_flex::block` in place, at its final
//! offset, with the bytes before it as the linked-block dictionary. Checksums present in the
//! frame are verified.

use twox_hash::XxHash32;

const MAGIC: u32 = 0x184D_2204;
/// Skippable frames carry user data: magic 0x184D2A50..=0x184D2A5F, a length, the bytes.
const SKIPPABLE: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// Linked blocks may refer back this far.
const WINDOW: usize = 64 << 10;
/// At most this many output bytes per input byte: a match's length grows by 255 per byte.
pub const MAX_RATIO: u64 = 256;

fn u32_at(data: &[u8], pos: usize) -> Option<u32> {
    let b = data.get(pos..pos + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Why frames did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lz4Error {
    /// The output would not fit in the buffer (the chunk's declared size).
    TooLong,
    /// Damaged or unsupported data.
    Bad(String),
}

/// Decode the LZ4 frames of `data`, back to back, into `out`; returns the number of bytes
/// written. Output that would not fit in `out` is an error, so `out`'s length is a hard bound
/// (a chunk's declared size stops a decompression bomb).
pub fn decode_frames(data: &[u8], out: &mut [u8]) -> Result<usize, Lz4Error> {
    let mut pos = 0;
    let mut written = 0;
    let mut frame = 0usize;
    while pos < data.len() {
        let err = |what: &str| Lz4Error::Bad(format!("lz4 chunk, frame {frame}: {what}"));
        let magic = u32_at(data, pos).ok_or_else(|| err("truncated frame magic"))?;
        if SKIPPABLE.contains(&magic) {
            let len = u32_at(data, pos + 4).ok_or_else(|| err("truncated skippable frame"))?;
            pos = pos
                .checked_add(8 + len as usize)
                .filter(|&p| p <= data.len())
                .ok_or_else(|| err("skippable frame runs past the chunk"))?;
            frame += 1;
            continue;
        }
        if magic != MAGIC {
            return Err(err(&format!("bad magic {magic:#010x}")));
        }
        let (next, n) = decode_frame(data, pos + 4, &mut out[written..], written, frame)?;
        pos = next;
        written += n;
        frame += 1;
    }
    Ok(written)
}

/// Decode one frame whose descriptor starts at `pos`; `done` bytes of the chunk precede `out`
/// (for error messages). Returns the offset after the frame and the bytes written.
fn decode_frame(
    data: &[u8],
    mut pos: usize,
    out: &mut [u8],
    done: usize,
    frame: usize,
) -> Result<(usize, usize), Lz4Error> {
    let err = |what: String| Lz4Error::Bad(format!("lz4 chunk, frame {frame}: {what}"));
    let desc_start = pos;
    let flg = *data
        .get(pos)
        .ok_or_else(|| err("truncated descriptor".into()))?;
    let bd = *data
        .get(pos + 1)
        .ok_or_else(|| err("truncated descriptor".into()))?;
    if flg >> 6 != 1 {
        return Err(err(format!("frame version {} (only 1 exists)", flg >> 6)));
    }
    if flg & 0b10 != 0 || bd & 0b1000_1111 != 0 {
        return Err(err("reserved descriptor bits set".into()));
    }
    let linked = flg & 0b10_0000 == 0;
    let block_checksums = flg & 0b1_0000 != 0;
    let content_size = flg & 0b1000 != 0;
    let content_checksum = flg & 0b100 != 0;
    if flg & 1 != 0 {
        return Err(err("frames with a dictionary id are not supported".into()));
    }
    let max_block = match (bd >> 4) & 0b111 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        n => return Err(err(format!("block size code {n} (4 to 7 exist)"))),
    };
    pos += 2;
    let mut declared = None;
    if content_size {
        let b = data
            .get(pos..pos + 8)
            .ok_or_else(|| err("truncated content size".into()))?;
        declared = Some(u64::from_le_bytes(b.try_into().expect("8 bytes")));
        pos += 8;
    }
    let hc = *data
        .get(pos)
        .ok_or_else(|| err("truncated descriptor".into()))?;
    let want = (XxHash32::oneshot(0, &data[desc_start..pos]) >> 8) as u8;
    if hc != want {
        return Err(err(format!(
            "descriptor checksum {hc:#04x}, computed {want:#04x}"
        )));
    }
    pos += 1;
    let mut n = 0usize;
    loop {
        let word = u32_at(data, pos).ok_or_else(|| err("truncated block size".into()))?;
        pos += 4;
        if word == 0 {
            break;
        }
        let stored = word & 0x8000_0000 != 0;
        let len = (word & 0x7FFF_FFFF) as usize;
        if len > max_block {
            return Err(err(format!(
                "block of {len} bytes, over the frame's {max_block}"
            )));
        }
        let block = data
            .get(pos..pos + len)
            .ok_or_else(|| err(format!("block of {len} bytes runs past the chunk")))?;
        pos += len;
        if block_checksums {
            let sum = u32_at(data, pos).ok_or_else(|| err("truncated block checksum".into()))?;
            pos += 4;
            if XxHash32::oneshot(0, block) != sum {
                return Err(err("block checksum mismatch".into()));
            }
        }
        let (before, rest) = out.split_at_mut(n);
        let wrote = if stored {
            let dst = rest.get_mut(..len).ok_or(Lz4Error::TooLong)?;
            dst.copy_from_slice(block);
            len
        } else {
            let dict = if linked {
                &before[before.len().saturating_sub(WINDOW)..]
            } else {
                &[][..]
            };
            let room = rest.len().min(max_block);
            lz4_flex::block::decompress_into_with_dict(block, &mut rest[..room], dict).map_err(
                |e| match e {
                    lz4_flex::block::DecompressError::OutputTooSmall { .. } if room < max_block => {
                        Lz4Error::TooLong
                    }
                    e => err(format!("block at byte {}: {e}", done + n)),
                },
            )?
        };
        n += wrote;
    }
    if content_checksum {
        let sum = u32_at(data, pos).ok_or_else(|| err("truncated content checksum".into()))?;
        pos += 4;
        if XxHash32::oneshot(0, &out[..n]) != sum {
            return Err(err("content checksum mismatch".into()));
        }
    }
    if let Some(d) = declared {
        if d != n as u64 {
            return Err(err(format!("frame declares {d} bytes and holds {n}")));
        }
    }
    Ok((pos, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    use std::io::Write;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i / 7) % 251) as u8 ^ (i % 3) as u8)
            .collect()
    }

    fn encode(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut e = FrameEncoder::with_frame_info(info, Vec::new());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(z: &[u8], size: usize) -> Result<Vec<u8>, String> {
        let mut out = vec![0; size];
        let n = decode_frames(z, &mut out).map_err(|e| format!("{e:?}"))?;
        out.truncate(n);
        Ok(out)
    }

    #[test]
    fn every_frame_option_decodes_to_the_input() {
        let data = sample(700_000);
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max4MB] {
                for (bsum, csum, csize) in [(false, false, false), (true, true, true)] {
                    let mut info = FrameInfo::new()
                        .block_mode(mode)
                        .block_size(size)
                        .block_checksums(bsum)
                        .content_checksum(csum);
                    if csize {
                        info = info.content_size(Some(data.len() as u64));
                    }
                    let z = encode(&data, info);
                    assert_eq!(decode(&z, data.len()).unwrap(), data, "{mode:?} {size:?}");
                }
            }
        }
    }

    #[test]
    fn frames_back_to_back_and_skippable_frames() {
        let (a, b) = (sample(100_000), sample(3));
        let mut z = encode(&a, FrameInfo::new());
        z.extend_from_slice(&0x184D_2A51u32.to_le_bytes());
        z.extend_from_slice(&3u32.to_le_bytes());
        z.extend_from_slice(b"abc");
        z.extend(encode(&b, FrameInfo::new().block_mode(BlockMode::Linked)));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(decode(&z, both.len()).unwrap(), both);
    }

    #[test]
    fn output_past_the_buffer_is_an_error_not_a_write() {
        let data = vec![7u8; 1 << 20];
        let z = encode(&data, FrameInfo::new());
        let e = decode(&z, 1000).unwrap_err();
        assert!(e.contains("TooLong"), "{e}");
        // Uncompressed blocks too.
        let z = encode(&sample(300), FrameInfo::new());
        assert!(decode(&z, 299).is_err());
    }

    #[test]
    fn damaged_frames_are_errors() {
        let data = sample(200_000);
        let z = encode(&data, FrameInfo::new().content_checksum(true));
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        assert!(decode(&bad, data.len()).is_err());
        for cut in [1, 4, 6, 7, 11, z.len() - 1] {
            assert!(decode(&z[..cut], data.len()).is_err(), "cut at {cut}");
        }
        let mut bad = z.clone();
        bad[0] ^= 1;
        assert!(decode(&bad, data.len()).unwrap_err().contains("bad magic"));
        let mut bad = z;
        bad[4] ^= 0x40; // version bits
        assert!(decode(&bad, data.len()).unwrap_err().contains("version"));
    }
}
