//! `vimg snapshot list`: the chain from an image down to its base, with
//! what each layer holds and whether each link holds.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::super::args::{Confinement, Output};
use super::super::info::actual_size;
use crate::image::{factory, Format, Image, OpenOptions};
use crate::io::Access;
use crate::units::human_size;

/// Show a delta's chain down to its base, and whether each link holds
///
/// Show the chain from IMAGE down to its base: each layer's files, format,
/// sizes, the bytes it holds itself, its identity (VMDK CID, VHD UUID) and
/// the one it records of its parent, and whether each link is valid (the
/// parent found, with that identity and the same virtual size). A broken
/// link is shown, and the exit code is then 2.
///
/// Examples:
///   vimg snapshot list vm-000002.vmdk
///   vimg snapshot list --output json child.vhd
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SnapshotListArgs {
    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = super::super::args::format_name())]
    format: Option<Format>,

    /// Output style
    #[arg(long, value_enum, default_value_t)]
    output: Output,

    /// Read the images even while another process may be writing them
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    /// Print nothing: the exit code says whether every link is valid
    #[arg(short, long)]
    quiet: bool,

    #[command(flatten)]
    confinement: Confinement,

    /// The top of the chain
    image: PathBuf,
}

/// One layer, as listed.
struct Layer {
    files: Vec<PathBuf>,
    format: &'static str,
    virtual_size: u64,
    actual_size: u64,
    /// Bytes of the disk this layer holds itself (`None`: its tables could
    /// not be walked).
    allocated: Option<u64>,
    identity: Option<String>,
    link: Option<Link>,
}

/// A layer's link to its parent.
struct Link {
    /// The parent as the layer records it.
    name: String,
    /// The identity it records of it.
    recorded: String,
    /// The parent found: its file, identity and size.
    found: Option<(PathBuf, Option<String>, u64)>,
    /// The layer's own virtual size.
    size: u64,
}

impl Link {
    fn id_matches(&self) -> bool {
        matches!(&self.found, Some((_, Some(id), _)) if *id == self.recorded)
    }

    fn same_size(&self) -> bool {
        matches!(&self.found, Some((_, _, size)) if *size == self.size)
    }

    fn valid(&self) -> bool {
        self.id_matches() && self.same_size()
    }

    /// What is wrong with it, for people.
    fn state(&self) -> String {
        match &self.found {
            None => format!("BROKEN: parent {} not found", self.name),
            Some((_, id, _)) if !self.id_matches() => format!(
                "BROKEN: the parent's ID is {}, not the one recorded",
                id.as_deref().unwrap_or("none")
            ),
            Some((_, _, size)) if !self.same_size() => format!(
                "BROKEN: the parent is {size} bytes, this layer {}",
                self.size
            ),
            Some(_) => "valid".into(),
        }
    }
}

/// Bytes of `image` its own layer holds: data, and zeros it records where
/// they hide a parent's data (a base's holes hold nothing).
fn allocated(image: &mut dyn Image) -> Option<u64> {
    use crate::image::Source;
    let delta = image.parent_link().is_some();
    let size = image.virtual_size();
    let (mut at, mut held) = (0, 0);
    while at < size {
        let m = image.block_status(at, size - at).ok()?;
        if m.len == 0 {
            return None;
        }
        let holds = match &m.source {
            Source::Data { .. } => true,
            Source::Zero { host, .. } => host.is_some() || delta,
            Source::Unallocated => false,
        };
        if holds {
            held += m.len;
        }
        at += m.len;
    }
    Some(held)
}

fn layers(top: &mut dyn Image) -> Vec<Layer> {
    let mut out = Vec::new();
    let mut current = Some(top);
    while let Some(layer) = current {
        let size = layer.virtual_size();
        let link = layer.parent_link().map(|(id, name)| Link {
            name,
            recorded: id.to_string(),
            found: None,
            size,
        });
        let files = layer.files();
        let mut entry = Layer {
            actual_size: actual_size(&files),
            files,
            format: layer.info().map(|i| i.format).unwrap_or("?"),
            virtual_size: size,
            allocated: allocated(layer),
            identity: layer.identity().map(|i| i.to_string()),
            link,
        };
        if let (Some(link), Some(parent)) = (entry.link.as_mut(), layer.parent()) {
            link.found = Some((
                parent.files().into_iter().next().unwrap_or_default(),
                parent.identity().map(|i| i.to_string()),
                parent.virtual_size(),
            ));
        }
        out.push(entry);
        current = layer.parent();
    }
    out
}

pub fn run(args: SnapshotListArgs) -> anyhow::Result<u8> {
    let access = match args.force_share {
        true => Access::ReadShared,
        false => Access::Read,
    };
    let opts: OpenOptions = args
        .confinement
        .open_options(access)
        .checking()
        .tolerating_missing_parents();
    let mut image = factory::open_with(&args.image, args.format, opts)?;
    let layers = layers(image.as_mut());
    let broken = layers
        .iter()
        .filter_map(|l| l.link.as_ref())
        .any(|l| !l.valid());
    match args.output {
        _ if args.quiet => {}
        Output::Json => {
            let list: Vec<Value> = layers.iter().enumerate().map(json_of).collect();
            super::super::print(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
        }
        Output::Human => super::super::print(&human(&layers))?,
    }
    Ok(if broken { 2 } else { 0 })
}

fn json_of((depth, l): (usize, &Layer)) -> Value {
    let link = l.link.as_ref().map(|k| {
        json!({
            "name": k.name,
            "recorded-id": k.recorded,
            "found": k.found.is_some(),
            "filename": k.found.as_ref().map(|f| f.0.display().to_string()),
            "id": k.found.as_ref().and_then(|f| f.1.clone()),
            "id-matches": k.id_matches(),
            "same-size": k.same_size(),
            "valid": k.valid(),
        })
    });
    json!({
        "layer": depth,
        "filename": l.files.first().map(|f| f.display().to_string()),
        "files": l.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "format": l.format,
        "virtual-size": l.virtual_size,
        "actual-size": l.actual_size,
        "allocated": l.allocated,
        "id": l.identity,
        "parent": link,
    })
}

fn human(layers: &[Layer]) -> String {
    let mut out = String::new();
    for (depth, l) in layers.iter().enumerate() {
        let file = l
            .files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        out.push_str(&format!("[{depth}] {file} ({})\n", l.format));
        if l.files.len() > 1 {
            out.push_str(&format!("    files: {}\n", l.files.len()));
        }
        let held = l.allocated.map_or("unknown".into(), human_size);
        out.push_str(&format!(
            "    virtual size {}, on disk {}, held in this layer {held}\n",
            human_size(l.virtual_size),
            human_size(l.actual_size),
        ));
        if let Some(id) = &l.identity {
            out.push_str(&format!("    id {id}\n"));
        }
        match &l.link {
            Some(k) => out.push_str(&format!(
                "    parent {} (recorded id {}): {}\n",
                k.name,
                k.recorded,
                k.state()
            )),
            None if depth + 1 == layers.len() => out.push_str("    base (no parent)\n"),
            None => {}
        }
    }
    out
}
