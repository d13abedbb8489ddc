//! Reused chunk buffers.
//!
//! Every window decompresses a few chunks of about a megabyte. Allocating each afresh costs a
//! zeroing pass per chunk and, worse, lets glibc's heap grow with the length of the bag: a freed
//! megabyte raises malloc's mmap threshold, later chunks come from the heap, and small
//! allocations between them pin it (measured in docs/benchmarks.md: peak RSS of a 4 GB bag 1.36
//! times a 1 GB bag's). A buffer that comes back to the pool when its last message is dropped
//! keeps both flat.

use std::io::Read;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// Free buffers kept for reuse; more may be in use at once, they are then freed on return.
const KEEP: usize = 12;

/// A pool of byte buffers shared by a reader and whoever holds its messages.
#[derive(Clone, Default)]
pub struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl BufferPool {
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer of `len` initialised bytes (their values are whatever the last user left).
    /// Zeroing happens only when the buffer grows past its earlier high-water mark.
    pub fn take(&self, len: usize) -> ChunkBuf {
        let reused = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            // The largest free buffer, so that one size that grows does not cost a reallocation
            // per chunk.
            let best = (0..free.len()).max_by_key(|&i| free[i].len());
            best.map(|i| free.swap_remove(i))
        };
        let mut data = reused.unwrap_or_default();
        if data.len() < len {
            data.resize(len, 0);
        }
        ChunkBuf {
            data,
            len,
            pool: Some(self.free.clone()),
        }
    }

    /// A buffer to fill by reading (see [`ChunkBuf::fill_from`]): no bytes yet, the capacity
    /// of the largest free buffer.
    pub fn take_empty(&self) -> ChunkBuf {
        let mut buf = self.take(0);
        buf.data.clear();
        buf
    }

    /// Buffers waiting for reuse (for tests).
    pub fn free_count(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

/// A chunk's bytes; back to the pool on drop.
pub struct ChunkBuf {
    data: Vec<u8>,
    len: usize,
    pool: Option<Arc<Mutex<Vec<Vec<u8>>>>>,
}

impl ChunkBuf {
    /// The whole buffer, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }

    /// Replace the contents with what `r` gives, at most `limit` bytes, reserving `expect`
    /// bytes first: the buffer grows only as bytes arrive, so a reader cannot make it
    /// allocate more than it delivers (beyond `expect`).
    pub fn fill_from<R: Read>(
        &mut self,
        r: R,
        limit: u64,
        expect: usize,
    ) -> std::io::Result<usize> {
        self.data.clear();
        self.data.reserve(expect);
        let n = r.take(limit).read_to_end(&mut self.data)?;
        self.len = self.data.len();
        Ok(n)
    }

    /// Keep only the first `len` bytes (a decompressor that wrote fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl From<Vec<u8>> for ChunkBuf {
    fn from(data: Vec<u8>) -> Self {
        ChunkBuf {
            len: data.len(),
            data,
            pool: None,
        }
    }
}

impl Deref for ChunkBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl std::fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkBuf({} bytes)", self.len)
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let mut free = pool.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < KEEP {
                free.push(std::mem::take(&mut self.data));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_are_reused_without_reallocating() {
        let pool = BufferPool::new();
        let mut a = pool.take(1000);
        a.as_mut_slice()[0] = 42;
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(pool.free_count(), 1);
        let b = pool.take(500);
        assert_eq!(b.len(), 500);
        assert_eq!(b.as_ptr(), ptr, "the same allocation");
        let c = pool.take(2000);
        assert_eq!(c.len(), 2000);
        drop((b, c));
        assert_eq!(pool.free_count(), 2);
    }

    #[test]
    fn a_filled_buffer_reuses_the_allocation_and_holds_what_was_read() {
        let pool = BufferPool::new();
        let big = pool.take(4096);
        let ptr = big.as_ptr();
        drop(big);
        let mut b = pool.take_empty();
        assert_eq!(b.len(), 0);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(b.fill_from(&data[..], 10_000, 100).unwrap(), 3000);
        assert_eq!(&b[..], &data[..]);
        assert_eq!(b.as_ptr(), ptr, "the same allocation");
        // The limit stops the read.
        assert_eq!(b.fill_from(&data[..], 10, 0).unwrap(), 10);
        assert_eq!(&b[..], &data[..10]);
    }

    #[test]
    fn at_most_keep_buffers_wait() {
        let pool = BufferPool::new();
        let held: Vec<_> = (0..KEEP + 5).map(|_| pool.take(10)).collect();
        drop(held);
        assert_eq!(pool.free_count(), KEEP);
    }
}
