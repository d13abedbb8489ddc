//! Broken bags, one test per case: each builds its file from a generated bag plus byte
//! surgery at offsets read from the format (never magic numbers), then checks what bagstream
//! does. Where the data before a cut is intact, the intact part converts with a warning naming
//! the offset; otherwise the answer is one clear error line naming the file and the offset (or
//! topic and field), with exit status 1 and no dataset left behind. docs/robustness.md lists
//! the cases and the answers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bagstream::bag::ros1::record::{next_record, op, push_field, push_record, MAGIC};
use bagstream::bag::ros1::scan::scan;
use bagstream::bag::ros1::write::{BagWriter, WriteOptions};
use bagstream::bag::ros1::{ChunkInfo, Compression};
use bagstream::synth::{joint_state, FLOAT64, JOINT_STATE};
use bagstream::{Time, NANOS};
use common::*;

/// Where every generated bag starts.
const T0: Time = 1_000 * NANOS;
/// Messages are 10 Hz and so is the grid: frame k picks message k.
const STEP: Time = NANOS / 10;

const CFG_A: &str = "fps: 10\ntask: t\nfeatures:\n  x: {topic: /a, field: data}\n";

fn opts(compression: Compression, write_index: bool) -> WriteOptions {
    // Small chunks: a 50-message bag has several, so cuts can land between and inside them.
    WriteOptions {
        compression,
        chunk_size: 400,
        write_index,
    }
}

/// `(time, value)` of message i: T0 + i * 0.1 s, value i.
/// A std_msgs/Float64 connection on `topic`.
fn add_float64(w: &mut BagWriter, topic: &str) -> u32 {
    let f = FLOAT64;
    w.add_connection(topic, f.datatype, f.md5sum, f.definition, None, false)
}

fn ticks(n: usize) -> Vec<(Time, f64)> {
    (0..n).map(|i| (T0 + i as i64 * STEP, i as f64)).collect()
}

fn u32_at(bytes: &[u8], pos: usize) -> usize {
    u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize
}

fn put_u32(bytes: &mut [u8], pos: usize, v: u32) {
    bytes[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offset in `bytes` of the value of header field `name` of the record at `pos`.
fn field_value(bytes: &[u8], pos: usize, name: &str) -> usize {
    let end = pos + 4 + u32_at(bytes, pos);
    let mut p = pos + 4;
    while p < end {
        let len = u32_at(bytes, p);
        let field = &bytes[p + 4..p + 4 + len];
        if field.starts_with(name.as_bytes()) && field.get(name.len()) == Some(&b'=') {
            return p + 4 + name.len() + 1;
        }
        p += 4 + len;
    }
    panic!("record at {pos} has no field {name}");
}

/// The bag's chunks as the scanner finds them.
fn chunks(path: &Path) -> Vec<ChunkInfo> {
    scan(path).unwrap().chunks
}

fn messages_in(chunks: &[ChunkInfo]) -> usize {
    chunks
        .iter()
        .flat_map(|c| c.counts.iter().map(|x| x.1 as usize))
        .sum()
}

/// The bag header's `index_pos`: where the index section starts.
fn index_pos(bytes: &[u8]) -> usize {
    let v = field_value(bytes, MAGIC.len(), "index_pos");
    u64::from_le_bytes(bytes[v..v + 8].try_into().unwrap()) as usize
}

/// File offsets of the message records of an uncompressed chunk.
fn message_records(bytes: &[u8], chunk: &ChunkInfo) -> Vec<usize> {
    let data = &bytes[chunk.data_pos as usize..(chunk.data_pos + chunk.data_len) as usize];
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rec) = next_record(data, pos).unwrap() {
        if rec.header.op().unwrap() == op::MESSAGE_DATA {
            out.push(chunk.data_pos as usize + rec.pos);
        }
        pos = rec.end;
    }
    out
}

/// The values of feature `x`, frame by frame.
fn values(out: &Path, feature: &str) -> Vec<f32> {
    f32_rows(&read_parquet(&data_file(out)), feature)
        .into_iter()
        .flatten()
        .collect()
}

fn expected(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32).collect()
}

struct Run {
    code: i32,
    stderr: String,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    /// The one `bagstream: error:` line of a failed run.
    fn error(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("bagstream: error: "))
            .collect();
        assert_eq!(lines.len(), 1, "not one error line: {}", self.stderr);
        lines[0]
    }

    fn warnings(&self) -> String {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `bagstream convert -q --config <cfg> --out <tmp> <bag>`.
fn cli(cfg: &str, bag: &Path) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("c.yaml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = dir.path().join("ds");
    let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--config"])
        .arg(&cfg_path)
        .arg("--out")
        .arg(&out)
        .arg(bag)
        .output()
        .unwrap();
    Run {
        code: o.status.code().expect("exited, not killed by a signal"),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        out,
        _dir: dir,
    }
}

/// Converts with the binary and expects exit 1 with one error line holding every `want`
/// (the file name is always wanted), and no dataset left.
fn fails(cfg: &str, bag: &Path, want: &[&str]) -> String {
    let r = cli(cfg, bag);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let line = r.error().to_string();
    assert!(line.contains(&bag.display().to_string()), "{line}");
    for w in want {
        assert!(line.contains(w), "missing {w:?} in {line}");
    }
    assert!(!r.out.exists(), "a failed run left {}", r.out.display());
    line
}

/// Converts with the binary and expects success; returns the run (for its warnings).
fn converts(cfg: &str, bag: &Path) -> Run {
    let r = cli(cfg, bag);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

// ---- Truncated ----

#[test]
fn truncated_in_the_version_line_is_not_a_bag() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::Lz4, true), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let cut = write(&dir.path().join("cut.bag"), &bytes[..MAGIC.len() / 2]);
    fails(CFG_A, &cut, &["not a bag", "cut inside the version line"]);
}

#[test]
fn truncated_in_the_bag_header_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::Lz4, true), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let header_pos = MAGIC.len();
    let header_len = u32_at(&bytes, header_pos);
    // Inside the header's fields: nothing after it can be found without them.
    let cut = write(
        &dir.path().join("cut.bag"),
        &bytes[..header_pos + 4 + header_len / 2],
    );
    fails(
        CFG_A,
        &cut,
        &[
            &format!("at offset {}", header_pos + 4),
            "runs past the end of the file",
        ],
    );
}

#[test]
fn truncated_inside_a_chunk_header_converts_the_chunks_before() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::Lz4, true), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let ch = chunks(&full);
    assert!(ch.len() >= 4, "{} chunks", ch.len());
    let k = 2;
    let header_len = u32_at(&bytes, ch[k].pos as usize);
    let cut_at = ch[k].pos as usize + 4 + header_len / 2;
    let cut = write(&dir.path().join("cut.bag"), &bytes[..cut_at]);
    let r = converts(CFG_A, &cut);
    let w = r.warnings();
    assert!(w.contains(&format!("offset {}", ch[k].pos)), "{w}");
    assert!(w.contains(&cut.display().to_string()), "{w}");
    assert_eq!(values(&r.out, "x"), expected(messages_in(&ch[..k])));
}

#[test]
fn truncated_mid_chunk_converts_the_chunks_before() {
    let dir = tempfile::tempdir().unwrap();
    for c in [Compression::None, Compression::Bz2, Compression::Lz4] {
        let full = dir.path().join(format!("full_{}.bag", c.as_str()));
        float64_bag(&full, opts(c, true), &ticks(50));
        let bytes = std::fs::read(&full).unwrap();
        let ch = chunks(&full);
        let k = 3;
        let cut_at = (ch[k].data_pos + ch[k].data_len / 2) as usize;
        let cut = write(&dir.path().join("cut.bag"), &bytes[..cut_at]);
        // Through the library too: the summary carries the same warning.
        let out = dir.path().join(format!("ds_{}", c.as_str()));
        let s = convert_with(CFG_A, &[&cut], &out, 1.0).unwrap();
        let w = s.warnings.join("\n");
        assert!(w.contains(&format!("offset {}", ch[k].pos)), "{c:?}: {w}");
        assert!(w.contains("index unusable"), "{c:?}: {w}");
        let n = messages_in(&ch[..k]);
        assert_eq!(s.frames(), n as u64, "{c:?}");
        assert_eq!(values(&out, "x"), expected(n), "{c:?}");
    }
}

#[test]
fn truncated_in_the_index_section_converts_everything() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::Bz2, true), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let index = index_pos(&bytes);
    // Inside the first record of the index section (the connection record).
    let cut_at = index + 4 + u32_at(&bytes, index) / 2;
    let cut = write(&dir.path().join("cut.bag"), &bytes[..cut_at]);
    let r = converts(CFG_A, &cut);
    let w = r.warnings();
    assert!(w.contains("index unusable"), "{w}");
    assert!(w.contains(&format!("offset {index}")), "{w}");
    assert_eq!(values(&r.out, "x"), expected(50));
}

#[test]
fn unfinished_chunk_of_a_killed_recorder_converts_the_chunks_before() {
    // ROS's recorder writes a chunk's header with sizes 0 and fills them in when the chunk
    // closes; killed in between, it leaves that header and part of the data, and no index.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::Lz4, false), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let ch = chunks(&full);
    let last = ch.last().unwrap();
    let mut killed = bytes[..last.pos as usize].to_vec();
    let mut h = Vec::new();
    push_field(&mut h, "op", &[op::CHUNK]);
    push_field(&mut h, "compression", b"lz4");
    push_field(&mut h, "size", &0u32.to_le_bytes());
    push_record(&mut killed, &h, &[]);
    let half = &bytes[last.data_pos as usize..(last.data_pos + last.data_len / 2) as usize];
    killed.extend_from_slice(half);
    let bag = write(&dir.path().join("killed.bag"), &killed);
    let r = converts(CFG_A, &bag);
    let w = r.warnings();
    assert!(w.contains("never finished"), "{w}");
    assert!(w.contains(&format!("offset {}", last.pos)), "{w}");
    assert_eq!(
        values(&r.out, "x"),
        expected(messages_in(&ch[..ch.len() - 1]))
    );
}

// ---- Corrupt records ----

#[test]
fn header_field_length_past_the_record_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::None, true), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let ch = chunks(&full);

    // In a message record inside a middle chunk: found when that chunk is read.
    let rec = message_records(&bytes, &ch[2])[1];
    let mut bad = bytes.clone();
    put_u32(&mut bad, rec + 4, 0xFFFF_FF00);
    let bag = write(&dir.path().join("in_chunk.bag"), &bad);
    fails(
        CFG_A,
        &bag,
        &[
            &format!("at offset {}", rec + 4),
            "runs past the header end",
        ],
    );

    // In a chunk record's own header: the index cannot be checked against it, and the
    // sequential scan meets a record that is all there but does not parse. An error, not a
    // silent stop: the chunks after it would be lost.
    let pos = ch[2].pos as usize;
    let mut bad = bytes.clone();
    put_u32(&mut bad, pos + 4, u32_at(&bytes, pos) as u32 + 1);
    let bag = write(&dir.path().join("chunk_header.bag"), &bad);
    fails(
        CFG_A,
        &bag,
        &[
            &format!("at offset {}", pos + 4),
            "runs past the header end",
        ],
    );
}

#[test]
fn unknown_op_code_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bag");
    float64_bag(&full, opts(Compression::None, true), &ticks(50));
    let bytes = std::fs::read(&full).unwrap();
    let ch = chunks(&full);

    let rec = message_records(&bytes, &ch[2])[0];
    let mut bad = bytes.clone();
    bad[field_value(&bytes, rec, "op")] = 0x2A;
    let bag = write(&dir.path().join("in_chunk.bag"), &bad);
    fails(
        CFG_A,
        &bag,
        &[&format!("at offset {rec}"), "unknown op code 0x2a"],
    );

    let pos = ch[2].pos as usize;
    let mut bad = bytes.clone();
    bad[field_value(&bytes, pos, "op")] = 0x2A;
    let bag = write(&dir.path().join("top_level.bag"), &bad);
    fails(
        CFG_A,
        &bag,
        &[&format!("at offset {pos}"), "unknown op code 0x2a"],
    );
}

#[test]
fn declared_uncompressed_size_that_disagrees_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for c in [Compression::None, Compression::Bz2, Compression::Lz4] {
        let full = dir.path().join(format!("full_{}.bag", c.as_str()));
        float64_bag(&full, opts(c, true), &ticks(50));
        let bytes = std::fs::read(&full).unwrap();
        let ch = chunks(&full);
        let pos = ch[2].pos as usize;
        let size_at = field_value(&bytes, pos, "size");
        let size = u32_at(&bytes, size_at) as u32;
        for (lie, want) in [
            (size - 10, "past its declared size"),
            (size + 10, "declares"),
        ] {
            if c == Compression::None && lie < size {
                continue;
            }
            let mut bad = bytes.clone();
            put_u32(&mut bad, size_at, lie);
            let bag = write(&dir.path().join("lie.bag"), &bad);
            fails(CFG_A, &bag, &[&format!("at offset {pos}"), want]);
        }
    }
}

#[test]
fn bad_bz2_and_lz4_data_is_an_error_naming_the_chunk() {
    let dir = tempfile::tempdir().unwrap();
    for (c, want) in [
        (Compression::Bz2, "bz2 chunk"),
        (Compression::Lz4, "lz4 chunk"),
    ] {
        let full = dir.path().join(format!("full_{}.bag", c.as_str()));
        float64_bag(&full, opts(c, true), &ticks(50));
        let bytes = std::fs::read(&full).unwrap();
        let ch = chunks(&full);
        let (from, len) = (ch[2].data_pos as usize, ch[2].data_len as usize);
        // The stream's magic and its middle: both must be refused, never decoded to garbage.
        for range in [from..from + 4, from + len / 3..from + 2 * len / 3] {
            let mut bad = bytes.clone();
            bad[range].fill(0xA5);
            let bag = write(&dir.path().join("bad.bag"), &bad);
            fails(CFG_A, &bag, &[&format!("at offset {}", ch[2].pos), want]);
        }
    }
}

#[test]
fn decompression_bomb_is_stopped_at_the_declared_size() {
    // 1 GiB of zeros in a few MB of lz4 or bz2, in place of a chunk that declares a few
    // hundred bytes. tests/alloc_bounds.rs proves with a counting allocator that the 1 GiB is
    // never held.
    let dir = tempfile::tempdir().unwrap();
    for (c, bomb) in [
        (Compression::Lz4, lz4_bomb(1 << 30)),
        (Compression::Bz2, bz2_bomb(1 << 30)),
    ] {
        let full = dir.path().join(format!("full_{}.bag", c.as_str()));
        float64_bag(&full, opts(c, false), &ticks(50));
        let bytes = std::fs::read(&full).unwrap();
        let ch = chunks(&full);
        let bag = write(
            &dir.path().join("bomb.bag"),
            &replace_chunk_data(&bytes, &ch[2], &bomb),
        );
        fails(
            CFG_A,
            &bag,
            &[
                &format!("at offset {}", ch[2].pos),
                &format!(
                    "{} chunk expands past its declared size of {} bytes",
                    c.as_str(),
                    ch[2].uncompressed_size
                ),
            ],
        );
    }
}

// ---- Lengths that lie ----

/// A JointState bag on `/joint_states` at 10 Hz: 3 joints, position i + j; `edit(i, msg)`
/// may change message i's bytes.
fn joint_bag(path: &Path, n: usize, stamp_shift: Time, edit: impl Fn(usize, &mut Vec<u8>)) {
    let mut w = BagWriter::create(path, opts(Compression::Lz4, true)).unwrap();
    let c = w.add_connection(
        "/joint_states",
        JOINT_STATE.datatype,
        JOINT_STATE.md5sum,
        JOINT_STATE.definition,
        None,
        false,
    );
    let names: Vec<String> = (0..3).map(|j| format!("j{j}")).collect();
    for (i, (t, v)) in ticks(n).into_iter().enumerate() {
        let pos: Vec<f64> = (0..3).map(|j| v + j as f64).collect();
        let mut msg = joint_state(i as u32, t + stamp_shift, &names, &pos, &pos, &pos);
        edit(i, &mut msg);
        w.write(c, t, &msg).unwrap();
    }
    w.finish().unwrap();
}

/// Offsets in a serialized JointState (header: seq u32, stamp 8 bytes, frame_id string).
const FRAME_ID_LEN_AT: usize = 4 + 8;
/// With an empty frame_id, the `name[]` count follows the frame_id length.
const NAME_COUNT_AT: usize = FRAME_ID_LEN_AT + 4;

const CFG_JOINTS: &str =
    "fps: 10\ntask: t\nfeatures:\n  q: {topic: /joint_states, field: position}\n";

#[test]
fn lying_length_prefix_is_an_error_naming_topic_and_field() {
    let dir = tempfile::tempdir().unwrap();
    for (name, at) in [("count", NAME_COUNT_AT), ("string", FRAME_ID_LEN_AT)] {
        let bag = dir.path().join(format!("{name}.bag"));
        // Message 5 claims 2^31 names (or a frame_id of 2^31 bytes).
        joint_bag(&bag, 20, 0, |i, m| {
            if i == 5 {
                put_u32(m, at, 0x8000_0000);
            }
        });
        let line = fails(
            CFG_JOINTS,
            &bag,
            &[
                "topic /joint_states",
                "field `position`",
                &format!("message at {:.9} s", (T0 + 5 * STEP) as f64 / 1e9),
                "needs",
            ],
        );
        let field = if name == "count" {
            "`name`"
        } else {
            "frame_id"
        };
        assert!(line.contains(field), "{line}");
    }
}

// ---- Message definitions ----

/// A bag with one topic `/s` of type `datatype` whose definition is `def`, holding 20
/// messages of `payload`.
fn typed_bag(path: &Path, datatype: &str, def: &str, payload: &[u8]) {
    let mut w = BagWriter::create(path, opts(Compression::None, true)).unwrap();
    let c = w.add_connection("/s", datatype, "0", def, None, false);
    for (t, _) in ticks(20) {
        w.write(c, t, payload).unwrap();
    }
    w.finish().unwrap();
}

const CFG_S: &str = "fps: 10\ntask: t\nfeatures:\n  s: {topic: /s, field: x}\n";

#[test]
fn empty_message_definition_is_an_error_naming_topic_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("empty_def.bag");
    typed_bag(&bag, "led_array_msgs/Status", "", &[0u8; 8]);
    fails(
        CFG_S,
        &bag,
        &["topic /s", "field `x`", "message definition is empty"],
    );

    // The real bag from webviz, whose connection carries an empty definition.
    let Some(shared) = shared_bags() else { return };
    let real = shared.join("webviz/bag-with-empty-message-definition.bag");
    let src = bagstream::bag::open(&real).unwrap();
    let s = src.summary();
    let conn = s
        .connections
        .iter()
        .find(|c| c.definition.is_empty())
        .expect("the webviz bag has a connection without definition");
    let cfg = format!(
        "fps: 10\ntask: t\nfeatures:\n  s: {{topic: {}, field: data}}\n",
        serde_json::to_string(&conn.topic).unwrap()
    );
    fails(
        &cfg,
        &real,
        &[
            &format!("topic {}", conn.topic),
            "field `data`",
            "message definition is empty",
        ],
    );
}

#[test]
fn unknown_type_in_a_definition_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("unknown.bag");
    typed_bag(
        &bag,
        "pkg/Outer",
        "float64 x\nother_pkg/Missing inner\n",
        &[0u8; 16],
    );
    fails(
        CFG_S,
        &bag,
        &[
            "topic /s",
            "field `inner`",
            "unknown type `other_pkg/Missing`",
        ],
    );
}

#[test]
fn self_referencing_type_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("self.bag");
    let def = "float64 x\nNode next\n================\nMSG: pkg/Node\nfloat64 v\nNode next\n";
    typed_bag(&bag, "pkg/Tree", def, &[0u8; 16]);
    fails(CFG_S, &bag, &["topic /s", "contains itself", "pkg/Node"]);
}

/// `pkg/L0` holding `pkg/L1` ... holding `pkg/L{depth}`, whose only field is `float64 x`.
fn nested_definition(depth: usize) -> String {
    let mut def = "pkg/L1 a\n".to_string();
    for level in 1..=depth {
        def.push_str(&format!("================\nMSG: pkg/L{level}\n"));
        if level == depth {
            def.push_str("float64 x\n");
        } else {
            def.push_str(&format!("pkg/L{} a\n", level + 1));
        }
    }
    def
}

#[test]
fn very_deep_nesting_is_an_error_and_a_deep_but_sane_one_converts() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.bag");
    typed_bag(
        &deep,
        "pkg/L0",
        &nested_definition(1000),
        &7f64.to_le_bytes(),
    );
    fails(CFG_S, &deep, &["topic /s", "nest deeper than 64 levels"]);

    let sane = dir.path().join("sane.bag");
    typed_bag(&sane, "pkg/L0", &nested_definition(40), &7f64.to_le_bytes());
    let path = format!("{}x", "a.".repeat(40));
    let cfg = format!("fps: 10\ntask: t\nfeatures:\n  s: {{topic: /s, field: {path}}}\n");
    let r = converts(&cfg, &sane);
    assert_eq!(values(&r.out, "s"), vec![7.0; 20]);
}

#[test]
fn payload_shorter_than_the_definition_is_an_error_naming_topic_and_field() {
    let dir = tempfile::tempdir().unwrap();
    for short in [0usize, 7] {
        let bag = dir.path().join(format!("short{short}.bag"));
        let mut w = BagWriter::create(&bag, opts(Compression::Lz4, true)).unwrap();
        let a = add_float64(&mut w, "/a");
        for (i, (t, v)) in ticks(30).into_iter().enumerate() {
            let b = v.to_le_bytes();
            // Message `short` holds 4 of the 8 bytes of its float64.
            let payload = if i == short { &b[..4] } else { &b[..] };
            w.write(a, t, payload).unwrap();
        }
        w.finish().unwrap();
        let when = if short == 0 {
            "first message, at"
        } else {
            "message at"
        };
        fails(
            CFG_A,
            &bag,
            &[
                "topic /a",
                "field `data`",
                &format!("{when} {:.9} s", (T0 + short as i64 * STEP) as f64 / 1e9),
                "message ends at byte 4 but field `data` needs 8 bytes",
            ],
        );
    }
}

#[test]
fn payload_longer_than_the_definition_converts_what_the_definition_describes() {
    // ROS's own deserializers read what the definition describes and ignore trailing bytes;
    // so does bagstream (docs/robustness.md).
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("long.bag");
    let mut w = BagWriter::create(&bag, opts(Compression::None, true)).unwrap();
    let a = add_float64(&mut w, "/a");
    for (t, v) in ticks(30) {
        let mut payload = v.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0xEE; 13]);
        w.write(a, t, &payload).unwrap();
    }
    w.finish().unwrap();
    let r = converts(CFG_A, &bag);
    assert_eq!(values(&r.out, "x"), expected(30));
}

// ---- Time ----

#[test]
fn messages_out_of_order_inside_and_across_chunks_come_out_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut msgs = ticks(60);
    // A fixed shuffle (multiplication by a unit mod 60) scatters times over every chunk.
    let order: Vec<usize> = (0..60).map(|i| (i * 37) % 60).collect();
    msgs = order.iter().map(|&i| msgs[i]).collect();
    for indexed in [true, false] {
        let bag = dir.path().join(format!("shuffled_{indexed}.bag"));
        float64_bag(&bag, opts(Compression::Lz4, indexed), &msgs);
        let ch = chunks(&bag);
        assert!(ch.len() >= 4);
        // The chunks' time ranges overlap: times go back both inside and across chunks.
        assert!(ch.windows(2).all(|w| w[1].start < w[0].end), "{ch:?}");
        let r = converts(CFG_A, &bag);
        assert_eq!(values(&r.out, "x"), expected(60), "indexed={indexed}");
    }
}

#[test]
fn duplicate_timestamps_follow_the_documented_tie_rules() {
    // Every time twice: first value i, then 100 + i. `nearest` takes the first in stream order,
    // `asof` the last (docs/alignment.md).
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<(Time, f64)> = ticks(30)
        .into_iter()
        .flat_map(|(t, v)| [(t, v), (t, 100.0 + v)])
        .collect();
    let bag = dir.path().join("dup.bag");
    float64_bag(&bag, opts(Compression::Bz2, true), &msgs);
    let r = converts(CFG_A, &bag);
    assert_eq!(values(&r.out, "x"), expected(30));
    let asof = "fps: 10\ntask: t\nfeatures:\n  x: {topic: /a, field: data, match: asof}\n";
    let r = converts(asof, &bag);
    let want: Vec<f32> = (0..30).map(|i| 100.0 + i as f32).collect();
    assert_eq!(values(&r.out, "x"), want);
}

#[test]
fn clock_jump_between_header_stamps_and_record_times() {
    let dir = tempfile::tempdir().unwrap();
    let hours = 3 * 3600 * NANOS;
    let header = "fps: 10\ntask: t\nfeatures:\n  q: {topic: /joint_states, field: position, stamp: header}\n";

    // Stamps 3 h ahead of the record times: the grid follows the stamps, the reader reads
    // that much earlier, and every message finds its tick.
    let ahead = dir.path().join("ahead.bag");
    joint_bag(&ahead, 20, hours, |_, _| {});
    let r = converts(header, &ahead);
    let q = f32_rows(&read_parquet(&data_file(&r.out)), "q");
    let want: Vec<Vec<f32>> = (0..20)
        .map(|i| (0..3).map(|j| (i + j) as f32).collect())
        .collect();
    assert_eq!(q, want);

    // Stamps 3 h behind: each message arrives 3 h after its tick, far past tolerance plus
    // max_delay, so no tick can use it: a clear error, not an empty dataset.
    let behind = dir.path().join("behind.bag");
    joint_bag(&behind, 20, -hours, |_, _| {});
    fails(header, &behind, &["no frame survived alignment"]);

    // A header-stamped source against a receive-stamped one on the same bag: their
    // timelines are 3 h apart and do not overlap.
    let both = format!("{header}  x: {{topic: /joint_states, field: velocity}}\n");
    let line = fails(&both, &ahead, &["no frame fits", "/joint_states"]);
    let t = |s: Time| format!("{:.3}", s as f64 / 1e9);
    assert!(line.contains(&t(T0 + hours)), "{line}");
    assert!(line.contains(&t(T0)), "{line}");
}

#[test]
fn topics_that_do_not_overlap_in_time_are_an_error_listing_their_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("apart.bag");
    let mut w = BagWriter::create(&bag, opts(Compression::Lz4, true)).unwrap();
    let (a, b) = (add_float64(&mut w, "/a"), add_float64(&mut w, "/b"));
    for (t, v) in ticks(20) {
        w.write(a, t, &v.to_le_bytes()).unwrap();
    }
    for (t, v) in ticks(20) {
        w.write(b, t + 100 * NANOS, &v.to_le_bytes()).unwrap();
    }
    w.finish().unwrap();
    let cfg = format!("{CFG_A}  y: {{topic: /b, field: data}}\n");
    fails(
        &cfg,
        &bag,
        &[
            "no frame fits",
            "/a 1000.000..1001.900 s",
            "/b 1100.000..1101.900 s",
        ],
    );
}

// ---- Empty ----

#[test]
fn empty_bag_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("empty.bag");
    BagWriter::create(&bag, WriteOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    fails(CFG_A, &bag, &["the bag is empty"]);
}

#[test]
fn no_messages_on_the_configured_topic_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("silent.bag");
    let mut w = BagWriter::create(&bag, opts(Compression::None, true)).unwrap();
    add_float64(&mut w, "/a");
    let b = add_float64(&mut w, "/b");
    for (t, v) in ticks(20) {
        w.write(b, t, &v.to_le_bytes()).unwrap();
    }
    w.finish().unwrap();
    fails(CFG_A, &bag, &["topic /a has no messages"]);
}

#[test]
fn a_topic_with_one_message_gives_one_frame() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("once.bag");
    let mut w = BagWriter::create(&bag, opts(Compression::Lz4, true)).unwrap();
    let a = add_float64(&mut w, "/a");
    let b = add_float64(&mut w, "/b");
    for (t, v) in ticks(40) {
        w.write(a, t, &v.to_le_bytes()).unwrap();
        if t == T0 + 25 * STEP {
            w.write(b, t, &(-5f64).to_le_bytes()).unwrap();
        }
    }
    w.finish().unwrap();
    // The grid runs from the latest first message to the earliest last one: the one tick at
    // 2.5 s.
    let cfg = format!("{CFG_A}  y: {{topic: /b, field: data}}\n");
    let r = converts(&cfg, &bag);
    assert_eq!(values(&r.out, "x"), vec![25.0]);
    assert_eq!(values(&r.out, "y"), vec![-5.0]);
    // Alone, it is a one-frame episode too.
    let only = "fps: 10\ntask: t\nfeatures:\n  y: {topic: /b, field: data}\n";
    let r = converts(only, &bag);
    assert_eq!(values(&r.out, "y"), vec![-5.0]);
}
