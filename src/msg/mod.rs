//! ROS1 message definitions and dynamic decoding.
//!
//! A connection's definition text is parsed once into a [`Schema`]; a configured field path is
//! compiled against it into an [`Extractor`], which reads numbers straight out of the
//! serialized bytes (no intermediate message value, no payload copy).

pub mod decode;
pub mod def;
pub mod path;
#[cfg(test)]
mod testdefs;
#[cfg(test)]
mod tests;
pub mod text;
mod wire;

pub use decode::{Extractor, StampReader};
pub use def::Schema;
pub use path::FieldPath;
pub use text::StringReader;

/// Errors found before any message is read: bad definition, bad path for this type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MsgError {
    #[error("message definition of {datatype}: {detail}")]
    Definition { datatype: String, detail: String },
    #[error("field path `{path}`: {detail}")]
    Path { path: String, detail: String },
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
