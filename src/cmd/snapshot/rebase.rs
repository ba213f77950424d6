//! `vimg snapshot rebase` (also `vimg rebase`): a delta moved onto another
//! parent, its content kept (or with -u, only its link rewritten).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use indicatif::ProgressBar;

use super::super::progress;
use crate::chain;
use crate::copy::plan::CHUNK;
use crate::image::{factory, Format, Image, NewParent, OpenOptions, Source};
use crate::interrupt;
use crate::io::{folder_of, Access};

/// Give a delta another parent (or none), keeping what it reads
///
/// Make NEWBASE the parent of DELTA. By default DELTA reads the same
/// afterwards: every range DELTA does not hold where its old chain and
/// NEWBASE read differently is first copied into DELTA. With -u only the
/// link is rewritten (VMDK parentFileNameHint and parentCID; VHD parent
/// UUID, time stamp, name and locators): the repair for a parent that was
/// moved or renamed, or whose CID/UUID no longer matches. -b "" makes DELTA
/// a standalone image (flattened: its parents' data copied in first,
/// unless -u).
///
/// Examples:
///   vimg snapshot rebase -u -b ../moved/base.vmdk vm-000001.vmdk
///   vimg rebase -b other-base.vhd child.vhd
///   vimg rebase -b "" vm-000001.vmdk
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RebaseArgs {
    /// Format of DELTA (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = super::super::args::format_name())]
    format: Option<Format>,

    /// The new parent ("" for none); a relative path is relative to
    /// DELTA's folder, as in qemu-img
    #[arg(short = 'b', long = "backing", value_name = "NEWBASE", value_parser = clap::value_parser!(OsString))]
    backing: OsString,

    /// Format of NEWBASE (probed when not given)
    #[arg(short = 'F', long = "backing-format", value_name = "FMT", value_parser = super::super::args::format_name())]
    backing_format: Option<Format>,

    /// Unsafe: rewrite the link only, copying nothing (the old parent need
    /// not be there)
    #[arg(short = 'u', long = "backing-unsafe")]
    unsafe_link: bool,

    /// Cache mode of DELTA (qemu-img's -t): accepted for scripts; vimg's
    /// in-place writes keep their crash-safe order whatever it says
    #[arg(short = 't', long = "cache", value_enum, value_name = "CACHE")]
    cache: Option<crate::cmd::staging::Cache>,

    /// Cache mode of the parents (qemu-img's -T): accepted; vimg reads
    /// through the page cache
    #[arg(short = 'T', long = "backing-cache", value_enum, value_name = "CACHE")]
    backing_cache: Option<crate::cmd::staging::Cache>,

    /// Read the old and new parents even while another process may be
    /// writing them
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    /// Not supported: VMDK deltas and differencing VHDs hold no compressed
    /// data (as qemu-img says for them)
    #[arg(short = 'c', long = "compress")]
    compress: bool,

    #[command(flatten)]
    qemu_only: crate::cmd::args::QemuOnly,

    /// Show a progress bar (only when stderr is a terminal)
    #[arg(short = 'p', long)]
    progress: bool,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,

    /// The delta to rebase
    delta: PathBuf,
}

/// True when `image` holds no data in `[offset, offset + len)` as far as
/// its whole chain goes (a run that starts there: its length).
fn reads_zero(image: &mut dyn Image, offset: u64, len: u64) -> anyhow::Result<(bool, u64)> {
    let (m, _) = chain::status(image, offset, len)?;
    let zero = matches!(m.source, Source::Unallocated | Source::Zero { .. });
    Ok((zero, m.len.max(1)))
}

/// Copy into `delta` every range it does not hold where its parent chain
/// and `new` (or zeros, without one) read differently. Returns the bytes
/// copied.
fn keep_content(
    delta: &mut dyn Image,
    mut new: Option<&mut Box<dyn Image>>,
    bar: &Option<ProgressBar>,
) -> anyhow::Result<u64> {
    let size = delta.virtual_size();
    let (mut at, mut copied) = (0u64, 0u64);
    let (mut old_buf, mut new_buf) = (Vec::new(), Vec::new());
    while at < size {
        interrupt::check()?;
        progress::show(bar, at);
        let own = delta.block_status(at, (size - at).min(CHUNK))?;
        if own.source != Source::Unallocated {
            at += own.len;
            continue;
        }
        let mut len = own.len.min(CHUNK);
        let parent = delta.parent().expect("opened with its parent");
        let parent_size = parent.virtual_size();
        let (old_zero, n) = match at < parent_size {
            true => reads_zero(parent, at, len.min(parent_size - at))?,
            false => (true, len),
        };
        len = len.min(n);
        let new_zero = match new.as_mut() {
            Some(n) if at < n.virtual_size() => {
                let new_size = n.virtual_size();
                let (zero, l) = reads_zero(n.as_mut(), at, len.min(new_size - at))?;
                len = len.min(l);
                zero
            }
            _ => true,
        };
        if old_zero && new_zero {
            at += len;
            continue;
        }
        old_buf.resize(len as usize, 0);
        new_buf.resize(len as usize, 0);
        chain::read_parent(delta.parent(), &mut old_buf, at)?;
        chain::read_parent(new.as_mut().map(|n| n.as_mut()), &mut new_buf, at)?;
        if old_buf != new_buf {
            delta.write_at(&old_buf, at)?;
            copied += len;
        }
        at += len;
    }
    delta.flush()?;
    Ok(copied)
}

pub fn run(args: RebaseArgs) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    if args.compress {
        crate::cmd::args::refuse(
            "-c",
            "VMDK deltas and differencing VHDs cannot hold compressed data",
        )?;
    }
    let delta = &args.delta;
    let read = crate::cmd::args::read_access(args.force_share);
    // A relative NEWBASE is relative to DELTA's folder, as in qemu-img
    // (and as the delta records it).
    let backing = match args.backing.is_empty() {
        true => PathBuf::new(),
        false => chain::parent_path(delta, &args.backing.to_string_lossy()),
    };
    let flatten = backing.as_os_str().is_empty();
    // The delta with its old chain (for reading what it reads now), or
    // alone with -u.
    let parents = match args.unsafe_link {
        true => None,
        false => Some(read),
    };
    let opts = OpenOptions::new(Access::Write).with_parents(parents);
    let mut image = factory::open_with(delta, args.format, opts)?;
    let Some((old_id, old_name)) = image.parent_link() else {
        bail!("{}: it has no parent to rebase from", delta.display());
    };
    let mut new = match flatten {
        true => None,
        false => {
            let opts = OpenOptions::new(read);
            Some(factory::open_with(&backing, args.backing_format, opts)?)
        }
    };
    if let Some(n) = new.as_mut() {
        // NEWBASE the delta itself, or a layer above it: a loop.
        if chain::any_shared(&image.files(), &chain::files(n.as_mut())) {
            bail!(
                "{}: {} is the delta itself, or reads it; a delta cannot be its own parent",
                delta.display(),
                backing.display()
            );
        }
        if n.virtual_size() != image.virtual_size() {
            bail!(
                "{}: the delta is {} bytes and {} is {} bytes; a parent has the delta's size",
                delta.display(),
                image.virtual_size(),
                backing.display(),
                n.virtual_size()
            );
        }
    }
    let copied = match args.unsafe_link {
        true => 0,
        false => {
            let bar = progress::bar(args.progress, image.virtual_size());
            let copied = keep_content(image.as_mut(), new.as_mut(), &bar).with_context(|| {
                format!(
                    "{}: the rebase stopped before the new parent was linked; the delta reads as before over its old parent (run the same command again)",
                    delta.display()
                )
            })?;
            progress::finish(bar);
            copied
        }
    };
    // Only the link from here on: the delta alone.
    drop(image);
    let opts = OpenOptions::new(Access::Write).with_parents(None);
    let mut image = factory::open_with(delta, args.format, opts)?;
    let link = new.map(|n| {
        let name = chain::relative_name(folder_of(delta), &backing);
        NewParent { image: n, name }
    });
    let new_id = link
        .as_ref()
        .and_then(|l| l.image.identity())
        .map(|id| id.to_string());
    let new_name = link.as_ref().map(|l| l.name.clone());
    image.set_backing(link)?;
    image.flush()?;
    if !args.quiet {
        match (new_name, new_id) {
            (Some(name), id) => println!(
                "Rebased {} from {old_name} (ID {old_id}) onto {name} (ID {}){}.",
                delta.display(),
                id.unwrap_or_default(),
                copied_note(copied, args.unsafe_link)
            ),
            (None, _) => println!(
                "{} no longer has a parent (was {old_name}, ID {old_id}){}.",
                delta.display(),
                copied_note(copied, args.unsafe_link)
            ),
        }
    }
    Ok(0)
}

fn copied_note(copied: u64, unsafe_link: bool) -> String {
    match unsafe_link {
        true => "; only the link was rewritten".into(),
        false => format!(
            "; {} copied in to keep its content",
            crate::units::human_size(copied)
        ),
    }
}
