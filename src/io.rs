//! Positioned I/O on image files: whole reads and writes at byte offsets,
//! sparse-aware seeking, locking, and the alignment helpers formats share.
//!
//! Format code never moves a file cursor; every access names its offset, and
//! every error names the file and the offset.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags, ResolveFlags, SeekFrom};

use crate::error::{Error, Result};

/// The byte QEMU locks while it holds permission to write an image
/// (block/file-posix.c: RAW_LOCK_PERM_BASE + the WRITE bit).
const QEMU_WRITE_BYTE: u64 = 101;

/// The byte QEMU locks while it does not let others write an image (its
/// "shared" bytes, RAW_LOCK_SHARED_BASE + the WRITE bit): what a reader
/// holds, so that neither QEMU nor a vimg writer changes what it reads.
const QEMU_NO_WRITERS_BYTE: u64 = 201;

/// Bytes in a disk sector, the unit both formats count in.
pub const SECTOR: u64 = 512;

/// Threads that work shared out over the cores (deflating a stream,
/// inflating compressed grains) may use; 0: one a core.
static WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many threads work shared out over the cores uses: one a core, or
/// at most what [`set_workers`] said (`convert -m`).
pub fn workers() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match WORKERS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => cores,
        n => n.min(cores),
    }
}

/// Use at most `n` threads for work shared out over the cores.
pub fn set_workers(n: usize) {
    WORKERS.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// Round `value` up to a multiple of `align` (a power of two); values
/// within `align` of the top stay at the largest multiple.
pub fn align_up(value: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    value.saturating_add(align - 1) & !(align - 1)
}

/// Round `value` down to a multiple of `align` (a power of two).
pub fn align_down(value: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    value & !(align - 1)
}

/// True when every byte of `buf` is zero.
pub fn is_zero(buf: &[u8]) -> bool {
    let (words, tail) = buf.split_at(buf.len() - buf.len() % 64);
    words.chunks_exact(64).all(|block| {
        block.chunks_exact(8).fold(0u64, |acc, w| {
            acc | u64::from_ne_bytes(w.try_into().unwrap())
        }) == 0
    }) && tail.iter().all(|&b| b == 0)
}

/// The folder a file lies in (`.` for a bare name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The filesystem block size holes are punched in (the page size every
/// Linux filesystem vimg meets punches in, or a multiple of it).
const HOLE_BLOCK: u64 = 4096;

/// The whole hole blocks of `[offset, offset + len)`, as (start, end).
fn whole_blocks(offset: u64, len: u64) -> (u64, u64) {
    let end = offset.saturating_add(len);
    (align_up(offset, HOLE_BLOCK), align_down(end, HOLE_BLOCK))
}

/// The largest write [`ImageFile::write_data_at`] makes.
pub const DATA_PIECE: usize = 64 << 10;

/// Let this process keep as many files open as the system allows it
/// (the hard limit): a chain of a thousand images holds a thousand files.
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// How an image file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only; refused while another process may be writing the file.
    Read,
    /// Read only, whoever else has the file open (qemu-img's `-U`).
    ReadShared,
    /// Read and write, with an exclusive lock.
    Write,
}

/// Who names a file, which decides what it may be and how it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named<'a> {
    /// The user, on the command line: a regular file or a block device
    /// (`vimg convert /dev/sdb out.vmdk`), reached however its path says.
    ByUser,
    /// An image (an extent, a parent): a regular file only, and with
    /// `beneath`, one that lies inside that folder, reached without any
    /// link leading out of it (and so without a swap between a check and
    /// the open redirecting it).
    ByImage { beneath: Option<&'a Path> },
}

/// Open `path`, which must lie inside `dir` as written (`dir` joined with
/// a relative rest), resolving the rest inside `dir` only: a symbolic link
/// or `..` that leads out is refused by the kernel (`openat2` with
/// `RESOLVE_BENEATH`).
fn open_beneath(dir: &Path, path: &Path, flags: OFlags) -> Result<OwnedFd> {
    let refuse = |why: &str| {
        Error::file(
            path,
            "cannot open",
            io::Error::other(format!(
                "{why} {}, where the image may name files",
                dir.display()
            )),
        )
    };
    let outside = || refuse("it lies outside");
    let (dir_abs, path_abs) = (absolute(dir)?, absolute(path)?);
    let rest = path_abs.strip_prefix(&dir_abs).map_err(|_| outside())?;
    let dir_fd = rustix::fs::open(
        &dir_abs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::file(dir, "cannot open the folder", e.into()))?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&dir_fd, rest, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::XDEV) => Err(refuse("a link or `..` on its way leads out of")),
        Err(e) => Err(Error::file(path, "cannot open", e.into())),
    }
}

/// `path` made absolute against the working folder, without resolving
/// links.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::file(path, "cannot resolve", e))
}

/// The files this process holds open for writing, by (device, inode): our
/// own write lock is not a foreign writer, and no file gets a second
/// writable handle (two sets of tables in memory for one file).
static WRITING: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Files this process reads under a read lock: one entry per handle.
static READING: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn reading() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    READING.lock().unwrap_or_else(|e| e.into_inner())
}

fn writing() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    // The list stays consistent even if a holder panicked.
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// An open image file: a path for messages and positioned I/O on `&self`.
#[derive(Debug)]
pub struct ImageFile {
    file: File,
    path: Arc<Path>,
    /// (device, inode).
    id: (u64, u64),
    /// Registered in [`WRITING`] (and locked) by this handle.
    writer: bool,
    /// Registered in [`READING`] (holding the readers' lock) by this handle.
    reader: bool,
}

impl ImageFile {
    /// Open an existing file the user named and take a lock matching
    /// `access`.
    pub fn open(path: &Path, access: Access) -> Result<Self> {
        Self::open_named(path, access, Named::ByUser)
    }

    /// Open an existing file, named as `named` says, and take a lock
    /// matching `access`. The file is opened without waiting (a FIFO
    /// would block an ordinary open for ever) and its type checked before
    /// anything is read.
    pub fn open_named(path: &Path, access: Access, named: Named) -> Result<Self> {
        let mut flags = OFlags::CLOEXEC | OFlags::NONBLOCK;
        flags |= match access {
            Access::Write => OFlags::RDWR,
            _ => OFlags::RDONLY,
        };
        let fd = match named {
            Named::ByImage { beneath: Some(dir) } => open_beneath(dir, path, flags)?,
            _ => rustix::fs::open(path, flags, Mode::empty())
                .map_err(|e| Error::file(path, "cannot open", e.into()))?,
        };
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Error::file(path, "cannot stat", e))?;
        let kind = meta.file_type();
        let allowed = match named {
            Named::ByUser => kind.is_file() || kind.is_block_device(),
            Named::ByImage { .. } => kind.is_file(),
        };
        if !allowed {
            let what = match named {
                Named::ByUser => "not a regular file or block device",
                Named::ByImage { .. } => {
                    "not a regular file (an image may name only regular files)"
                }
            };
            return Err(Error::file(path, "cannot open", io::Error::other(what)));
        }
        let mut image = ImageFile {
            file,
            path: Arc::from(path),
            id: (meta.dev(), meta.ino()),
            writer: false,
            reader: false,
        };
        match access {
            Access::Write => image.lock()?,
            Access::Read => image.check_no_writer()?,
            Access::ReadShared => {}
        }
        Ok(image)
    }

    /// Create a new file; fails if `path` exists, so nothing is overwritten.
    pub fn create_new(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)
            .map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => Error::Exists {
                    path: path.to_path_buf(),
                },
                _ => Error::file(path, "cannot create", e),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::file(path, "cannot stat", e))?;
        let mut image = ImageFile {
            file,
            path: Arc::from(path),
            id: (meta.dev(), meta.ino()),
            writer: false,
            reader: false,
        };
        image.lock()?;
        Ok(image)
    }

    /// Take the whole file exclusively with an open-file-description lock,
    /// the kind QEMU takes on its images, so that a running VM or qemu-img
    /// is noticed, and notices us. Unlike a POSIX record lock it belongs to
    /// this handle alone: closing another descriptor of the same file (a
    /// probe, a reader) does not drop it.
    fn lock(&mut self) -> Result<()> {
        let mut writing = writing();
        if writing.contains(&self.id) {
            return Err(Error::unsupported(
                &self.path,
                "is already open for writing in this command (named twice?); one file is written through one handle",
            ));
        }
        if reading().contains(&self.id) {
            return Err(Error::unsupported(
                &self.path,
                "is also read in this command (named twice?); it cannot be written while it is read",
            ));
        }
        match set_write_lock(&self.file) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {
                return Err(Error::Locked {
                    path: self.path.to_path_buf(),
                })
            }
            // Filesystems without lock support: carry on unlocked.
            Err(_) => {}
        }
        writing.push(self.id);
        self.writer = true;
        Ok(())
    }

    /// Fail when another process may be writing the file, as qemu-img
    /// does: QEMU holds byte 101 (its "write" permission) while it may
    /// write an image; a vimg writer holds the whole file. A writer in this
    /// process (the lower layers of a chain opened for commit) is not a
    /// stranger. Then take the readers' shared lock, as qemu-img does
    /// without -U: writers (QEMU's, vimg's) wait until the read is done,
    /// while other readers go on.
    fn check_no_writer(&mut self) -> Result<()> {
        if writing().contains(&self.id) {
            return Ok(());
        }
        if let Ok(true) = write_lock_held(&self.file, QEMU_WRITE_BYTE) {
            return Err(Error::BeingWritten {
                path: self.path.to_path_buf(),
            });
        }
        // Held while the file is read: QEMU and vimg writers wait for it
        // (-U, force-share, reads without it).
        match set_lock_range(&self.file, libc::F_RDLCK, QEMU_NO_WRITERS_BYTE, 1) {
            Ok(()) => {
                self.reader = true;
                reading().push(self.id);
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {
                Err(Error::BeingWritten {
                    path: self.path.to_path_buf(),
                })
            }
            // Filesystems without lock support: nothing to respect.
            Err(_) => Ok(()),
        }
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path, shared (as mappings name their host file).
    pub fn name(&self) -> &Arc<Path> {
        &self.path
    }

    /// Fail unless the file was opened for writing.
    pub fn check_writable(&self) -> Result<()> {
        match self.writer {
            true => Ok(()),
            false => Err(Error::unsupported(
                &self.path,
                "is open read-only; it must be opened for writing to be changed",
            )),
        }
    }

    /// What identifies the file itself, whatever name it was opened by:
    /// (device, inode).
    pub fn identity(&self) -> (u64, u64) {
        self.id
    }

    /// Length in bytes; works for block devices too.
    pub fn length(&self) -> Result<u64> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::file(&self.path, "cannot stat", e))?;
        if meta.is_file() {
            return Ok(meta.len());
        }
        rustix::fs::seek(&self.file, SeekFrom::End(0))
            .map_err(|e| Error::file(&self.path, "cannot find the length of", e.into()))
    }

    /// Read exactly `buf.len()` bytes at `offset`; running into the end of
    /// the file is an error naming the offset.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let got = self.read_full(buf, offset)?;
        if got < buf.len() {
            return Err(Error::Io {
                path: self.path.to_path_buf(),
                op: "read past the end of the file",
                offset: offset + got as u64,
                source: io::Error::from(ErrorKind::UnexpectedEof),
            });
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at `offset`, with zeros for whatever lies past
    /// the end of the file.
    pub fn read_zero_filled(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let got = self.read_full(buf, offset)?;
        buf[got..].fill(0);
        Ok(())
    }

    /// Read until `buf` is full or the file ends; returns the bytes read.
    fn read_full(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::Io {
                        path: self.path.to_path_buf(),
                        op: "read failed",
                        offset: offset + done as u64,
                        source: e,
                    })
                }
            }
        }
        Ok(done)
    }

    /// Write all of `buf` at `offset`.
    /// Write disk data at `offset` in pieces of at most [`DATA_PIECE`]:
    /// on Linux 6.x a large write into the page cache costs several times
    /// more per byte than 64 KiB ones, and varies from run to run
    /// (docs/performance.md). For data only: metadata that must land in
    /// one write uses [`ImageFile::write_all_at`].
    pub fn write_data_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let mut done = 0;
        for piece in buf.chunks(DATA_PIECE) {
            self.write_all_at(piece, offset + done)?;
            done += piece.len() as u64;
        }
        Ok(())
    }

    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file.write_all_at(buf, offset).map_err(|e| Error::Io {
            path: self.path.to_path_buf(),
            op: "write failed",
            offset,
            source: e,
        })
    }

    /// Set the file length (growing leaves a hole).
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| Error::Io {
            path: self.path.to_path_buf(),
            op: "cannot set the length",
            offset: len,
            source: e,
        })
    }

    /// Give the whole filesystem blocks of `[offset, offset + len)` back
    /// to the filesystem, leaving a hole that reads as zeros (the length
    /// stays; the parts of blocks at either end are left as they are).
    /// Returns false when the filesystem cannot punch holes.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<bool> {
        use rustix::fs::FallocateFlags;
        let (start, end) = whole_blocks(offset, len);
        if start >= end {
            return Ok(true);
        }
        let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        match rustix::fs::fallocate(&self.file, flags, start, end - start) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(false),
            Err(e) => Err(Error::Io {
                path: self.path.to_path_buf(),
                op: "cannot punch a hole",
                offset,
                source: e.into(),
            }),
        }
    }

    /// Reserve the filesystem blocks of `[offset, offset + len)` (holes
    /// there become allocated, reading zeros), so that later writes cannot
    /// fail for want of space. Returns false when the filesystem cannot.
    pub fn allocate(&self, offset: u64, len: u64) -> Result<bool> {
        use rustix::fs::FallocateFlags;
        match rustix::fs::fallocate(&self.file, FallocateFlags::KEEP_SIZE, offset, len) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(false),
            Err(e) => Err(Error::Io {
                path: self.path.to_path_buf(),
                op: "cannot allocate space",
                offset,
                source: e.into(),
            }),
        }
    }

    /// Make `[start, end)` read as zeros: where it holds data, whole
    /// filesystem blocks are punched out and the parts of blocks at either
    /// end written with zeros (everything written, where the filesystem
    /// cannot punch holes); holes are left as they are.
    pub fn zero_range(&self, start: u64, end: u64) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = |from: u64, to: u64| -> Result<()> {
            let mut at = from;
            while at < to {
                let n = (to - at).min(CHUNK);
                self.write_all_at(&vec![0u8; n as usize], at)?;
                at += n;
            }
            Ok(())
        };
        let mut at = start;
        while at < end {
            let Some(data) = self.next_data(at)?.filter(|&d| d < end) else {
                break;
            };
            let hole = self.next_hole(data)?.min(end);
            if self.punch_hole(data, hole - data)? {
                let (first, last) = whole_blocks(data, hole - data);
                if first < last {
                    zeros(data, first)?;
                    zeros(last, hole)?;
                } else {
                    zeros(data, hole)?;
                }
            } else {
                zeros(data, hole)?;
            }
            at = hole;
        }
        Ok(())
    }

    /// Flush written data and metadata to stable storage.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::file(&self.path, "cannot flush to disk", e))
    }

    /// The first offset at or after `offset` that holds data, `None` when
    /// only a hole follows. Files that cannot tell report data everywhere.
    pub fn next_data(&self, offset: u64) -> Result<Option<u64>> {
        match rustix::fs::seek(&self.file, SeekFrom::Data(offset)) {
            Ok(pos) => Ok(Some(pos)),
            Err(rustix::io::Errno::NXIO) => Ok(None),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => Ok(Some(offset)),
            Err(e) => Err(Error::Io {
                path: self.path.to_path_buf(),
                op: "cannot seek to data",
                offset,
                source: e.into(),
            }),
        }
    }

    /// The first hole at or after `offset` (the end of the file counts as
    /// one). Files that cannot tell report their end.
    pub fn next_hole(&self, offset: u64) -> Result<u64> {
        match rustix::fs::seek(&self.file, SeekFrom::Hole(offset)) {
            Ok(pos) => Ok(pos),
            Err(rustix::io::Errno::NXIO) => Ok(offset),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => self.length(),
            Err(e) => Err(Error::Io {
                path: self.path.to_path_buf(),
                op: "cannot seek to a hole",
                offset,
                source: e.into(),
            }),
        }
    }

    /// Punch out the whole filesystem blocks of `[start, end)` that hold
    /// only zeros (they read the same as a hole). Returns the bytes punched;
    /// 0 where the filesystem cannot punch holes.
    pub fn punch_zeros(&self, start: u64, end: u64) -> Result<u64> {
        const CHUNK: u64 = 1 << 20;
        let mut buf = vec![0u8; CHUNK as usize];
        let mut punched = 0;
        let mut at = align_up(start, HOLE_BLOCK);
        let end = align_down(end, HOLE_BLOCK);
        while at < end {
            // Holes are skipped without reading.
            let Some(data) = self.next_data(at)? else {
                break;
            };
            if data >= end {
                break;
            }
            at = align_down(data.max(at), HOLE_BLOCK);
            let n = (end - at).min(CHUNK);
            let chunk = &mut buf[..n as usize];
            self.read_zero_filled(chunk, at)?;
            let mut run: Option<u64> = None;
            for (i, block) in chunk.chunks(HOLE_BLOCK as usize).enumerate() {
                let here = at + i as u64 * HOLE_BLOCK;
                match (is_zero(block), run) {
                    (true, None) => run = Some(here),
                    (false, Some(from)) => {
                        if !self.punch_hole(from, here - from)? {
                            return Ok(punched);
                        }
                        punched += here - from;
                        run = None;
                    }
                    _ => {}
                }
            }
            if let Some(from) = run {
                if !self.punch_hole(from, at + n - from)? {
                    return Ok(punched);
                }
                punched += at + n - from;
            }
            at += n;
        }
        Ok(punched)
    }

    /// True when no whole filesystem block of `[offset, offset + len)`
    /// holds data: all the space there is that [`ImageFile::punch_hole`]
    /// could give back is given back.
    pub fn blocks_are_holes(&self, offset: u64, len: u64) -> Result<bool> {
        let (start, end) = whole_blocks(offset, len);
        Ok(start >= end || self.is_hole(start, end - start)?)
    }

    /// True when `[offset, offset + len)` holds no data (a hole, or past
    /// the end of the file), found without reading it.
    pub fn is_hole(&self, offset: u64, len: u64) -> Result<bool> {
        Ok(match self.next_data(offset)? {
            None => true,
            Some(pos) => pos >= offset + len,
        })
    }
}

impl Drop for ImageFile {
    fn drop(&mut self) {
        if self.reader {
            let _ = set_lock_range(&self.file, libc::F_UNLCK, QEMU_NO_WRITERS_BYTE, 1);
            let mut reading = reading();
            if let Some(i) = reading.iter().position(|&id| id == self.id) {
                reading.swap_remove(i);
            }
        }
        if self.writer {
            // Unlocked now, not when the last copy of the descriptor goes:
            // a child another thread of this process forks keeps a copy
            // until it execs, and would hold the lock for that long.
            let _ = set_lock(&self.file, libc::F_UNLCK);
            let mut writing = writing();
            if let Some(i) = writing.iter().position(|&id| id == self.id) {
                writing.swap_remove(i);
            }
        }
    }
}

/// Lock all of `file` for writing (`F_OFD_SETLK`), failing at once when
/// another open file description holds a conflicting lock.
fn set_write_lock(file: &File) -> io::Result<()> {
    set_lock(file, libc::F_WRLCK)
}

/// Set an open-file-description lock of `kind` (`F_WRLCK`, `F_UNLCK`) on
/// all of `file`, without waiting.
fn set_lock(file: &File, kind: libc::c_int) -> io::Result<()> {
    // l_start = l_len = 0: the whole file, however it grows.
    set_lock_range(file, kind, 0, 0)
}

/// Set an open-file-description lock of `kind` on `len` bytes of `file`
/// from `start` (0: to the end, however it grows), without waiting.
#[allow(unsafe_code)]
fn set_lock_range(file: &File, kind: libc::c_int, start: u64, len: u64) -> io::Result<()> {
    // SAFETY: `flock` is a plain C struct of integers; all zeros is a
    // valid value of it (and l_pid must be 0 for OFD locks).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    // SAFETY: the descriptor is open for the whole call (we borrow `file`),
    // and `fl` is a valid `flock` that F_OFD_SETLK only reads.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True when another process holds a lock that would stop us from taking
/// a write lock on byte `at` of `file` (fcntl `F_OFD_GETLK`, which sees
/// both OFD locks, as QEMU takes, and POSIX record locks).
///
/// rustix's `fcntl_getlk` cannot be used: it panics on the process ID of
/// -1 that the kernel reports for OFD locks.
#[allow(unsafe_code)]
fn write_lock_held(file: &File, at: u64) -> io::Result<bool> {
    // SAFETY: `flock` is a plain C struct of integers; all zeros is a
    // valid value of it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = at as libc::off_t;
    fl.l_len = 1;
    // SAFETY: the descriptor is open for the whole call (we borrow `file`),
    // and `fl` is a valid, exclusively borrowed `flock` that F_OFD_GETLK
    // reads and overwrites in place.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment() {
        assert_eq!(align_up(0, 512), 0);
        assert_eq!(align_up(1, 512), 512);
        assert_eq!(align_up(512, 512), 512);
        assert_eq!(align_down(1023, 512), 512);
    }

    #[test]
    fn zero_detection() {
        let mut buf = vec![0u8; 4096 + 7];
        assert!(is_zero(&buf));
        for pos in [0, 63, 64, 4095, 4096 + 6] {
            buf[pos] = 1;
            assert!(!is_zero(&buf), "byte {pos}");
            buf[pos] = 0;
        }
        assert!(is_zero(&[]));
    }

    #[test]
    fn short_read_names_offset_and_zero_fill_pads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = ImageFile::create_new(&path).unwrap();
        f.write_all_at(b"abcd", 0).unwrap();
        let mut buf = [0xffu8; 8];
        let err = f.read_exact_at(&mut buf, 0).unwrap_err().to_string();
        assert!(err.contains("byte offset 4"), "{err}");
        f.read_zero_filled(&mut buf, 2).unwrap();
        assert_eq!(&buf, b"cd\0\0\0\0\0\0");
    }

    #[test]
    fn create_new_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"keep").unwrap();
        assert!(matches!(
            ImageFile::create_new(&path),
            Err(Error::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    #[test]
    fn our_own_writer_is_no_stranger_but_writes_through_one_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"data").unwrap();
        let writer = ImageFile::open(&path, Access::Write).unwrap();
        // A reader in this process is not refused by our own lock, and
        // closing it leaves the writer's lock in place.
        let reader = ImageFile::open(&path, Access::Read).unwrap();
        drop(reader);
        assert!(write_lock_held(
            &ImageFile::open(&path, Access::ReadShared).unwrap().file,
            101
        )
        .unwrap());
        // A second writable handle is refused, by another name too.
        let link = dir.path().join("g");
        std::fs::hard_link(&path, &link).unwrap();
        let err = ImageFile::open(&link, Access::Write)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already open for writing"), "{err}");
        drop(writer);
        // Once the writer is gone, the file can be written again.
        ImageFile::open(&path, Access::Write).unwrap();
    }

    #[test]
    fn holes_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = ImageFile::create_new(&path).unwrap();
        f.set_len(16 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 8 << 20).unwrap();
        assert!(f.is_hole(0, 4 << 20).unwrap());
        assert!(!f.is_hole(0, 16 << 20).unwrap());
        assert!(f.is_hole(12 << 20, 4 << 20).unwrap());
    }
}
