//! The command line: one file per subcommand, each holding its arguments
//! (whose doc comments are the help text) and its `run`.

mod amend;
mod args;
mod check;
mod compact;
mod compare;
mod convert;
mod create;
mod info;
mod map;
mod measure;
mod prealloc;
mod progress;
mod resize;
mod snapshot;
mod staging;

use clap::{Parser, Subcommand};

/// Create, inspect and convert VMware VMDK and Microsoft VHD disk images.
///
/// Flags follow qemu-img where qemu-img has them; formats are `vmdk`,
/// `vhd` (also `vpc`, as qemu-img calls it) and `raw`.
#[derive(Debug, Parser)]
#[command(name = "vimg", version = VERSION, propagate_version = true, infer_long_args = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Create(create::CreateArgs),
    Info(info::InfoArgs),
    Convert(convert::ConvertArgs),
    Map(map::MapArgs),
    Check(check::CheckArgs),
    Compare(compare::CompareArgs),
    Amend(amend::AmendArgs),
    Measure(measure::MeasureArgs),
    Compact(compact::CompactArgs),
    Resize(resize::ResizeArgs),
    Snapshot(snapshot::SnapshotArgs),
    #[command(about = "Write a delta's data into its parent (the same as `snapshot commit`)")]
    Commit(snapshot::commit::CommitArgs),
    #[command(about = "Move a delta onto another parent (the same as `snapshot rebase`)")]
    Rebase(snapshot::rebase::RebaseArgs),
    Completions(CompletionsArgs),
}

/// Print the shell completion script for SHELL
///
/// The same scripts are in completions/ of the source, for packagers.
///
/// Examples:
///   vimg completions bash > /etc/bash_completion.d/vimg
///   vimg completions zsh > ~/.zfunc/_vimg
///   vimg completions fish > ~/.config/fish/completions/vimg.fish
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    shell: clap_complete::Shell,

    /// Print nothing (only whether SHELL is known: the exit code)
    #[arg(short, long)]
    quiet: bool,
}

impl Cli {
    /// True for commands that check for Ctrl-C between steps and clean up
    /// (a half-built image is removed, a commit stops between writes).
    pub fn stops_at_signals(&self) -> bool {
        match &self.command {
            Command::Convert(_)
            | Command::Compare(_)
            | Command::Measure(_)
            | Command::Commit(_)
            | Command::Rebase(_) => true,
            Command::Snapshot(args) => args.stops_at_signals(),
            _ => false,
        }
    }
}

/// What `vimg --version` prints after the name.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nformats: vmdk (monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized; reads vmfsSparse, seSparse, VMDK3), vhd (dynamic, fixed, differencing; also called vpc), raw"
);

/// Print `text` to standard output. A reader that went away (`| head`)
/// ends the command quietly instead of failing it.
fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let text = printable(text);
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `text` with control characters (but line ends and tabs) escaped: names
/// and values an image brings must not drive the terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(control) {
        return text.into();
    }
    text.chars()
        .flat_map(|c| match control(c) {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect::<String>()
        .into()
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    run_command(cli).map_err(name_stopped_commit)
}

/// A delta that does not fit its parent because a commit into that parent
/// was stopped part way: say so, and how to finish it, before the rest.
fn name_stopped_commit(err: anyhow::Error) -> anyhow::Error {
    let delta = err.chain().find_map(|cause| match cause.downcast_ref() {
        Some(crate::Error::Chain { path, .. }) => Some(path.clone()),
        _ => None,
    });
    match delta.filter(|d| snapshot::commit::interrupted(d).is_some()) {
        Some(d) => err.context(format!(
            "a commit of {} into its parent was stopped part way; `vimg commit {}` finishes it",
            d.display(),
            d.display()
        )),
        None => err,
    }
}

fn run_command(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Create(args) => create::run(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Map(args) => map::run(args),
        Command::Check(args) => check::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Amend(args) => amend::run(args),
        Command::Measure(args) => measure::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Resize(args) => resize::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Commit(args) => snapshot::commit::run(args),
        Command::Rebase(args) => snapshot::rebase::run(args),
        Command::Completions(args) => {
            if !args.quiet {
                print(&script(args.shell))?;
            }
            Ok(0)
        }
    }
}

/// The shell completion scripts in `completions/`, as (file name, text).
pub fn completions() -> Vec<(&'static str, String)> {
    use clap_complete::Shell;
    [
        (Shell::Bash, "vimg.bash"),
        (Shell::Zsh, "_vimg"),
        (Shell::Fish, "vimg.fish"),
        (Shell::Elvish, "vimg.elv"),
        (Shell::PowerShell, "_vimg.ps1"),
    ]
    .into_iter()
    .map(|(shell, file)| (file, script(shell)))
    .collect()
}

/// The manual pages in `docs/man/`, as (file name, roff text): `vimg.1`
/// and one a subcommand, nested ones named by their path
/// (`vimg-snapshot-commit.1`).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, name: &str, bin: &str, pages: &mut Vec<(String, Vec<u8>)>) {
        // The header's version: the number, without --version's list of
        // formats.
        let page = cmd
            .clone()
            .display_name(name.to_string())
            .bin_name(bin.to_string())
            .version(env!("CARGO_PKG_VERSION"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut out)
            .expect("rendering into memory cannot fail");
        pages.push((format!("{name}.1"), out));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let (n, b) = (
                format!("{name}-{}", sub.get_name()),
                format!("{bin} {}", sub.get_name()),
            );
            walk(sub, &n, &b, pages);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, "vimg", "vimg", &mut pages);
    pages
}

/// The completion script for `shell`.
fn script(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vimg", &mut out);
    String::from_utf8(out).expect("completions are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Regenerate with `VIMG_UPDATE_COMPLETIONS=1 cargo test man_pages`.
    #[test]
    fn man_pages_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
        let update = std::env::var_os("VIMG_UPDATE_COMPLETIONS").is_some();
        let pages = man_pages();
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (file, text) in &pages {
                std::fs::write(dir.join(file), text).unwrap();
            }
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        on_disk.sort();
        let mut names: Vec<String> = pages.iter().map(|(f, _)| f.clone()).collect();
        names.sort();
        assert_eq!(
            on_disk, names,
            "docs/man is stale: run VIMG_UPDATE_COMPLETIONS=1 cargo test man_pages"
        );
        for (file, text) in pages {
            let have = std::fs::read(dir.join(&file)).unwrap_or_default();
            assert!(
                have == text,
                "docs/man/{file} is stale: run VIMG_UPDATE_COMPLETIONS=1 cargo test man_pages"
            );
        }
    }

    /// Regenerate with `VIMG_UPDATE_COMPLETIONS=1 cargo test completions`.
    #[test]
    fn completions_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
        let update = std::env::var_os("VIMG_UPDATE_COMPLETIONS").is_some();
        for (file, text) in completions() {
            let path = dir.join(file);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == text,
                "{} is stale: run VIMG_UPDATE_COMPLETIONS=1 cargo test completions",
                path.display()
            );
        }
    }
}
