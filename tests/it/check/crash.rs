//! A repair stopped at its Nth write, for every N (strace kills it as it
//! enters the write): what is left has no corruption the image did not
//! have before, and running the repair again finishes the job with the
//! content an uninterrupted repair gives.

use std::path::Path;

use serde_json::Value;

use crate::support::faults::{killed_at, writes_of};
use crate::support::*;

/// The corruptions `vimg check` finds, as (structure, offset), sorted.
fn corruptions(path: &Path) -> Vec<(String, Option<u64>)> {
    let run = vimg!("check --output json", path).run();
    let json: Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {run:?}"));
    let mut found: Vec<(String, Option<u64>)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "corruption")
        .map(|f| {
            (
                f["structure"].as_str().unwrap().to_string(),
                f["offset"].as_u64(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Repair a copy of `damaged` (format `fmt`) with `check -r level`, killed
/// at each of its writes in turn, and check what each kill leaves.
pub fn every_kill_leaves_no_new_corruption(damaged: &Path, fmt: &str, level: &str) {
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
            left.iter().all(|c| before.contains(c)),
            "killed at write {n} ({}): new corruption {left:?}, before {before:?}",
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
