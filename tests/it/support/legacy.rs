//! The old helper names, kept while the tests move to [`Cmd`] and the
//! `vimg!` macros; removed once nothing uses them.

use std::path::{Path, PathBuf};

use super::command::Arg;
use super::{Cmd, Run, VIMG};

pub fn vimg_ok<S: Arg>(args: &[S]) -> String {
    Cmd::vimg().args(args).ok()
}

pub fn vimg_run<S: Arg>(args: &[S]) -> Run {
    Cmd::vimg().args(args).run()
}

pub fn qemu_img<S: Arg>(args: &[S]) -> String {
    Cmd::new("qemu-img").args(args).ok()
}

pub fn run<S: Arg>(prog: &str, args: &[S]) -> Run {
    Cmd::new(prog).args(args).run()
}

pub fn run_ok<S: Arg>(prog: &str, args: &[S]) -> String {
    Cmd::new(prog).args(args).ok()
}

pub fn python(script: &str, args: &[&str]) -> String {
    Cmd::new(super::PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .ok()
}

pub fn one_line_error(out: &Run, file: &Path) -> Result<(), String> {
    out.check_one_line_error(file)
}

pub fn assert_one_line_error(out: &Run, file: &Path, what: &str) {
    out.assert_one_line_error(file, what)
}

pub fn vimg_one_line_error(args: &[String], file: &Path, what: &str) -> String {
    Cmd::vimg()
        .args(args)
        .one_line_error(file, what)
        .stderr_text()
}

pub fn vimg_into_pipe(args: &[&str], out: &Path) -> String {
    Cmd::vimg().args(args).run_into_pipe(out)
}

pub fn vimg() -> assert_cmd::Command {
    assert_cmd::Command::new(VIMG)
}

pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

pub fn s(path: &Path) -> String {
    path.display().to_string()
}
