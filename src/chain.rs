//! Backing chains: finding a delta's parent from the name the delta records,
//! refusing loops and runaway depth, reading through to the parent, and
//! resolving the allocation picture down the chain.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::{Image, Mapping, Source};

/// Deepest chain vimg follows, in images (VMware allows 32 snapshots per
/// disk; chains of hundreds come from backup tools that snapshot daily).
pub const MAX_DEPTH: usize = 1000;

/// The images opened so far along one chain, top first.
#[derive(Debug, Default)]
pub struct Chain {
    seen: Vec<PathBuf>,
    /// Every file of the layers opened so far (device, inode).
    files: Vec<(u64, u64)>,
}

/// A file's identity, whatever its name (links, `./x`, `d/../x`).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Chain {
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Record that `path` is opened as the next, deeper layer; fails when
    /// the chain loops back or is too deep.
    pub fn enter(&mut self, path: &Path) -> Result<()> {
        let id = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if !self.seen.contains(&id) && file_id(path).is_some_and(|f| self.files.contains(&f)) {
            return Err(Error::chain(
                path,
                "the file is also a file of an image above it in its chain (an extent of a delta, or the same file under another name)",
            ));
        }
        if self.seen.contains(&id) {
            return Err(Error::chain(
                path,
                "the backing chain loops back to this image",
            ));
        }
        if self.seen.len() >= MAX_DEPTH {
            return Err(Error::chain(
                path,
                format!("the backing chain is deeper than {MAX_DEPTH} images"),
            ));
        }
        self.seen.push(id);
        Ok(())
    }

    /// Record the files of the layer at `path`, just opened; fails when
    /// one of them is a file of a layer above (a delta whose extent is its
    /// parent's file: emptying the delta would empty the parent).
    pub fn claim(&mut self, path: &Path, files: &[PathBuf]) -> Result<()> {
        let mut mine = Vec::new();
        for file in files {
            let Some(id) = file_id(file) else { continue };
            if self.files.contains(&id) {
                return Err(Error::chain(
                    path,
                    format!(
                        "its file {} is also a file of an image above it in its chain",
                        file.display()
                    ),
                ));
            }
            mine.push(id);
        }
        self.files.extend(mine);
        Ok(())
    }
}

/// Where a parent recorded as `name` by the image at `child` lives:
/// relative names are relative to the child's folder. Windows names (with
/// backslashes) are read with slashes, and one with a drive letter, which
/// cannot exist here, stands for its file name beside the child.
pub fn parent_path(child: &Path, name: &str) -> PathBuf {
    let dir = child.parent().unwrap_or(Path::new(""));
    let unix = name.replace('\\', "/");
    let bytes = unix.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        let file = unix.rsplit('/').next().unwrap_or("");
        return dir.join(file);
    }
    let unix = unix.strip_prefix("./").unwrap_or(&unix);
    let path = Path::new(unix);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    dir.join(path)
}

/// How to record `parent` in a delta that will live in `child_dir`: a path
/// relative to that folder when one exists, else the absolute path.
pub fn relative_name(child_dir: &Path, parent: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(child_dir), abs(parent));
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return to.display().to_string();
    }
    let mut rel = PathBuf::new();
    for _ in from.components().skip(common) {
        rel.push("..");
    }
    for c in to.components().skip(common) {
        rel.push(c);
    }
    rel.display().to_string()
}

/// Refuse a parent whose virtual size differs from the delta's (VMware
/// attaches no such parent, and Hyper-V makes none).
pub fn check_parent_size(path: &Path, size: u64, parent: &dyn Image) -> Result<()> {
    if parent.virtual_size() != size {
        return Err(Error::invalid(format!(
            "{}: a delta and its parent have the same virtual size; this one is {size} bytes, {} is {} bytes",
            path.display(),
            parent.files().first().map_or(String::new(), |f| f.display().to_string()),
            parent.virtual_size()
        )));
    }
    Ok(())
}

/// Whether `parent` (if any) reads anything but zeros in `[offset,
/// offset + len)`: whether zeros a delta holds there hide its data.
pub fn parent_reads_data(
    parent: Option<&mut (dyn Image + '_)>,
    offset: u64,
    len: u64,
) -> Result<bool> {
    if parent.is_none() {
        return Ok(false);
    }
    let mut buf = vec![0u8; len as usize];
    read_parent(parent, &mut buf, offset)?;
    Ok(!crate::io::is_zero(&buf))
}

/// Fill `buf` with what a delta reads where it holds nothing itself: the
/// parent's data where the parent reaches, zeros beyond it or without one.
pub fn read_parent(
    parent: Option<&mut (dyn Image + '_)>,
    buf: &mut [u8],
    offset: u64,
) -> Result<()> {
    let Some(parent) = parent else {
        buf.fill(0);
        return Ok(());
    };
    let size = parent.virtual_size();
    let within = size.saturating_sub(offset).min(buf.len() as u64) as usize;
    // A parent smaller than its child reads as zeros past its end.
    if within > 0 {
        parent.read_at(&mut buf[..within], offset)?;
    }
    buf[within..].fill(0);
    Ok(())
}

/// True when `a` and `b` name one file (by device and inode: hard
/// links, symbolic links, `./x` and `x` alike); false when either is not
/// there.
pub fn same_file(a: &Path, b: &Path) -> bool {
    file_id(a).is_some_and(|id| file_id(b) == Some(id))
}

/// True when a file of `a` is a file of `b` (the same file, by device
/// and inode, whatever the names: links, `./x` and `x`).
pub fn any_shared(a: &[PathBuf], b: &[PathBuf]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &PathBuf| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let b: Vec<_> = b.iter().filter_map(id).collect();
    a.iter().filter_map(id).any(|f| b.contains(&f))
}

/// Every host file `image` and its parents consist of.
pub fn files(image: &mut dyn Image) -> Vec<PathBuf> {
    let mut out = image.files();
    let mut layer = image.parent();
    while let Some(l) = layer {
        out.extend(l.files());
        layer = l.parent();
    }
    out
}

/// The allocation picture at `offset` resolved down the chain: the first
/// layer that holds something there decides, with its depth (0 = top).
/// `Unallocated` at the end means zeros with nothing below.
pub fn status(image: &mut dyn Image, offset: u64, len: u64) -> Result<(Mapping, u32)> {
    status_in(image, offset, len, u32::MAX)
}

/// [`status`] looking at the top `layers` layers only: a range none of
/// them holds is `Unallocated` at the depth of the last one asked.
pub fn status_in(
    image: &mut dyn Image,
    offset: u64,
    len: u64,
    layers: u32,
) -> Result<(Mapping, u32)> {
    let m = image.block_status(offset, len)?;
    if m.source != Source::Unallocated || layers <= 1 {
        return Ok((m, 0));
    }
    let Some(parent) = image.parent() else {
        return Ok((m, 0));
    };
    if offset >= parent.virtual_size() {
        return Ok((m, 0));
    }
    let within = m.len.min(parent.virtual_size() - offset);
    let (pm, depth) = status_in(parent, offset, within, layers - 1)?;
    Ok((pm, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("a/base.vmdk");
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(&base, b"").unwrap();
        assert_eq!(relative_name(&dir.path().join("a"), &base), "base.vmdk");
        assert_eq!(
            relative_name(&dir.path().join("a/b"), &base),
            "../base.vmdk"
        );
        assert_eq!(
            parent_path(Path::new("/x/y/child.vmdk"), "../base.vmdk"),
            Path::new("/x/y/../base.vmdk")
        );
        assert_eq!(
            parent_path(Path::new("child.vmdk"), "/abs/base.vmdk"),
            Path::new("/abs/base.vmdk")
        );
        assert_eq!(
            parent_path(Path::new("/d/child.vmdk"), "C:\\VMs\\base.vmdk"),
            Path::new("/d/base.vmdk")
        );
        assert_eq!(
            parent_path(Path::new("/d/child.vhd"), ".\\sub\\base.vhd"),
            Path::new("/d/sub/base.vhd")
        );
    }

    #[test]
    fn loops_and_depth_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"").unwrap();
        let mut chain = Chain::new();
        chain.enter(&a).unwrap();
        let err = chain
            .enter(&dir.path().join("./a"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("loops"), "{err}");
        let mut chain = Chain::new();
        for i in 0..MAX_DEPTH {
            chain.enter(&dir.path().join(format!("n{i}"))).unwrap();
        }
        assert!(chain.enter(&dir.path().join("last")).is_err());
    }
}
