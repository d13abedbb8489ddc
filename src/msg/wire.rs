//! Wire formats: the ROS1 serialization and CDR (XCDR1, as ROS 2 middlewares write it).
//! Bounds-checked reads, and the skip and flatten programs compiled from a schema for one
//! wire format, so that fields before a target are passed over without decoding them.
//!
//! The two formats differ in three ways only: CDR starts with a 4-byte encapsulation header
//! that gives the byte order, aligns every primitive to its size (at most 8) relative to the
//! byte after that header, and serializes a message without fields as one byte. So one
//! program shape serves both: a run of fixed-size fields is a [`Span`], the bytes it takes
//! for each possible start position modulo 8 (ROS1: the same count for all eight).

use std::fmt;
use std::str::FromStr;

use super::def::{Arity, Field, FieldType, MsgId, Primitive, Schema};
use super::{DecodeError, MsgError};

/// How a connection's messages are serialized, as containers name it (MCAP channel
/// `message_encoding`, rosbag2 `serialization_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// `ros1`: ROS1 serialization (ROS1 bags; MCAP files converted from them).
    #[default]
    Ros1,
    /// `cdr`: CDR with its encapsulation header, as ROS 2 records it.
    Cdr,
}

impl Encoding {
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "ros1" => Some(Encoding::Ros1),
            "cdr" => Some(Encoding::Cdr),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Ros1 => "ros1",
            Encoding::Cdr => "cdr",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = MsgError;
    fn from_str(s: &str) -> Result<Encoding, MsgError> {
        Encoding::from_name(s).ok_or_else(|| MsgError::Encoding {
            encoding: s.to_string(),
        })
    }
}

/// The byte order of one message's multi-byte values (ROS1: always little-endian; CDR: as
/// its encapsulation header says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// CDR aligns at most to 8 bytes (XCDR1; XCDR2 would be 4).
const MAX_ALIGN: usize = 8;

/// Alignment of a primitive in CDR: its size, at most 8; time and duration are two u32.
pub(super) fn cdr_align(p: Primitive) -> usize {
    match p {
        Primitive::Time | Primitive::Duration => 4,
        Primitive::String | Primitive::WString => 4,
        p => p.size().unwrap_or(1).min(MAX_ALIGN),
    }
}

/// What a fixed-size stretch of fields takes, per start position modulo 8: bytes (padding
/// included) and the position modulo 8 after it. In ROS1 every entry is `(n, p)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    at: [(usize, u8); 8],
    /// The byte count when it is the same from every start position, and the stretch leaves
    /// the position modulo 8 where it was: then `n` of them are `n` times it.
    uniform: Option<usize>,
}

impl Span {
    fn from_table(at: [(usize, u8); 8]) -> Span {
        let b = at[0].0;
        let uniform = at
            .iter()
            .enumerate()
            .all(|(p, &(n, q))| n == b && q as usize == p)
            .then_some(b);
        Span { at, uniform }
    }

    const NOTHING: Span = Span {
        at: [
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 5),
            (0, 6),
            (0, 7),
        ],
        uniform: Some(0),
    };

    /// `n` bytes wherever they start, the position modulo 8 kept: the ROS1 case, where
    /// nothing is aligned (so the phase is never looked at, and keeping it makes every ROS1
    /// span uniform).
    fn flat(n: usize) -> Span {
        let mut at = Span::NOTHING.at;
        for e in &mut at {
            e.0 = n;
        }
        Span {
            at,
            uniform: Some(n),
        }
    }

    /// `n` CDR values of `size` bytes aligned to `align`; padding only before the first one.
    fn values(size: usize, n: usize, align: usize) -> Span {
        if n == 0 {
            return Span::NOTHING;
        }
        let total = size.saturating_mul(n);
        let mut at = [(0, 0); 8];
        for (p, e) in at.iter_mut().enumerate() {
            let pad = (align - p % align) % align;
            let bytes = pad.saturating_add(total);
            *e = (bytes, ((p + bytes) % MAX_ALIGN) as u8);
        }
        Span::from_table(at)
    }

    pub(super) fn bytes_at(&self, pos: usize) -> usize {
        self.at[pos % MAX_ALIGN].0
    }

    /// This stretch, then `next`.
    fn then(&self, next: &Span) -> Span {
        let mut at = [(0, 0); 8];
        for (p, e) in at.iter_mut().enumerate() {
            let (a, q) = self.at[p];
            let (b, r) = next.at[q as usize];
            *e = (a.saturating_add(b), r);
        }
        Span::from_table(at)
    }

    /// This stretch `n` times over (by squaring: `n` may be in the millions).
    fn times(&self, mut n: usize) -> Span {
        let mut out = Span::NOTHING;
        let mut base = *self;
        while n > 0 {
            if n & 1 == 1 {
                out = out.then(&base);
            }
            base = base.then(&base);
            n >>= 1;
        }
        out
    }
}

/// How many elements an array has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Count {
    /// Not an array: one element, no index in names.
    One,
    Fixed(usize),
    /// A u32 length prefix in the data.
    Prefixed,
}

impl Count {
    pub(super) fn of(arity: Arity) -> Count {
        match arity {
            Arity::Scalar => Count::One,
            Arity::Fixed(n) => Count::Fixed(n),
            Arity::Variable => Count::Prefixed,
        }
    }
}

/// One step of skipping serialized bytes.
#[derive(Debug, Clone)]
pub(super) enum Skip {
    /// A run of fixed-size fields that takes the same bytes wherever it starts.
    Bytes {
        n: usize,
        label: Box<str>,
    },
    /// A run of fixed-size fields whose padding depends on where it starts (CDR).
    Span {
        span: Box<Span>,
        label: Box<str>,
    },
    /// A variable array of fixed-size elements of `elem` bytes, aligned to `align`.
    SeqFixed {
        elem: usize,
        align: usize,
        label: Box<str>,
    },
    /// A variable array of fixed-size messages whose padding depends on position (CDR).
    SeqSpan {
        elem: Box<Span>,
        min: usize,
        label: Box<str>,
    },
    Strings {
        count: Count,
        label: Box<str>,
    },
    /// A wstring: refused when reached (see [`wstring_refused`]).
    WStrings {
        label: Box<str>,
    },
    /// Messages whose size depends on their data.
    Messages {
        count: Count,
        msg: MsgId,
        label: Box<str>,
    },
}

/// One part of a flattened sub-message: every field is numeric, or the path was refused.
#[derive(Debug, Clone)]
pub(super) enum Flat {
    Numbers {
        prim: Primitive,
        count: Count,
        align: usize,
        label: Box<str>,
    },
    Sub {
        msg: MsgId,
        count: Count,
        label: Box<str>,
    },
}

/// wstring has no single CDR layout: Fast DDS writes 4-byte code units, Cyclone DDS and
/// others 2-byte ones, and the bytes do not say which (the `rosbags` package refuses it too).
pub(super) fn wstring_refused(label: &str) -> DecodeError {
    DecodeError::Invalid(format!(
        "field `{label}` is a wstring, which bagstream does not decode (its CDR layout differs \
         between ROS 2 middlewares), so nothing after it can be read"
    ))
}

/// The skip and flatten programs of every message type of a schema, for one wire format.
#[derive(Debug, Clone)]
pub(super) struct Programs {
    pub(super) encoding: Encoding,
    /// Skips a whole message, per type.
    pub(super) skip: Vec<Vec<Skip>>,
    /// Min serialized size per type, to bound element counts before looping.
    pub(super) min_size: Vec<usize>,
    /// Per type, when its size does not depend on the data.
    pub(super) fixed: Vec<Option<Span>>,
    /// The numeric leaves per type, or the path of its first non-numeric leaf.
    pub(super) flat: Vec<Result<Vec<Flat>, String>>,
}

impl Programs {
    pub(super) fn new(schema: &Schema, encoding: Encoding) -> Programs {
        let n = schema.messages().len();
        let mut fixed = vec![None; n];
        let mut min_size = vec![None; n];
        for id in 0..n {
            layout(schema, encoding, id, &mut fixed, &mut min_size);
        }
        let mut p = Programs {
            encoding,
            skip: Vec::new(),
            min_size: min_size.into_iter().map(|m| m.unwrap_or(0)).collect(),
            fixed: fixed.into_iter().map(|f| f.flatten()).collect(),
            flat: Vec::new(),
        };
        p.skip = (0..n)
            .map(|id| match &schema.message(id).fields[..] {
                // The placeholder byte rosidl adds (see `layout`).
                [] if p.aligned() => vec![Skip::Bytes {
                    n: 1,
                    label: "structure_needs_at_least_one_member".into(),
                }],
                fields => p.skip_program(fields),
            })
            .collect();
        let mut flat = vec![None; n];
        for id in 0..n {
            flat_program(schema, id, p.aligned(), &mut flat);
        }
        p.flat = flat
            .into_iter()
            .map(|f| f.unwrap_or_else(|| Err("unresolved".to_string())))
            .collect();
        p
    }

    fn aligned(&self) -> bool {
        self.encoding == Encoding::Cdr
    }

    /// Alignment of a primitive in this wire format (1: none).
    pub(super) fn align_of(&self, p: Primitive) -> usize {
        if self.aligned() {
            cdr_align(p)
        } else {
            1
        }
    }

    /// Whether messages of type `msg` always serialize to zero bytes (std_msgs/Empty in
    /// ROS1): an array of them holds nothing to read, however long its count says it is, so
    /// loops over its elements are skipped (2^32 of them would cost seconds and yield nothing).
    pub(super) fn is_empty(&self, msg: MsgId) -> bool {
        self.fixed[msg].is_some_and(|s| s.uniform == Some(0))
    }

    pub(super) fn elem_min(&self, ty: FieldType) -> usize {
        match ty {
            FieldType::Primitive(p) => p.size().unwrap_or(4),
            FieldType::Message(m) => self.min_size[m],
        }
    }

    /// The span of one field, when its size does not depend on the data.
    fn field_span(&self, f: &Field) -> Option<Span> {
        field_span(f, self.aligned(), |m| self.fixed[m])
    }

    /// Compiles skipping over `fields`, merging runs of fixed-size fields into one step.
    pub(super) fn skip_program(&self, fields: &[Field]) -> Vec<Skip> {
        let mut ops = Vec::new();
        let mut run: Option<(Span, &str, &str)> = None;
        let flush = |ops: &mut Vec<Skip>, run: &mut Option<(Span, &str, &str)>| {
            if let Some((span, first, last)) = run.take() {
                let label: Box<str> = if first == last {
                    first.into()
                } else {
                    format!("{first}..{last}").into()
                };
                ops.push(match span.uniform {
                    Some(n) => Skip::Bytes { n, label },
                    None => Skip::Span {
                        span: Box::new(span),
                        label,
                    },
                });
            }
        };
        for f in fields {
            if let Some(span) = self.field_span(f) {
                run = Some(match run {
                    Some((s, first, _)) => (s.then(&span), first, &f.name),
                    None => (span, &f.name, &f.name),
                });
                continue;
            }
            flush(&mut ops, &mut run);
            let label: Box<str> = f.name.as_str().into();
            let count = Count::of(f.arity);
            ops.push(match f.ty {
                FieldType::Primitive(Primitive::WString) => Skip::WStrings { label },
                FieldType::Primitive(Primitive::String) => Skip::Strings { count, label },
                // Not fixed-size and not a string: a variable array.
                FieldType::Primitive(p) => Skip::SeqFixed {
                    elem: p.size().unwrap_or(0),
                    align: self.align_of(p),
                    label,
                },
                FieldType::Message(msg) => match (count, self.fixed[msg]) {
                    (Count::Prefixed, Some(span)) => match span.uniform {
                        Some(elem) => Skip::SeqFixed {
                            elem,
                            align: 1,
                            label,
                        },
                        None => Skip::SeqSpan {
                            elem: Box::new(span),
                            min: self.min_size[msg],
                            label,
                        },
                    },
                    _ => Skip::Messages { count, msg, label },
                },
            });
        }
        flush(&mut ops, &mut run);
        ops
    }

    pub(super) fn skip<const CDR: bool>(
        &self,
        cur: &mut Cursor<'_, CDR>,
        ops: &[Skip],
    ) -> Result<(), DecodeError> {
        for op in ops {
            match op {
                Skip::Bytes { n, label } => {
                    cur.take(*n, label)?;
                }
                Skip::Span { span, label } => {
                    cur.take(span.bytes_at(cur.pos), label)?;
                }
                Skip::SeqFixed { elem, align, label } => {
                    let count = cur.count(*elem, label)?;
                    cur.elements(*elem, *align, count, label)?;
                }
                Skip::SeqSpan { elem, min, label } => {
                    let count = cur.count(*min, label)?;
                    cur.repeat(elem, count, label)?;
                }
                Skip::Strings { count, label } => {
                    let count = cur.resolve(*count, 4, label)?;
                    for _ in 0..count {
                        cur.string(label)?;
                    }
                }
                Skip::WStrings { label } => return Err(wstring_refused(label)),
                Skip::Messages { count, msg, label } => {
                    let n = cur.resolve(*count, self.min_size[*msg], label)?;
                    for i in 0..n {
                        self.skip(cur, &self.skip[*msg])
                            .map_err(|e| e.within(label, *count, i))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Skips `n` elements of a field's type (the cursor sits at the first one).
    pub(super) fn skip_elements<const CDR: bool>(
        &self,
        cur: &mut Cursor<'_, CDR>,
        ty: FieldType,
        n: usize,
        label: &str,
    ) -> Result<(), DecodeError> {
        match ty {
            FieldType::Primitive(Primitive::WString) => return Err(wstring_refused(label)),
            FieldType::Primitive(Primitive::String) => {
                for _ in 0..n {
                    cur.string(label)?;
                }
            }
            FieldType::Primitive(p) => {
                cur.elements(p.size().unwrap_or(0), self.align_of(p), n, label)?;
            }
            FieldType::Message(msg) => match &self.fixed[msg] {
                Some(span) => cur.repeat(span, n, label)?,
                None => {
                    for i in 0..n {
                        self.skip(cur, &self.skip[msg])
                            .map_err(|e| e.within(label, Count::Prefixed, i))?;
                    }
                }
            },
        }
        Ok(())
    }

    pub(super) fn flatten<const CDR: bool>(
        &self,
        cur: &mut Cursor<'_, CDR>,
        msg: MsgId,
        out: &mut Vec<f32>,
    ) -> Result<(), DecodeError> {
        let Ok(prog) = &self.flat[msg] else {
            return Err(DecodeError::Invalid(
                "flattening a non-numeric message".into(),
            ));
        };
        if prog.is_empty() {
            // No values, but maybe bytes (an empty message's placeholder in CDR).
            return self.skip(cur, &self.skip[msg]);
        }
        for part in prog {
            match part {
                Flat::Numbers {
                    prim,
                    count,
                    align,
                    label,
                } => {
                    let size = prim.size().unwrap_or(0);
                    let n = cur.resolve(*count, size, label)?;
                    let bytes = cur.elements(size, *align, n, label)?;
                    push_values(*prim, bytes, cur.big(), out);
                }
                Flat::Sub { msg, count, label } => {
                    let n = cur.resolve(*count, self.min_size[*msg], label)?;
                    if self.is_empty(*msg) {
                        continue;
                    }
                    for i in 0..n {
                        self.flatten(cur, *msg, out)
                            .map_err(|e| e.within(label, *count, i))?;
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn flatten_names<const CDR: bool>(
        &self,
        cur: &mut Cursor<'_, CDR>,
        msg: MsgId,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), DecodeError> {
        let Ok(prog) = &self.flat[msg] else {
            return Err(DecodeError::Invalid(
                "flattening a non-numeric message".into(),
            ));
        };
        if prog.is_empty() {
            return self.skip(cur, &self.skip[msg]);
        }
        for part in prog {
            match part {
                Flat::Numbers {
                    prim,
                    count,
                    align,
                    label,
                } => {
                    let size = prim.size().unwrap_or(0);
                    let n = cur.resolve(*count, size, label)?;
                    cur.elements(size, *align, n, label)?;
                    match count {
                        Count::One => out.push(format!("{prefix}.{label}")),
                        _ => out.extend((0..n).map(|i| format!("{prefix}.{label}[{i}]"))),
                    }
                }
                Flat::Sub { msg, count, label } => {
                    let n = cur.resolve(*count, self.min_size[*msg], label)?;
                    if self.is_empty(*msg) {
                        continue;
                    }
                    for i in 0..n {
                        let sub = match count {
                            Count::One => format!("{prefix}.{label}"),
                            _ => format!("{prefix}.{label}[{i}]"),
                        };
                        self.flatten_names(cur, *msg, &sub, out)
                            .map_err(|e| e.within(label, *count, i))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The span of one field given the spans of the message types, or None when its size
/// depends on the data.
fn field_span(f: &Field, aligned: bool, fixed: impl Fn(MsgId) -> Option<Span>) -> Option<Span> {
    let n = match f.arity {
        Arity::Scalar => 1,
        // Zero elements take zero bytes (and no padding) whatever the element.
        Arity::Fixed(0) => return Some(Span::NOTHING),
        Arity::Fixed(n) => n,
        Arity::Variable => return None,
    };
    match f.ty {
        FieldType::Primitive(p) => {
            let size = p.size()?;
            Some(if aligned {
                Span::values(size, n, cdr_align(p))
            } else {
                Span::flat(size.saturating_mul(n))
            })
        }
        FieldType::Message(m) => fixed(m).map(|s| if n == 1 { s } else { s.times(n) }),
    }
}

/// Fills `fixed[id]` and `min[id]` (and those of the types `id` contains). The schema has no
/// cycles and is at most its depth limit deep, so the recursion ends soon.
fn layout(
    schema: &Schema,
    encoding: Encoding,
    id: MsgId,
    fixed: &mut Vec<Option<Option<Span>>>,
    min: &mut Vec<Option<usize>>,
) {
    if min[id].is_some() {
        return;
    }
    let aligned = encoding == Encoding::Cdr;
    let fields = &schema.message(id).fields;
    if fields.is_empty() && aligned {
        // DDS has no empty structs: rosidl gives such a message one uint8 member
        // (`structure_needs_at_least_one_member`), which CDR serializes as one byte.
        fixed[id] = Some(Some(Span::values(1, 1, 1)));
        min[id] = Some(1);
        return;
    }
    let mut span = Some(Span::NOTHING);
    let mut least = 0usize;
    for f in fields {
        if let FieldType::Message(sub) = f.ty {
            layout(schema, encoding, sub, fixed, min);
        }
        let fs = field_span(f, aligned, |m| fixed[m].flatten());
        span = match (span, fs) {
            (Some(a), Some(b)) => Some(a.then(&b)),
            _ => None,
        };
        let elem_min = match f.ty {
            FieldType::Primitive(p) => p.size().unwrap_or(4),
            FieldType::Message(sub) => min[sub].unwrap_or(0),
        };
        least = least.saturating_add(match f.arity {
            Arity::Scalar => elem_min,
            Arity::Fixed(n) => elem_min.saturating_mul(n),
            Arity::Variable => 4,
        });
    }
    fixed[id] = Some(span);
    min[id] = Some(least);
}

/// Fills `flat[id]` (and those of the types it contains): the schema has no cycles, so the
/// recursion ends, and it is at most the schema's depth limit deep.
pub(super) fn flat_program(
    schema: &Schema,
    id: MsgId,
    aligned: bool,
    flat: &mut Vec<Option<Result<Vec<Flat>, String>>>,
) {
    if flat[id].is_some() {
        return;
    }
    let mut prog = Vec::new();
    let mut bad = None;
    for f in &schema.message(id).fields {
        let count = Count::of(f.arity);
        let label: Box<str> = f.name.as_str().into();
        match f.ty {
            FieldType::Primitive(p) if p.is_text() => {
                bad = Some(format!("{} ({})", leaf_name(f), p.name()));
            }
            FieldType::Primitive(prim) => prog.push(Flat::Numbers {
                prim,
                count,
                align: if aligned { cdr_align(prim) } else { 1 },
                label,
            }),
            FieldType::Message(sub) => {
                flat_program(schema, sub, aligned, flat);
                match &flat[sub] {
                    Some(Err(inner)) => bad = Some(format!("{}.{inner}", leaf_name(f))),
                    _ => prog.push(Flat::Sub {
                        msg: sub,
                        count,
                        label,
                    }),
                }
            }
        }
        if bad.is_some() {
            break;
        }
    }
    flat[id] = Some(match bad {
        Some(b) => Err(b),
        None => Ok(prog),
    });
}

pub(super) fn leaf_name(f: &Field) -> String {
    if f.is_array() {
        format!("{}[]", f.name)
    } else {
        f.name.clone()
    }
}

/// A read position in one message's bytes; every read is bounds-checked. `CDR` is the wire
/// format, fixed at compile time so that the ROS1 instance has no alignment or byte-order
/// code at all (the decoders are generic over it, and pick an instance once per message).
#[derive(Clone, Copy)]
pub(super) struct Cursor<'a, const CDR: bool> {
    /// The message's bytes after any encapsulation header: CDR aligns relative to its start.
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    /// Bytes before `data` in the message (the CDR header), so errors give message offsets.
    base: usize,
    /// CDR only: the encapsulation header said big-endian.
    big: bool,
}

impl<'a, const CDR: bool> Cursor<'a, CDR> {
    /// A cursor over one message; for CDR this reads the encapsulation header.
    #[inline]
    pub(super) fn open(data: &'a [u8]) -> Result<Self, DecodeError> {
        match CDR {
            false => Ok(Cursor {
                data,
                pos: 0,
                base: 0,
                big: false,
            }),
            true => {
                let Some(head) = data.get(..4) else {
                    return Err(DecodeError::Truncated {
                        field: "CDR encapsulation header".to_string(),
                        offset: 0,
                        need: 4,
                        len: data.len(),
                    });
                };
                let big = match (head[0], head[1]) {
                    (0, 0) => true,
                    (0, 1) => false,
                    (0, k @ (2 | 3)) => {
                        return Err(DecodeError::Invalid(format!(
                            "CDR encapsulation 0x{k:04x} is parameter-list CDR (PL_CDR), which \
                             ROS 2 does not write for messages; only plain CDR (0x0000, 0x0001) \
                             decodes"
                        )))
                    }
                    (0, k @ 6..=11) => {
                        return Err(DecodeError::Invalid(format!(
                            "CDR encapsulation 0x{k:04x} is XCDR2, which bagstream does not \
                             decode; ROS 2 writes XCDR1 (0x0000 big-endian, 0x0001 little-endian)"
                        )))
                    }
                    (a, b) => {
                        // A frame of rosbag2's per-message compression read without the
                        // metadata.yaml that says so.
                        let hint = if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                            ": it is zstd-compressed (rosbag2 compression_mode MESSAGE); open \
                             the bag's directory, whose metadata.yaml says so"
                        } else {
                            ""
                        };
                        return Err(DecodeError::Invalid(format!(
                            "the message does not start with a CDR encapsulation header (bytes \
                             {a:02x} {b:02x}; expected 00 00 or 00 01){hint}"
                        )));
                    }
                };
                Ok(Cursor {
                    data: &data[4..],
                    pos: 0,
                    base: 4,
                    big,
                })
            }
        }
    }

    /// Whether multi-byte values are big-endian (never in ROS1).
    #[inline]
    pub(super) fn big(&self) -> bool {
        CDR && self.big
    }

    pub(super) fn order(&self) -> ByteOrder {
        if self.big() {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }

    /// A cursor over `self.data[..end]` at `start`: the same origin, so alignment holds.
    pub(super) fn window(&self, start: usize, end: usize) -> Cursor<'a, CDR> {
        Cursor {
            data: &self.data[..end],
            pos: start,
            ..*self
        }
    }

    pub(super) fn truncated(&self, label: &str, need: usize) -> DecodeError {
        DecodeError::Truncated {
            field: label.to_string(),
            offset: self.base + self.pos,
            need,
            len: self.base + self.data.len(),
        }
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize, label: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.truncated(label, n))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Skips the padding before a value aligned to `align` (CDR; nothing in ROS1).
    #[inline]
    pub(super) fn align(&mut self, align: usize, label: &str) -> Result<(), DecodeError> {
        if CDR && align > 1 {
            // Alignments are 2, 4 or 8: a mask, not a division (this runs for every value).
            debug_assert!(align.is_power_of_two());
            let pad = self.pos.wrapping_neg() & (align - 1);
            self.take(pad, label)?;
        }
        Ok(())
    }

    #[inline]
    pub(super) fn u32(&mut self, label: &str) -> Result<u32, DecodeError> {
        self.align(4, label)?;
        let b = self.take(4, label)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big() {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// A string's bytes as serialized: in CDR the length counts a NUL terminator, which is
    /// left out here.
    #[inline]
    pub(super) fn string(&mut self, label: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(label)? as usize;
        let s = self.take(n, label)?;
        Ok(match s.split_last() {
            Some((0, head)) if CDR => head,
            _ => s,
        })
    }

    /// Reads a length prefix and checks that `n` elements of at least `elem_min` bytes fit in
    /// what remains, so a lying prefix fails here instead of driving a loop or an allocation.
    #[inline]
    pub(super) fn count(&mut self, elem_min: usize, label: &str) -> Result<usize, DecodeError> {
        let n = self.u32(label)? as usize;
        let need = n.saturating_mul(elem_min);
        if need > self.data.len() - self.pos {
            return Err(self.truncated(label, need));
        }
        Ok(n)
    }

    #[inline]
    pub(super) fn resolve(
        &mut self,
        count: Count,
        elem_min: usize,
        label: &str,
    ) -> Result<usize, DecodeError> {
        match count {
            Count::One => Ok(1),
            Count::Fixed(n) => Ok(n),
            Count::Prefixed => self.count(elem_min, label),
        }
    }

    /// `n` consecutive values of `size` bytes aligned to `align`: padding comes before the
    /// first one only, and an empty array has none (as ROS 2's serializers write it).
    #[inline]
    pub(super) fn elements(
        &mut self,
        size: usize,
        align: usize,
        n: usize,
        label: &str,
    ) -> Result<&'a [u8], DecodeError> {
        if n > 0 {
            self.align(align, label)?;
        }
        let total = n
            .checked_mul(size)
            .ok_or_else(|| self.truncated(label, usize::MAX))?;
        self.take(total, label)
    }

    /// `n` fixed-size elements described by `span`. The position modulo 8 cycles with a
    /// period of at most 8 elements, so a long array costs at most 16 steps.
    pub(super) fn repeat(&mut self, span: &Span, n: usize, label: &str) -> Result<(), DecodeError> {
        if let Some(b) = span.uniform {
            let total = n
                .checked_mul(b)
                .ok_or_else(|| self.truncated(label, usize::MAX))?;
            self.take(total, label)?;
            return Ok(());
        }
        let mut seen = [usize::MAX; MAX_ALIGN];
        let mut seen_at = [0usize; MAX_ALIGN];
        let mut done = 0;
        while done < n {
            let phase = self.pos % MAX_ALIGN;
            if seen[phase] != usize::MAX {
                let period = done - seen[phase];
                let bytes = self.pos - seen_at[phase];
                let cycles = (n - done) / period;
                let total = cycles
                    .checked_mul(bytes)
                    .ok_or_else(|| self.truncated(label, usize::MAX))?;
                self.take(total, label)?;
                for _ in 0..(n - done) % period {
                    self.take(span.bytes_at(self.pos), label)?;
                }
                return Ok(());
            }
            seen[phase] = done;
            seen_at[phase] = self.pos;
            self.take(span.bytes_at(self.pos), label)?;
            done += 1;
        }
        Ok(())
    }
}

impl DecodeError {
    /// Puts the enclosing field in front of a nested field's name.
    pub(super) fn within(self, outer: &str, count: Count, index: usize) -> DecodeError {
        match self {
            DecodeError::Truncated {
                field,
                offset,
                need,
                len,
            } => DecodeError::Truncated {
                field: match count {
                    Count::One => format!("{outer}.{field}"),
                    _ => format!("{outer}[{index}].{field}"),
                },
                offset,
                need,
                len,
            },
            other => other,
        }
    }
}

pub(super) fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Appends the values of consecutive elements (`bytes` holds a whole number of them).
pub(super) fn push_values(prim: Primitive, bytes: &[u8], big: bool, out: &mut Vec<f32>) {
    if big {
        push_values_in::<true>(prim, bytes, out)
    } else {
        push_values_in::<false>(prim, bytes, out)
    }
}

fn push_values_in<const BIG: bool>(prim: Primitive, bytes: &[u8], out: &mut Vec<f32>) {
    let Some(size) = prim.size().filter(|&s| s > 0) else {
        return;
    };
    match prim {
        // The common cases get their own loops so the conversion is not re-dispatched per value.
        Primitive::Float64 => out.extend(bytes.chunks_exact(8).map(|c| {
            if BIG {
                f64::from_be_bytes(le(c)) as f32
            } else {
                f64::from_le_bytes(le(c)) as f32
            }
        })),
        Primitive::Float32 => out.extend(bytes.chunks_exact(4).map(|c| {
            if BIG {
                f32::from_be_bytes(le(c))
            } else {
                f32::from_le_bytes(le(c))
            }
        })),
        _ => out.extend(bytes.chunks_exact(size).map(|c| value_in::<BIG>(prim, c))),
    }
}

/// One value as f32; time and duration become seconds.
pub(super) fn value(prim: Primitive, b: &[u8], big: bool) -> f32 {
    if big {
        value_in::<true>(prim, b)
    } else {
        value_in::<false>(prim, b)
    }
}

macro_rules! num {
    ($t:ty, $b:expr, $big:expr) => {
        if $big {
            <$t>::from_be_bytes(le($b))
        } else {
            <$t>::from_le_bytes(le($b))
        }
    };
}

fn value_in<const BIG: bool>(prim: Primitive, b: &[u8]) -> f32 {
    match prim {
        Primitive::Bool | Primitive::Uint8 => b[0] as f32,
        Primitive::Int8 => b[0] as i8 as f32,
        Primitive::Int16 => num!(i16, b, BIG) as f32,
        Primitive::Uint16 => num!(u16, b, BIG) as f32,
        Primitive::Int32 => num!(i32, b, BIG) as f32,
        Primitive::Uint32 => num!(u32, b, BIG) as f32,
        Primitive::Int64 => num!(i64, b, BIG) as f32,
        Primitive::Uint64 => num!(u64, b, BIG) as f32,
        Primitive::Float32 => num!(f32, b, BIG),
        Primitive::Float64 => num!(f64, b, BIG) as f32,
        Primitive::Time => {
            let sec = num!(u32, b, BIG) as f64;
            let nsec = num!(u32, &b[4..], BIG) as f64;
            (sec + nsec * 1e-9) as f32
        }
        Primitive::Duration => {
            let sec = num!(i32, b, BIG) as f64;
            let nsec = num!(i32, &b[4..], BIG) as f64;
            (sec + nsec * 1e-9) as f32
        }
        Primitive::String | Primitive::WString => f32::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdr_prim(size: usize) -> Span {
        Span::values(size, 1, size.min(8))
    }

    #[test]
    fn spans_pad_per_start_position() {
        let f64s = cdr_prim(8);
        assert_eq!(f64s.bytes_at(0), 8);
        assert_eq!(f64s.bytes_at(1), 15);
        assert_eq!(f64s.bytes_at(4), 12);
        assert_eq!(f64s.uniform, None);
        // uint8 then float64: 16 bytes from 0, 1 + 7 + 8 from ... at 1: 1 + 6 + 8.
        let s = cdr_prim(1).then(&f64s);
        assert_eq!(s.bytes_at(0), 16);
        assert_eq!(s.bytes_at(1), 15);
        assert_eq!(s.bytes_at(7), 9);
        // ROS1: no padding, the same everywhere.
        let ros1 = Span::flat(1).then(&Span::flat(8));
        assert_eq!(ros1.uniform, Some(9));
    }

    #[test]
    fn times_matches_repeated_then() {
        let elem = cdr_prim(1).then(&cdr_prim(4)).then(&cdr_prim(2));
        let mut slow = Span::NOTHING;
        for n in 0..40 {
            assert_eq!(elem.times(n), slow, "{n}");
            slow = slow.then(&elem);
        }
    }

    #[test]
    fn repeat_matches_one_by_one() {
        let data = vec![0u8; 4096];
        for elem in [
            cdr_prim(1),
            cdr_prim(1).then(&cdr_prim(8)),
            cdr_prim(8).then(&cdr_prim(1)),
            cdr_prim(2).then(&cdr_prim(1)).then(&cdr_prim(4)),
        ] {
            for start in 0..8 {
                for n in 0..50 {
                    let mut a = Cursor::<true>::open(&data).unwrap();
                    a.pos = start;
                    a.repeat(&elem, n, "x").unwrap();
                    let mut b = Cursor::<true>::open(&data).unwrap();
                    b.pos = start;
                    for _ in 0..n {
                        b.take(elem.bytes_at(b.pos), "x").unwrap();
                    }
                    assert_eq!(a.pos, b.pos, "start {start} n {n}");
                }
            }
        }
    }
}
