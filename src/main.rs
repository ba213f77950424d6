//! The `vimg` binary: parse the command line, run it, report errors.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    vimg::io::raise_open_file_limit();
    let cli = match vimg::cmd::Cli::try_parse() {
        Ok(cli) => cli,
        // A bad value (a format, a size) is bad input like any other: one
        // line and exit code 1, as qemu-img gives (compare: 2, its code
        // for an error, as qemu-img compare gives for an unknown format or
        // cache mode, where 1 would say "different"); usage errors, --help
        // and --version as clap shows them.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) =>
        {
            let line = one_line(&e.render().to_string());
            eprintln!("vimg: error: {}", vimg::cmd::printable(&line));
            let verb = std::env::args_os().nth(1);
            return ExitCode::from(match verb.as_deref().and_then(|v| v.to_str()) {
                Some("compare") => 2,
                _ => 1,
            });
        }
        // --help and --version print and succeed.
        Err(e) if !e.use_stderr() => e.exit(),
        // Usage errors: clap's message, and exit code 1 as qemu-img gives
        // (2 means "corruptions found" to `check` and "different" to
        // nothing else vimg prints).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(1);
        }
    };
    // Commands that stop cleanly at a signal catch it; the others end
    // where they stand, which is safe for them (they read, or write in
    // place in an order a stop at any write leaves sound).
    if cli.stops_at_signals() {
        vimg::interrupt::install();
    }
    match vimg::cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let text = format!("{err:#}");
            eprintln!("vimg: error: {}", vimg::cmd::printable(&text));
            // As a shell reports a command a signal ended: 128 + signal.
            match vimg::interrupt::signal() {
                Some(signal) => ExitCode::from(128 + signal as u8),
                None => ExitCode::from(1),
            }
        }
    }
}

/// Clap's message for a bad value, on one line: what was wrong and, where
/// clap lists them, the values it takes.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim);
    let first = lines.next().unwrap_or("");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if let Some(values) = lines.find(|l| l.starts_with("[possible values:")) {
        line = format!("{line} {}", values.replace('[', "(").replace(']', ")"));
    }
    line
}
