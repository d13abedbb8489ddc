//! ROS 2 tests: the ROS 2 .msg parser, and CDR decoding against payloads written by a small
//! test-only CDR writer (both byte orders; padding filled with junk so that a decoder reading
//! padding as data fails). tests/cdr_reference.rs checks against the independent `rosbags`.

use proptest::prelude::*;

use super::def::{Arity, FieldType, Primitive};
use super::testdefs::*;
use super::{
    DecodeError, Encoding, Extractor, FieldPath, MsgError, Schema, SchemaFormat, StampReader,
    StringReader,
};

/// A CDR serializer: encapsulation header, then every value aligned to its size (at most 8)
/// relative to the byte after the header; padding bytes are 0xEE, not zero.
struct Cdr {
    buf: Vec<u8>,
    big: bool,
}

impl Cdr {
    fn new(big: bool) -> Cdr {
        Cdr {
            buf: vec![0, if big { 0 } else { 1 }, 0, 0],
            big,
        }
    }
    fn pad(&mut self, align: usize) {
        while (self.buf.len() - 4) % align != 0 {
            self.buf.push(0xEE);
        }
    }
    fn put(&mut self, le: &[u8]) -> &mut Self {
        self.pad(le.len().min(8));
        if self.big {
            self.buf.extend(le.iter().rev());
        } else {
            self.buf.extend_from_slice(le);
        }
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.u8(0)
    }
    fn strs(&mut self, v: &[&str]) -> &mut Self {
        self.u32(v.len() as u32);
        for s in v {
            self.str(s);
        }
        self
    }
    fn f64s(&mut self, v: &[f64]) -> &mut Self {
        self.u32(v.len() as u32);
        for &x in v {
            self.f64(x);
        }
        self
    }
    /// A ROS 2 std_msgs/Header.
    fn header(&mut self, sec: i32, nanosec: u32, frame: &str) -> &mut Self {
        self.i32(sec).u32(nanosec).str(frame)
    }
    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

fn ros2(datatype: &str, text: &str) -> Schema {
    Schema::parse_ros2(datatype, text).unwrap_or_else(|e| panic!("{e}"))
}

fn cdr_ex(s: &Schema, path: &str) -> Extractor {
    Extractor::with_encoding(s, &FieldPath::parse(path).unwrap(), None, Encoding::Cdr)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn values(e: &Extractor, data: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    e.extract(data, &mut out)
        .unwrap_or_else(|err| panic!("{}: {err}", e.path()));
    out
}

fn joint_state(big: bool, names: &[&str], pos: &[f64], vel: &[f64]) -> Vec<u8> {
    Cdr::new(big)
        .header(1_700_000_000, 250_000_000, "base")
        .strs(names)
        .f64s(pos)
        .f64s(vel)
        .f64s(&[])
        .done()
}

#[test]
fn ros2_header_and_time_parse_as_messages() {
    let s = ros2("sensor_msgs/msg/JointState", JOINT_STATE_ROS2);
    assert_eq!(s.datatype(), "sensor_msgs/msg/JointState");
    let (_, h) = s.root().field("header").unwrap();
    let FieldType::Message(hid) = h.ty else {
        panic!("header is a message")
    };
    assert_eq!(
        s.message(hid).field_list(),
        "stamp (builtin_interfaces/Time), frame_id (string)"
    );
    let leaves = s.leaves();
    assert_eq!(leaves[0], ("header.stamp.sec".into(), "int32".into()));
    assert_eq!(leaves[1], ("header.stamp.nanosec".into(), "uint32".into()));
    // Absolute times are stamps, not features: not offered in config templates.
    assert_eq!(
        s.numeric_fields(),
        ["position", "velocity", "effort"],
        "{:?}",
        s.numeric_fields()
    );
    let log = ros2(
        "rcl_interfaces/msg/Log",
        "byte DEBUG=10\nbuiltin_interfaces/Time stamp\nuint8 level\nstring name\n===\n\
         MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n",
    );
    assert_eq!(log.numeric_fields(), ["level"]);
}

#[test]
fn ros2_types_bounds_defaults_constants_comments() {
    let text = "# comment with = and \"quotes\n\
                byte b\nchar c\nwstring w\n\
                string<=22 bs \"Hello # not a comment\"  # a comment\n\
                string s 'it''s'\n\
                int32[] ints [1, 2, 3]\n\
                float64[<=5] bounded\n\
                string<=3[<=2] tiny\n\
                int8[4] fixed\n\
                int32 X=5\n\
                string S=\"a # b\"  # trailing\n\
                int32 Y = -7\n\
                pkg/msg/Other o\n\
                Other o2\n\
                ===\nMSG: pkg/Other\nfloat64 v 1.5\n";
    let s = ros2("pkg/msg/Types", text);
    let f = &s.root().fields;
    let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["b", "c", "w", "bs", "s", "ints", "bounded", "tiny", "fixed", "o", "o2"]
    );
    // ROS 2: byte is an octet, char a uint8.
    assert_eq!(f[0].ty, FieldType::Primitive(Primitive::Uint8));
    assert_eq!(f[1].ty, FieldType::Primitive(Primitive::Uint8));
    assert_eq!(f[2].ty, FieldType::Primitive(Primitive::WString));
    assert_eq!(f[3].string_bound, Some(22));
    assert_eq!(f[3].default.as_deref(), Some("\"Hello # not a comment\""));
    assert_eq!(f[4].default.as_deref(), Some("'it''s'"));
    assert_eq!(
        (f[5].arity, f[5].default.as_deref()),
        (Arity::Variable, Some("[1, 2, 3]"))
    );
    assert_eq!((f[6].arity, f[6].max_len), (Arity::Variable, Some(5)));
    assert_eq!(
        (f[7].arity, f[7].max_len, f[7].string_bound),
        (Arity::Variable, Some(2), Some(3))
    );
    assert_eq!(f[8].arity, Arity::Fixed(4));
    assert_eq!(f[9].ty, f[10].ty, "pkg/msg/Other and Other are one type");
    let c = &s.root().constants;
    let consts: Vec<(&str, &str)> = c
        .iter()
        .map(|c| (c.name.as_str(), c.value.as_str()))
        .collect();
    assert_eq!(consts, [("X", "5"), ("S", "\"a # b\""), ("Y", "-7")]);
    assert_eq!(s.messages()[1].fields[0].default.as_deref(), Some("1.5"));
    // The same text is not ROS1.
    assert!(Schema::parse("pkg/Types", text).is_err());
    assert!(Schema::parse_format(SchemaFormat::Ros2Msg, "pkg/msg/Types", text).is_ok());
}

#[test]
fn ros2_malformed_lines_and_time_types() {
    for text in [
        "int32\n",
        "int32 a-b\n",
        "float64[<=x] a\n",
        "int32<=3 a\n",
        "int32 a\nint32 a\n",
        "pkg/Type X=1\n",
        // ROS 2 has no time or duration built-ins.
        "time t\n",
    ] {
        let e = Schema::parse_ros2("test/msg/Bad", text).unwrap_err();
        assert!(
            matches!(&e, MsgError::Definition { datatype, .. } if datatype == "test/msg/Bad"),
            "{text:?}: {e}"
        );
    }
    let e = Schema::parse_format(SchemaFormat::Ros2Idl, "pkg/msg/T", "module pkg {};").unwrap_err();
    assert!(
        e.to_string().contains("ros2idl") && e.to_string().contains("pkg/msg/T"),
        "{e}"
    );
    let e = Schema::parse_ros2("pkg/msg/T", "int32 a\n---\nint32 b\n").unwrap_err();
    assert!(e.to_string().contains("service"), "{e}");
}

#[test]
fn service_event_is_built_around_the_srv_text() {
    let s = ros2("test_msgs/srv/BasicTypes_Event", BASIC_TYPES_SRV);
    assert_eq!(
        s.root().field_list(),
        "info (service_msgs/ServiceEventInfo), request (test_msgs/BasicTypes_Request[<=1]), \
         response (test_msgs/BasicTypes_Response[<=1])"
    );
    // info: event_type, stamp, client_gid, sequence_number; request with one element.
    let mut w = Cdr::new(false);
    w.u8(1).i32(5).u32(6);
    for i in 0..16 {
        w.u8(i);
    }
    w.i64(42).u32(1);
    w.u8(1).u8(2).u8(3).put(&1.5f32.to_le_bytes()).f64(2.5);
    w.u8(0xF0)
        .u8(4)
        .i16(-5)
        .i16(6)
        .i32(-7)
        .u32(8)
        .i64(-9)
        .i64(10);
    w.str("req").u32(0);
    let data = w.done();
    assert_eq!(values(&cdr_ex(&s, "info.event_type"), &data), [1.0]);
    assert_eq!(values(&cdr_ex(&s, "info.sequence_number"), &data), [42.0]);
    assert_eq!(
        values(&cdr_ex(&s, "request[0].float64_value"), &data),
        [2.5]
    );
    assert_eq!(values(&cdr_ex(&s, "request[0].int8_value"), &data), [-16.0]);
    assert_eq!(
        values(&cdr_ex(&s, "request[0].uint64_value"), &data),
        [10.0]
    );
    let e = cdr_ex(&s, "response[0].int32_value");
    assert!(e.extract(&data, &mut Vec::new()).is_err(), "no response");
}

#[test]
fn joint_state_in_both_byte_orders() {
    let s = ros2("sensor_msgs/msg/JointState", JOINT_STATE_ROS2);
    for big in [false, true] {
        let m = joint_state(big, &["a", "bb", "ccc"], &[0.5, -1.0, 2.0], &[3.0]);
        assert_eq!(values(&cdr_ex(&s, "position"), &m), [0.5, -1.0, 2.0]);
        assert_eq!(values(&cdr_ex(&s, "velocity"), &m), [3.0]);
        assert_eq!(values(&cdr_ex(&s, "effort"), &m), Vec::<f32>::new());
        assert_eq!(values(&cdr_ex(&s, "position[1:]"), &m), [-1.0, 2.0]);
        assert_eq!(values(&cdr_ex(&s, "header.stamp.nanosec"), &m), [2.5e8]);
        let e = cdr_ex(&s, "position");
        assert_eq!(e.names(&m).unwrap(), ["a", "bb", "ccc"]);
        let joints = ["ccc".to_string(), "a".to_string()];
        let j = Extractor::with_encoding(
            &s,
            &FieldPath::parse("position").unwrap(),
            Some(&joints),
            Encoding::Cdr,
        )
        .unwrap();
        assert_eq!(values(&j, &m), [2.0, 0.5]);
        // The same names in the other byte order must not reuse the cached index blindly.
        let other = joint_state(!big, &["a", "bb", "ccc"], &[7.0, 8.0, 9.0], &[]);
        assert_eq!(values(&j, &other), [9.0, 7.0]);
        assert_eq!(values(&j, &m), [2.0, 0.5]);
        let stamp = StampReader::with_encoding(&s, Encoding::Cdr).unwrap();
        assert_eq!(stamp.read(&m).unwrap(), 1_700_000_000_250_000_000);
        let frame = StringReader::with_encoding(
            &s,
            &FieldPath::parse("header.frame_id").unwrap(),
            Encoding::Cdr,
        )
        .unwrap();
        assert_eq!(frame.read(&m).unwrap(), b"base", "the NUL is left out");
    }
    // The ROS1 decoders read the same schema's ROS1 bytes (no header, no padding).
    let ros1 = {
        let mut v = Vec::new();
        for x in [1_700_000_000u32, 250_000_000, 4] {
            v.extend(x.to_le_bytes());
        }
        v.extend(b"base");
        v.extend(1u32.to_le_bytes());
        v.extend(1u32.to_le_bytes());
        v.extend(b"j");
        v.extend(1u32.to_le_bytes());
        v.extend(4.5f64.to_le_bytes());
        v.extend([0; 8]);
        v
    };
    let e = Extractor::new(&s, &FieldPath::parse("position").unwrap(), None).unwrap();
    assert_eq!(e.encoding(), Encoding::Ros1);
    assert_eq!(values(&e, &ros1), [4.5]);
    // A negative ROS 2 second.
    let m = Cdr::new(false).header(-2, 500_000_000, "").done();
    let stamp = StampReader::with_encoding(&s, Encoding::Cdr).unwrap();
    assert_eq!(stamp.read(&m).unwrap(), -1_500_000_000);
}

#[test]
fn alignment_after_every_size_and_empty_sequences() {
    let s = ros2(
        "t/msg/Align",
        "uint8 a\nfloat64 b\nuint8 c\nint16 d\nuint8 e\nint32 f\nuint8 g\nint64 h\n\
         float64[] none\nuint8 i\nfloat64[] one\nint16[2] pair\nbool flag\n",
    );
    for big in [false, true] {
        let mut w = Cdr::new(big);
        w.u8(1).f64(2.0).u8(3).i16(-4).u8(5).i32(-6).u8(7).i64(-8);
        // An empty float64[]: no padding before elements that are not there.
        w.u32(0).u8(9);
        w.u32(1).f64(10.0);
        w.i16(11).i16(12).u8(1);
        let m = w.done();
        let all: Vec<f32> = [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "one", "pair", "flag",
        ]
        .iter()
        .flat_map(|p| values(&cdr_ex(&s, p), &m))
        .collect();
        assert_eq!(
            all,
            [1.0, 2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 9.0, 10.0, 11.0, 12.0, 1.0]
        );
        assert_eq!(values(&cdr_ex(&s, "none"), &m), Vec::<f32>::new());
        let raw = cdr_ex(&s, "b").raw_ordered(&m).unwrap();
        assert_eq!(raw.0.len(), 8);
        assert_eq!(raw.1 == super::ByteOrder::Big, big);
    }
}

#[test]
fn arrays_of_fixed_size_messages_with_padding_inside() {
    // Tagged is 16 bytes from an 8-aligned start but 9 + padding elsewhere: sequences of it
    // are skipped by the phase tables, and must land where element-by-element reading does.
    let s = ros2(
        "t/msg/Outer",
        "uint8 lead\nTagged[] tagged\nTagged[3] three\nuint8 mid\nTagged[] more\nfloat32 tail\n\
         ===\nMSG: t/Tagged\nuint8 tag\nfloat64 v\n",
    );
    for big in [false, true] {
        for lead_count in [0usize, 1, 2, 5] {
            let mut w = Cdr::new(big);
            w.u8(1).u32(lead_count as u32);
            for i in 0..lead_count {
                w.u8(i as u8).f64(i as f64);
            }
            for i in 0..3 {
                w.u8(10 + i).f64(10.5 + i as f64);
            }
            w.u8(2).u32(2);
            w.u8(20).f64(20.0).u8(21).f64(21.0);
            w.put(&7.25f32.to_le_bytes());
            let m = w.done();
            assert_eq!(values(&cdr_ex(&s, "tail"), &m), [7.25], "{lead_count}");
            assert_eq!(values(&cdr_ex(&s, "mid"), &m), [2.0]);
            assert_eq!(values(&cdr_ex(&s, "three[2].v"), &m), [12.5]);
            assert_eq!(values(&cdr_ex(&s, "more[1]"), &m), [21.0, 21.0]);
            assert_eq!(
                values(&cdr_ex(&s, "three"), &m),
                [10.0, 10.5, 11.0, 11.5, 12.0, 12.5]
            );
            if lead_count > 0 {
                let last = lead_count - 1;
                let p = format!("tagged[{last}].v");
                assert_eq!(values(&cdr_ex(&s, &p), &m), [last as f32]);
            }
        }
    }
}

#[test]
fn empty_messages_take_one_byte_in_cdr() {
    let text = "uint8 before\nstd_msgs/Empty nothing\nstd_msgs/Empty[] nothings\nfloat64 after\n\
                ===\nMSG: std_msgs/Empty\n";
    let s = ros2("t/msg/WithEmpty", text);
    let m = Cdr::new(false)
        .u8(5)
        .u8(0)
        .u32(3)
        .u8(0)
        .u8(0)
        .u8(0)
        .f64(2.5)
        .done();
    assert_eq!(values(&cdr_ex(&s, "after"), &m), [2.5]);
    assert_eq!(values(&cdr_ex(&s, "nothings"), &m), Vec::<f32>::new());
    // In ROS1 an empty message takes nothing.
    let mut r1 = vec![5u8];
    r1.extend(3u32.to_le_bytes());
    r1.extend(2.5f64.to_le_bytes());
    let e = Extractor::new(&s, &FieldPath::parse("after").unwrap(), None).unwrap();
    assert_eq!(values(&e, &r1), [2.5]);
}

#[test]
fn wstring_is_refused_where_it_must_be_crossed() {
    let s = ros2("t/msg/W", "int32 before\nwstring w\nint32 after\n");
    let m = Cdr::new(false).i32(1).u32(2).i32(0).i32(3).done();
    assert_eq!(values(&cdr_ex(&s, "before"), &m), [1.0]);
    let err = cdr_ex(&s, "after")
        .extract(&m, &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Invalid(d) if d.contains("`w` is a wstring")),
        "{err}"
    );
    let e = StringReader::with_encoding(&s, &FieldPath::parse("w").unwrap(), Encoding::Cdr)
        .unwrap_err();
    assert!(e.to_string().contains("wstring"), "{e}");
    let e = Extractor::with_encoding(&s, &FieldPath::parse("w").unwrap(), None, Encoding::Cdr)
        .unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
}

#[test]
fn encapsulation_header_is_checked() {
    let s = ros2("t/msg/One", "int32 x\n");
    let e = cdr_ex(&s, "x");
    for (data, want) in [
        (vec![0u8, 1, 0], "CDR encapsulation header"),
        (vec![0, 3, 0, 0, 1, 0, 0, 0], "PL_CDR"),
        (vec![0, 7, 0, 0, 1, 0, 0, 0], "XCDR2"),
        (vec![1, 0, 0, 0, 1, 0, 0, 0], "does not start with a CDR"),
    ] {
        let err = e.extract(&data, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains(want), "{data:?}: {err}");
    }
    // Options bytes are not looked at.
    assert_eq!(values(&e, &[0, 1, 9, 9, 7, 0, 0, 0]), [7.0]);
    assert_eq!(values(&e, &[0, 0, 0, 0, 0, 0, 0, 7]), [7.0]);
}

#[test]
fn lying_lengths_and_truncation_in_cdr() {
    let s = ros2("sensor_msgs/msg/JointState", JOINT_STATE_ROS2);
    let joints = ["a".to_string()];
    let all = [
        cdr_ex(&s, "position"),
        cdr_ex(&s, "effort[0]"),
        Extractor::with_encoding(
            &s,
            &FieldPath::parse("velocity").unwrap(),
            Some(&joints),
            Encoding::Cdr,
        )
        .unwrap(),
    ];
    for big in [false, true] {
        // name[] claims 2^31 entries in a ~100-byte message.
        let mut m = Cdr::new(big).header(1, 2, "").u32(1 << 31).done();
        m.resize(100, 0);
        for e in &all {
            let err = e.extract(&m, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(&err, DecodeError::Truncated { field, len: 100, .. } if field == "name"),
                "{err}"
            );
        }
        // (The joints extractor names its values from the config, without decoding.)
        assert!(all[0].names(&m).is_err() && all[1].names(&m).is_err());
        // A string whose length runs past the end.
        let m = Cdr::new(big)
            .header(1, 2, "")
            .u32(1)
            .u32(0xFFFF_FFF0)
            .done();
        for e in &all {
            assert!(e.extract(&m, &mut Vec::new()).is_err());
        }
        // Every strict prefix of a good message fails (a cut inside trailing padding is
        // not possible: the message ends with data).
        // A cut anywhere: an error, or (past the field) the right values; never a wrong one.
        let good = joint_state(big, &["a", "bb"], &[0.1, 0.2], &[1.0, 2.0]);
        for cut in 0..good.len() {
            let mut got = Vec::new();
            match all[0].extract(&good[..cut], &mut got) {
                Ok(()) => assert_eq!(got, [0.1, 0.2], "cut {cut}"),
                Err(_) => assert!(got.is_empty()),
            }
            assert!(cut > 40 || all[0].extract(&good[..cut], &mut got).is_err());
        }
    }
}

// ---- random schemas ----

/// splitmix64: the property test's values are drawn from a seed proptest varies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Elem {
    Num(Primitive),
    Str,
    Msg(usize),
}

#[derive(Debug, Clone, Copy)]
enum Ar {
    Scalar,
    Fixed(usize),
    Seq(Option<usize>),
}

const NUMS: [Primitive; 11] = [
    Primitive::Bool,
    Primitive::Int8,
    Primitive::Uint8,
    Primitive::Int16,
    Primitive::Uint16,
    Primitive::Int32,
    Primitive::Uint32,
    Primitive::Int64,
    Primitive::Uint64,
    Primitive::Float32,
    Primitive::Float64,
];

/// Up to four types, each using only later ones (no cycles), as ROS 2 .msg text.
fn random_schema(rng: &mut Rng) -> (Vec<Vec<(Elem, Ar)>>, String) {
    let n = 1 + rng.below(4) as usize;
    let mut types = Vec::new();
    for t in 0..n {
        let mut fields = Vec::new();
        // The main type has a field: an empty definition text means "none recorded".
        for _ in 0..rng.below(7).max((t == 0) as u64) {
            let elem = match rng.below(10) {
                0 | 1 => Elem::Str,
                2 | 3 if t + 1 < n => Elem::Msg(t + 1 + rng.below((n - t - 1) as u64) as usize),
                _ => Elem::Num(NUMS[rng.below(NUMS.len() as u64) as usize]),
            };
            let ar = match rng.below(10) {
                0 | 1 => Ar::Fixed(rng.below(4) as usize),
                2 => Ar::Seq(Some(3)),
                3 | 4 => Ar::Seq(None),
                _ => Ar::Scalar,
            };
            fields.push((elem, ar));
        }
        types.push(fields);
    }
    let mut text = String::new();
    for (t, fields) in types.iter().enumerate() {
        if t > 0 {
            text.push_str(&format!("===\nMSG: r/T{t}\n"));
        }
        for (k, (elem, ar)) in fields.iter().enumerate() {
            let ty = match elem {
                Elem::Num(p) => p.name().to_string(),
                Elem::Str => "string".to_string(),
                // Both spellings of a type name.
                Elem::Msg(j) if k % 2 == 0 => format!("T{j}"),
                Elem::Msg(j) => format!("r/msg/T{j}"),
            };
            let arr = match ar {
                Ar::Scalar => String::new(),
                Ar::Fixed(n) => format!("[{n}]"),
                Ar::Seq(None) => "[]".to_string(),
                Ar::Seq(Some(b)) => format!("[<={b}]"),
            };
            text.push_str(&format!("{ty}{arr} f{k}\n"));
        }
    }
    (types, text)
}

enum Expect {
    Nums(Vec<f32>),
    Str(String),
}

/// Writes one value tree of type `t`, recording what every reachable path must decode to.
struct Gen<'a> {
    types: &'a [Vec<(Elem, Ar)>],
    rng: Rng,
    /// None: ROS1 (little-endian, no header, no padding, empty messages take no bytes).
    cdr: Option<Cdr>,
    ros1: Vec<u8>,
    expect: Vec<(String, Expect)>,
}

impl Gen<'_> {
    /// Whether every leaf of type `t` is a number (the extractor decides by type, so an
    /// empty array of a type with text is still not numbers).
    fn numeric(&self, t: usize) -> bool {
        self.types[t].iter().all(|(e, _)| match e {
            Elem::Num(_) => true,
            Elem::Str => false,
            Elem::Msg(j) => self.numeric(*j),
        })
    }
    fn put(&mut self, le: &[u8]) {
        match &mut self.cdr {
            Some(c) => {
                c.put(le);
            }
            None => self.ros1.extend_from_slice(le),
        }
    }
    fn num(&mut self, p: Primitive) -> f32 {
        let r = self.rng.next();
        match p {
            Primitive::Bool => {
                self.put(&[(r & 1) as u8]);
                (r & 1) as f32
            }
            Primitive::Int8 => {
                self.put(&(r as i8).to_le_bytes());
                r as i8 as f32
            }
            Primitive::Uint8 => {
                self.put(&[r as u8]);
                r as u8 as f32
            }
            Primitive::Int16 => {
                self.put(&(r as i16).to_le_bytes());
                r as i16 as f32
            }
            Primitive::Uint16 => {
                self.put(&(r as u16).to_le_bytes());
                r as u16 as f32
            }
            Primitive::Int32 => {
                self.put(&(r as i32).to_le_bytes());
                r as i32 as f32
            }
            Primitive::Uint32 => {
                self.put(&(r as u32).to_le_bytes());
                r as u32 as f32
            }
            Primitive::Int64 => {
                self.put(&(r as i64).to_le_bytes());
                r as i64 as f32
            }
            Primitive::Uint64 => {
                self.put(&r.to_le_bytes());
                r as f32
            }
            Primitive::Float32 => {
                let v = (r % 4001) as f32 / 8.0 - 250.0;
                self.put(&v.to_le_bytes());
                v
            }
            _ => {
                let v = (r % 4001) as f64 / 16.0 - 125.0;
                self.put(&v.to_le_bytes());
                v as f32
            }
        }
    }
    fn len(&mut self, n: usize) {
        self.put(&(n as u32).to_le_bytes());
    }
    fn string(&mut self) -> String {
        let s: String = (0..self.rng.below(6))
            .map(|i| (b'a' + i as u8) as char)
            .collect();
        match &mut self.cdr {
            Some(c) => {
                c.str(&s);
            }
            None => {
                self.ros1.extend((s.len() as u32).to_le_bytes());
                self.ros1.extend(s.as_bytes());
            }
        }
        s
    }
    /// Writes a message of type `t` at `prefix`; its flattened values, None if it has text.
    /// `scalar`: the path reaches here through scalar fields only (string paths need that).
    fn message(&mut self, t: usize, prefix: &str, scalar: bool) -> Option<Vec<f32>> {
        let fields = self.types[t].clone();
        if fields.is_empty() {
            if let Some(c) = &mut self.cdr {
                c.u8(0);
            }
            return Some(Vec::new());
        }
        let mut flat = Some(Vec::new());
        for (k, (elem, ar)) in fields.into_iter().enumerate() {
            let path = format!("{prefix}f{k}");
            let n = match ar {
                Ar::Scalar => 1,
                Ar::Fixed(n) => n,
                Ar::Seq(bound) => {
                    let n = self.rng.below(bound.unwrap_or(4) as u64 + 1) as usize;
                    self.len(n);
                    n
                }
            };
            match elem {
                Elem::Num(p) => {
                    let v: Vec<f32> = (0..n).map(|_| self.num(p)).collect();
                    if let Some(f) = &mut flat {
                        f.extend(&v);
                    }
                    self.expect.push((path, Expect::Nums(v)));
                }
                Elem::Str => {
                    flat = None;
                    for _ in 0..n {
                        let s = self.string();
                        if matches!(ar, Ar::Scalar) && scalar {
                            self.expect.push((path.clone(), Expect::Str(s)));
                        }
                    }
                }
                Elem::Msg(j) => {
                    let numeric = self.numeric(j);
                    let mut all = numeric.then(Vec::new);
                    for i in 0..n {
                        let (sub, one) = match ar {
                            Ar::Scalar => (format!("{path}."), true),
                            _ => (format!("{path}[{i}]."), false),
                        };
                        let v = self.message(j, &sub, scalar && one);
                        match (&mut all, v) {
                            (Some(a), Some(v)) => {
                                if !matches!(ar, Ar::Scalar) {
                                    self.expect
                                        .push((format!("{path}[{i}]"), Expect::Nums(v.clone())));
                                }
                                a.extend(v);
                            }
                            _ => all = None,
                        }
                    }
                    match all {
                        Some(a) => {
                            if let Some(f) = &mut flat {
                                f.extend(&a);
                            }
                            self.expect.push((path, Expect::Nums(a)));
                        }
                        None => flat = None,
                    }
                }
            }
        }
        flat
    }
}

fn check_random(seed: u64, encoding: Option<bool>) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed);
    let (types, text) = random_schema(&mut rng);
    let schema =
        Schema::parse_ros2("r/msg/T0", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut g = Gen {
        types: &types,
        rng,
        cdr: encoding.map(Cdr::new),
        ros1: Vec::new(),
        expect: Vec::new(),
    };
    g.message(0, "", true);
    let data = match g.cdr.take() {
        Some(mut c) => c.done(),
        None => g.ros1,
    };
    let enc = if encoding.is_some() {
        Encoding::Cdr
    } else {
        Encoding::Ros1
    };
    for (path, want) in &g.expect {
        let fp = FieldPath::parse(path).unwrap();
        match want {
            Expect::Nums(v) => {
                let e = Extractor::with_encoding(&schema, &fp, None, enc)
                    .map_err(|e| TestCaseError::fail(format!("{text}\n{path}: {e}")))?;
                let mut got = Vec::new();
                e.extract(&data, &mut got)
                    .map_err(|e| TestCaseError::fail(format!("{text}\n{path}: {e}")))?;
                prop_assert_eq!(&got, v, "{}\n{}", text, path);
                prop_assert_eq!(e.names(&data).map(|n| n.len()).ok(), Some(v.len()));
            }
            Expect::Str(s) => {
                let r = StringReader::with_encoding(&schema, &fp, enc)
                    .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                prop_assert_eq!(r.read(&data).ok(), Some(s.as_bytes()), "{}\n{}", text, path);
            }
        }
    }
    // A cut anywhere gives errors or values, never a panic.
    let cut = (seed as usize) % (data.len() + 1);
    for (path, _) in &g.expect {
        if let Ok(e) =
            Extractor::with_encoding(&schema, &FieldPath::parse(path).unwrap(), None, enc)
        {
            let _ = e.extract(&data[..cut], &mut Vec::new());
            let _ = e.names(&data[..cut]);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the schema, a message written by the test writer decodes to what was written:
    /// CDR in both byte orders, and ROS1 for the same schemas.
    #[test]
    fn random_schemas_decode_to_what_was_written(seed in any::<u64>()) {
        check_random(seed, Some(false))?;
        check_random(seed, Some(true))?;
        check_random(seed, None)?;
    }
}
