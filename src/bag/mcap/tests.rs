use super::testwrite::{Opts, Writer};
use super::*;
use crate::bag::ConnectionExtra;
use crate::NANOS;

type Written = Vec<(u16, Time, Vec<u8>)>;

/// Three channels (one without a schema), 300 messages mostly forward in time with jumps
/// back (so chunks overlap in time) and repeated times; returns the file and what was
/// written, in file order.
fn write(o: Opts) -> (Vec<u8>, Written) {
    let mut w = Writer::new(o);
    w.schema(1, "std_msgs/msg/Float64", "ros2msg", b"float64 data\n");
    w.schema(
        2,
        "tf2_msgs/msg/TFMessage",
        "ros2msg",
        b"geometry_msgs/TransformStamped[] t\n",
    );
    w.channel(
        1,
        1,
        "/a",
        "cdr",
        &[("offered_qos_profiles", "- history: 3")],
    );
    w.channel(2, 2, "/tf", "cdr", &[]);
    w.channel(3, 0, "/raw", "cdr", &[]);
    let mut written = Vec::new();
    let base = 1_000 * NANOS;
    for i in 0..300i64 {
        let t = base + i * NANOS / 20 - if i % 7 == 3 { NANOS } else { 0 };
        let ch = [1, 2, 3][(i % 3) as usize];
        let payload = format!("message {i}").into_bytes();
        w.message(ch, t as u64, t as u64 + 5, &payload);
        written.push((ch, t, payload));
        if i % 10 == 0 {
            w.message(1, t as u64, t as u64, b"dup");
            written.push((1, t, b"dup".to_vec()));
        }
    }
    (w.finish(), written)
}

fn open(bytes: &[u8]) -> Result<McapBag, BagError> {
    McapBag::from_source(
        PathBuf::from("test.mcap"),
        Box::new(crate::bag::SliceSource::new(bytes.to_vec())),
        BufferPool::new(),
    )
}

/// (channel id, time, payload) in (time, file order).
fn expected(written: &[(u16, Time, Vec<u8>)]) -> Written {
    let mut v = written.to_vec();
    v.sort_by_key(|x| x.1);
    v
}

fn read_all(bag: &mut McapBag, step: Time) -> Written {
    let Some((first, last)) = bag.summary().time_range() else {
        return Vec::new();
    };
    let ids: Vec<u16> = bag
        .summary()
        .connections
        .iter()
        .map(|c| c.id as u16)
        .collect();
    let wanted = vec![true; ids.len()];
    let mut got = Vec::new();
    let mut t = first;
    while t <= last {
        let mut out = Vec::new();
        bag.read_window(t, t.saturating_add(step), &wanted, &mut out)
            .unwrap();
        assert!(bag.cached_blocks() <= MAX_CACHED);
        got.extend(out.iter().map(|m| (ids[m.conn], m.time, m.data().to_vec())));
        t = t.saturating_add(step);
    }
    got
}

fn layouts() -> Vec<(String, Opts, bool)> {
    let mut v = Vec::new();
    for c in ["", "zstd", "lz4"] {
        let base = Opts {
            compression: c,
            ..Opts::default()
        };
        v.push((format!("{c:?} indexed"), base, true));
        v.push((
            format!("{c:?} without message indexes"),
            Opts {
                message_indexes: false,
                ..base
            },
            true,
        ));
        v.push((
            format!("{c:?} without statistics or CRCs"),
            Opts {
                statistics: false,
                crc: false,
                ..base
            },
            true,
        ));
        v.push((
            format!("{c:?} without summary"),
            Opts {
                summary: false,
                ..base
            },
            false,
        ));
    }
    for summary in [true, false] {
        v.push((
            format!("unchunked, summary {summary}"),
            Opts {
                chunk_size: 0,
                summary,
                ..Opts::default()
            },
            false,
        ));
    }
    v
}

#[test]
fn every_layout_reads_back_in_time_and_file_order() {
    for (name, o, indexed) in layouts() {
        let (bytes, written) = write(o);
        let want = expected(&written);
        let mut bag = open(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = bag.summary();
        assert_eq!(s.indexed, indexed, "{name}: {:?}", s.warnings);
        assert_eq!(s.warnings.is_empty(), indexed, "{name}: {:?}", s.warnings);
        assert_eq!(s.message_count(), want.len() as u64, "{name}");
        assert!(!s.blocks.is_empty(), "{name}");
        for step in [NANOS / 1000, NANOS / 30, NANOS / 3, NANOS, 1000 * NANOS] {
            assert_eq!(
                read_all(&mut bag, step),
                want,
                "{name}, windows of {step} ns"
            );
        }
        // First and last of each connection.
        for (conn, c) in bag.summary().connections.clone().iter().enumerate() {
            let mine: Vec<_> = want.iter().filter(|w| w.0 as u32 == c.id).collect();
            let (f, l) = bag.first_and_last(conn).unwrap().unwrap();
            let first = mine.first().unwrap();
            let last = mine.last().unwrap();
            assert_eq!((f.time, f.data()), (first.1, &first.2[..]), "{name}");
            assert_eq!((l.time, l.data()), (last.1, &last.2[..]), "{name}");
        }
    }
}

#[test]
fn the_index_opens_without_decompressing_and_windows_decompress_each_chunk_once() {
    for c in ["", "zstd", "lz4"] {
        let (bytes, _) = write(Opts {
            compression: c,
            ..Opts::default()
        });
        let mut bag = open(&bytes).unwrap();
        assert_eq!(bag.chunks_read_at_open(), 0);
        let chunks = bag.summary().blocks.len() as u64;
        assert!(chunks > 10, "{chunks} chunks");
        read_all(&mut bag, NANOS / 50);
        assert_eq!(bag.blocks_decompressed(), chunks, "{c:?}");
    }
    let (bytes, _) = write(Opts {
        message_indexes: false,
        ..Opts::default()
    });
    let bag = open(&bytes).unwrap();
    assert_eq!(bag.chunks_read_at_open(), bag.summary().blocks.len());
}

#[test]
fn unwanted_channels_and_chunks_are_not_read() {
    let (bytes, written) = write(Opts::default());
    let mut bag = open(&bytes).unwrap();
    let tf = bag.summary().connections_on("/tf")[0];
    let mut wanted = vec![false; bag.summary().connections.len()];
    wanted[tf] = true;
    let mut out = Vec::new();
    bag.read_window(Time::MIN, Time::MAX, &wanted, &mut out)
        .unwrap();
    let want: Vec<_> = expected(&written)
        .into_iter()
        .filter(|w| w.0 == 2)
        .map(|w| w.2)
        .collect();
    let got: Vec<_> = out.iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(got, want);
    assert!(out.iter().all(|m| m.publish == Some(m.time + 5)));
    // Every message shares a chunk buffer: no copy per message.
    assert!(out.windows(2).any(|w| Arc::ptr_eq(&w[0].buf, &w[1].buf)));
}

#[test]
fn connections_carry_topic_type_encoding_and_definition() {
    let (bytes, _) = write(Opts::default());
    let bag = open(&bytes).unwrap();
    let s = bag.summary();
    let c: Vec<_> = s
        .connections
        .iter()
        .map(|c| (c.id, c.topic.as_str(), c.datatype.as_str()))
        .collect();
    assert_eq!(
        c,
        [
            (1, "/a", "std_msgs/msg/Float64"),
            (2, "/tf", "tf2_msgs/msg/TFMessage"),
            (3, "/raw", "")
        ]
    );
    assert_eq!(s.connections[0].definition, "float64 data\n");
    assert_eq!(s.connections[0].encoding, "cdr");
    assert_eq!(s.connections[0].schema_format, "ros2msg");
    assert_eq!(s.connections[2].schema_format, "");
    assert_eq!(
        s.connections[0].extra,
        ConnectionExtra::Mcap {
            schema_id: 1,
            metadata: vec![("offered_qos_profiles".into(), "- history: 3".into())]
        }
    );
    assert_eq!(s.storage.id, "mcap");
    assert_eq!(s.storage.version, "ros2 (bagstream test writer)");
    assert_eq!(s.compression_counts(), [("zstd", s.blocks.len())]);
    assert_eq!(s.files.len(), 1);
}

#[test]
fn a_bad_chunk_crc_is_corrupt_naming_the_chunk() {
    let (mut bytes, _) = write(Opts {
        compression: "",
        ..Opts::default()
    });
    let bag = open(&bytes).unwrap();
    let chunk = bag.blocks()[3].clone();
    // A payload byte in the middle of the uncompressed chunk.
    let mid = (chunk.pos + chunk.len / 2) as usize;
    bytes[mid] ^= 0x20;
    let mut bag = open(&bytes).unwrap();
    let e = bag
        .read_window(Time::MIN, Time::MAX, &[true; 3], &mut Vec::new())
        .unwrap_err();
    match &e {
        BagError::Corrupt {
            path,
            offset,
            detail,
        } => {
            assert_eq!(path, Path::new("test.mcap"));
            assert_eq!(*offset, chunk.pos);
            assert!(detail.contains("CRC mismatch"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_killed_recording_is_read_by_a_linear_scan_up_to_its_last_whole_record() {
    let (bytes, written) = write(Opts::default());
    let bag = open(&bytes).unwrap();
    let chunks = bag.blocks().to_vec();
    // Cut inside the sixth chunk: five whole chunks and their messages remain.
    let cut = (chunks[5].pos + 20) as usize;
    let mut bag = open(&bytes[..cut]).unwrap();
    let s = bag.summary();
    assert!(!s.indexed);
    let w = s.warnings.join("\n");
    assert!(w.contains("test.mcap"), "{w}");
    assert!(
        w.contains(&format!("stopped at offset {}", chunks[5].pos)),
        "{w}"
    );
    let n: u64 = chunks[..5]
        .iter()
        .flat_map(|c| &c.counts)
        .map(|c| c.1)
        .sum();
    assert_eq!(s.message_count(), n);
    assert_eq!(read_all(&mut bag, NANOS), expected(&written[..n as usize]));

    // A preallocated file: zeros where the summary would be.
    let mut zeroed = bytes[..cut].to_vec();
    zeroed.truncate(chunks[5].pos as usize);
    zeroed.resize(bytes.len(), 0);
    let bag = open(&zeroed).unwrap();
    assert!(bag.summary().warnings.join("\n").contains("opcode 0"));
    assert_eq!(bag.summary().message_count(), n);
}

/// Cut a small file at every length: opening and reading give an error, or the messages of
/// a prefix of the file, never a panic.
#[test]
fn truncation_at_every_offset_gives_an_error_or_a_prefix() {
    for o in [
        Opts {
            chunk_size: 150,
            ..Opts::default()
        },
        Opts {
            chunk_size: 0,
            ..Opts::default()
        },
        Opts {
            compression: "lz4",
            chunk_size: 150,
            message_indexes: false,
            ..Opts::default()
        },
    ] {
        let mut w = Writer::new(o);
        w.schema(1, "std_msgs/msg/Float64", "ros2msg", b"float64 data\n");
        w.channel(1, 1, "/a", "cdr", &[]);
        let mut written = Vec::new();
        for i in 0..20u64 {
            let t = 100 + i * 10 - if i % 4 == 1 { 15 } else { 0 };
            w.message(1, t, t, &[i as u8; 9]);
            written.push((1u16, t as Time, vec![i as u8; 9]));
        }
        let bytes = w.finish();
        let (mut opened, mut full) = (0, 0);
        for cut in 0..=bytes.len() {
            let Ok(mut bag) = open(&bytes[..cut]) else {
                continue;
            };
            opened += 1;
            let n = bag.summary().connections.len();
            let mut out = Vec::new();
            if bag
                .read_window(Time::MIN, Time::MAX, &vec![true; n], &mut out)
                .is_err()
            {
                continue;
            }
            let got: Written = out.iter().map(|m| (1, m.time, m.data().to_vec())).collect();
            assert_eq!(got, expected(&written[..got.len()]), "cut at {cut}");
            full += (got.len() == written.len()) as usize;
            for c in 0..n {
                let _ = bag.first_and_last(c);
            }
        }
        assert!(opened > bytes.len() / 2, "{opened} of {}", bytes.len());
        assert!(full > 0);
    }
}

/// Flipped and shifted bytes all over a file give errors or warnings, never panics.
#[test]
fn damaged_files_do_not_panic() {
    for o in [
        Opts::default(),
        Opts {
            compression: "lz4",
            ..Opts::default()
        },
        Opts {
            compression: "",
            message_indexes: false,
            ..Opts::default()
        },
        Opts {
            chunk_size: 0,
            ..Opts::default()
        },
    ] {
        let (good, _) = write(o);
        for i in (0..good.len()).step_by(29) {
            for variant in 0..3 {
                let mut bad = good.clone();
                match variant {
                    0 => bad[i] ^= 0xFF,
                    1 => bad[i] = bad[i].wrapping_add(1),
                    _ => bad[i] = 0x7F,
                }
                let Ok(mut bag) = open(&bad) else {
                    continue;
                };
                let n = bag.summary().connections.len();
                let _ = bag.read_window(Time::MIN, Time::MAX, &vec![true; n], &mut Vec::new());
                let _ = bag.read_window(0, 1_010 * NANOS, &vec![true; n], &mut Vec::new());
                for c in 0..n {
                    let _ = bag.first_and_last(c);
                }
            }
        }
    }
}

#[test]
fn not_mcap_is_not_a_bag() {
    for b in [
        &b""[..],
        b"#ROSBAG V2.0\n",
        b"\x89MCAP0\r\n",
        b"\x89MCAP0\r\n\x02\0\0\0\0\0\0\0\0",
    ] {
        match open(b) {
            Err(BagError::NotABag { .. }) => {}
            other => panic!("{:?}", other.map(|b| b.summary().clone())),
        }
    }
}
