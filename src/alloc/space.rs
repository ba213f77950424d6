//! Who claims which byte ranges of a file. A format's metadata walk claims
//! its headers, tables and data units; [`Space::conflicts`] finds, in one
//! sorted sweep, every claim past the end of the file and every two that
//! overlap. `open` refuses the image at the first conflict it cares about;
//! `check` reports them all, and the gaps nothing claims ([`Space::gaps`])
//! are its leaks.
//!
//! Claims of consecutive units that lie back to back in the file are kept
//! as one run ([`Space::claim_run`]), so an image written front to back
//! costs a handful of spans whatever its size.

use std::ops::Range;

/// A claimed range of a file and what claims it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span<T> {
    pub start: u64,
    pub end: u64,
    pub what: T,
}

/// Something wrong with the claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict<T> {
    /// The span runs past the end of the file.
    PastEnd(Span<T>),
    /// The second span starts inside the first (which starts no later).
    Overlap(Span<T>, Span<T>),
}

impl<T> Conflict<T> {
    /// The data units this conflict makes untrustworthy, for an open that
    /// reads what it can (`units` tells a run of units, each `len` bytes
    /// long, from other claims): of a run past the end of a
    /// `file_len`-byte file, those that reach past it; of an overlap, those
    /// of the later span that meet the earlier one, or, when the later
    /// span is no run of units, those of the earlier that meet it.
    pub fn faulty_units(
        &self,
        file_len: u64,
        len: u64,
        units: impl Fn(&T) -> Option<Units>,
    ) -> Vec<u64> {
        // The units of run `span` whose bytes meet `from..to`.
        let meeting = |span: &Span<T>, from: u64, to: u64| -> Vec<u64> {
            let Some(run) = units(&span.what) else {
                return Vec::new();
            };
            (0..run.count)
                .filter(|k| {
                    let at = span.start.saturating_add(k * len);
                    at < to && at.saturating_add(len) > from
                })
                .map(|k| run.first + k)
                .collect()
        };
        match self {
            Conflict::PastEnd(span) => meeting(span, file_len, u64::MAX),
            Conflict::Overlap(a, b) if units(&b.what).is_some() => meeting(b, a.start, a.end),
            Conflict::Overlap(a, b) => meeting(a, b.start, b.end),
        }
    }
}

/// Units of data (grains, blocks) `first` to `first + count - 1`, lying
/// back to back in the file: what a run of claims stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Units {
    pub first: u64,
    pub count: u64,
}

impl Units {
    /// Unit `index` alone.
    pub fn one(index: u64) -> Units {
        Units {
            first: index,
            count: 1,
        }
    }

    /// These units and `next` as one run, when `next` is the one that
    /// follows.
    pub fn then(self, next: Units) -> Option<Units> {
        (next.count == 1 && self.first + self.count == next.first).then_some(Units {
            count: self.count + 1,
            ..self
        })
    }

    /// Of these units, claimed from byte `start` in units of `len` bytes,
    /// the one that holds byte `at`, and where it starts.
    pub fn at(self, start: u64, len: u64, at: u64) -> (u64, u64) {
        let k = (at.saturating_sub(start) / len).min(self.count - 1);
        (self.first + k, start + k * len)
    }

    /// "grain 5", "grains 5 to 9".
    pub fn describe(self, one: &str, many: &str) -> String {
        match self.count {
            1 => format!("{one} {}", self.first),
            n => format!("{many} {} to {}", self.first, self.first + n - 1),
        }
    }
}

/// What can be said of the claim that extends a run: the run's new `what`.
pub trait Run: Sized {
    /// `self` extended by `next`, claimed right after it in the file, or
    /// `None` when the two are not one run.
    fn extend(&self, next: &Self) -> Option<Self>;
}

/// The claims on one file of `len` bytes.
#[derive(Clone, Debug)]
pub struct Space<T> {
    len: u64,
    spans: Vec<Span<T>>,
    sorted: bool,
}

impl<T: Clone> Space<T> {
    pub fn new(len: u64) -> Self {
        Space {
            len,
            spans: Vec::new(),
            sorted: true,
        }
    }

    /// Length of the file.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Claim `len` bytes from `start` for `what` (an end past 2^64 is held
    /// at the top, and so lies past the end of any file).
    pub fn claim(&mut self, start: u64, len: u64, what: T) {
        let span = Span {
            start,
            end: start.saturating_add(len),
            what,
        };
        self.sorted &= self.spans.last().is_none_or(|l| key(l) <= key(&span));
        self.spans.push(span);
    }

    /// The spans, sorted by where they start.
    pub fn spans(&mut self) -> &[Span<T>] {
        self.sort();
        &self.spans
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.spans.sort_by_key(key);
            self.sorted = true;
        }
    }

    /// Every span past the end of the file, then every span that starts
    /// inside an earlier one (each reported once, against the earlier span
    /// that reaches furthest), in file order.
    pub fn conflicts(&mut self) -> Vec<Conflict<T>> {
        self.sort();
        let mut out: Vec<Conflict<T>> = self
            .spans
            .iter()
            .filter(|s| s.end > self.len)
            .map(|s| Conflict::PastEnd(s.clone()))
            .collect();
        let mut reach: Option<&Span<T>> = None;
        for span in &self.spans {
            match reach {
                Some(r) if span.start < r.end => {
                    out.push(Conflict::Overlap(r.clone(), span.clone()));
                    if span.end > r.end {
                        reach = Some(span);
                    }
                }
                _ => reach = Some(span),
            }
        }
        out
    }

    /// A span that shares bytes with `start..end`: exact when the spans do
    /// not overlap one another (a walk refuses those first), and one
    /// binary search whatever the number of spans.
    pub fn overlapping(&mut self, start: u64, end: u64) -> Option<&Span<T>> {
        self.sort();
        let i = self.spans.partition_point(|s| s.start < end);
        self.spans[..i].last().filter(|s| s.end > start)
    }

    /// The end of the furthest claim.
    pub fn end(&self) -> u64 {
        self.spans.iter().map(|s| s.end).max().unwrap_or(0)
    }

    /// The ranges of `within` that nothing claims, of at least `min` bytes.
    pub fn gaps(&mut self, within: Range<u64>, min: u64) -> Vec<Range<u64>> {
        self.sort();
        let mut out = Vec::new();
        let mut at = within.start;
        for span in &self.spans {
            if span.start >= within.end {
                break;
            }
            if span.start > at && span.start - at >= min.max(1) {
                out.push(at..span.start);
            }
            at = at.max(span.end);
        }
        if within.end > at && within.end - at >= min.max(1) {
            out.push(at..within.end);
        }
        out
    }
}

impl<T: Clone + Run> Space<T> {
    /// Claim as [`Space::claim`] does, joining the claim to the last one
    /// when it starts where that ends and the two are one run.
    pub fn claim_run(&mut self, start: u64, len: u64, what: T) {
        if let Some(last) = self.spans.last_mut() {
            if last.end == start {
                if let Some(joined) = last.what.extend(&what) {
                    last.what = joined;
                    last.end = start.saturating_add(len);
                    return;
                }
            }
        }
        self.claim(start, len, what);
    }
}

fn key<T>(s: &Span<T>) -> (u64, u64) {
    (s.start, s.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units 0, 1, 2, ... of one kind, joined into runs.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Part {
        Header,
        Table,
        Units(u64, u64),
    }

    impl Run for Part {
        fn extend(&self, next: &Part) -> Option<Part> {
            match (self, next) {
                (Part::Units(first, n), Part::Units(next, 1)) if first + n == *next => {
                    Some(Part::Units(*first, n + 1))
                }
                _ => None,
            }
        }
    }

    #[test]
    fn a_clean_layout_has_no_conflicts_and_its_gaps_are_the_holes() {
        let mut space = Space::new(10_000);
        space.claim(0, 512, Part::Header);
        space.claim(1024, 512, Part::Table);
        for i in 0..4 {
            space.claim_run(2048 + i * 1000, 1000, Part::Units(i, 1));
        }
        space.claim_run(8000, 1000, Part::Units(5, 1));
        assert!(space.conflicts().is_empty());
        assert_eq!(space.spans().len(), 4, "units 0-3 are one run");
        assert_eq!(space.spans()[2].what, Part::Units(0, 4));
        assert_eq!(space.end(), 9000);
        assert_eq!(
            space.gaps(0..10_000, 1),
            [512..1024, 1536..2048, 6048..8000, 9000..10_000]
        );
        assert_eq!(space.gaps(2048..10_000, 1000), [6048..8000, 9000..10_000]);
        assert_eq!(
            space.overlapping(400, 600).map(|s| &s.what),
            Some(&Part::Header)
        );
        assert_eq!(
            space.overlapping(600, 1025).map(|s| &s.what),
            Some(&Part::Table)
        );
        assert_eq!(space.overlapping(1536, 2048), None);
        assert_eq!(space.overlapping(9000, 9500), None);
    }

    #[test]
    fn every_overlap_and_every_claim_past_the_end_is_found() {
        let mut space = Space::new(4096);
        space.claim(3000, 2000, Part::Units(9, 1)); // past the end
        space.claim(0, 512, Part::Header);
        space.claim(256, 512, Part::Table); // on the header
        space.claim(1024, 2048, Part::Units(0, 1));
        space.claim(1536, 512, Part::Units(1, 1)); // inside unit 0
        space.claim(2560, 10, Part::Units(2, 1)); // inside unit 0 too
        space.claim(u64::MAX - 1, 10, Part::Units(3, 1)); // wraps
        let c = space.conflicts();
        assert_eq!(c.len(), 6, "{c:#?}");
        assert!(matches!(&c[0], Conflict::PastEnd(s) if s.what == Part::Units(9, 1)));
        assert!(matches!(&c[1], Conflict::PastEnd(s) if s.end == u64::MAX));
        assert!(
            matches!(&c[2], Conflict::Overlap(a, b) if a.what == Part::Header && b.what == Part::Table)
        );
        assert!(
            matches!(&c[3], Conflict::Overlap(a, b) if a.what == Part::Units(0, 1) && b.what == Part::Units(1, 1))
        );
        assert!(
            matches!(&c[4], Conflict::Overlap(a, b) if a.what == Part::Units(0, 1) && b.what == Part::Units(2, 1))
        );
        assert!(
            matches!(&c[5], Conflict::Overlap(a, b) if a.what == Part::Units(0, 1) && b.what == Part::Units(9, 1))
        );
    }

    #[test]
    fn runs_of_units_join_and_name_the_unit_at_a_byte() {
        let run = Units::one(4).then(Units::one(5)).unwrap();
        assert_eq!(run, Units { first: 4, count: 2 });
        assert_eq!(run.then(Units::one(7)), None);
        assert_eq!(run.describe("grain", "grains"), "grains 4 to 5");
        assert_eq!(Units::one(9).describe("block", "blocks"), "block 9");
        // Claimed from byte 1000 in 100-byte units: byte 1150 is in unit 5.
        assert_eq!(run.at(1000, 100, 1150), (5, 1100));
        assert_eq!(run.at(1000, 100, 5000), (5, 1100));
    }

    #[test]
    fn the_same_range_claimed_twice_is_an_overlap() {
        let mut space = Space::new(1 << 20);
        space.claim(4096, 4096, Part::Units(1, 1));
        space.claim(4096, 4096, Part::Units(7, 1));
        let c = space.conflicts();
        assert_eq!(c.len(), 1);
        assert!(matches!(&c[0], Conflict::Overlap(a, b) if a.start == b.start));
        assert_eq!(space.gaps(0..8192, 1), vec![0..4096]);
    }
}
