//! One error type for every loader: each variant says *what* and *where*.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, DataError>;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The OS error is the `source`, not part of this message, so `{:#}` chains print it once.
    #[error("{path}: cannot read")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A problem at a specific line of a text file (1-based, counting the header).
    #[error("{path}:{line}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{path}: target column `{target}` not found; available columns: {available}")]
    UnknownColumn {
        path: PathBuf,
        target: String,
        available: String,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("dataset `{name}` is not available: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("unknown dataset `{name}`; known: {known}")]
    UnknownDataset { name: String, known: String },
    /// A metric asked of inputs it is not defined on (empty, length mismatch, zero variance).
    #[error("{metric}: {msg}")]
    Metric { metric: &'static str, msg: String },
}
