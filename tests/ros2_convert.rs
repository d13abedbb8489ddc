//! ROS 2 specifics of a conversion: definitions found through `--msg-path` when the storage
//! has none, and `stamp: publish`.

mod common;

use std::path::Path;
use std::process::Command;

use common::shared_bags;

/// `bagstream convert -q --config CFG [EXTRA...] --out OUT BAG`.
fn convert(cfg: &Path, extra: &[&Path], out: &Path, bag: &Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bagstream"));
    c.args(["convert", "-q", "--config"]).arg(cfg);
    for e in extra {
        c.arg(e);
    }
    c.arg("--out").arg(out).arg(bag).output().unwrap()
}

const BASIC_TYPES: &str = "bool bool_value\nbyte byte_value\nchar char_value\n\
float32 float32_value\nfloat64 float64_value\nint8 int8_value\nuint8 uint8_value\n\
int16 int16_value\nuint16 uint16_value\nint32 int32_value\nuint32 uint32_value\n\
int64 int64_value\nuint64 uint64_value\n";

const CONFIG: &str = "fps: 20
task: t
features:
  observation.state:
    sources:
      - {topic: /test_topic, field: float64_value}
      - {topic: /test_topic, field: int32_value}
      - {topic: /test_topic, field: uint64_value}
    match: asof
    on_missing: hold
    tolerance: 1.0
";

/// rosbag2's sqlite3_cdr_test with its `message_definitions` table dropped, as bags written
/// before Iron are: the custom type test_msgs/msg/BasicTypes is then defined nowhere.
fn bag_without_definitions(shared: &Path, dir: &Path) -> std::path::PathBuf {
    let bag = dir.join("no_defs");
    std::fs::create_dir(&bag).unwrap();
    let src = shared.join("rosbag2/sqlite3_cdr_test");
    for f in ["metadata.yaml", "cdr_test_0.db3"] {
        std::fs::copy(src.join(f), bag.join(f)).unwrap();
    }
    let db = rusqlite::Connection::open(bag.join("cdr_test_0.db3")).unwrap();
    db.execute_batch("DROP TABLE message_definitions;").unwrap();
    drop(db);
    bag
}

#[test]
fn a_type_the_bag_does_not_define_is_found_through_msg_path() {
    let Some(shared) = shared_bags() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bag = bag_without_definitions(&shared, dir.path());
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();

    // Without --msg-path: exit 2, naming the topic, the type and where it looked.
    let out = dir.path().join("without");
    let o = convert(&cfg, &[], &out, &bag);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        "/test_topic",
        "test_msgs/msg/BasicTypes",
        "--msg-path",
        "shipped",
    ] {
        assert!(err.contains(want), "{want:?} missing in {err}");
    }
    assert!(!out.exists());

    // With it: the values the same recording's MCAP (which holds the definition) gives.
    let msgs = dir.path().join("msgs");
    std::fs::create_dir_all(msgs.join("test_msgs/msg")).unwrap();
    std::fs::write(msgs.join("test_msgs/msg/BasicTypes.msg"), BASIC_TYPES).unwrap();
    let with = dir.path().join("with");
    let o = convert(&cfg, &[Path::new("--msg-path"), &msgs], &with, &bag);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mcap = dir.path().join("mcap");
    let o = convert(&cfg, &[], &mcap, &shared.join("rosbag2/mcap_cdr_test"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = |ds: &Path| {
        common::f32_rows(
            &common::read_parquet(&common::data_file(ds)),
            "observation.state",
        )
    };
    let (a, b) = (rows(&with), rows(&mcap));
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
    // BasicTypes carries (float64, int32, uint64) values that are not all zero.
    assert!(a.iter().flatten().any(|v| *v != 0.0), "{a:?}");

    // msg_path in the config, relative to the config file, works the same.
    let cfg2 = dir.path().join("c2.yaml");
    std::fs::write(&cfg2, format!("msg_path: [msgs]\n{CONFIG}")).unwrap();
    let via_config = dir.path().join("via_config");
    let o = convert(&cfg2, &[], &via_config, &bag);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(&via_config), a);
}

#[test]
fn stamp_publish_uses_mcap_publish_times_and_is_refused_without_them() {
    let Some(shared) = shared_bags() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = |stamp: &str| {
        let p = dir.path().join(format!("{stamp}.yaml"));
        std::fs::write(
            &p,
            format!(
                "fps: 10\ntask: t\ntimeline:\n  stamp: {stamp}\nfeatures:\n  observation.state:\n    topic: /joint_states\n    field: position\n"
            ),
        )
        .unwrap();
        p
    };
    let run = |config: &Path, bag: &Path, out: &Path| convert(config, &[], out, bag);
    // rosbags writes publish_time = log_time: the same dataset as receive stamps.
    let mcap = shared.join("synthetic/ros2_mcap");
    let (a, b) = (dir.path().join("publish"), dir.path().join("receive"));
    assert!(run(&cfg("publish"), &mcap, &a).status.success());
    assert!(run(&cfg("receive"), &mcap, &b).status.success());
    common::assert_same_dataset(&a, &b);
    // Neither a ROS1 bag nor a rosbag2 sqlite3 file records a publish time.
    for bag in ["synthetic/ros1_lz4.bag", "synthetic/ros2_sqlite3"] {
        let out = dir.path().join("refused");
        let o = run(&cfg("publish"), &shared.join(bag), &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bag}: {err}");
        assert!(err.contains("stamp: publish"), "{bag}: {err}");
        assert!(!out.exists());
    }
}
