//! The registry of formats: probing a file's format from its content, and
//! opening and creating images by format. The only module that names the
//! formats; they in turn know only the trait in [`crate::image`].

use std::path::{Path, PathBuf};

use super::{Backing, Format, Image, OpenOptions, Sink};
use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::io::{Access, ImageFile, SECTOR};
use crate::options::{OptionDoc, Options};
use crate::{raw, vhd, vmdk};

/// Bytes at the start of a file that probing looks at.
const PROBE_HEAD: u64 = 4096;

/// Recognise a format from a file's content, never its name: VMDK magic or
/// descriptor text, a VHD footer at offset 0 or at the end, else raw.
pub fn probe(path: &Path) -> Result<Format> {
    let file = ImageFile::open(path, Access::ReadShared)?;
    let len = file.length()?;
    let mut head = vec![0u8; len.min(PROBE_HEAD) as usize];
    file.read_exact_at(&mut head, 0)?;
    let mut tail = [0u8; SECTOR as usize];
    let tail = match len >= SECTOR {
        true => {
            file.read_exact_at(&mut tail, len - SECTOR)?;
            Some(&tail[..])
        }
        false => None,
    };
    Ok(probe_bytes(&head, tail))
}

/// What a file whose first bytes (up to [`PROBE_HEAD`]) are `head` and
/// whose last sector is `tail` probes as.
fn probe_bytes(head: &[u8], tail: Option<&[u8]>) -> Format {
    if vmdk::probe(head) {
        Format::Vmdk
    } else if vhd::probe_head(head) || tail.is_some_and(vhd::probe_tail) {
        Format::Vhd
    } else {
        Format::Raw
    }
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

/// The file that says an image of several files (a split or flat VMDK) is
/// being replaced by `create --force` or `convert --force`: beside it,
/// `.NAME.vimg-replacing`, holding the name of the work folder.
pub fn replacing_marker(image: &Path) -> PathBuf {
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    crate::io::folder_of(image).join(format!(".{name}.vimg-replacing"))
}

/// Fail when a replacement of the image at `path` is under way or was
/// interrupted: its files are then half old, half new.
fn check_not_half_replaced(path: &Path) -> Result<()> {
    let marker = replacing_marker(path);
    let Ok(folder) = std::fs::read_to_string(&marker) else {
        return Ok(());
    };
    let folder: String = folder
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    Err(Error::unsupported(
        path,
        format!(
            "vimg --force was replacing this image and has not finished (half of its files are new): run the same command again to finish; the files it swapped out are in {folder}, and {} says so",
            marker.display()
        ),
    ))
}

/// Open an image and its chain, each layer as `opts` says.
pub fn open_with(path: &Path, format: Option<Format>, opts: OpenOptions) -> Result<Box<dyn Image>> {
    check_not_half_replaced(path)?;
    let mut chain = Chain::new();
    chain.enter(path)?;
    let probed = format.is_none();
    let format = match format {
        Some(f) => f,
        None => probe_named(path)?,
    };
    Ok(match format {
        Format::Raw => {
            let mut raw = raw::Raw::open(path, opts.access)?;
            // As QEMU does: a disk taken for raw by probing may not be
            // written into something a later probe takes for an image
            // (whose extents or parent it would then open).
            if probed {
                raw.guard_probe(raw::ProbeGuard {
                    head: PROBE_HEAD,
                    still_raw: |head, tail| probe_bytes(head, tail) == Format::Raw,
                });
            }
            Box::new(raw)
        }
        Format::Vmdk => Box::new(vmdk::Vmdk::open_in(path, &opts, &mut chain)?),
        Format::Vhd => Box::new(vhd::Vhd::open_in(path, &opts, &mut chain)?),
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
        parent_fits(format, b)?;
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

/// The options `create` takes for `format`, for `-o help`.
pub fn create_options(format: Format) -> &'static [OptionDoc] {
    match format {
        Format::Raw => &[crate::options::SIZE, crate::options::PREALLOCATION],
        Format::Vmdk => vmdk::CREATE_OPTIONS,
        Format::Vhd => vhd::CREATE_OPTIONS,
    }
}

/// The options `amend` takes for `format`, for `-o help`.
pub fn amend_options(format: Format) -> &'static [OptionDoc] {
    match format {
        Format::Raw => &[],
        Format::Vmdk => vmdk::AMEND_OPTIONS,
        Format::Vhd => vhd::AMEND_OPTIONS,
    }
}

/// Fail unless `backing` can be the parent of a `format` delta: of the
/// same format, as its -F says or (without one) as its content probes.
/// A parent that cannot be probed is left for the open to explain.
pub fn parent_fits(format: Format, backing: &Backing) -> Result<()> {
    if backing.name.is_empty() || backing.path.as_os_str().is_empty() {
        return Err(Error::invalid("the parent's file name is empty"));
    }
    let label = |f: Format| match f {
        Format::Raw => "raw",
        Format::Vmdk => "VMDK",
        Format::Vhd => "VHD",
    };
    let probed = probe(&backing.path).ok();
    if format == Format::Raw {
        return Ok(());
    }
    let (delta, parent) = match format {
        Format::Vmdk => ("a VMDK delta", "a VMDK"),
        _ => ("a differencing VHD", "a VHD"),
    };
    let wrong = |how: String| {
        Err(Error::invalid(format!(
            "{}: {delta} needs {parent} parent, and {how}",
            backing.path.display()
        )))
    };
    match (backing.format, probed) {
        (Some(f), _) if f != format => wrong(format!("-F says {}", label(f))),
        (_, Some(found)) if found != format => wrong(format!("it is {}", label(found))),
        // A parent that cannot be probed is left for the open to explain.
        _ => Ok(()),
    }
}

/// What a conversion into `format` needs (`qemu-img measure`): the bytes
/// of the files it writes for the data at hand, and for a disk full of
/// data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    pub required: u64,
    pub fully_allocated: u64,
}

/// What an image of `format`, `opts` and `size` takes when the source
/// holds data in `held(unit)` of its units of `unit` bytes. A raw target
/// takes its whole size, as qemu-img counts it. The metadata is what an
/// empty image of the same options takes, made in a scratch folder and
/// removed; each unit of data then adds what the format spends on it (for
/// streamOptimized, an upper bound).
pub fn measure(
    format: Format,
    size: u64,
    opts: &Options,
    held: &dyn Fn(u64) -> u64,
) -> Result<Measure> {
    let (unit, cost) = match format {
        Format::Raw => {
            let opts = opts.clone();
            opts.finish("raw")?;
            return Ok(Measure {
                required: size,
                fully_allocated: size,
            });
        }
        Format::Vmdk => vmdk::data_cost(opts)?,
        Format::Vhd => vhd::data_cost(opts)?,
    };
    let dir = std::env::temp_dir().join(format!(
        ".vimg-measure-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&dir).map_err(|e| Error::file(&dir, "cannot create", e))?;
    let empty = (|| -> Result<(u64, u64)> {
        // A long name: a descriptor names its extents, so the text made
        // here is as long as the longest a target's would be.
        let path = dir.join("m".repeat(200));
        let mut sink = create(&path, format, size, &mut opts.clone(), None)?;
        sink.flush()?;
        let (files, size) = (sink.files(), sink.virtual_size());
        drop(sink);
        let bytes = files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        Ok((bytes, size))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (empty, size) = empty?;
    Ok(Measure {
        required: empty + held(unit) * cost,
        fully_allocated: empty + size.div_ceil(unit) * cost,
    })
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
    use crate::copy::{Layers, Plan};
    use crate::image::NewParent;
    use std::path::PathBuf;

    const MIB: usize = 1 << 20;

    fn ext(format: Format) -> &'static str {
        match format {
            Format::Vhd => "vhd",
            Format::Vmdk => "vmdk",
            Format::Raw => "raw",
        }
    }

    /// A new image of `format` in `dir` holding `byte` in its first MiB.
    fn filled(dir: &Path, name: &str, format: Format, opts: &str, byte: u8) -> PathBuf {
        let path = dir.join(format!("{name}.{}", ext(format)));
        let mut opts = Options::parse([opts]).unwrap();
        let mut image = create(&path, format, 8 * MIB as u64, &mut opts, None).unwrap();
        image.write_at(&vec![byte; MIB], 0).unwrap();
        image.flush().unwrap();
        path
    }

    /// A base with 0xaa in its first MiB and a delta over it with 0xbb
    /// from 512 KiB to 1.5 MiB, both 8 MiB, in `dir`; returns their paths.
    fn two_levels(dir: &Path, format: Format) -> (PathBuf, PathBuf) {
        two_levels_with(dir, format, "")
    }

    fn two_levels_with(dir: &Path, format: Format, opts: &str) -> (PathBuf, PathBuf) {
        let ext = ext(format);
        let base = filled(dir, "base", format, opts, 0xaa);
        let delta = dir.join(format!("delta.{ext}"));
        let size = 8 * MIB as u64;
        let backing = Backing {
            path: base.clone(),
            name: format!("base.{ext}"),
            format: Some(format),
        };
        let mut d = create(
            &delta,
            format,
            size,
            &mut Options::default(),
            Some(&backing),
        )
        .unwrap();
        d.write_at(&vec![0xbb; MIB], MIB as u64 / 2).unwrap();
        d.flush().unwrap();
        drop(d);
        (base, delta)
    }

    fn read(image: &mut dyn Image, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        image.read_at(&mut buf, 0).unwrap();
        buf
    }

    /// What commit builds on: a chain opened with its parent writable, the
    /// top's own allocation walked, and written into the parent.
    #[test]
    fn a_chain_opens_with_its_parent_writable_and_the_parent_takes_writes() {
        let half = MIB / 2;
        for format in [Format::Vmdk, Format::Vhd] {
            let dir = tempfile::tempdir().unwrap();
            let (base, delta) = two_levels(dir.path(), format);
            let writable = OpenOptions::new(Access::Write).with_parents(Some(Access::Write));
            let mut top = open_with(&delta, None, writable).unwrap();
            let size = top.virtual_size();
            let before = read(top.as_mut(), 2 * MIB);
            assert!(before[..half].iter().all(|&b| b == 0xaa), "{format:?}");
            assert!(before[half..3 * half].iter().all(|&b| b == 0xbb));
            let mut plan = Plan::new(0..size, Layers::Top(1)).with_zeros(true);
            let mut moved = 0;
            while let Some(run) = plan.next_run(top.as_mut()).unwrap() {
                let mut buf = vec![0u8; (run.end - run.start) as usize];
                top.read_at(&mut buf, run.start).unwrap();
                top.parent().unwrap().write_at(&buf, run.start).unwrap();
                moved += buf.len();
            }
            // Only what the delta holds (its grains or blocks) moved.
            assert!((MIB..=4 * MIB).contains(&moved), "{format:?}: {moved}");
            top.parent().unwrap().flush().unwrap();
            // Through the chain, nothing changed; the parent alone now
            // reads what the delta read.
            assert_eq!(read(top.as_mut(), 2 * MIB), before, "{format:?}");
            assert_eq!(read(top.parent().unwrap(), 2 * MIB), before);
            drop(top);
            let mut alone = open(&base, Some(format), Access::Read).unwrap();
            assert_eq!(read(alone.as_mut(), 2 * MIB), before, "{format:?}");
        }
    }

    #[test]
    fn our_own_writer_of_a_parent_is_no_stranger_but_not_shared() {
        for format in [Format::Vmdk, Format::Vhd] {
            let dir = tempfile::tempdir().unwrap();
            let (base, delta) = two_levels(dir.path(), format);
            let mut base_writer = open(&base, Some(format), Access::Write).unwrap();
            // A reader of the chain in this process does not take our own
            // write lock on the base for a foreign writer's.
            let mut reader = open(&delta, None, Access::Read).unwrap();
            assert_eq!(read(reader.as_mut(), MIB)[0], 0xaa, "{format:?}");
            drop(reader);
            // But the base is written through one handle only.
            let writable = OpenOptions::new(Access::Write).with_parents(Some(Access::Write));
            let err = open_with(&delta, None, writable).err().unwrap();
            let cause = std::error::Error::source(&err).map(|c| c.to_string());
            assert!(
                cause
                    .as_deref()
                    .is_some_and(|c| c.contains("already open for writing")),
                "{format:?}: {err} ({cause:?})"
            );
            base_writer.flush().unwrap();
        }
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::from_name("vpc").unwrap(), Format::Vhd);
        assert_eq!(Format::from_name("vhd").unwrap().name(), "vpc");
        assert!(Format::from_name("qcow2").is_err());
    }

    fn reopen(path: &Path) -> Box<dyn Image> {
        open(path, None, Access::Read).unwrap()
    }

    fn backing_file(image: &mut dyn Image) -> Option<String> {
        image.info().unwrap().backing_file
    }

    #[test]
    fn a_delta_is_relinked_to_another_parent_and_flattened() {
        let half = MIB / 2;
        for (format, opts) in [
            (Format::Vmdk, ""),
            (Format::Vmdk, "subformat=twoGbMaxExtentSparse"),
            (Format::Vhd, ""),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (_, delta) = two_levels_with(dir.path(), format, opts);
            let other = filled(dir.path(), "other", format, opts, 0xcc);
            let other_name = format!("other.{}", ext(format));
            // Relink: the delta now reads the other parent where it holds
            // nothing, and records it so that it reopens over it.
            let mut top = open_with(&delta, None, OpenOptions::new(Access::Write)).unwrap();
            let parent = NewParent {
                image: reopen(&other),
                name: other_name.clone(),
            };
            let id = parent.image.identity();
            top.set_backing(Some(parent)).unwrap();
            let now = read(top.as_mut(), 2 * MIB);
            drop(top);
            let mut again = reopen(&delta);
            assert_eq!(read(again.as_mut(), 2 * MIB), now, "{format:?} {opts}");
            assert!(now[..half].iter().all(|&b| b == 0xcc), "{format:?} {opts}");
            assert!(now[half..3 * half].iter().all(|&b| b == 0xbb));
            assert!(now[3 * half..].iter().all(|&b| b == 0));
            assert_eq!(again.parent().unwrap().identity(), id);
            assert!(backing_file(again.as_mut()).unwrap().ends_with(&other_name));
            drop(again);
            // Flatten: no parent, zeros where the delta holds nothing.
            let mut top = open_with(&delta, None, OpenOptions::new(Access::Write)).unwrap();
            top.set_backing(None).unwrap();
            drop(top);
            let mut alone = reopen(&delta);
            assert!(alone.parent().is_none(), "{format:?} {opts}");
            assert_eq!(backing_file(alone.as_mut()), None);
            let now = read(alone.as_mut(), 2 * MIB);
            assert!(now[..half].iter().all(|&b| b == 0), "{format:?} {opts}");
            assert!(now[half..3 * half].iter().all(|&b| b == 0xbb));
        }
    }

    #[test]
    fn a_parent_that_does_not_fit_is_refused_and_nothing_changes() {
        for format in [Format::Vmdk, Format::Vhd] {
            let dir = tempfile::tempdir().unwrap();
            let (base, delta) = two_levels(dir.path(), format);
            let before = std::fs::read(&delta).unwrap();
            let mut top = open_with(&delta, None, OpenOptions::new(Access::Write)).unwrap();
            // Another format, another size, a name longer than the space
            // the delta has for it (VHD locators; VMDK's embedded
            // descriptor holds 10 KiB).
            let raw = dir.path().join("r.raw");
            drop(
                create(
                    &raw,
                    Format::Raw,
                    8 * MIB as u64,
                    &mut Options::default(),
                    None,
                )
                .unwrap(),
            );
            let small = dir.path().join("small");
            drop(
                create(
                    &small,
                    format,
                    4 * MIB as u64,
                    &mut Options::default(),
                    None,
                )
                .unwrap(),
            );
            let long = format!("{}/{}", "d".repeat(200), "x".repeat(20_000));
            for (parent, name, why) in [
                (&raw, "r.raw", "parent"),
                (&small, "small", "same virtual size"),
                (&base, long.as_str(), "space"),
            ] {
                let parent = NewParent {
                    image: reopen(parent),
                    name: name.to_string(),
                };
                let err = top.set_backing(Some(parent)).unwrap_err().to_string();
                assert!(
                    err.contains(why) && err.contains("delta."),
                    "{format:?}: {err}"
                );
            }
            // A raw image records no parent at all; a delta opened
            // read-only changes nothing.
            let mut r = reopen(&raw);
            assert!(r.set_backing(None).is_err());
            let err = reopen(&delta).set_backing(None).unwrap_err().to_string();
            assert!(err.contains("read-only"), "{err}");
            drop(top);
            assert_eq!(std::fs::read(&delta).unwrap(), before, "{format:?}");
            assert_eq!(read(reopen(&delta).as_mut(), MIB)[0], 0xaa);
        }
    }

    #[test]
    fn a_parent_that_changed_is_corruption_and_check_walks_past_it() {
        use crate::image::check::{Report, Severity};
        for format in [Format::Vmdk, Format::Vhd] {
            let dir = tempfile::tempdir().unwrap();
            let (base, delta) = two_levels(dir.path(), format);
            // VMDK: the base written (a new CID); VHD: the base replaced by
            // another disk (a new UUID).
            match format {
                Format::Vmdk => {
                    let mut b = open(&base, None, Access::Write).unwrap();
                    b.write_at(&[1; 512], 0).unwrap();
                }
                _ => {
                    std::fs::remove_file(&base).unwrap();
                    filled(dir.path(), "base", format, "", 0xaa);
                }
            }
            let err = open(&delta, None, Access::Read).err().unwrap();
            assert!(err.is_corruption(), "{format:?}: {err}");
            assert!(matches!(err, Error::Chain { .. }), "{format:?}: {err}");
            let opts = OpenOptions::new(Access::Read).checking();
            let mut top = open_with(&delta, None, opts).unwrap();
            let mut report = Report::default();
            top.check(&mut report).unwrap();
            assert_eq!(
                report.count(Severity::Corruption),
                1,
                "{:#?}",
                report.findings
            );
            assert_eq!(report.findings[0].structure, "backing chain");
            // The walk goes on into the parent, which is sound.
            let mut below = Report::default();
            top.parent().unwrap().check(&mut below).unwrap();
            assert!(
                below.findings.is_empty(),
                "{format:?}: {:#?}",
                below.findings
            );
        }
    }
}
