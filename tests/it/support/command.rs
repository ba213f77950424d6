//! Running vimg and its peers: a command line built one argument at a time
//! (strings, paths and numbers alike), run once, and what it printed.
//!
//! `vimg!`, `qemu_img!`, `cmd!` and `python!` build a [`Cmd`]; a string
//! literal among their arguments is split at whitespace into several
//! arguments, any other expression is exactly one argument:
//!
//! ```ignore
//! vimg!("convert -q -f raw -O vhd -o subformat=fixed", &raw, &vhd).ok();
//! let err = vimg!("create -f vmdk", &path, size).one_line_error(&path, "too big");
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

use super::VIMG;

/// One command-line argument: a string, a path or a number.
pub trait Arg {
    fn to_arg(&self) -> OsString;
}

macro_rules! arg_as_ref {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn to_arg(&self) -> OsString {
                AsRef::<OsStr>::as_ref(self).to_owned()
            }
        }
    )*};
}
arg_as_ref!(str, String, OsStr, OsString, Path, PathBuf);

macro_rules! arg_as_number {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn to_arg(&self) -> OsString {
                self.to_string().into()
            }
        }
    )*};
}
arg_as_number!(u32, u64, usize, i32, i64);

impl<T: Arg + ?Sized> Arg for &T {
    fn to_arg(&self) -> OsString {
        (**self).to_arg()
    }
}

/// A program and its arguments, to be run.
#[derive(Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Arg) -> Cmd {
        Cmd {
            program: program.to_arg(),
            args: Vec::new(),
            dir: None,
        }
    }

    /// The vimg binary cargo built for these tests.
    pub fn vimg() -> Cmd {
        Cmd::new(VIMG)
    }

    pub fn arg(mut self, arg: impl Arg) -> Cmd {
        self.args.push(arg.to_arg());
        self
    }

    /// The arguments so far.
    pub fn argv(&self) -> &[OsString] {
        &self.args
    }

    pub fn args<A: Arg>(mut self, args: impl IntoIterator<Item = A>) -> Cmd {
        self.args.extend(args.into_iter().map(|a| a.to_arg()));
        self
    }

    /// `flag value` when there is a value, nothing otherwise.
    pub fn opt(self, flag: &str, value: Option<impl Arg>) -> Cmd {
        match value {
            Some(v) => self.arg(flag).arg(v),
            None => self,
        }
    }

    /// Each whitespace-separated word of `text` as an argument; `text`
    /// without whitespace (even an empty one) is one argument.
    pub fn words(self, text: impl fmt::Display) -> Cmd {
        let text = text.to_string();
        if text.contains(char::is_whitespace) {
            self.args(text.split_whitespace())
        } else {
            self.arg(text)
        }
    }

    /// Run in `dir` instead of the test's working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The command to spawn by hand (pipes, time limits).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if let Some(dir) = &self.dir {
            c.current_dir(dir);
        }
        c
    }

    /// Run it, whatever it exits with; a program that cannot be started
    /// (a missing peer) fails the test.
    pub fn run(&self) -> Run {
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{self}`: {e}"));
        Run {
            cmdline: self.to_string(),
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    /// Run it, killing it (and failing the test) when it has not ended
    /// after `limit`: for commands that must never hang.
    pub fn run_within(&self, limit: std::time::Duration) -> Run {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{self}`: {e}"));
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                r.read_to_end(&mut v).ok();
                v
            })
        };
        let out = drain(Box::new(child.stdout.take().unwrap()));
        let err = drain(Box::new(child.stderr.take().unwrap()));
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > limit {
                child.kill().ok();
                child.wait().ok();
                panic!("`{self}` did not finish within {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        Run {
            cmdline: self.to_string(),
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }

    /// Run it; it must exit 0. Returns what it printed on stdout.
    pub fn ok(&self) -> String {
        let out = self.run();
        if !out.status.success() {
            panic!("`{self}` failed:\n{out:?}");
        }
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Run it; it must exit 0 and print JSON.
    pub fn json(&self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("`{self}` printed invalid JSON ({e}):\n{text}"))
    }

    /// Run it; it must exit with `code`.
    pub fn code(&self, code: i32) -> Run {
        let out = self.run();
        assert_eq!(out.code(), Some(code), "{out:?}");
        out
    }

    /// Run it; it must fail with exit code 1 and exactly one
    /// `vimg: error:` line naming `file`, without a panic.
    pub fn one_line_error(&self, file: &Path, what: &str) -> Run {
        let out = self.run();
        out.assert_one_line_error(file, what);
        out
    }

    /// Run it with its standard output a real pipe into `cat > out`; both
    /// must succeed. Returns its stderr.
    pub fn run_into_pipe(&self, out: &Path) -> String {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{self}`: {e}"));
        let pipe = child.stdout.take().unwrap();
        let cat = Command::new("cat")
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::from(File::create(out).unwrap()))
            .status()
            .expect("run cat");
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "`{self}` into a pipe failed ({status}): {err}"
        );
        assert!(cat.success(), "cat failed: {cat}");
        err
    }
}

/// The command line as a shell would show it (the program by its file
/// name).
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let program = Path::new(&self.program);
        write!(
            f,
            "{}",
            program
                .file_name()
                .unwrap_or(program.as_os_str())
                .to_string_lossy()
        )?;
        for a in &self.args {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// What one run did.
pub struct Run {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether the run failed with exit code 1 and exactly one line on
    /// stderr, naming `file`, without a panic; `Err` says what is wrong.
    pub fn check_one_line_error(&self, file: &Path) -> Result<(), String> {
        let stderr = self.stderr_text();
        let name = file.file_name().unwrap().to_string_lossy();
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            return Err(format!("vimg panicked ({}):\n{stderr}", self.status));
        }
        if self.code() != Some(1) {
            return Err(format!(
                "expected exit code 1, got {}; stderr:\n{stderr}",
                self.status
            ));
        }
        if stderr.lines().count() != 1 || !stderr.ends_with('\n') {
            return Err(format!(
                "expected exactly one line on stderr, got:\n{stderr}"
            ));
        }
        if !stderr.contains(&*name) {
            return Err(format!("the error does not name {name}: {stderr}"));
        }
        if !stderr.starts_with("vimg: error: ") {
            return Err(format!("not a vimg error line: {stderr}"));
        }
        Ok(())
    }

    /// [`Run::check_one_line_error`], failing the test with `what`.
    pub fn assert_one_line_error(&self, file: &Path, what: &str) {
        if let Err(e) = self.check_one_line_error(file) {
            panic!("{what}: {e}");
        }
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "`{}` ({}):\nstdout: {}\nstderr: {}",
            self.cmdline,
            self.status,
            self.stdout_text(),
            self.stderr_text()
        )
    }
}

/// Add the arguments of a `vimg!`-style macro to the [`Cmd`] before the
/// `;`: a string literal as its whitespace-separated words, any other
/// expression as one argument.
macro_rules! args {
    ($cmd:expr;) => { $cmd };
    ($cmd:expr; $words:literal $(, $($rest:tt)*)?) => {
        $crate::support::args!($cmd.words($words); $($($rest)*)?)
    };
    ($cmd:expr; $arg:expr $(, $($rest:tt)*)?) => {
        $crate::support::args!($cmd.arg($arg); $($($rest)*)?)
    };
}

/// vimg with these arguments (see the module documentation).
macro_rules! vimg {
    ($($a:tt)*) => { $crate::support::args!($crate::support::Cmd::vimg(); $($a)*) };
}

/// qemu-img with these arguments.
macro_rules! qemu_img {
    ($($a:tt)*) => { $crate::support::args!($crate::support::Cmd::new("qemu-img"); $($a)*) };
}

/// The program `$program` (one argument, never split) with these
/// arguments.
macro_rules! cmd {
    ($program:expr $(, $($a:tt)*)?) => {
        $crate::support::args!($crate::support::Cmd::new($program); $($($a)*)?)
    };
}

/// The python with pyvmdk, pyvhdi and VMDKstream running `$script` (one
/// argument, never split) with these arguments.
macro_rules! python {
    ($script:expr $(, $($a:tt)*)?) => {
        $crate::support::args!(
            $crate::support::Cmd::new($crate::support::PYTHON).arg("-c").arg($script);
            $($($a)*)?
        )
    };
}

pub(crate) use {args, cmd, python, qemu_img, vimg};
