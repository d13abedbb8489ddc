//! Synthetic ROS1 messages and a synthetic teleop episode, for fixtures, tests and benchmarks.
//!
//! Every value is a deterministic function of time so tests can compute what a converter must
//! output. In the value functions `t` is seconds since [`TeleopSpec::start`] of the message's
//! receive (record) time; header stamps are the record time minus [`LATENCY`].
//!
//! Definitions are the full texts `gendeps --cat` gives on ROS Noetic (comments included, `MSG:`
//! sections for dependencies) and the md5sums are the ROS ones (checked against real bags).

use std::path::Path;

use crate::bag::write::{BagWriter, WriteOptions};
use crate::bag::{BagError, Compression};
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
/// (`../shared/bags/synthetic*/`); only used for large-payload benchmark bags.
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

/// An rgb8 image whose pixels are pseudo-random bytes from `seed` (incompressible, so file
/// sizes stay predictable whatever the chunk compression).
pub fn image_rgb8(
    seq: u32,
    stamp: Time,
    frame_id: &str,
    width: u32,
    height: u32,
    seed: u64,
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
    let body = s.0.len();
    s.0.resize(body + len, 0);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for px in s.0[body..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        px.copy_from_slice(&x.to_le_bytes()[..px.len()]);
    }
    s.0
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
/// camera (only for large benchmark bags).
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
    /// `/camera/image_raw` rgb8 images of `camera_size` (width, height); 0 Hz means no camera.
    pub camera_hz: f64,
    pub camera_size: (u32, u32),
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
        }
    }
}

/// The repository's fixture bags: (file name, compression, indexed). All hold the default
/// episode; `examples/make_fixtures.rs` writes them and a test checks they are up to date.
pub const FIXTURES: [(&str, Compression, bool); 4] = [
    ("teleop_none.bag", Compression::None, true),
    ("teleop_bz2.bag", Compression::Bz2, true),
    ("teleop_lz4.bag", Compression::Lz4, true),
    ("teleop_unindexed.bag", Compression::Lz4, false),
];

/// Topic names of the teleop episode, in connection order.
pub const TELEOP_TOPICS: [&str; 4] = ["/joint_states", "/arm_cmd", "/gripper_cmd", "/ee_pose"];
pub const CAMERA_TOPIC: &str = "/camera/image_raw";

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
    let n = spec.joints;
    for &(time, topic, seq) in &events {
        let t = secs_since(spec.start, time);
        let stamp = time - LATENCY;
        let data = match topic {
            0 => joint_state(
                seq,
                stamp,
                &names,
                &(0..n).map(|j| joint_position(j, t)).collect::<Vec<_>>(),
                &(0..n).map(|j| joint_velocity(j, t)).collect::<Vec<_>>(),
                &(0..n).map(|j| joint_effort(j, t)).collect::<Vec<_>>(),
            ),
            1 => float64_multi_array(&(0..n).map(|j| arm_command(j, t)).collect::<Vec<_>>()),
            2 => float64(gripper_command(t)),
            3 => pose_stamped(seq, stamp, "base_link", ee_position(t), ee_orientation(t)),
            _ => image_rgb8(
                seq,
                stamp,
                "camera",
                spec.camera_size.0,
                spec.camera_size.1,
                seq as u64,
            ),
        };
        w.write(conns[topic], time, &data)?;
    }
    w.finish()?;
    Ok(events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bag;

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
        for ty in [
            HEADER,
            JOINT_STATE,
            FLOAT64,
            FLOAT64_MULTI_ARRAY,
            POSE_STAMPED,
            IMAGE,
        ] {
            assert_eq!(ty.md5sum.len(), 32);
        }
    }

    /// The md5sums match what real recorders wrote for these types.
    #[test]
    fn md5sums_match_real_bags() {
        let root = Path::new("../shared/bags/synthetic_official/official_none.bag");
        if !root.exists() {
            eprintln!("skipping: ../shared/bags is absent");
            return;
        }
        let b = bag::open(root).unwrap();
        for ty in [JOINT_STATE, POSE_STAMPED, IMAGE] {
            let c = b
                .summary()
                .connections
                .iter()
                .find(|c| c.datatype == ty.datatype)
                .unwrap();
            assert_eq!(c.md5sum, ty.md5sum, "{}", ty.datatype);
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
        assert!(s.chunks.len() >= 3, "{} chunks", s.chunks.len());
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
    }
}
