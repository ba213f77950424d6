//! Finding a differencing disk's parent: the platform locators (W2ru:
//! relative Windows path, W2ku: absolute Windows path, both UTF-16LE; MacX:
//! UTF-8 file URL) and, last, the parent name in the dynamic header,
//! looked for beside the child.

use std::path::{Path, PathBuf};

use super::dyn_header::{DynamicHeader, ParentLocator};
use super::footer::vhd_time;
use crate::chain;
use crate::error::{Error, Result};
use crate::io::ImageFile;

/// Longest locator payload vimg reads.
const MAX_LOCATOR: u32 = 64 << 10;

/// Encode a path for a W2ru/W2ku locator: UTF-16LE with backslashes.
pub fn encode_windows_path(path: &str) -> Vec<u8> {
    path.replace('/', "\\")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// Encode a name for the header's parent-name field: UTF-16BE, at most
/// 255 characters, NUL padded.
pub fn encode_parent_name(name: &str) -> [u8; 512] {
    let mut out = [0u8; 512];
    for (i, unit) in name.encode_utf16().take(255).enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&unit.to_be_bytes());
    }
    out
}

/// The header's parent name, decoded.
pub fn parent_name(header: &DynamicHeader) -> String {
    let units: Vec<u16> = header
        .parent_name
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// The path a locator holds, as a string; `None` when unreadable.
fn read_locator(file: &ImageFile, loc: &ParentLocator) -> Option<String> {
    read_payload(file, loc).ok()
}

/// True for the platform codes vimg reads (W2ru, W2ku, MacX).
pub fn known_code(code: &[u8; 4]) -> bool {
    matches!(code, b"W2ru" | b"W2ku" | b"MacX")
}

/// The path a locator holds, or why it cannot be read (out of the file,
/// too long, not in the encoding its platform code says, empty).
pub fn read_payload(file: &ImageFile, loc: &ParentLocator) -> Result<String, String> {
    let len = loc.data_length;
    if len == 0 || len > MAX_LOCATOR {
        return Err(format!(
            "its length {len} is not between 1 and {MAX_LOCATOR} bytes"
        ));
    }
    let file_len = file.length().map_err(|e| e.to_string())?;
    let end = loc.data_offset.checked_add(len as u64);
    if end.is_none_or(|end| end > file_len) {
        return Err(format!(
            "its {len} bytes at byte {} run past the end of the {file_len}-byte file",
            loc.data_offset
        ));
    }
    let mut data = vec![0u8; len as usize];
    file.read_exact_at(&mut data, loc.data_offset)
        .map_err(|e| e.to_string())?;
    let text = match &loc.code {
        b"W2ru" | b"W2ku" => {
            if !data.len().is_multiple_of(2) {
                return Err(format!("{len} bytes cannot be UTF-16"));
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            String::from_utf16(&units).map_err(|_| "it is not valid UTF-16LE".to_string())?
        }
        b"MacX" => {
            let s = String::from_utf8(data).map_err(|_| "it is not valid UTF-8".to_string())?;
            let s = s.trim_end_matches('\0');
            s.strip_prefix("file://").unwrap_or(s).to_string()
        }
        code => {
            return Err(format!(
                "its platform code {:?} is not one vimg reads",
                String::from_utf8_lossy(code)
            ))
        }
    };
    match text.is_empty() {
        true => Err("it holds an empty path".to_string()),
        false => Ok(text),
    }
}

/// The last component of a Windows or Unix path, for comparing the name a
/// locator holds with the header's parent name.
pub fn base_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or("")
}

/// What a differencing disk records about its parent.
pub struct ParentRecord {
    pub uuid: [u8; 16],
    pub timestamp: u32,
    /// UTF-16BE, NUL padded.
    pub name: [u8; 512],
    /// Locator codes and payloads, in slot order.
    pub locators: Vec<([u8; 4], Vec<u8>)>,
}

impl ParentRecord {
    /// What a child records about the parent with unique ID `uuid`,
    /// stored at `path` and named `name` relative to the child: the UUID
    /// and the file's modification time, the name, and the same relative
    /// path in both Windows locators (so that either can stand in for the
    /// other, and the pair still works when moved together).
    pub fn new(uuid: [u8; 16], path: &Path, name: &str) -> Result<ParentRecord> {
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| Error::file(path, "cannot stat", e))?;
        let windows = name.replace('/', "\\");
        let relative = if windows.starts_with('\\') || windows.starts_with("..") {
            windows.clone()
        } else {
            format!(".\\{windows}")
        };
        Ok(ParentRecord {
            uuid,
            timestamp: vhd_time(mtime),
            name: encode_parent_name(&windows),
            locators: vec![
                (*b"W2ru", encode_windows_path(&relative)),
                (*b"W2ku", encode_windows_path(&relative)),
            ],
        })
    }
}

/// Where the parent was found, how, and the name the child records there.
pub struct Found {
    pub path: PathBuf,
    pub via: &'static str,
    pub recorded: String,
}

/// Look for the parent of the differencing disk at `child`: the relative
/// locator, then the absolute one, then the header's parent name beside
/// the child. The first that names an existing file wins.
pub fn find_parent(file: &ImageFile, child: &Path, header: &DynamicHeader) -> Result<Found> {
    let mut tried = Vec::new();
    for (code, via) in [
        (b"W2ru", "relative locator (W2ru)"),
        (b"W2ku", "absolute locator (W2ku)"),
        (b"MacX", "Mac locator (MacX)"),
    ] {
        for loc in header.locators.iter().filter(|l| &l.code == code) {
            let Some(stored) = read_locator(file, loc) else {
                continue;
            };
            let path = chain::parent_path(child, &stored);
            if path.is_file() {
                return Ok(Found {
                    path,
                    via,
                    recorded: stored,
                });
            }
            tried.push(stored);
        }
    }
    let name = parent_name(header);
    let base = base_name(&name);
    if !base.is_empty() {
        let path = chain::parent_path(child, base);
        if path.is_file() {
            return Ok(Found {
                path,
                via: "parent name beside the child",
                recorded: name,
            });
        }
        tried.push(name.clone());
    }
    Err(Error::MissingParent {
        path: child.to_path_buf(),
        detail: format!(
            "cannot find the parent disk (tried: {})",
            if tried.is_empty() {
                "no locator or parent name is recorded".to_string()
            } else {
                tried.join(", ")
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_encode() {
        assert_eq!(encode_windows_path(".\\a"), b".\0\\\0a\0");
        assert_eq!(encode_windows_path("../b"), b".\0.\0\\\0b\0");
    }

    #[test]
    fn parent_name_round_trips() {
        let mut h = DynamicHeader::new(1536, 1, 2 << 20);
        h.parent_name = encode_parent_name("C:\\vms\\base.vhd");
        assert_eq!(parent_name(&h), "C:\\vms\\base.vhd");
    }
}
