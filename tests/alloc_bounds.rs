//! Lengths that lie cost nothing: a counting global allocator (this test binary's own) shows
//! that decompression bombs, declared sizes and length prefixes of 2^31 are refused before
//! anything of that size is allocated. Each test measures the largest single allocation and
//! the peak of live heap bytes while the library handles the hostile input.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bagstream::bag::ros1::record::{op, push_field, push_record, MAGIC};
use bagstream::bag::ros1::scan::scan;
use bagstream::bag::ros1::write::WriteOptions;
use bagstream::bag::ros1::Compression;
use bagstream::camera::{ImageDecoder, RgbImage};
use bagstream::msg::{Extractor, FieldPath, Schema};
use bagstream::synth::{joint_state, IMAGE, JOINT_STATE};
use bagstream::NANOS;
use common::*;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The largest allocation made by a thread inside [`largest_here`] (other tests' setup,
/// running at the same time, does not count).
static LARGEST_HERE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn grew(by: usize, size: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
    if HERE.with(|h| h.get()) {
        LARGEST_HERE.fetch_max(size, Ordering::Relaxed);
    }
}

/// The largest single allocation `f` makes on this thread (for code that starts none).
fn largest_here(f: impl FnOnce()) -> usize {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    LARGEST_HERE.store(0, Ordering::Relaxed);
    HERE.with(|h| h.set(true));
    f();
    HERE.with(|h| h.set(false));
    LARGEST_HERE.load(Ordering::Relaxed)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size(), layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size(), layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size, new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measurement at a time: the counters are global.
static SERIAL: Mutex<()> = Mutex::new(());

struct Usage {
    /// Peak live heap bytes above what was live when the measurement started.
    peak: usize,
    largest: usize,
}

fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    let r = f();
    let usage = Usage {
        peak: PEAK.load(Ordering::Relaxed).saturating_sub(base),
        largest: LARGEST.load(Ordering::Relaxed),
    };
    eprintln!(
        "peak {} KiB above the start, largest allocation {} KiB",
        usage.peak >> 10,
        usage.largest >> 10
    );
    (r, usage)
}

const MIB: usize = 1 << 20;

fn ticks(n: usize) -> Vec<(i64, f64)> {
    (0..n)
        .map(|i| (1_000 * NANOS + i as i64 * NANOS / 10, i as f64))
        .collect()
}

fn open_err(path: &Path) -> String {
    match bagstream::bag::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn decompression_bombs_are_never_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    for (c, bomb) in [
        (Compression::Lz4, lz4_bomb(1 << 30)),
        (Compression::Bz2, bz2_bomb(1 << 30)),
    ] {
        let full = dir.path().join(format!("full_{}.bag", c.as_str()));
        let opts = WriteOptions {
            compression: c,
            chunk_size: 400,
            write_index: false,
        };
        float64_bag(&full, opts, &ticks(50));
        let bytes = std::fs::read(&full).unwrap();
        let ch = scan(&full).unwrap().chunks;
        let bag = dir.path().join("bomb.bag");
        std::fs::write(&bag, replace_chunk_data(&bytes, &ch[2], &bomb)).unwrap();
        drop((bytes, bomb));
        let (e, u) = measure(|| open_err(&bag));
        assert!(e.contains("expands past its declared size"), "{e}");
        // 1 GiB of expansion; what is held is the compressed chunk (a few MB, read from the
        // file) and the decoder's block buffer.
        assert!(u.peak < 32 * MIB, "{c:?}: peak {} bytes", u.peak);
        assert!(u.largest < 16 * MIB, "{c:?}: largest {} bytes", u.largest);
    }
}

/// A bag without index whose only chunk declares `size` uncompressed bytes and holds `data`.
fn one_chunk_bag(path: &Path, compression: &str, size: u32, data: &[u8]) {
    let mut bytes = MAGIC.to_vec();
    let mut h = Vec::new();
    push_field(&mut h, "op", &[op::BAG_HEADER]);
    push_field(&mut h, "index_pos", &0u64.to_le_bytes());
    push_field(&mut h, "conn_count", &0u32.to_le_bytes());
    push_field(&mut h, "chunk_count", &0u32.to_le_bytes());
    push_record(&mut bytes, &h, &[]);
    let mut h = Vec::new();
    push_field(&mut h, "op", &[op::CHUNK]);
    push_field(&mut h, "compression", compression.as_bytes());
    push_field(&mut h, "size", &size.to_le_bytes());
    push_record(&mut bytes, &h, data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_chunk_declaring_4_gib_reserves_nothing_like_it() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let payload = vec![7u8; 1000];
    let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz.write_all(&payload).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    bz.write_all(&payload).unwrap();
    for (name, data) in [
        ("lz4", lz.finish().unwrap()),
        ("bz2", bz.finish().unwrap()),
        ("none", payload.clone()),
    ] {
        let bag = dir.path().join(format!("{name}.bag"));
        one_chunk_bag(&bag, name, u32::MAX, &data);
        let (e, u) = measure(|| open_err(&bag));
        assert!(e.contains("4294967295"), "{name}: {e}");
        // What is allocated is the decoders' own state (bz2's block table of 900k entries,
        // 3.6 MB, whatever the chunk declares), not the declared size.
        assert!(u.largest < 4 * MIB, "{name}: largest {} bytes", u.largest);
        assert!(u.peak < 8 * MIB, "{name}: peak {} bytes", u.peak);
    }
}

#[test]
fn record_length_prefixes_of_2_31_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let lie = 0x8000_0000u32;
    // The bag header's header length, then its data length.
    let mut header_len = MAGIC.to_vec();
    header_len.extend_from_slice(&lie.to_le_bytes());
    header_len.extend_from_slice(&[0; 64]);
    let mut data_len = MAGIC.to_vec();
    let mut h = Vec::new();
    push_field(&mut h, "op", &[op::BAG_HEADER]);
    data_len.extend_from_slice(&(h.len() as u32).to_le_bytes());
    data_len.extend_from_slice(&h);
    data_len.extend_from_slice(&lie.to_le_bytes());
    // A message record inside an uncompressed chunk whose data length lies.
    let mut msg = Vec::new();
    let mut mh = Vec::new();
    push_field(&mut mh, "op", &[op::MESSAGE_DATA]);
    push_field(&mut mh, "conn", &0u32.to_le_bytes());
    push_field(&mut mh, "time", &[0; 8]);
    msg.extend_from_slice(&(mh.len() as u32).to_le_bytes());
    msg.extend_from_slice(&mh);
    msg.extend_from_slice(&lie.to_le_bytes());
    msg.extend_from_slice(&[0; 16]);
    let in_chunk = dir.path().join("in_chunk.bag");
    one_chunk_bag(&in_chunk, "none", msg.len() as u32, &msg);
    for (name, bytes) in [("header_len", header_len), ("data_len", data_len)] {
        let bag = dir.path().join(format!("{name}.bag"));
        std::fs::write(&bag, bytes).unwrap();
        let (e, u) = measure(|| open_err(&bag));
        assert!(
            e.contains("2147483648") && e.contains("runs past"),
            "{name}: {e}"
        );
        assert!(u.largest < 64 << 10, "{name}: largest {} bytes", u.largest);
    }
    let (e, u) = measure(|| open_err(&in_chunk));
    assert!(e.contains("2147483648") && e.contains("runs past"), "{e}");
    assert!(u.largest < 64 << 10, "largest {} bytes", u.largest);
}

#[test]
fn payload_length_prefixes_of_2_31_are_refused_before_allocation() {
    let schema = Schema::parse(JOINT_STATE.datatype, JOINT_STATE.definition).unwrap();
    let names: Vec<String> = (0..7).map(|j| format!("joint{j}")).collect();
    let v = [0.5f64; 7];
    let good = joint_state(1, NANOS, &names, &v, &v, &v);
    // Offsets from the layout: header (seq u32, stamp 8, frame_id string), then name[].
    let frame_id_len = 4 + 8;
    let name_count = frame_id_len + 4;
    let first_name_len = name_count + 4;
    let position_count = (name_count + 4) + names.iter().map(|n| 4 + n.len()).sum::<usize>();
    let lie = 0x8000_0000u32.to_le_bytes();
    for (what, at) in [
        ("frame_id", frame_id_len),
        ("name count", name_count),
        ("name length", first_name_len),
        ("position count", position_count),
    ] {
        let mut bad = good.clone();
        bad[at..at + 4].copy_from_slice(&lie);
        for (path, joints) in [
            ("position", None),
            ("velocity[2:5]", None),
            ("effort", Some(vec!["joint3".to_string()])),
            ("header.seq", None),
        ] {
            let ex = Extractor::new(&schema, &FieldPath::parse(path).unwrap(), joints.as_deref())
                .unwrap();
            let mut out = Vec::new();
            let ((r, n), u) = measure(|| (ex.extract(&bad, &mut out), ex.names(&bad)));
            // `header.seq` comes before every lie; the others must fail (the names of a
            // `joints` pick are the configured ones, and need no data).
            if path != "header.seq" {
                assert!(r.is_err(), "{what} / {path}: {r:?}");
                assert!(n.is_err() || joints.is_some(), "{what} / {path}: {n:?}");
            }
            assert!(u.largest < 64 << 10, "{what} / {path}: {} bytes", u.largest);
        }
    }

    // An image whose data length prefix lies, and one whose size does.
    let schema = Schema::parse(IMAGE.datatype, IMAGE.definition).unwrap();
    let dec = ImageDecoder::new(IMAGE.datatype, &schema).unwrap();
    let good = flat_image(8, 6, "rgb8", 9, NANOS);
    let height_at = 4 + 8 + 4 + "cam".len();
    let data_len_at = height_at + 4 + 4 + 4 + "rgb8".len() + 1 + 4;
    let mut huge = good.clone();
    huge[height_at..height_at + 4].copy_from_slice(&60_000u32.to_le_bytes());
    huge[height_at + 4..height_at + 8].copy_from_slice(&60_000u32.to_le_bytes());
    let mut lying = good.clone();
    lying[data_len_at..data_len_at + 4].copy_from_slice(&lie);
    for (what, msg) in [("size", huge), ("data length", lying)] {
        let mut img = RgbImage::new();
        let (r, u) = measure(|| dec.decode(&msg, &mut img));
        assert!(r.is_err(), "{what}");
        assert!(u.largest < 64 << 10, "{what}: {} bytes", u.largest);
    }
    // The unedited message decodes: the offsets above are the real ones.
    let mut img = RgbImage::new();
    dec.decode(&good, &mut img).unwrap();
    assert_eq!((img.width, img.height), (8, 6));
}

/// CDR (ROS 2) payloads: every 4-byte word of a JointState and an Image replaced by 2^31
/// (lengths, counts, sizes, or plain values), in both byte orders: errors or values, and no
/// allocation beyond a few KiB.
#[test]
fn cdr_length_prefixes_of_2_31_are_refused_before_allocation() {
    use bagstream::msg::{Encoding, StampReader};
    const TIME: &str =
        "================================================================================\n\
        MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n\
        ================================================================================\n\
        MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";
    let js = Schema::parse_ros2(
        "sensor_msgs/msg/JointState",
        &format!("std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort\n{TIME}"),
    )
    .unwrap();
    let img = Schema::parse_ros2(
        "sensor_msgs/msg/Image",
        &format!("std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\nuint8[] data\n{TIME}"),
    )
    .unwrap();
    let dec = ImageDecoder::with_encoding("sensor_msgs/msg/Image", &img, Encoding::Cdr).unwrap();
    // A CDR writer: values aligned to 4 relative to the byte after the 4-byte header (8-byte
    // values at 8), strings with their NUL.
    let cdr = |big: bool, build: &dyn Fn(&mut Vec<u8>, bool)| {
        let mut b = vec![0, !big as u8, 0, 0];
        build(&mut b, big);
        b
    };
    fn u32w(b: &mut Vec<u8>, big: bool, v: u32) {
        while (b.len() - 4) % 4 != 0 {
            b.push(0);
        }
        b.extend(if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn f64w(b: &mut Vec<u8>, big: bool, v: f64) {
        while (b.len() - 4) % 8 != 0 {
            b.push(0);
        }
        b.extend(if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn strw(b: &mut Vec<u8>, big: bool, s: &str) {
        u32w(b, big, s.len() as u32 + 1);
        b.extend(s.as_bytes());
        b.push(0);
    }
    let joints: Vec<String> = vec!["joint3".into()];
    let extractors: Vec<Extractor> = [
        ("position", None),
        ("velocity[2:5]", None),
        ("effort", Some(&joints)),
    ]
    .into_iter()
    .map(|(p, j)| {
        Extractor::with_encoding(
            &js,
            &FieldPath::parse(p).unwrap(),
            j.map(|v| &v[..]),
            Encoding::Cdr,
        )
        .unwrap()
    })
    .collect();
    let stamp = StampReader::with_encoding(&js, Encoding::Cdr).unwrap();
    for big in [false, true] {
        let good_js = cdr(big, &|b, big| {
            u32w(b, big, 7);
            u32w(b, big, 5);
            strw(b, big, "base");
            u32w(b, big, 7);
            for j in 0..7 {
                strw(b, big, &format!("joint{j}"));
            }
            for _ in 0..3 {
                u32w(b, big, 7);
                for j in 0..7 {
                    f64w(b, big, j as f64);
                }
            }
        });
        let good_img = cdr(big, &|b, big| {
            u32w(b, big, 1);
            u32w(b, big, 2);
            strw(b, big, "cam");
            u32w(b, big, 6);
            u32w(b, big, 8);
            strw(b, big, "rgb8");
            b.push(0);
            u32w(b, big, 24);
            u32w(b, big, 24 * 6);
            b.extend(std::iter::repeat_n(7, 24 * 6));
        });
        // The unedited messages decode.
        let mut v = Vec::new();
        extractors[0].extract(&good_js, &mut v).unwrap();
        assert_eq!(v, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut out = RgbImage::new();
        dec.decode(&good_img, &mut out).unwrap();
        assert_eq!((out.width, out.height), (8, 6));
        let lie = if big {
            0x8000_0000u32.to_be_bytes()
        } else {
            0x8000_0000u32.to_le_bytes()
        };
        for at in (4..good_js.len() - 3).step_by(4) {
            let mut bad = good_js.clone();
            bad[at..at + 4].copy_from_slice(&lie);
            let largest = largest_here(|| {
                for e in &extractors {
                    let _ = e.extract(&bad, &mut Vec::new());
                    let _ = e.names(&bad);
                }
                let _ = stamp.read(&bad);
            });
            assert!(
                largest < 64 << 10,
                "JointState word at {at}: {largest} bytes"
            );
        }
        for at in (4..good_img.len() - 3).step_by(4) {
            let mut bad = good_img.clone();
            bad[at..at + 4].copy_from_slice(&lie);
            let mut out = RgbImage::new();
            let largest = largest_here(|| {
                let _ = dec.decode(&bad, &mut out);
            });
            assert!(largest < 64 << 10, "Image word at {at}: {largest} bytes");
        }
    }
}
