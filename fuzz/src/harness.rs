//! Turning one fuzz input into files, shared by the fuzz targets and the
//! regression replay (`tests/it/fuzz_replay.rs` includes this file with
//! `#[path]`): splitting an input at its separators, the extent and parent
//! file names it carries, writing them into a directory, and repairing VHD
//! checksums. It uses neither libFuzzer nor vimg, so the test binary can
//! build it as it is.

use std::fs;
use std::path::{Path, PathBuf};

/// Separator between the files that follow a text descriptor in an input:
/// `descriptor text \0 extent-1 data [SEP extent-2 data ...]`.
pub const EXTENT_SEP: &[u8] = b"\0--extent--\0";

/// Separator between an image and its parent's file (see [`materialize`]).
pub const PARENT_SEP: &[u8] = b"\0--parent--\0";

/// A file name a descriptor may name that the harness is willing to create.
fn simple_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
}

/// The extent file names in a text descriptor (quoted or bare 4th word of
/// lines starting RW / RDONLY / NOACCESS), in order.
pub fn extent_names(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        if !matches!(words.next(), Some("RW" | "RDONLY" | "NOACCESS")) {
            continue;
        }
        let _sectors = words.next();
        let _kind = words.next();
        let rest: Vec<&str> = words.collect();
        let rest = rest.join(" ");
        let name = if let Some(q) = rest.strip_prefix('"') {
            q.split('"').next().unwrap_or("").to_string()
        } else {
            rest.split_whitespace().next().unwrap_or("").to_string()
        };
        if simple_name(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The file name a differencing VHD's parent has: the last component of
/// its parent name, or else of the first parent locator that decodes.
fn vhd_parent_name(d: &[u8]) -> Option<String> {
    let len = d.len();
    let footer = if len >= 512 && d[len - 512..].starts_with(b"conectix") {
        &d[len - 512..]
    } else if len >= 512 && d.starts_with(b"conectix") {
        &d[..512]
    } else {
        return None;
    };
    if be32(footer, 60)? != 4 {
        return None;
    }
    let at = usize::try_from(be64(footer, 16)).ok()?;
    let h = d.get(at..at.checked_add(1024)?)?;
    if !h.starts_with(b"cxsparse") {
        return None;
    }
    let utf16 = |b: &[u8], big: bool| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if big {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    };
    let mut candidates = vec![utf16(&h[64..576], true)];
    for k in 0..8 {
        let e = &h[576 + 24 * k..600 + 24 * k];
        let n = be32(e, 8)? as usize;
        let Ok(off) = usize::try_from(be64(e, 16)) else {
            continue;
        };
        let Some(raw) = off.checked_add(n).and_then(|end| d.get(off..end)) else {
            continue;
        };
        match &e[..4] {
            b"W2ru" | b"W2ku" => candidates.push(utf16(raw, false)),
            b"MacX" => {
                let t = String::from_utf8_lossy(raw);
                let t = t.trim_end_matches('\0');
                candidates.push(t.strip_prefix("file://").unwrap_or(t).to_string());
            }
            _ => {}
        }
    }
    candidates.into_iter().find_map(|c| {
        let base = c.rsplit(['\\', '/']).next()?.to_string();
        simple_name(&base).then_some(base)
    })
}

/// The file name an image's parent has: a VMDK's `parentFileNameHint` (in
/// a text descriptor or an embedded one, first 64 KiB) or a differencing
/// VHD's parent name or locators, if it is a plain name.
pub fn parent_hint(data: &[u8]) -> Option<String> {
    if let Some(name) = vhd_parent_name(data) {
        return Some(name);
    }
    const KEY: &[u8] = b"parentFileNameHint";
    let head = &data[..data.len().min(64 << 10)];
    let at = head.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = &head[at + KEY.len()..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..end]);
    let (_, value) = line.split_once('=')?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    simple_name(value).then(|| value.to_string())
}

/// Split an input at [`PARENT_SEP`]: the image, and its parent's file.
pub fn split_parent(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.windows(PARENT_SEP.len()).position(|w| w == PARENT_SEP) {
        Some(p) => (&data[..p], Some(&data[p + PARENT_SEP.len()..])),
        None => (data, None),
    }
}

/// Write `data` as `dir/main`; when it is a text descriptor (no sparse
/// magic) followed by a NUL, also write the files it names from what follows
/// the NUL (split at [`EXTENT_SEP`]; with fewer pieces than names the last
/// piece is reused). Names in `reserved` (the image's own names) are skipped.
///
/// When the input holds [`PARENT_SEP`], what follows it is written as the
/// file the image's `parentFileNameHint` names (a VMDK delta's parent), and
/// only what precedes it is the image.
pub fn materialize(dir: &Path, main: &str, reserved: &[&str], data: &[u8]) -> PathBuf {
    let path = dir.join(main);
    let (data, parent) = split_parent(data);
    fs::write(&path, data).expect("cannot write the fuzz input");
    if let (Some(parent), Some(hint)) = (parent, parent_hint(data)) {
        if !reserved.contains(&hint.as_str()) && hint != main {
            let _ = fs::write(dir.join(hint), parent);
        }
    }
    if data.starts_with(b"KDMV") || data.starts_with(b"COWD") {
        return path;
    }
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return path;
    };
    let names = extent_names(&data[..nul]);
    if names.is_empty() {
        return path;
    }
    let payload = &data[nul + 1..];
    let pieces = split(payload, EXTENT_SEP);
    for (i, name) in names.iter().enumerate().take(16) {
        if reserved.contains(&name.as_str()) || name == main {
            continue;
        }
        let piece = pieces[i.min(pieces.len() - 1)];
        let _ = fs::write(dir.join(name), piece);
    }
    path
}

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(p) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..p]);
        rest = &rest[p + sep.len()..];
    }
    out.push(rest);
    out
}

/// A VHD footer's or dynamic header's checksum: the one's complement of the
/// byte sum, with the 4-byte checksum field at `field` counted as zero.
pub fn vhd_checksum(buf: &[u8], field: usize) -> u32 {
    let sum = buf
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(b as u32));
    !sum
}

/// Recompute the checksums of the VHD footers (at 0 and at the end) and of
/// the dynamic header they point at, in the image and in the parent that
/// follows [`PARENT_SEP`]. `None` when nothing changed.
pub fn fix_vhd_checksums(data: &[u8]) -> Option<Vec<u8>> {
    let (image, parent) = split_parent(data);
    let Some(parent) = parent else {
        return fix_one_vhd(image);
    };
    let a = fix_one_vhd(image);
    let b = fix_one_vhd(parent);
    if a.is_none() && b.is_none() {
        return None;
    }
    let mut out = a.unwrap_or_else(|| image.to_vec());
    out.extend_from_slice(PARENT_SEP);
    out.extend_from_slice(&b.unwrap_or_else(|| parent.to_vec()));
    Some(out)
}

fn fix_one_vhd(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.to_vec();
    let len = out.len();
    let mut footers = Vec::new();
    if len >= 512 && out[len - 512..].starts_with(b"conectix") {
        footers.push(len - 512);
    }
    if len >= 512 && out.starts_with(b"conectix") && len != 512 {
        footers.push(0);
    }
    if footers.is_empty() {
        return None;
    }
    let mut header_at = None;
    for &at in &footers {
        let sum = vhd_checksum(&out[at..at + 512], 64);
        out[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
        if header_at.is_none() {
            let off = u64::from_be_bytes(out[at + 16..at + 24].try_into().unwrap());
            if off.checked_add(1024).is_some_and(|end| end <= len as u64) {
                let off = off as usize;
                if out[off..].starts_with(b"cxsparse") {
                    header_at = Some(off);
                }
            }
        }
    }
    if let Some(at) = header_at {
        let sum = vhd_checksum(&out[at..at + 1024], 36);
        out[at + 36..at + 40].copy_from_slice(&sum.to_be_bytes());
        // The header change may have moved a footer's bytes when they
        // overlap; settle the footers again.
        for &at in &footers {
            let sum = vhd_checksum(&out[at..at + 512], 64);
            out[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
        }
    }
    (out != data).then_some(out)
}

fn be32(d: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_be_bytes(
        d.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
}

/// The extension that fits the input's content.
pub fn extension_for(data: &[u8]) -> &'static str {
    let data = split_parent(data).0;
    let head = &data[..data.len().min(4096)];
    if head.starts_with(b"KDMV") || head.starts_with(b"COWD") {
        return "vmdk";
    }
    if head.starts_with(b"conectix")
        || (data.len() >= 512 && data[data.len() - 512..].starts_with(b"conectix"))
    {
        return "vhd";
    }
    let text =
        String::from_utf8_lossy(&head[..head.iter().position(|&b| b == 0).unwrap_or(head.len())]);
    if text.contains("createType") || text.contains("# Disk DescriptorFile") {
        return "vmdk";
    }
    "img"
}
