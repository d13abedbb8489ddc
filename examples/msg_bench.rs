//! Micro benchmark of the message decoder: nanoseconds per message for compiled field paths.
//!
//! ```sh
//! cargo run --release --example msg_bench [-- ITERATIONS]
//! ```
//!
//! A timing loop, not a test: the figures go to docs/benchmarks.md. Payloads are built here
//! (ROS1, and CDR in both byte orders), so the example needs nothing but the library.

use std::hint::black_box;
use std::time::Instant;

use bagstream::msg::{Encoding, Extractor, FieldPath, Schema, StampReader};

const HEADER: &str = "MSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n";
const SEP: &str =
    "================================================================================\n";

fn joint_state_def() -> String {
    format!("std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort\n{SEP}{HEADER}")
}

fn pose_stamped_def() -> String {
    format!(
        "std_msgs/Header header\ngeometry_msgs/Pose pose\n{SEP}{HEADER}{SEP}MSG: geometry_msgs/Pose\n\
         geometry_msgs/Point position\ngeometry_msgs/Quaternion orientation\n{SEP}\
         MSG: geometry_msgs/Point\nfloat64 x\nfloat64 y\nfloat64 z\n{SEP}\
         MSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n"
    )
}

#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn header(&mut self) -> &mut Self {
        self.u32(7).u32(1000).u32(500).str("base_link")
    }
}

fn joint_state(n: usize) -> Vec<u8> {
    let mut w = W::default();
    w.header().u32(n as u32);
    for i in 0..n {
        w.str(&format!("joint_{i}"));
    }
    for _ in 0..3 {
        w.u32(n as u32);
        for i in 0..n {
            w.f64(i as f64 * 0.5);
        }
    }
    w.0
}

fn pose_stamped() -> Vec<u8> {
    let mut w = W::default();
    w.header();
    for v in [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0] {
        w.f64(v);
    }
    w.0
}

const HEADER2: &str = "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n\
    ================================================================================\n\
    MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";

/// A CDR writer: encapsulation header, values aligned to their size after it.
struct C {
    b: Vec<u8>,
    big: bool,
}

impl C {
    fn new(big: bool) -> C {
        C {
            b: vec![0, !big as u8, 0, 0],
            big,
        }
    }
    fn put(&mut self, le: &[u8]) -> &mut Self {
        while (self.b.len() - 4) % le.len() != 0 {
            self.b.push(0);
        }
        if self.big {
            self.b.extend(le.iter().rev());
        } else {
            self.b.extend_from_slice(le);
        }
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.put(&(s.len() as u32 + 1).to_le_bytes());
        self.b.extend_from_slice(s.as_bytes());
        self.b.push(0);
        self
    }
    fn header(&mut self) -> &mut Self {
        self.put(&1000i32.to_le_bytes())
            .put(&500u32.to_le_bytes())
            .str("base_link")
    }
}

fn joint_state_cdr(n: usize, big: bool) -> Vec<u8> {
    let mut c = C::new(big);
    c.header().put(&(n as u32).to_le_bytes());
    for i in 0..n {
        c.str(&format!("joint_{i}"));
    }
    for _ in 0..3 {
        c.put(&(n as u32).to_le_bytes());
        for i in 0..n {
            c.put(&(i as f64 * 0.5).to_le_bytes());
        }
    }
    c.b
}

fn pose_stamped_cdr(big: bool) -> Vec<u8> {
    let mut c = C::new(big);
    c.header();
    for v in [1.0f64, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0] {
        c.put(&v.to_le_bytes());
    }
    c.b
}

/// Runs `f` `iters` times; nanoseconds per call.
fn time(iters: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn main() {
    let iters: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    // `ros1` or `cdr`: only that wire format (for instruction counts under callgrind).
    let only = std::env::args().nth(2).unwrap_or_default();
    let js = Schema::parse("sensor_msgs/JointState", &joint_state_def()).unwrap();
    let ps = Schema::parse("geometry_msgs/PoseStamped", &pose_stamped_def()).unwrap();
    let js_msg = joint_state(7);
    let ps_msg = pose_stamped();
    let path = |p: &str| FieldPath::parse(p).unwrap();
    let joints: Vec<String> = ["joint_6", "joint_0", "joint_3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cases: Vec<(&str, Extractor, &[u8])> = vec![
        (
            "JointState position (7)",
            Extractor::new(&js, &path("position"), None).unwrap(),
            &js_msg,
        ),
        (
            "JointState effort[2:5]",
            Extractor::new(&js, &path("effort[2:5]"), None).unwrap(),
            &js_msg,
        ),
        (
            "JointState joints (3 by name)",
            Extractor::new(&js, &path("position"), Some(&joints)).unwrap(),
            &js_msg,
        ),
        (
            "PoseStamped pose (7)",
            Extractor::new(&ps, &path("pose"), None).unwrap(),
            &ps_msg,
        ),
        (
            "PoseStamped pose.orientation.w",
            Extractor::new(&ps, &path("pose.orientation.w"), None).unwrap(),
            &ps_msg,
        ),
    ];
    let mut out = Vec::with_capacity(64);
    if only == "cdr" {
        return cdr_cases(iters, &joints, &mut out);
    }
    println!("{:<40} {:>10}", "ros1", "ns/msg");
    for (name, ex, msg) in &cases {
        let ns = time(iters, || {
            out.clear();
            ex.extract(black_box(msg), &mut out).unwrap();
            black_box(&out);
        });
        println!("{name:<40} {ns:>10.1}");
    }
    let stamp = StampReader::new(&js).unwrap();
    let ns = time(iters, || {
        black_box(stamp.read(black_box(&js_msg)).unwrap());
    });
    println!("{:<40} {ns:>10.1}", "JointState header.stamp");
    if only != "ros1" {
        cdr_cases(iters, &joints, &mut out);
    }
}

fn cdr_cases(iters: u64, joints: &[String], out: &mut Vec<f32>) {
    let path = |p: &str| FieldPath::parse(p).unwrap();
    let js2 = Schema::parse_ros2(
        "sensor_msgs/msg/JointState",
        &format!(
            "std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\n\
             float64[] effort\n{SEP}{HEADER2}"
        ),
    )
    .unwrap();
    let ps2 = Schema::parse_ros2(
        "geometry_msgs/msg/PoseStamped",
        &format!(
            "std_msgs/Header header\ngeometry_msgs/Pose pose\n{SEP}{HEADER2}{SEP}\
             MSG: geometry_msgs/Pose\ngeometry_msgs/Point position\n\
             geometry_msgs/Quaternion orientation\n{SEP}\
             MSG: geometry_msgs/Point\nfloat64 x\nfloat64 y\nfloat64 z\n{SEP}\
             MSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n"
        ),
    )
    .unwrap();
    let cdr = |s: &Schema, p: &str, j: Option<&[String]>| {
        Extractor::with_encoding(s, &path(p), j, Encoding::Cdr).unwrap()
    };
    for big in [false, true] {
        let js_msg = joint_state_cdr(7, big);
        let ps_msg = pose_stamped_cdr(big);
        let cases: Vec<(&str, Extractor, &[u8])> = vec![
            (
                "JointState position (7)",
                cdr(&js2, "position", None),
                &js_msg,
            ),
            (
                "JointState effort[2:5]",
                cdr(&js2, "effort[2:5]", None),
                &js_msg,
            ),
            (
                "JointState joints (3 by name)",
                cdr(&js2, "position", Some(joints)),
                &js_msg,
            ),
            ("PoseStamped pose (7)", cdr(&ps2, "pose", None), &ps_msg),
            (
                "PoseStamped pose.orientation.w",
                cdr(&ps2, "pose.orientation.w", None),
                &ps_msg,
            ),
        ];
        println!(
            "{:<40} {:>10}",
            if big {
                "cdr big-endian"
            } else {
                "cdr little-endian"
            },
            "ns/msg"
        );
        for (name, ex, msg) in &cases {
            let ns = time(iters, || {
                out.clear();
                ex.extract(black_box(msg), out).unwrap();
                black_box(&out);
            });
            println!("{name:<40} {ns:>10.1}");
        }
        let stamp = StampReader::with_encoding(&js2, Encoding::Cdr).unwrap();
        let ns = time(iters, || {
            black_box(stamp.read(black_box(&js_msg)).unwrap());
        });
        println!("{:<40} {ns:>10.1}", "JointState header.stamp");
    }
}
