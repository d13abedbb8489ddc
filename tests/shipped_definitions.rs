//! The ROS 2 definitions bagstream ships, checked against two independent sources, and the
//! definition store's lookup order.
//!
//! - The `rosbags` package's type store (ROS 2 Humble): tests/reference/rosbags_fielddefs.py
//!   wrote each type's field list and constants to tests/reference/rosbags_fielddefs.json.
//! - The definitions embedded in the ROS 2 bags of ../shared/bags (MCAP schema records, and
//!   the sqlite3 `message_definitions` tables, read through Python's sqlite3 module).
//!
//! Both are parsed and compared as models (names, types, array kinds and lengths, bounds),
//! not as text.

mod common;
#[path = "support/mcap.rs"]
mod mcap;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bagstream::msg::def::{normalize_type, Arity, FieldType, MessageDef, Primitive};
use bagstream::msg::{DefinitionStore, MsgError, Origin, Schema};
use serde::Deserialize;
use serde_json::Value;

/// A field as both sides can state it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct F {
    name: String,
    /// A primitive's name after ROS 2 aliasing (`byte`, `char` -> `uint8`), or `pkg/Type`.
    ty: String,
    /// `scalar`, `fixed`, `sequence`.
    array: String,
    /// Fixed length, or a sequence's bound (0: none).
    len: usize,
    string_bound: usize,
}

fn prim_name(name: &str) -> String {
    Primitive::from_ros2_name(name)
        .map(|p| p.name().to_string())
        .unwrap_or_else(|| normalize_type(name))
}

fn ours(schema: &Schema, m: &MessageDef) -> Vec<F> {
    m.fields
        .iter()
        .map(|f| F {
            name: f.name.clone(),
            ty: match f.ty {
                FieldType::Primitive(p) => p.name().to_string(),
                FieldType::Message(id) => normalize_type(&schema.message(id).name),
            },
            array: match f.arity {
                Arity::Scalar => "scalar",
                Arity::Fixed(_) => "fixed",
                Arity::Variable => "sequence",
            }
            .to_string(),
            len: match f.arity {
                Arity::Fixed(n) => n,
                _ => f.max_len.unwrap_or(0),
            },
            string_bound: f.string_bound.unwrap_or(0),
        })
        .collect()
}

fn shipped(store: &DefinitionStore, name: &str) -> Schema {
    let r = store
        .resolve(name, "", "")
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(r.origin, Origin::Shipped, "{name}");
    r.schema
}

#[derive(Deserialize)]
struct RefType {
    fields: Vec<RefField>,
    constants: Vec<RefConst>,
}

#[derive(Deserialize)]
struct RefField {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    array: String,
    len: usize,
    string_bound: usize,
}

#[derive(Deserialize)]
struct RefConst {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    value: Value,
}

#[derive(Deserialize)]
struct Reference {
    types: BTreeMap<String, RefType>,
    missing: Vec<String>,
}

/// A constant's value text as a JSON value, for comparing numerically.
fn const_value(text: &str) -> Value {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = t.parse::<u64>() {
        return Value::from(u);
    }
    if let Ok(f) = t.parse::<f64>() {
        return Value::from(f);
    }
    match t {
        "true" | "True" => Value::from(true),
        "false" | "False" => Value::from(false),
        _ => Value::from(t.trim_matches(|c| c == '"' || c == '\'')),
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        // rosbags gives bool constants as booleans, ints as 0/1 may appear either way.
        _ => a == b || (a.as_bool().map(|v| v as i64) == b.as_i64()),
    }
}

#[test]
fn shipped_definitions_match_the_rosbags_type_store() {
    let reference: Reference =
        serde_json::from_str(include_str!("reference/rosbags_fielddefs.json")).unwrap();
    assert!(reference.missing.is_empty(), "{:?}", reference.missing);
    let store = DefinitionStore::default();
    let names: BTreeSet<&str> = DefinitionStore::shipped_types().collect();
    let refs: BTreeSet<&str> = reference.types.keys().map(String::as_str).collect();
    assert_eq!(
        names, refs,
        "every shipped type has a reference, and no more"
    );
    assert!(names.len() >= 100, "{}", names.len());
    for (name, want) in &reference.types {
        let s = shipped(&store, name);
        let got = ours(&s, s.root());
        let want_fields: Vec<F> = want
            .fields
            .iter()
            .map(|f| F {
                name: f.name.clone(),
                ty: prim_name(&f.ty),
                array: f.array.clone(),
                len: f.len,
                string_bound: f.string_bound,
            })
            .collect();
        assert_eq!(got, want_fields, "{name}");
        let got: Vec<(String, String, Value)> = s
            .root()
            .constants
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.ty.name().to_string(),
                    const_value(&c.value),
                )
            })
            .collect();
        assert_eq!(got.len(), want.constants.len(), "{name} constants");
        for ((gn, gt, gv), w) in got.iter().zip(&want.constants) {
            assert_eq!(
                (gn, gt.as_str()),
                (&w.name, prim_name(&w.ty).as_str()),
                "{name}"
            );
            assert!(same_value(gv, &w.value), "{name}.{gn}: {gv} vs {}", w.value);
        }
    }
}

/// Every `(file, type name, schema encoding, text)` embedded in the ROS 2 bags.
fn embedded(bags: &Path) -> Vec<(PathBuf, String, String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![bags.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "mcap") {
                let f = mcap::read(&p).unwrap();
                for s in f.schemas {
                    let text = String::from_utf8_lossy(&s.data).into_owned();
                    out.push((p.clone(), s.name, s.encoding, text));
                }
            } else if p.extension().is_some_and(|e| e == "db3") {
                for (name, enc, text) in sqlite_definitions(&p) {
                    out.push((p.clone(), name, enc, text));
                }
            }
        }
    }
    out
}

/// The `message_definitions` table of a rosbag2 sqlite3 file (none in older files).
fn sqlite_definitions(path: &Path) -> Vec<(String, String, String)> {
    const SCRIPT: &str = "import json, sqlite3, sys\n\
        c = sqlite3.connect(sys.argv[1])\n\
        t = [r[0] for r in c.execute(\"select name from sqlite_master where type='table'\")]\n\
        rows = []\n\
        if 'message_definitions' in t:\n    \
            rows = list(c.execute('select topic_type, encoding, encoded_message_definition \
            from message_definitions'))\n\
        print(json.dumps(rows))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap(),
        _ => {
            eprintln!("skipped {}: python3 with sqlite3 is needed", path.display());
            Vec::new()
        }
    }
}

/// Differences that are the ROS distribution's, not ours: the shipped set is Humble's (the
/// last distribution whose sqlite3 bags carry no definitions); later ones added fields.
const LATER_DISTROS: &[(&str, &str)] = &[
    ("sensor_msgs/Range", "Jazzy added `float32 variance`"),
    (
        "rosbag2_interfaces/WriteSplitEvent",
        "Jazzy added `string node_name`",
    ),
];

#[test]
fn shipped_definitions_match_the_ones_embedded_in_ros2_bags() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let store = DefinitionStore::default();
    let shipped_names: BTreeSet<&str> = DefinitionStore::shipped_types().collect();
    let mut compared = BTreeSet::new();
    let mut later = BTreeSet::new();
    let mut unparsed = Vec::new();
    for (file, name, enc, text) in embedded(&bags) {
        if enc != "ros2msg" {
            continue;
        }
        let Ok(theirs) = Schema::parse_ros2(&name, &text) else {
            unparsed.push(format!("{} {name}", file.display()));
            continue;
        };
        for m in theirs.messages() {
            let n = normalize_type(&m.name);
            if !shipped_names.contains(n.as_str()) {
                continue;
            }
            let s = shipped(&store, &n);
            let (got, want) = (ours(&s, s.root()), ours(&theirs, m));
            if got == want {
                compared.insert(n);
                continue;
            }
            let known = LATER_DISTROS.iter().any(|(t, _)| *t == n)
                && want.len() > got.len()
                && want[..got.len()] == got[..];
            // rosbag2's talker fixture stores cut-down definitions (one field each).
            let cut = file.ends_with("sqlite3_talker/talker.db3");
            assert!(
                known || cut,
                "{}: {n}: shipped {got:?}\nembedded {want:?}",
                file.display()
            );
            later.insert(n);
        }
    }
    // The types the bags show, each matched at least once (a distribution-specific variant
    // may also appear).
    for t in [
        "builtin_interfaces/Time",
        "std_msgs/Header",
        "std_msgs/String",
        "geometry_msgs/PoseStamped",
        "geometry_msgs/TransformStamped",
        "tf2_msgs/TFMessage",
        "sensor_msgs/Image",
        "sensor_msgs/CompressedImage",
        "sensor_msgs/JointState",
        "sensor_msgs/Imu",
        "sensor_msgs/CameraInfo",
        "sensor_msgs/BatteryState",
        "sensor_msgs/PointCloud2",
        "sensor_msgs/NavSatFix",
        "sensor_msgs/MultiDOFJointState",
        "rcl_interfaces/Log",
        "rcl_interfaces/ParameterEvent",
    ] {
        assert!(
            compared.contains(t),
            "{t} not met in the bags: {compared:?}"
        );
    }
    assert!(compared.len() >= 40, "{} types compared", compared.len());
    eprintln!(
        "{} shipped types match the bags' own; distribution variants: {later:?}; \
         not parsed: {unparsed:?}",
        compared.len()
    );
}

#[test]
fn every_shipped_type_resolves_from_the_shipped_set_alone() {
    let store = DefinitionStore::default();
    for name in DefinitionStore::shipped_types() {
        let s = shipped(&store, name);
        assert_eq!(normalize_type(s.datatype()), name);
        // The ROS 2 spelling resolves to the same model.
        let (pkg, ty) = name.split_once('/').unwrap();
        let long = shipped(&store, &format!("{pkg}/msg/{ty}"));
        assert_eq!(long.messages()[1..], s.messages()[1..], "{name}");
    }
}

// ---- the lookup ----

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn storage_first_then_msg_path_then_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let header = write(
        dir.path(),
        "std_msgs/msg/Header.msg",
        "builtin_interfaces/Time stamp\nstring frame_id\nuint8 extra\n",
    );
    let store = DefinitionStore::new(vec![dir.path().to_path_buf()]);
    // (a) The bag's own definition wins.
    let r = store
        .resolve(
            "std_msgs/msg/Header",
            "ros2msg",
            "builtin_interfaces/Time stamp\nstring frame_id\n",
        )
        .unwrap();
    assert_eq!(r.origin, Origin::Storage);
    assert_eq!(r.schema.root().fields.len(), 2);
    // (b) Without one, the --msg-path file.
    for (format, text) in [("", ""), ("unknown", ""), ("ros2msg", "  \n")] {
        let r = store.resolve("std_msgs/msg/Header", format, text).unwrap();
        assert_eq!(r.origin, Origin::File(header.clone()), "{format:?}");
        assert_eq!(r.schema.root().fields.len(), 3);
    }
    // ... also for the dependencies of a bag's definition that its text lacks.
    let r = store
        .resolve(
            "sensor_msgs/msg/Temperature",
            "ros2msg",
            "std_msgs/Header header\nfloat64 temperature\n",
        )
        .unwrap();
    assert_eq!(
        r.schema.messages()[1].field_list(),
        "stamp (builtin_interfaces/Time), frame_id (string), extra (uint8)"
    );
    // (c) Else the shipped set.
    let r = DefinitionStore::default()
        .resolve("std_msgs/msg/Header", "", "")
        .unwrap();
    assert_eq!(r.origin, Origin::Shipped);
    assert_eq!(r.schema.root().fields.len(), 2);
    // ROS1 text is complete and stays ROS1: its Header has seq and a `time` stamp.
    let r = store
        .resolve(
            "std_msgs/Header",
            "ros1msg",
            "uint32 seq\ntime stamp\nstring frame_id\n",
        )
        .unwrap();
    assert_eq!(
        r.schema.root().fields[1].ty,
        FieldType::Primitive(Primitive::Time)
    );
    // A bag's definition that is there but broken is the bag's error, not replaced.
    let e = store
        .resolve("std_msgs/msg/Header", "ros2msg", "int32[x] a\n")
        .unwrap_err();
    assert!(!e.is_missing_definition(), "{e}");
}

#[test]
fn custom_types_from_package_paths_with_shipped_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A source or share/ directory, an install prefix, colcon's per-package install, and a
    // package directory itself.
    write(
        root,
        "src/arm_msgs/msg/Reading.msg",
        "std_msgs/Header header\nGrip grip\nfloat64[<=7] q\n",
    );
    write(
        root,
        "install/share/arm_msgs/msg/Grip.msg",
        "float32 force\nhand_msgs/Finger[] fingers\n",
    );
    write(
        root,
        "iso/hand_msgs/share/hand_msgs/msg/Finger.msg",
        "uint8 id\nfloat32 angle 0.0\n",
    );
    write(root, "tool_msgs/msg/Tip.msg", "float64 x\n");
    let store = DefinitionStore::new(vec![
        root.join("src"),
        root.join("install"),
        root.join("iso"),
        root.join("tool_msgs"),
    ]);
    let r = store.resolve("arm_msgs/msg/Reading", "", "").unwrap();
    assert_eq!(
        r.origin,
        Origin::File(root.join("src/arm_msgs/msg/Reading.msg"))
    );
    let names: Vec<&str> = r
        .schema
        .messages()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "arm_msgs/msg/Reading",
            "std_msgs/Header",
            "builtin_interfaces/Time",
            "arm_msgs/Grip",
            "hand_msgs/Finger"
        ]
    );
    let r = store.resolve("tool_msgs/msg/Tip", "", "").unwrap();
    assert_eq!(r.origin, Origin::File(root.join("tool_msgs/msg/Tip.msg")));
    // A service's event type from its .srv file.
    write(
        root,
        "src/example_interfaces/srv/AddTwoInts.srv",
        "int64 a\nint64 b\n---\nint64 sum\n",
    );
    let r = store
        .resolve("example_interfaces/srv/AddTwoInts_Event", "", "")
        .unwrap();
    assert_eq!(
        r.schema.root().field_list(),
        "info (service_msgs/ServiceEventInfo), request (example_interfaces/AddTwoInts_Request[<=1]), \
         response (example_interfaces/AddTwoInts_Response[<=1])"
    );
}

#[test]
fn a_type_found_nowhere_names_the_type_and_every_place_looked() {
    let dir = tempfile::tempdir().unwrap();
    let store = DefinitionStore::new(vec![dir.path().to_path_buf()]);
    let e = store.resolve("acme_msgs/msg/Gripper", "", "").unwrap_err();
    assert!(e.is_missing_definition());
    let MsgError::Missing { missing, .. } = &e else {
        panic!()
    };
    assert_eq!(missing, "acme_msgs/Gripper");
    let text = e.to_string();
    for want in [
        "acme_msgs/msg/Gripper",
        "the bag has no definition",
        &dir.path().display().to_string(),
        "acme_msgs/msg/Gripper.msg",
        "not among the shipped definitions",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains('\n'), "one line: {text}");
    let e = DefinitionStore::default()
        .resolve("acme_msgs/msg/Gripper", "ros2idl", "module acme_msgs {};")
        .unwrap_err();
    assert!(
        e.is_missing_definition()
            && e.to_string().contains("ros2idl")
            && e.to_string().contains("no --msg-path given"),
        "{e}"
    );
    // An IDL definition of a shipped type: the shipped .msg stands in.
    let r = DefinitionStore::default()
        .resolve("std_msgs/msg/String", "ros2idl", "module std_msgs { };")
        .unwrap();
    assert_eq!(r.origin, Origin::Shipped);
    // A dependency found nowhere: the dependency is named, with the field that uses it.
    let e = store
        .resolve(
            "acme_msgs/msg/Arm",
            "ros2msg",
            "acme_msgs/Gripper grip\nfloat64 x\n",
        )
        .unwrap_err();
    let MsgError::Missing { missing, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(missing, "acme_msgs/Gripper");
    assert!(e.to_string().contains("field `grip`"), "{e}");
    // Not a ROS definition language at all.
    let e = store
        .resolve("acme_msgs/msg/Arm", "jsonschema", "{}")
        .unwrap_err();
    assert!(e.to_string().contains("`jsonschema`"), "{e}");
}
