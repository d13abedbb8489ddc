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

    /// Refuses a crf the codec does not take.
    pub fn check_crf(&self) -> Result<(), VideoError> {
        let max = if self.codec == Codec::Av1 { 63 } else { 51 };
        if self.crf > max {
            return Err(VideoError::Unsupported(format!(
                "--crf {}: {} takes 0 to {max}",
                self.crf, self.codec
            )));
        }
        Ok(())
    }

    /// How these settings differ from those a feature's info block records, as "what the
    /// block says, what these are" (keys the block lacks are not compared); None when new
    /// files encoded with them would fit the block.
    pub fn differs_from(&self, info: &Value) -> Option<String> {
        let rec = match Recorded::read(info) {
            Ok(r) => r,
            Err(e) => return Some(e),
        };
        let show = |p: &Option<String>| p.clone().unwrap_or_else(|| "(encoder default)".into());
        if let Some(c) = rec.codec.filter(|c| *c != self.codec) {
            return Some(format!(
                "{c}, this run writes {}: pass --vcodec {c}",
                self.codec
            ));
        }
        if let Some(c) = rec.crf.filter(|c| *c != self.crf) {
            return Some(format!(
                "crf {c}, this run writes crf {}: pass --crf {c}",
                self.crf
            ));
        }
        if let Some(p) = rec.preset.filter(|p| *p != self.preset) {
            return Some(format!(
                "preset {}, this run writes preset {}",
                show(&p),
                show(&self.preset)
            ));
        }
        if let Some(g) = rec.g.filter(|g| *g != self.g) {
            return Some(format!("g {g}, this run writes g {}", self.g));
        }
        if let Some(f) = rec.pix_fmt.filter(|f| *f != self.pix_fmt) {
            return Some(format!("pix_fmt {f}, this run writes {}", self.pix_fmt));
        }
        None
    }

    /// The encoder options after `-c:v <encoder>`, as lerobot's `get_codec_options` sets them.
    #[cfg(test)]
    pub(crate) fn codec_args(&self) -> Vec<String> {
        self.codec_args_with(None)
    }

    /// The same, with the encoder's threads capped at `threads` (`--threads`): SVT-AV1's
    /// `lp`, x264's `-threads`, x265's `pools`. The pictures do not depend on it.
    pub(crate) fn codec_args_with(&self, threads: Option<usize>) -> Vec<String> {
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
            Codec::Av1 => {
                let mut params = "fast-decode=0".to_string();
                if let Some(n) = threads {
                    params.push_str(&format!(":lp={n}"));
                }
                args.extend(["-svtav1-params".into(), params]);
            }
            // B-frames reorder frames, which puts decode order and pts apart; no B-frames
            // keeps every packet's pts = dts = frame index / fps.
            Codec::H264 => {
                args.extend(["-bf".into(), "0".into()]);
                if let Some(n) = threads {
                    args.extend(["-threads".into(), n.to_string()]);
                }
            }
            Codec::Hevc => {
                let mut params = "bframes=0:log-level=error".to_string();
                if let Some(n) = threads {
                    params.push_str(&format!(":pools={n}:frame-threads={}", n.min(16)));
                }
                args.extend(["-x265-params".into(), params]);
            }
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

/// The encoder settings a run asks for. `None` is "not given": lerobot's default for a new
/// dataset, and with `--append` whatever the dataset was encoded with (its info block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoOptions {
    pub codec: Option<Codec>,
    pub crf: Option<u32>,
}

impl VideoOptions {
    /// Both settings given, as `settings` has them (its preset, g and pix_fmt must be the
    /// codec's defaults, which are what a run derives from the codec).
    pub fn given(settings: &VideoSettings) -> VideoOptions {
        VideoOptions {
            codec: Some(settings.codec),
            crf: Some(settings.crf),
        }
    }

    /// The settings of a new dataset: what is given, lerobot's defaults for the rest.
    pub fn for_new_dataset(&self) -> Result<VideoSettings, VideoError> {
        let base = VideoSettings::for_codec(self.codec.unwrap_or(Codec::Av1));
        let s = VideoSettings {
            crf: self.crf.unwrap_or(base.crf),
            ..base
        };
        s.check_crf()?;
        Ok(s)
    }

    /// The settings that continue the videos of feature `key`, whose info.json `info` block
    /// is `info`: each setting as recorded there; where the block lacks it (a dataset written
    /// before the key existed), the given option or the codec's default. A given option that
    /// differs from the recorded value is an error naming both.
    pub fn for_dataset(&self, key: &str, info: &Value) -> Result<VideoSettings, String> {
        let rec = Recorded::read(info).map_err(|e| format!("video feature `{key}`: {e}"))?;
        let codec = match (rec.codec, self.codec) {
            (Some(old), Some(new)) if old != new => {
                return Err(kept_setting("--vcodec", new, "", old))
            }
            (old, new) => old.or(new).unwrap_or(Codec::Av1),
        };
        let base = VideoSettings::for_codec(codec);
        let crf = match (rec.crf, self.crf) {
            (Some(old), Some(new)) if old != new => {
                return Err(kept_setting("--crf", new, "crf ", old))
            }
            (old, new) => old.or(new).unwrap_or(base.crf),
        };
        let s = VideoSettings {
            codec,
            crf,
            preset: rec.preset.unwrap_or(base.preset),
            g: rec.g.unwrap_or(base.g),
            pix_fmt: rec.pix_fmt.unwrap_or(base.pix_fmt),
        };
        s.check_crf().map_err(|e| e.to_string())?;
        Ok(s)
    }
}

fn kept_setting(
    flag: &str,
    given: impl fmt::Display,
    what: &str,
    old: impl fmt::Display,
) -> String {
    format!(
        "{flag} {given}: the dataset was encoded with {what}{old}; --append keeps a dataset's \
         encoder settings (leave {flag} out)"
    )
}

/// The encoder settings an info block records; `None` where it lacks the key.
#[derive(Debug, Default, PartialEq)]
struct Recorded {
    codec: Option<Codec>,
    crf: Option<u32>,
    preset: Option<Option<String>>,
    g: Option<u32>,
    pix_fmt: Option<String>,
}

impl Recorded {
    /// Refuses values this encoder cannot continue (another codec, fast decoding, extra
    /// options), as new files must match the one block that describes them all.
    fn read(info: &Value) -> Result<Recorded, String> {
        let bad = |key: &str, v: &Value, want: &str| format!("its `{key}` is {v}, not {want}");
        let uint = |key: &str| -> Result<Option<u32>, String> {
            match info.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| bad(key, v, "a whole number")),
            }
        };
        let codec = match info.get("video.codec") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse::<Codec>().map_err(|_| {
                format!("its videos are {s}, which bagstream does not encode (av1, h264 or hevc)")
            })?),
            Some(v) => return Err(bad("video.codec", v, "a codec name")),
        };
        let preset = match info.get("video.preset") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(Value::Number(n)) => Some(Some(n.to_string())),
            Some(v) => return Err(bad("video.preset", v, "a preset")),
        };
        let pix_fmt = match info.get("video.pix_fmt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(bad("video.pix_fmt", v, "a pixel format")),
        };
        if let Some(n) = uint("video.fast_decode")?.filter(|n| *n != 0) {
            return Err(format!(
                "its videos were encoded with fast_decode {n}, which bagstream does not write"
            ));
        }
        match info.get("video.extra_options") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(v) => {
                return Err(format!(
                    "its videos were encoded with extra options {v}, which bagstream does not \
                     pass"
                ))
            }
        }
        Ok(Recorded {
            codec,
            crf: uint("video.crf")?,
            preset,
            g: uint("video.g")?,
            pix_fmt,
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
