//! Arguments several subcommands share, declared once and flattened into
//! each, and the parsers that turn format names and sizes into values
//! while clap reads the command line.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};

use std::path::PathBuf;

use super::staging::Cache;
use crate::image::{Format, OpenOptions};
use crate::io::Access;
use crate::options::Options;

/// Output style of `info`, `map` and `check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Human,
    Json,
}

/// A format name as `-f`, `-O` and `-F` take it: raw, vmdk, vhd, or
/// qemu-img's name for VHD, vpc.
pub fn format_name() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(["raw", "vmdk", "vhd", "vpc"])
        .map(|name| Format::from_name(&name).expect("one of the possible values"))
}

/// The image a read-only command inspects.
#[derive(Debug, Args)]
pub struct Inspect {
    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = format_name())]
    pub format: Option<Format>,

    /// Output style
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,

    /// Read the image even while another process may be writing it
    #[arg(short = 'U', long = "force-share")]
    pub force_share: bool,

    /// Cache mode for reading (qemu-img's -T; vimg reads through the page
    /// cache whatever it says): none, writeback, writethrough, directsync,
    /// unsafe
    #[arg(short = 'T', long = "cache", value_enum, value_name = "CACHE")]
    pub cache: Option<Cache>,

    #[command(flatten)]
    pub confinement: Confinement,

    #[command(flatten)]
    pub qemu_only: QemuOnly,
}

impl Inspect {
    /// How the image is opened: `-U` reads whatever others are doing, as
    /// in qemu-img.
    pub fn access(&self) -> Access {
        read_access(self.force_share)
    }

    /// How the image and its chain are opened.
    pub fn open_options(&self) -> OpenOptions {
        self.confinement.open_options(self.access())
    }
}

/// Where the files an image names may be, for images from strangers.
#[derive(Debug, Args)]
pub struct Confinement {
    /// Open no file an image names (parents, extents) outside DIR, links
    /// resolved (for untrusted images, with -f)
    #[arg(long, value_name = "DIR")]
    pub confine: Option<PathBuf>,

    /// Refuse an image that has a parent (a delta or differencing disk)
    #[arg(long = "no-backing")]
    pub no_backing: bool,

    /// Read through a parent whose ID (VMDK CID, VHD UUID) is not the one
    /// its delta recorded, for read-only recovery (`vimg rebase -u` fixes
    /// the link)
    #[arg(long = "ignore-parent-id")]
    pub ignore_parent_id: bool,
}

impl Confinement {
    /// Options that open an image with `access` under these rules.
    pub fn open_options(&self, access: Access) -> OpenOptions {
        OpenOptions::new(access)
            .confined_to(self.confine.as_deref())
            .forbidding_parents(self.no_backing)
            .ignoring_parent_ids(self.ignore_parent_id)
    }
}

/// How commands that only read open their images.
pub fn read_access(force_share: bool) -> Access {
    if force_share {
        Access::ReadShared
    } else {
        Access::Read
    }
}

/// How a command that makes a new image puts it in place.
#[derive(Debug, Args)]
pub struct Placing {
    /// When to flush the new image to disk: unsafe (never), writeback, none,
    /// writethrough or directsync (before it is moved into place). Without
    /// -t, only an image that replaces an existing file is flushed
    #[arg(
        short = 't',
        long = "cache",
        visible_alias = "target-cache",
        value_enum,
        value_name = "CACHE"
    )]
    pub cache: Option<Cache>,

    /// Replace the target if it exists
    #[arg(long)]
    pub force: bool,

    /// Print nothing on success
    #[arg(short, long)]
    pub quiet: bool,
}

/// qemu-img's flags for what vimg has no use for with VMDK and VHD
/// images: accepted, so that a script passing them is told in one line why
/// it cannot be done (exit code 1) instead of getting a usage error.
#[derive(Debug, Args)]
pub struct QemuOnly {
    /// Not supported: vimg opens files by name, not QEMU image
    /// specifications (qemu-img's --image-opts)
    #[arg(long = "image-opts")]
    pub image_opts: bool,

    /// Not supported: QEMU objects (secrets of encrypted images) have no
    /// use for VMDK and VHD, which are not encrypted
    #[arg(long = "object", value_name = "OBJDEF")]
    pub object: Vec<String>,
}

impl QemuOnly {
    /// Fail, naming the flag and why, when one was given.
    pub fn refuse(&self) -> anyhow::Result<()> {
        if self.image_opts {
            refuse(
                "--image-opts",
                "vimg opens images by file name, not by QEMU image specification",
            )?;
        }
        if !self.object.is_empty() {
            refuse(
                "--object",
                "QEMU objects (secrets for encrypted images) have no use for VMDK and VHD images, which are never encrypted",
            )?;
        }
        Ok(())
    }
}

/// The error for a qemu-img flag vimg accepts but cannot honour: the flag
/// and why, on one line.
pub fn refuse(flag: &str, why: &str) -> anyhow::Result<()> {
    anyhow::bail!("{flag} is not supported: {why}")
}

/// qemu-img's -l/-c/-a/-d: internal snapshots, which VMDK and VHD do not
/// have.
pub const NO_INTERNAL_SNAPSHOTS: &str = "VMDK and VHD images have no internal snapshots (their snapshots are delta files: see `vimg snapshot create`)";

/// The parent a delta is made over, as the flags give it (`-b`/`-B`,
/// `-F`) or qemu-img's `-o backing_file=` and `backing_fmt=`, which are
/// taken out of `opts`; the flags win, as in qemu-img.
pub fn backing_of(
    opts: &mut Options,
    file: Option<&PathBuf>,
    format: Option<Format>,
) -> anyhow::Result<(Option<PathBuf>, Option<Format>)> {
    let file = match opts.take_str("backing_file")? {
        Some(name) => Some(file.cloned().unwrap_or(name.into())),
        None => file.cloned(),
    };
    let format = match opts.take_str("backing_fmt")? {
        Some(name) => Some(format.map_or_else(|| Format::from_name(&name), Ok)?),
        None => format,
    };
    Ok((file, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_size;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[arg(short = 'f', value_parser = format_name())]
        format: Option<Format>,
        #[arg(short = 's', value_parser = parse_size)]
        size: Option<u64>,
    }

    #[test]
    fn formats_and_sizes_are_values_when_parsed() {
        let p = Probe::try_parse_from(["x", "-f", "vpc", "-s", "1.5K"]).unwrap();
        assert_eq!((p.format, p.size), (Some(Format::Vhd), Some(1536)));
        let err = Probe::try_parse_from(["x", "-f", "qcow2"]).unwrap_err();
        assert!(err.to_string().contains("qcow2"), "{err}");
        assert!(Probe::try_parse_from(["x", "-s", "12Q"]).is_err());
    }
}
