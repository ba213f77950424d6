//! The progress bar of long commands (`-p`): on standard error, and only
//! when that is a terminal, so scripts and logs never see it.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` bytes when `wanted` and standard error is a
/// terminal; `None` otherwise.
pub fn bar(wanted: bool, total: u64) -> Option<ProgressBar> {
    (wanted && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("a valid template"),
        );
        bar
    })
}

/// Move `bar` (when there is one) to `done` bytes.
pub fn show(bar: &Option<ProgressBar>, done: u64) {
    if let Some(bar) = bar {
        bar.set_position(done);
    }
}

/// Take `bar` off the terminal.
pub fn finish(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
