//! What a metadata walk finds ([`crate::image::Image::check`]): each
//! problem with where it is and how grave, classed as qemu-img classes
//! them for qcow2. A corruption can return wrong data or let a later write
//! destroy data; a leak is space nothing references.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// How grave a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Corruption,
    Leak,
    Warning,
}

impl Severity {
    /// The name JSON output uses.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Corruption => "corruption",
            Severity::Leak => "leak",
            Severity::Warning => "warning",
        }
    }
}

/// How far a repair may go (`check -r leaks` / `-r all`). Either level only
/// makes changes that leave what every sector of the disk reads as it was,
/// except that `All` may drop a pointer that is itself wrong (an entry past
/// the end of the file, into metadata, or naming a grain or block another
/// entry names): that range then reads from the parent, or as zeros, and
/// the repair says which virtual range it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Repair {
    /// Free space nothing references; rewrite a redundant copy of a
    /// structure (a footer) from the valid one.
    Leaks,
    /// Also rebuild or clear metadata that is wrong.
    All,
}

impl Repair {
    /// The name `-r` takes, and JSON output uses.
    pub fn name(self) -> &'static str {
        match self {
            Repair::Leaks => "leaks",
            Repair::All => "all",
        }
    }
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: PathBuf,
    /// Where in the file, when it is about one place.
    pub offset: Option<u64>,
    /// The on-disk structure at fault.
    pub structure: &'static str,
    pub message: String,
    /// The `-r` level that repairs it, when a repair can.
    pub repair: Option<Repair>,
    /// How many bytes of the file it concerns, when that is what it
    /// counts (leaked space).
    pub length: Option<u64>,
}

impl Finding {
    /// The finding an error from a metadata walk stands for: damage to a
    /// structure or to the chain is a corruption; anything else (the walk
    /// could not read something) a warning that the check is incomplete.
    pub fn from_error(e: &Error) -> Finding {
        let (file, offset, structure, message, severity) = match e {
            Error::Corrupt {
                path,
                structure,
                offset,
                detail,
            } => (
                path.clone(),
                Some(*offset),
                *structure,
                detail.clone(),
                Severity::Corruption,
            ),
            Error::Chain { path, detail } => (
                path.clone(),
                None,
                "backing chain",
                detail.clone(),
                Severity::Corruption,
            ),
            Error::Parent { source, .. } | Error::Extent { source, .. } => {
                return Finding::from_error(source)
            }
            other => (
                PathBuf::new(),
                None,
                "image",
                other.to_string(),
                Severity::Warning,
            ),
        };
        Finding {
            severity,
            file,
            offset,
            structure,
            message,
            repair: None,
            length: None,
        }
    }

    /// This finding, repaired by `-r level`.
    pub fn repaired_by(self, level: Repair) -> Finding {
        Finding {
            repair: Some(level),
            ..self
        }
    }

    /// A finding a walk makes itself.
    pub fn new(
        severity: Severity,
        file: &Path,
        offset: Option<u64>,
        structure: &'static str,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            file: file.to_path_buf(),
            offset,
            structure,
            message: message.into(),
            repair: None,
            length: None,
        }
    }

    /// Bytes `range` of `file` that nothing references.
    pub fn leak(file: &Path, range: Range<u64>) -> Finding {
        Finding {
            severity: Severity::Leak,
            file: file.to_path_buf(),
            offset: Some(range.start),
            structure: "unreferenced space",
            message: format!(
                "{} bytes are referenced by nothing",
                range.end - range.start
            ),
            repair: Some(Repair::Leaks),
            length: Some(range.end - range.start),
        }
    }
}

/// Counts qemu-img reports beside the findings (its `ImageCheck` fields),
/// in the image's clusters (grains, blocks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clusters {
    /// Clusters in the virtual disk.
    pub total: u64,
    /// Clusters this layer holds data for.
    pub allocated: u64,
    /// Allocated clusters not right after the previous allocated one in
    /// the file.
    pub fragmented: u64,
    /// Allocated clusters stored compressed.
    pub compressed: u64,
}

/// What a walk found in one image (one layer of a chain).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The cluster counts, when the walk made them.
    pub clusters: Option<Clusters>,
    /// The end of the last byte the image uses in its (first) file.
    pub end_offset: Option<u64>,
}

impl Report {
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Record an error a walk met as a finding.
    pub fn push_error(&mut self, e: &Error) {
        self.findings.push(Finding::from_error(e));
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Helpers for the formats' unit tests of their walks.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use super::Report;
    use crate::image::factory::open_with;
    use crate::image::OpenOptions;
    use crate::io::Access;

    /// What a walk of the image at `path` (opened for checking) finds.
    pub fn check_file(path: &Path) -> Report {
        let opts = OpenOptions::new(Access::Read).checking();
        let mut image = open_with(path, None, opts).unwrap();
        let mut report = Report::default();
        image.check(&mut report).unwrap();
        report
    }

    /// Overwrite bytes of a file, as damage does.
    pub fn patch(path: &Path, at: u64, bytes: &[u8]) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, bytes, at).unwrap();
    }
}
