//! `vimg info`: what an image is, its sizes and its header details.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Map, Value};

use super::args::{Inspect, Output};
use crate::image::{factory, Image, ImageInfo};
use crate::units::human_size;

/// Show an image's format, virtual and allocated size, and format details
///
/// JSON output uses qemu-img's field names (virtual-size, actual-size,
/// cluster-size, format-specific, ...), so tools that parse
/// `qemu-img info --output json` read it unchanged.
///
/// Examples:
///   vimg info disk.vmdk
///   vimg info --output json disk.vhd
///   vimg info --backing-chain snapshot-000002.vmdk
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InfoArgs {
    #[command(flatten)]
    image: Inspect,

    /// Show every image of the backing chain, top first
    #[arg(short = 'b', long = "backing-chain")]
    backing_chain: bool,

    /// Print nothing: only whether the image opens (the exit code)
    #[arg(short, long)]
    quiet: bool,

    /// The image to inspect
    file: PathBuf,
}

/// Bytes the files occupy on disk.
pub fn actual_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// One image of a chain, as `info` shows it.
struct Layer {
    file: PathBuf,
    info: ImageInfo,
    actual: u64,
    /// The parent's file and format, for a delta.
    parent: Option<(PathBuf, &'static str)>,
}

/// The top image, and with `all` every image below it.
fn layers(image: &mut dyn Image, top: &Path, all: bool) -> anyhow::Result<Vec<Layer>> {
    let mut out = Vec::new();
    let mut file = top.to_path_buf();
    let mut current = Some(image);
    while let Some(layer) = current {
        let info = layer.info()?;
        let actual = actual_size(&layer.files());
        let parent = match layer.parent() {
            Some(p) => Some((
                p.files().into_iter().next().unwrap_or_default(),
                p.info()?.format,
            )),
            None => None,
        };
        let next = parent.as_ref().map(|(f, _)| f.clone());
        out.push(Layer {
            file,
            info,
            actual,
            parent,
        });
        match (all, next) {
            (true, Some(next)) => {
                file = next;
                current = layer.parent();
            }
            _ => break,
        }
    }
    Ok(out)
}

pub fn run(args: InfoArgs) -> anyhow::Result<u8> {
    let opened = &args.image;
    opened.qemu_only.refuse()?;
    let mut image = factory::open_with(&args.file, opened.format, opened.open_options())?;
    let list = layers(image.as_mut(), &args.file, args.backing_chain)?;
    // A raw guest disk can start with bytes that pose as a VMDK delta: say
    // when a probed format made vimg follow a parent.
    if args.quiet {
        return Ok(0);
    }
    if let (None, Some(parent)) = (opened.format, &list[0].info.backing_file) {
        eprintln!(
            "vimg: note: {} was probed as {} and names a parent ({}); for an image from a stranger, give -f (and --confine or --no-backing)",
            args.file.display(),
            list[0].info.format,
            super::printable(parent)
        );
    }
    let text = match (opened.output, args.backing_chain) {
        (Output::Json, false) => serde_json::to_string_pretty(&to_json(&list[0]))? + "\n",
        (Output::Json, true) => {
            let all: Vec<Value> = list.iter().map(to_json).collect();
            serde_json::to_string_pretty(&all)? + "\n"
        }
        (Output::Human, _) => list.iter().map(to_human).collect::<Vec<_>>().join("\n"),
    };
    super::print(&text)?;
    Ok(0)
}

/// qemu-img's JSON shape.
fn to_json(layer: &Layer) -> Value {
    let info = &layer.info;
    let mut v = Map::new();
    v.insert("virtual-size".into(), json!(info.virtual_size));
    v.insert("filename".into(), json!(layer.file.display().to_string()));
    if let Some(c) = info.cluster_size {
        v.insert("cluster-size".into(), json!(c));
    }
    v.insert("format".into(), json!(info.format));
    v.insert("actual-size".into(), json!(layer.actual));
    if let Some(b) = &info.backing_file {
        v.insert("backing-filename".into(), json!(b));
    }
    if let Some((file, format)) = &layer.parent {
        v.insert(
            "full-backing-filename".into(),
            json!(file.display().to_string()),
        );
        v.insert("backing-filename-format".into(), json!(format));
    }
    if let Some((kind, data)) = &info.specific {
        v.insert(
            "format-specific".into(),
            json!({"type": kind, "data": data}),
        );
    }
    v.insert("dirty-flag".into(), json!(false));
    Value::Object(v)
}

/// qemu-img's human layout.
fn to_human(layer: &Layer) -> String {
    let (info, actual) = (&layer.info, layer.actual);
    let mut s = format!("image: {}\n", layer.file.display());
    s += &format!("file format: {}\n", info.format);
    s += &format!(
        "virtual size: {} ({} bytes)\n",
        human_size(info.virtual_size),
        info.virtual_size
    );
    s += &format!("disk size: {}\n", human_size(actual));
    if let Some(c) = info.cluster_size {
        s += &format!("cluster_size: {c}\n");
    }
    if let Some(b) = &info.backing_file {
        s += &format!("backing file: {b}");
        match &layer.parent {
            Some((file, format)) => {
                if file.as_path() != Path::new(b) {
                    s += &format!(" (actual path: {})", file.display());
                }
                s += &format!("\nbacking file format: {format}\n");
            }
            None => s.push('\n'),
        }
    }
    if let Some((_, data)) = &info.specific {
        s += "Format specific information:\n";
        render(&mut s, &Value::Object(data.clone()), 1);
    }
    s
}

fn render(s: &mut String, v: &Value, depth: usize) {
    let pad = "    ".repeat(depth);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = k.replace('-', " ");
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        s.push_str(&format!("{pad}{key}:\n"));
                        render(s, v, depth + 1);
                    }
                    _ => s.push_str(&format!("{pad}{key}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                s.push_str(&format!("{pad}[{i}]:\n"));
                render(s, item, depth + 1);
            }
        }
        _ => s.push_str(&format!("{pad}{}\n", scalar(v))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
