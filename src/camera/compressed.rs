//! sensor_msgs/CompressedImage: JPEG and PNG payloads into RGB8.
//!
//! The codec is picked by the payload's magic bytes before the `format` string: writers spell
//! the format many ways (`jpeg`, `rgb8; jpeg compressed bgr8`, `16UC1; compressedDepth png`),
//! and a few get it wrong. A `compressed bgr8` JPEG holds an ordinary colour JPEG: libjpeg
//! (through cv_bridge) converts BGR input while encoding, so it decodes as RGB like any other.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::{ColorType, ImageDecoder as _, Limits};

use super::{CameraError, RgbImage};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8];
/// compressed_depth_image_transport puts a config header (format enum + two float depth
/// parameters) in front of the PNG.
const DEPTH_HEADER: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Png,
    Jpeg,
}

/// The codec and where its stream starts in `data`.
fn sniff<'a>(format: &str, data: &'a [u8]) -> Result<(Codec, &'a [u8]), String> {
    if data.starts_with(PNG_MAGIC) {
        return Ok((Codec::Png, data));
    }
    if data.starts_with(JPEG_MAGIC) {
        return Ok((Codec::Jpeg, data));
    }
    if let Some(rest) = data.get(DEPTH_HEADER..) {
        if rest.starts_with(PNG_MAGIC) && format.contains("compressedDepth") {
            return Ok((Codec::Png, rest));
        }
    }
    let f = format.to_ascii_lowercase();
    if f.contains("png") {
        Ok((Codec::Png, data))
    } else if f.contains("jpeg") || f.contains("jpg") {
        Ok((Codec::Jpeg, data))
    } else {
        let head: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(format!(
            "neither JPEG nor PNG data ({} bytes starting {})",
            data.len(),
            head.join(" ")
        ))
    }
}

pub(super) fn decode(
    format: &str,
    data: &[u8],
    max_pixels: u64,
    out: &mut RgbImage,
) -> Result<(), CameraError> {
    // Codec errors can span lines; errors here are one line.
    let err = |detail: String| CameraError::Compressed {
        format: format.to_string(),
        detail: detail.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let (codec, stream) = sniff(format, data).map_err(err)?;
    let mut limits = Limits::default();
    // The output buffer is ours; this bounds what the codec allocates besides it.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    let r = match codec {
        Codec::Png => PngDecoder::with_limits(Cursor::new(stream), limits)
            .map_err(|e| format!("PNG: {e}"))
            .and_then(|d| read_into(d, max_pixels, out).map_err(|e| format!("PNG: {e}"))),
        Codec::Jpeg => JpegDecoder::new(Cursor::new(stream))
            .and_then(|mut d| d.set_limits(limits).map(|()| d))
            .map_err(|e| format!("JPEG: {e}"))
            .and_then(|d| read_into(d, max_pixels, out).map_err(|e| format!("JPEG: {e}"))),
    };
    r.map_err(err)
}

/// Decodes into `out.data` and converts there, so a recycled buffer needs no second one.
fn read_into<D: image::ImageDecoder>(
    dec: D,
    max_pixels: u64,
    out: &mut RgbImage,
) -> Result<(), String> {
    let (w, h) = dec.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels == 0 {
        return Err(format!("empty image {w}x{h}"));
    }
    if pixels > max_pixels {
        return Err(format!("{w}x{h} is more than {max_pixels} pixels"));
    }
    let ct = dec.color_type();
    let Some((channels, depth)) = layout(ct) else {
        return Err(format!("unsupported colour type {ct:?}"));
    };
    let n = pixels as usize;
    let decoded = n * channels * depth;
    if dec.total_bytes() != decoded as u64 {
        return Err(format!(
            "decoder reports {} bytes for {w}x{h} {ct:?}",
            dec.total_bytes()
        ));
    }
    out.data.resize(decoded.max(n * 3), 0);
    dec.read_image(&mut out.data[..decoded])
        .map_err(|e| e.to_string())?;
    to_rgb_in_place(&mut out.data, n, channels, depth);
    out.data.truncate(n * 3);
    out.width = w;
    out.height = h;
    Ok(())
}

/// Channels and bytes per channel of the colour types PNG and JPEG decode to.
fn layout(ct: ColorType) -> Option<(usize, usize)> {
    Some(match ct {
        ColorType::L8 => (1, 1),
        ColorType::La8 => (2, 1),
        ColorType::Rgb8 => (3, 1),
        ColorType::Rgba8 => (4, 1),
        ColorType::L16 => (1, 2),
        ColorType::La16 => (2, 2),
        ColorType::Rgb16 => (3, 2),
        ColorType::Rgba16 => (4, 2),
        _ => return None,
    })
}

/// Rewrites `n` pixels of `channels` x `depth` bytes at the start of `buf` as RGB8 in place.
/// Gray (with or without alpha) is replicated, alpha is dropped, 16-bit keeps the high byte
/// (the codec writes 16-bit samples in native byte order). Pixels that grow (under 3 bytes) are
/// written back to front and those that shrink front to back, so no source pixel is overwritten
/// before it is read.
fn to_rgb_in_place(buf: &mut [u8], n: usize, channels: usize, depth: usize) {
    let bpp = channels * depth;
    if bpp == 3 {
        return;
    }
    let hi = if depth == 2 && cfg!(target_endian = "little") {
        1
    } else {
        0
    };
    let convert = |buf: &mut [u8], i: usize| {
        let s = i * bpp;
        let px = if channels >= 3 {
            [buf[s + hi], buf[s + depth + hi], buf[s + 2 * depth + hi]]
        } else {
            [buf[s + hi]; 3]
        };
        buf[i * 3..i * 3 + 3].copy_from_slice(&px);
    };
    if bpp < 3 {
        for i in (0..n).rev() {
            convert(buf, i);
        }
    } else {
        for i in 0..n {
            convert(buf, i);
        }
    }
}

/// Width and height from the PNG IHDR or the JPEG SOF segment, without decoding pixels.
pub(super) fn dimensions(format: &str, data: &[u8]) -> Option<(u32, u32)> {
    let (codec, stream) = sniff(format, data).ok()?;
    match codec {
        Codec::Png => {
            // Signature, IHDR length and tag, then width and height, big-endian.
            if stream.get(12..16)? != b"IHDR" {
                return None;
            }
            let w = u32::from_be_bytes(stream.get(16..20)?.try_into().ok()?);
            let h = u32::from_be_bytes(stream.get(20..24)?.try_into().ok()?);
            Some((w, h))
        }
        Codec::Jpeg => jpeg_dimensions(stream),
    }
}

/// Walks the marker segments up to the first start-of-frame.
fn jpeg_dimensions(data: &[u8]) -> Option<(u32, u32)> {
    let mut pos = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while *data.get(pos)? == 0xFF && *data.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        if *data.get(pos)? != 0xFF {
            return None;
        }
        let marker = *data.get(pos + 1)?;
        let len = u16::from_be_bytes([*data.get(pos + 2)?, *data.get(pos + 3)?]) as usize;
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC) that share the range.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let seg = data.get(pos + 4..pos + 9)?;
            let h = u16::from_be_bytes([seg[1], seg[2]]) as u32;
            let w = u16::from_be_bytes([seg[3], seg[4]]) as u32;
            return Some((w, h));
        }
        if marker == 0xDA || marker == 0xD9 || len < 2 {
            return None;
        }
        pos += 2 + len;
    }
}
