//! MCAP input: [`McapBag`] reads an MCAP file's summary and message indexes at open (no chunk
//! decompressed), or scans the data section when the summary is missing, and reads windows of
//! messages as ranges of pooled, decompressed chunk buffers.
//!
//! The window contract is the ROS1 reader's (src/bag/ros1.rs): only blocks overlapping the
//! window with wanted channels are read, a few stay decompressed while later windows still
//! overlap them, and messages come out in (log time, stream order).

pub mod block;
pub mod chunk;
pub mod file;
pub mod records;
pub mod scan;
/// MCAP files for tests and the fuzzer's seeds (the `testkit` feature).
#[cfg(any(test, feature = "testkit"))]
pub mod testwrite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::block::{messages, read_block, Msg};
use self::file::McapFile;
use self::scan::{scan, Scan};
use super::buffer::{BufferPool, ChunkBuf};
use super::load::Probes;
use super::source::FileSource;
use super::{BagError, BagSource, BagSummary, RawMessage, ReadAt};
use crate::Time;

/// Blocks kept decompressed between windows (as the ROS1 reader): each only while it still
/// overlaps later windows; the bound matters where chunks overlap in time.
const MAX_CACHED: usize = 4;

/// A block read into memory with its messages located once.
struct Loaded {
    block: usize,
    buf: Arc<ChunkBuf>,
    msgs: Vec<Msg>,
}

pub struct McapBag {
    file: McapFile,
    scan: Scan,
    summary: BagSummary,
    cache: Vec<Loaded>,
    decompressed: u64,
    pool: BufferPool,
    /// Compressed bytes of the blocks being loaded, one per loading thread, reused.
    raw: [Vec<u8>; 2],
    parallel: bool,
    /// What `first_and_last` loaded, until the first window ([`super::load::Probes`]).
    probes: Probes<Loaded>,
}

impl McapBag {
    /// Open an MCAP file, decompressing into buffers of `pool`.
    pub fn open(path: &Path, pool: BufferPool) -> Result<Self, BagError> {
        let f = std::fs::File::open(path)
            .and_then(FileSource::new)
            .map_err(|source| BagError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_source(path.to_path_buf(), Box::new(f), pool)
    }

    /// Read MCAP bytes from `src` (a file, or bytes in memory); `name` is what errors name.
    pub fn from_source(
        name: PathBuf,
        src: Box<dyn ReadAt>,
        pool: BufferPool,
    ) -> Result<Self, BagError> {
        let file = McapFile::new(name, src);
        let scan = scan(&file, &pool)?;
        let summary = summary::build(&file, &scan)?;
        Ok(McapBag {
            file,
            scan,
            summary,
            cache: Vec::new(),
            decompressed: 0,
            pool,
            raw: [Vec::new(), Vec::new()],
            parallel: std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
            probes: Probes::default(),
        })
    }

    /// The chunks and runs of messages outside chunks, as the scan located them (file
    /// order), indexed like `summary().blocks`.
    pub fn blocks(&self) -> &[block::BlockMeta] {
        &self.scan.blocks
    }

    /// Blocks currently held decompressed (for tests and memory reports).
    pub fn cached_blocks(&self) -> usize {
        self.cache.len()
    }

    /// Block reads (chunk decompressions) done by windows and first/last look-ups so far.
    pub fn blocks_decompressed(&self) -> u64 {
        self.decompressed
    }

    /// Chunks decompressed while opening (chunks without message indexes, or all of them in a
    /// linear scan).
    pub fn chunks_read_at_open(&self) -> usize {
        self.scan.chunks_read
    }

    /// Block `block` for `first_and_last`, held from an earlier call or loaded.
    fn probe(&mut self, block: usize) -> Result<Arc<Loaded>, BagError> {
        let (file, scan, pool, raw) = (&self.file, &self.scan, &self.pool, &mut self.raw[0]);
        let decompressed = &mut self.decompressed;
        self.probes.get(block, || {
            *decompressed += 1;
            load_block(file, scan, pool, raw, block)
        })
    }

    /// Load `blocks` (none cached yet) into the cache, on two threads when there are several,
    /// as the ROS1 reader does; the error is the first failing block's in `blocks` order.
    fn load_all(&mut self, blocks: &[usize]) -> Result<(), BagError> {
        self.decompressed += blocks.len() as u64;
        let (file, scan, pool) = (&self.file, &self.scan, &self.pool);
        let loaded = super::load::in_order(blocks, &mut self.raw, self.parallel, |raw, b| {
            load_block(file, scan, pool, raw, b)
        });
        for r in loaded {
            self.cache.push(r?);
        }
        Ok(())
    }

    fn message(&self, l: &Loaded, m: &Msg) -> RawMessage {
        summary::raw_message(m, (self.scan.blocks[l.block].pos, m.offset), l.buf.clone())
    }

    fn block_has_wanted(&self, block: usize, wanted: &[bool]) -> bool {
        self.scan.blocks[block]
            .counts
            .iter()
            .any(|&(c, n)| n > 0 && wanted.get(c).copied().unwrap_or(false))
    }
}

impl BagSource for McapBag {
    fn set_parallel_reads(&mut self, on: bool) {
        self.parallel = on;
    }

    fn summary(&self) -> &BagSummary {
        &self.summary
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
        // Windows advance forward: a block that ends before this one starts is done with.
        let blocks = &self.scan.blocks;
        self.cache.retain(|l| blocks[l.block].end >= start);
        if end <= start {
            return Ok(());
        }
        let first_new = out.len();
        let overlapping: Vec<usize> = (0..blocks.len())
            .filter(|&i| blocks[i].start < end && blocks[i].end >= start)
            .filter(|&i| self.block_has_wanted(i, wanted))
            .collect();
        let missing: Vec<usize> = overlapping
            .iter()
            .copied()
            .filter(|&i| !self.cache.iter().any(|l| l.block == i))
            .collect();
        self.load_all(&missing)?;
        for &i in &overlapping {
            let Some(l) = self.cache.iter().find(|l| l.block == i) else {
                continue;
            };
            for m in &l.msgs {
                if m.time >= start && m.time < end && wanted.get(m.conn).copied().unwrap_or(false) {
                    out.push(self.message(l, m));
                }
            }
        }
        out[first_new..].sort_by_key(|m| (m.time, m.order));
        // Keep only blocks that reach past this window, the soonest needed first.
        let blocks = &self.scan.blocks;
        self.cache.retain(|l| blocks[l.block].end >= end);
        if self.cache.len() > MAX_CACHED {
            self.cache.sort_by_key(|l| blocks[l.block].start);
            self.cache.truncate(MAX_CACHED);
        }
        Ok(())
    }

    fn first_and_last(
        &mut self,
        conn: usize,
    ) -> Result<Option<(RawMessage, RawMessage)>, BagError> {
        let Some(s) = self.scan.stats.get(conn) else {
            return Ok(None);
        };
        let (Some(f), Some(l)) = (s.first, s.last) else {
            return Ok(None);
        };
        // Loaded outside the window cache: these reads happen before or beside the windowed
        // pass and must not evict what it holds.
        let first_block = self.probe(f.block)?;
        let last_block = if l.block == f.block {
            None
        } else {
            Some(self.probe(l.block)?)
        };
        let pick = |lb: &Loaded, max: bool| {
            let mine = lb.msgs.iter().filter(|m| m.conn == conn);
            if max {
                mine.max_by_key(|m| (m.time, m.offset))
            } else {
                mine.min_by_key(|m| (m.time, m.offset))
            }
            .map(|m| self.message(lb, m))
        };
        let first = pick(&first_block, false);
        let last = pick(last_block.as_ref().unwrap_or(&first_block), true);
        match (first, last) {
            (Some(a), Some(b)) => Ok(Some((a, b))),
            _ => Err(self.file.corrupt(
                self.scan.blocks[f.block].pos,
                format!(
                    "the index places messages of channel {} in this chunk but it holds none",
                    self.scan.channels[conn].id
                ),
            )),
        }
    }
}

/// Read block `b` and locate its messages, checking them against what the scan said (window
/// reads pick blocks by the scan's counts and time ranges: a disagreement would make some
/// windows see a message and others not).
fn load_block(
    file: &McapFile,
    scan: &Scan,
    pool: &BufferPool,
    raw: &mut Vec<u8>,
    b: usize,
) -> Result<Loaded, BagError> {
    let meta = &scan.blocks[b];
    let buf = read_block(file, meta, pool, raw)?;
    let inner = |o: usize| match meta.kind {
        block::Kind::Chunk { .. } => (meta.pos, format!("in the chunk, at byte {o}: ")),
        block::Kind::Run => (meta.pos + o as u64, String::new()),
    };
    let msgs = messages(&buf, &scan.index).map_err(|(o, e)| {
        let (at, prefix) = inner(o);
        file.corrupt(at, format!("{prefix}{e}"))
    })?;
    if let Some(m) = msgs
        .iter()
        .find(|m| m.time < meta.start || m.time > meta.end)
    {
        let (at, prefix) = inner(m.offset as usize);
        return Err(file.corrupt(
            at,
            format!(
                "{prefix}message at {} ns outside the range {}..={} ns the index gives its \
                 chunk",
                m.time, meta.start, meta.end
            ),
        ));
    }
    let mut found = vec![0u64; scan.channels.len()];
    for m in &msgs {
        found[m.conn] += 1;
    }
    for (conn, ch) in scan.channels.iter().enumerate() {
        let want = meta.counts.iter().find(|c| c.0 == conn).map_or(0, |c| c.1);
        if found[conn] != want {
            return Err(file.corrupt(
                meta.pos,
                format!(
                    "the index lists {want} messages of channel {} ({}) in this chunk, it holds \
                     {}",
                    ch.id, ch.topic, found[conn]
                ),
            ));
        }
    }
    Ok(Loaded {
        block: b,
        buf: Arc::new(buf),
        msgs,
    })
}

mod summary;

#[cfg(test)]
mod tests;
