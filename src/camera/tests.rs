//! Camera decoding tests: hand-built messages with exact pixels, codec round trips, corrupt
//! input, and real bags checked against the independent Python decoders `rosbags` + Pillow.

use std::path::Path;

use super::*;
use crate::bag;

/// sensor_msgs/Image as ROS1 writes it (comments dropped).
const IMAGE_DEF: &str = "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n\
    uint8 is_bigendian\nuint32 step\nuint8[] data\n\
    ================================================================================\n\
    MSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n";

const COMPRESSED_DEF: &str = "std_msgs/Header header\nstring format\nuint8[] data\n\
    ================================================================================\n\
    MSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n";

fn header(out: &mut Vec<u8>) {
    out.extend_from_slice(&7u32.to_le_bytes());
    out.extend_from_slice(&100u32.to_le_bytes());
    out.extend_from_slice(&5u32.to_le_bytes());
    put_str(out, "cam");
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn image_msg(w: u32, h: u32, enc: &str, big_endian: bool, step: u32, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    header(&mut m);
    m.extend_from_slice(&h.to_le_bytes());
    m.extend_from_slice(&w.to_le_bytes());
    put_str(&mut m, enc);
    m.push(big_endian as u8);
    m.extend_from_slice(&step.to_le_bytes());
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(data);
    m
}

fn compressed_msg(format: &str, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    header(&mut m);
    put_str(&mut m, format);
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(data);
    m
}

fn raw_decoder() -> ImageDecoder {
    let s = Schema::parse("sensor_msgs/Image", IMAGE_DEF).unwrap();
    ImageDecoder::new("sensor_msgs/Image", &s).unwrap()
}

fn compressed_decoder() -> ImageDecoder {
    let s = Schema::parse("sensor_msgs/CompressedImage", COMPRESSED_DEF).unwrap();
    ImageDecoder::new("sensor_msgs/CompressedImage", &s).unwrap()
}

fn decode(d: &ImageDecoder, msg: &[u8]) -> Result<RgbImage, CameraError> {
    let mut out = RgbImage::new();
    d.decode(msg, &mut out)?;
    assert_eq!(out.data.len(), out.width as usize * out.height as usize * 3);
    Ok(out)
}

/// Rows of `row` bytes, each followed by `pad` bytes of 0xEE that must never be read.
fn padded(rows: &[&[u8]], pad: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(r);
        out.extend(std::iter::repeat_n(0xEE, pad));
    }
    out
}

/// 2x2 image with 3 padding bytes per row; checks the exact RGB output.
fn check_2x2(enc: &str, big_endian: bool, bpp: usize, rows: [&[u8]; 2], want: [[u8; 3]; 4]) {
    let step = (2 * bpp + 3) as u32;
    let msg = image_msg(2, 2, enc, big_endian, step, &padded(&rows, 3));
    let img = decode(&raw_decoder(), &msg).unwrap_or_else(|e| panic!("{enc}: {e}"));
    assert_eq!((img.width, img.height), (2, 2), "{enc}");
    assert_eq!(img.data, want.concat(), "{enc}");
}

#[test]
fn every_raw_encoding_with_row_padding() {
    let rgb = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]];
    let bgr = rgb.map(|[r, g, b]| [b, g, r]);
    check_2x2(
        "rgb8",
        false,
        3,
        [&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12]],
        rgb,
    );
    check_2x2(
        "bgr8",
        false,
        3,
        [&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12]],
        bgr,
    );
    // OpenCV's 8UC3 is BGR.
    check_2x2(
        "8UC3",
        false,
        3,
        [&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12]],
        bgr,
    );
    let rgba: [&[u8]; 2] = [&[1, 2, 3, 99, 4, 5, 6, 99], &[7, 8, 9, 99, 10, 11, 12, 99]];
    check_2x2("rgba8", false, 4, rgba, rgb);
    check_2x2("bgra8", false, 4, rgba, bgr);
    check_2x2("8UC4", false, 4, rgba, bgr);
    let gray = [[9; 3], [200; 3], [0; 3], [255; 3]];
    check_2x2("mono8", false, 1, [&[9, 200], &[0, 255]], gray);
    check_2x2("8UC1", false, 1, [&[9, 200], &[0, 255]], gray);
    // 16-bit keeps the high byte: 0x09ff -> 9, 0xc801 -> 200.
    let le: [&[u8]; 2] = [&[0xff, 0x09, 0x01, 0xc8], &[0xff, 0x00, 0x00, 0xff]];
    let be: [&[u8]; 2] = [&[0x09, 0xff, 0xc8, 0x01], &[0x00, 0xff, 0xff, 0x00]];
    check_2x2("mono16", false, 2, le, gray);
    check_2x2("16UC1", false, 2, le, gray);
    check_2x2("mono16", true, 2, be, gray);
    check_2x2("16UC1", true, 2, be, gray);
    // rgb16 big-endian, bgr16 little-endian: high bytes 1..12, low bytes noise.
    let rgb16_be: [&[u8]; 2] = [
        &[1, 0xaa, 2, 0xbb, 3, 0xcc, 4, 0, 5, 0, 6, 0],
        &[7, 1, 8, 1, 9, 1, 10, 1, 11, 1, 12, 1],
    ];
    check_2x2("rgb16", true, 6, rgb16_be, rgb);
    let bgr16_le: [&[u8]; 2] = [
        &[0xaa, 1, 0xbb, 2, 0xcc, 3, 0, 4, 0, 5, 0, 6],
        &[1, 7, 1, 8, 1, 9, 1, 10, 1, 11, 1, 12],
    ];
    check_2x2("bgr16", false, 6, bgr16_le, bgr);
    check_2x2("16UC3", false, 6, bgr16_le, bgr);
}

#[test]
fn unpadded_step_and_wider_image() {
    // 3x1 rgb8 with step == row: no padding at all.
    let msg = image_msg(3, 1, "rgb8", false, 9, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let img = decode(&raw_decoder(), &msg).unwrap();
    assert_eq!(img.pixel(2, 0), Some([7, 8, 9]));
    assert_eq!(img.pixel(3, 0), None);
    assert_eq!(raw_decoder().header(&msg), Some((3, 1)));
}

#[test]
fn unsupported_encoding_is_named() {
    for enc in ["32FC1", "bayer_rggb8", "yuv422", ""] {
        let msg = image_msg(1, 1, enc, false, 4, &[0; 4]);
        let err = decode(&raw_decoder(), &msg).unwrap_err();
        assert_eq!(err, CameraError::Encoding(enc.to_string()));
        assert!(
            err.to_string()
                .starts_with(&format!("unsupported image encoding `{enc}`")),
            "{err}"
        );
    }
}

#[test]
fn lying_raw_headers_are_errors() {
    let d = raw_decoder();
    let data = [0u8; 12];
    let cases = [
        // step shorter than a row
        (image_msg(2, 2, "rgb8", false, 5, &data), "step is shorter"),
        // height says more rows than the data holds
        (
            image_msg(2, 3, "rgb8", false, 6, &data),
            "data holds 12 bytes",
        ),
        // huge width and height: must not allocate
        (
            image_msg(u32::MAX, u32::MAX, "mono8", false, u32::MAX, &data),
            "data holds 12 bytes",
        ),
        (
            image_msg(2, u32::MAX, "rgb8", false, 6, &data),
            "data holds 12 bytes",
        ),
        (
            image_msg(u32::MAX, 1, "mono16", false, 0, &data),
            "step is shorter",
        ),
        (image_msg(0, 2, "rgb8", false, 6, &data), "empty image"),
        (image_msg(2, 0, "rgb8", false, 6, &data), "empty image"),
    ];
    for (msg, want) in cases {
        let mut out = RgbImage {
            width: 1,
            height: 1,
            data: vec![1, 2, 3],
        };
        let err = d.decode(&msg, &mut out).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        // Never a half-written frame.
        assert_eq!(out, RgbImage::new());
    }
    // A pixel cap below the image refuses it.
    let msg = image_msg(2, 2, "rgb8", false, 6, &data);
    let err = decode(&raw_decoder().with_max_pixels(3), &msg).unwrap_err();
    assert!(err.to_string().contains("more than 3 pixels"), "{err}");
}

#[test]
fn truncated_raw_messages_are_errors_at_every_length() {
    let d = raw_decoder();
    let msg = image_msg(2, 2, "bgr8", false, 7, &[5; 14]);
    assert!(decode(&d, &msg).is_ok());
    for n in 0..msg.len() {
        assert!(decode(&d, &msg[..n]).is_err(), "cut at {n}");
    }
}

#[test]
fn decoding_reuses_the_output_buffer_and_counts() {
    let d = raw_decoder();
    assert_eq!(d.decoded(), 0);
    let big = image_msg(4, 4, "mono8", false, 4, &[3; 16]);
    let small = image_msg(2, 1, "mono8", false, 2, &[4, 5]);
    let mut out = RgbImage::new();
    d.decode(&big, &mut out).unwrap();
    let ptr = out.data.as_ptr();
    d.decode(&small, &mut out).unwrap();
    assert_eq!(out.data, [4, 4, 4, 5, 5, 5]);
    assert_eq!(out.data.as_ptr(), ptr, "the allocation was not reused");
    d.decode(&big, &mut out).unwrap();
    assert_eq!(out.data.as_ptr(), ptr);
    assert_eq!(out.data, [3; 48]);
    let _ = d.decode(&small[..10], &mut out);
    assert_eq!(d.decoded(), 4, "failed decodes count too");
}

#[test]
fn only_image_types_are_accepted() {
    let s = Schema::parse("std_msgs/String", "string data\n").unwrap();
    let err = ImageDecoder::new("std_msgs/String", &s).unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic type std_msgs/String is not an image type (sensor_msgs/Image or \
         sensor_msgs/CompressedImage)"
    );
    // A type named Image whose definition lacks the fields is refused by name of the field.
    let s = Schema::parse("sensor_msgs/Image", "uint32 height\n").unwrap();
    let err = ImageDecoder::new("sensor_msgs/Image", &s).unwrap_err();
    assert!(err.to_string().contains("no field `width`"), "{err}");
    let s = Schema::parse("sensor_msgs/msg/Image", IMAGE_DEF).unwrap();
    let d = ImageDecoder::new("sensor_msgs/msg/Image", &s).unwrap();
    assert_eq!(d.kind(), CameraKind::Raw);
    assert_eq!(compressed_decoder().kind(), CameraKind::Compressed);
}

/// A smooth test pattern (JPEG-friendly) of known values.
fn pattern(w: u32, h: u32) -> RgbImage {
    let mut img = RgbImage::new();
    img.set_size(w, h);
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            img.data[i] = (x * 255 / (w - 1)) as u8;
            img.data[i + 1] = (y * 255 / (h - 1)) as u8;
            img.data[i + 2] = 128;
        }
    }
    img
}

fn png_of(data: &[u8], w: u32, h: u32, ct: image::ExtendedColorType) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(data, w, h, ct)
        .unwrap();
    out
}

#[test]
fn png_round_trip_is_exact_and_format_string_is_secondary() {
    let src = pattern(17, 9);
    let mut png = b"prefix".to_vec();
    encode_png(&src, &mut png).unwrap();
    assert_eq!(&png[..6], b"prefix", "encode_png appends");
    let png = png[6..].to_vec();
    let d = compressed_decoder();
    // The magic bytes win over a wrong or decorated format string.
    for format in ["png", "rgb8; png compressed rgb8", "jpeg", ""] {
        let img = decode(&d, &compressed_msg(format, &png)).unwrap();
        assert_eq!(img, src, "{format}");
    }
    assert_eq!(d.header(&compressed_msg("png", &png)), Some((17, 9)));
}

#[test]
fn gray_rgba_and_16bit_png_become_rgb8() {
    let d = compressed_decoder();
    let l8 = png_of(&[0, 50, 100, 255], 2, 2, image::ExtendedColorType::L8);
    let img = decode(&d, &compressed_msg("png", &l8)).unwrap();
    assert_eq!(
        img.data,
        [0, 0, 0, 50, 50, 50, 100, 100, 100, 255, 255, 255]
    );

    let la8 = png_of(&[10, 0, 20, 255], 2, 1, image::ExtendedColorType::La8);
    let img = decode(&d, &compressed_msg("png", &la8)).unwrap();
    assert_eq!(img.data, [10, 10, 10, 20, 20, 20]);

    // Alpha is dropped, not composited.
    let rgba = [1, 2, 3, 0, 4, 5, 6, 128, 7, 8, 9, 255];
    let png = png_of(&rgba, 3, 1, image::ExtendedColorType::Rgba8);
    let img = decode(&d, &compressed_msg("png", &png)).unwrap();
    assert_eq!(img.data, [1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // The encoder takes 16-bit samples in native byte order.
    let depth: Vec<u8> = [0x1234u16, 0xff00, 0x00ff, 0x8001]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let l16 = png_of(&depth, 4, 1, image::ExtendedColorType::L16);
    let want = [
        0x12, 0x12, 0x12, 0xff, 0xff, 0xff, 0, 0, 0, 0x80, 0x80, 0x80,
    ];
    let img = decode(&d, &compressed_msg("16UC1; png", &l16)).unwrap();
    assert_eq!(img.data, want);
    // compressed_depth_image_transport: a 12-byte config header before the PNG.
    let mut cd = vec![0u8; 12];
    cd.extend_from_slice(&l16);
    let msg = compressed_msg("16UC1; compressedDepth png", &cd);
    assert_eq!(decode(&d, &msg).unwrap().data, want);
    assert_eq!(d.header(&msg), Some((4, 1)));

    let rgb16: Vec<u8> = [0x0100u16, 0x0200, 0x03ff, 0xfe00, 0xfd00, 0xfc00]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let png = png_of(&rgb16, 2, 1, image::ExtendedColorType::Rgb16);
    let img = decode(&d, &compressed_msg("png", &png)).unwrap();
    assert_eq!(img.data, [1, 2, 3, 0xfe, 0xfd, 0xfc]);
}

fn jpeg_of(img: &RgbImage, ct: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(data, img.width, img.height, ct)
        .unwrap();
    out
}

#[test]
fn jpeg_decodes_within_codec_loss() {
    let src = pattern(40, 24);
    let jpg = jpeg_of(&src, image::ExtendedColorType::Rgb8, &src.data);
    let d = compressed_decoder();
    for format in [
        "jpeg",
        "rgb8; jpeg compressed bgr8",
        "bgr8; compressed bgr8",
        "png",
    ] {
        let img = decode(&d, &compressed_msg(format, &jpg)).unwrap();
        assert_eq!((img.width, img.height), (40, 24));
        let diffs: Vec<i32> = img
            .data
            .iter()
            .zip(&src.data)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .collect();
        let max = diffs.iter().max().copied().unwrap_or(0);
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        assert!(max <= 12 && mean < 2.0, "{format}: max {max}, mean {mean}");
        // Channel order kept: red grows along x, green along y.
        let [r0, g0, _] = img.pixel(0, 0).unwrap();
        let [r1, _, _] = img.pixel(39, 0).unwrap();
        let [_, g1, _] = img.pixel(0, 23).unwrap();
        assert!(r0 < 10 && r1 > 245 && g0 < 10 && g1 > 245);
    }
    assert_eq!(d.header(&compressed_msg("jpeg", &jpg)), Some((40, 24)));

    // Grayscale JPEG: replicated.
    let gray: Vec<u8> = src.data.chunks(3).map(|p| p[0]).collect();
    let jpg = jpeg_of(&src, image::ExtendedColorType::L8, &gray);
    let img = decode(&d, &compressed_msg("mono8; jpeg compressed mono8", &jpg)).unwrap();
    for (p, &g) in img.data.chunks(3).zip(&gray) {
        assert!(p[0] == p[1] && p[1] == p[2]);
        assert!((p[0] as i32 - g as i32).abs() <= 12);
    }
}

#[test]
fn corrupt_compressed_data_is_an_error_not_a_panic() {
    let d = compressed_decoder();
    let src = pattern(16, 16);
    let mut png = Vec::new();
    encode_png(&src, &mut png).unwrap();
    let jpg = jpeg_of(&src, image::ExtendedColorType::Rgb8, &src.data);

    let err = decode(&d, &compressed_msg("tiff", b"II*\0garbage")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("compressed image (format `tiff`): neither JPEG nor PNG"),
        "{err}"
    );
    assert!(decode(&d, &compressed_msg("png", &[])).is_err());
    assert!(decode(&d, &compressed_msg("jpeg", b"\xff\xd8\xff garbage")).is_err());
    assert!(decode(&d, &compressed_msg("png", b"\x89PNG\r\n\x1a\n garbage")).is_err());
    // Every truncation of the codec streams and of the message.
    for data in [&png, &jpg] {
        for n in (0..data.len()).step_by(7) {
            let r = decode(&d, &compressed_msg("jpeg", &data[..n]));
            // A JPEG cut late may still decode (lenient mode fills missing blocks).
            if let Ok(img) = r {
                assert_eq!((img.width, img.height), (16, 16));
            }
        }
        let msg = compressed_msg("png", data);
        for n in 0..msg.len() - data.len() {
            assert!(decode(&d, &msg[..n]).is_err());
        }
    }
    // A PNG header claiming 100000 x 100000: refused before allocating.
    let mut lying = png.clone();
    lying[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    lying[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&lying[12..29]);
    lying[29..33].copy_from_slice(&crc.to_be_bytes());
    let msg = compressed_msg("png", &lying);
    assert_eq!(d.header(&msg), Some((100_000, 100_000)));
    let err = decode(&d, &msg).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("PNG: 100000x100000 is more than 67108864 pixels"),
        "{err}"
    );
    // Under the pixel cap the same lie fails on the missing data instead.
    lying[16..20].copy_from_slice(&4000u32.to_be_bytes());
    lying[20..24].copy_from_slice(&4000u32.to_be_bytes());
    let crc = crc32(&lying[12..29]);
    lying[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(decode(&d, &compressed_msg("png", &lying)).is_err());
}

/// CRC-32 as PNG chunks use it, so a test can forge a consistent IHDR.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn random_bytes_never_panic() {
    use proptest::prelude::*;
    let raw = raw_decoder();
    let comp = compressed_decoder();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    runner
        .run(
            &(proptest::collection::vec(any::<u8>(), 0..300), 0usize..4),
            |(bytes, prefix)| {
                let mut out = RgbImage::new();
                let _ = raw.decode(&bytes, &mut out);
                let _ = raw.header(&bytes);
                // Give the compressed decoder a valid envelope with garbage after a magic.
                let magic: &[u8] =
                    [&b""[..], b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff"][prefix];
                let data = [magic, &bytes].concat();
                let _ = comp.decode(&compressed_msg("jpeg", &data), &mut out);
                let _ = comp.header(&compressed_msg("png", &data));
                let _ = comp.decode(&bytes, &mut out);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn resize_is_deterministic_and_keeps_flat_colour() {
    let mut flat = RgbImage::new();
    flat.set_size(8, 6);
    for p in flat.data.chunks_mut(3) {
        p.copy_from_slice(&[10, 200, 77]);
    }
    let mut out = RgbImage::new();
    resize_into(&flat, 3, 5, &mut out).unwrap();
    assert_eq!((out.width, out.height), (3, 5));
    assert!(out.data.chunks(3).all(|p| p == [10, 200, 77]));

    let src = pattern(64, 48);
    let mut a = RgbImage::new();
    let mut b = RgbImage::new();
    resize_into(&src, 32, 24, &mut a).unwrap();
    resize_into(&src, 32, 24, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.data.len(), 32 * 24 * 3);
    // A gradient stays a gradient: red rises along x, green along y, blue stays.
    for y in 0..24 {
        for x in 1..32 {
            assert!(a.pixel(x, y).unwrap()[0] >= a.pixel(x - 1, y).unwrap()[0]);
        }
    }
    assert!(a.pixel(0, 0).unwrap()[1] < a.pixel(0, 23).unwrap()[1]);
    assert!(a.data.chunks(3).all(|p| p[2] == 128));
    // Same size: a copy.
    resize_into(&src, 64, 48, &mut a).unwrap();
    assert_eq!(a, src);
    // Bad input is an error.
    assert!(resize_into(&src, 0, 5, &mut a).is_err());
    let broken = RgbImage {
        width: 5,
        height: 5,
        data: vec![0; 3],
    };
    assert!(resize_into(&broken, 2, 2, &mut a).is_err());
    assert!(encode_png(&broken, &mut Vec::new()).is_err());
}

// ---- real bags ----

fn bags() -> Option<std::path::PathBuf> {
    crate::test_skip::shared_bags()
}

/// FNV-1a 64 of the RGB bytes: the Python reference computes the same hash.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Decodes every message on `topic`, in bag order.
fn decode_topic(path: &Path, topic: &str) -> (Vec<RgbImage>, ImageDecoder) {
    let mut b = bag::open(path).unwrap_or_else(|e| panic!("{e}"));
    let s = b.summary();
    let conns = s.connections_on(topic);
    assert_eq!(conns.len(), 1, "{topic} in {}", path.display());
    let c = &s.connections[conns[0]];
    let schema = Schema::parse(&c.datatype, &c.definition).unwrap();
    let dec = ImageDecoder::new(&c.datatype, &schema).unwrap();
    let mut wanted = vec![false; s.connections.len()];
    wanted[conns[0]] = true;
    let mut msgs = Vec::new();
    b.read_window(crate::Time::MIN, crate::Time::MAX, &wanted, &mut msgs)
        .unwrap();
    let mut out = Vec::new();
    for m in &msgs {
        let mut img = RgbImage::new();
        dec.decode(m.data(), &mut img)
            .unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(dec.header(m.data()), Some((img.width, img.height)));
        out.push(img);
    }
    (out, dec)
}

/// `(fnv, pixel(0,0), pixel(w/3,h/2), pixel(w-1,h-1))` per image.
type Expect = (u64, [u8; 3], [u8; 3], [u8; 3]);

fn check(imgs: &[RgbImage], w: u32, h: u32, want: &[Expect]) {
    assert_eq!(imgs.len(), want.len());
    for (i, (img, &(hash, p0, pm, pl))) in imgs.iter().zip(want).enumerate() {
        assert_eq!((img.width, img.height), (w, h), "image {i}");
        assert_eq!(img.pixel(0, 0), Some(p0), "image {i}");
        assert_eq!(img.pixel(w / 3, h / 2), Some(pm), "image {i}");
        assert_eq!(img.pixel(w - 1, h - 1), Some(pl), "image {i}");
        assert_eq!(fnv(&img.data), hash, "image {i}");
    }
}

/// Hashes of the 20 frames of each camera as `rosbags` + numpy decode them.
const SYNTH_RAW: [u64; 20] = [
    0xe2e46a5a26f9d5a5,
    0xe9696d111b2db0a5,
    0x7393722918e6ed25,
    0x09d4a8b424877ba5,
    0x0daa26c52a48aca5,
    0xdd6a84d67105c625,
    0xbabb173b9fd19125,
    0xe5edbe5fa76d5125,
    0xb69fd17ef98632a5,
    0x30452cef5187aea5,
    0x2b5405fbb314b5a5,
    0x9d324f15bec3aca5,
    0x79f84559a22bb5a5,
    0x340fd562d836d725,
    0x4c94401050d32aa5,
    0x70ac0915ccdd0f25,
    0x602ad0230f8d4ba5,
    0xa0dae114d6a43525,
    0xc25b9466db859625,
    0x733f2ccaf1e551a5,
];

/// As Pillow decodes the PNG payloads.
const SYNTH_PNG: [u64; 20] = [
    0xb142486f37000725,
    0xe8531ec5dddf1925,
    0x4d4983164cb06d25,
    0x39142dd4af109f25,
    0x2640587e4cd8ab25,
    0xb6ad6af6e1684b25,
    0x29e5932ebafea725,
    0x236d7d52bb330d25,
    0xf4f6bcded3d1f125,
    0x2d7698173c03d325,
    0xbfdc5090260af725,
    0x8f8cc0866fd6c925,
    0xffe7329574ff0f25,
    0xf6b951c0b6d16325,
    0x8f6f003db78ecd25,
    0x0a84556a05425725,
    0xd79fc58eda209725,
    0xac1c5efe6890e525,
    0x5549281d2a963d25,
    0x25ff84417d402d25,
];

#[test]
fn synthetic_bag_raw_and_png_cameras() {
    let Some(root) = bags() else { return };
    let path = root.join("synthetic/ros1_none.bag");
    for cam in ["cam_high", "cam_wrist"] {
        let (raw, dec) = decode_topic(&path, &format!("/{cam}/image_raw"));
        assert_eq!(dec.kind(), CameraKind::Raw);
        assert_eq!(dec.decoded(), 20);
        let (png, dec) = decode_topic(&path, &format!("/{cam}/image_raw/compressed"));
        assert_eq!(dec.kind(), CameraKind::Compressed);
        let hashes = |v: &[RgbImage]| v.iter().map(|i| fnv(&i.data)).collect::<Vec<_>>();
        assert_eq!(hashes(&raw), SYNTH_RAW);
        assert_eq!(hashes(&png), SYNTH_PNG);
        // Frame 1 checked pixel by pixel against the reference values.
        check(
            &raw[1..2],
            64,
            48,
            &[(SYNTH_RAW[1], [1, 2, 0], [22, 26, 45], [64, 49, 110])],
        );
        check(
            &png[1..2],
            64,
            48,
            &[(SYNTH_PNG[1], [1, 0, 7], [85, 96, 7], [253, 188, 7])],
        );
        // The generator draws different patterns on the two topics (make_teleop_bag.py's
        // tiny_png vs rgb_image), so the frames are not equal: each is checked on its own.
        assert_ne!(raw[0], png[0]);
        // Re-encoding the raw frames as PNG gives them back exactly.
        let d = compressed_decoder();
        for img in &raw {
            let mut bytes = Vec::new();
            encode_png(img, &mut bytes).unwrap();
            assert_eq!(&decode(&d, &compressed_msg("png", &bytes)).unwrap(), img);
        }
    }
}

#[test]
fn realsense_rgb8_and_mono16_depth() {
    let Some(root) = bags() else { return };
    let path = root.join("librealsense/single_depth_color_640x480.bag");
    let (color, _) = decode_topic(&path, "/device_0/sensor_1/Color_0/image/data");
    check(
        &color,
        640,
        480,
        &[(
            0x5d65ca9dd1b7ebda,
            [172, 150, 115],
            [141, 119, 82],
            [123, 131, 132],
        )],
    );
    let (depth, _) = decode_topic(&path, "/device_0/sensor_0/Depth_0/image/data");
    check(
        &depth,
        640,
        480,
        &[
            (0x45179e89f17cb1c1, [0, 0, 0], [7, 7, 7], [0, 0, 0]),
            (0x632beb8ea08decd3, [0, 0, 0], [6, 6, 6], [0, 0, 0]),
        ],
    );
}

#[test]
fn ros_numpy_image_and_rgba_png() {
    let Some(root) = bags() else { return };
    let path = root.join("ros_numpy/test.bag");
    let (img, _) = decode_topic(&path, "/image");
    check(
        &img,
        360,
        240,
        &[(
            0x40529bc375780885,
            [166, 163, 175],
            [203, 173, 171],
            [248, 68, 82],
        )],
    );
    // An RGBA PNG of 2x2: alpha dropped, as Pillow's convert("RGB") does.
    let (png, _) = decode_topic(&path, "/compressedimage");
    check(
        &png,
        2,
        2,
        &[(0xe00dac5e0524190a, [255, 0, 0], [0, 170, 119], [51, 51, 51])],
    );
}

// ---- ROS 2 (CDR) ----

#[path = "../../tests/support/mcap.rs"]
mod mcap;

/// sensor_msgs/msg/Image as rosbag2 stores it (ros2msg, comments dropped).
const IMAGE_DEF_ROS2: &str = "std_msgs/Header header\nuint32 height\nuint32 width\n\
    string encoding\nuint8 is_bigendian\nuint32 step\nuint8[] data\n\
    ================================================================================\n\
    MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n\
    ================================================================================\n\
    MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";

const COMPRESSED_DEF_ROS2: &str = "std_msgs/Header header\nstring format\nuint8[] data\n\
    ================================================================================\n\
    MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n\
    ================================================================================\n\
    MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";

/// A CDR writer for these two types: aligned 4-byte values, strings with their NUL, padding
/// bytes 0xEE.
struct Cdr {
    b: Vec<u8>,
    big: bool,
}

impl Cdr {
    fn new(big: bool) -> Cdr {
        Cdr {
            b: vec![0, !big as u8, 0, 0],
            big,
        }
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        while (self.b.len() - 4) % 4 != 0 {
            self.b.push(0xEE);
        }
        let bytes = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.b.extend_from_slice(&bytes);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32 + 1);
        self.b.extend_from_slice(s.as_bytes());
        self.b.push(0);
        self
    }
    fn bytes(&mut self, d: &[u8]) -> &mut Self {
        self.u32(d.len() as u32);
        self.b.extend_from_slice(d);
        self
    }
    fn header(&mut self) -> &mut Self {
        // A one-letter frame id: what follows needs padding.
        self.u32(100).u32(5).str("c")
    }
}

fn cdr_image(big: bool, w: u32, h: u32, enc: &str, step: u32, data: &[u8]) -> Vec<u8> {
    let mut c = Cdr::new(big);
    c.header().u32(h).u32(w).str(enc);
    c.b.push(0);
    c.u32(step).bytes(data);
    c.b
}

fn cdr_decoder(datatype: &str, def: &str) -> ImageDecoder {
    let s = Schema::parse_ros2(datatype, def).unwrap();
    ImageDecoder::with_encoding(datatype, &s, Encoding::Cdr).unwrap()
}

#[test]
fn cdr_images_in_both_byte_orders() {
    let d = cdr_decoder("sensor_msgs/msg/Image", IMAGE_DEF_ROS2);
    assert_eq!(d.kind(), CameraKind::Raw);
    let data = padded(&[&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12]], 3);
    for big in [false, true] {
        let m = cdr_image(big, 2, 2, "rgb8", 9, &data);
        let img = decode(&d, &m).unwrap();
        assert_eq!(
            (img.width, img.height, &img.data[..]),
            (2, 2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12][..])
        );
        assert_eq!(
            d.header(&m),
            Some((2, 2)),
            "sizes in the message's byte order"
        );
        let m = cdr_image(big, 2, 1, "bgr8", 6, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(decode(&d, &m).unwrap().data, [3, 2, 1, 6, 5, 4]);
    }
    // The ROS1 decoder does not read CDR bytes as pixels.
    let ros1 = Schema::parse_ros2("sensor_msgs/msg/Image", IMAGE_DEF_ROS2).unwrap();
    let ros1 = ImageDecoder::new("sensor_msgs/msg/Image", &ros1).unwrap();
    assert!(decode(&ros1, &cdr_image(false, 2, 2, "rgb8", 9, &data)).is_err());
    // Truncated anywhere: an error, and the output left empty.
    let m = cdr_image(false, 2, 2, "rgb8", 9, &data);
    for cut in 0..m.len() {
        let mut out = RgbImage::new();
        assert!(d.decode(&m[..cut], &mut out).is_err(), "cut {cut}");
        assert!(out.data.is_empty());
    }
}

#[test]
fn cdr_compressed_png_round_trip() {
    let d = cdr_decoder("sensor_msgs/msg/CompressedImage", COMPRESSED_DEF_ROS2);
    assert_eq!(d.kind(), CameraKind::Compressed);
    let img = pattern(16, 8);
    let mut png = Vec::new();
    encode_png(&img, &mut png).unwrap();
    for big in [false, true] {
        let mut c = Cdr::new(big);
        c.header().str("png").bytes(&png);
        assert_eq!(decode(&d, &c.b).unwrap(), img);
        assert_eq!(d.header(&c.b), Some((16, 8)));
    }
}

/// The messages on `topic` of an MCAP file with uncompressed chunks, and a CDR decoder
/// built from the file's own schema.
fn mcap_topic(path: &Path, topic: &str) -> (Vec<Vec<u8>>, ImageDecoder) {
    let f = mcap::read(path).unwrap_or_else(|| panic!("{}: not MCAP", path.display()));
    let ch = f.channel(topic).unwrap_or_else(|| panic!("no {topic}"));
    assert_eq!(ch.message_encoding, "cdr");
    let s = f.schema(ch.schema_id).unwrap();
    assert_eq!(s.encoding, "ros2msg");
    let schema = Schema::parse_ros2(&s.name, &String::from_utf8_lossy(&s.data)).unwrap();
    let dec = ImageDecoder::with_encoding(&s.name, &schema, Encoding::Cdr).unwrap();
    let msgs = f.messages_on(ch.id).map(|m| m.data.clone()).collect();
    (msgs, dec)
}

/// The same episode as ros1_none.bag, written by `rosbags` as ROS 2 MCAP: the same pixels.
#[test]
fn synthetic_ros2_mcap_cameras_match_the_ros1_frames() {
    let Some(root) = bags() else { return };
    let path = root.join("synthetic/ros2_mcap/ros2_mcap.mcap");
    for cam in ["cam_high", "cam_wrist"] {
        for (topic, want) in [
            (format!("/{cam}/image_raw"), SYNTH_RAW),
            (format!("/{cam}/image_raw/compressed"), SYNTH_PNG),
        ] {
            let (msgs, dec) = mcap_topic(&path, &topic);
            let hashes: Vec<u64> = msgs
                .iter()
                .map(|m| {
                    let img = decode(&dec, m).unwrap_or_else(|e| panic!("{topic}: {e}"));
                    assert_eq!(dec.header(m), Some((64, 48)));
                    fnv(&img.data)
                })
                .collect();
            assert_eq!(hashes, want, "{topic}");
        }
    }
}

/// rerun's real `ros2 bag record` recording: Image rgb8 640x480 and a JPEG CompressedImage.
#[test]
fn rerun_ros2_recording_cameras() {
    let Some(root) = bags() else { return };
    let path = root.join("rerun/rosbag2_2025_09_10-13_03_56_0.mcap");
    let (msgs, dec) = mcap_topic(&path, "/image");
    assert_eq!(msgs.len(), 1);
    let img = decode(&dec, &msgs[0]).unwrap();
    assert_eq!((img.width, img.height), (640, 480));
    // rgb8 with step = 3 * width: the pixels are the data field itself.
    let s = Schema::parse_ros2("sensor_msgs/msg/Image", IMAGE_DEF_ROS2).unwrap();
    let data =
        Extractor::with_encoding(&s, &FieldPath::parse("data").unwrap(), None, Encoding::Cdr)
            .unwrap();
    assert_eq!(data.raw(&msgs[0]).unwrap(), &img.data[..]);
    let (msgs, dec) = mcap_topic(&path, "/compressed_image");
    let img = decode(&dec, &msgs[0]).unwrap();
    assert_eq!(dec.header(&msgs[0]), Some((img.width, img.height)));
    assert!(img.width > 0 && img.height > 0);
}
