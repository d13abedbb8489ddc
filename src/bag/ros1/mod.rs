//! The ROS1 bag (format 2.0) storage: [`Ros1Bag`] gives window reads over a scanned bag, one
//! decompressed chunk at a time.

pub mod chunk;
pub mod record;
pub mod scan;
#[cfg(any(test, feature = "testkit"))]
pub mod write;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::chunk::{decompress, walk_chunk, ChunkEntry};
use self::record::{BagFile, RecordError};
use self::scan::{scan_file, Scan};
use super::buffer::{BufferPool, ChunkBuf};
use super::load::Probes;
use super::{BagError, BagSource, BagSummary, RawMessage, ReadAt};
use crate::Time;

/// Chunk compression as named in the bag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Bz2,
    Lz4,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Bz2 => "bz2",
            Compression::Lz4 => "lz4",
        }
    }
}

/// One chunk of the bag as located by the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    /// File offset of the chunk record (its header length field).
    pub pos: u64,
    /// File offset and length of the (possibly compressed) chunk data.
    pub data_pos: u64,
    pub data_len: u64,
    pub compression: Compression,
    /// Uncompressed size declared in the chunk header.
    pub uncompressed_size: u64,
    /// Earliest and latest receive time of the messages in the chunk.
    pub start: Time,
    pub end: Time,
    /// Message count per connection id in this chunk.
    pub counts: Vec<(u32, u64)>,
}

impl ChunkInfo {
    /// The chunk as the storage-neutral summary shows it.
    pub fn block(&self) -> super::Block {
        super::Block {
            start: self.start,
            end: self.end,
            stored_bytes: self.data_len,
            raw_bytes: self.uncompressed_size,
            compression: self.compression.as_str(),
        }
    }
}

/// Chunks kept decompressed between windows. Each is kept only while it still overlaps later
/// windows; the bound matters for bags whose chunks overlap in time (out of order recordings).
const MAX_CACHED: usize = 4;

/// A decompressed chunk with its messages located once.
struct Loaded {
    chunk: usize,
    buf: Arc<ChunkBuf>,
    /// (connection index, time, record offset, payload range), in chunk order.
    msgs: Vec<(usize, Time, u64, Range<usize>)>,
}

pub struct Ros1Bag {
    file: BagFile,
    scan: Scan,
    cache: Vec<Loaded>,
    decompressed: u64,
    /// Decompressed chunks come from here and go back when their last message is dropped.
    pool: BufferPool,
    /// The compressed bytes of the chunks being loaded, one per loading thread, reused.
    raw: [Vec<u8>; 2],
    /// Load a window's chunks on two threads (when the machine has two cores).
    parallel: bool,
    /// What `first_and_last` loaded, until the first window ([`super::load::Probes`]).
    probes: Probes<Loaded>,
}

impl Ros1Bag {
    pub fn open(path: &Path) -> Result<Self, BagError> {
        Self::open_with_pool(path, BufferPool::new())
    }

    /// [`Ros1Bag::open`], decompressing into buffers of `pool` (shared with other bags).
    pub fn open_with_pool(path: &Path, pool: BufferPool) -> Result<Self, BagError> {
        Self::from_file(BagFile::open(path)?, pool)
    }

    /// A bag read from `src` (a file, or bytes in memory), named `name` in errors.
    pub fn from_source(
        name: PathBuf,
        src: Box<dyn ReadAt>,
        pool: BufferPool,
    ) -> Result<Self, BagError> {
        Self::from_file(BagFile::from_source(name, src), pool)
    }

    fn from_file(file: BagFile, pool: BufferPool) -> Result<Self, BagError> {
        let scan = scan_file(&file)?;
        Ok(Ros1Bag {
            file,
            scan,
            cache: Vec::new(),
            decompressed: 0,
            pool,
            raw: [Vec::new(), Vec::new()],
            parallel: std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
            probes: Probes::default(),
        })
    }

    /// The bag's chunks, in file order.
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.scan.chunks
    }

    /// Number of chunks currently held decompressed (for tests and memory reports).
    pub fn cached_chunks(&self) -> usize {
        self.cache.len()
    }

    /// How many chunk decompressions this reader has done so far.
    pub fn chunks_decompressed(&self) -> u64 {
        self.decompressed
    }

    fn load(&mut self, chunk: usize) -> Result<Loaded, BagError> {
        self.decompressed += 1;
        load_chunk(&self.file, &self.scan, &self.pool, &mut self.raw[0], chunk)
    }

    /// Block `chunk` for `first_and_last`, held from an earlier call or loaded.
    fn probe(&mut self, chunk: usize) -> Result<Arc<Loaded>, BagError> {
        let (file, scan, pool, raw) = (&self.file, &self.scan, &self.pool, &mut self.raw[0]);
        let decompressed = &mut self.decompressed;
        self.probes.get(chunk, || {
            *decompressed += 1;
            load_chunk(file, scan, pool, raw, chunk)
        })
    }

    /// Load `chunks` (none cached yet) into the cache, on two threads when there are several:
    /// decompression is most of a tabular conversion's time and the order of loading changes
    /// nothing (messages are sorted afterwards). On failure the error of the first failing
    /// chunk in `chunks` order is returned, whatever the threads' timing.
    fn load_all(&mut self, chunks: &[usize]) -> Result<(), BagError> {
        self.decompressed += chunks.len() as u64;
        let (file, scan, pool) = (&self.file, &self.scan, &self.pool);
        let loaded = super::load::in_order(chunks, &mut self.raw, self.parallel, |raw, c| {
            load_chunk(file, scan, pool, raw, c)
        });
        for r in loaded {
            self.cache.push(r?);
        }
        Ok(())
    }

    /// The cached chunk `chunk`, loading it (and caching it) when absent.
    fn get(&mut self, chunk: usize) -> Result<usize, BagError> {
        if let Some(i) = self.cache.iter().position(|l| l.chunk == chunk) {
            return Ok(i);
        }
        let loaded = self.load(chunk)?;
        self.cache.push(loaded);
        Ok(self.cache.len() - 1)
    }

    fn message(&self, l: &Loaded, m: &(usize, Time, u64, Range<usize>)) -> RawMessage {
        RawMessage {
            conn: m.0,
            time: m.1,
            publish: None,
            order: (self.scan.chunks[l.chunk].pos, m.2),
            buf: l.buf.clone(),
            range: m.3.clone(),
        }
    }

    fn chunk_has_wanted(&self, chunk: usize, wanted: &[bool]) -> bool {
        self.scan.chunks[chunk].counts.iter().any(|&(id, n)| {
            n > 0
                && self
                    .scan
                    .conn_index
                    .get(&id)
                    .is_some_and(|&c| wanted.get(c).copied().unwrap_or(false))
        })
    }
}

impl BagSource for Ros1Bag {
    fn set_parallel_reads(&mut self, on: bool) {
        self.parallel = on;
    }

    fn summary(&self) -> &BagSummary {
        &self.scan.summary
    }

    fn read_window(
        &mut self,
        start: Time,
        end: Time,
        wanted: &[bool],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), BagError> {
        // Planning is over: its chunks go back to the pool.
        self.probes.clear();
        // Windows advance forward: a chunk that ends before this one starts is done with.
        let chunks = &self.scan.chunks;
        self.cache.retain(|l| chunks[l.chunk].end >= start);
        if end <= start {
            return Ok(());
        }
        let first_new = out.len();
        let overlapping: Vec<usize> = (0..chunks.len())
            .filter(|&i| chunks[i].start < end && chunks[i].end >= start)
            .filter(|&i| self.chunk_has_wanted(i, wanted))
            .collect();
        let missing: Vec<usize> = overlapping
            .iter()
            .copied()
            .filter(|&i| !self.cache.iter().any(|l| l.chunk == i))
            .collect();
        self.load_all(&missing)?;
        for &i in &overlapping {
            let slot = self.get(i)?;
            let l = &self.cache[slot];
            for m in &l.msgs {
                if m.1 >= start && m.1 < end && wanted.get(m.0).copied().unwrap_or(false) {
                    out.push(self.message(l, m));
                }
            }
        }
        out[first_new..].sort_by_key(|m| (m.time, m.order));
        // Keep only chunks that reach past this window, the soonest needed first.
        let chunks = &self.scan.chunks;
        self.cache.retain(|l| chunks[l.chunk].end >= end);
        if self.cache.len() > MAX_CACHED {
            self.cache.sort_by_key(|l| chunks[l.chunk].start);
            self.cache.truncate(MAX_CACHED);
        }
        Ok(())
    }

    fn first_and_last(
        &mut self,
        conn: usize,
    ) -> Result<Option<(RawMessage, RawMessage)>, BagError> {
        let (Some(Some(fc)), Some(Some(lc))) = (
            self.scan.first_chunk.get(conn).copied(),
            self.scan.last_chunk.get(conn).copied(),
        ) else {
            return Ok(None);
        };
        // Loaded outside the window cache: these reads happen before or beside the windowed
        // pass and must not evict what it holds.
        let first_chunk = self.probe(fc)?;
        let last_chunk = if lc == fc {
            None
        } else {
            Some(self.probe(lc)?)
        };
        let chunks = &self.scan.chunks;
        let key =
            |l: &Loaded, m: &(usize, Time, u64, Range<usize>)| (m.1, chunks[l.chunk].pos, m.2);
        let first = first_chunk
            .msgs
            .iter()
            .filter(|m| m.0 == conn)
            .min_by_key(|m| key(&first_chunk, m))
            .map(|m| self.message(&first_chunk, m));
        let lref = last_chunk.as_ref().unwrap_or(&first_chunk);
        let last = lref
            .msgs
            .iter()
            .filter(|m| m.0 == conn)
            .max_by_key(|m| key(lref, m))
            .map(|m| self.message(lref, m));
        match (first, last) {
            (Some(f), Some(l)) => Ok(Some((f, l))),
            _ => Err(self.file.corrupt(
                self.scan.chunks[fc].pos,
                format!(
                    "the index places messages of connection {} in this chunk but it holds none",
                    self.scan.summary.connections[conn].id
                ),
            )),
        }
    }
}

/// Read and decompress chunk `chunk` and locate its messages.
fn load_chunk(
    file: &BagFile,
    scan: &Scan,
    pool: &BufferPool,
    raw: &mut Vec<u8>,
    chunk: usize,
) -> Result<Loaded, BagError> {
    let info = &scan.chunks[chunk];
    let buf = if info.compression == Compression::None && info.data_len == info.uncompressed_size {
        // Straight from the file into the chunk buffer: one copy.
        let mut buf = pool.take(info.data_len as usize);
        file.read_into(info.data_pos, buf.as_mut_slice(), "chunk data")?;
        buf
    } else {
        file.read_into_vec(info.data_pos, info.data_len, raw, "chunk data")?;
        decompress(info.compression, raw, info.uncompressed_size, pool)
            .map_err(|d| file.corrupt(info.pos, d))?
    };
    let mut msgs = Vec::new();
    let index: &HashMap<u32, usize> = &scan.conn_index;
    let path = file.path();
    walk_chunk(&buf, |e| {
        if let ChunkEntry::Message {
            conn_id,
            time,
            offset,
            data,
        } = e
        {
            // The scan either indexed every connection or warned about the unknown ones.
            let Some(&conn) = index.get(&conn_id) else {
                return Ok(());
            };
            // Windows pick this chunk by the time range the scan gave it: a message outside
            // it would be read by some windows and not others.
            if time < info.start || time > info.end {
                return Err(RecordError::new(
                    offset as u64,
                    format!(
                        "message at {:.9} s outside the chunk's time range {:.9}..{:.9} s \
                         (the index disagrees with the chunk)",
                        time as f64 / 1e9,
                        info.start as f64 / 1e9,
                        info.end as f64 / 1e9
                    ),
                ));
            }
            msgs.push((conn, time, offset as u64, data));
        }
        Ok(())
    })
    .map_err(|e| e.at(path, info.data_pos))?;
    // The counts the scan reported (and planning used) must be what the chunk holds.
    for &(id, n) in &info.counts {
        let Some(&conn) = index.get(&id) else {
            continue;
        };
        let found = msgs.iter().filter(|m| m.0 == conn).count() as u64;
        if found != n {
            return Err(file.corrupt(
                info.pos,
                format!(
                    "the index lists {n} messages of connection {id} in this chunk, it holds \
                     {found}"
                ),
            ));
        }
    }
    Ok(Loaded {
        chunk,
        buf: Arc::new(buf),
        msgs,
    })
}

#[cfg(test)]
mod tests {
    use super::write::{BagWriter, WriteOptions};
    use super::*;
    use crate::NANOS;

    /// A bag with three connections (two on one topic), messages out of time order and equal
    /// times; returns what was written as (conn, time, payload) in file order.
    fn write_bag(
        path: &Path,
        compression: Compression,
        write_index: bool,
    ) -> Vec<(u32, Time, Vec<u8>)> {
        let mut w = BagWriter::create(
            path,
            WriteOptions {
                compression,
                chunk_size: 512,
                write_index,
            },
        )
        .unwrap();
        let def = "float64 data\n";
        let md5 = "fdb28210bfa9d7c91146260178d9a584";
        let a = w.add_connection("/a", "std_msgs/Float64", md5, def, None, false);
        let b = w.add_connection("/tf", "std_msgs/Float64", md5, def, Some("/n1"), false);
        let c = w.add_connection("/tf", "std_msgs/Float64", md5, def, Some("/n2"), false);
        let mut written = Vec::new();
        let base = 1_000 * NANOS;
        for i in 0..200i64 {
            // Mostly forward with some jitter backwards, and a repeated time every 10th.
            let t = base + i * NANOS / 20 - if i % 7 == 3 { NANOS / 3 } else { 0 };
            let conn = [a, b, c][(i % 3) as usize];
            let payload = format!("msg{i}").into_bytes();
            w.write(conn, t, &payload).unwrap();
            written.push((conn, t, payload.clone()));
            if i % 10 == 0 {
                w.write(a, t, b"dup").unwrap();
                written.push((a, t, b"dup".to_vec()));
            }
        }
        w.finish().unwrap();
        written
    }

    fn expected(written: &[(u32, Time, Vec<u8>)]) -> Vec<(usize, Time, Vec<u8>)> {
        let mut v: Vec<_> = written
            .iter()
            .map(|(c, t, d)| (*c as usize, *t, d.clone()))
            .collect();
        // File order is write order, and a stable sort keeps it for equal times.
        v.sort_by_key(|x| x.1);
        v
    }

    fn read_all(bag: &mut Ros1Bag, step: Time) -> Vec<(usize, Time, Vec<u8>)> {
        let (first, last) = bag.summary().time_range().unwrap();
        let wanted = vec![true; bag.summary().connections.len()];
        let mut got = Vec::new();
        let mut t = first;
        while t <= last {
            let mut out = Vec::new();
            bag.read_window(t, t + step, &wanted, &mut out).unwrap();
            assert!(bag.cached_chunks() <= MAX_CACHED);
            got.extend(out.iter().map(|m| (m.conn, m.time, m.data().to_vec())));
            t += step;
        }
        got
    }

    #[test]
    fn round_trip_every_compression_and_window_size() {
        let dir = tempfile::tempdir().unwrap();
        for c in [Compression::None, Compression::Bz2, Compression::Lz4] {
            for indexed in [true, false] {
                let p = dir.path().join(format!("{}_{indexed}.bag", c.as_str()));
                let want = expected(&write_bag(&p, c, indexed));
                let mut bag = Ros1Bag::open(&p).unwrap();
                assert_eq!(bag.summary().indexed, indexed);
                assert!(bag.chunks().len() > 5);
                assert_eq!(bag.summary().message_count(), want.len() as u64);
                for step in [NANOS / 1000, NANOS / 30, NANOS / 3, NANOS, 100 * NANOS] {
                    assert_eq!(
                        read_all(&mut bag, step),
                        want,
                        "{c:?} indexed={indexed} step={step}"
                    );
                }
            }
        }
    }

    #[test]
    fn wanted_filters_connections_and_shared_topics() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        let want = expected(&write_bag(&p, Compression::Lz4, true));
        let mut bag = Ros1Bag::open(&p).unwrap();
        let tf = bag.summary().connections_on("/tf");
        assert_eq!(tf, vec![1, 2]);
        let mut wanted = vec![false; 3];
        for &i in &tf {
            wanted[i] = true;
        }
        let mut out = Vec::new();
        bag.read_window(0, Time::MAX, &wanted, &mut out).unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|m| (m.conn, m.time, m.data().to_vec()))
            .collect();
        let exp: Vec<_> = want.into_iter().filter(|m| m.0 != 0).collect();
        assert_eq!(got, exp);
        // Orders are strictly increasing for equal times.
        for w in out.windows(2) {
            assert!((w[0].time, w[0].order) < (w[1].time, w[1].order));
        }
    }

    #[test]
    fn first_and_last_match_the_full_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        let want = expected(&write_bag(&p, Compression::Bz2, true));
        let mut bag = Ros1Bag::open(&p).unwrap();
        for conn in 0..3 {
            let of: Vec<_> = want.iter().filter(|m| m.0 == conn).collect();
            let (f, l) = bag.first_and_last(conn).unwrap().unwrap();
            assert_eq!((f.time, f.data()), (of[0].1, &of[0].2[..]));
            let lastw = of.last().unwrap();
            assert_eq!((l.time, l.data()), (lastw.1, &lastw.2[..]));
        }
        assert!(bag.first_and_last(9).unwrap().is_none());
        // Asked again: its first and last chunks are still loaded, not decompressed again.
        bag.first_and_last(2).unwrap().unwrap();
        let loaded = bag.chunks_decompressed();
        bag.first_and_last(2).unwrap().unwrap();
        assert_eq!(bag.chunks_decompressed(), loaded);
        // A window read drops them (back to the pool).
        bag.read_window(0, 1, &[false; 3], &mut Vec::new()).unwrap();
        assert!(bag.probes.is_empty());
    }

    #[test]
    fn windows_moving_forward_decompress_each_chunk_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        let mut w = BagWriter::create(
            &p,
            WriteOptions {
                compression: Compression::Lz4,
                chunk_size: 10_000,
                write_index: true,
            },
        )
        .unwrap();
        let c = w.add_connection(
            "/a",
            "std_msgs/Float64",
            "fdb28210bfa9d7c91146260178d9a584",
            "float64 data\n",
            None,
            false,
        );
        for i in 0..1000i64 {
            w.write(c, NANOS + i * NANOS / 100, &[0u8; 8]).unwrap();
        }
        w.finish().unwrap();
        let mut bag = Ros1Bag::open(&p).unwrap();
        let chunks = bag.chunks().len() as u64;
        assert!(chunks > 3);
        let mut n = 0;
        let mut t = NANOS;
        while t < 11 * NANOS {
            let mut out = Vec::new();
            bag.read_window(t, t + NANOS / 10, &[true], &mut out)
                .unwrap();
            n += out.len();
            t += NANOS / 10;
        }
        assert_eq!(n, 1000);
        assert_eq!(bag.chunks_decompressed(), chunks);
    }

    /// Chunks are loaded on two threads; with several damaged chunks in one window the error
    /// is the first damaged chunk's, every time.
    #[test]
    fn the_first_damaged_chunk_is_the_one_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        write_bag(&p, Compression::Lz4, true);
        let chunks = Ros1Bag::open(&p).unwrap().chunks().to_vec();
        assert!(chunks.len() >= 6, "{} chunks", chunks.len());
        let mut bytes = std::fs::read(&p).unwrap();
        for c in &chunks[3..6] {
            let mid = (c.data_pos + c.data_len / 2) as usize;
            bytes[mid - 8..mid + 8].fill(0xFF);
        }
        std::fs::write(&p, &bytes).unwrap();
        for _ in 0..20 {
            let mut bag = Ros1Bag::open(&p).unwrap();
            let n = bag.summary().connections.len();
            let e = bag
                .read_window(Time::MIN, Time::MAX, &vec![true; n], &mut Vec::new())
                .unwrap_err();
            let at = format!("at offset {}:", chunks[3].pos);
            assert!(e.to_string().contains(&at), "{e} should name {at}");
        }
    }

    /// The index and the chunk must agree on message times: a window read decides which
    /// chunks to decompress from the index, so a message outside its chunk's indexed range
    /// would be read by some windows and not by others.
    #[test]
    fn a_message_time_that_disagrees_with_the_index_is_an_error() {
        use super::record::{field_value_offset, next_record};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        write_bag(&p, Compression::None, true);
        let chunk = Ros1Bag::open(&p).unwrap().chunks()[2].clone();
        let mut bytes = std::fs::read(&p).unwrap();
        let data = chunk.data_pos as usize..(chunk.data_pos + chunk.data_len) as usize;
        let mut pos = 0;
        let rec = loop {
            let r = next_record(&bytes[data.clone()], pos).unwrap().unwrap();
            if r.header.op().unwrap() == super::record::op::MESSAGE_DATA {
                break data.start + r.pos;
            }
            pos = r.end;
        };
        let t = field_value_offset(&bytes, rec, "time").unwrap();
        bytes[t..t + 4].copy_from_slice(&5_000u32.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let mut bag = Ros1Bag::open(&p).unwrap();
        let mut out = Vec::new();
        match bag.read_window(Time::MIN, Time::MAX, &[true; 3], &mut out) {
            Err(BagError::Corrupt { offset, detail, .. }) => {
                assert_eq!(offset, rec as u64);
                assert!(
                    detail.contains("outside the chunk's time range"),
                    "{detail}"
                );
            }
            other => panic!("expected a corrupt-chunk error, got {other:?}"),
        }
    }

    /// Damaged files give errors or warnings, never panics: flip bytes all over a bag and cut
    /// it at many lengths, then scan and read everything.
    #[test]
    fn damaged_bags_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bag");
        write_bag(&p, Compression::Lz4, true);
        let good = std::fs::read(&p).unwrap();
        let q = dir.path().join("bad.bag");
        let mut tried = 0;
        for i in (0..good.len()).step_by(101) {
            for variant in 0..3 {
                let mut bad = good.clone();
                match variant {
                    0 => bad[i] ^= 0xFF,
                    1 => bad[i] = bad[i].wrapping_add(1),
                    _ => bad.truncate(i),
                }
                std::fs::write(&q, &bad).unwrap();
                tried += 1;
                let Ok(mut bag) = Ros1Bag::open(&q) else {
                    continue;
                };
                let n = bag.summary().connections.len();
                let mut out = Vec::new();
                let _ = bag.read_window(Time::MIN, Time::MAX, &vec![true; n], &mut out);
                for c in 0..n {
                    let _ = bag.first_and_last(c);
                }
            }
        }
        assert!(tried > 50);
    }
}
