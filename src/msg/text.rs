//! Reading one string field (e.g. `encoding` of sensor_msgs/Image, `header.frame_id`).
//!
//! Kept apart from [`super::Extractor`], which yields numbers: a string has no numeric value
//! to flatten, and callers want its bytes, not a float.

use super::def::{FieldType, Primitive, Schema};
use super::path::FieldPath;
use super::wire::{Cursor, Encoding, Programs, Skip};
use super::{DecodeError, MsgError};

/// A path to a scalar `string` field through scalar sub-messages, compiled against one schema
/// and wire format.
#[derive(Debug, Clone)]
pub struct StringReader {
    programs: Programs,
    /// One skip program per message walked into, the last one leading to the string.
    steps: Vec<Vec<Skip>>,
    label: Box<str>,
}

impl StringReader {
    /// For ROS1-serialized messages.
    pub fn new(schema: &Schema, path: &FieldPath) -> Result<StringReader, MsgError> {
        StringReader::with_encoding(schema, path, Encoding::Ros1)
    }

    pub fn with_encoding(
        schema: &Schema,
        path: &FieldPath,
        encoding: Encoding,
    ) -> Result<StringReader, MsgError> {
        let programs = Programs::new(schema, encoding);
        let err = |detail: String| MsgError::Path {
            path: path.to_string(),
            detail: format!("{detail} (in {})", schema.datatype()),
        };
        let mut msg = Schema::ROOT;
        let mut steps = Vec::new();
        let segs = path.segments();
        for (i, seg) in segs.iter().enumerate() {
            let def = schema.message(msg);
            let (fi, field) = def.field(&seg.name).ok_or_else(|| {
                err(format!(
                    "no field `{}` in {}; its fields: {}",
                    seg.name,
                    def.name,
                    def.field_list()
                ))
            })?;
            // Arrays would make the path name several strings (or need an index per message).
            if seg.selector.is_some() || field.is_array() {
                return Err(err(format!(
                    "`{}` is an array or indexed ({}); a string path walks scalar fields only",
                    seg.name, field.type_text
                )));
            }
            steps.push(programs.skip_program(&def.fields[..fi]));
            let last = i + 1 == segs.len();
            match (field.ty, last) {
                (FieldType::Primitive(Primitive::String), true) => {}
                (FieldType::Primitive(Primitive::WString), true) => {
                    return Err(err(format!(
                        "`{}` is a wstring, which bagstream does not decode (its CDR layout \
                         differs between ROS 2 middlewares)",
                        seg.name
                    )))
                }
                (FieldType::Message(sub), false) => msg = sub,
                (_, true) => {
                    return Err(err(format!(
                        "`{}` is a {}, not a string",
                        seg.name, field.type_text
                    )))
                }
                (_, false) => {
                    return Err(err(format!(
                        "`{}` is a {}, it has no fields",
                        seg.name, field.type_text
                    )))
                }
            }
        }
        if steps.is_empty() {
            return Err(err("empty path".into()));
        }
        Ok(StringReader {
            programs,
            steps,
            label: path.to_string().into(),
        })
    }

    /// The string's bytes as serialized (ROS1 strings are not guaranteed UTF-8), no copy; a
    /// CDR string's NUL terminator is left out.
    pub fn read<'a>(&self, data: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        match self.programs.encoding {
            Encoding::Ros1 => self.read_in(Cursor::<false>::open(data)?),
            Encoding::Cdr => self.read_in(Cursor::<true>::open(data)?),
        }
    }

    fn read_in<'a, const CDR: bool>(
        &self,
        mut cur: Cursor<'a, CDR>,
    ) -> Result<&'a [u8], DecodeError> {
        for step in &self.steps {
            self.programs.skip(&mut cur, step)?;
        }
        cur.string(&self.label)
    }
}
