//! The metadata walk of one sparse extent ([`SparseExtent::check`]) and
//! its repair ([`SparseExtent::repair`]): the header's own fields, the grain
//! directory against its redundant copy, every grain table entry, a
//! stream's markers, and the space nothing references.

use super::*;
use crate::image::check::{Clusters, Repair, Severity};
use crate::io::is_zero;
use crate::vmdk::header::{FLAG_NL_DETECT, FLAG_RGD, FLAG_ZERO_GRAIN};

/// The newline-detection bytes a sparse header holds at bytes 73 to 76.
const NEWLINES: &[u8; 4] = b"\n \r\n";
/// The header byte that says the extent was not closed cleanly.
const UNCLEAN_AT: u64 = 72;
/// Passes a grain repair makes before it leaves the rest to a rerun.
const MAX_PASSES: usize = 64;
/// Grains moved between two syncs when a compaction packs an extent.
const PACK_BATCH: usize = 256;

/// What a check of one extent counts beside its findings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// qemu-img's counts, in grains.
    pub clusters: Clusters,
    /// Where the bytes the extent uses end in its file.
    pub end: u64,
}

/// Byte ranges of the disk that grains `grains` of an extent starting at
/// disk byte `base` cover, as "bytes A to B, C to D" (ends exclusive).
fn virtual_ranges(base: u64, grains: &[u64], grain: u64, capacity: u64) -> String {
    let mut sorted = grains.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for g in sorted {
        let start = g * grain;
        let end = (start + grain).min(capacity);
        match ranges.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => ranges.push((start, end)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|(a, b)| format!("{} to {}", base + a, base + b))
        .collect();
    format!("bytes {} of the disk", parts.join(", "))
}

impl SparseExtent {
    /// Every inconsistency in the extent's metadata, as a fresh walk finds
    /// it (with what open set aside): the header's fields, the directories
    /// and their copies, every grain, a stream's markers, and the space of
    /// a grain or more that nothing references. Returns qemu-img's counts.
    pub fn check(&mut self, report: &mut Report) -> Result<Tally> {
        let before = report.findings.len();
        self.check_header(report)?;
        // `-r all` mends what concerns a grain table (its place in the
        // file); the header, descriptor and directories it leaves alone.
        let writable = self.check_writable().is_ok();
        let mended = |e: &Error, table: bool| {
            let finding = Finding::from_error(e);
            match writable && table {
                true => finding.repaired_by(Repair::All),
                false => finding,
            }
        };
        // What open set aside: tables past the end of the file.
        for e in &self.damage {
            report.push(mended(e, true));
        }
        let len = self.file.length()?;
        let homes = self.table_homes();
        let mut space = metadata_space(&self.header, self.cowd, &homes, self.gt_bytes, len);
        for conflict in space.conflicts() {
            let e = metadata_error(self.file.path(), &self.header, len, &conflict);
            // (A redundant directory on a grain table is the one out of
            // place: the repair rebuilds nothing from it.)
            let table = |s: &Span<Part>| matches!(s.what, Part::GrainTable { .. });
            let rgd_on_table = |a: &Span<Part>, b: &Span<Part>| {
                a.what == Part::RedundantDirectory
                    && matches!(
                        b.what,
                        Part::GrainTable {
                            redundant: false,
                            ..
                        }
                    )
            };
            let table = match &conflict {
                Conflict::PastEnd(s) => table(s),
                Conflict::Overlap(a, b) => {
                    (table(a) || table(b)) && !rgd_on_table(a, b) && !rgd_on_table(b, a)
                }
            };
            report.push(mended(&e, table));
        }
        if self.rgd.is_some() {
            self.compare_directories(len, report)?;
        }
        for fault in self.walk_grains(&mut space)? {
            let mut finding = Finding::from_error(&fault.error);
            if self.check_writable().is_ok() {
                finding = finding.repaired_by(Repair::All);
            }
            report.push(finding);
        }
        if self.header.compressed() && self.header.has_markers() {
            self.walk_stream(len, report)?;
        }
        let clusters = self.tally(len, report)?;
        // Trailing space is given back by `-r leaks` once the tables are
        // sound; while they are not, only by `-r all` (which mends them
        // first).
        let unsound = report.findings[before..].iter().any(|f| {
            f.severity == Severity::Corruption || f.structure == "VMDK redundant grain directory"
        });
        let mut end = len;
        // Compressed grains are claimed by their markers alone, so the
        // space between them says nothing.
        if !self.header.compressed() {
            end = space.end().min(len);
            let first = self.header.overhead.saturating_mul(SECTOR).min(len);
            for gap in space.gaps(first..len, self.grain) {
                // A hole takes no space.
                if self.file.blocks_are_holes(gap.start, gap.end - gap.start)? {
                    continue;
                }
                let mut finding = Finding::leak(self.file.path(), gap.clone());
                // Trailing space is cut off, space between grains punched
                // out (a hole).
                if self.check_writable().is_err() {
                    finding.repair = None;
                } else if unsound {
                    finding.repair = Some(Repair::All);
                }
                report.push(finding);
            }
        }
        Ok(Tally { clusters, end })
    }

    /// Where each grain table's copies are, as the tables hold them.
    fn table_homes(&self) -> Vec<Homes> {
        (0..self.gd.len() as usize)
            .map(|p| self.gts.homes(p))
            .collect()
    }

    /// The header's own fields: the newline-detection bytes, the unclean
    /// shutdown flag, the redundant-directory flag, and a footer that does
    /// not repeat the header.
    fn check_header(&mut self, report: &mut Report) -> Result<()> {
        if self.cowd {
            return Ok(());
        }
        let path = self.file.path().to_path_buf();
        let mut raw = [0u8; HEADER_SIZE];
        self.file.read_exact_at(&mut raw, 0)?;
        let flags = LittleEndian::read_u32(&raw[8..]);
        let structure = "VMDK sparse header";
        if flags & FLAG_NL_DETECT != 0 && &raw[73..77] != NEWLINES {
            report.push(Finding::new(
                Severity::Corruption,
                &path,
                Some(73),
                structure,
                format!(
                    "the newline-detection bytes are {}, not \\n \\r\\n: the file went through a text-mode (ASCII) transfer, which changes the data's line ends too",
                    raw[73..77].escape_ascii()
                ),
            ));
        }
        if raw[UNCLEAN_AT as usize] != 0 {
            let mut finding = Finding::new(
                Severity::Warning,
                &path,
                Some(UNCLEAN_AT),
                structure,
                "the extent was not closed cleanly (uncleanShutdown is set)",
            );
            if self.check_writable().is_ok() {
                finding = finding.repaired_by(Repair::All);
            }
            report.push(finding);
        }
        let known = FLAG_NL_DETECT | FLAG_RGD | FLAG_ZERO_GRAIN | FLAG_COMPRESSED | FLAG_MARKERS;
        if flags & !known != 0 {
            report.push(Finding::new(
                Severity::Warning,
                &path,
                Some(8),
                structure,
                format!(
                    "flags {flags:#x} set bits no VMDK version defines ({:#x})",
                    flags & !known
                ),
            ));
        }
        if flags & FLAG_ZERO_GRAIN != 0 && self.header.version < 2 {
            report.push(Finding::new(
                Severity::Warning,
                &path,
                Some(4),
                structure,
                "zeroed-grain entries (flag bit 2) need header version 2 or later; this header is version 1",
            ));
        }
        if self.header.num_gtes_per_gt != 512 {
            report.push(Finding::new(
                Severity::Warning,
                &path,
                Some(44),
                structure,
                format!(
                    "{} entries per grain table; VMware and qemu-img use (and qemu-img insists on) 512",
                    self.header.num_gtes_per_gt
                ),
            ));
        }
        if flags & FLAG_RGD != 0 && !self.header.has_rgd() && !self.header_in_footer {
            report.push(Finding::new(
                Severity::Warning,
                &path,
                Some(48),
                structure,
                "flag bit 1 announces a redundant grain directory, but its offset is 0 or the grain directory's own",
            ));
        }
        if self.header_in_footer {
            let at = self.file.length()?.saturating_sub(2 * SECTOR);
            match SparseHeader::parse(&raw) {
                Ok(first) => {
                    let f = &self.header;
                    let differs = [
                        ("version", first.version as u64, f.version as u64),
                        ("flags", first.flags as u64, f.flags as u64),
                        ("capacity", first.capacity, f.capacity),
                        ("grain size", first.grain_size, f.grain_size),
                        (
                            "descriptor offset",
                            first.descriptor_offset,
                            f.descriptor_offset,
                        ),
                        ("descriptor size", first.descriptor_size, f.descriptor_size),
                        (
                            "grain table size",
                            first.num_gtes_per_gt as u64,
                            f.num_gtes_per_gt as u64,
                        ),
                        ("overhead", first.overhead, f.overhead),
                    ]
                    .into_iter()
                    .filter(|(_, a, b)| a != b)
                    .map(|(name, a, b)| format!("{name} {a} in the header, {b} in the footer"))
                    .collect::<Vec<_>>();
                    if !differs.is_empty() {
                        report.push(Finding::new(
                            Severity::Corruption,
                            &path,
                            Some(at),
                            "VMDK footer",
                            format!(
                                "the footer does not repeat the header: {}",
                                differs.join(", ")
                            ),
                        ));
                    }
                }
                Err(e) => report.push_error(&Error::corrupt_field(&path, structure, 0, e)),
            }
        }
        Ok(())
    }

    /// Each grain directory entry against its redundant copy: both must
    /// name a table, or neither, and the two tables must hold the same
    /// entries (tables both holes are alike without reading them). A
    /// redundant table that lies where it should not is reported with the
    /// metadata; one that only disagrees is a warning.
    fn compare_directories(&mut self, len: u64, report: &mut Report) -> Result<()> {
        let path = self.file.path().to_path_buf();
        let rgd_at = self.header.rgd_offset.saturating_mul(SECTOR);
        let bytes = self.gt_bytes as usize;
        let (mut a, mut b) = (vec![0u8; bytes], vec![0u8; bytes]);
        let writable = self.check_writable().is_ok();
        for p in 0..self.gd.len() {
            let g = self.gd.get(&self.file, p)? as u64 * SECTOR;
            let Some(rgd) = self.rgd.as_mut() else {
                return Ok(());
            };
            let r = rgd.get(&self.file, p)? as u64 * SECTOR;
            // vimg and qemu read through the grain directory, but
            // VirtualBox refuses a disk whose copies disagree and VMware's
            // recovery reads the redundant one: a corruption.
            let differs = |offset: u64, msg: String| {
                let finding = Finding::new(
                    Severity::Corruption,
                    &path,
                    Some(offset),
                    "VMDK redundant grain directory",
                    msg,
                );
                match writable {
                    true => finding.repaired_by(Repair::All),
                    false => finding,
                }
            };
            let entry_at = rgd_at + p * 4;
            match (g, r) {
                (0, 0) => {}
                (0, r) => report.push(differs(entry_at, format!("entry {p} names a grain table at byte {r}, but the grain directory's entry names none"))),
                (g, 0) => report.push(differs(entry_at, format!("entry {p} names no grain table, but the grain directory's names one at byte {g}"))),
                (g, r) => {
                    // Tables not in the file are reported as such.
                    if g + self.gt_bytes > len || r + self.gt_bytes > len {
                        continue;
                    }
                    if self.file.is_hole(g, self.gt_bytes)? && self.file.is_hole(r, self.gt_bytes)? {
                        continue;
                    }
                    self.file.read_exact_at(&mut a, g)?;
                    self.file.read_exact_at(&mut b, r)?;
                    let used = (self.gt_entries * 4) as usize;
                    if let Some(k) = (0..used / 4).find(|k| a[k * 4..k * 4 + 4] != b[k * 4..k * 4 + 4]) {
                        let index = p * self.gt_entries + k as u64;
                        report.push(differs(
                            r + k as u64 * 4,
                            format!(
                                "the redundant grain table of entry {p} (byte {r}) differs from the grain table (byte {g}): grain {index}'s entry is {} there, {} here",
                                LittleEndian::read_u32(&a[k * 4..]),
                                LittleEndian::read_u32(&b[k * 4..]),
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Walk a stream's markers front to back, from the end of the header's
    /// overhead to the end-of-stream marker: each grain marker must name a
    /// grain whose table entry points at it, each metadata marker must
    /// announce what the directory and footer say is there.
    fn walk_stream(&mut self, len: u64, report: &mut Report) -> Result<()> {
        let path = self.file.path().to_path_buf();
        let grain_sectors = self.header.grain_size;
        let capacity_sectors = self.header.capacity;
        let limit = self.grain + self.grain / 8 + 1024;
        let gd_at = self.header.gd_offset.saturating_mul(SECTOR);
        let tables: Vec<u64> = self.table_homes().iter().map(|h| h[0]).collect();
        let mut at = self.header.overhead.saturating_mul(SECTOR);
        let mut buf = [0u8; SECTOR as usize];
        let corrupt = |at: u64, msg: String| {
            Finding::new(
                Severity::Corruption,
                &path,
                Some(at),
                "VMDK stream marker",
                msg,
            )
        };
        let mut ended = false;
        while at < len {
            if at + SECTOR > len {
                report.push(corrupt(
                    at,
                    format!("the marker at byte {at} is cut off by the end of the file"),
                ));
                break;
            }
            self.file.read_exact_at(&mut buf, at)?;
            let value = LittleEndian::read_u64(&buf[0..]);
            let size = LittleEndian::read_u32(&buf[8..]) as u64;
            if size != 0 {
                if size > limit || at + 12 + size > len {
                    report.push(corrupt(
                        at,
                        format!("the grain marker at byte {at} gives {size} compressed bytes, which run past the end of the file or past the {limit} a grain can take"),
                    ));
                    break;
                }
                if value % grain_sectors != 0 || value >= capacity_sectors {
                    report.push(corrupt(
                        at,
                        format!("the grain marker at byte {at} names sector {value}, which starts no grain of the disk"),
                    ));
                } else {
                    let index = value / grain_sectors;
                    match self.lookup(index)? {
                        Grain::Compressed(h) if h == at => {}
                        other => {
                            let names = match other {
                                Grain::Compressed(h) | Grain::At(h) => format!("names byte {h}"),
                                _ => "names no data".to_string(),
                            };
                            report.push(corrupt(
                                at,
                                format!("the grain marker at byte {at} holds grain {index}, but its grain table entry {names}: a reader of the stream and a reader of the tables disagree"),
                            ));
                        }
                    }
                }
                at += align_up(12 + size, SECTOR);
                continue;
            }
            let kind = LittleEndian::read_u32(&buf[12..]);
            let body = at + SECTOR;
            let next = value
                .checked_mul(SECTOR)
                .and_then(|n| body.checked_add(n))
                .unwrap_or(u64::MAX);
            match kind {
                0 => {
                    // qemu-img pads a stream with zeros after the marker.
                    if !self.zeros_from(body, len)? {
                        report.push(Finding::new(
                            Severity::Warning,
                            &path,
                            Some(body),
                            "VMDK stream marker",
                            format!(
                                "{} bytes that are not all zeros follow the end-of-stream marker",
                                len.saturating_sub(body)
                            ),
                        ));
                    }
                    ended = true;
                    break;
                }
                1 => {
                    if value.checked_mul(SECTOR) != Some(self.gt_bytes) {
                        report.push(corrupt(at, format!("the grain table marker at byte {at} announces {value} sectors; a grain table takes {}", self.gt_bytes / SECTOR)));
                    } else if !tables.contains(&body) {
                        report.push(Finding::new(
                            Severity::Warning,
                            &path,
                            Some(body),
                            "VMDK stream marker",
                            format!("the grain table after the marker at byte {at} is in no grain directory entry"),
                        ));
                    }
                }
                2 => {
                    if body != gd_at {
                        report.push(corrupt(at, format!("the grain directory marker at byte {at} is not where the footer puts the grain directory (byte {gd_at})")));
                    }
                }
                3 => {
                    if value != 1 || body != len.saturating_sub(2 * SECTOR) {
                        report.push(corrupt(at, format!("the footer marker at byte {at} announces {value} sectors at byte {body}; the footer is one sector, the file's second-to-last")));
                    }
                }
                other => {
                    report.push(corrupt(
                        at,
                        format!("the marker at byte {at} has type {other}, which no stream knows (0 to 3)"),
                    ));
                    break;
                }
            }
            if next > len {
                report.push(corrupt(
                    at,
                    format!("the metadata marker at byte {at} announces {value} sectors, past the end of the file"),
                ));
                break;
            }
            at = next;
        }
        // Without the marker, readers that seek still find every grain
        // through the directory the header names (qemu-img leaves an empty
        // stream so); only a directory found through the footer needs it.
        if !ended
            && self.header_in_footer
            && !report
                .findings
                .iter()
                .any(|f| f.structure == "VMDK stream marker" && f.file == path)
        {
            report.push(corrupt(
                len,
                "the stream ends without an end-of-stream marker".to_string(),
            ));
        }
        Ok(())
    }

    /// True when bytes `from..to` of the file are holes or zeros (only
    /// the first MiB is read; more than that is not padding).
    fn zeros_from(&self, from: u64, to: u64) -> Result<bool> {
        if from >= to || self.file.is_hole(from, to - from)? {
            return Ok(true);
        }
        if to - from > 1 << 20 {
            return Ok(false);
        }
        let mut buf = vec![0u8; (to - from) as usize];
        self.file.read_exact_at(&mut buf, from)?;
        Ok(is_zero(&buf))
    }

    /// qemu-img's counts, and each compressed grain's marker against the
    /// entry that points at it (the sector it names, a size that fits).
    fn tally(&mut self, len: u64, report: &mut Report) -> Result<Clusters> {
        let grains = self.capacity.div_ceil(self.grain);
        let mut c = Clusters {
            total: grains,
            ..Clusters::default()
        };
        let limit = self.grain + self.grain / 8 + 1024;
        let markers = self.header.has_markers();
        let mut next: Option<u64> = None;
        let mut head = [0u8; 12];
        for p in 0..self.gd.len() as usize {
            if self.gts.page_is_zero(&self.file, p)? {
                continue;
            }
            let first = p as u64 * self.gt_entries;
            for index in first..(first + self.gt_entries).min(grains) {
                let (host, used) = match self.lookup(index)? {
                    Grain::At(h) => (h, self.grain),
                    Grain::Compressed(h) => {
                        c.compressed += 1;
                        let mut used = SECTOR;
                        if markers && h.saturating_add(12) <= len {
                            self.file.read_exact_at(&mut head, h)?;
                            let lba = LittleEndian::read_u64(&head[0..]);
                            let size = LittleEndian::read_u32(&head[8..]) as u64;
                            let want = index * self.header.grain_size;
                            let mut wrong = Vec::new();
                            if lba != want {
                                wrong.push(format!("names sector {lba}, not sector {want}"));
                            }
                            if size == 0 || size > limit || h + 12 + size > len {
                                wrong.push(format!("gives {size} compressed bytes, not 1 to {limit} within the file"));
                            }
                            if wrong.is_empty() {
                                used = align_up(12 + size, SECTOR);
                            } else {
                                report.push(Finding::new(
                                    Severity::Corruption,
                                    self.file.path(),
                                    Some(h),
                                    "VMDK compressed grain",
                                    format!(
                                        "the marker of grain {index} at byte {h} {}",
                                        wrong.join(" and ")
                                    ),
                                ));
                            }
                        }
                        (h, used)
                    }
                    Grain::Unallocated | Grain::Zero => continue,
                };
                c.allocated += 1;
                if next.is_some_and(|n| n != host) {
                    c.fragmented += 1;
                }
                next = Some(host.saturating_add(used));
            }
        }
        Ok(c)
    }

    /// Repair what a check finds and `level` allows (see
    /// [`Repair`]); `base` is where the extent starts in the disk (for the
    /// ranges the findings name). Extents vimg does not write (streams,
    /// COWD) are left as they are.
    pub fn repair(&mut self, level: Repair, base: u64) -> Result<Vec<Finding>> {
        let mut fixed = Vec::new();
        if self.check_writable().is_err() {
            return Ok(fixed);
        }
        self.file.check_writable()?;
        if level == Repair::All {
            // Where the header's own layout is wrong, there is nothing
            // sound to repair from: everything is left as it is.
            if !self.repair_directories(base, &mut fixed)? {
                return Ok(fixed);
            }
            self.repair_grains(base, &mut fixed)?;
        }
        self.flush()?;
        self.repair_tail(&mut fixed)?;
        if level == Repair::All {
            self.repair_unclean(&mut fixed)?;
        }
        Ok(fixed)
    }

    /// The directories made consistent: a table is sound when it lies in
    /// the file, clear of the headers, the descriptor, the directories and
    /// every table accepted before it. The grain directory's sound tables
    /// are kept and copied over their redundant copies; where its table is
    /// not sound, a copy of the sound redundant one takes its place; where
    /// neither is, the entry is dropped. New copies are written at the end
    /// of the file before any directory points at them, the grain directory
    /// before the redundant one. Returns false, changing nothing, when the
    /// header's own layout (header, descriptor, grain directory) is wrong.
    fn repair_directories(&mut self, base: u64, fixed: &mut Vec<Finding>) -> Result<bool> {
        let path = self.file.path().to_path_buf();
        let len = self.file.length()?;
        let n = self.gd.len();
        let dir_bytes = align_up(n * 4, SECTOR);
        // What the header places: when that is wrong itself (the parts
        // overlap, or run past the end), nothing is sound to rebuild from.
        let mut space = header_space(&self.header, self.cowd, dir_bytes, len);
        if !space.conflicts().is_empty() {
            return Ok(false);
        }
        let gt_bytes = self.gt_bytes;
        let sound = |space: &mut Space<Part>, at: u64, entry: u64, redundant: bool| {
            let ok = at != 0
                && at.checked_add(gt_bytes).is_some_and(|e| e <= len)
                && space.overlapping(at, at + gt_bytes).is_none();
            if ok {
                space.claim(at, gt_bytes, Part::GrainTable { entry, redundant });
            }
            ok
        };
        let mut g = Vec::with_capacity(n as usize);
        for p in 0..n {
            let at = self.gd.get(&self.file, p)? as u64 * SECTOR;
            g.push((at, sound(&mut space, at, p, false)));
        }
        // The grain directory's tables are believed before the redundant
        // directory's place: a redundant directory on one of them is the
        // one out of place, and is neither read nor written.
        let rgd_at = self.header.rgd_offset.saturating_mul(SECTOR);
        let has_rgd = self.rgd.is_some()
            && rgd_at
                .checked_add(dir_bytes)
                .is_some_and(|end| end <= len && space.overlapping(rgd_at, end).is_none());
        let mut r = vec![(0u64, false); n as usize];
        if let (true, Some(rgd)) = (has_rgd, self.rgd.as_mut()) {
            space.claim(rgd_at, dir_bytes, Part::RedundantDirectory);
            for p in 0..n {
                let at = rgd.get(&self.file, p)? as u64 * SECTOR;
                r[p as usize] = (at, sound(&mut space, at, p, true));
            }
        }
        let table_bytes = self.gt_bytes;
        let mut table = vec![0u8; table_bytes as usize];
        let mut other = vec![0u8; table_bytes as usize];
        let mut gd_sets: Vec<(u64, u32)> = Vec::new();
        let mut rgd_sets: Vec<(u64, u32)> = Vec::new();
        let gd_at = self.header.gd_offset.saturating_mul(SECTOR);
        let span = self.gt_entries * self.grain;
        for p in 0..n {
            let (ga, g_ok) = g[p as usize];
            let (ra, r_ok) = r[p as usize];
            let range = || {
                let start = p * span;
                let end = (start + span).min(self.capacity);
                format!("bytes {} to {} of the disk", base + start, base + end)
            };
            let found = |structure, offset, msg: String| {
                Finding::new(Severity::Corruption, &path, Some(offset), structure, msg)
                    .repaired_by(Repair::All)
            };
            match (ga, g_ok) {
                (0, _) => {
                    if has_rgd && ra != 0 {
                        rgd_sets.push((p, 0));
                        fixed.push(found("VMDK redundant grain directory", rgd_at + p * 4, format!("entry {p} named a grain table at byte {ra} the grain directory does not name; cleared (the disk reads as before)")));
                    }
                }
                (_, true) => {
                    if !has_rgd {
                        continue;
                    }
                    self.file.read_exact_at(&mut table, ga)?;
                    if r_ok {
                        self.file.read_exact_at(&mut other, ra)?;
                        if other != table {
                            self.file.write_all_at(&table, ra)?;
                            fixed.push(found("VMDK redundant grain directory", ra, format!("the redundant grain table of entry {p} (byte {ra}) differed from the grain table (byte {ga}); rewritten from it")));
                        }
                    } else {
                        let new = self.new_table(&table)?;
                        rgd_sets.push((p, (new / SECTOR) as u32));
                        let mut finding = found("VMDK redundant grain directory", rgd_at + p * 4, format!("entry {p} named no sound redundant grain table (byte {ra}: none, past the end of the file, or on other metadata); a copy of the grain table now stands at byte {new}"));
                        // One past the end or on other metadata is reported
                        // with the metadata, as a corruption.
                        if ra != 0 {
                            finding.severity = Severity::Corruption;
                        }
                        fixed.push(finding);
                    }
                }
                (_, false) if has_rgd && r_ok => {
                    self.file.read_exact_at(&mut table, ra)?;
                    let new = self.new_table(&table)?;
                    gd_sets.push((p, (new / SECTOR) as u32));
                    fixed.push(found("VMDK grain directory", gd_at + p * 4, format!("entry {p} pointed at byte {ga}, past the end of the file or on other metadata; it now names a copy (byte {new}) of the redundant grain table")));
                }
                (_, false) => {
                    gd_sets.push((p, 0));
                    if has_rgd && ra != 0 {
                        rgd_sets.push((p, 0));
                    }
                    fixed.push(found("VMDK grain directory", gd_at + p * 4, format!("entry {p} pointed at byte {ga}, past the end of the file or on other metadata, and no sound redundant table stands in; dropped: {} now read from the parent, or as zeros", range())));
                }
            }
        }
        for (p, v) in gd_sets {
            self.gd.set(&self.file, p, v)?;
        }
        self.gd.flush(&self.file)?;
        if let (true, Some(rgd)) = (has_rgd, self.rgd.as_mut()) {
            for (p, v) in rgd_sets {
                rgd.set(&self.file, p, v)?;
            }
            rgd.flush(&self.file)?;
        }
        // The tables as the directories now name them (a redundant
        // directory out of place names none that may be written).
        let mut homes = Vec::with_capacity(n as usize);
        for p in 0..n {
            let ga = self.gd.get(&self.file, p)? as u64 * SECTOR;
            let ra = match self.rgd.as_mut() {
                Some(rgd) if has_rgd && ga != 0 => rgd.get(&self.file, p)? as u64 * SECTOR,
                _ => 0,
            };
            homes.push([ga, ra]);
        }
        self.gts = Table::new(
            Endian::Little,
            self.gt_entries as usize,
            n * self.gt_entries,
            homes,
        );
        self.damage.clear();
        self.cache = None;
        Ok(true)
    }

    /// Write a grain table copy at the end of the file; returns where.
    fn new_table(&mut self, table: &[u8]) -> Result<u64> {
        let mut next = self.alloc.clone();
        let at = next.take(self.gt_bytes, SECTOR);
        if u32::try_from(at / SECTOR).is_err() {
            return Err(Error::unsupported(
                self.file.path(),
                "a new grain table copy would lie past the 2 TiB a sparse extent can address",
            ));
        }
        self.file.write_all_at(table, at)?;
        self.alloc = next;
        Ok(at)
    }

    /// Clear every grain table entry (in both copies) that points past the
    /// end of the file, into metadata, or at a grain an earlier entry
    /// names, and every zeroed-grain entry the header does not allow.
    fn repair_grains(&mut self, base: u64, fixed: &mut Vec<Finding>) -> Result<()> {
        for _ in 0..MAX_PASSES {
            let len = self.file.length()?;
            let homes = self.table_homes();
            let mut space = metadata_space(&self.header, self.cowd, &homes, self.gt_bytes, len);
            let faults = self.walk_grains(&mut space)?;
            if faults.is_empty() {
                break;
            }
            for fault in faults {
                for &g in &fault.grains {
                    self.gts.set(&self.file, g, 0)?;
                }
                let mut finding = Finding::from_error(&fault.error).repaired_by(Repair::All);
                finding.message = format!(
                    "{}; entry cleared: {} now read from the parent, or as zeros",
                    finding.message,
                    virtual_ranges(base, &fault.grains, self.grain, self.capacity)
                );
                fixed.push(finding);
            }
            self.gts.flush(&self.file)?;
            self.cache = None;
        }
        Ok(())
    }

    /// Clear every grain table entry (each table, then its redundant
    /// copy), so that the extent holds nothing, and give the grains'
    /// space back.
    pub fn discard_all(&mut self) -> Result<()> {
        self.check_writable()?;
        self.flush()?;
        let homes = self.table_homes();
        let zeros = vec![0u8; self.gt_bytes as usize];
        let mut table = vec![0u8; self.gt_bytes as usize];
        for copy in 0..2 {
            for home in &homes {
                let at = home[copy];
                if at == 0 || self.file.is_hole(at, self.gt_bytes)? {
                    continue;
                }
                // Each copy as it is on disk: a stop between the two
                // leaves them different.
                self.file.read_exact_at(&mut table, at)?;
                if table != zeros {
                    self.file.write_all_at(&zeros, at)?;
                }
            }
            self.file.sync()?;
        }
        let entries = self.gd.len() * self.gt_entries;
        self.gts = Table::new(Endian::Little, self.gt_entries as usize, entries, homes);
        self.cache = None;
        self.repair_tail(&mut Vec::new())?;
        self.file.sync()
    }

    /// Drop every grain that holds only zeros, unless `hides(offset, len)`
    /// (extent offsets) says a parent reads data under it, and give the
    /// space back. Returns the bytes dropped.
    pub fn compact(
        &mut self,
        hides: &mut dyn FnMut(u64, u64) -> Result<bool>,
        progress: crate::image::Progress,
    ) -> Result<u64> {
        self.check_writable()?;
        self.file.check_writable()?;
        // A redundant table one write behind (a writer stopped between the
        // two copies) is brought in line first, from the table every
        // reader goes by; nothing is given back while they differ.
        let mut scratch = Report::default();
        self.check(&mut scratch)?;
        let corrupt = |f: &&Finding| f.severity == Severity::Corruption;
        if scratch.findings.iter().filter(corrupt).count() > 0
            && scratch
                .findings
                .iter()
                .filter(corrupt)
                .all(|f| f.structure == "VMDK redundant grain directory")
        {
            self.repair(Repair::All, 0)?;
        }
        let grains = self.capacity.div_ceil(self.grain);
        let mut buf = vec![0u8; self.grain as usize];
        let mut dropped = 0;
        for p in 0..self.gd.len() as usize {
            let first = p as u64 * self.gt_entries;
            progress((first * self.grain).min(self.capacity));
            if self.gts.page_is_zero(&self.file, p)? {
                continue;
            }
            for index in first..(first + self.gt_entries).min(grains) {
                let Grain::At(host) = self.lookup(index)? else {
                    continue;
                };
                let at = index * self.grain;
                let len = self.grain.min(self.capacity - at);
                let part = &mut buf[..len as usize];
                self.file.read_zero_filled(part, host)?;
                if crate::io::is_zero(part) && !hides(at, len)? {
                    self.gts.set(&self.file, index, 0)?;
                    dropped += len;
                }
            }
        }
        self.flush()?;
        self.file.sync()?;
        self.pack()?;
        self.repair_tail(&mut Vec::new())?;
        self.file.sync()?;
        Ok(dropped)
    }

    /// Move the grains nearest the end of the file into the free space
    /// before them (each copy on disk before its entry switches to it), so
    /// that the file can be cut after the last one. Only an extent with
    /// nothing wrong with it is packed.
    fn pack(&mut self) -> Result<()> {
        let Some((_, gaps)) = self.free_space()? else {
            return Ok(());
        };
        if gaps.is_empty() {
            return Ok(());
        }
        let grains = self.capacity.div_ceil(self.grain);
        let mut units = Vec::new();
        for p in 0..self.gd.len() as usize {
            if self.gts.page_is_zero(&self.file, p)? {
                continue;
            }
            let first = p as u64 * self.gt_entries;
            for index in first..(first + self.gt_entries).min(grains) {
                if let Grain::At(host) = self.lookup(index)? {
                    units.push((index, host));
                }
            }
        }
        let moves = crate::alloc::pack(gaps, units, self.grain, |at| align_up(at, SECTOR));
        let mut buf = vec![0u8; self.grain as usize];
        for batch in moves.chunks(PACK_BATCH) {
            for m in batch {
                self.file.read_zero_filled(&mut buf, m.from)?;
                self.file.write_all_at(&buf, m.to)?;
            }
            self.file.sync()?;
            for m in batch {
                self.gts.set(&self.file, m.index, (m.to / SECTOR) as u32)?;
            }
            self.flush()?;
            self.file.sync()?;
        }
        Ok(())
    }

    /// The file's length and the gaps of at least a grain nothing
    /// references past the header's overhead; `None` while anything is
    /// wrong with the tables (a table or grain out of place, a redundant
    /// copy that names other grains), as space then only looks
    /// unreferenced.
    fn free_space(&mut self) -> Result<Option<(u64, Vec<Range<u64>>)>> {
        let mut scratch = Report::default();
        self.check(&mut scratch)?;
        if scratch.findings.iter().any(|f| {
            f.severity == Severity::Corruption || f.structure == "VMDK redundant grain directory"
        }) {
            return Ok(None);
        }
        let len = self.file.length()?;
        let homes = self.table_homes();
        let mut space = metadata_space(&self.header, self.cowd, &homes, self.gt_bytes, len);
        self.walk_grains(&mut space)?;
        let first = self.header.overhead.saturating_mul(SECTOR).min(len);
        Ok(Some((len, space.gaps(first..len, self.grain))))
    }

    /// Give back the space nothing references: cut it off the end of the
    /// file, punch it out between grains.
    fn repair_tail(&mut self, fixed: &mut Vec<Finding>) -> Result<()> {
        let Some((len, mut gaps)) = self.free_space()? else {
            return Ok(());
        };
        let trailing = gaps.last().filter(|g| g.end == len).cloned();
        if trailing.is_some() {
            gaps.pop();
        }
        for gap in gaps {
            let size = gap.end - gap.start;
            if self.file.blocks_are_holes(gap.start, size)?
                || !self.file.punch_hole(gap.start, size)?
            {
                continue;
            }
            let mut finding = Finding::leak(self.file.path(), gap).repaired_by(Repair::Leaks);
            finding.message = format!("{}; they were punched out (a hole)", finding.message);
            fixed.push(finding);
        }
        let Some(gap) = trailing else {
            return Ok(());
        };
        let cut = align_up(gap.start, SECTOR);
        if gap.end != len || cut >= len {
            return Ok(());
        }
        self.file.set_len(cut)?;
        self.alloc = Allocator::new(
            cut.max(
                self.header
                    .overhead
                    .saturating_mul(SECTOR)
                    .min(MAX_OVERHEAD),
            ),
        );
        let mut finding = Finding::leak(self.file.path(), cut..len).repaired_by(Repair::Leaks);
        finding.message = format!("{}; the file was cut to {cut} bytes", finding.message);
        fixed.push(finding);
        Ok(())
    }

    /// Clear the unclean-shutdown flag once nothing else is wrong.
    fn repair_unclean(&mut self, fixed: &mut Vec<Finding>) -> Result<()> {
        let mut flag = [0u8; 1];
        self.file.read_exact_at(&mut flag, UNCLEAN_AT)?;
        if flag[0] == 0 {
            return Ok(());
        }
        let mut scratch = Report::default();
        self.check(&mut scratch)?;
        if scratch.count(Severity::Corruption) > 0 {
            return Ok(());
        }
        self.file.write_all_at(&[0], UNCLEAN_AT)?;
        self.header.unclean_shutdown = false;
        fixed.push(
            Finding::new(
                Severity::Warning,
                self.file.path(),
                Some(UNCLEAN_AT),
                "VMDK sparse header",
                "the extent was not closed cleanly (uncleanShutdown was set); cleared, as the rest is consistent",
            )
            .repaired_by(Repair::All),
        );
        Ok(())
    }
}
