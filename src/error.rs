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
    /// Messages the aligner cannot put on the grid (the bag's fault): exit status 1.
    #[error("{bag}: {detail}")]
    Align { bag: String, detail: String },
    /// Any other reason a conversion could not finish: exit status 1.
    #[error("{0}")]
    Conversion(String),
    /// SIGINT or SIGTERM stopped the run: exit status 128 + the signal (130, 143).
    #[error("interrupted by {}", crate::interrupt::signal_name(*.0))]
    Interrupted(i32),
    /// A bag failed mid-run without `--keep-going`: the run stopped there, the episodes before
    /// it kept (`kept` says what the dataset holds now). Exit status 1.
    #[error("{}", bag_failed(source, bag, kept))]
    BagFailed {
        bag: std::path::PathBuf,
        source: Box<Error>,
        kept: String,
    },
}

/// `SOURCE; stopped at BAG: KEPT`, with the detail lines of a multi-line error (one per
/// source) after that first line.
fn bag_failed(source: &Error, bag: &std::path::Path, kept: &str) -> String {
    let text = source.to_string();
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut out = format!("{first}; stopped at {}: {kept}", bag.display());
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

impl Error {
    /// 2 for usage and configuration errors, 1 for conversion failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Interrupted(signal) => 128 + signal,
            Error::Dataset(DatasetError::Refused { .. } | DatasetError::Mismatch { .. }) => 2,
            // A frame size or codec setting the encoder cannot take, or no ffmpeg to run.
            Error::Dataset(DatasetError::Video(
                VideoError::Unsupported(_) | VideoError::NotFound(_),
            )) => 2,
            // A bag named on the command line that is not there (or a directory that holds
            // none) is a usage error.
            Error::Bag(BagError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                2
            }
            Error::Bag(BagError::NoBag { .. }) => 2,
            _ => 1,
        }
    }
}

impl From<MsgError> for Error {
    fn from(e: MsgError) -> Self {
        Error::Usage(e.to_string())
    }
}
