//! Micro benchmark of the message decoder: nanoseconds per message for compiled field paths.
//!
//! ```sh
//! cargo run --release --example msg_bench [-- ITERATIONS]
//! ```
//!
//! A timing loop, not a test: the figures go to docs/benchmarks.md. Payloads are built here
//! (ROS1 little-endian), so the example needs nothing but the library.

use std::hint::black_box;
use std::time::Instant;

use bagstream::msg::{Extractor, FieldPath, Schema, StampReader};

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
}
