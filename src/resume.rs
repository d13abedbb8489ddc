//! Which inputs a run converts: its shard's part of the input list, less the inputs that the
//! dataset at `--out` already holds (`--resume`), checking that those did not change since.

use std::path::{Path, PathBuf};

use crate::bag::OpenOptions;
use crate::bag_list::{identity, shard_positions, Identity, Shard};
use crate::dataset::inputs::{self, InputEntry, InputsFile, ShardId};
use crate::dataset::meta::INFO_PATH;
use crate::{Error, Result};

/// What a run is to do.
#[derive(Debug)]
pub struct Selection {
    /// Positions in the input list to convert, in order.
    pub todo: Vec<usize>,
    /// The dataset's record so far (empty for a new dataset), with this run's list length
    /// and shard filled in.
    pub record: InputsFile,
    /// Inputs of this run that the dataset holds already.
    pub done: usize,
    /// A dataset exists at `out` and the run adds to it.
    pub existing: bool,
}

/// The record of input `position` (`path`), converted as episode `episode_index`, from the
/// identity taken when it was planned and its index's digest.
pub fn record(
    episode_index: u64,
    position: usize,
    path: &Path,
    id: Identity,
    index_digest: String,
) -> InputEntry {
    InputEntry {
        episode_index,
        position: position as u64,
        path: path.to_path_buf(),
        size: Some(id.size),
        mtime_ns: Some(id.mtime_ns),
        index_digest: Some(index_digest),
    }
}

/// Decide what to convert. `resume` (or a shard) reads the record of an existing dataset at
/// `out`; without it an existing dataset is left to the writer (`append` or a refusal).
pub fn select(
    bags: &[PathBuf],
    shard: Option<Shard>,
    out: &Path,
    resume: bool,
    open: &OpenOptions,
) -> Result<Selection> {
    let positions: Vec<usize> = match shard {
        Some(s) => shard_positions(bags, s),
        None => (0..bags.len()).collect(),
    };
    let mut selection = Selection {
        todo: positions.clone(),
        record: InputsFile::new(Vec::new()),
        done: 0,
        existing: false,
    };
    if resume && out.join(INFO_PATH).is_file() {
        let record = inputs::read(out)?.ok_or_else(|| {
            Error::Usage(format!(
                "{}: --resume: the dataset has no record of its inputs ({}); it was not written \
                 by a bagstream that records them: convert into a new --out, or use --append",
                out.display(),
                inputs::INPUTS_PATH
            ))
        })?;
        if record.version != inputs::VERSION {
            return Err(Error::Usage(format!(
                "{}: --resume: {} is version {} (this bagstream reads version {})",
                out.display(),
                inputs::INPUTS_PATH,
                record.version,
                inputs::VERSION
            )));
        }
        if let (Some(theirs), Some(ours)) = (record.shard, shard) {
            if (theirs.index, theirs.count) != (ours.index as u64, ours.count as u64) {
                return Err(Error::Usage(format!(
                    "{}: written as shard {}/{}, not {ours}: give each shard its own --out",
                    out.display(),
                    theirs.index,
                    theirs.count
                )));
            }
        }
        selection.todo.clear();
        for &p in &positions {
            let path = &bags[p];
            match record.inputs.iter().find(|r| r.path == *path) {
                Some(r) => {
                    check_unchanged(r, path, out, open)?;
                    selection.done += 1;
                }
                None => selection.todo.push(p),
            }
        }
        selection.record = record;
        selection.existing = true;
    }
    selection.record.input_count = Some(bags.len() as u64);
    if let Some(s) = shard {
        selection.record.shard = Some(ShardId {
            index: s.index as u64,
            count: s.count as u64,
        });
    }
    Ok(selection)
}

/// A bag the dataset holds must be the recording it was: same size and time, or (copied,
/// touched) the same index.
fn check_unchanged(r: &InputEntry, path: &Path, out: &Path, open: &OpenOptions) -> Result<()> {
    let now = identity(path);
    if Some(now.size) == r.size && Some(now.mtime_ns) == r.mtime_ns {
        return Ok(());
    }
    let changed = |what: String| {
        Error::Usage(format!(
            "{}: changed since it was converted as episode {} of {} ({what}): convert it into \
             a new --out, or remove it from the input list",
            path.display(),
            r.episode_index,
            out.display()
        ))
    };
    if let Some(size) = r.size.filter(|&s| s != now.size) {
        return Err(changed(format!("{size} bytes then, {} now", now.size)));
    }
    let bag = crate::bag::open_with(path, open)?;
    let digest = bag.summary().index_digest();
    if r.index_digest.as_deref() != Some(digest.as_str()) {
        return Err(changed(
            "same size, another modification time and another index".to_string(),
        ));
    }
    Ok(())
}
