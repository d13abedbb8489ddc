//! The order of the merged episodes: by input position when every shard records it in
//! `meta/bagstream_inputs.json`, else shard by shard in the order given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dataset::inputs::{InputsFile, ShardId, INPUTS_PATH};
use crate::dataset::DatasetError;

/// One merged episode: episode `episode` of shard `shard` (an index into the shard list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub shard: usize,
    pub episode: u64,
    /// The input's position in the run's input list, when the shards record it.
    pub position: Option<u64>,
}

/// The merged order and what the shards' inputs files say about the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub episodes: Vec<Source>,
    /// True when ordered by input position.
    pub by_position: bool,
    /// The run's input count, when the shards record it (they must agree).
    pub input_count: Option<u64>,
}

/// What the order needs to know of a shard.
pub struct ShardInputs<'a> {
    pub dir: &'a Path,
    pub episodes: u64,
    pub inputs: Option<&'a InputsFile>,
}

fn mismatch(path: &Path, detail: String) -> DatasetError {
    DatasetError::Mismatch {
        path: path.to_path_buf(),
        detail,
    }
}

/// The merged order of the episodes of `shards` (their inputs files already checked against
/// their episode counts).
pub fn order(shards: &[ShardInputs]) -> Result<Order, DatasetError> {
    let with: Vec<&ShardInputs> = shards.iter().filter(|s| s.inputs.is_some()).collect();
    if with.is_empty() {
        let episodes = shards
            .iter()
            .enumerate()
            .flat_map(|(shard, s)| {
                (0..s.episodes).map(move |episode| Source {
                    shard,
                    episode,
                    position: None,
                })
            })
            .collect();
        return Ok(Order {
            episodes,
            by_position: false,
            input_count: None,
        });
    }
    if let Some(without) = shards.iter().find(|s| s.inputs.is_none()) {
        return Err(mismatch(
            without.dir,
            format!(
                "has no {INPUTS_PATH}, but {} has one: episodes are ordered by input position \
                 only when every shard records it (merge shards of one run, or none that record it)",
                with[0].dir.display()
            ),
        ));
    }

    let mut input_count: Option<(u64, &Path)> = None;
    let mut shard_ids: BTreeMap<u64, &Path> = BTreeMap::new();
    let mut shard_count: Option<(ShardId, &Path)> = None;
    let mut by_position: BTreeMap<u64, (usize, u64, &PathBuf)> = BTreeMap::new();
    for (i, s) in shards.iter().enumerate() {
        let Some(file) = s.inputs else { continue };
        if let Some(n) = file.input_count {
            match input_count {
                Some((m, first)) if m != n => {
                    return Err(mismatch(
                        s.dir,
                        format!(
                            "{INPUTS_PATH} says the run had {n} inputs, {} says {m}: not shards of one run",
                            first.display()
                        ),
                    ))
                }
                Some(_) => {}
                None => input_count = Some((n, s.dir)),
            }
        }
        if let Some(id) = file.shard {
            if let Some((first, first_dir)) = shard_count {
                if first.count != id.count {
                    return Err(mismatch(
                        s.dir,
                        format!(
                            "is shard {} of {}, {} is shard {} of {}: not shards of one run",
                            id.index,
                            id.count,
                            first_dir.display(),
                            first.index,
                            first.count
                        ),
                    ));
                }
            } else {
                shard_count = Some((id, s.dir));
            }
            if let Some(other) = shard_ids.insert(id.index, s.dir) {
                return Err(mismatch(
                    s.dir,
                    format!(
                        "is shard {} of {}, and so is {}",
                        id.index,
                        id.count,
                        other.display()
                    ),
                ));
            }
        }
        for e in &file.inputs {
            if let Some((j, episode, path)) =
                by_position.insert(e.position, (i, e.episode_index, &e.path))
            {
                return Err(mismatch(
                    s.dir,
                    format!(
                        "episode {} comes from input position {} ({}), as does episode {episode} of {} ({})",
                        e.episode_index,
                        e.position,
                        e.path.display(),
                        shards[j].dir.display(),
                        path.display()
                    ),
                ));
            }
        }
    }
    // A position past the count recorded by another shard is checked here: each file was
    // checked only against its own count.
    if let (Some((n, first)), Some((&last, &(j, _, _)))) =
        (input_count, by_position.last_key_value())
    {
        if last >= n {
            return Err(mismatch(
                shards[j].dir,
                format!(
                    "holds input position {last}, but {} says the run had {n} inputs",
                    first.display()
                ),
            ));
        }
    }
    Ok(Order {
        episodes: by_position
            .into_iter()
            .map(|(position, (shard, episode, _))| Source {
                shard,
                episode,
                position: Some(position),
            })
            .collect(),
        by_position: true,
        input_count: input_count.map(|(n, _)| n),
    })
}

impl Order {
    /// The positions below `input_count` that no shard holds (inputs of the run that are in
    /// none of the shards: a shard left out, or bags that failed with `--keep-going`).
    pub fn missing_positions(&self) -> Vec<u64> {
        let Some(n) = self.input_count else {
            return Vec::new();
        };
        let mut have = self.episodes.iter().filter_map(|s| s.position).peekable();
        let mut missing = Vec::new();
        for p in 0..n {
            if have.peek() == Some(&p) {
                have.next();
            } else {
                missing.push(p);
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::inputs::InputEntry;

    fn file(positions: &[u64], count: Option<u64>, shard: Option<(u64, u64)>) -> InputsFile {
        let mut f = InputsFile::new(
            positions
                .iter()
                .enumerate()
                .map(|(e, &position)| InputEntry {
                    episode_index: e as u64,
                    position,
                    path: PathBuf::from(format!("run{position}.bag")),
                    size: None,
                    mtime_ns: None,
                    index_digest: None,
                })
                .collect(),
        );
        f.input_count = count;
        f.shard = shard.map(|(index, count)| ShardId { index, count });
        f
    }

    fn shard<'a>(dir: &'a str, episodes: u64, inputs: Option<&'a InputsFile>) -> ShardInputs<'a> {
        ShardInputs {
            dir: Path::new(dir),
            episodes,
            inputs,
        }
    }

    fn pairs(o: &Order) -> Vec<(usize, u64)> {
        o.episodes.iter().map(|s| (s.shard, s.episode)).collect()
    }

    #[test]
    fn without_inputs_files_shards_follow_each_other() {
        let o = order(&[shard("a", 2, None), shard("b", 1, None)]).unwrap();
        assert_eq!(pairs(&o), [(0, 0), (0, 1), (1, 0)]);
        assert!(!o.by_position);
        assert!(o.missing_positions().is_empty());
    }

    #[test]
    fn inputs_files_order_by_position_whatever_the_shard_order() {
        // Round-robin shards of 5 inputs, given last shard first.
        let (a, b) = (
            file(&[0, 2, 4], Some(5), Some((0, 2))),
            file(&[1, 3], Some(5), Some((1, 2))),
        );
        let o = order(&[shard("b", 2, Some(&b)), shard("a", 3, Some(&a))]).unwrap();
        assert_eq!(pairs(&o), [(1, 0), (0, 0), (1, 1), (0, 1), (1, 2)]);
        assert!(o.by_position);
        assert_eq!(o.input_count, Some(5));
        assert!(o.missing_positions().is_empty());
        // A shard left out shows as missing positions.
        let o = order(&[shard("a", 3, Some(&a))]).unwrap();
        assert_eq!(o.missing_positions(), [1, 3]);
    }

    #[test]
    fn conflicts_name_both_shards() {
        let (a, b) = (file(&[0, 1], None, None), file(&[1], None, None));
        let err = order(&[shard("a", 2, Some(&a)), shard("b", 1, Some(&b))])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "b: episode 0 comes from input position 1 (run1.bag), as does episode 1 of a (run1.bag)"
        );
        let err = order(&[shard("a", 2, Some(&a)), shard("c", 1, None)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c: has no meta/bagstream_inputs.json, but a has one"),
            "{err}"
        );
        let (c, d) = (file(&[0], Some(4), None), file(&[1], Some(5), None));
        let err = order(&[shard("c", 1, Some(&c)), shard("d", 1, Some(&d))])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("d: meta/bagstream_inputs.json says the run had 5 inputs, c says 4"),
            "{err}"
        );
        let (e, f) = (
            file(&[0], None, Some((0, 2))),
            file(&[1], None, Some((0, 2))),
        );
        let err = order(&[shard("e", 1, Some(&e)), shard("f", 1, Some(&f))])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "f: is shard 0 of 2, and so is e");
        let (g, h) = (file(&[0], Some(2), None), file(&[3], None, None));
        let err = order(&[shard("g", 1, Some(&g)), shard("h", 1, Some(&h))])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "h: holds input position 3, but g says the run had 2 inputs"
        );
    }
}
