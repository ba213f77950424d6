//! The third-party corpus: real images made by other tools, with a
//! MANIFEST.md saying what qemu-img reads from each. It is not part of the
//! repository: `VIMG_CORPUS` names its folder, and without it
//! `../shared/corpus` beside the repository is used when it exists. The
//! tests that read it are `#[ignore]`d (`cargo test -- --ignored` runs
//! them) and fail, never skip, when it cannot be found.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::cmd;

/// The environment variable naming the corpus folder.
pub const VAR: &str = "VIMG_CORPUS";

/// The corpus folder; fails the test when there is none.
pub fn root() -> PathBuf {
    let (dir, why) = match std::env::var_os(VAR) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let why = format!("{VAR}={}, which holds no MANIFEST.md", dir.display());
            (dir, why)
        }
        None => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
            let why = format!(
                "{VAR} is not set, and the default {} holds no MANIFEST.md",
                dir.display()
            );
            (dir, why)
        }
    };
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "this test reads the third-party corpus, which is not in the repository: \
         {why}; set {VAR} to the corpus folder"
    );
    dir
}

/// The corpus file `rel`, read in place.
pub fn file(rel: &str) -> PathBuf {
    let path = root().join(rel);
    assert!(
        path.is_file(),
        "{} is missing from the corpus",
        path.display()
    );
    path
}

/// The corpus file `rel` ready to read: in place, or (`.gz`, `.bz2`)
/// decompressed into `dir` under its name without the suffix.
pub fn readable(dir: &Path, rel: &str) -> PathBuf {
    match rel.strip_suffix(".gz").or_else(|| rel.strip_suffix(".bz2")) {
        Some(stem) => copy(rel, dir, Path::new(stem).file_name().unwrap()),
        None => file(rel),
    }
}

/// The corpus file `rel` copied into `dir` as `name`, decompressed when it
/// is a `.gz` or `.bz2`.
pub fn copy(rel: &str, dir: &Path, name: impl AsRef<Path>) -> PathBuf {
    let src = file(rel);
    let dst = dir.join(name);
    let tool = if rel.ends_with(".gz") {
        "gzip"
    } else if rel.ends_with(".bz2") {
        "bzip2"
    } else {
        fs::copy(&src, &dst).unwrap();
        return dst;
    };
    let status = cmd!(tool, "-dc", &src)
        .command()
        .stdout(Stdio::from(File::create(&dst).unwrap()))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(status.success(), "{tool} -dc {}", src.display());
    dst
}

/// Table A of MANIFEST.md: path → (virtual size, content sha256), each
/// where the MANIFEST gives one (what qemu-img reports and produces).
pub type Manifest = HashMap<String, (Option<u64>, Option<String>)>;

/// Table A of the corpus's MANIFEST.md.
pub fn manifest() -> Manifest {
    let text = fs::read_to_string(root().join("MANIFEST.md")).expect("corpus MANIFEST.md");
    let table = text
        .split("## A. Files")
        .nth(1)
        .and_then(|t| t.split("## B.").next())
        .expect("table A in MANIFEST.md");
    let mut rows = HashMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cells.len() >= 12, "MANIFEST row: {line}");
        let path = cells[1].trim_matches('`').to_string();
        let size: String = cells[8]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(|c| *c != ',')
            .collect();
        let sha = cells[10].trim_matches('`');
        let sha = (sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| sha.to_string());
        rows.insert(path, (size.parse().ok(), sha));
    }
    rows
}

/// The virtual size and content sha256 the MANIFEST gives for `rel`; both
/// must be there.
pub fn size_and_sha256(rel: &str) -> (u64, String) {
    let (size, sha) = manifest()
        .remove(rel)
        .unwrap_or_else(|| panic!("{rel} is not in table A of the MANIFEST"));
    (
        size.unwrap_or_else(|| panic!("no virtual size for {rel} in the MANIFEST")),
        sha.unwrap_or_else(|| panic!("no content sha256 for {rel} in the MANIFEST")),
    )
}
