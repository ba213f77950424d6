//! The peers as judges: qemu-img (info, compare, check, convert), qemu-io
//! for writes, libvmdk (pyvmdk) and libvhdi (pyvhdi) reads, and content
//! hashes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{python, qemu_img, Cmd};

/// The name qemu uses for a format (`vhd` is `vpc`).
pub fn qemu_fmt(fmt: &str) -> &str {
    match fmt {
        "vhd" => "vpc",
        other => other,
    }
}

/// Run qemu-io commands (`-c` each) on an image of format `fmt`; each must
/// succeed, silently on stderr.
pub fn qemu_io<S: AsRef<str>>(fmt: &str, path: &Path, cmds: &[S]) {
    let mut io = Cmd::new("qemu-io").arg("-f").arg(qemu_fmt(fmt));
    for c in cmds {
        io = io.arg("-c").arg(c.as_ref());
    }
    let out = io.arg(path).run();
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    assert!(
        out.status.success() && stderr.trim().is_empty() && !stdout.contains("failed"),
        "{out:?}"
    );
}

/// `qemu-img info --output json`, with the format given when `fmt` is.
pub fn qemu_info(fmt: Option<&str>, path: &Path) -> Value {
    qemu_img!("info --output json")
        .opt("-f", fmt.map(qemu_fmt))
        .arg(path)
        .json()
}

/// `qemu-img compare -f fa a -F fb b` must report the images identical.
/// (Without -s, a size difference is allowed when the longer image reads
/// as zeros past the shorter one's end.)
pub fn assert_identical(fa: &str, a: &Path, fb: &str, b: &Path) {
    let out = qemu_img!("compare -f", qemu_fmt(fa), "-F", qemu_fmt(fb), a, b).run();
    assert!(
        out.code() == Some(0),
        "qemu-img says the images differ: {out:?}"
    );
    assert!(
        out.stdout_text().contains("Images are identical"),
        "unexpected qemu-img compare output: {}",
        out.stdout_text()
    );
}

/// `qemu-img check` of a VMDK must find no errors.
pub fn assert_qemu_check(path: &Path) {
    let out = qemu_img!("check -f vmdk", path).run();
    let text = out.stdout_text();
    assert!(
        out.status.success() && text.contains("No errors were found"),
        "{out:?}"
    );
}

/// qemu-img's `create-type` of a VMDK.
pub fn qemu_create_type(path: &Path) -> String {
    let info = qemu_info(Some("vmdk"), path);
    info["format-specific"]["data"]["create-type"]
        .as_str()
        .unwrap_or_else(|| panic!("no create-type in {info:#}"))
        .to_string()
}

/// `qemu-img convert -f vmdk -O raw image out`, returning `out`.
pub fn qemu_to_raw(image: &Path, out: &Path) -> PathBuf {
    qemu_img!("convert -f vmdk -O raw", image, out).ok();
    out.to_path_buf()
}

/// sha256 of a file's content, feeding holes as zeros without reading them.
const PY_SHA256: &str = r#"
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
zeros = memoryview(bytes(4 << 20))
h = hashlib.sha256()
pos = 0
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        data = size
    while pos < data:
        n = min(len(zeros), data - pos)
        h.update(zeros[:n])
        pos += n
    if pos >= size:
        break
    hole = os.lseek(fd, pos, os.SEEK_HOLE)
    while pos < hole:
        b = os.pread(fd, min(4 << 20, hole - pos), pos)
        h.update(b)
        pos += len(b)
print(h.hexdigest())
"#;

/// The sha256 of a file's content, as hex.
pub fn sha256(path: &Path) -> String {
    python!(PY_SHA256, path).ok().trim().to_string()
}

/// Turn `(offset, length)` ranges into the scripts' `o:l,o:l` argument
/// (`all` when there are none).
fn ranges_arg(ranges: &[(u64, u64)]) -> String {
    if ranges.is_empty() {
        return "all".to_string();
    }
    ranges
        .iter()
        .map(|(o, l)| format!("{o}:{l}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// libvmdk compares an image with a raw file, all of it or only the given
/// byte ranges (past the raw file's end it must read zeros). Prints
/// `OK <media size>` or what differs.
const PY_VMDK_COMPARE: &str = r#"
import sys, pyvmdk
image, raw, ranges = sys.argv[1], sys.argv[2], sys.argv[3]
h = pyvmdk.handle()
h.open(image)
h.open_extent_data_files()
size = h.get_media_size()
src = open(raw, "rb")
if ranges == "all":
    todo = [(0, size)]
else:
    todo = [tuple(int(x) for x in r.split(":")) for r in ranges.split(",")]
bad = None
for off, length in todo:
    at = off
    while at < off + length and bad is None:
        n = min(8 << 20, off + length - at)
        got = h.read_buffer_at_offset(n, at)
        src.seek(at)
        want = src.read(n)
        want = want + bytes(n - len(want))
        if len(got) != n:
            bad = "SHORT read at %d: %d of %d" % (at, len(got), n)
        elif got != want:
            i = next(i for i in range(n) if got[i] != want[i])
            bad = "DIFF at %d: %d vs %d" % (at + i, got[i], want[i])
        at += n
print(bad or "OK %d" % size)
"#;

/// libvmdk reads `image` as the bytes of `raw` (all of it when `ranges` is
/// empty); its media size must be `size`.
pub fn assert_pyvmdk_reads(image: &Path, raw: &Path, size: u64, ranges: &[(u64, u64)]) {
    let out = python!(PY_VMDK_COMPARE, image, raw, ranges_arg(ranges)).ok();
    assert_eq!(
        out.trim(),
        format!("OK {size}"),
        "pyvmdk reading {}",
        image.display()
    );
}

/// libvhdi reads an image (with its parent chain set) and compares it
/// with a raw file of exactly its media size, all of it or only the given
/// byte ranges. Prints `OK <media size>` or what differs.
const PY_VHD_COMPARE: &str = r#"
import os, sys, pyvhdi
image, expected, ranges = sys.argv[1], sys.argv[2], sys.argv[3]
chain = [image] + sys.argv[4:]
handles = []
for p in chain:
    h = pyvhdi.file()
    h.open(p)
    handles.append(h)
for i in reversed(range(len(handles) - 1)):
    handles[i].set_parent(handles[i + 1])
f = handles[0]
size = f.get_media_size()
want = os.path.getsize(expected)
if size != want:
    print("SIZE", size, "expected", want)
    sys.exit(0)
if ranges == "all":
    ranges = [(off, min(4 << 20, size - off)) for off in range(0, size, 4 << 20)]
else:
    ranges = [tuple(int(x) for x in r.split(":")) for r in ranges.split(",")]
src = open(expected, "rb")
for off, n in ranges:
    n = min(n, size - off)
    a = f.read_buffer_at_offset(n, off)
    src.seek(off)
    b = src.read(n)
    if a != b:
        if len(a) != len(b):
            print("SHORT read at", off, len(a))
        else:
            i = next(i for i in range(n) if a[i] != b[i])
            print("DIFF at", off + i, a[i], b[i])
        sys.exit(0)
print("OK", size)
"#;

/// libvhdi reads `image` (with `parents`, nearest first, set as its parent
/// chain) as exactly the bytes of the raw file `expected`: all of them, or
/// only the given `(offset, length)` ranges (libvhdi is slow on big
/// blocks; the size is checked either way).
pub fn assert_pyvhdi_reads(
    image: &Path,
    parents: &[&Path],
    expected: &Path,
    ranges: &[(u64, u64)],
) {
    let out = python!(PY_VHD_COMPARE, image, expected, ranges_arg(ranges))
        .args(parents)
        .ok();
    assert_eq!(
        out.trim(),
        format!("OK {}", super::file_len(expected)),
        "libvhdi's reading of {} (parents {:?}) differs from {}",
        image.display(),
        parents,
        expected.display()
    );
}

/// pyvhdi's media size, disk type code (2 fixed, 3 dynamic, 4
/// differencing), identifier and parent identifier (empty without one).
pub fn pyvhdi_describe(image: &Path) -> (u64, u32, String, String) {
    let out = python!(
        "import sys, pyvhdi\nf = pyvhdi.file()\nf.open(sys.argv[1])\nprint(f.get_media_size(), f.get_disk_type(), f.get_identifier(), f.get_parent_identifier() if f.get_disk_type() == 4 else '-')",
        image
    )
    .ok();
    let parts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "pyvhdi: {out}");
    (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2].to_string(),
        parts[3].trim_matches('-').to_string(),
    )
}
