//! Real ROS 2 messages from ../shared/bags decode to the values the independent `rosbags`
//! package gives (tests/reference/make_bag_values.py wrote tests/reference/bag_values.json):
//! every field path of the first messages of every topic of the MCAP files with uncompressed
//! chunks, with each file's own definitions, through the definition store.

mod common;
#[path = "support/mcap.rs"]
mod mcap;

use std::collections::BTreeMap;

use bagstream::msg::{
    DefinitionStore, Encoding, Extractor, FieldPath, Origin, StampReader, StringReader,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Topic {
    #[serde(rename = "type")]
    datatype: String,
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    log_time: u64,
    fields: Vec<Entry>,
    stamp_ns: Option<i64>,
}

#[derive(Deserialize)]
struct Entry {
    path: String,
    kind: String,
    #[serde(default)]
    values: Vec<Value>,
    value: Option<String>,
    len: Option<usize>,
    fnv: Option<u64>,
}

fn as_f32(v: &Value) -> f32 {
    if let Some(u) = v.as_u64() {
        u as f32
    } else if let Some(i) = v.as_i64() {
        i as f32
    } else {
        v.as_f64().expect("a number") as f32
    }
}

/// FNV-1a 64 of the values as little-endian f32, as the script computes it.
fn fnv(values: &[f32]) -> u64 {
    values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
}

#[test]
fn real_ros2_messages_decode_to_the_rosbags_values() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let reference: BTreeMap<String, BTreeMap<String, Topic>> =
        serde_json::from_str(include_str!("reference/bag_values.json")).unwrap();
    let store = DefinitionStore::default();
    let (mut paths, mut messages) = (0, 0);
    for (file, topics) in &reference {
        let f = mcap::read(&bags.join(file)).unwrap_or_else(|| panic!("{file}"));
        for (topic, t) in topics {
            let ch = f.channel(topic).unwrap();
            assert_eq!(ch.message_encoding, "cdr");
            let encoding: Encoding = ch.message_encoding.parse().unwrap();
            let s = f.schema(ch.schema_id).unwrap();
            assert_eq!(s.name, t.datatype);
            let resolved = store
                .resolve(&s.name, &s.encoding, &String::from_utf8_lossy(&s.data))
                .unwrap_or_else(|e| panic!("{file} {topic}: {e}"));
            assert_eq!(resolved.origin, Origin::Storage);
            let schema = resolved.schema;
            let mut msgs: Vec<&mcap::Message> = f.messages_on(ch.id).collect();
            msgs.sort_by_key(|m| m.log_time);
            for (want, got) in t.messages.iter().zip(&msgs) {
                assert_eq!(want.log_time, got.log_time, "{file} {topic}");
                let data = &got.data;
                let at = |p: &str| format!("{file} {topic} @{}: {p}", got.log_time);
                for e in &want.fields {
                    let fp = FieldPath::parse(&e.path).unwrap();
                    match e.kind.as_str() {
                        "num" => {
                            let x = Extractor::with_encoding(&schema, &fp, None, encoding)
                                .unwrap_or_else(|err| panic!("{}: {err}", at(&e.path)));
                            let mut v = Vec::new();
                            x.extract(data, &mut v)
                                .unwrap_or_else(|err| panic!("{}: {err}", at(&e.path)));
                            match (e.len, e.fnv) {
                                (Some(n), Some(h)) => {
                                    assert_eq!((v.len(), fnv(&v)), (n, h), "{}", at(&e.path))
                                }
                                _ => {
                                    let w: Vec<f32> = e.values.iter().map(as_f32).collect();
                                    assert_eq!(v, w, "{}", at(&e.path));
                                }
                            }
                        }
                        "str" if !e.path.contains('[') => {
                            let r = StringReader::with_encoding(&schema, &fp, encoding).unwrap();
                            let w = e.value.as_deref().unwrap().as_bytes();
                            assert_eq!(r.read(data).unwrap(), w, "{}", at(&e.path));
                        }
                        _ => continue,
                    }
                    paths += 1;
                }
                if let Some(ns) = want.stamp_ns {
                    let r = StampReader::with_encoding(&schema, encoding).unwrap();
                    assert_eq!(r.read(data).unwrap(), ns, "{}", at("header.stamp"));
                }
                messages += 1;
            }
        }
    }
    assert_eq!(messages, 70);
    assert!(paths > 1000, "{paths} paths");
}
