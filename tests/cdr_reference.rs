//! CDR decoding against reference vectors written by the independent Python `rosbags` package
//! (tests/reference/make_cdr_vectors.py wrote tests/reference/cdr_vectors.json): every field
//! path of every vector decodes to rosbags' value, little- and big-endian; cut or lied-about
//! copies give errors or the same values, never a panic or a wrong value.

use bagstream::camera::{ImageDecoder, RgbImage};
use bagstream::msg::{
    DefinitionStore, Encoding, Extractor, FieldPath, Origin, Schema, StampReader, StringReader,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Vector {
    label: String,
    #[serde(rename = "type")]
    datatype: String,
    encoding: String,
    big_endian: bool,
    definition: String,
    hex: String,
    fields: Vec<Entry>,
    stamp_ns: Option<i64>,
}

#[derive(Deserialize)]
struct Entry {
    path: String,
    kind: String,
    #[serde(default)]
    values: Vec<Value>,
    value: Option<String>,
    #[serde(default)]
    array: bool,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("reference/cdr_vectors.json");
    serde_json::from_str(text).expect("cdr_vectors.json")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A JSON number as the decoder gives it: integers cast straight to f32 (through f64 would
/// round twice), floats from f64.
fn as_f32(v: &Value) -> f32 {
    if let Some(u) = v.as_u64() {
        u as f32
    } else if let Some(i) = v.as_i64() {
        i as f32
    } else {
        v.as_f64().expect("a number") as f32
    }
}

fn extractor(s: &Schema, path: &str) -> Extractor {
    Extractor::with_encoding(s, &FieldPath::parse(path).unwrap(), None, Encoding::Cdr)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Case {
    label: String,
    schema: Schema,
    data: Vec<u8>,
    numbers: Vec<(Extractor, Vec<f32>)>,
}

fn cases() -> Vec<Case> {
    vectors()
        .into_iter()
        .map(|v| {
            assert_eq!(v.encoding, "cdr");
            let data = unhex(&v.hex);
            assert_eq!(data[1], !v.big_endian as u8, "{}", v.label);
            let schema = Schema::parse_ros2(&v.datatype, &v.definition)
                .unwrap_or_else(|e| panic!("{}: {e}", v.label));
            let numbers = v
                .fields
                .iter()
                .filter(|f| f.kind == "num")
                .map(|f| {
                    (
                        extractor(&schema, &f.path),
                        f.values.iter().map(as_f32).collect(),
                    )
                })
                .collect();
            Case {
                label: format!("{} ({})", v.label, if v.big_endian { "BE" } else { "LE" }),
                schema,
                data,
                numbers,
            }
        })
        .collect()
}

#[test]
fn every_field_path_decodes_to_the_rosbags_value() {
    let mut checked = 0;
    let mut orders = [0, 0];
    for v in vectors() {
        let label = format!("{} (big-endian {})", v.label, v.big_endian);
        orders[v.big_endian as usize] += 1;
        let data = unhex(&v.hex);
        // The definition store takes the storage's text as it is.
        let resolved = DefinitionStore::default()
            .resolve(&v.datatype, "ros2msg", &v.definition)
            .unwrap();
        assert_eq!(resolved.origin, Origin::Storage);
        let s = resolved.schema;
        assert_eq!(s, Schema::parse_ros2(&v.datatype, &v.definition).unwrap());
        for f in &v.fields {
            let fp = FieldPath::parse(&f.path).unwrap();
            match f.kind.as_str() {
                "num" => {
                    let want: Vec<f32> = f.values.iter().map(as_f32).collect();
                    let e = extractor(&s, &f.path);
                    let mut got = Vec::new();
                    e.extract(&data, &mut got)
                        .unwrap_or_else(|err| panic!("{label}: {}: {err}", f.path));
                    assert_eq!(got, want, "{label}: {}", f.path);
                    assert_eq!(e.names(&data).unwrap().len(), want.len(), "{}", f.path);
                    if f.array && want.len() >= 2 {
                        let e = extractor(&s, &format!("{}[1:]", f.path));
                        let mut got = Vec::new();
                        e.extract(&data, &mut got).unwrap();
                        assert_eq!(got, want[1..], "{label}: {}[1:]", f.path);
                        let e = extractor(&s, &format!("{}[{}]", f.path, want.len() - 1));
                        let mut got = Vec::new();
                        e.extract(&data, &mut got).unwrap();
                        assert_eq!(got, want[want.len() - 1..], "{label}: {} last", f.path);
                    }
                }
                // A string reader walks scalar fields only.
                "str" if f.path.contains('[') => continue,
                "str" => {
                    let r = StringReader::with_encoding(&s, &fp, Encoding::Cdr)
                        .unwrap_or_else(|e| panic!("{label}: {}: {e}", f.path));
                    let want = f.value.as_deref().unwrap();
                    assert_eq!(r.read(&data).unwrap(), want.as_bytes(), "{}", f.path);
                }
                "strs" if f.path == "name" => {
                    // JointState: the names of `position` come from this sibling array.
                    let want: Vec<String> = f
                        .values
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect();
                    let e = extractor(&s, "position");
                    let mut names = e.names(&data).unwrap();
                    names.truncate(want.len());
                    assert_eq!(names, want, "{label}");
                    let joints = vec![want[2].clone(), want[0].clone()];
                    let e = Extractor::with_encoding(
                        &s,
                        &FieldPath::parse("position").unwrap(),
                        Some(&joints),
                        Encoding::Cdr,
                    )
                    .unwrap();
                    let mut got = Vec::new();
                    e.extract(&data, &mut got).unwrap();
                    let pos = v.fields.iter().find(|f| f.path == "position").unwrap();
                    let pos: Vec<f32> = pos.values.iter().map(as_f32).collect();
                    assert_eq!(got, [pos[2], pos[0]], "{label}: joints by name");
                }
                "strs" => continue,
                k => panic!("kind {k}"),
            }
            checked += 1;
        }
        if let Some(ns) = v.stamp_ns {
            let r = StampReader::with_encoding(&s, Encoding::Cdr).unwrap();
            assert_eq!(r.read(&data).unwrap(), ns, "{label}: header.stamp");
        }
    }
    assert!(checked > 250, "{checked} paths checked");
    assert!(orders[0] > 0 && orders[1] > 0, "both byte orders");
}

#[test]
fn images_from_rosbags_decode_to_their_pixels() {
    for v in vectors() {
        if !v.datatype.starts_with("sensor_msgs/msg/") || !v.datatype.contains("Image") {
            continue;
        }
        let s = Schema::parse_ros2(&v.datatype, &v.definition).unwrap();
        let d = ImageDecoder::with_encoding(&v.datatype, &s, Encoding::Cdr).unwrap();
        let data = unhex(&v.hex);
        let mut img = RgbImage::new();
        let pixels = v.fields.iter().find(|f| f.path == "data").unwrap();
        let pixels: Vec<u8> = pixels
            .values
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect();
        if v.datatype.ends_with("/Image") {
            d.decode(&data, &mut img).unwrap();
            assert_eq!((img.width, img.height), (3, 2));
            assert_eq!(img.data, pixels, "rgb8 with step 9: the data as it is");
        } else {
            // Four bytes that only look like a JPEG: decoding fails with the codec's words.
            let err = d.decode(&data, &mut img).unwrap_err();
            assert!(err.to_string().contains("JPEG"), "{err}");
        }
    }
}

/// Every prefix of every vector: an error, or (the field lies before the cut) the values.
#[test]
fn cut_vectors_give_errors_or_the_same_values() {
    for c in cases() {
        for cut in 0..c.data.len() {
            for (e, want) in &c.numbers {
                let mut got = Vec::new();
                match e.extract(&c.data[..cut], &mut got) {
                    Ok(()) => assert_eq!(&got, want, "{}: {} cut {cut}", c.label, e.path()),
                    Err(_) => assert!(got.is_empty()),
                }
                let _ = e.names(&c.data[..cut]);
            }
        }
    }
}

/// Each 4-byte word (a length prefix, or not) replaced by huge values: never a panic; a
/// changed prefix before a field makes it fail or read other bytes, never read past the end.
#[test]
fn lying_words_never_panic() {
    for c in cases() {
        let stamp = StampReader::with_encoding(&c.schema, Encoding::Cdr).ok();
        for at in (4..c.data.len().saturating_sub(3)).step_by(4) {
            for lie in [
                0x7FFF_FFFFu32,
                0xFFFF_FFFF,
                0x8000_0000,
                c.data.len() as u32,
            ] {
                let mut data = c.data.clone();
                let bytes = if c.data[1] == 0 {
                    lie.to_be_bytes()
                } else {
                    lie.to_le_bytes()
                };
                data[at..at + 4].copy_from_slice(&bytes);
                for (e, _) in &c.numbers {
                    let _ = e.extract(&data, &mut Vec::new());
                    let _ = e.names(&data);
                    let _ = e.raw(&data);
                }
                if let Some(s) = &stamp {
                    let _ = s.read(&data);
                }
            }
        }
    }
}
