//! Whole-file zstd (compression_mode FILE): `x.db3.zstd` / `x.mcap.zstd` are streamed into a
//! temporary file, which the storage reader then opens; [`TempCopy`] removes it on drop, so on
//! every path out, failures included.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bag::BagError;

/// A decompressed copy that is removed when dropped.
#[derive(Debug)]
pub struct TempCopy {
    path: PathBuf,
    size: u64,
}

impl TempCopy {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the copy takes on disk.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Decompress `src` into a new file in `dir` (the system temporary directory when None).
    /// The copy's name ends like `src` without `.zstd`, so that readers dispatching on the
    /// extension still see `.db3` / `.mcap`.
    pub fn decompress(src: &Path, dir: Option<&Path>) -> Result<TempCopy, BagError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let io = |path: &Path, source| BagError::Io {
            path: path.to_path_buf(),
            source,
        };
        let input = File::open(src).map_err(|e| io(src, e))?;
        let inner = src
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".zstd").to_string())
            .unwrap_or_else(|| "bag".into());
        // A fresh name (create_new): never another run's file.
        let (path, out) = loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".bagstream-{}-{n}-{inner}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(BagError::Io {
                        path: dir.clone(),
                        source: std::io::Error::new(
                            e.kind(),
                            format!(
                                "cannot create a temporary file to decompress {} into: {e}",
                                src.display()
                            ),
                        ),
                    })
                }
            }
        };
        // From here the guard exists: any error below removes the partial file.
        let mut guard = TempCopy { path, size: 0 };
        let mut dec =
            zstd::stream::read::Decoder::new(BufReader::new(input)).map_err(|e| io(src, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, out);
        let n = std::io::copy(&mut dec, &mut w).map_err(|e| {
            // A read error is the compressed file's; a write error is the temporary file's
            // (typically a full disk).
            if e.kind() == std::io::ErrorKind::StorageFull
                || e.kind() == std::io::ErrorKind::WriteZero
            {
                io(&guard.path, e)
            } else {
                BagError::Corrupt {
                    path: src.to_path_buf(),
                    offset: 0,
                    detail: format!("zstd: {e}"),
                }
            }
        })?;
        w.flush().map_err(|e| io(&guard.path, e))?;
        guard.size = n;
        Ok(guard)
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        // Best effort: a copy that cannot be removed is at worst a stale temporary file.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The space a decompressed copy will take, when the zstd frame header says (rosbag2 writes
/// it with a content size; streamed frames have none).
pub fn declared_size(src: &Path) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; 18];
    let mut f = File::open(src).ok()?;
    let n = f.read(&mut head).ok()?;
    zstd::zstd_safe::get_frame_content_size(&head[..n])
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_holds_the_bytes_and_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("x.db3.zstd");
        let data = b"some sqlite bytes ".repeat(1000);
        std::fs::write(&src, zstd::bulk::compress(&data, 3).unwrap()).unwrap();
        assert_eq!(declared_size(&src), Some(data.len() as u64));
        let copy = TempCopy::decompress(&src, Some(dir.path())).unwrap();
        assert!(copy.path().to_string_lossy().ends_with("x.db3"));
        assert_eq!(std::fs::read(copy.path()).unwrap(), data);
        assert_eq!(copy.size(), data.len() as u64);
        let p = copy.path().to_path_buf();
        drop(copy);
        assert!(!p.exists());
    }

    #[test]
    fn a_broken_stream_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("y.db3.zstd");
        let full = zstd::bulk::compress(&b"abc".repeat(100_000), 3).unwrap();
        std::fs::write(&src, &full[..full.len() / 2]).unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let e = TempCopy::decompress(&src, Some(&tmp)).unwrap_err();
        assert!(e.to_string().contains("y.db3.zstd"), "{e}");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }
}
