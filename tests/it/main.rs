//! vimg's integration tests, in one binary: each module tests one area
//! through the command line and the library against the peers (qemu-img,
//! qemu-io, libvmdk, libvhdi, VMDKstream); `support` is what they share.

mod support;

/// The fuzz targets' input-to-files helpers, shared with the regression
/// replay ([`fuzz_replay`]) and the VHD checksum of `support::vhd`.
#[path = "../../fuzz/src/harness.rs"]
mod harness;

/// The fuzz targets' checks, which the replay runs on every regression
/// input.
#[path = "../../fuzz/src/checks.rs"]
mod checks;

mod amend;
mod bad_input;
mod chain;
mod check;
mod commit;
mod compact;
mod compare;
mod completions;
mod convert;
mod create;
mod fuzz_replay;
mod guide;
mod hostile;
mod map;
mod measure;
mod model;
mod qemu_flags;
mod qemu_io;
mod qemu_scripts;
mod rebase;
mod recipes;
mod resize;
mod review_regressions;
mod safety;
mod snapshot;
mod vhd;
mod vmdk;

/// Every `.rs` file under tests/it/ is a module of this binary (a file
/// nobody declares would never build nor run), and tests/ holds no other
/// test binary: no `tests/*.rs`, no other `tests/*/main.rs`.
#[test]
fn no_forgotten_test_files() {
    use std::fs;
    use std::path::Path;

    /// The modules a file declares with `mod name;`.
    fn declared(file: &Path) -> Vec<String> {
        fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(str::trim)
            .map(|l| l.strip_prefix("pub(crate) ").unwrap_or(l))
            .map(|l| l.strip_prefix("pub ").unwrap_or(l))
            .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
            .map(|name| name.trim().to_string())
            .collect()
    }

    /// Check the directory `dir`, whose modules `owner` declares.
    fn check(dir: &Path, owner: &Path, forgotten: &mut Vec<String>) {
        let mods = declared(owner);
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mod_rs = path.join("mod.rs");
                if !mods.contains(&name) || !mod_rs.is_file() {
                    forgotten.push(format!("{} ({})", path.display(), owner.display()));
                } else {
                    check(&path, &mod_rs, forgotten);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path != owner
                && !mods.contains(&name)
            {
                forgotten.push(format!("{} ({})", path.display(), owner.display()));
            }
        }
    }

    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let it = tests.join("it");
    let mut forgotten = Vec::new();
    check(&it, &it.join("main.rs"), &mut forgotten);
    assert!(
        forgotten.is_empty(),
        "files under tests/it/ that no module declares (declare them in the file in brackets):\n{}",
        forgotten.join("\n")
    );
    let others: Vec<String> = fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs") || (p != &it && p.join("main.rs").is_file())
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        others.is_empty(),
        "test binaries besides tests/it/ (make them modules of tests/it/main.rs): {others:?}"
    );
}
