//! SIGINT and SIGTERM as a flag the conversion polls: the handler only records the signal, and
//! every stage that can wait (channel sends and receives, writes to ffmpeg) looks at the flag
//! at least every [`POLL`], then stops with [`crate::Error::Interrupted`]. The writer's
//! temporary directory and the encoders go away as the stack unwinds, so the output is as it
//! was before the run.
//!
//! The handler is installed with `SA_RESETHAND`: a second signal takes the default action
//! (the process dies at once; a later run removes the temporary directory it leaves).

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// How long a waiting stage goes without looking at the flag, at most.
pub const POLL: Duration = Duration::from_millis(50);

/// The signal received, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Installs the handlers for SIGINT and SIGTERM (the CLI does, once, at start).
pub fn install() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain data, for which all-zero bytes are valid; the handler only
        // stores into an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SA_RESTART: a signal must not turn reads and writes elsewhere into EINTR errors.
            action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The signal received since the start, if any.
pub fn pending() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `Err(Interrupted)` once a signal was received.
pub fn check() -> crate::Result<()> {
    match pending() {
        Some(s) => Err(crate::Error::Interrupted(s)),
        None => Ok(()),
    }
}

/// The error to report for `e`: the interruption, when a signal came. Ctrl-C on a terminal
/// also reaches the ffmpeg children (same process group), which may die and fail a write a
/// moment before this process's own handler runs; an encoder failure therefore waits a little
/// for the signal before it is taken as an encoder failure.
pub fn or_interrupted(e: crate::Error) -> crate::Error {
    if matches!(e, crate::Error::Interrupted(_)) {
        return e;
    }
    let encoder = matches!(
        e,
        crate::Error::Dataset(crate::dataset::DatasetError::Video(_))
    );
    if encoder && pending().is_none() {
        std::thread::sleep(POLL * 2);
    }
    match pending() {
        Some(s) => crate::Error::Interrupted(s),
        None => e,
    }
}

/// `SIGINT`, `SIGTERM` or `signal N`.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}
