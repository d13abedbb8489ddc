//! Camera features end to end: pictures go into videos and image columns unchanged (within
//! codec loss), only picked messages are decoded, and bad camera input fails with one clear
//! line.

mod common;

use std::path::Path;

use bagstream::video::{Codec, VideoSettings};
use common::*;

fn h264() -> VideoSettings {
    VideoSettings::for_codec(Codec::H264)
}

/// (width, height, encoding, pixel bytes) of a serialized sensor_msgs/Image, read by hand.
fn raw_image(msg: &[u8]) -> (u32, u32, String, Vec<u8>) {
    let mut at = 0usize;
    let u32_at = |at: &mut usize| {
        let v = u32::from_le_bytes(msg[*at..*at + 4].try_into().unwrap());
        *at += 4;
        v
    };
    at += 12; // seq, stamp
    let n = u32_at(&mut at) as usize;
    at += n; // frame_id
    let height = u32_at(&mut at);
    let width = u32_at(&mut at);
    let n = u32_at(&mut at) as usize;
    let encoding = String::from_utf8(msg[at..at + n].to_vec()).unwrap();
    at += n;
    at += 1; // is_bigendian
    let step = u32_at(&mut at);
    let n = u32_at(&mut at) as usize;
    let data = &msg[at..at + n];
    let row = width as usize * 3;
    let pixels = (0..height as usize)
        .flat_map(|y| data[y * step as usize..y * step as usize + row].to_vec())
        .collect();
    (width, height, encoding, pixels)
}

/// The payloads of one topic, in time order, read by the `rosbag` crate.
fn topic_messages(bag: &Path, topic: &str) -> Vec<Vec<u8>> {
    rosbag_crate_messages(bag)
        .unwrap()
        .into_iter()
        .filter(|(t, _, _)| t == topic)
        .map(|(_, _, d)| d)
        .collect()
}

fn info(ds: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(ds.join("meta/info.json")).unwrap()).unwrap()
}

#[test]
fn synthetic_cameras_hold_the_source_pictures() {
    let Some(shared) = shared_bags() else {
        return;
    };
    if !have_ffmpeg() {
        return;
    }
    let bag = shared.join("synthetic/ros1_none.bag");
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(fixture("shared-synthetic-cameras.yaml")).unwrap();
    let video = dir.path().join("video");
    let s = convert_video(&config, &[&bag], &video, 0.3, h264()).unwrap();
    assert_eq!(s.frames(), 19);
    assert_eq!(s.encoders, 2);
    assert!(s.encoders_peak_rss.is_some());
    assert_eq!(
        bagstream::dataset::validate::validate(&video).unwrap(),
        Vec::<String>::new()
    );
    // The same cameras stored losslessly, to compare the videos with.
    let lossless = dir.path().join("images");
    let image_config = config.replace(
        "  observation.images.cam_high:\n    topic: /cam_high/image_raw\n",
        "  observation.images.cam_high:\n    topic: /cam_high/image_raw\n    type: image\n",
    );
    let image_config = image_config.replace("    type: video\n", "    type: image\n");
    convert_with(&image_config, &[&bag], &lossless, 0.3).unwrap();
    assert_eq!(
        info(&lossless)["features"]["observation.images.cam_wrist"]["dtype"],
        "image"
    );
    let batches = read_parquet(&data_file(&lossless));

    // The raw camera's pixels are the message's bytes, exactly: frame k picks message k (the
    // camera and the grid are both at 10 Hz from the same start).
    let raw = topic_messages(&bag, "/cam_high/image_raw");
    let high = image_column(&batches, "observation.images.cam_high");
    assert_eq!(high.len(), 19);
    for (k, (w, h, px)) in high.iter().enumerate() {
        let (mw, mh, enc, want) = raw_image(&raw[k]);
        assert_eq!((enc.as_str(), *w, *h), ("rgb8", mw, mh));
        assert!(px == &want, "cam_high frame {k} differs from its message");
    }
    // Each video frame is its lossless frame within codec loss.
    for key in [
        "observation.images.cam_high",
        "observation.images.cam_wrist",
    ] {
        let shape = &info(&video)["features"][key]["shape"];
        let (h, w) = (
            shape[0].as_u64().unwrap() as u32,
            shape[1].as_u64().unwrap() as u32,
        );
        let frames = decode_video(
            &video.join(format!("videos/{key}/chunk-000/file-000.mp4")),
            w,
            h,
        );
        let exact = image_column(&batches, key);
        assert_eq!(frames.len(), exact.len(), "{key}: frames in the video");
        for (k, (f, (_, _, px))) in frames.iter().zip(&exact).enumerate() {
            let d = mean_abs_diff(f, px);
            assert!(
                d < 6.0,
                "{key} frame {k}: mean |diff| {d:.2} from the source"
            );
        }
    }
}

#[test]
fn realsense_colour_stream_as_video() {
    let Some(shared) = shared_bags() else {
        return;
    };
    if !have_ffmpeg() {
        return;
    }
    let bag = shared.join("librealsense/single_depth_color_640x480.bag");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let config = std::fs::read_to_string(fixture("shared-realsense.yaml")).unwrap();
    // h264: fast, and the same pixels as any codec would give within loss.
    let s = convert_video(&config, &[&bag], &out, 1.0, h264()).unwrap();
    assert_eq!(s.frames(), 1);
    assert_eq!(s.episodes[0].cameras[0].decoded, 1);
    let i = info(&out);
    assert_eq!(
        i["features"]["observation.images.color"]["shape"],
        serde_json::json!([480, 640, 3])
    );
    let frames = decode_video(
        &out.join("videos/observation.images.color/chunk-000/file-000.mp4"),
        640,
        480,
    );
    let msg = &topic_messages(&bag, "/device_0/sensor_1/Color_0/image/data")[0];
    let (w, h, enc, px) = raw_image(msg);
    assert_eq!((w, h, enc.as_str()), (640, 480, "rgb8"));
    let d = mean_abs_diff(&frames[0], &px);
    assert!(d < 4.0, "mean |diff| {d:.2} from the source image");
    assert_eq!(
        bagstream::dataset::validate::validate(&out).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn ros_numpy_image_is_stored_losslessly() {
    let Some(shared) = shared_bags() else {
        return;
    };
    let bag = shared.join("ros_numpy/test.bag");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let config = std::fs::read_to_string(fixture("shared-ros-numpy.yaml")).unwrap();
    let s = convert_with(&config, &[&bag], &out, 1.0).unwrap();
    assert_eq!((s.frames(), s.encoders), (1, 0));
    assert!(!out.join("videos").exists());
    let (w, h, enc, want) = raw_image(&topic_messages(&bag, "/image")[0]);
    assert_eq!((w, h, enc.as_str()), (360, 240, "rgb8"));
    let got = image_column(&read_parquet(&data_file(&out)), "observation.images.still");
    assert_eq!((got[0].0, got[0].1), (360, 240));
    assert!(
        got[0].2 == want,
        "the PNG holds other pixels than the message"
    );
    let i = info(&out);
    assert_eq!(i["features"]["observation.images.still"]["dtype"], "image");
    assert!(i["video_path"].is_null());
    assert_eq!(
        bagstream::dataset::validate::validate(&out).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn camera_config_errors_are_one_clear_line() {
    let Some(shared) = shared_bags() else {
        return;
    };
    let bag = shared.join("synthetic/ros1_none.bag");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            // 64x48 is under SVT-AV1's 64 px minimum.
            "fps: 10\ntask: t\nfeatures:\n  cam: {topic: /cam_high/image_raw}\n",
            2,
            "features.cam: 64x48 frames are too small for libsvtav1",
        ),
        (
            "fps: 10\ntask: t\nfeatures:\n  cam: {topic: /cam_high/image_raw, resize: [63, 64]}\n",
            2,
            "needs an even width and height",
        ),
    ];
    for (i, (config, code, want)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("ds{i}"));
        let e = convert_with(config, &[&bag], &out, 1.0).expect_err(config);
        let msg = e.to_string();
        assert!(msg.contains(want), "{config}: got {msg:?}");
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert_eq!(e.exit_code(), *code, "{msg}");
        assert!(!out.exists());
    }
}

/// A 1 s bag with `/cam` at 10 Hz; `size(i)` and `encoding` give message i's picture, of
/// value 20 i.
fn cam_bag(path: &Path, encoding: &str, size: impl Fn(u32) -> (u32, u32)) {
    camera_bag(path, 10, 10, encoding, |_| false, size, |i| (20 * i) as u8);
}

const CAM_CONFIG: &str = "fps: 10\ntask: t\nfeatures:\n  cam: {topic: /cam, type: image}\n";

#[test]
fn a_picture_of_another_size_needs_resize() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("sizes.bag");
    cam_bag(&bag, "rgb8", |i| if i < 5 { (64, 48) } else { (32, 24) });
    let out = dir.path().join("ds");
    let e = convert_with(CAM_CONFIG, &[&bag], &out, 0.25).expect_err("sizes differ");
    let msg = e.to_string();
    assert!(
        msg.contains("topic /cam") && msg.contains("32x24") && msg.contains("set `resize`"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 1);
    assert!(!out.exists());

    let resized = CAM_CONFIG.replace("type: image}", "type: image, resize: [16, 12]}");
    convert_with(&resized, &[&bag], &out, 0.25).unwrap();
    let frames = image_column(&read_parquet(&data_file(&out)), "cam");
    assert_eq!(frames.len(), 10);
    for (k, (w, h, px)) in frames.iter().enumerate() {
        assert_eq!((*w, *h), (16, 12));
        // A flat picture stays flat through the resize: value 20k on every channel.
        assert!(px.iter().all(|v| *v == (20 * k) as u8), "frame {k}");
    }
}

#[test]
fn an_unsupported_encoding_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("yuv.bag");
    cam_bag(&bag, "yuv422", |_| (8, 8));
    let out = dir.path().join("ds");
    let e = convert_with(CAM_CONFIG, &[&bag], &out, 1.0).expect_err("yuv422");
    let msg = e.to_string();
    assert!(
        msg.contains("features.cam") && msg.contains("/cam") && msg.contains("`yuv422`"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 2);
    assert!(!out.exists());
}

#[test]
fn mono_pictures_become_grey_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("mono.bag");
    cam_bag(&bag, "mono8", |_| (8, 6));
    let out = dir.path().join("ds");
    convert_with(CAM_CONFIG, &[&bag], &out, 1.0).unwrap();
    let frames = image_column(&read_parquet(&data_file(&out)), "cam");
    assert_eq!(frames.len(), 10);
    assert!(frames[3].2.iter().all(|v| *v == 60));
}

/// The fixture episode's camera twice: the raw topic and the JPEG topic, as `kind`.
fn fixture_cameras(kind: &str) -> String {
    format!(
        "fps: 10\ntask: t\ntimeline: {{main: /joint_states}}\nfeatures:\n  \
         observation.state: {{topic: /joint_states, field: position}}\n  \
         raw: {{topic: /camera/image_raw, type: {kind}}}\n  \
         jpeg: {{topic: /camera/image_raw/compressed, type: {kind}}}\n"
    )
}

/// Frame k of the fixture's 10 fps dataset picks camera message 3k (the camera runs at 30 Hz
/// from the same start, so message 3k lies on tick k).
const PICK_EVERY: u32 = 3;

#[test]
fn only_picked_camera_messages_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let s = convert_with(
        &fixture_cameras("image"),
        &[fixture("teleop_lz4.bag")],
        &out,
        0.2,
    )
    .unwrap();
    let e = &s.episodes[0];
    assert_eq!(e.frames, 30);
    assert_eq!(e.cameras.len(), 2);
    for c in &e.cameras {
        // 90 messages in the bag, a few past the grid's ends are read; one decode per frame.
        assert!(c.messages >= 88, "{c:?}");
        assert_eq!(
            c.decoded, e.frames,
            "{c:?}: only picked messages are decoded"
        );
    }
}

#[test]
fn image_features_are_the_source_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    convert_with(
        &fixture_cameras("image"),
        &[fixture("teleop_bz2.bag")],
        &out,
        1.0,
    )
    .unwrap();
    let b = read_parquet(&data_file(&out));
    let raw = image_column(&b, "raw");
    let jpeg = image_column(&b, "jpeg");
    assert_eq!((raw.len(), jpeg.len()), (30, 30));
    for k in 0..30u32 {
        let want = bagstream::synth::camera_rgb(PICK_EVERY * k, 96, 64);
        let (w, h, px) = &raw[k as usize];
        assert_eq!((*w, *h), (96, 64));
        assert!(
            px == &want,
            "raw frame {k}: PNG pixels differ from the message"
        );
        let d = mean_abs_diff(&jpeg[k as usize].2, &want);
        assert!(d < 3.0, "jpeg frame {k}: mean |diff| {d:.2}");
    }
}

#[test]
fn raw_and_compressed_topics_give_the_same_video_frames() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    // The default codec, lerobot's AV1.
    let s = convert_with(
        &fixture_cameras("video"),
        &[fixture("teleop_lz4.bag")],
        &out,
        0.5,
    )
    .unwrap();
    assert_eq!(s.encoders, 2);
    let decode = |key: &str| {
        decode_video(
            &out.join(format!("videos/{key}/chunk-000/file-000.mp4")),
            96,
            64,
        )
    };
    let (raw, jpeg) = (decode("raw"), decode("jpeg"));
    assert_eq!((raw.len(), jpeg.len()), (30, 30), "one video frame per row");
    for k in 0..30u32 {
        let seq = PICK_EVERY * k;
        let want = bagstream::synth::camera_rgb(seq, 96, 64);
        let d = mean_abs_diff(&raw[k as usize], &want);
        assert!(
            d < 4.0,
            "raw video frame {k}: mean |diff| {d:.2} from message {seq}"
        );
        let j = mean_abs_diff(&raw[k as usize], &jpeg[k as usize]);
        assert!(j < 4.0, "frame {k}: raw and jpeg videos differ by {j:.2}");
        // It is that message's picture, not a neighbour's.
        for other in seq.saturating_sub(6)..=seq + 6 {
            if other == seq {
                continue;
            }
            let o = mean_abs_diff(
                &raw[k as usize],
                &bagstream::synth::camera_rgb(other, 96, 64),
            );
            assert!(
                o > d,
                "frame {k} looks more like message {other} than {seq}"
            );
        }
    }
    assert_eq!(
        bagstream::dataset::validate::validate(&out).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_corrupt_picture_is_a_conversion_failure_naming_the_topic() {
    use bagstream::bag::ros1::write::{BagWriter, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("corrupt.bag");
    let ty = bagstream::synth::COMPRESSED_IMAGE;
    let mut w = BagWriter::create(&bag, WriteOptions::default()).unwrap();
    let c = w.add_connection(
        "/cam/compressed",
        ty.datatype,
        ty.md5sum,
        ty.definition,
        None,
        false,
    );
    for i in 0..10i64 {
        let mut s = bagstream::synth::Ser::default();
        s.header(0, 0, "cam").string("rgb8; jpeg compressed bgr8");
        // A JPEG start marker and then garbage: a recorder that died mid-write.
        let data: Vec<u8> = [0xFF, 0xD8, 0xFF].into_iter().chain([7u8; 40]).collect();
        s.u32(data.len() as u32);
        s.0.extend(data);
        w.write(c, 1_000_000_000_000 + i * 100_000_000, &s.0)
            .unwrap();
    }
    w.finish().unwrap();
    let out = dir.path().join("ds");
    let config = "fps: 10\ntask: t\nfeatures:\n  cam: {topic: /cam/compressed, type: image}\n";
    let e = convert_with(config, &[&bag], &out, 1.0).expect_err("corrupt jpeg");
    let msg = e.to_string();
    assert!(
        msg.contains("corrupt.bag") && msg.contains("topic /cam/compressed"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 1, "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(!out.exists());
}
