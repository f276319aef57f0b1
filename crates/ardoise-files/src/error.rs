//! The crate's one error type, [`FilesError`]. It owns the wording of the
//! errors and which of them are the client's fault; it must not know how the
//! web layer turns them into responses.

use std::io;

/// Everything that can go wrong when storing or reading a blob.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The upload had no bytes.
    #[error("the file is empty")]
    Empty,
    /// The upload went past the size allowed for it.
    #[error("the file is larger than {max} bytes")]
    TooLarge {
        /// The limit that was passed, in bytes.
        max: u64,
    },
    /// No blob has this hash.
    #[error("no such file")]
    NotFound,
    /// The requested byte range is outside the blob.
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable,
    /// A hash that is not 64 lowercase hexadecimal characters.
    #[error("invalid file hash")]
    BadHash,
    /// A file name refused by [`crate::validate_file_name`]; the text says why.
    #[error("invalid file name: {0}")]
    BadName(String),
    /// An earlier fsync or rename failed: the store refuses writes until it
    /// is restarted, because it can no longer promise that what it
    /// acknowledges is on disk.
    #[error("the file store has stopped accepting writes")]
    WritesStopped,
    /// The upload's body could not be read (the client went away, or the
    /// body was cut short).
    #[error("reading the upload failed")]
    Body(#[source] io::Error),
    /// The local disk failed.
    #[error("file store i/o error")]
    Io(#[from] io::Error),
    /// The object store failed or refused a request.
    #[error("object store error: {0}")]
    Backend(String),
    /// The configuration cannot work (a bad prefix, a bad endpoint).
    #[error("invalid file store configuration: {0}")]
    Config(String),
}

impl FilesError {
    /// Whether the error is the caller's fault (a 4xx), as opposed to the
    /// store's (a 5xx, logged and not shown).
    pub fn is_client_error(&self) -> bool {
        match self {
            FilesError::Empty
            | FilesError::TooLarge { .. }
            | FilesError::NotFound
            | FilesError::RangeNotSatisfiable
            | FilesError::BadHash
            | FilesError::BadName(_)
            | FilesError::Body(_) => true,
            FilesError::WritesStopped
            | FilesError::Io(_)
            | FilesError::Backend(_)
            | FilesError::Config(_) => false,
        }
    }
}
