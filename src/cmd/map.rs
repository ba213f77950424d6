//! `vimg map`: the allocation picture of an image, in qemu-img's shapes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use clap::Args;

use super::args::{Inspect, Output};
use crate::chain;
use crate::image::{factory, Image, Mapping, Source};
use crate::units::parse_size;

/// Show which ranges of an image hold data, which read as zeros, at which
/// depth of the backing chain, and where in which file they are
///
/// JSON entries are qemu-img's (start, length, depth, present, zero, data,
/// compressed, offset), with alike neighbours merged. The human listing
/// shows the ranges that hold data, compressed ones included.
///
/// Examples:
///   vimg map disk.vmdk
///   vimg map --output json child.vhd
///   vimg map --start-offset 1G --max-length 64M disk.vmdk
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MapArgs {
    #[command(flatten)]
    image: Inspect,

    /// Start mapping at this byte offset
    #[arg(long = "start-offset", value_name = "OFFSET", default_value = "0", value_parser = parse_size)]
    start_offset: u64,

    /// Map at most this many bytes
    #[arg(long = "max-length", value_name = "LENGTH", value_parser = parse_size)]
    max_length: Option<u64>,

    /// Print nothing: only whether the image's tables can be walked (the
    /// exit code)
    #[arg(short, long)]
    quiet: bool,

    /// The image to map
    file: PathBuf,
}

/// One entry of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    start: u64,
    length: u64,
    depth: u32,
    present: bool,
    zero: bool,
    data: bool,
    compressed: bool,
    offset: Option<u64>,
    file: Option<Arc<Path>>,
}

impl Entry {
    fn new(start: u64, m: &Mapping, depth: u32) -> Entry {
        let mut e = Entry {
            start,
            length: m.len,
            depth,
            present: true,
            zero: false,
            data: false,
            compressed: false,
            offset: None,
            file: None,
        };
        let host = match &m.source {
            Source::Data { host, compressed } => {
                e.data = true;
                e.compressed = *compressed;
                host
            }
            Source::Zero { host, data } => {
                e.zero = true;
                e.data = *data;
                host
            }
            Source::Unallocated => {
                e.present = false;
                e.zero = true;
                &None
            }
        };
        if let Some(h) = host {
            e.offset = Some(h.offset);
            e.file = Some(h.file.clone());
        }
        e
    }

    /// Append `next` (which starts where this ends) when the two are alike.
    fn absorb(&mut self, next: &Entry) -> bool {
        let alike = self.depth == next.depth
            && self.present == next.present
            && self.zero == next.zero
            && self.data == next.data
            && self.compressed == next.compressed
            && self.file == next.file
            && match (self.offset, next.offset) {
                (None, None) => true,
                (Some(a), Some(b)) => a + self.length == b,
                _ => false,
            };
        if alike {
            self.length += next.length;
        }
        alike
    }
}

/// The image's map over `[start, end)`, alike neighbours merged.
fn entries(image: &mut dyn Image, start: u64, end: u64) -> anyhow::Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    let mut offset = start;
    while offset < end {
        let (m, depth) = chain::status(image, offset, end - offset)?;
        if m.len == 0 {
            bail!("{offset}: the image reported an empty range");
        }
        let e = Entry::new(offset, &m, depth);
        if !out.last_mut().is_some_and(|last| last.absorb(&e)) {
            out.push(e);
        }
        offset += m.len;
    }
    Ok(out)
}

/// The file of the layer at `depth` (for ranges that have no offset).
fn layer_file(image: &mut dyn Image, depth: u32) -> Option<PathBuf> {
    let mut layer = image;
    for _ in 0..depth {
        layer = layer.parent()?;
    }
    layer.files().into_iter().next()
}

pub fn run(args: MapArgs) -> anyhow::Result<u8> {
    args.image.qemu_only.refuse()?;
    let (start, max) = (args.start_offset, args.max_length.unwrap_or(u64::MAX));
    let mut image = factory::open_with(&args.file, args.image.format, args.image.open_options())?;
    let size = image.virtual_size();
    let end = start.saturating_add(max).min(size);
    let list = entries(image.as_mut(), start.min(size), end)?;
    if args.quiet {
        return Ok(0);
    }
    let mut out = String::new();
    match args.image.output {
        Output::Json => {
            out.push('[');
            for (i, e) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out += &format!(
                    "{{ \"start\": {}, \"length\": {}, \"depth\": {}, \"present\": {}, \"zero\": {}, \"data\": {}, \"compressed\": {}",
                    e.start, e.length, e.depth, e.present, e.zero, e.data, e.compressed
                );
                if let Some(o) = e.offset {
                    out += &format!(", \"offset\": {o}");
                }
                out.push('}');
            }
            out.push_str("]\n");
        }
        Output::Human => {
            out += &format!(
                "{:<16}{:<16}{:<16}{}\n",
                "Offset", "Length", "Mapped to", "File"
            );
            for e in list.iter().filter(|e| e.data && !e.zero) {
                let (mapped, file) = match (&e.offset, &e.file) {
                    (Some(o), Some(f)) => (hex(*o), f.display().to_string()),
                    _ => (
                        "compressed".to_string(),
                        layer_file(image.as_mut(), e.depth)
                            .map(|f| f.display().to_string())
                            .unwrap_or_default(),
                    ),
                };
                out += &format!(
                    "{:<16}{:<16}{:<16}{}\n",
                    hex(e.start),
                    hex(e.length),
                    mapped,
                    file
                );
            }
        }
    }
    super::print(&out)?;
    Ok(0)
}

/// `printf("%#x")`: 0 is "0", anything else "0x...".
fn hex(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Host;

    fn data(len: u64, file: &str, offset: u64) -> Mapping {
        Mapping::new(
            len,
            Source::Data {
                host: Some(Host {
                    file: Arc::from(Path::new(file)),
                    offset,
                }),
                compressed: false,
            },
        )
    }

    #[test]
    fn entries_merge_like_qemu_img() {
        let mut a = Entry::new(0, &data(512, "f", 1024), 0);
        assert!(a.absorb(&Entry::new(512, &data(512, "f", 1536), 0)));
        assert!(!a.absorb(&Entry::new(1024, &data(512, "f", 4096), 0)));
        assert!(!a.absorb(&Entry::new(1024, &data(512, "g", 2048), 0)));
        assert!(!a.absorb(&Entry::new(1024, &data(512, "f", 2048), 1)));
        let mut u = Entry::new(0, &Mapping::new(5, Source::Unallocated), 0);
        assert!(!u.present && u.zero && !u.data && u.offset.is_none());
        assert!(u.absorb(&Entry::new(5, &Mapping::new(5, Source::Unallocated), 0)));
        assert_eq!(u.length, 10);
    }

    #[test]
    fn hex_like_printf() {
        assert_eq!(hex(0), "0");
        assert_eq!(hex(0xa00), "0xa00");
    }
}
