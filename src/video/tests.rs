use std::path::{Path, PathBuf};
use std::process::Command;

use super::encoder::{count_with_ffmpeg, count_with_ffprobe};
use super::*;

const W: u32 = 96;
const H: u32 = 64;
const FPS: u32 = 30;

/// The ffmpeg and ffprobe to test with, or `None` (and a message) to skip.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let ffmpeg = find_ffmpeg().ok();
    let ffprobe = find_on_path("ffprobe", std::env::var_os("PATH").as_deref());
    match (ffmpeg, ffprobe) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => {
            crate::test_skip::skip("ffmpeg and ffprobe are needed (apt-get install ffmpeg)");
            None
        }
    }
}

/// A gradient that moves 4 px per frame; `invert` makes a visibly different sequence.
fn frame(t: u32, invert: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity((W * H * 3) as usize);
    for y in 0..H {
        for x in 0..W {
            let r = ((x + 4 * t) * 2 % 256) as u8;
            let g = (y * 3 + t) as u8;
            let b = 100u8;
            if invert {
                v.extend([255 - r, 255 - g, 255 - b]);
            } else {
                v.extend([r, g, b]);
            }
        }
    }
    v
}

fn mean_abs_error(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

fn decode(ffmpeg: &Path, file: &Path) -> Vec<Vec<u8>> {
    let out = Command::new(ffmpeg)
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = (W * H * 3) as usize;
    assert_eq!(out.stdout.len() % n, 0);
    out.stdout.chunks(n).map(<[u8]>::to_vec).collect()
}

fn probe(ffprobe: &Path, file: &Path, entries: &str) -> String {
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            entries,
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn encode(ffmpeg: &Path, out: &Path, settings: &VideoSettings, frames: &[Vec<u8>]) -> EncodedVideo {
    let mut enc = VideoEncoder::spawn(ffmpeg, out, W, H, FPS, settings, None).unwrap();
    for f in frames {
        enc.write_frame(f).unwrap();
    }
    assert_eq!(enc.frames_written(), frames.len() as u64);
    enc.finish().unwrap()
}

#[test]
fn every_codec_round_trips_frames_at_constant_rate() {
    let Some((ffmpeg, ffprobe)) = tools() else {
        return;
    };
    let src: Vec<Vec<u8>> = (0..30).map(|t| frame(t, false)).collect();
    for codec in [Codec::Av1, Codec::H264, Codec::Hevc] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("file-000.mp4");
        let settings = VideoSettings::for_codec(codec);
        let video = encode(&ffmpeg, &out, &settings, &src);
        assert_eq!(video.frames, 30, "{codec}");
        assert_eq!(video.path, out);
        assert_eq!(video.bytes, std::fs::metadata(&out).unwrap().len());
        let rss = video.peak_rss.expect("wait4 reports the child's peak RSS");
        assert!(rss > 1_000_000, "{codec}: ffmpeg peak RSS {rss} bytes");
        eprintln!(
            "{codec}: {} bytes, ffmpeg peak RSS {} MB",
            video.bytes,
            rss / 1_000_000
        );
        assert_eq!(
            names_in(dir.path()),
            ["file-000.mp4"],
            "no temporary file left"
        );

        let decoded = decode(&ffmpeg, &out);
        assert_eq!(decoded.len(), 30, "{codec}");
        for (i, (d, s)) in decoded.iter().zip(&src).enumerate() {
            let err = mean_abs_error(d, s);
            assert!(err < 8.0, "{codec}: frame {i} mean abs error {err}");
            // The frame is in its place: its neighbours (8 px of red away) are further off.
            if i > 0 {
                assert!(mean_abs_error(d, &src[i - 1]) > err, "{codec}: frame {i}");
            }
        }

        let stream = probe(
            &ffprobe,
            &out,
            "stream=codec_name,width,height,pix_fmt,r_frame_rate,avg_frame_rate",
        );
        assert_eq!(
            stream.trim(),
            format!("{},96,64,yuv420p,30/1,30/1", codec.name()),
            "{codec}"
        );
        let pts = probe(&ffprobe, &out, "packet=pts_time");
        let pts: Vec<f64> = pts
            .lines()
            .map(|l| l.trim_end_matches(',').parse().unwrap())
            .collect();
        let mut sorted = pts.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted.len(), 30);
        for (i, t) in sorted.iter().enumerate() {
            assert!((t - i as f64 / 30.0).abs() < 1e-6, "{codec}: pts {i} = {t}");
        }
        assert_eq!(sorted[0], 0.0);
        // Without B-frames packets come in presentation order.
        assert_eq!(pts, sorted, "{codec}");
        assert_eq!(count_with_ffprobe(&ffprobe, &out).unwrap(), 30);
        assert_eq!(count_with_ffmpeg(&ffmpeg, &out).unwrap(), 30);
    }
}

#[test]
fn two_episodes_share_one_file() {
    let Some((ffmpeg, _)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("file-000.mp4");
    let settings = VideoSettings::for_codec(Codec::H264);
    let mut enc = VideoEncoder::spawn(&ffmpeg, &out, W, H, FPS, &settings, None).unwrap();
    let ep0: Vec<Vec<u8>> = (0..12).map(|t| frame(t, false)).collect();
    let ep1: Vec<Vec<u8>> = (0..18).map(|t| frame(t, true)).collect();
    let mut spans = Vec::new();
    for ep in [&ep0, &ep1] {
        let from = enc.frames_written();
        for f in ep {
            enc.write_frame(f).unwrap();
        }
        let to = enc.frames_written();
        spans.push((timestamp(from, enc.fps()), timestamp(to, enc.fps())));
    }
    assert_eq!(spans, [(0.0, 0.4), (0.4, 1.0)]);
    let video = enc.finish().unwrap();
    assert_eq!(video.frames, 30);

    // The frame at from_timestamp of episode 1 is that episode's first frame.
    let decoded = decode(&ffmpeg, &out);
    let first_of_ep1 = (spans[1].0 * f64::from(FPS)).round() as usize;
    assert_eq!(first_of_ep1, 12);
    assert!(mean_abs_error(&decoded[first_of_ep1], &ep1[0]) < 8.0);
    assert!(mean_abs_error(&decoded[first_of_ep1 - 1], &ep0[11]) < 8.0);
    assert!(mean_abs_error(&decoded[first_of_ep1], &ep0[11]) > 50.0);
    assert!(mean_abs_error(&decoded[29], &ep1[17]) < 8.0);
}

#[test]
fn ffmpeg_failure_quotes_its_stderr_and_leaves_nothing() {
    let Some((ffmpeg, _)) = tools() else {
        return;
    };
    // An x264 preset that does not exist: ffmpeg fails when the encoder opens.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("file-000.mp4");
    let settings = VideoSettings {
        preset: Some("bogus".into()),
        ..VideoSettings::for_codec(Codec::H264)
    };
    let mut enc = VideoEncoder::spawn(&ffmpeg, &out, W, H, FPS, &settings, None).unwrap();
    let f = frame(0, false);
    let mut err = None;
    for _ in 0..200 {
        if let Err(e) = enc.write_frame(&f) {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => {
            // Once failed, it stays failed.
            assert!(matches!(
                enc.write_frame(&f),
                Err(VideoError::Ffmpeg { .. })
            ));
            drop(enc);
            e
        }
        None => enc.finish().unwrap_err(),
    };
    let msg = err.to_string();
    eprintln!("{msg}");
    let VideoError::Ffmpeg { stderr, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("libx264") && l.contains("bogus")),
        "{msg}"
    );
    assert!(
        msg.contains("its last lines:") && msg.contains("bogus"),
        "{msg}"
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );

    // An output directory that does not exist: ffmpeg cannot open its output.
    let out = dir.path().join("missing").join("file-000.mp4");
    let mut enc = VideoEncoder::spawn(
        &ffmpeg,
        &out,
        W,
        H,
        FPS,
        &VideoSettings::for_codec(Codec::H264),
        None,
    )
    .unwrap();
    let mut result = Ok(());
    for _ in 0..200 {
        result = enc.write_frame(&f);
        if result.is_err() {
            break;
        }
    }
    let err = match result {
        Err(e) => e,
        Ok(()) => enc.finish().unwrap_err(),
    };
    eprintln!("{err}");
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn a_file_short_of_frames_is_refused() {
    let Some((ffmpeg, _)) = tools() else {
        return;
    };
    // An "ffmpeg" that drops frame 3 and exits 0, as a misbehaving encoder would.
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("ffmpeg-drops-a-frame");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nargs=(\"$@\"); last=\"${{args[-1]}}\"; unset 'args[-1]'\n\
             exec {} \"${{args[@]}}\" -vf 'select=not(eq(n\\,3))' -fps_mode passthrough \"$last\"\n",
            ffmpeg.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out_dir = dir.path().join("videos");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("file-000.mp4");
    let mut enc = VideoEncoder::spawn(
        &wrapper,
        &out,
        W,
        H,
        FPS,
        &VideoSettings::for_codec(Codec::H264),
        None,
    )
    .unwrap();
    for t in 0..10 {
        enc.write_frame(&frame(t, false)).unwrap();
    }
    let err = enc.finish().unwrap_err();
    assert!(
        matches!(
            err,
            VideoError::FrameCount {
                expected: 10,
                found: 9,
                ..
            }
        ),
        "{err}"
    );
    assert!(names_in(&out_dir).is_empty(), "{:?}", names_in(&out_dir));
}

#[test]
fn dropping_an_unfinished_encoder_removes_its_output() {
    let Some((ffmpeg, _)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("file-000.mp4");
    let mut enc = VideoEncoder::spawn(
        &ffmpeg,
        &out,
        W,
        H,
        FPS,
        &VideoSettings::for_codec(Codec::H264),
        None,
    )
    .unwrap();
    for t in 0..5 {
        enc.write_frame(&frame(t, false)).unwrap();
    }
    // A frame of the wrong size is refused without harming the stream.
    let err = enc.write_frame(&[0u8; 10]).unwrap_err();
    assert!(
        err.to_string().contains("has 10 bytes, expected 18432"),
        "{err}"
    );
    assert_eq!(enc.frames_written(), 5);
    drop(enc);
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
}

#[test]
fn missing_ffmpeg_is_a_clear_error() {
    let err = find_ffmpeg_in(Some("/nonexistent".into()), None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("BAGSTREAM_FFMPEG=/nonexistent"), "{msg}");
    assert!(matches!(err, VideoError::NotFound(_)));

    let err = find_ffmpeg_in(None, Some("/nonexistent-dir:/also-not".into())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("apt-get install ffmpeg") && msg.contains("BAGSTREAM_FFMPEG"),
        "{msg}"
    );
    assert!(find_ffmpeg_in(Some("".into()), None).is_err());

    let err = VideoEncoder::spawn(
        Path::new("/nonexistent"),
        Path::new("/tmp/x.mp4"),
        W,
        H,
        FPS,
        &VideoSettings::default(),
        None,
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().starts_with("cannot run /nonexistent"),
        "{err}"
    );

    if let Some(ffmpeg) = find_on_path("ffmpeg", std::env::var_os("PATH").as_deref()) {
        assert_eq!(
            find_ffmpeg_in(Some(ffmpeg.clone().into_os_string()), None).unwrap(),
            ffmpeg
        );
        assert_eq!(
            find_ffmpeg_in(None, std::env::var_os("PATH")).unwrap(),
            ffmpeg
        );
    }
}

#[test]
fn sizes_the_encoders_refuse_are_explained() {
    let av1 = VideoSettings::default();
    let err = av1.check_size(96, 48).unwrap_err().to_string();
    assert!(
        err.contains("libsvtav1") && err.contains("--vcodec h264"),
        "{err}"
    );
    assert!(av1.check_size(48, 64).is_err());
    assert!(av1.check_size(64, 64).is_ok());
    let h264 = VideoSettings::for_codec(Codec::H264);
    assert!(h264.check_size(16, 16).is_ok());
    let err = h264.check_size(95, 64).unwrap_err().to_string();
    assert!(err.contains("even"), "{err}");
    assert!(h264.check_size(0, 64).is_err());
    // Refused before any process starts, so even a missing ffmpeg gives this reason.
    let err = VideoEncoder::spawn(
        Path::new("/nonexistent"),
        Path::new("/tmp/x.mp4"),
        96,
        48,
        30,
        &av1,
        None,
    )
    .err()
    .unwrap();
    assert!(matches!(err, VideoError::Unsupported(_)), "{err}");
    assert!(matches!(crate::Error::from(err), crate::Error::Usage(_)));
}

#[test]
fn settings_match_lerobot() {
    let d = VideoSettings::default();
    assert_eq!(d.codec, Codec::Av1);
    assert_eq!(
        (d.crf, d.g, d.preset.as_deref(), d.pix_fmt.as_str()),
        (30, 2, Some("12"), "yuv420p")
    );
    assert_eq!(
        d.codec_args().join(" "),
        "-c:v libsvtav1 -g 2 -crf 30 -preset 12 -svtav1-params fast-decode=0 -pix_fmt yuv420p"
    );
    assert_eq!(
        VideoSettings::for_codec(Codec::H264).codec_args().join(" "),
        "-c:v libx264 -g 2 -crf 30 -bf 0 -pix_fmt yuv420p"
    );
    assert!(VideoSettings::for_codec(Codec::Hevc)
        .codec_args()
        .join(" ")
        .contains("-c:v libx265 -g 2 -crf 30 -x265-params bframes=0"));
    assert_eq!("hevc".parse::<Codec>().unwrap(), Codec::Hevc);
    assert_eq!("av1".parse::<Codec>().unwrap(), Codec::Av1);
    assert_eq!("h264".parse::<Codec>().unwrap(), Codec::H264);
    assert!("libx264".parse::<Codec>().is_err());

    // The keys and values lerobot 0.6.1's get_video_info writes for its default encoder.
    let info = d.info_json(640, 480, 30);
    assert_eq!(
        info,
        serde_json::json!({
            "video.height": 480, "video.width": 640, "video.codec": "av1",
            "video.pix_fmt": "yuv420p", "video.fps": 30, "video.channels": 3,
            "has_audio": false, "video.g": 2, "video.crf": 30, "video.preset": 12,
            "video.fast_decode": 0, "video.extra_options": {}, "is_depth_map": false,
        })
    );
    let h = VideoSettings::for_codec(Codec::H264).info_json(96, 64, 10);
    assert_eq!(h["video.codec"], "h264");
    assert_eq!(h["video.preset"], serde_json::Value::Null);
    let slow = VideoSettings {
        preset: Some("slow".into()),
        ..VideoSettings::for_codec(Codec::Hevc)
    };
    assert_eq!(slow.info_json(96, 64, 10)["video.preset"], "slow");
    assert_eq!(timestamp(45, 30), 1.5);
}

// --- camera stats ---

fn rgb_image(w: usize, h: usize, px: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| px(x, y))
        .collect()
}

#[test]
fn sample_indices_are_lerobots() {
    // Values printed by lerobot 0.6.1's `sample_indices`.
    assert!(sample_indices(0).is_empty());
    assert_eq!(sample_indices(1), [0]);
    assert_eq!(sample_indices(5), [0, 1, 2, 3, 4]);
    assert_eq!(sample_indices(100), (0..100).collect::<Vec<_>>());
    let s = sample_indices(101);
    assert_eq!(
        (s.len(), &s[..4], &s[97..]),
        (100, &[0, 1, 2, 3][..], &[98, 99, 100][..])
    );
    let s = sample_indices(1000);
    assert_eq!(
        (s.len(), &s[..4], &s[174..]),
        (177, &[0, 6, 11, 17][..], &[988, 993, 999][..])
    );
    let s = sample_indices(12345);
    assert_eq!(s.len(), 1171);
    assert_eq!(
        (&s[..4], &s[1168..]),
        (&[0, 11, 21, 32][..], &[12323, 12333, 12344][..])
    );
}

#[test]
fn downsampling_is_lerobots() {
    assert_eq!(downsample_step(299, 100), 1);
    assert_eq!(downsample_step(300, 200), 2);
    assert_eq!(downsample_step(640, 480), 4);
    assert_eq!(downsample_step(480, 640), 4);
    assert_eq!(downsample_step(1920, 1080), 12);
}

#[test]
fn constant_image_stats() {
    let img = rgb_image(8, 4, |_, _| [10, 20, 30]);
    let mut s = ImageStats::new(8, 4, 5);
    for _ in 0..5 {
        s.push(&img).unwrap();
    }
    let st = s.finish().unwrap();
    assert_eq!(st.count, 5);
    let want = [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0];
    assert_eq!(st.min, want);
    assert_eq!(st.max, want);
    assert_eq!(st.std, [0.0; 3]);
    for c in 0..3 {
        assert!((st.mean[c] - want[c]).abs() < 1e-15);
        for q in &st.quantiles {
            assert!((q[c] - want[c]).abs() < 1e-9, "{q:?}");
        }
    }
}

#[test]
fn gradient_image_stats_match_lerobot() {
    // R = 0, 85, 170, 255 along a 4x1 row; G = 255 - R; B = 7. Two frames.
    // Expected values from lerobot 0.6.1's get_feature_stats on the same frames.
    let img = rgb_image(4, 1, |x, _| {
        let r = (x * 85) as u8;
        [r, 255 - r, 7]
    });
    let mut s = ImageStats::new(4, 1, 2);
    s.push(&img).unwrap();
    s.push(&img).unwrap();
    let st = s.finish().unwrap();
    let b = 7.0 / 255.0;
    assert_eq!(st.count, 2);
    assert_eq!(st.min, [0.0, 0.0, b]);
    assert_eq!(st.max, [1.0, 1.0, b]);
    assert_eq!(st.mean, [0.5, 0.5, b]);
    let close = |got: &[f64], want: [f64; 3], tol: f64| {
        for c in 0..3 {
            assert!((got[c] - want[c]).abs() < tol, "{got:?} vs {want:?}");
        }
    };
    close(&st.std, [0.3726780116558075, 0.3726780116558075, 0.0], 1e-7);
    close(&st.quantiles[0], [0.0, 0.0, b], 1e-9);
    close(&st.quantiles[1], [0.0, 0.0, b], 1e-9);
    close(
        &st.quantiles[2],
        [0.3333999932981005, 0.3333999932981005, b],
        1e-6,
    );
    close(
        &st.quantiles[3],
        [0.9999199841069241, 0.9999199841069241, b],
        1e-6,
    );
    close(
        &st.quantiles[4],
        [0.9999919984106923, 0.9999919984106923, b],
        1e-6,
    );

    let json = image_stats_json(&st);
    assert_eq!(json["count"], serde_json::json!([2]));
    assert_eq!(json["mean"], serde_json::json!([[[0.5]], [[0.5]], [[b]]]));
    assert_eq!(json["max"], serde_json::json!([[[1.0]], [[1.0]], [[b]]]));
    assert_eq!(json.as_object().unwrap().len(), 10);
    assert_eq!(image_stats_from_json(&json).unwrap(), st);
    assert!(image_stats_from_json(&st.to_json()).is_err());
}

#[test]
fn stats_sample_and_downsample_like_lerobot() {
    // 300 px wide: every other column is kept, which here are the red ones.
    let red_even = rgb_image(
        300,
        2,
        |x, _| if x % 2 == 0 { [200, 0, 0] } else { [0, 0, 0] },
    );
    let mut s = ImageStats::new(300, 2, 1);
    s.push(&red_even).unwrap();
    let st = s.finish().unwrap();
    assert_eq!(st.count, 1);
    assert_eq!(st.min[0], 200.0 / 255.0);
    assert!((st.mean[0] - 200.0 / 255.0).abs() < 1e-15);

    // 1000 frames: 177 are sampled, and only the sampled frames count. Frame i has value
    // i % 256 in red, so the mean is that of the sampled indices.
    let plan = sample_indices(1000);
    let mut s = ImageStats::new(2, 2, 1000);
    let mut skipping = ImageStats::new(2, 2, 1000);
    for i in 0..1000u64 {
        let v = (i % 256) as u8;
        let img = rgb_image(2, 2, |_, _| [v, 0, 0]);
        s.push(&img).unwrap();
        if skipping.wants_next() {
            skipping.push(&img).unwrap();
        } else {
            skipping.skip();
        }
    }
    let st = s.finish().unwrap();
    assert_eq!(st.count, 177);
    let want = plan.iter().map(|i| (i % 256) as f64).sum::<f64>() / 177.0 / 255.0;
    assert!((st.mean[0] - want).abs() < 1e-12);
    assert_eq!(skipping.finish().unwrap(), st);
    assert_eq!(s.frames_seen(), 1000);

    assert!(ImageStats::new(2, 2, 0).finish().is_none());
    assert!(ImageStats::new(2, 2, 3).push(&[0; 5]).is_err());
}

/// Peak RSS of the encoders at a camera-like size: `cargo test --lib video -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn measure_encoder_rss() {
    let Some((ffmpeg, _)) = tools() else {
        return;
    };
    let (w, h, n) = (640u32, 480u32, 300u32);
    for codec in [Codec::Av1, Codec::H264, Codec::Hevc] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("file-000.mp4");
        let settings = VideoSettings::for_codec(codec);
        let mut enc = VideoEncoder::spawn(&ffmpeg, &out, w, h, FPS, &settings, None).unwrap();
        let mut stats = ImageStats::new(w, h, u64::from(n));
        let start = std::time::Instant::now();
        for t in 0..n {
            let img = rgb_image(w as usize, h as usize, |x, y| {
                [
                    ((x as u32 + 4 * t) % 256) as u8,
                    (y % 256) as u8,
                    ((x + y) % 256) as u8,
                ]
            });
            stats.push(&img).unwrap();
            enc.write_frame(&img).unwrap();
        }
        let v = enc.finish().unwrap();
        eprintln!(
            "{codec} {w}x{h} x{n}: {:.1} s, {} bytes, ffmpeg peak RSS {:.1} MB, stats count {}",
            start.elapsed().as_secs_f64(),
            v.bytes,
            v.peak_rss.unwrap_or(0) as f64 / 1e6,
            stats.finish().unwrap().count
        );
    }
}

#[test]
fn camera_sized_stats_match_lerobot() {
    // 150 frames of 320x240: lerobot samples 100 and keeps every 2nd row and column.
    // Expected values from lerobot 0.6.1 (sample_indices, auto_downsample_height_width,
    // get_feature_stats, / 255) on the same frames. lerobot sums 1.92M pixels in float32,
    // which puts its mean off by up to 1.6e-3 (0.50161 for red): mean and std here are
    // numpy's in float64 on lerobot's sample, the quantiles are lerobot's own.
    let (w, h) = (320usize, 240usize);
    let mut s = ImageStats::new(w as u32, h as u32, 150);
    for t in 0..150usize {
        let img = rgb_image(w, h, |x, y| {
            [
                ((x * 7 + y * 3 + t * 11) % 256) as u8,
                ((x ^ y ^ t) & 255) as u8,
                ((x * y + t) % 256) as u8,
            ]
        });
        s.push(&img).unwrap();
    }
    let st = s.finish().unwrap();
    assert_eq!(st.count, 100);
    assert_eq!(
        (st.min.as_slice(), st.max.as_slice()),
        (&[0.0; 3][..], &[1.0; 3][..])
    );
    let want: [(&[f64], [f64; 3]); 7] = [
        (
            &st.mean,
            [0.5000083660130719, 0.4973898039215686, 0.4948067973856209],
        ),
        (
            &st.std,
            [0.2898182064309605, 0.2899964843540337, 0.28928456167478195],
        ),
        (
            &st.quantiles[0],
            [
                0.007911893185384912,
                0.007905263010070296,
                0.007891186632609038,
            ],
        ),
        (
            &st.quantiles[1],
            [
                0.09811933942602302,
                0.09805263129550237,
                0.09415295867486932,
            ],
        ),
        (
            &st.quantiles[2],
            [0.5018007718194699, 0.4941622366207303, 0.49404269828979747],
        ),
        (
            &st.quantiles[3],
            [0.9018808063307934, 0.9018303834400603, 0.8981147804275519],
        ),
        (
            &st.quantiles[4],
            [0.9920880255756034, 0.9920830831070991, 0.9920625303575166],
        ),
    ];
    for (i, (got, want)) in want.iter().enumerate() {
        for c in 0..3 {
            assert!(
                (got[c] - want[c]).abs() < 1e-6,
                "stat {i} channel {c}: {got:?} vs {want:?}"
            );
        }
    }
}
