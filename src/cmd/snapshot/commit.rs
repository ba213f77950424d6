//! `vimg snapshot commit` (also `vimg commit`): a delta's data written
//! into its parent, the delta emptied and relinked, crash-safe by a journal
//! beside the delta.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::super::progress;
use crate::chain;
use crate::copy::plan::{Layers, Plan};
use crate::copy::throttle::{pace, Throttle};
use crate::image::{factory, Format, Image, NewParent, OpenOptions};
use crate::interrupt;
use crate::io::{folder_of, Access};

/// Write a delta's data into its parent, then empty and relink the delta
///
/// Write DELTA's data into its parent, so that the parent reads exactly
/// what DELTA read; then empty DELTA (unless -d) and relink it (VMDK
/// parentCID = the parent's new CID; VHD parent time stamp refreshed), so
/// that DELTA over its parent still reads the same and is a valid chain
/// for VMware, Hyper-V and qemu alike.
///
/// Other deltas of the same parent found beside it would no longer read
/// what they did: the commit refuses them unless --force. DELTA keeps its
/// data until the parent holds all of it; a commit that is stopped is
/// finished by running the same command again (`vimg check` names it in
/// the meantime).
///
/// Examples:
///   vimg snapshot commit vm-000001.vmdk
///   vimg commit child.vhd
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CommitArgs {
    /// Format of DELTA (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = super::super::args::format_name())]
    format: Option<Format>,

    /// Commit into BASE, further down DELTA's chain, instead of its parent:
    /// DELTA is then relinked to BASE, and the layers between no longer
    /// read what they did (delete them)
    #[arg(short = 'b', long = "base", value_name = "BASE")]
    base: Option<PathBuf>,

    /// Keep DELTA's data (do not empty it)
    #[arg(short = 'd', long = "drop")]
    keep: bool,

    /// Cache mode (qemu-img's -t): accepted for scripts; vimg's in-place
    /// writes keep their crash-safe order whatever it says
    #[arg(short = 't', long = "cache", value_enum, value_name = "CACHE")]
    cache: Option<crate::cmd::staging::Cache>,

    /// Move at most RATE bytes a second (10M, 1G; binary units), so that
    /// the commit does not starve a busy host
    #[arg(short = 'r', long = "rate", value_name = "RATE", value_parser = crate::units::parse_size)]
    rate: Option<u64>,

    #[command(flatten)]
    qemu_only: crate::cmd::args::QemuOnly,

    /// Commit even though other deltas of the parent (which the commit
    /// invalidates) lie beside it
    #[arg(long)]
    force: bool,

    /// Show a progress bar (only when stderr is a terminal)
    #[arg(short = 'p', long)]
    progress: bool,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,

    /// The delta to commit
    delta: PathBuf,
}

/// The journal of a commit of `delta` in progress: `.NAME.vimg-commit`
/// beside it, naming the parent.
pub fn journal_path(delta: &Path) -> PathBuf {
    let name = delta.file_name().unwrap_or_default().to_string_lossy();
    delta.with_file_name(format!(".{name}.vimg-commit"))
}

/// The parent a commit journal names, when one lies beside `delta`.
pub fn interrupted(delta: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(journal_path(delta)).ok()?;
    let name = text.lines().find_map(|l| l.strip_prefix("parent="))?;
    (!name.is_empty()).then(|| chain::parent_path(delta, name))
}

/// Write the journal and make it durable, whole or not at all: written
/// beside it under another name, flushed, then renamed into place.
fn begin(delta: &Path, parent: &Path, recorded: &str) -> anyhow::Result<()> {
    let journal = journal_path(delta);
    let name = chain::relative_name(folder_of(delta), parent);
    let text = format!(
        "vimg snapshot commit in progress: run it again to finish\nparent={name}\nrecorded-id={recorded}\n"
    );
    let part = journal.with_extension("vimg-commit-part");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&part)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&part, &journal)
    };
    write().with_context(|| format!("{}: cannot write the commit journal", journal.display()))?;
    sync_folder(&journal)
}

/// Remove the journal: the commit is done.
fn end(delta: &Path) -> anyhow::Result<()> {
    let journal = journal_path(delta);
    // What a stop while the journal was written left.
    let _ = fs::remove_file(journal.with_extension("vimg-commit-part"));
    fs::remove_file(&journal)
        .with_context(|| format!("{}: cannot remove the commit journal", journal.display()))?;
    sync_folder(&journal)
}

/// Flush the folder `file` lies in (its names) to disk.
fn sync_folder(file: &Path) -> anyhow::Result<()> {
    fs::File::open(folder_of(file)).and_then(|d| d.sync_all())?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    chain::same_file(a, b)
}

/// Other deltas of `parent` (with identity `id`) in its folder.
fn siblings(parent: &Path, id: &str, delta: &Path) -> Vec<PathBuf> {
    super::deltas_beside(parent)
        .into_iter()
        .filter(|(path, recorded)| recorded == id && !chain::same_file(path, delta))
        .map(|(path, _)| path)
        .collect()
}

/// The layer `depth` levels below `image` (0: the image itself).
fn layer_at(image: &mut dyn Image, depth: usize) -> Option<&mut dyn Image> {
    match depth {
        0 => Some(image),
        n => layer_at(image.parent()?, n - 1),
    }
}

/// How deep in `image`'s chain the file `base` is (1: its parent), and
/// the files of the layers above it.
fn depth_of(image: &mut dyn Image, base: &Path) -> Option<(usize, Vec<PathBuf>)> {
    let mut above = Vec::new();
    let mut layer = Some(image);
    let mut depth = 0;
    while let Some(l) = layer {
        let file = l.files().into_iter().next().unwrap_or_default();
        if depth > 0 && same_file(&file, base) {
            return Some((depth, above));
        }
        above.push(file);
        layer = l.parent();
        depth += 1;
    }
    None
}

pub fn run(args: CommitArgs) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    let delta = &args.delta;
    // A commit stopped before: the target's identity may have changed
    // under it, by our own writes.
    let resumed = interrupted(delta);
    let trusted = match &resumed {
        Some(parent) => {
            let opts = OpenOptions::new(Access::Read).with_parents(None);
            factory::open_with(parent, None, opts)
                .ok()
                .and_then(|p| p.identity())
        }
        None => None,
    };
    // The delta too is held under the write lock from the start: nothing
    // may change what it holds while that is copied and then emptied.
    let opts = OpenOptions::new(Access::Write)
        .with_parents(Some(Access::Write))
        .trusting_parent(trusted);
    let mut image = factory::open_with(delta, args.format, opts)?;
    let Some((_, name)) = image.parent_link() else {
        bail!("{}: it has no parent to commit into", delta.display());
    };
    // The delta is relinked and emptied at the end: refuse one that
    // cannot be before the parent changes.
    image.check_writable()?;
    let size = image.virtual_size();
    // Where the data goes: the parent, or BASE (resumed: the journal's,
    // and no other).
    if let (Some(journal), Some(asked)) = (&resumed, &args.base) {
        if !chain::any_shared(std::slice::from_ref(journal), std::slice::from_ref(asked)) {
            bail!(
                "{}: a commit into {} was stopped part way; finish it first (vimg commit {}), then commit elsewhere",
                delta.display(),
                journal.display(),
                delta.display()
            );
        }
    }
    let target = args.base.clone().or(resumed.clone());
    let (depth, above) = match &target {
        None => {
            let file = image.files().into_iter().next().unwrap_or_default();
            (1, vec![file])
        }
        Some(base) => depth_of(image.as_mut(), base).with_context(|| {
            format!(
                "{}: {} is not in its backing chain",
                delta.display(),
                base.display()
            )
        })?,
    };
    let base = layer_at(image.as_mut(), depth).expect("found in the chain");
    // Refused before the journal, as nothing can change: a base that
    // cannot take data (a stream layout, read-only extents).
    base.check_writable()?;
    let base_path = base.files().into_iter().next().unwrap_or_default();
    let base_id = base.identity().map(|i| i.to_string()).unwrap_or_default();
    if base.virtual_size() != size {
        bail!(
            "{}: the delta is {size} bytes and {} {} bytes; a commit needs the same size",
            delta.display(),
            base_path.display(),
            base.virtual_size()
        );
    }
    if resumed.is_none() {
        let mut others = siblings(&base_path, &base_id, delta);
        others.retain(|o| !above.iter().any(|a| same_file(a, o)));
        if !others.is_empty() && !args.force {
            let list: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
            bail!(
                "{}: other deltas of {} lie beside it ({}); a commit changes what they read (--force commits anyway)",
                delta.display(),
                base_path.display(),
                list.join(", ")
            );
        }
        begin(delta, &base_path, &base_id)?;
    }

    // The data of the layers above BASE (and the zeros they record) into
    // BASE.
    let mut plan = Plan::new(0..size, Layers::Top(depth as u32)).with_zeros(true);
    let mut buf = Vec::new();
    let mut moved = 0u64;
    let bar = progress::bar(args.progress, size);
    let mut throttle = Throttle::new(args.rate);
    let mut copy = || -> crate::Result<()> {
        while let Some(run) = plan.next_run(image.as_mut())? {
            progress::show(&bar, run.start);
            interrupt::check()?;
            buf.resize((run.end - run.start) as usize, 0);
            image.read_at(&mut buf, run.start)?;
            let base = layer_at(image.as_mut(), depth).expect("found in the chain");
            base.write_at(&buf, run.start)?;
            moved += run.end - run.start;
            pace(&mut throttle, run.end - run.start);
        }
        layer_at(image.as_mut(), depth)
            .expect("found in the chain")
            .flush()
    };
    copy().with_context(|| {
        format!(
            "{}: the commit stopped part way; {} holds part of the data, and the delta may not open until the commit is finished: run the same command again to finish it",
            delta.display(),
            base_path.display()
        )
    })?;
    progress::finish(bar);
    drop(image);
    let parent_path = base_path;
    // Layers between DELTA and BASE, which no longer read what they did.
    let between: Vec<PathBuf> = above.into_iter().skip(1).collect();

    // The delta relinked to the parent as it is now, then emptied.
    let opts = OpenOptions::new(Access::Write).with_parents(None);
    let mut delta_image = factory::open_with(delta, args.format, opts)?;
    let parent_image = factory::open_with(
        &parent_path,
        None,
        OpenOptions::new(Access::Read).with_parents(None),
    )?;
    let keeps_name = same_file(&chain::parent_path(delta, &name), &parent_path);
    let name = match keeps_name {
        true => name,
        false => chain::relative_name(folder_of(delta), &parent_path),
    };
    delta_image.set_backing(Some(NewParent {
        image: parent_image,
        name,
    }))?;
    if !args.keep {
        delta_image.discard_all()?;
    }
    delta_image.flush()?;
    drop(delta_image);
    end(delta)?;
    if !args.quiet {
        println!(
            "Image committed: {} of data written into {}.",
            crate::units::human_size(moved),
            parent_path.display()
        );
        for layer in &between {
            println!(
                "{} was between them and no longer reads what it did: delete it.",
                layer.display()
            );
        }
    }
    Ok(0)
}
