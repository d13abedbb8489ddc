//! sensor_msgs/Image: the pixel layouts named by `encoding`, into RGB8.

use super::{CameraError, RgbImage};

/// Encodings [`decode`] accepts. The generic OpenCV ones with 3 or 4 channels are taken as
/// BGR(A), OpenCV's channel order, as cv_bridge does.
pub const SUPPORTED_ENCODINGS: &[&str] = &[
    "rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3", "8UC4", "16UC1", "16UC3",
    "16UC4", "rgb16", "bgr16", "rgba16", "bgra16",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Gray,
    Rgb,
    Bgr,
}

/// How one pixel is laid out: channel count, bytes per channel, channel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    channels: usize,
    depth: usize,
    order: Order,
}

impl Layout {
    fn of(encoding: &str) -> Option<Layout> {
        let (channels, depth, order) = match encoding {
            "rgb8" => (3, 1, Order::Rgb),
            "rgba8" => (4, 1, Order::Rgb),
            "bgr8" | "8UC3" => (3, 1, Order::Bgr),
            "bgra8" | "8UC4" => (4, 1, Order::Bgr),
            "mono8" | "8UC1" => (1, 1, Order::Gray),
            "mono16" | "16UC1" => (1, 2, Order::Gray),
            "rgb16" => (3, 2, Order::Rgb),
            "rgba16" => (4, 2, Order::Rgb),
            "bgr16" | "16UC3" => (3, 2, Order::Bgr),
            "bgra16" | "16UC4" => (4, 2, Order::Bgr),
            _ => return None,
        };
        Some(Layout {
            channels,
            depth,
            order,
        })
    }

    fn bytes_per_pixel(self) -> usize {
        self.channels * self.depth
    }
}

/// The scalar fields of an Image message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header<'a> {
    pub width: u32,
    pub height: u32,
    pub step: u32,
    pub big_endian: bool,
    pub encoding: &'a [u8],
}

pub(super) fn decode(
    h: &Header<'_>,
    data: &[u8],
    max_pixels: u64,
    out: &mut RgbImage,
) -> Result<(), CameraError> {
    let encoding = String::from_utf8_lossy(h.encoding);
    let layout =
        Layout::of(encoding.trim()).ok_or_else(|| CameraError::Encoding(encoding.to_string()))?;
    let invalid = |detail: String| {
        CameraError::Invalid(format!(
            "image {}x{} {encoding} step {}: {detail}",
            h.width, h.height, h.step
        ))
    };
    if h.width == 0 || h.height == 0 {
        return Err(invalid("empty image".into()));
    }
    let bpp = layout.bytes_per_pixel();
    // u64: no product of two u32 and a small factor can overflow it.
    let row = h.width as u64 * bpp as u64;
    if (h.step as u64) < row {
        return Err(invalid(format!(
            "step is shorter than a row of {} pixels ({row} bytes)",
            h.width
        )));
    }
    let need = h.step as u64 * h.height as u64;
    if (data.len() as u64) < need {
        return Err(invalid(format!(
            "data holds {} bytes, the header needs {need}",
            data.len()
        )));
    }
    let pixels = h.width as u64 * h.height as u64;
    if pixels > max_pixels {
        return Err(invalid(format!("more than {max_pixels} pixels")));
    }
    // Bounded by `data` now: pixels <= data.len(), so the output is at most 3x the payload.
    out.set_size(h.width, h.height);
    let (row, step, w3) = (row as usize, h.step as usize, h.width as usize * 3);
    for (y, dst) in out.data.chunks_exact_mut(w3).enumerate() {
        let src = &data[y * step..y * step + row];
        convert_row(layout, h.big_endian, src, dst);
    }
    Ok(())
}

/// One row of pixels in `layout` into RGB8.
fn convert_row(layout: Layout, big_endian: bool, src: &[u8], dst: &mut [u8]) {
    let bpp = layout.bytes_per_pixel();
    // Offset of the most significant byte inside a channel.
    let hi = if layout.depth == 2 && !big_endian {
        1
    } else {
        0
    };
    match (layout.order, layout.channels, layout.depth) {
        (Order::Rgb, 3, 1) => dst.copy_from_slice(src),
        (Order::Gray, _, _) => {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(bpp)) {
                d.fill(s[hi]);
            }
        }
        (Order::Rgb, _, depth) => {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(bpp)) {
                d[0] = s[hi];
                d[1] = s[depth + hi];
                d[2] = s[2 * depth + hi];
            }
        }
        (Order::Bgr, _, depth) => {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(bpp)) {
                d[0] = s[2 * depth + hi];
                d[1] = s[depth + hi];
                d[2] = s[hi];
            }
        }
    }
}
