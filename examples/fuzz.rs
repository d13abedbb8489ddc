//! An in-tree fuzzer that runs on stable Rust (cargo-fuzz needs nightly).
//!
//! Five targets:
//! - `bag`: the ROS1 bag reader: open (scan, with the sequential fallback), read every message in
//!   one window and in a few smaller ones, first and last message of every connection, and the
//!   extractors of every connection over what was read.
//! - `mcap`: the MCAP reader, the same way (no decoders: `cdr` covers those), seeded with the
//!   small MCAP files of ../shared/bags and generated ones (zstd, lz4 and uncompressed chunks,
//!   without message indexes, without summary, messages outside chunks); length mutations
//!   hit the u64 record lengths, top level and inside uncompressed chunks.
//! - `def`: the message-definition parsers (ROS1 and ROS 2 dialects), then everything built on
//!   a schema (leaves, numeric fields, which compiles every extractor, stamp readers, image
//!   decoders).
//! - `decode`: the dynamic decoder: every compiled extractor (values, names, raw bytes), the
//!   stamp reader and the image decoder over arbitrary payload bytes.
//! - `cdr`: the same decoders compiled for CDR over ROS 2 definitions (parsed by the ROS 2
//!   parser), seeded with the CDR reference vectors (tests/reference/cdr_vectors.json) and the
//!   messages of the uncompressed ROS 2 MCAP files in ../shared/bags; mutations also hit every
//!   4-byte aligned word after the encapsulation header (where CDR's lengths are).
//!
//! Inputs are mutated from seeds (small bags from ../shared/bags and generated ones; the
//! definitions and first payloads of every connection of those bags and fixtures/) by a
//! deterministic seeded PRNG: bit flips, byte sets, interesting integers (0, 1, 0x7FFFFFFF,
//! 0x80000000, 0xFFFFFFFF, the input's length) at 4-byte aligned spots and on the record length
//! fields of bags, truncations, splices from other seeds, duplicated and deleted ranges; line
//! edits for definitions. An input whose outcome (the error text without its numbers) is new is
//! kept as a seed. Each input runs under `catch_unwind`; a panic, an input using over 2 s of CPU, or
//! one single allocation above 256 MiB counts as a crash and is saved to the crash directory.
//!
//! ```sh
//! cargo run --release --example fuzz -- --secs 60 [--target bag|mcap|def|decode|cdr|all] [--seed N]
//!     [--bags ../shared/bags] [--crashes out/fuzz-crashes]
//! cargo run --release --example fuzz -- --replay bag out/fuzz-crashes/bag-....bin
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bagstream::bag::buffer::BufferPool;
use bagstream::bag::mcap::testwrite::{Opts as McapOpts, Writer as McapWriter};
use bagstream::bag::mcap::McapBag;
use bagstream::bag::ros1::write::{BagWriter, WriteOptions};
use bagstream::bag::ros1::Compression;
use bagstream::bag::ros1::Ros1Bag;
use bagstream::bag::BagSource;
use bagstream::bag::SliceSource;
use bagstream::camera::{ImageDecoder, RgbImage};
use bagstream::msg::{Encoding, Extractor, FieldPath, Schema, StampReader};
use bagstream::synth;
use bagstream::Time;

// ---- allocation watch ----

/// One allocation above this is a crash: no input here (at most a few hundred KB) justifies it.
const BIG_ALLOC: usize = 256 << 20;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Watch;

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Watch = Watch;

// ---- PRNG ----

/// splitmix64: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

// ---- seeds ----

/// Seeds larger than this are skipped: they slow every execution down and add little.
const MAX_SEED: u64 = 64 << 10;
/// Payloads are cut to this for the decode target.
const MAX_PAYLOAD: usize = 64 << 10;

struct TypeSeed {
    datatype: String,
    definition: String,
    payloads: Vec<Vec<u8>>,
}

fn ros1_bags(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .map(|b| b.starts_with(b"#ROSBAG V2.0\n"))
                .unwrap_or(false)
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Small generated bags: the fixture episode cut to 0.3 s with a tiny camera, in every
/// compression, with and without index.
fn generated_bags(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (c, index) in [
        (Compression::None, true),
        (Compression::Bz2, true),
        (Compression::Lz4, true),
        (Compression::Lz4, false),
    ] {
        let p = dir.join(format!("gen_{}_{index}.bag", c.as_str()));
        let spec = synth::TeleopSpec {
            seconds: 0.3,
            chunk_size: 2048,
            camera_size: (16, 8),
            ..synth::fixture_spec(c, index)
        };
        synth::write_teleop_bag(&p, &spec).expect("generated seed bag");
        out.push(p);
    }
    // Out-of-order times and an empty definition.
    let p = dir.join("gen_odd.bag");
    let mut w = BagWriter::create(
        &p,
        WriteOptions {
            compression: Compression::None,
            chunk_size: 300,
            write_index: true,
        },
    )
    .expect("seed bag");
    let f = synth::FLOAT64;
    let a = w.add_connection("/a", f.datatype, f.md5sum, f.definition, None, false);
    let b = w.add_connection("/b", "x/Empty", "0", "", Some("/n"), true);
    for i in 0..30i64 {
        let t = 1_000_000_000_000 + ((i * 7) % 30) * 100_000_000;
        w.write(a, t, &(i as f64).to_le_bytes())
            .expect("seed write");
        w.write(b, t, &[]).expect("seed write");
    }
    w.finish().expect("seed bag");
    out.push(p);
    out
}

/// The small MCAP files under `dir` (at most [`MAX_SEED`] bytes each).
fn mcap_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "mcap")
                && std::fs::metadata(&p).is_ok_and(|m| m.len() <= MAX_SEED)
            {
                if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// Small generated MCAP files in each layout the reader handles.
fn generated_mcaps() -> Vec<Vec<u8>> {
    let base = McapOpts {
        chunk_size: 300,
        ..McapOpts::default()
    };
    let layouts = [
        base,
        McapOpts {
            compression: "lz4",
            ..base
        },
        McapOpts {
            compression: "",
            ..base
        },
        McapOpts {
            message_indexes: false,
            ..base
        },
        McapOpts {
            summary: false,
            compression: "",
            ..base
        },
        McapOpts {
            chunk_size: 0,
            ..base
        },
    ];
    layouts
        .iter()
        .map(|&o| {
            let mut w = McapWriter::new(o);
            w.schema(1, "std_msgs/msg/Float64", "ros2msg", b"float64 data\n");
            w.channel(1, 1, "/a", "cdr", &[("k", "v")]);
            w.channel(2, 0, "/b", "cdr", &[]);
            for i in 0..40u64 {
                // Out of order now and then, so that chunks overlap in time.
                let t = 1_000_000_000 + ((i * 7) % 40) * 10_000_000;
                w.message(1 + (i % 2) as u16, t, t, &(i as f64).to_le_bytes());
            }
            w.finish()
        })
        .collect()
}

/// Offsets of the record length fields of an MCAP file (the low 4 bytes of each u64), top
/// level and inside uncompressed chunks.
fn mcap_length_fields(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    mcap_walk_lengths(b, 8, b.len(), &mut out, 0);
    out
}

fn mcap_walk_lengths(b: &[u8], mut pos: usize, end: usize, out: &mut Vec<usize>, depth: usize) {
    let u64_at = |p: usize| -> Option<usize> {
        let s = b.get(p..p.checked_add(8)?)?;
        usize::try_from(u64::from_le_bytes(s.try_into().ok()?)).ok()
    };
    while out.len() < 4096 && pos < end {
        let Some(len) = u64_at(pos + 1) else { return };
        out.push(pos + 1);
        let body = pos + 9;
        // An uncompressed chunk (empty compression string): its records are records too.
        if depth == 0 && b[pos] == 0x06 && b.get(body + 28..body + 32) == Some(&[0, 0, 0, 0][..]) {
            out.push(body + 32);
            let records = body + 40;
            mcap_walk_lengths(b, records, body.saturating_add(len).min(end), out, 1);
        }
        let Some(next) = body.checked_add(len) else {
            return;
        };
        pos = next;
    }
}

/// The MCAP reader over `input` in memory.
fn exercise_mcap(input: &[u8]) -> Result<String, String> {
    let src = Box::new(SliceSource::new(input.to_vec()));
    let mut bag = McapBag::from_source(PathBuf::from("input.mcap"), src, BufferPool::new())
        .map_err(|e| e.to_string())?;
    let s = bag.summary().clone();
    let n = s.connections.len();
    let wanted = vec![true; n];
    let mut all = Vec::new();
    bag.read_window(Time::MIN, Time::MAX, &wanted, &mut all)
        .map_err(|e| e.to_string())?;
    if let Some((first, last)) = s.time_range() {
        let step = ((last - first) / 6).max(1);
        let mut t = first;
        let mut count = 0;
        while t <= last {
            let mut out = Vec::new();
            bag.read_window(t, t.saturating_add(step), &wanted, &mut out)
                .map_err(|e| e.to_string())?;
            count += out.len();
            t = t.saturating_add(step);
        }
        if count != all.len() {
            panic!("windows read {count} messages, one window {}", all.len());
        }
    }
    for c in 0..n {
        bag.first_and_last(c).map_err(|e| e.to_string())?;
    }
    let _ = bagstream::inspect::summary_text(&s);
    let _ = bagstream::inspect::summary_json(&s);
    Ok(format!(
        "{} conns {} blocks {} msgs {}",
        n,
        s.blocks.len(),
        all.len(),
        s.warnings.len()
    ))
}

fn type_seeds(bags: &[PathBuf]) -> Vec<TypeSeed> {
    let mut out: Vec<TypeSeed> = Vec::new();
    for b in bags {
        // Definitions from every bag, payloads from bags small enough to read whole quickly.
        let Ok(mut bag) = Ros1Bag::open(b) else {
            continue;
        };
        let conns = bag.summary().connections.clone();
        for (i, c) in conns.iter().enumerate() {
            let pos = match out
                .iter()
                .position(|t| t.datatype == c.datatype && t.definition == c.definition)
            {
                Some(p) => p,
                None => {
                    out.push(TypeSeed {
                        datatype: c.datatype.clone(),
                        definition: c.definition.clone(),
                        payloads: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            if out[pos].payloads.len() >= 4 {
                continue;
            }
            if let Ok(Some((f, l))) = bag.first_and_last(i) {
                for m in [f, l] {
                    let d = m.data();
                    out[pos]
                        .payloads
                        .push(d[..d.len().min(MAX_PAYLOAD)].to_vec());
                }
            }
        }
    }
    // The crate's own types, with one payload each.
    let extra = [
        (synth::JOINT_STATE, {
            let names: Vec<String> = (0..3).map(synth::joint_name).collect();
            synth::joint_state(3, 5, &names, &[1.0; 3], &[2.0; 3], &[3.0; 3])
        }),
        (
            synth::FLOAT64_MULTI_ARRAY,
            synth::float64_multi_array(&[1.0, 2.0]),
        ),
        (
            synth::POSE_STAMPED,
            synth::pose_stamped(1, 2, "map", [1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 1.0]),
        ),
        (synth::IMAGE, synth::image_rgb8(1, 2, "cam", 4, 2, 0)),
    ];
    for (t, payload) in extra {
        out.push(TypeSeed {
            datatype: t.datatype.to_string(),
            definition: t.definition.to_string(),
            payloads: vec![payload],
        });
    }
    out
}

// ---- mutations ----

const INTERESTING: [u32; 9] = [
    0,
    1,
    2,
    0x7F,
    0xFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
];

/// Offsets of the u32 length fields of a bag's records (top level, and inside uncompressed
/// chunks): where lies do the most damage.
fn length_fields(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    walk_lengths(b, 13, &mut out, 0);
    out
}

fn walk_lengths(b: &[u8], mut pos: usize, out: &mut Vec<usize>, depth: usize) {
    let u32_at = |p: usize| -> Option<usize> {
        b.get(p..p + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    while out.len() < 4096 {
        let Some(hl) = u32_at(pos) else { return };
        let h_end = pos + 4 + hl;
        let Some(dl) = u32_at(h_end) else { return };
        out.push(pos);
        // Header field lengths.
        let mut f = pos + 4;
        while f + 4 <= h_end && out.len() < 4096 {
            out.push(f);
            let Some(fl) = u32_at(f) else { break };
            f += 4 + fl;
        }
        out.push(h_end);
        let d_start = h_end + 4;
        let header = &b[(pos + 4).min(b.len())..h_end.min(b.len())];
        if depth == 0 && header.windows(16).any(|w| w == b"compression=none") {
            walk_lengths(&b[..(d_start + dl).min(b.len())], d_start, out, 1);
        }
        pos = d_start + dl;
    }
}

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>], lengths: &[usize]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(11) {
            0 if len > 0 => {
                let p = rng.below(len);
                data[p] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let p = rng.below(len);
                data[p] = *rng.pick(&[0u8, 0xFF, 0x7F, 0x80, 1, b'=', b'\n']);
            }
            2 | 3 if len >= 4 => {
                let p = rng.below(len / 4) * 4;
                let v = interesting(rng, len);
                data[p..p + 4].copy_from_slice(&v.to_le_bytes());
            }
            4 if !lengths.is_empty() => {
                // A record length field that lies (or is off by a little).
                let p = *rng.pick(lengths);
                if p + 4 <= len {
                    let old = u32::from_le_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]);
                    let v = match rng.below(3) {
                        0 => interesting(rng, len),
                        1 => old.wrapping_add(1 + rng.below(8) as u32),
                        _ => old.wrapping_sub(1 + rng.below(8) as u32),
                    };
                    data[p..p + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            5 if len > 0 => data.truncate(rng.below(len)),
            6 if !others.is_empty() => {
                // Splice a piece of another seed in (overwrite or insert).
                let o = rng.pick(others);
                if !o.is_empty() {
                    let a = rng.below(o.len());
                    let n = 1 + rng.below((o.len() - a).min(4096));
                    let piece = &o[a..a + n];
                    let at = rng.below(len + 1);
                    if rng.chance(50) && at + n <= len {
                        data[at..at + n].copy_from_slice(piece);
                    } else {
                        data.splice(at..at, piece.iter().copied());
                    }
                }
            }
            7 if len > 0 => {
                // Duplicate a range.
                let a = rng.below(len);
                let n = 1 + rng.below((len - a).min(1024));
                let piece = data[a..a + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, piece);
            }
            8 if len > 0 => {
                let a = rng.below(len);
                let n = 1 + rng.below((len - a).min(256));
                data.drain(a..a + n);
            }
            9 if len > 0 => {
                let a = rng.below(len);
                let n = 1 + rng.below((len - a).min(64));
                let v = rng.next() as u8;
                data[a..a + n].fill(v);
            }
            _ => {
                let at = rng.below(len + 1);
                let v = interesting(rng, len).to_le_bytes();
                data.splice(at..at, v);
            }
        }
    }
}

fn interesting(rng: &mut Rng, len: usize) -> u32 {
    match rng.below(4) {
        0 => len as u32,
        1 => rng.below(len + 16) as u32,
        _ => *rng.pick(&INTERESTING),
    }
}

const TYPE_WORDS: [&str; 22] = [
    "bool",
    "int8",
    "uint8",
    "byte",
    "char",
    "int32",
    "uint32",
    "int64",
    "float32",
    "float64",
    "string",
    "time",
    "duration",
    "Header",
    "std_msgs/Header",
    "geometry_msgs/Point",
    "pkg/Self",
    "Missing",
    "float64[]",
    "float64[4294967296]",
    "string[3]",
    "Header[2]",
];

fn mutate_definition(rng: &mut Rng, def: &str, datatype: &str, others: &[String]) -> String {
    let mut lines: Vec<String> = def.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(4) {
        let n = lines.len();
        match rng.below(10) {
            0 if n > 0 => {
                let i = rng.below(n);
                let l = lines[i].clone();
                lines.insert(rng.below(n + 1), l);
            }
            1 if n > 0 => {
                lines.remove(rng.below(n));
            }
            2 if n > 1 => {
                let (a, b) = (rng.below(n), rng.below(n));
                lines.swap(a, b);
            }
            3 if n > 0 => {
                // Replace the type of a field line.
                let i = rng.below(n);
                if let Some((_, name)) = lines[i].trim().split_once(' ') {
                    let ty = if rng.chance(20) {
                        datatype.to_string()
                    } else {
                        rng.pick(&TYPE_WORDS).to_string()
                    };
                    lines[i] = format!("{ty} {name}");
                }
            }
            4 => {
                let sec = *rng.pick(&[
                    "================================================================================",
                    "MSG: std_msgs/Header",
                    "MSG: pkg/Self",
                    "MSG:",
                    "pkg/Self next",
                    "int32 X=5",
                    "string S=a#b",
                    "# comment",
                    "float64[",
                    "uint8[0] empty",
                    "x/Empty[4000000000] many",
                ]);
                lines.insert(rng.below(n + 1), sec.to_string());
            }
            5 if !others.is_empty() => {
                // Splice lines of another definition.
                let o: Vec<&str> = rng.pick(others).lines().collect();
                if !o.is_empty() {
                    let a = rng.below(o.len());
                    let k = 1 + rng.below((o.len() - a).min(20));
                    let at = rng.below(n + 1);
                    for (j, l) in o[a..a + k].iter().enumerate() {
                        lines.insert(at + j, l.to_string());
                    }
                }
            }
            6 if n > 0 => {
                let i = rng.below(n);
                let l = &lines[i];
                let cut = rng.below(l.len() + 1);
                lines[i] = l.get(..cut).unwrap_or(l).to_string();
            }
            7 => {
                // A chain of nested types, deep or not.
                let depth = *rng.pick(&[2usize, 10, 63, 64, 65, 200]);
                let at = rng.below(n + 1);
                let mut add = vec!["pkg/D1 d".to_string()];
                for k in 1..=depth {
                    add.push("====".to_string());
                    add.push(format!("MSG: pkg/D{k}"));
                    add.push(if k == depth {
                        "float64 x".to_string()
                    } else {
                        format!("pkg/D{} d", k + 1)
                    });
                }
                lines.splice(at..at, add);
            }
            _ => {
                let mut b = lines.join("\n").into_bytes();
                mutate_bytes(rng, &mut b, &[], &[]);
                lines = String::from_utf8_lossy(&b)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

// ---- targets ----

/// What an input did, coarsely: the kind of error (its text without numbers, paths and quoted
/// parts), or for a success its figures rounded to powers of two. Inputs with a new outcome
/// become seeds; a finer outcome would keep every random input.
fn outcome(r: &Result<String, String>) -> String {
    match r {
        Ok(s) => {
            let figures: Vec<String> = s
                .split_whitespace()
                .map(|w| match w.parse::<u64>() {
                    Ok(n) => format!("~{}", 64 - n.leading_zeros()),
                    Err(_) => w.to_string(),
                })
                .collect();
            format!("ok {}", figures.join(" "))
        }
        Err(e) => {
            // Drop the file name (everything up to the first ": "), quoted values, hex codes
            // and what follows a parenthesis (names and values read from the input).
            let e = e.split_once(": ").map_or(e.as_str(), |x| x.1);
            let e = e.split('(').next().unwrap_or_default();
            let mut out = String::from("err ");
            let mut quote: Option<char> = None;
            for word in e.split_whitespace().filter(|w| !w.starts_with("0x")) {
                for c in word.chars() {
                    match quote {
                        Some(q) if c == q => quote = None,
                        Some(_) => {}
                        None if c == '"' || c == '`' => quote = Some(c),
                        None if c.is_ascii_digit() => {}
                        None => out.push(c),
                    }
                }
                out.push(' ');
                if out.len() >= 80 {
                    break;
                }
            }
            out
        }
    }
}

/// Every extractor an exercise tries on a schema: its numeric fields, plus array elements,
/// slices and joints where they compile.
fn extractors(schema: &Schema, encoding: Encoding) -> Vec<Extractor> {
    let mut paths = schema.numeric_fields();
    for (leaf, _) in schema.leaves().into_iter().take(32) {
        paths.push(leaf.replace("[]", "[0]"));
    }
    let mut out = Vec::new();
    for p in paths.iter().take(48) {
        let Ok(fp) = FieldPath::parse(p) else {
            continue;
        };
        for suffix in ["", "[1]", "[1:3]", "[:2]"] {
            let Ok(fp2) = FieldPath::parse(&format!("{p}{suffix}")) else {
                continue;
            };
            if let Ok(e) = Extractor::with_encoding(schema, &fp2, None, encoding) {
                out.push(e);
            }
        }
        let joints = ["j0".to_string(), synth::joint_name(1)];
        if let Ok(e) = Extractor::with_encoding(schema, &fp, Some(&joints), encoding) {
            out.push(e);
        }
    }
    out
}

struct Decoders {
    extractors: Vec<Extractor>,
    stamp: Option<StampReader>,
    image: Option<ImageDecoder>,
}

impl Decoders {
    fn new(datatype: &str, schema: &Schema) -> Decoders {
        Decoders::with_encoding(datatype, schema, Encoding::Ros1)
    }

    fn with_encoding(datatype: &str, schema: &Schema, encoding: Encoding) -> Decoders {
        Decoders {
            extractors: extractors(schema, encoding),
            stamp: StampReader::with_encoding(schema, encoding).ok(),
            image: ImageDecoder::with_encoding(datatype, schema, encoding)
                .ok()
                .map(|d| d.with_max_pixels(1 << 20)),
        }
    }

    /// Runs every decoder over `data`; a summary of what passed.
    fn run(&self, data: &[u8]) -> String {
        let mut ok = 0;
        let mut values = Vec::new();
        for e in &self.extractors {
            values.clear();
            ok += e.extract(data, &mut values).is_ok() as usize;
            ok += e.names(data).is_ok() as usize;
            ok += e.raw(data).is_ok() as usize;
        }
        if let Some(s) = &self.stamp {
            ok += s.read(data).is_ok() as usize;
        }
        if let Some(d) = &self.image {
            let mut img = RgbImage::new();
            ok += d.decode(data, &mut img).is_ok() as usize;
        }
        format!("{ok} of {}", self.extractors.len())
    }
}

fn exercise_def(datatype: &str, def: &str) -> Result<String, String> {
    // The same text through the ROS 2 parser (and CDR decoders) too: its outcome is part of
    // this one's, so inputs that only it sees differently are kept.
    let ros2 = match Schema::parse_ros2(datatype, def) {
        Ok(s) => {
            let d = Decoders::with_encoding(datatype, &s, Encoding::Cdr);
            format!(
                "ros2 {} types {} numeric",
                s.messages().len(),
                d.extractors.len()
            )
        }
        Err(e) => format!("ros2 error {e}"),
    };
    let schema = Schema::parse(datatype, def).map_err(|e| format!("{e}; {ros2}"))?;
    let leaves = schema.leaves();
    let text = schema.to_string();
    let d = Decoders::new(datatype, &schema);
    Ok(format!(
        "{} types {} leaves {} numeric {} text; {ros2}",
        schema.messages().len(),
        leaves.len(),
        d.extractors.len(),
        text.len().min(1)
    ))
}

/// The ROS1 reader over `input` in memory: positioned reads of a byte slice, as of a file.
fn exercise_bag(input: &[u8]) -> Result<String, String> {
    let src = Box::new(SliceSource::new(input.to_vec()));
    let mut bag = Ros1Bag::from_source(PathBuf::from("input.bag"), src, BufferPool::new())
        .map_err(|e| e.to_string())?;
    let s = bag.summary().clone();
    let n = s.connections.len();
    let wanted = vec![true; n];
    let mut all = Vec::new();
    bag.read_window(Time::MIN, Time::MAX, &wanted, &mut all)
        .map_err(|e| e.to_string())?;
    if let Some((first, last)) = s.time_range() {
        let step = ((last - first) / 6).max(1);
        let mut t = first;
        let mut count = 0;
        while t <= last {
            let mut out = Vec::new();
            bag.read_window(t, t.saturating_add(step), &wanted, &mut out)
                .map_err(|e| e.to_string())?;
            count += out.len();
            t = t.saturating_add(step);
        }
        if count != all.len() {
            // Not a crash of ours to hide: windows must see what one big window sees.
            panic!("windows read {count} messages, one window {}", all.len());
        }
    }
    for c in 0..n {
        bag.first_and_last(c).map_err(|e| e.to_string())?;
    }
    let _ = bagstream::inspect::summary_text(&s);
    let _ = bagstream::inspect::summary_json(&s);
    let decoders: Vec<Option<Decoders>> = s
        .connections
        .iter()
        .map(|c| {
            Schema::parse(&c.datatype, &c.definition)
                .ok()
                .map(|schema| Decoders::new(&c.datatype, &schema))
        })
        .collect();
    for m in all.iter().take(200) {
        if let Some(d) = &decoders[m.conn] {
            d.run(m.data());
        }
    }
    Ok(format!(
        "{} conns {} chunks {} msgs {}",
        n,
        s.blocks.len(),
        all.len(),
        s.warnings.len()
    ))
}

// ---- the loop ----

#[derive(Default)]
struct Stats {
    execs: u64,
    crashes: u64,
    slow: u64,
    big: u64,
    corpus: usize,
    outcomes: usize,
}

struct Fuzzer {
    rng: Rng,
    crash_dir: PathBuf,
    /// The input being run, saved by the watchdog if it hangs.
    current: Arc<Mutex<(String, Vec<u8>)>>,
    started: Arc<AtomicU64>,
    panic_msg: Arc<Mutex<String>>,
    epoch: Instant,
    seen_panics: HashSet<String>,
}

/// CPU time of this thread: wall time would count the other processes of a busy machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// An input using more CPU than this is a crash (a loop driven by a lying count, say).
const SLOW: Duration = Duration::from_secs(2);
const HANG: Duration = Duration::from_secs(20);

impl Fuzzer {
    fn save(&self, kind: &str, target: &str, input: &[u8], why: &str) -> PathBuf {
        let _ = std::fs::create_dir_all(&self.crash_dir);
        let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let p = self
            .crash_dir
            .join(format!("{target}-{kind}-{hash:016x}.bin"));
        let _ = std::fs::write(&p, input);
        let _ = std::fs::write(p.with_extension("txt"), why);
        p
    }

    /// Runs one input; returns its outcome, or None when it crashed.
    fn run_one(
        &mut self,
        target: &str,
        input: &[u8],
        stats: &mut Stats,
        f: &mut dyn FnMut() -> Result<String, String>,
    ) -> Option<String> {
        {
            let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
            cur.0 = target.to_string();
            cur.1.clear();
            cur.1.extend_from_slice(input);
        }
        LARGEST.store(0, Ordering::Relaxed);
        self.started.store(
            self.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        let t = thread_cpu();
        let r = catch_unwind(AssertUnwindSafe(&mut *f));
        let took = thread_cpu().saturating_sub(t);
        self.started.store(0, Ordering::Relaxed);
        stats.execs += 1;
        let largest = LARGEST.load(Ordering::Relaxed);
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                let msg = self
                    .panic_msg
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                stats.crashes += 1;
                let p = self.save("panic", target, input, &msg);
                if self.seen_panics.insert(msg.clone()) {
                    eprintln!(
                        "fuzz {target}: PANIC {msg}\n  input saved to {}",
                        p.display()
                    );
                }
                return None;
            }
        };
        if took > SLOW {
            stats.slow += 1;
            let p = self.save("slow", target, input, &format!("took {took:?}"));
            eprintln!(
                "fuzz {target}: SLOW input ({took:?}) saved to {}",
                p.display()
            );
        }
        if largest > BIG_ALLOC {
            stats.big += 1;
            let why = format!("one allocation of {largest} bytes");
            let p = self.save("alloc", target, input, &why);
            eprintln!("fuzz {target}: {why}, input saved to {}", p.display());
        }
        Some(outcome(&r))
    }
}

/// A corpus that keeps inputs with new outcomes, up to a cap.
struct Corpus<T> {
    items: Vec<T>,
    outcomes: HashSet<String>,
}

impl<T: Clone> Corpus<T> {
    fn new(items: Vec<T>) -> Self {
        Corpus {
            items,
            outcomes: HashSet::new(),
        }
    }
    fn offer(&mut self, rng: &mut Rng, item: &T, outcome: Option<String>) {
        let Some(o) = outcome else { return };
        if self.outcomes.insert(o) {
            if self.items.len() < 2000 {
                self.items.push(item.clone());
            } else {
                let i = rng.below(self.items.len());
                self.items[i] = item.clone();
            }
        }
    }
}

fn fuzz_bag(fz: &mut Fuzzer, seeds: Vec<Vec<u8>>, secs: f64) -> Stats {
    fuzz_container(fz, "bag", seeds, secs, length_fields, exercise_bag)
}

fn fuzz_mcap(fz: &mut Fuzzer, seeds: Vec<Vec<u8>>, secs: f64) -> Stats {
    fuzz_container(fz, "mcap", seeds, secs, mcap_length_fields, exercise_mcap)
}

/// A container target: seeds run first, then mutations of the corpus.
fn fuzz_container(
    fz: &mut Fuzzer,
    target: &str,
    seeds: Vec<Vec<u8>>,
    secs: f64,
    lengths_of: fn(&[u8]) -> Vec<usize>,
    exercise: fn(&[u8]) -> Result<String, String>,
) -> Stats {
    let mut stats = Stats::default();
    let mut corpus = Corpus::new(seeds);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    // The seeds themselves first.
    for i in 0..corpus.items.len() {
        let input = corpus.items[i].clone();
        let o = fz.run_one(target, &input, &mut stats, &mut || exercise(&input));
        if let Some(o) = o {
            corpus.outcomes.insert(o);
        }
    }
    while Instant::now() < deadline {
        let base = fz.rng.pick(&corpus.items).clone();
        let lengths = lengths_of(&base);
        let mut input = base;
        let others = corpus.items.clone();
        mutate_bytes(&mut fz.rng, &mut input, &others, &lengths);
        let o = fz.run_one(target, &input, &mut stats, &mut || exercise(&input));
        corpus.offer(&mut fz.rng, &input, o);
    }
    stats.corpus = corpus.items.len();
    stats.outcomes = corpus.outcomes.len();
    stats
}

/// A definition input on disk: the datatype, a NUL, the text.
fn def_input(datatype: &str, def: &str) -> Vec<u8> {
    let mut v = datatype.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(def.as_bytes());
    v
}

fn split_def_input(b: &[u8]) -> (String, String) {
    let nul = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let rest = b.get(nul + 1..).unwrap_or_default();
    (
        String::from_utf8_lossy(&b[..nul]).into_owned(),
        String::from_utf8_lossy(rest).into_owned(),
    )
}

fn fuzz_def(fz: &mut Fuzzer, types: &[TypeSeed], secs: f64) -> Stats {
    let mut stats = Stats::default();
    let seeds: Vec<(String, String)> = types
        .iter()
        .map(|t| (t.datatype.clone(), t.definition.clone()))
        .collect();
    let defs: Vec<String> = seeds.iter().map(|s| s.1.clone()).collect();
    let mut corpus = Corpus::new(seeds);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        let (mut dt, def) = fz.rng.pick(&corpus.items).clone();
        let def = mutate_definition(&mut fz.rng, &def, &dt, &defs);
        if fz.rng.chance(5) {
            dt = fz
                .rng
                .pick(&["pkg/Self", "NoPackage", "", "std_msgs/Empty", "a/b/c"])
                .to_string();
        }
        let input = def_input(&dt, &def);
        let o = fz.run_one("def", &input, &mut stats, &mut || exercise_def(&dt, &def));
        corpus.offer(&mut fz.rng, &(dt, def), o);
    }
    stats.corpus = corpus.items.len();
    stats.outcomes = corpus.outcomes.len();
    stats
}

/// A decode input on disk: datatype, NUL, definition, NUL, payload.
fn decode_input(datatype: &str, def: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = def_input(datatype, def);
    v.push(0);
    v.extend_from_slice(payload);
    v
}

fn exercise_decode(datatype: &str, def: &str, payload: &[u8]) -> Result<String, String> {
    let schema = Schema::parse(datatype, def).map_err(|e| e.to_string())?;
    Ok(Decoders::new(datatype, &schema).run(payload))
}

fn fuzz_decode(fz: &mut Fuzzer, types: &[TypeSeed], secs: f64) -> Stats {
    let mut stats = Stats::default();
    // Per type: its decoders (built once) and its payloads.
    let mut typed: Vec<(usize, Decoders, Corpus<Vec<u8>>)> = Vec::new();
    for (i, t) in types.iter().enumerate() {
        if t.payloads.is_empty() {
            continue;
        }
        if let Ok(schema) = Schema::parse(&t.datatype, &t.definition) {
            let d = Decoders::new(&t.datatype, &schema);
            if !d.extractors.is_empty() || d.stamp.is_some() || d.image.is_some() {
                typed.push((i, d, Corpus::new(t.payloads.clone())));
            }
        }
    }
    let all: Vec<Vec<u8>> = types.iter().flat_map(|t| t.payloads.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline && !typed.is_empty() {
        let k = fz.rng.below(typed.len());
        let t = &types[typed[k].0];
        let mut payload = fz.rng.pick(&typed[k].2.items).clone();
        mutate_bytes(&mut fz.rng, &mut payload, &all, &[]);
        let o = if fz.rng.chance(10) {
            // Now and then a mutated definition over the payload, too.
            let defs = [t.definition.clone()];
            let def = mutate_definition(&mut fz.rng, &t.definition, &t.datatype, &defs);
            let input = decode_input(&t.datatype, &def, &payload);
            fz.run_one("decode", &input, &mut stats, &mut || {
                exercise_decode(&t.datatype, &def, &payload)
            })
        } else {
            let input = decode_input(&t.datatype, &t.definition, &payload);
            let d = &typed[k].1;
            fz.run_one("decode", &input, &mut stats, &mut || Ok(d.run(&payload)))
        };
        let rng = &mut fz.rng;
        typed[k].2.offer(rng, &payload, o);
    }
    stats.corpus = typed.iter().map(|t| t.2.items.len()).sum();
    stats.outcomes = typed.iter().map(|t| t.2.outcomes.len()).sum();
    stats
}

// ---- the CDR target ----

#[path = "../tests/support/mcap.rs"]
mod mcap;

/// ROS 2 types with CDR payloads: the reference vectors, and the first messages of every
/// channel of the MCAP files (uncompressed chunks) under `bags`.
fn cdr_seeds(root: &Path, bags: &Path) -> Vec<TypeSeed> {
    let mut out: Vec<TypeSeed> = Vec::new();
    let mut add = |datatype: &str, definition: &str, payload: &[u8]| {
        let pos = match out
            .iter()
            .position(|t| t.datatype == datatype && t.definition == definition)
        {
            Some(p) => p,
            None => {
                out.push(TypeSeed {
                    datatype: datatype.to_string(),
                    definition: definition.to_string(),
                    payloads: Vec::new(),
                });
                out.len() - 1
            }
        };
        if out[pos].payloads.len() < 4 {
            out[pos]
                .payloads
                .push(payload[..payload.len().min(MAX_PAYLOAD)].to_vec());
        }
    };
    let vectors = std::fs::read_to_string(root.join("tests/reference/cdr_vectors.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    for v in vectors
        .as_ref()
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let (Some(dt), Some(def), Some(hex)) = (
            v["type"].as_str(),
            v["definition"].as_str(),
            v["hex"].as_str(),
        ) else {
            continue;
        };
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        add(dt, def, &bytes);
    }
    let mut stack = vec![bags.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "mcap") {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let Some(f) = mcap::read(&p) else { continue };
        for ch in f.channels.iter().filter(|c| c.message_encoding == "cdr") {
            let Some(s) = f.schema(ch.schema_id).filter(|s| s.encoding == "ros2msg") else {
                continue;
            };
            let def = String::from_utf8_lossy(&s.data);
            for m in f.messages_on(ch.id).take(4) {
                add(&s.name, &def, &m.data);
            }
        }
    }
    out
}

fn exercise_cdr(datatype: &str, def: &str, payload: &[u8]) -> Result<String, String> {
    let schema = Schema::parse_ros2(datatype, def).map_err(|e| e.to_string())?;
    Ok(Decoders::with_encoding(datatype, &schema, Encoding::Cdr).run(payload))
}

fn fuzz_cdr(fz: &mut Fuzzer, types: &[TypeSeed], secs: f64) -> Stats {
    let mut stats = Stats::default();
    let mut typed: Vec<(usize, Decoders, Corpus<Vec<u8>>)> = Vec::new();
    for (i, t) in types.iter().enumerate() {
        if let Ok(schema) = Schema::parse_ros2(&t.datatype, &t.definition) {
            let d = Decoders::with_encoding(&t.datatype, &schema, Encoding::Cdr);
            if !d.extractors.is_empty() || d.stamp.is_some() || d.image.is_some() {
                typed.push((i, d, Corpus::new(t.payloads.clone())));
            }
        }
    }
    let all: Vec<Vec<u8>> = types.iter().flat_map(|t| t.payloads.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline && !typed.is_empty() {
        let k = fz.rng.below(typed.len());
        let t = &types[typed[k].0];
        let mut payload = fz.rng.pick(&typed[k].2.items).clone();
        // CDR lengths sit at 4-byte aligned offsets after the 4-byte header.
        let words: Vec<usize> = (4..payload.len().saturating_sub(3)).step_by(4).collect();
        mutate_bytes(&mut fz.rng, &mut payload, &all, &words);
        if fz.rng.chance(3) && payload.len() >= 2 {
            // The encapsulation header itself: byte order, or another representation.
            payload[1] = *fz.rng.pick(&[0u8, 1, 2, 3, 6, 7, 0xFF]);
        }
        let o = if fz.rng.chance(10) {
            let defs = [t.definition.clone()];
            let def = mutate_definition(&mut fz.rng, &t.definition, &t.datatype, &defs);
            let input = decode_input(&t.datatype, &def, &payload);
            fz.run_one("cdr", &input, &mut stats, &mut || {
                exercise_cdr(&t.datatype, &def, &payload)
            })
        } else {
            let input = decode_input(&t.datatype, &t.definition, &payload);
            let d = &typed[k].1;
            fz.run_one("cdr", &input, &mut stats, &mut || Ok(d.run(&payload)))
        };
        let rng = &mut fz.rng;
        typed[k].2.offer(rng, &payload, o);
    }
    stats.corpus = typed.iter().map(|t| t.2.items.len()).sum();
    stats.outcomes = typed.iter().map(|t| t.2.outcomes.len()).sum();
    stats
}

fn replay(target: &str, file: &Path) -> Result<String, String> {
    let b = std::fs::read(file).map_err(|e| e.to_string())?;
    match target {
        "bag" => exercise_bag(&b),
        "mcap" => exercise_mcap(&b),
        "def" => {
            let (dt, def) = split_def_input(&b);
            exercise_def(&dt, &def)
        }
        "decode" | "cdr" => {
            let (dt, rest) = split_def_input(&b);
            let rest = rest.into_bytes();
            let nul = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            // The payload is raw bytes: take it from the file, not the lossy text.
            let head = dt.len() + 1 + nul + 1;
            let def = String::from_utf8_lossy(&rest[..nul]).into_owned();
            let payload = b.get(head..).unwrap_or_default();
            if target == "cdr" {
                exercise_cdr(&dt, &def, payload)
            } else {
                exercise_decode(&dt, &def, payload)
            }
        }
        t => Err(format!("unknown target {t}")),
    }
}

fn main() {
    let mut secs = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(60.0);
    let mut target = "all".to_string();
    let mut seed = 0x5EED_u64;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bags_dir = root.join("../shared/bags");
    let mut crash_dir = root.join("out/fuzz-crashes");
    let mut replay_args: Option<(String, PathBuf)> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--secs" => secs = val().parse().expect("--secs takes seconds"),
            "--target" => target = val(),
            "--seed" => seed = val().parse().expect("--seed takes a number"),
            "--bags" => bags_dir = PathBuf::from(val()),
            "--crashes" => crash_dir = PathBuf::from(val()),
            "--replay" => {
                let t = val();
                replay_args = Some((t, PathBuf::from(val())));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix("bagstream-fuzz")
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            Path::new("/dev/shm")
        } else {
            Path::new("/tmp")
        })
        .expect("scratch dir");

    let panic_msg = Arc::new(Mutex::new(String::new()));
    {
        let pm = panic_msg.clone();
        std::panic::set_hook(Box::new(move |info| {
            *pm.lock().unwrap_or_else(|p| p.into_inner()) = info.to_string();
        }));
    }
    if let Some((t, file)) = replay_args {
        let r = catch_unwind(AssertUnwindSafe(|| replay(&t, &file)));
        match r {
            Ok(r) => println!("{t} {}: {r:?}", file.display()),
            Err(_) => println!(
                "{t} {}: PANIC {}",
                file.display(),
                panic_msg.lock().unwrap()
            ),
        }
        return;
    }

    let mut seed_bags = generated_bags(scratch.path());
    let shared = ros1_bags(&bags_dir);
    if shared.is_empty() {
        eprintln!(
            "note: {} has no ROS1 bags; seeding with generated bags only",
            bags_dir.display()
        );
    }
    let fixtures = ros1_bags(&root.join("fixtures"));
    let small: Vec<PathBuf> = shared
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() <= MAX_SEED))
        .cloned()
        .collect();
    seed_bags.extend(small);
    let bag_seeds: Vec<Vec<u8>> = seed_bags
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let mut type_sources = shared.clone();
    type_sources.extend(fixtures);
    type_sources.extend(seed_bags.iter().cloned());
    let types = type_seeds(&type_sources);
    let cdr_types = cdr_seeds(root, &bags_dir);
    let mut mcap_seeds = generated_mcaps();
    mcap_seeds.extend(mcap_files(&bags_dir));
    eprintln!(
        "seeds: {} bags, {} MCAP files, {} message types, {} payloads; {} ROS 2 types, {} CDR payloads",
        bag_seeds.len(),
        mcap_seeds.len(),
        types.len(),
        types.iter().map(|t| t.payloads.len()).sum::<usize>(),
        cdr_types.len(),
        cdr_types.iter().map(|t| t.payloads.len()).sum::<usize>()
    );

    let current = Arc::new(Mutex::new((String::new(), Vec::new())));
    let started = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    {
        // Watchdog: an input that never returns is saved before the process is stopped.
        let (current, started, done) = (current.clone(), started.clone(), done.clone());
        let crash_dir = crash_dir.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            if done.load(Ordering::Relaxed) {
                return;
            }
            let s = started.load(Ordering::Relaxed);
            if s != 0 && epoch.elapsed().as_millis() as u64 > s + HANG.as_millis() as u64 {
                let cur = current.lock().unwrap_or_else(|p| p.into_inner());
                let _ = std::fs::create_dir_all(&crash_dir);
                let p = crash_dir.join(format!("{}-hang.bin", cur.0));
                let _ = std::fs::write(&p, &cur.1);
                eprintln!(
                    "fuzz {}: HANG (over {HANG:?}), input saved to {}",
                    cur.0,
                    p.display()
                );
                std::process::exit(3);
            }
        });
    }
    let mut fz = Fuzzer {
        rng: Rng(seed),
        crash_dir,
        current,
        started,
        panic_msg,
        epoch,
        seen_panics: HashSet::new(),
    };
    let targets: Vec<&str> = match target.as_str() {
        "all" => vec!["bag", "mcap", "def", "decode", "cdr"],
        t => vec![t],
    };
    let mut total_crashes = 0;
    for t in targets {
        let t0 = Instant::now();
        let stats = match t {
            "bag" => fuzz_bag(&mut fz, bag_seeds.clone(), secs),
            "mcap" => fuzz_mcap(&mut fz, mcap_seeds.clone(), secs),
            "def" => fuzz_def(&mut fz, &types, secs),
            "decode" => fuzz_decode(&mut fz, &types, secs),
            "cdr" => fuzz_cdr(&mut fz, &cdr_types, secs),
            other => panic!("unknown target {other} (bag, mcap, def, decode, cdr, all)"),
        };
        let took = t0.elapsed().as_secs_f64();
        total_crashes += stats.crashes + stats.slow + stats.big;
        println!(
            "fuzz {t}: {} execs in {took:.1} s ({:.0}/s), {} crashes, {} slow, {} oversized \
             allocations; corpus {}, distinct outcomes {}",
            stats.execs,
            stats.execs as f64 / took.max(1e-9),
            stats.crashes,
            stats.slow,
            stats.big,
            stats.corpus,
            stats.outcomes
        );
    }
    done.store(true, Ordering::Relaxed);
    if total_crashes > 0 {
        println!(
            "crashing inputs are in {}; replay one with --replay TARGET FILE",
            fz.crash_dir.display()
        );
        std::process::exit(1);
    }
}
