//! Tests that need the shared test material (`../shared`) skip when it is absent. cargo's
//! summary would count them as passed, so each skip is also recorded as a file in
//! `<target>/<profile>/skipped-tests/` (or `$BAGSTREAM_SKIPPED`), which `make test` counts and
//! lists after the run.
//!
//! Compiled into the library's unit tests (`#[cfg(test)]`) and, by `#[path]`, into the
//! integration tests' `common` module: one definition for both.

use std::path::{Path, PathBuf};

/// The environment variable naming the shared test material instead of `../shared` (relative
/// paths are from the repository root); `make test` sets it from `SHARED`.
pub const SHARED_ENV: &str = "BAGSTREAM_SHARED";

/// The environment variable naming the directory skips are recorded in (see [`skip_dir`]).
pub const SKIPPED_ENV: &str = "BAGSTREAM_SKIPPED";

/// The shared test material: `$BAGSTREAM_SHARED`, else `../shared` beside the repository.
pub fn shared_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os(SHARED_ENV) {
        Some(p) if !p.is_empty() => root.join(p),
        _ => root.join("../shared"),
    }
}

/// `shared_dir()/bags`, or None, the calling test recorded as skipped.
pub fn shared_bags() -> Option<PathBuf> {
    let p = shared_dir().join("bags");
    if p.is_dir() {
        Some(p)
    } else {
        skip(&format!("{} is absent", p.display()));
        None
    }
}

/// Records the running test as skipped, and why: a line on stderr and a file in
/// [`skip_dir`].
pub fn skip(why: &str) {
    // libtest runs every test on a thread named after it.
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_string();
    eprintln!("skipped: {test}: {why}");
    let Some(dir) = skip_dir() else { return };
    let binary = std::env::current_exe()
        .ok()
        .and_then(|e| e.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            Some((name, _hash)) => name.to_string(),
            None => s,
        })
        .unwrap_or_default();
    let name = format!("{binary}::{test}");
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Best effort: a skip that cannot be recorded is still on stderr.
    let _ = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join(file), format!("{name}: {why}\n")));
}

/// Where skips are recorded: `$BAGSTREAM_SKIPPED`, else `<target>/<profile>/skipped-tests`
/// (test binaries run from `<target>/<profile>/deps`).
pub fn skip_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(SKIPPED_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("skipped-tests"))
}
