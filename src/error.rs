//! The library's error type and the CLI exit codes it maps to.

use crate::bag::BagError;
use crate::dataset::DatasetError;
use crate::msg::MsgError;
use crate::video::VideoError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command line or configuration: exit status 2.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Bag(#[from] BagError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A message that does not decode as its definition says.
    #[error("{bag}: topic {topic}, field `{field}`: {detail}")]
    Decode {
        bag: String,
        topic: String,
        field: String,
        detail: String,
    },
    /// Any other reason a conversion could not finish: exit status 1.
    #[error("{0}")]
    Conversion(String),
}

impl Error {
    /// 2 for usage and configuration errors, 1 for conversion failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Dataset(DatasetError::Refused { .. } | DatasetError::Mismatch { .. }) => 2,
            // A frame size or codec setting the encoder cannot take, or no ffmpeg to run.
            Error::Dataset(DatasetError::Video(
                VideoError::Unsupported(_) | VideoError::NotFound(_),
            )) => 2,
            // A bag named on the command line that is not there is a usage error.
            Error::Bag(BagError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                2
            }
            _ => 1,
        }
    }
}

impl From<MsgError> for Error {
    fn from(e: MsgError) -> Self {
        Error::Usage(e.to_string())
    }
}
