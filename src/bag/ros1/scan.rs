//! The timestamp scanner: learns connections, chunks and per-connection counts and time ranges
//! from the bag's index with positioned reads, without decompressing any chunk.
//!
//! Bags without a usable index (a recorder that was killed leaves `index_pos` 0) fall back to a
//! sequential scan that decompresses one chunk at a time, so memory stays at one chunk either way.

use std::collections::HashMap;
use std::path::Path;

use super::chunk::{decompress, parse_compression, parse_connection, walk_chunk, ChunkEntry};
use super::record::{op, unknown_op, BagFile, FileRecord, Header};
use super::{ChunkInfo, Compression};
use crate::bag::buffer::BufferPool;
use crate::bag::{BagError, BagSummary, Connection, ConnectionStats, FileInfo, StorageInfo};
use crate::Time;

/// The scan result: the public summary plus what the reader needs to find messages.
#[derive(Debug, Clone)]
pub struct Scan {
    pub summary: BagSummary,
    /// In file order; `summary.blocks` shows them storage-neutrally.
    pub chunks: Vec<ChunkInfo>,
    /// Bag connection id to index in `summary.connections`.
    pub conn_index: HashMap<u32, usize>,
    /// Per connection (indexed like `summary.connections`): index in `chunks` of the
    /// chunk holding its first and its last message in `(time, order)` order.
    pub first_chunk: Vec<Option<usize>>,
    pub last_chunk: Vec<Option<usize>>,
}

/// Scan the bag at `path`.
pub fn scan(path: &Path) -> Result<Scan, BagError> {
    scan_file(&BagFile::open(path)?)
}

struct BagHeader {
    index_pos: u64,
    conn_count: u32,
    chunk_count: u32,
    /// Offset of the first record after the bag header.
    records_pos: u64,
}

fn read_bag_header(file: &BagFile) -> Result<BagHeader, BagError> {
    let pos = file.check_magic()?;
    let rec = file.record_at(pos)?;
    let h = rec.parse_header(file.path())?;
    let at = |e: super::record::RecordError| e.at(file.path(), pos + 4);
    let op_code = h.op().map_err(at)?;
    if op_code != op::BAG_HEADER {
        return Err(BagError::NotABag {
            path: file.path().to_path_buf(),
            detail: format!("first record has op {op_code:#04x}, expected a bag header (0x03)"),
        });
    }
    Ok(BagHeader {
        index_pos: h.u64("index_pos").map_err(at)?,
        conn_count: h.u32("conn_count").map_err(at)?,
        chunk_count: h.u32("chunk_count").map_err(at)?,
        records_pos: rec.end(),
    })
}

/// Scan an opened bag file.
pub fn scan_file(file: &BagFile) -> Result<Scan, BagError> {
    let header = read_bag_header(file)?;
    let mut b = Builder::new(file);
    let path = file.path().display();
    if header.index_pos == 0 {
        b.warnings.push(format!(
            "{path}: no index (index_pos is 0, the recording did not finish): read by a \
             sequential scan"
        ));
    } else {
        match scan_indexed(file, &header) {
            Ok(scan) => return Ok(scan),
            Err(e) => {
                b.warnings.push(format!(
                    "{path}: index unusable ({e}): read by a sequential scan"
                ));
            }
        }
    }
    scan_sequential(file, header.records_pos, b)
}

/// A message's `(time, chunk pos, offset)` order key and the index of its chunk.
type Extreme = ((Time, u64, u64), usize);

/// Accumulates the summary; shared by both scan paths so they agree on every figure.
struct Builder {
    summary: BagSummary,
    chunks: Vec<ChunkInfo>,
    conn_index: HashMap<u32, usize>,
    /// Per connection: where its first and last message are.
    first: Vec<Option<Extreme>>,
    last: Vec<Option<Extreme>>,
    warnings: Vec<String>,
}

impl Builder {
    fn new(file: &BagFile) -> Self {
        Builder {
            summary: BagSummary {
                path: file.path().to_path_buf(),
                storage: StorageInfo {
                    id: "ros1",
                    version: "2.0".to_string(),
                    details: Vec::new(),
                },
                files: vec![FileInfo {
                    path: file.path().to_path_buf(),
                    size: file.size(),
                }],
                file_size: file.size(),
                indexed: true,
                connections: Vec::new(),
                stats: Vec::new(),
                blocks: Vec::new(),
                warnings: Vec::new(),
                notes: Vec::new(),
            },
            chunks: Vec::new(),
            conn_index: HashMap::new(),
            first: Vec::new(),
            last: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Add a connection unless its id is known already (connection records repeat: once in
    /// the chunks and once in the index).
    fn add_connection(&mut self, c: Connection) {
        if self.conn_index.contains_key(&c.id) {
            return;
        }
        self.conn_index.insert(c.id, self.summary.connections.len());
        self.summary.connections.push(c);
        self.summary.stats.push(ConnectionStats::default());
        self.first.push(None);
        self.last.push(None);
    }

    fn add_message(&mut self, conn: usize, time: Time, chunk: usize, chunk_pos: u64, offset: u64) {
        let s = &mut self.summary.stats[conn];
        s.count += 1;
        s.first = Some(s.first.map_or(time, |f| f.min(time)));
        s.last = Some(s.last.map_or(time, |l| l.max(time)));
        let key = (time, chunk_pos, offset);
        if self.first[conn].is_none_or(|(k, _)| key < k) {
            self.first[conn] = Some((key, chunk));
        }
        if self.last[conn].is_none_or(|(k, _)| key > k) {
            self.last[conn] = Some((key, chunk));
        }
    }

    fn finish(mut self, indexed: bool) -> Scan {
        self.summary.indexed = indexed;
        self.summary.warnings = self.warnings;
        self.summary.blocks = self.chunks.iter().map(ChunkInfo::block).collect();
        Scan {
            summary: self.summary,
            chunks: self.chunks,
            conn_index: self.conn_index,
            first_chunk: self.first.iter().map(|f| f.map(|(_, c)| c)).collect(),
            last_chunk: self.last.iter().map(|f| f.map(|(_, c)| c)).collect(),
        }
    }
}

struct IndexChunk {
    chunk_pos: u64,
    start: Time,
    end: Time,
    counts: Vec<(u32, u64)>,
}

fn scan_indexed(file: &BagFile, header: &BagHeader) -> Result<Scan, BagError> {
    let path = file.path();
    if header.index_pos < header.records_pos || header.index_pos > file.size() {
        return Err(file.corrupt(
            header.index_pos,
            format!("index_pos {} is outside the file", header.index_pos),
        ));
    }
    let mut b = Builder::new(file);
    let mut infos = Vec::new();
    let mut pos = header.index_pos;
    while pos < file.size() {
        let rec = file.record_at(pos)?;
        let h = rec.parse_header(path)?;
        let at = |e: super::record::RecordError| e.at(path, pos);
        match h.op().map_err(at)? {
            op::CONNECTION => {
                let data = file.read_data(&rec)?;
                b.add_connection(parse_connection(&h, &data).map_err(at)?);
            }
            op::CHUNK_INFO => {
                let count = h.u32("count").map_err(at)? as u64;
                if rec.data_len != count * 8 {
                    return Err(file.corrupt(
                        pos,
                        format!(
                            "chunk info lists {count} connections but holds {} bytes",
                            rec.data_len
                        ),
                    ));
                }
                let data = file.read_data(&rec)?;
                let counts = data
                    .chunks_exact(8)
                    .map(|c| {
                        (
                            u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                            u32::from_le_bytes([c[4], c[5], c[6], c[7]]) as u64,
                        )
                    })
                    .collect();
                infos.push(IndexChunk {
                    chunk_pos: h.u64("chunk_pos").map_err(at)?,
                    start: h.time("start_time").map_err(at)?,
                    end: h.time("end_time").map_err(at)?,
                    counts,
                });
            }
            other => return Err(file.corrupt(pos, unknown_op(other, "in the index section"))),
        }
        pos = rec.end();
    }
    if b.summary.connections.len() < header.conn_count as usize
        || infos.len() < header.chunk_count as usize
    {
        return Err(file.corrupt(
            header.index_pos,
            format!(
                "index holds {} connections and {} chunk infos, the bag header says {} and {}",
                b.summary.connections.len(),
                infos.len(),
                header.conn_count,
                header.chunk_count
            ),
        ));
    }
    infos.sort_by_key(|i| i.chunk_pos);
    for info in infos {
        read_chunk_index(file, &mut b, info)?;
    }
    Ok(b.finish(true))
}

/// Read one chunk's record header and the index data records after its data.
fn read_chunk_index(file: &BagFile, b: &mut Builder, info: IndexChunk) -> Result<(), BagError> {
    let path = file.path();
    let rec = file.record_at(info.chunk_pos)?;
    let h = rec.parse_header(path)?;
    let at = |e: super::record::RecordError| e.at(path, info.chunk_pos);
    if h.op().map_err(at)? != op::CHUNK {
        return Err(file.corrupt(
            info.chunk_pos,
            "chunk info points at a record that is not a chunk",
        ));
    }
    let (compression, size) = chunk_header(file, &h, info.chunk_pos)?;
    let chunk = b.chunks.len();
    let mut pos = rec.end();
    let (mut first, mut last) = (Time::MAX, Time::MIN);
    for _ in 0..info.counts.len() {
        let irec = file.record_at(pos)?;
        let ih = irec.parse_header(path)?;
        let at = |e: super::record::RecordError| e.at(path, pos);
        if ih.op().map_err(at)? != op::INDEX_DATA {
            return Err(file.corrupt(pos, "expected an index data record after the chunk"));
        }
        let ver = ih.u32("ver").map_err(at)?;
        if ver != 1 {
            return Err(file.corrupt(pos, format!("index data version {ver}, expected 1")));
        }
        let id = ih.u32("conn").map_err(at)?;
        let count = ih.u32("count").map_err(at)? as u64;
        if irec.data_len != count * 12 {
            return Err(file.corrupt(
                pos,
                format!(
                    "index data lists {count} messages but holds {} bytes",
                    irec.data_len
                ),
            ));
        }
        let conn = *b
            .conn_index
            .get(&id)
            .ok_or_else(|| file.corrupt(pos, format!("index data for unknown connection {id}")))?;
        // Window reads pick chunks by the chunk info's time range and messages by their
        // index times: if the two disagree, messages would be skipped without a word.
        let listed = info.counts.iter().find(|c| c.0 == id).map_or(0, |c| c.1);
        if listed != count {
            return Err(file.corrupt(
                pos,
                format!(
                    "index data lists {count} messages of connection {id}, the chunk info {listed}"
                ),
            ));
        }
        let data = file.read_data(&irec)?;
        for e in data.chunks_exact(12) {
            let time =
                super::record::time_from_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
            if time < info.start || time > info.end {
                return Err(file.corrupt(
                    pos,
                    format!(
                        "index data has a message at {} outside its chunk's time range {}..{}",
                        secs(time),
                        secs(info.start),
                        secs(info.end)
                    ),
                ));
            }
            first = first.min(time);
            last = last.max(time);
            let offset = u32::from_le_bytes([e[8], e[9], e[10], e[11]]) as u64;
            b.add_message(conn, time, chunk, info.chunk_pos, offset);
        }
        pos = irec.end();
    }
    // ROS writes the chunk's range as its messages' earliest and latest times; a wider range
    // would let reads of the chunk meet records the time ranges of the summary do not cover.
    if first <= last && (first, last) != (info.start, info.end) {
        return Err(file.corrupt(
            info.chunk_pos,
            format!(
                "the chunk info gives the chunk the time range {}..{}, its index data {}..{}",
                secs(info.start),
                secs(info.end),
                secs(first),
                secs(last)
            ),
        ));
    }
    b.chunks.push(ChunkInfo {
        pos: info.chunk_pos,
        data_pos: rec.data_pos,
        data_len: rec.data_len,
        compression,
        uncompressed_size: size,
        start: info.start,
        end: info.end,
        counts: info.counts,
    });
    Ok(())
}

fn secs(t: Time) -> String {
    format!("{:.9} s", t as f64 / 1e9)
}

fn chunk_header(file: &BagFile, h: &Header<'_>, pos: u64) -> Result<(Compression, u64), BagError> {
    let at = |e: super::record::RecordError| e.at(file.path(), pos);
    let name = h.get("compression").unwrap_or(b"none");
    let compression = parse_compression(name).ok_or_else(|| {
        file.corrupt(
            pos,
            format!(
                "unknown chunk compression {:?}",
                String::from_utf8_lossy(name)
            ),
        )
    })?;
    Ok((compression, h.u32("size").map_err(at)? as u64))
}

/// Walk the records from `pos` to the end of the file, decompressing each chunk once.
///
/// Where the file ends inside a record (a recorder killed mid-write, a copy cut short) the
/// records before it are intact: the scan stops there with a warning naming the offset. A
/// record that is all there but does not parse is corruption, and an error: converting around
/// it would silently lose the chunks after it.
fn scan_sequential(file: &BagFile, mut pos: u64, mut b: Builder) -> Result<Scan, BagError> {
    let path = file.path().display();
    let mut unknown_conns: Vec<u32> = Vec::new();
    while pos < file.size() {
        let rec = match file.record_at(pos) {
            Ok(rec) => rec,
            Err(e @ BagError::Corrupt { .. }) => {
                b.warnings.push(format!(
                    "{path}: the file ends inside the record at offset {pos} ({e}): read up to \
                     that offset, the messages after it are lost"
                ));
                break;
            }
            Err(e) => return Err(e),
        };
        if unfinished_chunk(file, &rec)? {
            b.warnings.push(format!(
                "{path}: the chunk at offset {pos} was never finished (its sizes are still 0, \
                 the recorder stopped while writing it): read up to that offset, the messages \
                 after it are lost"
            ));
            break;
        }
        pos = sequential_record(file, rec, &mut b, &mut unknown_conns)?;
    }
    if !unknown_conns.is_empty() {
        b.warnings.push(format!(
            "{path}: messages on connection ids {unknown_conns:?} with no connection record \
             were skipped"
        ));
    }
    Ok(b.finish(false))
}

/// ROS's recorder writes a chunk's record header with sizes 0 and fills them in when the
/// chunk is closed: a killed recorder leaves such a chunk, with its data (and garbage) after it.
fn unfinished_chunk(file: &BagFile, rec: &FileRecord) -> Result<bool, BagError> {
    if rec.data_len != 0 || rec.end() >= file.size() {
        return Ok(false);
    }
    let Ok(h) = Header::parse(&rec.header) else {
        return Ok(false);
    };
    Ok(h.op() == Ok(op::CHUNK) && h.u32("size") == Ok(0))
}

/// Handle the record `rec`; returns the offset of the next one.
fn sequential_record(
    file: &BagFile,
    rec: FileRecord,
    b: &mut Builder,
    unknown: &mut Vec<u32>,
) -> Result<u64, BagError> {
    let path = file.path();
    let pos = rec.pos;
    let h = rec.parse_header(path)?;
    let at = |e: super::record::RecordError| e.at(path, pos);
    match h.op().map_err(at)? {
        op::CONNECTION => {
            let data = file.read_data(&rec)?;
            b.add_connection(parse_connection(&h, &data).map_err(at)?);
        }
        op::CHUNK => {
            let (compression, size) = chunk_header(file, &h, pos)?;
            let raw = file.read_data(&rec)?;
            let buf = decompress(compression, &raw, size, &BufferPool::new())
                .map_err(|d| file.corrupt(pos, d))?;
            drop(raw);
            // Collect first, apply after: a chunk that fails half way must not count.
            let mut conns = Vec::new();
            let mut msgs = Vec::new();
            walk_chunk(&buf, |e| {
                match e {
                    ChunkEntry::Connection(c) => conns.push(c),
                    ChunkEntry::Message {
                        conn_id,
                        time,
                        offset,
                        ..
                    } => msgs.push((conn_id, time, offset as u64)),
                }
                Ok(())
            })
            .map_err(|e| e.at(path, rec.data_pos))?;
            for c in conns {
                b.add_connection(c);
            }
            let chunk = b.chunks.len();
            let mut counts: Vec<(u32, u64)> = Vec::new();
            let (mut start, mut end) = (Time::MAX, Time::MIN);
            for (id, time, offset) in msgs {
                let Some(&conn) = b.conn_index.get(&id) else {
                    if !unknown.contains(&id) {
                        unknown.push(id);
                    }
                    continue;
                };
                b.add_message(conn, time, chunk, pos, offset);
                match counts.iter_mut().find(|(c, _)| *c == id) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((id, 1)),
                }
                start = start.min(time);
                end = end.max(time);
            }
            if counts.is_empty() {
                (start, end) = (0, 0);
            }
            counts.sort_unstable();
            b.chunks.push(ChunkInfo {
                pos,
                data_pos: rec.data_pos,
                data_len: rec.data_len,
                compression,
                uncompressed_size: size,
                start,
                end,
                counts,
            });
        }
        // Index data, chunk infos and a stray bag header carry nothing a sequential scan needs.
        op::INDEX_DATA | op::CHUNK_INFO | op::BAG_HEADER => {}
        other => return Err(file.corrupt(pos, unknown_op(other, "between chunks"))),
    }
    Ok(rec.end())
}

#[cfg(test)]
mod tests {
    use super::super::write::{BagWriter, WriteOptions};
    use super::*;
    use crate::bag::ConnectionExtra;
    use crate::NANOS;

    fn write_bag(path: &Path, compression: Compression, write_index: bool) {
        let mut w = BagWriter::create(
            path,
            WriteOptions {
                compression,
                chunk_size: 300,
                write_index,
            },
        )
        .unwrap();
        let a = w.add_connection(
            "/a",
            "std_msgs/Float64",
            "fdb28210bfa9d7c91146260178d9a584",
            "float64 data\n",
            None,
            false,
        );
        let b = w.add_connection(
            "/b",
            "std_msgs/Float64",
            "fdb28210bfa9d7c91146260178d9a584",
            "float64 data\n",
            Some("/node"),
            true,
        );
        for i in 0..40i64 {
            // /a goes backwards in time inside the bag; /b forwards.
            w.write(a, 100 * NANOS - i * NANOS / 10, &(i as f64).to_le_bytes())
                .unwrap();
            if i % 2 == 0 {
                w.write(b, 50 * NANOS + i * NANOS, &[i as u8; 8]).unwrap();
            }
        }
        w.finish().unwrap();
    }

    fn check(scan: &Scan) {
        let s = &scan.summary;
        assert_eq!(s.connections.len(), 2);
        assert_eq!(s.connections[1].callerid(), Some("/node"));
        assert!(matches!(
            s.connections[1].extra,
            ConnectionExtra::Ros1 { latching: true, .. }
        ));
        assert_eq!(s.stats[0].count, 40);
        assert_eq!(s.stats[0].first, Some(100 * NANOS - 39 * NANOS / 10));
        assert_eq!(s.stats[0].last, Some(100 * NANOS));
        assert_eq!(s.stats[1].count, 20);
        assert_eq!(s.stats[1].first, Some(50 * NANOS));
        assert_eq!(s.stats[1].last, Some(88 * NANOS));
        assert!(scan.chunks.len() > 3, "{} chunks", scan.chunks.len());
        // /a's first message (earliest time) is in the last chunk, its last in the first.
        assert_eq!(scan.first_chunk[0], Some(scan.chunks.len() - 1));
        assert_eq!(scan.last_chunk[0], Some(0));
        assert_eq!(scan.first_chunk[1], Some(0));
        let total: u64 = scan
            .chunks
            .iter()
            .flat_map(|c| c.counts.iter().map(|x| x.1))
            .sum();
        assert_eq!(total, 60);
        assert_eq!(s.time_range(), Some((50 * NANOS, 100 * NANOS)));
    }

    #[test]
    fn indexed_and_sequential_scans_agree() {
        let dir = tempfile::tempdir().unwrap();
        for c in [Compression::None, Compression::Bz2, Compression::Lz4] {
            let p = dir.path().join(format!("{}.bag", c.as_str()));
            write_bag(&p, c, true);
            let indexed = scan(&p).unwrap();
            assert!(indexed.summary.indexed);
            assert!(indexed.summary.warnings.is_empty());
            check(&indexed);
            assert!(indexed.chunks.iter().all(|ch| ch.compression == c));

            let p2 = dir.path().join(format!("{}_noindex.bag", c.as_str()));
            write_bag(&p2, c, false);
            let seq = scan(&p2).unwrap();
            assert!(!seq.summary.indexed);
            assert_eq!(seq.summary.warnings.len(), 1, "{:?}", seq.summary.warnings);
            assert!(seq.summary.warnings[0].contains(&p2.display().to_string()));
            check(&seq);
            for (a, b) in indexed.chunks.iter().zip(&seq.chunks) {
                assert_eq!((a.start, a.end, &a.counts), (b.start, b.end, &b.counts));
            }
        }
    }

    #[test]
    fn truncated_unindexed_bag_stops_at_last_complete_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("full.bag");
        write_bag(&p, Compression::Lz4, false);
        let full = scan(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let last = full.chunks.last().unwrap();
        // Cut in the middle of the last chunk's data.
        let cut = last.data_pos + last.data_len / 2;
        let t = dir.path().join("cut.bag");
        std::fs::write(&t, &bytes[..cut as usize]).unwrap();
        let s = scan(&t).unwrap();
        assert_eq!(s.chunks.len(), full.chunks.len() - 1);
        let w = s.summary.warnings.join("\n");
        assert!(w.contains(&format!("offset {}", last.pos)), "{w}");
        assert_eq!(
            s.summary.message_count(),
            full.summary.message_count() - last.counts.iter().map(|c| c.1).sum::<u64>()
        );
    }

    #[test]
    fn truncated_index_falls_back_to_sequential() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("full.bag");
        write_bag(&p, Compression::None, true);
        let bytes = std::fs::read(&p).unwrap();
        let t = dir.path().join("cut.bag");
        std::fs::write(&t, &bytes[..bytes.len() - 10]).unwrap();
        let s = scan(&t).unwrap();
        assert!(!s.summary.indexed);
        assert!(
            s.summary.warnings[0].contains("index unusable"),
            "{:?}",
            s.summary.warnings
        );
        check(&s);
    }

    /// Found by the fuzzer (bag target): a chunk info whose start time lies made every
    /// window but one huge one skip that chunk, losing its messages without a word.
    #[test]
    fn chunk_info_times_that_disagree_with_the_index_data_fall_back_to_sequential() {
        use super::super::record::{field_value_offset, next_record};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        write_bag(&p, Compression::None, true);
        let bytes = std::fs::read(&p).unwrap();
        let at = field_value_offset(&bytes, 13, "index_pos").unwrap();
        let mut pos = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let mut infos = Vec::new();
        while let Some(rec) = next_record(&bytes, pos).unwrap() {
            if rec.header.op().unwrap() == op::CHUNK_INFO {
                infos.push(rec.pos);
            }
            pos = rec.end;
        }
        // A start after the chunk's messages; then (found next) an end a little after the
        // last message: a range wider than the messages let a read meet records that the
        // summary's time ranges, and so the windows, did not cover.
        for (field, edit, want) in [
            ("start_time", 15_848u32, "outside its chunk's time range"),
            ("end_time", 0, "its index data"),
        ] {
            let mut bad = bytes.clone();
            let at = field_value_offset(&bad, infos[1], field).unwrap();
            let sec = u32::from_le_bytes(bad[at..at + 4].try_into().unwrap());
            let v = if edit == 0 { sec + 1 } else { edit };
            bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
            std::fs::write(&p, &bad).unwrap();
            let s = scan(&p).unwrap();
            assert!(!s.summary.indexed, "{field}");
            assert!(
                s.summary.warnings[0].contains(want),
                "{field}: {:?}",
                s.summary.warnings
            );
            check(&s);
        }
    }

    #[test]
    fn not_a_bag() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        std::fs::write(&p, b"hello world, not a bag at all").unwrap();
        assert!(matches!(scan(&p), Err(BagError::NotABag { .. })));
        std::fs::write(&p, b"#ROSBAG V2.0\n").unwrap();
        assert!(matches!(
            scan(&p),
            Err(BagError::Corrupt { offset: 13, .. })
        ));
    }

    #[test]
    fn real_bags_scan_like_the_inventory() {
        let Some(root) = crate::test_skip::shared_bags() else {
            return;
        };
        let s = scan(&root.join("rosbagjs/example.bag")).unwrap().summary;
        assert_eq!(s.message_count(), 8647);
        assert_eq!(s.connections_on("/tf").len(), 2);
        let s = scan(&root.join("rosbagjs/no-messages.bag"))
            .unwrap()
            .summary;
        assert_eq!(s.message_count(), 0);
        assert!(s.blocks.is_empty());
        let s = scan(&root.join("robot_state_publisher/joint_states_indexed.bag"))
            .unwrap()
            .summary;
        assert_eq!(s.message_count(), 1598);
        assert_eq!(s.compression_counts(), vec![("bz2", 5)]);
        let s = scan(&root.join("embag/test.bag")).unwrap().summary;
        assert_eq!(s.message_count(), 15);
        assert_eq!(s.blocks.len(), 6);
    }
}
