//! Camera messages: one serialized `sensor_msgs/Image` or `sensor_msgs/CompressedImage` into
//! an RGB8 image, plus the resize and PNG encoding that camera features need.
//!
//! Decoders write into a caller's [`RgbImage`] so that the pipeline can recycle frame buffers
//! instead of allocating one per message.

mod compressed;
mod raw;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::msg::{
    ByteOrder, DecodeError, Encoding, Extractor, FieldPath, MsgError, Schema, StringReader,
};

pub use raw::SUPPORTED_ENCODINGS;

/// Decoded images larger than this are refused: 8192 x 8192. Compressed data can expand by
/// orders of magnitude, so its own length cannot bound what a decoder would allocate.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 26;

/// A tightly packed RGB8 image, row-major: `data.len() == width * height * 3`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn new() -> RgbImage {
        RgbImage::default()
    }

    /// Sets the size; keeps the allocation when it is large enough. Pixel values are unspecified
    /// afterwards (the previous frame's, or zero).
    pub fn set_size(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.data.resize(width as usize * height as usize * 3, 0);
    }

    /// Empty image; the allocation is kept.
    pub fn clear(&mut self) {
        self.width = 0;
        self.height = 0;
        self.data.clear();
    }

    /// The pixel at column `x`, row `y`; None outside the image or when `data` is short.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        let p = self.data.get(i..i + 3)?;
        Some([p[0], p[1], p[2]])
    }

    fn check(&self) -> Result<(), CameraError> {
        let need = self.width as u64 * self.height as u64 * 3;
        if self.data.len() as u64 != need {
            return Err(CameraError::Invalid(format!(
                "RgbImage of {}x{} holds {} bytes, expected {need}",
                self.width,
                self.height,
                self.data.len()
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraKind {
    /// sensor_msgs/Image
    Raw,
    /// sensor_msgs/CompressedImage
    Compressed,
}

/// Errors of the camera module; the caller adds the topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CameraError {
    #[error(
        "topic type {0} is not an image type (sensor_msgs/Image or sensor_msgs/CompressedImage)"
    )]
    NotImage(String),
    #[error("{0}")]
    Schema(#[from] MsgError),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("unsupported image encoding `{0}` (supported: {list})", list = SUPPORTED_ENCODINGS.join(", "))]
    Encoding(String),
    #[error("{0}")]
    Invalid(String),
    #[error("compressed image (format `{format}`): {detail}")]
    Compressed { format: String, detail: String },
}

/// The field readers of sensor_msgs/Image.
#[derive(Debug)]
struct RawFields {
    height: Extractor,
    width: Extractor,
    step: Extractor,
    is_bigendian: Extractor,
    encoding: StringReader,
    data: Extractor,
}

/// The compiled field readers of one image type.
#[derive(Debug)]
enum Fields {
    Raw(Box<RawFields>),
    Compressed(Box<CompressedFields>),
}

/// The field readers of sensor_msgs/CompressedImage.
#[derive(Debug)]
struct CompressedFields {
    format: StringReader,
    data: Extractor,
}

/// Decodes the messages of one connection (one schema) into RGB8. Shareable across threads.
#[derive(Debug)]
pub struct ImageDecoder {
    fields: Fields,
    max_pixels: u64,
    decoded: AtomicU64,
}

impl ImageDecoder {
    /// `datatype` as the connection names it (`sensor_msgs/Image`, also the ROS 2 spelling
    /// `sensor_msgs/msg/Image`), `schema` parsed from its definition; ROS1-serialized
    /// messages.
    pub fn new(datatype: &str, schema: &Schema) -> Result<ImageDecoder, CameraError> {
        ImageDecoder::with_encoding(datatype, schema, Encoding::Ros1)
    }

    /// As [`ImageDecoder::new`], for messages serialized in `encoding` (ROS 2: CDR; its
    /// Image and CompressedImage have the same fields, only the header differs).
    pub fn with_encoding(
        datatype: &str,
        schema: &Schema,
        encoding: Encoding,
    ) -> Result<ImageDecoder, CameraError> {
        let short = datatype.replace("/msg/", "/");
        let number = |name: &str| -> Result<Extractor, CameraError> {
            let path = FieldPath::parse(name)?;
            Ok(Extractor::with_encoding(schema, &path, None, encoding)?)
        };
        let text = |name: &str| -> Result<StringReader, CameraError> {
            Ok(StringReader::with_encoding(
                schema,
                &FieldPath::parse(name)?,
                encoding,
            )?)
        };
        let fields = match short.as_str() {
            "sensor_msgs/Image" => Fields::Raw(Box::new(RawFields {
                height: number("height")?,
                width: number("width")?,
                step: number("step")?,
                is_bigendian: number("is_bigendian")?,
                encoding: text("encoding")?,
                data: number("data")?,
            })),
            "sensor_msgs/CompressedImage" => Fields::Compressed(Box::new(CompressedFields {
                format: text("format")?,
                data: number("data")?,
            })),
            _ => return Err(CameraError::NotImage(datatype.to_string())),
        };
        Ok(ImageDecoder {
            fields,
            max_pixels: DEFAULT_MAX_PIXELS,
            decoded: AtomicU64::new(0),
        })
    }

    /// Replaces [`DEFAULT_MAX_PIXELS`].
    pub fn with_max_pixels(mut self, max_pixels: u64) -> ImageDecoder {
        self.max_pixels = max_pixels;
        self
    }

    pub fn kind(&self) -> CameraKind {
        match self.fields {
            Fields::Raw(_) => CameraKind::Raw,
            Fields::Compressed(_) => CameraKind::Compressed,
        }
    }

    /// How many times [`ImageDecoder::decode`] was called (failed decodes included), so that
    /// tests can check that only the messages an output frame picks are decoded.
    pub fn decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Decodes one serialized message into `out`, reusing its allocation. Colour becomes RGB;
    /// mono is replicated to three channels; alpha is dropped; 16-bit values keep their high
    /// byte (`v >> 8`: a linear scale to 8 bits, coarse for depth in millimetres). On error
    /// `out` is left empty.
    pub fn decode(&self, msg: &[u8], out: &mut RgbImage) -> Result<(), CameraError> {
        self.decoded.fetch_add(1, Ordering::Relaxed);
        let r = match &self.fields {
            Fields::Raw(f) => {
                let header = raw::Header {
                    width: read_u32(&f.width, msg)?,
                    height: read_u32(&f.height, msg)?,
                    step: read_u32(&f.step, msg)?,
                    big_endian: f.is_bigendian.raw(msg)?.first().is_some_and(|&b| b != 0),
                    encoding: f.encoding.read(msg)?,
                };
                raw::decode(&header, f.data.raw(msg)?, self.max_pixels, out)
            }
            Fields::Compressed(f) => compressed::decode(
                &String::from_utf8_lossy(f.format.read(msg)?),
                f.data.raw(msg)?,
                self.max_pixels,
                out,
            ),
        };
        if r.is_err() {
            out.clear();
        }
        r
    }

    /// Width and height without decoding pixels: from the fields of a raw image, from the
    /// PNG IHDR or JPEG SOF header of a compressed one. None when they cannot be read.
    pub fn header(&self, msg: &[u8]) -> Option<(u32, u32)> {
        match &self.fields {
            Fields::Raw(f) => Some((
                read_u32(&f.width, msg).ok()?,
                read_u32(&f.height, msg).ok()?,
            )),
            Fields::Compressed(f) => compressed::dimensions(
                &String::from_utf8_lossy(f.format.read(msg).ok()?),
                f.data.raw(msg).ok()?,
            ),
        }
    }
}

/// Numbers through `raw`, not `extract`: f32 would round u32 sizes above 2^24.
fn read_u32(e: &Extractor, msg: &[u8]) -> Result<u32, DecodeError> {
    let (b, order) = e.raw_ordered(msg)?;
    match (b, order) {
        ([a, b, c, d], ByteOrder::Little) => Ok(u32::from_le_bytes([*a, *b, *c, *d])),
        ([a, b, c, d], ByteOrder::Big) => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::Invalid(format!(
            "field `{}` is {} bytes, expected a uint32",
            e.path(),
            b.len()
        ))),
    }
}

/// Resizes `src` to `width` x `height` into `out` with the image crate's Triangle (bilinear)
/// filter, which is deterministic. The crate returns a new buffer; it replaces `out.data`.
pub fn resize_into(
    src: &RgbImage,
    width: u32,
    height: u32,
    out: &mut RgbImage,
) -> Result<(), CameraError> {
    src.check()?;
    if width == 0 || height == 0 || src.width == 0 || src.height == 0 {
        return Err(CameraError::Invalid(format!(
            "cannot resize {}x{} to {width}x{height}",
            src.width, src.height
        )));
    }
    if (width, height) == (src.width, src.height) {
        out.set_size(width, height);
        out.data.copy_from_slice(&src.data);
        return Ok(());
    }
    let view =
        image::ImageBuffer::<image::Rgb<u8>, &[u8]>::from_raw(src.width, src.height, &src.data[..])
            .ok_or_else(|| CameraError::Invalid("image buffer size mismatch".into()))?;
    let resized =
        image::imageops::resize(&view, width, height, image::imageops::FilterType::Triangle);
    out.width = width;
    out.height = height;
    out.data = resized.into_raw();
    Ok(())
}

/// Appends `img` as a PNG file to `out` (for `type: image` features). Fast compression: this
/// runs once per frame, and the filter does most of the work on camera images.
pub fn encode_png(img: &RgbImage, out: &mut Vec<u8>) -> Result<(), CameraError> {
    use image::ImageEncoder;
    img.check()?;
    let mark = out.len();
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        &mut *out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    enc.write_image(
        &img.data,
        img.width,
        img.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| {
        out.truncate(mark);
        CameraError::Invalid(format!("PNG encoding failed: {e}"))
    })
}
