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

    /// A file a VMDK descriptor names as an extent cannot be used.
    #[error("{path}: cannot open its extent {extent}", path = .path.display(), extent = .extent.display())]
    Extent {
        path: PathBuf,
        extent: PathBuf,
        #[source]
        source: Box<Error>,
    },

    /// A delta's parent is nowhere to be found.
    #[error("{path}: {detail}", path = .path.display())]
    MissingParent { path: PathBuf, detail: String },

    /// A delta does not fit the parent it finds: a content ID or unique
    /// ID that differs, a loop, a chain too deep. The chain is corrupt
    /// (`snapshot rebase -u` relinks), though each file may be sound.
    #[error("{path}: {detail}", path = .path.display())]
    Chain { path: PathBuf, detail: String },

    /// A signal (SIGINT, SIGTERM, SIGHUP) asked the command to stop. What
    /// that leaves is the command's to say.
    #[error("interrupted by signal {signal}")]
    Interrupted { signal: i32 },

    /// A request that cannot be carried out as asked (bad option, size, range).
    #[error("{0}")]
    Invalid(String),

    /// Bytes `from..to` of the disk that a salvaging open found cannot be
    /// read (a data unit whose place in the file cannot be trusted), in
    /// the offsets of the disk whose read failed: a salvaging copy loses
    /// the whole range at once instead of trying each sector of it.
    #[error("{detail}")]
    Unreadable { detail: String, from: u64, to: u64 },
}

/// A field of an on-disk structure that holds a value no valid image has:
/// its offset within the structure, and what is wrong. The caller knows
/// where the structure lies and adds that ([`Error::corrupt_field`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub at: u64,
    pub detail: String,
}

impl FieldError {
    pub fn new(at: u64, detail: impl Into<String>) -> Self {
        FieldError {
            at,
            detail: detail.into(),
        }
    }
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

    /// A corrupt-field error for the structure at byte `base` of `path`.
    pub fn corrupt_field(path: &Path, structure: &'static str, base: u64, e: FieldError) -> Self {
        Error::corrupt(path, structure, base + e.at, e.detail)
    }

    /// A broken-chain error for the delta at `path`.
    pub fn chain(path: &Path, detail: impl Into<String>) -> Self {
        Error::Chain {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// True when the error says the image or its chain is damaged (what
    /// `check` counts as corruption), rather than that it could not be
    /// read or the request was wrong.
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corrupt { .. } | Error::Chain { .. } => true,
            Error::Parent { source, .. } | Error::Extent { source, .. } => source.is_corruption(),
            _ => false,
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

    /// Bytes `range` of a disk cannot be read, for `detail`.
    pub fn unreadable(detail: impl Into<String>, range: std::ops::Range<u64>) -> Self {
        Error::Unreadable {
            detail: detail.into(),
            from: range.start,
            to: range.end,
        }
    }

    /// This error as seen from a disk in which the failing one starts at
    /// byte `at` (an extent in a VMDK, a source in a concatenation).
    pub fn shifted(self, at: u64) -> Self {
        self.map_unreadable(|x| x.saturating_add(at))
    }

    /// This error with its unreadable range cut to `within` (the disk the
    /// failing unit lies in: a grain or block may reach past its end).
    pub fn clipped(self, within: std::ops::Range<u64>) -> Self {
        self.map_unreadable(|x| x.clamp(within.start, within.end))
    }

    /// [`Error::shifted`] undone: as seen from a disk that starts at byte
    /// `at` of the failing one (what lies before it, clipped).
    pub fn shifted_back(self, at: u64) -> Self {
        self.map_unreadable(|x| x.saturating_sub(at))
    }

    /// An [`Error::Unreadable`] with both ends of its range moved by `f`;
    /// any other error as it is.
    fn map_unreadable(self, f: impl Fn(u64) -> u64) -> Self {
        match self {
            Error::Unreadable { detail, from, to } => Error::Unreadable {
                detail,
                from: f(from),
                to: f(to),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_structure_damage_count_as_corruption_through_parents() {
        let p = Path::new("d.vmdk");
        let mismatch = Error::chain(p, "its parent has content ID 1, not 2");
        assert!(mismatch.is_corruption());
        let field = Error::corrupt_field(p, "VMDK sparse header", 512, FieldError::new(20, "x"));
        assert!(field.to_string().contains("at byte offset 532"), "{field}");
        let deep = Error::parent(p, Path::new("base.vmdk"), field);
        assert!(deep.is_corruption());
        let missing = Error::parent(
            p,
            Path::new("base.vmdk"),
            Error::file(p, "cannot open", io::ErrorKind::NotFound.into()),
        );
        assert!(!missing.is_corruption());
        assert!(!Error::invalid("bad size").is_corruption());
    }
}
