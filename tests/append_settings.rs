//! `--append` keeps what the dataset is: its videos' encoder settings are taken from its
//! info.json unless given; a given setting that differs is refused (exit 2, both values
//! named, the dataset untouched); the old features' info blocks are never rewritten.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const CAMERA: &str = "observation.images.camera";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `bagstream convert -q --config fixtures/teleop.yaml --out OUT EXTRA.. BAG`.
fn convert(out: &Path, extra: &[&str], bag: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagstream"))
        .args(["convert", "-q", "--config"])
        .arg(fixture("teleop.yaml"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .arg(fixture(bag))
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn info(ds: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(ds.join("meta/info.json")).unwrap()).unwrap()
}

/// The text of one feature's entry in info.json, as written (4-space indent, so the entry
/// ends at the first line that closes it at its own depth).
fn feature_text(ds: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(ds.join("meta/info.json")).unwrap();
    let open = format!("        \"{key}\": {{\n");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no {key} in {text}"));
    let end = start + text[start..].find("\n        }").unwrap();
    text[start..end].to_string()
}

/// The codec of a video file, by ffprobe.
fn probed_codec(path: &Path) -> String {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name", "-of", "default=nw=1:nk=1"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn video_file(ds: &Path, file: u32) -> std::path::PathBuf {
    ds.join(format!("videos/{CAMERA}/chunk-000/file-{file:03}.mp4"))
}

#[test]
fn append_with_no_options_keeps_the_datasets_codec_and_crf() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (made_with, codec, crf) in [
        (&[][..], "av1", 30),
        (&["--vcodec", "h264", "--crf", "23"][..], "h264", 23),
    ] {
        let ds = dir.path().join(codec);
        ok(&convert(&ds, made_with, "teleop_lz4.bag"));
        let block = info(&ds)["features"][CAMERA]["info"].clone();
        assert_eq!(block["video.codec"], codec);
        assert_eq!(block["video.crf"], crf);
        let before = feature_text(&ds, CAMERA);
        let features = info(&ds)["features"].clone();

        ok(&convert(
            &ds,
            &["--append", "--task", "more"],
            "teleop_bz2.bag",
        ));
        assert_eq!(info(&ds)["total_episodes"], 2);
        // The old episodes' info block, byte for byte, and every other feature's.
        assert_eq!(feature_text(&ds, CAMERA), before, "{codec}");
        assert_eq!(info(&ds)["features"], features, "{codec}");
        // The new episode's file is encoded as the block says.
        assert_eq!(probed_codec(&video_file(&ds, 1)), codec);
        assert_eq!(probed_codec(&video_file(&ds, 0)), codec);
        if codec == "h264" {
            // x264 writes its settings into the stream.
            let bytes = std::fs::read(video_file(&ds, 1)).unwrap();
            let want = format!("crf={crf}.0");
            assert!(
                bytes.windows(want.len()).any(|w| w == want.as_bytes()),
                "{want} not in the new h264 file"
            );
        }
        let o = Command::new(env!("CARGO_BIN_EXE_bagstream"))
            .arg("validate")
            .arg(&ds)
            .output()
            .unwrap();
        ok(&o);
    }
}

#[test]
fn a_given_setting_that_differs_is_refused_and_the_dataset_untouched() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    ok(&convert(&ds, &[], "teleop_lz4.bag"));
    let before = dataset_files(&ds);
    for (extra, wants) in [
        (&["--crf", "20"][..], &["--crf 20", "crf 30"][..]),
        (&["--vcodec", "h264"][..], &["--vcodec h264", "av1"][..]),
        (
            &["--vcodec", "av1", "--crf", "31"][..],
            &["--crf 31", "crf 30"][..],
        ),
    ] {
        let args: Vec<&str> = ["--append"].iter().chain(extra).copied().collect();
        let o = convert(&ds, &args, "teleop_bz2.bag");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(p(&ds)), "{extra:?}: {err}");
        assert!(err.contains("--append keeps"), "{extra:?}: {err}");
        for want in wants {
            assert!(err.contains(want), "{extra:?}: {want:?} missing in {err}");
        }
        assert!(
            dataset_files(&ds) == before,
            "{extra:?} changed the dataset"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{extra:?} left a temporary"
        );
    }
    // The same settings, given: appended, the block as it was.
    let block = feature_text(&ds, CAMERA);
    ok(&convert(
        &ds,
        &["--append", "--vcodec", "av1", "--crf", "30"],
        "teleop_bz2.bag",
    ));
    assert_eq!(info(&ds)["total_episodes"], 2);
    assert_eq!(feature_text(&ds, CAMERA), block);
}

#[test]
fn a_dataset_whose_info_lacks_a_setting_still_appends() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    ok(&convert(&ds, &["--vcodec", "h264"], "teleop_lz4.bag"));
    // As a writer that did not record crf, g or the preset would have left it (the lines
    // removed from the text, so that the key order stays as written).
    let path = ds.join("meta/info.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !["\"video.crf\"", "\"video.g\"", "\"video.preset\""]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    assert_eq!(kept.len(), text.lines().count() - 3);
    std::fs::write(&path, kept.join("\n")).unwrap();
    assert!(info(&ds)["features"][CAMERA]["info"]
        .get("video.crf")
        .is_none());
    let features = info(&ds)["features"].clone();
    // No option: the codec from the block, the defaults for the rest.
    ok(&convert(&ds, &["--append"], "teleop_bz2.bag"));
    // A setting the block lacks can be given.
    ok(&convert(
        &ds,
        &["--append", "--crf", "25"],
        "teleop_none.bag",
    ));
    assert_eq!(info(&ds)["total_episodes"], 3);
    assert_eq!(info(&ds)["features"], features, "the block was rewritten");
    assert_eq!(probed_codec(&video_file(&ds, 2)), "h264");
    let bytes = std::fs::read(video_file(&ds, 2)).unwrap();
    assert!(bytes.windows(8).any(|w| w == b"crf=25.0"));
}
