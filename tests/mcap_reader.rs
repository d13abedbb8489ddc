//! bagstream's MCAP reader against the independent `rosbags` package over every MCAP file of
//! ../shared/bags (tests/reference/make_mcap_reference.py wrote
//! tests/reference/mcap_reference.json): per topic the type, message encoding, count, first
//! and last log time, and a SHA-256 over (log time, data) in (log time, file) order. The same
//! sequence must come out of one window over the whole file, of consecutive windows of random
//! sizes, and the first/last look-up must agree.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use bagstream::bag::buffer::BufferPool;
use bagstream::bag::mcap::McapBag;
use bagstream::bag::{BagSource, SliceSource};
use bagstream::Time;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Topic {
    #[serde(rename = "type")]
    datatype: String,
    encoding: String,
    count: u64,
    first: i64,
    last: i64,
    sha256: String,
}

type Reference = BTreeMap<String, BTreeMap<String, Topic>>;

fn reference() -> Reference {
    serde_json::from_str(include_str!("reference/mcap_reference.json")).unwrap()
}

/// Per topic, (time, data) in the order read.
type Read = BTreeMap<String, Vec<(Time, Vec<u8>)>>;

fn windows(bag: &mut McapBag, sizes: &mut impl FnMut() -> Time) -> Read {
    let n = bag.summary().connections.len();
    let topics: Vec<String> = bag
        .summary()
        .connections
        .iter()
        .map(|c| c.topic.clone())
        .collect();
    let mut out: Read = BTreeMap::new();
    let Some((first, last)) = bag.summary().time_range() else {
        return out;
    };
    let mut t = first;
    while t <= last {
        let end = t.saturating_add(sizes().max(1));
        let mut msgs = Vec::new();
        bag.read_window(t, end, &vec![true; n], &mut msgs).unwrap();
        for m in &msgs {
            assert!(m.time >= t && m.time < end);
            out.entry(topics[m.conn].clone())
                .or_default()
                .push((m.time, m.data().to_vec()));
        }
        t = end;
    }
    out
}

fn sha(msgs: &[(Time, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    for (t, d) in msgs {
        h.update(t.to_le_bytes());
        h.update(d);
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// A small deterministic PRNG (xorshift64*) for window sizes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn open(path: &Path) -> McapBag {
    McapBag::open(path, BufferPool::new()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_mcap_file_reads_as_rosbags_reads_it() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let reference = reference();
    assert!(reference.len() >= 15, "{} files", reference.len());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut messages = 0;
    for (file, topics) in &reference {
        let path = bags.join(file);
        let mut bag = open(&path);
        let s = bag.summary().clone();
        assert!(s.indexed, "{file}: {:?}", s.warnings);
        assert!(s.warnings.is_empty(), "{file}: {:?}", s.warnings);
        assert_eq!(
            s.message_count(),
            topics.values().map(|t| t.count).sum::<u64>(),
            "{file}"
        );
        let whole = windows(&mut bag, &mut || Time::MAX);
        let got: BTreeMap<&str, u64> = whole
            .iter()
            .map(|(t, m)| (t.as_str(), m.len() as u64))
            .collect();
        let want: BTreeMap<&str, u64> = topics.iter().map(|(t, r)| (t.as_str(), r.count)).collect();
        assert_eq!(got, want, "{file}: topics and counts");
        for (topic, r) in topics {
            let at = format!("{file} {topic}");
            let msgs = &whole[topic];
            assert_eq!(sha(msgs), r.sha256, "{at}: messages differ");
            assert_eq!(msgs[0].0, r.first, "{at}");
            assert_eq!(msgs[msgs.len() - 1].0, r.last, "{at}");
            let conns = s.connections_on(topic);
            assert_eq!(conns.len(), 1, "{at}");
            let c = &s.connections[conns[0]];
            assert_eq!(c.datatype, r.datatype, "{at}");
            assert_eq!(c.encoding, r.encoding, "{at}");
            assert_eq!(c.schema_format, "ros2msg", "{at}");
            let st = &s.stats[conns[0]];
            assert_eq!(
                (st.count, st.first, st.last),
                (r.count, Some(r.first), Some(r.last))
            );
            let (f, l) = bag.first_and_last(conns[0]).unwrap().unwrap();
            assert_eq!((f.time, f.data()), (msgs[0].0, &msgs[0].1[..]), "{at}");
            let lm = &msgs[msgs.len() - 1];
            assert_eq!((l.time, l.data()), (lm.0, &lm.1[..]), "{at}");
            messages += r.count;
        }
        // Consecutive windows of random sizes (1 µs to about 2 s) give the same sequences.
        for round in 0..3 {
            let mut bag = open(&path);
            let scale = [2_000_000_000u64, 50_000_000, 1_000_000][round];
            let parts = windows(&mut bag, &mut || (rng.next() % scale) as Time + 1_000);
            assert_eq!(parts, whole, "{file}: windows round {round}");
        }
    }
    assert!(messages > 6000, "{messages} messages");
}

/// A recording cut short: without its footer every message is still there (a linear scan of
/// the data section); cut inside its last chunk, the messages before that chunk. Each time
/// with a warning naming the file and where the scan stopped.
#[test]
fn cut_copies_are_read_by_a_linear_scan_with_a_warning() {
    let Some(bags) = common::shared_bags() else {
        return;
    };
    let mut partial = 0;
    for file in reference().keys() {
        let path = bags.join(file);
        let bytes = std::fs::read(&path).unwrap();
        let mut whole = open(&path);
        let last_chunk = whole.blocks().last().unwrap().pos as usize;
        let all: Vec<(String, Time, Vec<u8>)> = windows(&mut whole, &mut || Time::MAX)
            .into_iter()
            .flat_map(|(t, m)| m.into_iter().map(move |(time, d)| (t.clone(), time, d)))
            .collect();
        let set: HashSet<_> = all.iter().cloned().collect();
        for (cut, complete) in [(bytes.len() - 30, true), (last_chunk + 100, false)] {
            let name = format!("cut {file}");
            let src = Box::new(SliceSource::new(bytes[..cut].to_vec()));
            let mut bag = McapBag::from_source(PathBuf::from(&name), src, BufferPool::new())
                .unwrap_or_else(|e| panic!("{name} at {cut}: {e}"));
            let s = bag.summary();
            assert!(!s.indexed, "{name} at {cut}");
            let w = s.warnings.join("\n");
            assert!(w.contains(&name), "{w}");
            if !complete {
                assert!(
                    w.contains(&format!("stopped at offset {last_chunk}")),
                    "{w}"
                );
            }
            let part: Vec<_> = windows(&mut bag, &mut || Time::MAX)
                .into_iter()
                .flat_map(|(t, m)| m.into_iter().map(move |(time, d)| (t.clone(), time, d)))
                .collect();
            if complete {
                assert_eq!(part, all, "{name} at {cut}");
            } else {
                assert!(part.len() < all.len(), "{name} at {cut}");
                assert!(part.iter().all(|m| set.contains(m)), "{name} at {cut}");
                partial += part.len();
            }
        }
    }
    assert!(partial > 0, "some file has messages before its last chunk");
}
