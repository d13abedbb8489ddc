//! How the process's allocator is set up: glibc's mmap threshold, held fixed.
//!
//! glibc's malloc serves blocks of 128 KiB and more with `mmap`, and gives them back to the
//! system when they are freed; but each such free raises the threshold to the freed size (up
//! to 32 MiB). After the first freed megabyte (a chunk buffer, a bz2 decoder's 3.6 MB block
//! table, a parquet page) every later block of that size comes from a heap arena instead, and
//! an arena keeps its high-water mark once small allocations sit above the freed blocks. Each
//! episode runs its stages on new threads, which spread over up to 8 arenas per core, so the
//! retained memory grew with the number of episodes and, with uncompressed chunks that pass
//! the chunk pool, with the bag's length. Measured in docs/memory.md ("Across episodes and
//! along a bag"): the threshold alone took 20 copies of the bz2 fixture from 44 MB to 21 MB, an
//! uncompressed 60 s camera bag from 107 MB to 83 MB.
//!
//! Holding the threshold at its initial value keeps large blocks in `mmap`: freed, they are
//! gone from RSS. What it costs is a page fault per 4 KiB of a large block on its first use:
//! the chunk pool (`bag/buffer.rs`) and the frame pool (`pipeline::FramePool`) reuse the
//! blocks made most often.

/// glibc's initial (and default) mmap threshold.
pub const MMAP_THRESHOLD: usize = 128 << 10;

/// Fix the mmap threshold at [`MMAP_THRESHOLD`], unless the environment sets one
/// (`MALLOC_MMAP_THRESHOLD_`, glibc's own tunable). Call once, before the threads start; the
/// CLI does. Does nothing on other C libraries.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return;
        }
        // SAFETY: mallopt only sets a malloc parameter; a bad value is refused with 0.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        }
    }
}

/// Give the allocator's free pages back to the system (glibc's `malloc_trim`): called after
/// each episode, so that what one episode's threads left free in their arenas (several
/// arenas, each holding its own free space) is not resident through the next ones. Costs a
/// walk of the free lists, well under a millisecond. Does nothing on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
