//! The ROS1 wire format: bounds-checked reads, and the skip and flatten programs compiled from
//! a schema so that fields before a target are passed over without decoding them.

use super::def::{Arity, Field, FieldType, MsgId, Primitive, Schema};
use super::DecodeError;
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
    /// A run of fixed-size fields.
    Bytes {
        n: usize,
        label: Box<str>,
    },
    /// A variable array of fixed-size elements.
    SeqFixed {
        elem: usize,
        label: Box<str>,
    },
    Strings {
        count: Count,
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
        label: Box<str>,
    },
    Sub {
        msg: MsgId,
        count: Count,
        label: Box<str>,
    },
}

/// The skip and flatten programs of every message type of a schema.
#[derive(Debug, Clone)]
pub(super) struct Programs {
    /// Skips a whole message, per type.
    pub(super) skip: Vec<Vec<Skip>>,
    /// Min serialized size per type, to bound element counts before looping.
    pub(super) min_size: Vec<usize>,
    pub(super) fixed_size: Vec<Option<usize>>,
    /// The numeric leaves per type, or the path of its first non-numeric leaf.
    pub(super) flat: Vec<Result<Vec<Flat>, String>>,
}

impl Programs {
    pub(super) fn new(schema: &Schema) -> Programs {
        let n = schema.messages().len();
        let skip = (0..n)
            .map(|id| skip_program(schema, &schema.message(id).fields))
            .collect();
        let min_size = schema.messages().iter().map(|m| m.min_size).collect();
        let fixed_size = schema.messages().iter().map(|m| m.fixed_size).collect();
        let mut flat = vec![None; n];
        for id in 0..n {
            flat_program(schema, id, &mut flat);
        }
        Programs {
            skip,
            min_size,
            fixed_size,
            flat: flat
                .into_iter()
                .map(|f| f.unwrap_or_else(|| Err("unresolved".to_string())))
                .collect(),
        }
    }

    /// Size of one element of a field's type, when it does not depend on the data.
    pub(super) fn elem_size(&self, ty: FieldType) -> Option<usize> {
        match ty {
            FieldType::Primitive(p) => p.size(),
            FieldType::Message(m) => self.fixed_size[m],
        }
    }

    /// Whether messages of type `msg` always serialize to zero bytes (std_msgs/Empty): an array
    /// of them holds nothing to read, however long its count says it is, so loops over its
    /// elements are skipped (2^32 of them would cost seconds and yield nothing).
    pub(super) fn is_empty(&self, msg: MsgId) -> bool {
        self.fixed_size[msg] == Some(0)
    }

    pub(super) fn elem_min(&self, ty: FieldType) -> usize {
        match ty {
            FieldType::Primitive(p) => p.size().unwrap_or(4),
            FieldType::Message(m) => self.min_size[m],
        }
    }

    pub(super) fn skip(&self, cur: &mut Cursor<'_>, ops: &[Skip]) -> Result<(), DecodeError> {
        for op in ops {
            match op {
                Skip::Bytes { n, label } => {
                    cur.take(*n, label)?;
                }
                Skip::SeqFixed { elem, label } => {
                    let count = cur.count(*elem, label)?;
                    cur.take(count * elem, label)?;
                }
                Skip::Strings { count, label } => {
                    let count = cur.resolve(*count, 4, label)?;
                    for _ in 0..count {
                        cur.string(label)?;
                    }
                }
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
    pub(super) fn skip_elements(
        &self,
        cur: &mut Cursor<'_>,
        ty: FieldType,
        n: usize,
        label: &str,
    ) -> Result<(), DecodeError> {
        match (ty, self.elem_size(ty)) {
            (_, Some(size)) => {
                cur.take(n * size, label)?;
            }
            (FieldType::Primitive(_), None) => {
                for _ in 0..n {
                    cur.string(label)?;
                }
            }
            (FieldType::Message(msg), None) => {
                for i in 0..n {
                    self.skip(cur, &self.skip[msg])
                        .map_err(|e| e.within(label, Count::Prefixed, i))?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn flatten(
        &self,
        cur: &mut Cursor<'_>,
        msg: MsgId,
        out: &mut Vec<f32>,
    ) -> Result<(), DecodeError> {
        let Ok(prog) = &self.flat[msg] else {
            return Err(DecodeError::Invalid(
                "flattening a non-numeric message".into(),
            ));
        };
        for part in prog {
            match part {
                Flat::Numbers { prim, count, label } => {
                    let size = prim.size().unwrap_or(0);
                    let n = cur.resolve(*count, size, label)?;
                    let bytes = cur.take(n * size, label)?;
                    push_values(*prim, bytes, out);
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

    pub(super) fn flatten_names(
        &self,
        cur: &mut Cursor<'_>,
        msg: MsgId,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), DecodeError> {
        let Ok(prog) = &self.flat[msg] else {
            return Err(DecodeError::Invalid(
                "flattening a non-numeric message".into(),
            ));
        };
        for part in prog {
            match part {
                Flat::Numbers { prim, count, label } => {
                    let size = prim.size().unwrap_or(0);
                    let n = cur.resolve(*count, size, label)?;
                    cur.take(n * size, label)?;
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

/// Fills `flat[id]` (and those of the types it contains): the schema has no cycles, so the
/// recursion ends, and it is at most the schema's depth limit deep.
pub(super) fn flat_program(
    schema: &Schema,
    id: MsgId,
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
            FieldType::Primitive(Primitive::String) => {
                bad = Some(format!("{} (string)", leaf_name(f)));
            }
            FieldType::Primitive(prim) => prog.push(Flat::Numbers { prim, count, label }),
            FieldType::Message(sub) => {
                flat_program(schema, sub, flat);
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

pub(super) fn elem_size_in(schema: &Schema, f: &Field) -> Option<usize> {
    match f.ty {
        FieldType::Primitive(p) => p.size(),
        FieldType::Message(m) => schema.message(m).fixed_size,
    }
}

/// Compiles skipping over `fields`, merging runs of fixed-size fields into one step.
pub(super) fn skip_program(schema: &Schema, fields: &[Field]) -> Vec<Skip> {
    let mut ops = Vec::new();
    let mut run: Option<(usize, &str, &str)> = None;
    let flush = |ops: &mut Vec<Skip>, run: &mut Option<(usize, &str, &str)>| {
        if let Some((n, first, last)) = run.take() {
            let label = if first == last {
                first.to_string()
            } else {
                format!("{first}..{last}")
            };
            ops.push(Skip::Bytes {
                n,
                label: label.into(),
            });
        }
    };
    for f in fields {
        if let Some(size) = f.fixed_size {
            run = Some(match run {
                Some((n, first, _)) => (n + size, first, &f.name),
                None => (size, &f.name, &f.name),
            });
            continue;
        }
        flush(&mut ops, &mut run);
        let label: Box<str> = f.name.as_str().into();
        let count = Count::of(f.arity);
        ops.push(match (f.ty, elem_size_in(schema, f)) {
            (_, Some(elem)) => Skip::SeqFixed { elem, label },
            (FieldType::Primitive(_), None) => Skip::Strings { count, label },
            (FieldType::Message(msg), None) => Skip::Messages { count, msg, label },
        });
    }
    flush(&mut ops, &mut run);
    ops
}

/// A read position in one message's bytes; every read is bounds-checked.
#[derive(Clone, Copy)]
pub(super) struct Cursor<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub(super) fn truncated(&self, label: &str, need: usize) -> DecodeError {
        DecodeError::Truncated {
            field: label.to_string(),
            offset: self.pos,
            need,
            len: self.data.len(),
        }
    }

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

    pub(super) fn u32(&mut self, label: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, label)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn string(&mut self, label: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(label)? as usize;
        self.take(n, label)
    }

    /// Reads a length prefix and checks that `n` elements of at least `elem_min` bytes fit in
    /// what remains, so a lying prefix fails here instead of driving a loop or an allocation.
    pub(super) fn count(&mut self, elem_min: usize, label: &str) -> Result<usize, DecodeError> {
        let n = self.u32(label)? as usize;
        let need = n.saturating_mul(elem_min);
        if need > self.data.len() - self.pos {
            return Err(self.truncated(label, need));
        }
        Ok(n)
    }

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
pub(super) fn push_values(prim: Primitive, bytes: &[u8], out: &mut Vec<f32>) {
    let Some(size) = prim.size().filter(|&s| s > 0) else {
        return;
    };
    match prim {
        // The common cases get their own loops so the conversion is not re-dispatched per value.
        Primitive::Float64 => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(le(c)) as f32),
        ),
        Primitive::Float32 => out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(le(c)))),
        _ => out.extend(bytes.chunks_exact(size).map(|c| value(prim, c))),
    }
}

/// One value as f32; time and duration become seconds.
pub(super) fn value(prim: Primitive, b: &[u8]) -> f32 {
    match prim {
        Primitive::Bool | Primitive::Uint8 => b[0] as f32,
        Primitive::Int8 => b[0] as i8 as f32,
        Primitive::Int16 => i16::from_le_bytes(le(b)) as f32,
        Primitive::Uint16 => u16::from_le_bytes(le(b)) as f32,
        Primitive::Int32 => i32::from_le_bytes(le(b)) as f32,
        Primitive::Uint32 => u32::from_le_bytes(le(b)) as f32,
        Primitive::Int64 => i64::from_le_bytes(le(b)) as f32,
        Primitive::Uint64 => u64::from_le_bytes(le(b)) as f32,
        Primitive::Float32 => f32::from_le_bytes(le(b)),
        Primitive::Float64 => f64::from_le_bytes(le(b)) as f32,
        Primitive::Time => {
            let sec = u32::from_le_bytes(le(b)) as f64;
            let nsec = u32::from_le_bytes(le(&b[4..])) as f64;
            (sec + nsec * 1e-9) as f32
        }
        Primitive::Duration => {
            let sec = i32::from_le_bytes(le(b)) as f64;
            let nsec = i32::from_le_bytes(le(&b[4..])) as f64;
            (sec + nsec * 1e-9) as f32
        }
        Primitive::String => f32::NAN,
    }
}
