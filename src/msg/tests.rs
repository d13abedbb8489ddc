//! Decoding tests: hand-serialized payloads against real definitions, and real payloads from
//! ../shared/bags checked against the independent Python `rosbags` decoder.

use super::testdefs::*;
use super::{DecodeError, Extractor, FieldPath, MsgError, Schema, StampReader, StringReader};

/// Little-endian ROS1 serializer for building payloads by hand.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.raw(&[v])
    }
    fn i8(&mut self, v: i8) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn f32(&mut self, v: f32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32).raw(s.as_bytes())
    }
    fn f64s(&mut self, v: &[f64]) -> &mut Self {
        self.u32(v.len() as u32);
        for &x in v {
            self.f64(x);
        }
        self
    }
    fn strs(&mut self, v: &[&str]) -> &mut Self {
        self.u32(v.len() as u32);
        for s in v {
            self.str(s);
        }
        self
    }
    fn header(&mut self, seq: u32, sec: u32, nsec: u32, frame: &str) -> &mut Self {
        self.u32(seq).u32(sec).u32(nsec).str(frame)
    }
    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

fn schema(datatype: &str, text: &str) -> Schema {
    Schema::parse(datatype, text).unwrap_or_else(|e| panic!("{e}"))
}

fn ex(s: &Schema, path: &str) -> Extractor {
    Extractor::new(s, &FieldPath::parse(path).unwrap(), None).unwrap_or_else(|e| panic!("{e}"))
}

fn ex_err(s: &Schema, path: &str, joints: Option<&[String]>) -> String {
    match Extractor::new(s, &FieldPath::parse(path).unwrap(), joints) {
        Ok(_) => panic!("{path}: expected an error"),
        Err(e) => {
            assert!(
                matches!(&e, MsgError::Path { path: p, .. } if p == path),
                "{e}"
            );
            e.to_string()
        }
    }
}

fn values(e: &Extractor, data: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    e.extract(data, &mut out)
        .unwrap_or_else(|err| panic!("{}: {err}", e.path()));
    out
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const ALL_TYPES: &str = "bool a\nint8 b\nuint8 c\nint16 d\nuint16 e\nint32 f\nuint32 g\nint64 h\n\
    uint64 i\nfloat32 j\nfloat64 k\nstring l\ntime m\nduration n\nbyte o\nchar p\n";

fn all_types_payload() -> Vec<u8> {
    W::default()
        .u8(1)
        .i8(-5)
        .u8(250)
        .i16(-30000)
        .u16(65000)
        .i32(-2_000_000)
        .u32(4_000_000)
        .i64(-9_000_000_000)
        .u64(18_000_000_000)
        .f32(1.5)
        .f64(-2.25)
        .str("skip me")
        .u32(12)
        .u32(500_000_000)
        .i32(-3)
        .i32(250_000_000)
        .i8(-128)
        .u8(200)
        .done()
}

#[test]
fn every_primitive_scalar() {
    let s = schema("test/All", ALL_TYPES);
    let data = all_types_payload();
    let expect: [(&str, f32); 15] = [
        ("a", 1.0),
        ("b", -5.0),
        ("c", 250.0),
        ("d", -30000.0),
        ("e", 65000.0),
        ("f", -2_000_000.0),
        ("g", 4_000_000.0),
        ("h", -9_000_000_000.0),
        ("i", 18_000_000_000.0),
        ("j", 1.5),
        ("k", -2.25),
        ("m", 12.5),
        ("n", -2.75),
        ("o", -128.0),
        ("p", 200.0),
    ];
    for (field, want) in expect {
        let e = ex(&s, field);
        assert_eq!(values(&e, &data), [want], "{field}");
        assert_eq!(e.names(&data).unwrap(), [field]);
    }
    let err = ex_err(&s, "l", None);
    assert!(err.contains("`l` is a string, not a number"), "{err}");
}

#[test]
fn fixed_and_variable_arrays_with_slices() {
    let s = schema(
        "test/Arrays",
        "string tag\nint16[3] fixed\nuint8[] bytes\nfloat64[] data\nfloat32 after\n",
    );
    let data = W::default()
        .str("x")
        .i16(-1)
        .i16(2)
        .i16(-3)
        .u32(2)
        .u8(7)
        .u8(9)
        .f64s(&[0.5, 1.5, 2.5, 3.5, 4.5])
        .f32(8.0)
        .done();
    let cases: [(&str, &[f32], &[&str]); 12] = [
        (
            "fixed",
            &[-1.0, 2.0, -3.0],
            &["fixed[0]", "fixed[1]", "fixed[2]"],
        ),
        ("fixed[2]", &[-3.0], &["fixed[2]"]),
        ("fixed[1:]", &[2.0, -3.0], &["fixed[1]", "fixed[2]"]),
        ("bytes", &[7.0, 9.0], &["bytes[0]", "bytes[1]"]),
        (
            "data",
            &[0.5, 1.5, 2.5, 3.5, 4.5],
            &["data[0]", "data[1]", "data[2]", "data[3]", "data[4]"],
        ),
        ("data[3]", &[3.5], &["data[3]"]),
        ("data[1:3]", &[1.5, 2.5], &["data[1]", "data[2]"]),
        (
            "data[2:]",
            &[2.5, 3.5, 4.5],
            &["data[2]", "data[3]", "data[4]"],
        ),
        ("data[:2]", &[0.5, 1.5], &["data[0]", "data[1]"]),
        (
            "data[0:5]",
            &[0.5, 1.5, 2.5, 3.5, 4.5],
            &["data[0]", "data[1]", "data[2]", "data[3]", "data[4]"],
        ),
        (
            "data[:]",
            &[0.5, 1.5, 2.5, 3.5, 4.5],
            &["data[0]", "data[1]", "data[2]", "data[3]", "data[4]"],
        ),
        ("after", &[8.0], &["after"]),
    ];
    for (path, want, names) in cases {
        let e = ex(&s, path);
        assert_eq!(values(&e, &data), want, "{path}");
        assert_eq!(e.names(&data).unwrap(), names, "{path}");
    }
    // Past the end of a variable array: a decode error, and nothing appended.
    for path in ["data[5]", "data[3:6]", "data[6:]"] {
        let e = ex(&s, path);
        let mut out = vec![42.0];
        let err = e.extract(&data, &mut out).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Invalid(m) if m.contains("has 5 elements")),
            "{path}: {err}"
        );
        assert_eq!(out, [42.0]);
        assert!(e.names(&data).is_err());
    }
    // Past the end of a fixed array is known before reading anything.
    for path in ["fixed[3]", "fixed[1:4]", "fixed[3:]"] {
        let err = ex_err(&s, path, None);
        assert!(
            err.contains("out of range") && err.contains("int16[3]"),
            "{err}"
        );
    }
    let err = ex_err(&s, "after[0]", None);
    assert!(err.contains("not an array"), "{err}");
    let err = ex_err(&s, "tag[0]", None);
    assert!(err.contains("not a number"), "{err}");
}

#[test]
fn missing_field_lists_what_exists() {
    let s = schema("geometry_msgs/PoseStamped", POSE_STAMPED);
    let err = ex_err(&s, "pose.positon.x", None);
    assert!(
        err.contains("no field `positon` in geometry_msgs/Pose (at `pose`)")
            && err
                .contains("position (geometry_msgs/Point), orientation (geometry_msgs/Quaternion)"),
        "{err}"
    );
    let err = ex_err(&s, "poses", None);
    assert!(
        err.contains("header (std_msgs/Header), pose (geometry_msgs/Pose)"),
        "{err}"
    );
    let err = ex_err(&s, "pose.position.x.y", None);
    assert!(
        err.contains("`pose.position.x` is a float64, it has no fields"),
        "{err}"
    );
}

fn pose_stamped_payload() -> Vec<u8> {
    W::default()
        .header(7, 1_700_000_000, 250_000_000, "world")
        .f64(1.0)
        .f64(2.0)
        .f64(3.0)
        .f64(0.0)
        .f64(0.0)
        .f64(0.6)
        .f64(0.8)
        .done()
}

#[test]
fn pose_stamped_nested_and_flattened() {
    let s = schema("geometry_msgs/PoseStamped", POSE_STAMPED);
    let data = pose_stamped_payload();
    let e = ex(&s, "pose");
    assert_eq!(values(&e, &data), [1.0, 2.0, 3.0, 0.0, 0.0, 0.6, 0.8]);
    assert_eq!(
        e.names(&data).unwrap(),
        [
            "pose.position.x",
            "pose.position.y",
            "pose.position.z",
            "pose.orientation.x",
            "pose.orientation.y",
            "pose.orientation.z",
            "pose.orientation.w"
        ]
    );
    let e = ex(&s, "pose.orientation");
    assert_eq!(values(&e, &data), [0.0, 0.0, 0.6, 0.8]);
    let e = ex(&s, "pose.position.z");
    assert_eq!(values(&e, &data), [3.0]);
    assert_eq!(e.names(&data).unwrap(), ["pose.position.z"]);
    let e = ex(&s, "header.stamp");
    assert_eq!(values(&e, &data), [1_700_000_000.25_f64 as f32]);
    let e = ex(&s, "header.seq");
    assert_eq!(values(&e, &data), [7.0]);
    // Extract appends.
    let mut out = vec![-1.0];
    ex(&s, "pose.position.y").extract(&data, &mut out).unwrap();
    assert_eq!(out, [-1.0, 2.0]);

    let err = ex_err(&s, "header", None);
    assert!(
        err.contains("`header.frame_id (string)` is not numeric"),
        "{err}"
    );
    let err = ex_err(&s, "header.frame_id", None);
    assert!(err.contains("not a number"), "{err}");
}

fn tf_payload() -> Vec<u8> {
    let mut w = W::default();
    w.u32(2);
    for (i, frame) in ["base_link", "gripper_long_name"].iter().enumerate() {
        let k = i as f64;
        w.header(i as u32, 100, 5, "world").str(frame);
        w.f64(10.0 + k).f64(20.0 + k).f64(30.0 + k);
        w.f64(0.1 + k).f64(0.2 + k).f64(0.3 + k).f64(0.4 + k);
    }
    w.done()
}

#[test]
fn tf_message_arrays_of_dynamic_messages() {
    let s = schema("tf2_msgs/TFMessage", TF_MESSAGE);
    let data = tf_payload();
    let e = ex(&s, "transforms[1].transform.translation");
    assert_eq!(values(&e, &data), [11.0, 21.0, 31.0]);
    assert_eq!(
        e.names(&data).unwrap(),
        [
            "transforms[1].transform.translation.x",
            "transforms[1].transform.translation.y",
            "transforms[1].transform.translation.z"
        ]
    );
    let e = ex(&s, "transforms[0].transform.rotation.w");
    assert_eq!(values(&e, &data), [0.4]);
    let e = ex(&s, "transforms[1].header.stamp");
    assert_eq!(values(&e, &data), [100.000_000_005_f64 as f32]);
    let e = ex(&s, "transforms[2].transform");
    let err = e.extract(&data, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Invalid(m) if m.contains("`transforms` has 2 elements")),
        "{err}"
    );
    let err = ex_err(&s, "transforms", None);
    assert!(
        err.contains("transforms[].header.frame_id (string)"),
        "{err}"
    );
    let err = ex_err(&s, "transforms.transform", None);
    assert!(
        err.contains("is an array") && err.contains("transforms[0]"),
        "{err}"
    );
}

#[test]
fn flattened_arrays_of_messages() {
    let text =
        "Item[] items\nItem[2] pair\nfloat32 tail\n===\nMSG: test/Item\nuint8 id\nfloat32[2] v\n";
    let s = schema("test/Holder", text);
    let mut w = W::default();
    w.u32(3);
    for i in 0..3u8 {
        w.u8(i).f32(i as f32 + 0.5).f32(-(i as f32));
    }
    w.u8(9).f32(1.0).f32(2.0).u8(8).f32(3.0).f32(4.0).f32(6.5);
    let data = w.done();
    let e = ex(&s, "items[1:]");
    assert_eq!(values(&e, &data), [1.0, 1.5, -1.0, 2.0, 2.5, -2.0]);
    assert_eq!(
        e.names(&data).unwrap(),
        [
            "items[1].id",
            "items[1].v[0]",
            "items[1].v[1]",
            "items[2].id",
            "items[2].v[0]",
            "items[2].v[1]"
        ]
    );
    let e = ex(&s, "pair");
    assert_eq!(values(&e, &data), [9.0, 1.0, 2.0, 8.0, 3.0, 4.0]);
    assert_eq!(e.names(&data).unwrap()[3], "pair[1].id");
    let e = ex(&s, "pair[1].v[1]");
    assert_eq!(values(&e, &data), [4.0]);
    let e = ex(&s, "tail");
    assert_eq!(values(&e, &data), [6.5]);
    let err = ex_err(&s, "pair[2].id", None);
    assert!(err.contains("index 2 is out of range"), "{err}");
}

#[test]
fn float64_multi_array_data_after_dynamic_layout() {
    let s = schema("std_msgs/Float64MultiArray", FLOAT64_MULTI_ARRAY);
    let data = W::default()
        .u32(2)
        .str("rows")
        .u32(2)
        .u32(6)
        .str("cols")
        .u32(3)
        .u32(3)
        .u32(0)
        .f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .done();
    let e = ex(&s, "data[2:4]");
    assert_eq!(values(&e, &data), [3.0, 4.0]);
    assert_eq!(e.names(&data).unwrap(), ["data[2]", "data[3]"]);
    let e = ex(&s, "layout.data_offset");
    assert_eq!(values(&e, &data), [0.0]);
    let e = ex(&s, "layout.dim[1].size");
    assert_eq!(values(&e, &data), [3.0]);
    let err = ex_err(&s, "layout", None);
    assert!(err.contains("layout.dim[].label (string)"), "{err}");
}

fn joint_state(names: &[&str], pos: &[f64], vel: &[f64]) -> Vec<u8> {
    W::default()
        .header(1, 10, 20, "")
        .strs(names)
        .f64s(pos)
        .f64s(vel)
        .f64s(&[])
        .done()
}

#[test]
fn joints_pick_by_name_and_cache() {
    let s = schema("sensor_msgs/JointState", JOINT_STATE);
    let joints = strings(&["elbow", "shoulder"]);
    let e = Extractor::new(&s, &FieldPath::parse("position").unwrap(), Some(&joints)).unwrap();
    let m1 = joint_state(
        &["shoulder", "wrist", "elbow"],
        &[0.1, 0.2, 0.3],
        &[1.0, 2.0, 3.0],
    );
    assert_eq!(values(&e, &m1), [0.3, 0.1]);
    assert_eq!(e.names(&m1).unwrap(), ["elbow", "shoulder"]);
    // Same names, new values: the cached map is reused and must still give the right values.
    let m2 = joint_state(&["shoulder", "wrist", "elbow"], &[1.1, 1.2, 1.3], &[]);
    assert_eq!(values(&e, &m2), [1.3, 1.1]);
    // Names reordered: the map is rebuilt.
    let m3 = joint_state(&["elbow", "shoulder", "wrist"], &[2.1, 2.2, 2.3], &[]);
    assert_eq!(values(&e, &m3), [2.1, 2.2]);
    // A joint that is missing: named, with the names present.
    let m4 = joint_state(&["shoulder", "wrist"], &[3.1, 3.2], &[]);
    let err = e.extract(&m4, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Invalid(m)
            if m.contains("joint `elbow`") && m.contains("[shoulder, wrist]")),
        "{err}"
    );
    // And back to the first layout after the failure.
    assert_eq!(values(&e, &m1), [0.3, 0.1]);

    // velocity is after position: the sibling is found the same way.
    let e = Extractor::new(&s, &FieldPath::parse("velocity").unwrap(), Some(&joints)).unwrap();
    assert_eq!(values(&e, &m1), [3.0, 1.0]);
    // Velocity empty (common in real bags): a clear error, not a wrong value.
    let err = e.extract(&m2, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Invalid(m) if m.contains("`velocity` has 0 values")),
        "{err}"
    );
}

#[test]
fn joint_state_names_from_sibling() {
    let s = schema("sensor_msgs/JointState", JOINT_STATE);
    let m = joint_state(&["a", "b", "c"], &[0.1, 0.2, 0.3], &[1.0, 2.0, 3.0]);
    let e = ex(&s, "position");
    assert_eq!(values(&e, &m), [0.1, 0.2, 0.3]);
    assert_eq!(e.names(&m).unwrap(), ["a", "b", "c"]);
    let e = ex(&s, "velocity[1:]");
    assert_eq!(values(&e, &m), [2.0, 3.0]);
    assert_eq!(e.names(&m).unwrap(), ["b", "c"]);
    let e = ex(&s, "position[2]");
    assert_eq!(e.names(&m).unwrap(), ["c"]);
    // More values than names: the rest are named by index.
    let m = joint_state(&["a"], &[0.1, 0.2], &[]);
    assert_eq!(ex(&s, "position").names(&m).unwrap(), ["a", "position[1]"]);
}

#[test]
fn joints_refused_where_they_make_no_sense() {
    let s = schema("sensor_msgs/JointState", JOINT_STATE);
    let j = strings(&["a"]);
    let err = ex_err(&s, "header.seq", Some(&j));
    assert!(err.contains("sibling `name`"), "{err}");
    let err = ex_err(&s, "position[0:2]", Some(&j));
    assert!(err.contains("index or slice"), "{err}");
    let err = ex_err(&s, "position", Some(&[]));
    assert!(err.contains("empty"), "{err}");
    let p = schema("geometry_msgs/PoseStamped", POSE_STAMPED);
    let err = ex_err(&p, "pose", Some(&j));
    assert!(err.contains("sibling `name`"), "{err}");
}

#[test]
fn stamps() {
    let s = schema("sensor_msgs/JointState", JOINT_STATE);
    let r = StampReader::new(&s).unwrap();
    let m = joint_state(&["a"], &[1.0], &[]);
    assert_eq!(r.read(&m).unwrap(), 10_000_000_020);
    let p = schema("geometry_msgs/PoseStamped", POSE_STAMPED);
    let r = StampReader::new(&p).unwrap();
    assert_eq!(
        r.read(&pose_stamped_payload()).unwrap(),
        1_700_000_000_250_000_000
    );
    // The old roslib/Header works the same.
    let old = schema("sensor_msgs/JointState", JOINT_STATE_ROSLIB);
    let r = StampReader::new(&old).unwrap();
    assert_eq!(r.read(&m).unwrap(), 10_000_000_020);
    // A header that is not the first field.
    let t = schema("test/Late", "string a\nHeader header\n===\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n");
    let data = W::default().str("hello").header(0, 3, 4, "f").done();
    assert_eq!(
        StampReader::new(&t).unwrap().read(&data).unwrap(),
        3_000_000_004
    );
    let err = StampReader::new(&t).unwrap().read(&data[..12]).unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");

    for (dt, text) in [
        ("turtlesim/Pose", TURTLE_POSE),
        ("std_msgs/Float64MultiArray", FLOAT64_MULTI_ARRAY),
        ("test/H", "int32 header\n"),
        (
            "test/H",
            "Header header\n===\nMSG: std_msgs/Header\nuint32 seq\nduration stamp\n",
        ),
    ] {
        let e = StampReader::new(&schema(dt, text)).unwrap_err();
        assert!(
            matches!(&e, MsgError::Definition { datatype, .. } if datatype == dt),
            "{e}"
        );
    }
}

/// Every strict prefix of a valid message must fail cleanly (never panic, never a value).
#[test]
fn truncated_payloads_are_errors() {
    let cases: Vec<(Schema, Vec<u8>, Vec<&str>)> = vec![
        (
            schema("sensor_msgs/JointState", JOINT_STATE),
            joint_state(&["a", "bb"], &[0.1, 0.2], &[1.0, 2.0]),
            vec!["position", "velocity[1]", "header.stamp"],
        ),
        (
            schema("tf2_msgs/TFMessage", TF_PAYLOAD_DEF),
            tf_payload(),
            vec!["transforms[1].transform", "transforms[0].header.seq"],
        ),
        (
            schema("geometry_msgs/PoseStamped", POSE_STAMPED),
            pose_stamped_payload(),
            vec!["pose", "pose.orientation.w"],
        ),
        (
            schema("test/All", ALL_TYPES),
            all_types_payload(),
            vec!["p", "n"],
        ),
    ];
    for (s, data, paths) in &cases {
        for path in paths {
            let e = ex(s, path);
            assert!(!values(&e, data).is_empty());
            for cut in 0..data.len() {
                let mut out = Vec::new();
                let r = e.extract(&data[..cut], &mut out);
                // A field before the end may decode from a prefix; only the target's bytes matter.
                if r.is_ok() {
                    assert_eq!(out, values(&e, &data[..cut]));
                    continue;
                }
                assert!(out.is_empty(), "{path} cut {cut}");
            }
        }
    }
    // The exact report for one cut.
    let s = schema("geometry_msgs/PoseStamped", POSE_STAMPED);
    let data = pose_stamped_payload();
    let err = ex(&s, "pose")
        .extract(&data[..30], &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            field: "pose.position.y".into(),
            offset: 29,
            need: 8,
            len: 30
        }
    );
    let err = ex(&s, "pose")
        .extract(&data[..10], &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Truncated { field, .. } if field == "header.seq..stamp"),
        "{err}"
    );
}

const TF_PAYLOAD_DEF: &str = TF_MESSAGE;

#[test]
fn truncation_before_the_target_is_reported() {
    let s = schema("test/All", ALL_TYPES);
    let data = all_types_payload();
    let e = ex(&s, "p");
    for cut in 0..data.len() {
        let err = e.extract(&data[..cut], &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { .. }),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn lying_length_prefixes() {
    let s = schema("sensor_msgs/JointState", JOINT_STATE);
    let j = strings(&["a"]);
    let joints = Extractor::new(&s, &FieldPath::parse("position").unwrap(), Some(&j)).unwrap();
    // name[] claims 2^31 entries in a ~100-byte message.
    let mut data = W::default().header(1, 2, 3, "").u32(1 << 31).done();
    data.resize(100, 0);
    for e in [&joints, &ex(&s, "position"), &ex(&s, "effort")] {
        let err = e.extract(&data, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Truncated { field, need, len: 100, .. }
                if field == "name" && *need == 4 << 31),
            "{err}"
        );
        assert!(e.names(&data).is_err() || std::ptr::eq(e, &joints));
    }
    // position[] claims u32::MAX doubles.
    let data = W::default()
        .header(1, 2, 3, "")
        .strs(&["a"])
        .u32(u32::MAX)
        .f64(1.0)
        .done();
    let err = joints.extract(&data, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, DecodeError::Truncated { ref field, .. } if field == "position"),
        "{err}"
    );
    let err = ex(&s, "position[0]")
        .extract(&data, &mut Vec::new())
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
    // A string length larger than the message.
    let data = W::default().u32(1).u32(2).u32(3).u32(0xFFFF_FFF0).done();
    let err = ex(&s, "position")
        .extract(&data, &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Truncated { field, need: 0xFFFF_FFF0, .. } if field == "header.frame_id"),
        "{err}"
    );
    // An array of dynamic messages with a huge count.
    let t = schema("tf2_msgs/TFMessage", TF_MESSAGE);
    let data = W::default().u32(u32::MAX).u32(0).done();
    let err = ex(&t, "transforms[3].transform")
        .extract(&data, &mut Vec::new())
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
}

#[test]
fn deep_definitions_decode() {
    // test/Top -> L1 -> ... -> L63: 64 levels, the limit.
    let mut text = String::from("test/L1 next\n");
    for i in 1..64 {
        text.push_str(&format!("===\nMSG: test/L{i}\nstring pad\n"));
        if i < 63 {
            text.push_str(&format!("test/L{} next\n", i + 1));
        } else {
            text.push_str("float64 leaf\n");
        }
    }
    let s = schema("test/Top", &text);
    let mut w = W::default();
    for i in 0..63 {
        w.str(&"x".repeat(i % 3));
    }
    let data = w.f64(42.0).done();
    let path = format!("{}leaf", "next.".repeat(63));
    let e = ex(&s, &path);
    assert_eq!(values(&e, &data), [42.0]);
    assert_eq!(e.names(&data).unwrap(), std::slice::from_ref(&path));
    let err = ex(&s, &path)
        .extract(&data[..data.len() - 1], &mut Vec::new())
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
}

/// rosbagjs/example.bag, /turtle1/pose messages 0, 700, 1300; expected values from `rosbags`.
#[test]
fn real_turtle_pose_payloads() {
    let s = schema("turtlesim/Pose", TURTLE_POSE);
    let cases: [(&str, [f64; 5]); 3] = [
        (
            "176cb140176cb140000000000000000000000000",
            [5.544444561004639, 5.544444561004639, 0.0, 0.0, 0.0],
        ),
        (
            "629d1d4030cdfe404e6290400000004000000000",
            [
                2.462730884552002,
                7.962547302246094,
                4.51200008392334,
                2.0,
                0.0,
            ],
        ),
        (
            "7f6a7f3fa5f43f3fb81e05400000000000000000",
            [
                0.9977187514305115,
                0.7498267292976379,
                2.0799999237060547,
                0.0,
                0.0,
            ],
        ),
    ];
    let fields = ["x", "y", "theta", "linear_velocity", "angular_velocity"];
    for (hex, want) in cases {
        let data = unhex(hex);
        for (i, f) in fields.iter().enumerate() {
            assert_eq!(values(&ex(&s, f), &data), [want[i] as f32], "{f}");
        }
        assert!(ex(&s, "theta")
            .extract(&data[..8], &mut Vec::new())
            .is_err());
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const PR2_NAMES: [&str; 42] = [
    "fl_caster_rotation_joint",
    "fl_caster_l_wheel_joint",
    "fl_caster_r_wheel_joint",
    "fr_caster_rotation_joint",
    "fr_caster_l_wheel_joint",
    "fr_caster_r_wheel_joint",
    "bl_caster_rotation_joint",
    "bl_caster_l_wheel_joint",
    "bl_caster_r_wheel_joint",
    "br_caster_rotation_joint",
    "br_caster_l_wheel_joint",
    "br_caster_r_wheel_joint",
    "torso_lift_joint",
    "head_pan_joint",
    "head_tilt_joint",
    "laser_tilt_mount_joint",
    "r_shoulder_pan_joint",
    "r_shoulder_lift_joint",
    "r_upper_arm_roll_joint",
    "r_elbow_flex_joint",
    "r_forearm_roll_joint",
    "r_wrist_flex_joint",
    "r_wrist_roll_joint",
    "r_gripper_float_joint",
    "r_gripper_l_finger_joint",
    "r_gripper_r_finger_joint",
    "r_gripper_l_finger_tip_joint",
    "r_gripper_r_finger_tip_joint",
    "r_gripper_joint",
    "l_shoulder_pan_joint",
    "l_shoulder_lift_joint",
    "l_upper_arm_roll_joint",
    "l_elbow_flex_joint",
    "l_forearm_roll_joint",
    "l_wrist_flex_joint",
    "l_wrist_roll_joint",
    "l_gripper_float_joint",
    "l_gripper_l_finger_joint",
    "l_gripper_r_finger_joint",
    "l_gripper_l_finger_tip_joint",
    "l_gripper_r_finger_tip_joint",
    "l_gripper_joint",
];

/// robot_state_publisher/joint_states_indexed.bag messages 0 and 800 (payloads in
/// tests/data/msg, extracted with a small Python reader); expected values from `rosbags`.
#[test]
fn real_pr2_joint_states() {
    let s = schema("sensor_msgs/JointState", JOINT_STATE_ROSLIB);
    let m0: &[u8] = include_bytes!("../../tests/data/msg/pr2_joint_state_0.bin");
    let m800: &[u8] = include_bytes!("../../tests/data/msg/pr2_joint_state_800.bin");

    let stamp = StampReader::new(&s).unwrap();
    assert_eq!(stamp.read(m0).unwrap(), 291_566_000_000);
    assert_eq!(stamp.read(m800).unwrap(), 299_566_000_000);

    let all = ex(&s, "position");
    assert_eq!(all.names(m0).unwrap(), PR2_NAMES);
    let v = values(&all, m0);
    assert_eq!(v.len(), 42);
    assert_eq!(v[0], 0.0007309913635253906_f64 as f32);
    assert_eq!(v[41], 0.004387824955728557_f64 as f32);

    let sliced = ex(&s, "position[12:16]");
    assert_eq!(
        values(&sliced, m0),
        [
            -0.00044290007077699064_f64 as f32,
            -0.00024349948216695338_f64 as f32,
            1.0467629432678223_f64 as f32,
            -0.7830893993377686_f64 as f32
        ]
    );
    assert_eq!(
        sliced.names(m0).unwrap(),
        [
            "torso_lift_joint",
            "head_pan_joint",
            "head_tilt_joint",
            "laser_tilt_mount_joint"
        ]
    );

    let joints = strings(&[
        "l_gripper_joint",
        "fr_caster_r_wheel_joint",
        "r_forearm_roll_joint",
    ]);
    let pos = Extractor::new(&s, &FieldPath::parse("position").unwrap(), Some(&joints)).unwrap();
    let vel = Extractor::new(&s, &FieldPath::parse("velocity").unwrap(), Some(&joints)).unwrap();
    let eff = Extractor::new(&s, &FieldPath::parse("effort").unwrap(), Some(&joints)).unwrap();
    let f = |x: f64| x as f32;
    assert_eq!(
        values(&pos, m0),
        [
            f(0.004387824955728557),
            f(0.011379718780517578),
            f(-2.5313440346508287e-05)
        ]
    );
    assert_eq!(
        values(&vel, m0),
        [
            f(-8.633491396511857e-05),
            f(-0.057614712460476857),
            f(-0.016434987282979274)
        ]
    );
    assert_eq!(values(&eff, m0), [0.0, 0.0, 0.0]);
    // Second message: same names (cache hit), other values.
    assert_eq!(
        values(&pos, m800),
        [
            f(0.004383418928632659),
            f(0.025383472442626953),
            f(-2.5991463189711794e-05)
        ]
    );
    assert_eq!(
        values(&vel, m800),
        [
            f(-0.0001296435441057503),
            f(-0.0735277062432105),
            f(-0.03793599628646894)
        ]
    );
    assert_eq!(pos.names(m800).unwrap(), joints);
}

#[test]
fn raw_bytes_of_an_image_like_field() {
    let s = schema(
        "test/Img",
        "Header header\nuint32 height\nstring encoding\nuint8[] data\n===\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n",
    );
    let data = W::default()
        .header(1, 2, 3, "cam")
        .u32(2)
        .str("mono8")
        .u32(4)
        .raw(&[9, 8, 7, 6])
        .done();
    let e = ex(&s, "data");
    let raw = e.raw(&data).unwrap();
    assert_eq!(raw, [9, 8, 7, 6]);
    // Borrowed from the payload, not copied.
    assert_eq!(raw.as_ptr(), data[data.len() - 4..].as_ptr());
    assert_eq!(ex(&s, "data[1:3]").raw(&data).unwrap(), [8, 7]);
    assert_eq!(ex(&s, "height").raw(&data).unwrap(), 2u32.to_le_bytes());
    assert!(ex(&s, "data").raw(&data[..data.len() - 1]).is_err());
}

#[test]
fn extractors_can_move_and_be_shared_across_threads() {
    fn check<T: Send + Sync>() {}
    check::<Extractor>();
    check::<StampReader>();
    check::<StringReader>();
    check::<Schema>();
}

#[test]
fn string_fields_top_level_and_nested() {
    let s = schema(
        "test/Img",
        "Header header\nuint32 height\nstring encoding\nuint8[] data\nstring tail\n===\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n",
    );
    let data = W::default()
        .header(1, 2, 3, "cam")
        .u32(2)
        .str("bgr8")
        .u32(3)
        .raw(&[1, 2, 3])
        .str("end")
        .done();
    let rd = |p: &str| StringReader::new(&s, &FieldPath::parse(p).unwrap());
    assert_eq!(rd("encoding").unwrap().read(&data).unwrap(), b"bgr8");
    assert_eq!(rd("header.frame_id").unwrap().read(&data).unwrap(), b"cam");
    // Skips a length-prefixed array before it.
    assert_eq!(rd("tail").unwrap().read(&data).unwrap(), b"end");

    let err = |p: &str| rd(p).unwrap_err().to_string();
    assert!(
        err("height").contains("is a uint32, not a string"),
        "{}",
        err("height")
    );
    assert!(err("data").contains("array"), "{}", err("data"));
    assert!(err("nope").contains("no field `nope`"), "{}", err("nope"));
    assert!(
        err("header.seq").contains("not a string"),
        "{}",
        err("header.seq")
    );
    assert!(
        err("encoding.x").contains("has no fields"),
        "{}",
        err("encoding.x")
    );

    // A string length pointing past the end is an error, not a panic.
    let cut = &data[..4 + 8 + 4 + 3 + 4 + 4 + 2];
    assert!(matches!(
        rd("encoding").unwrap().read(cut),
        Err(DecodeError::Truncated { .. })
    ));
    let mut lying = data.clone();
    let at = 4 + 8 + 4 + 3 + 4;
    lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(rd("encoding").unwrap().read(&lying).is_err());
}

/// A fixed-size array claiming 4 billion bytes that the payload does not hold: `names` must
/// fail like `extract` instead of naming 4 billion elements.
#[test]
fn names_of_a_huge_fixed_array_need_its_bytes() {
    let s = schema("pkg/Big", "uint8[4000000000] x\n");
    let e = ex(&s, "x");
    let data = [0u8; 16];
    assert!(e.names(&data).is_err());
    assert!(e.extract(&data, &mut Vec::new()).is_err());
    let e = ex(&s, "x[3]");
    assert!(e.names(&data).is_err());
}

/// Arrays of a type that serializes to nothing hold nothing to read: a count of 2^32 - 1 in a
/// 4-byte payload must not be looped over (it took seconds).
#[test]
fn arrays_of_empty_messages_are_not_looped_over() {
    let text = "pkg/E[] many\npkg/E[4000000000] fixed\npkg/Z[0] none\n===\nMSG: pkg/E\n\
                ===\nMSG: pkg/Z\nfloat64[] v\n";
    let s = schema("pkg/Holder", text);
    let data = u32::MAX.to_le_bytes();
    let start = std::time::Instant::now();
    for path in ["many", "fixed", "none"] {
        let e = ex(&s, path);
        let mut out = Vec::new();
        e.extract(&data, &mut out).unwrap();
        assert!(out.is_empty(), "{path}");
        assert!(e.names(&data).unwrap().is_empty(), "{path}");
    }
    // Generous: the loops took seconds; skipping them takes microseconds.
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

/// An index at usize::MAX is past any array's end, not an overflow.
#[test]
fn index_at_usize_max_is_an_error_not_an_overflow() {
    let s = schema("pkg/A", "float64[] v\n");
    let e = ex(&s, &format!("v[{}]", usize::MAX));
    let mut w = W::default();
    w.u32(1).f64(1.5);
    assert!(e.extract(&w.0, &mut Vec::new()).is_err());
}
