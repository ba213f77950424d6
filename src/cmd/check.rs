//! `vimg check`: every inconsistency in an image and its chain, reported
//! and (with `-r`) repaired, with qemu-img's exit codes and JSON.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use super::args::{Inspect, Output};
use crate::image::check::{Finding, Repair, Report, Severity};
use crate::image::{factory, Format, Image};
use crate::io::Access;

/// Check an image and its backing chain for inconsistencies; -r repairs
///
/// With -r, what can be repaired without changing what the disk reads is
/// repaired.
///
/// Every problem is reported, not just the first. Exit codes are
/// qemu-img's: 0 consistent (after -r: consistent after the repair), 1 the
/// check could not complete, 2 corruptions were found, 3 only leaks
/// (space nothing references) were found.
///
/// Examples:
///   vimg check disk.vmdk
///   vimg check --output json snapshot-000001.vmdk
///   vimg check -r leaks disk.vhd
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    #[command(flatten)]
    image: Inspect,

    /// Repair: leaks (free space nothing references, rewrite a footer copy)
    /// or all (also rebuild or clear wrong metadata)
    #[arg(short = 'r', long = "repair", value_enum, value_name = "leaks|all")]
    repair: Option<RepairLevel>,

    /// Check this image only, not the images of its backing chain
    #[arg(long = "no-chain")]
    no_chain: bool,

    /// Print only the findings, not the summary
    #[arg(short, long)]
    quiet: bool,

    /// Show a progress bar, a step for each image of the chain (only when
    /// stderr is a terminal)
    #[arg(short, long)]
    progress: bool,

    /// The image to check
    file: PathBuf,
}

/// `-r`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RepairLevel {
    Leaks,
    All,
}

impl From<RepairLevel> for Repair {
    fn from(level: RepairLevel) -> Repair {
        match level {
            RepairLevel::Leaks => Repair::Leaks,
            RepairLevel::All => Repair::All,
        }
    }
}

/// What one full check of the chain found.
struct Outcome {
    /// Each layer's report, top first, with the layer's cluster size.
    layers: Vec<(Report, u64)>,
    /// Failures of the check itself.
    errors: Vec<String>,
    format: &'static str,
}

impl Outcome {
    fn findings(&self) -> impl Iterator<Item = (usize, &Finding)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(layer, (r, _))| r.findings.iter().map(move |f| (layer, f)))
    }

    fn corruptions(&self) -> u64 {
        self.findings()
            .filter(|(_, f)| f.severity == Severity::Corruption)
            .count() as u64
    }

    /// Leaked clusters, as qemu-img counts them.
    fn leaks(&self) -> u64 {
        self.layers
            .iter()
            .map(|(r, cluster)| leaked_clusters(&r.findings, *cluster))
            .sum()
    }

    /// The top layer's cluster size.
    fn cluster_size(&self) -> u64 {
        self.layers.first().map_or(1, |(_, c)| *c)
    }

    fn top(&self) -> Option<&Report> {
        self.layers.first().map(|(r, _)| r)
    }

    /// qemu-img's exit code for this state.
    fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            1
        } else if self.corruptions() > 0 {
            2
        } else if self.leaks() > 0 {
            3
        } else {
            0
        }
    }
}

/// The clusters the leaks among `findings` take, in clusters of `cluster`
/// bytes (a leak of unknown size counts one).
fn leaked_clusters(findings: &[Finding], cluster: u64) -> u64 {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Leak)
        .map(|f| f.length.map_or(1, |n| n.div_ceil(cluster.max(1)).max(1)))
        .sum()
}

/// Check the image at `file` (and its chain unless `no_chain`).
fn check_chain(args: &CheckArgs, access: Access) -> anyhow::Result<(Outcome, Box<dyn Image>)> {
    let mut opts = args.image.confinement.open_options(access).checking();
    if args.no_chain {
        opts = opts.with_parents(None);
    } else if access == Access::Write {
        opts = opts.with_parents(Some(Access::Read));
    }
    let mut image = factory::open_with(&args.file, args.image.format, opts)?;
    let mut outcome = Outcome {
        layers: Vec::new(),
        errors: Vec::new(),
        format: image.info().map(|i| i.format).unwrap_or("raw"),
    };
    let bar = super::progress::bar(args.progress, image.virtual_size());
    let mut layer: Option<&mut dyn Image> = Some(image.as_mut());
    let mut depth = 0u64;
    while let Some(l) = layer {
        if let Some(bar) = &bar {
            // Each layer a share of the bar: the depth is not known ahead.
            bar.set_position(bar.length().unwrap_or(0) * depth / (depth + 1));
        }
        depth += 1;
        let mut report = Report::default();
        if let Err(e) = l.check(&mut report) {
            outcome.errors.push(e.to_string());
        }
        let size = l.virtual_size();
        let file = l.files().into_iter().next().unwrap_or_default();
        let link = l.parent_link();
        if let Some(parent) = l.parent() {
            // A link --ignore-parent-id reads through: still not right
            // (without it, the open reports the link as corrupt).
            let ignoring = args.image.confinement.ignore_parent_id;
            if let (true, Some((recorded, _)), Some(found)) = (ignoring, link, parent.identity()) {
                if recorded != found {
                    report.push(Finding::new(
                        Severity::Warning,
                        &file,
                        None,
                        "backing chain",
                        format!(
                            "its parent {} has ID {found}, but the delta was made from {recorded}; read through as --ignore-parent-id asks (if it is the right parent, `vimg rebase -u -b` relinks it)",
                            parent.files().first().map(|p| p.display().to_string()).unwrap_or_default(),
                        ),
                    ));
                }
            }
            if parent.virtual_size() != size {
                report.push(Finding::new(
                    Severity::Corruption,
                    &file,
                    None,
                    "backing chain",
                    format!(
                        "the disk is {size} bytes but its parent {} is {} bytes; VMware attaches no parent of another size",
                        parent.files().first().map(|p| p.display().to_string()).unwrap_or_default(),
                        parent.virtual_size()
                    ),
                ));
            }
        }
        outcome.layers.push((report, l.cluster_size()));
        layer = l.parent();
    }
    super::progress::show(&bar, bar.as_ref().and_then(|b| b.length()).unwrap_or(0));
    super::progress::finish(bar);
    if let Some(parent) = super::snapshot::commit::interrupted(&args.file) {
        let finding = Finding::new(
            Severity::Corruption,
            &args.file,
            None,
            "snapshot commit",
            format!(
                "a `vimg snapshot commit` of this delta into {} was stopped before it finished: the parent may hold part of the delta's data (and a new ID); run `vimg snapshot commit {}` again to finish it",
                parent.display(),
                args.file.display()
            ),
        );
        if let Some((top, _)) = outcome.layers.first_mut() {
            top.findings.insert(0, finding);
        }
    }
    Ok((outcome, image))
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    args.image.qemu_only.refuse()?;
    if args.repair.is_some() && args.image.force_share {
        bail!("-r and -U cannot be used together: a repair needs the image to itself");
    }
    let Some(level) = args
        .repair
        .filter(|_| args.image.format != Some(Format::Raw))
    else {
        let (outcome, _image) = check_chain(&args, args.image.access())?;
        print_findings(&args, &outcome);
        return summarize(&args, &outcome, &[]);
    };
    let level = Repair::from(level);
    let (outcome, mut image) = check_chain(&args, Access::Write)?;
    print_findings(&args, &outcome);
    if !outcome.errors.is_empty() {
        // The metadata could not be walked: nothing is repaired blind.
        return summarize(&args, &outcome, &[]);
    }
    let fixed = image.repair(level)?;
    drop(image);
    if fixed.is_empty() {
        return summarize(&args, &outcome, &[]);
    }
    let human = args.image.output == Output::Human;
    for f in fixed.iter().filter(|_| human) {
        eprintln!("Repairing {}", super::printable(&describe(0, f)));
    }
    if human && !args.quiet {
        let corruptions = fixed
            .iter()
            .filter(|f| f.severity == Severity::Corruption)
            .count();
        super::print(&format!(
            "The following inconsistencies were found and repaired:\n\n    {} leaked clusters\n    {corruptions} corruptions\n\nDouble checking the fixed image now...\n",
            leaked_clusters(&fixed, outcome.cluster_size()),
        ))?;
    }
    let (after, _image) = check_chain(&args, Access::Read)?;
    print_findings(&args, &after);
    summarize(&args, &after, &fixed)
}

/// A finding as one line of human output.
fn describe(layer: usize, f: &Finding) -> String {
    let place = match f.offset {
        Some(at) => format!("{} at byte {at}", f.structure),
        None => f.structure.to_string(),
    };
    let whose = match layer {
        0 => String::new(),
        n => format!(" (backing chain layer {n})"),
    };
    format!("{}{whose}: {place}: {}", f.file.display(), f.message)
}

/// Print each finding on standard error, as qemu-img's drivers do.
fn print_findings(args: &CheckArgs, outcome: &Outcome) {
    if args.image.output != Output::Human {
        return;
    }
    for e in &outcome.errors {
        eprintln!("ERROR the check could not complete: {e}");
    }
    for (layer, f) in outcome.findings() {
        let line = describe(layer, f);
        let line = super::printable(&line);
        match f.severity {
            Severity::Corruption => eprintln!("ERROR {line}"),
            Severity::Leak => eprintln!("Leaked {line}"),
            Severity::Warning => eprintln!("Warning: {line}"),
        }
    }
}

/// Print the summary of `outcome` (after a repair: of the second check,
/// with what the repair `fixed`) and return the exit code.
fn summarize(args: &CheckArgs, outcome: &Outcome, fixed: &[Finding]) -> anyhow::Result<u8> {
    match args.image.output {
        Output::Json => super::print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json_of(&args.file, outcome, fixed))?
        ))?,
        Output::Human if !args.quiet => super::print(&summary(outcome))?,
        Output::Human => {}
    }
    Ok(outcome.exit_code())
}

/// qemu-img's closing lines.
fn summary(outcome: &Outcome) -> String {
    let mut out = String::new();
    let (corruptions, leaks) = (outcome.corruptions(), outcome.leaks());
    if outcome.errors.is_empty() && corruptions == 0 && leaks == 0 {
        out.push_str("No errors were found on the image.\n");
    }
    if corruptions > 0 {
        out.push_str(&format!(
            "\n{corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n"
        ));
    }
    if leaks > 0 {
        out.push_str(&format!(
            "\n{leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n"
        ));
    }
    if !outcome.errors.is_empty() {
        out.push_str(&format!(
            "\n{} internal errors have occurred during the check.\n",
            outcome.errors.len()
        ));
    }
    let top = outcome.top();
    if let Some(c) = top.and_then(|r| r.clusters).filter(|c| c.total > 0) {
        let pct = |n: u64| n as f64 * 100.0 / c.total as f64;
        let of_allocated = |n: u64| n as f64 * 100.0 / c.allocated.max(1) as f64;
        out.push_str(&format!(
            "{}/{} = {:.2}% allocated, {:.2}% fragmented, {:.2}% compressed clusters\n",
            c.allocated,
            c.total,
            pct(c.allocated),
            of_allocated(c.fragmented),
            of_allocated(c.compressed)
        ));
    }
    if let Some(end) = top.and_then(|r| r.end_offset).filter(|&e| e > 0) {
        out.push_str(&format!("Image end offset: {end}\n"));
    }
    out
}

/// qemu-img's `ImageCheck` (optional counts left out when zero), and the
/// findings.
fn json_of(file: &Path, outcome: &Outcome, fixed: &[Finding]) -> Value {
    let mut m = Map::new();
    m.insert("filename".into(), json!(file.display().to_string()));
    m.insert("format".into(), json!(outcome.format));
    m.insert("check-errors".into(), json!(outcome.errors.len()));
    let corruptions_fixed = fixed
        .iter()
        .filter(|f| f.severity == Severity::Corruption)
        .count() as u64;
    let top = outcome.top();
    let clusters = top.and_then(|r| r.clusters).unwrap_or_default();
    for (key, n) in [
        ("corruptions", outcome.corruptions()),
        ("leaks", outcome.leaks()),
        ("corruptions-fixed", corruptions_fixed),
        (
            "leaks-fixed",
            leaked_clusters(fixed, outcome.cluster_size()),
        ),
        (
            "image-end-offset",
            top.and_then(|r| r.end_offset).unwrap_or(0),
        ),
        ("total-clusters", clusters.total),
        ("allocated-clusters", clusters.allocated),
        ("fragmented-clusters", clusters.fragmented),
        ("compressed-clusters", clusters.compressed),
    ] {
        if n > 0 {
            m.insert(key.into(), json!(n));
        }
    }
    let findings: Vec<Value> = outcome
        .findings()
        .map(|(layer, f)| {
            json!({
                "severity": f.severity.name(),
                "layer": layer,
                "file": f.file.display().to_string(),
                "offset": f.offset,
                "structure": f.structure,
                "message": f.message,
                "repair": f.repair.map(Repair::name),
            })
        })
        .collect();
    m.insert("findings".into(), Value::Array(findings));
    Value::Object(m)
}
