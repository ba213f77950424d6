//! `vimg info`: what an image is, its sizes and its header details.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Map, Value};

use super::Output;
use crate::image::{self, Format, ImageInfo};
use crate::units::human_size;

/// Show an image's format, virtual and allocated size, and format details.
///
/// JSON output uses qemu-img's field names (virtual-size, actual-size,
/// cluster-size, format-specific, ...), so tools that parse
/// `qemu-img info --output json` read it unchanged.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format")]
    format: Option<String>,

    /// Output style
    #[arg(long, value_enum, default_value_t)]
    output: Output,

    /// Read the image even while another process may be writing it
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

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

pub fn run(args: InfoArgs) -> anyhow::Result<u8> {
    let format = args.format.as_deref().map(Format::from_name).transpose()?;
    let mut image = image::open(&args.file, format, super::read_access(args.force_share))?;
    let info = image.info()?;
    let actual = actual_size(&image.files());
    match args.output {
        Output::Json => {
            let v = to_json(&args.file, &info, actual);
            super::print(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        }
        Output::Human => super::print(&to_human(&args.file, &info, actual))?,
    }
    Ok(0)
}

/// qemu-img's JSON shape.
fn to_json(file: &Path, info: &ImageInfo, actual: u64) -> Value {
    let mut v = Map::new();
    v.insert("virtual-size".into(), json!(info.virtual_size));
    v.insert("filename".into(), json!(file.display().to_string()));
    if let Some(c) = info.cluster_size {
        v.insert("cluster-size".into(), json!(c));
    }
    v.insert("format".into(), json!(info.format));
    v.insert("actual-size".into(), json!(actual));
    if let Some(b) = &info.backing_file {
        v.insert("backing-filename".into(), json!(b));
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
fn to_human(file: &Path, info: &ImageInfo, actual: u64) -> String {
    let mut s = format!("image: {}\n", file.display());
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
        s += &format!("backing file: {b}\n");
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
