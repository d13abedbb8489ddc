//! Write a benchmark teleop bag: 7 joints at 200 Hz, arm command 50 Hz, gripper 10 Hz, pose
//! 30 Hz and three 640x480 JPEG cameras at 30 Hz with real texture (30 to 80 KB a frame, as real
//! cameras give), lz4 chunks of 1 MiB. `synth::BenchSpec` and `synth::CameraTexture` say
//! what is in it; the same arguments give the same file.
//!
//! `cargo run --release --example make_bench_bag -- --out BAG --seconds N [--cameras 3]
//!  [--width 640 --height 480] [--camera-hz 30] [--joint-hz 200] [--compression lz4]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bagstream::bag::ros1::Compression;
use bagstream::synth::{bench_camera_topic, write_bench_bag, BenchSpec};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Write a synthetic teleop bag with textured JPEG cameras for benchmarks")]
struct Args {
    /// Bag file to write.
    #[arg(long)]
    out: PathBuf,
    /// Episode length in seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Number of cameras: /cam_high, /cam_left_wrist, /cam_right_wrist, then /cam_4, ...
    #[arg(long, default_value_t = 3)]
    cameras: usize,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    #[arg(long, default_value_t = 30.0)]
    camera_hz: f64,
    #[arg(long, default_value_t = 200.0)]
    joint_hz: f64,
    /// Chunk compression: none, lz4 or bz2.
    #[arg(long, default_value = "lz4")]
    compression: String,
    /// Uncompressed chunk size in KiB.
    #[arg(long, default_value_t = 1024)]
    chunk_kb: usize,
    /// JPEG quality (ROS compressed_image_transport's default is 80).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    jpeg_quality: u8,
    /// JPEG encoding threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// The `jpeg-encoder` crate (SIMD, 4:2:0 chroma as OpenCV and ROS cameras write): about 4 times
/// as fast as the `image` crate's encoder (`synth::encode_jpeg`), which is the bottleneck.
fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8, out: &mut Vec<u8>) {
    let (w, h) = (width as u16, height as u16);
    jpeg_encoder::Encoder::new(out, quality)
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("JPEG encoding into memory");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let compression = match a.compression.as_str() {
        "none" => Compression::None,
        "lz4" => Compression::Lz4,
        "bz2" => Compression::Bz2,
        other => return Err(format!("--compression {other}: use none, lz4 or bz2").into()),
    };
    let jpeg_size = |v: u32| (1..=65535).contains(&v);
    if a.cameras > 0 && !(jpeg_size(a.width) && jpeg_size(a.height)) {
        return Err("--width and --height must be 1 to 65535".into());
    }
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        return Err("--seconds must be a positive number".into());
    }
    let spec = BenchSpec {
        seconds: a.seconds,
        joint_hz: a.joint_hz,
        cameras: a.cameras,
        camera_hz: a.camera_hz,
        camera_size: (a.width, a.height),
        jpeg_quality: a.jpeg_quality,
        compression,
        chunk_size: a.chunk_kb.max(1) * 1024,
        threads: a.threads,
        ..BenchSpec::default()
    };
    let topics: Vec<String> = (0..spec.cameras).map(bench_camera_topic).collect();
    println!(
        "writing {}: {} s, {} camera(s) {}x{} at {} Hz ({}), {} chunks of {} KiB",
        a.out.display(),
        spec.seconds,
        spec.cameras,
        a.width,
        a.height,
        spec.camera_hz,
        topics.join(", "),
        compression.as_str(),
        a.chunk_kb
    );
    let started = Instant::now();
    let mut last = started;
    let mb = |b: u64| b as f64 / 1e6;
    let done = write_bench_bag(&a.out, &spec, &encode_jpeg, &mut |p| {
        if last.elapsed() >= Duration::from_secs(3) {
            last = Instant::now();
            let el = started.elapsed().as_secs_f64();
            println!(
                "  {:7.1} s of {} s written, {:8.1} MB, {:6.1} MB/s, {:5.1} s elapsed",
                p.seconds,
                spec.seconds,
                mb(p.file_bytes),
                mb(p.file_bytes) / el,
                el
            );
        }
    })?;
    let el = started.elapsed().as_secs_f64();
    let per_frame = done.camera_bytes as f64 / done.camera_messages.max(1) as f64 / 1e3;
    println!(
        "wrote {}: {} messages ({} camera, {:.1} KB each), {} bytes ({:.1} MB), in {:.1} s ({:.1} MB/s, {:.2} s of bag per s)",
        a.out.display(),
        done.messages,
        done.camera_messages,
        per_frame,
        done.file_bytes,
        mb(done.file_bytes),
        el,
        mb(done.file_bytes) / el,
        spec.seconds / el
    );
    Ok(())
}
