//! Camera output: an `ffmpeg` child that turns raw RGB frames into MP4 ([`VideoEncoder`]), the
//! encoder settings lerobot records in `info.json` ([`VideoSettings`]), and per-channel
//! camera statistics computed while frames stream past ([`ImageStats`]).
//!
//! ffmpeg is a separate process so that neither it nor the converter holds more than the few
//! frames in flight in the pipe; its peak memory is reported on its own.

mod encoder;
mod stats;

#[cfg(test)]
mod tests;

pub use encoder::{count_frames, keep_first_frames, running_encoders, EncodedVideo, VideoEncoder};
pub use stats::{
    downsample_step, image_stats_from_json, image_stats_json, sample_indices, ImageStats,
};

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Value};

/// Environment variable naming the ffmpeg binary to use instead of the one on `PATH`.
pub const FFMPEG_ENV: &str = "BAGSTREAM_FFMPEG";

/// The video codecs lerobot loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Av1,
    H264,
    Hevc,
}

impl Codec {
    /// The ffmpeg encoder that produces this codec.
    pub fn encoder(self) -> &'static str {
        match self {
            Codec::Av1 => "libsvtav1",
            Codec::H264 => "libx264",
            Codec::Hevc => "libx265",
        }
    }

    /// ffmpeg's canonical codec name, which lerobot stores as `video.codec`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Av1 => "av1",
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = VideoError;

    fn from_str(s: &str) -> Result<Codec, VideoError> {
        match s {
            "av1" => Ok(Codec::Av1),
            "h264" => Ok(Codec::H264),
            "hevc" => Ok(Codec::Hevc),
            other => Err(VideoError::Unsupported(format!(
                "unknown video codec `{other}`: expected av1, h264 or hevc"
            ))),
        }
    }
}

/// How videos are encoded. `Default` is lerobot 0.6.1's `VideoEncoderConfig()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    pub codec: Codec,
    /// Constant rate factor: lower is better quality and larger files.
    pub crf: u32,
    /// Encoder speed preset (SVT-AV1: 0..=13; x264/x265: `ultrafast`..`placebo`); `None`
    /// leaves the encoder's default, as lerobot does for h264 and hevc.
    pub preset: Option<String>,
    /// GOP size: a keyframe every `g` frames, so random access decodes at most `g` frames.
    pub g: u32,
    pub pix_fmt: String,
}

impl Default for VideoSettings {
    fn default() -> Self {
        VideoSettings::for_codec(Codec::Av1)
    }
}

impl VideoSettings {
    /// lerobot's defaults for `codec`: crf 30, g 2, yuv420p, and SVT-AV1 preset 12.
    pub fn for_codec(codec: Codec) -> VideoSettings {
        VideoSettings {
            codec,
            crf: 30,
            preset: (codec == Codec::Av1).then(|| "12".to_string()),
            g: 2,
            pix_fmt: "yuv420p".to_string(),
        }
    }

    /// Refuses frame sizes the encoder would reject, with the reason and what to do, before
    /// any ffmpeg is started.
    pub fn check_size(&self, width: u32, height: u32) -> Result<(), VideoError> {
        if width == 0 || height == 0 {
            return Err(VideoError::Unsupported(format!(
                "cannot encode {width}x{height} frames"
            )));
        }
        if self.pix_fmt == "yuv420p" && (width % 2 == 1 || height % 2 == 1) {
            return Err(VideoError::Unsupported(format!(
                "{width}x{height} frames cannot be encoded as yuv420p, which needs an even \
                 width and height: set `resize` to an even size"
            )));
        }
        if self.codec == Codec::Av1 && (width < 64 || height < 64) {
            return Err(VideoError::Unsupported(format!(
                "{width}x{height} frames are too small for libsvtav1 (SVT-AV1 1.4 refuses \
                 frames under 64 pixels wide or high): use --vcodec h264, or `resize`"
            )));
        }
        Ok(())
    }

    /// The encoder options after `-c:v <encoder>`, as lerobot's `get_codec_options` sets them.
    pub(crate) fn codec_args(&self) -> Vec<String> {
        let mut args = vec![
            "-c:v".to_string(),
            self.codec.encoder().to_string(),
            "-g".to_string(),
            self.g.to_string(),
            "-crf".to_string(),
            self.crf.to_string(),
        ];
        if let Some(preset) = &self.preset {
            args.extend(["-preset".to_string(), preset.clone()]);
        }
        match self.codec {
            Codec::Av1 => args.extend(["-svtav1-params".into(), "fast-decode=0".into()]),
            // B-frames reorder frames, which puts decode order and pts apart; no B-frames
            // keeps every packet's pts = dts = frame index / fps.
            Codec::H264 => args.extend(["-bf".into(), "0".into()]),
            Codec::Hevc => args.extend(["-x265-params".into(), "bframes=0:log-level=error".into()]),
        }
        args.extend(["-pix_fmt".to_string(), self.pix_fmt.clone()]);
        args
    }

    /// A video feature's `info` block in `meta/info.json`, with the keys lerobot 0.6.1's
    /// `get_video_info` writes for its own encoder config.
    pub fn info_json(&self, width: u32, height: u32, fps: u32) -> Value {
        let preset = match &self.preset {
            None => Value::Null,
            Some(p) => p
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(p.as_str())),
        };
        json!({
            "video.height": height,
            "video.width": width,
            "video.codec": self.codec.name(),
            "video.pix_fmt": self.pix_fmt,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": false,
            "video.g": self.g,
            "video.crf": self.crf,
            "video.preset": preset,
            "video.fast_decode": 0,
            "video.extra_options": {},
            "is_depth_map": false,
        })
    }
}

/// The time of frame `frames` of a file at `fps`: an episode starting after `frames` earlier
/// frames has this `from_timestamp`, and `timestamp(from + len)` is its `to_timestamp`.
pub fn timestamp(frames: u64, fps: u32) -> f64 {
    frames as f64 / f64::from(fps)
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// No ffmpeg to run.
    #[error("{0}")]
    NotFound(String),
    /// Settings or a frame size the encoder cannot take.
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: frame {frame} has {got} bytes, expected {expected} ({width}x{height} rgb24)")]
    FrameSize {
        path: PathBuf,
        frame: u64,
        got: usize,
        expected: usize,
        width: u32,
        height: u32,
    },
    /// ffmpeg failed; `stderr` holds its last lines.
    #[error("{path}: ffmpeg {detail}{}", quote_lines(.stderr))]
    Ffmpeg {
        path: PathBuf,
        detail: String,
        stderr: Vec<String>,
    },
    #[error("{path}: the video holds {found} frames, but {expected} were written")]
    FrameCount {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn quote_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return " (it printed nothing)".to_string();
    }
    let mut s = "; its last lines:".to_string();
    for l in lines {
        s.push_str("\n  | ");
        s.push_str(l);
    }
    s
}

impl From<VideoError> for crate::Error {
    fn from(e: VideoError) -> Self {
        match e {
            VideoError::Unsupported(_) => crate::Error::Usage(e.to_string()),
            _ => crate::Error::Conversion(e.to_string()),
        }
    }
}

/// The ffmpeg to run: `$BAGSTREAM_FFMPEG` if set, else `ffmpeg` on `PATH`.
pub fn find_ffmpeg() -> Result<PathBuf, VideoError> {
    find_ffmpeg_in(std::env::var_os(FFMPEG_ENV), std::env::var_os("PATH"))
}

/// [`find_ffmpeg`] with the environment passed in, so tests need not change the process's.
pub(crate) fn find_ffmpeg_in(
    var: Option<OsString>,
    path: Option<OsString>,
) -> Result<PathBuf, VideoError> {
    const INSTALL: &str = "install it (Debian/Ubuntu: apt-get install ffmpeg) or set \
                           BAGSTREAM_FFMPEG to its path";
    if let Some(var) = var.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(var);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(VideoError::NotFound(format!(
                "{FFMPEG_ENV}={} is not an executable file: point it at ffmpeg, or unset it \
                 to use the ffmpeg on PATH",
                p.display()
            )))
        };
    }
    find_on_path("ffmpeg", path.as_deref()).ok_or_else(|| {
        VideoError::NotFound(format!(
            "ffmpeg is needed to write video features and is not on PATH: {INSTALL}"
        ))
    })
}

pub(crate) fn find_on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}
