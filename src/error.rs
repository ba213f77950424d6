//! The library's error type: every failure names the file, and where it is
//! about on-disk data, the structure and the byte offset.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call on a file failed.
    #[error("{path}: {op} at byte offset {offset}", path = .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// Opening, creating, locking or inspecting a file failed.
    #[error("{path}: {op}", path = .path.display())]
    File {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// An on-disk structure holds a value no valid image can have.
    #[error("{path}: invalid {structure} at byte offset {offset}: {detail}", path = .path.display())]
    Corrupt {
        path: PathBuf,
        structure: &'static str,
        offset: u64,
        detail: String,
    },

    /// The image is valid but uses something vimg does not implement.
    #[error("{path}: {detail}", path = .path.display())]
    Unsupported { path: PathBuf, detail: String },

    /// The file's content matches no format vimg knows.
    #[error("{path}: {detail}", path = .path.display())]
    UnknownFormat { path: PathBuf, detail: String },

    /// Refusing to replace an existing file.
    #[error("{path}: file exists (use --force to overwrite it)", path = .path.display())]
    Exists { path: PathBuf },

    /// Another process holds a lock on the file.
    #[error("{path}: in use by another process (a running VM, qemu-img or vimg holds a lock on it)", path = .path.display())]
    Locked { path: PathBuf },

    /// Another process may be writing the file being read.
    #[error("{path}: another process may be writing it (a running VM, qemu-img or vimg holds its write lock); -U reads it anyway", path = .path.display())]
    BeingWritten { path: PathBuf },

    /// A delta's parent cannot be opened.
    #[error("{path}: cannot open its parent {parent}", path = .path.display(), parent = .parent.display())]
    Parent {
        path: PathBuf,
        parent: PathBuf,
        #[source]
        source: Box<Error>,
    },

    /// A request that cannot be carried out as asked (bad option, size, range).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A corrupt-structure error for `path`.
    pub fn corrupt(
        path: &Path,
        structure: &'static str,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            structure,
            offset,
            detail: detail.into(),
        }
    }

    /// An unsupported-feature error for `path`.
    pub fn unsupported(path: &Path, detail: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// A file-level I/O error for `path`.
    pub fn file(path: &Path, op: &'static str, source: io::Error) -> Self {
        Error::File {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    /// A parent-opening error for the delta at `path`.
    pub fn parent(path: &Path, parent: &Path, source: Error) -> Self {
        Error::Parent {
            path: path.to_path_buf(),
            parent: parent.to_path_buf(),
            source: Box::new(source),
        }
    }

    /// An invalid-request error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
