//! Extractors: compiled field paths that read numbers out of serialized messages, in either
//! wire format ([`Encoding`]).
//!
//! Compiling a path turns the definition into flat skip programs for one wire format: runs of
//! fixed-size fields become one byte count (CDR: one per start position modulo 8), so reaching
//! the target costs one bounds check per run plus one per length-prefixed field before it.
//! Nothing is copied or allocated per message, except when the joint names of a JointState
//! change (the name-to-index map is then rebuilt).

use std::ops::Range;
use std::sync::Mutex;

use super::def::{is_ros2_time, Arity, Field, FieldType, MsgId, Primitive, Schema};
use super::path::{FieldPath, Selector};
use super::wire::{le, push_values, value, ByteOrder, Count, Cursor, Encoding, Programs, Skip};
use super::{DecodeError, MsgError};
use crate::{Time, NANOS};

/// Walking into one segment that is not the last: skip the fields before it, then pick the
/// element when it is an array.
#[derive(Debug, Clone)]
struct Step {
    before: Vec<Skip>,
    ty: FieldType,
    arity: Arity,
    label: Box<str>,
    index: Option<usize>,
}

/// Which elements of the target array to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    All,
    Index(usize),
    Range { start: usize, end: Option<usize> },
}

#[derive(Debug, Clone, Copy)]
enum TargetKind {
    Numbers(Primitive),
    Messages(MsgId),
}

/// The sibling `name[]` string array of a numeric array target (as in JointState).
#[derive(Debug, Clone)]
struct Sibling {
    name_first: bool,
    /// Fields of the final message before the first of name and target.
    before_first: Vec<Skip>,
    /// Fields strictly between the two.
    between: Vec<Skip>,
    name_count: Count,
}

#[derive(Debug, Default)]
struct JointCache {
    /// The serialized `name[]` bytes the map was built from; comparing bytes needs no decoding.
    names_raw: Vec<u8>,
    /// The byte order they were read in (CDR says it per message).
    names_big: bool,
    index: Vec<usize>,
    valid: bool,
}

/// A field path compiled against one schema and wire format.
#[derive(Debug)]
pub struct Extractor {
    path: FieldPath,
    programs: Programs,
    steps: Vec<Step>,
    before: Vec<Skip>,
    target: Field,
    target_label: Box<str>,
    kind: TargetKind,
    select: Select,
    sibling: Option<Sibling>,
    joints: Option<Vec<String>>,
    cache: Mutex<JointCache>,
}

impl Extractor {
    /// Compiles `path` for ROS1-serialized messages.
    pub fn new(
        schema: &Schema,
        path: &FieldPath,
        joints: Option<&[String]>,
    ) -> Result<Extractor, MsgError> {
        Extractor::with_encoding(schema, path, joints, Encoding::Ros1)
    }

    /// Compiles `path` for messages serialized in `encoding`.
    pub fn with_encoding(
        schema: &Schema,
        path: &FieldPath,
        joints: Option<&[String]>,
        encoding: Encoding,
    ) -> Result<Extractor, MsgError> {
        let err = |detail: String| MsgError::Path {
            path: path.to_string(),
            detail: format!("{detail} (in {})", schema.datatype()),
        };
        let programs = Programs::new(schema, encoding);
        let mut msg = Schema::ROOT;
        let mut steps = Vec::new();
        let mut walked = String::new();
        let segs = path.segments();
        let (last, inner) = segs.split_last().ok_or_else(|| err("empty path".into()))?;
        for seg in inner {
            let def = schema.message(msg);
            let (i, field) = def.field(&seg.name).ok_or_else(|| {
                err(format!(
                    "no field `{}` in {}{}; its fields: {}",
                    seg.name,
                    def.name,
                    at(&walked),
                    def.field_list()
                ))
            })?;
            let FieldType::Message(sub) = field.ty else {
                return Err(err(format!(
                    "`{}` is a {}, it has no fields",
                    joined(&walked, &seg.name),
                    field.type_text
                )));
            };
            let index = match (seg.selector, field.arity) {
                (None, Arity::Scalar) => None,
                (Some(Selector::Index(i)), Arity::Fixed(n)) if i >= n => {
                    return Err(err(format!(
                        "index {i} is out of range for `{}` ({}, {n} elements)",
                        joined(&walked, &seg.name),
                        field.type_text
                    )));
                }
                (Some(Selector::Index(i)), Arity::Fixed(_) | Arity::Variable) => Some(i),
                (None, _) => {
                    return Err(err(format!(
                        "`{}` is an array ({}); pick one element, e.g. `{}[0]`",
                        joined(&walked, &seg.name),
                        field.type_text,
                        seg.name
                    )));
                }
                (Some(_), _) => {
                    return Err(err(format!(
                        "`{}` is not an array ({}), it cannot be indexed",
                        joined(&walked, &seg.name),
                        field.type_text
                    )));
                }
            };
            steps.push(Step {
                before: programs.skip_program(&def.fields[..i]),
                ty: field.ty,
                arity: field.arity,
                label: joined(&walked, &seg.name).into(),
                index,
            });
            walked = joined(&walked, &seg.name);
            if let Some(sel) = seg.selector {
                walked.push_str(&sel.to_string());
            }
            msg = sub;
        }

        let def = schema.message(msg);
        let (ti, target) = def.field(&last.name).ok_or_else(|| {
            err(format!(
                "no field `{}` in {}{}; its fields: {}",
                last.name,
                def.name,
                at(&walked),
                def.field_list()
            ))
        })?;
        let target_label = joined(&walked, &last.name);
        let kind = match target.ty {
            FieldType::Primitive(p) if p.is_text() => {
                return Err(err(format!(
                    "`{target_label}` is a {}, not a number",
                    target.type_text
                )));
            }
            FieldType::Primitive(p) => TargetKind::Numbers(p),
            FieldType::Message(sub) => {
                if let Err(leaf) = &programs.flat[sub] {
                    return Err(err(format!(
                        "`{target_label}` ({}) is not all numbers: `{target_label}{}.{leaf}` is \
                         not numeric",
                        target.type_text,
                        if target.is_array() { "[]" } else { "" }
                    )));
                }
                TargetKind::Messages(sub)
            }
        };
        let select = match (last.selector, target.arity) {
            (None, _) => Select::All,
            (Some(_), Arity::Scalar) => {
                return Err(err(format!(
                    "`{target_label}` is not an array ({}), it cannot be indexed or sliced",
                    target.type_text
                )));
            }
            (Some(Selector::Index(i)), arity) => {
                if let Arity::Fixed(n) = arity {
                    if i >= n {
                        return Err(err(format!(
                            "index {i} is out of range for `{target_label}` ({}, {n} elements)",
                            target.type_text
                        )));
                    }
                }
                Select::Index(i)
            }
            (Some(Selector::Slice { start, end }), arity) => {
                let start = start.unwrap_or(0);
                if let Arity::Fixed(n) = arity {
                    if start >= n || end.is_some_and(|e| e > n) {
                        return Err(err(format!(
                            "slice {} is out of range for `{target_label}` ({}, {n} elements)",
                            last.selector.map(|s| s.to_string()).unwrap_or_default(),
                            target.type_text
                        )));
                    }
                }
                Select::Range { start, end }
            }
        };

        let sibling = match (kind, target.arity) {
            (TargetKind::Numbers(_), Arity::Fixed(_) | Arity::Variable) => def
                .field("name")
                .filter(|(_, f)| f.ty == FieldType::Primitive(Primitive::String) && f.is_array())
                .map(|(ni, nf)| {
                    let (lo, hi) = (ni.min(ti), ni.max(ti));
                    Sibling {
                        name_first: ni < ti,
                        before_first: programs.skip_program(&def.fields[..lo]),
                        between: programs.skip_program(&def.fields[lo + 1..hi]),
                        name_count: Count::of(nf.arity),
                    }
                }),
            _ => None,
        };
        let joints = match joints {
            None => None,
            Some(list) => {
                if sibling.is_none() {
                    return Err(err(format!(
                        "`joints` needs a numeric array with a sibling `name` string array (as \
                         in sensor_msgs/JointState); `{target_label}` is a {} in {}",
                        target.type_text, def.name
                    )));
                }
                if select != Select::All {
                    return Err(err(
                        "`joints` picks values by name; it cannot be combined with an index or \
                         slice"
                            .into(),
                    ));
                }
                if list.is_empty() {
                    return Err(err("the `joints` list is empty".into()));
                }
                Some(list.to_vec())
            }
        };

        let before = programs.skip_program(&def.fields[..ti]);
        Ok(Extractor {
            path: path.clone(),
            programs,
            steps,
            before,
            target: target.clone(),
            target_label: target_label.into(),
            kind,
            select,
            sibling,
            joints,
            cache: Mutex::new(JointCache::default()),
        })
    }

    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    /// The wire format this extractor was compiled for.
    pub fn encoding(&self) -> Encoding {
        self.programs.encoding
    }

    /// Positions the cursor at the start of the message that holds the target field.
    fn seek_final<'a, const CDR: bool>(
        &self,
        data: &'a [u8],
    ) -> Result<Cursor<'a, CDR>, DecodeError> {
        let mut cur = Cursor::<CDR>::open(data)?;
        for step in &self.steps {
            self.programs.skip(&mut cur, &step.before)?;
            if let Some(index) = step.index {
                let min = self.programs.elem_min(step.ty);
                let n = match step.arity {
                    Arity::Fixed(n) => n,
                    _ => cur.count(min, &step.label)?,
                };
                if index >= n {
                    return Err(DecodeError::Invalid(format!(
                        "field `{}` has {n} elements, index {index} is past its end",
                        step.label
                    )));
                }
                self.programs
                    .skip_elements(&mut cur, step.ty, index, &step.label)?;
            }
        }
        Ok(cur)
    }

    /// The element range to read out of `n`.
    fn range(&self, n: usize) -> Result<Range<usize>, DecodeError> {
        let r = match self.select {
            Select::All => 0..n,
            Select::Index(i) => i..i.saturating_add(1),
            Select::Range { start, end } => start..end.unwrap_or(n),
        };
        if r.end > n || r.start > r.end {
            return Err(DecodeError::Invalid(format!(
                "field `{}` has {n} elements, {} is past its end",
                self.target_label, self.path
            )));
        }
        Ok(r)
    }

    /// Reads the target array's length; leaves the cursor at its first element.
    fn target_len<const CDR: bool>(&self, cur: &mut Cursor<'_, CDR>) -> Result<usize, DecodeError> {
        let min = self.programs.elem_min(self.target.ty);
        cur.resolve(Count::of(self.target.arity), min, &self.target_label)
    }

    /// Appends this message's values to `out` (nothing is appended when an error is returned).
    pub fn extract(&self, data: &[u8], out: &mut Vec<f32>) -> Result<(), DecodeError> {
        let mark = out.len();
        let r = match self.programs.encoding {
            Encoding::Ros1 => self.extract_inner::<false>(data, out),
            Encoding::Cdr => self.extract_inner::<true>(data, out),
        };
        if r.is_err() {
            out.truncate(mark);
        }
        r
    }

    fn extract_inner<const CDR: bool>(
        &self,
        data: &[u8],
        out: &mut Vec<f32>,
    ) -> Result<(), DecodeError> {
        let mut cur = self.seek_final::<CDR>(data)?;
        if let (Some(joints), Some(sib)) = (&self.joints, &self.sibling) {
            return self.extract_joints(&mut cur, sib, joints, out);
        }
        self.programs.skip(&mut cur, &self.before)?;
        let n = self.target_len(&mut cur)?;
        let r = self.range(n)?;
        match self.kind {
            TargetKind::Numbers(prim) => {
                let size = prim.size().unwrap_or(0);
                let all = self.target_bytes(&mut cur, prim, n)?;
                push_values(prim, &all[r.start * size..r.end * size], cur.big(), out);
            }
            // Elements that take no bytes give no values: nothing to loop over.
            TargetKind::Messages(msg) if self.programs.is_empty(msg) => {}
            TargetKind::Messages(msg) => {
                let count = Count::of(self.target.arity);
                for i in 0..r.end {
                    if i < r.start {
                        self.programs.skip(&mut cur, &self.programs.skip[msg])
                    } else {
                        self.programs.flatten(&mut cur, msg, out)
                    }
                    .map_err(|e| e.within(&self.target_label, count, i))?;
                }
            }
        }
        Ok(())
    }

    /// The target's `n` elements, padding before them skipped.
    fn target_bytes<'a, const CDR: bool>(
        &self,
        cur: &mut Cursor<'a, CDR>,
        prim: Primitive,
        n: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let size = prim.size().unwrap_or(0);
        cur.elements(size, self.programs.align_of(prim), n, &self.target_label)
    }

    /// The serialized bytes of the selected elements of a numeric target, without copying:
    /// e.g. `data` of sensor_msgs/Image as `&[u8]`. Multi-byte values stay in the message's
    /// byte order (ROS1: little-endian; CDR: see [`Extractor::raw_ordered`]).
    pub fn raw<'a>(&self, data: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        self.raw_ordered(data).map(|(b, _)| b)
    }

    /// [`Extractor::raw`] with the byte order of its multi-byte values.
    pub fn raw_ordered<'a>(&self, data: &'a [u8]) -> Result<(&'a [u8], ByteOrder), DecodeError> {
        match self.programs.encoding {
            Encoding::Ros1 => self.raw_in::<false>(data),
            Encoding::Cdr => self.raw_in::<true>(data),
        }
    }

    fn raw_in<'a, const CDR: bool>(
        &self,
        data: &'a [u8],
    ) -> Result<(&'a [u8], ByteOrder), DecodeError> {
        let TargetKind::Numbers(prim) = self.kind else {
            return Err(DecodeError::Invalid(format!(
                "field `{}` is a message; raw bytes are only given for numbers",
                self.target_label
            )));
        };
        let mut cur = self.seek_final::<CDR>(data)?;
        self.programs.skip(&mut cur, &self.before)?;
        let n = self.target_len(&mut cur)?;
        let r = self.range(n)?;
        let size = prim.size().unwrap_or(0);
        let all = self.target_bytes(&mut cur, prim, n)?;
        Ok((&all[r.start * size..r.end * size], cur.order()))
    }

    /// Finds the `name[]` bytes and the target's element bytes in the final message.
    fn locate_named<'a, const CDR: bool>(
        &self,
        cur: &mut Cursor<'a, CDR>,
        sib: &Sibling,
    ) -> Result<(Cursor<'a, CDR>, &'a [u8]), DecodeError> {
        self.programs.skip(cur, &sib.before_first)?;
        let names = |cur: &mut Cursor<'a, CDR>| -> Result<Cursor<'a, CDR>, DecodeError> {
            // From the aligned length prefix: the names then parse the same wherever they are.
            cur.align(4, "name")?;
            let start = cur.pos;
            let n = cur.resolve(sib.name_count, 4, "name")?;
            for _ in 0..n {
                cur.string("name")?;
            }
            // A cursor over just the names, length prefix included, so the cache compares both.
            Ok(cur.window(start, cur.pos))
        };
        let values = |cur: &mut Cursor<'a, CDR>| -> Result<&'a [u8], DecodeError> {
            let n = self.target_len(cur)?;
            match self.kind {
                TargetKind::Numbers(prim) => self.target_bytes(cur, prim, n),
                TargetKind::Messages(_) => Err(DecodeError::Invalid("names of messages".into())),
            }
        };
        if sib.name_first {
            let nc = names(cur)?;
            self.programs.skip(cur, &sib.between)?;
            Ok((nc, values(cur)?))
        } else {
            let v = values(cur)?;
            self.programs.skip(cur, &sib.between)?;
            Ok((names(cur)?, v))
        }
    }

    fn extract_joints<const CDR: bool>(
        &self,
        cur: &mut Cursor<'_, CDR>,
        sib: &Sibling,
        joints: &[String],
        out: &mut Vec<f32>,
    ) -> Result<(), DecodeError> {
        let TargetKind::Numbers(prim) = self.kind else {
            return Err(DecodeError::Invalid("joints on a non-numeric field".into()));
        };
        let size = prim.size().unwrap_or(0);
        let (names, values) = self.locate_named(cur, sib)?;
        let n = values.len() / size.max(1);
        let names_raw = &names.data[names.pos..];
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.valid || cache.names_big != names.big() || cache.names_raw != names_raw {
            cache.valid = false;
            let list = read_names(names, sib.name_count)?;
            cache.index.clear();
            for j in joints {
                let Some(i) = list.iter().position(|n| *n == j.as_bytes()) else {
                    return Err(missing_joints(joints, &list));
                };
                cache.index.push(i);
            }
            cache.names_raw.clear();
            cache.names_raw.extend_from_slice(names_raw);
            cache.names_big = names.big();
            cache.valid = true;
        }
        for (&i, j) in cache.index.iter().zip(joints) {
            if i >= n {
                return Err(DecodeError::Invalid(format!(
                    "field `{}` has {n} values but joint `{j}` is at index {i} of name[]",
                    self.target_label
                )));
            }
            out.push(value(prim, &values[i * size..(i + 1) * size], names.big()));
        }
        Ok(())
    }

    /// The names of the values [`Extractor::extract`] gives for this message.
    pub fn names(&self, data: &[u8]) -> Result<Vec<String>, DecodeError> {
        if let Some(j) = &self.joints {
            return Ok(j.clone());
        }
        match self.programs.encoding {
            Encoding::Ros1 => self.names_in::<false>(data),
            Encoding::Cdr => self.names_in::<true>(data),
        }
    }

    fn names_in<const CDR: bool>(&self, data: &[u8]) -> Result<Vec<String>, DecodeError> {
        let mut cur = self.seek_final::<CDR>(data)?;
        let base = self.path.base_text();
        if let (Some(sib), TargetKind::Numbers(prim)) = (&self.sibling, self.kind) {
            let size = prim.size().unwrap_or(0);
            let (names, values) = self.locate_named(&mut cur, sib)?;
            let list = read_names(names, sib.name_count)?;
            let r = self.range(values.len() / size.max(1))?;
            return Ok(r
                .map(|i| match list.get(i) {
                    Some(n) => String::from_utf8_lossy(n).into_owned(),
                    None => format!("{base}[{i}]"),
                })
                .collect());
        }
        self.programs.skip(&mut cur, &self.before)?;
        if self.target.arity == Arity::Scalar {
            return match self.kind {
                TargetKind::Numbers(_) => Ok(vec![base]),
                TargetKind::Messages(msg) => {
                    let mut out = Vec::new();
                    self.programs
                        .flatten_names(&mut cur, msg, &base, &mut out)?;
                    Ok(out)
                }
            };
        }
        let n = self.target_len(&mut cur)?;
        let r = self.range(n)?;
        match self.kind {
            TargetKind::Numbers(prim) => {
                // The values must be there before they get names: a fixed-size array may claim
                // billions of elements that a short payload does not hold.
                self.target_bytes(&mut cur, prim, n)?;
                Ok(r.map(|i| format!("{base}[{i}]")).collect())
            }
            TargetKind::Messages(msg) if self.programs.is_empty(msg) => Ok(Vec::new()),
            TargetKind::Messages(msg) => {
                let mut out = Vec::new();
                for i in 0..r.end {
                    if i < r.start {
                        self.programs.skip(&mut cur, &self.programs.skip[msg])?;
                    } else {
                        let prefix = format!("{base}[{i}]");
                        self.programs
                            .flatten_names(&mut cur, msg, &prefix, &mut out)?;
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Every configured joint the message's `name[]` lacks, with the names it has: a config
/// written for another robot is fixed in one go, not one name per run.
fn missing_joints(joints: &[String], list: &[&[u8]]) -> DecodeError {
    let missing: Vec<String> = joints
        .iter()
        .filter(|j| !list.contains(&j.as_bytes()))
        .map(|j| format!("`{j}`"))
        .collect();
    let present: Vec<String> = list
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    DecodeError::Invalid(format!(
        "joint{} {} {} not in this message's name[]; names present: [{}]",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        if missing.len() == 1 { "is" } else { "are" },
        present.join(", ")
    ))
}

/// Splits a serialized string array (as located by `locate_named`) into its entries.
fn read_names<'a, const CDR: bool>(
    mut cur: Cursor<'a, CDR>,
    count: Count,
) -> Result<Vec<&'a [u8]>, DecodeError> {
    let n = cur.resolve(count, 4, "name")?;
    let mut list = Vec::with_capacity(n);
    for _ in 0..n {
        list.push(cur.string("name")?);
    }
    Ok(list)
}

fn joined(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn at(walked: &str) -> String {
    if walked.is_empty() {
        String::new()
    } else {
        format!(" (at `{walked}`)")
    }
}

/// How a header's `stamp` is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StampKind {
    /// ROS1 `time`: u32 sec, u32 nsec.
    Ros1,
    /// ROS 2 `builtin_interfaces/Time`: int32 sec, uint32 nanosec.
    Ros2,
}

/// Reads `header.stamp` of a stamped message: a ROS1 `time`, or a ROS 2
/// `builtin_interfaces/Time`.
#[derive(Debug, Clone)]
pub struct StampReader {
    programs: Programs,
    before_header: Vec<Skip>,
    before_stamp: Vec<Skip>,
    kind: StampKind,
}

impl StampReader {
    /// For ROS1-serialized messages.
    pub fn new(schema: &Schema) -> Result<StampReader, MsgError> {
        StampReader::with_encoding(schema, Encoding::Ros1)
    }

    pub fn with_encoding(schema: &Schema, encoding: Encoding) -> Result<StampReader, MsgError> {
        let err = |detail: &str| MsgError::Definition {
            datatype: schema.datatype().to_string(),
            detail: format!("{detail}; fields: {}", schema.root().field_list()),
        };
        let root = schema.root();
        let (hi, header) = root
            .field("header")
            .ok_or_else(|| err("no top-level `header` field to take a timestamp from"))?;
        let FieldType::Message(hid) = header.ty else {
            return Err(err("the `header` field is not a Header message"));
        };
        let hdef = schema.message(hid);
        if header.is_array() || hdef.name.rsplit('/').next() != Some("Header") {
            return Err(err("the `header` field is not a Header message"));
        }
        let (si, stamp) = hdef
            .field("stamp")
            .ok_or_else(|| err("the header has no `stamp` field"))?;
        let kind = match stamp.ty {
            _ if stamp.is_array() => None,
            FieldType::Primitive(Primitive::Time) => Some(StampKind::Ros1),
            FieldType::Message(t) => {
                let t = schema.message(t);
                let fields: Vec<(&str, FieldType, Arity)> = t
                    .fields
                    .iter()
                    .map(|f| (f.name.as_str(), f.ty, f.arity))
                    .collect();
                let expected = [
                    ("sec", FieldType::Primitive(Primitive::Int32), Arity::Scalar),
                    (
                        "nanosec",
                        FieldType::Primitive(Primitive::Uint32),
                        Arity::Scalar,
                    ),
                ];
                (is_ros2_time(&t.name) && fields == expected).then_some(StampKind::Ros2)
            }
            _ => None,
        };
        let Some(kind) = kind else {
            return Err(err(
                "the header's `stamp` is not a time (ROS1 `time` or builtin_interfaces/Time)",
            ));
        };
        let programs = Programs::new(schema, encoding);
        Ok(StampReader {
            before_header: programs.skip_program(&root.fields[..hi]),
            before_stamp: programs.skip_program(&hdef.fields[..si]),
            programs,
            kind,
        })
    }

    /// `header.stamp` in nanoseconds.
    pub fn read(&self, data: &[u8]) -> Result<Time, DecodeError> {
        match self.programs.encoding {
            Encoding::Ros1 => self.read_in::<false>(data),
            Encoding::Cdr => self.read_in::<true>(data),
        }
    }

    fn read_in<const CDR: bool>(&self, data: &[u8]) -> Result<Time, DecodeError> {
        let mut cur = Cursor::<CDR>::open(data)?;
        self.programs.skip(&mut cur, &self.before_header)?;
        self.programs
            .skip(&mut cur, &self.before_stamp)
            .map_err(|e| e.within("header", Count::One, 0))?;
        // Both layouts are two 4-byte values.
        cur.align(4, "header.stamp")?;
        let b = cur.take(8, "header.stamp")?;
        let word = |b: &[u8]| {
            if cur.big() {
                u32::from_be_bytes(le(b))
            } else {
                u32::from_le_bytes(le(b))
            }
        };
        let (sec, nsec) = (word(b), word(&b[4..]) as i64);
        let sec = match self.kind {
            StampKind::Ros1 => sec as i64,
            StampKind::Ros2 => sec as i32 as i64,
        };
        Ok(sec * NANOS + nsec)
    }
}

impl Schema {
    /// Field paths that an [`Extractor`] accepts, for config templates: the main type's fields
    /// that are numeric (scalars, arrays, all-numeric sub-messages), then, inside the others,
    /// numeric leaves outside arrays (`header.seq`, ...).
    pub fn numeric_fields(&self) -> Vec<String> {
        let compiles = |p: &str| {
            FieldPath::parse(p)
                .ok()
                .is_some_and(|path| Extractor::new(self, &path, None).is_ok())
        };
        // Absolute times do not survive float32; they are stamps, not features. ROS 2 spells
        // them as messages (`header.stamp.sec`, ...).
        let mut times = Vec::new();
        self.ros2_times(Schema::ROOT, "", &mut times);
        let is_time = |p: &str| {
            times.iter().any(|t| {
                p == t
                    || p.strip_prefix(t.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            })
        };
        let mut out: Vec<String> = self
            .root()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .filter(|p| !is_time(p) && compiles(p))
            .collect();
        for (leaf, ty) in self.leaves() {
            let useful =
                !leaf.contains('[') && ty != "time" && !is_time(&leaf) && !out.contains(&leaf);
            let inside = out.iter().any(|o| leaf.starts_with(&format!("{o}.")));
            if useful && !inside && compiles(&leaf) {
                out.push(leaf);
            }
        }
        out
    }
}

impl Schema {
    /// Paths of the `builtin_interfaces/Time` fields outside arrays.
    fn ros2_times(&self, id: MsgId, prefix: &str, out: &mut Vec<String>) {
        for f in &self.message(id).fields {
            if let (FieldType::Message(sub), false) = (f.ty, f.is_array()) {
                let path = format!("{prefix}{}", f.name);
                if is_ros2_time(&self.message(sub).name) {
                    out.push(path);
                } else {
                    self.ros2_times(sub, &format!("{path}."), out);
                }
            }
        }
    }
}
