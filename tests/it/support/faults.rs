//! Stopping a command at its Nth write, for every N: one run under strace
//! records the file-changing syscalls it makes, in order; then, for each,
//! strace kills it (SIGKILL) as it enters that call, so that a test can
//! look at what a crash at any moment leaves.
//!
//! strace counts calls per thread and per syscall, so the Nth call is
//! named to it as the jth call of its kind; the writes must all come from
//! one thread (vimg's main thread makes them all), which is checked.

use std::os::unix::process::ExitStatusExt;

use super::{tempdir, Cmd, VIMG};

/// The syscalls that change files or names: a crash point before each.
pub const WRITES: &str =
    "write,pwrite64,pwritev,pwritev2,ftruncate,fallocate,renameat2,rename,unlink,unlinkat,mkdir,mkdirat";

/// The file-changing syscalls vimg with `args` makes, in order: their
/// names, from one ordinary run (which must succeed).
pub fn writes_of(args: &Cmd) -> Vec<String> {
    let logs = tempdir();
    let log = logs.path().join("log");
    let out = Cmd::new("strace")
        .arg("-ff")
        .arg("-o")
        .arg(&log)
        .arg("-e")
        .arg(format!("trace={WRITES}"))
        .arg(VIMG)
        .args(args.argv())
        .run();
    assert_eq!(out.code(), Some(0), "`{args}` under strace: {out:?}");
    // One log per thread: log.PID.
    let mut per_thread: Vec<(u32, Vec<String>)> = std::fs::read_dir(logs.path())
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.rsplit('.').next().unwrap().parse().unwrap();
            let calls = std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .filter_map(|l| l.split('(').next())
                .filter(|c| WRITES.split(',').any(|w| w == *c))
                .map(str::to_string)
                .collect();
            (pid, calls)
        })
        .collect();
    per_thread.sort();
    let busy: Vec<_> = per_thread.iter().filter(|(_, c)| !c.is_empty()).collect();
    assert!(
        busy.len() <= 1,
        "`{args}` writes from several threads: {busy:?}"
    );
    busy.first().map(|(_, c)| c.clone()).unwrap_or_default()
}

/// Run vimg with `args` under strace, which does `action` (`signal=SIGKILL`,
/// `error=ENOSPC`) as the command enters write `n` (from 0) of `writes`;
/// returns how it ended and the write's description.
fn injected(args: &Cmd, writes: &[String], n: usize, action: &str) -> (super::Run, String) {
    let call = &writes[n];
    let nth_of_its_kind = writes[..=n].iter().filter(|c| *c == call).count();
    let out = Cmd::new("strace")
        .arg("-f")
        .arg("-o")
        .arg("/dev/null")
        .arg("-e")
        .arg(format!("trace={call}"))
        .arg("-e")
        .arg(format!("inject={call}:{action}:when={nth_of_its_kind}"))
        .arg(VIMG)
        .args(args.argv())
        .run();
    (out, format!("{call} #{nth_of_its_kind}"))
}

/// Run vimg with `args`, killed as it enters write `n` (from 0) of
/// `writes` (what [`writes_of`] recorded for it).
pub fn killed_at(args: &Cmd, writes: &[String], n: usize) {
    let (out, which) = injected(args, writes, n, "signal=SIGKILL");
    assert_eq!(
        out.status.signal(),
        Some(9),
        "`{args}` was not stopped at write {n} ({which}): {out:?}"
    );
}

/// Run vimg with `args`, its write `n` (from 0) of `writes` failing with
/// `errno` (`ENOSPC`, `EIO`); returns how it ended.
pub fn failed_at(args: &Cmd, writes: &[String], n: usize, errno: &str) -> super::Run {
    injected(args, writes, n, &format!("error={errno}")).0
}

/// What a writer stopped at any write may leave, as `vimg check` sees the
/// image at `path`: nothing, leaks, or (stopped between the two copies of
/// a VMDK grain table, which every writer of a sparse VMDK writes in turn)
/// a redundant copy one write behind, which `check -r all` and a rerun
/// mend. `what` names the case in the failure.
pub fn assert_no_worse_than_leaks(path: &std::path::Path, what: &str) {
    let check = super::vimg!("check --output json", path).run();
    let json: serde_json::Value = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|e| panic!("{what}: no JSON ({e}): {check:?}"));
    let behind = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "corruption")
        .all(|f| f["structure"] == "VMDK redundant grain directory" && f["repair"] == "all");
    assert!(
        matches!(check.code(), Some(0 | 3)) || (check.code() == Some(2) && behind),
        "{what}: {json:#}"
    );
}
