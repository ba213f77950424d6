//! The registry of formats: probing a file's format from its content, and
//! opening and creating images by format. The only module that names the
//! formats; they in turn know only the trait in [`crate::image`].

use std::path::Path;

use super::{Backing, Format, Image, OpenOptions, Sink};
use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::io::{Access, ImageFile, SECTOR};
use crate::options::Options;
use crate::{raw, vhd, vmdk};

/// Recognise a format from a file's content, never its name: VMDK magic or
/// descriptor text, a VHD footer at offset 0 or at the end, else raw.
pub fn probe(path: &Path) -> Result<Format> {
    let file = ImageFile::open(path, Access::ReadShared)?;
    let len = file.length()?;
    let mut head = vec![0u8; len.min(4096) as usize];
    file.read_exact_at(&mut head, 0)?;
    if vmdk::probe(&head) {
        return Ok(Format::Vmdk);
    }
    if vhd::probe_head(&head) {
        return Ok(Format::Vhd);
    }
    if len >= SECTOR {
        let mut tail = [0u8; SECTOR as usize];
        file.read_exact_at(&mut tail, len - SECTOR)?;
        if vhd::probe_tail(&tail) {
            return Ok(Format::Vhd);
        }
    }
    Ok(Format::Raw)
}

/// Probe, but refuse to fall back to raw for a file whose name claims
/// VMDK or VHD: a damaged image must not be copied as if it were a raw disk.
fn probe_named(path: &Path) -> Result<Format> {
    let format = probe(path)?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let claimed = match ext.as_deref() {
        Some("vmdk") => "not a VMDK (no KDMV or COWD magic, no descriptor text)",
        Some("vhd" | "vpc") => "not a VHD (no \"conectix\" footer at the start or the end)",
        _ => return Ok(format),
    };
    if format == Format::Raw {
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            detail: format!("{claimed}; give -f raw to read it as a raw disk"),
        });
    }
    Ok(format)
}

/// Open an image, probing its format unless one is given, together with
/// the chain of parents it records (read-only; shared when `access` is).
pub fn open(path: &Path, format: Option<Format>, access: Access) -> Result<Box<dyn Image>> {
    open_with(path, format, OpenOptions::new(access))
}

/// Open an image and its chain, each layer as `opts` says.
pub fn open_with(path: &Path, format: Option<Format>, opts: OpenOptions) -> Result<Box<dyn Image>> {
    let mut chain = Chain::new();
    chain.enter(path)?;
    let format = match format {
        Some(f) => f,
        None => probe_named(path)?,
    };
    Ok(match format {
        Format::Raw => Box::new(raw::Raw::open(path, opts.access)?),
        Format::Vmdk => Box::new(vmdk::Vmdk::open_in(path, opts, &mut chain)?),
        Format::Vhd => Box::new(vhd::Vhd::open_in(path, opts, &mut chain)?),
    })
}

/// Create an image of `size` bytes and return it, ready to be written.
/// `opts` holds the `-o` options; any the format does not know is an error.
/// With `backing`, the image is a delta over that parent.
pub fn create(
    path: &Path,
    format: Format,
    size: u64,
    opts: &mut Options,
    backing: Option<&Backing>,
) -> Result<Box<dyn Sink>> {
    if let Some(b) = backing {
        if b.format.is_some_and(|f| f != format) {
            return Err(Error::invalid(format!(
                "a {} image needs a {} parent, not {}",
                format.name(),
                format.name(),
                b.format.map_or("", |f| f.name())
            )));
        }
    }
    let image: Box<dyn Sink> = match (format, backing) {
        (Format::Raw, None) => {
            opts.finish("raw")?;
            Box::new(raw::Raw::create(path, size)?)
        }
        (Format::Vmdk, _) => vmdk::create(path, size, opts, backing)?,
        (Format::Vhd, _) => vhd::create(path, size, opts, backing)?,
        (_, Some(_)) => {
            return Err(Error::invalid(format!(
                "{} images cannot have a backing file",
                format.name()
            )))
        }
    };
    Ok(image)
}

/// Create an image that is written front to back into `out` (a pipe):
/// only formats made to stream can (streamOptimized VMDK).
pub fn create_stream(
    name: &Path,
    format: Format,
    size: u64,
    opts: &mut Options,
    out: Box<dyn std::io::Write + Send>,
) -> Result<Box<dyn Sink>> {
    match format {
        Format::Vmdk => vmdk::create_stream(name, size, opts, out),
        _ => Err(Error::invalid(format!(
            "{} images cannot be written to a pipe; only -O vmdk (streamOptimized) can",
            format.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        assert_eq!(Format::from_name("vpc").unwrap(), Format::Vhd);
        assert_eq!(Format::from_name("vhd").unwrap().name(), "vpc");
        assert!(Format::from_name("qcow2").is_err());
    }
}
