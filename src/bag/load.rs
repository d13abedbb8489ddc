//! Loading a window's blocks on two threads, shared by the storages that decompress blocks
//! (ROS1 chunks, MCAP chunks): decompression is most of a tabular conversion's time and the
//! order of loading changes nothing (messages are sorted afterwards); and the blocks kept for
//! `first_and_last` ([`Probes`]).

/// `load(raw, item)` for each of `items`, on two threads when `parallel` and there are
/// several, each thread with its own reused buffer of `raw`. The results come in `items`
/// order, ending at the first error in that order whatever the threads' timing: each worker
/// stops at its own first error, so every item before the earliest error found was tried.
pub fn in_order<T: Send, E: Send>(
    items: &[usize],
    raw: &mut [Vec<u8>; 2],
    parallel: bool,
    load: impl Fn(&mut Vec<u8>, usize) -> Result<T, E> + Sync,
) -> Vec<Result<T, E>> {
    let [raw0, raw1] = raw;
    let work = |raw: &mut Vec<u8>, part: usize| -> Vec<(usize, Result<T, E>)> {
        let mut done = Vec::new();
        for (k, &item) in items.iter().enumerate().skip(part).step_by(2) {
            let r = load(raw, item);
            let failed = r.is_err();
            done.push((k, r));
            if failed {
                break;
            }
        }
        done
    };
    let mut results = if items.len() >= 2 && parallel {
        std::thread::scope(|s| {
            let other = s.spawn(|| work(raw1, 1));
            let mut mine = work(raw0, 0);
            match other.join() {
                Ok(theirs) => mine.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            mine
        })
    } else {
        let mut all = work(raw0, 0);
        all.extend(work(raw0, 1));
        all
    };
    results.sort_by_key(|(k, _)| *k);
    let first_err = results.iter().position(|(_, r)| r.is_err());
    results.truncate(first_err.map_or(results.len(), |i| i + 1));
    results.into_iter().map(|(_, r)| r).collect()
}

/// The last [`Probes::KEPT`] blocks loaded for `first_and_last`, by block index. Planning asks
/// for every topic of the config, whose first and last messages mostly sit in the same first
/// and last block: each is loaded once instead of once per topic (a plan of a short bag
/// decompressed about three times the bag). The reader clears them at its first window, so
/// their buffers go back to the pool.
pub struct Probes<L> {
    held: Vec<(usize, std::sync::Arc<L>)>,
}

impl<L> Default for Probes<L> {
    fn default() -> Self {
        Probes { held: Vec::new() }
    }
}

impl<L> Probes<L> {
    /// The first and the last block.
    pub const KEPT: usize = 2;

    /// Block `block`, held or loaded by `load` (then held, the oldest dropped past
    /// [`Probes::KEPT`]).
    pub fn get<E>(
        &mut self,
        block: usize,
        load: impl FnOnce() -> Result<L, E>,
    ) -> Result<std::sync::Arc<L>, E> {
        if let Some((_, l)) = self.held.iter().find(|(b, _)| *b == block) {
            return Ok(l.clone());
        }
        let l = std::sync::Arc::new(load()?);
        if self.held.len() >= Self::KEPT {
            self.held.remove(0);
        }
        self.held.push((block, l.clone()));
        Ok(l)
    }

    pub fn clear(&mut self) {
        self.held.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_up_to_the_first_error() {
        let items: Vec<usize> = (0..9).collect();
        for parallel in [false, true] {
            let mut raw = [Vec::new(), Vec::new()];
            let ok = in_order(&items, &mut raw, parallel, |_, i| Ok::<_, usize>(i * 10));
            assert_eq!(ok, (0..9).map(|i| Ok(i * 10)).collect::<Vec<_>>());
            let bad = in_order(&items, &mut raw, parallel, |_, i| {
                if i == 4 || i == 7 {
                    Err(i)
                } else {
                    Ok(i)
                }
            });
            assert_eq!(bad, vec![Ok(0), Ok(1), Ok(2), Ok(3), Err(4)]);
        }
    }
}
