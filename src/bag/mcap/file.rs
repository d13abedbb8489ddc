//! The MCAP file as positioned reads: bounds checked against the file size before any buffer
//! is sized, errors naming the file.

use std::path::{Path, PathBuf};

use crate::bag::{BagError, ReadAt};

pub struct McapFile {
    path: PathBuf,
    src: Box<dyn ReadAt>,
    len: u64,
}

impl McapFile {
    pub fn new(path: PathBuf, src: Box<dyn ReadAt>) -> Self {
        let len = src.len();
        McapFile { path, src, len }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn corrupt(&self, offset: u64, detail: impl Into<String>) -> BagError {
        BagError::Corrupt {
            path: self.path.clone(),
            offset,
            detail: detail.into(),
        }
    }

    /// `len` bytes at `pos` fit in the file (checked before any buffer is sized for them).
    pub fn check(&self, pos: u64, len: u64, what: &str) -> Result<(), BagError> {
        match pos.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(self.corrupt(
                pos,
                format!(
                    "{what} of {len} bytes runs past the end of the file ({} bytes)",
                    self.len
                ),
            )),
        }
    }

    pub fn read_into(&self, pos: u64, buf: &mut [u8], what: &str) -> Result<(), BagError> {
        self.check(pos, buf.len() as u64, what)?;
        self.src
            .read_exact_at(buf, pos)
            .map_err(|source| BagError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// `len` bytes at `pos` into `out` (reused), bounds checked first.
    pub fn read_vec(
        &self,
        pos: u64,
        len: u64,
        out: &mut Vec<u8>,
        what: &str,
    ) -> Result<(), BagError> {
        self.check(pos, len, what)?;
        out.clear();
        out.resize(len as usize, 0);
        self.read_into(pos, out, what)
    }
}
