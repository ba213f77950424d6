//! A repair stopped at its Nth write, for every N (strace kills it as it
//! enters the write): every corruption what is left has is one the image
//! had before or one `-r all` repairs (a redundant copy half rewritten, a
//! table moved with the faults it held: nothing is lost), and running the
//! repair again finishes the job with the content an uninterrupted repair
//! gives.

use std::path::Path;

use serde_json::Value;

use crate::support::faults::{killed_at, writes_of};
use crate::support::*;

/// A corruption `vimg check` finds: its structure and offset, and whether
/// `-r all` repairs it.
#[derive(Debug, PartialEq)]
struct Corruption {
    at: (String, Option<u64>),
    mendable: bool,
}

/// The corruptions `vimg check` finds in the image at `path`.
fn corruptions(path: &Path) -> Vec<Corruption> {
    let run = vimg!("check --output json", path).run();
    let json: Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {run:?}"));
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "corruption")
        .map(|f| Corruption {
            at: (
                f["structure"].as_str().unwrap().to_string(),
                f["offset"].as_u64(),
            ),
            mendable: f["repair"] == "all",
        })
        .collect()
}

/// Repair a copy of `damaged` (format `fmt`) with `check -r level`, killed
/// at each of its writes in turn, and check what each kill leaves.
pub fn every_kill_is_mended_by_a_rerun(damaged: &Path, fmt: &str, level: &str) {
    let dir = tempdir();
    let d = dir.path();
    let name = damaged.file_name().unwrap();
    let before = corruptions(damaged);

    // The uninterrupted repair: what every resumed one must end as.
    let whole = d.join("whole").join(name);
    std::fs::create_dir(whole.parent().unwrap()).unwrap();
    std::fs::copy(damaged, &whole).unwrap();
    let repair = |path: &Path| vimg!("check -q -r", level, path);
    let writes = writes_of(&repair(&whole));
    assert!(
        !writes.is_empty(),
        "the repair of {} wrote nothing",
        damaged.display()
    );
    eprintln!(
        "{}: the repair makes {} writes: {writes:?}",
        damaged.display(),
        writes.len()
    );
    vimg!("check", &whole).ok();
    let expected = vimg_to_raw(&whole, &d.join("whole.raw"));

    for n in 0..writes.len() {
        let copy = d.join(format!("kill-{n}")).join(name);
        std::fs::create_dir(copy.parent().unwrap()).unwrap();
        std::fs::copy(damaged, &copy).unwrap();
        killed_at(&repair(&copy), &writes, n);
        let left = corruptions(&copy);
        assert!(
            left.iter().all(|c| c.mendable || before.contains(c)),
            "killed at write {n} ({}): a new corruption no repair mends: {left:?}, before {before:?}",
            writes[n]
        );
        // A second run finishes the job.
        let rerun = repair(&copy).run();
        assert_eq!(
            rerun.code(),
            Some(0),
            "rerun after a kill at write {n}: {rerun:?}"
        );
        vimg!("check", &copy).ok();
        if fmt == "vmdk" {
            qemu_img!("check -q -f vmdk", &copy).ok();
        }
        assert_identical("raw", &expected, fmt, &copy);
        std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
    }
}
