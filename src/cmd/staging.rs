//! Making new images safely: files are built in a hidden folder beside the
//! target and renamed into place only when everything has succeeded, so a
//! failure or an interruption never leaves a half-written image, and an
//! existing file is only replaced with `--force`.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rustix::fs::{renameat_with, RenameFlags, CWD};

/// A hidden build folder for one target.
pub struct Staging {
    dir: PathBuf,
    target_dir: PathBuf,
    name: OsString,
    force: bool,
}

impl Staging {
    /// Prepare to build `target`; fails at once when it exists and `force`
    /// is not given.
    pub fn new(target: &Path, force: bool) -> anyhow::Result<Staging> {
        let name = target
            .file_name()
            .with_context(|| format!("{}: not a file name", target.display()))?
            .to_os_string();
        if !force && fs::symlink_metadata(target).is_ok() {
            return Err(crate::Error::Exists {
                path: target.to_path_buf(),
            }
            .into());
        }
        let target_dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = target_dir.join(format!(".{}.vimg-{tag}.tmp", name.to_string_lossy()));
        fs::create_dir(&dir)
            .with_context(|| format!("{}: cannot create a work folder", dir.display()))?;
        Ok(Staging {
            dir,
            target_dir,
            name,
            force,
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

    /// Move the built files into place, the target itself last. With
    /// `force`, files that replace existing ones are flushed to disk first.
    pub fn commit(self, files: &[PathBuf]) -> anyhow::Result<()> {
        let mut order: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.file_name() != Some(&self.name))
            .collect();
        order.push(
            &files[files
                .iter()
                .position(|f| f.file_name() == Some(&self.name))
                .unwrap_or(0)],
        );
        let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
        for staged in order {
            let Some(name) = staged.file_name() else {
                continue;
            };
            let dest = self.target_dir.join(name);
            let result = if self.force {
                if dest.exists() {
                    fs::File::open(staged)
                        .and_then(|f| f.sync_all())
                        .with_context(|| format!("{}: cannot flush to disk", staged.display()))?;
                }
                fs::rename(staged, &dest).map_err(anyhow::Error::from)
            } else {
                renameat_with(CWD, staged, CWD, &dest, RenameFlags::NOREPLACE).map_err(|e| {
                    if e == rustix::io::Errno::EXIST {
                        crate::Error::Exists { path: dest.clone() }.into()
                    } else {
                        anyhow::Error::from(std::io::Error::from(e))
                    }
                })
            };
            if let Err(e) = result {
                for (from, to) in moved.iter().rev() {
                    let _ = fs::rename(to, from);
                }
                return Err(e.context(format!("cannot move the new image to {}", dest.display())));
            }
            moved.push((staged.clone(), dest));
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Fail unless every file lies in the staging folder (a format that wrote
/// elsewhere would escape the rename).
pub fn check_staged(staging: &Staging, files: &[PathBuf]) -> anyhow::Result<()> {
    for f in files {
        if f.parent() != Some(staging.dir.as_path()) {
            bail!("{}: image file outside the work folder", f.display());
        }
    }
    Ok(())
}
