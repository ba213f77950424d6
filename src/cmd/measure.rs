//! `vimg measure`: the space a conversion needs.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::args::{format_name, read_access, Output};
use crate::chain;
use crate::image::{factory, Format, Image, OpenOptions, Source};
use crate::options::Options;
use crate::units::parse_size;

/// Show the space a conversion into -O FMT needs
///
/// `required` for the data SOURCE holds (or an empty disk of --size),
/// `fully-allocated` for a disk full of data, with qemu-img's names (JSON:
/// required, fully-allocated).
///
/// For every format and subformat vimg writes; for streamOptimized the
/// required size is an upper bound (compression makes it smaller). A raw
/// target takes its whole virtual size, as qemu-img counts it.
///
/// Examples:
///   vimg measure -O vhd disk.vmdk
///   vimg measure -O vmdk -o subformat=twoGbMaxExtentSparse --size 100G
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MeasureArgs {
    /// Format of SOURCE (probed when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = format_name())]
    format: Option<Format>,

    /// Output format
    #[arg(short = 'O', long = "target-format", value_name = "FMT", value_parser = format_name(), default_value = "raw")]
    target_format: Format,

    /// Options of the output format as key=value[,key=value...]
    #[arg(short = 'o', long = "options", value_name = "OPTIONS")]
    options: Vec<String>,

    /// Measure an empty disk of this size instead of SOURCE
    #[arg(short = 's', long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "source")]
    size: Option<u64>,

    /// Not supported: VMDK and VHD images have no internal snapshots to
    /// measure (qemu-img's -l)
    #[arg(short = 'l', long = "snapshot", value_name = "SNAPSHOT")]
    snapshot: Option<String>,

    /// Print nothing: only whether it can be measured (the exit code)
    #[arg(short, long)]
    quiet: bool,

    #[command(flatten)]
    qemu_only: super::args::QemuOnly,

    /// Output style
    #[arg(long, value_enum, default_value_t)]
    output: Output,

    /// Read SOURCE even while another process may be writing it
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    /// The image to convert
    source: Option<PathBuf>,
}

/// The ranges of the disk `image` (through its chain) holds data in.
fn data_runs(image: &mut dyn Image) -> anyhow::Result<Vec<(u64, u64)>> {
    let size = image.virtual_size();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut at = 0;
    while at < size {
        crate::interrupt::check()?;
        let (m, _) = chain::status(image, at, size - at)?;
        let len = m.len.max(1);
        if matches!(m.source, Source::Data { .. }) {
            match runs.last_mut() {
                Some(last) if last.1 == at => last.1 = at + len,
                _ => runs.push((at, at + len)),
            }
        }
        at += len;
    }
    Ok(runs)
}

/// How many units of `unit` bytes `runs` touch.
fn units_touched(runs: &[(u64, u64)], unit: u64) -> u64 {
    let mut count = 0;
    let mut last: Option<u64> = None;
    for &(start, end) in runs {
        let (first, final_) = (start / unit, (end - 1) / unit);
        let from = match last {
            Some(l) if l >= first => l + 1,
            _ => first,
        };
        if final_ >= from {
            count += final_ - from + 1;
        }
        last = Some(last.map_or(final_, |l| l.max(final_)));
    }
    count
}

pub fn run(args: MeasureArgs) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    if args.snapshot.is_some() {
        super::args::refuse("-l", super::args::NO_INTERNAL_SNAPSHOTS)?;
    }
    let opts = Options::parse(args.options.iter().map(String::as_str))?;
    let (size, runs) = match (&args.source, args.size) {
        (Some(source), None) => {
            let open = OpenOptions::new(read_access(args.force_share));
            let mut image = factory::open_with(source, args.format, open)?;
            let runs = data_runs(image.as_mut())?;
            (image.virtual_size(), runs)
        }
        (None, Some(size)) => (size, Vec::new()),
        _ => bail!("give a SOURCE image or --size"),
    };
    let m = factory::measure(args.target_format, size, &opts, &|unit| {
        units_touched(&runs, unit)
    })?;
    let text = match args.output {
        Output::Human => format!(
            "required size: {}\nfully allocated size: {}\n",
            m.required, m.fully_allocated
        ),
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "required": m.required,
                "fully-allocated": m.fully_allocated,
            }))?
        ),
    };
    if !args.quiet {
        super::print(&text)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::units_touched;

    #[test]
    fn units_are_counted_once_however_many_runs_touch_them() {
        assert_eq!(units_touched(&[], 64), 0);
        assert_eq!(units_touched(&[(0, 1)], 64), 1);
        assert_eq!(units_touched(&[(0, 64)], 64), 1);
        assert_eq!(units_touched(&[(0, 65)], 64), 2);
        assert_eq!(units_touched(&[(10, 20), (30, 40), (60, 70)], 64), 2);
        assert_eq!(units_touched(&[(100, 200), (1000, 1001)], 64), 3 + 1);
    }
}
