//! The VMDK text descriptor: header keys (version, CID, parentCID,
//! createType, parentFileNameHint), extent lines and the disk database.
//!
//! ```text
//! # Disk DescriptorFile
//! version=1
//! CID=fffffffe
//! parentCID=ffffffff
//! createType="monolithicSparse"
//!
//! # Extent description
//! RW 20971520 SPARSE "disk.vmdk"
//!
//! # The Disk Data Base
//! #DDB
//! ddb.adapterType = "ide"
//! ```
//!
//! Both header spellings are read; comments are skipped; file names are
//! quoted and may hold spaces; unknown keys are kept and written back.

/// Largest descriptor vimg reads.
pub const MAX_DESCRIPTOR: u64 = 1 << 20;

/// How an extent may be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentAccess {
    ReadWrite,
    ReadOnly,
    NoAccess,
}

impl ExtentAccess {
    fn name(self) -> &'static str {
        match self {
            ExtentAccess::ReadWrite => "RW",
            ExtentAccess::ReadOnly => "RDONLY",
            ExtentAccess::NoAccess => "NOACCESS",
        }
    }
}

/// One extent line: `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: ExtentAccess,
    pub sectors: u64,
    /// The type as written: FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, ...
    pub kind: String,
    pub file: Option<String>,
    /// Start of the extent's data in its file, in sectors (flat kinds).
    pub offset: u64,
}

impl ExtentLine {
    /// The line as VMware writes it (without its line end).
    pub fn encode(&self) -> String {
        let mut s = format!("{} {} {}", self.access.name(), self.sectors, self.kind);
        if let Some(file) = &self.file {
            s += &format!(" \"{file}\"");
            if self.offset != 0 || self.kind.contains("FLAT") || self.kind == "VMFS" {
                s += &format!(" {}", self.offset);
            }
        }
        s
    }
}

/// A parsed descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub version: u32,
    pub cid: u32,
    pub parent_cid: u32,
    pub create_type: String,
    pub parent_hint: Option<String>,
    /// Header keys vimg does not interpret, in order (`encoding`, ...).
    pub other: Vec<(String, String)>,
    pub extents: Vec<ExtentLine>,
    /// Disk database entries, in order, values without quotes.
    pub ddb: Vec<(String, String)>,
}

/// `text` (a descriptor) with the lines `desc` may have changed set from
/// it: `CID`, `ddb.longContentID`, the parent link (`parentCID`,
/// `parentFileNameHint`, added after `parentCID` when missing, dropped when
/// there is no parent), DDB values and the extent lines (a changed one
/// rewritten, dropped ones left out, new ones after the last). Every other
/// byte stays as it was: the writer's layout and comments are kept. Falls
/// back to `None` when the text has no CID line or no extent line to
/// change.
pub fn patch(text: &str, desc: &Descriptor) -> Option<String> {
    let long_id = desc.ddb("ddb.longContentID");
    let mut out = String::with_capacity(text.len() + 64);
    let (mut found, mut hint_written) = (false, false);
    let is_extent = |body: &str| {
        matches!(
            body.split_whitespace().next(),
            Some("RW" | "RDONLY" | "NOACCESS")
        )
    };
    let old_extents = text.split_inclusive('\n').filter(|l| is_extent(l)).count();
    if old_extents == 0 && !desc.extents.is_empty() {
        return None;
    }
    let mut extent = 0;
    let mut ddb_seen: Vec<String> = Vec::new();
    let mut newline = "\n";
    let hint_line = |ending: &str| {
        desc.parent_hint
            .as_ref()
            .map(|h| format!("parentFileNameHint=\"{h}\"{ending}"))
    };
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        if !ending.is_empty() {
            newline = ending;
        }
        if is_extent(body) {
            if let Some(new) = desc.extents.get(extent) {
                match parse_extent(body) {
                    Ok(old) if old == *new => out += line,
                    _ => out += &format!("{}{newline}", new.encode()),
                }
            }
            extent += 1;
            if extent == old_extents {
                for new in desc.extents.iter().skip(extent) {
                    out += &format!("{}{newline}", new.encode());
                }
            }
            continue;
        }
        let key = body.split('=').next().unwrap_or("").trim();
        match key {
            "CID" => {
                out += &format!("CID={:08x}{ending}", desc.cid);
                found = true;
            }
            "ddb.longContentID" if long_id.is_some() => {
                out += &format!("ddb.longContentID = \"{}\"{ending}", long_id.unwrap_or(""));
                ddb_seen.push(key.to_string());
            }
            "parentCID" => {
                out += &format!("parentCID={:08x}{ending}", desc.parent_cid);
                if !hint_written {
                    out += &hint_line(newline).unwrap_or_default();
                    hint_written = true;
                }
            }
            // Written after parentCID (or dropped).
            "parentFileNameHint" => {}
            // A DDB entry set to another value (amend).
            k if k.starts_with("ddb.") && desc.ddb(k).is_some_and(|v| line_value(body) != v) => {
                out += &format!("{k} = \"{}\"{ending}", desc.ddb(k).unwrap_or(""));
                ddb_seen.push(k.to_string());
            }
            k if k.starts_with("ddb.") => {
                ddb_seen.push(k.to_string());
                out += line;
            }
            _ => out += line,
        }
    }
    if !found || !hint_written && desc.parent_hint.is_some() {
        return None;
    }
    // DDB entries the text did not have, at its end.
    for (k, v) in desc.ddb.iter().filter(|(k, _)| !ddb_seen.contains(k)) {
        if !out.is_empty() && !out.ends_with('\n') {
            out += newline;
        }
        out += &format!("{k} = \"{v}\"{newline}");
    }
    Some(out)
}

/// The value of a `key = "value"` line, unquoted.
fn line_value(body: &str) -> &str {
    let value = body.split_once('=').map_or("", |(_, v)| v.trim());
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Windows-1252: Latin-1, but for 32 characters in 0x80..0x9f.
fn decode_windows_1252(bytes: &[u8]) -> String {
    const HIGH: [u16; 32] = [
        0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039,
        0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9f => char::from_u32(HIGH[(b - 0x80) as usize] as u32).unwrap_or('?'),
            _ => b as char,
        })
        .collect()
}

/// A fresh long content ID for `cid`: 24 random hex digits, then the CID.
pub fn long_content_id(cid: u32) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}{cid:08x}", &random[..24])
}

/// A line quoted in an error: at most 60 characters, control characters
/// escaped (a hostile descriptor must not write into the terminal, and no
/// more of a file is shown than it takes to find the line).
fn excerpt(line: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = line
        .chars()
        .take(MAX)
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    if line.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// Parent CID of a disk without a parent.
pub const NO_PARENT: u32 = 0xffff_ffff;

fn unquote(value: &str) -> &str {
    let v = value.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Split the first whitespace-separated word off `rest`.
fn next_word<'a>(rest: &mut &'a str) -> &'a str {
    let text = rest.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    *rest = text[end..].trim_start();
    &text[..end]
}

/// Parse `RW 2048 FLAT "name with spaces.vmdk" 0`.
fn parse_extent(line: &str) -> Result<ExtentLine, String> {
    let bad = |why: &str| format!("extent line '{}': {why}", excerpt(line));
    let mut rest = line.trim();
    let access = match next_word(&mut rest) {
        "RW" => ExtentAccess::ReadWrite,
        "RDONLY" => ExtentAccess::ReadOnly,
        "NOACCESS" => ExtentAccess::NoAccess,
        _ => return Err(bad("unknown access")),
    };
    let sectors: u64 = next_word(&mut rest).parse().map_err(|_| bad("bad size"))?;
    let kind = next_word(&mut rest).to_string();
    if kind.is_empty() {
        return Err(bad("no extent type"));
    }
    let mut file = None;
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or_else(|| bad("unterminated file name"))?;
        file = Some(quoted[..end].to_string());
        rest = quoted[end + 1..].trim_start();
    } else if !rest.is_empty() {
        let name = next_word(&mut rest);
        if name.contains('"') {
            return Err(bad("unbalanced quote in the file name"));
        }
        file = Some(name.to_string());
    }
    let offset = match rest.split_whitespace().next() {
        None => 0,
        Some(o) => o.parse().map_err(|_| bad("bad offset"))?,
    };
    Ok(ExtentLine {
        access,
        sectors,
        kind,
        file,
        offset,
    })
}

fn parse_cid(key: &str, value: &str) -> Result<u32, String> {
    u32::from_str_radix(value, 16).map_err(|_| format!("{key} '{value}' is not a hex number"))
}

impl Descriptor {
    /// Parse descriptor text (NUL padding after it is ignored). Text that
    /// is not UTF-8 is read as Windows-1252, which VMware writes on Windows
    /// (`encoding="windows-1252"`); it is written back as UTF-8.
    pub fn parse(text: &[u8]) -> Result<Descriptor, String> {
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let (text, recoded) = match std::str::from_utf8(&text[..end]) {
            Ok(t) => (t.to_string(), false),
            Err(_) => (decode_windows_1252(&text[..end]), true),
        };
        let mut d = Descriptor {
            version: 1,
            cid: 0,
            parent_cid: NO_PARENT,
            create_type: String::new(),
            parent_hint: None,
            other: Vec::new(),
            extents: Vec::new(),
            ddb: Vec::new(),
        };
        let mut seen_type = false;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or("");
            if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
                d.extents.push(parse_extent(line)?);
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!(
                    "line '{}' is neither key=value nor an extent",
                    excerpt(line)
                ));
            };
            let key = key.trim();
            let value = unquote(value);
            match key {
                "version" => {
                    d.version = value
                        .parse()
                        .map_err(|_| format!("version '{value}' is not a number"))?
                }
                "CID" => d.cid = parse_cid(key, value)?,
                "parentCID" => d.parent_cid = parse_cid(key, value)?,
                "createType" => {
                    d.create_type = value.to_string();
                    seen_type = true;
                }
                "parentFileNameHint" => d.parent_hint = Some(value.to_string()),
                _ if key.starts_with("ddb.") => d.ddb.push((key.to_string(), value.to_string())),
                _ => d.other.push((key.to_string(), value.to_string())),
            }
        }
        if !seen_type {
            return Err("no createType".into());
        }
        if recoded {
            d.other.retain(|(k, _)| k != "encoding");
            d.other.insert(0, ("encoding".into(), "UTF-8".into()));
        }
        Ok(d)
    }

    /// The descriptor as text, in the spelling VMware, VirtualBox and
    /// libvmdk all accept.
    pub fn encode(&self) -> String {
        let mut s = String::from("# Disk DescriptorFile\n");
        s += &format!("version={}\n", self.version);
        for (k, v) in &self.other {
            s += &format!("{k}=\"{v}\"\n");
        }
        s += &format!("CID={:08x}\n", self.cid);
        s += &format!("parentCID={:08x}\n", self.parent_cid);
        s += &format!("createType=\"{}\"\n", self.create_type);
        if let Some(hint) = &self.parent_hint {
            s += &format!("parentFileNameHint=\"{hint}\"\n");
        }
        s += "\n# Extent description\n";
        for e in &self.extents {
            s += &e.encode();
            s += "\n";
        }
        s += "\n# The Disk Data Base\n#DDB\n\n";
        for (k, v) in &self.ddb {
            s += &format!("{k} = \"{v}\"\n");
        }
        s
    }

    /// Give the disk a new content ID; the long content ID, which ends in
    /// it, follows.
    pub fn set_cid(&mut self, cid: u32) {
        self.cid = cid;
        if let Some((_, v)) = self.ddb.iter_mut().find(|(k, _)| k == "ddb.longContentID") {
            *v = long_content_id(cid);
        }
    }

    /// A disk database value.
    /// Set DDB entry `key` to `value` (added when missing).
    pub fn set_ddb(&mut self, key: &str, value: &str) {
        match self.ddb.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => self.ddb.push((key.to_string(), value.to_string())),
        }
    }

    pub fn ddb(&self, key: &str) -> Option<&str> {
        self.ddb
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMWARE: &str = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"windows-1252\"\r\nCID=6a9f2c6e\r\nparentCID=ffffffff\r\nisNativeSnapshot=\"no\"\r\ncreateType=\"twoGbMaxExtentSparse\"\r\n\r\n# Extent description\r\nRW 4192256 SPARSE \"My Disk-s001.vmdk\"\r\nRW 2048 FLAT \"flat file.vmdk\" 128\r\nRDONLY 100 ZERO\r\n\r\n# The Disk Data Base \r\n#DDB\r\n\r\nddb.adapterType = \"lsilogic\"\r\nddb.geometry.cylinders = \"261\"\r\nddb.toolsInstallType = \"4\"\r\n";

    #[test]
    fn parses_vmware_descriptor_with_spaces_and_crlf() {
        let d = Descriptor::parse(VMWARE.as_bytes()).unwrap();
        assert_eq!(d.cid, 0x6a9f_2c6e);
        assert_eq!(d.parent_cid, NO_PARENT);
        assert_eq!(d.create_type, "twoGbMaxExtentSparse");
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[0].file.as_deref(), Some("My Disk-s001.vmdk"));
        assert_eq!(d.extents[0].sectors, 4_192_256);
        assert_eq!(d.extents[1].kind, "FLAT");
        assert_eq!(d.extents[1].offset, 128);
        assert_eq!(d.extents[2].access, ExtentAccess::ReadOnly);
        assert_eq!(d.extents[2].file, None);
        assert_eq!(d.ddb("ddb.adapterType"), Some("lsilogic"));
        assert_eq!(d.ddb("ddb.toolsInstallType"), Some("4"));
    }

    #[test]
    fn encodes_and_reparses_to_the_same() {
        let d = Descriptor::parse(VMWARE.as_bytes()).unwrap();
        let text = d.encode();
        assert!(text.starts_with("# Disk DescriptorFile\n"));
        assert!(text.contains("RW 2048 FLAT \"flat file.vmdk\" 128\n"));
        assert!(text.contains("encoding=\"windows-1252\"\n"));
        assert_eq!(Descriptor::parse(text.as_bytes()).unwrap(), d);
    }

    #[test]
    fn qemu_spelling_and_nul_padding() {
        let text = b"# Disk Descriptor File\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 128 SPARSE \"x.vmdk\"\nddb.geometry.cylinders = \"0\"\n\0\0\0";
        let d = Descriptor::parse(text).unwrap();
        assert_eq!(d.cid, 0x1234_5678);
        assert_eq!(d.extents[0].file.as_deref(), Some("x.vmdk"));
    }

    #[test]
    fn windows_1252_text_is_read_and_rewritten_as_utf8() {
        let text = b"# Disk DescriptorFile\nversion=1\nencoding=\"windows-1252\"\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"R\xe9sum\xe9 \x80.vmdk\" 0\n";
        let d = Descriptor::parse(text).unwrap();
        assert_eq!(
            d.extents[0].file.as_deref(),
            Some("R\u{e9}sum\u{e9} \u{20ac}.vmdk")
        );
        assert!(d.encode().contains("encoding=\"UTF-8\""));
        assert!(!d.encode().contains("windows-1252"));
    }

    #[test]
    fn patching_extents_keeps_unchanged_lines_and_adds_and_drops_others() {
        let text = "CID=1\r\ncreateType=\"twoGbMaxExtentSparse\"\r\n# Extents\r\nRW  4192256 SPARSE \"a-s001.vmdk\"\r\nRW 100 SPARSE \"a-s002.vmdk\"\r\n\r\nddb.x = \"y\"\r\n";
        let mut d = Descriptor::parse(text.as_bytes()).unwrap();
        let mut added = d.extents[1].clone();
        added.file = Some("a-s003.vmdk".into());
        d.extents[1].sectors = 200;
        d.extents.push(added);
        let out = patch(text, &d).unwrap();
        assert_eq!(out, "CID=00000001\r\ncreateType=\"twoGbMaxExtentSparse\"\r\n# Extents\r\nRW  4192256 SPARSE \"a-s001.vmdk\"\r\nRW 200 SPARSE \"a-s002.vmdk\"\r\nRW 100 SPARSE \"a-s003.vmdk\"\r\n\r\nddb.x = \"y\"\r\n");
        d.extents.truncate(1);
        let out = patch(text, &d).unwrap();
        assert_eq!(out, "CID=00000001\r\ncreateType=\"twoGbMaxExtentSparse\"\r\n# Extents\r\nRW  4192256 SPARSE \"a-s001.vmdk\"\r\n\r\nddb.x = \"y\"\r\n");
    }

    #[test]
    fn patching_ids_keeps_everything_else() {
        let text = "# Disk DescriptorFile\r\nCID=1234\r\n# a comment\r\ncreateType=\"x\"\r\nddb.longContentID = \"x\"\r\nddb.foo = \"bar\"";
        let mut d = Descriptor::parse(text.as_bytes()).unwrap();
        d.cid = 0xabcdef01;
        d.ddb[0].1 = "0123456789abcdef01234567abcdef01".into();
        let out = patch(text, &d).unwrap();
        assert_eq!(out, "# Disk DescriptorFile\r\nCID=abcdef01\r\n# a comment\r\ncreateType=\"x\"\r\nddb.longContentID = \"0123456789abcdef01234567abcdef01\"\r\nddb.foo = \"bar\"");
        let d = Descriptor::parse(b"createType=\"x\"\n").unwrap();
        assert!(patch("createType=\"x\"\n", &d).is_none());
    }

    #[test]
    fn patching_the_parent_link_sets_adds_and_drops_the_hint() {
        let delta = "CID=1\r\nparentCID=2\r\ncreateType=\"monolithicSparse\"\r\nparentFileNameHint=\"old.vmdk\"\r\n# x\r\n";
        let mut d = Descriptor::parse(delta.as_bytes()).unwrap();
        d.parent_cid = 0xa;
        d.parent_hint = Some("../new base.vmdk".into());
        let out = patch(delta, &d).unwrap();
        assert_eq!(out, "CID=00000001\r\nparentCID=0000000a\r\nparentFileNameHint=\"../new base.vmdk\"\r\ncreateType=\"monolithicSparse\"\r\n# x\r\n");
        assert_eq!(Descriptor::parse(out.as_bytes()).unwrap(), d);
        // Flattened: no parent, no hint line.
        d.parent_cid = NO_PARENT;
        d.parent_hint = None;
        let out = patch(delta, &d).unwrap();
        assert_eq!(
            out,
            "CID=00000001\r\nparentCID=ffffffff\r\ncreateType=\"monolithicSparse\"\r\n# x\r\n"
        );
        // A base without a parentCID line cannot take a hint in place.
        let base = "CID=1\ncreateType=\"monolithicSparse\"\n";
        let mut d = Descriptor::parse(base.as_bytes()).unwrap();
        d.parent_hint = Some("b.vmdk".into());
        assert!(patch(base, &d).is_none());
    }

    #[test]
    fn bad_descriptors_say_why() {
        for (text, why) in [
            ("version=1\n", "createType"),
            ("createType=\"x\"\nRW abc SPARSE \"f\"\n", "bad size"),
            ("createType=\"x\"\nRW 1 SPARSE \"f\n", "unterminated"),
            ("createType=\"x\"\nRW 1 FLAT f\"x 0\n", "quote"),
            ("createType=\"x\"\nCID=zz\n", "hex"),
            ("createType=\"x\"\nwhat is this\n", "neither"),
            (
                "createType=\"x\"\nbell \x07\x1b[2J\n",
                "'bell \\u{7}\\u{1b}[2J'",
            ),
        ] {
            let err = Descriptor::parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        assert!(Descriptor::parse(&[0xff, 0xfe]).is_err());
        // A long line is cut.
        let long = format!("createType=\"x\"\n{}\n", "y".repeat(500));
        let err = Descriptor::parse(long.as_bytes()).unwrap_err();
        assert!(err.len() < 150 && err.contains('…'), "{err}");
    }

    #[test]
    fn patch_changes_ddb_values_in_place_and_adds_missing_ones_at_the_end() {
        let text = "# Disk DescriptorFile\r\nCID=12345678\r\nparentCID=ffffffff\r\ncreateType=\"monolithicSparse\"\r\n# comment\r\nddb.adapterType = \"ide\"\r\nddb.toolsVersion = \"1\"\r\n";
        let mut d = Descriptor::parse(text.as_bytes()).unwrap();
        d.set_ddb("ddb.adapterType", "lsilogic");
        d.set_ddb("ddb.virtualHWVersion", "13");
        let out = patch(text, &d).unwrap();
        assert_eq!(
            out,
            "# Disk DescriptorFile\r\nCID=12345678\r\nparentCID=ffffffff\r\ncreateType=\"monolithicSparse\"\r\n# comment\r\nddb.adapterType = \"lsilogic\"\r\nddb.toolsVersion = \"1\"\r\nddb.virtualHWVersion = \"13\"\r\n"
        );
    }
}
