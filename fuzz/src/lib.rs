//! Helpers shared by the vimg fuzz targets: a per-process scratch directory
//! on tmpfs; the checks every opened image must pass ([`checks`]); and
//! turning one fuzz input into an image file plus the extent and parent
//! files it carries, and repairing VHD checksums so the fuzzer gets past
//! them ([`harness`]). `checks` and `harness` are shared with the
//! regression replay in `tests/`, which includes them by path.

pub mod checks;
pub mod harness;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch directory, emptied on every call.
pub fn scratch(target: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        remove_stale(&base);
        let dir = base.join(format!("vimg-fuzz-{target}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cannot create the scratch directory");
        dir
    });
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    dir.clone()
}

/// Remove scratch directories left by fuzzing processes that have exited
/// (a crash skips the clean-up).
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("vimg-fuzz-") else {
            continue;
        };
        let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}
