//! Positioned reads, the only way readers touch their input: a file, or bytes in memory (tests
//! and the fuzzer), so that a reader never assumes a seekable stream or maps the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// A byte source read at absolute offsets. Several threads may read at once.
pub trait ReadAt: Send + Sync {
    /// Bytes in the source.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` from `pos`; [`io::ErrorKind::UnexpectedEof`] when the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
}

/// A file; its length is taken once, at open (a bag is not written while it is read).
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn new(file: File) -> io::Result<FileSource> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl ReadAt for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, pos)
    }
}

/// Bytes in memory.
#[derive(Debug, Clone)]
pub struct SliceSource(pub Arc<[u8]>);

impl SliceSource {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> SliceSource {
        SliceSource(bytes.into())
    }
}

impl ReadAt for SliceSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let start = usize::try_from(pos).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {pos} past the end ({} bytes)",
                    buf.len(),
                    self.0.len()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_are_bounds_checked() {
        let s = SliceSource::new(vec![1u8, 2, 3, 4]);
        let mut b = [0u8; 2];
        s.read_exact_at(&mut b, 2).unwrap();
        assert_eq!(b, [3, 4]);
        assert!(s.read_exact_at(&mut b, 3).is_err());
        assert!(s.read_exact_at(&mut b, u64::MAX).is_err());
        assert_eq!(s.len(), 4);
    }
}
