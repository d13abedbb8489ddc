//! One MP4 file written by an ffmpeg child fed raw rgb24 frames on its stdin.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{find_on_path, VideoError, VideoSettings};

/// The encoder children running now, for memory reports.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Process ids of the ffmpeg encoders running in this process.
pub fn running_encoders() -> Vec<u32> {
    RUNNING.lock().map(|v| v.clone()).unwrap_or_default()
}

fn forget_encoder(pid: u32) {
    if let Ok(mut v) = RUNNING.lock() {
        v.retain(|p| *p != pid);
    }
}

/// Lines of ffmpeg's stderr kept for error messages.
const TAIL_LINES: usize = 30;
/// Longer lines are cut: a runaway line must not grow the buffer.
const MAX_LINE_BYTES: usize = 400;

/// A finished video, renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVideo {
    pub path: PathBuf,
    /// Frames in the file, counted in the file itself.
    pub frames: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// ffmpeg's peak resident set size in bytes, where the OS reports it.
    pub peak_rss: Option<u64>,
}

/// An ffmpeg process writing one video. It stays open across episodes: lerobot concatenates
/// a camera's episodes in one file, episode `e` starting at `frames_written()` at its start.
///
/// Nothing appears at the final path until [`VideoEncoder::finish`] has checked the file;
/// dropping an unfinished encoder kills ffmpeg and removes its partial output.
pub struct VideoEncoder {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<()>>,
    tail: Arc<Mutex<StderrTail>>,
    ffmpeg: PathBuf,
    tmp_path: PathBuf,
    final_path: PathBuf,
    width: u32,
    height: u32,
    fps: u32,
    frame_bytes: usize,
    frames: u64,
}

impl VideoEncoder {
    /// Starts `ffmpeg` encoding `width`x`height` rgb24 frames at `fps` into a temporary file
    /// beside `final_path` (whose directory must exist).
    pub fn spawn(
        ffmpeg: &Path,
        final_path: &Path,
        width: u32,
        height: u32,
        fps: u32,
        settings: &VideoSettings,
        threads: Option<usize>,
    ) -> Result<VideoEncoder, VideoError> {
        settings.check_size(width, height)?;
        if fps == 0 {
            return Err(VideoError::Unsupported(
                "cannot encode video at 0 fps".into(),
            ));
        }
        let tmp_path = temp_path(final_path)?;
        let mut cmd = Command::new(ffmpeg);
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "warning",
        ])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .arg("-s")
        .arg(format!("{width}x{height}"))
        .arg("-r")
        .arg(fps.to_string())
        .args(["-i", "-", "-an"])
        .args(settings.codec_args_with(threads))
        // The temporary name has no .mp4 extension to pick the muxer from.
        .args(["-f", "mp4", "-y"])
        .arg(&tmp_path)
        // SVT-AV1 logs at info level to stderr by itself; warnings and errors are enough.
        .env("SVT_LOG", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| VideoError::Spawn {
            program: ffmpeg.to_path_buf(),
            source,
        })?;
        if let Ok(mut v) = RUNNING.lock() {
            v.push(child.id());
        }
        if let Some(stdin) = &child.stdin {
            set_nonblocking(stdin)?;
        }
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let stderr = child.stderr.take().map(|pipe| {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || drain(pipe, &tail))
        });
        Ok(VideoEncoder {
            stdin: child.stdin.take(),
            child: Some(child),
            stderr,
            tail,
            ffmpeg: ffmpeg.to_path_buf(),
            tmp_path,
            final_path: final_path.to_path_buf(),
            width,
            height,
            fps,
            frame_bytes: width as usize * height as usize * 3,
            frames: 0,
        })
    }

    /// Frames accepted so far, over all episodes.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    pub fn fps(&self) -> u32 {
        self.fps
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Bytes ffmpeg has written so far (it buffers a little): enough to decide when a file
    /// has reached `video_files_size_in_mb`.
    pub fn bytes_so_far(&self) -> u64 {
        std::fs::metadata(&self.tmp_path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Sends one `width * height * 3` byte rgb24 frame, row-major, no padding.
    pub fn write_frame(&mut self, rgb: &[u8]) -> Result<(), VideoError> {
        if rgb.len() != self.frame_bytes {
            return Err(VideoError::FrameSize {
                path: self.final_path.clone(),
                frame: self.frames,
                got: rgb.len(),
                expected: self.frame_bytes,
                width: self.width,
                height: self.height,
            });
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.ffmpeg_error("has already failed".to_string()));
        };
        if let Err(e) = write_polled(stdin, rgb) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                // A signal: no waiting for ffmpeg; dropping the encoder stops it.
                return Err(VideoError::Io {
                    path: self.final_path.clone(),
                    source: e,
                });
            }
            // ffmpeg stopped reading: it has failed and is exiting; its stderr says why.
            self.stdin = None;
            let status = self.reap().map(|(status, _)| status);
            let detail = match status {
                Ok(status) if !status.success() => {
                    format!("stopped reading frames at frame {} ({status})", self.frames)
                }
                _ => format!("stopped reading frames at frame {}: {e}", self.frames),
            };
            self.remove_temp();
            return Err(self.ffmpeg_error(detail));
        }
        self.frames += 1;
        Ok(())
    }

    /// Closes ffmpeg's input, waits for it, checks that the file holds every frame written and
    /// renames it into place.
    pub fn finish(mut self) -> Result<EncodedVideo, VideoError> {
        if self.stdin.take().is_none() {
            return Err(self.ffmpeg_error("has already failed".to_string()));
        }
        let (status, peak_rss) = match self.reap() {
            Ok(r) => r,
            Err(source) => {
                self.remove_temp();
                return Err(VideoError::Io {
                    path: self.ffmpeg.clone(),
                    source,
                });
            }
        };
        if !status.success() {
            self.remove_temp();
            return Err(self.ffmpeg_error(format!("failed ({status})")));
        }
        let found = match count_frames(&self.ffmpeg, &self.tmp_path) {
            Ok(n) => n,
            Err(e) => {
                self.remove_temp();
                return Err(e);
            }
        };
        if found != self.frames {
            self.remove_temp();
            return Err(VideoError::FrameCount {
                path: self.final_path.clone(),
                expected: self.frames,
                found,
            });
        }
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VideoError::Io { path, source }
        };
        let bytes = std::fs::metadata(&self.tmp_path)
            .map_err(io_err(&self.tmp_path))?
            .len();
        std::fs::rename(&self.tmp_path, &self.final_path).map_err(io_err(&self.final_path))?;
        Ok(EncodedVideo {
            path: self.final_path.clone(),
            frames: found,
            bytes,
            peak_rss,
        })
    }

    /// Waits for ffmpeg to exit and for its stderr to be drained.
    fn reap(&mut self) -> std::io::Result<(ExitStatus, Option<u64>)> {
        let Some(mut child) = self.child.take() else {
            return Err(std::io::Error::other("ffmpeg was already waited for"));
        };
        let r = wait_with_peak_rss(&mut child);
        forget_encoder(child.id());
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
        r
    }

    fn ffmpeg_error(&self, mut detail: String) -> VideoError {
        let stderr = self.stderr_tail();
        // The OS reason in the first line, not only among the quoted ones.
        if let Some(reason) = os_reason(&stderr) {
            detail.push_str(": ");
            detail.push_str(reason);
        }
        VideoError::Ffmpeg {
            path: self.final_path.clone(),
            detail,
            stderr,
        }
    }

    fn stderr_tail(&self) -> Vec<String> {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.lines.iter().cloned().collect()
    }

    fn remove_temp(&self) {
        let _ = std::fs::remove_file(&self.tmp_path);
    }
}

impl Drop for VideoEncoder {
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            forget_encoder(child.id());
        }
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
        self.remove_temp();
    }
}

/// Keeps the first `frames` frames of the finished video `file`, in place, by a stream copy (no
/// re-encoding): without B-frames the first packets are the first frames and each one
/// decodes from the packets before it. Returns the new size in bytes.
pub fn keep_first_frames(ffmpeg: &Path, file: &Path, frames: u64) -> Result<u64, VideoError> {
    let tmp = temp_path(file)?;
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-c", "copy", "-frames:v"])
        .arg(frames.to_string())
        .args(["-f", "mp4", "-y"])
        .arg(&tmp);
    let done = run_for_stdout(ffmpeg, &mut cmd, file).and_then(|_| {
        let found = count_frames(ffmpeg, &tmp)?;
        if found != frames {
            return Err(VideoError::FrameCount {
                path: file.to_path_buf(),
                expected: frames,
                found,
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VideoError::Io { path, source }
        };
        let bytes = std::fs::metadata(&tmp).map_err(io(&tmp))?.len();
        std::fs::rename(&tmp, file).map_err(io(file))?;
        Ok(bytes)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// ffmpeg's stdin does not block: [`write_polled`] waits for it in short steps instead.
fn set_nonblocking(stdin: &ChildStdin) -> Result<(), VideoError> {
    use std::os::unix::io::AsRawFd;
    let fd = stdin.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns; no pointers involved.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(VideoError::Io {
            path: PathBuf::from("ffmpeg stdin"),
            source: std::io::Error::last_os_error(),
        })
    }
}

/// Writes all of `buf` to ffmpeg, which may be slower than the frames come: waits for room
/// in the pipe at most [`crate::interrupt::POLL`] at a time, so that a SIGINT or SIGTERM
/// stops the write (`ErrorKind::Interrupted`) however slow ffmpeg is.
fn write_polled(stdin: &mut ChildStdin, mut buf: &[u8]) -> std::io::Result<()> {
    use std::io::ErrorKind;
    use std::os::unix::io::AsRawFd;
    while !buf.is_empty() {
        match stdin.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(s) = crate::interrupt::pending() {
                    return Err(std::io::Error::new(
                        ErrorKind::Interrupted,
                        format!("interrupted by {}", crate::interrupt::signal_name(s)),
                    ));
                }
                let mut pfd = libc::pollfd {
                    fd: stdin.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let ms = crate::interrupt::POLL.as_millis() as libc::c_int;
                // SAFETY: one live pollfd; the result only says whether to try again.
                unsafe { libc::poll(&mut pfd, 1, ms) };
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The reasons for a failed write that ffmpeg prints as the OS words them.
const OS_REASONS: [&str; 4] = [
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Permission denied",
];

/// The first OS reason in ffmpeg's last lines, if any.
fn os_reason(lines: &[String]) -> Option<&'static str> {
    OS_REASONS
        .into_iter()
        .find(|r| lines.iter().any(|l| l.contains(r)))
}

/// `.NAME.partial` beside `final_path`: same directory, so the final rename is atomic.
fn temp_path(final_path: &Path) -> Result<PathBuf, VideoError> {
    let name = final_path.file_name().ok_or_else(|| {
        VideoError::Unsupported(format!(
            "{}: a video path needs a file name",
            final_path.display()
        ))
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(".partial");
    Ok(final_path.with_file_name(tmp))
}

/// The last [`TAIL_LINES`] lines of a stream, split on `\n` and on the `\r` of progress lines.
#[derive(Debug, Default)]
struct StderrTail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl StderrTail {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.end_line();
            } else if self.partial.len() < MAX_LINE_BYTES {
                self.partial.push(b);
            }
        }
    }

    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&self.partial)
            .trim_end()
            .to_string();
        self.partial.clear();
        if line.is_empty() {
            return;
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

fn drain(mut pipe: impl Read, tail: &Mutex<StderrTail>) {
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    tail.lock().unwrap_or_else(|p| p.into_inner()).end_line();
}

/// Waits for `child` and reads its peak RSS from the kernel's accounting of it (`wait4`),
/// which, unlike sampling /proc, also sees the peak during the final flush.
#[cfg(unix)]
fn wait_with_peak_rss(child: &mut Child) -> std::io::Result<(ExitStatus, Option<u64>)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals; `pid` is our own unreaped child, as `Child`
        // has not waited for it (it was taken out of the encoder and is never waited again).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // Linux reports ru_maxrss in kilobytes.
    let peak = u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * 1024);
    Ok((ExitStatus::from_raw(status), peak.filter(|b| *b > 0)))
}

#[cfg(not(unix))]
fn wait_with_peak_rss(child: &mut Child) -> std::io::Result<(ExitStatus, Option<u64>)> {
    Ok((child.wait()?, None))
}

/// The number of video frames in `file`, counted from its packets (one per frame for the
/// codecs written here, as no B-frames are used): with `ffprobe` beside `ffmpeg` or on PATH,
/// else with ffmpeg itself copying the stream to nowhere.
pub fn count_frames(ffmpeg: &Path, file: &Path) -> Result<u64, VideoError> {
    let sibling = ffmpeg.with_file_name("ffprobe");
    let ffprobe = if sibling.is_file() {
        Some(sibling)
    } else {
        find_on_path("ffprobe", std::env::var_os("PATH").as_deref())
    };
    match ffprobe {
        Some(ffprobe) => count_with_ffprobe(&ffprobe, file),
        None => count_with_ffmpeg(ffmpeg, file),
    }
}

fn run_for_stdout(program: &Path, cmd: &mut Command, file: &Path) -> Result<String, VideoError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| VideoError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        let mut tail = StderrTail::default();
        tail.push(&out.stderr);
        tail.end_line();
        return Err(VideoError::Ffmpeg {
            path: file.to_path_buf(),
            detail: format!(
                "could not count the frames: {} failed ({})",
                program.display(),
                out.status
            ),
            stderr: tail.lines.into_iter().collect(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn count_with_ffprobe(ffprobe: &Path, file: &Path) -> Result<u64, VideoError> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(file);
    let out = run_for_stdout(ffprobe, &mut cmd, file)?;
    out.trim().parse().map_err(|_| VideoError::Ffmpeg {
        path: file.to_path_buf(),
        detail: format!(
            "could not count the frames: ffprobe printed `{}`",
            out.trim()
        ),
        stderr: Vec::new(),
    })
}

pub(crate) fn count_with_ffmpeg(ffmpeg: &Path, file: &Path) -> Result<u64, VideoError> {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ]);
    let out = run_for_stdout(ffmpeg, &mut cmd, file)?;
    // `-progress` prints key=value blocks; the last `frame=` is the total.
    out.lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| VideoError::Ffmpeg {
            path: file.to_path_buf(),
            detail: "could not count the frames: no `frame=` in ffmpeg's progress".into(),
            stderr: Vec::new(),
        })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_bounded() {
        let mut t = StderrTail::default();
        for i in 0..100 {
            t.push(format!("line {i}\n").as_bytes());
        }
        t.push(b"frame=  1\rframe=  2\r");
        t.push(&[b'x'; 10_000]);
        t.end_line();
        assert_eq!(t.lines.len(), TAIL_LINES);
        assert_eq!(t.lines[0], "line 73");
        assert_eq!(t.lines[27], "frame=  1");
        assert_eq!(t.lines[28], "frame=  2");
        assert_eq!(t.lines[29].len(), MAX_LINE_BYTES);
    }

    #[test]
    fn temp_name_is_hidden_beside_the_file() {
        let p = temp_path(Path::new("/d/videos/file-000.mp4")).unwrap();
        assert_eq!(p, Path::new("/d/videos/.file-000.mp4.partial"));
        assert!(temp_path(Path::new("/")).is_err());
    }
}
