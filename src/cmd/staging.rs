//! Making new images safely: files are built in a hidden folder beside the
//! target and moved into place only when everything has succeeded, so a
//! failure or an interruption never leaves a half-written image, and an
//! existing file is only replaced with `--force` — then atomically, keeping
//! its mode and owner, and flushed to disk first, so a crash can never
//! leave neither the old image nor the new one.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::image::factory;
use crate::io::{Access, ImageFile};
use clap::ValueEnum;
use rustix::fs::{renameat_with, RenameFlags, CWD};

/// When new images are flushed to disk (qemu-img's `-t` cache modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Cache {
    /// Flush what replaces an existing file (vimg's default).
    #[default]
    #[value(skip)]
    Replacing,
    /// Never flush (fastest; a power cut can lose the new image).
    Unsafe,
    /// Flush the new image before it is moved into place.
    Writeback,
    /// As writeback.
    None,
    /// As writeback.
    Writethrough,
    /// As writeback.
    Directsync,
}

impl Cache {
    fn flush_all(self) -> bool {
        !matches!(self, Cache::Replacing | Cache::Unsafe)
    }
}

/// The file in a work folder that says which process builds there.
const OWNER: &str = ".vimg-owner";

/// What tells a process apart from a later one that reuses its ID: the ID
/// and its start time in clock ticks since boot (/proc/PID/stat, field 22).
fn process_stamp(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let start = after_name.split_whitespace().nth(19)?;
    Some(format!("vimg {pid} {start}\n"))
}

/// Remove the work folders of earlier runs for `name` in `dir` whose
/// process is gone: recognised by name, by the owner file in them, and by
/// holding nothing but files.
fn remove_stale(dir: &Path, name: &std::ffi::OsStr) {
    let prefix = format!(".{}.vimg-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(tag) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
        else {
            continue;
        };
        if tag.len() != 8 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let folder = entry.path();
        if !fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let Ok(owner) = fs::read_to_string(folder.join(OWNER)) else {
            continue;
        };
        let pid = owner
            .strip_prefix("vimg ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else {
            continue;
        };
        if process_stamp(pid).as_deref() == Some(owner.as_str()) {
            continue; // still building
        }
        let only_files = fs::read_dir(&folder).is_ok_and(|list| {
            list.flatten()
                .all(|e| e.file_type().is_ok_and(|t| t.is_file()))
        });
        if only_files {
            let _ = fs::remove_dir_all(&folder);
        }
    }
}

/// A hidden build folder for one target.
pub struct Staging {
    dir: PathBuf,
    target_dir: PathBuf,
    name: OsString,
    force: bool,
    cache: Cache,
    /// The files about to be replaced, held under our write lock from the
    /// first check to the swap, so that no VM starts on them meanwhile.
    held: Vec<ImageFile>,
    /// The files of the image being replaced (its extents): the only ones
    /// --force may replace besides the target itself; `None` while a
    /// stopped --force left it half replaced (which the rerun finishes).
    replaced: Option<Vec<PathBuf>>,
}

/// Take the write lock on `path`, an existing file about to be replaced:
/// one a running VM, qemu-img or vimg holds is refused, never swapped away
/// under it (its later writes would land in a file nobody can reach).
fn hold(path: &Path) -> anyhow::Result<ImageFile> {
    ImageFile::open(path, Access::Write)
        .with_context(|| format!("refusing to replace {}", path.display()))
}

impl Staging {
    /// Prepare to build `target`; fails at once when it exists and `force`
    /// is not given, or when it is something other than a regular file. A
    /// symbolic link stands for the file it names.
    pub fn new(target: &Path, force: bool, cache: Cache) -> anyhow::Result<Staging> {
        let mut target = target.to_path_buf();
        let mut held = Vec::new();
        if let Ok(meta) = fs::symlink_metadata(&target) {
            if !force {
                return Err(crate::Error::Exists { path: target }.into());
            }
            if meta.file_type().is_symlink() {
                target = fs::canonicalize(&target)
                    .with_context(|| format!("{}: a symbolic link to nothing", target.display()))?;
            }
            if !fs::metadata(&target)?.is_file() {
                bail!(
                    "{}: not a regular file; vimg only replaces image files",
                    target.display()
                );
            }
            held.push(hold(&target)?);
        }
        // What the old image consists of (itself alone, when it does not
        // open as an image).
        let half_replaced = fs::symlink_metadata(factory::replacing_marker(&target)).is_ok();
        let replaced = match (held.is_empty(), half_replaced) {
            (true, _) => Some(Vec::new()),
            (false, true) => None,
            (false, false) => {
                let opts = crate::image::OpenOptions::new(Access::ReadShared).with_parents(None);
                let files = factory::open_with(&target, None, opts)
                    .map(|image| image.files())
                    .unwrap_or_else(|_| vec![target.clone()]);
                Some(files)
            }
        };
        let name = target
            .file_name()
            .with_context(|| format!("{}: not a file name", target.display()))?
            .to_os_string();
        let target_dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        remove_stale(&target_dir, &name);
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = target_dir.join(format!(".{}.vimg-{tag}.tmp", name.to_string_lossy()));
        fs::create_dir(&dir)
            .with_context(|| format!("{}: cannot create a work folder", dir.display()))?;
        // Who builds here: a later run removes the folder once this
        // process is gone (killed where no clean-up could run).
        if let Some(me) = process_stamp(std::process::id()) {
            fs::write(dir.join(OWNER), me)
                .with_context(|| format!("{}: cannot write to the work folder", dir.display()))?;
        }
        Ok(Staging {
            dir,
            target_dir,
            name,
            force,
            cache,
            held,
            replaced,
        })
    }

    /// `err` as a message that names the target's folder, not the hidden
    /// work folder.
    pub fn explain(&self, err: impl Into<anyhow::Error>) -> anyhow::Error {
        let text = format!("{:#}", err.into());
        let hidden = format!("{}/", self.dir.display());
        let shown = match self.target_dir.as_os_str().to_str() {
            Some(".") => String::new(),
            _ => format!("{}/", self.target_dir.display()),
        };
        anyhow::anyhow!(text.replace(&hidden, &shown))
    }

    /// Where to build the image.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Move the built files into place, the target itself last. A file
    /// that replaces an existing one takes its mode and owner, is flushed to
    /// disk, and is swapped in atomically; when one move fails, the ones
    /// made are undone and the old files are back.
    pub fn commit(mut self, files: &[PathBuf]) -> anyhow::Result<()> {
        for f in files {
            if f.parent() != Some(self.dir.as_path()) {
                bail!("{}: image file outside the work folder", f.display());
            }
        }
        let mut order: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.file_name() != Some(&self.name))
            .collect();
        order.extend(files.iter().filter(|f| f.file_name() == Some(&self.name)));
        // Several files swapped one by one are not one atomic step: a
        // marker says the image is half replaced until the last is in, and
        // opens refuse it meanwhile.
        let swaps = order
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| fs::symlink_metadata(self.target_dir.join(n)).is_ok())
            })
            .count();
        let marker = factory::replacing_marker(&self.target_dir.join(&self.name));
        let marked = self.force && order.len() > 1 && swaps > 0;
        if marked {
            let folder = self.dir.file_name().unwrap_or_default().to_string_lossy();
            fs::write(&marker, format!("{folder}\n"))
                .with_context(|| format!("{}: cannot write", marker.display()))?;
        }
        let mut done: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
        for staged in order {
            let Some(name) = staged.file_name() else {
                continue;
            };
            let dest = self.target_dir.join(name);
            match self.place(staged, &dest) {
                Ok(swapped) => done.push((staged.clone(), dest, swapped)),
                Err(e) => {
                    for (staged, dest, swapped) in done.iter().rev() {
                        let flags = match swapped {
                            true => RenameFlags::EXCHANGE,
                            false => RenameFlags::empty(),
                        };
                        let _ = renameat_with(CWD, dest, CWD, staged, flags);
                    }
                    if marked {
                        let _ = fs::remove_file(&marker);
                    }
                    return Err(
                        e.context(format!("cannot move the new image to {}", dest.display()))
                    );
                }
            }
        }
        if self.cache != Cache::Unsafe {
            // The new names themselves.
            fs::File::open(&self.target_dir)
                .and_then(|d| d.sync_all())
                .with_context(|| {
                    format!("{}: cannot flush the folder", self.target_dir.display())
                })?;
        }
        // Ours, or one an interrupted run left over the image this one
        // has now replaced whole.
        match fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("{}: cannot remove", marker.display()))
            }
            _ => Ok(()),
        }
    }

    /// Put `staged` at `dest`; returns true when it swapped with an
    /// existing file (which then sits at `staged`).
    fn place(&mut self, staged: &Path, dest: &Path) -> anyhow::Result<bool> {
        let existing = match fs::symlink_metadata(dest) {
            Ok(meta) if self.force && meta.is_file() => {
                // Only a file of the image being replaced: another image's
                // extent under the same name is not TARGET's to replace.
                let ours = match &self.replaced {
                    Some(files) => files.iter().any(|r| crate::chain::same_file(r, dest)),
                    None => true,
                };
                if !ours {
                    bail!(
                        "{}: exists, and is not a file of the image --force replaces; move it away first",
                        dest.display()
                    );
                }
                // The target itself is held since `new`; an extent file it
                // replaces is taken now.
                let id = (meta.dev(), meta.ino());
                if !self.held.iter().any(|h| h.identity() == id) {
                    let file = hold(dest)?;
                    self.held.push(file);
                }
                Some(meta)
            }
            Ok(_) => {
                return Err(crate::Error::Exists {
                    path: dest.to_path_buf(),
                }
                .into())
            }
            Err(_) => None,
        };
        if let Some(old) = &existing {
            fs::set_permissions(staged, old.permissions())?;
            // Only root may give a file away; otherwise it stays ours.
            let _ = std::os::unix::fs::chown(staged, Some(old.uid()), Some(old.gid()));
        }
        if self.cache != Cache::Unsafe && (existing.is_some() || self.cache.flush_all()) {
            fs::File::open(staged)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("{}: cannot flush to disk", staged.display()))?;
        }
        let flags = match existing {
            Some(_) => RenameFlags::EXCHANGE,
            None => RenameFlags::NOREPLACE,
        };
        renameat_with(CWD, staged, CWD, dest, flags).map_err(|e| {
            if e == rustix::io::Errno::EXIST {
                crate::Error::Exists {
                    path: dest.to_path_buf(),
                }
                .into()
            } else {
                anyhow::Error::from(std::io::Error::from(e))
            }
        })?;
        Ok(existing.is_some())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
