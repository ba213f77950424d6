//! What `check` finds in a dynamic or differencing VHD, and how a repair
//! mends it. One survey of the file (never of what open kept in memory)
//! yields every fault with the fix a repair may make for it; `check`
//! reports the findings, `repair` applies the fixes its level allows, in
//! crash-safe order, surveying again between the steps.
//!
//! The order of a repair: the BAT entries to clear and the dynamic header
//! checksum first (a stop after any of those writes leaves at most leaks),
//! then the footer (written into space nothing references, then the file
//! cut right after it), then the footer copy at offset 0 from the footer.

use std::collections::HashSet;

use super::{can_align, Dynamic, Part, DATA_ALIGN, UNALLOCATED};
use crate::alloc::space::{Conflict, Units};
use crate::alloc::Allocator;
use crate::error::Result;
use crate::image::check::{Clusters, Finding, Repair, Severity};
use crate::io::{align_up, SECTOR};
use crate::vhd::dyn_header::{checksum_error, HEADER_SIZE};
use crate::vhd::footer::{has_cookie, parse_tail, Footer, FOOTER_SIZE};
use crate::vhd::locator;

/// How many times a repair surveys and clears BAT entries before it leaves
/// the rest to the next run (clearing one of two blocks on each other can
/// bring to light another overlap the first hid).
const MAX_PASSES: usize = 64;
/// Blocks moved between two syncs when a compaction packs a disk.
const PACK_BATCH: usize = 16;
/// How much of a block is copied at a time.
const COPY_CHUNK: u64 = 4 << 20;

/// Whole repair passes at most (each step that makes another possible
/// takes one).
const MAX_ROUNDS: usize = 4;

/// The conflicts a survey lists one by one; past these, a hostile BAT of
/// millions of wrong entries costs a count and a fix each, not a finding.
const MAX_LISTED: usize = 1000;

/// How a repair mends a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Clear the BAT entries of these blocks: they then read from the
    /// parent, or as zeros.
    Clear(Units),
    /// Store the dynamic header's checksum for the fields it holds.
    HeaderChecksum,
    /// Write the footer at `at` (space nothing references, or the end of
    /// the file) and end the file right after it.
    Footer { at: u64 },
    /// Rewrite the footer copy at offset 0 from the footer.
    FooterCopy,
    /// Punch out `[start, end)`, space nothing references (a hole).
    Punch { start: u64, end: u64 },
    /// Clear the BAT entries of the conflicts not listed one by one
    /// ([`Survey::unlisted`]).
    Unlisted,
}

/// One fault a survey found, and how a repair mends it (when one can: the
/// finding's `repair` says at which level).
#[derive(Clone, Debug)]
pub struct Fault {
    /// What `check` reports.
    pub finding: Finding,
    /// What a repair at the finding's level does about it.
    pub fix: Option<Fix>,
}

/// What a survey of a dynamic VHD's file finds.
#[derive(Clone, Debug)]
pub struct Survey {
    /// Every fault, conflicts first (past the first [`MAX_LISTED`], one
    /// finding counts the rest).
    pub faults: Vec<Fault>,
    /// The footer the disk goes by: the trailing one when it is valid (or
    /// the valid one right after the last used byte, when garbage follows
    /// it), else the copy at offset 0.
    pub footer: [u8; FOOTER_SIZE],
    /// Where that footer is, when it is not the copy at offset 0.
    pub footer_at: Option<u64>,
    pub clusters: Clusters,
    /// Where the bytes the image uses end (qemu-img's "image end offset").
    pub end_offset: u64,
    /// The blocks whose BAT entries clear the conflicts past the first
    /// [`MAX_LISTED`], which have no finding of their own.
    pub unlisted: Vec<Units>,
}

impl Fault {
    /// A fault no repair mends.
    fn found(finding: Finding) -> Fault {
        Fault { finding, fix: None }
    }

    /// A fault that `fix`, at `level`, mends.
    fn fixed_by(finding: Finding, level: Repair, fix: Fix) -> Fault {
        Fault {
            finding: finding.repaired_by(level),
            fix: Some(fix),
        }
    }
}

impl Dynamic {
    /// Survey the file of this disk of `size` bytes: every fault in its
    /// metadata, the cluster counts and where its used bytes end.
    pub fn survey(&mut self, size: u64) -> Result<Survey> {
        let path = self.file.path().to_path_buf();
        let file_len = self.file.length()?;
        let block_len = self.bitmap_size + self.block_size;
        let mut faults = Vec::new();
        let mut space = self.walk(file_len, None)?;
        // Where the last byte anything but the footer uses ends.
        let used_end = space
            .spans()
            .iter()
            .filter(|s| s.start < file_len)
            .map(|s| s.end.min(file_len))
            .max()
            .unwrap_or(0);
        let place = align_up(used_end, SECTOR);
        let (footer, footer_at, footer_faults) = self.find_footer(file_len, used_end)?;
        if let Some(at) = footer_at {
            let end = (at + FOOTER_SIZE as u64).min(file_len);
            space.claim(at, end - at, Part::Footer);
        }
        // Without a valid footer anywhere the disk's layout is a guess
        // (an open for checking went by bytes at the end whose checksum is
        // wrong): entries are reported, not cleared, as clearing them could
        // overwrite those very bytes.
        let layout_known = footer_at.is_some();
        // The BAT entries reported: a block on two structures (the header
        // and the BAT) is one fault of its entry.
        let mut entries = HashSet::new();
        // Past the first conflicts, only their count and fixes are kept.
        let (mut unlisted, mut more, mut all_mendable) = (0u64, Vec::new(), true);
        for conflict in space.conflicts() {
            if entries.len() >= MAX_LISTED {
                unlisted += 1;
                match self.conflict_fix(file_len, &conflict) {
                    Some(Fix::Clear(units)) => more.push(units),
                    _ => all_mendable = false,
                }
                continue;
            }
            let finding = Finding::from_error(&self.conflict_error(file_len, &conflict));
            if !entries.insert(finding.offset) && finding.structure == "VHD block allocation table"
            {
                continue;
            }
            faults.push(match self.conflict_fix(file_len, &conflict) {
                Some(fix) if layout_known => Fault::fixed_by(finding, Repair::All, fix),
                _ => Fault::found(finding),
            });
        }
        if unlisted > 0 {
            let finding = Finding::new(
                Severity::Corruption,
                &path,
                None,
                "VHD block allocation table",
                format!(
                    "{unlisted} more conflicts like these (blocks past the end of the file, on the metadata or on one another) are not listed"
                ),
            );
            faults.push(match all_mendable && layout_known {
                true => Fault::fixed_by(finding, Repair::All, Fix::Unlisted),
                false => Fault::found(finding),
            });
        }
        // Whether the layout the header describes looks wrong somewhere:
        // conflicts, or space nothing references (other than garbage after
        // a footer found right after the last used byte, which bears the
        // layout out).
        let mut suspicious = !faults.is_empty();
        faults.extend(footer_faults);
        // Unreferenced space between the last used byte and the footer, of
        // a block or more (Windows and others leave up to a few KiB of
        // padding before the footer: no leak).
        if let Some(at) = footer_at.filter(|&at| at >= place + block_len) {
            suspicious = true;
            faults.push(Fault::fixed_by(
                Finding::leak(&path, used_end..at),
                Repair::Leaks,
                Fix::Footer { at: place },
            ));
        }
        // Unreferenced space in the middle that holds data: punched out
        // (a hole) by -r leaks once nothing else is wrong (while the
        // layout is, the space may be data a wrong entry hides), by -r all
        // after it has mended the rest.
        for gap in space.gaps(0..used_end, block_len) {
            if !self.file.blocks_are_holes(gap.start, gap.end - gap.start)? {
                suspicious = true;
                let fix = Fix::Punch {
                    start: gap.start,
                    end: gap.end,
                };
                let finding = Finding::leak(&path, gap);
                faults.push(Fault::fixed_by(finding, Repair::Leaks, fix));
            }
        }
        self.survey_header(suspicious, &mut faults)?;
        if self.differencing {
            self.survey_locators(&mut faults)?;
        }
        // Space in the middle is punched out by -r leaks only while nothing
        // is wrong (else it may be data a wrong entry hides); by -r all when
        // that mends everything wrong first; else by nothing.
        let corrupt: Vec<_> = faults
            .iter()
            .filter(|f| f.finding.severity == Severity::Corruption)
            .map(|f| f.finding.repair)
            .collect();
        let punch = match corrupt.iter().all(Option::is_some) {
            false => None,
            true if corrupt.is_empty() => Some(Repair::Leaks),
            true => Some(Repair::All),
        };
        for fault in &mut faults {
            if matches!(fault.fix, Some(Fix::Punch { .. })) {
                fault.finding.repair = punch;
            }
        }
        let clusters = self.clusters(file_len, size)?;
        let end_offset = match footer_at {
            Some(at) => (at + FOOTER_SIZE as u64).min(file_len),
            None => used_end,
        };
        Ok(Survey {
            faults,
            footer,
            footer_at,
            clusters,
            end_offset,
            unlisted: more,
        })
    }

    /// The fault of a dynamic header whose checksum is wrong. Its fields
    /// are usable, but one of them may be wrong: it is trusted with a
    /// repair (its checksum stored) only when the layout it describes holds
    /// together. When it does not (`suspicious`), it may be the BAT's place
    /// that is wrong, and no repair that goes by the layout (clearing
    /// entries of what would then not be the BAT, cutting the file after
    /// what it references) is made either.
    fn survey_header(&self, suspicious: bool, faults: &mut Vec<Fault>) -> Result<()> {
        let mut raw = [0u8; HEADER_SIZE];
        self.file.read_exact_at(&mut raw, self.header_offset)?;
        let Some(e) = checksum_error(&raw) else {
            return Ok(());
        };
        let finding = Finding::new(
            Severity::Corruption,
            self.file.path(),
            Some(self.header_offset + e.at),
            "VHD dynamic header",
            format!(
                "{} (the fields are usable; a wrong checksum says one of them may be wrong)",
                e.detail
            ),
        );
        if !suspicious {
            faults.push(Fault::fixed_by(finding, Repair::All, Fix::HeaderChecksum));
            return Ok(());
        }
        let by_layout = |f: &Fault| {
            matches!(
                f.fix,
                Some(Fix::Clear(_) | Fix::Unlisted | Fix::Footer { .. })
            )
        };
        for fault in faults.iter_mut().filter(|f| by_layout(f)) {
            fault.fix = None;
            fault.finding.repair = None;
            fault.finding.message += " (not repaired while the dynamic header's checksum is wrong and the layout it describes does not hold together: the BAT's place may be what is wrong)";
        }
        let mut finding = Fault::found(finding);
        finding.finding.message +=
            "; not repaired, as the layout it describes does not hold together";
        faults.push(finding);
        Ok(())
    }

    /// The footer the disk goes by, where it is (`None`: only the copy at
    /// offset 0 is valid), and what is wrong with either copy. `used_end`
    /// is where the last byte anything else uses ends.
    fn find_footer(
        &self,
        file_len: u64,
        used_end: u64,
    ) -> Result<([u8; FOOTER_SIZE], Option<u64>, Vec<Fault>)> {
        let path = self.file.path();
        let mut faults = Vec::new();
        let mut head = [0u8; FOOTER_SIZE];
        self.file.read_zero_filled(&mut head, 0)?;
        let tail_at = file_len.saturating_sub(FOOTER_SIZE as u64);
        let mut tail = [0u8; FOOTER_SIZE];
        self.file.read_zero_filled(&mut tail, tail_at)?;
        let place = align_up(used_end, SECTOR);
        let head_valid = Footer::parse(&head).is_ok();
        let (footer, at) = match parse_tail(&tail) {
            Ok((_, n)) => {
                // A 511-byte footer reads as if padded with a zero byte.
                let mut footer = [0u8; FOOTER_SIZE];
                footer[..n].copy_from_slice(&tail[FOOTER_SIZE - n..]);
                (footer, file_len - n as u64)
            }
            Err(tail_err) => {
                let mut there = [0u8; FOOTER_SIZE];
                self.file.read_zero_filled(&mut there, place)?;
                if place + (FOOTER_SIZE as u64) < file_len && Footer::parse(&there).is_ok() {
                    let after = place + FOOTER_SIZE as u64;
                    let finding = Finding::new(
                        Severity::Leak,
                        path,
                        Some(after),
                        "unreferenced space",
                        format!(
                            "{} bytes after the footer at byte {place} are referenced by nothing (trailing garbage)",
                            file_len - after
                        ),
                    );
                    faults.push(Fault::fixed_by(
                        finding,
                        Repair::Leaks,
                        Fix::Footer { at: place },
                    ));
                    (there, place)
                } else {
                    let bad_copy = tail_at >= used_end && has_cookie(&tail);
                    let copy = match head_valid {
                        true => "the copy at offset 0 is valid",
                        false => "nor is the copy at offset 0 valid",
                    };
                    let (message, level) = match bad_copy {
                        true => (format!("{}; {copy}", tail_err.detail), Repair::Leaks),
                        false => (
                            format!("the file does not end in a footer (missing or overwritten); {copy}"),
                            Repair::All,
                        ),
                    };
                    let offset = if bad_copy { tail_at } else { file_len };
                    let finding = Finding::new(
                        Severity::Corruption,
                        path,
                        Some(offset),
                        "VHD footer",
                        message,
                    );
                    faults.push(match head_valid {
                        true => Fault::fixed_by(finding, level, Fix::Footer { at: place }),
                        false => Fault::found(finding),
                    });
                    return Ok((head, None, faults));
                }
            }
        };
        if head != footer {
            let message = match Footer::parse(&head) {
                Ok(_) => {
                    format!("the footer copy at offset 0 differs from the footer at byte {at}")
                }
                Err(e) => format!(
                    "the footer copy at offset 0 is invalid ({}); the footer at byte {at} is valid",
                    e.detail
                ),
            };
            let finding = Finding::new(
                Severity::Corruption,
                path,
                Some(0),
                "VHD footer copy",
                message,
            );
            faults.push(Fault::fixed_by(finding, Repair::Leaks, Fix::FooterCopy));
        }
        Ok((footer, Some(at), faults))
    }

    /// The fix of a conflict: clearing the BAT entries of the blocks past
    /// the end of the file or on metadata, or of the later (in BAT order)
    /// of two blocks on each other. Conflicts among the metadata have none.
    fn conflict_fix(&self, file_len: u64, conflict: &Conflict<Part>) -> Option<Fix> {
        let block_len = self.bitmap_size + self.block_size;
        match conflict {
            Conflict::PastEnd(s) => match s.what {
                Part::Blocks(units) => {
                    // The blocks of the run that end past the end of the file.
                    let k = (file_len.saturating_sub(s.start) / block_len).min(units.count - 1);
                    Some(Fix::Clear(Units {
                        first: units.first + k,
                        count: units.count - k,
                    }))
                }
                _ => None,
            },
            Conflict::Overlap(a, b) => match (a.what, b.what) {
                (Part::Blocks(_), Part::Blocks(_)) => {
                    let (first, _) = self.block_at(a, b.start);
                    let (second, _) = self.block_at(b, b.start);
                    Some(Fix::Clear(Units::one(first.max(second))))
                }
                (Part::Blocks(_), _) => Some(Fix::Clear(Units::one(self.block_at(a, b.start).0))),
                (_, Part::Blocks(_)) => Some(Fix::Clear(Units::one(self.block_at(b, b.start).0))),
                _ => None,
            },
        }
    }

    /// Faults in the parent locators of a differencing disk other than
    /// where they lie (the space walk reports that): a platform code vimg
    /// does not read, a payload that cannot be decoded or is longer than
    /// its space, and a path whose file name is not the header's parent
    /// name.
    fn survey_locators(&self, faults: &mut Vec<Fault>) -> Result<()> {
        let path = self.file.path();
        let name = locator::parent_name(&self.header);
        for (i, loc) in self.header.locators.iter().enumerate() {
            if loc.code == [0; 4] {
                continue;
            }
            let at = Some(self.header_offset + 576 + 24 * i as u64);
            let warn = |message: String| {
                Fault::found(Finding::new(
                    Severity::Warning,
                    path,
                    at,
                    "VHD parent locator",
                    format!("parent locator {i}: {message}"),
                ))
            };
            if !locator::known_code(&loc.code) {
                faults.push(warn(format!(
                    "platform code {:?} is not one vimg reads (W2ru, W2ku, MacX)",
                    String::from_utf8_lossy(&loc.code)
                )));
                continue;
            }
            // The space is in sectors by the specification, in bytes as
            // Hyper-V writes it: only more than either is wrong.
            let space = loc.data_space as u64;
            if loc.data_length as u64 > space.max(space * SECTOR) {
                faults.push(warn(format!(
                    "its {} bytes are more than its space ({space})",
                    loc.data_length
                )));
            }
            match locator::read_payload(&self.file, loc) {
                Err(why) => faults.push(warn(format!("cannot be read: {why}"))),
                Ok(text) => {
                    let (got, want) = (locator::base_name(&text), locator::base_name(&name));
                    if !want.is_empty() && !got.eq_ignore_ascii_case(want) {
                        faults.push(warn(format!(
                            "names {text:?}, but the dynamic header's parent name is {name:?}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// qemu-img's cluster counts, in blocks: blocks in the disk, BAT
    /// entries set, and those not right after the previous one in the file
    /// (right after: back to back, or where vimg puts the next block, its
    /// data 4 KiB-aligned).
    fn clusters(&mut self, file_len: u64, size: u64) -> Result<Clusters> {
        let mut clusters = Clusters {
            total: size.div_ceil(self.block_size),
            ..Clusters::default()
        };
        let entries = self.header.max_table_entries as u64;
        let bat_end = self.header.table_offset.checked_add(entries * 4);
        if bat_end.is_none_or(|end| end > file_len) {
            return Ok(clusters);
        }
        let block_len = self.bitmap_size + self.block_size;
        let mut next: Option<u64> = None;
        for block in 0..entries {
            let entry = self.bat.get(&self.file, block)?;
            if entry == UNALLOCATED {
                continue;
            }
            let host = entry as u64 * SECTOR;
            clusters.allocated += 1;
            if let Some(n) = next {
                let aligned = align_up(n + self.bitmap_size, super::DATA_ALIGN) - self.bitmap_size;
                if host != n && host != aligned {
                    clusters.fragmented += 1;
                }
            }
            next = Some(host + block_len);
        }
        Ok(clusters)
    }

    /// Repair what a survey finds and `level` allows, in crash-safe order
    /// (see the module's documentation); returns the faults repaired, each
    /// saying what was done.
    pub fn repair(&mut self, size: u64, level: Repair) -> Result<Vec<Finding>> {
        self.file.check_writable()?;
        // One step can make another possible (a footer put right lets the
        // layout be trusted with clearing entries): passes until one finds
        // nothing to do.
        let mut done = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let pass = self.repair_pass(size, level)?;
            if pass.is_empty() {
                break;
            }
            done.extend(pass);
        }
        Ok(done)
    }

    /// One pass of [`Dynamic::repair`].
    fn repair_pass(&mut self, size: u64, level: Repair) -> Result<Vec<Finding>> {
        let allowed = |f: &Fault| f.finding.repair.is_some_and(|l| l <= level);
        let mut done = Vec::new();
        for _ in 0..MAX_PASSES {
            let survey = self.survey(size)?;
            let mut changed = false;
            for fault in survey.faults.into_iter().filter(|f| allowed(f)) {
                let what = match fault.fix {
                    Some(Fix::Clear(units)) => self.clear(units, size)?,
                    Some(Fix::Unlisted) => {
                        for &units in &survey.unlisted {
                            self.clear(units, size)?;
                        }
                        format!(
                            "cleared their BAT entries ({} runs of blocks): those blocks now read {}",
                            survey.unlisted.len(),
                            self.unused_reads()
                        )
                    }
                    Some(Fix::HeaderChecksum) => {
                        let mut raw = [0u8; HEADER_SIZE];
                        self.file.read_exact_at(&mut raw, self.header_offset)?;
                        let sum = crate::vhd::footer::checksum(&raw, 36);
                        self.file
                            .write_all_at(&sum.to_be_bytes(), self.header_offset + 36)?;
                        format!("stored the checksum {sum:#010x}")
                    }
                    _ => continue,
                };
                changed = true;
                done.push(repaired(fault.finding, &what));
            }
            if !changed {
                break;
            }
            self.bat.flush(&self.file)?;
            self.file.sync()?;
        }
        // The footer: written where it belongs, then the file cut after it.
        let survey = self.survey(size)?;
        let mut moved = None;
        for fault in survey.faults.into_iter().filter(|f| allowed(f)) {
            let Some(Fix::Footer { at }) = fault.fix else {
                continue;
            };
            if moved.is_none() {
                self.file.write_all_at(&survey.footer, at)?;
                self.file.sync()?;
                self.file.set_len(at + FOOTER_SIZE as u64)?;
                self.file.sync()?;
                moved = Some(at);
            }
            let what = format!(
                "the footer is at byte {at} and the file ends after it ({} bytes)",
                at + FOOTER_SIZE as u64
            );
            done.push(repaired(fault.finding, &what));
        }
        // The copy at offset 0, from the footer.
        let survey = self.survey(size)?;
        for fault in survey.faults.into_iter().filter(|f| allowed(f)) {
            if fault.fix == Some(Fix::FooterCopy) {
                self.file.write_all_at(&survey.footer, 0)?;
                self.file.sync()?;
                done.push(repaired(fault.finding, "rewrote the copy from the footer"));
            }
        }
        // Space nothing references, punched out once nothing is wrong.
        let survey = self.survey(size)?;
        let sound = !survey
            .faults
            .iter()
            .any(|f| f.finding.severity == Severity::Corruption);
        for fault in survey.faults.into_iter().filter(|f| sound && allowed(f)) {
            if let Some(Fix::Punch { start, end }) = fault.fix {
                if self.file.punch_hole(start, end - start)? {
                    done.push(repaired(fault.finding, "punched out (a hole)"));
                }
            }
        }
        // What open would have set up for the file as it is now.
        let survey = self.survey(size)?;
        if let Some(at) = survey.footer_at {
            self.footer = survey.footer;
            self.footer_at = at;
            self.file_end = self.file.length()?;
            self.alloc = Allocator::new(at);
            let entries = self.header.max_table_entries as u64;
            self.align_data = can_align(at, entries, self.bitmap_size, self.block_size);
        }
        Ok(done)
    }

    /// Drop every block whose data (for a differencing disk, the sectors
    /// its bitmap marks) holds only zeros, unless `hides(offset, len)`
    /// says a parent reads data under it, and give the space back (the
    /// footer moved up, space between punched out). Returns the bytes
    /// dropped.
    pub fn compact(
        &mut self,
        size: u64,
        hides: &mut dyn FnMut(u64, u64) -> Result<bool>,
        progress: crate::image::Progress,
    ) -> Result<u64> {
        self.file.check_writable()?;
        self.flush()?;
        let mut bitmap = vec![0u8; self.bitmap_size as usize];
        let mut data = vec![0u8; self.block_size as usize];
        let mut dropped = 0;
        for block in 0..self.header.max_table_entries as u64 {
            let entry = self.bat.get(&self.file, block)?;
            let at = block * self.block_size;
            progress(at.min(size));
            if entry == UNALLOCATED {
                continue;
            }
            if at >= size {
                continue;
            }
            let len = self.block_size.min(size - at);
            let host = entry as u64 * SECTOR;
            self.file.read_zero_filled(&mut bitmap, host)?;
            self.file
                .read_zero_filled(&mut data[..len as usize], host + self.bitmap_size)?;
            // A differencing disk holds only the sectors its bitmap marks;
            // a dynamic one holds the whole block.
            let zero = (0..len / SECTOR).all(|s| {
                let marked = bitmap[(s / 8) as usize] & (0x80 >> (s % 8)) != 0;
                let sector = &data[(s * SECTOR) as usize..((s + 1) * SECTOR) as usize];
                (self.differencing && !marked) || crate::io::is_zero(sector)
            });
            if zero && !hides(at, len)? {
                self.bat.set(&self.file, block, UNALLOCATED)?;
                self.bitmaps.remove(&block);
                dropped += len;
            }
        }
        self.bat.flush(&self.file)?;
        self.file.sync()?;
        self.pack(size)?;
        self.repair(size, Repair::Leaks)?;
        Ok(dropped)
    }

    /// Move the blocks nearest the end of the file into the free space
    /// before them (each copy on disk before its BAT entry switches to
    /// it), so that the footer can follow the last one. Only a disk with
    /// nothing wrong with it is packed.
    fn pack(&mut self, size: u64) -> Result<()> {
        let survey = self.survey(size)?;
        if survey
            .faults
            .iter()
            .any(|f| f.finding.severity == Severity::Corruption)
        {
            return Ok(());
        }
        let block_len = self.bitmap_size + self.block_size;
        let len = self.file.length()?;
        let footer = self.footer_at..self.footer_at + FOOTER_SIZE as u64;
        let mut space = self.walk(len, Some(footer))?;
        let first = space
            .spans()
            .iter()
            .filter(|s| !matches!(s.what, Part::Blocks(_) | Part::Footer))
            .map(|s| s.end)
            .max()
            .unwrap_or(0);
        let gaps = space.gaps(first..self.footer_at, block_len);
        if gaps.is_empty() {
            return Ok(());
        }
        let mut units = Vec::new();
        for block in 0..self.header.max_table_entries as u64 {
            let entry = self.bat.get(&self.file, block)?;
            if entry != UNALLOCATED {
                units.push((block, entry as u64 * SECTOR));
            }
        }
        // Data 4 KiB-aligned, as Windows places it, unless packing
        // sector-aligned lets the file end sooner.
        let bitmap = self.bitmap_size;
        let plan = |aligned: bool| {
            let place = |at: u64| match aligned {
                true => align_up(at + bitmap, DATA_ALIGN) - bitmap,
                false => align_up(at, SECTOR),
            };
            let moves = crate::alloc::pack(gaps.clone(), units.clone(), block_len, place);
            let moved: HashSet<u64> = moves.iter().map(|m| m.index).collect();
            let end = units
                .iter()
                .filter(|(i, _)| !moved.contains(i))
                .map(|&(_, host)| host)
                .chain(moves.iter().map(|m| m.to))
                .max()
                .map_or(0, |at| at + block_len);
            (end, moves)
        };
        let (aligned_end, aligned) = plan(self.align_data);
        let (packed_end, packed) = plan(false);
        let moves = match packed_end < aligned_end {
            true => packed,
            false => aligned,
        };
        let mut buf = vec![0u8; block_len.min(COPY_CHUNK) as usize];
        for batch in moves.chunks(PACK_BATCH) {
            for m in batch {
                let mut done = 0;
                while done < block_len {
                    let n = (block_len - done).min(COPY_CHUNK) as usize;
                    self.file.read_zero_filled(&mut buf[..n], m.from + done)?;
                    self.file.write_all_at(&buf[..n], m.to + done)?;
                    done += n as u64;
                }
            }
            self.file.sync()?;
            for m in batch {
                self.bat.set(&self.file, m.index, (m.to / SECTOR) as u32)?;
            }
            self.bat.flush(&self.file)?;
            self.file.sync()?;
        }
        Ok(())
    }

    /// Clear every BAT entry, so that the disk holds nothing itself, and
    /// give the blocks' space back (the footer moved after the metadata,
    /// space between punched out).
    pub fn discard_all(&mut self, size: u64) -> Result<()> {
        self.file.check_writable()?;
        self.flush()?;
        for block in 0..self.header.max_table_entries as u64 {
            if self.bat.get(&self.file, block)? != UNALLOCATED {
                self.bat.set(&self.file, block, UNALLOCATED)?;
            }
        }
        self.bitmaps.clear();
        self.bat.flush(&self.file)?;
        self.file.sync()?;
        self.repair(size, Repair::Leaks)?;
        Ok(())
    }

    /// Clear the BAT entries of `units` (in memory; the caller flushes),
    /// saying which virtual bytes now read from the parent or as zeros.
    fn clear(&mut self, units: Units, size: u64) -> Result<String> {
        for block in units.first..units.first + units.count {
            self.bat.set(&self.file, block, UNALLOCATED)?;
            self.bitmaps.remove(&block);
        }
        let start = (units.first * self.block_size).min(size);
        let end = ((units.first + units.count) * self.block_size).min(size);
        let reads = self.unused_reads();
        Ok(format!(
            "cleared the BAT entr{} of {}: virtual bytes {start} to {end} now read {reads}",
            if units.count == 1 { "y" } else { "ies" },
            units.describe("block", "blocks")
        ))
    }
}

impl Dynamic {
    /// How sectors this disk holds nothing for read.
    fn unused_reads(&self) -> &'static str {
        match self.differencing {
            true => "from the parent",
            false => "as zeros",
        }
    }
}

/// `finding`, its message saying what the repair did.
fn repaired(finding: Finding, what: &str) -> Finding {
    Finding {
        message: format!("{}; repaired: {what}", finding.message),
        ..finding
    }
}
