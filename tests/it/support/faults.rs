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

/// Run vimg with `args`, killed as it enters write `n` (from 0) of
/// `writes` (what [`writes_of`] recorded for it).
pub fn killed_at(args: &Cmd, writes: &[String], n: usize) {
    let call = &writes[n];
    let nth_of_its_kind = writes[..=n].iter().filter(|c| *c == call).count();
    let out = Cmd::new("strace")
        .arg("-f")
        .arg("-o")
        .arg("/dev/null")
        .arg("-e")
        .arg(format!("trace={call}"))
        .arg("-e")
        .arg(format!(
            "inject={call}:signal=SIGKILL:when={nth_of_its_kind}"
        ))
        .arg(VIMG)
        .args(args.argv())
        .run();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "`{args}` was not stopped at write {n} ({call} #{nth_of_its_kind}): {out:?}"
    );
}

/// Run vimg with `args`, its write `n` (from 0) of `writes` failing with
/// `errno` (`ENOSPC`, `EIO`); returns how it ended.
pub fn failed_at(args: &Cmd, writes: &[String], n: usize, errno: &str) -> super::Run {
    let call = &writes[n];
    let nth_of_its_kind = writes[..=n].iter().filter(|c| *c == call).count();
    Cmd::new("strace")
        .arg("-f")
        .arg("-o")
        .arg("/dev/null")
        .arg("-e")
        .arg(format!("trace={call}"))
        .arg("-e")
        .arg(format!(
            "inject={call}:error={errno}:when={nth_of_its_kind}"
        ))
        .arg(VIMG)
        .args(args.argv())
        .run()
}
