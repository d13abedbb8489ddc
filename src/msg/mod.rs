//! Message definitions and dynamic decoding, in three layers:
//!
//! - definitions ([`def`]): ROS1 and ROS 2 `.msg` text parsed into one [`Schema`] model;
//!   [`DefinitionStore`] finds a type's text (the bag's own, `--msg-path`, shipped);
//! - wire formats (`wire`): ROS1 serialization and CDR ([`Encoding`]);
//! - readers: a configured field path compiled against (schema, encoding) into an
//!   [`Extractor`], which reads numbers straight out of the serialized bytes (no intermediate
//!   message value, no payload copy); [`StampReader`] and [`StringReader`] likewise.

pub mod decode;
pub mod def;
pub mod path;
mod shipped;
pub mod store;
#[cfg(test)]
mod testdefs;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cdr;
pub mod text;
mod wire;

pub use decode::{Extractor, StampReader};
pub use def::{Schema, SchemaFormat};
pub use path::FieldPath;
pub use store::{DefinitionStore, Origin, Resolved};
pub use text::StringReader;
pub use wire::{ByteOrder, Encoding};

/// Errors found before any message is read: bad definition, bad path for this type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MsgError {
    #[error("message definition of {datatype}: {detail}")]
    Definition { datatype: String, detail: String },
    #[error("field path `{path}`: {detail}")]
    Path { path: String, detail: String },
    /// No definition of `missing` (the main type or one it uses) anywhere the store looked:
    /// the user must point `--msg-path` at it.
    #[error("message definition of {datatype}: {detail}")]
    Missing {
        datatype: String,
        missing: String,
        detail: String,
    },
    #[error("message encoding `{encoding}` is not supported (bagstream decodes ros1 and cdr)")]
    Encoding { encoding: String },
}

impl MsgError {
    /// Whether a definition was found nowhere (as opposed to found and broken).
    pub fn is_missing_definition(&self) -> bool {
        matches!(self, MsgError::Missing { .. })
    }
}

/// Errors met while decoding one message's bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "message ends at byte {len} but field `{field}` needs {need} bytes at offset {offset}"
    )]
    Truncated {
        field: String,
        offset: usize,
        need: usize,
        len: usize,
    },
    #[error("{0}")]
    Invalid(String),
}
