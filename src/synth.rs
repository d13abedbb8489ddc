//! Synthetic ROS1 messages and a synthetic teleop episode, for fixtures, tests and benchmarks.
//!
//! Every value is a deterministic function of time so tests can compute what a converter must
//! output. In the value functions `t` is seconds since [`TeleopSpec::start`] of the message's
//! receive (record) time; header stamps are the record time minus [`LATENCY`]. Camera pictures
//! are a function of the frame number (the message's `seq`): [`camera_pixel`].
//!
//! Definitions are the full texts `gendeps --cat` gives on ROS Noetic (comments included, `MSG:`
//! sections for dependencies) and the md5sums are the ROS ones (checked against real bags).

use std::path::Path;

use crate::bag::ros1::write::{BagWriter, WriteOptions};
use crate::bag::ros1::Compression;
use crate::bag::BagError;
use crate::{Time, NANOS};

/// A ROS1 message type as a connection record carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgType {
    pub datatype: &'static str,
    pub md5sum: &'static str,
    pub definition: &'static str,
}

macro_rules! sep {
    () => {
        "\n================================================================================\n"
    };
}

macro_rules! header_text {
    () => {
        "# Standard metadata for higher-level stamped data types.\n\
# This is generally used to communicate timestamped data \n\
# in a particular coordinate frame.\n\
# \n\
# sequence ID: consecutively increasing ID \n\
uint32 seq\n\
#Two-integer timestamp that is expressed as:\n\
# * stamp.sec: seconds (stamp_secs) since epoch (in Python the variable is called 'secs')\n\
# * stamp.nsec: nanoseconds since stamp_secs (in Python the variable is called 'nsecs')\n\
# time-handling sugar is provided by the client library\n\
time stamp\n\
#Frame this data is associated with\n\
string frame_id\n"
    };
}

pub const HEADER: MsgType = MsgType {
    datatype: "std_msgs/Header",
    md5sum: "2176decaecbce78abc3b96ef049fabed",
    definition: concat!(header_text!(), "\n"),
};

pub const JOINT_STATE: MsgType = MsgType {
    datatype: "sensor_msgs/JointState",
    md5sum: "3066dcd76a6cfaef579bd0f34173e9fd",
    definition: concat!(
        "# This is a message that holds data to describe the state of a set of torque controlled joints. \n\
#\n\
# The state of each joint (revolute or prismatic) is defined by:\n\
#  * the position of the joint (rad or m),\n\
#  * the velocity of the joint (rad/s or m/s) and \n\
#  * the effort that is applied in the joint (Nm or N).\n\
#\n\
# Each joint is uniquely identified by its name\n\
# The header specifies the time at which the joint states were recorded. All the joint states\n\
# in one message have to be recorded at the same time.\n\
#\n\
# This message consists of a multiple arrays, one for each part of the joint state. \n\
# The goal is to make each of the fields optional. When e.g. your joints have no\n\
# effort associated with them, you can leave the effort array empty. \n\
#\n\
# All arrays in this message should have the same size, or be empty.\n\
# This is the only way to uniquely associate the joint name with the correct\n\
# states.\n\
\n\
\n\
Header header\n\
\n\
string[] name\n\
float64[] position\n\
float64[] velocity\n\
float64[] effort\n",
        sep!(),
        "MSG: std_msgs/Header\n",
        header_text!(),
        "\n"
    ),
};

pub const FLOAT64: MsgType = MsgType {
    datatype: "std_msgs/Float64",
    md5sum: "fdb28210bfa9d7c91146260178d9a584",
    definition: "float64 data\n",
};

pub const FLOAT64_MULTI_ARRAY: MsgType = MsgType {
    datatype: "std_msgs/Float64MultiArray",
    md5sum: "4b7d974086d4060e7db4613a7e6c3ba4",
    definition: concat!(
        "# Please look at the MultiArrayLayout message definition for\n\
# documentation on all multiarrays.\n\
\n\
MultiArrayLayout  layout        # specification of data layout\n\
float64[]         data          # array of data\n\
\n",
        sep!(),
        "MSG: std_msgs/MultiArrayLayout\n",
        "# The multiarray declares a generic multi-dimensional array of a\n\
# particular data type.  Dimensions are ordered from outer most\n\
# to inner most.\n\
\n\
MultiArrayDimension[] dim # Array of dimension properties\n\
uint32 data_offset        # padding elements at front of data\n\
\n\
# Accessors should ALWAYS be written in terms of dimension stride\n\
# and specified outer-most dimension first.\n\
# \n\
# multiarray(i,j,k) = data[data_offset + dim_stride[1]*i + dim_stride[2]*j + k]\n\
#\n\
# A standard, 3-channel 640x480 image with interleaved color channels\n\
# would be specified as:\n\
#\n\
# dim[0].label  = \"height\"\n\
# dim[0].size   = 480\n\
# dim[0].stride = 3*640*480 = 921600  (note dim[0] stride is just size of image)\n\
# dim[1].label  = \"width\"\n\
# dim[1].size   = 640\n\
# dim[1].stride = 3*640 = 1920\n\
# dim[2].label  = \"channel\"\n\
# dim[2].size   = 3\n\
# dim[2].stride = 3\n\
#\n\
# multiarray(i,j,k) refers to the ith row, jth column, and kth channel.\n",
        sep!(),
        "MSG: std_msgs/MultiArrayDimension\n",
        "string label   # label of given dimension\n\
uint32 size    # size of given dimension (in type units)\n\
uint32 stride  # stride of given dimension\n",
        "\n"
    ),
};

pub const POSE_STAMPED: MsgType = MsgType {
    datatype: "geometry_msgs/PoseStamped",
    md5sum: "d3812c3cbc69362b77dc0b19b345f8f5",
    definition: concat!(
        "# A Pose with reference coordinate frame and timestamp\nHeader header\nPose pose\n",
        sep!(),
        "MSG: std_msgs/Header\n",
        header_text!(),
        sep!(),
        "MSG: geometry_msgs/Pose\n",
        "# A representation of pose in free space, composed of position and orientation. \n\
Point position\n\
Quaternion orientation\n",
        sep!(),
        "MSG: geometry_msgs/Point\n",
        "# This contains the position of a point in free space\nfloat64 x\nfloat64 y\nfloat64 z\n",
        sep!(),
        "MSG: geometry_msgs/Quaternion\n",
        "# This represents an orientation in free space in quaternion form.\n\
\n\
float64 x\n\
float64 y\n\
float64 z\n\
float64 w\n",
        "\n"
    ),
};

/// sensor_msgs/Image, with the comment-free definition the repository's reference bags carry
/// (`../shared/bags/synthetic*/`).
pub const IMAGE: MsgType = MsgType {
    datatype: "sensor_msgs/Image",
    md5sum: "060021388200f6f0f447d0fcd9c64743",
    definition: concat!(
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n\
uint8 is_bigendian\nuint32 step\nuint8[] data",
        sep!(),
        "MSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n"
    ),
};

/// sensor_msgs/CompressedImage, the full text `gendeps --cat` gives on ROS Noetic (the
/// "cameara" typo is ROS's own).
pub const COMPRESSED_IMAGE: MsgType = MsgType {
    datatype: "sensor_msgs/CompressedImage",
    md5sum: "8f7a12909da2c9d3332d540a0977563f",
    definition: concat!(
        // One literal per line: a `\` line continuation would eat the indentation.
        "# This message contains a compressed image\n",
        "\n",
        "Header header        # Header timestamp should be acquisition time of image\n",
        "                     # Header frame_id should be optical frame of camera\n",
        "                     # origin of frame should be optical center of cameara\n",
        "                     # +x should point to the right in the image\n",
        "                     # +y should point down in the image\n",
        "                     # +z should point into to plane of the image\n",
        "\n",
        "string format        # Specifies the format of the data\n",
        "                     #   Acceptable values:\n",
        "                     #     jpeg, png\n",
        "uint8[] data         # Compressed image buffer\n",
        sep!(),
        "MSG: std_msgs/Header\n",
        header_text!(),
        "\n"
    ),
};

/// ROS1 serialization: little endian, strings and variable arrays prefixed by a u32 length.
#[derive(Debug, Default, Clone)]
pub struct Ser(pub Vec<u8>);

impl Ser {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// ROS `time`; times before 1970 are clamped to 0 (never produced by this module).
    pub fn time(&mut self, t: Time) -> &mut Self {
        let t = t.max(0);
        self.u32((t / NANOS) as u32).u32((t % NANOS) as u32)
    }
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn f64_array(&mut self, v: &[f64]) -> &mut Self {
        self.u32(v.len() as u32);
        for &x in v {
            self.f64(x);
        }
        self
    }
    pub fn header(&mut self, seq: u32, stamp: Time, frame_id: &str) -> &mut Self {
        self.u32(seq).time(stamp).string(frame_id)
    }
}

pub fn joint_state(
    seq: u32,
    stamp: Time,
    names: &[String],
    position: &[f64],
    velocity: &[f64],
    effort: &[f64],
) -> Vec<u8> {
    let mut s = Ser::default();
    s.header(seq, stamp, "");
    s.u32(names.len() as u32);
    for n in names {
        s.string(n);
    }
    s.f64_array(position).f64_array(velocity).f64_array(effort);
    s.0
}

/// A Float64MultiArray with an empty layout (no dims, offset 0), as most publishers send it.
pub fn float64_multi_array(data: &[f64]) -> Vec<u8> {
    let mut s = Ser::default();
    s.u32(0).u32(0).f64_array(data);
    s.0
}

pub fn float64(v: f64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub fn pose_stamped(
    seq: u32,
    stamp: Time,
    frame_id: &str,
    position: [f64; 3],
    orientation: [f64; 4],
) -> Vec<u8> {
    let mut s = Ser::default();
    s.header(seq, stamp, frame_id);
    for v in position.into_iter().chain(orientation) {
        s.f64(v);
    }
    s.0
}

/// Blue level of camera frame `frame` (the camera message's `seq`, counted from 0):
/// `20 + 2 * frame` for frames 0 to 109 (20, 22, ..., 238), after which it wraps around
/// (`20 + 2 * (frame % 110)`: 3.7 s at 30 Hz). [`camera_pixel`] paints the whole picture's blue
/// channel with it, so that a decoded frame tells which camera frame it came from.
///
/// Codecs keep it on average but not exactly. JPEG ([`image_jpeg`]) keeps the picture's mean
/// blue within half a level and single pixels within 4 levels. An AV1 round trip (crf 30, g 2,
/// yuv420p; SVT-AV1 1.4) moved the mean blue by up to 4 levels, mostly down, even for a flat
/// picture: more than the 2-level spacing, so a video test should allow for that or tell frames
/// apart by comparing whole pictures ([`camera_rgb`]) too.
pub fn camera_frame_code(frame: u32) -> u8 {
    (20 + 2 * (frame % 110)) as u8
}

/// A parabolic approximation of `amp * sin(2 pi q / period)` (two parabola arcs per period, so
/// value and slope are continuous), in 1/256 levels. Integer arithmetic, so the fixture bytes
/// are the same on every platform. `period` must be even.
fn camera_wave(q: i64, period: i64, amp: i64) -> i64 {
    let half = period / 2;
    let p = q.rem_euclid(period);
    let (u, sign) = if p < half { (p, 1) } else { (p - half, -1) };
    sign * (1024 * amp * u * (half - u) / (half * half))
}

/// The camera picture at position `u = x + 2 y` of frame `frame`: see [`camera_pixel`].
fn camera_at(frame: u32, u: u64) -> [u8; 3] {
    let (f, u) = (i64::from(frame), u as i64);
    let level = |v: i64| ((128 * 256 + v + 128) >> 8).clamp(0, 255) as u8;
    let r = camera_wave(u + 11 * f, 384, 60) + camera_wave(u - 17 * f, 224, 24);
    let g = camera_wave(u - 13 * f, 448, 60) + camera_wave(u + 15 * f, 288, 24);
    [level(r), level(g), camera_frame_code(frame)]
}

/// The synthetic camera's picture: pixel (`x`, `y`) of camera frame `frame` as RGB.
///
/// Red and green are each two smooth waves (periods of 224 to 448 px, 44 to 212 levels in all)
/// along the diagonal direction `x + 2 y`, moving by 11 to 17 px per frame in different
/// directions, so the picture changes from frame to frame (red and green repeat after 2688
/// frames); blue is [`camera_frame_code`] everywhere. Smooth enough for JPEG at quality 90 (mean
/// error under 1 level) and AV1 at crf 30 with 4:2:0 chroma (about 2 levels). The picture
/// depends on `x + 2 y` only, so each row is the row above shifted by two pixels: LZ4 and bz2
/// chunks shrink raw frames about 15 times, which keeps the fixture bags small.
pub fn camera_pixel(frame: u32, x: u32, y: u32) -> [u8; 3] {
    camera_at(frame, u64::from(x) + 2 * u64::from(y))
}

/// The whole [`camera_pixel`] picture of `frame`, tightly packed rgb8, row-major.
pub fn camera_rgb(frame: u32, width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut out = Vec::with_capacity(w * h * 3);
    if w == 0 || h == 0 {
        return out;
    }
    // One table over u = x + 2 y; row y is the slice that starts at u = 2 y.
    let table: Vec<u8> = (0..(w + 2 * (h - 1)) as u64)
        .flat_map(|u| camera_at(frame, u))
        .collect();
    for y in 0..h {
        out.extend_from_slice(&table[6 * y..6 * y + 3 * w]);
    }
    out
}

/// sensor_msgs/Image, rgb8 (step `width * 3`), holding [`camera_pixel`]'s picture of `frame`.
pub fn image_rgb8(
    seq: u32,
    stamp: Time,
    frame_id: &str,
    width: u32,
    height: u32,
    frame: u32,
) -> Vec<u8> {
    let len = width as usize * height as usize * 3;
    let mut s = Ser::default();
    s.header(seq, stamp, frame_id)
        .u32(height)
        .u32(width)
        .string("rgb8")
        .u8(0)
        .u32(width * 3)
        .u32(len as u32);
    s.0.extend_from_slice(&camera_rgb(frame, width, height));
    s.0
}

/// JPEG quality of [`image_jpeg`].
pub const JPEG_QUALITY: u8 = 90;

/// sensor_msgs/CompressedImage holding [`camera_pixel`]'s picture of `frame` as a JPEG
/// (quality [`JPEG_QUALITY`], the `image` crate's encoder), with the format string ROS
/// image_transport writes for an rgb8 camera: `rgb8; jpeg compressed bgr8`. Panics when the
/// size is not one JPEG allows (1 to 65535 pixels each way).
pub fn image_jpeg(
    seq: u32,
    stamp: Time,
    frame_id: &str,
    width: u32,
    height: u32,
    frame: u32,
) -> Vec<u8> {
    compressed_image_jpeg(
        seq,
        stamp,
        frame_id,
        &camera_rgb(frame, width, height),
        width,
        height,
        JPEG_QUALITY,
    )
}

/// sensor_msgs/CompressedImage holding `rgb` (tightly packed rgb8, `width` x `height`) as a
/// JPEG of `quality` (1-100, [`encode_jpeg`]), with the format string ROS image_transport writes
/// for an rgb8 camera: `rgb8; jpeg compressed bgr8`. Panics when the size is not one JPEG allows
/// (1 to 65535 pixels each way) or `rgb` is not that size.
pub fn compressed_image_jpeg(
    seq: u32,
    stamp: Time,
    frame_id: &str,
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Vec<u8> {
    compressed_image(seq, stamp, frame_id, JPEG_FORMAT, |out| {
        encode_jpeg(rgb, width, height, quality, out)
    })
}

/// The `format` of the JPEG CompressedImage messages of this module (an rgb8 camera's, as ROS
/// image_transport writes it).
pub const JPEG_FORMAT: &str = "rgb8; jpeg compressed bgr8";

/// A sensor_msgs/CompressedImage with header (`seq`, `stamp`, `frame_id`), `format`, and the
/// data `write_data` appends to the buffer it is given (the message so far), without copying.
pub fn compressed_image(
    seq: u32,
    stamp: Time,
    frame_id: &str,
    format: &str,
    write_data: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut s = Ser::default();
    s.header(seq, stamp, frame_id).string(format).u32(0);
    let at = s.0.len();
    write_data(&mut s.0);
    let len = (s.0.len() - at) as u32;
    s.0[at - 4..at].copy_from_slice(&len.to_le_bytes());
    s.0
}

/// A JPEG encoder as [`write_bench_bag`] takes it: appends `rgb` (tightly packed rgb8, width,
/// height) encoded at `quality` (1-100) to `out`.
pub type JpegEncoder = dyn Fn(&[u8], u32, u32, u8, &mut Vec<u8>) + Sync;

/// The `image` crate's baseline JPEG encoder, as a [`JpegEncoder`]. Panics when the size is not
/// one JPEG allows or `rgb` is not that size.
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8, out: &mut Vec<u8>) {
    image::codecs::jpeg::JpegEncoder::new_with_quality(out, quality)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .expect("JPEG encoding into memory");
}

/// Delay between a sensor's header stamp and the time the recorder received the message.
pub const LATENCY: Time = 3_000_000;

pub fn joint_name(j: usize) -> String {
    format!("joint{}", j + 1)
}

pub fn joint_position(j: usize, t: f64) -> f64 {
    (0.5 * t + j as f64).sin()
}

pub fn joint_velocity(j: usize, t: f64) -> f64 {
    0.5 * (0.5 * t + j as f64).cos()
}

pub fn joint_effort(j: usize, t: f64) -> f64 {
    0.1 * (j as f64 + 1.0) * t.cos()
}

/// The commanded position leads the measured one by 0.1 s.
pub fn arm_command(j: usize, t: f64) -> f64 {
    joint_position(j, t + 0.1)
}

pub fn gripper_command(t: f64) -> f64 {
    0.5 + 0.5 * (2.0 * t).sin()
}

pub fn ee_position(t: f64) -> [f64; 3] {
    [
        0.3 + 0.1 * t.sin(),
        0.1 * t.cos(),
        0.4 + 0.05 * (2.0 * t).sin(),
    ]
}

/// A rotation about z by `0.2 sin t` radians, as (x, y, z, w).
pub fn ee_orientation(t: f64) -> [f64; 4] {
    let yaw = 0.2 * t.sin();
    [0.0, 0.0, (yaw / 2.0).sin(), (yaw / 2.0).cos()]
}

/// Record times of a topic at `hz` over `seconds` from `start`: `start + round(k / hz)` for
/// every k with `k / hz < seconds`.
pub fn tick_times(start: Time, seconds: f64, hz: f64) -> Vec<Time> {
    if hz <= 0.0 || seconds <= 0.0 {
        return Vec::new();
    }
    let n = (seconds * hz - 1e-9).ceil().max(0.0) as u64;
    (0..n)
        .map(|k| start + (k as f64 * NANOS as f64 / hz).round() as Time)
        .collect()
}

/// Seconds since `start`.
pub fn secs_since(start: Time, t: Time) -> f64 {
    (t - start) as f64 / NANOS as f64
}

/// A teleop episode: joint states, arm and gripper commands, end-effector pose and optionally a
/// camera (raw, and JPEG-compressed too if asked), which the fixtures ([`fixture_spec`]) and the
/// large benchmark bags have.
#[derive(Debug, Clone)]
pub struct TeleopSpec {
    pub seconds: f64,
    pub joint_hz: f64,
    pub cmd_hz: f64,
    pub gripper_hz: f64,
    pub pose_hz: f64,
    pub joints: usize,
    pub start: Time,
    pub compression: Compression,
    /// Uncompressed bytes per chunk.
    pub chunk_size: usize,
    pub write_index: bool,
    /// [`CAMERA_TOPIC`] rgb8 images ([`image_rgb8`]) of `camera_size` (width, height); 0 Hz
    /// means no camera. The k-th camera message (seq k) shows frame k of [`camera_pixel`].
    pub camera_hz: f64,
    pub camera_size: (u32, u32),
    /// With a camera, also write each frame as a JPEG ([`image_jpeg`]) on
    /// [`CAMERA_COMPRESSED_TOPIC`], with the raw message's receive time and header.
    pub camera_compressed: bool,
}

impl Default for TeleopSpec {
    fn default() -> Self {
        TeleopSpec {
            seconds: 3.0,
            joint_hz: 100.0,
            cmd_hz: 50.0,
            gripper_hz: 10.0,
            pose_hz: 30.0,
            joints: 6,
            start: 1_700_000_000 * NANOS,
            compression: Compression::None,
            chunk_size: 32 * 1024,
            write_index: true,
            camera_hz: 0.0,
            camera_size: (640, 480),
            camera_compressed: false,
        }
    }
}

/// The repository's fixture bags: (file name, compression, indexed). All hold the
/// [`fixture_spec`] episode; `examples/make_fixtures.rs` writes them and a test checks they are
/// up to date.
pub const FIXTURES: [(&str, Compression, bool); 4] = [
    ("teleop_none.bag", Compression::None, true),
    ("teleop_bz2.bag", Compression::Bz2, true),
    ("teleop_lz4.bag", Compression::Lz4, true),
    ("teleop_unindexed.bag", Compression::Lz4, false),
];

/// Topic names of the teleop episode, in connection order.
pub const TELEOP_TOPICS: [&str; 4] = ["/joint_states", "/arm_cmd", "/gripper_cmd", "/ee_pose"];
pub const CAMERA_TOPIC: &str = "/camera/image_raw";
pub const CAMERA_COMPRESSED_TOPIC: &str = "/camera/image_raw/compressed";

/// The episode of the fixture bags: the default one (3 s, 6 joints) plus a small camera, 96x64
/// at 30 Hz, raw and JPEG. 64 px is the lowest height video encoders accept, and yuv420p needs
/// even sizes.
pub fn fixture_spec(compression: Compression, write_index: bool) -> TeleopSpec {
    TeleopSpec {
        compression,
        write_index,
        camera_hz: 30.0,
        camera_size: (96, 64),
        camera_compressed: true,
        ..TeleopSpec::default()
    }
}

/// Message `seq` of [`TELEOP_TOPICS`]`[topic]` (0 to 3), received at `time`, for the joints
/// `names`: its values are the value functions at `t = secs_since(start, time)`, header stamps
/// `time - LATENCY`. Panics for another topic.
pub fn teleop_message(
    topic: usize,
    seq: u32,
    time: Time,
    start: Time,
    names: &[String],
) -> Vec<u8> {
    let t = secs_since(start, time);
    let stamp = time - LATENCY;
    let n = names.len();
    match topic {
        0 => joint_state(
            seq,
            stamp,
            names,
            &(0..n).map(|j| joint_position(j, t)).collect::<Vec<_>>(),
            &(0..n).map(|j| joint_velocity(j, t)).collect::<Vec<_>>(),
            &(0..n).map(|j| joint_effort(j, t)).collect::<Vec<_>>(),
        ),
        1 => float64_multi_array(&(0..n).map(|j| arm_command(j, t)).collect::<Vec<_>>()),
        2 => float64(gripper_command(t)),
        3 => pose_stamped(seq, stamp, "base_link", ee_position(t), ee_orientation(t)),
        _ => panic!("teleop topic {topic} out of range"),
    }
}

/// Write the episode; returns the number of messages written. Messages go out in time order
/// (ties in topic order), so the file is the same byte for byte on every run.
pub fn write_teleop_bag(path: &Path, spec: &TeleopSpec) -> Result<u64, BagError> {
    let mut w = BagWriter::create(
        path,
        WriteOptions {
            compression: spec.compression,
            chunk_size: spec.chunk_size,
            write_index: spec.write_index,
        },
    )?;
    let types = [JOINT_STATE, FLOAT64_MULTI_ARRAY, FLOAT64, POSE_STAMPED];
    let mut conns: Vec<u32> = TELEOP_TOPICS
        .iter()
        .zip(types)
        .map(|(topic, ty)| {
            w.add_connection(
                topic,
                ty.datatype,
                ty.md5sum,
                ty.definition,
                Some("/teleop"),
                false,
            )
        })
        .collect();
    let mut rates = vec![spec.joint_hz, spec.cmd_hz, spec.gripper_hz, spec.pose_hz];
    if spec.camera_hz > 0.0 {
        conns.push(w.add_connection(
            CAMERA_TOPIC,
            IMAGE.datatype,
            IMAGE.md5sum,
            IMAGE.definition,
            Some("/camera"),
            false,
        ));
        rates.push(spec.camera_hz);
    }
    let compressed_conn = (spec.camera_hz > 0.0 && spec.camera_compressed).then(|| {
        w.add_connection(
            CAMERA_COMPRESSED_TOPIC,
            COMPRESSED_IMAGE.datatype,
            COMPRESSED_IMAGE.md5sum,
            COMPRESSED_IMAGE.definition,
            Some("/camera"),
            false,
        )
    });
    let mut events: Vec<(Time, usize, u32)> = Vec::new();
    for (topic, &hz) in rates.iter().enumerate() {
        for (k, t) in tick_times(spec.start, spec.seconds, hz)
            .into_iter()
            .enumerate()
        {
            events.push((t, topic, k as u32));
        }
    }
    events.sort_unstable();
    let names: Vec<String> = (0..spec.joints).map(joint_name).collect();
    let (width, height) = spec.camera_size;
    let mut written = 0;
    for &(time, topic, seq) in &events {
        let data = match topic {
            0..=3 => teleop_message(topic, seq, time, spec.start, &names),
            _ => image_rgb8(seq, time - LATENCY, "camera", width, height, seq),
        };
        w.write(conns[topic], time, &data)?;
        written += 1;
        if let (true, Some(conn)) = (topic == TELEOP_TOPICS.len(), compressed_conn) {
            let jpeg = image_jpeg(seq, time - LATENCY, "camera", width, height, seq);
            w.write(conn, time, &jpeg)?;
            written += 1;
        }
    }
    w.finish()?;
    Ok(written)
}

// Benchmark bags: a teleop episode with several textured JPEG cameras, as real recordings have.

/// Side of a [`CameraTexture`] tile in pixels (a power of two: coordinates wrap with a mask).
const TEXTURE_SIDE: usize = 1024;

/// A 32-bit integer hash (lowbias32): the noise of [`CameraTexture`] is a function of it only.
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Adds `amp` times tileable value noise (-1 to 1, `cells` x `cells` lattice points over the
/// tile, smoothstep interpolation) to `field`, a `TEXTURE_SIDE` square.
fn add_value_noise(field: &mut [f32], seed: u32, cells: usize, amp: f32) {
    let n = TEXTURE_SIDE;
    let cell = n / cells;
    let lattice: Vec<f32> = (0..cells * cells)
        .map(|i| hash32(seed ^ hash32(i as u32)) as f32 / u32::MAX as f32 * 2.0 - 1.0)
        .collect();
    let weights: Vec<f32> = (0..cell)
        .map(|i| {
            let f = i as f32 / cell as f32;
            f * f * (3.0 - 2.0 * f)
        })
        .collect();
    for y in 0..n {
        let (cy, wy) = (y / cell, weights[y % cell]);
        let (r0, r1) = (cy * cells, (cy + 1) % cells * cells);
        let row = &mut field[y * n..(y + 1) * n];
        for (x, v) in row.iter_mut().enumerate() {
            let (cx, wx) = (x / cell, weights[x % cell]);
            let cx1 = (cx + 1) % cells;
            let top = lattice[r0 + cx] + wx * (lattice[r0 + cx1] - lattice[r0 + cx]);
            let bottom = lattice[r1 + cx] + wx * (lattice[r1 + cx1] - lattice[r1 + cx]);
            *v += amp * (top + wy * (bottom - top));
        }
    }
}

/// A deterministic textured camera for benchmark bags: real cameras give JPEGs of 30 to 80 KB
/// at 640x480, which flat or smooth synthetic pictures ([`camera_pixel`]) do not come near.
///
/// The texture is a tileable 1024 x 1024 picture: fractal value noise in luma (lattices of 4
/// to 512 cells, amplitudes falling slowly with frequency, as natural pictures do), hard-edged
/// "objects" (thresholded low-frequency noise) and low-frequency colour. Frame `k` is the
/// texture panned by `k` times a per-camera velocity, with a second, faster layer of the same
/// texture blended in at a quarter of its contrast, plus +-3 levels of per-frame sensor noise.
/// Integer and f32 arithmetic only; building the texture takes about 0.15 s, composing a 640x480
/// frame 0.2 ms (release build), far less than encoding it.
#[derive(Debug, Clone)]
pub struct CameraTexture {
    seed: u32,
    /// rgb8, `TEXTURE_SIDE` square.
    rgb: Vec<u8>,
    /// Pixels per frame of the panned layer and of the overlay layer.
    pan: (i64, i64),
    overlay: (i64, i64),
    /// Sensor noise, -3 to 3 levels (triangular), for `2 * TEXTURE_SIDE` pixels.
    noise: Vec<i8>,
}

impl CameraTexture {
    /// The texture of camera `seed` (each camera of a bag takes its index): about 0.2 s of work.
    pub fn new(seed: u32) -> Self {
        let n = TEXTURE_SIDE;
        let s = hash32(seed.wrapping_mul(0x9e37_79b9) ^ 0x5bd1_e995);
        let mut luma = vec![0f32; n * n];
        for (k, cells) in [4usize, 8, 16, 32, 64, 128, 256, 512]
            .into_iter()
            .enumerate()
        {
            // Amplitude ~ wavelength^0.6: more fine detail than 1/f noise, as edges give.
            let amp = ((n / cells) as f32).powf(0.6);
            add_value_noise(&mut luma, s ^ hash32(k as u32 + 1), cells, amp);
        }
        let mut objects = vec![0f32; n * n];
        add_value_noise(&mut objects, s ^ 0x000b_1ec7, 8, 1.0);
        add_value_noise(&mut objects, s ^ 0x000b_1ec8, 32, 0.3);
        let mut cr = vec![0f32; n * n];
        let mut cb = vec![0f32; n * n];
        add_value_noise(&mut cr, s ^ 0xc010, 4, 1.0);
        add_value_noise(&mut cr, s ^ 0xc011, 16, 0.4);
        add_value_noise(&mut cb, s ^ 0xc020, 4, 1.0);
        add_value_noise(&mut cb, s ^ 0xc021, 16, 0.4);
        // Luma: scale the fractal sum to a standard deviation of about 40 levels.
        let mean = luma.iter().sum::<f32>() / luma.len() as f32;
        let var = luma.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / luma.len() as f32;
        let scale = 40.0 / var.sqrt().max(1e-6);
        let mut rgb = Vec::with_capacity(n * n * 3);
        for i in 0..n * n {
            let o = objects[i];
            let edge = if o > 0.25 {
                45.0
            } else if o < -0.3 {
                -40.0
            } else {
                0.0
            };
            let y = 120.0 + (luma[i] - mean) * scale + edge;
            let (r, b) = (cr[i] * 30.0, cb[i] * 30.0);
            for v in [y + 1.40 * r, y - 0.34 * b - 0.71 * r, y + 1.77 * b] {
                rgb.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
        let v = |h: u32, span: u32| i64::from(h % span) - i64::from(span / 2);
        let h = hash32(s ^ 0x7e10);
        let mut pan = (v(h, 7), v(h >> 8, 5));
        if pan == (0, 0) {
            pan = (2, 1);
        }
        let overlay = (pan.0 - 5 - v(h >> 16, 3), 4 + v(h >> 24, 3) - pan.1);
        let noise = (0..6 * n as u32)
            .map(|i| {
                let h = hash32(s ^ 0x005e_0000 ^ hash32(i));
                ((h & 3) + ((h >> 2) & 3)) as i8 - 3
            })
            .collect();
        CameraTexture {
            seed: s,
            rgb,
            pan,
            overlay,
            noise,
        }
    }

    /// Frame `frame` as tightly packed rgb8, `width` x `height`, row-major, into `out`
    /// (cleared first). Pictures wider or higher than 1024 px repeat the tile.
    pub fn picture(&self, frame: u32, width: u32, height: u32, out: &mut Vec<u8>) {
        let (w, h) = (width as usize, height as usize);
        let (n, mask) = (TEXTURE_SIDE, TEXTURE_SIDE - 1);
        let f = i64::from(frame);
        // Offsets as wrapping usizes: `(x + off) & mask` is then the euclidean remainder.
        let off = |v: i64| (v * f) as u64 as usize;
        let (ax, ay) = (off(self.pan.0), off(self.pan.1));
        let (bx, by) = (off(self.overlay.0), off(self.overlay.1).wrapping_add(n / 2));
        let frame_hash = hash32(self.seed ^ hash32(frame));
        out.clear();
        out.resize(w * h * 3, 0);
        for (y, row) in out.chunks_exact_mut(w * 3).enumerate() {
            let ra = (y.wrapping_add(ay) & mask) * n * 3;
            let rb = (y.wrapping_add(by) & mask) * n * 3;
            // Sensor noise: a run of the noise table starting at a random place per row.
            let mut rn = 3 * (hash32(frame_hash ^ y as u32) as usize & mask);
            let mut x = 0;
            // Runs of pixels along which neither layer nor the noise wraps.
            while x < w {
                let xa = x.wrapping_add(ax) & mask;
                let xb = x.wrapping_add(bx) & mask;
                let run = (n - xa).min(n - xb).min(w - x).min(2 * n - rn / 3);
                let dst = &mut row[3 * x..3 * (x + run)];
                let a = &self.rgb[ra + 3 * xa..ra + 3 * (xa + run)];
                let b = &self.rgb[rb + 3 * xb..rb + 3 * (xb + run)];
                let noise = &self.noise[rn..rn + 3 * run];
                for (((o, &a), &b), &e) in dst.iter_mut().zip(a).zip(b).zip(noise) {
                    let v = i16::from(a) + ((i16::from(b) - 128) >> 2) + i16::from(e);
                    *o = v.clamp(0, 255) as u8;
                }
                x += run;
                rn = 0;
            }
        }
    }
}

/// Camera names of a benchmark bag: an ALOHA-like rig's three, then `/cam_4`, `/cam_5`, ...
pub const BENCH_CAMERAS: [&str; 3] = ["/cam_high", "/cam_left_wrist", "/cam_right_wrist"];

/// Name of camera `i` of a benchmark bag (see [`BENCH_CAMERAS`]).
pub fn bench_camera_name(i: usize) -> String {
    BENCH_CAMERAS
        .get(i)
        .map_or_else(|| format!("/cam_{}", i + 1), |s| s.to_string())
}

/// Topic of camera `i` of a benchmark bag: `<name>/image_raw/compressed`.
pub fn bench_camera_topic(i: usize) -> String {
    format!("{}/image_raw/compressed", bench_camera_name(i))
}

/// A benchmark teleop episode: [`TELEOP_TOPICS`] (values as in the fixtures, through
/// [`teleop_message`]) and `cameras` JPEG cameras ([`bench_camera_topic`], pictures of
/// [`CameraTexture::new`]`(i)`, frame `k` = message seq `k`). Camera `i` runs `i * 5` ms behind
/// camera 0, as unsynchronised cameras do; header stamps are receive time minus [`LATENCY`].
#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub seconds: f64,
    pub joints: usize,
    pub joint_hz: f64,
    pub cmd_hz: f64,
    pub gripper_hz: f64,
    pub pose_hz: f64,
    pub cameras: usize,
    pub camera_hz: f64,
    pub camera_size: (u32, u32),
    pub jpeg_quality: u8,
    pub start: Time,
    pub compression: Compression,
    /// Uncompressed bytes per chunk.
    pub chunk_size: usize,
    /// JPEG encoding threads; 0 means one per core.
    pub threads: usize,
}

impl Default for BenchSpec {
    /// 60 s, 7 joints at 200 Hz, arm command 50 Hz, gripper 10 Hz, pose 30 Hz, three 640x480
    /// cameras at 30 Hz, JPEG quality 80 (ROS compressed_image_transport's default), lz4 chunks
    /// of 1 MiB.
    fn default() -> Self {
        BenchSpec {
            seconds: 60.0,
            joints: 7,
            joint_hz: 200.0,
            cmd_hz: 50.0,
            gripper_hz: 10.0,
            pose_hz: 30.0,
            cameras: 3,
            camera_hz: 30.0,
            camera_size: (640, 480),
            jpeg_quality: 80,
            start: 1_700_000_000 * NANOS,
            compression: Compression::Lz4,
            chunk_size: 1024 * 1024,
            threads: 0,
        }
    }
}

/// How far [`write_bench_bag`] has got.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BenchProgress {
    /// Episode seconds written (receive time of the last message since the start).
    pub seconds: f64,
    pub messages: u64,
    /// Camera messages written and their bytes (serialized messages, JPEG included).
    pub camera_messages: u64,
    pub camera_bytes: u64,
    /// Bytes written to the file (closed chunks; the whole file once finished).
    pub file_bytes: u64,
}

/// Write the benchmark episode `spec` to `path`, calling `progress` after every message.
/// Messages go out in time order (ties in topic order, cameras last); camera frames are
/// composed and JPEG-encoded by `encode` (e.g. [`encode_jpeg`]) on `spec.threads` worker
/// threads a few frames ahead of the writer, so the file is the same on every run whatever the
/// thread count.
pub fn write_bench_bag(
    path: &Path,
    spec: &BenchSpec,
    encode: &JpegEncoder,
    progress: &mut dyn FnMut(&BenchProgress),
) -> Result<BenchProgress, BagError> {
    let (width, height) = spec.camera_size;
    let fail = |detail: String| BagError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    };
    let jpeg_size = |v: u32| (1..=65535).contains(&v);
    if spec.cameras > 0 && !(jpeg_size(width) && jpeg_size(height)) {
        return Err(fail(format!(
            "camera size {width}x{height} is not a JPEG size"
        )));
    }
    let mut w = BagWriter::create(
        path,
        WriteOptions {
            compression: spec.compression,
            chunk_size: spec.chunk_size,
            write_index: true,
        },
    )?;
    let types = [JOINT_STATE, FLOAT64_MULTI_ARRAY, FLOAT64, POSE_STAMPED];
    let mut conns: Vec<u32> = TELEOP_TOPICS
        .iter()
        .zip(types)
        .map(|(topic, ty)| {
            let callerid = Some("/teleop");
            w.add_connection(
                topic,
                ty.datatype,
                ty.md5sum,
                ty.definition,
                callerid,
                false,
            )
        })
        .collect();
    let mut events: Vec<(Time, usize, u32)> = Vec::new();
    let rates = [spec.joint_hz, spec.cmd_hz, spec.gripper_hz, spec.pose_hz];
    for (topic, &hz) in rates.iter().enumerate() {
        let times = tick_times(spec.start, spec.seconds, hz);
        events.extend(
            times
                .into_iter()
                .enumerate()
                .map(|(k, t)| (t, topic, k as u32)),
        );
    }
    let mut frame_ids = Vec::new();
    for i in 0..spec.cameras {
        let name = bench_camera_name(i);
        let callerid = format!("{name}/driver");
        let ty = COMPRESSED_IMAGE;
        conns.push(w.add_connection(
            &bench_camera_topic(i),
            ty.datatype,
            ty.md5sum,
            ty.definition,
            Some(&callerid),
            false,
        ));
        frame_ids.push(format!("{}_optical_frame", name.trim_start_matches('/')));
        let phase = i as Time * 5_000_000;
        let times = tick_times(spec.start + phase, spec.seconds, spec.camera_hz);
        let n = TELEOP_TOPICS.len() + i;
        events.extend(times.into_iter().enumerate().map(|(k, t)| (t, n, k as u32)));
    }
    events.sort_unstable();
    // Camera jobs in write order: (camera, seq, receive time).
    let jobs: Vec<(usize, u32, Time)> = events
        .iter()
        .filter(|e| e.1 >= TELEOP_TOPICS.len())
        .map(|&(t, topic, seq)| (topic - TELEOP_TOPICS.len(), seq, t))
        .collect();
    let threads = match spec.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let textures: Vec<CameraTexture> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.cameras)
            .map(|i| s.spawn(move || CameraTexture::new(i as u32)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("texture thread"))
            .collect()
    });
    let names: Vec<String> = (0..spec.joints).map(joint_name).collect();
    // Frames encoded ahead of the writer at most: bounds memory whatever the bag's length.
    let lookahead = 4 * threads;
    let mut done = BenchProgress::default();
    std::thread::scope(|s| -> Result<(), BagError> {
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<usize>();
        let (res_tx, res_rx) = crossbeam_channel::unbounded::<(usize, Vec<u8>)>();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (job_rx, res_tx) = (job_rx.clone(), res_tx.clone());
                let (jobs, textures, frame_ids) = (&jobs, &textures, &frame_ids);
                s.spawn(move || {
                    let mut rgb = Vec::new();
                    for j in job_rx {
                        let (cam, seq, time) = jobs[j];
                        textures[cam].picture(seq, width, height, &mut rgb);
                        let stamp = time - LATENCY;
                        let msg =
                            compressed_image(seq, stamp, &frame_ids[cam], JPEG_FORMAT, |out| {
                                encode(&rgb, width, height, spec.jpeg_quality, out)
                            });
                        if res_tx.send((j, msg)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(res_tx);
        let mut fed = jobs.len().min(lookahead);
        for j in 0..fed {
            let _ = job_tx.send(j);
        }
        let mut next_job = 0;
        let mut ready: std::collections::HashMap<usize, Vec<u8>> = Default::default();
        for &(time, topic, seq) in &events {
            let data = if topic < TELEOP_TOPICS.len() {
                teleop_message(topic, seq, time, spec.start, &names)
            } else {
                let msg = loop {
                    if let Some(m) = ready.remove(&next_job) {
                        break m;
                    }
                    match res_rx.recv_timeout(std::time::Duration::from_secs(1)) {
                        Ok((j, m)) => {
                            ready.insert(j, m);
                        }
                        Err(_) if workers.iter().any(|h| h.is_finished()) => {
                            return Err(fail("a JPEG worker thread stopped".into()));
                        }
                        Err(_) => {}
                    }
                };
                next_job += 1;
                if fed < jobs.len() {
                    let _ = job_tx.send(fed);
                    fed += 1;
                }
                done.camera_messages += 1;
                done.camera_bytes += msg.len() as u64;
                msg
            };
            w.write(conns[topic], time, &data)?;
            done.messages += 1;
            done.seconds = secs_since(spec.start, time);
            done.file_bytes = w.position();
            progress(&done);
        }
        Ok(())
    })?;
    w.finish()?;
    done.file_bytes = std::fs::metadata(path)
        .map_err(|source| BagError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bag;
    use crate::camera::{ImageDecoder, RgbImage};
    use crate::msg::Schema;

    fn f64_at(b: &[u8], at: usize) -> f64 {
        f64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn tick_counts() {
        assert_eq!(tick_times(0, 3.0, 100.0).len(), 300);
        assert_eq!(tick_times(0, 3.0, 30.0).len(), 90);
        let t = tick_times(5, 1.0, 3.0);
        assert_eq!(t, vec![5, 5 + 333_333_333, 5 + 666_666_667]);
        assert!(tick_times(0, 1.0, 0.0).is_empty());
    }

    #[test]
    fn definitions_look_like_gendeps_output() {
        assert!(JOINT_STATE.definition.contains("\nHeader header\n"));
        assert_eq!(JOINT_STATE.definition.matches("\nMSG: ").count(), 1);
        assert_eq!(POSE_STAMPED.definition.matches("\nMSG: ").count(), 4);
        assert_eq!(FLOAT64_MULTI_ARRAY.definition.matches("\nMSG: ").count(), 2);
        assert_eq!(COMPRESSED_IMAGE.definition.matches("\nMSG: ").count(), 1);
        assert!(COMPRESSED_IMAGE
            .definition
            .contains("\n                     # Header frame_id should be optical frame"));
        for ty in [
            HEADER,
            JOINT_STATE,
            FLOAT64,
            FLOAT64_MULTI_ARRAY,
            POSE_STAMPED,
            IMAGE,
            COMPRESSED_IMAGE,
        ] {
            assert_eq!(ty.md5sum.len(), 32);
            Schema::parse(ty.datatype, ty.definition)
                .unwrap_or_else(|e| panic!("{}: {e}", ty.datatype));
        }
    }

    /// The md5sums match what real recorders wrote for these types.
    #[test]
    fn md5sums_match_real_bags() {
        let Some(shared) = crate::test_skip::shared_bags() else {
            return;
        };
        let b = bag::open(&shared.join("synthetic_official/official_none.bag")).unwrap();
        for ty in [JOINT_STATE, POSE_STAMPED, IMAGE, COMPRESSED_IMAGE] {
            let c = b
                .summary()
                .connections
                .iter()
                .find(|c| c.datatype == ty.datatype)
                .unwrap();
            assert_eq!(c.md5sum().unwrap(), ty.md5sum, "{}", ty.datatype);
        }
    }

    #[test]
    fn teleop_bag_values_are_the_value_functions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.bag");
        let spec = TeleopSpec {
            compression: Compression::Lz4,
            ..Default::default()
        };
        let n = write_teleop_bag(&p, &spec).unwrap();
        assert_eq!(n, 300 + 150 + 30 + 90);
        let mut b = bag::open(&p).unwrap();
        let s = b.summary().clone();
        assert_eq!(s.topics(), TELEOP_TOPICS.to_vec());
        assert!(s.blocks.len() >= 3, "{} chunks", s.blocks.len());
        let counts: Vec<u64> = s.stats.iter().map(|x| x.count).collect();
        assert_eq!(counts, vec![300, 150, 30, 90]);
        let mut out = Vec::new();
        b.read_window(0, Time::MAX, &[true; 4], &mut out).unwrap();
        let js: Vec<_> = out.iter().filter(|m| m.conn == 0).collect();
        let m = js[37];
        let t = secs_since(spec.start, m.time);
        let d = m.data();
        // seq, stamp, frame_id "" then 6 names "jointN" (4 + 6 bytes each).
        assert_eq!(u32::from_le_bytes(d[0..4].try_into().unwrap()), 37);
        let sec = u32::from_le_bytes(d[4..8].try_into().unwrap()) as i64;
        let nsec = u32::from_le_bytes(d[8..12].try_into().unwrap()) as i64;
        assert_eq!(sec * NANOS + nsec, m.time - LATENCY);
        let pos_at = 16 + 4 + 6 * 10 + 4;
        for j in 0..6 {
            assert_eq!(f64_at(d, pos_at + 8 * j), joint_position(j, t));
        }
        let g = out
            .iter()
            .find(|m| m.conn == 2 && m.time > spec.start)
            .unwrap();
        assert_eq!(f64_at(g.data(), 0), gripper_command(0.1));
        let cmd = out.iter().filter(|m| m.conn == 1).nth(5).unwrap();
        let tc = secs_since(spec.start, cmd.time);
        assert_eq!(f64_at(cmd.data(), 12 + 8 * 2), arm_command(2, tc));
    }

    #[test]
    fn teleop_bag_is_deterministic_and_camera_sized() {
        let dir = tempfile::tempdir().unwrap();
        let spec = TeleopSpec {
            seconds: 0.5,
            camera_hz: 10.0,
            camera_size: (64, 48),
            compression: Compression::Bz2,
            ..Default::default()
        };
        let a = dir.path().join("a.bag");
        let b = dir.path().join("b.bag");
        write_teleop_bag(&a, &spec).unwrap();
        write_teleop_bag(&b, &spec).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let mut r = bag::open(&a).unwrap();
        let cam = r.summary().connections_on(CAMERA_TOPIC)[0];
        let (f, _) = r.first_and_last(cam).unwrap().unwrap();
        // Header (4 + 8 + 4 + 6) + height, width, "rgb8", is_bigendian, step, data length.
        let d = f.data();
        assert_eq!(d.len(), 22 + 4 + 4 + 8 + 1 + 4 + 4 + 64 * 48 * 3);
        assert!(r
            .summary()
            .connections_on(CAMERA_COMPRESSED_TOPIC)
            .is_empty());
    }

    fn decoder(ty: MsgType) -> ImageDecoder {
        let schema = Schema::parse(ty.datatype, ty.definition).unwrap();
        ImageDecoder::new(ty.datatype, &schema).unwrap()
    }

    fn decode(ty: MsgType, msg: &[u8]) -> RgbImage {
        let mut img = RgbImage::new();
        decoder(ty).decode(msg, &mut img).unwrap();
        img
    }

    #[test]
    fn frame_codes() {
        assert_eq!(camera_frame_code(0), 20);
        assert_eq!(camera_frame_code(1), 22);
        assert_eq!(camera_frame_code(89), 198);
        assert_eq!(camera_frame_code(109), 238);
        assert_eq!(camera_frame_code(110), 20);
        assert_eq!(camera_frame_code(u32::MAX), 20 + 2 * (u32::MAX % 110) as u8);
    }

    #[test]
    fn camera_picture_is_smooth_moving_and_blue_coded() {
        let (w, h) = (96, 64);
        let mut prev: Option<Vec<u8>> = None;
        for frame in [0, 1, 2, 45, 89, 90, 109, 110, 5000, u32::MAX] {
            let img = camera_rgb(frame, w, h);
            assert_eq!(img.len(), (w * h * 3) as usize);
            for y in 0..h {
                for x in 0..w {
                    let p = camera_pixel(frame, x, y);
                    let i = ((y * w + x) * 3) as usize;
                    assert_eq!(img[i..i + 3], p, "frame {frame} ({x}, {y})");
                    assert_eq!(p[2], camera_frame_code(frame));
                    assert!((44..=212).contains(&p[0]) && (44..=212).contains(&p[1]));
                    // Neighbours differ by a few levels at most: no edges, no noise.
                    for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                        if nx < w && ny < h {
                            let q = camera_pixel(frame, nx, ny);
                            assert!(p[0].abs_diff(q[0]) <= 5 && p[1].abs_diff(q[1]) <= 5);
                        }
                    }
                }
            }
            // Textured: red and green each span a good part of their range.
            for c in 0..2 {
                let v = img.iter().skip(c).step_by(3);
                let (lo, hi) = (v.clone().min().unwrap(), v.max().unwrap());
                assert!(hi - lo >= 40, "frame {frame} channel {c}: {lo}..{hi}");
            }
            // Moving: red and green change by several levels on average from frame to frame.
            if let (Some(p), 1 | 2) = (&prev, frame) {
                let diff: u64 = (0..img.len())
                    .filter(|i| i % 3 != 2)
                    .map(|i| u64::from(img[i].abs_diff(p[i])))
                    .sum();
                let mean = diff as f64 / (img.len() * 2 / 3) as f64;
                assert!(mean > 4.0, "frame {frame}: mean change {mean}");
            }
            prev = Some(img);
        }
        // Any size, row y is row 0 of the picture shifted by 2 y.
        assert_eq!(camera_rgb(3, 5, 1), camera_rgb(3, 7, 2)[..15]);
        assert_eq!(camera_rgb(3, 5, 2)[15..], camera_rgb(3, 9, 1)[6..21]);
        assert!(camera_rgb(0, 0, 10).is_empty() && camera_rgb(0, 10, 0).is_empty());
        let big = camera_rgb(7, 640, 480);
        let i = (479 * 640 + 639) * 3;
        assert_eq!(big[i..i + 3], camera_pixel(7, 639, 479));
    }

    #[test]
    fn raw_image_decodes_to_camera_pixels() {
        for (frame, w, h) in [(0, 96, 64), (57, 96, 64), (3, 31, 7)] {
            let msg = image_rgb8(frame, 5, "camera", w, h, frame);
            let img = decode(IMAGE, &msg);
            assert_eq!((img.width, img.height), (w, h));
            assert_eq!(img.data, camera_rgb(frame, w, h));
            assert_eq!(
                img.pixel(w - 1, h - 1),
                Some(camera_pixel(frame, w - 1, h - 1))
            );
        }
    }

    #[test]
    fn jpeg_image_decodes_close_to_camera_pixels() {
        let (w, h) = (96, 64);
        for frame in [0, 1, 30, 57, 89, 109] {
            let msg = image_jpeg(frame, 5, "camera", w, h, frame);
            // Header, then the format string, then the JPEG.
            let format = b"rgb8; jpeg compressed bgr8";
            assert_eq!(&msg[22..26], &(format.len() as u32).to_le_bytes());
            assert_eq!(&msg[26..26 + format.len()], format);
            assert_eq!(&msg[30 + format.len()..32 + format.len()], &[0xFF, 0xD8]);
            let img = decode(COMPRESSED_IMAGE, &msg);
            assert_eq!((img.width, img.height), (w, h));
            let want = camera_rgb(frame, w, h);
            let err = |c: usize| -> Vec<u8> {
                (c..want.len())
                    .step_by(3)
                    .map(|i| img.data[i].abs_diff(want[i]))
                    .collect()
            };
            let mean = |e: &[u8]| e.iter().map(|&v| f64::from(v)).sum::<f64>() / e.len() as f64;
            let all: Vec<u8> = (0..3).flat_map(err).collect();
            assert!(mean(&all) < 3.0, "frame {frame}: mean error {}", mean(&all));
            // Blue is the frame code on average and close to it everywhere: the encoder's
            // rounding leaves a few pixels at block corners 3 or 4 levels off.
            let blue = err(2);
            assert!(
                mean(&blue) < 1.0,
                "frame {frame}: blue mean error {}",
                mean(&blue)
            );
            let off = blue.iter().filter(|&&e| e > 2).count();
            assert!(
                off * 100 < blue.len(),
                "frame {frame}: {off} blue pixels off by > 2"
            );
            assert!(blue.iter().all(|&e| e <= 4), "frame {frame}");
            let mean_blue = (2..want.len())
                .step_by(3)
                .map(|i| f64::from(img.data[i]))
                .sum::<f64>()
                / (want.len() / 3) as f64;
            let code = f64::from(camera_frame_code(frame));
            assert!((mean_blue - code).abs() < 0.5, "frame {frame}: {mean_blue}");
        }
    }

    #[test]
    fn camera_topics_share_times_and_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bag");
        let spec = fixture_spec(Compression::Lz4, true);
        let n = write_teleop_bag(&p, &spec).unwrap();
        assert_eq!(n, 300 + 150 + 30 + 90 + 90 + 90);
        let mut b = bag::open(&p).unwrap();
        let s = b.summary().clone();
        let mut topics = TELEOP_TOPICS.to_vec();
        topics.extend([CAMERA_TOPIC, CAMERA_COMPRESSED_TOPIC]);
        assert_eq!(s.topics(), topics);
        let raw = s.connections_on(CAMERA_TOPIC)[0];
        let jpeg = s.connections_on(CAMERA_COMPRESSED_TOPIC)[0];
        assert_eq!(s.connections[jpeg].datatype, COMPRESSED_IMAGE.datatype);
        assert_eq!(
            s.connections[jpeg].md5sum().unwrap(),
            COMPRESSED_IMAGE.md5sum
        );
        let mut out = Vec::new();
        b.read_window(0, Time::MAX, &[true; 6], &mut out).unwrap();
        let raws: Vec<_> = out.iter().filter(|m| m.conn == raw).collect();
        let jpegs: Vec<_> = out.iter().filter(|m| m.conn == jpeg).collect();
        assert_eq!((raws.len(), jpegs.len()), (90, 90));
        let times = tick_times(spec.start, spec.seconds, spec.camera_hz);
        for (k, (r, j)) in raws.iter().zip(&jpegs).enumerate() {
            assert_eq!((r.time, j.time), (times[k], times[k]));
            // Same header: seq k, stamp 3 ms before receipt, frame_id "camera".
            assert_eq!(r.data()[..22], j.data()[..22]);
            assert_eq!(r.data()[..4], (k as u32).to_le_bytes());
            let stamp = Ser::default().time(r.time - LATENCY).0.clone();
            assert_eq!(r.data()[4..12], stamp[..]);
        }
        // The raw message is written first and the JPEG right after it.
        let at = out.iter().position(|m| m.conn == raw).unwrap();
        assert_eq!(out[at + 1].conn, jpeg);
        // Both hold the same picture.
        let (r, j) = (
            decode(IMAGE, raws[40].data()),
            decode(COMPRESSED_IMAGE, jpegs[40].data()),
        );
        assert_eq!(r.data, camera_rgb(40, 96, 64));
        assert_eq!((j.width, j.height), (96, 64));
        let diff: u64 = r
            .data
            .iter()
            .zip(&j.data)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        assert!(
            diff < r.data.len() as u64,
            "mean difference {diff} / {}",
            r.data.len()
        );
    }

    #[test]
    fn camera_texture_is_textured_correlated_and_moving() {
        let (w, h) = (320u32, 240u32);
        let tex = CameraTexture::new(0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        tex.picture(10, w, h, &mut a);
        tex.picture(11, w, h, &mut b);
        assert_eq!(a.len(), (w * h * 3) as usize);
        let mut again = Vec::new();
        tex.picture(10, w, h, &mut again);
        assert_eq!(a, again, "deterministic");
        let mean_abs = |x: &[u8], y: &[u8]| {
            x.iter()
                .zip(y)
                .map(|(p, q)| f64::from(p.abs_diff(*q)))
                .sum::<f64>()
                / x.len() as f64
        };
        // Spatially correlated: neighbours are much closer than random pixels...
        let row = (w * 3) as usize;
        let horizontal = mean_abs(&a[3..], &a[..a.len() - 3]);
        let far = mean_abs(&a[row * 120..], &a[..a.len() - row * 120]);
        assert!(
            horizontal < 10.0 && far > 2.0 * horizontal,
            "{horizontal} {far}"
        );
        // ... but not smooth: sensor noise and fine texture.
        assert!(horizontal > 2.0, "{horizontal}");
        let (lo, hi) = (a.iter().min().unwrap(), a.iter().max().unwrap());
        assert!(hi - lo > 150, "contrast {lo}..{hi}");
        // Moving: consecutive frames differ.
        assert!(mean_abs(&a, &b) > 5.0, "{}", mean_abs(&a, &b));
        // Cameras differ.
        let mut c = Vec::new();
        CameraTexture::new(1).picture(10, w, h, &mut c);
        assert!(mean_abs(&a, &c) > 20.0);
        // Real-camera JPEG sizes: about 30 to 80 KB at 640x480, a quarter of that here.
        let mut jpeg = Vec::new();
        encode_jpeg(&a, w, h, 80, &mut jpeg);
        assert!(
            (6_000..25_000).contains(&jpeg.len()),
            "{} bytes",
            jpeg.len()
        );
        // Any size: the tile repeats past 1024 px.
        tex.picture(3, 1500, 2, &mut c);
        assert_eq!(c.len(), 1500 * 2 * 3);
    }

    #[test]
    fn bench_bag_holds_every_topic_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bench.bag");
        let spec = BenchSpec {
            seconds: 0.5,
            cameras: 4,
            camera_size: (96, 64),
            chunk_size: 64 * 1024,
            threads: 3,
            ..BenchSpec::default()
        };
        let mut calls = 0;
        let done = write_bench_bag(&p, &spec, &encode_jpeg, &mut |_| calls += 1).unwrap();
        // 7 joints at 200 Hz, 50 Hz, 10 Hz, 30 Hz and 4 cameras at 30 Hz over 0.5 s.
        assert_eq!(done.messages, 100 + 25 + 5 + 15 + 4 * 15);
        assert_eq!((calls, done.camera_messages), (done.messages, 60));
        assert_eq!(done.file_bytes, std::fs::metadata(&p).unwrap().len());
        let mut b = bag::open(&p).unwrap();
        let s = b.summary().clone();
        let mut topics = TELEOP_TOPICS.to_vec();
        let cams = [
            "/cam_high/image_raw/compressed",
            "/cam_left_wrist/image_raw/compressed",
            "/cam_right_wrist/image_raw/compressed",
            "/cam_4/image_raw/compressed",
        ];
        topics.extend(cams);
        assert_eq!(s.topics(), topics);
        assert!(s.compression_counts().iter().all(|c| c.0 == "lz4"));
        let mut out = Vec::new();
        b.read_window(0, Time::MAX, &[true; 8], &mut out).unwrap();
        assert_eq!(out.len() as u64, done.messages);
        assert!(out.windows(2).all(|m| m[0].time <= m[1].time));
        let names: Vec<String> = (0..7).map(joint_name).collect();
        for (i, topic) in cams.iter().enumerate() {
            let conn = s.connections_on(topic)[0];
            assert_eq!(s.connections[conn].datatype, COMPRESSED_IMAGE.datatype);
            let msgs: Vec<_> = out.iter().filter(|m| m.conn == conn).collect();
            let times = tick_times(spec.start + i as Time * 5_000_000, 0.5, 30.0);
            assert_eq!(msgs.iter().map(|m| m.time).collect::<Vec<_>>(), times);
            let tex = CameraTexture::new(i as u32);
            for (k, m) in msgs.iter().enumerate().step_by(7) {
                assert_eq!(m.data()[..4], (k as u32).to_le_bytes());
                let img = decode(COMPRESSED_IMAGE, m.data());
                assert_eq!((img.width, img.height), (96, 64));
                let mut want = Vec::new();
                tex.picture(k as u32, 96, 64, &mut want);
                let err = img
                    .data
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| f64::from(a.abs_diff(*b)))
                    .sum::<f64>()
                    / want.len() as f64;
                assert!(err < 6.0, "{topic} frame {k}: mean error {err}");
            }
        }
        // The numeric topics are the fixtures' messages, for 7 joints.
        let js = s.connections_on("/joint_states")[0];
        let m = out.iter().find(|m| m.conn == js).unwrap();
        assert_eq!(
            m.data(),
            &teleop_message(0, 0, m.time, spec.start, &names)[..]
        );
    }
}
