//! The temporary directory a dataset is written in: `.NAME.bagstream-tmp-PID` beside the
//! target, renamed into place only when the dataset is complete, so that a failed or killed
//! run never leaves something that looks like a dataset. [`LeRobotWriter`] and `merge` share
//! these rules.
//!
//! [`LeRobotWriter`]: super::LeRobotWriter

use std::path::{Path, PathBuf};

use super::DatasetError;

fn io_err(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A new dataset being written in a temporary directory beside `out`. Dropping it without
/// [`Staging::commit`] removes the directory and everything in it.
pub struct Staging {
    out: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl Staging {
    /// Checks that `out` can be written (its parent a directory, `out` absent or an empty
    /// directory; else refused with `not_empty` as the reason) and creates the temporary
    /// directory.
    pub fn create(out: &Path, not_empty: &str) -> Result<Staging, DatasetError> {
        check_parent_is_directory(out)?;
        if !dir_is_empty(out)? {
            return Err(DatasetError::Refused {
                path: out.to_path_buf(),
                detail: not_empty.to_string(),
            });
        }
        let (parent, tmp) = temp_dir_for(out)?;
        std::fs::create_dir(&tmp).map_err(|e| unwritable(out, &parent, e))?;
        Ok(Staging {
            out: out.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// The temporary directory.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary directory to `out`.
    pub fn commit(mut self) -> Result<(), DatasetError> {
        if self.out.exists() {
            // Checked empty at create; remove_dir refuses if something appeared since.
            std::fs::remove_dir(&self.out).map_err(|e| io_err(&self.out, e))?;
        }
        std::fs::rename(&self.tmp, &self.out).map_err(|e| io_err(&self.out, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// `(parent, parent/.NAME.bagstream-tmp-PID)` for `out`: the parent created if missing, the
/// temporaries of dead runs removed, and one of ours left by an earlier process of this pid
/// removed too. The temporary directory itself is not created.
pub(crate) fn temp_dir_for(out: &Path) -> Result<(PathBuf, PathBuf), DatasetError> {
    let name = out
        .file_name()
        .ok_or_else(|| DatasetError::Invalid(format!("{}: not a directory name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| unwritable(out, &parent, e))?;
    remove_stale_temporaries(&parent, &name);
    let tmp = parent.join(format!(".{name}.bagstream-tmp-{}", std::process::id()));
    if tmp.exists() {
        // Left by an earlier run of a process with our pid: never a dataset.
        std::fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    }
    Ok((parent, tmp))
}

/// Remove `.NAME.bagstream-tmp-PID` directories left by killed runs whose process is gone:
/// they never hold a finished dataset.
fn remove_stale_temporaries(parent: &Path, name: &str) {
    let prefix = format!(".{name}.bagstream-tmp-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.split('.').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The output cannot be written where it is (found before any work): a usage error that
/// names the directory and the OS reason.
pub(crate) fn unwritable(out: &Path, dir: &Path, e: std::io::Error) -> DatasetError {
    DatasetError::Refused {
        path: out.to_path_buf(),
        detail: format!("cannot write the dataset in {}: {e}", dir.display()),
    }
}

/// Refuses an output below a regular file (`file.txt/ds`), which the OS reports obscurely.
pub(crate) fn check_parent_is_directory(out: &Path) -> Result<(), DatasetError> {
    let existing = out
        .ancestors()
        .skip(1)
        .find(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_ok());
    match existing {
        Some(a) if !a.is_dir() => Err(DatasetError::Refused {
            path: out.to_path_buf(),
            detail: format!(
                "cannot write the dataset: {} is not a directory",
                a.display()
            ),
        }),
        _ => Ok(()),
    }
}

/// True when `dir` does not exist or is an empty directory.
pub(crate) fn dir_is_empty(dir: &Path) -> Result<bool, DatasetError> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(DatasetError::Refused {
            path: dir.to_path_buf(),
            detail: "exists and is not a directory".into(),
        }),
        Err(e) => Err(io_err(dir, e)),
    }
}

/// Hard-links `from` to `to`, copying when a link cannot be made (another filesystem, or one
/// without hard links). True when linked.
pub(crate) fn link_or_copy(from: &Path, to: &Path) -> Result<bool, DatasetError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(true);
    }
    std::fs::copy(from, to).map_err(|e| io_err(to, e))?;
    Ok(false)
}
