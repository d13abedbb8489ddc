//! The run's input list: bags given on the command line and in `--bags-from` files, and the
//! deterministic split of that list into shards (`--shard I/N`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::UNIX_EPOCH;

use crate::{Error, Result};

/// Read a bag list: one path per line; blank lines and lines starting with `#` are skipped,
/// surrounding whitespace is trimmed. Relative paths are kept as written (resolved against
/// the working directory, as `tar -T` and `xargs` do), so a list made by `find` in the
/// directory a job runs from works unchanged.
pub fn read_bag_list(list: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list).map_err(|e| {
        Error::Usage(format!(
            "--bags-from {}: cannot be read: {e}",
            list.display()
        ))
    })?;
    Ok(parse_bag_list(&text))
}

/// The paths of a bag list's text (see [`read_bag_list`]).
pub fn parse_bag_list(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect()
}

/// `--shard I/N`: the `index`th (0-based, as SLURM array task ids, Kubernetes completion
/// indexes and datatrove ranks count) of `count` parts of the input list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("`{s}`: give I/N with 0 <= I < N, e.g. 0/4 (I counts from 0)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which shard each input goes to, from the inputs' sizes: largest first, each to the shard
/// with the fewest bytes so far (ties: the lower shard; equal sizes: the earlier input), so
/// that shards take about as long and every task computes the same split from the same list.
pub fn assign_shards(sizes: &[u64], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut load = vec![0u128; count];
    let mut shard_of = vec![0; sizes.len()];
    for i in order {
        let s = (0..count).min_by_key(|&s| (load[s], s)).unwrap_or(0);
        load[s] += sizes[i] as u128;
        shard_of[i] = s;
    }
    shard_of
}

/// A file's (or a rosbag2 directory's) size and modification time, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub size: u64,
    pub mtime_ns: i64,
}

/// Size and modification time of an input (for a directory: the sum of its files' sizes and
/// the newest file's time); zeros when it cannot be read (opening it names the problem).
pub fn identity(path: &Path) -> Identity {
    let stamp = |m: &std::fs::Metadata| -> i64 {
        m.modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
    };
    let Ok(meta) = std::fs::metadata(path) else {
        return Identity {
            size: 0,
            mtime_ns: 0,
        };
    };
    if !meta.is_dir() {
        return Identity {
            size: meta.len(),
            mtime_ns: stamp(&meta),
        };
    }
    let mut id = Identity {
        size: 0,
        mtime_ns: 0,
    };
    for m in std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
    {
        id.size += m.len();
        id.mtime_ns = id.mtime_ns.max(stamp(&m));
    }
    id
}

/// Bytes of an input (see [`identity`]); 0 when it cannot be read (it then fails in its own
/// shard, named).
pub fn input_size(path: &Path) -> u64 {
    identity(path).size
}

/// The positions (in `bags`) of the inputs of `shard`, in input order.
pub fn shard_positions(bags: &[PathBuf], shard: Shard) -> Vec<usize> {
    let sizes: Vec<u64> = bags.iter().map(|b| input_size(b)).collect();
    assign_shards(&sizes, shard.count)
        .into_iter()
        .enumerate()
        .filter(|&(_, s)| s == shard.index)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_skip_comments_and_blanks() {
        let text = "# bags of day 1\n  a.bag  \n\n/data/b.bag\n#c.bag\nd dir/with space\n";
        assert_eq!(
            parse_bag_list(text),
            vec![
                PathBuf::from("a.bag"),
                PathBuf::from("/data/b.bag"),
                PathBuf::from("d dir/with space")
            ]
        );
    }

    #[test]
    fn shards_parse_zero_based() {
        assert_eq!("0/4".parse::<Shard>(), Ok(Shard { index: 0, count: 4 }));
        assert_eq!("3/4".parse::<Shard>().unwrap().to_string(), "3/4");
        for bad in ["4/4", "1/0", "-1/2", "a/2", "2", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_input_in_exactly_one_shard_and_balanced() {
        // A deterministic spread of sizes (a linear congruential sequence).
        let mut x = 12345u64;
        for n in [0usize, 1, 7, 100, 1000] {
            let sizes: Vec<u64> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    1 + (x >> 40) % 1_000_000
                })
                .collect();
            for count in [1usize, 2, 3, 8] {
                let a = assign_shards(&sizes, count);
                assert_eq!(a, assign_shards(&sizes, count), "deterministic");
                assert!(a.iter().all(|&s| s < count));
                let mut load = vec![0u64; count];
                for (i, &s) in a.iter().enumerate() {
                    load[s] += sizes[i];
                }
                // Greedy largest-first: no shard exceeds another by more than the largest input.
                let max = sizes.iter().copied().max().unwrap_or(0);
                let (lo, hi) = (load.iter().min().unwrap(), load.iter().max().unwrap());
                assert!(hi - lo <= max, "n {n} count {count}: {load:?}");
            }
        }
    }
}
