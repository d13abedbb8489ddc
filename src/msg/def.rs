//! Message definition parsers: ROS1 `.msg` text (a connection's `message_definition`) and
//! ROS 2 `.msg` text (schema encoding `ros2msg`), both into one [`Schema`] model that knows
//! nothing of wire formats (those are in `wire.rs`).
//!
//! The text holds the main type's fields, then for each dependency a line of `=` and
//! `MSG: pkg/Type` followed by its fields. Only the types reachable from the main type are
//! resolved, so a stray unused section cannot make a usable definition fail.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::MsgError;

/// ROS allows deeper nesting in principle; real types stay far below this, and the bound keeps
/// the recursive decoders' stack use small whatever a bag claims.
pub const MAX_DEPTH: usize = 64;

/// Dependencies fetched from outside the text (see [`TypeSource`]) stop here: real types need
/// a few dozen, and a search that keeps finding new ones is going wrong.
const MAX_TYPES: usize = 4096;

/// Index of a message type inside its [`Schema`].
pub type MsgId = usize;

/// A built-in field type. `Time` and `Duration` exist in ROS1 only; ROS 2 spells them as the
/// messages `builtin_interfaces/Time` and `Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Bool,
    Int8,
    Uint8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    Float32,
    Float64,
    String,
    Time,
    Duration,
    /// ROS 2 only. Parsed, but not decoded: its CDR layout differs between middlewares.
    WString,
}

impl Primitive {
    /// Parses a ROS1 primitive type name; the deprecated `byte` and `char` map to int8 and
    /// uint8.
    pub fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "bool" => Primitive::Bool,
            "int8" | "byte" => Primitive::Int8,
            "uint8" | "char" => Primitive::Uint8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::Uint16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::Uint32,
            "int64" => Primitive::Int64,
            "uint64" => Primitive::Uint64,
            "float32" => Primitive::Float32,
            "float64" => Primitive::Float64,
            "string" => Primitive::String,
            "time" => Primitive::Time,
            "duration" => Primitive::Duration,
            _ => return None,
        })
    }

    /// Parses a ROS 2 primitive type name: `byte` is an octet (unsigned) and `char` a uint8
    /// there; there is no `time` or `duration`.
    pub fn from_ros2_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "byte" | "char" => Primitive::Uint8,
            "wstring" => Primitive::WString,
            "time" | "duration" => return None,
            other => return Primitive::from_name(other),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
            Primitive::Int8 => "int8",
            Primitive::Uint8 => "uint8",
            Primitive::Int16 => "int16",
            Primitive::Uint16 => "uint16",
            Primitive::Int32 => "int32",
            Primitive::Uint32 => "uint32",
            Primitive::Int64 => "int64",
            Primitive::Uint64 => "uint64",
            Primitive::Float32 => "float32",
            Primitive::Float64 => "float64",
            Primitive::String => "string",
            Primitive::Time => "time",
            Primitive::Duration => "duration",
            Primitive::WString => "wstring",
        }
    }

    /// Serialized size in bytes; `None` for the length-prefixed strings.
    pub fn size(self) -> Option<usize> {
        match self {
            Primitive::Bool | Primitive::Int8 | Primitive::Uint8 => Some(1),
            Primitive::Int16 | Primitive::Uint16 => Some(2),
            Primitive::Int32 | Primitive::Uint32 | Primitive::Float32 => Some(4),
            Primitive::Int64 | Primitive::Uint64 | Primitive::Float64 => Some(8),
            Primitive::Time | Primitive::Duration => Some(8),
            Primitive::String | Primitive::WString => None,
        }
    }

    /// Whether the value converts to a number (time and duration count as seconds).
    pub fn is_numeric(self) -> bool {
        !self.is_text()
    }

    pub fn is_text(self) -> bool {
        matches!(self, Primitive::String | Primitive::WString)
    }
}

/// The element type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Primitive(Primitive),
    Message(MsgId),
}

/// Scalar, `T[N]` (no length prefix) or `T[]` / `T[<=N]` (length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Scalar,
    Fixed(usize),
    Variable,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub arity: Arity,
    /// The type as written in the definition (e.g. `Header`, `float64[9]`), for messages.
    pub type_text: String,
    /// Serialized size in the ROS1 wire format when it does not depend on the data (CDR
    /// sizes depend on alignment too; `wire.rs` works them out).
    pub fixed_size: Option<usize>,
    /// Smallest possible ROS1 serialized size (used to bound element counts before looping).
    pub min_size: usize,
    /// `T[<=N]` (ROS 2): the sequence's upper bound. Kept for the model; decoding checks
    /// lengths against the bytes present, not against it.
    pub max_len: Option<usize>,
    /// `string<=N` (ROS 2): the string's upper bound.
    pub string_bound: Option<usize>,
    /// The default value as written (ROS 2: `int32 x 5`, `int32[] y [1, 2]`).
    pub default: Option<String>,
}

impl Field {
    pub fn is_array(&self) -> bool {
        self.arity != Arity::Scalar
    }
}

/// A constant line (`type NAME=value`): kept for completeness, it takes no bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    pub name: String,
    pub ty: Primitive,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageDef {
    /// Full name: `pkg/Type`, the main type as the caller named it (ROS 2: `pkg/msg/Type`).
    pub name: String,
    pub fields: Vec<Field>,
    pub constants: Vec<Constant>,
    /// ROS1 wire sizes, as for [`Field`].
    pub fixed_size: Option<usize>,
    pub min_size: usize,
}

impl MessageDef {
    pub fn field(&self, name: &str) -> Option<(usize, &Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }

    /// `name (type), ...`: what an error lists when a path names a field that is not there.
    pub fn field_list(&self) -> String {
        if self.fields.is_empty() {
            return "(none)".to_string();
        }
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{} ({})", f.name, f.type_text))
            .collect();
        parts.join(", ")
    }
}

/// The language a definition text is written in, as containers name it (MCAP schema
/// encoding, rosbag2 `message_definitions.encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaFormat {
    /// `ros1msg`: ROS1 .msg text with its dependencies (what ROS1 bags carry).
    Ros1Msg,
    /// `ros2msg`: ROS 2 .msg text with its dependencies.
    Ros2Msg,
    /// `ros2idl`: OMG IDL. Recognised, not parsed (see docs/ros2-messages.md).
    Ros2Idl,
}

impl SchemaFormat {
    /// `ros1msg`, `ros2msg`, `ros2idl`; anything else (`""`, `unknown`, `jsonschema`, ...) is
    /// not a ROS message definition.
    pub fn from_name(name: &str) -> Option<SchemaFormat> {
        Some(match name {
            "ros1msg" => SchemaFormat::Ros1Msg,
            "ros2msg" => SchemaFormat::Ros2Msg,
            "ros2idl" => SchemaFormat::Ros2Idl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SchemaFormat::Ros1Msg => "ros1msg",
            SchemaFormat::Ros2Msg => "ros2msg",
            SchemaFormat::Ros2Idl => "ros2idl",
        }
    }
}

impl fmt::Display for SchemaFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a ROS 2 definition's dependencies come from when its text lacks them: the
/// definition store's `--msg-path` directories and shipped set. `name` is `pkg/Type`.
pub(super) trait TypeSource {
    /// The .msg text of `name`, if this source has it.
    fn find(&self, name: &str) -> Result<Option<String>, MsgError>;
    /// Where [`TypeSource::find`] looked for `name`, for the error when nothing had it.
    fn looked(&self, name: &str) -> String;
}

/// A parsed definition: message types reachable from the main type, main type at index 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    messages: Vec<MessageDef>,
}

impl Schema {
    pub const ROOT: MsgId = 0;

    /// Parses ROS1 .msg text (format `ros1msg`).
    pub fn parse(datatype: &str, definition: &str) -> Result<Schema, MsgError> {
        Parser::new(datatype, definition, Dialect::Ros1)?.run(None)
    }

    /// Parses ROS 2 .msg text (format `ros2msg`, as MCAP and rosbag2 store it). Every type
    /// used must be in the text; [`super::DefinitionStore`] also finds them elsewhere.
    pub fn parse_ros2(datatype: &str, definition: &str) -> Result<Schema, MsgError> {
        Parser::new(datatype, definition, Dialect::Ros2)?.run(None)
    }

    /// Parses `definition` in `format`; `ros2idl` is refused with an error naming the type.
    pub fn parse_format(
        format: SchemaFormat,
        datatype: &str,
        definition: &str,
    ) -> Result<Schema, MsgError> {
        match format {
            SchemaFormat::Ros1Msg => Schema::parse(datatype, definition),
            SchemaFormat::Ros2Msg => Schema::parse_ros2(datatype, definition),
            SchemaFormat::Ros2Idl => Err(idl_refused(datatype)),
        }
    }

    /// ROS 2 text whose missing dependencies come from `source`.
    pub(super) fn parse_ros2_with(
        datatype: &str,
        definition: &str,
        source: &dyn TypeSource,
    ) -> Result<Schema, MsgError> {
        Parser::new(datatype, definition, Dialect::Ros2)?.run(Some(source))
    }

    /// The main type's name as given to [`Schema::parse`].
    pub fn datatype(&self) -> &str {
        &self.messages[Self::ROOT].name
    }

    pub fn root(&self) -> &MessageDef {
        &self.messages[Self::ROOT]
    }

    /// # Panics
    /// On an id that did not come from this schema.
    pub fn message(&self, id: MsgId) -> &MessageDef {
        &self.messages[id]
    }

    pub fn messages(&self) -> &[MessageDef] {
        &self.messages
    }

    /// Every leaf field reachable from the main type, as `(path, type)` in definition order,
    /// e.g. `("pose.position.x", "float64")`; arrays of messages show as `poses[]`.
    pub fn leaves(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.collect_leaves(Self::ROOT, "", &mut out);
        out
    }

    fn collect_leaves(&self, id: MsgId, prefix: &str, out: &mut Vec<(String, String)>) {
        for f in &self.messages[id].fields {
            let path = format!("{prefix}{}", f.name);
            match f.ty {
                FieldType::Primitive(_) => out.push((path, f.type_text.clone())),
                FieldType::Message(sub) => {
                    let path = match f.arity {
                        Arity::Scalar => path,
                        Arity::Fixed(n) => format!("{path}[{n}]"),
                        Arity::Variable => format!("{path}[]"),
                    };
                    self.collect_leaves(sub, &format!("{path}."), out);
                }
            }
        }
    }
}

pub(super) fn idl_refused(datatype: &str) -> MsgError {
    MsgError::Definition {
        datatype: datatype.to_string(),
        detail: "the definition is OMG IDL (schema encoding ros2idl), which bagstream does not \
                 parse; give the type's .msg file with --msg-path"
            .to_string(),
    }
}

/// `pkg/msg/Type` -> `pkg/Type`: ROS 2 names types both ways (topic types with `msg/`, field
/// types and `MSG:` lines without), and lookups must meet.
pub fn normalize_type(name: &str) -> String {
    let mut parts = name.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(pkg), Some("msg"), Some(ty), None) => format!("{pkg}/{ty}"),
        _ => name.to_string(),
    }
}

/// Whether `name` is `builtin_interfaces/Time` (either spelling): ROS 2's absolute time.
pub(super) fn is_ros2_time(name: &str) -> bool {
    normalize_type(name) == "builtin_interfaces/Time"
}

impl fmt::Display for Schema {
    /// One line per message type: `pkg/Type: field (type), ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.messages {
            writeln!(f, "{}: {}", m.name, m.field_list())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Ros1,
    Ros2,
}

impl Dialect {
    fn primitive(self, name: &str) -> Option<Primitive> {
        match self {
            Dialect::Ros1 => Primitive::from_name(name),
            Dialect::Ros2 => Primitive::from_ros2_name(name),
        }
    }
}

/// A field line before its type name is resolved.
struct RawField {
    name: String,
    base: String,
    arity: Arity,
    type_text: String,
    max_len: Option<usize>,
    string_bound: Option<usize>,
    default: Option<String>,
}

struct RawMessage {
    name: String,
    fields: Vec<RawField>,
    constants: Vec<Constant>,
}

struct Parser<'s> {
    datatype: String,
    dialect: Dialect,
    sections: Vec<RawMessage>,
    by_name: HashMap<String, usize>,
    source: Option<&'s dyn TypeSource>,
}

enum Mark {
    Visiting,
    Done,
}

impl<'s> Parser<'s> {
    fn new(datatype: &str, definition: &str, dialect: Dialect) -> Result<Parser<'s>, MsgError> {
        let err = |detail: String| MsgError::Definition {
            datatype: datatype.to_string(),
            detail,
        };
        if definition.trim().is_empty() && normalize_type(datatype) != "std_msgs/Empty" {
            // std_msgs/Empty really has no fields; for any other type an empty text means the
            // writer did not record the definition, and nothing can be decoded.
            return Err(err(
                "the connection's message definition is empty, so its messages cannot be decoded"
                    .to_string(),
            ));
        }
        if !datatype.contains('/') {
            return Err(err(
                "the type name has no package (expected pkg/Type)".to_string()
            ));
        }
        let mut parser = Parser {
            datatype: datatype.to_string(),
            dialect,
            sections: Vec::new(),
            by_name: HashMap::new(),
            source: None,
        };
        for (i, text) in split_sections(definition).into_iter().enumerate() {
            let (name, body) = if i == 0 {
                (datatype.to_string(), text)
            } else {
                section_name(text).ok_or_else(|| {
                    err(format!(
                        "dependency section {i} does not start with `MSG: pkg/Type`"
                    ))
                })?
            };
            if i == 0 && dialect == Dialect::Ros2 {
                if let Some((request, response)) = split_service(body) {
                    parser.service_event(request, response)?;
                    continue;
                }
            }
            let msg = parse_body(&name, body, dialect).map_err(&err)?;
            parser.push(msg);
        }
        Ok(parser)
    }

    fn push(&mut self, msg: RawMessage) -> usize {
        // The first section of a name wins; later duplicates add nothing.
        self.by_name
            .entry(normalize_type(&msg.name))
            .or_insert(self.sections.len());
        self.sections.push(msg);
        self.sections.len() - 1
    }

    /// A service's `_Event` type (Iron and later record these on `<service>/_service_event`)
    /// whose definition, as rosbag2 stores it, is the .srv text `request --- response`: the
    /// event message is built around the two halves as rosidl generates it.
    fn service_event(&mut self, request: &str, response: &str) -> Result<(), MsgError> {
        let datatype = self.datatype.clone();
        let err = |detail: String| MsgError::Definition {
            datatype: datatype.clone(),
            detail,
        };
        let Some(service) = datatype
            .strip_suffix("_Event")
            .filter(|s| s.split('/').nth(1) == Some("srv"))
        else {
            return Err(err(
                "the definition is a service's (request `---` response), not a message's"
                    .to_string(),
            ));
        };
        let pkg = service.split('/').next().unwrap_or_default();
        let name = service.rsplit('/').next().unwrap_or_default();
        let half = |suffix: &str| format!("{pkg}/{name}_{suffix}");
        let bounded = |field: &str, ty: String| RawField {
            name: field.to_string(),
            type_text: format!("{ty}[<=1]"),
            base: ty,
            arity: Arity::Variable,
            max_len: Some(1),
            string_bound: None,
            default: None,
        };
        let info = "service_msgs/ServiceEventInfo".to_string();
        self.push(RawMessage {
            name: datatype.clone(),
            fields: vec![
                RawField {
                    name: "info".to_string(),
                    base: info.clone(),
                    arity: Arity::Scalar,
                    type_text: info,
                    max_len: None,
                    string_bound: None,
                    default: None,
                },
                bounded("request", half("Request")),
                bounded("response", half("Response")),
            ],
            constants: Vec::new(),
        });
        for (suffix, body) in [("Request", request), ("Response", response)] {
            let msg = parse_body(&half(suffix), body, Dialect::Ros2).map_err(&err)?;
            self.push(msg);
        }
        // The event's own header type is fixed by rosidl; the stored text never has it.
        for ty in ["service_msgs/ServiceEventInfo", "builtin_interfaces/Time"] {
            if !self.by_name.contains_key(ty) {
                let text = super::shipped::find(ty).expect("shipped with the event layout");
                let msg = parse_body(ty, text, Dialect::Ros2).map_err(&err)?;
                self.by_name.insert(ty.to_string(), self.sections.len());
                self.sections.push(msg);
            }
        }
        Ok(())
    }

    fn err(&self, detail: String) -> MsgError {
        MsgError::Definition {
            datatype: self.datatype.clone(),
            detail,
        }
    }

    /// Finds the section a field's type refers to, as ROS does: a qualified name as is, a bare
    /// name in the enclosing package, `Header` as `std_msgs/Header`; then, because old bags
    /// define `std_msgs/Header` as `MSG: roslib/Header`, a unique match on the short name.
    fn lookup(&self, enclosing: &str, base: &str) -> Option<usize> {
        if let Some(&i) = self.by_name.get(&qualify(enclosing, base)) {
            return Some(i);
        }
        let short = base.rsplit('/').next().unwrap_or(base);
        let mut found = self
            .sections
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, s)| s.name.rsplit('/').next() == Some(short));
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// Adds, from the source, every type reachable from the main type that the text lacks.
    fn fetch_missing(&mut self, source: &dyn TypeSource) -> Result<(), MsgError> {
        let mut queue = vec![0];
        let mut seen: HashSet<usize> = HashSet::from([0]);
        while let Some(i) = queue.pop() {
            let wanted: Vec<(String, String)> = self.sections[i]
                .fields
                .iter()
                .filter(|f| self.dialect.primitive(&f.base).is_none())
                .map(|f| (self.sections[i].name.clone(), f.base.clone()))
                .collect();
            for (enclosing, base) in wanted {
                let j = match self.lookup(&enclosing, &base) {
                    Some(j) => j,
                    None => {
                        let name = qualify(&enclosing, &base);
                        let Some(text) = source.find(&name)? else {
                            continue;
                        };
                        if self.sections.len() >= MAX_TYPES {
                            return Err(self.err(format!(
                                "more than {MAX_TYPES} message types are needed (at {name})"
                            )));
                        }
                        let msg =
                            parse_body(&name, &text, self.dialect).map_err(|d| self.err(d))?;
                        self.push(msg)
                    }
                };
                if seen.insert(j) {
                    queue.push(j);
                }
            }
        }
        Ok(())
    }

    fn run(mut self, source: Option<&'s dyn TypeSource>) -> Result<Schema, MsgError> {
        if let Some(source) = source {
            self.fetch_missing(source)?;
            self.source = Some(source);
        }
        // Resolve depth-first from the main type so cycles show as a type met while visiting
        // itself, and each reachable type becomes one MessageDef.
        let mut ids: HashMap<usize, MsgId> = HashMap::new();
        let mut marks: HashMap<usize, Mark> = HashMap::new();
        let mut out: Vec<Option<MessageDef>> = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        self.resolve(0, &mut ids, &mut marks, &mut out, &mut chain)?;
        let messages = out
            .into_iter()
            .map(|m| m.expect("every id is filled once resolved"));
        Ok(Schema {
            messages: messages.collect(),
        })
    }

    fn unknown_type(&self, field: &str, enclosing: &str, base: &str) -> MsgError {
        let name = qualify(enclosing, base);
        match self.source {
            None => self.err(format!(
                "field `{field}` of {enclosing} has unknown type `{base}` (not a built-in type, \
                 and the definition has no `MSG: {name}` section)"
            )),
            Some(source) => MsgError::Missing {
                datatype: self.datatype.clone(),
                missing: name.clone(),
                detail: format!(
                    "field `{field}` of {enclosing} has type `{base}`, whose definition was found \
                     nowhere: not a built-in type, no `MSG: {name}` section in the definition, \
                     {}",
                    source.looked(&name)
                ),
            },
        }
    }

    fn resolve(
        &self,
        section: usize,
        ids: &mut HashMap<usize, MsgId>,
        marks: &mut HashMap<usize, Mark>,
        out: &mut Vec<Option<MessageDef>>,
        chain: &mut Vec<String>,
    ) -> Result<MsgId, MsgError> {
        let raw = &self.sections[section];
        match marks.get(&section) {
            Some(Mark::Done) => return Ok(ids[&section]),
            Some(Mark::Visiting) => {
                chain.push(raw.name.clone());
                return Err(self.err(format!(
                    "type {} contains itself ({})",
                    raw.name,
                    chain.join(" -> ")
                )));
            }
            None => {}
        }
        if chain.len() >= MAX_DEPTH {
            return Err(self.err(format!(
                "types nest deeper than {MAX_DEPTH} levels (at {} via {})",
                raw.name,
                chain.last().map(String::as_str).unwrap_or_default()
            )));
        }
        marks.insert(section, Mark::Visiting);
        let id = out.len();
        ids.insert(section, id);
        out.push(None);
        chain.push(raw.name.clone());

        let mut fields = Vec::with_capacity(raw.fields.len());
        for rf in &raw.fields {
            let ty = if let Some(p) = self.dialect.primitive(&rf.base) {
                FieldType::Primitive(p)
            } else {
                let Some(target) = self.lookup(&raw.name, &rf.base) else {
                    return Err(self.unknown_type(&rf.name, &raw.name, &rf.base));
                };
                if let Some(last) = chain.last_mut() {
                    *last = format!("{}.{}", raw.name, rf.name);
                }
                let sub = self.resolve(target, ids, marks, out, chain)?;
                FieldType::Message(sub)
            };
            let (elem_fixed, elem_min) = match ty {
                FieldType::Primitive(p) => (p.size(), p.size().unwrap_or(4)),
                FieldType::Message(sub) => {
                    let m = out[sub].as_ref().expect("resolved before use");
                    (m.fixed_size, m.min_size)
                }
            };
            if let (Arity::Fixed(n), Some(size)) = (rf.arity, elem_fixed) {
                if size
                    .checked_mul(n)
                    .is_none_or(|total| total > u32::MAX as usize)
                {
                    return Err(self.err(format!(
                        "field `{}` of {}: array `{}` is larger than any message can be",
                        rf.name, raw.name, rf.type_text
                    )));
                }
            }
            let (fixed_size, min_size) = match rf.arity {
                Arity::Scalar => (elem_fixed, elem_min),
                // Zero elements take zero bytes whatever the element: so a type that can only
                // be empty has fixed size 0, which the decoders rely on to skip its arrays.
                Arity::Fixed(0) => (Some(0), 0),
                Arity::Fixed(n) => (
                    elem_fixed.and_then(|s| s.checked_mul(n)),
                    elem_min.saturating_mul(n),
                ),
                Arity::Variable => (None, 4),
            };
            fields.push(Field {
                name: rf.name.clone(),
                ty,
                arity: rf.arity,
                type_text: rf.type_text.clone(),
                fixed_size,
                min_size,
                max_len: rf.max_len,
                string_bound: rf.string_bound,
                default: rf.default.clone(),
            });
        }
        let fixed_size = fields.iter().try_fold(0usize, |acc, f| {
            f.fixed_size.and_then(|s| acc.checked_add(s))
        });
        let min_size = fields
            .iter()
            .fold(0usize, |acc, f| acc.saturating_add(f.min_size));
        out[id] = Some(MessageDef {
            name: raw.name.clone(),
            fields,
            constants: raw.constants.clone(),
            fixed_size,
            min_size,
        });
        chain.pop();
        marks.insert(section, Mark::Done);
        Ok(id)
    }
}

/// The full name (`pkg/Type`) a field's type refers to before any fallback.
fn qualify(enclosing: &str, base: &str) -> String {
    if base == "Header" {
        "std_msgs/Header".to_string()
    } else if base.contains('/') {
        normalize_type(base)
    } else {
        let pkg = enclosing.split('/').next().unwrap_or_default();
        format!("{pkg}/{base}")
    }
}

/// Splits on separator lines (only `=`, at least three of them).
fn split_sections(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.len() >= 3 && t.bytes().all(|b| b == b'=') {
            out.push(&text[start..pos]);
            start = pos + line.len();
        }
        pos += line.len();
    }
    out.push(&text[start..]);
    out
}

/// A .srv text's request and response, split on its `---` line.
fn split_service(text: &str) -> Option<(&str, &str)> {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if strip_comment_ros2(line).trim() == "---" {
            return Some((&text[..pos], &text[pos + line.len()..]));
        }
        pos += line.len();
    }
    None
}

/// `MSG: pkg/Type` on the first non-blank line of a dependency section.
fn section_name(text: &str) -> Option<(String, &str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.is_empty() {
            offset += line.len();
            continue;
        }
        let name = t.strip_prefix("MSG:")?.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        return Some((name.to_string(), &text[offset + line.len()..]));
    }
    None
}

fn parse_body(msg: &str, body: &str, dialect: Dialect) -> Result<RawMessage, String> {
    match dialect {
        Dialect::Ros1 => parse_body_ros1(msg, body),
        Dialect::Ros2 => parse_body_ros2(msg, body),
    }
}

fn parse_body_ros1(msg: &str, body: &str) -> Result<RawMessage, String> {
    let mut fields: Vec<RawField> = Vec::new();
    let mut constants = Vec::new();
    for line in body.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        if code.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("{msg}: line `{}`: {what}", line.trim());
        let (ty, rest) = code
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `type name`"))?;
        let rest = rest.trim();
        if let Some(eq) = code.find('=') {
            // A constant; a string constant's value is the raw rest of the line, '#' included.
            let name = code[..eq]
                .split_whitespace()
                .nth(1)
                .ok_or_else(|| bad("constant without a name"))?;
            let prim = Primitive::from_name(ty)
                .filter(|p| *p != Primitive::Time && *p != Primitive::Duration)
                .ok_or_else(|| bad("constants must have a built-in type"))?;
            let value = if prim == Primitive::String {
                let raw_eq = line.find('=').unwrap_or_default();
                line[raw_eq + 1..].trim().to_string()
            } else {
                code[eq + 1..].trim().to_string()
            };
            constants.push(Constant {
                name: name.to_string(),
                ty: prim,
                value,
            });
            continue;
        }
        if rest.is_empty() || rest.contains(char::is_whitespace) || !is_ident(rest) {
            return Err(bad("expected `type name`"));
        }
        let (base, arity) = match ty.find('[') {
            None => (ty, Arity::Scalar),
            Some(open) => {
                let inner = ty[open + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| bad("unclosed array brackets"))?;
                let arity = if inner.is_empty() {
                    Arity::Variable
                } else {
                    Arity::Fixed(
                        inner
                            .parse::<usize>()
                            .map_err(|_| bad("array length is not a number"))?,
                    )
                };
                (&ty[..open], arity)
            }
        };
        if !is_type_name(base) {
            return Err(bad("malformed type name"));
        }
        if fields.iter().any(|f| f.name == rest) {
            return Err(bad("duplicate field name"));
        }
        fields.push(RawField {
            name: rest.to_string(),
            base: base.to_string(),
            arity,
            type_text: ty.to_string(),
            max_len: None,
            string_bound: None,
            default: None,
        });
    }
    Ok(RawMessage {
        name: msg.to_string(),
        fields,
        constants,
    })
}

/// The code part of a ROS 2 line: `#` starts a comment unless it is inside a quoted string
/// (default values and string constants are quoted there, and may hold `#`).
fn strip_comment_ros2(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return &line[..i],
            None => {}
        }
    }
    line
}

/// A ROS 2 type token: `base`, `string<=N`, then `[]`, `[N]` or `[<=N]`.
struct TypeToken<'a> {
    base: &'a str,
    string_bound: Option<usize>,
    arity: Arity,
    max_len: Option<usize>,
}

fn parse_type_ros2(ty: &str) -> Result<TypeToken<'_>, &'static str> {
    let number = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| "bound is not a number")
    };
    let (elem, arity, max_len) = match ty.find('[') {
        None => (ty, Arity::Scalar, None),
        Some(open) => {
            let inner = ty[open + 1..]
                .strip_suffix(']')
                .ok_or("unclosed array brackets")?;
            let (arity, max_len) = if inner.is_empty() {
                (Arity::Variable, None)
            } else if let Some(bound) = inner.strip_prefix("<=") {
                (Arity::Variable, Some(number(bound)?))
            } else {
                (
                    Arity::Fixed(
                        inner
                            .parse::<usize>()
                            .map_err(|_| "array length is not a number")?,
                    ),
                    None,
                )
            };
            (&ty[..open], arity, max_len)
        }
    };
    let (base, string_bound) = match elem.split_once("<=") {
        None => (elem, None),
        Some((b, n)) if b == "string" || b == "wstring" => (b, Some(number(n)?)),
        Some(_) => return Err("only string and wstring take a bound `<=N`"),
    };
    if !is_type_name(base) {
        return Err("malformed type name");
    }
    Ok(TypeToken {
        base,
        string_bound,
        arity,
        max_len,
    })
}

fn parse_body_ros2(msg: &str, body: &str) -> Result<RawMessage, String> {
    let mut fields: Vec<RawField> = Vec::new();
    let mut constants = Vec::new();
    for line in body.lines() {
        let code = strip_comment_ros2(line).trim();
        if code.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("{msg}: line `{}`: {what}", line.trim());
        if code == "---" {
            return Err(bad(
                "`---` separates a service's request and response; a message has none",
            ));
        }
        let (ty, rest) = code
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `type name`"))?;
        let rest = rest.trim_start();
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = rest[name_end..].trim_start();
        if let Some(value) = after.strip_prefix('=') {
            let prim = Primitive::from_ros2_name(ty)
                .filter(|_| is_ident(name))
                .ok_or_else(|| bad("a constant is `builtin_type NAME=value`"))?;
            constants.push(Constant {
                name: name.to_string(),
                ty: prim,
                value: value.trim().to_string(),
            });
            continue;
        }
        if !is_ident(name) || (!after.is_empty() && after.len() == rest[name_end..].len()) {
            return Err(bad("expected `type name`"));
        }
        let t = parse_type_ros2(ty).map_err(bad)?;
        if fields.iter().any(|f| f.name == name) {
            return Err(bad("duplicate field name"));
        }
        fields.push(RawField {
            name: name.to_string(),
            base: t.base.to_string(),
            arity: t.arity,
            type_text: ty.to_string(),
            max_len: t.max_len,
            string_bound: t.string_bound,
            default: (!after.is_empty()).then(|| after.to_string()),
        });
    }
    Ok(RawMessage {
        name: msg.to_string(),
        fields,
        constants,
    })
}

fn is_type_name(base: &str) -> bool {
    !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/')
}

fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::testdefs::*;

    fn parse(datatype: &str, text: &str) -> Schema {
        Schema::parse(datatype, text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn def_err(datatype: &str, text: &str) -> String {
        let e = Schema::parse(datatype, text).unwrap_err();
        assert!(matches!(&e, MsgError::Definition { datatype: d, .. } if d == datatype));
        e.to_string()
    }

    #[test]
    fn turtle_pose_is_five_float32() {
        let s = parse("turtlesim/Pose", TURTLE_POSE);
        let names: Vec<&str> = s.root().fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["x", "y", "theta", "linear_velocity", "angular_velocity"]
        );
        assert!(s
            .root()
            .fields
            .iter()
            .all(|f| f.ty == FieldType::Primitive(Primitive::Float32) && f.arity == Arity::Scalar));
        assert_eq!(s.root().fixed_size, Some(20));
        assert_eq!(s.datatype(), "turtlesim/Pose");
    }

    #[test]
    fn pose_stamped_nests_and_sizes() {
        let s = parse("geometry_msgs/PoseStamped", POSE_STAMPED);
        assert_eq!(s.root().fixed_size, None, "the header has a string");
        assert_eq!(s.root().min_size, 4 + 8 + 4 + 7 * 8);
        let (_, pose) = s.root().field("pose").unwrap();
        let FieldType::Message(pid) = pose.ty else {
            panic!("pose is a message")
        };
        assert_eq!(s.message(pid).name, "geometry_msgs/Pose");
        assert_eq!(s.message(pid).fixed_size, Some(56));
        let leaves = s.leaves();
        assert_eq!(leaves[0], ("header.seq".to_string(), "uint32".to_string()));
        assert_eq!(leaves[1], ("header.stamp".to_string(), "time".to_string()));
        assert_eq!(
            leaves.last().unwrap(),
            &("pose.orientation.w".to_string(), "float64".to_string())
        );
        assert_eq!(leaves.len(), 3 + 7);
    }

    #[test]
    fn tf_message_resolves_bare_names_in_package_and_header() {
        // `Header` means std_msgs/Header; `Transform` resolves in geometry_msgs; `Vector3` in
        // geometry_msgs/Transform resolves to geometry_msgs/Vector3.
        let s = parse("tf2_msgs/TFMessage", TF_MESSAGE);
        let (_, t) = s.root().field("transforms").unwrap();
        assert_eq!(t.arity, Arity::Variable);
        let FieldType::Message(ts) = t.ty else {
            panic!()
        };
        let ts = s.message(ts);
        assert_eq!(ts.name, "geometry_msgs/TransformStamped");
        assert_eq!(
            ts.field_list(),
            "header (Header), child_frame_id (string), transform (Transform)"
        );
        let leaves = s.leaves();
        assert!(leaves.contains(&(
            "transforms[].transform.rotation.w".to_string(),
            "float64".to_string()
        )));
        assert!(leaves.contains(&(
            "transforms[].header.frame_id".to_string(),
            "string".to_string()
        )));
    }

    #[test]
    fn old_roslib_header_stands_in_for_std_msgs_header() {
        let s = parse("sensor_msgs/JointState", JOINT_STATE_ROSLIB);
        let (_, h) = s.root().field("header").unwrap();
        let FieldType::Message(hid) = h.ty else {
            panic!()
        };
        assert_eq!(s.message(hid).name, "roslib/Header");
        assert_eq!(
            s.message(hid).field_list(),
            "seq (uint32), stamp (time), frame_id (string)"
        );
        let (_, name) = s.root().field("name").unwrap();
        assert_eq!(name.ty, FieldType::Primitive(Primitive::String));
        assert_eq!(name.arity, Arity::Variable);
    }

    #[test]
    fn float64_multi_array_with_aligned_columns() {
        let s = parse("std_msgs/Float64MultiArray", FLOAT64_MULTI_ARRAY);
        assert_eq!(
            s.root().field_list(),
            "layout (MultiArrayLayout), data (float64[])"
        );
        assert_eq!(s.messages().len(), 3);
        assert_eq!(s.messages()[2].name, "std_msgs/MultiArrayDimension");
    }

    #[test]
    fn all_primitive_types_arrays_and_aliases() {
        let text = "bool a\nint8 b\nuint8 c\nint16 d\nuint16 e\nint32 f\nuint32 g\nint64 h\n\
                    uint64 i\nfloat32 j\nfloat64 k\nstring l\ntime m\nduration n\nbyte o\nchar p\n\
                    float64[9] q\nuint8[] r\n";
        let s = parse("test/All", text);
        let f = &s.root().fields;
        assert_eq!(f.len(), 18);
        assert_eq!(f[14].ty, FieldType::Primitive(Primitive::Int8));
        assert_eq!(f[15].ty, FieldType::Primitive(Primitive::Uint8));
        assert_eq!(f[16].arity, Arity::Fixed(9));
        assert_eq!(f[16].fixed_size, Some(72));
        assert_eq!(f[17].arity, Arity::Variable);
        assert_eq!(f[11].fixed_size, None);
        assert_eq!(f[11].min_size, 4);
        assert_eq!(f[12].fixed_size, Some(8));
    }

    #[test]
    fn constants_take_no_bytes_and_string_constants_keep_hash() {
        let text = "# a comment = with equals\n\
                    int32 X=5 # five\n\
                    string GREETING=hello # not a comment\n\
                    float64 Y = 1.5\n\
                    uint8 v  # trailing comment = 3\n";
        let s = parse("test/Consts", text);
        assert_eq!(s.root().fields.len(), 1);
        assert_eq!(s.root().fields[0].name, "v");
        assert_eq!(s.root().fixed_size, Some(1));
        let c = &s.root().constants;
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].name.as_str(), c[0].value.as_str()), ("X", "5"));
        assert_eq!(c[1].value, "hello # not a comment");
        assert_eq!((c[2].name.as_str(), c[2].value.as_str()), ("Y", "1.5"));
    }

    #[test]
    fn unique_short_name_fallback() {
        let text = "Inner a\n===\nMSG: other_pkg/Inner\nint32 x\n";
        let s = parse("mine/Outer", text);
        assert_eq!(s.messages()[1].name, "other_pkg/Inner");
        // Two candidates: no guessing.
        let text = "Inner a\n===\nMSG: p1/Inner\nint32 x\n===\nMSG: p2/Inner\nint32 y\n";
        let e = def_err("mine/Outer", text);
        assert!(e.contains("unknown type `Inner`"), "{e}");
    }

    #[test]
    fn empty_definition_is_a_clear_error() {
        let e = def_err("led_array_msgs/Status", "");
        assert!(
            e.contains("led_array_msgs/Status") && e.contains("empty"),
            "{e}"
        );
        assert!(def_err("led_array_msgs/Status", "\n  \n").contains("empty"));
        // std_msgs/Empty really has no fields.
        assert!(parse("std_msgs/Empty", "").root().fields.is_empty());
    }

    #[test]
    fn unknown_type_names_datatype_and_field() {
        let e = def_err("test/Bad", "int32 a\nfoo/Missing b\n");
        assert!(
            e.contains("test/Bad") && e.contains("`b`") && e.contains("foo/Missing"),
            "{e}"
        );
        let e = def_err("test/Bad", "flaot64 x\n");
        assert!(e.contains("`x`") && e.contains("test/flaot64"), "{e}");
    }

    #[test]
    fn recursive_types_are_refused() {
        let e = def_err("test/Node", "int32 v\nNode[] children\n");
        assert!(
            e.contains("contains itself") && e.contains("test/Node.children -> test/Node"),
            "{e}"
        );
        let text = "test/A a\n===\nMSG: test/A\ntest/B b\n===\nMSG: test/B\ntest/A[] back\n";
        let e = def_err("test/Top", text);
        assert!(
            e.contains("contains itself") && e.contains("test/A.b -> test/B.back -> test/A"),
            "{e}"
        );
    }

    fn chain(depth: usize) -> String {
        // test/Top -> test/L1 -> ... -> test/L{depth-1}, `depth` message levels in all.
        let mut text = String::from("test/L1 next\n");
        for i in 1..depth {
            text.push_str(&format!("===\nMSG: test/L{i}\n"));
            if i + 1 < depth {
                text.push_str(&format!("test/L{} next\n", i + 1));
            } else {
                text.push_str("float64 leaf\n");
            }
        }
        text
    }

    #[test]
    fn nesting_limit() {
        let s = parse("test/Top", &chain(MAX_DEPTH));
        assert_eq!(s.messages().len(), MAX_DEPTH);
        assert_eq!(s.root().fixed_size, Some(8));
        let e = def_err("test/Top", &chain(MAX_DEPTH + 1));
        assert!(e.contains("deeper than 64"), "{e}");
    }

    #[test]
    fn malformed_lines() {
        for text in [
            "int32\n",
            "int32 a b\n",
            "float64[x] a\n",
            "float64[3 a\n",
            "int32 a\nint32 a\n",
            "time T=1\n",
            "int32 1abc\n",
        ] {
            def_err("test/Bad", text);
        }
        let e = def_err("test/Bad", "uint8 ok\n===\nnot a msg line\nint32 x\n");
        assert!(e.contains("MSG:"), "{e}");
        let e = def_err("test/Big", "float64[4611686018427387904] a\n");
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn unused_broken_section_is_ignored() {
        let text = "int32 a\n===\nMSG: test/Unused\nnope/Nope x\n";
        assert_eq!(parse("test/Ok", text).messages().len(), 1);
    }
}
