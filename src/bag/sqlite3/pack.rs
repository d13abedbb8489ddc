//! Packing a window's row blobs into pooled buffers: several messages share one
//! [`ChunkBuf`], each a range of it, so a window allocates nothing per message.

use std::ops::Range;
use std::sync::Arc;

use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer, ResetDirective};

use crate::bag::buffer::{BufferPool, ChunkBuf};
use crate::bag::RawMessage;
use crate::Time;

/// Size of one pooled buffer; a larger message gets a buffer of its own size.
pub const BUF_BYTES: usize = 1 << 20;
/// A zstd frame declaring more than this is decompressed into memory that grows as the
/// bytes arrive, so that a false header cannot make the reader allocate it up front.
const DIRECT_MAX: u64 = 16 << 20;
/// No message decompresses to more (CDR lengths are 32-bit).
const MESSAGE_MAX: usize = u32::MAX as usize;

/// A message placed in the current buffer: (connection, time, order, range).
type Pending = (usize, Time, (u64, u64), Range<usize>);

pub struct Packer {
    pool: BufferPool,
    cur: Option<ChunkBuf>,
    used: usize,
    /// Messages in `cur`: (connection, time, order, range); emitted when `cur` is sealed.
    pending: Vec<Pending>,
    dctx: Option<DCtx<'static>>,
    /// Output of frames without a usable content size; grows to the largest such message.
    scratch: Vec<u8>,
}

impl Packer {
    pub fn new(pool: BufferPool) -> Self {
        Packer {
            pool,
            cur: None,
            used: 0,
            pending: Vec::new(),
            dctx: None,
            scratch: Vec::new(),
        }
    }

    /// Room for `n` more bytes in the current buffer, sealing it first when they do not fit.
    fn reserve(&mut self, n: usize, out: &mut Vec<RawMessage>) {
        let fits = self.cur.as_ref().is_some_and(|b| b.len() - self.used >= n);
        if !fits {
            self.seal(out);
            self.cur = Some(self.pool.take(n.max(BUF_BYTES)));
            self.used = 0;
        }
    }

    fn place(&mut self, conn: usize, time: Time, order: (u64, u64), n: usize) {
        self.pending
            .push((conn, time, order, self.used..self.used + n));
        self.used += n;
    }

    /// Copy one message's bytes.
    pub fn push(
        &mut self,
        conn: usize,
        time: Time,
        order: (u64, u64),
        data: &[u8],
        out: &mut Vec<RawMessage>,
    ) {
        self.reserve(data.len(), out);
        let used = self.used;
        if let Some(b) = self.cur.as_mut() {
            b.as_mut_slice()[used..used + data.len()].copy_from_slice(data);
        }
        self.place(conn, time, order, data.len());
    }

    /// Decompress one message's zstd frame into the buffer.
    pub fn push_zstd(
        &mut self,
        conn: usize,
        time: Time,
        order: (u64, u64),
        data: &[u8],
        out: &mut Vec<RawMessage>,
    ) -> Result<(), String> {
        let dctx = self.dctx.get_or_insert_with(DCtx::create);
        match zstd::zstd_safe::get_frame_content_size(data) {
            Ok(Some(n)) if n <= DIRECT_MAX => {
                let n = n as usize;
                self.reserve(n, out);
                let used = self.used;
                let dctx = self.dctx.as_mut().expect("created above");
                let b = self.cur.as_mut().expect("reserved above");
                let dst = &mut b.as_mut_slice()[used..used + n];
                let got = dctx
                    .decompress(dst, data)
                    .map_err(|c| format!("zstd: {}", zstd::zstd_safe::get_error_name(c)))?;
                if got != n {
                    return Err(format!(
                        "zstd: frame declares {n} bytes, decompressed to {got}"
                    ));
                }
                self.place(conn, time, order, n);
            }
            Ok(_) => {
                unzstd_growing(dctx, data, &mut self.scratch)?;
                let n = self.scratch.len();
                self.reserve(n, out);
                let used = self.used;
                let b = self.cur.as_mut().expect("reserved above");
                b.as_mut_slice()[used..used + n].copy_from_slice(&self.scratch);
                self.place(conn, time, order, n);
            }
            Err(_) => return Err("zstd: no valid frame header".into()),
        }
        Ok(())
    }

    /// Seal the current buffer: its messages go to `out`.
    pub fn seal(&mut self, out: &mut Vec<RawMessage>) {
        let Some(mut b) = self.cur.take() else {
            return;
        };
        b.truncate(self.used);
        let buf = Arc::new(b);
        out.extend(
            self.pending
                .drain(..)
                .map(|(conn, time, order, range)| RawMessage {
                    conn,
                    time,
                    publish: None,
                    order,
                    buf: buf.clone(),
                    range,
                }),
        );
        self.used = 0;
    }
}

/// Decompress `src` (one or more frames) into `out`, which grows as output arrives.
fn unzstd_growing(dctx: &mut DCtx<'static>, src: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let err = |c| format!("zstd: {}", zstd::zstd_safe::get_error_name(c));
    dctx.reset(ResetDirective::SessionOnly).map_err(err)?;
    out.clear();
    let mut input = InBuffer::around(src);
    loop {
        if out.capacity() - out.len() < 1 << 16 {
            if out.len() >= MESSAGE_MAX {
                return Err(format!("zstd: message larger than {MESSAGE_MAX} bytes"));
            }
            out.reserve(out.len().max(1 << 16));
        }
        let before = (input.pos(), out.len());
        let pos = out.len();
        // The output buffer sets `out`'s length as it writes.
        let hint = dctx
            .decompress_stream(&mut OutBuffer::around_pos(out, pos), &mut input)
            .map_err(err)?;
        if hint == 0 && input.pos() == src.len() {
            return Ok(());
        }
        if (input.pos(), out.len()) == before {
            return Err("zstd: truncated frame".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_messages_share_a_buffer_and_large_ones_get_their_own() {
        let pool = BufferPool::new();
        let mut p = Packer::new(pool);
        let mut out = Vec::new();
        p.push(0, 1, (0, 1), b"abc", &mut out);
        p.push(1, 2, (0, 2), b"defg", &mut out);
        let big = vec![7u8; BUF_BYTES + 10];
        p.push(0, 3, (0, 3), &big, &mut out);
        p.seal(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].data(), b"abc");
        assert_eq!(out[1].data(), b"defg");
        assert!(Arc::ptr_eq(&out[0].buf, &out[1].buf));
        assert_eq!(out[2].data(), &big[..]);
    }

    #[test]
    fn zstd_frames_with_and_without_content_size() {
        let mut p = Packer::new(BufferPool::new());
        let mut out = Vec::new();
        let text = b"hello hello hello hello".repeat(100);
        let with = zstd::bulk::compress(&text, 3).unwrap();
        p.push_zstd(0, 1, (0, 1), &with, &mut out).unwrap();
        // A streamed frame has no content size.
        let mut without = Vec::new();
        {
            let mut enc = zstd::stream::write::Encoder::new(&mut without, 3).unwrap();
            std::io::Write::write_all(&mut enc, &text).unwrap();
            enc.finish().unwrap();
        }
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&without),
            Ok(None)
        ));
        p.push_zstd(0, 2, (0, 2), &without, &mut out).unwrap();
        p.seal(&mut out);
        assert_eq!(out[0].data(), &text[..]);
        assert_eq!(out[1].data(), &text[..]);
        // Truncated and garbage frames are errors.
        assert!(p
            .push_zstd(0, 3, (0, 3), &with[..with.len() / 2], &mut out)
            .is_err());
        assert!(p
            .push_zstd(0, 3, (0, 3), &without[..without.len() / 2], &mut out)
            .is_err());
        assert!(p.push_zstd(0, 3, (0, 3), b"not zstd", &mut out).is_err());
    }
}
