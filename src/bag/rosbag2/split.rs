//! Several storage files as one recording (a split rosbag2 bag).
//!
//! Connections are merged by (topic, type, serialization format) in first-seen order; stats
//! are summed (counts) and min/maxed (times); blocks and files are concatenated. A window asks
//! only the files whose time range overlaps it and merges their messages. `order` stays unique
//! across files: the file's index is in the top 16 bits of `order.0` (a file's own `order.0`
//! is a rowid-free 0 for sqlite3 or a file offset below 2^48 for MCAP).

use crate::bag::{
    BagError, BagSource, BagSummary, Connection, ConnectionStats, RawMessage, StorageInfo,
};
use crate::Time;

const FILE_SHIFT: u32 = 48;
const LOW_MASK: u64 = (1 << FILE_SHIFT) - 1;

pub struct SplitBag {
    files: Vec<Box<dyn BagSource>>,
    summary: BagSummary,
    /// Per file: its connection index -> merged connection index.
    maps: Vec<Vec<usize>>,
    /// Per file: the receive-time range of its messages (None: no messages).
    ranges: Vec<Option<(Time, Time)>>,
    /// Per file: which of its connections the current window wants (reused).
    wanted: Vec<Vec<bool>>,
    /// One file's window before it is renumbered (reused).
    buf: Vec<RawMessage>,
}

fn file_range(s: &BagSummary) -> Option<(Time, Time)> {
    let first = s.stats.iter().filter_map(|x| x.first).min()?;
    let last = s.stats.iter().filter_map(|x| x.last).max()?;
    Some((first, last))
}

impl SplitBag {
    /// Combine `files` (in recording order) into one source named `path`.
    pub fn new(
        path: std::path::PathBuf,
        storage: StorageInfo,
        files: Vec<Box<dyn BagSource>>,
        mut warnings: Vec<String>,
    ) -> SplitBag {
        let mut connections: Vec<Connection> = Vec::new();
        let mut stats: Vec<ConnectionStats> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let mut maps = Vec::with_capacity(files.len());
        let mut blocks = Vec::new();
        let mut infos = Vec::new();
        let mut file_size = 0;
        let mut indexed = true;
        let mut ranges = Vec::with_capacity(files.len());
        for f in &files {
            let s = f.summary();
            let mut map = Vec::with_capacity(s.connections.len());
            for (c, st) in s.connections.iter().zip(&s.stats) {
                let k = match connections.iter().position(|m| {
                    m.topic == c.topic && m.datatype == c.datatype && m.encoding == c.encoding
                }) {
                    Some(k) => k,
                    None => {
                        connections.push(c.clone());
                        stats.push(ConnectionStats::default());
                        connections.len() - 1
                    }
                };
                let m = &mut connections[k];
                if m.definition.is_empty() && !c.definition.is_empty() {
                    m.schema_format = c.schema_format.clone();
                    m.definition = c.definition.clone();
                }
                let t = &mut stats[k];
                t.count += st.count;
                t.first = match (t.first, st.first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                t.last = match (t.last, st.last) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                map.push(k);
            }
            maps.push(map);
            blocks.extend(s.blocks.iter().cloned());
            infos.extend(s.files.iter().cloned());
            file_size += s.file_size;
            indexed &= s.indexed;
            ranges.push(file_range(s));
            for w in &s.warnings {
                if !warnings.contains(w) {
                    warnings.push(w.clone());
                }
            }
            notes.extend(s.notes.iter().cloned());
        }
        let wanted = files
            .iter()
            .map(|f| vec![false; f.summary().connections.len()])
            .collect();
        SplitBag {
            summary: BagSummary {
                path,
                storage,
                files: infos,
                file_size,
                indexed,
                connections,
                stats,
                blocks,
                warnings,
                notes,
            },
            files,
            maps,
            ranges,
            wanted,
            buf: Vec::new(),
        }
    }

    /// The merged summary, for the opener to add what metadata.yaml knows.
    pub(crate) fn summary_mut(&mut self) -> &mut BagSummary {
        &mut self.summary
    }

    /// Each file's own summary, in order.
    pub fn file_summaries(&self) -> impl Iterator<Item = &BagSummary> {
        self.files.iter().map(|f| f.summary())
    }

    fn renumber(&self, file: usize, mut m: RawMessage) -> RawMessage {
        m.conn = self.maps[file][m.conn];
        m.order.0 = ((file as u64) << FILE_SHIFT) | (m.order.0 & LOW_MASK);
        m
    }
}

impl BagSource for SplitBag {
    fn set_parallel_reads(&mut self, on: bool) {
        for f in &mut self.files {
            f.set_parallel_reads(on);
        }
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
        let from = out.len();
        let mut files_read = 0;
        for f in 0..self.files.len() {
            let Some((a, b)) = self.ranges[f] else {
                continue;
            };
            if b < start || a >= end {
                continue;
            }
            let mut any = false;
            for (w, &k) in self.wanted[f].iter_mut().zip(&self.maps[f]) {
                *w = wanted.get(k).copied().unwrap_or(false);
                any |= *w;
            }
            if !any {
                continue;
            }
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let r = self.files[f].read_window(start, end, &self.wanted[f], &mut buf);
            if let Err(e) = r {
                self.buf = buf;
                out.truncate(from);
                return Err(e);
            }
            for m in buf.drain(..) {
                out.push(self.renumber(f, m));
            }
            self.buf = buf;
            files_read += 1;
        }
        if files_read > 1 {
            out[from..].sort_by_key(|m| (m.time, m.order));
        }
        Ok(())
    }

    fn first_and_last(
        &mut self,
        conn: usize,
    ) -> Result<Option<(RawMessage, RawMessage)>, BagError> {
        let mut best: Option<(RawMessage, RawMessage)> = None;
        for f in 0..self.files.len() {
            let locals: Vec<usize> = (0..self.maps[f].len())
                .filter(|&c| self.maps[f][c] == conn && self.files[f].summary().stats[c].count > 0)
                .collect();
            for c in locals {
                let Some((a, b)) = self.files[f].first_and_last(c)? else {
                    continue;
                };
                let (a, b) = (self.renumber(f, a), self.renumber(f, b));
                best = Some(match best {
                    None => (a, b),
                    Some((x, y)) => (
                        if (a.time, a.order) < (x.time, x.order) {
                            a
                        } else {
                            x
                        },
                        if (b.time, b.order) > (y.time, y.order) {
                            b
                        } else {
                            y
                        },
                    ),
                });
            }
        }
        Ok(best)
    }
}
