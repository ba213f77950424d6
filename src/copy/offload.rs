//! In-kernel copies (`convert -C`): where a run's bytes lie as they are in
//! a source file and have a place of their own in a target file (raw
//! files, fixed VHDs, flat VMDKs), `copy_file_range` moves them without
//! passing through vimg (and, on file systems that share blocks, without
//! copying them at all). Other runs are copied as usual.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::plan::Plan;
use super::throttle::{pace, Throttle};
use crate::chain;
use crate::error::{Error, Result};
use crate::image::{Host, Image, Source};
use crate::interrupt;

/// Copy what `plan` hands out from `src` into `dst`, in the kernel where
/// both ends have places in files. Returns the bytes copied that way.
pub fn copy_offloaded(
    src: &mut dyn Image,
    dst: &mut dyn Image,
    mut plan: Plan,
    rate: Option<u64>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut files = Files::default();
    let mut throttle = Throttle::new(rate);
    let mut buf = Vec::new();
    let mut offloaded = 0;
    while let Some(run) = plan.next_run(src)? {
        let mut at = run.start;
        while at < run.end {
            interrupt::check()?;
            let (from, _) = chain::status(src, at, run.end - at)?;
            let to = dst.block_status(at, run.end - at)?;
            let n = from.len.min(to.len).min(run.end - at).max(1);
            match (place(&from.source, true), place(&to.source, false)) {
                (Some(f), Some(t)) => {
                    files.open(&f.file, false)?;
                    files.open(&t.file, true)?;
                    let (fin, fout) = (files.get(&f.file, false), files.get(&t.file, true));
                    copy_range(fin, f.offset, fout, t.offset, n).map_err(|e| Error::Io {
                        path: t.file.to_path_buf(),
                        op: "cannot copy in the kernel",
                        offset: t.offset,
                        source: e,
                    })?;
                    offloaded += n;
                }
                _ => {
                    buf.resize(n as usize, 0);
                    src.read_at(&mut buf, at)?;
                    dst.write_at(&buf, at)?;
                }
            }
            at += n;
            pace(&mut throttle, n);
        }
        progress(run.end);
    }
    progress(plan.end());
    Ok(offloaded)
}

/// Where a run's bytes lie as they are: stored data (`source`) or a place
/// of its own to write (`!source`).
fn place(source: &Source, stored: bool) -> Option<Host> {
    match source {
        Source::Data {
            host: Some(h),
            compressed: false,
        } => Some(h.clone()),
        Source::Zero { host: Some(h), .. } if !stored => Some(h.clone()),
        _ => None,
    }
}

/// The host files, opened once each (the images hold the locks).
#[derive(Default)]
struct Files(HashMap<(Arc<Path>, bool), File>);

impl Files {
    fn get(&self, path: &Arc<Path>, write: bool) -> &File {
        &self.0[&(path.clone(), write)]
    }

    fn open(&mut self, path: &Arc<Path>, write: bool) -> Result<()> {
        let key = (path.clone(), write);
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(key) {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(write)
                .open(path)
                .map_err(|e| Error::Io {
                    path: path.to_path_buf(),
                    op: "cannot open",
                    offset: 0,
                    source: e,
                })?;
            slot.insert(file);
        }
        Ok(())
    }
}

/// Copy `len` bytes from `from` at `from_at` to `to` at `to_at`, with
/// `copy_file_range`, or by reading and writing where the kernel cannot.
fn copy_range(from: &File, from_at: u64, to: &File, to_at: u64, len: u64) -> std::io::Result<()> {
    use rustix::io::Errno;
    use std::os::unix::fs::FileExt;
    let (mut f, mut t, mut left) = (from_at, to_at, len);
    while left > 0 {
        let want = left.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(from, Some(&mut f), to, Some(&mut t), want) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the source file ends before the data it should hold",
                ))
            }
            Ok(n) => left -= n as u64,
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                let mut buf = vec![0u8; left.min(1 << 20) as usize];
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    from.read_exact_at(&mut buf[..n], f)?;
                    to.write_all_at(&buf[..n], t)?;
                    (f, t, left) = (f + n as u64, t + n as u64, left - n as u64);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
