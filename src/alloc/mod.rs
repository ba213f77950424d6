//! The allocation machinery VMDK and VHD share: host space handed out at the
//! end of the file, the pointer tables (grain tables, BAT) held in memory and
//! written back in batches, and the gathering of per-grain I/O into few calls.
//!
//! Order on disk is the caller's contract and this module's design: data is
//! written when it is handed over, table pages only at [`Table::flush`], so a
//! table entry never reaches the disk before the data it points at.

pub mod space;

use std::ops::Range;

use byteorder::{BigEndian, ByteOrder, LittleEndian};

use crate::error::Result;
use crate::io::{align_up, ImageFile};

/// One piece of an access cut at allocation-unit boundaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The unit (grain, block) the piece lies in.
    pub index: u64,
    /// Where the piece starts within its unit.
    pub within: u64,
    /// Where the piece is in a buffer that starts at the access's offset.
    pub range: Range<usize>,
}

impl Piece {
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// True for an empty piece (there are none).
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// The pieces of the `len` bytes from `offset`, cut where units of `unit`
/// bytes end: the one walk every format's reads and writes make.
pub fn units(offset: u64, len: usize, unit: u64) -> impl Iterator<Item = Piece> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = offset + done as u64;
        let within = at % unit;
        let n = ((unit - within) as usize).min(len - done);
        let piece = Piece {
            index: at / unit,
            within,
            range: done..done + n,
        };
        done += n;
        Some(piece)
    })
}

/// Hands out host space at the end of the file.
#[derive(Debug, Clone)]
pub struct Allocator {
    end: u64,
}

impl Allocator {
    /// Start allocating at `end` (the current end of used space).
    pub fn new(end: u64) -> Self {
        Allocator { end }
    }

    /// The end of the space handed out so far.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Take `len` bytes starting at the next multiple of `align`.
    pub fn take(&mut self, len: u64, align: u64) -> u64 {
        let at = align_up(self.end, align);
        self.end = at + len;
        at
    }

    /// Take `len` bytes placed so that `at + lead` is a multiple of `align`:
    /// a block whose data follows a `lead`-byte bitmap lands aligned.
    pub fn take_with_lead(&mut self, len: u64, lead: u64, align: u64) -> u64 {
        let at = align_up(self.end + lead, align) - lead;
        self.end = at + len;
        at
    }
}

/// Byte order of a table's entries on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

/// Pages loaded together when a table is walked.
const LOAD_BATCH: usize = 128;
/// Memory that loaded, unchanged pages may take before they are dropped
/// (and read again when needed): it bounds what a huge image costs.
const MAX_LOADED_BYTES: usize = 32 << 20;

#[derive(Debug)]
enum State {
    Unloaded,
    /// Every entry is zero; no memory held.
    Zero,
    Loaded(Box<[u32]>),
}

/// Byte offsets of a page's copies: primary, then redundant; 0 stands for
/// "no such copy" (offset 0 always holds a header). A page whose primary is
/// 0 has no place in the file yet and reads as all zero.
pub type Homes = [u64; 2];

#[derive(Debug)]
struct Page {
    homes: Homes,
    state: State,
    dirty: bool,
}

/// A table of 32-bit entries stored as pages at known places in a file,
/// each possibly twice (VMDK's redundant grain tables). Pages are read on
/// first use, in batches, with holes in the file recognised without reading;
/// changed pages are written back together by [`Table::flush`].
#[derive(Debug)]
pub struct Table {
    endian: Endian,
    page_entries: usize,
    len: u64,
    pages: Vec<Page>,
    /// Pages in the `Loaded` state.
    loaded: usize,
    /// When loaded pages take more than this, unchanged ones are dropped.
    max_loaded_bytes: usize,
}

impl Table {
    /// A table of `len` entries in pages of `page_entries`; `homes[i]` says
    /// where page `i` is stored.
    pub fn new(endian: Endian, page_entries: usize, len: u64, homes: Vec<Homes>) -> Self {
        debug_assert_eq!(homes.len() as u64, len.div_ceil(page_entries as u64));
        let pages = homes
            .into_iter()
            .map(|homes| Page {
                state: if homes[0] == 0 {
                    State::Zero
                } else {
                    State::Unloaded
                },
                homes,
                dirty: false,
            })
            .collect();
        Table {
            endian,
            page_entries,
            len,
            pages,
            loaded: 0,
            max_loaded_bytes: MAX_LOADED_BYTES,
        }
    }

    /// A table held only in memory so far (tests build tables this way): every page starts as `fill` and
    /// dirty, and is written to its homes at the next flush.
    #[cfg(test)]
    pub fn new_filled(
        endian: Endian,
        page_entries: usize,
        len: u64,
        homes: Vec<Homes>,
        fill: u32,
    ) -> Self {
        let mut table = Table::new(endian, page_entries, len, homes);
        for page in &mut table.pages {
            page.state = if fill == 0 {
                State::Zero
            } else {
                State::Loaded(vec![fill; page_entries].into_boxed_slice())
            };
            page.dirty = true;
        }
        if fill != 0 {
            table.loaded = table.pages.len();
        }
        table
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn page_bytes(&self) -> u64 {
        self.page_entries as u64 * 4
    }

    /// Bytes of page `p` that hold entries (the last page may be short).
    fn used_bytes(&self, p: usize) -> usize {
        let first = p as u64 * self.page_entries as u64;
        ((self.len - first).min(self.page_entries as u64) * 4) as usize
    }

    /// Where page `p`'s copies are.
    pub fn homes(&self, p: usize) -> Homes {
        self.pages[p].homes
    }

    /// Where page `p`'s primary copy is (0 when it has none).
    pub fn home(&self, p: usize) -> u64 {
        self.pages[p].homes[0]
    }

    /// True when page `p` has a place in the file.
    pub fn page_present(&self, p: usize) -> bool {
        self.pages[p].homes[0] != 0
    }

    /// Give page `p`, which had no place in the file, its homes. It reads
    /// as all zero and is written out at the next flush.
    pub fn place_page(&mut self, p: usize, homes: Homes) {
        let page = &mut self.pages[p];
        debug_assert!(page.homes[0] == 0);
        page.homes = homes;
        page.state = State::Zero;
        page.dirty = true;
    }

    /// The entry at `index`.
    pub fn get(&mut self, file: &ImageFile, index: u64) -> Result<u32> {
        let p = (index / self.page_entries as u64) as usize;
        let i = (index % self.page_entries as u64) as usize;
        self.load(file, p)?;
        Ok(match &self.pages[p].state {
            State::Loaded(entries) => entries[i],
            _ => 0,
        })
    }

    /// Set the entry at `index`; its page must have a place in the file.
    pub fn set(&mut self, file: &ImageFile, index: u64, value: u32) -> Result<()> {
        let p = (index / self.page_entries as u64) as usize;
        let i = (index % self.page_entries as u64) as usize;
        debug_assert!(self.page_present(p));
        self.load(file, p)?;
        let page = &mut self.pages[p];
        if matches!(page.state, State::Zero) {
            if value == 0 {
                return Ok(());
            }
            page.state = State::Loaded(vec![0; self.page_entries].into_boxed_slice());
            self.loaded += 1;
        }
        if let State::Loaded(entries) = &mut page.state {
            if entries[i] != value {
                entries[i] = value;
                page.dirty = true;
            }
        }
        Ok(())
    }

    /// Load page `p` and the unloaded pages that follow it in the file.
    fn load(&mut self, file: &ImageFile, p: usize) -> Result<()> {
        if !matches!(self.pages[p].state, State::Unloaded) {
            return Ok(());
        }
        let bytes = self.page_bytes();
        let start = self.pages[p].homes[0];
        let mut count = 1;
        while count < LOAD_BATCH
            && p + count < self.pages.len()
            && matches!(self.pages[p + count].state, State::Unloaded)
            && start.checked_add(count as u64 * bytes) == Some(self.pages[p + count].homes[0])
        {
            count += 1;
        }
        let total = count as u64 * bytes;
        if (self.loaded + count) * bytes as usize > self.max_loaded_bytes {
            self.evict_clean();
        }
        if file.is_hole(start, total)? {
            for page in &mut self.pages[p..p + count] {
                page.state = State::Zero;
            }
            return Ok(());
        }
        let mut buf = vec![0u8; total as usize];
        file.read_zero_filled(&mut buf, start)?;
        for (k, chunk) in buf.chunks_exact(bytes as usize).enumerate() {
            let used = self.used_bytes(p + k);
            let mut entries = vec![0u32; self.page_entries];
            match self.endian {
                Endian::Little => {
                    LittleEndian::read_u32_into(&chunk[..used], &mut entries[..used / 4])
                }
                Endian::Big => BigEndian::read_u32_into(&chunk[..used], &mut entries[..used / 4]),
            }
            self.pages[p + k].state = if entries.iter().all(|&e| e == 0) {
                State::Zero
            } else {
                self.loaded += 1;
                State::Loaded(entries.into_boxed_slice())
            };
        }
        Ok(())
    }

    /// Drop every loaded page that has not changed; they are read again
    /// when next needed.
    fn evict_clean(&mut self) {
        for page in &mut self.pages {
            if !page.dirty && matches!(page.state, State::Loaded(_)) {
                page.state = State::Unloaded;
                self.loaded -= 1;
            }
        }
    }

    /// True when every entry of page `p` is zero (an absent page counts).
    pub fn page_is_zero(&mut self, file: &ImageFile, p: usize) -> Result<bool> {
        self.load(file, p)?;
        Ok(matches!(self.pages[p].state, State::Zero))
    }

    /// True when some page changed since the last flush.
    #[cfg(test)]
    pub fn is_dirty(&self) -> bool {
        self.pages.iter().any(|p| p.dirty)
    }

    /// Write every changed page to all its homes, joining pages that sit
    /// next to each other in the file into single writes.
    pub fn flush(&mut self, file: &ImageFile) -> Result<()> {
        let bytes = self.page_bytes();
        let mut writes: Vec<(u64, usize)> = Vec::new();
        for (p, page) in self.pages.iter().enumerate() {
            if page.dirty {
                writes.extend(page.homes.iter().filter(|&&h| h != 0).map(|&h| (h, p)));
            }
        }
        writes.sort_unstable();
        let mut buf = Vec::new();
        let mut run_start = 0;
        for (n, &(home, p)) in writes.iter().enumerate() {
            let joins = n > 0 && {
                let (prev_home, prev_p) = writes[n - 1];
                prev_home + bytes == home && self.used_bytes(prev_p) as u64 == bytes
            };
            if !joins && !buf.is_empty() {
                file.write_all_at(&buf, run_start)?;
                buf.clear();
            }
            if buf.is_empty() {
                run_start = home;
            }
            let used = self.used_bytes(p);
            let at = buf.len();
            buf.resize(at + used, 0);
            if let State::Loaded(entries) = &self.pages[p].state {
                match self.endian {
                    Endian::Little => {
                        LittleEndian::write_u32_into(&entries[..used / 4], &mut buf[at..])
                    }
                    Endian::Big => BigEndian::write_u32_into(&entries[..used / 4], &mut buf[at..]),
                }
            }
        }
        if !buf.is_empty() {
            file.write_all_at(&buf, run_start)?;
        }
        for page in &mut self.pages {
            page.dirty = false;
        }
        Ok(())
    }
}

/// Pieces of one caller buffer, each bound for a host offset in one file,
/// gathered so that pieces adjacent both in the buffer and in the file
/// become one read or write.
#[derive(Debug, Default)]
pub struct Runs {
    runs: Vec<(u64, Range<usize>)>,
}

impl Runs {
    pub fn new() -> Self {
        Runs::default()
    }

    /// Add `buf[range]` at host offset `host`.
    pub fn push(&mut self, host: u64, range: Range<usize>) {
        if let Some((last_host, last)) = self.runs.last_mut() {
            if last.end == range.start && *last_host + last.len() as u64 == host {
                last.end = range.end;
                return;
            }
        }
        self.runs.push((host, range));
    }

    /// Read every run from `file` into `buf`.
    pub fn read(&self, file: &ImageFile, buf: &mut [u8]) -> Result<()> {
        for (host, range) in &self.runs {
            file.read_exact_at(&mut buf[range.clone()], *host)?;
        }
        Ok(())
    }

    /// Read every run from `file` into `buf`, with zeros for whatever lies
    /// past the end of the file.
    pub fn read_zero_filled(&self, file: &ImageFile, buf: &mut [u8]) -> Result<()> {
        for (host, range) in &self.runs {
            file.read_zero_filled(&mut buf[range.clone()], *host)?;
        }
        Ok(())
    }

    /// Write every run of `buf` to `file`.
    pub fn write(&self, file: &ImageFile, buf: &[u8]) -> Result<()> {
        for (host, range) in &self.runs {
            file.write_data_at(&buf[range.clone()], *host)?;
        }
        Ok(())
    }
}

/// A unit of data moved nearer the start of a file: its index (grain or
/// block), where it is, where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    pub index: u64,
    pub from: u64,
    pub to: u64,
}

/// Where units of `len` bytes go so that the file can end sooner: from the
/// last (by place in the file) down, each into the lowest of the free
/// `gaps` that holds it below where it is now (`place` gives where in a gap
/// starting at some byte a unit would start: alignment). Stops at the
/// first unit nothing lower can hold. `units` are (index, host); the moves
/// come in the order of the units, which keep their order in the file.
pub fn pack(
    mut gaps: Vec<Range<u64>>,
    mut units: Vec<(u64, u64)>,
    len: u64,
    place: impl Fn(u64) -> u64,
) -> Vec<Move> {
    units.sort_by_key(|&(_, host)| std::cmp::Reverse(host));
    gaps.sort_by_key(|g| g.start);
    // A gap too small for one unit is too small for every later one: the
    // first that holds one is the lowest, and what is left of it stays
    // first.
    let mut gaps: std::collections::VecDeque<Range<u64>> = gaps.into();
    let mut moves = Vec::new();
    for (index, from) in units {
        let to = loop {
            let Some(g) = gaps.front() else { break None };
            let at = place(g.start);
            if at + len <= g.end {
                break Some(at);
            }
            gaps.pop_front();
        };
        let Some(to) = to.filter(|&to| to + len <= from) else {
            break;
        };
        let g = gaps.pop_front().expect("the gap just found");
        if to + len < g.end {
            gaps.push_front(to + len..g.end);
        }
        moves.push(Move { index, from, to });
    }
    // Every place taken lies below every unit moved: they are paired in
    // order instead, so that the units keep their order in the file.
    let mut places: Vec<u64> = moves.iter().map(|m| m.to).collect();
    places.sort_unstable();
    moves.sort_by_key(|m| m.from);
    for (m, to) in moves.iter_mut().zip(places) {
        m.to = to;
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_moves_the_last_units_into_the_lowest_gaps_that_hold_them() {
        // Units of 10 at 0, 30, 50, 70; gaps 10..30 and 40..50.
        let units = vec![(0, 0), (1, 30), (2, 50), (3, 70)];
        let moves = pack(vec![40..50, 10..30], units, 10, |at| at);
        let m = |index, from, to| Move { index, from, to };
        assert_eq!(moves, [m(2, 50, 10), m(3, 70, 20)].to_vec());
        // Alignment to 8: the gap 10..30 holds one unit (at 16), 40..50 none.
        let units = vec![(0, 0), (1, 30), (2, 50), (3, 70)];
        let moves = pack(vec![10..30, 40..50], units, 10, |at| at.div_ceil(8) * 8);
        assert_eq!(moves, [m(2, 50, 16), m(3, 70, 40)].to_vec());
        // Nothing moves up.
        let above: Vec<Range<u64>> = std::iter::once(80..100).collect();
        assert!(pack(above, vec![(0, 0)], 10, |at| at).is_empty());
    }

    #[test]
    fn units_cut_an_access_at_unit_boundaries() {
        let cut: Vec<_> = units(1000, 3000, 1024)
            .map(|p| (p.index, p.within, p.range))
            .collect();
        assert_eq!(
            cut,
            [
                (0, 1000, 0..24),
                (1, 0, 24..1048),
                (2, 0, 1048..2072),
                (3, 0, 2072..3000)
            ]
        );
        assert_eq!(units(4096, 0, 512).count(), 0);
        let one: Vec<_> = units(7, 5, 512)
            .map(|p| (p.index, p.within, p.range))
            .collect();
        assert_eq!(one, [(0, 7, 0..5)]);
    }
    use crate::io::ImageFile;

    fn temp_file() -> (tempfile::TempDir, ImageFile) {
        let dir = tempfile::tempdir().unwrap();
        let f = ImageFile::create_new(&dir.path().join("t")).unwrap();
        (dir, f)
    }

    #[test]
    fn allocator_aligns_and_leads() {
        let mut a = Allocator::new(1536);
        assert_eq!(a.take(512, 512), 1536);
        assert_eq!(a.end(), 2048);
        // data after a 512-byte bitmap lands on 4096
        let at = a.take_with_lead(512 + 4096, 512, 4096);
        assert_eq!(at, 3584);
        assert_eq!(a.end(), 3584 + 4608);
    }

    #[test]
    fn table_round_trips_both_copies_and_joins_writes() {
        let (_d, f) = temp_file();
        // 3 pages of 4 entries, primary at 0.., redundant at 4096..
        let homes = |p: u64| [p * 16 + 16, 4096 + p * 16];
        let mut t = Table::new_filled(Endian::Little, 4, 12, (0..3).map(homes).collect(), 0);
        t.set(&f, 5, 0xdead_beef).unwrap();
        t.set(&f, 11, 7).unwrap();
        t.flush(&f).unwrap();
        assert!(!t.is_dirty());
        let mut raw = [0u8; 48];
        f.read_exact_at(&mut raw, 16).unwrap();
        assert_eq!(LittleEndian::read_u32(&raw[20..]), 0xdead_beef);
        assert_eq!(LittleEndian::read_u32(&raw[44..]), 7);
        f.read_exact_at(&mut raw, 4096).unwrap();
        assert_eq!(LittleEndian::read_u32(&raw[20..]), 0xdead_beef);

        let mut again = Table::new(Endian::Little, 4, 12, (0..3).map(homes).collect());
        assert_eq!(again.get(&f, 5).unwrap(), 0xdead_beef);
        assert_eq!(again.get(&f, 11).unwrap(), 7);
        assert_eq!(again.get(&f, 0).unwrap(), 0);
    }

    #[test]
    fn short_last_page_never_writes_past_the_table() {
        let (_d, f) = temp_file();
        f.write_all_at(&[0xaa; 64], 512).unwrap();
        // 5 big-endian entries in pages of 4: the second page holds one.
        let mut t = Table::new_filled(Endian::Big, 4, 5, vec![[512, 0], [528, 0]], 0xffff_ffff);
        t.set(&f, 4, 9).unwrap();
        t.flush(&f).unwrap();
        let mut raw = [0u8; 24];
        f.read_exact_at(&mut raw, 512).unwrap();
        assert_eq!(BigEndian::read_u32(&raw[16..]), 9);
        assert_eq!(&raw[20..24], &[0xaa; 4]);
    }

    #[test]
    fn absent_pages_read_zero_until_placed() {
        let (_d, f) = temp_file();
        let mut t = Table::new(Endian::Little, 4, 8, vec![[0, 0], [0, 0]]);
        assert_eq!(t.get(&f, 6).unwrap(), 0);
        assert!(!t.page_present(1));
        t.place_page(1, [512, 0]);
        t.set(&f, 6, 3).unwrap();
        t.flush(&f).unwrap();
        let mut raw = [0u8; 16];
        f.read_exact_at(&mut raw, 512).unwrap();
        assert_eq!(LittleEndian::read_u32(&raw[8..]), 3);
    }

    #[test]
    fn unchanged_pages_are_dropped_past_the_memory_cap_and_read_again() {
        let (_d, f) = temp_file();
        // 64 pages of 4 entries, 32 bytes apart: each loads on its own.
        let homes = || (0..64u64).map(|p| [512 + p * 32, 0]).collect();
        let mut t = Table::new_filled(Endian::Little, 4, 256, homes(), 0);
        for i in 0..256 {
            t.set(&f, i, i as u32 + 1).unwrap();
        }
        t.flush(&f).unwrap();
        let cap_pages = 8;
        let mut again = Table::new(Endian::Little, 4, 256, homes());
        again.max_loaded_bytes = cap_pages * 16;
        for i in 0..256 {
            assert_eq!(again.get(&f, i).unwrap(), i as u32 + 1);
            assert!(again.loaded <= cap_pages, "{} pages loaded", again.loaded);
        }
        // A changed page survives eviction until it is flushed.
        again.set(&f, 0, 77).unwrap();
        for i in 4..256 {
            again.get(&f, i).unwrap();
        }
        again.flush(&f).unwrap();
        assert_eq!(
            Table::new(Endian::Little, 4, 256, homes())
                .get(&f, 0)
                .unwrap(),
            77
        );
    }

    #[test]
    fn runs_join_adjacent_pieces() {
        let mut r = Runs::new();
        r.push(1000, 0..10);
        r.push(1010, 10..20);
        r.push(5000, 20..30);
        r.push(5010, 40..50);
        assert_eq!(r.runs.len(), 3);
        assert_eq!(r.runs[0], (1000, 0..20));
    }
}
