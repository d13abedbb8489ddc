//! Every message of every ROS 2 bag of ../shared/bags that the independent `rosbags` package
//! reads decodes, through bagstream's readers (MCAP, sqlite3, split, zstd) and its CDR decoder,
//! to the values rosbags gives: per topic, the message count and a digest over every message
//! of every field path outside arrays of messages (tests/reference/make_ros2_digests.py wrote
//! tests/reference/ros2_digests.json; bags rosbags cannot read are listed there as left out).

mod common;

use std::collections::{BTreeMap, HashMap};

use bagstream::msg::{DefinitionStore, Encoding, Extractor, FieldPath, StringReader};
use serde::Deserialize;

#[derive(Deserialize)]
struct Topic {
    #[serde(rename = "type")]
    datatype: String,
    count: u64,
    paths: Vec<(String, String)>,
    digest: String,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One topic's decoders for the reference's paths.
enum Reader {
    Num(Box<Extractor>),
    Str(StringReader),
}

#[test]
fn every_ros2_message_decodes_to_the_rosbags_values() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let reference: BTreeMap<String, BTreeMap<String, Topic>> =
        serde_json::from_str(include_str!("reference/ros2_digests.json")).unwrap();
    let store = DefinitionStore::default();
    let (mut messages, mut values) = (0u64, 0u64);
    for (rel, topics) in &reference {
        let mut bag = bagstream::bag::open(&bags.join(rel)).unwrap_or_else(|e| panic!("{e}"));
        let s = bag.summary().clone();
        // Per connection: the topic's readers, built from the connection's own schema.
        let mut readers: HashMap<usize, Vec<Reader>> = HashMap::new();
        for (c, conn) in s.connections.iter().enumerate() {
            let Some(t) = topics.get(&conn.topic) else {
                continue;
            };
            assert_eq!(conn.datatype, t.datatype, "{rel} {}", conn.topic);
            let encoding: Encoding = conn.encoding.parse().unwrap();
            let schema = store
                .schema(&conn.datatype, &conn.schema_format, &conn.definition)
                .unwrap_or_else(|e| panic!("{rel} {}: {e}", conn.topic));
            let list = t
                .paths
                .iter()
                .map(|(p, kind)| {
                    let fp = FieldPath::parse(p).unwrap();
                    let at = || format!("{rel} {} {p}", conn.topic);
                    match kind.as_str() {
                        "num" => Reader::Num(Box::new(
                            Extractor::with_encoding(&schema, &fp, None, encoding)
                                .unwrap_or_else(|e| panic!("{}: {e}", at())),
                        )),
                        _ => Reader::Str(
                            StringReader::with_encoding(&schema, &fp, encoding)
                                .unwrap_or_else(|e| panic!("{}: {e}", at())),
                        ),
                    }
                })
                .collect();
            readers.insert(c, list);
        }
        let wanted: Vec<bool> = (0..s.connections.len())
            .map(|c| readers.contains_key(&c))
            .collect();
        let mut all = Vec::new();
        if let Some((first, last)) = s.time_range() {
            bag.read_window(first, last + 1, &wanted, &mut all).unwrap();
        }
        let mut got: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut v = Vec::new();
        for m in &all {
            let topic = s.connections[m.conn].topic.as_str();
            let (count, h) = got.entry(topic).or_insert((0, FNV_OFFSET));
            for r in &readers[&m.conn] {
                match r {
                    Reader::Num(x) => {
                        v.clear();
                        x.extract(m.data(), &mut v)
                            .unwrap_or_else(|e| panic!("{rel} {topic}: {e}"));
                        for f in &v {
                            *h = fnv(*h, &f.to_le_bytes());
                        }
                        values += v.len() as u64;
                    }
                    Reader::Str(x) => {
                        *h = fnv(*h, x.read(m.data()).unwrap());
                        values += 1;
                    }
                }
            }
            *count += 1;
            messages += 1;
        }
        for (topic, t) in topics {
            let (count, h) = got.get(topic.as_str()).copied().unwrap_or((0, FNV_OFFSET));
            assert_eq!(count, t.count, "{rel} {topic}: message count");
            assert_eq!(
                format!("{h:016x}"),
                t.digest,
                "{rel} {topic}: values differ"
            );
        }
    }
    eprintln!("{messages} messages, {values} values, as rosbags decodes them");
    assert!(messages > 15_000, "{messages} messages");
}
