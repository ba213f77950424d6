//! A VMDK's capacity changed in place. One write switches every time: the
//! header with the embedded descriptor beside it (monolithicSparse), or
//! the descriptor file (split and flat layouts). What the new size needs
//! is made before it (new extents, longer flat files, grain tables and
//! directories where the old layout does not look); what the old size used
//! past the new end is given up after it (files shortened or removed,
//! table entries cleared; a stop in between leaves leaks only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::create::{self, SPLIT_SECTORS};
use super::descriptor::{ExtentAccess, NO_PARENT};
use super::{DescriptorHome, Storage, Vmdk};
use crate::error::{Error, Result};
use crate::image::Sink;
use crate::io::{folder_of, ImageFile, SECTOR};
use crate::vmdk::sparse::SparseExtent;

impl Vmdk {
    /// Change the disk to `sectors` sectors.
    pub(super) fn resize_to(&mut self, sectors: u64) -> Result<Vec<String>> {
        if self.parent.is_some()
            || self.desc.parent_cid != NO_PARENT
            || self.desc.parent_hint.is_some()
        {
            return Err(Error::unsupported(
                &self.path,
                "it is a delta (snapshot): a delta has its parent's size, as VMware requires; commit it into its parent (vimg commit) and resize that",
            ));
        }
        crate::image::Image::check_writable(self)?;
        self.flush()?;
        if sectors == self.size / SECTOR {
            // A shrink stopped before its copy took the old name.
            self.settle_names()?;
            return Ok(Vec::new());
        }
        self.set_geometry(sectors);
        match &self.home {
            DescriptorHome::Embedded { .. } => self.resize_monolithic(sectors)?,
            DescriptorHome::File(_) => self.resize_extents(sectors)?,
        }
        self.size = sectors * SECTOR;
        Ok(Vec::new())
    }

    /// The disk database's cylinder count for `sectors`, as `create`
    /// writes it (only where the descriptor has a geometry).
    fn set_geometry(&mut self, sectors: u64) {
        if self.desc.ddb("ddb.geometry.cylinders").is_none() {
            return;
        }
        let adapter = self
            .desc
            .ddb("ddb.adapterType")
            .unwrap_or("ide")
            .to_string();
        let (cylinders, heads) = create::geometry(&adapter, sectors);
        self.desc
            .set_ddb("ddb.geometry.cylinders", &cylinders.to_string());
        self.desc.set_ddb("ddb.geometry.heads", &heads.to_string());
    }

    /// A single sparse extent with its descriptor inside: the header and
    /// descriptor written in one go.
    fn resize_monolithic(&mut self, sectors: u64) -> Result<()> {
        let Some(Storage::Sparse(s)) = self.extents.first_mut().map(|e| &mut e.storage) else {
            return Err(Error::unsupported(&self.path, "it has no sparse extent"));
        };
        let old = s.header.clone();
        let grow = sectors > old.capacity;
        let new = match grow {
            true => s.prepare_growth(sectors)?,
            false => s.shrunk_header(sectors)?,
        };
        if let Some(line) = self.desc.extents.first_mut() {
            line.sectors = sectors;
        }
        let DescriptorHome::Embedded {
            file,
            offset,
            capacity,
        } = &self.home
        else {
            unreachable!("a monolithic VMDK's descriptor is embedded")
        };
        let (file, offset, capacity) = (file.clone(), *offset, *capacity);
        let mut head = new.encode().to_vec();
        if capacity != 0 {
            let text = super::rewritten(&self.desc, self.desc_text.as_deref());
            if text.len() as u64 > capacity {
                return Err(Error::unsupported(
                    &self.path,
                    format!(
                        "the descriptor ({} bytes) no longer fits its {capacity}-byte space",
                        text.len()
                    ),
                ));
            }
            let mut desc = text.clone().into_bytes();
            desc.resize(capacity as usize, 0);
            if offset == head.len() as u64 {
                // The switch: header and descriptor in one write.
                head.extend_from_slice(&desc);
                file.write_all_at(&head, 0)?;
            } else {
                file.write_all_at(&head, 0)?;
                file.write_all_at(&desc, offset)?;
            }
            self.desc_text = Some(text);
        } else {
            file.write_all_at(&head, 0)?;
        }
        file.sync()?;
        let Some(Storage::Sparse(s)) = self.extents.first_mut().map(|e| &mut e.storage) else {
            unreachable!()
        };
        if !grow {
            s.finish_shrink(&old, &new)?;
        }
        s.header = new;
        self.extents[0].len = sectors * SECTOR;
        Ok(())
    }

    /// A descriptor file and its extents: extents added (grow) or dropped
    /// and shortened (shrink), then the descriptor rewritten.
    fn resize_extents(&mut self, sectors: u64) -> Result<()> {
        let sparse = self
            .extents
            .iter()
            .all(|e| matches!(e.storage, Storage::Sparse(_)));
        let flat = self
            .extents
            .iter()
            .all(|e| matches!(e.storage, Storage::Flat { .. }));
        let rw = self
            .extents
            .iter()
            .all(|e| e.access == ExtentAccess::ReadWrite);
        let split = self.desc.create_type.starts_with("twoGbMaxExtent");
        if !rw || !(flat || sparse && split) || self.extents.is_empty() {
            return Err(Error::unsupported(
                &self.path,
                format!(
                    "a {} VMDK with these extents cannot be resized in place; convert it (vimg convert -O vmdk IN OUT) and resize that",
                    self.desc.create_type
                ),
            ));
        }
        let old = self.size / SECTOR;
        if sectors > old {
            self.grow_extents(sectors - old, flat, split)?;
        } else {
            self.shrink_extents(sectors)?;
        }
        Ok(())
    }

    fn grow_extents(&mut self, mut more: u64, flat: bool, split: bool) -> Result<()> {
        let mut created: Vec<PathBuf> = Vec::new();
        let result = (|| -> Result<()> {
            // A flat extent grows in place (up to the split size).
            if flat {
                let i = self.extents.len() - 1;
                let have = self.extents[i].len / SECTOR;
                let room = if split {
                    SPLIT_SECTORS.saturating_sub(have)
                } else {
                    more
                };
                let add = room.min(more);
                if add > 0 {
                    self.grow_flat_extent(i, have + add)?;
                    self.desc.extents[i].sectors = have + add;
                    more -= add;
                }
            }
            let zeroed_grain = self.extents.iter().any(|e| match &e.storage {
                Storage::Sparse(s) => s.header.zeroed_grain(),
                _ => false,
            });
            let (kind, tag) = if flat { ("FLAT", "f") } else { ("SPARSE", "s") };
            while more > 0 {
                let part = more.min(SPLIT_SECTORS);
                let number = self.desc.extents.len() + 1;
                let name = self.next_extent_name(tag, number);
                let path = folder_of(&self.path).join(&name);
                self.take_leftover(&path, flat)?;
                // Made whole under a name of its own, then named: a stop
                // leaves either a file no descriptor names under that
                // name (removed by the next run) or an empty extent.
                let part_path = folder_of(&self.path).join(format!(".{name}.vimg-resize"));
                let _ = std::fs::remove_file(&part_path);
                let file = ImageFile::create_new(&part_path)?;
                created.push(part_path.clone());
                if flat {
                    file.set_len(part * SECTOR)?;
                } else {
                    create::write_sparse_extent(&file, part, None, zeroed_grain)?;
                }
                file.sync()?;
                drop(file);
                std::fs::rename(&part_path, &path)
                    .map_err(|e| Error::file(&path, "cannot name the new extent", e))?;
                created.pop();
                created.push(path);
                let mut line = self.desc.extents[self.desc.extents.len() - 1].clone();
                line.sectors = part;
                line.kind = kind.into();
                line.file = Some(name);
                line.offset = 0;
                self.desc.extents.push(line);
                more -= part;
            }
            Ok(())
        })();
        let result = result.and_then(|()| self.write_descriptor());
        if let Err(e) = result {
            for f in created {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
        if let DescriptorHome::File(f) = &self.home {
            f.sync()?;
        }
        Ok(())
    }

    /// Extend flat extent `i` to `sectors`: what its file holds past the
    /// extent is cut off first (no other extent uses the file), so the
    /// new part reads zeros, then the file is extended sparsely.
    fn grow_flat_extent(&mut self, i: usize, sectors: u64) -> Result<()> {
        let e = &self.extents[i];
        let Storage::Flat { file, offset } = &e.storage else {
            unreachable!("only flat extents grow in place")
        };
        let shared = self.extents.iter().enumerate().any(|(j, other)| {
            j != i
                && matches!(&other.storage, Storage::Flat { file: f, .. } if f.identity() == file.identity())
        });
        if shared {
            return Err(Error::unsupported(
                &self.path,
                "its last flat extent shares its file with another extent; convert it and resize that",
            ));
        }
        file.check_writable()?;
        let end = offset + e.len;
        if file.length()? > end {
            file.set_len(end)?;
        }
        file.set_len(offset + sectors * SECTOR)?;
        file.sync()
    }

    /// The name for new extent `number`: the last extent's name with the
    /// number changed (`disk-s003.vmdk` → `disk-s004.vmdk`), else the name
    /// `create` gives it.
    fn next_extent_name(&self, tag: &str, number: usize) -> String {
        let last = self
            .desc
            .extents
            .last()
            .and_then(|l| l.file.clone())
            .unwrap_or_default();
        let numbered = last.strip_suffix(".vmdk").and_then(|stem| {
            let (prefix, digits) = stem.rsplit_once(&format!("-{tag}"))?;
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| format!("{prefix}-{tag}{number:03}.vmdk"))
        });
        numbered.unwrap_or_else(|| create::extent_name(&self.path, &format!("{tag}{number:03}")))
    }

    /// A file where a new extent goes: removed when an earlier resize that
    /// stopped left it (an extent no descriptor names, holding nothing),
    /// else refused.
    fn take_leftover(&self, path: &Path, flat: bool) -> Result<()> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let named = self
            .files()
            .iter()
            .any(|f| std::fs::canonicalize(f).ok() == std::fs::canonicalize(path).ok());
        let empty = !named
            && ImageFile::open(path, crate::io::Access::Read)
                .ok()
                .is_some_and(|file| match flat {
                    true => file.next_data(0).ok() == Some(None),
                    false => SparseExtent::open(Arc::new(file), crate::image::Walk::Read)
                        .is_ok_and(|mut s| s.holds_nothing().unwrap_or(false)),
                });
        if !empty {
            return Err(Error::unsupported(
                &self.path,
                format!(
                    "a new extent would be {}, which exists and is not an empty leftover; move it away first",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::file(path, "cannot remove the leftover extent", e))
    }

    /// Drop the extents past `sectors` and shorten the one the new end
    /// falls in: a flat one's file is cut after the switch; a sparse
    /// extent's header holds its capacity (which qemu goes by), so the
    /// kept part of a sparse one is copied into a new extent first, which
    /// the descriptor switches to, and which then takes the old name.
    fn shrink_extents(&mut self, sectors: u64) -> Result<()> {
        let end = sectors * SECTOR;
        let keep = self
            .extents
            .iter()
            .take_while(|e| e.start < end)
            .count()
            .max(1);
        let last = &self.extents[keep - 1];
        let last_len = end - last.start;
        let rewritten = match (&last.storage, last_len < last.len) {
            (Storage::Sparse(_), true) => Some(self.copy_kept_part(keep - 1, last_len)?),
            _ => None,
        };
        let dropped: Vec<(PathBuf, (u64, u64))> = self.extents[keep..]
            .iter()
            .chain(rewritten.as_ref().map(|_| &self.extents[keep - 1]))
            .filter_map(|e| extent_file(&e.storage).map(|f| (f.path().to_path_buf(), f.identity())))
            .collect();
        let before = self.desc.extents.clone();
        self.desc.extents.truncate(keep);
        self.desc.extents[keep - 1].sectors = last_len / SECTOR;
        if let Some(name) = &rewritten {
            self.desc.extents[keep - 1].file = Some(name.clone());
        }
        if let Err(e) = self.write_descriptor() {
            self.desc.extents = before;
            return Err(e);
        }
        if let DescriptorHome::File(f) = &self.home {
            f.sync()?;
        }
        // The switch is made: what is past the end is given back.
        self.extents.truncate(keep);
        let kept: Vec<(u64, u64)> = self
            .extents
            .iter()
            .take(keep - rewritten.iter().count())
            .filter_map(|e| extent_file(&e.storage).map(|f| f.identity()))
            .collect();
        let last = &mut self.extents[keep - 1];
        last.len = last_len;
        if let Storage::Flat { file, offset } = &last.storage {
            let shared = kept.iter().filter(|&&id| id == file.identity()).count() > 1;
            if !shared && file.length()? > offset + last_len {
                file.set_len(offset + last_len)?;
                file.sync()?;
            }
        }
        for (path, id) in dropped {
            if !kept.contains(&id) {
                std::fs::remove_file(&path).map_err(|e| {
                    Error::file(&path, "cannot remove the extent past the new end", e)
                })?;
            }
        }
        self.settle_names()
    }

    /// Copy the first `len` bytes of sparse extent `i` into a new sparse
    /// extent beside it, under a name no descriptor uses
    /// (`.NAME.vimg-resize`); returns that name.
    fn copy_kept_part(&mut self, i: usize, len: u64) -> Result<String> {
        let name = self.desc.extents[i].file.clone().unwrap_or_default();
        let temp = format!(".{name}{PART_SUFFIX}");
        let path = folder_of(&self.path).join(&temp);
        if std::fs::symlink_metadata(&path).is_ok() {
            // What an earlier resize that stopped left, named by nothing.
            std::fs::remove_file(&path)
                .map_err(|e| Error::file(&path, "cannot remove the leftover extent", e))?;
        }
        let Storage::Sparse(old) = &mut self.extents[i].storage else {
            unreachable!("only sparse extents are copied")
        };
        let file = ImageFile::create_new(&path)?;
        create::write_sparse_extent(&file, len / SECTOR, None, old.header.zeroed_grain())?;
        file.sync()?;
        let mut new = SparseExtent::open(Arc::new(file), crate::image::Walk::Write)?;
        let mut buf = Vec::new();
        let mut at = 0;
        while at < len {
            let m = old.status(at, len - at)?;
            let n = m.len.max(1).min(len - at);
            if let crate::image::Source::Data { .. } = m.source {
                let mut pos = at;
                while pos < at + n {
                    let chunk = (at + n - pos).min(1 << 20);
                    buf.resize(chunk as usize, 0);
                    old.read(&mut buf, pos, &mut |b: &mut [u8], _| {
                        b.fill(0);
                        Ok(())
                    })?;
                    new.write(&buf, pos, None)?;
                    pos += chunk;
                }
            }
            at += n;
        }
        new.flush()?;
        new.file().sync()?;
        Ok(temp)
    }

    /// Give an extent that a shrink copied (`.NAME.vimg-resize`) its
    /// name back: the old file of that name (no longer the disk's) goes,
    /// the copy is linked under it, the descriptor switches to it, and the
    /// other name goes. Every step leaves a whole disk; a resize to the
    /// same size runs this again after a stop.
    fn settle_names(&mut self) -> Result<()> {
        for i in 0..self.desc.extents.len() {
            let Some(temp) = self.desc.extents[i].file.clone() else {
                continue;
            };
            let Some(name) = temp
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(PART_SUFFIX))
                .map(str::to_string)
            else {
                continue;
            };
            let folder = folder_of(&self.path).to_path_buf();
            let (from, to) = (folder.join(&temp), folder.join(&name));
            let named = self
                .desc
                .extents
                .iter()
                .any(|l| l.file.as_deref() == Some(name.as_str()));
            if named {
                continue;
            }
            if std::fs::symlink_metadata(&to).is_ok() {
                std::fs::remove_file(&to)
                    .map_err(|e| Error::file(&to, "cannot remove the extent replaced", e))?;
            }
            std::fs::hard_link(&from, &to)
                .map_err(|e| Error::file(&to, "cannot name the shortened extent", e))?;
            self.desc.extents[i].file = Some(name);
            self.write_descriptor()?;
            if let DescriptorHome::File(f) = &self.home {
                f.sync()?;
            }
            std::fs::remove_file(&from)
                .map_err(|e| Error::file(&from, "cannot remove the extent's other name", e))?;
        }
        Ok(())
    }
}

/// What a shortened extent's copy is called until it takes the old name.
const PART_SUFFIX: &str = ".vimg-resize";

fn extent_file(storage: &Storage) -> Option<&Arc<ImageFile>> {
    match storage {
        Storage::Sparse(s) => Some(s.file()),
        Storage::Flat { file, .. } => Some(file),
        _ => None,
    }
}
